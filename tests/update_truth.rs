//! The truth about an update, through the real binary against Debian's real `rauc service`
//! (tests/peers/rauc.rs: file-backed raw slots, a custom bootloader backend keeping its
//! state in files), with bundles as local files. A "reboot" is tests/peers/updatebox.rs's.

mod app;
mod peers;

use std::time::Duration;

use app::{free_port, test_settings};
use peers::rauc::RaucPeer;
use peers::updatebox::{COMPATIBLE, UpdateBox, payload, update_state};
use peers::wait;

#[test]
fn an_update_is_a_success_only_after_the_reboot_and_its_health_check() {
    let mut rauc = RaucPeer::start("A");
    let web = free_port();
    let mut b = UpdateBox::start(&rauc, &test_settings(web, &[]), web);

    // An ordinary boot: the service marks its slot good once it is ready.
    b.service.wait_for("slot A known", Duration::from_secs(20), |s| s["update"]["slot"] == "A");
    rauc.set_state("A", "bad");
    b.restart(&rauc);
    assert!(wait(Duration::from_secs(20), || rauc.state("A") == "good"), "A marked good:\n{}", b.service.output());

    let bundle = rauc.bundle("100.0.0", COMPATIBLE, &payload(1));
    let (ok, out) = b.cli(&rauc, &["update", "install", bundle.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("100%"), "progress printed: {out}");
    let slot_b = std::fs::read(rauc.slot_file("B")).unwrap();
    assert_eq!(&slot_b[..payload(1).len()], &payload(1)[..], "the inactive slot holds the bundle's image");
    assert_eq!(rauc.primary(), "B");
    let pending = b.service.data_dir().join("update/pending.json");
    assert!(pending.exists(), "the pending record is written at the install");

    // Idle (no destination): the service asks for the reboot at once.
    assert!(wait(Duration::from_secs(20), || b.reboot_asked().is_some()), "{}", b.service.output());
    assert!(b.reboot_asked().unwrap().contains("to run 100.0.0 from slot B"), "{:?}", b.reboot_asked());
    let status = b.service.status().unwrap();
    assert_eq!(update_state(&status), "rebooting", "{status:#}");
    assert!(status["update"]["last"].is_null(), "no verdict before the reboot: {status:#}");

    b.reboot_into(&mut rauc, "B");
    let status = b.service.wait_for("the verdict", Duration::from_secs(30), |s| !s["update"]["last"].is_null());
    let last = &status["update"]["last"];
    assert_eq!(last["outcome"]["success"], true, "{status:#}");
    assert_eq!(last["to_version"], "100.0.0");
    assert!(
        last["outcome"]["details"].as_str().unwrap().contains("running 100.0.0 from slot B: healthy"),
        "{status:#}"
    );
    assert_eq!(rauc.state("B"), "good");
    assert!(!pending.exists(), "the record is closed");
    assert!(b.reboot_asked().is_none());

    let (ok, out) = b.cli(&rauc, &["update", "status"]);
    assert!(ok, "{out}");
    assert!(out.contains("booted: B") && out.contains("100.0.0") && out.contains("success"), "{out}");
}

#[test]
fn an_unhealthy_update_is_marked_bad_rolled_back_and_reported_as_a_failure() {
    let mut rauc = RaucPeer::start("A");
    let web = free_port();
    // A destination nobody listens on: the new version can never publish.
    let dead = format!("rtmp://127.0.0.1:{}/live", free_port());
    let settings = format!("{}[update]\nhealth_window_s = 30\n", test_settings(web, &[("venue", &dead, "k-1")]));
    let mut b = UpdateBox::start(&rauc, &settings, web);
    b.service.wait_for("slot A known", Duration::from_secs(20), |s| s["update"]["slot"] == "A");

    let bundle = rauc.bundle("100.0.0", COMPATIBLE, &payload(2));
    let (ok, out) = b.cli(&rauc, &["update", "install", bundle.to_str().unwrap()]);
    assert!(ok, "{out}");
    // Not live (it never connects): idle enough to reboot.
    assert!(wait(Duration::from_secs(20), || b.reboot_asked().is_some()), "{}", b.service.output());

    b.reboot_into(&mut rauc, "B");
    b.service.wait_for("the health check", Duration::from_secs(20), |s| update_state(s) == "verifying");
    assert!(wait(Duration::from_secs(60), || b.reboot_asked().is_some()), "{}", b.service.output());
    assert_eq!(rauc.state("B"), "bad", "the unhealthy slot is marked bad");
    let asked = b.reboot_asked().unwrap();
    assert!(asked.contains("100.0.0 is not healthy"), "{asked}");

    // The bootloader skips the bad slot: the box comes back on A.
    b.reboot_into(&mut rauc, "A");
    let status = b.service.wait_for("the verdict", Duration::from_secs(30), |s| !s["update"]["last"].is_null());
    let last = &status["update"]["last"];
    assert_eq!(last["outcome"]["success"], false, "{status:#}");
    let details = last["outcome"]["details"].as_str().unwrap();
    assert!(details.contains("not healthy within 30 s"), "{details}");
    assert!(details.contains("destination \"venue\" never published"), "{details}");
    assert!(details.contains("went back to slot A"), "{details}");
    assert!(!details.contains("k-1"), "no key in the reason: {details}");
    assert_eq!(update_state(&status), "failed");
    assert_eq!(rauc.primary(), "A", "the old slot is primary again");
    assert!(!b.service.data_dir().join("update/pending.json").exists());
}

#[test]
fn bad_bundles_are_refused_with_the_running_system_untouched() {
    let rauc = RaucPeer::start("A");
    let web = free_port();
    let b = UpdateBox::start(&rauc, &test_settings(web, &[]), web);
    b.service.wait_for("slot A known", Duration::from_secs(20), |s| s["update"]["slot"] == "A");
    let before = std::fs::read(rauc.slot_file("B")).unwrap();
    let cases = [
        // RAUC 1.8 (here) gives the reason only in its log; 1.15's InspectBundle names it.
        (rauc.bundle_signed_by_other_ca("100.0.0", COMPATIBLE, &payload(3)), "RAUC refused the bundle"),
        (rauc.bundle("100.0.0", "another-device", &payload(3)), "\"another-device\""),
        (rauc.truncated_bundle("100.0.0", COMPATIBLE, &payload(3)), "RAUC refused the bundle"),
    ];
    for (bundle, expected) in cases {
        let (ok, out) = b.cli(&rauc, &["update", "install", bundle.to_str().unwrap()]);
        assert!(!ok, "{out}");
        assert!(out.contains(expected), "{expected}: {out}");
        assert_eq!(std::fs::read(rauc.slot_file("B")).unwrap(), before, "slot B untouched");
        assert_eq!(rauc.primary(), "A");
        assert!(!b.service.data_dir().join("update/pending.json").exists());
    }
}
