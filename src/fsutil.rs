//! File operations that must not lose data on a box that can lose power at any moment.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Temp file in the same directory, fsync, rename over the target, fsync the directory:
/// after a power cut the file is either the old one or the new one, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().ok_or_else(|| io::Error::other("path has no file name"))?;
    let tmp = dir.join(format!("{}{}", temp_prefix(name), std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn temp_prefix(name: &std::ffi::OsStr) -> String {
    format!(".{}.tmp-", name.to_string_lossy())
}

/// Removes the temp files `write_atomic` left for `path` when a writer was killed (their
/// process is gone); a live writer's temp file is left alone.
pub fn remove_stale_temps(path: &Path) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let prefix = temp_prefix(path.file_name().ok_or_else(|| io::Error::other("path has no file name"))?);
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(&prefix)).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Deletes a file; one that is not there is no error.
pub fn remove(path: &Path) -> Result<(), String> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(format!("cannot delete {}: {e}", path.display())),
        _ => Ok(()),
    }
}

/// Renames a file that could not be used to `NAME.bad-UNIXTIME` (never deletes it), so the
/// person can still recover what they typed.
pub fn keep_aside(path: &Path) -> io::Result<PathBuf> {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let name = path.file_name().ok_or_else(|| io::Error::other("path has no file name"))?.to_string_lossy();
    let aside = (0..)
        .map(|n| {
            let suffix = if n == 0 { String::new() } else { format!(".{n}") };
            path.with_file_name(format!("{name}.bad-{stamp}{suffix}"))
        })
        .find(|candidate| !candidate.exists())
        .expect("an unused name exists");
    fs::rename(path, &aside)?;
    if let Some(dir) = aside.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/f.toml");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temps_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.txt");
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        let stale = dir.path().join(format!(".config.txt.tmp-{dead_pid}"));
        let live = dir.path().join(format!(".config.txt.tmp-{}", std::process::id()));
        let other = dir.path().join(".other.tmp-1");
        for file in [&stale, &live, &other] {
            fs::write(file, "x").unwrap();
        }
        remove_stale_temps(&path).unwrap();
        assert!(!stale.exists());
        assert!(live.exists() && other.exists());
    }

    #[test]
    fn keep_aside_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        fs::write(&path, "first").unwrap();
        let a = keep_aside(&path).unwrap();
        fs::write(&path, "second").unwrap();
        let b = keep_aside(&path).unwrap();
        assert_ne!(a, b);
        assert_eq!(fs::read_to_string(a).unwrap(), "first");
        assert_eq!(fs::read_to_string(b).unwrap(), "second");
    }
}
