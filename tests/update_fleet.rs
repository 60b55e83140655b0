//! The fleet story: gooseBit (HTTPS, test CA via `SSL_CERT_FILE`) assigns a bundle to a
//! box, and the real service polls, downloads (through a proxy that cuts the connection
//! once: it resumes), installs into the real RAUC peer's other slot, reports "proceeding",
//! asks for the reboot, and after the simulated reboot (tests/peers/updatebox.rs) and the
//! health check reports the outcome. Each scenario has its own gooseBit, RAUC and device.
//!
//! gooseBit (0.2.12) facts these rest on: a device exists once it has polled and is
//! offered nothing before it has sent its configData; its `last_state` is `Running` while
//! an action is open, `Finished` after a success and `Error` after a failure.

mod app;
mod peers;

use std::time::Duration;

use app::{free_port, test_settings};
use peers::cut_proxy::CutProxy;
use peers::goosebit::GooseBit;
use peers::rauc::RaucPeer;
use peers::updatebox::{COMPATIBLE, UpdateBox, payload};
use peers::wait;

/// Newer than what the box runs: its slot has no bundle yet, so the host's os-release
/// VERSION_ID stands for its version (12 on Debian bookworm).
const VERSION: &str = "100.0.0";

struct Fleet {
    gb: GooseBit,
    proxy: CutProxy,
    rauc: RaucPeer,
    b: UpdateBox,
    device: &'static str,
}

impl Fleet {
    /// A box polling gooseBit (through the proxy) as `device`; `settings` are its
    /// settings before `[update]`, `update` more `[update]` lines.
    fn start(device: &'static str, settings: &str, update: &str, web: u16) -> Fleet {
        let gb = GooseBit::start();
        let rauc = RaucPeer::start("A");
        // Cut the first connection that carries more than half a bundle.
        let proxy = CutProxy::start(gb.port, payload(0).len() as u64 / 2);
        let settings = format!(
            "{settings}[update]\nsource = \"hawkbit\"\nhawkbit_url = \"https://localhost:{}\"\n\
             controller_id = \"{device}\"\ntimeout_s = 5\n{update}",
            proxy.port
        );
        let ca = gb.ca_cert();
        let b = UpdateBox::start_with(&rauc, &settings, web, &[("SSL_CERT_FILE", ca.to_str().unwrap())]);
        Fleet { gb, proxy, rauc, b, device }
    }

    /// Waits for the box's first poll (gooseBit knows it then), then assigns `bundle`.
    fn assign(&self, bundle: &std::path::Path) {
        self.b.service.wait_for("the first poll", Duration::from_secs(60), |s| !s["update"]["last_check"].is_null());
        let software = self.gb.upload(bundle);
        self.gb.assign(self.device, &software);
    }

    fn device(&self) -> serde_json::Value {
        self.gb.device(self.device)
    }

    /// Waits until gooseBit's `last_state` for the device is `state`; the device.
    fn wait_state(&self, state: &str, timeout: Duration) -> serde_json::Value {
        let reached = wait(timeout, || self.device()["last_state"] == state);
        let device = self.device();
        assert!(reached, "gooseBit shows {state}: {device:#}\nservice:\n{}", self.b.service.output());
        device
    }

    fn log(&self) -> String {
        self.device()["log"].as_str().unwrap_or_default().to_string()
    }
}

#[test]
fn an_assigned_update_is_proceeding_until_the_reboot_and_a_success_after_its_health_check() {
    let web = free_port();
    let mut f = Fleet::start("fleet-a", &test_settings(web, &[]), "", web);
    let bundle = f.rauc.bundle(VERSION, COMPATIBLE, &payload(1));
    let size = std::fs::metadata(&bundle).unwrap().len();
    f.assign(&bundle);

    assert!(wait(Duration::from_secs(90), || f.b.reboot_asked().is_some()), "{}", f.b.service.output());
    let asked = f.b.reboot_asked().unwrap();
    assert!(asked.contains(&format!("to run {VERSION} from slot B")), "{asked}");
    assert_eq!(f.proxy.cuts(), 1, "the download was cut once");
    assert!(f.proxy.forwarded() < size + size / 4, "it resumed ({} bytes for {size})", f.proxy.forwarded());
    let slot_b = std::fs::read(f.rauc.slot_file("B")).unwrap();
    assert_eq!(&slot_b[..payload(1).len()], &payload(1)[..], "slot B holds the bundle's image");
    assert_eq!(f.rauc.primary(), "B");
    // Installed is not a success: only the new version's health check says so.
    let device = f.device();
    assert_eq!(device["last_state"], "Running", "{device:#}");
    assert!(f.log().contains("installed into slot B, rebooting to check its health"), "{}", f.log());

    // gooseBit is down when the verdict is in: the box tells it later, without hammering.
    f.proxy.refuse(true);
    f.b.reboot_into(&mut f.rauc, "B");
    let not_yet = "the outcome could not be reported yet";
    assert!(wait(Duration::from_secs(60), || f.b.service.output().contains(not_yet)), "{}", f.b.service.output());
    std::thread::sleep(Duration::from_secs(10));
    assert!(f.proxy.refused() <= 3, "{} connections in 10 s", f.proxy.refused());
    f.proxy.refuse(false);
    let status = f.b.service.wait_for("the verdict", Duration::from_secs(60), |s| !s["update"]["last"].is_null());
    assert_eq!(status["update"]["last"]["outcome"]["success"], true, "{status:#}");
    let device = f.wait_state("Finished", Duration::from_secs(30));
    assert_eq!(device["sw_version"], VERSION, "{device:#}");
    assert!(f.log().contains(&format!("running {VERSION} from slot B: healthy")), "{}", f.log());
    assert_eq!(f.rauc.state("B"), "good");
}

#[test]
fn an_unhealthy_update_is_rolled_back_and_the_server_hears_why() {
    let web = free_port();
    // A destination nobody listens on: the new version can never publish.
    let dead = format!("rtmp://127.0.0.1:{}/live", free_port());
    let settings = test_settings(web, &[("venue", &dead, "k-1")]);
    let mut f = Fleet::start("fleet-b", &settings, "health_window_s = 30\n", web);
    f.assign(&f.rauc.bundle(VERSION, COMPATIBLE, &payload(2)));

    assert!(wait(Duration::from_secs(90), || f.b.reboot_asked().is_some()), "{}", f.b.service.output());
    f.b.reboot_into(&mut f.rauc, "B");
    assert!(
        wait(Duration::from_secs(90), || f.b.reboot_asked().is_some_and(|why| why.contains("is not healthy"))),
        "{:?}\n{}",
        f.b.reboot_asked(),
        f.b.service.output()
    );
    assert_eq!(f.rauc.state("B"), "bad", "the unhealthy slot is marked bad");
    assert_eq!(f.device()["last_state"], "Running", "no verdict before the box is back");

    // The bootloader skips the bad slot: the box comes back on A and tells gooseBit.
    f.b.reboot_into(&mut f.rauc, "A");
    f.wait_state("Error", Duration::from_secs(60));
    let log = f.log();
    assert!(log.contains("destination \"venue\" never published"), "{log}");
    assert!(log.contains("went back to slot A"), "{log}");
    assert!(!log.contains("k-1"), "no key in the reason: {log}");
    assert_eq!(f.rauc.primary(), "A");
}

#[test]
fn a_bundle_rauc_refuses_is_a_failure_on_the_server_with_the_slots_untouched() {
    let web = free_port();
    let f = Fleet::start("fleet-c", &test_settings(web, &[]), "", web);
    let before = std::fs::read(f.rauc.slot_file("B")).unwrap();
    f.assign(&f.rauc.bundle_signed_by_other_ca(VERSION, COMPATIBLE, &payload(3)));

    f.wait_state("Error", Duration::from_secs(90));
    let log = f.log();
    assert!(log.contains("RAUC refused the bundle"), "RAUC's reason: {log}");
    assert_eq!(std::fs::read(f.rauc.slot_file("B")).unwrap(), before, "slot B untouched");
    assert_eq!(f.rauc.primary(), "A");
    assert!(!f.b.service.data_dir().join("update/pending.json").exists());
    assert!(f.b.reboot_asked().is_none());
}
