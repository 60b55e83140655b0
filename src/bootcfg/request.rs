//! The boot configuration read and changed for the unprivileged service by root (the boot
//! partition is mounted `umask=0077`: only root reads config.txt): the service writes
//! `boot-config.request` into its inbox (`/run/makespacelive`, its own), the path unit
//! `makespacelive-boot-config.path` runs `makespacelive boot-config apply-request FILE` as
//! root, which takes the request (`fsutil::take`: no link followed, a regular file of at
//! most `REQUEST_LIMIT` bytes, removed), applies it with the same code as `boot-config set`
//! (a request without settings changes nothing) and answers in `boot-config.result` in
//! root's answers directory (`super::answers_dir`, where the service can replace nothing):
//! the changes in words or the error, and what is in force then (`View`).
//!
//! Invariant: an answer is taken only for the request of the same id; one request at a
//! time from this process; a request nobody took within the wait is withdrawn; the helper
//! opens nothing the service can swap.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Camera, Paths, View, Wanted};
use crate::fsutil;

pub const REQUEST: &str = "boot-config.request";
pub const RESULT: &str = "boot-config.result";
/// The largest request file the helper reads.
const REQUEST_LIMIT: u64 = 4096;
/// The largest answer the service reads (config.txt's view and the changes: a few KiB).
const ANSWER_LIMIT: u64 = 256 << 10;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    id: String,
    gpu_mem: Option<u32>,
    camera: Option<String>,
}

/// The helper's answer.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub id: String,
    /// What changed in config.txt, in words; empty when it was in force already.
    pub changes: Vec<String>,
    /// Why nothing was changed.
    pub error: Option<String>,
    /// Every change since boot that waits for a reboot, one a line.
    pub reboot_needed: Option<String>,
    /// What is in force after the request (none when config.txt cannot be read: see `error`).
    pub view: Option<View>,
}

/// The root helper takes a request this soon, or it is not there.
const TAKE_WITHIN: Duration = Duration::from_secs(3);

/// Serialises the asking threads: one request file at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Asks the root helper to apply `wanted` (nothing: only show) and waits up to `wait`
/// for its answer.
pub fn ask(runtime_dir: &Path, wanted: &Wanted, wait: Duration) -> Result<Answer, String> {
    let answers = super::answers_dir(runtime_dir);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let id = format!("{:016x}", fastrand::u64(..));
    let request = Request { id: id.clone(), gpu_mem: wanted.gpu_mem, camera: wanted.camera.map(|c| c.to_string()) };
    let (request_path, result_path) = (runtime_dir.join(REQUEST), answers.join(RESULT));
    let json = serde_json::to_vec(&request).expect("a request serialises");
    fsutil::write_atomic(&request_path, &json, 0o644).map_err(|e| format!("{}: {e}", request_path.display()))?;
    let started = Instant::now();
    loop {
        // The answer stays (root's directory): the next request's replaces it.
        if let Some(answer) = fsutil::read_bounded(&result_path, ANSWER_LIMIT)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<Answer>(&b).ok())
            && answer.id == id
        {
            return Ok(answer);
        }
        // A path unit takes its file within milliseconds: one not taken soon means no helper
        // (a development host), and the web thread asking should not wait out `wait`.
        let untaken = started.elapsed() >= TAKE_WITHIN.min(wait) && request_path.exists();
        if untaken || started.elapsed() >= wait {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let waited = wait.as_secs();
    match std::fs::remove_file(&request_path) {
        Ok(()) => Err(format!(
            "the boot configuration helper (makespacelive-boot-config.path, run as root) did not take the request \
             within {:.0} s; nothing was changed",
            TAKE_WITHIN.min(wait).as_secs_f64()
        )),
        Err(_) => Err(format!(
            "the boot configuration helper took the request but did not answer within {waited} s; it may still \
             apply it (journalctl -u makespacelive-boot-config)"
        )),
    }
}

/// The helper's side: takes `file` from the service's inbox (gone before it is applied:
/// the path unit must not start the helper again for it), applies it, writes the answer.
pub fn apply_request(file: &Path, paths: &Paths) -> Result<(), String> {
    let (bytes, parsed) = match fsutil::take(file, REQUEST_LIMIT) {
        Ok(Some(bytes)) => {
            let parsed =
                serde_json::from_slice::<Request>(&bytes).map_err(|e| format!("the request is not understood: {e}"));
            (bytes, parsed)
        }
        Ok(None) => return Err(format!("{}: no request there", file.display())),
        Err(e) => (Vec::new(), Err(format!("the request is refused: {e}"))),
    };
    let id = match &parsed {
        Ok(request) => request.id.clone(),
        Err(_) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["id"].as_str().map(String::from))
            .unwrap_or_default(),
    };
    let applied = parsed.and_then(|request| {
        let camera = request.camera.as_deref().map(str::parse::<Camera>).transpose()?;
        let wanted = Wanted { gpu_mem: request.gpu_mem, camera };
        if wanted == Wanted::default() {
            return Ok(Vec::new());
        }
        super::apply(&wanted, paths).map(|(_, changes)| changes)
    });
    let (changes, error) = match applied {
        Ok(changes) => (changes, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    let (view, error) = match super::view(paths) {
        Ok(view) => (Some(view), error),
        Err(why) => (None, error.or(Some(why))),
    };
    for line in changes.iter().chain(&error) {
        println!("{line}");
    }
    let answer = Answer { id, changes, error, reboot_needed: super::reboot_needed(&paths.answers_dir), view };
    let result = paths.answers_dir.join(RESULT);
    let json = serde_json::to_vec(&answer).expect("an answer serialises");
    fsutil::write_atomic(&result, &json, 0o644).map_err(|e| format!("{}: {e}", result.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootcfg::Sensor;

    fn boot(dir: &Path, config: &str) -> Paths {
        std::fs::create_dir_all(dir.join("boot")).unwrap();
        std::fs::write(dir.join("boot/config.txt"), config).unwrap();
        std::fs::write(dir.join("model"), "Raspberry Pi 3 Model B Rev 1.2\0").unwrap();
        Paths::new(dir.join("boot"), dir.join("model"), dir.join("run-root"))
    }

    /// The root helper as the path unit runs it, in a thread: waits for the request.
    fn helper(dir: &Path) -> std::thread::JoinHandle<()> {
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            let request = dir.join("run").join(REQUEST);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !request.exists() {
                assert!(Instant::now() < deadline, "no request");
                std::thread::sleep(Duration::from_millis(10));
            }
            let paths = Paths::new(dir.join("boot"), dir.join("model"), dir.join("run-root"));
            apply_request(&request, &paths).unwrap();
        })
    }

    /// `ask` with the helper standing by, on a Pi 3 whose config.txt is `config`.
    fn asked(config: &str, wanted: &Wanted) -> (tempfile::TempDir, Answer) {
        let dir = tempfile::tempdir().unwrap();
        boot(dir.path(), config);
        let helper = helper(dir.path());
        let answer = ask(&dir.path().join("run"), wanted, Duration::from_secs(5)).unwrap();
        helper.join().unwrap();
        (dir, answer)
    }

    #[test]
    fn a_request_is_applied_and_answered() {
        let wanted = Wanted { gpu_mem: Some(256), camera: Some(Camera::Sensor(Sensor::Imx219)) };
        let (dir, answer) = asked("gpu_mem=128\ncamera_auto_detect=1\n", &wanted);
        assert_eq!(answer.error, None);
        assert_eq!(answer.changes[0], "line 1: gpu_mem=128 → gpu_mem=256");
        assert!(answer.reboot_needed.unwrap().contains("gpu_mem=256"));
        assert_eq!(answer.view.unwrap().camera, "imx219", "what is in force after the change");
        let config = std::fs::read_to_string(dir.path().join("boot/config.txt")).unwrap();
        assert_eq!(config, "gpu_mem=256\ncamera_auto_detect=0\ndtoverlay=imx219\n");
        let names = |d: &str| {
            let mut names: Vec<_> =
                std::fs::read_dir(dir.path().join(d)).unwrap().map(|e| e.unwrap().file_name()).collect();
            names.sort();
            names
        };
        assert!(names("run").is_empty(), "the request taken from the inbox");
        assert_eq!(names("run-root"), ["boot-config.result", "reboot-needed"], "answer and marker root's, no temp");
    }

    #[test]
    fn a_refused_request_is_answered_with_why_and_changes_nothing() {
        let (dir, answer) = asked("gpu_mem=128\n", &Wanted { gpu_mem: Some(2000), camera: None });
        assert!(answer.error.unwrap().contains("gpu_mem=2000 is out of range"));
        assert!(answer.changes.is_empty() && answer.reboot_needed.is_none());
        assert_eq!(answer.view.unwrap().gpu_mem, 128);
        assert_eq!(std::fs::read_to_string(dir.path().join("boot/config.txt")).unwrap(), "gpu_mem=128\n");
    }

    #[test]
    fn a_request_without_settings_only_shows() {
        let (dir, answer) = asked("gpu_mem=128\n", &Wanted::default());
        assert_eq!((answer.error, answer.changes.len()), (None, 0));
        assert_eq!(answer.view.unwrap().gpu_mem_from.as_deref(), Some("line 1 `gpu_mem=128`, unconditional"));
        assert!(!dir.path().join("run-root/reboot-needed").exists());
    }

    #[test]
    fn a_request_nobody_takes_is_withdrawn() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let err = ask(&run, &Wanted { gpu_mem: Some(128), camera: None }, Duration::from_millis(200)).unwrap_err();
        assert!(err.contains("did not take the request within 0 s; nothing was changed"), "{err}");
        assert!(!run.join(REQUEST).exists());
    }

    #[test]
    fn the_helper_answers_a_request_it_does_not_understand() {
        let dir = tempfile::tempdir().unwrap();
        let paths = boot(dir.path(), "");
        let file = dir.path().join("req");
        std::fs::write(&file, r#"{"id": "x1", "gpu_mem": 128, "resolution": "4k"}"#).unwrap();
        apply_request(&file, &paths).unwrap();
        assert!(!file.exists());
        let answer: Answer = serde_json::from_slice(&std::fs::read(paths.answers_dir.join(RESULT)).unwrap()).unwrap();
        assert_eq!(answer.id, "x1");
        assert!(answer.error.unwrap().contains("unknown field `resolution`"));
    }
}
