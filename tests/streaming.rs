//! The service against real peers on loopback: nginx-rtmp, a TLS proxy with a test CA,
//! ffprobe reading back what arrived.

mod app;
mod peers;

use std::time::Duration;

use app::{Service, destination, free_port, test_settings};
use peers::{RtmpServer, TlsProxy, command_trusting_ca, ffprobe_stream};

const LIVE_WITHIN: Duration = Duration::from_secs(20);

fn live(name: &'static str) -> impl Fn(&serde_json::Value) -> bool {
    move |s| destination(s, name)["state"] == "live"
}

#[test]
fn test_pattern_and_tone_arrive_as_h264_and_aac_with_keyframes_every_two_seconds() {
    let server = RtmpServer::start();
    let web = free_port();
    let service = Service::start(&test_settings(web, &[("local", &server.url(), "k1")]), web);
    assert!(server.wait_publishing("k1", LIVE_WITHIN), "not published:\n{}", service.output());
    let report = ffprobe_stream(&format!("{}/k1", server.url()), 7);
    assert_eq!(report.video_codec, "h264", "{report:?}");
    assert_eq!((report.width, report.height), (640, 360), "{report:?}");
    assert!((report.fps - 30.0).abs() < 0.5, "{report:?}");
    assert_eq!(report.audio_codec.as_deref(), Some("aac"), "{report:?}");
    assert_eq!(report.audio_profile.as_deref(), Some("LC"), "{report:?}");
    let gop = report.keyframe_interval().expect("at least two keyframes");
    assert!((1.8..=2.2).contains(&gop), "keyframe every {gop} s: {report:?}");
    let status = service.wait_for("live status", LIVE_WITHIN, live("local"));
    assert_eq!(status["state"], "streaming");
    assert!(destination(&status, "local")["bytes_sent"].as_u64().unwrap() > 0);
}

#[test]
fn without_a_microphone_there_is_still_an_audio_track() {
    let server = RtmpServer::start();
    let web = free_port();
    let settings = test_settings(web, &[("local", &server.url(), "quiet")])
        .replace("source = \"test\"\n[web]", "source = \"none\"\n[web]");
    assert!(settings.contains("source = \"none\""), "{settings}");
    let service = Service::start(&settings, web);
    assert!(server.wait_publishing("quiet", LIVE_WITHIN), "{}", service.output());
    let report = ffprobe_stream(&format!("{}/quiet", server.url()), 3);
    assert_eq!(report.audio_codec.as_deref(), Some("aac"), "{report:?}");
}

#[test]
fn two_destinations_stream_at_once_and_one_failing_leaves_the_other_flowing() {
    let a = RtmpServer::start();
    let mut b = RtmpServer::start();
    let web = free_port();
    let service = Service::start(&test_settings(web, &[("a", &a.url(), "ka"), ("b", &b.url(), "kb")]), web);
    service.wait_for("both live", LIVE_WITHIN, |s| {
        destination(s, "a")["state"] == "live" && destination(s, "b")["state"] == "live"
    });
    assert!(a.wait_publishing("ka", LIVE_WITHIN) && b.wait_publishing("kb", LIVE_WITHIN));

    b.stop();
    let status = service.wait_for("b to notice", LIVE_WITHIN, |s| destination(s, "b")["state"] != "live");
    assert!(destination(&status, "b")["last_error"].is_string(), "{status:#}");
    let before = a.bytes_in("ka").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let status = service.status().unwrap();
    let after = a.bytes_in("ka").unwrap();
    assert!(after > before + 100_000, "a kept flowing: {before} -> {after}");
    assert_eq!(destination(&status, "a")["state"], "live", "{status:#}");
    assert_eq!(destination(&status, "a")["reconnects"], 0, "{status:#}");
    assert!(destination(&status, "b")["reconnects"].as_u64().unwrap() >= 1, "{status:#}");
    assert_eq!(status["state"], "streaming");
}

#[test]
fn rtmps_through_a_tls_proxy_with_a_trusted_test_ca() {
    let server = RtmpServer::start();
    let proxy = TlsProxy::start(server.port);
    let web = free_port();
    let settings = test_settings(web, &[("tls", &proxy.url(), "secure")]);
    let service = Service::start_with(&settings, web, &[], Some(command_trusting_ca(proxy.ca_cert())));
    assert!(server.wait_publishing("secure", LIVE_WITHIN), "not published over TLS:\n{}", service.output());
    service.wait_for("live", LIVE_WITHIN, live("tls"));
}

#[test]
fn rtmps_to_an_untrusted_certificate_is_refused_and_explained() {
    const KEY: &str = "untrusted-key-5678";
    let server = RtmpServer::start();
    let proxy = TlsProxy::start(server.port);
    let web = free_port();
    let service = Service::start(&test_settings(web, &[("tls", &proxy.url(), KEY)]), web);
    let status = service.wait_for("a TLS error", LIVE_WITHIN, |s| destination(s, "tls")["last_error"].is_string());
    let error = destination(&status, "tls")["last_error"].as_str().unwrap().to_lowercase();
    // glib-networking says "Failed to connect: Unacceptable TLS certificate".
    assert!(error.contains("tls") && error.contains("certificate"), "the certificate is named: {status:#}");
    assert!(!error.contains(KEY) && !service.output().contains(KEY), "{status:#}\n{}", service.output());
    assert!(!server.wait_publishing(KEY, Duration::from_secs(2)));
    assert_ne!(destination(&status, "tls")["state"], "live");
}

#[test]
fn a_restarted_server_gets_the_stream_back_by_itself() {
    let mut server = RtmpServer::start();
    let web = free_port();
    let service = Service::start(&test_settings(web, &[("local", &server.url(), "again")]), web);
    assert!(server.wait_publishing("again", LIVE_WITHIN), "{}", service.output());
    server.stop();
    service.wait_for("the loss to be seen", LIVE_WITHIN, |s| destination(s, "local")["state"] != "live");
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    assert!(server.wait_publishing("again", LIVE_WITHIN), "not republished:\n{}", service.output());
    let status = service.wait_for("live again", LIVE_WITHIN, live("local"));
    assert!(destination(&status, "local")["reconnects"].as_u64().unwrap() >= 1, "{status:#}");
}

#[test]
fn an_unreachable_host_is_retried_with_a_clear_error_and_does_not_hold_up_others() {
    let server = RtmpServer::start();
    let closed = format!("rtmp://127.0.0.1:{}/live", free_port());
    let web = free_port();
    let settings = test_settings(
        web,
        &[
            ("good", &server.url(), "g"),
            ("refused", &closed, "r"),
            ("nxdomain", "rtmp://no-such-host.invalid/live", "n"),
        ],
    );
    let service = Service::start(&settings, web);
    let status = service.wait_for("errors on both bad destinations", LIVE_WITHIN, |s| {
        destination(s, "good")["state"] == "live"
            && destination(s, "refused")["reconnects"].as_u64() >= Some(2)
            && destination(s, "nxdomain")["last_error"].is_string()
    });
    let refused = destination(&status, "refused");
    assert!(refused["last_error"].as_str().unwrap().to_lowercase().contains("refused"), "{status:#}");
    assert!(matches!(refused["state"].as_str(), Some("backoff" | "connecting")), "{status:#}");
    assert_eq!(destination(&status, "good")["reconnects"], 0, "{status:#}");
    let nxdomain = destination(&status, "nxdomain")["last_error"].as_str().unwrap();
    assert!(nxdomain.contains("no-such-host.invalid"), "the error names the host: {nxdomain}");
}

#[test]
fn the_stream_key_never_appears_in_anything_printed_or_served() {
    const KEY: &str = "very-secret-key-4242";
    let mut server = RtmpServer::start();
    let web = free_port();
    let settings = test_settings(web, &[("a", &server.url(), KEY), ("b", "rtmp://no-such-host.invalid/live", KEY)]);
    let service = Service::start(&settings, web);
    assert!(server.wait_publishing(KEY, LIVE_WITHIN), "{}", service.output());
    // Provoke errors too: they quote locations.
    server.stop();
    service.wait_for("the loss", LIVE_WITHIN, |s| destination(s, "a")["last_error"].is_string());
    server.restart();
    service.wait_for("live again", LIVE_WITHIN, live("a"));
    let served = service.status_text().unwrap();
    let not_found = app::http_get(web, &format!("/{KEY}")).unwrap_or_default();
    let data = service.data_dir();
    let probe = app::run_cli(&["probe", "--config", app::DEFAULTS, "--data-dir", data.to_str().unwrap()], &[]);
    let check = app::run_cli(&["check-config", data.join("config.toml").to_str().unwrap()], &[]);
    let everything = [service.output(), served, not_found, app::text(&probe), app::text(&check)];
    for (i, text) in everything.iter().enumerate() {
        assert!(!text.is_empty(), "capture {i} is empty");
        assert!(!text.contains(KEY), "the key leaked in capture {i}:\n{text}");
    }
    assert!(everything[0].contains("/live/****"), "masked form is shown instead");
}

#[test]
fn a_network_black_hole_is_seen_as_a_stall_and_the_stream_comes_back_after_it() {
    let server = RtmpServer::start();
    let web = free_port();
    let service = Service::start(&test_settings(web, &[("local", &server.url(), "through-the-hole")]), web);
    service.wait_for("live", LIVE_WITHIN, live("local"));
    let hole = peers::BlackHole::open(server.port);
    let status = service.wait_for("the stall", Duration::from_secs(15), |s| destination(s, "local")["state"] != "live");
    let error = destination(&status, "local")["last_error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("acknowledged nothing"), "a stall, not an error: {status:#}");
    std::thread::sleep(Duration::from_secs(5));
    drop(hole);
    // nginx forgets the vanished publisher after drop_idle_publisher (3 s); then the
    // service's next attempt publishes again.
    let status = service.wait_for("live again", Duration::from_secs(40), live("local"));
    assert!(destination(&status, "local")["reconnects"].as_u64().unwrap() >= 1, "{status:#}");
    assert!(server.wait_publishing("through-the-hole", LIVE_WITHIN));
}

#[test]
fn destinations_added_disabled_or_removed_on_reload_leave_the_others_connected() {
    let server = RtmpServer::start();
    let url = server.url();
    let web = free_port();
    let service = Service::start(&test_settings(web, &[("a", &url, "ka"), ("b", &url, "kb")]), web);
    service.wait_for("both live", LIVE_WITHIN, |s| {
        destination(s, "a")["state"] == "live" && destination(s, "b")["state"] == "live"
    });
    assert!(server.wait_publishing("ka", LIVE_WITHIN) && server.wait_publishing("kb", LIVE_WITHIN));
    let (id, connected) = server.publisher("ka").expect("a's connection on nginx's stat page");
    let since = std::time::Instant::now();
    let user_file = service.data_dir().join("config.toml");

    // The user's file: b disabled, c added; then SIGHUP.
    let settings = test_settings(web, &[("a", &url, "ka"), ("b", &url, "kb"), ("c", &url, "kc")])
        .replace("key = \"kb\"\n", "key = \"kb\"\nenabled = false\n");
    assert!(settings.contains("enabled = false"), "{settings}");
    std::fs::write(&user_file, settings).unwrap();
    service.reload();
    let status = service.wait_for("c live and b disabled", LIVE_WITHIN, |s| {
        destination(s, "c")["state"] == "live" && destination(s, "b")["state"] == "disabled"
    });
    assert!(server.wait_not_publishing("kb", LIVE_WITHIN), "b still publishes");
    assert!(server.wait_publishing("kc", LIVE_WITHIN));
    assert_eq!(status["pipeline"].as_str().unwrap().matches("rtmp2sink").count(), 2, "{status:#}");

    // And c removed again.
    std::fs::write(&user_file, test_settings(web, &[("a", &url, "ka")])).unwrap();
    service.reload();
    service.wait_for("c gone", LIVE_WITHIN, |s| s["destinations"].as_array().is_some_and(|d| d.len() == 1));
    assert!(server.wait_not_publishing("kc", LIVE_WITHIN), "c still publishes");

    let status = service.status().unwrap();
    assert_eq!(destination(&status, "a")["state"], "live", "{status:#}");
    assert_eq!(destination(&status, "a")["reconnects"], 0, "{status:#}");
    let (id_after, connected_after) = server.publisher("ka").expect("a still publishes");
    assert_eq!(id_after, id, "a kept its connection (nginx's client id)");
    let elapsed = since.elapsed().as_millis() as u64;
    assert!(
        connected_after >= connected + elapsed - 500,
        "connected {connected} ms, then {connected_after} ms after {elapsed} ms"
    );
    let output = service.output();
    assert!(output.contains("the camera side is unchanged"), "{output}");
    assert!(!output.contains("rebuilding the pipelines"), "{output}");
}
