//! gooseBit (a hawkBit DDI server) over HTTPS with a test CA, on a free loopback port,
//! driven through tests/peers/goosebit.py (shared with the QEMU rung). Drop stops it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::app::free_port;

const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/goosebit.py");

pub struct GooseBit {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl GooseBit {
    pub fn start() -> GooseBit {
        GooseBit::start_with(&[])
    }

    /// With gooseBit settings as `GOOSEBIT_*` variables (`GOOSEBIT_DEVICE_AUTH__ENABLE`).
    pub fn start_with(settings: &[(&str, &str)]) -> GooseBit {
        let dir = tempfile::tempdir().unwrap();
        super::make_test_ca(dir.path());
        let port = free_port();
        let mut gb = GooseBit { child: None, dir, port };
        gb.driver(&["prepare", &gb.dir.path().join("server").display().to_string()]);
        let log = std::fs::File::create(gb.dir.path().join("goosebit.log")).unwrap();
        let child = Command::new("python3")
            .arg(DRIVER)
            .arg("serve")
            .arg(gb.dir.path().join("server"))
            .args(["127.0.0.1", &port.to_string()])
            .arg(gb.dir.path().join("server.crt"))
            .arg(gb.dir.path().join("server.key"))
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("python3 is installed");
        gb.child = Some(child);
        gb.driver(&["wait", &gb.url(), "60"]);
        gb
    }

    /// `https://localhost:PORT`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A directory of its own for the test's files (bundles, keys).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("goosebit.log")).unwrap_or_default()
    }

    /// Runs a driver command; its JSON answer.
    pub fn driver(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new("python3")
            .arg(DRIVER)
            .args(args)
            .env("SSL_CERT_FILE", self.ca_cert())
            .output()
            .expect("python3 is installed");
        assert!(
            out.status.success(),
            "goosebit.py {args:?}: {}\n{}\n(is gooseBit installed? scripts/setup)",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// Uploads a bundle; its software id.
    pub fn upload(&self, bundle: &Path) -> String {
        let software = self.driver(&["upload", &self.url(), &bundle.display().to_string()]);
        software["id"].to_string()
    }

    pub fn assign(&self, device: &str, software_id: &str) {
        self.driver(&["assign", &self.url(), device, software_id]);
    }

    /// Gives a device (made if new) the target token it must poll with.
    pub fn set_token(&self, device: &str, token: &str) {
        self.driver(&["token", &self.url(), device, token]);
    }

    /// The device as gooseBit's API shows it (`last_state`, `log`, `sw_version`, …).
    pub fn device(&self, device: &str) -> serde_json::Value {
        self.driver(&["device", &self.url(), device])
    }
}

impl Drop for GooseBit {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
