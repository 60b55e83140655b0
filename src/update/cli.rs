//! `makespacelive update …`: the operator's side of updates. `install` and `status`
//! talk to RAUC and keep the pending record as the service does; `check` and `download`
//! ask the configured source; `reboot` asks systemd through the service's runtime
//! directory. What may be installed is decided by `admit`, a pure function.

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::rauc::{BundleInfo, Mark, Rauc};
use super::record::{Origin, Records};
use super::source::Source;
use super::version;
use crate::config;

#[derive(Subcommand)]
pub enum Action {
    /// The slots, the running version, an update waiting for its verdict, the last one's.
    Status(Files),
    /// Install a bundle (a file, or a URL RAUC streams) into the other slot; it runs after
    /// a reboot, and counts as a success only once it has proved healthy there.
    Install {
        source: String,
        /// Install even when the bundle is older than the running version (as root, at the
        /// box: RAUC's pre-install handler refuses it otherwise).
        #[arg(long)]
        force: bool,
        /// Reboot into it at once (otherwise the service reboots once the stream is idle,
        /// as `update.reboot` says).
        #[arg(long)]
        reboot: bool,
        #[command(flatten)]
        files: Files,
    },
    /// Ask the configured update source (`[update]`) what it offers now (JSON).
    Check(Files),
    /// Download what the source offers into DIR (resumed, digest checked), not installed.
    Download {
        dir: PathBuf,
        #[command(flatten)]
        files: Files,
    },
    /// Reboot now (into an installed update, or for a boot-config change).
    Reboot(Files),
    /// RAUC's pre-install handler (run by RAUC as root, the bundle's version in
    /// RAUC_MF_VERSION): refuses a bundle older than the running version, unless
    /// `update install --force` was given on the console for exactly that version.
    PreInstall(Files),
    /// Mark a slot good, bad or active (primary for the next boot), as `rauc status mark-*`.
    Mark {
        mark: Mark,
        /// `booted`, `other` or a slot name such as `rootfs.1`.
        #[arg(default_value = "booted")]
        slot: String,
    },
}

/// Where the settings and records are, as for `run`.
#[derive(Args)]
pub struct Files {
    #[arg(long, default_value = crate::DEFAULT_CONFIG)]
    config: PathBuf,
    #[arg(long, default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    #[arg(long, default_value = crate::DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
}

pub fn run(action: Action) -> Result<(), String> {
    match action {
        Action::Status(files) => status(&files),
        Action::Install { source, force, reboot, files } => install(&source, force, reboot, &files),
        Action::Check(files) => check(&files),
        Action::Download { dir, files } => download(&dir, &files),
        Action::Reboot(files) => super::request_reboot(&files.runtime_dir, "as asked on the command line"),
        Action::PreInstall(files) => pre_install(&files),
        Action::Mark { mark, slot } => {
            let (marked, message) = rauc()?.mark(mark, &slot).map_err(|e| e.to_string())?;
            println!("{marked}: {message}");
            Ok(())
        }
    }
}

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
/// slot's bundle version; none on a system never updated).
pub fn admit(bundle: &BundleInfo, compatible: &str, running: Option<&str>, force: bool) -> Result<(), Refusal> {
    if bundle.compatible != compatible {
        return Err(Refusal::Incompatible { bundle: bundle.compatible.clone(), system: compatible.to_string() });
    }
    match running {
        Some(running) if !force && version::compare(&bundle.version, running) == Ordering::Less => {
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

fn rauc() -> Result<Rauc, String> {
    Rauc::connect().map_err(|e| e.to_string())
}

/// In root's answers directory: the one version `update install --force` lets RAUC's
/// pre-install handler take although it is older. The service cannot write there.
const DOWNGRADE_ALLOWED: &str = "downgrade-allowed";

/// The pre-install handler's verdict on `bundle` (RAUC_MF_VERSION) over `running`, with
/// `allowed` the version the console allowed, if any.
fn pre_install_admits(bundle: &str, running: Option<&str>, allowed: Option<&str>) -> Result<(), String> {
    match running {
        Some(running) if version::compare(bundle, running).is_lt() && allowed != Some(bundle) => Err(format!(
            "the bundle's version {bundle} is older than the running {running}: refused (an older version is \
             installed only from the box's console: makespacelive update install --force, as root)"
        )),
        _ => Ok(()),
    }
}

/// The bundle's version as RAUC gives it to its handler: `RAUC_MF_VERSION` where RAUC
/// exports it, else the `[update] version=` of the verified bundle's manifest mounted at
/// `RAUC_BUNDLE_MOUNT_POINT` (RAUC 1.8 exports no manifest values to system handlers).
fn bundle_version() -> Result<String, String> {
    if let Ok(version) = std::env::var("RAUC_MF_VERSION") {
        return Ok(version);
    }
    let mount =
        std::env::var("RAUC_BUNDLE_MOUNT_POINT").map_err(|_| "run by RAUC only (no RAUC_BUNDLE_MOUNT_POINT)")?;
    let manifest = Path::new(&mount).join("manifest.raucm");
    let text = std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    manifest_version(&text).ok_or_else(|| format!("{}: no [update] version", manifest.display()))
}

/// `version` in the `[update]` group of a RAUC manifest (a GLib key file).
fn manifest_version(manifest: &str) -> Option<String> {
    let mut group = "";
    manifest.lines().map(str::trim).find_map(|line| {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            group = name;
            return None;
        }
        let (key, value) = line.split_once('=')?;
        (group == "update" && key.trim() == "version").then(|| value.trim().to_string())
    })
}

fn pre_install(files: &Files) -> Result<(), String> {
    let bundle = bundle_version()?;
    let running = super::os_version(&std::fs::read_to_string(super::os_release_path()).unwrap_or_default());
    let marker = crate::bootcfg::answers_dir(&files.runtime_dir).join(DOWNGRADE_ALLOWED);
    let allowed = crate::fsutil::read_bounded(&marker, 256)
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string());
    pre_install_admits(&bundle, running.as_deref(), allowed.as_deref())?;
    println!("version {bundle} over {}: installed", running.as_deref().unwrap_or("an unknown version"));
    Ok(())
}

fn install(source: &str, force: bool, reboot: bool, files: &Files) -> Result<(), String> {
    let bundle = bundle_source(source)?;
    let rauc = rauc()?;
    let running = super::running(&rauc)?;
    // Root at the console lets RAUC's pre-install handler take this one older version.
    let marker = crate::bootcfg::answers_dir(&files.runtime_dir).join(DOWNGRADE_ALLOWED);
    if force {
        if !nix::unistd::Uid::effective().is_root() {
            return Err("--force installs an older version only as root, at the box".into());
        }
        let version = rauc.bundle_info(&bundle, &Default::default()).map_err(|e| e.to_string())?.version;
        crate::fsutil::write_atomic(&marker, version.as_bytes(), 0o644).map_err(|e| e.to_string())?;
    }
    let records = Records::new(&files.data_dir);
    let installed = (|| {
        if let Some(pending) = records.pending()?.filter(|p| p.outcome.is_none()) {
            return Err(format!("{}: reboot first (makespacelive update reboot)", super::waiting_for_reboot(&pending)));
        }
        let mut shown = None;
        let origin = Origin::File { path: bundle.clone() };
        super::install(&rauc, &running, &bundle, origin, force, &records, &mut |p| {
            if shown != Some(p.percent) {
                shown = Some(p.percent);
                println!("{:>3}% {}", p.percent, p.message);
            }
        })
        .map_err(String::from)
    })();
    if force {
        let _ = std::fs::remove_file(&marker);
    }
    let pending = installed?;
    println!("installed {} into slot {}", pending.to_version, pending.expect_slot);
    if reboot {
        super::request_reboot(
            &files.runtime_dir,
            &format!("to run {} from slot {}", pending.to_version, pending.expect_slot),
        )
    } else {
        println!(
            "it runs after a reboot: the service reboots once the stream is idle (update.reboot), or `makespacelive update reboot`"
        );
        Ok(())
    }
}

fn status(files: &Files) -> Result<(), String> {
    let rauc = rauc()?;
    let running = super::running(&rauc)?;
    let primary = rauc.primary().map_err(|e| e.to_string())?;
    let operation = rauc.operation().map_err(|e| e.to_string())?;
    let mut slots = rauc.slots().map_err(|e| e.to_string())?;
    slots.sort_by(|a, b| a.name.cmp(&b.name));
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("booted: {} (version {})", running.slot, or_dash(&running.version));
    println!("primary: {primary}\noperation: {operation:?}\ncompatible: {}", running.compatible);
    for slot in &slots {
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
    let records = Records::new(&files.data_dir);
    if let Some(p) = records.pending()? {
        println!(
            "pending: {} → {} into slot {} (from {})",
            p.from_version,
            p.to_version,
            p.expect_slot,
            origin(&p.origin)
        );
    }
    if let Some(last) = records.last()? {
        let verdict = if last.outcome.success { "success" } else { "failure" };
        println!("last update: {} → {}: {verdict}: {}", last.from_version, last.to_version, last.outcome.details);
    }
    if let Some(changes) = crate::bootcfg::reboot_needed(&crate::bootcfg::answers_dir(&files.runtime_dir)) {
        println!("reboot needed: {changes}");
    }
    Ok(())
}

fn origin(origin: &Origin) -> String {
    match origin {
        Origin::File { path } => path.clone(),
        Origin::Manifest { url } => format!("manifest {url}"),
        Origin::Hawkbit { server, action_id, .. } => format!("hawkBit {server}, action {action_id}"),
    }
}

/// The configured source, for a box of this version and compatible as RAUC has them
/// (hawkBit is told them: without RAUC it is not asked; a manifest does not need them).
fn configured_source(files: &Files) -> Result<Source, String> {
    let loaded = config::load(&files.config, Some(&files.data_dir), |name| std::env::var(name).ok())?;
    // The service runs on the shipped defaults then; asking them instead would hide why.
    if !loaded.problems.is_empty() {
        return Err(loaded.problems.join("\n"));
    }
    let (version, compatible) = match rauc().and_then(|r| super::running(&r)) {
        Ok(running) => (running.version.unwrap_or_default(), running.compatible),
        Err(why) if loaded.config.update.source == config::UpdateSource::Hawkbit => {
            return Err(format!("hawkBit is told this box's version and compatible, and RAUC cannot say them: {why}"));
        }
        Err(_) => (String::new(), String::new()),
    };
    Source::from_config(&loaded.config.update, &version, &compatible)?
        .ok_or_else(|| "no update source is configured (update.source = \"none\")".to_string())
}

fn check(files: &Files) -> Result<(), String> {
    let checked = configured_source(files)?.check()?;
    let shown = checked.offer.map(|offer| {
        serde_json::json!({
            "version": offer.version,
            "compatible": offer.compatible,
            "file": offer.filename,
            "size": offer.artifact.size,
            "url": super::http::shown(&offer.artifact.url),
            "action": offer.action.as_ref().map(|(id, _)| id),
            "update": offer.action.as_ref().map(|(_, handling)| format!("{handling:?}").to_lowercase()),
        })
    });
    println!("{}", serde_json::json!({ "offer": shown, "next_check_s": checked.sleep.map(|s| s.as_secs()) }));
    Ok(())
}

fn download(dir: &Path, files: &Files) -> Result<(), String> {
    let source = configured_source(files)?;
    let offer = source.check()?.offer.ok_or("the update source offers nothing now")?;
    let mut shown_percent = None;
    let file = source.fetch(&offer, dir, &mut |bytes: u64, total: u64| {
        let percent = bytes.saturating_mul(100) / total.max(1);
        if shown_percent != Some(percent / 10) {
            shown_percent = Some(percent / 10);
            eprintln!("progress {bytes}/{total}");
        }
    })?;
    println!("downloaded {}", file.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(compatible: &str, version: &str) -> BundleInfo {
        BundleInfo { compatible: compatible.into(), version: version.into() }
    }

    #[test]
    fn another_devices_bundle_is_refused_even_forced() {
        let refusal = admit(&bundle("other", "9"), "makespacelive", Some("1"), true).unwrap_err();
        assert!(matches!(refusal, Refusal::Incompatible { .. }));
        assert!(refusal.to_string().contains("\"other\""));
    }

    #[test]
    fn older_bundles_need_force() {
        let older = bundle("msl", "0.1.9");
        assert_eq!(
            admit(&older, "msl", Some("0.1.10"), false),
            Err(Refusal::Older { bundle: "0.1.9".into(), running: "0.1.10".into() })
        );
        assert_eq!(admit(&older, "msl", Some("0.1.10"), true), Ok(()));
        assert_eq!(admit(&older, "msl", Some("0.1.9"), false), Ok(()));
        assert_eq!(admit(&older, "msl", None, false), Ok(()));
        assert_eq!(admit(&bundle("msl", "0.2"), "msl", Some("0.1.10"), false), Ok(()));
    }

    /// RAUC's pre-install handler: the service (or a bug in it, or anyone reaching RAUC's
    /// D-Bus API as it can) cannot install an older version; root at the console can,
    /// for exactly the version it named.
    #[test]
    fn the_pre_install_handler_refuses_an_older_version_unless_the_console_allowed_it() {
        let refused = pre_install_admits("0.1.9", Some("0.1.10"), None).unwrap_err();
        assert!(refused.contains("older than the running 0.1.10") && refused.contains("--force"), "{refused}");
        assert!(pre_install_admits("0.1.9", Some("0.1.10"), Some("0.1.8")).is_err(), "another version allowed");
        assert_eq!(pre_install_admits("0.1.9", Some("0.1.10"), Some("0.1.9")), Ok(()));
        assert_eq!(pre_install_admits("0.2", Some("0.1.10"), None), Ok(()));
        assert_eq!(pre_install_admits("0.1.10", Some("0.1.10"), None), Ok(()), "a reinstall");
        assert_eq!(pre_install_admits("0.1.9", None, None), Ok(()), "not our OS: nothing to judge");
        let manifest = "[update]\ncompatible=makespacelive-raspberrypi3\nversion=0.3.0\n\n[image.rootfs]\nversion=9\n";
        assert_eq!(manifest_version(manifest).as_deref(), Some("0.3.0"));
        assert_eq!(manifest_version("[image.rootfs]\nversion=9\n"), None);
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
