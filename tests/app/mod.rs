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
        Service { child, dir, web_port, defaults }
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
        http_get(self.web_port, "/api/status")
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
    http_get_bytes(port, path).map(|(_, _, body)| String::from_utf8_lossy(&body).into_owned())
}

/// GETs `path` as it is: the status code, the head (status line and headers) and the body's bytes.
pub fn http_get_bytes(port: u16, path: &str) -> Option<(u16, String, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, head, response[end + 4..].to_vec()))
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
