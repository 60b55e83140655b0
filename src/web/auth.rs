//! Who may use the LAN pages: a session after the device password, a CSRF token for every
//! change, and a limit on password guesses.
//!
//! Invariants: a session token and its CSRF token are 256 random bits from the OS, held
//! only in memory (a restart logs everyone out) and compared in constant time; a session
//! ends `IDLE` after its last use and `LIFETIME` after the login whatever happens; a
//! password change ends every session; a client that guessed wrong `FREE_GUESSES` times
//! waits, doubling up to `LONGEST_WAIT`, and the whole box verifies at most
//! `GUESSES_PER_MINUTE` passwords a minute (argon2 takes a second of a Pi Zero's CPU).
//! API boundary: `Sessions`, `Guesses` (pure: time is passed in), `admit` (the decision
//! taken for every request behind the password), the cookie's text.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};

use crate::secrets::Secret;

pub const COOKIE: &str = "msl_session";
/// A session unused this long is over.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);
/// And any session this long after its login.
pub const LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// More sessions than this (phones, laptops, scripts) drop the least recently used.
const MAX_SESSIONS: usize = 32;

/// Wrong passwords a client may type before it has to wait.
pub const FREE_GUESSES: u32 = 5;
const FIRST_WAIT: Duration = Duration::from_secs(30);
pub const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);
/// Guesses forgotten after this long without one.
const FORGET_GUESSES: Duration = Duration::from_secs(3600);
/// Passwords the box verifies per minute, from all clients together.
pub const GUESSES_PER_MINUTE: usize = 20;
/// A client (`client_of`) that gave the right password within this long has a box-wide
/// budget of its own: strangers spending the box's guesses from many addresses do not
/// lock out the people who use it. At most `KNOWN_MOST` are remembered (the oldest go).
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
const KNOWN_MOST: usize = 32;

/// 256 random bits, hex.
fn random_token() -> Secret {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Compares without stopping at the first difference, so the time taken says nothing
/// about how much of a guessed token was right.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Session {
    csrf: Secret,
    since: Instant,
    last_used: Instant,
}

impl Session {
    fn alive(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_used) < IDLE && now.saturating_duration_since(self.since) < LIFETIME
    }
}

/// A logged-in client, as the router hands it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub token: Secret,
    pub csrf: Secret,
}

#[derive(Default)]
pub struct Sessions {
    by_token: HashMap<String, Session>,
}

impl Sessions {
    pub fn start(&mut self, now: Instant) -> Login {
        self.by_token.retain(|_, s| s.alive(now));
        if self.by_token.len() >= MAX_SESSIONS
            && let Some(oldest) = self.by_token.iter().min_by_key(|(_, s)| s.last_used).map(|(t, _)| t.clone())
        {
            self.by_token.remove(&oldest);
        }
        let login = Login { token: random_token(), csrf: random_token() };
        let session = Session { csrf: login.csrf.clone(), since: now, last_used: now };
        self.by_token.insert(login.token.expose().to_string(), session);
        login
    }

    /// The session of this cookie value, if it is alive; marks it used.
    pub fn find(&mut self, token: &str, now: Instant) -> Option<Login> {
        let found = self.by_token.iter_mut().find(|(t, _)| same_token(t, token));
        let (key, session) = found?;
        if !session.alive(now) {
            let key = key.clone();
            self.by_token.remove(&key);
            return None;
        }
        session.last_used = now;
        Some(Login { token: Secret::new(key.clone()), csrf: session.csrf.clone() })
    }

    pub fn end(&mut self, token: &str) {
        self.by_token.retain(|t, _| !same_token(t, token));
    }

    /// After a password change: everyone logs in again.
    pub fn end_all(&mut self) {
        self.by_token.clear();
    }
}

/// Password guesses: per client address, and for the whole box.
#[derive(Default)]
pub struct Guesses {
    by_client: HashMap<IpAddr, Wrong>,
    recent: Vec<Instant>,
    /// Clients that logged in lately, and when; their guesses count in `recent_known`.
    known: HashMap<IpAddr, Instant>,
    recent_known: Vec<Instant>,
}

struct Wrong {
    count: u32,
    last: Instant,
}

/// Why a password may not be tried now, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// This client guessed wrong too often.
    Client(Duration),
    /// Too many guesses on the box from everywhere.
    Box(Duration),
}

impl Wait {
    pub fn seconds(self) -> u64 {
        let (Wait::Client(d) | Wait::Box(d)) = self;
        d.as_secs().max(1)
    }

    pub fn sentence(self) -> String {
        match self {
            Wait::Client(_) => format!(
                "too many wrong passwords from this device; try again in {} s (forgot it? see \"Forgot the device password\" in the manual)",
                self.seconds()
            ),
            Wait::Box(_) => format!("too many password attempts on this box; try again in {} s", self.seconds()),
        }
    }
}

impl Guesses {
    /// May `client` try a password now? Counts the try when it may.
    pub fn try_now(&mut self, client: IpAddr, now: Instant) -> Result<(), Wait> {
        self.by_client.retain(|_, w| now.saturating_duration_since(w.last) < FORGET_GUESSES);
        if let Some(wrong) = self.by_client.get(&client)
            && wrong.count >= FREE_GUESSES
        {
            let doublings = (wrong.count - FREE_GUESSES).min(16);
            let wait = FIRST_WAIT.saturating_mul(1 << doublings).min(LONGEST_WAIT);
            let waited = now.saturating_duration_since(wrong.last);
            if waited < wait {
                return Err(Wait::Client(wait - waited));
            }
        }
        self.known.retain(|_, at| now.saturating_duration_since(*at) < KNOWN_FOR);
        let minute = Duration::from_secs(60);
        let recent = if self.known.contains_key(&client) { &mut self.recent_known } else { &mut self.recent };
        recent.retain(|t| now.saturating_duration_since(*t) < minute);
        if recent.len() >= GUESSES_PER_MINUTE {
            let oldest = recent[0];
            return Err(Wait::Box(minute - now.saturating_duration_since(oldest)));
        }
        recent.push(now);
        Ok(())
    }

    pub fn wrong(&mut self, client: IpAddr, now: Instant) {
        let wrong = self.by_client.entry(client).or_insert(Wrong { count: 0, last: now });
        wrong.count += 1;
        wrong.last = now;
    }

    pub fn right(&mut self, client: IpAddr, now: Instant) {
        self.by_client.remove(&client);
        self.known.insert(client, now);
        if self.known.len() > KNOWN_MOST
            && let Some(oldest) = self.known.iter().min_by_key(|(_, at)| **at).map(|(ip, _)| *ip)
        {
            self.known.remove(&oldest);
        }
    }
}

/// Whether a request behind the device password gets to its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// No device password is set yet: the box is set up in the portal first.
    SetUpFirst,
    /// The login page, then back here.
    LogIn,
    /// An API call without a session: 401.
    Unauthorized,
    /// A change without the session's CSRF token, or from another site: 403.
    Forbidden,
    Granted,
}

/// The request as far as admission is concerned.
pub struct Asked<'a> {
    pub api: bool,
    /// Changes something (its door is `route::Access::SessionCsrf`).
    pub change: bool,
    pub password_set: bool,
    pub session: Option<&'a Login>,
    /// `X-CSRF-Token` or the form's `csrf` field.
    pub csrf: Option<&'a str>,
    /// Whether `Origin`, when the browser sent one, is this box as the client addressed it.
    pub same_origin: bool,
}

pub fn admit(asked: &Asked) -> Admission {
    if asked.change && !asked.same_origin {
        return Admission::Forbidden;
    }
    if !asked.password_set {
        // Nothing to log in with: only the status is shown, until the portal sets a password.
        return if asked.api { Admission::Unauthorized } else { Admission::SetUpFirst };
    }
    let Some(session) = asked.session else {
        return if asked.api { Admission::Unauthorized } else { Admission::LogIn };
    };
    if asked.change && !asked.csrf.is_some_and(|t| same_token(t, session.csrf.expose())) {
        return Admission::Forbidden;
    }
    Admission::Granted
}

/// `Origin` against `Host`: a browser names the page's origin on every change it sends;
/// another site's page has another origin. No `Origin` (curl, a script): nothing to check.
pub fn same_origin(origin: Option<&str>, host: Option<&str>) -> bool {
    match origin {
        None => true,
        Some(origin) => {
            let origin = origin.trim();
            let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
            authority.is_some_and(|a| host.is_some_and(|h| a.eq_ignore_ascii_case(h.trim())))
        }
    }
}

pub fn set_cookie(login: &Login) -> String {
    format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", login.token.expose(), LIFETIME.as_secs())
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session cookie's value from a `Cookie` header.
pub fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(name, _)| *name == COOKIE).map(|(_, v)| v)
}

/// The client an address counts as, for the guess limits and the connection limits: an
/// IPv4 address, or an IPv6 address's /64 (one host holds a whole /64 and may pick any
/// address in it); an IPv4-mapped address is its IPv4 one.
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
        v4 => v4,
    }
}

/// Where to go after logging in: a path on this box only, of the characters its own paths
/// and queries use (no `//elsewhere`, no TAB or backslash a browser would drop or turn
/// into `/`, nothing outside ASCII a header cannot carry); anything else goes to `/`.
pub fn safe_next(next: &str) -> &str {
    let path_char = |c: char| c.is_ascii_alphanumeric() || "/-_.~?=&%+".contains(c);
    let local = next.starts_with('/') && !next.starts_with("//") && next.chars().all(path_char);
    if local && next != "/login" { next } else { "/" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 168, 1, last])
    }

    #[test]
    fn a_session_lives_until_idle_or_its_lifetime() {
        let t0 = Instant::now();
        let mut sessions = Sessions::default();
        let login = sessions.start(t0);
        assert_eq!(login.token.expose().len(), 64);
        assert_ne!(login.token, login.csrf);
        assert_eq!(sessions.find(login.token.expose(), t0 + IDLE / 2), Some(login.clone()));
        // Used every half IDLE, it still ends at LIFETIME.
        let mut t = t0;
        while t + IDLE / 2 < t0 + LIFETIME {
            t += IDLE / 2;
            assert!(sessions.find(login.token.expose(), t).is_some(), "{:?}", t - t0);
        }
        assert!(sessions.find(login.token.expose(), t0 + LIFETIME).is_none());
        let idle = sessions.start(t0);
        assert!(sessions.find(idle.token.expose(), t0 + IDLE).is_none(), "idle too long");
        assert!(sessions.find("", t0).is_none() && sessions.find("00", t0).is_none());
    }

    #[test]
    fn logging_out_or_a_new_password_ends_sessions() {
        let t0 = Instant::now();
        let mut sessions = Sessions::default();
        let (a, b) = (sessions.start(t0), sessions.start(t0));
        sessions.end(a.token.expose());
        assert!(sessions.find(a.token.expose(), t0).is_none() && sessions.find(b.token.expose(), t0).is_some());
        sessions.end_all();
        assert!(sessions.find(b.token.expose(), t0).is_none());
    }

    #[test]
    fn the_least_recently_used_session_goes_when_full() {
        let t0 = Instant::now();
        let mut sessions = Sessions::default();
        let first = sessions.start(t0);
        let others: Vec<Login> =
            (1..MAX_SESSIONS as u64).map(|n| sessions.start(t0 + Duration::from_secs(n))).collect();
        sessions.find(first.token.expose(), t0 + Duration::from_secs(100)).unwrap();
        sessions.start(t0 + Duration::from_secs(101));
        assert!(sessions.find(first.token.expose(), t0 + Duration::from_secs(102)).is_some(), "used lately");
        assert!(sessions.find(others[0].token.expose(), t0 + Duration::from_secs(102)).is_none());
    }

    #[test]
    fn wrong_guesses_make_a_client_wait_doubling_and_others_are_not_held() {
        let t0 = Instant::now();
        let mut guesses = Guesses::default();
        for n in 0..FREE_GUESSES {
            guesses.try_now(ip(2), t0 + Duration::from_secs(n.into())).unwrap();
            guesses.wrong(ip(2), t0 + Duration::from_secs(n.into()));
        }
        let t = t0 + Duration::from_secs(5);
        // The wait counts from the last wrong guess (at 4 s).
        assert_eq!(guesses.try_now(ip(2), t), Err(Wait::Client(Duration::from_secs(29))));
        assert_eq!(guesses.try_now(ip(3), t), Ok(()), "another client is not held");
        let t = t + Duration::from_secs(29);
        guesses.try_now(ip(2), t).unwrap();
        guesses.wrong(ip(2), t);
        assert_eq!(guesses.try_now(ip(2), t), Err(Wait::Client(FIRST_WAIT * 2)));
        for _ in 0..20 {
            guesses.wrong(ip(2), t);
        }
        assert_eq!(guesses.try_now(ip(2), t), Err(Wait::Client(LONGEST_WAIT)));
        guesses.right(ip(2), t);
        assert_eq!(guesses.try_now(ip(2), t), Ok(()));
        assert!(Wait::Client(LONGEST_WAIT).sentence().contains("900 s"));
    }

    #[test]
    fn the_box_verifies_a_bounded_number_of_passwords_a_minute() {
        let t0 = Instant::now();
        let mut guesses = Guesses::default();
        for n in 0..GUESSES_PER_MINUTE {
            guesses.try_now(ip(n as u8), t0).unwrap();
        }
        let t = t0 + Duration::from_secs(10);
        assert_eq!(guesses.try_now(ip(200), t), Err(Wait::Box(Duration::from_secs(50))));
        assert_eq!(guesses.try_now(ip(200), t0 + Duration::from_secs(60)), Ok(()));
    }

    /// The review's attack: the box-wide budget kept spent from many addresses locked
    /// everyone out. Someone who logged in before has a budget of their own.
    #[test]
    fn strangers_spending_the_box_budget_do_not_lock_out_those_who_logged_in_before() {
        let t0 = Instant::now();
        let mut guesses = Guesses::default();
        guesses.try_now(ip(7), t0).unwrap();
        guesses.right(ip(7), t0);
        let t = t0 + Duration::from_secs(61);
        for n in 0..GUESSES_PER_MINUTE {
            guesses.try_now(ip(100 + n as u8), t).unwrap();
        }
        assert!(matches!(guesses.try_now(ip(250), t), Err(Wait::Box(_))), "a stranger waits");
        assert_eq!(guesses.try_now(ip(7), t), Ok(()), "the known client does not");
        // An IPv6 attacker is one client for its whole /64.
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(client_of(a), client_of(b));
        assert_ne!(client_of(a), client_of("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(client_of("::ffff:192.168.1.7".parse().unwrap()), ip(7));
    }

    fn asked<'a>(session: Option<&'a Login>, csrf: Option<&'a str>) -> Asked<'a> {
        Asked { api: true, change: true, password_set: true, session, csrf, same_origin: true }
    }

    #[test]
    fn changes_need_a_session_and_its_csrf_token() {
        let login = Sessions::default().start(Instant::now());
        let other = Sessions::default().start(Instant::now());
        assert_eq!(admit(&asked(None, None)), Admission::Unauthorized);
        assert_eq!(admit(&Asked { api: false, ..asked(None, None) }), Admission::LogIn);
        assert_eq!(admit(&asked(Some(&login), None)), Admission::Forbidden);
        assert_eq!(admit(&asked(Some(&login), Some(other.csrf.expose()))), Admission::Forbidden);
        assert_eq!(admit(&asked(Some(&login), Some(login.token.expose()))), Admission::Forbidden);
        assert_eq!(admit(&asked(Some(&login), Some(login.csrf.expose()))), Admission::Granted);
        assert_eq!(admit(&Asked { change: false, ..asked(Some(&login), None) }), Admission::Granted);
        let elsewhere = Asked { same_origin: false, ..asked(Some(&login), Some(login.csrf.expose())) };
        assert_eq!(admit(&elsewhere), Admission::Forbidden);
        assert_eq!(admit(&Asked { password_set: false, ..asked(None, None) }), Admission::Unauthorized);
        let page = Asked { password_set: false, api: false, change: false, ..asked(None, None) };
        assert_eq!(admit(&page), Admission::SetUpFirst);
    }

    #[test]
    fn origins_cookies_and_next() {
        assert!(same_origin(None, Some("box.local")));
        assert!(same_origin(Some("http://192.168.1.9:8080"), Some("192.168.1.9:8080")));
        assert!(!same_origin(Some("http://evil.example"), Some("192.168.1.9")));
        assert!(!same_origin(Some("null"), Some("192.168.1.9")));
        assert!(!same_origin(Some("http://x"), None));
        let login = Sessions::default().start(Instant::now());
        let cookie = set_cookie(&login);
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=86400"] {
            assert!(cookie.contains(flag), "{cookie}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
        assert_eq!(cookie_value(&format!("a=b; {COOKIE}=xyz; c=d")), Some("xyz"));
        assert_eq!(cookie_value("a=b"), None);
        assert_eq!(safe_next("/wifi"), "/wifi");
        for bad in ["//evil.example/", "http://evil.example/", "/login", "", "/\\evil", "/a\r\nSet-Cookie: x"] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("abc", "ab"));
    }
}
