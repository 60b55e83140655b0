//! What the box remembers about an update across reboots, on the data partition:
//! `pending.json` from the install until the server has heard the outcome, then
//! `last.json`, what happened to the last update (for the status page and the CLI).
//!
//! **Invariant:** written atomically; read leniently (no `deny_unknown_fields`: an older
//! firmware, after a rollback, must read what a newer one wrote). A record that does not
//! parse is kept aside and reported, never fatal.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil;

/// An installed update the box has not yet judged, or judged but not yet reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub origin: Origin,
    pub from_version: String,
    pub to_version: String,
    /// The slot (bootname) that ran the install.
    pub from_slot: String,
    /// The slot (bootname) the install made primary: the one that should boot next.
    pub expect_slot: String,
    /// The kernel's boot id at the install: the same id means no reboot yet.
    pub boot_id: String,
    pub installed_at: u64,
    /// The boot id and uptime (s) at which the new version's health check began.
    #[serde(default)]
    pub verifying: Option<(String, u64)>,
    /// Why the new system was judged unhealthy, written before it rolls back.
    #[serde(default)]
    pub failure: Option<String>,
    /// The verdict, once there is one; the record stays until the server has it.
    #[serde(default)]
    pub outcome: Option<Outcome>,
}

/// Where a bundle came from, and so whom to tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Origin {
    /// `makespacelive update install` (or the web upload): nobody to tell.
    File { path: String },
    /// A manifest: nobody to tell but the status page.
    Manifest { url: String },
    /// A hawkBit deployment: the action to send feedback to.
    Hawkbit { server: String, tenant: String, controller_id: String, action_id: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub success: bool,
    /// In words: "running 0.2.0 on slot B" or why it failed.
    pub details: String,
    pub at: u64,
}

/// The last update's story as the status page and the CLI tell it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Last {
    pub origin: Origin,
    pub from_version: String,
    pub to_version: String,
    pub outcome: Outcome,
}

pub struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn new(data_dir: &Path) -> Records {
        Records { dir: data_dir.join("update") }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pending(&self) -> Result<Option<Pending>, String> {
        read(&self.dir.join("pending.json"))
    }

    pub fn last(&self) -> Result<Option<Last>, String> {
        read(&self.dir.join("last.json"))
    }

    pub fn save_pending(&self, pending: &Pending) -> Result<(), String> {
        write(&self.dir.join("pending.json"), pending)
    }

    /// The outcome has been told to whom it concerns: it becomes the last update's story.
    pub fn close(&self, pending: &Pending, outcome: Outcome) -> Result<(), String> {
        let last = Last {
            origin: pending.origin.clone(),
            from_version: pending.from_version.clone(),
            to_version: pending.to_version.clone(),
            outcome,
        };
        write(&self.dir.join("last.json"), &last)?;
        let path = self.dir.join("pending.json");
        std::fs::remove_file(&path).map_err(|e| format!("{}: cannot remove: {e}", path.display()))
    }
}

/// The largest record read: a few hundred bytes each.
const RECORD_LIMIT: u64 = 64 << 10;

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, String> {
    // `update install` reads them as root: never through a link, never a FIFO.
    let text = match fsutil::read_bounded(path, RECORD_LIMIT) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    serde_json::from_slice(&text).map(Some).map_err(|e| {
        let aside =
            fsutil::keep_aside(path).map_or_else(|e| format!("not kept aside: {e}"), |p| p.display().to_string());
        format!("{}: not an update record ({e}); kept aside as {aside}", path.display())
    })
}

fn write<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| format!("cannot serialise {}: {e}", path.display()))?;
    fsutil::write_atomic(path, text.as_bytes(), 0o600).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> Pending {
        Pending {
            origin: Origin::Hawkbit {
                server: "https://h".into(),
                tenant: "DEFAULT".into(),
                controller_id: "box".into(),
                action_id: "7".into(),
            },
            from_version: "0.1.0".into(),
            to_version: "0.2.0".into(),
            from_slot: "A".into(),
            expect_slot: "B".into(),
            boot_id: "b1".into(),
            installed_at: 1,
            verifying: None,
            failure: None,
            outcome: None,
        }
    }

    #[test]
    fn pending_then_last() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::new(dir.path());
        assert_eq!(records.pending(), Ok(None));
        records.save_pending(&pending()).unwrap();
        assert_eq!(records.pending(), Ok(Some(pending())));
        let outcome = Outcome { success: true, details: "running 0.2.0 on slot B".into(), at: 2 };
        records.close(&pending(), outcome.clone()).unwrap();
        assert_eq!(records.pending(), Ok(None));
        assert_eq!(records.last().unwrap().unwrap().outcome, outcome);
    }

    /// An older firmware reads what a newer one wrote (a rollback).
    #[test]
    fn a_newer_record_is_read_and_a_bad_one_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::new(dir.path());
        let mut newer = serde_json::to_value(pending()).unwrap();
        newer["signed_by"] = "ca-2".into();
        newer["origin"]["retries"] = 3.into();
        std::fs::create_dir_all(records.dir()).unwrap();
        std::fs::write(records.dir().join("pending.json"), newer.to_string()).unwrap();
        assert_eq!(records.pending(), Ok(Some(pending())));
        std::fs::write(records.dir().join("pending.json"), "{half").unwrap();
        let err = records.pending().unwrap_err();
        assert!(err.contains("pending.json: not an update record") && err.contains("kept aside as"), "{err}");
        assert_eq!(records.pending(), Ok(None));
    }
}
