//! The settings in force, section by section: a change saved through the LAN API and one
//! made by hand in the settings file + SIGHUP both take effect in the running service,
//! and a section nobody changed restarts nothing (the stream keeps its connection).
//! Real peers: nginx-rtmp, Debian's `rauc service` on a private bus, an HTTPS file server.
//! (The network section: tests/network_nm.rs.)

mod app;
mod peers;

use std::time::Duration;

use app::{Client, Service, destination, free_port, password_hash, settings_with_password};
use peers::RtmpServer;
use peers::http_server::HttpServer;
use peers::rauc::RaucPeer;
use peers::updatebox::UpdateBox;
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(20);
const PASSWORD: &str = "device-pw-5e1f";

fn pipeline(status: &serde_json::Value) -> &str {
    status["pipeline"].as_str().unwrap_or_default()
}

/// The stream of `key` on `server` kept its connection since `before` (nginx's client id)
/// and the service reconnected nothing.
fn untouched(service: &Service, server: &RtmpServer, key: &str, before: (u64, u64)) {
    let status = service.status().unwrap();
    assert_eq!(destination(&status, "local")["reconnects"], 0, "{status:#}");
    let (id, _) = server.publisher(key).expect("still publishing");
    assert_eq!(id, before.0, "the same connection (nginx's client id)");
    assert!(!service.output().contains("rebuilding the pipelines"), "{}", service.output());
}

/// A configured box streaming to its own nginx-rtmp as "k".
fn streaming_box() -> (RtmpServer, Service) {
    let server = RtmpServer::start();
    let web = free_port();
    let service = Service::start(&settings_with_password(web, &[("local", &server.url(), "k")], PASSWORD), web);
    assert!(server.wait_publishing("k", WITHIN), "{}", service.output());
    (server, service)
}

#[test]
fn video_and_audio_changes_rebuild_the_pipeline_with_the_new_values() {
    let (server, service) = streaming_box();
    let client = service.log_in(PASSWORD);

    // Video, from the API.
    let reply = client.send("PUT", "/api/settings/video", &json!({"bitrate_kbps": 600}));
    assert_eq!(reply.code, 200, "{}", reply.body);
    let status = service.wait_for("the new video bitrate", WITHIN, |s| pipeline(s).contains(" bitrate=600 "));
    assert!(status["video_kbps"].as_u64().is_some_and(|k| k <= 600), "{status:#}");
    assert!(server.wait_publishing("k", WITHIN), "{}", service.output());

    // Audio, by hand + SIGHUP (the file's [audio] section has no bitrate: added).
    service.edit_by_hand("[audio]\n", "[audio]\nbitrate_kbps = 96\n");
    service.wait_for("the new audio bitrate", WITHIN, |s| pipeline(s).contains("bitrate=96000"));
    assert!(server.wait_publishing("k", WITHIN), "{}", service.output());

    // And each the other way: video by hand, audio from the API.
    service.edit_by_hand("bitrate_kbps = 600", "bitrate_kbps = 500");
    service.wait_for("the hand-set video bitrate", WITHIN, |s| pipeline(s).contains(" bitrate=500 "));
    let reply = client.send("PUT", "/api/settings/audio", &json!({"bitrate_kbps": 128}));
    assert_eq!(reply.code, 200, "{}", reply.body);
    service.wait_for("the audio bitrate from the API", WITHIN, |s| pipeline(s).contains("bitrate=128000"));
    assert!(server.wait_publishing("k", WITHIN), "{}", service.output());
    // Each took effect through a rebuild of the camera side, no restart of the service.
    let output = service.output();
    assert_eq!(output.matches("rebuilding the pipelines").count(), 4, "{output}");
    assert_eq!(output.matches("web: listening").count(), 1, "one start of the service: {output}");
}

#[test]
fn update_settings_take_effect_without_a_restart_and_leave_the_stream_alone() {
    let server = RtmpServer::start();
    let files = HttpServer::start();
    files.put("manifest.json", b"{}");
    files.put("other.json", b"{}");
    let rauc = RaucPeer::start("A");
    let web = free_port();
    let settings = settings_with_password(web, &[("local", &server.url(), "k")], PASSWORD);
    let ca = files.ca_cert();
    let b = UpdateBox::start_with(&rauc, &settings, web, &[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    assert!(server.wait_publishing("k", WITHIN), "{}", b.service.output());
    let before = server.publisher("k").unwrap();
    let client: Client = b.service.log_in(PASSWORD);
    b.service.wait_for("no update source", WITHIN, |s| s["update"]["source"] == "files only");

    // From the API: a manifest source. The running update thread takes it and asks it.
    let url = files.url("files/manifest.json");
    let reply = client.send("PUT", "/api/settings/update", &json!({"source": "manifest", "manifest_url": url}));
    assert_eq!(reply.code, 200, "{}", reply.body);
    b.service.wait_for("the new source shown", WITHIN, |s| s["update"]["source"] == format!("manifest {url}"));
    wait_for_request(&files, "/files/manifest.json", &b.service);

    // By hand + SIGHUP: another manifest.
    b.service.edit_by_hand("files/manifest.json", "files/other.json");
    wait_for_request(&files, "/files/other.json", &b.service);
    untouched(&b.service, &server, "k", before);
}

fn wait_for_request(files: &HttpServer, path: &str, service: &Service) {
    let deadline = std::time::Instant::now() + WITHIN;
    while !files.requests().iter().any(|r| r.starts_with(path)) {
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never asked: {:?}\n{}",
            files.requests(),
            service.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_device_password_set_by_hand_opens_the_pages_after_sighup_and_leaves_the_stream_alone() {
    let (server, service) = streaming_box();
    let web = service.web_port;
    let before = server.publisher("k").unwrap();
    service.log_in(PASSWORD);

    let path = service.data_dir().join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let old_hash = text.lines().find(|l| l.starts_with("password_hash")).expect("a password hash").to_string();
    service.edit_by_hand(&old_hash, &format!("password_hash = \"{}\"", password_hash("a-new-password")));
    let opened = Client::log_in(web, "a-new-password");
    assert!(opened.is_ok(), "the new password is refused: {:?}\n{}", opened.err().map(|r| r.code), service.output());
    assert_eq!(Client::log_in(web, PASSWORD).err().map(|r| r.code), Some(401), "the old one is refused");
    untouched(&service, &server, "k", before);
}

#[test]
fn destinations_added_from_the_api_and_by_hand_stream_and_leave_the_others_alone() {
    let (server, service) = streaming_box();
    let before = server.publisher("k").unwrap();
    let client = service.log_in(PASSWORD);

    let added = client.send("POST", "/api/destinations", &json!({"name": "two", "url": server.url(), "key": "k2"}));
    assert_eq!(added.code, 200, "{}", added.body);
    assert!(server.wait_publishing("k2", WITHIN), "two never published:\n{}", service.output());

    // By hand + SIGHUP: a third, appended to the file the service wrote.
    let path = service.data_dir().join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let last = text.lines().last().unwrap().to_string();
    let third = format!("{last}\n[[destinations]]\nname = \"three\"\nurl = \"{}\"\nkey = \"k3\"", server.url());
    service.edit_by_hand(&last, &third);
    assert!(server.wait_publishing("k3", WITHIN), "three never published:\n{}", service.output());
    untouched(&service, &server, "k", before);
}

#[test]
fn a_device_password_changed_from_the_api_opens_the_pages_and_leaves_the_stream_alone() {
    let (server, service) = streaming_box();
    let before = server.publisher("k").unwrap();
    let client = service.log_in(PASSWORD);
    let changed = client.send("POST", "/api/password", &json!({"current": PASSWORD, "new": "a-new-password"}));
    assert_eq!(changed.code, 200, "{}", changed.body);
    assert_eq!(Client::log_in(service.web_port, PASSWORD).err().map(|r| r.code), Some(401), "the old one is refused");
    service.log_in("a-new-password"); // every session ended with the change: the harness's too
    untouched(&service, &server, "k", before);
}
