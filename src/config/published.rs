//! The settings in force, published: one writer of the settings file in the service,
//! every thread a reader.
//!
//! Invariant: the user's settings file is written, and the settings in force published,
//! only through [`Settings`] (one lock: a save and a reload never interleave); what is
//! published is always what the files load to, never a half-applied change. A writer
//! killed mid-save leaves a temp copy beside the file (it holds the stream keys): the
//! next start or save removes it.
//!
//! Boundary: [`Settings::load`] once in `main`; `save` (the web), `reload` (SIGHUP);
//! threads take a [`Reader`] and react to their own section when its version moves.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{Config, Loaded, load, save_change, user_config_path};
use crate::fsutil;
use crate::state::{self, Reader, Snapshot, Writer};

/// Where the settings are read from and saved to.
pub struct Files {
    /// The shipped defaults (read-only).
    pub defaults: PathBuf,
    /// Where the user's config.toml lives.
    pub data_dir: PathBuf,
    /// The environment (the prototype's `AV_*` variables).
    pub env: fn(&str) -> Option<String>,
}

/// Why a change was not saved: the change itself refused it (its own error), or the
/// settings could not be read, checked or written (said in words).
#[derive(Debug)]
pub enum SaveError<E> {
    Refused(E),
    NotSaved(String),
}

/// The handle on the settings: cheap to clone, one writer behind it.
#[derive(Clone)]
pub struct Settings {
    inner: Arc<Inner>,
}

struct Inner {
    files: Files,
    writer: Mutex<Writer<Loaded>>,
    reader: Reader<Loaded>,
}

impl Settings {
    /// Loads the settings in force at start (an error in the shipped defaults is fatal).
    pub fn load(files: Files) -> Result<Settings, String> {
        remove_stale_copies(&files);
        let loaded = load(&files.defaults, Some(&files.data_dir), files.env)?;
        loaded.log();
        let (writer, reader) = state::channel(loaded);
        Ok(Settings { inner: Arc::new(Inner { files, writer: Mutex::new(writer), reader }) })
    }

    pub fn get(&self) -> Snapshot<Loaded> {
        self.inner.reader.get()
    }

    pub fn reader(&self) -> Reader<Loaded> {
        self.inner.reader.clone()
    }

    /// Applies `change` to the settings in force as the files hold them now, checks the
    /// whole, saves it atomically, and publishes what the files then load to.
    pub fn save<E>(&self, change: impl FnOnce(&mut Config) -> Result<(), E>) -> Result<Snapshot<Loaded>, SaveError<E>> {
        let writer = self.writer();
        let files = &self.inner.files;
        remove_stale_copies(files);
        let mut refused = None;
        let saved = save_change(&files.defaults, &files.data_dir, |config| {
            change(config).map_err(|e| {
                refused = Some(e);
                String::new()
            })
        });
        if let Some(e) = refused {
            return Err(SaveError::Refused(e));
        }
        saved.map_err(SaveError::NotSaved)?;
        let loaded = load(&files.defaults, Some(&files.data_dir), files.env).map_err(SaveError::NotSaved)?;
        publish(&writer, loaded);
        Ok(writer.get())
    }

    /// Re-reads the files (a hand edit, then SIGHUP); a failure keeps the settings in
    /// force. Returns whether anything changed.
    pub fn reload(&self) -> bool {
        let writer = self.writer();
        let files = &self.inner.files;
        match load(&files.defaults, Some(&files.data_dir), files.env) {
            Ok(loaded) => publish(&writer, loaded),
            Err(why) => {
                tracing::error!("settings: reload failed, keeping the ones in force: {why}");
                false
            }
        }
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer<Loaded>> {
        self.inner.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Publishes `loaded` if it differs from what is in force; logs what it says.
fn publish(writer: &Writer<Loaded>, loaded: Loaded) -> bool {
    if *writer.get() == loaded {
        tracing::info!("settings: reloaded, nothing changed");
        return false;
    }
    loaded.log();
    let version = writer.publish(loaded);
    tracing::info!("settings: new settings in force (version {version})");
    true
}

fn remove_stale_copies(files: &Files) {
    let path = user_config_path(&files.data_dir);
    if let Err(e) = fsutil::remove_stale_temps(&path) {
        tracing::warn!("settings: cannot remove the copies a stopped save left beside {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &std::path::Path) -> Files {
        let defaults = dir.join("defaults.toml");
        std::fs::write(&defaults, "[video]\nbitrate_kbps = 2500\n").unwrap();
        Files { defaults, data_dir: dir.join("data"), env: |_| None }
    }

    #[test]
    fn a_save_is_published_with_a_new_version_and_a_refusal_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load(files(dir.path())).unwrap();
        let reader = settings.reader();
        assert_eq!(reader.get().version, 1);
        let saved = settings.save(|c| -> Result<(), String> {
            c.video.bitrate_kbps = 1800;
            Ok(())
        });
        assert_eq!(saved.unwrap().config.video.bitrate_kbps, 1800);
        assert_eq!((reader.get().version, reader.get().config.video.bitrate_kbps), (2, 1800));
        let refused = settings.save(|c| {
            c.video.bitrate_kbps = 900;
            Err("no")
        });
        assert!(matches!(refused, Err(SaveError::Refused("no"))));
        let invalid = settings.save(|c| -> Result<(), String> {
            c.video.bitrate_kbps = 0;
            Ok(())
        });
        assert!(
            matches!(invalid, Err(SaveError::NotSaved(ref why)) if why.contains("video.bitrate_kbps")),
            "{invalid:?}"
        );
        assert_eq!((reader.get().version, reader.get().config.video.bitrate_kbps), (2, 1800));
    }

    #[test]
    fn a_reload_publishes_a_hand_edit_and_only_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load(files(dir.path())).unwrap();
        assert!(!settings.reload(), "nothing changed on disk");
        assert_eq!(settings.get().version, 1);
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/config.toml"), "[video]\nbitrate_kbps = 1200\n").unwrap();
        assert!(settings.reload());
        assert_eq!((settings.get().version, settings.get().config.video.bitrate_kbps), (2, 1200));
    }

    #[test]
    fn copies_a_killed_save_left_are_removed_at_start_and_at_the_next_save() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        // No process has pid u32::MAX - 1 (pid_max is at most 2^22).
        let stale = |n: u32| data.join(format!(".config.toml.tmp-{}-{n:016x}", u32::MAX - 1));
        std::fs::write(stale(1), "key = \"secret\"").unwrap();
        let settings = Settings::load(files(dir.path())).unwrap();
        assert!(!stale(1).exists());
        std::fs::write(stale(2), "key = \"secret\"").unwrap();
        settings.save(|_| -> Result<(), String> { Ok(()) }).unwrap();
        assert!(!stale(2).exists());
    }
}
