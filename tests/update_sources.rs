//! Update sources through the real binary (`makespacelive update check|download DIR` on
//! the `[update]` settings) against real peers: gooseBit as the hawkBit DDI server, and an
//! HTTPS file server for manifests that cuts, stalls, ignores Range, serves short or
//! answers garbage. Both use a test CA made with openssl, trusted through `SSL_CERT_FILE`.
//! No RAUC runs here (the box's version and compatible are unknown): tests/update_fleet.rs
//! has the whole story.

mod app;
mod peers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use app::{BIN, DEFAULTS, text};
use peers::goosebit::GooseBit;
use peers::http_server::HttpServer;
use peers::rauc::RaucPeer;
use peers::updatebox::noise;

fn sha256_hex(data: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = app::write(dir.path(), "f", "");
    std::fs::write(&file, data).unwrap();
    let out = Command::new("sha256sum").arg(&file).output().expect("sha256sum (coreutils)");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// `makespacelive update ARGS` on a data dir whose config.toml is `update` (the lines of
/// an `[update]` section), trusting `ca`, with no RAUC (a manifest does not need it).
fn update(args: &[&str], update: &str, ca: &Path) -> Output {
    run_update(args, update, ca, "unix:path=/nonexistent")
}

/// The same with the RAUC peer, whose version and compatible hawkBit is told.
fn ddi_update(args: &[&str], update: &str, ca: &Path, rauc: &RaucPeer) -> Output {
    run_update(args, update, ca, rauc.bus_address())
}

fn run_update(args: &[&str], update: &str, ca: &Path, bus: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    app::write(dir.path(), "config.toml", &format!("[update]\n{update}"));
    Command::new(BIN)
        .arg("update")
        .args(args)
        .args(["--config", DEFAULTS, "--data-dir"])
        .arg(dir.path())
        .arg("--runtime-dir")
        .arg(dir.path().join("run"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SSL_CERT_FILE", ca)
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .output()
        .expect("run makespacelive")
}

fn manifest_source(url: &str) -> String {
    format!("source = \"manifest\"\nmanifest_url = \"{url}\"\n")
}

fn hawkbit_source(url: &str, device: &str) -> String {
    format!("source = \"hawkbit\"\nhawkbit_url = \"{url}\"\ncontroller_id = \"{device}\"\n")
}

/// A manifest on `server` for the bundle at `path` (e.g. "cut-once/b.raucb"), named by a
/// URL relative to the manifest's.
fn manifest(server: &HttpServer, path: &str, sha256: &str, size: u64) -> String {
    let text = format!(
        r#"{{"version": "2.0.0", "compatible": "makespacelive-test", "url": "../{path}", "sha256": "{sha256}", "size": {size}}}"#
    );
    server.put("manifest.json", text.as_bytes());
    server.url("files/manifest.json")
}

struct Fixture {
    server: HttpServer,
    bundle: Vec<u8>,
    downloads: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let server = HttpServer::start();
        let bundle = noise(0, 3 * 1024 * 1024);
        server.put("b.raucb", &bundle);
        Fixture { server, bundle, downloads: tempfile::tempdir().unwrap() }
    }

    /// `extra`: more `[update]` lines.
    fn download(&self, path: &str, sha256: &str, size: u64, extra: &str) -> Output {
        let url = manifest(&self.server, path, sha256, size);
        let dir = self.downloads.path().display().to_string();
        update(&["download", &dir], &(manifest_source(&url) + extra), &self.server.ca_cert())
    }

    fn file(&self) -> PathBuf {
        self.downloads.path().join("b.raucb")
    }

    /// The part file of the bundle (named by its SHA-256's first 16 digits).
    fn part(&self) -> PathBuf {
        self.downloads.path().join(format!("b.raucb.{}.part", &sha256_hex(&self.bundle)[..16]))
    }

    fn requests_for(&self, path: &str) -> Vec<String> {
        self.server.requests().into_iter().filter(|r| r.starts_with(&format!("/{path} "))).collect()
    }
}

#[test]
fn a_manifest_over_https_is_checked_and_its_bundle_resumes_after_a_cut() {
    let f = Fixture::new();
    let sha = sha256_hex(&f.bundle);
    let size = f.bundle.len() as u64;
    let url = manifest(&f.server, "cut-once/b.raucb", &sha, size);
    let out = update(&["check"], &manifest_source(&url), &f.server.ca_cert());
    assert!(out.status.success(), "{}", text(&out));
    let offer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(offer["offer"]["version"], "2.0.0");
    assert_eq!(offer["offer"]["compatible"], "makespacelive-test");
    assert_eq!(offer["offer"]["size"], size);

    let out = f.download("cut-once/b.raucb", &sha, size, "");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(f.file()).unwrap(), f.bundle);
    assert!(!f.part().exists());
    let requests = f.requests_for("cut-once/b.raucb");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0].ends_with(" -"), "{requests:?}");
    let resumed_at: u64 = requests[1].split("bytes=").nth(1).unwrap().trim_end_matches('-').parse().unwrap();
    assert!(resumed_at > 0 && resumed_at < size, "{requests:?}");
    assert!(text(&out).contains(&format!("progress {size}/{size}")), "{}", text(&out));
}

#[test]
fn a_server_that_ignores_range_makes_the_download_start_over() {
    let f = Fixture::new();
    std::fs::write(f.part(), b"not the start of the bundle").unwrap();
    let out = f.download("norange/b.raucb", &sha256_hex(&f.bundle), f.bundle.len() as u64, "");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(f.file()).unwrap(), f.bundle);
    assert!(f.requests_for("norange/b.raucb")[0].contains("bytes=27-"));
}

#[test]
fn a_wrong_sha256_deletes_the_download() {
    let f = Fixture::new();
    let wrong = "0".repeat(64);
    let out = f.download("files/b.raucb", &wrong, f.bundle.len() as u64, "");
    assert!(!out.status.success());
    let expected = format!(
        "the download does not match its SHA-256: expected {wrong}, got {}; the file was deleted",
        sha256_hex(&f.bundle)
    );
    assert!(text(&out).contains(&expected), "{}", text(&out));
    assert_eq!(std::fs::read_dir(f.downloads.path()).unwrap().count(), 0, "nothing is left");
}

#[test]
fn a_server_with_less_than_declared_is_an_error() {
    let f = Fixture::new();
    let size = f.bundle.len() as u64;
    let out = f.download("short/b.raucb", &sha256_hex(&f.bundle), size, "");
    assert!(!out.status.success());
    let expected = format!("has only {} of the {size} bytes it was declared to have", size - 1000);
    assert!(text(&out).contains(&expected), "{}", text(&out));
    assert!(!f.part().exists());
}

#[test]
fn a_stalled_server_ends_in_a_timeout_and_keeps_what_arrived() {
    let f = Fixture::new();
    let out = f.download("stall/b.raucb", &sha256_hex(&f.bundle), f.bundle.len() as u64, "timeout_s = 1\n");
    assert!(!out.status.success());
    let out = text(&out);
    assert!(out.contains("the download was cut 6 times (last: ") && out.contains("no data for 1 s"), "{out}");
    assert!(out.contains("bytes are kept in") && f.part().exists(), "{out}");
}

#[test]
fn a_10_tb_bundle_is_refused_before_any_byte_is_fetched() {
    let f = Fixture::new();
    let out = f.download("files/b.raucb", &sha256_hex(&f.bundle), 10_000_000_000_000, "");
    assert!(!out.status.success());
    let out = text(&out);
    assert!(out.contains("not enough free space for the download: it needs 10000000000000 more bytes"), "{out}");
    assert!(out.contains("the data partition has"), "{out}");
    assert!(f.requests_for("files/b.raucb").is_empty());
    assert!(!f.part().exists());
}

#[test]
fn garbage_and_plain_http_and_an_unknown_ca_are_refused() {
    let f = Fixture::new();
    let ca = f.server.ca_cert();
    let out = update(&["check"], &manifest_source(&f.server.url("garbage/manifest.json")), &ca);
    assert!(!out.status.success());
    assert!(text(&out).contains("is not JSON"), "{}", text(&out));

    let out = update(&["check"], &manifest_source("http://updates.example/manifest.json"), &ca);
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(shown.contains("update.manifest_url") && shown.contains("only https:// is allowed"), "{shown}");

    let url = manifest(&f.server, "files/b.raucb", &"0".repeat(64), 1);
    let out = update(&["check"], &manifest_source(&url), Path::new("/etc/ssl/certs/ca-certificates.crt"));
    assert!(!out.status.success());
    assert!(text(&out).to_lowercase().contains("unknownissuer"), "{}", text(&out));

    let hawkbit = hawkbit_source(&f.server.url("garbage"), "box");
    let out = update(&["check"], &hawkbit, &ca);
    assert!(!out.status.success());
    assert!(text(&out).contains("hawkBit is told this box's version and compatible, and RAUC cannot say them"));
    let rauc = RaucPeer::start("A");
    let out = ddi_update(&["check"], &hawkbit, &ca, &rauc);
    assert!(!out.status.success());
    assert!(text(&out).contains("the hawkBit server answered with something that is not DDI JSON"), "{}", text(&out));
}

/// A RAUC bundle (version 1.2.3) of 200 kB, signed with the test CA's server key.
fn make_bundle(gb: &GooseBit) -> PathBuf {
    let dir = gb.scratch().join("bundle");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rootfs.img"), noise(0, 200_000)).unwrap();
    std::fs::write(
        dir.join("manifest.raucm"),
        "[update]\ncompatible=makespacelive-test\nversion=1.2.3\n[bundle]\nformat=verity\n\
         [image.rootfs]\nfilename=rootfs.img\n",
    )
    .unwrap();
    let bundle = gb.scratch().join("x.raucb");
    let out = Command::new("rauc")
        .arg("bundle")
        .arg("--cert")
        .arg(gb.scratch().join("server.crt"))
        .arg("--key")
        .arg(gb.scratch().join("server.key"))
        .arg(&dir)
        .arg(&bundle)
        .output()
        .expect("rauc is installed (scripts/setup)");
    assert!(out.status.success(), "rauc bundle: {}", text(&out));
    bundle
}

/// The SHA-1 gooseBit offers for its only software (gooseBit offers no SHA-256).
fn software_sha1(gb: &GooseBit) -> String {
    let listing = gb.driver(&["device", &gb.url(), "box1"]);
    listing["assigned_software"]["hash"].as_str().expect("an assigned software").to_string()
}

#[test]
fn goosebit_offers_an_assigned_bundle_and_it_downloads_resumed() {
    let gb = GooseBit::start();
    let rauc = RaucPeer::start("A");
    let bundle = make_bundle(&gb);
    let software = gb.upload(&bundle);
    let downloads = tempfile::tempdir().unwrap();
    let settings = hawkbit_source(&gb.url(), "box1") + "target_token = \"box-token-123456\"\n";
    let ddi = |args: &[&str]| {
        let out = ddi_update(args, &settings, &gb.ca_cert(), &rauc);
        assert!(!text(&out).contains("box-token-123456"), "{}", text(&out));
        out
    };

    // The first poll registers the box (configData); nothing is assigned yet.
    let out = ddi(&["check"]);
    assert!(out.status.success(), "{}\n{}", text(&out), gb.log());
    let checked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(checked["offer"].is_null(), "{checked}");
    assert!(checked["next_check_s"].as_u64().is_some(), "gooseBit says when to ask again: {checked}");
    // What RAUC says the box is (its version: the booted slot's bundle, else os-release).
    assert_eq!(gb.device("box1")["hardware"]["model"], "makespacelive-test");

    gb.assign("box1", &software);
    let out = ddi(&["check"]);
    assert!(out.status.success(), "{}", text(&out));
    let offer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(offer["offer"]["version"], "1.2.3");
    assert_eq!(offer["offer"]["file"], "x.raucb");
    assert_eq!(offer["offer"]["action"], software.as_str());
    assert_eq!(offer["offer"]["update"], "forced");

    // A restart mid-download: half the bundle is there already; gooseBit serves the rest.
    let whole = std::fs::read(&bundle).unwrap();
    let sha1 = software_sha1(&gb);
    let part = downloads.path().join(format!("x.raucb.{}.part", &sha1[..16]));
    std::fs::write(part, &whole[..whole.len() / 2]).unwrap();
    let out = ddi(&["download", downloads.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", text(&out), gb.log());
    assert_eq!(std::fs::read(downloads.path().join("x.raucb")).unwrap(), whole);
    let first: u64 = text(&out)
        .lines()
        .find_map(|l| l.strip_prefix("progress ")?.split('/').next()?.parse().ok())
        .expect("progress is shown");
    assert!(first > whole.len() as u64 / 2, "resumed, not started over: {}", text(&out));
    let device = gb.device("box1");
    assert_eq!(device["last_state"], "Running", "{device}");
    let log = device["log"].as_str().unwrap_or_default();
    assert!(log.contains("Downloading x.raucb") && log.contains("Downloaded 100%"), "{log}");
}

#[test]
fn goosebit_checks_the_target_token_we_send() {
    let gb =
        GooseBit::start_with(&[("GOOSEBIT_DEVICE_AUTH__ENABLE", "true"), ("GOOSEBIT_DEVICE_AUTH__MODE", "strict")]);
    gb.set_token("box3", "right-token-0001");
    let rauc = RaucPeer::start("A");
    let check = |token: &str| {
        let settings = hawkbit_source(&gb.url(), "box3") + &format!("target_token = \"{token}\"\n");
        let out = ddi_update(&["check"], &settings, &gb.ca_cert(), &rauc);
        assert!(!text(&out).contains(token), "{}", text(&out));
        out
    };
    let out = check("right-token-0001");
    assert!(out.status.success(), "{}\n{}", text(&out), gb.log());
    let out = check("wrong-token-0002");
    assert!(!out.status.success());
    assert!(text(&out).contains("refused the controller's credentials (HTTP 401)"), "{}", text(&out));
}
