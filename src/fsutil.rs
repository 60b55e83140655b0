//! File operations that must not lose data on a box that can lose power at any moment,
//! and must not be turned against root by a user who owns the directory.
//!
//! **Invariant:** every file is named relative to a `Dir` opened component by component
//! without following a symlink, so no path the directory's owner can swap is ever opened;
//! files are created only under fresh random names (`O_EXCL|O_NOFOLLOW`), read only when
//! they are regular files with one link and within a size, and what root creates in a
//! directory belongs to that directory's owner (root writing the service's settings leaves
//! them the service's). **API:** `Dir` and the path-taking shorthands `write_atomic`,
//! `read_bounded`, `take`.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fsync, unlinkat};

/// A directory held open: everything in it is reached through this handle.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens `path` one component at a time, refusing a symlink anywhere on the way.
    pub fn open(path: &Path) -> io::Result<Dir> {
        Dir::walk(path, false)
    }

    /// As `open`, making the directories that are missing (mode 0755, or 0700 under a
    /// directory closed to others) with the owner of the directory they are made in.
    pub fn create(path: &Path) -> io::Result<Dir> {
        Dir::walk(path, true)
    }

    fn walk(path: &Path, create: bool) -> io::Result<Dir> {
        let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let start = if path.is_absolute() { Path::new("/") } else { Path::new(".") };
        let mut dir = Dir { fd: nix::fcntl::open(start, flags, Mode::empty())?, path: start.to_path_buf() };
        for component in path.components() {
            let name = match component {
                Component::Normal(name) => name,
                Component::RootDir | Component::CurDir => continue,
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{}: no `..` here", path.display()),
                    ));
                }
            };
            let next = match openat(&dir.fd, name, flags, Mode::empty()) {
                Err(nix::errno::Errno::ENOENT) if create => {
                    let closed = dir.stat()?.st_mode & 0o077 == 0;
                    match mkdirat(&dir.fd, name, Mode::from_bits_truncate(if closed { 0o700 } else { 0o755 })) {
                        Err(nix::errno::Errno::EEXIST) | Ok(()) => {}
                        Err(e) => return Err(dir.error(name, e.into())),
                    }
                    let made = openat(&dir.fd, name, flags, Mode::empty()).map_err(|e| dir.error(name, e.into()))?;
                    dir.give_to_owner(&made)?;
                    made
                }
                Err(nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR) => {
                    return Err(dir.error(name, io::Error::other("not a directory (a symlink is not followed)")));
                }
                other => other.map_err(|e| dir.error(name, e.into()))?,
            };
            dir = Dir { fd: next, path: dir.path.join(name) };
        }
        Ok(dir)
    }

    fn stat(&self) -> io::Result<FileStat> {
        Ok(fstat(&self.fd)?)
    }

    fn error(&self, name: &OsStr, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.path.join(name).display()))
    }

    /// Root making something in another user's directory hands it to that user; anyone
    /// else already is the owner (or cannot change it, and need not), and in root's own
    /// directories it stays root's (a helper holds no CAP_CHOWN it does not need).
    fn give_to_owner(&self, fd: &impl AsFd) -> io::Result<()> {
        let owner = self.stat()?;
        if !Uid::effective().is_root() || owner.st_uid == 0 {
            return Ok(());
        }
        fchown(fd, Some(Uid::from_raw(owner.st_uid)), Some(Gid::from_raw(owner.st_gid)))?;
        Ok(())
    }

    /// Temp file under a fresh random name, fsync, rename over `name`, fsync the
    /// directory: after a power cut the file is either the old one or the new one.
    pub fn write_atomic(&self, name: &str, contents: &[u8], mode: u32) -> io::Result<()> {
        let tmp = format!("{}{}-{:016x}", temp_prefix(name), std::process::id(), fastrand::u64(..));
        let create = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&self.fd, tmp.as_str(), create, Mode::from_bits_truncate(mode))?;
        let result = (|| {
            self.give_to_owner(&fd)?;
            let mut file = File::from(fd);
            file.write_all(contents)?;
            file.sync_all()?;
            renameat(&self.fd, tmp.as_str(), &self.fd, name)?;
            Ok(fsync(&self.fd)?)
        })();
        if result.is_err() {
            let _ = unlinkat(&self.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        result.map_err(|e: io::Error| self.error(name.as_ref(), e))
    }

    /// The contents of `name` if it is a regular file with a single link and at most
    /// `limit` bytes (never a symlink, a FIFO or a device: nothing here blocks); `None`
    /// when it is not there.
    pub fn read_bounded(&self, name: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let fd = match openat(&self.fd, name, flags, Mode::empty()) {
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            Err(nix::errno::Errno::ELOOP) => {
                return Err(self.error(name.as_ref(), io::Error::other("a symlink (not followed)")));
            }
            other => other.map_err(|e| self.error(name.as_ref(), e.into()))?,
        };
        let stat = fstat(&fd)?;
        let refused = if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            Some("not a regular file".to_string())
        } else if stat.st_nlink != 1 {
            Some(format!("has {} links (one is allowed)", stat.st_nlink))
        } else if stat.st_size as u64 > limit {
            Some(format!("larger than {limit} bytes"))
        } else {
            None
        };
        if let Some(why) = refused {
            return Err(self.error(name.as_ref(), io::Error::new(io::ErrorKind::InvalidData, why)));
        }
        let mut bytes = Vec::new();
        File::from(fd).take(limit + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            return Err(self.error(
                name.as_ref(),
                io::Error::new(io::ErrorKind::InvalidData, format!("larger than {limit} bytes")),
            ));
        }
        Ok(Some(bytes))
    }

    /// Reads (as `read_bounded`) and removes `name`: a request taken from an inbox. A file
    /// refused is removed too (the writer is told nothing by it staying).
    pub fn take(&self, name: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
        let read = self.read_bounded(name, limit);
        self.remove(name)?;
        read
    }

    /// Removes `name` (not following it); one that is not there is no error.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(self.error(name.as_ref(), e.into())),
        }
    }

    /// Removes the temp files `write_atomic` left for `name` when a writer was killed
    /// (their process is gone); a live writer's temp file is left alone.
    pub fn remove_stale_temps(&self, name: &str) -> io::Result<()> {
        let prefix = temp_prefix(name);
        let listing = nix::dir::Dir::openat(
            &self.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut stale = Vec::new();
        for entry in listing.into_iter() {
            let entry = entry?;
            let Ok(file) = std::str::from_utf8(entry.file_name().to_bytes()) else { continue };
            let pid =
                file.strip_prefix(&prefix).and_then(|rest| rest.split('-').next()).and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                stale.push(file.to_string());
            }
        }
        stale.iter().try_for_each(|file| self.remove(file))
    }
}

fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// The directory and the file name of `path`.
fn split(path: &Path) -> io::Result<(&Path, &str)> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| std::str::from_utf8(n.as_bytes()).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{}: no file name", path.display())))?;
    Ok((dir, name))
}

/// `Dir::write_atomic` in `path`'s directory, made if missing.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let (dir, name) = split(path)?;
    Dir::create(dir)?.write_atomic(name, contents, mode)
}

/// `Dir::read_bounded` of `path`.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let (dir, name) = split(path)?;
    match Dir::open(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        other => other?.read_bounded(name, limit),
    }
}

/// `Dir::take` of `path`.
pub fn take(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let (dir, name) = split(path)?;
    Dir::open(dir)?.take(name, limit)
}

/// `Dir::remove_stale_temps` for `path`.
pub fn remove_stale_temps(path: &Path) -> io::Result<()> {
    let (dir, name) = split(path)?;
    match Dir::open(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other?.remove_stale_temps(name),
    }
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

    use std::os::unix::fs::{MetadataExt, symlink};

    /// A file outside the directory under attack, and what it held.
    fn victim(dir: &Path) -> PathBuf {
        let victim = dir.join("victim");
        fs::write(&victim, "SECRET").unwrap();
        victim
    }

    #[test]
    fn a_planted_temp_name_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (inbox, victim) = (dir.path().join("inbox"), victim(dir.path()));
        fs::create_dir(&inbox).unwrap();
        // The names the old writer used (pid only), and the pids around it.
        let pid = std::process::id();
        for p in pid.saturating_sub(20)..pid + 20 {
            symlink(&victim, inbox.join(format!(".f.tmp-{p}"))).unwrap();
        }
        write_atomic(&inbox.join("f"), b"new", 0o644).unwrap();
        assert_eq!(fs::read(inbox.join("f")).unwrap(), b"new");
        assert_eq!(fs::read(&victim).unwrap(), b"SECRET");
        // A file name that is a link is replaced, not written through.
        symlink(&victim, inbox.join("g")).unwrap();
        write_atomic(&inbox.join("g"), b"new", 0o644).unwrap();
        assert!(!fs::symlink_metadata(inbox.join("g")).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&victim).unwrap(), b"SECRET");
    }

    #[test]
    fn a_linked_directory_is_not_entered() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, dir.path().join("link")).unwrap();
        let err = write_atomic(&dir.path().join("link/sub/f"), b"x", 0o644).unwrap_err();
        assert!(err.to_string().contains("a symlink is not followed"), "{err}");
        assert!(read_bounded(&dir.path().join("link/f"), 10).is_err());
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn only_a_small_regular_file_with_one_link_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let victim = victim(dir.path());
        let inbox = Dir::create(&dir.path().join("inbox")).unwrap();
        let at = |name: &str| dir.path().join("inbox").join(name);
        symlink(&victim, at("link")).unwrap();
        fs::hard_link(&victim, at("hard")).unwrap();
        nix::unistd::mkfifo(&at("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        fs::write(at("big"), vec![b'x'; 11]).unwrap();
        fs::write(at("fine"), b"request").unwrap();
        for (name, why) in [
            ("link", "a symlink"),
            ("hard", "has 2 links"),
            ("fifo", "not a regular file"),
            ("big", "larger than 10 bytes"),
        ] {
            let err = inbox.read_bounded(name, 10).unwrap_err().to_string();
            assert!(err.contains(why) && !err.contains("SECRET"), "{name}: {err}");
        }
        assert_eq!(inbox.read_bounded("fine", 10).unwrap().unwrap(), b"request");
        assert_eq!(inbox.read_bounded("absent", 10).unwrap(), None);
        // Taken: refused or not, it is gone; what a link pointed at is not.
        assert!(inbox.take("link", 10).is_err());
        assert_eq!(inbox.take("fine", 10).unwrap().unwrap(), b"request");
        assert!(!at("link").exists() && !at("fine").exists());
        assert_eq!(fs::read(&victim).unwrap(), b"SECRET");
    }

    /// Root writing into a directory another user owns (the service's settings, written by
    /// `reset-password` or `update install`): what it makes is that user's. Run as root.
    #[test]
    fn what_root_makes_belongs_to_the_owner_of_the_directory() {
        assert!(Uid::effective().is_root(), "run as root (CI does): root's writes are what this checks");
        let dir = tempfile::tempdir().unwrap();
        let service = dir.path().join("service");
        fs::create_dir(&service).unwrap();
        std::os::unix::fs::chown(&service, Some(65534), Some(65534)).unwrap();
        write_atomic(&service.join("update/pending.json"), b"{}", 0o600).unwrap();
        for made in [service.join("update"), service.join("update/pending.json")] {
            let meta = fs::metadata(&made).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{}", made.display());
        }
        write_atomic(&dir.path().join("roots"), b"x", 0o644).unwrap();
        assert_eq!(fs::metadata(dir.path().join("roots")).unwrap().uid(), 0, "root's own directory: root's");
    }

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
        let stale = dir.path().join(format!(".config.txt.tmp-{dead_pid}-0123456789abcdef"));
        let live = dir.path().join(format!(".config.txt.tmp-{}-0123456789abcdef", std::process::id()));
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
