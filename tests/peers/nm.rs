//! NetworkManager as a peer: a private `dbus-daemon` (a system bus of its own) with
//! python-dbusmock running `tests/peers/nm_mock.py` (its top comment documents the
//! scripting API). Give the service `DBUS_SYSTEM_BUS_ADDRESS = bus_address()`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::zvariant::Value;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/nm_mock.py");
/// Debian's interpreter, where `python3-dbusmock` is installed (scripts/setup).
const PYTHON: &str = "/usr/bin/python3";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const MOCK: &str = "org.freedesktop.DBus.Mock";

pub struct NmMock {
    dir: tempfile::TempDir,
    daemon: Child,
    mock: Child,
    address: String,
    conn: Connection,
}

/// A bus that lets everyone do anything (the NetworkManager tests).
const OPEN_POLICY: &str = r#"<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/></policy>"#;

impl NmMock {
    pub fn start() -> NmMock {
        NmMock::start_with_policy(OPEN_POLICY)
    }

    /// With `policy` (D-Bus `busconfig` elements) in place of a bus open to all. The bus's
    /// directory is readable by all, for clients running as other users.
    pub fn start_with_policy(policy: &str) -> NmMock {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let socket = dir.path().join("system_bus_socket");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>
{policy}
</busconfig>"#,
                socket.display()
            ),
        )
        .unwrap();
        let daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon is installed");
        let address = format!("unix:path={}", socket.display());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "dbus-daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mock = Command::new(PYTHON)
            .args(["-m", "dbusmock", "--system", "--template", TEMPLATE])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("mock.log")).unwrap())
            .spawn()
            .expect("python3 with python3-dbusmock (scripts/setup)");
        let conn = zbus::blocking::connection::Builder::address(address.as_str()).unwrap().build().unwrap();
        let nm = NmMock { dir, daemon, mock, address, conn };
        while nm.conn.call_method(Some("org.freedesktop.NetworkManager"), NM_PATH, Some(MOCK), "Calls", &()).is_err() {
            assert!(Instant::now() < deadline, "the NetworkManager mock did not start:\n{}", nm.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        nm
    }

    pub fn bus_address(&self) -> &str {
        &self.address
    }

    fn call<B>(&self, method: &str, body: &B) -> zbus::Message
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.conn
            .call_method(Some("org.freedesktop.NetworkManager"), NM_PATH, Some(MOCK), method, body)
            .unwrap_or_else(|e| panic!("mock {method}: {e}\n{}", self.log()))
    }

    /// A network in range; `security`: open, wpa2, wpa3, transition or enterprise.
    pub fn add_venue(&self, ssid: &str, psk: &str, security: &str, strength: u8, frequency_mhz: u32) {
        self.call("AddVenue", &(ssid, psk, security, strength, frequency_mhz));
    }

    /// `key`: present, dhcp, hangs (bool) or psk (string).
    pub fn set_venue<'a>(&self, ssid: &str, key: &str, value: impl Into<Value<'a>>) {
        self.call("SetVenue", &(ssid, key, value.into()));
    }

    pub fn add_saved_network(&self, ssid: &str, psk: &str) {
        self.call("AddSavedNetwork", &(ssid, psk));
    }

    pub fn set_scan_in_ap(&self, allowed: bool) {
        self.call("SetScanInAp", &(allowed,));
    }

    /// Every recorded call, as `{"method", "args"}`.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        let json: String = self.call("Calls", &()).body().deserialize().unwrap();
        serde_json::from_str(&json).unwrap()
    }

    /// The arguments of each call of `method`, in order.
    pub fn calls_of(&self, method: &str) -> Vec<Vec<serde_json::Value>> {
        self.calls()
            .into_iter()
            .filter(|c| c["method"] == method)
            .map(|c| c["args"].as_array().unwrap().clone())
            .collect()
    }

    /// Each saved profile's settings by path, secrets included: what NetworkManager keeps.
    pub fn profiles(&self) -> serde_json::Map<String, serde_json::Value> {
        let json: String = self.call("Profiles", &()).body().deserialize().unwrap();
        serde_json::from_str(&json).unwrap()
    }

    /// The saved profile with `uuid`, secrets included.
    pub fn profile(&self, uuid: &str) -> Option<serde_json::Value> {
        self.profiles().into_values().find(|p| p["connection"]["uuid"] == uuid)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mock.log")).unwrap_or_default()
    }
}

impl Drop for NmMock {
    fn drop(&mut self) {
        for child in [&mut self.mock, &mut self.daemon] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
