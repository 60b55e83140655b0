//! What the portal answers to the operating systems' connectivity probes, to the RFC 8908
//! captive-portal API, and to any page asked for under a name that is not the box's.
//! Pure: path + `Host` + captive or not → an answer.

use std::net::IpAddr;

use serde::Serialize;

use crate::network::PORTAL_ADDRESS;

/// Where every captive client is sent.
pub fn portal_url() -> String {
    format!("http://{PORTAL_ADDRESS}/")
}

/// The RFC 8908 API, at the URI DHCP option 114 announces (RFC 8910). RFC 8908 wants it
/// served over HTTPS; clients that insist fall back to the probe paths, which we answer.
pub const CAPTIVE_API_PATH: &str = "/captive-portal/api";

/// One operating system's connectivity check, known by its path alone (its host name is
/// resolved to the box by the portal's DNS, so any `Host` may come with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Android, ChromeOS: `/generate_204`, `/gen_204`.
    Android,
    /// Apple: `/hotspot-detect.html`, `/library/test/success.html`.
    Apple,
    /// Windows 10 and later: `/connecttest.txt`.
    WindowsConnectTest,
    /// Windows 7 and 8: `/ncsi.txt`.
    WindowsNcsi,
    /// Windows opens `/redirect` in a browser once it believes it is captive.
    WindowsRedirect,
    /// Firefox: `/canonical.html`.
    FirefoxCanonical,
    /// Firefox: `/success.txt`.
    FirefoxSuccess,
}

pub const PROBE_PATHS: [(&str, Probe); 9] = [
    ("/generate_204", Probe::Android),
    ("/gen_204", Probe::Android),
    ("/hotspot-detect.html", Probe::Apple),
    ("/library/test/success.html", Probe::Apple),
    ("/connecttest.txt", Probe::WindowsConnectTest),
    ("/ncsi.txt", Probe::WindowsNcsi),
    ("/redirect", Probe::WindowsRedirect),
    ("/canonical.html", Probe::FirefoxCanonical),
    ("/success.txt", Probe::FirefoxSuccess),
];

/// A complete HTTP answer the server sends as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub content_type: &'static str,
    pub body: String,
    /// `Location` of a redirect.
    pub location: Option<String>,
}

impl Probe {
    pub fn from_path(path: &str) -> Option<Probe> {
        PROBE_PATHS.iter().find(|(p, _)| *p == path).map(|(_, probe)| *probe)
    }

    /// What the OS expects from the open Internet, to the byte.
    pub fn success(self) -> Reply {
        let (code, content_type, body) = match self {
            Probe::Android => (204, "text/plain", ""),
            Probe::Apple => (200, "text/html", "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"),
            Probe::WindowsConnectTest => (200, "text/plain", "Microsoft Connect Test"),
            Probe::WindowsNcsi => (200, "text/plain", "Microsoft NCSI"),
            // Not captive: the browser Windows opened lands on the box's own page.
            Probe::WindowsRedirect => return redirect_to("/"),
            Probe::FirefoxCanonical => (
                200,
                "text/html",
                r#"<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>"#,
            ),
            Probe::FirefoxSuccess => (200, "text/plain", "success\n"),
        };
        Reply { code, content_type, body: body.into(), location: None }
    }
}

/// A 302 with a body a person can follow by hand.
pub fn redirect_to(location: &str) -> Reply {
    Reply {
        code: 302,
        content_type: "text/html",
        body: format!("<a href=\"{location}\">Set up the box</a>\n"),
        location: Some(location.to_string()),
    }
}

#[derive(Serialize)]
struct CaptiveApi {
    captive: bool,
    #[serde(rename = "user-portal-url")]
    user_portal_url: String,
}

pub fn captive_api(captive: bool) -> Reply {
    let body = serde_json::to_string(&CaptiveApi { captive, user_portal_url: portal_url() }).expect("plain JSON");
    Reply { code: 200, content_type: "application/captive+json", body, location: None }
}

/// The names and addresses under which a request is meant for the box itself.
#[derive(Debug, Clone, Default)]
pub struct OwnHost {
    /// Lowercase names, without a trailing dot (`makespacelive.local`, the host name).
    pub names: Vec<String>,
    /// The box's interface addresses (the one the request arrived on among them).
    pub addresses: Vec<IpAddr>,
}

impl OwnHost {
    /// The names every box answers to, plus `hostname` and `hostname.local`.
    pub fn new(hostname: &str, addresses: Vec<IpAddr>) -> OwnHost {
        let mut names: Vec<String> = ["makespacelive", "makespacelive.local", "localhost"].map(String::from).into();
        let hostname = hostname.trim().trim_end_matches('.').to_ascii_lowercase();
        if !hostname.is_empty() {
            names.push(format!("{hostname}.local"));
            names.push(hostname);
        }
        OwnHost { names, addresses }
    }

    /// Whether a `Host` header names the box. No `Host` (HTTP/1.0) is taken as the box.
    pub fn is_own(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        let host = host.trim().to_ascii_lowercase();
        let bare = match host.strip_prefix('[') {
            // [v6]:port
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            None => host.rsplit_once(':').map_or(host.as_str(), |(name, _port)| name),
        };
        let bare = bare.trim_end_matches('.');
        match bare.parse::<IpAddr>() {
            Ok(ip) => ip == IpAddr::V4(PORTAL_ADDRESS) || ip.is_loopback() || self.addresses.contains(&ip),
            // Avahi renames the box `NAME-2.local` when another box holds `NAME.local`.
            Err(_) => {
                let renamed = bare
                    .strip_suffix(".local")
                    .and_then(|label| label.rsplit_once('-'))
                    .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .map(|(name, _)| format!("{name}.local"));
                self.names.iter().any(|n| n == bare || Some(n) == renamed.as_ref())
            }
        }
    }
}

/// What the portal does with a request before the box's own pages see it: probes and the
/// captive API on any host; while captive, every other path on a foreign host goes to
/// the portal. `None`: the box's own pages answer.
pub fn intercept(path: &str, own_host: bool, captive: bool) -> Option<Reply> {
    if path == CAPTIVE_API_PATH {
        return Some(captive_api(captive));
    }
    match Probe::from_path(path) {
        Some(_) if captive => Some(redirect_to(&portal_url())),
        Some(probe) => Some(probe.success()),
        None if captive && !own_host => Some(redirect_to(&portal_url())),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOREIGN_HOSTS: [&str; 8] = [
        "connectivitycheck.gstatic.com",
        "clients3.google.com",
        "captive.apple.com",
        "www.apple.com",
        "www.msftconnecttest.com",
        "www.msftncsi.com",
        "detectportal.firefox.com",
        "example.org:8080",
    ];
    const OWN_HOSTS: [&str; 9] = [
        "10.42.0.1",
        "10.42.0.1:80",
        "makespacelive.local",
        "MakeSpaceLive.Local.",
        "makespacelive",
        "localhost:8080",
        "127.0.0.1",
        "[::1]:80",
        "192.168.1.23",
    ];

    fn own() -> OwnHost {
        OwnHost::new("box-7", vec!["192.168.1.23".parse().unwrap()])
    }

    #[test]
    fn host_names_of_the_box() {
        let own = own();
        for host in OWN_HOSTS.into_iter().chain(["box-7.local", "box-7"]) {
            assert!(own.is_own(Some(host)), "{host}");
        }
        for host in FOREIGN_HOSTS.into_iter().chain(["192.168.1.24", "[2001:db8::1]", "makespacelive.example"]) {
            assert!(!own.is_own(Some(host)), "{host}");
        }
        assert!(own.is_own(None), "an HTTP/1.0 request without Host");
    }

    #[test]
    fn every_probe_on_every_host_redirects_while_captive() {
        let own = own();
        for (path, _) in PROBE_PATHS {
            for host in FOREIGN_HOSTS.into_iter().chain(OWN_HOSTS) {
                let reply = intercept(path, own.is_own(Some(host)), true).expect("answered");
                assert_eq!((reply.code, reply.location.as_deref()), (302, Some("http://10.42.0.1/")), "{path} {host}");
                assert!(reply.body.contains("http://10.42.0.1/"), "{path} {host}: a body a person can follow");
            }
        }
    }

    #[test]
    fn every_probe_on_every_host_gets_its_success_when_not_captive() {
        let own = own();
        let expected = |path: &str| -> (u16, &str) {
            match path {
                "/generate_204" | "/gen_204" => (204, ""),
                "/hotspot-detect.html" | "/library/test/success.html" => {
                    (200, "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>")
                }
                "/connecttest.txt" => (200, "Microsoft Connect Test"),
                "/ncsi.txt" => (200, "Microsoft NCSI"),
                "/canonical.html" => (
                    200,
                    "<meta http-equiv=\"refresh\" content=\"0;url=https://support.mozilla.org/kb/captive-portal\"/>",
                ),
                "/success.txt" => (200, "success\n"),
                "/redirect" => (302, "<a href=\"/\">Set up the box</a>\n"),
                other => panic!("no expectation for {other}"),
            }
        };
        for (path, _) in PROBE_PATHS {
            for host in FOREIGN_HOSTS.into_iter().chain(OWN_HOSTS) {
                let reply = intercept(path, own.is_own(Some(host)), false).expect("answered");
                assert_eq!((reply.code, reply.body.as_str()), expected(path), "{path} {host}");
            }
        }
    }

    #[test]
    fn other_paths_redirect_only_on_foreign_hosts_while_captive() {
        let own = own();
        for host in FOREIGN_HOSTS {
            let reply = intercept("/", own.is_own(Some(host)), true).expect("redirected");
            assert_eq!(reply.location.as_deref(), Some("http://10.42.0.1/"), "{host}");
            assert!(intercept("/some/page", own.is_own(Some(host)), false).is_none(), "{host}");
        }
        for host in OWN_HOSTS {
            assert!(intercept("/", own.is_own(Some(host)), true).is_none(), "{host}");
            assert!(intercept("/api/status", own.is_own(Some(host)), true).is_none(), "{host}");
        }
    }

    #[test]
    fn captive_api_answers_on_any_host() {
        for (captive, own_host) in [(true, true), (true, false), (false, true), (false, false)] {
            let reply = intercept(CAPTIVE_API_PATH, own_host, captive).unwrap();
            assert_eq!(reply.content_type, "application/captive+json");
            let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
            assert_eq!(json, serde_json::json!({"captive": captive, "user-portal-url": "http://10.42.0.1/"}));
        }
    }
}
