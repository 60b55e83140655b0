//! The live preview against the real binary streaming to a real nginx-rtmp: the picture
//! is a small JPEG that follows the moving test pattern, and polling it does not touch
//! the stream.

mod app;
mod peers;

use std::time::{Duration, Instant};

use app::{Client, Service, destination, free_port, settings_with_password};
use peers::{RtmpServer, ffprobe_stream};

const LIVE_WITHIN: Duration = Duration::from_secs(20);
const PREVIEW: &str = "/api/preview.jpg";
const PASSWORD: &str = "preview-password-1";

/// The service on `settings` (the device password set), and a client logged in to it.
fn logged_in(settings: &str, web: u16) -> (Service, Client) {
    let service = Service::start(settings, web);
    let client = service.log_in(PASSWORD);
    (service, client)
}

/// Width and height from a JPEG's start-of-frame segment (baseline or progressive).
fn jpeg_size(jpeg: &[u8]) -> Option<(u16, u16)> {
    let mut at = 2;
    while at + 9 < jpeg.len() {
        if jpeg[at] != 0xff {
            return None;
        }
        let marker = jpeg[at + 1];
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if matches!(marker, 0xc0..=0xc2) {
            let height = u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]);
            let width = u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]);
            return Some((width, height));
        }
        at += 2 + length;
    }
    None
}

/// One preview picture, checked to be a whole 320×180 JPEG served as one.
fn picture(client: &Client) -> Vec<u8> {
    let reply = client.get(PREVIEW);
    assert_eq!(reply.code, 200, "{}\n{}", reply.head, reply.body);
    assert_eq!(reply.header("Content-Type"), Some("image/jpeg"), "{}", reply.head);
    assert_eq!(reply.header("Cache-Control"), Some("no-store"), "{}", reply.head);
    let body = reply.bytes;
    assert!(body.starts_with(&[0xff, 0xd8, 0xff]) && body.ends_with(&[0xff, 0xd9]), "not a whole JPEG");
    assert!(body.len() > 2000, "{} bytes: too small for a picture of colour bars", body.len());
    assert_eq!(jpeg_size(&body), Some((320, 180)), "scaled down to 320 wide, 16:9 kept");
    body
}

#[test]
fn the_preview_is_a_small_jpeg_that_follows_the_picture_and_the_stream_never_notices() {
    let server = RtmpServer::start();
    let web = free_port();
    let (service, client) = logged_in(&settings_with_password(web, &[("local", &server.url(), "pv")], PASSWORD), web);
    service.wait_for("live", LIVE_WITHIN, |s| destination(s, "local")["state"] == "live");

    // Nobody looked yet: the branch is closed, and the first request wakes it.
    let asked = Instant::now();
    let first = picture(&client);
    assert!(asked.elapsed() < Duration::from_millis(2500), "woken within {:?}", asked.elapsed());
    std::thread::sleep(Duration::from_millis(1200));
    let second = picture(&client);
    assert_ne!(first, second, "the moving test pattern gives another picture a second later");

    // Five viewers polling once a second while ffprobe reads the stream from nginx.
    let stop = Instant::now() + Duration::from_secs(12);
    let viewers: Vec<_> = (0..5)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || {
                let mut served = 0;
                while Instant::now() < stop {
                    picture(&client);
                    served += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
                served
            })
        })
        .collect();
    let bytes_before = server.bytes_in("pv").unwrap();
    let report = ffprobe_stream(&format!("{}/pv", server.url()), 6);
    let served: u32 = viewers.into_iter().map(|v| v.join().unwrap()).sum();
    assert!(served >= 40, "{served} pictures served to 5 viewers in 12 s");
    assert!((report.fps - 30.0).abs() < 0.5, "{report:?}");
    assert!(report.video_packets >= 170, "{} frames in 6 s of stream (30 fps): frames dropped", report.video_packets);
    assert!(server.bytes_in("pv").unwrap() > bytes_before + 300_000, "the stream kept flowing");
    let status = service.status().unwrap();
    assert_eq!(destination(&status, "local")["state"], "live", "{status:#}");
    assert_eq!(destination(&status, "local")["reconnects"], 0, "{status:#}");
    assert!(status["pipeline"].as_str().unwrap().contains("tee name=raw"), "{status:#}");
}

#[test]
fn without_a_stream_or_switched_off_there_is_no_picture_and_the_reason_is_given() {
    let reason = |client: &Client| {
        let reply = client.get(PREVIEW);
        assert_eq!(reply.code, 503, "{}", reply.head);
        assert_eq!(reply.header("Content-Type"), Some("application/json"), "{}", reply.head);
        reply.json()["errors"][0]["reason"].as_str().unwrap().to_string()
    };

    let web = free_port();
    let (idle, client) = logged_in(&settings_with_password(web, &[], PASSWORD), web);
    assert!(reason(&client).contains("nothing is being streamed"));
    drop(idle);

    let server = RtmpServer::start();
    let web = free_port();
    let settings = settings_with_password(web, &[("local", &server.url(), "off")], PASSWORD)
        .replace("[web]\n", "[web]\npreview = false\n");
    assert!(settings.contains("preview = false"), "{settings}");
    let (off, client) = logged_in(&settings, web);
    let status = off.wait_for("live", LIVE_WITHIN, |s| destination(s, "local")["state"] == "live");
    assert!(reason(&client).contains("switched off"));
    assert!(!status["pipeline"].as_str().unwrap().contains("tee name=raw"), "no branch at all: {status:#}");
}
