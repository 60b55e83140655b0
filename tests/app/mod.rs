//! Starts the real `makespacelive` binary with settings in a temp dir, captures all it
//! prints, and reads its `/api/status`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_makespacelive");
pub const DEFAULTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/defaults.toml");

pub struct Service {
    child: Child,
    pub dir: tempfile::TempDir,
    pub web_port: u16,
    defaults: PathBuf,
    /// Once logged in: `status` reads through it.
    session: std::sync::Mutex<Option<Client>>,
}

pub fn test_settings(web_port: u16, destinations: &[(&str, &str, &str)]) -> String {
    let mut s = format!(
        "[video]\nsource = \"test\"\nwidth = 640\nheight = 360\nbitrate_kbps = 800\n\
         [audio]\nsource = \"test\"\n[web]\nlisten = \"127.0.0.1:{web_port}\"\n\
         [network]\nmanage = false\n"
    );
    for (name, url, key) in destinations {
        s.push_str(&format!("[[destinations]]\nname = \"{name}\"\nurl = \"{url}\"\nkey = \"{key}\"\n"));
    }
    s
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Service {
    /// `settings` is written as the user's config.toml; `web_port` must match it.
    pub fn start(settings: &str, web_port: u16) -> Service {
        Service::start_with(settings, web_port, &[], None)
    }

    /// `wrapper` runs the binary through another program (a mount namespace, say).
    pub fn start_with(settings: &str, web_port: u16, env: &[(&str, &str)], wrapper: Option<Command>) -> Service {
        Service::spawn(None, settings, web_port, env, wrapper)
    }

    /// Like `start`, with `defaults` in place of the shipped defaults file.
    pub fn start_on_defaults(defaults: &str, settings: &str, web_port: u16) -> Service {
        Service::spawn(Some(defaults), settings, web_port, &[], None)
    }

    fn spawn(
        defaults: Option<&str>,
        settings: &str,
        web_port: u16,
        env: &[(&str, &str)],
        wrapper: Option<Command>,
    ) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let defaults = match defaults {
            Some(text) => write(dir.path(), "defaults.toml", text),
            None => PathBuf::from(DEFAULTS),
        };
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("config.toml"), settings).unwrap();
        let child = launch(&defaults, dir.path(), env, wrapper);
        Service { child, dir, web_port, defaults, session: std::sync::Mutex::new(None) }
    }

    /// Stops the service and starts it again on the same files, with `env` (a "reboot":
    /// the data directory stays, the runtime directory is emptied).
    pub fn restart(&mut self, env: &[(&str, &str)]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(self.runtime_dir());
        self.child = launch(&self.defaults, self.dir.path(), env, None);
    }

    /// `/run/makespacelive` of this service.
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Everything the service printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("output.log")).unwrap_or_default()
    }

    pub fn status_text(&self) -> Option<String> {
        match &*self.session.lock().unwrap() {
            Some(client) => client.try_get("/api/status").filter(|r| r.code == 200).map(|r| r.body),
            None => http_get(self.web_port, "/api/status"),
        }
    }

    /// Waits (up to 20 s) until the web port takes connections.
    pub fn wait_for_port(&self) {
        let up = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.web_port)).is_err() && Instant::now() < up {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Logs in with the device password; `status` and `wait_for` use the session from now on.
    pub fn log_in(&self, password: &str) -> Client {
        self.wait_for_port();
        let client = Client::log_in(self.web_port, password)
            .unwrap_or_else(|reply| panic!("cannot log in: {} {}\noutput:\n{}", reply.code, reply.body, self.output()));
        *self.session.lock().unwrap() = Some(client.clone());
        client
    }

    pub fn status(&self) -> Option<serde_json::Value> {
        self.status_text().and_then(|body| serde_json::from_str(&body).ok())
    }

    /// Polls the status until `ok` holds; panics with the last status and the log.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(status) = self.status() {
                if ok(&status) {
                    return status;
                }
                last = Some(status);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("timed out waiting for {what}\nlast status: {last:#?}\noutput:\n{}", self.output());
    }

    /// SIGHUP: re-read the settings (only for a service started without a wrapper).
    pub fn reload(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    }

    /// The user's settings file with `from` replaced by `to` (it must be there), then
    /// SIGHUP; returns once the service logged new settings in force (20 s at most).
    pub fn edit_by_hand(&self, from: &str, to: &str) {
        const IN_FORCE: &str = "settings: new settings in force";
        let path = self.data_dir().join("config.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from:?} not in\n{text}");
        let before = self.output().matches(IN_FORCE).count();
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        self.reload();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.output().matches(IN_FORCE).count() == before {
            assert!(Instant::now() < deadline, "SIGHUP changed nothing\n{}", self.output());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The service's resident memory now (kB, /proc's VmRSS).
    pub fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// Starts the binary on `dir`'s `data`, `run` and `output.log` (appended to).
fn launch(defaults: &Path, dir: &Path, env: &[(&str, &str)], wrapper: Option<Command>) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("output.log")).unwrap();
    let mut command = wrapper.unwrap_or_else(|| Command::new(BIN));
    if command.get_program() != BIN {
        command.arg(BIN);
    }
    command
        .args(["run", "--config"])
        .arg(defaults)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--runtime-dir")
        .arg(dir.join("run"))
        .env_remove("JOURNAL_STREAM")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    command.spawn().expect("start makespacelive")
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status entry of the named destination (null until the service lists it).
pub fn destination<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    static NOT_LISTED: serde_json::Value = serde_json::Value::Null;
    status["destinations"].as_array().and_then(|all| all.iter().find(|d| d["name"] == name)).unwrap_or(&NOT_LISTED)
}

pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// POSTs a form to the portal as a phone does; the status code and the body.
pub fn http_post_form(port: u16, path: &str, pairs: &[(&str, &str)]) -> Option<(u16, String)> {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: 10.42.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| (code, body.to_string()))
}

/// Runs a one-shot command of the binary with the given environment only.
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env_clear().envs(env.iter().copied());
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    command.output().expect("run makespacelive")
}

pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// The argon2id hash the portal saves for `password` (fast settings for tests).
pub fn password_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default().hash_password(password.as_bytes(), &salt).unwrap().to_string()
}

/// `test_settings` with a device password set (the box is configured).
pub fn settings_with_password(web_port: u16, destinations: &[(&str, &str, &str)], password: &str) -> String {
    test_settings(web_port, destinations)
        .replace("[network]", &format!("password_hash = \"{}\"\n[network]", password_hash(password)))
}

/// One HTTP/1.0 answer.
pub struct Reply {
    pub code: u16,
    pub head: String,
    pub body: String,
    /// The body as it came (`body` is it read as UTF-8).
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.code, self.body))
    }
}

/// Sends `head` (without the blank line) and `body`; reads the whole answer.
pub fn exchange(port: u16, head: &str, body: &[u8]) -> Reply {
    try_exchange(port, head, body).unwrap_or_else(|why| panic!("{why}"))
}

/// `exchange` from another loopback address (`127.0.0.N`): another phone, to the box.
pub fn exchange_from(source: [u8; 4], port: u16, head: &str, body: &[u8]) -> Reply {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::empty(), None).unwrap();
    let [a, b, c, d] = source;
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::new(a, b, c, d, 0)).unwrap();
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::new(127, 0, 0, 1, port)).unwrap();
    exchange_on(TcpStream::from(fd), head, body).unwrap_or_else(|why| panic!("{why}"))
}

fn try_exchange(port: u16, head: &str, body: &[u8]) -> Result<Reply, String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    exchange_on(stream, head, body)
}

fn exchange_on(mut stream: TcpStream, head: &str, body: &[u8]) -> Result<Reply, String> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(format!("{head}\r\n\r\n").as_bytes()).map_err(|e| format!("send: {e}"))?;
    // A server that has answered already may close before taking the whole body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let mut chunk = [0; 4096];
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        raw.extend_from_slice(&chunk[..n]);
    }
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n");
    let end = end.ok_or_else(|| format!("no HTTP answer: {:?}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| head.clone())?;
    let bytes = raw[end + 4..].to_vec();
    Ok(Reply { code, head, body: String::from_utf8_lossy(&bytes).into_owned(), bytes })
}

/// A logged-in client of the LAN pages: the session cookie and its CSRF token.
#[derive(Clone)]
pub struct Client {
    pub port: u16,
    pub cookie: String,
    pub csrf: String,
}

impl Client {
    /// `POST /login` with the password; the refusal's answer when it is wrong.
    pub fn log_in(port: u16, password: &str) -> Result<Client, Reply> {
        let body = form_urlencoded::Serializer::new(String::new()).append_pair("password", password).finish();
        let head = format!(
            "POST /login HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}",
            body.len()
        );
        let reply = exchange(port, &head, body.as_bytes());
        let cookie = reply.header("Set-Cookie").and_then(|c| c.split(';').next()).map(str::to_string);
        let Some(cookie) = cookie.filter(|_| reply.code == 303) else { return Err(reply) };
        let mut client = Client { port, cookie, csrf: String::new() };
        client.csrf = client.get("/api/session").json()["csrf"].as_str().expect("a CSRF token").to_string();
        Ok(client)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.try_get(path).unwrap_or_else(|| panic!("GET {path}: no answer"))
    }

    fn try_get(&self, path: &str) -> Option<Reply> {
        let head = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nCookie: {}", self.port, self.cookie);
        try_exchange(self.port, &head, b"").ok()
    }

    /// A change with the CSRF token; `json` as the body.
    pub fn send(&self, method: &str, path: &str, json: &serde_json::Value) -> Reply {
        self.send_raw(method, path, "application/json", json.to_string().as_bytes(), &[])
    }

    pub fn send_raw(&self, method: &str, path: &str, content_type: &str, body: &[u8], headers: &[&str]) -> Reply {
        let mut head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nCookie: {}\r\nX-CSRF-Token: {}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}",
            self.port,
            self.cookie,
            self.csrf,
            body.len()
        );
        for extra in headers {
            head.push_str("\r\n");
            head.push_str(extra);
        }
        exchange(self.port, &head, body)
    }
}
