//! Writing config.txt so a power cut leaves the old or the new file: remount the boot
//! partition read-write if it is read-only, atomic write, remount read-only again. A mount
//! that was read-write stays so (RAUC's U-Boot backend writes uboot.env there).

use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sys::statvfs::{FsFlags, statvfs};

use crate::fsutil;

/// In the runtime directory: one line per config.txt change since boot.
pub const REBOOT_NEEDED: &str = "reboot-needed";

/// The largest marker read: a line per change since boot.
const MARKER_LIMIT: u64 = 64 << 10;

pub fn read_marker(answers_dir: &Path) -> Option<String> {
    let bytes = fsutil::read_bounded(&answers_dir.join(REBOOT_NEEDED), MARKER_LIMIT).ok()??;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The marker first: a writer killed in between leaves a marker for a change not made
/// (a harmless reboot), never a change without one. A failed write restores the marker.
pub fn write_config_marked(path: &Path, contents: &[u8], answers_dir: &Path, changes: &[String]) -> Result<(), String> {
    let marker = answers_dir.join(REBOOT_NEEDED);
    let before = read_marker(answers_dir);
    let mut text = before.clone().unwrap_or_default();
    for change in changes {
        text.push_str(change);
        text.push('\n');
    }
    let write_marker = |text: &str| {
        fsutil::remove_stale_temps(&marker)
            .and_then(|()| fsutil::write_atomic(&marker, text.as_bytes(), 0o644))
            .map_err(|e| format!("{}: {e}", marker.display()))
    };
    write_marker(&text)?;
    write_config(path, contents).inspect_err(|_| {
        let _ = match &before {
            Some(text) => write_marker(text),
            None => std::fs::remove_file(&marker).map_err(|e| e.to_string()),
        };
    })
}

fn write_config(path: &Path, contents: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |e: io::Error| format!("{}: {e}", path.display());
    let stat = statvfs(dir).map_err(|e| fail(e.into()))?;
    let read_only = stat.flags().contains(FsFlags::ST_RDONLY);
    let mount_point = if read_only { Some(mount_point_of(dir).map_err(fail)?) } else { None };
    let keep = kept_flags(stat.flags());
    if let Some(point) = &mount_point {
        remount(point, keep).map_err(|e| format!("remounting {} read-write: {e}", point.display()))?;
    }
    let written = fsutil::remove_stale_temps(path).and_then(|()| fsutil::write_atomic(path, contents, 0o644));
    let again = match &mount_point {
        Some(point) => remount(point, keep | MsFlags::MS_RDONLY)
            .map_err(|e| format!("remounting {} read-only again: {e}", point.display())),
        None => Ok(()),
    };
    written.map_err(fail)?;
    again
}

/// A remount replaces the per-mount flags: carry over the ones statvfs shows.
fn kept_flags(flags: FsFlags) -> MsFlags {
    let pairs = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_SYNCHRONOUS, MsFlags::MS_SYNCHRONOUS),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    pairs.into_iter().filter(|(st, _)| flags.contains(*st)).fold(MsFlags::MS_REMOUNT, |acc, (_, ms)| acc | ms)
}

fn remount(point: &Path, flags: MsFlags) -> nix::Result<()> {
    mount(None::<&str>, point, None::<&str>, flags, None::<&str>)
}

/// The longest mount point in /proc/self/mountinfo that holds `dir`; of equal ones the last
/// (the image's /boot is a vfat mount over its systemd automount point).
fn mount_point_of(dir: &Path) -> io::Result<PathBuf> {
    let dir = dir.canonicalize()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    mount_points(&info)
        .into_iter()
        .filter(|point| dir.starts_with(point))
        .max_by_key(|point| point.as_os_str().len())
        .ok_or_else(|| io::Error::other("no mount point found in /proc/self/mountinfo"))
}

/// Field 5 of each mountinfo line, with its octal escapes (`\040` for a space) undone.
fn mount_points(info: &str) -> Vec<PathBuf> {
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| {
            let mut out = Vec::new();
            let bytes = field.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                let octal =
                    bytes.get(i + 1..i + 4).and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
                match (bytes[i], octal) {
                    (b'\\', Some(byte)) => {
                        out.push(byte);
                        i += 4;
                    }
                    (byte, _) => {
                        out.push(byte);
                        i += 1;
                    }
                }
            }
            PathBuf::from(std::ffi::OsString::from_vec(out))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_points_are_unescaped() {
        let info = "22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n\
                    30 22 8:1 / /boot\\040fat ro,relatime shared:5 - vfat /dev/sda1 ro\n";
        assert_eq!(mount_points(info), [PathBuf::from("/"), PathBuf::from("/boot fat")]);
    }

    #[test]
    fn remount_keeps_the_mount_flags() {
        let flags = kept_flags(FsFlags::ST_RDONLY | FsFlags::ST_NOEXEC | FsFlags::ST_NODEV);
        assert_eq!(flags, MsFlags::MS_REMOUNT | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV);
    }

    #[test]
    fn a_plain_directory_is_written_without_remount() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.txt");
        std::fs::write(&path, "old").unwrap();
        let run = dir.path().join("run");
        write_config_marked(&path, b"new", &run, &["one".into()]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        write_config_marked(&path, b"newer", &run, &["two".into()]).unwrap();
        assert_eq!(std::fs::read_to_string(run.join(REBOOT_NEEDED)).unwrap(), "one\ntwo\n");
        // A write that fails leaves the marker as it was.
        let missing = dir.path().join("no-such-dir/config.txt");
        assert!(write_config_marked(&missing, b"x", &run, &["three".into()]).is_err());
        assert_eq!(std::fs::read_to_string(run.join(REBOOT_NEEDED)).unwrap(), "one\ntwo\n");
    }
}
