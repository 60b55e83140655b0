//! The update, reboot, boot-config and log calls through the real binary's HTTP API,
//! logged in, against Debian's real `rauc service` (tests/peers/rauc.rs: file-backed raw
//! slots), as tests/update_truth.rs does with the CLI.

mod app;
mod peers;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use app::{Client, free_port};
use peers::rauc::RaucPeer;
use peers::updatebox::{COMPATIBLE, UpdateBox, payload};
use peers::wait;

const MIB: usize = 1024 * 1024;
const PASSWORD: &str = "upload-pw-5e21";

/// The tests' settings with `destinations`, the device password set, never rebooting by
/// itself, and `update`.
fn settings(web: u16, destinations: &[(&str, &str, &str)], update: &str) -> String {
    let with_password = app::settings_with_password(web, destinations, PASSWORD);
    format!("{with_password}[update]\nreboot = \"never\"\n{update}")
}

fn upload(client: &Client, bundle: &Path) -> app::Reply {
    let bytes = std::fs::read(bundle).unwrap();
    client.send_raw("POST", "/api/update/upload", "application/octet-stream", &bytes, &[])
}

/// The files an upload may leave in the box's update directory.
fn upload_files(b: &UpdateBox) -> Vec<String> {
    let dir = b.service.data_dir().join("update");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.starts_with("upload")).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Polls `GET /api/update` until `done`; every state and progress seen on the way.
fn follow(client: &Client, done: impl Fn(&serde_json::Value) -> bool) -> (serde_json::Value, Vec<(String, i64)>) {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let last = client.get("/api/update").json();
        let step = (last["state"].as_str().unwrap_or("").to_string(), last["progress"].as_i64().unwrap_or(-1));
        if seen.last() != Some(&step) {
            seen.push(step);
        }
        if done(&last) {
            return (last, seen);
        }
        assert!(std::time::Instant::now() < deadline, "the update did not end: {last:#}\nseen: {seen:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(rauc: &RaucPeer, extra: &str) -> (UpdateBox, Client) {
    let web = free_port();
    let b = UpdateBox::start(rauc, &settings(web, &[], extra), web);
    let client = b.service.log_in(PASSWORD);
    b.service.wait_for("slot A known", Duration::from_secs(20), |s| s["update"]["slot"] == "A");
    (b, client)
}

#[test]
fn an_uploaded_bundle_is_installed_with_progress_and_then_deleted() {
    let rauc = RaucPeer::start("A");
    let (b, client) = start(&rauc, "");
    let bundle = rauc.bundle("100.0.0", COMPATIBLE, &payload(1));
    let reply = upload(&client, &bundle);
    assert_eq!(reply.code, 202, "{}", reply.body);
    assert_eq!(reply.json()["bytes"], std::fs::metadata(&bundle).unwrap().len());

    let (update, seen) = follow(&client, |u| u["state"] == "installed");
    assert_eq!(update["progress"], 100, "{update:#}");
    assert!(update["reboot_needed"].as_str().unwrap().contains("100.0.0 installed into slot B"), "{update:#}");
    assert!(seen.iter().any(|(state, _)| state == "installing"), "{seen:?}");
    let slot_b = std::fs::read(rauc.slot_file("B")).unwrap();
    assert_eq!(&slot_b[..payload(1).len()], &payload(1)[..], "the inactive slot holds the bundle's image");
    assert_eq!(rauc.primary(), "B");
    assert!(b.service.data_dir().join("update/pending.json").exists());
    assert!(upload_files(&b).is_empty(), "the upload is deleted once installed");

    // Installed and waiting for its reboot: another upload is refused before reading.
    let reply = upload(&client, &bundle);
    assert_eq!(reply.code, 409, "{}", reply.body);
    assert!(reply.body.contains("waits for its reboot"), "{}", reply.body);
    assert!(upload_files(&b).is_empty());

    // The log ring has the install's lines.
    let logs = client.get("/api/logs?lines=500").json();
    let lines: Vec<&str> = logs["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(lines.iter().any(|l| l.contains("100.0.0 installed into slot B")), "{lines:#?}");
    assert_eq!(client.get("/api/logs?lines=501").code, 400);
}

#[test]
fn bad_bundles_are_refused_with_raucs_words_and_the_slot_untouched() {
    let rauc = RaucPeer::start("A");
    let (b, client) = start(&rauc, "");
    let before = std::fs::read(rauc.slot_file("B")).unwrap();
    let cases = [
        // RAUC 1.8 (here) gives the reason only in its log; 1.15's InspectBundle names it.
        (rauc.bundle("100.0.0", "another-device", &payload(3)), "the bundle is for \"another-device\""),
        (rauc.bundle_signed_by_other_ca("100.0.0", COMPATIBLE, &payload(3)), "RAUC refused the bundle"),
        (rauc.truncated_bundle("100.0.0", COMPATIBLE, &payload(3)), "RAUC refused the bundle"),
    ];
    for (bundle, expected) in cases {
        let reply = upload(&client, &bundle);
        assert_eq!(reply.code, 202, "{}", reply.body);
        // This upload's verdict, not the one before (the status names the bundle by its size).
        let this = format!("({} bytes)", reply.json()["bytes"]);
        let (update, _) = follow(&client, |u| u["state"] == "failed" && u["message"].as_str().unwrap().contains(&this));
        let message = update["message"].as_str().unwrap();
        assert!(
            message.contains("not installed") && message.contains(expected),
            "{expected}: {message}\n{}",
            rauc.log()
        );
        assert_eq!(std::fs::read(rauc.slot_file("B")).unwrap(), before, "slot B untouched");
        assert_eq!(rauc.primary(), "A");
        assert!(upload_files(&b).is_empty(), "the refused upload is deleted");
    }
}

#[test]
fn uploads_that_cannot_be_taken_are_refused_and_leave_nothing() {
    let rauc = RaucPeer::start("A");
    let (b, client) = start(&rauc, "upload_limit_mb = 16\n");

    // Declared larger than the limit: refused before a byte is read.
    let head = |length: usize| -> String {
        format!(
            "POST /api/update/upload HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nCookie: {}\r\nX-CSRF-Token: {}\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {length}",
            client.port, client.cookie, client.csrf
        )
    };
    let reply = app::exchange(client.port, &head(16 * MIB + 1), b"");
    assert_eq!(reply.code, 413, "{}", reply.body);
    assert!(
        reply.body.contains("larger than the upload limit of 16777216 bytes (update.upload_limit_mb)"),
        "{}",
        reply.body
    );
    assert!(upload_files(&b).is_empty());

    // No length (chunked): 411, and why.
    let reply =
        client.send_raw("POST", "/api/update/upload", "application/octet-stream", b"", &["Transfer-Encoding: chunked"]);
    assert_eq!(reply.code, 411, "{}", reply.body);
    assert!(reply.body.contains("Content-Length"), "{}", reply.body);

    // Not a raw body.
    let reply = client.send("POST", "/api/update/upload", &serde_json::json!({}));
    assert_eq!(reply.code, 415, "{}", reply.body);

    // A body under way holds the one upload slot; cut, it leaves nothing behind.
    let mut stream = TcpStream::connect(("127.0.0.1", client.port)).unwrap();
    stream.write_all(format!("{}\r\n\r\n", head(3 * MIB)).as_bytes()).unwrap();
    stream.write_all(&vec![0x5a; MIB]).unwrap();
    assert!(wait(Duration::from_secs(10), || upload_files(&b) == ["upload.raucb.part"]), "{:?}", upload_files(&b));
    let bundle = rauc.bundle("100.0.0", COMPATIBLE, &payload(4));
    let reply = upload(&client, &bundle);
    assert_eq!(reply.code, 409, "{}", reply.body);
    assert!(reply.body.contains(&format!("a bundle of {} bytes is being uploaded", 3 * MIB)), "{}", reply.body);
    drop(stream);
    assert!(wait(Duration::from_secs(10), || upload_files(&b).is_empty()), "{:?}", upload_files(&b));
    assert!(b.service.output().contains("the upload stopped after 1048576 of 3145728 bytes"), "{}", b.service.output());

    // The slot is free again.
    let reply = upload(&client, &bundle);
    assert_eq!(reply.code, 202, "{}", reply.body);
    follow(&client, |u| u["state"] == "installed");
}

/// The root helper as `makespacelive-boot-config.path` starts it (systemd cannot run
/// here): whenever the service writes its request into `run`, the real CLI applies it to
/// the stand-ins for the Pi's boot partition and device tree in `boot`, answering in
/// `run-root`.
fn boot_config_helper(boot: &Path, run: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let (boot, run) = (boot.to_path_buf(), run.to_path_buf());
    std::thread::spawn(move || {
        let request = run.join("boot-config.request");
        while !stop.load(Ordering::Relaxed) {
            if request.exists() {
                let out = std::process::Command::new(app::BIN)
                    .args(["boot-config", "apply-request"])
                    .arg(&request)
                    .arg("--boot-dir")
                    .arg(boot.join("boot"))
                    .arg("--model-file")
                    .arg(boot.join("model"))
                    // Root's answers beside the service's runtime directory (its inbox).
                    .arg("--answers-dir")
                    .arg(format!("{}-root", run.display()))
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[test]
fn the_boot_configuration_is_shown_and_changed_through_the_root_helper() {
    let boot = tempfile::tempdir().unwrap();
    std::fs::create_dir(boot.path().join("boot")).unwrap();
    std::fs::write(boot.path().join("boot/config.txt"), "gpu_mem=128\ncamera_auto_detect=1\n").unwrap();
    std::fs::write(boot.path().join("model"), "Raspberry Pi Zero W Rev 1.1\0").unwrap();
    // The update thread reports a pending boot-config change once RAUC tells it the slot.
    let rauc = RaucPeer::start("A");
    let web = free_port();
    let env = [("DBUS_SYSTEM_BUS_ADDRESS", rauc.bus_address())];
    let service = app::Service::start_with(&settings(web, &[], ""), web, &env, None);
    let client = service.log_in(PASSWORD);
    service.wait_for("slot A known", Duration::from_secs(20), |s| s["update"]["slot"] == "A");

    // Without the helper: the service says so within 3 s (a path unit takes a request at
    // once), and nothing changes.
    let reply = client.send("PUT", "/api/boot-config", &serde_json::json!({"gpu_mem": 192}));
    assert_eq!(reply.code, 503, "{}", reply.body);
    assert!(reply.body.contains("did not take the request within 3 s; nothing was changed"), "{}", reply.body);
    assert!(!service.runtime_dir().join("boot-config.request").exists());

    let stop = Arc::new(AtomicBool::new(false));
    let helper = boot_config_helper(boot.path(), &service.runtime_dir(), stop.clone());
    let shown = client.get("/api/boot-config").json();
    assert_eq!(shown["camera"], "auto", "{shown:#}");
    assert_eq!((shown["gpu_mem"].as_u64(), shown["gpu_mem_max"].as_u64()), (Some(128), Some(384)), "{shown:#}");
    assert!(shown["board"].as_str().unwrap().starts_with("Raspberry Pi Zero W"), "{shown:#}");

    let reply = client.send("PUT", "/api/boot-config", &serde_json::json!({"gpu_mem": 500}));
    assert_eq!(reply.code, 400, "{}", reply.body);
    assert_eq!(reply.json()["errors"][0]["field"], "gpu_mem", "{}", reply.body);
    assert!(reply.body.contains("allowed 16..=384"), "{}", reply.body);
    let reply = client.send("PUT", "/api/boot-config", &serde_json::json!({"camera": "usb"}));
    assert_eq!(reply.code, 400, "{}", reply.body);
    assert!(reply.body.contains("allowed auto, off, ov5647"), "{}", reply.body);
    let reply = client.send("PUT", "/api/boot-config", &serde_json::json!({}));
    assert_eq!(reply.code, 400, "{}", reply.body);

    let reply = client.send("PUT", "/api/boot-config", &serde_json::json!({"camera": "imx708", "gpu_mem": 192}));
    assert_eq!(reply.code, 200, "{}", reply.body);
    let changed = reply.json();
    assert_eq!(changed["changes"][0], "line 1: gpu_mem=128 → gpu_mem=192", "{changed:#}");
    assert!(changed["message"].as_str().unwrap().contains("reboot needed"), "{changed:#}");
    assert_eq!(changed["view"]["camera"], "imx708", "{changed:#}");
    let config = std::fs::read_to_string(boot.path().join("boot/config.txt")).unwrap();
    assert_eq!(config, "gpu_mem=192\ncamera_auto_detect=0\ndtoverlay=imx708\n");
    let shown = client.get("/api/boot-config").json();
    assert_eq!(shown["camera"], "imx708");
    assert!(shown["reboot_needed"].as_str().unwrap().contains("gpu_mem=192"), "{shown:#}");
    // The update thread reports it (and, with update.reboot = "never", waits to be told).
    service.wait_for("reboot needed", Duration::from_secs(10), |s| {
        s["update"]["reboot_needed"].as_str().is_some_and(|r| r.contains("the boot configuration changed"))
    });
    stop.store(true, Ordering::Relaxed);
    helper.join().unwrap();

    // A reboot asked for from the web (nothing live: no confirmation needed).
    let reply = client.send("POST", "/api/reboot", &serde_json::json!({}));
    assert_eq!(reply.code, 202, "{}", reply.body);
    let asked = std::fs::read_to_string(service.runtime_dir().join("reboot")).unwrap();
    assert!(asked.contains("as asked from the web"), "{asked}");
}

/// While a destination is live (a real nginx-rtmp on loopback), a reboot from the web is
/// refused with its name unless confirmed. Without RAUC, no upload is taken.
#[test]
fn a_reboot_during_a_live_stream_needs_a_confirmation() {
    let server = peers::RtmpServer::start();
    let web = free_port();
    let settings = settings(web, &[("venue", &server.url(), "k-7")], "");
    let service = app::Service::start(&settings, web);
    let client = service.log_in(PASSWORD);
    service.wait_for("live", Duration::from_secs(20), |s| app::destination(s, "venue")["state"] == "live");

    let reply = client.send("POST", "/api/reboot", &serde_json::json!({}));
    assert_eq!(reply.code, 409, "{}", reply.body);
    assert!(reply.body.contains("streaming live to \\\"venue\\\"") && reply.body.contains("confirm"), "{}", reply.body);
    assert!(!service.runtime_dir().join("reboot").exists());
    let reply = client.send("POST", "/api/reboot", &serde_json::json!({"confirm": "yes"}));
    assert_eq!(reply.code, 400, "{}", reply.body);

    let reply = client.send("POST", "/api/reboot", &serde_json::json!({"confirm": true}));
    assert_eq!(reply.code, 202, "{}", reply.body);
    assert!(service.runtime_dir().join("reboot").exists());

    // No RAUC on this box's bus: an upload is refused before it is read.
    let reply = client.send_raw("POST", "/api/update/upload", "application/octet-stream", &[7; 4096], &[]);
    assert_eq!(reply.code, 503, "{}", reply.body);
    assert!(reply.body.contains("has not found RAUC yet"), "{}", reply.body);
    assert!(!service.data_dir().join("update").exists(), "nothing stored");
}
