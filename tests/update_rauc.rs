//! `makespacelive update install|status|mark` against the real Debian `rauc service` on a
//! private system bus (tests/peers/rauc.rs): bundles signed at test time by a throw-away
//! CA, two raw slots backed by files, and a custom bootloader backend whose state files
//! are what a Pi's boot firmware would read. Asserted: the slot's bytes, the primary and
//! good/bad as the backend has them, and what the operator reads.

mod app;
mod peers;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use app::{BIN, run_cli, text};
use peers::rauc::RaucPeer;

const COMPATIBLE: &str = "makespacelive-test";

/// `makespacelive update ARGS` for a box whose RAUC is `peer` (its records in the peer's dir).
fn update(peer: &RaucPeer, args: &[&str]) -> Output {
    let data = peer.box_data_dir();
    let mut all = vec!["update"];
    all.extend_from_slice(args);
    let run = peer.runtime_dir();
    if args[0] != "mark" {
        all.extend(["--data-dir", data.to_str().unwrap(), "--runtime-dir", run.to_str().unwrap()]);
    }
    run_cli(&all, &[("DBUS_SYSTEM_BUS_ADDRESS", peer.bus_address())])
}

fn ok(peer: &RaucPeer, args: &[&str]) -> String {
    let out = update(peer, args);
    assert!(out.status.success(), "update {args:?} failed:\n{}\nrauc:\n{}", text(&out), peer.log());
    text(&out)
}

fn refused(peer: &RaucPeer, args: &[&str]) -> String {
    let out = update(peer, args);
    assert!(!out.status.success(), "update {args:?} succeeded:\n{}", text(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn random(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    bytes
}

fn starts_with(file: &Path, payload: &[u8]) -> bool {
    let slot = std::fs::read(file).unwrap();
    slot.len() >= payload.len() && slot[..payload.len()] == *payload
}

fn untouched(file: &Path) -> bool {
    std::fs::read(file).unwrap().iter().all(|&b| b == 0)
}

#[test]
fn a_good_bundle_goes_into_the_other_slot_and_becomes_primary() {
    let mut peer = RaucPeer::start("A");
    let payload = random(1 << 20);
    let bundle = peer.bundle("0.2.0", COMPATIBLE, &payload);
    let out = ok(&peer, &["install", bundle.to_str().unwrap()]);
    assert!(out.contains("100% Installing done."), "progress reached 100 with RAUC's messages:\n{out}");
    assert!(out.contains("% Copying image to rootfs.1"), "{out}");
    assert!(out.contains("installed 0.2.0 into slot B\nit runs after a reboot"), "{out}");
    assert!(starts_with(&peer.slot_file("B"), &payload), "slot B holds the payload byte for byte");
    assert!(untouched(&peer.slot_file("A")), "the booted slot is not written");
    assert_eq!(peer.primary(), "B");

    let status = ok(&peer, &["status"]);
    assert!(status.contains("booted: A (version -)\nprimary: rootfs.1\noperation: Idle"), "{status}");
    assert!(status.contains("pending: unknown → 0.2.0 into slot B"), "{status}");
    assert!(status.contains("rootfs.0: bootname A, state booted, boot status good, version -"), "{status}");
    assert!(
        status.contains("rootfs.1: bootname B, state inactive, boot status good, version 0.2.0, installed 20"),
        "{status}"
    );

    // The reboot: B runs 0.2.0, so 0.1.0 is older and needs --force, and goes into A.
    // (The service would judge and close the pending record; this test is RAUC's.)
    peer.restart_as_booted("B");
    std::fs::remove_file(peer.box_data_dir().join("update/pending.json")).unwrap();
    let status = ok(&peer, &["status"]);
    assert!(status.contains("booted: B (version 0.2.0)\nprimary: rootfs.1"), "{status}");
    let older = peer.bundle("0.1.0", COMPATIBLE, &payload[..4096]);
    let error = refused(&peer, &["install", older.to_str().unwrap()]);
    assert_eq!(
        error.trim(),
        "error: the bundle's version 0.1.0 is older than the running 0.2.0: not installed (--force installs it)"
    );
    assert!(untouched(&peer.slot_file("A")));
    // The review's: the check lived only in the unprivileged service. RAUC itself (the
    // image's pre-install handler) refuses an older bundle asked for over D-Bus, as a
    // bug in the service, or anyone on the bus it may use, would ask.
    peer.set_running_version("0.2.0");
    let direct = Command::new("rauc")
        .args(["install", older.to_str().unwrap()])
        .env("DBUS_SYSTEM_BUS_ADDRESS", peer.bus_address())
        .output()
        .unwrap();
    let said = format!("{}{}", text(&direct), peer.log());
    assert!(
        !direct.status.success(),
        "RAUC installed an older version:
{said}"
    );
    assert!(said.contains("the bundle's version 0.1.0 is older than the running 0.2.0: refused"), "{said}");
    assert!(untouched(&peer.slot_file("A")));
    // Root at the console may, for that version (the marker is root's, then gone).
    let out = ok(&peer, &["install", "--force", older.to_str().unwrap()]);
    assert!(out.contains("installed 0.1.0 into slot A"), "{out}");
    assert!(!Path::new(&format!("{}-root/downgrade-allowed", peer.runtime_dir().display())).exists());
    assert!(starts_with(&peer.slot_file("A"), &payload[..4096]));
    assert_eq!(peer.primary(), "A");
}

#[test]
fn bad_bundles_are_refused_and_nothing_changes() {
    let peer = RaucPeer::start("A");
    let payload = random(64 << 10);
    let cases = [
        // RAUC 1.8's Info tells no reason (1.9 and later's InspectBundle does): its log
        // shows it was the signature.
        (peer.bundle_signed_by_other_ca("0.2.0", COMPATIBLE, &payload), "error: RAUC refused the bundle: "),
        (
            peer.bundle("0.2.0", "someone-elses-box", &payload),
            "error: the bundle is for \"someone-elses-box\", this system is \"makespacelive-test\": not installed",
        ),
        (peer.truncated_bundle("0.2.0", COMPATIBLE, &payload), "error: RAUC refused the bundle: "),
    ];
    for (bundle, expected) in cases {
        let error = refused(&peer, &["install", bundle.to_str().unwrap()]);
        assert!(error.starts_with(expected), "{expected:?} expected, got: {error}");
        assert_eq!(error.trim().lines().count(), 1, "one clear line: {error}");
        assert!(untouched(&peer.slot_file("B")) && untouched(&peer.slot_file("A")));
        assert_eq!(peer.primary(), "A");
    }
    assert!(peer.log().contains("signature verification failed: Verify error: unable to get local issuer certificate"));
    // A bundle RAUC accepts but cannot write: its LastError reaches the operator.
    peer.break_slot("B");
    let error = refused(&peer, &["install", peer.bundle("0.2.0", COMPATIBLE, &payload).to_str().unwrap()]);
    assert!(error.starts_with("error: RAUC refused the bundle: "), "{error}");
    assert!(error.contains("rootfs.1"), "RAUC's reason names the slot: {error}");
    assert_eq!(peer.primary(), "A");
    let missing = refused(&peer, &["install", "/nonexistent/update.raucb"]);
    assert!(missing.starts_with("error: no bundle at /nonexistent/update.raucb"), "{missing}");
}

#[test]
fn marks_reach_the_bootloader_backend() {
    let peer = RaucPeer::start("A");
    let out = ok(&peer, &["mark", "bad", "other"]);
    assert!(out.starts_with("rootfs.1: "), "{out}");
    assert_eq!((peer.state("B"), peer.state("A")), ("bad".into(), "good".into()));
    let status = ok(&peer, &["status"]);
    assert!(status.contains("rootfs.1: bootname B, state inactive, boot status bad"), "{status}");

    ok(&peer, &["mark", "good", "rootfs.1"]);
    assert_eq!(peer.state("B"), "good");
    ok(&peer, &["mark", "active", "other"]);
    assert_eq!(peer.primary(), "B");
    ok(&peer, &["mark", "bad"]);
    assert_eq!(peer.state("A"), "bad");

    let error = refused(&peer, &["mark", "fine"]);
    assert!(error.contains("unknown mark \"fine\": allowed are good, bad and active"), "{error}");
    let error = refused(&peer, &["mark", "good", "rootfs.7"]);
    assert!(error.starts_with("error: RAUC mark failed: "), "{error}");
}

#[test]
fn booted_follows_the_boot_slot_rauc_was_given() {
    let peer = RaucPeer::start("B");
    let status = ok(&peer, &["status"]);
    assert!(status.contains("booted: B (version -)\nprimary: rootfs.0"), "{status}");
    assert!(status.contains("rootfs.1: bootname B, state booted"), "{status}");
}

#[test]
fn rauc_vanishing_mid_install_is_reported_at_once() {
    let mut peer = RaucPeer::start("A");
    let bundle = peer.bundle("0.2.0", COMPATIBLE, &random(64 << 10));
    peer.hold_installs();
    let mut install = Command::new(BIN)
        .args(["update", "install", bundle.to_str().unwrap(), "--data-dir"])
        .arg(peer.box_data_dir())
        .env("DBUS_SYSTEM_BUS_ADDRESS", peer.bus_address())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !peer.install_reached_handler() {
        assert!(Instant::now() < deadline, "the install did not start:\n{}", peer.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    peer.kill();
    let killed = Instant::now();
    while install.try_wait().unwrap().is_none() {
        assert!(killed.elapsed() < Duration::from_secs(5), "the client still waits for a RAUC that is gone");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = install.wait_with_output().unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.starts_with("error: RAUC stopped during the install"), "{error}");
    assert_eq!(peer.primary(), "A");

    let error = refused(&peer, &["status"]);
    assert!(error.starts_with("error: RAUC is not running on the system bus ("), "{error}");
}
