//! The service's pages in a real phone browser: headless Chromium at an iPhone's viewport,
//! driven over WebDriver, against the real service and a real nginx-rtmp. Screenshots of
//! every step are in `target/artifacts/portal/`.

mod app;
mod peers;

use std::time::Duration;

use app::{Service, destination, free_port, test_settings};
use peers::RtmpServer;
use peers::webdriver::Phone;

const KEY: &str = "browser-secret-key";

#[test]
fn a_phone_reads_the_status_with_javascript_on_and_off() {
    let server = RtmpServer::start();
    let web_port = free_port();
    let service = Service::start(&test_settings(web_port, &[("nginx", &server.url(), KEY)]), web_port);
    service.wait_for("live", Duration::from_secs(30), |s| destination(s, "nginx")["state"] == "live");
    for (javascript, prefix) in [(true, "status-js"), (false, "status-nojs")] {
        let mut phone = Phone::start(javascript, prefix);
        phone.open(&format!("http://127.0.0.1:{web_port}/api/status"));
        let screen = phone.execute("return screen.width", serde_json::json!([]));
        assert_eq!(screen, peers::webdriver::PHONE_WIDTH, "the phone's screen");
        let text = phone.text();
        assert!(text.contains("\"live\""), "the phone sees the destination live:\n{text}");
        assert!(!phone.source().contains(KEY), "the stream key reached the phone");
        phone.screenshot("status");
    }
}
