//! The attacks of a bug in the service on its root helpers, performed against the real
//! binary run as root (as the units run it; CI runs as root), with the service's user
//! (`nobody` standing in) owning the directories the service owns on the box, full of
//! planted symlinks, hard links, FIFOs and the temp names the old writer used. Each test
//! asserts that nothing outside the helper's own files changed and that nothing secret
//! was read; each passed against the helpers of 70f204b only by failing.

mod app;

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use app::{BIN, DEFAULTS, text};

const SERVICE_UID: u32 = 65534;
const SECRET: &str = "root:$6$not-for-the-service";
/// A helper that blocks on a FIFO is a helper that never answers: it must return well
/// within this.
const PROMPT: Duration = Duration::from_secs(10);

/// Root's world beside the service's: `secret` (root's only, 0600) and a victim file the
/// attacks try to have root overwrite or hand over.
struct Box_ {
    dir: tempfile::TempDir,
}

impl Box_ {
    fn new() -> Box_ {
        assert!(nix::unistd::Uid::effective().is_root(), "run as root (CI does): these are attacks on root");
        let dir = tempfile::tempdir().unwrap();
        let root = |name: &str, text: &str| {
            let path = dir.path().join(name);
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        };
        root("secret", SECRET);
        root("victim", "root's own file\n");
        Box_ { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A directory of the service's (its user's, 0750).
    fn service_dir(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(SERVICE_UID), Some(SERVICE_UID)).unwrap();
        dir
    }

    /// Root's world is as it was: the secret unread is checked by the caller, the files
    /// kept their contents and owner.
    fn untouched(&self) {
        assert_eq!(fs::read_to_string(self.path("secret")).unwrap(), SECRET);
        assert_eq!(fs::read_to_string(self.path("victim")).unwrap(), "root's own file\n");
        for name in ["secret", "victim"] {
            let meta = fs::metadata(self.path(name)).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o600), "{name} was handed over");
        }
    }
}

/// Plants the old writer's predictable temp names (`.NAME.tmp-PID`, for the pids around
/// the next ones) as links to the victim.
fn plant_temps(dir: &Path, name: &str) {
    let next = fs::read_to_string("/proc/sys/kernel/ns_last_pid").map_or(1000, |p| p.trim().parse::<u32>().unwrap());
    for pid in next..next + 200 {
        symlink(dir.parent().unwrap().join("victim"), dir.join(format!(".{name}.tmp-{pid}"))).unwrap();
    }
}

/// The capabilities `unit` (under conf/systemd) leaves its root (`CapabilityBoundingSet=`),
/// as `setpriv --bounding-set` takes them.
fn bounding_set(unit: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/systemd").join(unit);
    let text = fs::read_to_string(path).unwrap();
    let line = text.lines().find_map(|l| l.strip_prefix("CapabilityBoundingSet=")).expect("a bounding set");
    let kept: String =
        line.split_whitespace().map(|c| format!(",+{}", c.to_lowercase().trim_start_matches("cap_"))).collect();
    format!("--bounding-set=-all{kept}")
}

/// Runs the binary as root with `args`, holding only the capabilities `unit` leaves it;
/// fails the test if it does not return in `PROMPT`.
fn helper(unit: &str, args: &[&str]) -> (bool, String) {
    let mut child = Command::new("setpriv")
        .args([&bounding_set(unit), "--inh-caps=-all", "--"])
        .arg(BIN)
        .args(args)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run makespacelive");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > PROMPT {
            child.kill().unwrap();
            panic!("{args:?} still running after {PROMPT:?}: it blocked");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), text(&out))
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
}

/// makespacelive-boot-config.service: the request is the service's; a link to root's
/// secret, a hard link to it, a FIFO and a planted temp name for the answer all fail to
/// get root to read, block or write anything but its own answer.
#[test]
fn the_boot_config_helper_reads_no_link_and_writes_only_its_answer() {
    let host = Box_::new();
    let boot = host.path("boot");
    fs::create_dir(&boot).unwrap();
    fs::write(boot.join("config.txt"), "gpu_mem=128\n").unwrap();
    fs::write(host.path("model"), "Raspberry Pi 3 Model B Rev 1.2\0").unwrap();
    let inbox = host.service_dir("run");
    // As tmpfiles makes it: root's, the service's group may read.
    let answers = host.path("run-root");
    fs::create_dir(&answers).unwrap();
    std::os::unix::fs::chown(&answers, Some(0), Some(SERVICE_UID)).unwrap();
    plant_temps(&inbox, "boot-config.result");
    plant_temps(&inbox, "reboot-needed");
    let request = inbox.join("boot-config.request");
    let apply = || {
        helper(
            "makespacelive-boot-config.service",
            &[
                "boot-config",
                "apply-request",
                request.to_str().unwrap(),
                "--boot-dir",
                boot.to_str().unwrap(),
                "--model-file",
                host.path("model").to_str().unwrap(),
                "--answers-dir",
                answers.to_str().unwrap(),
            ],
        )
    };
    type Plant<'a> = &'a dyn Fn(&Path);
    let plants: [(&str, Plant); 3] = [
        ("a symlink", &|at| symlink(host.path("secret"), at).unwrap()),
        ("has 2 links", &|at| fs::hard_link(host.path("secret"), at).unwrap()),
        ("not a regular file", &|at| mkfifo(at)),
    ];
    for (why, plant) in plants {
        plant(&request);
        let (_, out) = apply();
        let answer = fs::read_to_string(answers.join("boot-config.result")).unwrap();
        assert!(answer.contains(why), "{why}: {answer}");
        assert!(!answer.contains("$6$") && !out.contains("$6$"), "the secret was read: {answer}\n{out}");
        assert!(fs::symlink_metadata(&request).is_err(), "{why}: the planted request is taken away");
        host.untouched();
    }
    // A real request still works, and root wrote only in its answers directory.
    fs::write(&request, r#"{"id":"ok","gpu_mem":256}"#).unwrap();
    let (ok, out) = apply();
    assert!(ok, "{out}");
    assert!(fs::read_to_string(answers.join("boot-config.result")).unwrap().contains("gpu_mem=256"));
    assert_eq!(fs::read_to_string(boot.join("config.txt")).unwrap(), "gpu_mem=256\n");
    assert!(answers.join("reboot-needed").exists() && !inbox.join("reboot-needed").exists());
    host.untouched();
}

/// makespacelive-reboot.service prints why the service asked: never root's secret behind a
/// link, never blocked by a FIFO, never a control sequence on the console.
#[test]
fn the_reboot_helper_prints_no_file_but_the_request() {
    let host = Box_::new();
    let inbox = host.service_dir("run");
    let request = inbox.join("reboot");
    let take = || helper("makespacelive-reboot.service", &["reboot-requested", request.to_str().unwrap()]);
    symlink(host.path("secret"), &request).unwrap();
    let (ok, out) = take();
    assert!(ok && out.contains("its reason is not shown") && out.contains("a symlink"), "{out}");
    assert!(!out.contains("$6$"), "{out}");
    mkfifo(&request);
    let (ok, out) = take();
    assert!(ok && out.contains("not a regular file"), "{out}");
    fs::write(&request, "to run 0.2.0\u{1b}]2;owned\u{7}\n").unwrap();
    let (ok, out) = take();
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "makespacelive asked for a reboot: to run 0.2.0?]2;owned?");
    assert!(!request.exists());
    host.untouched();
}

/// makespacelive-password-reset.service (root) writes the service's settings file: a link
/// there is not written through, the old writer's temp names are not followed, and what it
/// writes stays the service's; nothing root owns is handed over.
#[test]
fn the_password_reset_writes_through_no_link_and_hands_nothing_over() {
    let host = Box_::new();
    let data = host.service_dir("data");
    let trigger = host.path("makespacelive-reset-password");
    let reset = || {
        fs::write(&trigger, "").unwrap();
        helper(
            "makespacelive-password-reset.service",
            &[
                "reset-password",
                "--config",
                DEFAULTS,
                "--data-dir",
                data.to_str().unwrap(),
                "--trigger",
                trigger.to_str().unwrap(),
            ],
        )
    };
    symlink(host.path("victim"), data.join("config.toml")).unwrap();
    let (ok, out) = reset();
    assert!(!ok && out.contains("a symlink") && out.contains("Nothing was saved"), "{out}");
    host.untouched();

    fs::remove_file(data.join("config.toml")).unwrap();
    fs::write(data.join("config.toml"), "[web]\npassword_hash = \"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA\"\n")
        .unwrap();
    std::os::unix::fs::chown(data.join("config.toml"), Some(SERVICE_UID), Some(SERVICE_UID)).unwrap();
    plant_temps(&data, "config.toml");
    let (ok, out) = reset();
    assert!(ok, "{out}");
    let meta = fs::symlink_metadata(data.join("config.toml")).unwrap();
    assert!(meta.is_file() && meta.uid() == SERVICE_UID, "the settings stay the service's: {meta:?}");
    assert!(!fs::read_to_string(data.join("config.toml")).unwrap().contains("password_hash"));
    host.untouched();
}

/// The service's unit: root runs nothing with the environment file the service writes
/// (`PATH=` or `LD_PRELOAD=` there was root at the next restart), and the radio's
/// country is set by its own unit, with no environment file, `iw` by path.
#[test]
fn no_root_command_takes_the_services_environment() {
    let unit = |name: &str| fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap();
    let service = unit("conf/makespacelive.service");
    assert!(service.contains("EnvironmentFile=-/data/makespacelive/environment"));
    for line in service.lines().filter(|l| l.starts_with("Exec")) {
        let command = line.split_once('=').unwrap().1;
        assert!(!command.trim_start_matches(['-', '@', ':']).starts_with(['+', '!']), "run as root: {line}");
    }
    assert!(service.contains("User=makespacelive"));
    for helper in ["country.service", "boot-config.service", "reboot.service", "password-reset.service"] {
        let text = unit(&format!("conf/systemd/makespacelive-{helper}"));
        assert!(!text.contains("EnvironmentFile"), "{helper} takes an environment file");
        for hardening in ["ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "CapabilityBoundingSet="] {
            assert!(text.contains(hardening), "{helper} lacks {hardening}");
        }
    }
}

/// `systemd-analyze security` of every unit of ours (offline, the unit files as shipped):
/// each at or under the exposure recorded when the helpers were hardened (the three root
/// helpers were 9.6 "UNSAFE" before, set-country ran as root inside the service's unit).
/// Exposure ×10, as `--threshold` takes it. The QEMU rung checks the same on the box.
#[test]
fn every_unit_stays_at_or_under_its_recorded_exposure() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    for (unit, most) in [
        ("makespacelive.service", 37),
        ("systemd/makespacelive-boot-config.service", 24),
        ("systemd/makespacelive-country.service", 21),
        ("systemd/makespacelive-password-reset.service", 18),
        ("systemd/makespacelive-reboot.service", 17),
    ] {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager", &format!("--threshold={most}")])
            .arg(conf.join(unit))
            .output()
            .expect("systemd-analyze (systemd) is installed");
        let said = text(&out);
        let overall = said.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_default().to_string();
        assert!(out.status.success(), "{unit} is more exposed than {most}/100: {overall}");
        eprintln!("{overall}");
    }
}
