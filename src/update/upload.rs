//! A bundle uploaded over HTTP, streamed onto the data partition for the update agent to
//! install (`agent::Installer`).
//!
//! Invariants: bytes land in `<data_dir>/update/upload.raucb.part` only, renamed to
//! `upload.raucb` (then a directory fsync) once every declared byte arrived; a body that
//! declares no length, or more than the limit, or more than the free space minus
//! [`SPACE_MARGIN`], is refused before a byte is read; a cut or refused upload leaves no
//! file behind. One upload at a time: from its first byte until its install ends (the
//! [`Upload`] is dropped), another is refused with what is under way.
//! API: `Uploads::receive` (the web), `Upload` (handed to the agent), `not_now` (pure).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::download::{check_space, free_space};
use crate::fsutil::remove;
use crate::status::{UpdateState, UpdateStatus};

const FILE: &str = "upload.raucb";
const PART: &str = "upload.raucb.part";

/// Why an upload was not stored.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `Content-Length` (a chunked body): the size must be known before reading.
    LengthRequired,
    TooLarge {
        declared: u64,
        limit: u64,
    },
    NoSpace(String),
    /// Another upload or an install is under way (what, in words).
    Busy(String),
    /// The update thread cannot install now (RAUC is not there: why).
    Unavailable(String),
    /// The body ended or stalled before every declared byte arrived.
    Cut {
        got: u64,
        declared: u64,
        why: String,
    },
    /// The data partition could not be written.
    Storage(String),
}

impl Refusal {
    /// The HTTP status that says it.
    pub fn code(&self) -> u16 {
        match self {
            Refusal::LengthRequired => 411,
            Refusal::TooLarge { .. } => 413,
            Refusal::NoSpace(_) => 507,
            Refusal::Busy(_) => 409,
            Refusal::Unavailable(_) => 503,
            Refusal::Cut { .. } => 400,
            Refusal::Storage(_) => 500,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::LengthRequired => f.write_str(
                "the bundle must be sent with a Content-Length (not chunked): its size is checked against the \
                 limit and the free space before it is stored",
            ),
            Refusal::TooLarge { declared, limit } => write!(
                f,
                "the bundle is {declared} bytes, larger than the upload limit of {limit} bytes (update.upload_limit_mb); \
                 nothing was stored"
            ),
            Refusal::NoSpace(why) => write!(f, "{why}; nothing was stored"),
            Refusal::Busy(what) => write!(f, "{what}: one update at a time, try again when it has ended"),
            Refusal::Unavailable(why) => write!(f, "{why}; nothing was stored"),
            Refusal::Cut { got, declared, why } => {
                write!(f, "the upload stopped after {got} of {declared} bytes ({why}); nothing was kept")
            }
            Refusal::Storage(why) => write!(f, "{why}; nothing was kept"),
        }
    }
}

/// Whether a body of `declared` bytes may be stored, before reading it.
pub fn admit(declared: Option<u64>, limit: u64, available: u64) -> Result<u64, Refusal> {
    let declared = declared.ok_or(Refusal::LengthRequired)?;
    if declared > limit {
        return Err(Refusal::TooLarge { declared, limit });
    }
    check_space(declared, available).map_err(Refusal::NoSpace)?;
    Ok(declared)
}

/// Why the update thread, as its status shows it, cannot take an upload now: it has not
/// found RAUC (no slot known), or an update is under way.
pub fn not_now(update: &UpdateStatus) -> Option<Refusal> {
    let message = update.message.as_deref().unwrap_or("");
    if update.slot.is_none() {
        return Some(Refusal::Unavailable(format!("the update thread has not found RAUC yet ({message})")));
    }
    busy_with(update.state, update.progress, message).map(Refusal::Busy)
}

fn busy_with(state: UpdateState, progress: Option<u8>, message: &str) -> Option<String> {
    match state {
        UpdateState::Idle | UpdateState::Failed | UpdateState::Checking => None,
        UpdateState::Downloading | UpdateState::Installing => {
            Some(format!("an update is under way ({}%: {message})", progress.unwrap_or(0)))
        }
        UpdateState::Installed => Some(format!("an update is installed and waits for its reboot ({message})")),
        UpdateState::Rebooting => Some(format!("the box is rebooting ({message})")),
        UpdateState::Verifying => Some(format!("the new version is being checked ({message})")),
    }
}

/// Where uploads go.
pub struct Uploads {
    dir: PathBuf,
    /// What holds the one upload slot, in words; None when it is free.
    busy: Arc<Mutex<Option<String>>>,
}

/// A stored bundle. Dropping it (once its install has ended) deletes the file and frees
/// the slot for the next upload.
pub struct Upload {
    path: PathBuf,
    busy: Arc<Mutex<Option<String>>>,
}

impl Upload {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Says what holds the slot now ("the uploaded bundle is being installed").
    pub fn under_way(&self, what: String) {
        *self.busy.lock().expect("upload lock") = Some(what);
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Err(e) = remove(&self.path) {
            tracing::error!("update: {e}");
        }
        *self.busy.lock().expect("upload lock") = None;
    }
}

impl Uploads {
    /// Uploads into `<data_dir>/update`; what a crash left there is deleted.
    pub fn new(data_dir: &Path) -> Uploads {
        let dir = data_dir.join("update");
        for name in [PART, FILE] {
            if let Err(e) = remove(&dir.join(name)) {
                tracing::error!("update: {e}");
            }
        }
        Uploads { dir, busy: Arc::new(Mutex::new(None)) }
    }

    /// Stores `body` (of `declared` bytes, from its `Content-Length`) as the bundle to
    /// install; refused before reading when it is over `limit` bytes or cannot fit,
    /// deleted when it does not arrive whole.
    pub fn receive(&self, body: &mut dyn Read, declared: Option<u64>, limit: u64) -> Result<Upload, Refusal> {
        let size = declared.unwrap_or(0);
        {
            let mut busy = self.busy.lock().expect("upload lock");
            if let Some(what) = busy.as_ref() {
                return Err(Refusal::Busy(what.clone()));
            }
            *busy = Some(format!("a bundle of {size} bytes is being uploaded"));
        }
        let upload = Upload { path: self.dir.join(FILE), busy: self.busy.clone() };
        fs::create_dir_all(&self.dir)
            .map_err(|e| Refusal::Storage(format!("cannot create {}: {e}", self.dir.display())))?;
        let available = free_space(&self.dir).map_err(Refusal::Storage)?;
        let declared = admit(declared, limit, available)?;
        let part = self.dir.join(PART);
        let stored = store(body, declared, &part).and_then(|()| {
            fs::rename(&part, upload.path())
                .and_then(|()| File::open(&self.dir)?.sync_all())
                .map_err(|e| Refusal::Storage(format!("cannot store {}: {e}", upload.path().display())))
        });
        if stored.is_err()
            && let Err(e) = remove(&part)
        {
            tracing::error!("update: {e}");
        }
        stored.map(|()| upload)
    }
}

/// Copies exactly `declared` bytes of `body` into `part`, synced.
fn store(body: &mut dyn Read, declared: u64, part: &Path) -> Result<(), Refusal> {
    let storage = |e: io::Error| Refusal::Storage(format!("cannot write {}: {e}", part.display()));
    let mut file = File::create(part).map_err(storage)?;
    let mut buf = vec![0; 64 * 1024];
    let mut got = 0u64;
    // One byte past the declared size is read to see a body longer than it said.
    let mut body = body.take(declared + 1);
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                let why = match e.kind() {
                    ErrorKind::WouldBlock | ErrorKind::TimedOut => "the client stopped sending".to_string(),
                    _ => e.to_string(),
                };
                return Err(Refusal::Cut { got, declared, why });
            }
        };
        got += n as u64;
        if got > declared {
            return Err(Refusal::Cut { got, declared, why: "the body is longer than its Content-Length".into() });
        }
        file.write_all(&buf[..n]).map_err(storage)?;
    }
    if got < declared {
        return Err(Refusal::Cut { got, declared, why: "the connection ended".into() });
    }
    file.sync_all().map_err(storage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::download::SPACE_MARGIN;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn the_size_is_checked_before_reading() {
        assert_eq!(admit(None, MIB, u64::MAX), Err(Refusal::LengthRequired));
        assert_eq!(admit(Some(MIB + 1), MIB, u64::MAX), Err(Refusal::TooLarge { declared: MIB + 1, limit: MIB }));
        assert_eq!(admit(Some(MIB), MIB, MIB + SPACE_MARGIN), Ok(MIB));
        let Err(Refusal::NoSpace(why)) = admit(Some(MIB), MIB, MIB + SPACE_MARGIN - 1) else { panic!() };
        assert!(why.contains(&format!("{MIB} more bytes")), "{why}");
        assert_eq!(Refusal::LengthRequired.code(), 411);
        assert_eq!(Refusal::TooLarge { declared: 2, limit: 1 }.code(), 413);
        let too_large = Refusal::TooLarge { declared: 2, limit: 1 }.to_string();
        assert!(too_large.contains("limit of 1 bytes (update.upload_limit_mb)"), "{too_large}");
    }

    #[test]
    fn an_upload_collides_with_an_update_under_way_and_needs_rauc() {
        let mut update = UpdateStatus { message: Some("updates are unavailable: no bus".into()), ..Default::default() };
        let refusal = not_now(&update).unwrap();
        assert_eq!(refusal.code(), 503);
        assert!(refusal.to_string().contains("has not found RAUC yet (updates are unavailable: no bus)"), "{refusal}");
        update.slot = Some("A".into());
        update.message = None;
        assert_eq!(not_now(&update), None);
        update.state = UpdateState::Installing;
        update.progress = Some(40);
        update.message = Some("installing 2.0".into());
        assert_eq!(not_now(&update), Some(Refusal::Busy("an update is under way (40%: installing 2.0)".into())));
        update.state = UpdateState::Installed;
        assert!(not_now(&update).unwrap().to_string().contains("waits for its reboot"));
        update.state = UpdateState::Failed;
        assert_eq!(not_now(&update), None);
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir.join("update"))
            .map(|d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn a_whole_body_is_stored_then_deleted_after_its_install() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = Uploads::new(dir.path());
        let body = vec![7u8; 200_000];
        let upload = uploads.receive(&mut &body[..], Some(body.len() as u64), MIB).unwrap();
        assert_eq!(fs::read(upload.path()).unwrap(), body);
        assert_eq!(files(dir.path()), ["upload.raucb"]);
        let second = uploads.receive(&mut &body[..], Some(body.len() as u64), MIB).err().unwrap();
        assert_eq!(second, Refusal::Busy("a bundle of 200000 bytes is being uploaded".into()));
        upload.under_way("the uploaded bundle is being installed".into());
        let second = uploads.receive(&mut &body[..], Some(1), MIB).err().unwrap();
        assert_eq!(second.code(), 409);
        assert!(second.to_string().starts_with("the uploaded bundle is being installed: one update at a time"));
        drop(upload);
        assert!(files(dir.path()).is_empty());
        assert!(uploads.receive(&mut &body[..], Some(body.len() as u64), MIB).is_ok(), "the slot is free again");
    }

    /// A body that fails after `after` bytes, as a connection cut or timed out.
    struct CutAfter(usize, ErrorKind);

    impl Read for CutAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(self.1.into());
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            buf[..n].fill(1);
            Ok(n)
        }
    }

    #[test]
    fn a_cut_short_or_long_body_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = Uploads::new(dir.path());
        let refusal =
            uploads.receive(&mut CutAfter(100_000, ErrorKind::ConnectionReset), Some(300_000), MIB).err().unwrap();
        assert!(matches!(refusal, Refusal::Cut { got: 100_000, declared: 300_000, .. }), "{refusal:?}");
        assert!(files(dir.path()).is_empty());
        let refusal = uploads.receive(&mut CutAfter(10, ErrorKind::TimedOut), Some(300_000), MIB).err().unwrap();
        assert!(refusal.to_string().contains("the client stopped sending"), "{refusal}");
        let refusal = uploads.receive(&mut &[1u8; 100][..], Some(300), MIB).err().unwrap();
        assert!(refusal.to_string().contains("after 100 of 300 bytes (the connection ended)"), "{refusal}");
        let refusal = uploads.receive(&mut &[1u8; 100][..], Some(50), MIB).err().unwrap();
        assert!(refusal.to_string().contains("longer than its Content-Length"), "{refusal}");
        assert!(files(dir.path()).is_empty());
        // Refused before reading: the body is never touched.
        let refusal = uploads.receive(&mut CutAfter(0, ErrorKind::Other), Some(MIB + 1), MIB).err().unwrap();
        assert_eq!(refusal.code(), 413);
        let refusal = uploads.receive(&mut CutAfter(0, ErrorKind::Other), None, MIB).err().unwrap();
        assert_eq!(refusal.code(), 411);
        assert!(files(dir.path()).is_empty());
    }

    #[test]
    fn what_a_crash_left_is_deleted_at_start() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("update")).unwrap();
        for name in [PART, FILE, "pending.json"] {
            fs::write(dir.path().join("update").join(name), b"x").unwrap();
        }
        Uploads::new(dir.path());
        assert_eq!(files(dir.path()), ["pending.json"]);
    }
}
