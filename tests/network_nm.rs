//! The service's network side against NetworkManager's D-Bus API: the real binary on a
//! private system bus where python-dbusmock plays NetworkManager (tests/peers/nm_mock.py).
//!
//! The radio is the one thing simulated: there is no Wi-Fi hardware on a build machine,
//! so the mock decides which networks are in range, their passwords and DHCP. The QEMU
//! rung runs the same flow against the real NetworkManager on mac80211_hwsim radios.
//! Asserted: what the service sends (settings dicts, options, the order of calls) and what
//! `/api/status` shows.

mod app;
mod peers;

use std::time::Duration;

use app::{Service, free_port, test_settings};
use peers::nm::NmMock;
use serde_json::{Value, json};

/// Settings with the network managed, short timers, and no LED.
fn settings(port: u16, extra: &str) -> String {
    test_settings(port, &[]).replace(
        "manage = false\n",
        &format!(
            "manage = true\nled = \"\"\nsaved_wait_s = 5\nconnect_timeout_s = 10\nretry_saved_every_s = 30\nlost_grace_s = 5\n{extra}"
        ),
    )
}

fn start(nm: &NmMock, extra: &str) -> Service {
    let port = free_port();
    Service::start_with(&settings(port, extra), port, &[("DBUS_SYSTEM_BUS_ADDRESS", nm.bus_address())], None)
}

fn mode(status: &Value) -> &str {
    status["network"]["mode"].as_str().unwrap_or_default()
}

fn methods(nm: &NmMock) -> Vec<String> {
    nm.calls().iter().map(|c| c["method"].as_str().unwrap().to_string()).collect()
}

#[test]
fn no_known_network_scans_first_then_opens_an_open_volatile_access_point() {
    let nm = NmMock::start();
    nm.add_venue("Venue", "venue-password", "wpa2", 70, 2437);
    nm.add_venue("Venue", "venue-password", "wpa2", 40, 5180);
    nm.add_venue("Lab", "lab-password", "wpa3", 55, 5180);
    nm.add_venue("Cafe", "", "open", 30, 2412);
    let service = start(&nm, "");
    let status = service.wait_for("the access point", Duration::from_secs(20), |s| mode(s) == "access-point");
    assert_eq!(status["network"]["ssid"], "Wifi Connect");
    assert_eq!(status["network"]["address"], "10.42.0.1");
    assert_eq!(
        status["network"]["networks"],
        json!([
            {"ssid": "Venue", "signal": 70, "security": "wpa2", "band": "2.4 GHz"},
            {"ssid": "Lab", "signal": 55, "security": "wpa3", "band": "5 GHz"},
            {"ssid": "Cafe", "signal": 30, "security": "open", "band": "2.4 GHz"},
        ])
    );
    assert_eq!(methods(&nm), ["RequestScan", "AddAndActivateConnection2"], "scan before the access point");
    let call = &nm.calls_of("AddAndActivateConnection2")[0];
    assert_eq!(call[1], "/org/freedesktop/NetworkManager/Devices/wlan0");
    assert_eq!(call[2], json!({"persist": "volatile", "bind-activation": "dbus-client"}));
    assert_eq!(
        call[0],
        json!({
            "connection": {"type": "802-11-wireless", "id": "Wifi Connect", "autoconnect": false, "interface-name": "wlan0"},
            "802-11-wireless": {"ssid": "Wifi Connect", "mode": "ap", "band": "bg", "channel": 6},
            "ipv4": {"method": "shared", "address-data": [{"address": "10.42.0.1", "prefix": 24}]},
            "ipv6": {"method": "disabled"},
        }),
        "open: no security section"
    );
}

#[test]
fn an_access_point_passphrase_makes_it_wpa2() {
    let nm = NmMock::start();
    let service = start(&nm, "ap_passphrase = \"box-password\"\nap_channel = 11\n");
    service.wait_for("the access point", Duration::from_secs(20), |s| mode(s) == "access-point");
    let call = &nm.calls_of("AddAndActivateConnection2")[0];
    assert_eq!(
        call[0]["802-11-wireless-security"],
        json!({"key-mgmt": "wpa-psk", "proto": ["rsn"], "pairwise": ["ccmp"], "group": ["ccmp"], "psk": "box-password"})
    );
    assert_eq!(call[0]["802-11-wireless"]["channel"], 11);
    assert!(!service.output().contains("box-password"), "the passphrase never reaches the log");
}

#[test]
fn a_saved_network_in_range_comes_up_without_an_access_point() {
    let nm = NmMock::start();
    nm.add_venue("Venue", "venue-password", "wpa2", 70, 2437);
    nm.add_saved_network("Venue", "venue-password");
    let service = start(&nm, "");
    let status = service.wait_for("online", Duration::from_secs(20), |s| mode(s) == "online");
    assert_eq!(status["network"]["ssid"], "Venue");
    assert_eq!(status["network"]["signal"], 70);
    assert_eq!(status["network"]["address"], "192.168.77.50");
    std::thread::sleep(Duration::from_secs(6));
    assert!(methods(&nm).is_empty(), "NetworkManager brought it up by itself: {:?}", nm.calls());
}

#[test]
fn a_saved_network_that_is_gone_gets_saved_wait_then_the_access_point() {
    let nm = NmMock::start();
    nm.add_saved_network("Venue", "venue-password");
    let service = start(&nm, "");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(mode(&service.status().unwrap()), "starting");
    assert!(methods(&nm).is_empty());
    service.wait_for("the access point", Duration::from_secs(15), |s| mode(s) == "access-point");
    assert_eq!(methods(&nm), ["RequestScan", "AddAndActivateConnection2"]);
}

#[test]
fn online_lost_goes_back_to_the_access_point_and_retries_the_saved_network() {
    let nm = NmMock::start();
    nm.add_venue("Venue", "venue-password", "wpa2", 70, 2437);
    nm.add_saved_network("Venue", "venue-password");
    let service = start(&nm, "");
    service.wait_for("online", Duration::from_secs(20), |s| mode(s) == "online");
    nm.set_venue("Venue", "present", false);
    service.wait_for("the access point after lost_grace", Duration::from_secs(15), |s| mode(s) == "access-point");
    nm.set_venue("Venue", "present", true);
    // The radio serves the access point, so NetworkManager cannot find the venue by itself:
    // the retry (every 30 s, no phone on the access point) closes it and tries saved networks.
    service.wait_for("online again", Duration::from_secs(45), |s| mode(s) == "online");
    let calls = methods(&nm);
    let tail: Vec<&str> = calls.iter().rev().take(2).rev().map(String::as_str).collect();
    assert_eq!(tail, ["DeactivateConnection", "ActivateConnection"], "{calls:?}");
    assert_eq!(nm.calls_of("ActivateConnection")[0][0], "/", "NetworkManager picks the saved profile");
}

#[test]
fn without_network_manager_the_network_is_unmanaged_and_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bus = format!("unix:path={}", dir.path().join("no-bus").display());
    let service = Service::start_with(&settings(port, ""), port, &[("DBUS_SYSTEM_BUS_ADDRESS", &bus)], None);
    let status = service.wait_for("the status page", Duration::from_secs(10), |s| s["network"].is_object());
    assert_eq!(mode(&status), "unmanaged");
    std::thread::sleep(Duration::from_secs(1));
    let output = service.output();
    assert_eq!(output.matches("the network stays unmanaged").count(), 1, "{output}");
}
