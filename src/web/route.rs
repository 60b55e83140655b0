//! What a request is, from its method and path alone: the route, and the door it goes
//! through (pure; `Portal::handle` applies it).
//!
//! **Invariant:** every path the box answers is in `TABLE` once, with the methods it takes
//! there; a known path asked with another method is `NotAllowed` (405, naming the ones it
//! takes), an unknown one `NotFound`. Which routes are public, which the portal's and
//! which need a session (and a CSRF token) is read off the same table, never off the order
//! of a match. HEAD is GET without the body (tiny_http drops it).
//! **API boundary:** `parse`; the handlers take the `Route`'s fields, never the path.

use super::pages::Tab;

/// The door a route goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone on the LAN or the access point.
    Public,
    /// The portal's forms: anyone, sent from the box's own page (same origin).
    Portal,
    /// Public while the box is captive (unconfigured, or on its own access point), then a
    /// session: `/` is the setup page first, the status page after.
    CaptiveElseSession,
    /// Public until a device password is set, then a session.
    PasswordElseSession,
    /// A logged-in session.
    Session,
    /// A session, its CSRF token, and the box's own page: every change.
    SessionCsrf,
}

/// A request, parsed. Names in paths (`/api/destinations/<name>`) are kept as sent
/// (percent-encoded): the handler decodes them, and a bad one is that handler's 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`: the setup page while captive, the status page after.
    Home,
    Page(Tab),
    /// GET of a portal form's target: back to the portal.
    BackToPortal,
    Setup,
    Rescan,
    Portal,
    LoginPage,
    LogIn,
    LogOut,
    Status,
    Session,
    Settings,
    SettingsSection(String),
    Destinations,
    AddDestination,
    ChangeDestination(String),
    RemoveDestination(String),
    Presets,
    Probe,
    Password,
    Wifi,
    WifiScan,
    AddWifi,
    WifiPriority(String),
    ForgetWifi(String),
    AccessPoint,
    Update,
    Upload,
    Reboot,
    BootConfig,
    SetBootConfig,
    Logs,
    Preview,
    /// A path the box answers, asked with a method it does not take there.
    NotAllowed(Vec<Method>),
    /// A path the box does not answer. Told to a session only.
    NotFound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    /// HEAD is GET; anything else (OPTIONS, PATCH) no method of ours.
    pub fn of(method: &tiny_http::Method) -> Option<Method> {
        match method {
            tiny_http::Method::Get | tiny_http::Method::Head => Some(Method::Get),
            tiny_http::Method::Post => Some(Method::Post),
            tiny_http::Method::Put => Some(Method::Put),
            tiny_http::Method::Delete => Some(Method::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET, HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// How a path is matched: whole, or a prefix followed by one name.
#[derive(Clone, Copy)]
enum Path {
    Is(&'static str),
    Named(&'static str),
}

/// Makes the route of a path entry, given the name a `Named` path carried.
type Make = fn(String) -> Route;

use Access::{CaptiveElseSession, PasswordElseSession, Portal as PortalForm, Public, Session, SessionCsrf};
use Method::{Delete, Get, Post, Put};

/// One path the box answers, and per method it takes there the route and its door (its
/// methods are also its 405's `Allow`).
struct Entry {
    path: Path,
    takes: &'static [(Method, Make, Access)],
}

const fn is(path: &'static str, takes: &'static [(Method, Make, Access)]) -> Entry {
    Entry { path: Path::Is(path), takes }
}

const fn named(prefix: &'static str, takes: &'static [(Method, Make, Access)]) -> Entry {
    Entry { path: Path::Named(prefix), takes }
}

/// Every path the box answers.
const TABLE: &[Entry] = &[
    is("/", &[(Get, |_| Route::Home, CaptiveElseSession)]),
    is("/destinations", &[(Get, |_| Route::Page(Tab::Destinations), Session)]),
    is("/video", &[(Get, |_| Route::Page(Tab::Video), Session)]),
    is("/wifi", &[(Get, |_| Route::Page(Tab::Wifi), Session)]),
    is("/update", &[(Get, |_| Route::Page(Tab::Update), Session)]),
    is("/logs", &[(Get, |_| Route::Page(Tab::Logs), Session)]),
    is("/setup", &[(Get, |_| Route::BackToPortal, Public), (Post, |_| Route::Setup, PortalForm)]),
    is("/rescan", &[(Get, |_| Route::BackToPortal, Public), (Post, |_| Route::Rescan, PortalForm)]),
    is("/login", &[(Get, |_| Route::LoginPage, Public), (Post, |_| Route::LogIn, PortalForm)]),
    is("/logout", &[(Post, |_| Route::LogOut, SessionCsrf)]),
    is("/api/portal", &[(Get, |_| Route::Portal, Public)]),
    is("/api/status", &[(Get, |_| Route::Status, PasswordElseSession)]),
    is("/api/session", &[(Get, |_| Route::Session, Session)]),
    is("/api/settings", &[(Get, |_| Route::Settings, Session)]),
    named("/api/settings/", &[(Put, Route::SettingsSection, SessionCsrf)]),
    is("/api/destinations", &[(Get, |_| Route::Destinations, Session), (Post, |_| Route::AddDestination, SessionCsrf)]),
    named(
        "/api/destinations/",
        &[(Put, Route::ChangeDestination, SessionCsrf), (Delete, Route::RemoveDestination, SessionCsrf)],
    ),
    is("/api/presets", &[(Get, |_| Route::Presets, Session)]),
    is("/api/probe", &[(Get, |_| Route::Probe, Session)]),
    is("/api/password", &[(Post, |_| Route::Password, SessionCsrf)]),
    is("/api/wifi", &[(Get, |_| Route::Wifi, Session)]),
    is("/api/wifi/scan", &[(Post, |_| Route::WifiScan, SessionCsrf)]),
    is("/api/wifi/networks", &[(Post, |_| Route::AddWifi, SessionCsrf)]),
    named("/api/wifi/networks/", &[(Put, Route::WifiPriority, SessionCsrf), (Delete, Route::ForgetWifi, SessionCsrf)]),
    is("/api/wifi/access-point", &[(Put, |_| Route::AccessPoint, SessionCsrf)]),
    is("/api/update", &[(Get, |_| Route::Update, Session)]),
    is("/api/update/upload", &[(Post, |_| Route::Upload, SessionCsrf)]),
    is("/api/reboot", &[(Post, |_| Route::Reboot, SessionCsrf)]),
    is("/api/boot-config", &[(Get, |_| Route::BootConfig, Session), (Put, |_| Route::SetBootConfig, SessionCsrf)]),
    is("/api/logs", &[(Get, |_| Route::Logs, Session)]),
    is("/api/preview.jpg", &[(Get, |_| Route::Preview, Session)]),
];

/// The route of a request and its door. `path` is without the query.
pub fn parse(method: &tiny_http::Method, path: &str) -> (Route, Access) {
    let entry = TABLE.iter().find_map(|entry| {
        let name = match entry.path {
            Path::Is(whole) => (path == whole).then(String::new),
            Path::Named(prefix) => path.strip_prefix(prefix).filter(|name| !name.is_empty()).map(str::to_string),
        }?;
        Some((name, entry.takes))
    });
    // What the box does not answer is told to a session only: a stranger learns nothing
    // from asking around.
    let Some((name, takes)) = entry else {
        return (Route::NotFound, Session);
    };
    let asked = Method::of(method);
    match takes.iter().find(|(m, _, _)| Some(*m) == asked) {
        Some((_, make, access)) => (make(name), *access),
        // Behind the path's own first door, less the CSRF token an error does not need.
        None => {
            let door = match takes[0].2 {
                PortalForm => Public,
                SessionCsrf => Session,
                door => door,
            };
            (Route::NotAllowed(takes.iter().map(|(m, _, _)| *m).collect()), door)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiny_http::Method as M;

    #[test]
    fn the_table_routes_each_request_to_its_handler_and_door() {
        let cases: &[(M, &str, Route, Access)] = &[
            (M::Get, "/", Route::Home, CaptiveElseSession),
            (M::Head, "/", Route::Home, CaptiveElseSession),
            (M::Get, "/video", Route::Page(Tab::Video), Session),
            (M::Get, "/setup", Route::BackToPortal, Public),
            (M::Post, "/setup", Route::Setup, PortalForm),
            (M::Post, "/rescan", Route::Rescan, PortalForm),
            (M::Get, "/login", Route::LoginPage, Public),
            (M::Post, "/login", Route::LogIn, PortalForm),
            (M::Post, "/logout", Route::LogOut, SessionCsrf),
            (M::Get, "/api/portal", Route::Portal, Public),
            (M::Get, "/api/status", Route::Status, PasswordElseSession),
            (M::Put, "/api/settings/video", Route::SettingsSection("video".into()), SessionCsrf),
            (M::Put, "/api/destinations/my%20yt", Route::ChangeDestination("my%20yt".into()), SessionCsrf),
            (M::Delete, "/api/destinations/yt", Route::RemoveDestination("yt".into()), SessionCsrf),
            (M::Post, "/api/destinations", Route::AddDestination, SessionCsrf),
            (M::Delete, "/api/wifi/networks/Home", Route::ForgetWifi("Home".into()), SessionCsrf),
            (M::Put, "/api/boot-config", Route::SetBootConfig, SessionCsrf),
            (M::Get, "/api/preview.jpg", Route::Preview, Session),
        ];
        for (method, path, route, access) in cases {
            assert_eq!(parse(method, path), (route.clone(), *access), "{method} {path}");
        }
    }

    #[test]
    fn a_known_path_with_another_method_is_not_allowed_and_says_which_are() {
        assert_eq!(parse(&M::Put, "/api/status"), (Route::NotAllowed(vec![Get]), PasswordElseSession));
        assert_eq!(parse(&M::Get, "/api/reboot"), (Route::NotAllowed(vec![Post]), Session));
        assert_eq!(parse(&M::Delete, "/setup"), (Route::NotAllowed(vec![Get, Post]), Public));
        assert_eq!(parse(&M::Options, "/api/destinations"), (Route::NotAllowed(vec![Get, Post]), Session));
        assert_eq!(parse(&M::Post, "/api/destinations/yt"), (Route::NotAllowed(vec![Put, Delete]), Session));
    }

    #[test]
    fn unknown_paths_are_not_found_and_a_name_is_one_segment_or_none() {
        assert_eq!(parse(&M::Get, "/nope"), (Route::NotFound, Session));
        assert_eq!(parse(&M::Get, "/api/nope"), (Route::NotFound, Session));
        // No name after the prefix: not the named route.
        assert_eq!(parse(&M::Put, "/api/destinations/"), (Route::NotFound, Session));
        // A name with a slash is kept whole for the handler to refuse (it names no item).
        assert_eq!(parse(&M::Put, "/api/destinations/a/b"), (Route::ChangeDestination("a/b".into()), SessionCsrf));
    }

    #[test]
    fn the_public_routes_are_the_portals_and_the_login() {
        let public: Vec<&str> = TABLE
            .iter()
            .filter(|entry| entry.takes.iter().any(|(_, _, access)| *access == Public))
            .map(|entry| match entry.path {
                Path::Is(p) | Path::Named(p) => p,
            })
            .collect();
        assert_eq!(public, ["/setup", "/rescan", "/login", "/api/portal"]);
        // Every change needs the CSRF token but the portal's own forms, which have none.
        for entry in TABLE {
            for (method, _, access) in entry.takes {
                if *method != Get {
                    assert!(matches!(access, SessionCsrf | PortalForm), "{method:?} {access:?}");
                } else {
                    assert_ne!(*access, SessionCsrf);
                }
            }
        }
    }
}
