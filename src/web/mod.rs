//! The HTTP side (tiny_http, one thread): the captive portal that sets the box up from a
//! phone, and the JSON API.
//!
//! Invariants: every answer carries `Cache-Control: no-store`; the OS probes and the
//! RFC 8908 API are answered on any `Host`, and while the box is captive (unconfigured,
//! or on its own access point) every other page under a foreign `Host` redirects to the
//! portal; a setup is saved whole or not at all, and saved before the box leaves its
//! access point; passwords and keys never appear in a response or the log.
//! API boundary: `serve` (main.rs); deciding lives in `probes`, `form`, `page` (pure).

mod device_password;
mod form;
mod page;
mod presets;
mod probes;

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Serialize;

use crate::config::{self, Config, Destination};
use crate::network::{Mode, Network, NetworkStatus, ScanEntry, WifiRequest};
use crate::status::SharedStatus;

use form::{Context, Field, FieldError, RawForm, Setup};
use page::{Prefill, SetupPage};
use probes::{OwnHost, Reply};

/// The largest setup form accepted; checked on `Content-Length` before reading, and
/// while reading (a chunked body declares none).
pub const BODY_LIMIT: usize = 16 * 1024;

/// Where the settings are read from and saved to, as `main` loads them.
pub struct SettingsFiles {
    pub defaults: PathBuf,
    pub data_dir: PathBuf,
    pub env: fn(&str) -> Option<String>,
}

/// Starts the web thread. `config` is the settings in force at start; the portal keeps
/// its own copy up to date with what it saves.
pub fn serve(
    listen: SocketAddr,
    status: SharedStatus,
    network: Network,
    files: SettingsFiles,
    config: Config,
) -> Result<(), String> {
    let cannot_listen = |e: &dyn std::fmt::Display| format!("web: cannot listen on {listen}: {e}");
    let listener = std::net::TcpListener::bind(listen).map_err(|e| cannot_listen(&e))?;
    // tiny_http writes an answer's head and body apart: with Nagle's algorithm on, a
    // keep-alive client waited its delayed ACK (40 ms) for every answer over 1 KB.
    // Accepted connections inherit TCP_NODELAY from the listener (Linux).
    nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::TcpNoDelay, &true)
        .map_err(|e| cannot_listen(&e))?;
    let server = tiny_http::Server::from_listener(listener, None).map_err(|e| cannot_listen(&e))?;
    tracing::info!("web: listening on http://{listen}/ (portal) and /api/status");
    let mut portal = Portal { status, network, files, config, prefill: Prefill::default(), connect: None };
    std::thread::Builder::new()
        .name("web".into())
        .spawn(move || {
            for mut request in server.incoming_requests() {
                let response = portal.handle(&mut request);
                let _ = request.respond(response);
                // Only now, with the "Connecting…" page on its way: the access point may go.
                if let Some(wifi) = portal.connect.take() {
                    portal.network.connect(wifi);
                }
            }
        })
        .map_err(|e| format!("web: cannot start its thread: {e}"))?;
    Ok(())
}

type Response = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

struct Portal {
    status: SharedStatus,
    network: Network,
    files: SettingsFiles,
    /// The settings as last loaded or saved here.
    config: Config,
    /// The non-secret fields of the last setup submitted, shown again after a failure.
    prefill: Prefill,
    /// A saved setup's network, handed to `network` once the answer is sent.
    connect: Option<WifiRequest>,
}

/// Unconfigured (no enabled destination, or no device password) or on its own access point.
fn is_captive(config: &Config, mode: Mode) -> bool {
    let configured = config.destinations.iter().any(|d| d.enabled) && !config.web.password_hash.is_empty();
    !configured || mode == Mode::AccessPoint
}

impl Portal {
    fn handle(&mut self, request: &mut tiny_http::Request) -> Response {
        let path = request.url().split('?').next().unwrap_or_default().to_string();
        let network = self.network.status();
        let captive = is_captive(&self.config, network.mode);
        let own = own_host().is_own(header(request, "Host").as_deref());
        if let Some(reply) = probes::intercept(&path, own, captive) {
            return from_reply(reply);
        }
        use tiny_http::Method::{Get, Head, Post};
        match (request.method(), path.as_str()) {
            (Get | Head, "/") => html(200, self.setup_page(&network, &[], None)),
            (Post, "/setup") => self.submit(request, &network),
            (Get | Head, "/setup" | "/rescan") => from_reply(probes::redirect_to("/")),
            (Post, "/rescan") => {
                self.network.rescan();
                see_other("/")
            }
            (Get | Head, "/api/status") => {
                let body = serde_json::to_vec_pretty(&*self.status.lock().expect("status lock")).unwrap_or_default();
                respond(200, "application/json", body)
            }
            (Get | Head, "/api/portal") => json(&PortalJson {
                captive,
                mode: network.mode,
                networks: &network.networks,
                last_failure: network.last_failure.as_deref(),
                notice: network.notice.as_deref(),
            }),
            (_, "/" | "/setup" | "/rescan" | "/api/status" | "/api/portal") => {
                text(405, format!("{} is not allowed on {path}\n", request.method()))
            }
            _ => text(404, format!("{path} is not here; the setup page is /\n")),
        }
    }

    fn saved_destination(&self) -> Option<&Destination> {
        self.config.destinations.first()
    }

    fn setup_page(&self, network: &NetworkStatus, errors: &[FieldError], problem: Option<&str>) -> String {
        let mut prefill = self.prefill.clone();
        if let Some(saved) = self.saved_destination().filter(|_| prefill.preset.is_empty()) {
            let preset = presets::for_url(&saved.url);
            prefill.preset = preset.id.into();
            if preset.url.is_none() {
                prefill.url = saved.url.clone();
            }
        }
        page::setup_page(&SetupPage {
            network,
            prefill: &prefill,
            errors,
            key_saved: self.saved_destination().is_some_and(|d| !d.key.is_empty()),
            password_set: !self.config.web.password_hash.is_empty(),
            problem,
        })
    }

    fn submit(&mut self, request: &mut tiny_http::Request, network: &NetworkStatus) -> Response {
        let media_type = header(request, "Content-Type").unwrap_or_default();
        let media_type = media_type.split(';').next().unwrap_or_default().trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return text(
                415,
                format!("the setup form is sent as application/x-www-form-urlencoded, not {media_type:?}\n"),
            );
        }
        let body = match read_body(request) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let raw = match form::parse(&body) {
            Ok(raw) => raw,
            Err(e) => return text(400, format!("{e}\n")),
        };
        self.prefill = Prefill {
            ssid: raw.ssid.clone(),
            hidden_ssid: raw.hidden_ssid.clone(),
            preset: raw.preset.clone(),
            url: raw.url.clone(),
        };
        let context = Context {
            networks: &network.networks,
            key_saved: self.saved_destination().is_some_and(|d| !d.key.is_empty()),
            password_set: !self.config.web.password_hash.is_empty(),
        };
        let setup = match self.check(&raw, &context) {
            Ok(setup) => setup,
            Err(errors) => return html(400, self.setup_page(network, &errors, None)),
        };
        match self.save(&setup) {
            Ok(config) => {
                self.config = config;
                crate::reload::request();
                tracing::info!("web: settings saved from the portal; connecting to {:?}", setup.wifi.ssid);
                let page = page::connecting_page(&setup.wifi.ssid, &self.config.network.ap_ssid);
                self.connect = Some(setup.wifi);
                html(200, page)
            }
            Err(why) => {
                tracing::error!("web: the portal's settings were not saved: {why}");
                html(500, self.setup_page(network, &[], Some(&why)))
            }
        }
    }

    /// The form's own rules, then the current device password against its hash.
    fn check(&self, raw: &RawForm, context: &Context) -> Result<Setup, Vec<FieldError>> {
        let setup = form::validate(raw, context)?;
        match &setup.current_password {
            Some(typed) if !device_password::verify(typed, &self.config.web.password_hash) => Err(vec![FieldError {
                field: Field::CurrentPassword,
                message: "this is not the box's device password".into(),
            }]),
            _ => Ok(setup),
        }
    }

    /// Loads the settings afresh, applies the setup, validates and saves them atomically.
    fn save(&self, setup: &Setup) -> Result<Config, String> {
        let files = &self.files;
        let mut config = config::load(&files.defaults, Some(&files.data_dir), files.env)?.config;
        let key = match &setup.key {
            Some(key) => key.clone(),
            None => config.destinations.first().map(|d| d.key.clone()).unwrap_or_default(),
        };
        let name = config.destinations.first().map_or_else(|| setup.preset.id.to_string(), |d| d.name.clone());
        let destination = Destination { name, url: setup.url.clone(), key, enabled: true };
        match config.destinations.first_mut() {
            Some(first) => *first = destination,
            None => config.destinations.push(destination),
        }
        if let Some(password) = &setup.new_password {
            config.web.password_hash = device_password::hash(password)?;
        }
        config.validate().map_err(|problems| problems.join("; "))?;
        config::save(&files.data_dir, &config)?;
        Ok(config)
    }
}

#[derive(Serialize)]
struct PortalJson<'a> {
    captive: bool,
    mode: Mode,
    networks: &'a [ScanEntry],
    last_failure: Option<&'a str>,
    notice: Option<&'a str>,
}

/// The body, refused with 413 when it is declared or found larger than `BODY_LIMIT`.
fn read_body(request: &mut tiny_http::Request) -> Result<Vec<u8>, Response> {
    let too_large = || text(413, format!("the form is larger than {BODY_LIMIT} bytes; nothing was saved\n"));
    if request.body_length().is_some_and(|declared| declared > BODY_LIMIT) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(BODY_LIMIT as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| text(400, format!("the form could not be read: {e}\n")))?;
    if body.len() > BODY_LIMIT { Err(too_large()) } else { Ok(body) }
}

fn header(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_string())
}

/// The box's names and interface addresses, as they are now (they change with the network).
fn own_host() -> OwnHost {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let addresses = nix::ifaddrs::getifaddrs()
        .map(|all| {
            all.filter_map(|interface| {
                let address = interface.address?;
                address
                    .as_sockaddr_in()
                    .map(|v4| IpAddr::V4(v4.ip()))
                    .or_else(|| address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
            })
            .collect()
        })
        .unwrap_or_default();
    OwnHost::new(&hostname, addresses)
}

fn respond(code: u16, content_type: &str, body: Vec<u8>) -> Response {
    let header = |name: &str, value: &str| tiny_http::Header::from_bytes(name, value).expect("valid header");
    tiny_http::Response::from_data(body)
        .with_status_code(code)
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-store"))
        // Text answers echo the path asked for: never let a browser take them for HTML.
        .with_header(header("X-Content-Type-Options", "nosniff"))
}

fn from_reply(reply: Reply) -> Response {
    let response = respond(reply.code, reply.content_type, reply.body.into_bytes());
    match reply.location {
        Some(location) => response
            .with_header(tiny_http::Header::from_bytes("Location", location).expect("a URL is a valid header value")),
        None => response,
    }
}

fn see_other(location: &str) -> Response {
    let mut reply = probes::redirect_to(location);
    reply.code = 303;
    from_reply(reply)
}

fn html(code: u16, body: String) -> Response {
    respond(code, "text/html; charset=utf-8", body.into_bytes())
}

fn text(code: u16, body: String) -> Response {
    respond(code, "text/plain; charset=utf-8", body.into_bytes())
}

fn json(value: &impl Serialize) -> Response {
    respond(200, "application/json", serde_json::to_vec_pretty(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    #[test]
    fn captive_until_configured_and_whenever_on_the_access_point() {
        let mut config = Config::default();
        assert!(is_captive(&config, Mode::Online), "nothing configured");
        config.destinations.push(Destination {
            name: "yt".into(),
            url: "rtmp://a.rtmp.youtube.com/live2".into(),
            key: Secret::new("k"),
            enabled: true,
        });
        assert!(is_captive(&config, Mode::Online), "no device password");
        config.web.password_hash = Secret::new("$argon2id$…");
        assert!(!is_captive(&config, Mode::Online));
        assert!(!is_captive(&config, Mode::Unmanaged));
        assert!(is_captive(&config, Mode::AccessPoint));
        config.destinations[0].enabled = false;
        assert!(is_captive(&config, Mode::Online), "no enabled destination");
    }
}
