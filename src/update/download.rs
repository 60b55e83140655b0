//! Downloads one artifact to a file, resuming where it stopped.
//!
//! Invariants: bytes land in `<file>.<digest prefix>.part` only (part files of other
//! artifacts under the same name are deleted, never resumed); `<file>` appears (by rename, then a
//! directory fsync) only once its size and digest match what the source declared. A
//! cut connection or a restart continues with `Range: bytes=N-`; a digest mismatch or
//! a server that has less than it declared deletes the part file. Nothing is fetched
//! unless the file system has room for what is still missing plus [`SPACE_MARGIN`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::digest::DynDigest;
use url::Url;

use super::http::{Client, shown};
use crate::fsutil::remove;
use crate::secrets::Secret;

/// Room left free on the data partition beside a finished download.
pub const SPACE_MARGIN: u64 = 32 * 1024 * 1024;
/// Resumes within one call after a cut, before giving up (the part file stays).
const MAX_RESUMES: u32 = 5;
/// Waits before resume number n: n times this.
const BACKOFF: Duration = Duration::from_millis(500);

/// What the downloaded file must hash to: lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Digest {
    Sha256(String),
    /// gooseBit offers only SHA-1; RAUC's signature check is what vouches for a bundle.
    Sha1(String),
}

impl Digest {
    /// `hex` as SHA-256 (64 hex digits) or SHA-1 (40), else an error naming `field`.
    pub fn parse(kind: DigestKind, hex: &str, field: &str) -> Result<Digest, String> {
        let len = match kind {
            DigestKind::Sha256 => 64,
            DigestKind::Sha1 => 40,
        };
        if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{field} must be {len} hexadecimal digits ({}), got {hex:?}", kind.name()));
        }
        let hex = hex.to_ascii_lowercase();
        Ok(match kind {
            DigestKind::Sha256 => Digest::Sha256(hex),
            DigestKind::Sha1 => Digest::Sha1(hex),
        })
    }

    fn kind(&self) -> DigestKind {
        match self {
            Digest::Sha256(_) => DigestKind::Sha256,
            Digest::Sha1(_) => DigestKind::Sha1,
        }
    }

    fn hex(&self) -> &str {
        match self {
            Digest::Sha256(hex) | Digest::Sha1(hex) => hex,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestKind {
    Sha256,
    Sha1,
}

impl DigestKind {
    pub fn name(self) -> &'static str {
        match self {
            DigestKind::Sha256 => "SHA-256",
            DigestKind::Sha1 => "SHA-1",
        }
    }

    fn hasher(self) -> Box<dyn DynDigest> {
        match self {
            DigestKind::Sha256 => Box::new(sha2::Sha256::default()),
            DigestKind::Sha1 => Box::new(sha1::Sha1::default()),
        }
    }
}

/// Hashes what a part file already holds (a resumed download).
fn hash_into(hasher: &mut dyn DynDigest, path: &Path) -> io::Result<()> {
    let mut file = File::open(path)?;
    let mut buf = vec![0; 64 * 1024];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(()),
            n => hasher.update(&buf[..n]),
        }
    }
}

/// One file a source offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub url: Url,
    pub size: u64,
    pub digest: Digest,
}

/// Whether `needed` more bytes fit in `available` with [`SPACE_MARGIN`] to spare.
pub fn check_space(needed: u64, available: u64) -> Result<(), String> {
    if needed.checked_add(SPACE_MARGIN).is_some_and(|n| n <= available) {
        return Ok(());
    }
    Err(format!(
        "not enough free space for the download: it needs {needed} more bytes plus {SPACE_MARGIN} to spare, \
         the data partition has {available} free"
    ))
}

/// What to do with a response to a request for the bytes from `have` on.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// 206 from `have`: append.
    Append,
    /// 200 (the range was ignored) or a 206 from elsewhere: write from byte 0.
    StartOver,
    /// 416 with all bytes here already.
    Complete,
    /// 416 short of the declared size: the server has less than it declared.
    Short,
    Refused(u16),
}

fn answer(status: u16, range_start: Option<u64>, have: u64, size: u64) -> Answer {
    match status {
        206 if range_start == Some(have) => Answer::Append,
        200 | 206 => Answer::StartOver,
        416 if have == size => Answer::Complete,
        416 => Answer::Short,
        other => Answer::Refused(other),
    }
}

/// The first byte of a `Content-Range: bytes A-B/C` header.
fn range_start(header: Option<&str>) -> Option<u64> {
    header?.trim().strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

/// `<dest>.<digest prefix>.part`: a part file is resumed only by the same artifact.
pub fn part_path(dest: &Path, digest: &Digest) -> PathBuf {
    let mut name = dest.as_os_str().to_os_string();
    name.push(format!(".{}.part", &digest.hex()[..16]));
    PathBuf::from(name)
}

/// Deletes the part files of other artifacts once saved as `dest`.
fn remove_stale_parts(dest: &Path, keep: &Path) -> Result<(), String> {
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else { return Ok(()) };
    let prefix = format!("{}.", name.to_string_lossy());
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&prefix) && file.ends_with(".part") && entry.path() != keep {
            remove(&entry.path())?;
        }
    }
    Ok(())
}

pub fn free_space(dir: &Path) -> Result<u64, String> {
    let stat =
        nix::sys::statvfs::statvfs(dir).map_err(|e| format!("cannot see the free space of {}: {e}", dir.display()))?;
    Ok(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

enum Stop {
    /// Worth resuming: the connection broke, stalled or ended early.
    Cut(String),
    Fatal(String),
}

/// Downloads `artifact` to `dest` (resuming `dest.part`), reporting (bytes, total).
/// `auth` is sent as the `Authorization` header.
pub fn download(
    client: &Client,
    artifact: &Artifact,
    dest: &Path,
    auth: Option<&Secret>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), String> {
    let part = part_path(dest, &artifact.digest);
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    remove_stale_parts(dest, &part)?;
    let size = artifact.size;
    let mut have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    if have > size {
        remove(&part)?;
        have = 0;
    }
    check_space(size - have, free_space(dir)?)?;
    // Hashed as it arrives (a second pass over the file would take as long as the download).
    let mut hasher = artifact.digest.kind().hasher();
    if have > 0 {
        hash_into(hasher.as_mut(), &part).map_err(|e| format!("cannot read {}: {e}", part.display()))?;
    }
    let mut cuts = 0;
    while have < size {
        match fetch(client, artifact, &part, &mut have, hasher.as_mut(), auth, progress) {
            Ok(()) => {}
            Err(Stop::Fatal(why)) => return Err(why),
            Err(Stop::Cut(why)) => {
                cuts += 1;
                if cuts > MAX_RESUMES {
                    return Err(format!(
                        "the download was cut {cuts} times (last: {why}); {have} of {size} bytes are kept in {} to resume",
                        part.display()
                    ));
                }
                tracing::warn!("download cut ({why}); resuming at byte {have} of {size}");
                std::thread::sleep(BACKOFF * cuts);
            }
        }
    }
    verify(&part, &artifact.digest, hasher)?;
    fs::rename(&part, dest).map_err(|e| format!("cannot rename {} to {}: {e}", part.display(), dest.display()))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("cannot sync {}: {e}", dir.display()))
}

/// One request for the bytes from `have` on, appended to `part` until the body ends.
fn fetch(
    client: &Client,
    artifact: &Artifact,
    part: &Path,
    have: &mut u64,
    hasher: &mut dyn DynDigest,
    auth: Option<&Secret>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), Stop> {
    let (url, size) = (&artifact.url, artifact.size);
    let mut request = client.agent().get(url.as_str());
    if *have > 0 {
        request = request.header("Range", &format!("bytes={have}-"));
    }
    if let Some(auth) = auth {
        request = request.header("Authorization", auth.expose());
    }
    let response = request.call().map_err(|e| Stop::Cut(client.describe(url, &e)))?;
    let status = response.status().as_u16();
    let start = range_start(response.headers().get("content-range").and_then(|v| v.to_str().ok()));
    let mut file = match answer(status, start, *have, size) {
        Answer::Append => OpenOptions::new().append(true).open(part),
        Answer::StartOver => {
            *have = 0;
            hasher.reset();
            File::create(part)
        }
        Answer::Complete => return Ok(()),
        Answer::Short => {
            remove(part).map_err(Stop::Fatal)?;
            return Err(Stop::Fatal(format!(
                "{} has only {have} of the {size} bytes it was declared to have; the part file was deleted",
                shown(url)
            )));
        }
        Answer::Refused(status) => {
            return Err(Stop::Fatal(format!("{} answered HTTP {status} to the download", shown(url))));
        }
    }
    .map_err(|e| Stop::Fatal(format!("cannot write {}: {e}", part.display())))?;
    let mut body = response.into_body().into_reader();
    let mut buf = vec![0; 64 * 1024];
    let result = loop {
        let n = match body.read(&mut buf) {
            Ok(0) if *have < size => {
                break Err(Stop::Cut(format!("the connection ended after {have} of {size} bytes")));
            }
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(Stop::Cut(client.describe_io(url, &e))),
        };
        if *have + n as u64 > size {
            drop(file);
            remove(part).map_err(Stop::Fatal)?;
            return Err(Stop::Fatal(format!(
                "{} sent more than the {size} bytes declared; the part file was deleted",
                shown(url)
            )));
        }
        if let Err(e) = file.write_all(&buf[..n]) {
            break Err(Stop::Fatal(format!("cannot write {}: {e}", part.display())));
        }
        hasher.update(&buf[..n]);
        *have += n as u64;
        progress(*have, size);
    };
    // What arrived is kept for the next resume, also across a power cut.
    file.sync_all().map_err(|e| Stop::Fatal(format!("cannot sync {}: {e}", part.display())))?;
    result
}

fn verify(part: &Path, expected: &Digest, hasher: Box<dyn DynDigest>) -> Result<(), String> {
    let kind = expected.kind();
    let got: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if got == expected.hex() {
        return Ok(());
    }
    remove(part)?;
    Err(format!(
        "the download does not match its {}: expected {}, got {got}; the file was deleted",
        kind.name(),
        expected.hex()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_must_hold_the_rest_and_the_margin() {
        assert!(check_space(100, 100 + SPACE_MARGIN).is_ok());
        let err = check_space(101, 100 + SPACE_MARGIN).unwrap_err();
        assert!(err.contains("101 more bytes") && err.contains(&format!("{} free", 100 + SPACE_MARGIN)), "{err}");
        assert!(check_space(u64::MAX, u64::MAX).is_err());
    }

    #[test]
    fn answers_to_a_range_request() {
        assert_eq!(answer(206, Some(10), 10, 100), Answer::Append);
        assert_eq!(answer(206, Some(0), 10, 100), Answer::StartOver);
        assert_eq!(answer(200, None, 10, 100), Answer::StartOver);
        assert_eq!(answer(200, None, 0, 100), Answer::StartOver);
        assert_eq!(answer(416, None, 100, 100), Answer::Complete);
        assert_eq!(answer(416, None, 50, 100), Answer::Short);
        assert_eq!(answer(404, None, 0, 100), Answer::Refused(404));
    }

    #[test]
    fn content_range_start() {
        assert_eq!(range_start(Some("bytes 100-199/200")), Some(100));
        assert_eq!(range_start(Some("bytes */200")), None);
        assert_eq!(range_start(None), None);
    }

    #[test]
    fn digests_are_checked_for_shape() {
        let hex = "AB".repeat(32);
        assert_eq!(Digest::parse(DigestKind::Sha256, &hex, "sha256"), Ok(Digest::Sha256("ab".repeat(32))));
        let err = Digest::parse(DigestKind::Sha256, "abc", "sha256").unwrap_err();
        assert!(err.contains("sha256 must be 64 hexadecimal digits"), "{err}");
        assert!(Digest::parse(DigestKind::Sha1, &"g".repeat(40), "sha1").is_err());
    }

    fn digest_of(kind: DigestKind, path: &Path) -> String {
        let mut hasher = kind.hasher();
        hash_into(hasher.as_mut(), path).unwrap();
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn file_digests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"abc").unwrap();
        assert_eq!(
            digest_of(DigestKind::Sha256, &path),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(digest_of(DigestKind::Sha1, &path), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let wrong = Digest::Sha256("0".repeat(64));
        let mut hasher = DigestKind::Sha256.hasher();
        hash_into(hasher.as_mut(), &path).unwrap();
        let err = verify(&path, &wrong, hasher).unwrap_err();
        assert!(err.starts_with("the download does not match its SHA-256: expected 000"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn part_files_are_per_artifact() {
        let digest = Digest::Sha256(format!("0123456789abcdef{}", "0".repeat(48)));
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.raucb");
        let part = part_path(&dest, &digest);
        assert_eq!(part, dir.path().join("x.raucb.0123456789abcdef.part"));
        for name in ["x.raucb.ffffffffffffffff.part", "x.raucb.0123456789abcdef.part", "y.raucb.1.part", "x.raucb"] {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        remove_stale_parts(&dest, &part).unwrap();
        let mut left: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["x.raucb", "x.raucb.0123456789abcdef.part", "y.raucb.1.part"]);
    }
}
