//! The portal's HTML, rendered on the server: a plain form that works with JavaScript
//! off, its CSS and a few lines of script (the password show/hide toggle) inline, no
//! request to anywhere but the box. Pure; everything that was typed or scanned is
//! HTML-escaped on the way in, and no password or key is ever written back.

use std::fmt::Write;

use crate::network::{Band, Mode, NetworkStatus, ScanEntry, Security};

use super::form::{DEVICE_PASSWORD_MIN, Field, FieldError};
use super::presets::{self, PRESETS};

const STYLE: &str = include_str!("assets/style.css");
const TOGGLE: &str = include_str!("assets/toggle.js");

/// Where the box is found once it is online.
pub const LAN_URL: &str = "http://makespacelive.local/";

/// At most this many networks are listed (strongest first, as the scan sorts them).
pub const MAX_NETWORKS: usize = 40;

/// What the form shows again after a failure: the fields that are not secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefill {
    pub ssid: String,
    pub hidden_ssid: String,
    pub preset: String,
    pub url: String,
}

pub struct SetupPage<'a> {
    pub network: &'a NetworkStatus,
    pub prefill: &'a Prefill,
    pub errors: &'a [FieldError],
    pub key_saved: bool,
    pub password_set: bool,
    /// Why nothing was saved, when the box itself failed (a full disk, say).
    pub problem: Option<&'a str>,
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main>\
         <script>{TOGGLE}</script></body></html>",
        escape(title)
    )
}

/// The LAN pages' door: the device password, then back to `next` (a path on this box).
pub fn login_page(problem: Option<&str>, next: &str) -> String {
    let problem = problem.map(|p| format!("<p class=\"problem\" role=\"alert\">{}</p>", escape(p))).unwrap_or_default();
    let body = format!(
        "<h1>makespacelive</h1><p>Type the device password chosen when this box was set up.</p>{problem}\
         <form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"password\">Device password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\">Log in</button></form>\
         <p class=\"hint\">Forgot it? Put an empty file named <code>makespacelive-reset-password</code> on the \
         SD card's boot partition and start the box again: it forgets the password, and the setup page asks for a new one.</p>",
        escape(next)
    );
    document("makespacelive — log in", &body)
}

fn field_error(errors: &[FieldError], field: Field) -> String {
    errors
        .iter()
        .filter(|e| e.field == field)
        .map(|e| format!("<p class=\"err\" id=\"{}-err\">{}</p>", field.name(), escape(&e.message)))
        .collect()
}

/// A labelled input; `value` is escaped, secrets are rendered empty by their callers.
fn input(out: &mut String, errors: &[FieldError], field: Field, label: &str, kind: &str, value: &str, hint: &str) {
    let name = field.name();
    let described = if errors.iter().any(|e| e.field == field) {
        format!(" aria-describedby=\"{name}-err\"")
    } else {
        String::new()
    };
    let _ = write!(out, "<label for=\"{name}\">{label}</label>");
    let control = format!(
        "<input type=\"{kind}\" id=\"{name}\" name=\"{name}\" value=\"{}\" autocomplete=\"off\" \
         autocapitalize=\"none\" spellcheck=\"false\"{described}>",
        escape(value)
    );
    if kind == "password" {
        let _ = write!(
            out,
            "<div class=\"pw\">{control}<button type=\"button\" data-for=\"{name}\" hidden>Show</button></div>"
        );
    } else {
        out.push_str(&control);
    }
    if !hint.is_empty() {
        let _ = write!(out, "<p class=\"hint\">{hint}</p>");
    }
    out.push_str(&field_error(errors, field));
}

fn bars(signal: u8) -> String {
    let lit = usize::from(signal.min(100)).div_ceil(25).max(1);
    let glyphs = ['▂', '▄', '▆', '█'];
    let on: String = glyphs[..lit].iter().collect();
    let off: String = glyphs[lit..].iter().collect();
    format!("<span class=\"bars\" title=\"signal {signal}%\">{on}<i>{off}</i></span>")
}

fn network_item(entry: &ScanEntry, chosen: &str) -> String {
    let ssid = escape(&entry.ssid);
    let band = match entry.band {
        Band::Ghz2_4 => "2.4 GHz",
        Band::Ghz5 => "5 GHz",
    };
    let (security, usable) = match entry.security {
        Security::Open => ("open", true),
        Security::Wpa2 => ("🔒 WPA2", true),
        Security::Wpa3 => ("🔒 WPA3", true),
        Security::Enterprise => ("🔒 company login (802.1X): the box cannot join it", false),
    };
    let checked = if usable && entry.ssid == chosen { " checked" } else { "" };
    let disabled = if usable { "" } else { " disabled" };
    let class = if usable { "" } else { " class=\"off\"" };
    format!(
        "<li{class}><label><input type=\"radio\" name=\"ssid\" value=\"{ssid}\"{checked}{disabled}>\
         <span class=\"name\">{ssid}<small class=\"meta\">{} {security} · {band}</small></span></label></li>",
        bars(entry.signal)
    )
}

pub fn setup_page(page: &SetupPage) -> String {
    let SetupPage { network, prefill, errors, key_saved, password_set, problem } = *page;
    let mut out = String::from("<h1>Set up your streaming box</h1>");
    if let Some(failure) = &network.last_failure {
        let _ = write!(out, "<p class=\"failure\" role=\"alert\">{}</p>", escape(failure));
    }
    if let Some(problem) = problem {
        let _ = write!(out, "<p class=\"problem\" role=\"alert\">Nothing was saved: {}</p>", escape(problem));
    }
    if !errors.is_empty() {
        out.push_str(
            "<p class=\"problem\" role=\"alert\">Nothing was saved yet: please correct what is marked below.</p>",
        );
    }
    if let Some(notice) = &network.notice {
        let _ = write!(out, "<p class=\"notice\">{}</p>", escape(notice));
    }
    out.push_str("<form id=\"rescan\" method=\"post\" action=\"/rescan\"></form>");
    out.push_str("<form method=\"post\" action=\"/setup\">");
    if network.mode == Mode::Unmanaged {
        out.push_str("<fieldset><legend>1. Network</legend>");
        out.push_str("<p class=\"hint\">The network is managed elsewhere: this box sets up no Wi-Fi.</p>");
        for field in [Field::Ssid, Field::HiddenSsid, Field::WifiPassword] {
            out.push_str(&field_error(errors, field));
        }
    } else {
        out.push_str("<fieldset><legend>1. The venue's Wi-Fi</legend>");
        wifi_fields(&mut out, network, prefill, errors);
    }
    out.push_str("</fieldset><fieldset><legend>2. Where to stream</legend>");
    out.push_str("<label for=\"preset\">Service</label><select id=\"preset\" name=\"preset\">");
    let chosen = presets::by_id(&prefill.preset).map_or(PRESETS[0].id, |p| p.id);
    for preset in &PRESETS {
        let selected = if preset.id == chosen { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{}\"{selected}>{}</option>", preset.id, escape(preset.label));
    }
    out.push_str("</select>");
    out.push_str(&field_error(errors, Field::Preset));
    input(
        &mut out,
        errors,
        Field::Url,
        "Server URL",
        "text",
        &prefill.url,
        "Only for “Another server”: rtmp://host/app or rtmps://host/app.",
    );
    let key_hint = if key_saved {
        "A key is saved: leave empty to keep it."
    } else {
        "From your service's live dashboard (“stream key”)."
    };
    input(&mut out, errors, Field::Key, "Stream key", "password", "", key_hint);
    out.push_str("</fieldset>");

    out.push_str("<fieldset><legend>3. Device password</legend>");
    if password_set {
        input(
            &mut out,
            errors,
            Field::CurrentPassword,
            "Device password (the one you chose for this box)",
            "password",
            "",
            "Needed to change the settings.",
        );
    }
    let new_label =
        if password_set { "New device password (empty: keep the one you chose)" } else { "Device password" };
    let rule = format!("Protects the box's settings pages. At least {DEVICE_PASSWORD_MIN} characters.");
    input(&mut out, errors, Field::DevicePassword, new_label, "password", "", &rule);
    input(&mut out, errors, Field::DevicePasswordConfirm, "The same again", "password", "", "");
    out.push_str("</fieldset>");

    let go = if network.mode == Mode::Unmanaged { "Save and stream" } else { "Connect and stream" };
    let _ = write!(
        out,
        "<p class=\"where\">Once online, the box is at <b>{LAN_URL}</b> on the venue's network.</p>\
         <p><button type=\"submit\" class=\"go\">{go}</button></p></form>"
    );
    document("Set up makespacelive", &out)
}

fn wifi_fields(out: &mut String, network: &NetworkStatus, prefill: &Prefill, errors: &[FieldError]) {
    if network.networks.is_empty() {
        out.push_str("<p class=\"hint\">No networks found yet.</p>");
    } else {
        out.push_str("<ul class=\"nets\">");
        for entry in network.networks.iter().take(MAX_NETWORKS) {
            out.push_str(&network_item(entry, &prefill.ssid));
        }
        out.push_str("</ul>");
    }
    out.push_str(&field_error(errors, Field::Ssid));
    out.push_str("<p><button type=\"submit\" form=\"rescan\">Rescan</button></p>");
    input(out, errors, Field::HiddenSsid, "Or a hidden network's name", "text", &prefill.hidden_ssid, "");
    input(out, errors, Field::WifiPassword, "Wi-Fi password", "password", "", "Leave empty for an open network.");
}

/// The answer to a good submit when the network is managed elsewhere.
pub fn saved_page() -> String {
    document(
        "Saved",
        &format!(
            "<h1>Saved</h1><p>The settings are saved and the stream starts in a moment.</p>\
             <p>The box is at <a href=\"{LAN_URL}\">{LAN_URL}</a>.</p>"
        ),
    )
}

/// The answer to a good submit, before the box leaves its access point.
pub fn connecting_page(ssid: &str, access_point: &str) -> String {
    let ssid = escape(ssid);
    let ap = escape(access_point);
    document(
        "Connecting…",
        &format!(
            "<h1>Connecting to “{ssid}”…</h1>\
             <p>The settings are saved. Your phone will now leave “{ap}”.</p>\
             <p>If the box cannot join “{ssid}”, “{ap}” comes back within a minute: join it again \
             and this page tells you why.</p>\
             <p>When it works, the stream starts, and the box is at \
             <a href=\"{LAN_URL}\">{LAN_URL}</a> on “{ssid}”.</p>"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Mode;

    fn scan(n: usize) -> Vec<ScanEntry> {
        let security = [Security::Open, Security::Wpa2, Security::Wpa3, Security::Enterprise];
        (0..n)
            .map(|i| ScanEntry {
                ssid: format!("{i:02}-<\"&'>{}", "ß".repeat(12)),
                signal: u8::try_from(100 - i.min(50) * 2).unwrap(),
                security: security[i % 4],
                band: if i % 2 == 0 { Band::Ghz2_4 } else { Band::Ghz5 },
            })
            .collect()
    }

    fn all_errors() -> Vec<FieldError> {
        Field::ALL.iter().map(|&field| FieldError { field, message: format!("bad {} <x>", field.name()) }).collect()
    }

    fn heaviest() -> String {
        let network = NetworkStatus {
            mode: Mode::AccessPoint,
            last_failure: Some("The password for “Venue” was not accepted.".into()),
            notice: Some("The access point closed for a few seconds to scan.".into()),
            networks: scan(60),
            ..Default::default()
        };
        let prefill = Prefill {
            ssid: scan(2)[1].ssid.clone(),
            hidden_ssid: "h".repeat(32),
            preset: "custom".into(),
            url: "u".repeat(200),
        };
        let errors = all_errors();
        setup_page(&SetupPage {
            network: &network,
            prefill: &prefill,
            errors: &errors,
            key_saved: true,
            password_set: true,
            problem: Some("disk full"),
        })
    }

    #[test]
    fn the_page_weighs_at_most_30_kb_with_everything_on_it() {
        let page = heaviest();
        assert!(page.len() <= 30 * 1024, "{} bytes", page.len());
        assert!(page.contains(&format!("{:02}-", MAX_NETWORKS - 1)), "{MAX_NETWORKS} networks listed");
        assert!(!page.contains(&format!("{MAX_NETWORKS:02}-")), "no more than {MAX_NETWORKS}");
    }

    #[test]
    fn nothing_on_the_page_leaves_the_box() {
        for page in [heaviest(), connecting_page("Venue", "Wifi Connect"), saved_page()] {
            let mut rest = page.as_str();
            while let Some(at) = rest.find("http") {
                rest = &rest[at..];
                assert!(rest.starts_with(LAN_URL), "external reference: {}", &rest[..rest.len().min(60)]);
                rest = &rest[4..];
            }
            for loader in ["src=", "<link", "@import", "url(", "srcset", "<iframe", "//"] {
                let bare = page.replace(LAN_URL, "").replace("rtmp://", "").replace("rtmps://", "");
                assert!(!bare.contains(loader), "{loader} in the page");
            }
        }
    }

    #[test]
    fn everything_typed_or_scanned_is_escaped() {
        let page = heaviest();
        assert!(!page.contains("<\"&'>"), "raw scan text");
        assert!(page.contains("00-&lt;&quot;&amp;&#39;&gt;"));
        assert!(!page.contains("<x>"), "raw error text");
        assert!(page.contains("bad key &lt;x&gt;"));
    }

    #[test]
    fn the_form_keeps_what_is_not_secret_and_says_what_is_saved() {
        let page = heaviest();
        assert!(page.contains("value=\"01-&lt;&quot;&amp;&#39;&gt;ßßßßßßßßßßßß\" checked>"), "the chosen network");
        assert!(page.contains("<option value=\"custom\" selected>"));
        assert!(page.contains(&"u".repeat(200)));
        assert!(page.contains("A key is saved"));
        assert!(page.contains("Device password (the one you chose for this box)"));
        assert!(!page.contains("set up already") && !page.contains("Current"), "no wording of a stranger's box");
        assert!(page.contains("The password for “Venue” was not accepted."));
        assert!(page.contains("disabled><span class=\"name\">03-"), "enterprise networks cannot be picked");
        assert!(page.contains("http://makespacelive.local/"));
        for field in Field::ALL {
            assert!(page.contains(&format!("name=\"{}\"", field.name())), "{field:?}");
        }
        for password in ["wifi_password", "key", "device_password", "device_password_confirm", "current_password"] {
            assert!(page.contains(&format!("name=\"{password}\" value=\"\"")), "{password} is never filled in");
        }
    }

    #[test]
    fn a_fresh_box_asks_for_a_new_password_only() {
        let network = NetworkStatus { mode: Mode::AccessPoint, ..Default::default() };
        let page = setup_page(&SetupPage {
            network: &network,
            prefill: &Prefill::default(),
            errors: &[],
            key_saved: false,
            password_set: false,
            problem: None,
        });
        assert!(!page.contains("current_password"));
        assert!(page.contains("No networks found yet."));
        assert!(page.contains("<option value=\"youtube\" selected>"));
        assert!(!page.contains("role=\"alert\""));
    }

    #[test]
    fn a_box_whose_network_is_managed_elsewhere_asks_for_no_wifi() {
        let network = NetworkStatus { mode: Mode::Unmanaged, networks: scan(3), ..Default::default() };
        let errors = all_errors();
        let page = setup_page(&SetupPage {
            network: &network,
            prefill: &Prefill::default(),
            errors: &errors,
            key_saved: false,
            password_set: false,
            problem: None,
        });
        assert!(page.contains("The network is managed elsewhere"));
        for wifi in [Field::Ssid, Field::HiddenSsid, Field::WifiPassword] {
            assert!(!page.contains(&format!("name=\"{}\"", wifi.name())), "{wifi:?} is not asked for");
            assert!(page.contains(&format!("bad {} &lt;x&gt;", wifi.name())), "{wifi:?}'s error is still shown");
        }
        assert!(!page.contains("No networks found") && !page.contains("Rescan"));
        assert!(page.contains("name=\"key\"") && page.contains("name=\"device_password\""));
        assert!(page.contains(">Save and stream</button>"));
    }

    #[test]
    fn signal_bars() {
        assert!(bars(0).contains("▂<i>▄▆█</i>"));
        assert!(bars(26).contains("▂▄<i>▆█</i>"));
        assert!(bars(100).contains("▂▄▆█<i></i>"));
    }
}
