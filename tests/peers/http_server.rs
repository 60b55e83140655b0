//! tests/peers/http_server.py: an HTTPS file server (test CA) that can cut a download
//! midway once, ignore Range, serve less than it has, stall, or answer garbage.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::app::free_port;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/http_server.py");

pub struct HttpServer {
    child: Child,
    pub dir: tempfile::TempDir,
    tls: tempfile::TempDir,
    pub port: u16,
}

impl HttpServer {
    /// Serves a new temp dir (put files in `dir`).
    pub fn start() -> HttpServer {
        let dir = tempfile::tempdir().unwrap();
        let tls = tempfile::tempdir().unwrap();
        super::make_test_ca(tls.path());
        let port = free_port();
        let child = Command::new("python3")
            .arg(SCRIPT)
            .arg(dir.path())
            .arg(port.to_string())
            .arg(tls.path().join("server.crt"))
            .arg(tls.path().join("server.key"))
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 is installed (scripts/setup)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "http_server.py did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        HttpServer { child, dir, tls, port }
    }

    /// `https://localhost:PORT/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}/{path}", self.port)
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.tls.path().join("ca.crt")
    }

    pub fn put(&self, name: &str, contents: &[u8]) -> &Path {
        std::fs::write(self.dir.path().join(name), contents).unwrap();
        self.dir.path()
    }

    /// The requests so far, as "PATH RANGE" lines.
    pub fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default();
        log.lines().map(String::from).collect()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
