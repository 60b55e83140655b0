//! `makespacelive boot-config` through the real binary on a temp "boot partition" (a plain
//! directory: the Pi's FAT partition and its firmware cannot exist here, so the board comes
//! from a model file written by the test).

mod app;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use app::{BIN, run_cli, text, write};

struct Boot {
    dir: tempfile::TempDir,
}

impl Boot {
    fn new(model: &str, config: &str) -> Boot {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("boot")).unwrap();
        std::fs::write(dir.path().join("model"), format!("{model}\0")).unwrap();
        write(&dir.path().join("boot"), "config.txt", config);
        Boot { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("boot/config.txt")
    }

    fn marker(&self) -> PathBuf {
        self.dir.path().join("run-root/reboot-needed")
    }

    fn args<'a>(&'a self, words: &[&'a str]) -> Vec<String> {
        let path = |p: &str| self.dir.path().join(p).to_str().unwrap().to_string();
        let mut args: Vec<String> = ["boot-config"].iter().chain(words).map(|s| s.to_string()).collect();
        for (flag, p) in [("--boot-dir", "boot"), ("--model-file", "model"), ("--answers-dir", "run-root")] {
            args.extend([flag.to_string(), path(p)]);
        }
        args
    }

    fn run(&self, words: &[&str]) -> (bool, String) {
        let args = self.args(words);
        let out = run_cli(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
        (out.status.success(), text(&out))
    }
}

const PI3: &str = "Raspberry Pi 3 Model B Plus Rev 1.3";
const ZERO_W: &str = "Raspberry Pi Zero W Rev 1.1";
const SHIPPED: &str = "# shipped\ngpu_mem=128\n[pi4]\ngpu_mem=256\n[all]\nenable_uart=1\ncamera_auto_detect=1\n";

#[test]
fn show_names_the_board_the_values_and_their_lines() {
    let boot = Boot::new(ZERO_W, SHIPPED);
    let (ok, out) = boot.run(&["show"]);
    assert!(ok, "{out}");
    assert!(out.contains("board: Raspberry Pi Zero W (filters [pi0] [pi0w], 512 MB)"), "{out}");
    assert!(out.contains("gpu_mem: 128 MB (from line 2 `gpu_mem=128`, unconditional)"), "{out}");
    assert!(out.contains("camera: auto\n  from line 7 `camera_auto_detect=1`, unconditional"), "{out}");
    assert!(out.contains("reboot needed: no change recorded since boot"), "{out}");
}

#[test]
fn set_edits_in_place_reports_and_marks_a_reboot() {
    let boot = Boot::new(PI3, SHIPPED);
    let (ok, out) = boot.run(&["set", "gpu_mem=256", "camera=imx477"]);
    assert!(ok, "{out}");
    assert!(out.contains("line 2: gpu_mem=128 → gpu_mem=256"), "{out}");
    assert!(out.contains("line 7: camera_auto_detect=1 → camera_auto_detect=0"), "{out}");
    assert!(out.contains("reboot needed"), "{out}");
    let expected = "# shipped\ngpu_mem=256\n[pi4]\ngpu_mem=256\n[all]\nenable_uart=1\ncamera_auto_detect=0\n\
                    dtoverlay=imx477\n";
    assert_eq!(std::fs::read_to_string(boot.config()).unwrap(), expected);
    let marker = std::fs::read_to_string(boot.marker()).unwrap();
    assert!(marker.contains("gpu_mem=128 → gpu_mem=256\n"), "{marker}");
    let (_, out) = boot.run(&["show"]);
    assert!(out.contains("camera: imx477\n"), "{out}");
    assert!(out.contains("reboot needed: yes"), "{out}");
}

#[test]
fn setting_what_is_in_force_writes_nothing() {
    let boot = Boot::new(ZERO_W, SHIPPED);
    let before = std::fs::metadata(boot.config()).unwrap().modified().unwrap();
    let (ok, out) = boot.run(&["set", "camera=auto", "gpu_mem=128"]);
    assert!(ok, "{out}");
    assert!(out.contains("nothing to change"), "{out}");
    assert_eq!(std::fs::read_to_string(boot.config()).unwrap(), SHIPPED);
    assert_eq!(std::fs::metadata(boot.config()).unwrap().modified().unwrap(), before);
    assert!(!boot.marker().exists());
}

#[test]
fn bad_input_names_what_is_allowed_and_changes_nothing() {
    let boot = Boot::new(ZERO_W, SHIPPED);
    for (words, expected) in [
        (&["set", "resolution=720p"][..], "unknown key `resolution`: allowed keys are gpu_mem, camera"),
        (&["set", "camera=usb"], "camera=usb is not a camera value: allowed auto, off, ov5647, imx219, imx477, imx708"),
        (&["set", "gpu_mem=lots"], "gpu_mem=lots is not a number of megabytes: allowed 16..=944"),
        (&["set", "gpu_mem=512"], "gpu_mem=512 is out of range: allowed 16..=384 on the Raspberry Pi Zero W"),
        (&["set", "gpu_mem=64"], "gpu_mem=64 is too little with the camera on: allowed 128..=384"),
    ] {
        let (ok, out) = boot.run(words);
        assert!(!ok, "{words:?}: {out}");
        assert!(out.contains(expected), "{words:?}: {out}");
    }
    assert_eq!(std::fs::read_to_string(boot.config()).unwrap(), SHIPPED);
    assert!(!boot.marker().exists());
}

#[test]
fn an_unknown_board_can_be_shown_but_not_set() {
    let boot = Boot::new("Raspberry Pi 4 Model B Rev 1.4", SHIPPED);
    let (ok, out) = boot.run(&["set", "gpu_mem=128"]);
    assert!(!ok);
    assert!(out.contains("unknown board model \"Raspberry Pi 4 Model B Rev 1.4\": known are"), "{out}");
    assert!(out.contains("Raspberry Pi Zero W"), "{out}");
    let (ok, out) = boot.run(&["show"]);
    assert!(ok, "{out}");
    assert!(out.contains("may apply"), "{out}");
}

/// The file, padded with comments so that writing it takes long enough to be killed midway.
fn padded(gpu_mem: u32, camera_auto_detect: u8) -> String {
    let mut text = String::from("# config.txt for the crash test\r\n[pi3]\r\n");
    text.push_str(&format!("gpu_mem={gpu_mem}\r\n[all]\r\n"));
    while text.len() < 256 * 1024 {
        text.push_str("# padding: a comment line that the editor must keep byte for byte ............\r\n");
    }
    text.push_str(&format!("camera_auto_detect={camera_auto_detect}\r\n"));
    text
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "config.txt")
        .collect()
}

/// SIGKILL at random points while `set` rewrites a 256 KiB config.txt, 200 times: the file
/// is always exactly the old or the new one, and the next run copes with leftover temp files.
#[test]
fn a_killed_writer_leaves_the_old_or_the_new_file() {
    let (a, b) = (padded(128, 1), padded(192, 0));
    let (set_a, set_b) = (["set", "gpu_mem=128", "camera=auto"], ["set", "gpu_mem=192", "camera=off"]);
    let boot = Boot::new(PI3, &a);
    let (ok, out) = boot.run(&set_b);
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(boot.config()).unwrap(), b, "an uninterrupted run writes the new file");
    // The kill delays spread over 0.5 to 1.5 times the median of the last whole runs (start-up
    // included): runs that finish tell how long a run takes on this (shared) machine now.
    let mut runs: Vec<_> = [&set_a, &set_b, &set_a, &set_b, &set_a, &set_b]
        .into_iter()
        .map(|words| {
            let started = Instant::now();
            assert!(boot.run(words).0);
            started.elapsed()
        })
        .collect();
    let median = |runs: &[std::time::Duration]| {
        let mut last: Vec<_> = runs[runs.len().saturating_sub(9)..].to_vec();
        last.sort();
        last[last.len() / 2]
    };
    let (mut killed, mut old_kept, mut new_written, mut finished, mut mid_write) = (0, 0, 0, 0, 0);
    for round in 0..200 {
        let before = std::fs::read_to_string(boot.config()).unwrap();
        let (words, after) = if before == a { (&set_b, &b) } else { (&set_a, &a) };
        let started = Instant::now();
        let mut child = Command::new(BIN).args(boot.args(words)).spawn().unwrap();
        let pid = child.id();
        let deadline = started + median(&runs).mul_f64(0.5 + fastrand::f64());
        // Polled, so a run that finishes first is timed to within a fraction of a millisecond.
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                runs.push(started.elapsed());
                break status;
            }
            if Instant::now() >= deadline {
                child.kill().unwrap();
                break child.wait().unwrap();
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        };
        let now = std::fs::read_to_string(boot.config()).unwrap();
        assert!(now == before || now == *after, "round {round}: config.txt is neither the old nor the new file");
        if std::os::unix::process::ExitStatusExt::signal(&status).is_some() {
            killed += 1;
            if now == before {
                old_kept += 1
            } else {
                new_written += 1
            }
            mid_write += usize::from(
                temp_files(&boot.dir.path().join("boot"))
                    .iter()
                    .any(|name| name.starts_with(&format!(".config.txt.tmp-{pid}-"))),
            );
        } else {
            assert!(status.success() && now == *after, "round {round}: {status}");
            finished += 1;
        }
    }
    let counts = format!(
        "{killed} killed ({old_kept} kept the old file, {new_written} had the new one, {mid_write} left a temp file), {finished} finished"
    );
    assert!(
        killed >= 40 && old_kept > 0 && mid_write > 0 && new_written + finished > 0,
        "the kills must land all over the run: {counts}"
    );
    eprintln!("{counts}");
    // A last, uninterrupted run succeeds and clears what the killed ones left.
    let before = std::fs::read_to_string(boot.config()).unwrap();
    let (words, after) = if before == a { (set_b, &b) } else { (set_a, &a) };
    let (ok, out) = boot.run(&words);
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(boot.config()).unwrap(), *after);
    assert_eq!(temp_files(&boot.dir.path().join("boot")), Vec::<String>::new());
}

/// The boot partition mounted read-only (a tmpfs in a private mount namespace: this machine
/// has no vfat driver) is remounted read-write for the write and read-only again, with its
/// other flags kept; one mounted read-write stays so. Needs root and `unshare` (util-linux).
#[test]
fn a_read_only_boot_partition_is_remounted_and_put_back() {
    for read_only in [true, false] {
        let boot = Boot::new(PI3, SHIPPED);
        let dir = boot.dir.path();
        let mount_dir = dir.join("mnt");
        std::fs::create_dir(&mount_dir).unwrap();
        let mut args = boot.args(&["set", "gpu_mem=192"]);
        let at = args.iter().position(|a| a == "--boot-dir").unwrap();
        args[at + 1] = mount_dir.to_str().unwrap().to_string();
        let script = format!(
            "set -e\n\
             mount -t tmpfs -o size=4m,nodev,noexec tmpfs \"$1\"\n\
             cp \"$2\" \"$1/config.txt\"\n\
             {remount}\n\
             shift 3\n\
             \"$@\"\n\
             awk -v d=\"$MNT\" '$5 == d {{ print $6 }}' /proc/self/mountinfo > \"$OUT.flags\"\n\
             cp \"$MNT/config.txt\" \"$OUT\"\n",
            remount = if read_only { "mount -o remount,ro \"$1\"" } else { ":" },
        );
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script, "sh"])
            .arg(&mount_dir)
            .arg(boot.config())
            .arg("-")
            .arg(BIN)
            .args(&args)
            .env("MNT", &mount_dir)
            .env("OUT", dir.join("out"))
            .output()
            .expect("run unshare (util-linux)");
        let said = text(&out);
        assert!(out.status.success(), "read_only={read_only}: {said}");
        assert!(said.contains("line 2: gpu_mem=128 → gpu_mem=192"), "{said}");
        let written = std::fs::read_to_string(dir.join("out")).unwrap();
        assert_eq!(written, SHIPPED.replace("gpu_mem=128", "gpu_mem=192"));
        let flags = std::fs::read_to_string(dir.join("out.flags")).unwrap();
        let flags: Vec<&str> = flags.trim().split(',').collect();
        assert_eq!(flags.contains(&"ro"), read_only, "{flags:?}");
        assert!(flags.contains(&"nodev") && flags.contains(&"noexec"), "{flags:?}");
    }
}

/// The root helper as `makespacelive-boot-config.service` runs it: a request the service
/// wrote is applied, deleted and answered (changes in words, the reboot-needed marker,
/// what is in force); a refused one is answered with why and changes nothing.
#[test]
fn apply_request_applies_deletes_and_answers() {
    let boot = Boot::new(PI3, SHIPPED);
    let run = boot.dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let request = run.join("boot-config.request");
    let answer = |id: &str, body: &str| -> serde_json::Value {
        std::fs::write(&request, body).unwrap();
        let (ok, out) = boot.run(&["apply-request", request.to_str().unwrap()]);
        assert!(ok, "{out}");
        assert!(!request.exists(), "the request is deleted");
        let answer: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(boot.dir.path().join("run-root/boot-config.result")).unwrap(),
        )
        .unwrap();
        assert_eq!(answer["id"], id, "{answer:#}");
        answer
    };

    let refused = answer("r1", r#"{"id":"r1","gpu_mem":2000,"camera":null}"#);
    assert!(refused["error"].as_str().unwrap().contains("gpu_mem=2000 is out of range: allowed 16..=944"), "{refused}");
    assert_eq!(refused["changes"], serde_json::json!([]));
    assert_eq!(std::fs::read_to_string(boot.config()).unwrap(), SHIPPED);
    assert!(!boot.marker().exists());

    let applied = answer("r2", r#"{"id":"r2","gpu_mem":256,"camera":"imx477"}"#);
    assert!(applied["error"].is_null(), "{applied:#}");
    assert_eq!(applied["changes"][0], "line 2: gpu_mem=128 → gpu_mem=256");
    assert!(applied["reboot_needed"].as_str().unwrap().contains("gpu_mem=128 → gpu_mem=256"), "{applied:#}");
    let (_, out) = boot.run(&["show"]);
    assert!(out.contains("camera: imx477\n") && out.contains("reboot needed: yes"), "{out}");
    assert_eq!(applied["view"]["camera"], "imx477", "what is in force after it: {applied:#}");

    // No settings: only what is in force (the service cannot read the boot partition).
    let shown = answer("r0", r#"{"id":"r0"}"#);
    assert!(shown["error"].is_null() && shown["changes"] == serde_json::json!([]), "{shown:#}");
    assert_eq!(shown["view"]["gpu_mem"], 256, "{shown:#}");
    assert_eq!(shown["view"]["gpu_mem_from"], "line 2 `gpu_mem=256`, unconditional", "{shown:#}");

    let unknown = answer("r3", r#"{"id":"r3","camera":"usb"}"#);
    assert!(unknown["error"].as_str().unwrap().contains("allowed auto, off, ov5647"), "{unknown}");
}
