//! A box under update: the real service binary on its data directory, with Debian's real
//! `rauc service` (`super::rauc`) on a private bus. A "reboot" is what it is to the
//! service: it stops, RAUC comes back believing it booted the other slot
//! (`--override-boot-slot`, as the bootloader would have it), the kernel's boot id
//! changes (a file stands in for it: a process cannot change the kernel's), and the
//! service starts again on the same data directory.

use tempfile::NamedTempFile;

use super::rauc::RaucPeer;
use crate::app::{Service, run_cli, text};

/// What the RAUC peer's system.conf says this device is.
pub const COMPATIBLE: &str = "makespacelive-test";

pub struct UpdateBox {
    pub service: Service,
    boot_id: NamedTempFile,
    boots: u32,
    extra_env: Vec<(String, String)>,
}

impl UpdateBox {
    pub fn start(rauc: &RaucPeer, settings: &str, web: u16) -> UpdateBox {
        UpdateBox::start_with(rauc, settings, web, &[])
    }

    /// With more variables for the service and the CLI (`SSL_CERT_FILE`).
    pub fn start_with(rauc: &RaucPeer, settings: &str, web: u16, extra_env: &[(&str, &str)]) -> UpdateBox {
        let boot_id = NamedTempFile::new().unwrap();
        std::fs::write(boot_id.path(), "boot-1\n").unwrap();
        let extra_env: Vec<(String, String)> = extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let service = Service::start_with(settings, web, &env(rauc, &boot_id, &extra_env), None);
        UpdateBox { service, boot_id, boots: 1, extra_env }
    }

    /// The service alone restarts (the same boot).
    pub fn restart(&mut self, rauc: &RaucPeer) {
        let env = env(rauc, &self.boot_id, &self.extra_env);
        self.service.restart(&env);
    }

    /// Stops the service, RAUC comes back as booted from `slot`, a new boot id, start.
    pub fn reboot_into(&mut self, rauc: &mut RaucPeer, slot: &str) {
        self.boots += 1;
        std::fs::write(self.boot_id.path(), format!("boot-{}\n", self.boots)).unwrap();
        rauc.restart_as_booted(slot);
        self.restart(rauc);
    }

    /// `makespacelive ARGS --data-dir <the box's>`: whether it succeeded, all it printed.
    pub fn cli(&self, rauc: &RaucPeer, args: &[&str]) -> (bool, String) {
        let data = self.service.data_dir();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--data-dir", data.to_str().unwrap()]);
        let out = run_cli(&all, &env(rauc, &self.boot_id, &self.extra_env));
        (out.status.success(), text(&out))
    }

    /// Why the service asked for a reboot, if it did.
    pub fn reboot_asked(&self) -> Option<String> {
        std::fs::read_to_string(self.service.runtime_dir().join("reboot")).ok()
    }
}

fn env<'a>(rauc: &'a RaucPeer, boot_id: &'a NamedTempFile, extra: &'a [(String, String)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("DBUS_SYSTEM_BUS_ADDRESS", rauc.bus_address()),
        ("MAKESPACELIVE_BOOT_ID_FILE", boot_id.path().to_str().unwrap()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    env
}

/// A rootfs image of 3 MiB that squashfs cannot shrink (a bundle about as big).
pub fn payload(seed: u8) -> Vec<u8> {
    noise(seed, 3 * 1024 * 1024)
}

/// `len` pseudo-random bytes (xorshift), the same for the same seed.
pub fn noise(seed: u8, len: usize) -> Vec<u8> {
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as u8
        })
        .collect()
}

pub fn update_state(status: &serde_json::Value) -> &str {
    status["update"]["state"].as_str().unwrap_or("")
}
