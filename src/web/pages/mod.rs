//! The LAN pages behind the device password, rendered on the server from typed data: the
//! shared layout (nav, box name, log out), one function per page, and their one script
//! and style sheet, embedded and inline (no request leaves the box).
//!
//! Invariants: everything typed, scanned or reported is HTML-escaped on the way in; no key,
//! passphrase or password is ever written into a page (a saved one is only said to be
//! saved); each page reads without JavaScript. With it, `lan.js` refreshes the elements
//! marked `data-s` (a path into `/api/status`, formatted as `data-f` says, the same way
//! `Show` formats them here) and sends the forms marked `data-action` as JSON.
//! API boundary: the page functions and their view structs; the router calls them.

mod destinations;
mod logs;
mod status;
mod update;
mod video;
mod wifi;

use std::fmt::Write;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub use destinations::destinations_page;
pub use logs::{LOG_LINES, logs_page};
pub use status::status_page;
pub use update::{UpdatePage, update_page};
pub use video::{VideoPage, video_page};
pub use wifi::wifi_page;

use super::page::{TOGGLE, escape, frame};

const LAN_CSS: &str = include_str!("../assets/lan.css");
const LAN_JS: &str = include_str!("../assets/lan.js");

/// What every page shows around its content.
pub struct Layout<'a> {
    /// The box's name (its host name).
    pub box_name: &'a str,
    /// The session's CSRF token, for the script and the log-out form.
    pub csrf: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Status,
    Destinations,
    Video,
    Wifi,
    Update,
    Logs,
}

impl Tab {
    pub const ALL: [Tab; 6] = [Tab::Status, Tab::Destinations, Tab::Video, Tab::Wifi, Tab::Update, Tab::Logs];

    pub fn path(self) -> &'static str {
        match self {
            Tab::Status => "/",
            Tab::Destinations => "/destinations",
            Tab::Video => "/video",
            Tab::Wifi => "/wifi",
            Tab::Update => "/update",
            Tab::Logs => "/logs",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Tab::Status => "Status",
            Tab::Destinations => "Destinations",
            Tab::Video => "Video & audio",
            Tab::Wifi => "Wi-Fi",
            Tab::Update => "Update",
            Tab::Logs => "Logs",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Tab::Status => "status",
            Tab::Destinations => "destinations",
            Tab::Video => "video",
            Tab::Wifi => "wifi",
            Tab::Update => "update",
            Tab::Logs => "logs",
        }
    }
}

/// The page around `content`: the bar with the box's name and log out, the nav, a notice
/// for when the box stops answering the script, and the script. `main_attrs` go on `<main>`.
fn layout(layout: &Layout, tab: Tab, main_attrs: &str, content: &str) -> String {
    let name = escape(layout.box_name);
    let csrf = escape(layout.csrf);
    let mut body = format!(
        "<header class=\"top\"><div class=\"bar\"><b class=\"box\">{name}</b>\
         <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">Log out</button></form></div><nav>"
    );
    for each in Tab::ALL {
        let current = if each == tab { " aria-current=\"page\"" } else { "" };
        let _ = write!(body, "<a href=\"{}\"{current}>{}</a>", each.path(), each.label());
    }
    let _ = write!(
        body,
        "</nav></header><main class=\"wide\" data-page=\"{}\"{main_attrs}>\
         <p class=\"problem\" id=\"stale\" role=\"alert\" hidden></p><p class=\"notice\" id=\"flash\" hidden></p>\
         {content}</main><script>{TOGGLE}{LAN_JS}</script>",
        tab.id()
    );
    let head = format!("<meta name=\"csrf\" content=\"{csrf}\">");
    frame(&format!("{} · {}", tab.label(), layout.box_name), &head, LAN_CSS, &body)
}

/// How a value is written, here and by `lan.js` (the `data-f` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    Text,
    /// Seconds: "45 s", "12 min 5 s", "3 h 4 min", "2 d 5 h".
    Duration,
    /// Bytes, decimal: "812 B", "1.2 MB".
    Bytes,
    Kbps,
    Percent,
    /// A state word in a coloured badge.
    Badge,
}

impl Show {
    fn name(self) -> &'static str {
        match self {
            Show::Text => "text",
            Show::Duration => "dur",
            Show::Bytes => "bytes",
            Show::Kbps => "kbps",
            Show::Percent => "pct",
            Show::Badge => "badge",
        }
    }
}

/// A value as it is read from `/api/status`: text or a number, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value<'a> {
    None,
    Text(&'a str),
    Number(u64),
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(text: Option<&'a str>) -> Self {
        text.map_or(Value::None, Value::Text)
    }
}

impl From<Option<u64>> for Value<'_> {
    fn from(number: Option<u64>) -> Self {
        number.map_or(Value::None, Value::Number)
    }
}

fn format(show: Show, value: Value) -> String {
    let number = match value {
        Value::None => return "—".into(),
        Value::Text("") => return "—".into(),
        Value::Text(text) => return text.into(),
        Value::Number(n) => n,
    };
    match show {
        Show::Text | Show::Badge => number.to_string(),
        Show::Duration => duration(number),
        Show::Bytes => bytes(number),
        Show::Kbps => format!("{number} kbit/s"),
        Show::Percent => format!("{number} %"),
    }
}

fn duration(s: u64) -> String {
    let (m, h) = (s / 60, s / 3600);
    if s < 60 {
        format!("{s} s")
    } else if m < 60 {
        format!("{m} min {} s", s % 60)
    } else if h < 48 {
        format!("{h} h {} min", m % 60)
    } else {
        format!("{} d {} h", h / 24, h % 24)
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A value `lan.js` keeps up to date from `/api/status` at `path` (dots between keys and
/// array indexes).
fn bound(path: &str, show: Show, value: Value) -> String {
    let text = escape(&format(show, value));
    let f = show.name();
    match (show, value) {
        (Show::Badge, Value::Text(state)) => {
            format!("<span class=\"badge b-{}\" data-s=\"{path}\" data-f=\"{f}\">{text}</span>", escape(state))
        }
        _ => format!("<span data-s=\"{path}\" data-f=\"{f}\">{text}</span>"),
    }
}

/// A `<dt>`/`<dd>` row of a `dl.kv`.
fn row(out: &mut String, label: &str, value: &str) {
    let _ = write!(out, "<dt>{label}</dt><dd>{value}</dd>");
}

/// A row of a text from `/api/status` at `path`, shown only while there is one.
fn row_if(out: &mut String, label: &str, path: &str, text: Option<&str>) {
    let hidden = if text.is_some_and(|t| !t.is_empty()) { "" } else { " hidden" };
    let value = bound(path, Show::Text, text.into());
    let _ = write!(out, "<dt data-if=\"{path}\"{hidden}>{label}</dt><dd data-if=\"{path}\"{hidden}>{value}</dd>");
}

/// A form `lan.js` sends as JSON (`method` to `action`), with its place for errors
/// that name no field.
fn api_form(method: &str, action: &str, attrs: &str, inner: &str) -> String {
    format!(
        "<form method=\"post\" data-method=\"{method}\" data-action=\"{}\"{attrs}>{inner}<div class=\"result\" aria-live=\"polite\"></div></form>",
        escape(action)
    )
}

/// A labelled text, number or password input; secrets are rendered empty by their callers.
fn input(id: &str, name: &str, label: &str, kind: &str, value: &str, extra: &str) -> String {
    let control = format!(
        "<input type=\"{kind}\" id=\"{id}\" name=\"{name}\" value=\"{}\" autocomplete=\"off\" \
         autocapitalize=\"none\" spellcheck=\"false\"{extra}>",
        escape(value)
    );
    let control = if kind == "password" {
        format!("<div class=\"pw\">{control}<button type=\"button\" data-for=\"{id}\" hidden>Show</button></div>")
    } else {
        control
    };
    format!("<label for=\"{id}\">{label}</label>{control}")
}

fn checkbox(id: &str, name: &str, label: &str, checked: bool) -> String {
    let checked = if checked { " checked" } else { "" };
    format!("<label class=\"check\"><input type=\"checkbox\" id=\"{id}\" name=\"{name}\"{checked}> {label}</label>")
}

/// Everything but the unreserved characters of RFC 3986.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A name as one segment of an API path.
fn path_segment(text: &str) -> String {
    utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    use crate::network::{Band, Mode, ScanEntry, Security};
    use crate::status::{BoxState, DestinationState, DestinationStatus, Status, UpdateState};

    pub const SECRET_KEY: &str = "sk-live-9f8e7d6c";

    /// More destinations than a Pi can upload at once (each is its own 1–6 Mbit/s stream);
    /// the pages cost about 1.3 KB per destination over a 21 KB base.
    pub const HEAVY_DESTINATIONS: usize = 16;

    /// A status with everything on it, every text typed by someone hostile.
    pub fn heavy_status() -> Status {
        let typed = "<\"&'>";
        let mut status = Status {
            state: BoxState::Streaming,
            summary: format!("streaming 1/{HEAVY_DESTINATIONS}: {typed}"),
            version: "0.3.0".into(),
            uptime_s: 3 * 86_400 + 5,
            pipeline: Some(format!("videotestsrc ! x264enc ! flvmux ! rtmp2sink location=rtmp://h/live/**** {typed}")),
            source_error: Some(format!("camera gone {typed}")),
            config_problems: vec![format!("video.width {typed}"); 5],
            ready: true,
            ..Default::default()
        };
        for i in 0..HEAVY_DESTINATIONS {
            status.destinations.push(DestinationStatus {
                name: format!("dest-{i:02}-{typed}{}", "x".repeat(30)),
                state: if i == 0 { DestinationState::Live } else { DestinationState::Backoff },
                url: format!("rtmps://live-api-s.facebook.com:443/rtmp/****/{typed}"),
                bytes_sent: 123_456_789_012,
                bitrate_kbps: 2480,
                reconnects: 17,
                last_error: Some(format!("Could not connect to the server: connection refused {typed}")),
                live_for_s: Some(7322),
                retry_in_s: Some(8.0),
                uplink_kbps: 2600,
                target_kbps: 2500,
                backlog_s: 0.25,
                gops_dropped: 123,
                too_slow: i == 1,
            });
        }
        status.network.mode = Mode::Online;
        status.network.ssid = Some(format!("Venue {typed}"));
        status.network.signal = Some(71);
        status.network.address = Some("192.168.1.23".into());
        status.network.last_failure = Some(typed.into());
        status.network.networks = (0..60)
            .map(|i| ScanEntry {
                ssid: format!("net-{i}-{typed}"),
                signal: 50,
                security: Security::Wpa2,
                band: Band::Ghz5,
            })
            .collect();
        status.update.state = UpdateState::Installing;
        status.update.version = Some("2026.11.1".into());
        status.update.slot = Some("A".into());
        status.update.progress = Some(42);
        status.update.message = Some(format!("Installing 2026.12.0 {typed}"));
        status.update.source = format!("hawkBit https://hawkbit.example.org {typed}");
        status.update.last_check = Some(1_700_000_000);
        status.update.reboot_needed = Some(format!("gpu_mem changed {typed}"));
        status
    }

    pub fn layout_for_tests() -> Layout<'static> {
        Layout { box_name: "box-<\"&'>", csrf: "csrf-token-1" }
    }

    /// The checks every page passes: its weight, no reference beyond the box, nothing raw
    /// of what was typed (`<\"&'>` is in every typed value of the tests), no secret.
    pub fn assert_a_good_page(page: &str) {
        assert!(page.len() <= 60 * 1024, "{} bytes", page.len());
        assert!(page.starts_with("<!doctype html>") && page.ends_with("</html>"));
        assert!(!page.contains("<\"&'>"), "raw typed text in the page");
        assert!(page.contains("&lt;&quot;&amp;&#39;&gt;"), "the typed text is there, escaped");
        assert!(!page.contains(SECRET_KEY), "a secret in the page");
        let bare = page.replace("rtmp://", "").replace("rtmps://", "");
        for loader in ["http:", "https:", "src=\"/", "<link", "@import", "url(", "srcset", "<iframe", "//"] {
            let allowed = loader == "src=\"/" && bare.contains("src=\"/api/preview.jpg\"");
            assert!(allowed || !bare.contains(loader), "{loader} in the page");
        }
        assert!(page.contains("<meta name=\"csrf\" content=\"csrf-token-1\">"));
        assert!(page.contains("<input type=\"hidden\" name=\"csrf\" value=\"csrf-token-1\">"), "log out sends it");
        assert!(page.contains("<b class=\"box\">box-&lt;&quot;&amp;&#39;&gt;</b>"));
        for tab in Tab::ALL {
            assert!(page.contains(&format!("<a href=\"{}\"", tab.path())), "{tab:?} in the nav");
        }
    }

    #[test]
    fn values_are_written_as_the_script_writes_them() {
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(725), "12 min 5 s");
        assert_eq!(duration(3 * 3600 + 4 * 60 + 9), "3 h 4 min");
        assert_eq!(duration(53 * 3600), "2 d 5 h");
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(1_250_000), "1.2 MB");
        assert_eq!(bytes(3_400_000_000), "3.4 GB");
        assert_eq!(format(Show::Kbps, Value::Number(2480)), "2480 kbit/s");
        assert_eq!(format(Show::Duration, Value::None), "—");
        assert_eq!(format(Show::Text, Value::Text("")), "—");
        assert_eq!(
            bound("destinations.0.state", Show::Badge, Value::Text("live")),
            "<span class=\"badge b-live\" data-s=\"destinations.0.state\" data-f=\"badge\">live</span>"
        );
    }

    #[test]
    fn names_in_api_paths_are_percent_encoded() {
        assert_eq!(path_segment("my stream/ü?"), "my%20stream%2F%C3%BC%3F");
        assert_eq!(path_segment("yt-1_a.b~"), "yt-1_a.b~");
    }

    #[test]
    fn the_current_tab_is_marked() {
        let page = layout(&layout_for_tests(), Tab::Wifi, "", "<p>x</p>");
        assert!(page.contains("<a href=\"/wifi\" aria-current=\"page\">Wi-Fi</a>"));
        assert_eq!(page.matches("aria-current=\"page\"").count(), 1);
        assert!(page.contains("<title>Wi-Fi · box-&lt;"));
    }
}
