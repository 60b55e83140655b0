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
//! `IO_TIMEOUT`. Against an attacker on the LAN or the open access point: a configured
//! box answers only its own names and addresses (421; the probes excepted), the portal's
//! posts only from its own page, every password check goes through `auth::Guesses`;
//! connections are capped (`MAX_CONNECTIONS`, `MAX_PER_CLIENT`), bodies arrive before a
//! handler takes the request, a panic fails its request and not its thread, and the
//! watchdog is fed only while the pages answer the box itself (`Alive`).
//! API boundary: `serve` (main.rs); deciding lives in `probes`, `form`, `page` (pure).

mod alive;
mod api;
mod auth;
mod device_password;
mod form;
mod http;
mod lan;
mod page;
mod pages;
mod presets;
mod preview;
mod probes;
mod route;
mod settings;
mod setup;
mod update;
mod wifi;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{self, Config, Destination, Loaded, SaveError, Settings};
use crate::media::preview::Preview;
use crate::network::{Mode, Network, NetworkStatus, ScanEntry, WifiRequest};
use crate::secrets::Secret;
use crate::state::Snapshot;
use crate::status::Board;

pub use alive::Alive;
use alive::{PROBE_EVERY, SILENT_LIMIT};
use api::ApiError;
use auth::{Admission, Asked, Guesses, Login, Sessions};
use form::{Context, Field, FieldError, Setup};
use http::{
    Response, client_ip, cookie_header, from_reply, header, html, path_name, percent_encode, query_value, read_body,
    refuse, respond, see_other, text,
};
use page::{Prefill, SetupPage};
use pages::Tab;
use probes::OwnHost;
use route::{Access, Route};
pub use update::UpdateSide;

/// The largest setup form accepted; checked on `Content-Length` before reading, and
/// while reading (a chunked body declares none).
pub const BODY_LIMIT: usize = 16 * 1024;

/// Threads answering requests. Bodies of forms and JSON arrive before a request reaches
/// one (vendored tiny_http reads them in the connection's thread), so a slow client holds
/// its connection, not one of these.
const WORKERS: usize = 4;

/// Connections open at once (each holds a thread and a file; the service may open 1024
/// files), and from one client (an IPv6 /64 counts as one): a browser opens six. The
/// box's own (loopback) are not counted.
const MAX_CONNECTIONS: usize = 64;
const MAX_PER_CLIENT: usize = 8;

/// Phones whose last setup form is kept to be shown again after a failure.
const PREFILL_MOST: usize = 16;

/// How long any read or write on a connection may wait on its client (a body that does
/// not come, an answer not taken), after which the connection is closed.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the `WORKERS` handler threads; they read the settings in force at every request
/// and save through `settings`. The answer tells whether the pages still answer.
pub fn serve(
    listen: SocketAddr,
    board: Board,
    network: Network,
    settings: Settings,
    update: UpdateSide,
    preview: Arc<Preview>,
) -> Result<Alive, String> {
    // Started from a thread of its own that first lowers its priority: tiny_http's accept
    // and connection threads and the handler threads are its children and inherit it.
    let starter = std::thread::Builder::new().name("web".into()).spawn(move || {
        yield_to_the_stream();
        start(listen, Portal::new(board, network, settings, update, preview))
    });
    starter
        .map_err(|e| format!("web: cannot start its threads: {e}"))?
        .join()
        .map_err(|_| "web: its starting thread failed with a bug".to_string())??;
    let own = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(Alive::probe(SocketAddr::new(own, listen.port()), PROBE_EVERY, SILENT_LIMIT))
}

/// The listener and the handler threads, from the thread that calls it (whose priority
/// they inherit).
fn start(listen: SocketAddr, portal: Portal) -> Result<(), String> {
    let cannot_listen = |e: &dyn std::fmt::Display| format!("web: cannot listen on {listen}: {e}");
    let listener = std::net::TcpListener::bind(listen).map_err(|e| cannot_listen(&e))?;
    // tiny_http writes an answer's head and body apart: with Nagle's algorithm on, a
    // keep-alive client waited its delayed ACK (40 ms) for every answer over 1 KB.
    // Accepted connections inherit TCP_NODELAY from the listener (Linux).
    nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::TcpNoDelay, &true)
        .map_err(|e| cannot_listen(&e))?;
    // Set on each accepted connection (vendored tiny_http): on the listener, SO_RCVTIMEO
    // would also time out `accept`, and tiny_http stops accepting on its first error.
    let limits =
        tiny_http::ConnectionLimits { total: MAX_CONNECTIONS, per_client: MAX_PER_CLIENT, client: auth::client_of };
    let server = tiny_http::Server::from_listener_with_timeout(listener, None, Some(IO_TIMEOUT), limits)
        .map_err(|e| cannot_listen(&e))?;
    tracing::info!("web: listening on http://{listen}/ (the setup page, the LAN pages and /api/…)");
    let server = Arc::new(server);
    let portal = Arc::new(portal);
    for n in 0..WORKERS {
        let (server, portal) = (server.clone(), portal.clone());
        std::thread::Builder::new()
            .name(format!("web-{n}"))
            .spawn(move || {
                while let Ok(mut request) = server.recv() {
                    // A bug a client finds panics this request, never the thread (four
                    // such requests once left no thread to answer).
                    let handled =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| portal.handle(&mut request)));
                    let (response, connect) = handled.unwrap_or_else(|_| {
                        tracing::error!(
                            "web: a request to {} failed with a bug (above); answered 500",
                            request.url().split('?').next().unwrap_or_default()
                        );
                        (text(500, "the box met a bug answering this; it is logged\n".to_string()), None)
                    });
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

/// How far the web's threads step back for the stream (nice, this thread and those it
/// starts: Linux keeps a nice value per thread). The stream is what the box is for: under
/// a crowd of browsers the encoder and the destinations get the CPU first, and the pages
/// still get a share (nice 10 weighs a tenth of nice 0), far more than the watchdog's probe
/// needs.
const WEB_NICE: i32 = 10;

fn yield_to_the_stream() {
    let tid = nix::unistd::gettid().as_raw();
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let set = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, WEB_NICE) };
    if set != 0 {
        tracing::warn!("web: cannot lower its priority: {}", std::io::Error::last_os_error());
    }
}

struct Portal {
    board: Board,
    network: Network,
    /// The settings in force (read at each request) and their one writer.
    settings: Settings,
    state: Mutex<State>,
    /// Locked only briefly, never while a password is verified.
    auth: Mutex<Auth>,
    /// Uploads, the update thread's handle, the boot configuration's files.
    update: UpdateSide,
    /// The live preview's pictures (the producer delivers them).
    preview: Arc<Preview>,
}

#[derive(Default)]
struct Auth {
    sessions: Sessions,
    guesses: Guesses,
}

/// What the handler threads share and change; locked only briefly (never while a body
/// is read or a password hashed).
struct State {
    /// The non-secret fields of the last setup each client submitted, shown again to that
    /// client after a failure (the last `PREFILL_MOST` clients).
    prefill: std::collections::VecDeque<(IpAddr, Prefill)>,
}

/// A new device password by the setup page's rule: at least `DEVICE_PASSWORD_MIN` characters.
pub fn check_new_password(password: &Secret) -> Result<(), String> {
    let chars = password.expose().chars().count();
    if chars < form::DEVICE_PASSWORD_MIN {
        return Err(format!("the password has {chars} characters; use at least {}", form::DEVICE_PASSWORD_MIN));
    }
    Ok(())
}

/// The hash to save for a new device password, once it passes `check_new_password`.
pub fn hash_new_password(password: &Secret) -> Result<Secret, String> {
    check_new_password(password)?;
    device_password::hash(password)
}

/// Unconfigured (no enabled destination, or no device password) or on its own access point.
fn is_captive(config: &Config, mode: Mode) -> bool {
    let configured = config.destinations.iter().any(|d| d.enabled) && !config.web.password_hash.is_empty();
    !configured || mode == Mode::AccessPoint
}

impl Portal {
    fn new(board: Board, network: Network, settings: Settings, update: UpdateSide, preview: Arc<Preview>) -> Portal {
        let state = Mutex::new(State { prefill: Default::default() });
        Portal { board, network, settings, state, auth: Mutex::default(), update, preview }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answer, and the network a saved setup asks for (to join once it is sent).
    fn handle(&self, request: &mut tiny_http::Request) -> (Response, Option<WifiRequest>) {
        let path = request.url().split('?').next().unwrap_or_default().to_string();
        let network = self.network.status();
        let (captive, password_set) = {
            let settings = self.settings.get();
            (is_captive(&settings.config, network.mode), !settings.config.web.password_hash.is_empty())
        };
        let own = own_host().is_own(header(request, "Host").as_deref());
        if let Some(reply) = probes::intercept(&path, own, captive) {
            return (from_reply(reply), None);
        }
        // DNS rebinding: a page elsewhere whose name now points here is not the box's.
        if !own {
            let why = "this box answers only to its own names (makespacelive.local, its host name) and addresses\n";
            return (text(421, why.to_string()), None);
        }
        let (route, access) = route::parse(request.method(), &path);
        let open = match access {
            Access::Public => true,
            Access::Portal => {
                if !auth::same_origin(header(request, "Origin").as_deref(), header(request, "Host").as_deref()) {
                    tracing::warn!("web: a {path} sent from another site ({}) refused", client_ip(request));
                    return (text(403, "refused: this form is sent from the box's own page only\n".to_string()), None);
                }
                true
            }
            Access::CaptiveElseSession => captive,
            Access::PasswordElseSession => !password_set,
            Access::Session | Access::SessionCsrf => false,
        };
        if open {
            return self.open(request, route, &network, captive);
        }
        let login = match self.admit(request, access, &path, password_set) {
            Ok(login) => login,
            Err(refused) => return (refused, None),
        };
        (self.behind_login(request, route, &login).unwrap_or_else(|error| error.response()), None)
    }

    /// A route through an open door: the portal's, the login's, and `/` and the status
    /// while their doors are open.
    fn open(
        &self,
        request: &mut tiny_http::Request,
        route: Route,
        network: &NetworkStatus,
        captive: bool,
    ) -> (Response, Option<WifiRequest>) {
        let response = match route {
            Route::Home => html(200, self.setup_page(network, &[], None, client_ip(request))),
            Route::Setup => return self.submit(request, network),
            Route::BackToPortal => from_reply(probes::redirect_to("/")),
            // Off the access point, scanning is the LAN Wi-Fi page's, behind the password.
            Route::Rescan if !captive => text(403, "log in: the Wi-Fi page scans (POST /api/wifi/scan)\n".to_string()),
            Route::Rescan => {
                // Without NetworkManager there is nothing to scan with; the page shows the mode.
                let _ = self.network.rescan();
                see_other("/")
            }
            Route::Status => self.status_json(),
            Route::Portal => api::reply(&PortalJson {
                captive,
                mode: network.mode,
                networks: &network.networks,
                last_failure: network.last_failure.as_deref(),
                notice: network.notice.as_deref(),
            }),
            Route::LogIn => self.log_in(request),
            Route::LoginPage => {
                let next = query_value(request.url(), "next").unwrap_or_default();
                html(200, page::login_page(None, auth::safe_next(&next)))
            }
            Route::NotAllowed(_) | Route::NotFound => refuse(request, &route),
            behind => return (self.wrong_door(&behind), None),
        };
        (response, None)
    }

    /// A session for a route behind the device password (and its CSRF token for a change),
    /// or the answer that refuses it.
    fn admit(
        &self,
        request: &mut tiny_http::Request,
        access: Access,
        path: &str,
        password_set: bool,
    ) -> Result<Login, Response> {
        let now = Instant::now();
        let token = header(request, "Cookie").and_then(|c| auth::cookie_value(&c).map(str::to_string));
        let session = token.and_then(|t| self.auth().sessions.find(&t, now));
        let api = path.starts_with("/api/");
        let change = access == Access::SessionCsrf;
        // Pages' forms (log out) carry the token as the field `csrf`: without JavaScript
        // there is no header. Such a body holds nothing else the handler needs.
        let form = header(request, "Content-Type")
            .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
        let csrf = match header(request, "X-CSRF-Token") {
            Some(token) => Some(token),
            None if form && !api && change => read_body(request)
                .ok()
                .and_then(|body| form_urlencoded::parse(&body).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned())),
            None => None,
        };
        let asked = Asked {
            api,
            change,
            password_set,
            session: session.as_ref(),
            csrf: csrf.as_deref(),
            same_origin: auth::same_origin(header(request, "Origin").as_deref(), header(request, "Host").as_deref()),
        };
        match auth::admit(&asked) {
            Admission::Granted => Ok(session.expect("granted only with a session")),
            Admission::SetUpFirst => Err(see_other("/")),
            Admission::LogIn => Err(see_other(&format!("/login?next={}", percent_encode(path)))),
            Admission::Unauthorized if !password_set => {
                Err(ApiError::new(401, "no device password is set yet: set one on the setup page (/) first").response())
            }
            Admission::Unauthorized => {
                let why =
                    "log in first: POST /login with the device password (form field \"password\"), keep the cookie";
                Err(ApiError::new(401, why).response())
            }
            Admission::Forbidden => {
                let why = "a change needs the session's CSRF token in the X-CSRF-Token header (GET /api/session), \
                           sent from this box's own pages";
                Err(ApiError::new(403, why).response())
            }
        }
    }

    /// A route behind the device password, for a session admitted.
    fn behind_login(
        &self,
        request: &mut tiny_http::Request,
        route: Route,
        login: &Login,
    ) -> Result<Response, ApiError> {
        match route {
            Route::Home => Ok(lan::page(self, Tab::Status, login)),
            Route::Page(tab) => Ok(lan::page(self, tab, login)),
            Route::Status => Ok(self.status_json()),
            Route::Session => Ok(api::reply(&serde_json::json!({ "csrf": login.csrf.expose() }))),
            Route::LogOut => {
                self.auth().sessions.end(login.token.expose());
                Ok(see_other("/login").with_header(cookie_header(&auth::clear_cookie())))
            }
            Route::Settings => settings::get(self),
            Route::SettingsSection(name) => settings::put_section(self, &path_name(&name)?, request),
            Route::Destinations => settings::list_destinations(self),
            Route::AddDestination => settings::add_destination(self, request),
            Route::ChangeDestination(name) => settings::change_destination(self, &path_name(&name)?, request),
            Route::RemoveDestination(name) => settings::remove_destination(self, &path_name(&name)?),
            Route::Presets => settings::presets(),
            Route::Probe => settings::probe(self),
            Route::Password => settings::change_password(self, request),
            Route::Wifi => wifi::get(self),
            Route::WifiScan => wifi::scan(self),
            Route::AddWifi => wifi::add(self, request),
            Route::WifiPriority(name) => wifi::set_priority(self, request, &path_name(&name)?),
            Route::ForgetWifi(name) => wifi::forget(self, &path_name(&name)?),
            Route::AccessPoint => wifi::set_access_point(self, request),
            Route::Update => update::get(self),
            Route::Upload => update::upload(self, request),
            Route::Reboot => update::reboot(self, request),
            Route::BootConfig => update::boot_config(self),
            Route::SetBootConfig => update::set_boot_config(self, request),
            Route::Logs => update::logs(request),
            Route::Preview => preview::get(self),
            Route::NotAllowed(_) | Route::NotFound => Ok(refuse(request, &route)),
            open => Ok(self.wrong_door(&open)),
        }
    }

    /// A route handed to the other side of its door: `route::TABLE` and the two
    /// dispatchers disagree (a bug of ours, never a client's doing).
    fn wrong_door(&self, route: &Route) -> Response {
        tracing::error!("web: {route:?} reached the wrong side of its door");
        text(500, "this box's web pages have a bug: the request went to the wrong handler\n".to_string())
    }

    fn status_json(&self) -> Response {
        let body = serde_json::to_vec_pretty(&self.board.now()).unwrap_or_default();
        respond(200, "application/json", body)
    }

    fn auth(&self) -> MutexGuard<'_, Auth> {
        self.auth.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `POST /login`: the form's `password`, then back to `next`.
    fn log_in(&self, request: &mut tiny_http::Request) -> Response {
        let body = match read_body(request) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let field = |name: &str| form_urlencoded::parse(&body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let next = field("next").unwrap_or_default();
        let next = auth::safe_next(&next);
        let password = Secret::new(field("password").unwrap_or_default());
        match self.check_password(request, &password) {
            Ok(true) => {
                tracing::info!("web: logged in from {}", client_ip(request));
                self.new_session(see_other(next), false)
            }
            Ok(false) => html(401, page::login_page(Some("this is not the device password chosen for this box"), next)),
            Err(error) => {
                let why = error.errors.first().map(|e| e.reason.clone()).unwrap_or_default();
                error.with_retry_after(html(error.code, page::login_page(Some(&why), next)))
            }
        }
    }

    /// The typed device password against the one set, within the guess limits.
    fn check_password(&self, request: &tiny_http::Request, typed: &Secret) -> Result<bool, ApiError> {
        let client = auth::client_of(client_ip(request));
        self.auth()
            .guesses
            .try_now(client, Instant::now())
            .map_err(|wait| ApiError::too_many(wait.sentence(), wait.seconds()))?;
        let hash = self.settings.get().config.web.password_hash.clone();
        if hash.is_empty() {
            return Err(ApiError::new(409, "no device password is set yet: set one on the setup page (/) first"));
        }
        // Without a lock: argon2 takes about a second on a Pi Zero.
        let right = device_password::verify(typed, &hash);
        let mut auth = self.auth();
        if right {
            auth.guesses.right(client, Instant::now());
        } else {
            tracing::warn!("web: a wrong device password from {client}");
            auth.guesses.wrong(client, Instant::now());
        }
        Ok(right)
    }

    /// `response` with a new session's cookie; `end_others` after a password change.
    fn new_session(&self, response: Response, end_others: bool) -> Response {
        let mut auth = self.auth();
        if end_others {
            auth.sessions.end_all();
        }
        let login = auth.sessions.start(Instant::now());
        response.with_header(cookie_header(&auth::set_cookie(&login)))
    }

    /// After a password change: every other session ends, this client gets a new one.
    fn logged_in(&self, response: Response) -> Response {
        self.new_session(response, true)
    }
}

/// `GET /api/portal`: what the setup page shows, for a page that refreshes itself.
#[derive(Serialize)]
struct PortalJson<'a> {
    captive: bool,
    mode: Mode,
    networks: &'a [ScanEntry],
    last_failure: Option<&'a str>,
    notice: Option<&'a str>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The watchdog's view of the pages: answered while something answers the probe,
    /// silent past the limit once nothing does (a listener that takes the connection
    /// and never answers: the state the review left the pages in).
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
