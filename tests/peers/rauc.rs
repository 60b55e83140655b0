//! RAUC as a peer: Debian's real `rauc service` on a private `dbus-daemon`, with its
//! keys, `system.conf`, custom bootloader backend and two raw slots (bootnames A and B)
//! made by `tests/peers/rauc-peer.sh` in a temp dir (that script documents them). The
//! backend keeps the primary slot and each slot's good/bad in files, read here. Give
//! the service `DBUS_SYSTEM_BUS_ADDRESS = bus_address()`. Everything stops on drop.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::blocking::fdo::DBusProxy;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/rauc-peer.sh");
const RAUC: &str = "de.pengutronix.rauc";

pub struct RaucPeer {
    dir: tempfile::TempDir,
    daemon: Child,
    service: Option<Child>,
    address: String,
    conn: Connection,
    bundles: Cell<u32>,
}

fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl RaucPeer {
    /// A peer whose booted slot is `booted` (A or B); A is primary.
    pub fn start(booted: &str) -> RaucPeer {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new(SCRIPT).arg("setup").arg(dir.path()));
        let socket = dir.path().join("bus");
        let daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", dir.path().join("bus.conf").display()))
            .arg("--nofork")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon is installed (scripts/setup)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "dbus-daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let address = format!("unix:path={}", socket.display());
        let conn = zbus::blocking::connection::Builder::address(address.as_str()).unwrap().build().unwrap();
        let mut peer = RaucPeer { dir, daemon, service: None, address, conn, bundles: Cell::new(0) };
        peer.start_service(booted);
        peer
    }

    fn has_owner(&self) -> bool {
        DBusProxy::new(&self.conn).unwrap().name_has_owner(RAUC.try_into().unwrap()).unwrap()
    }

    fn start_service(&mut self, booted: &str) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.path("service.log")).unwrap();
        let child = Command::new("rauc")
            .arg(format!("--conf={}", self.path("system.conf").display()))
            .arg("service")
            .arg(format!("--override-boot-slot={booted}"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            // The image's pre-install handler (meta-makespacelive's system.conf), after the
            // peer's own, judging by the os-release `set_running_version` writes.
            .env(
                "MAKESPACELIVE_PRE_INSTALL",
                format!(
                    "{} update pre-install --runtime-dir {}",
                    env!("CARGO_BIN_EXE_makespacelive"),
                    self.runtime_dir().display()
                ),
            )
            .env("MAKESPACELIVE_OS_RELEASE", self.path("os-release"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("rauc is installed (scripts/setup)");
        self.service = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.has_owner() {
            assert!(Instant::now() < deadline, "rauc service did not come up:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn bus_address(&self) -> &str {
        &self.address
    }

    /// A reboot: the service stops and starts again believing it booted from `booted`.
    pub fn restart_as_booted(&mut self, booted: &str) {
        self.stop();
        self.start_service(booted);
    }

    /// SIGKILL: RAUC disappears from the bus mid-whatever.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.service.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.service.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.has_owner() {
            assert!(Instant::now() < deadline, "rauc service did not leave the bus");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The data directory of the box this RAUC serves (its pending record, its settings).
    /// The box's runtime directory (its inbox; root's answers beside it, `-root`).
    pub fn runtime_dir(&self) -> PathBuf {
        self.path("run")
    }

    /// The version the running system's os-release names (the image's pre-install
    /// handler compares bundles with it).
    pub fn set_running_version(&self, version: &str) {
        let text = format!("ID=makespacelive-os\nVERSION_ID={version}\n");
        std::fs::write(self.path("os-release"), text).unwrap();
    }

    pub fn box_data_dir(&self) -> PathBuf {
        self.path("box-data")
    }

    pub fn slot_file(&self, bootname: &str) -> PathBuf {
        self.path(&format!("{bootname}.img"))
    }

    /// The bootname the bootloader backend starts next.
    pub fn primary(&self) -> String {
        std::fs::read_to_string(self.path("state/primary")).unwrap().trim().to_string()
    }

    /// `good` or `bad` as the backend has it (`good` until RAUC set it).
    pub fn state(&self, bootname: &str) -> String {
        std::fs::read_to_string(self.path(&format!("state/{bootname}"))).map_or("good".into(), |s| s.trim().to_string())
    }

    /// The slot's backing file becomes a directory: RAUC cannot write it.
    pub fn break_slot(&self, bootname: &str) {
        let file = self.slot_file(bootname);
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
    }

    /// Sets a slot's state in the backend's files, as a bootloader would have it.
    pub fn set_state(&self, bootname: &str, state: &str) {
        std::fs::write(self.path(&format!("state/{bootname}")), format!("{state}\n")).unwrap();
    }

    /// Installs wait in RAUC's pre-install handler until `release_installs`.
    pub fn hold_installs(&self) {
        std::fs::write(self.path("state/hold"), "").unwrap();
    }

    pub fn release_installs(&self) {
        let _ = std::fs::remove_file(self.path("state/hold"));
    }

    /// Whether an install reached the pre-install handler.
    pub fn install_reached_handler(&self) -> bool {
        self.path("state/pre-install.reached").exists()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("service.log")).unwrap_or_default()
    }

    fn make_bundle(&self, version: &str, compatible: &str, payload: &[u8], signer: &str) -> PathBuf {
        let n = self.bundles.get() + 1;
        self.bundles.set(n);
        let image = self.path(&format!("payload-{n}"));
        std::fs::write(&image, payload).unwrap();
        let out = self.path(&format!("bundle-{n}.raucb"));
        run(Command::new(SCRIPT)
            .arg("bundle")
            .arg(self.dir.path())
            .args([version, compatible])
            .args([&image, &out])
            .arg(signer));
        std::fs::remove_file(image).unwrap();
        out
    }

    /// A `plain` bundle with `payload` as the rootfs image, signed by the peer's CA.
    pub fn bundle(&self, version: &str, compatible: &str, payload: &[u8]) -> PathBuf {
        self.make_bundle(version, compatible, payload, "test")
    }

    /// Signed by a CA the peer's keyring does not hold.
    pub fn bundle_signed_by_other_ca(&self, version: &str, compatible: &str, payload: &[u8]) -> PathBuf {
        self.make_bundle(version, compatible, payload, "other")
    }

    /// A good bundle cut to half its length.
    pub fn truncated_bundle(&self, version: &str, compatible: &str, payload: &[u8]) -> PathBuf {
        let bundle = self.bundle(version, compatible, payload);
        let file = std::fs::OpenOptions::new().write(true).open(&bundle).unwrap();
        file.set_len(file.metadata().unwrap().len() / 2).unwrap();
        bundle
    }
}

/// Mounts RAUC left behind when killed mid-install (the bundle under `mnt/`).
fn unmount_under(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for point in mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|p| Path::new(p).starts_with(dir)) {
        let _ = Command::new("umount").arg("-l").arg(point).status();
    }
}

impl Drop for RaucPeer {
    fn drop(&mut self) {
        self.release_installs();
        if let Some(mut child) = self.service.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        unmount_under(self.dir.path());
    }
}
