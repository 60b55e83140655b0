//! Over-the-air updates: RAUC over D-Bus (`rauc`), where bundles come from (`source`:
//! hawkBit DDI, a manifest, `download`; `upload`: a bundle sent to the web), what the box
//! remembers across reboots (`record`), the pure verdicts (`verdict`), the service's thread
//! (`agent`) and the CLI (`cli`).
//!
//! **Invariant:** an update is reported a success only after the box has rebooted into
//! it and passed its health check; the pending record on the data partition carries the
//! update across the reboot, and across a rollback to the older firmware.

pub mod agent;
pub mod cli;
pub mod ddi;
pub mod download;
pub mod http;
pub mod manifest;
pub mod rauc;
pub mod record;
pub mod source;
pub mod upload;
pub mod verdict;
pub mod version;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rauc::{Progress, Rauc, SlotState};
use record::{Origin, Pending, Records};

/// What runs now.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    /// The booted slot's bootname (`A`).
    pub slot: String,
    /// The booted slot's bundle version, or the OS's `VERSION_ID` on a slot RAUC never
    /// wrote (a factory card's).
    pub version: Option<String>,
    pub compatible: String,
}

pub fn running(rauc: &Rauc) -> Result<Running, String> {
    let slot = rauc.booted().map_err(|e| e.to_string())?;
    let slots = rauc.slots().map_err(|e| e.to_string())?;
    let compatible = rauc.compatible().map_err(|e| e.to_string())?;
    let version = slots
        .iter()
        .find(|s| s.state == Some(SlotState::Booted))
        .and_then(|s| s.bundle_version.clone())
        .or_else(|| os_version(&std::fs::read_to_string(os_release_path()).unwrap_or_default()));
    Ok(Running { slot, version, compatible })
}

/// The running system's os-release; a test stands another in
/// (`MAKESPACELIVE_OS_RELEASE`, in the environment RAUC's handler inherits).
pub fn os_release_path() -> std::path::PathBuf {
    std::env::var_os("MAKESPACELIVE_OS_RELEASE").unwrap_or_else(|| "/etc/os-release".into()).into()
}

/// `VERSION_ID` of our distro's os-release (oe-core writes `DISTRO_VERSION` there, the
/// bundles' version); another OS's (a development host's) says nothing about ours.
pub fn os_version(os_release: &str) -> Option<String> {
    let field = |name: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
    };
    field("VERSION_ID").filter(|_| field("ID").as_deref() == Some("makespacelive-os"))
}

/// Checks and installs `bundle` into the other slot, then writes the pending record that
/// carries the update across the reboot. Refuses another device's bundle, and an older
/// version unless `allow_older`.
/// Why an install did not happen, or did not get its record: a caller tells RAUC's own
/// answers (not running, refused, gone mid-install) from a bundle not for this box.
#[derive(Debug)]
pub enum InstallError {
    Rauc(rauc::RaucError),
    /// Built for another device, or older than what runs (without `allow_older`).
    NotAdmitted(cli::Refusal),
    /// RAUC made primary a slot the bootloader cannot name.
    NoBootname(String),
    /// Installed, but the pending record was not saved.
    Record(String),
}

impl std::fmt::Display for InstallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstallError::Rauc(e) => e.fmt(f),
            InstallError::NotAdmitted(refusal) => refusal.fmt(f),
            InstallError::NoBootname(slot) => write!(f, "RAUC made {slot} primary, a slot without a bootname"),
            InstallError::Record(why) => f.write_str(why),
        }
    }
}

impl From<rauc::RaucError> for InstallError {
    fn from(e: rauc::RaucError) -> Self {
        InstallError::Rauc(e)
    }
}

impl From<InstallError> for String {
    fn from(e: InstallError) -> String {
        e.to_string()
    }
}

pub fn install(
    rauc: &Rauc,
    running: &Running,
    bundle: &str,
    origin: Origin,
    allow_older: bool,
    records: &Records,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Pending, InstallError> {
    let args = rauc::InstallArgs::default();
    let info = rauc.bundle_info(bundle, &args)?;
    cli::admit(&info, &running.compatible, running.version.as_deref(), allow_older)
        .map_err(InstallError::NotAdmitted)?;
    rauc.install(bundle, &args, progress)?;
    let primary = rauc.primary()?;
    let slots = rauc.slots()?;
    let expect_slot = slots
        .iter()
        .find(|s| s.name == primary)
        .and_then(|s| s.bootname.clone())
        .ok_or(InstallError::NoBootname(primary))?;
    let pending = Pending {
        origin,
        from_version: running.version.clone().unwrap_or_else(|| "unknown".into()),
        to_version: info.version,
        from_slot: running.slot.clone(),
        expect_slot,
        boot_id: boot_id(),
        installed_at: unix_now(),
        verifying: None,
        failure: None,
        outcome: None,
    };
    records.save_pending(&pending).map_err(InstallError::Record)?;
    Ok(pending)
}

/// Why nothing else is installed now.
pub fn waiting_for_reboot(pending: &Pending) -> String {
    format!("{} is installed already and waits for its reboot into slot {}", pending.to_version, pending.expect_slot)
}

/// The kernel's id of this boot. A test stands a reboot in with another file
/// (`MAKESPACELIVE_BOOT_ID_FILE`): restarting the service does not change the kernel's.
pub fn boot_id() -> String {
    let path =
        std::env::var_os("MAKESPACELIVE_BOOT_ID_FILE").unwrap_or_else(|| "/proc/sys/kernel/random/boot_id".into());
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Time since the kernel booted (CLOCK_BOOTTIME: the service's restarts do not reset it).
pub fn uptime() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map(Duration::from).unwrap_or_default()
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// The reboot request in the service's runtime directory (its inbox).
const REBOOT_REQUEST: &str = "reboot";
/// The most of a request's reason printed: a sentence.
const REASON_LIMIT: u64 = 1024;

/// Asks systemd for a reboot: `makespacelive-reboot.path` watches for this file.
pub fn request_reboot(runtime_dir: &Path, why: &str) -> Result<(), String> {
    let path = runtime_dir.join(REBOOT_REQUEST);
    tracing::warn!("asking for a reboot {why}");
    crate::fsutil::write_atomic(&path, format!("{why}\n").as_bytes(), 0o644)
        .map_err(|e| format!("cannot ask for a reboot ({}): {e}", path.display()))
}

/// The root side (makespacelive-reboot.service): takes the request from the service's
/// inbox — no link followed, a regular file of at most `REASON_LIMIT` bytes, removed — and
/// prints its reason for the console and the journal, control characters shown as `?`.
/// A request that cannot be read still reboots (the service asked), saying why not.
pub fn reboot_requested(file: &Path) -> Result<(), String> {
    let reason = match crate::fsutil::take(file, REASON_LIMIT) {
        Ok(Some(bytes)) => {
            String::from_utf8_lossy(&bytes).trim().chars().map(|c| if c.is_control() { '?' } else { c }).collect()
        }
        Ok(None) => "(no reason left)".to_string(),
        Err(e) => format!("(its reason is not shown: {e})"),
    };
    println!("makespacelive asked for a reboot: {reason}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_version_is_read_as_yocto_writes_it() {
        assert_eq!(os_version("ID=makespacelive-os\nVERSION_ID=0.1.0\n"), Some("0.1.0".into()));
        assert_eq!(os_version("ID=\"makespacelive-os\"\nVERSION_ID=\"0.2\"\n"), Some("0.2".into()));
        assert_eq!(os_version("ID=debian\nVERSION_ID=\"12\"\n"), None, "not ours");
        assert_eq!(os_version("ID=makespacelive-os\n"), None);
    }

    #[test]
    fn an_install_error_keeps_what_rauc_said_and_reads_as_before() {
        let gone = InstallError::from(rauc::RaucError::NotRunning("no owner".into()));
        assert!(matches!(gone, InstallError::Rauc(rauc::RaucError::NotRunning(_))));
        assert_eq!(String::from(gone), "RAUC is not running on the system bus (no owner)");
        let refused = InstallError::from(rauc::RaucError::Refused("signature".into()));
        assert!(matches!(refused, InstallError::Rauc(rauc::RaucError::Refused(_))), "told apart from not running");
        let other = cli::Refusal::Incompatible { bundle: "x".into(), system: "makespacelive-qemuarm64".into() };
        let shown = other.to_string();
        assert_eq!(InstallError::NotAdmitted(other).to_string(), shown);
        assert_eq!(
            InstallError::NoBootname("rootfs.1".into()).to_string(),
            "RAUC made rootfs.1 primary, a slot without a bootname"
        );
    }
}
