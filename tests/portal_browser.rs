//! The captive portal end to end in a real phone browser: headless Chromium at an iPhone's
//! viewport, driven over WebDriver, against the real service, a real nginx-rtmp and
//! NetworkManager's D-Bus API on a private bus (python-dbusmock, tests/peers/nm_mock.py).
//!
//! The radio is the one thing simulated: there is no Wi-Fi hardware on a build machine, so
//! the mock decides which networks are in range and which password each takes (the QEMU
//! rung runs the same flow on the kernel's mac80211_hwsim radios). Screenshots of every
//! step are in `target/artifacts/portal/`.

mod app;
mod peers;

use std::time::Duration;

use app::{Service, free_port, test_settings};
use peers::nm::NmMock;
use peers::webdriver::{PHONE_WIDTH, Phone};
use peers::{RtmpServer, command_without_dns};
use serde_json::{Value, json};

const WRONG_WIFI_PASSWORD: &str = "wrong-pass-5e1f";
const WIFI_PASSWORD: &str = "right-pass-7c2d";
const YOUTUBE_KEY: &str = "yt-key-0a9b-3c4d";
const NGINX_KEY: &str = "nginx-key-8f7e";
const DEVICE_PASSWORD: &str = "device-pw-6d5c";
const SECRETS: [&str; 5] = [WRONG_WIFI_PASSWORD, WIFI_PASSWORD, YOUTUBE_KEY, NGINX_KEY, DEVICE_PASSWORD];

fn mode(status: &Value) -> &str {
    status["network"]["mode"].as_str().unwrap_or_default()
}

/// The Wi-Fi password in the last client connection the service asked NetworkManager for.
fn last_psk_sent(nm: &NmMock) -> Value {
    let calls = nm.calls_of("AddAndActivateConnection2");
    let client = calls.iter().rfind(|c| c[0]["802-11-wireless"]["mode"] != "ap").expect("a client connection");
    client[0]["802-11-wireless-security"]["psk"].clone()
}

fn first_destination_live(status: &Value) -> bool {
    status["destinations"][0]["state"] == "live"
}

/// What a phone needs: the page laid out for its width (no sideways scrolling), and
/// fields of at least 16 px, below which iOS zooms into the page on every tap.
fn assert_fits_the_phone(phone: &Phone) {
    let layout = phone.execute(
        "return { width: window.innerWidth, scroll: document.documentElement.scrollWidth,
                  small: [...document.querySelectorAll('input:not([type=radio]), select, button')]
                      .filter(e => parseFloat(getComputedStyle(e).fontSize) < 16).map(e => e.id || e.name) }",
        json!([]),
    );
    assert_eq!(layout["width"], PHONE_WIDTH, "the page sets its viewport to the phone's width");
    assert!(layout["scroll"].as_u64() <= Some(u64::from(PHONE_WIDTH)), "the page scrolls sideways: {layout}");
    assert_eq!(layout["small"], json!([]), "fields under 16 px (iOS zooms in on them)");
}

/// Chooses the option whose label starts with `label` the way a keyboard does (type-ahead).
fn choose(phone: &Phone, select: &str, label: &str, value: &str) {
    let select = phone.find(select);
    select.type_text(label);
    assert_eq!(select.value(), value, "{label:?} chosen");
}

fn fill(phone: &Phone, field: &str, text: &str) {
    let input = phone.find(&format!("#{field}"));
    input.clear();
    input.type_text(text);
}

fn submit_and_see_connecting(phone: &Phone, ssid: &str) {
    phone.find("button.go").tap();
    phone.wait_until("the Connecting page", Duration::from_secs(10), |p| {
        p.text().contains(&format!("Connecting to “{ssid}”"))
    });
}

/// Typed secrets never come back: not in a page, the service's output or its status.
fn assert_no_secret_in(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret:?} appears in {what}:\n{text}");
    }
}

#[test]
fn a_phone_sets_up_the_box_a_wrong_password_first_then_it_streams() {
    let server = RtmpServer::start();
    let nm = NmMock::start();
    nm.add_venue("Makerspace", WIFI_PASSWORD, "wpa2", 80, 2437);
    nm.add_venue("Makerspace 5G", "five-gig-pass-1", "wpa2", 70, 5180);
    nm.add_venue("Lab", "lab-wpa3-pass-2", "wpa3", 60, 2462);
    nm.add_venue("Cafe", "", "open", 45, 2412);
    let port = free_port();
    let settings = test_settings(port, &[])
        .replace("manage = false\n", "manage = true\nled = \"\"\nsaved_wait_s = 5\nconnect_timeout_s = 15\n");
    let dns = tempfile::tempdir().unwrap();
    let service = Service::start_with(
        &settings,
        port,
        &[("DBUS_SYSTEM_BUS_ADDRESS", nm.bus_address())],
        Some(command_without_dns(dns.path())),
    );
    service.wait_for("the access point", Duration::from_secs(30), |s| mode(s) == "access-point");
    let portal = format!("http://127.0.0.1:{port}/");
    let mut pages = Vec::new();

    let mut phone = Phone::start(true, "js");
    phone.open(&portal);
    assert_fits_the_phone(&phone);
    let listed: Vec<String> = phone.find_all(".nets li").iter().map(|li| li.text()).collect();
    let names: Vec<&str> = listed.iter().map(|t| t.lines().next().unwrap_or_default()).collect();
    assert_eq!(names, ["Makerspace", "Makerspace 5G", "Lab", "Cafe"], "strongest first:\n{listed:#?}");
    for (line, shows) in [(0, "WPA2 · 2.4 GHz"), (1, "5 GHz"), (2, "WPA3"), (3, "open")] {
        assert!(listed[line].contains(shows), "{:?} shows {shows:?}", listed[line]);
    }
    let loaded = phone.execute("return performance.getEntriesByType('resource').map(e => e.name)", json!([]));
    assert!(
        loaded.as_array().unwrap().iter().all(|url| url.as_str().unwrap().starts_with(&portal)),
        "the page loads only from the box: {loaded}"
    );
    phone.screenshot("networks");

    // Round 1: Makerspace with a wrong password, streaming to YouTube.
    phone.find(".nets label:has(input[value='Makerspace'])").tap();
    assert!(phone.find("input[name=ssid][value='Makerspace']").is_selected());
    fill(&phone, "wifi_password", WRONG_WIFI_PASSWORD);
    let show = phone.find("button[data-for=wifi_password]");
    show.tap();
    assert_eq!(phone.find("#wifi_password").property("type"), "text", "Show reveals the password");
    show.tap();
    assert_eq!(phone.find("#wifi_password").property("type"), "password", "Hide hides it again");
    choose(&phone, "#preset", "YouTube (RTMP)", "youtube");
    fill(&phone, "key", YOUTUBE_KEY);
    fill(&phone, "device_password", DEVICE_PASSWORD);
    fill(&phone, "device_password_confirm", DEVICE_PASSWORD);
    phone.screenshot("filled-wrong-password");
    submit_and_see_connecting(&phone, "Makerspace");
    pages.push(phone.source());
    phone.screenshot("connecting");

    // The device password is saved before the box leaves for the network: the status needs it now.
    service.log_in(DEVICE_PASSWORD);
    let status = service.wait_for("the wrong password's sentence", Duration::from_secs(40), |s| {
        mode(s) == "access-point" && s["network"]["last_failure"].is_string()
    });
    let sentence = status["network"]["last_failure"].as_str().unwrap().to_string();
    assert!(sentence.starts_with("The password for “Makerspace” was not accepted."), "{sentence}");
    assert_eq!(last_psk_sent(&nm), WRONG_WIFI_PASSWORD, "what the phone typed reached NetworkManager");
    let saved = std::fs::read_to_string(service.data_dir().join("config.toml")).unwrap();
    assert!(saved.contains("url = \"rtmp://a.rtmp.youtube.com/live2\""), "YouTube's ingest URL is saved:\n{saved}");
    assert!(saved.contains("$argon2id$"), "the device password is saved as its hash:\n{saved}");
    assert!(!saved.contains(DEVICE_PASSWORD) && !saved.contains(WRONG_WIFI_PASSWORD), "{saved}");

    // The phone rejoins "Wifi Connect": the page says why, the form is still filled in.
    phone.open(&portal);
    assert!(phone.find(".failure").text().contains(&sentence), "the sentence is at the top");
    assert!(phone.find("input[name=ssid][value='Makerspace']").is_selected(), "Makerspace still chosen");
    assert_eq!(phone.find("#preset").value(), "youtube", "YouTube still chosen");
    for secret in ["wifi_password", "key", "device_password", "device_password_confirm", "current_password"] {
        assert_eq!(phone.find(&format!("#{secret}")).value(), "", "{secret} is never filled in again");
    }
    assert!(phone.text().contains("A key is saved"), "the saved key is mentioned, not shown");
    let text = phone.text();
    assert!(text.contains("Device password (the one you chose for this box)"), "{text}");
    assert!(!text.contains("set up already") && !text.contains("Current device password"), "{text}");
    assert_fits_the_phone(&phone);
    pages.push(phone.source());
    phone.screenshot("wrong-password-sentence");

    // Round 2: the right password, streaming to the local nginx-rtmp ("Another server").
    fill(&phone, "wifi_password", WIFI_PASSWORD);
    choose(&phone, "#preset", "Another server", "custom");
    fill(&phone, "url", &server.url());
    fill(&phone, "key", NGINX_KEY);
    fill(&phone, "current_password", DEVICE_PASSWORD);
    phone.screenshot("filled-right-password");
    submit_and_see_connecting(&phone, "Makerspace");
    pages.push(phone.source());
    phone.screenshot("connecting-again");

    let status = service
        .wait_for("online and live", Duration::from_secs(60), |s| mode(s) == "online" && first_destination_live(s));
    assert_eq!(status["network"]["ssid"], "Makerspace");
    assert_eq!(status["network"]["last_failure"], Value::Null);
    assert_eq!(last_psk_sent(&nm), WIFI_PASSWORD);
    assert!(server.wait_publishing(NGINX_KEY, Duration::from_secs(10)), "the stream reaches nginx-rtmp");
    phone.open(&portal);
    pages.push(phone.source());
    phone.screenshot("online");

    for (i, page) in pages.iter().enumerate() {
        assert_no_secret_in(&format!("page {i}"), page);
    }
    assert_no_secret_in("the service's output", &service.output());
    assert_no_secret_in("/api/status", &service.status_text().unwrap());
}

/// The demo's case: the network is managed elsewhere (`manage = false`): the portal asks
/// for no Wi-Fi and still sets the box up, with JavaScript off.
#[test]
fn without_javascript_the_form_still_submits_and_the_box_streams() {
    let server = RtmpServer::start();
    let port = free_port();
    let service = Service::start(&test_settings(port, &[]), port);
    let portal = format!("http://127.0.0.1:{port}/");
    service.wait_for("the status", Duration::from_secs(10), |s| mode(s) == "unmanaged");

    let mut phone = Phone::start(false, "nojs");
    phone.open(&portal);
    assert_eq!(phone.find("button[data-for=key]").property("hidden"), true, "no Show without JS");
    assert!(phone.text().contains("The network is managed elsewhere"));
    assert!(phone.find_all("input[name=ssid], #hidden_ssid, #wifi_password").is_empty(), "no Wi-Fi fields");
    phone.screenshot("unmanaged");

    phone.find("button.go").tap();
    phone.wait_until("the form's errors", Duration::from_secs(10), |p| !p.find_all(".err").is_empty());
    let errors: Vec<String> = phone.find_all(".err").iter().map(|e| e.text()).collect();
    assert!(errors.iter().any(|e| e.starts_with("paste the stream key")), "{errors:?}");
    assert!(errors.iter().any(|e| e.starts_with("choose a device password")), "{errors:?}");
    assert_fits_the_phone(&phone);
    phone.screenshot("errors");

    choose(&phone, "#preset", "Another server", "custom");
    fill(&phone, "url", &server.url());
    fill(&phone, "key", NGINX_KEY);
    fill(&phone, "device_password", DEVICE_PASSWORD);
    fill(&phone, "device_password_confirm", DEVICE_PASSWORD);
    phone.screenshot("filled");
    phone.find("button.go").tap();
    phone.wait_until("the Saved page", Duration::from_secs(10), |p| p.text().contains("The settings are saved"));
    let saved = phone.source();
    phone.screenshot("saved");

    assert!(server.wait_publishing(NGINX_KEY, Duration::from_secs(30)), "the stream reaches nginx-rtmp");
    service.wait_for("live", Duration::from_secs(10), first_destination_live);
    assert_no_secret_in("the Saved page", &saved);
    assert_no_secret_in("the service's output", &service.output());
    assert_no_secret_in("/api/status", &service.status_text().unwrap());
}
