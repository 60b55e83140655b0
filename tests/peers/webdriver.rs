//! A phone (or a desktop window) in headless Chromium (Debian's `chromium` +
//! `chromium-driver`), driven over W3C WebDriver: plain HTTP/1.1 on std's `TcpStream`, one
//! connection per command.
//!
//! Taps are W3C touch actions, not WebDriver's element click: chromedriver's click waits
//! on a page timer afterwards, which never fires with JavaScript off. Screenshots are
//! whole pages (DevTools' `Page.captureScreenshot` through chromedriver), saved as PNG
//! under `target/artifacts/{area}/` (`portal`, `lan`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::app::free_port;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// An iPhone 15's screen in CSS pixels, and its browser's user agent.
pub const PHONE_WIDTH: u32 = 390;
pub const PHONE_HEIGHT: u32 = 844;
/// A laptop's browser window.
pub const DESKTOP_WIDTH: u32 = 1280;
pub const DESKTOP_HEIGHT: u32 = 900;
/// How W3C WebDriver marks an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const PHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                        (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// Where screenshots go: `target/artifacts/{area}/`.
pub fn artifacts_dir(area: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("artifacts").join(area)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewport {
    /// `PHONE_WIDTH` × `PHONE_HEIGHT`, touch, a phone's user agent.
    Phone,
    /// `DESKTOP_WIDTH` × `DESKTOP_HEIGHT`, a mouse.
    Desktop,
}

pub struct Phone {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
    /// Screenshots go here, named by `prefix` and a step number.
    dir: PathBuf,
    prefix: String,
    viewport: Viewport,
    step: u32,
}

/// One element of the current page (stale once the page changes).
pub struct Element<'a> {
    phone: &'a Phone,
    id: String,
}

impl Phone {
    /// Chromium at a phone's viewport, JavaScript on or off; screenshots are
    /// `target/artifacts/portal/{prefix}-NN-{step}.png`.
    pub fn start(javascript: bool, prefix: &str) -> Phone {
        Phone::start_at(Viewport::Phone, javascript, "portal", prefix)
    }

    /// Chromium at `viewport`, JavaScript on or off; screenshots are named
    /// `{prefix}-NN-{step}.png` under `target/artifacts/{area}/` (older ones of that prefix
    /// are removed). Fails, never skips, when Chromium is not installed.
    pub fn start_at(viewport: Viewport, javascript: bool, area: &str, prefix: &str) -> Phone {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: install Debian's chromium and chromium-driver (scripts/setup does)"
            );
        }
        let dir = artifacts_dir(area);
        std::fs::create_dir_all(&dir).unwrap();
        for old in std::fs::read_dir(&dir).unwrap().flatten() {
            if old.file_name().to_string_lossy().starts_with(&format!("{prefix}-")) {
                let _ = std::fs::remove_file(old.path());
            }
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", dir.join(format!("{prefix}-chromedriver.log")).display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut phone = Phone {
            driver,
            port,
            session: String::new(),
            _profile: profile,
            dir,
            prefix: prefix.into(),
            viewport,
            step: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while phone.call("GET", "/status", None).map(|v| v["ready"] != true).unwrap_or(true) {
            assert!(Instant::now() < deadline, "chromedriver did not become ready on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut args = vec![
            "--headless=new".to_string(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            // Whatever a page asks for beyond loopback goes to a proxy that is not there:
            // the browser reaches nothing but the box under test.
            "--proxy-server=127.0.0.1:9".into(),
            format!("--user-data-dir={}", phone._profile.path().display()),
        ];
        // Chromium refuses to start as root with its sandbox on (the tests run as root).
        if std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false) {
            args.push("--no-sandbox".into());
        }
        if viewport == Viewport::Desktop {
            args.push(format!("--window-size={DESKTOP_WIDTH},{DESKTOP_HEIGHT}"));
        }
        let mut options = json!({ "binary": CHROMIUM, "args": args });
        if viewport == Viewport::Phone {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": PHONE_WIDTH, "height": PHONE_HEIGHT, "pixelRatio": 2, "mobile": true, "touch": true },
                "userAgent": PHONE_UA,
            });
        }
        if !javascript {
            options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options,
            // A page's confirm() waits for `accept_dialog` (chromedriver would dismiss it).
            "unhandledPromptBehavior": "ignore",
        } } });
        let session = phone.command("POST", "/session", Some(capabilities));
        phone.session = session["sessionId"].as_str().expect("a session id").to_string();
        phone
    }

    pub fn open(&self, url: &str) {
        self.session_command("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.session_command("GET", "/url", None).as_str().unwrap_or_default().to_string()
    }

    /// The page's HTML as the browser holds it now.
    pub fn source(&self) -> String {
        self.session_command("GET", "/source", None).as_str().unwrap_or_default().to_string()
    }

    /// The visible text of the whole page (read again if it changed while being read).
    pub fn text(&self) -> String {
        for _ in 0..50 {
            let body = self.try_find("body").map(|body| body.call("GET", "/text", None));
            if let Some(Ok(Value::String(text))) = body {
                return text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the page at {} has no text to read", self.url())
    }

    pub fn find(&self, css: &str) -> Element<'_> {
        self.try_find(css).unwrap_or_else(|| panic!("no element matches {css:?} on {}", self.url()))
    }

    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let found = self.call("POST", &self.path("/element"), Some(json!({ "using": "css selector", "value": css })));
        found.ok().map(|value| self.element(&value))
    }

    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let found = self.session_command("POST", "/elements", Some(json!({ "using": "css selector", "value": css })));
        found.as_array().map(|all| all.iter().map(|v| self.element(v)).collect()).unwrap_or_default()
    }

    /// Runs `script` in the page through DevTools (works with the page's JavaScript off).
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.session_command("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// What a screen needs: the page laid out for its width (no sideways scrolling), and
    /// fields of at least 16 px, below which iOS zooms into the page on every tap.
    pub fn assert_fits(&self) {
        let layout = self.execute(
            "return { width: window.innerWidth, scroll: document.documentElement.scrollWidth,
                      small: [...document.querySelectorAll('input:not([type=radio]):not([type=checkbox]), select, button')]
                          .filter(e => e.offsetParent && parseFloat(getComputedStyle(e).fontSize) < 16)
                          .map(e => e.id || e.name || e.textContent) }",
            json!([]),
        );
        let width =
            if self.viewport == Viewport::Phone { PHONE_WIDTH } else { layout["width"].as_u64().unwrap() as u32 };
        assert_eq!(layout["width"], width, "the page sets its viewport to the screen's width");
        assert!(layout["scroll"].as_u64() <= Some(u64::from(width)), "{} scrolls sideways: {layout}", self.url());
        assert_eq!(layout["small"], json!([]), "fields under 16 px (iOS zooms in on them) on {}", self.url());
    }

    /// Accepts the `confirm()` question the page asks; returns its text.
    pub fn accept_dialog(&self) -> String {
        let text = self.session_command("GET", "/alert/text", None).as_str().unwrap_or_default().to_string();
        self.session_command("POST", "/alert/accept", Some(json!({})));
        text
    }

    /// Polls until `ok` holds; panics naming `what`, with the page's text.
    pub fn wait_until(&self, what: &str, timeout: Duration, ok: impl Fn(&Phone) -> bool) {
        let deadline = Instant::now() + timeout;
        while !ok(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}; the page says:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves the whole page as the next numbered PNG and returns its path.
    pub fn screenshot(&mut self, step: &str) -> PathBuf {
        self.step += 1;
        let metrics = self.cdp("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let shot = self.cdp(
            "Page.captureScreenshot",
            json!({ "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1 } }),
        );
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let path = self.dir.join(format!("{}-{:02}-{step}.png", self.prefix, self.step));
        std::fs::write(&path, png).unwrap();
        path
    }

    fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.session_command("POST", "/goog/cdp/execute", Some(json!({ "cmd": cmd, "params": params })))
    }

    fn element(&self, value: &Value) -> Element<'_> {
        let id = value[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("not an element: {value}"));
        Element { phone: self, id: id.to_string() }
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn session_command(&self, method: &str, rest: &str, body: Option<Value>) -> Value {
        self.command(method, &self.path(rest), body)
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, path, body).unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    /// One WebDriver command; `Err` holds the error and message chromedriver gave.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
        // One write: in pieces, Nagle's algorithm would hold the body back for an ACK.
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        // chromedriver says "Connection: close" and keeps it open: read what Content-Length says.
        let mut reader = BufReader::new(stream);
        let (mut status, mut length, mut line) = (String::new(), 0, String::new());
        reader.read_line(&mut status).map_err(|e| e.to_string())?;
        while reader.read_line(&mut line).map_err(|e| e.to_string())? > 2 {
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().map_err(|_| format!("bad Content-Length: {line}"))?;
            }
            line.clear();
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).map_err(|e| e.to_string())?;
        let value: Value =
            serde_json::from_slice(&body).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&body)))?;
        match status.split(' ').nth(1) {
            Some("200") => Ok(value["value"].clone()),
            _ => Err(format!("{}: {}", value["value"]["error"], value["value"]["message"])),
        }
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &self.path(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Element<'_> {
    /// A finger's tap (a mouse click on a desktop) on the element's centre (chromedriver
    /// scrolls it into view).
    pub fn tap(&self) {
        let pointer = if self.phone.viewport == Viewport::Phone { "touch" } else { "mouse" };
        let finger = json!({ "actions": [{
            "type": "pointer", "id": "finger", "parameters": { "pointerType": pointer },
            "actions": [
                { "type": "pointerMove", "duration": 0, "origin": self.reference(), "x": 0, "y": 0 },
                { "type": "pointerDown", "button": 0 },
                { "type": "pointerUp", "button": 0 },
            ],
        }] });
        self.phone.session_command("POST", "/actions", Some(finger));
        // Refused while a question the tap opened (`confirm()`) waits: `accept_dialog`.
        let _ = self.phone.call("DELETE", &self.phone.path("/actions"), None);
    }

    /// Types `text` at the end of what the field holds.
    pub fn type_text(&self, text: &str) {
        self.command("POST", "/value", Some(json!({ "text": text })));
    }

    pub fn clear(&self) {
        self.command("POST", "/clear", Some(json!({})));
    }

    pub fn text(&self) -> String {
        self.command("GET", "/text", None).as_str().unwrap_or_default().to_string()
    }

    /// A DOM property (`value`, `checked`, …) as JSON.
    pub fn property(&self, name: &str) -> Value {
        self.command("GET", &format!("/property/{name}"), None)
    }

    /// The field's current value.
    pub fn value(&self) -> String {
        self.property("value").as_str().unwrap_or_default().to_string()
    }

    pub fn is_selected(&self) -> bool {
        self.command("GET", "/selected", None) == true
    }

    fn reference(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    fn command(&self, method: &str, rest: &str, body: Option<Value>) -> Value {
        self.phone.session_command(method, &format!("/element/{}{rest}", self.id), body)
    }

    fn call(&self, method: &str, rest: &str, body: Option<Value>) -> Result<Value, String> {
        self.phone.call(method, &self.phone.path(&format!("/element/{}{rest}", self.id)), body)
    }
}

/// Standard base64 (RFC 4648), as WebDriver and DevTools send screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|&c| c != b'=') {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: byte {c:#04x}"),
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
