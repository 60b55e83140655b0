//! `makespacelive update …`: install a bundle through RAUC, show the slots, mark a slot.
//! What may be installed is decided by `admit`, a pure function; the rest prints what
//! RAUC reports. Errors are one sentence for the operator.

use std::cmp::Ordering;
use std::fmt;
use std::path::Path;

use super::rauc::{BundleInfo, InstallArgs, Mark, Rauc, SlotState, SlotStatus};
use super::version;

/// Why a bundle is not installed.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Built for another device; never overridden.
    Incompatible { bundle: String, system: String },
    /// Older than what runs now; `--force` installs it anyway.
    Older { bundle: String, running: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Incompatible { bundle, system } => {
                write!(f, "the bundle is for {bundle:?}, this system is {system:?}: not installed")
            }
            Refusal::Older { bundle, running } => write!(
                f,
                "the bundle's version {bundle} is older than the running {running}: not installed (--force installs it)"
            ),
        }
    }
}

/// Whether `bundle` may go onto a system of `compatible` running `running` (the booted
/// slot's bundle version; none on a system never updated). `--force` skips this check
/// (and its cost: RAUC verifies the bundle's signature for it); RAUC still refuses
/// another compatible during the install.
pub fn admit(bundle: &BundleInfo, compatible: &str, running: Option<&str>) -> Result<(), Refusal> {
    if bundle.compatible != compatible {
        return Err(Refusal::Incompatible { bundle: bundle.compatible.clone(), system: compatible.to_string() });
    }
    match running {
        Some(running) if version::compare(&bundle.version, running) == Ordering::Less => {
            Err(Refusal::Older { bundle: bundle.version.clone(), running: running.to_string() })
        }
        _ => Ok(()),
    }
}

/// RAUC runs elsewhere: a local bundle is handed over by its absolute path.
fn bundle_source(source: &str) -> Result<String, String> {
    if source.contains("://") {
        return Ok(source.to_string());
    }
    let path = Path::new(source);
    let absolute = path.canonicalize().map_err(|e| format!("no bundle at {}: {e}", path.display()))?;
    if !absolute.is_file() {
        return Err(format!("{} is not a bundle file", path.display()));
    }
    Ok(absolute.to_string_lossy().into_owned())
}

fn booted_slot(slots: &[SlotStatus]) -> Option<&SlotStatus> {
    slots.iter().find(|s| s.state == Some(SlotState::Booted))
}

pub fn install(source: &str, force: bool) -> Result<(), String> {
    let source = bundle_source(source)?;
    let rauc = Rauc::connect().map_err(|e| e.to_string())?;
    let args = InstallArgs::default();
    if force {
        println!("installing {source} (no version check)");
    } else {
        let bundle = rauc.bundle_info(&source, &args).map_err(|e| e.to_string())?;
        let compatible = rauc.compatible().map_err(|e| e.to_string())?;
        let slots = rauc.slots().map_err(|e| e.to_string())?;
        let running = booted_slot(&slots).and_then(|s| s.bundle_version.as_deref());
        admit(&bundle, &compatible, running).map_err(|e| e.to_string())?;
        println!("installing {} {}", bundle.compatible, bundle.version);
    }
    rauc.install(&source, &args, &mut |p| println!("{:>3}% {}", p.percent, p.message)).map_err(|e| e.to_string())?;
    // What RAUC recorded for the slot it wrote, the new primary.
    let primary = rauc.primary().map_err(|e| e.to_string())?;
    let slots = rauc.slots().map_err(|e| e.to_string())?;
    let version = slots.iter().find(|s| s.name == primary).and_then(|s| s.bundle_version.as_deref()).unwrap_or("?");
    println!("installed {version} into {primary}; reboot to run it");
    Ok(())
}

pub fn status() -> Result<(), String> {
    let rauc = Rauc::connect().map_err(|e| e.to_string())?;
    let booted = rauc.booted().map_err(|e| e.to_string())?;
    let primary = rauc.primary().map_err(|e| e.to_string())?;
    let operation = rauc.operation().map_err(|e| e.to_string())?;
    let mut slots = rauc.slots().map_err(|e| e.to_string())?;
    slots.sort_by(|a, b| a.name.cmp(&b.name));
    println!("booted: {booted}\nprimary: {primary}\noperation: {operation:?}");
    for slot in &slots {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        println!(
            "{}: bootname {}, state {}, boot status {}, version {}, installed {}",
            slot.name,
            or_dash(&slot.bootname),
            slot.state.map_or("-".into(), |s| format!("{s:?}").to_lowercase()),
            slot.boot_status.map_or("-".into(), |s| format!("{s:?}").to_lowercase()),
            or_dash(&slot.bundle_version),
            or_dash(&slot.installed_timestamp),
        );
    }
    Ok(())
}

pub fn mark(mark: Mark, slot: &str) -> Result<(), String> {
    let rauc = Rauc::connect().map_err(|e| e.to_string())?;
    let (marked, message) = rauc.mark(mark, slot).map_err(|e| e.to_string())?;
    println!("{marked}: {message}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(compatible: &str, version: &str) -> BundleInfo {
        BundleInfo { compatible: compatible.into(), version: version.into() }
    }

    #[test]
    fn another_devices_bundle_is_refused() {
        let refusal = admit(&bundle("other", "9"), "makespacelive", Some("1")).unwrap_err();
        assert!(matches!(refusal, Refusal::Incompatible { .. }));
        assert!(refusal.to_string().contains("\"other\""));
    }

    #[test]
    fn older_bundles_are_refused() {
        let older = bundle("msl", "0.1.9");
        let refusal = admit(&older, "msl", Some("0.1.10")).unwrap_err();
        assert_eq!(refusal, Refusal::Older { bundle: "0.1.9".into(), running: "0.1.10".into() });
        assert!(refusal.to_string().ends_with("(--force installs it)"));
        assert_eq!(admit(&older, "msl", Some("0.1.9")), Ok(()));
        assert_eq!(admit(&older, "msl", None), Ok(()));
        assert_eq!(admit(&bundle("msl", "0.2"), "msl", Some("0.1.10")), Ok(()));
    }

    #[test]
    fn local_bundles_are_given_by_absolute_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.raucb"), b"x").unwrap();
        let relative = dir.path().join(".").join("b.raucb");
        assert_eq!(bundle_source(relative.to_str().unwrap()).unwrap(), dir.path().join("b.raucb").to_str().unwrap());
        assert_eq!(bundle_source("https://h/b.raucb").unwrap(), "https://h/b.raucb");
        assert!(bundle_source("/nonexistent/b.raucb").unwrap_err().starts_with("no bundle at /nonexistent/b.raucb"));
        assert!(bundle_source(dir.path().to_str().unwrap()).unwrap_err().ends_with("is not a bundle file"));
    }
}
