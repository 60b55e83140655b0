//! The HTTP side (tiny_http, `WORKERS` handler threads sharing one `Portal`): the captive
//! portal that sets the box up from a phone, and the JSON API.
//!
//! Invariants: every answer carries `Cache-Control: no-store`; the OS probes and the
//! RFC 8908 API are answered on any `Host`, and while the box is captive (unconfigured,
//! or on its own access point) every other page under a foreign `Host` redirects to the
//! portal; a setup is saved whole or not at all, and saved before the box leaves its
//! access point; passwords and keys never appear in a response or the log; a request's
//! body is read, and a password hashed, without the portal's lock (one slow client holds
//! one handler thread, never the others), and no connection waits on a client longer than
//! `IO_TIMEOUT`.
//! API boundary: `serve` (main.rs); deciding lives in `probes`, `form`, `page` (pure).

mod device_password;
mod form;
mod page;
mod presets;
mod preview;
mod probes;

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

use crate::config::{self, Config, Destination};
use crate::media::preview::Preview;
use crate::network::{Mode, Network, NetworkStatus, ScanEntry, WifiRequest};
use crate::secrets::Secret;
use crate::status::SharedStatus;

use form::{Context, Field, FieldError, RawForm, Setup};
use page::{Prefill, SetupPage};
use probes::{OwnHost, Reply};

/// The largest setup form accepted; checked on `Content-Length` before reading, and
/// while reading (a chunked body declares none).
pub const BODY_LIMIT: usize = 16 * 1024;

/// Threads answering requests; a client that stalls mid-request holds one of them.
const WORKERS: usize = 4;

/// How long any read or write on a connection may wait on its client (a body that does
/// not come, an answer not taken), after which the connection is closed.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the settings are read from and saved to, as `main` loads them.
pub struct SettingsFiles {
    pub defaults: PathBuf,
    pub data_dir: PathBuf,
    pub env: fn(&str) -> Option<String>,
}

/// Starts the `WORKERS` handler threads. `config` is the settings in force at start; the portal keeps
/// its own copy up to date with what it saves.
pub fn serve(
    listen: SocketAddr,
    status: SharedStatus,
    preview: Arc<Preview>,
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
    // Set on each accepted connection (vendored tiny_http): on the listener, SO_RCVTIMEO
    // would also time out `accept`, and tiny_http stops accepting on its first error.
    let server = tiny_http::Server::from_listener_with_timeout(listener, None, Some(IO_TIMEOUT))
        .map_err(|e| cannot_listen(&e))?;
    tracing::info!("web: listening on http://{listen}/ (portal) and /api/status");
    let server = Arc::new(server);
    let state = Mutex::new(State { config, prefill: Prefill::default() });
    let portal = Arc::new(Portal { status, preview, network, files, state });
    for n in 0..WORKERS {
        let (server, portal) = (server.clone(), portal.clone());
        std::thread::Builder::new()
            .name(format!("web-{n}"))
            .spawn(move || {
                while let Ok(mut request) = server.recv() {
                    let (response, connect) = portal.handle(&mut request);
                    let _ = request.respond(response);
                    // Only now, with the "Connecting…" page on its way: the access point may go.
                    if let Some(wifi) = connect {
                        portal.network.connect(wifi);
                    }
                }
            })
            .map_err(|e| format!("web: cannot start its threads: {e}"))?;
    }
    Ok(())
}

type Response = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

struct Portal {
    status: SharedStatus,
    preview: Arc<Preview>,
    network: Network,
    files: SettingsFiles,
    state: Mutex<State>,
}

/// What the handler threads share and change; locked only briefly (never while a body
/// is read or a password hashed).
struct State {
    /// The settings as last loaded or saved here.
    config: Config,
    /// The non-secret fields of the last setup submitted, shown again after a failure.
    prefill: Prefill,
}

/// Unconfigured (no enabled destination, or no device password) or on its own access point.
fn is_captive(config: &Config, mode: Mode) -> bool {
    let configured = config.destinations.iter().any(|d| d.enabled) && !config.web.password_hash.is_empty();
    !configured || mode == Mode::AccessPoint
}

impl Portal {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("portal lock")
    }

    /// The answer, and the network a saved setup asks for (to join once it is sent).
    fn handle(&self, request: &mut tiny_http::Request) -> (Response, Option<WifiRequest>) {
        let path = request.url().split('?').next().unwrap_or_default().to_string();
        let network = self.network.status();
        let captive = is_captive(&self.state().config, network.mode);
        let own = own_host().is_own(header(request, "Host").as_deref());
        if let Some(reply) = probes::intercept(&path, own, captive) {
            return (from_reply(reply), None);
        }
        use tiny_http::Method::{Get, Head, Post};
        let response = match (request.method(), path.as_str()) {
            (Get | Head, "/") => html(200, self.state().setup_page(&network, &[], None)),
            (Post, "/setup") => return self.submit(request, &network),
            (Get | Head, "/setup" | "/rescan") => from_reply(probes::redirect_to("/")),
            (Post, "/rescan") => {
                self.network.rescan();
                see_other("/")
            }
            (Get | Head, "/api/status") => {
                let body = serde_json::to_vec_pretty(&*self.status.lock().expect("status lock")).unwrap_or_default();
                respond(200, "application/json", body)
            }
            // TODO(lead's skeleton): behind the login once the router has it.
            (Get | Head, "/api/preview.jpg") => preview::get(&self.preview),
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
            // The path is not repeated: a mistyped URL can hold a pasted key.
            _ => text(404, "no such page here; the setup page is /\n".to_string()),
        };
        (response, None)
    }

    fn submit(&self, request: &mut tiny_http::Request, network: &NetworkStatus) -> (Response, Option<WifiRequest>) {
        let media_type = header(request, "Content-Type").unwrap_or_default();
        let media_type = media_type.split(';').next().unwrap_or_default().trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            let why = format!("the setup form is sent as application/x-www-form-urlencoded, not {media_type:?}\n");
            return (text(415, why), None);
        }
        let body = match read_body(request) {
            Ok(body) => body,
            Err(response) => return (response, None),
        };
        let raw = match form::parse(&body) {
            Ok(raw) => raw,
            Err(e) => return (text(400, format!("{e}\n")), None),
        };
        let (key_saved, hash) = {
            let mut state = self.state();
            state.prefill = Prefill {
                ssid: raw.ssid.clone(),
                hidden_ssid: raw.hidden_ssid.clone(),
                preset: raw.preset.clone(),
                url: raw.url.clone(),
            };
            (state.key_saved(), state.config.web.password_hash.clone())
        };
        let context = Context {
            wifi: network.mode != Mode::Unmanaged,
            networks: &network.networks,
            key_saved,
            password_set: !hash.is_empty(),
        };
        let setup = match check(&raw, &context, &hash) {
            Ok(setup) => setup,
            Err(errors) => return (html(400, self.state().setup_page(network, &errors, None)), None),
        };
        // Hashed without the lock: argon2 takes about a second on a Pi Zero.
        let new_hash = match setup.new_password.as_ref().map(device_password::hash).transpose() {
            Ok(new_hash) => new_hash,
            Err(why) => return (self.state().not_saved(network, &why), None),
        };
        let mut state = self.state();
        if state.config.web.password_hash != hash {
            let why = "the device password was changed from another phone meanwhile; type it and send again";
            return (html(409, state.setup_page(network, &[], Some(why))), None);
        }
        match save(&self.files, &setup, new_hash) {
            Ok(config) => {
                state.config = config;
                crate::reload::request();
                let page = match &setup.wifi {
                    Some(wifi) => {
                        tracing::info!("web: settings saved from the portal; connecting to {:?}", wifi.ssid);
                        page::connecting_page(&wifi.ssid, &state.config.network.ap_ssid)
                    }
                    None => {
                        tracing::info!("web: settings saved from the portal (the network is managed elsewhere)");
                        page::saved_page()
                    }
                };
                (html(200, page), setup.wifi)
            }
            Err(why) => (state.not_saved(network, &why), None),
        }
    }
}

impl State {
    fn key_saved(&self) -> bool {
        self.saved_destination().is_some_and(|d| !d.key.is_empty())
    }

    fn not_saved(&self, network: &NetworkStatus, why: &str) -> Response {
        tracing::error!("web: the portal's settings were not saved: {why}");
        html(500, self.setup_page(network, &[], Some(why)))
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
            key_saved: self.key_saved(),
            password_set: !self.config.web.password_hash.is_empty(),
            problem,
        })
    }
}

/// The form's own rules, then the device password typed against `hash` (the one set).
fn check(raw: &RawForm, context: &Context, hash: &Secret) -> Result<Setup, Vec<FieldError>> {
    let setup = form::validate(raw, context)?;
    match &setup.current_password {
        Some(typed) if !device_password::verify(typed, hash) => Err(vec![FieldError {
            field: Field::CurrentPassword,
            message: "this is not the device password chosen for this box".into(),
        }]),
        _ => Ok(setup),
    }
}

/// Applies the setup (and the new password's hash, if any) to the user's settings,
/// validated whole and saved atomically; returns the settings now in force.
fn save(files: &SettingsFiles, setup: &Setup, new_hash: Option<Secret>) -> Result<Config, String> {
    config::save_change(&files.defaults, &files.data_dir, |config| {
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
        if let Some(hash) = new_hash {
            config.web.password_hash = hash;
        }
        Ok(())
    })?;
    Ok(config::load(&files.defaults, Some(&files.data_dir), files.env)?.config)
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
    request.as_reader().take(BODY_LIMIT as u64 + 1).read_to_end(&mut body).map_err(|e| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            let waited = IO_TIMEOUT.as_secs();
            text(408, format!("the form did not arrive within {waited} s; nothing was saved\n"))
        }
        _ => text(400, format!("the form could not be read: {e}\n")),
    })?;
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
