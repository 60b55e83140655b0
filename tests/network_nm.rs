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

use app::{Client, Reply, Service, free_port, http_get, http_post_form, test_settings};
use peers::RtmpServer;
use peers::nm::NmMock;
use serde_json::{Value, json};

/// Settings with the network managed, short timers, and no LED.
fn settings(port: u16, extra: &str) -> String {
    settings_streaming_to(port, &[], extra)
}

fn settings_streaming_to(port: u16, destinations: &[(&str, &str, &str)], extra: &str) -> String {
    test_settings(port, destinations).replace(
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
    // nginx-rtmp on loopback stands for the venue's uplink: the mock's "online" is what
    // decides whether the service streams.
    let server = RtmpServer::start();
    let port = free_port();
    let settings = settings_streaming_to(port, &[("local", &server.url(), "held-key")], "");
    let service = Service::start_with(&settings, port, &[("DBUS_SYSTEM_BUS_ADDRESS", nm.bus_address())], None);
    service.wait_for("online", Duration::from_secs(20), |s| mode(s) == "online");
    assert!(server.wait_publishing("held-key", Duration::from_secs(20)), "online: it streams");
    nm.set_venue("Venue", "present", false);
    service.wait_for("the access point after lost_grace", Duration::from_secs(15), |s| mode(s) == "access-point");
    // Serving "Wifi Connect", it has no network to stream on: the pipelines wait (and leave
    // the CPU to the portal) instead of failing and backing off.
    assert!(server.wait_not_publishing("held-key", Duration::from_secs(10)), "on the access point: no stream");
    let held = service.status().unwrap();
    assert!(held["summary"].as_str().unwrap().starts_with("waiting for a network (access-point)"), "{held}");
    nm.set_venue("Venue", "present", true);
    // The radio serves the access point, so NetworkManager cannot find the venue by itself:
    // the retry (every 30 s, no phone on the access point) closes it and tries saved networks.
    service.wait_for("online again", Duration::from_secs(45), |s| mode(s) == "online");
    assert!(server.wait_publishing("held-key", Duration::from_secs(20)), "online again: it streams again");
    let calls = methods(&nm);
    let tail: Vec<&str> = calls.iter().rev().take(2).rev().map(String::as_str).collect();
    assert_eq!(tail, ["DeactivateConnection", "ActivateConnection"], "{calls:?}");
    let activated = &nm.calls_of("ActivateConnection")[0][0];
    assert!(
        activated.as_str().is_some_and(|p| p.starts_with("/org/freedesktop/NetworkManager/Settings/")),
        "the saved profile by name, not NetworkManager's pick: {activated}"
    );
}

const DEVICE_PASSWORD: &str = "device-pw-91c0";

/// The portal's form for `ssid` (or a hidden one), with a stream destination; `retry`
/// adds the device password set by the first submit.
fn form<'a>(ssid: &'a str, hidden: bool, password: &'a str, retry: bool) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        (if hidden { "hidden_ssid" } else { "ssid" }, ssid),
        ("wifi_password", password),
        ("preset", "custom"),
        ("url", "rtmp://127.0.0.1:9/live"),
        ("key", "key-4b8e-2d61"),
        ("device_password", DEVICE_PASSWORD),
        ("device_password_confirm", DEVICE_PASSWORD),
    ];
    if retry {
        pairs.push(("current_password", DEVICE_PASSWORD));
    }
    pairs
}

/// A service on its access point, with `Venue` (WPA2, `venue-password`) in range.
fn on_the_access_point(nm: &NmMock) -> Service {
    nm.add_venue("Venue", "venue-password", "wpa2", 70, 2437);
    let service = start(nm, "");
    service.wait_for("the access point", Duration::from_secs(20), |s| mode(s) == "access-point");
    service
}

/// Submits the portal's form; the device password it sets guards `/api/status` from then
/// on, so the service's status is read logged in.
fn submit(service: &Service, pairs: &[(&str, &str)]) {
    let (code, body) = http_post_form(service.web_port, "/setup", pairs).expect("the portal answers");
    assert_eq!(code, 200, "{body}");
    service.log_in(DEVICE_PASSWORD);
}

/// Submits, then waits until the attempt is over: the access point added again (after the
/// client connection), and a failure on the status.
fn failure_after(nm: &NmMock, service: &Service, pairs: &[(&str, &str)]) -> String {
    let added = nm.calls_of("AddAndActivateConnection2").len();
    submit(service, pairs);
    let status = service.wait_for("the failure", Duration::from_secs(30), |s| {
        nm.calls_of("AddAndActivateConnection2").len() >= added + 2
            && mode(s) == "access-point"
            && s["network"]["last_failure"].is_string()
    });
    status["network"]["last_failure"].as_str().unwrap().to_string()
}

/// The settings dict of the last client connection the service added.
fn last_client(nm: &NmMock) -> Vec<Value> {
    nm.calls_of("AddAndActivateConnection2").into_iter().rfind(|c| c[0]["802-11-wireless"]["mode"] != "ap").unwrap()
}

#[test]
fn wrong_password_then_the_right_one() {
    let nm = NmMock::start();
    let service = on_the_access_point(&nm);
    let sentence = failure_after(&nm, &service, &form("Venue", false, "wrong-password", false));
    assert_eq!(sentence, "The password for “Venue” was not accepted. Check it and try again.");
    let status = service.status().unwrap();
    assert_eq!(status["network"]["ssid"], "Wifi Connect", "the access point is back");

    let call = last_client(&nm);
    assert_eq!(call[2], json!({"persist": "disk"}));
    assert_eq!(
        call[0],
        json!({
            "connection": {"type": "802-11-wireless", "id": "Venue", "autoconnect": true, "autoconnect-priority": 10, "auth-retries": 1},
            "802-11-wireless": {"ssid": "Venue", "mode": "infrastructure"},
            "802-11-wireless-security": {"key-mgmt": "wpa-psk", "psk": "wrong-password"},
        })
    );
    assert_eq!(
        methods(&nm),
        [
            "RequestScan",
            "AddAndActivateConnection2", // the access point
            "DeactivateConnection",      // closed for the attempt
            "AddAndActivateConnection2", // Venue
            "Delete",                    // its profile: a wrong password is not kept
            "AddAndActivateConnection2", // the access point again
        ]
    );
    assert!(!service.output().contains("wrong-password"), "the Wi-Fi password never reaches the log");

    submit(&service, &form("Venue", false, "venue-password", true));
    let status = service.wait_for("online", Duration::from_secs(20), |s| mode(s) == "online");
    assert_eq!(status["network"]["ssid"], "Venue");
    assert_eq!(status["network"]["address"], "192.168.77.50");
    assert_eq!(status["network"]["last_failure"], Value::Null);
}

/// The sentence for a good password on `Venue` scripted with `key = value`.
fn sentence_when<'a>(key: &str, value: impl Into<zbus::zvariant::Value<'a>>) -> String {
    let nm = NmMock::start();
    let service = on_the_access_point(&nm);
    nm.set_venue("Venue", key, value);
    failure_after(&nm, &service, &form("Venue", false, "venue-password", false))
}

#[test]
fn a_network_that_vanished_is_said_so() {
    assert_eq!(
        sentence_when("present", false),
        "“Venue” could not be found. Is it in range, and is the name spelled exactly right?"
    );
}

#[test]
fn no_dhcp_lease_is_said_so() {
    let sentence = sentence_when("dhcp", false);
    assert!(sentence.contains("gave the box no address (DHCP)"), "{sentence}");
}

#[test]
fn an_attempt_that_never_finishes_is_bounded() {
    assert_eq!(sentence_when("hangs", true), "“Venue” did not let the box in within 10 seconds.");
}

#[test]
fn wpa3_only_is_sae_transition_mode_is_psk_and_a_hidden_network_is_hidden() {
    let nm = NmMock::start();
    nm.add_venue("Lab", "lab-password", "wpa3", 60, 2412);
    nm.add_venue("Mixed", "mixed-password", "transition", 50, 2412);
    let service = on_the_access_point(&nm);

    failure_after(&nm, &service, &form("Lab", false, "not-the-password", false));
    assert_eq!(last_client(&nm)[0]["802-11-wireless-security"]["key-mgmt"], "sae");
    failure_after(&nm, &service, &form("Mixed", false, "not-the-password", true));
    assert_eq!(last_client(&nm)[0]["802-11-wireless-security"]["key-mgmt"], "wpa-psk");
    failure_after(&nm, &service, &form("Backstage", true, "not-the-password", true));
    let hidden = last_client(&nm);
    assert_eq!(hidden[0]["802-11-wireless"], json!({"ssid": "Backstage", "mode": "infrastructure", "hidden": true}));
    assert_eq!(hidden[0]["802-11-wireless-security"]["key-mgmt"], "wpa-psk");
}

#[test]
fn rescan_closes_the_access_point_only_when_the_radio_cannot_scan_beside_it() {
    let nm = NmMock::start();
    let service = on_the_access_point(&nm);
    nm.add_venue("Late", "", "open", 20, 2412);

    // NetworkManager refuses to scan on a device serving an access point.
    assert_eq!(http_post_form(service.web_port, "/rescan", &[]).unwrap().0, 303);
    let status = service.wait_for("the new list", Duration::from_secs(20), |s| {
        mode(s) == "access-point" && s["network"]["networks"].as_array().unwrap().len() == 2
    });
    assert!(status["network"]["notice"].as_str().unwrap().contains("closed for a few seconds"), "{status:#?}");
    assert_eq!(
        methods(&nm)[2..],
        ["RequestScan", "DeactivateConnection", "RequestScan", "AddAndActivateConnection2"],
        "refused, closed, scanned, reopened"
    );

    // A radio that can: the access point stays.
    nm.set_scan_in_ap(true);
    let before = methods(&nm).len();
    http_post_form(service.web_port, "/rescan", &[]).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(methods(&nm)[before..], ["RequestScan"]);
    assert_eq!(mode(&service.status().unwrap()), "access-point");
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

/// The image has no polkit: NetworkManager grants whatever reaches it, and the shipped
/// D-Bus policy decides who reaches it. Checked in a real dbus-daemon, with the rules of
/// the system bus and of NetworkManager's own policy file it comes after; run as root
/// (CI does), since it calls as another user.
#[test]
fn the_shipped_dbus_policy_lets_only_root_and_the_service_call_network_manager() {
    const SHIPPED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/meta-makespacelive/recipes-connectivity/networkmanager/files/makespacelive-networkmanager.conf"
    );
    let shipped = std::fs::read_to_string(SHIPPED).unwrap();
    // The service's user does not exist here: `nobody` stands in for it in one copy.
    let conf = tempfile::tempdir().unwrap();
    let as_service = conf.path().join("as-service");
    let unchanged = conf.path().join("unchanged");
    for dir in [&as_service, &unchanged] {
        std::fs::create_dir(dir).unwrap();
    }
    std::fs::write(unchanged.join("makespacelive-networkmanager.conf"), &shipped).unwrap();
    std::fs::write(
        as_service.join("makespacelive-networkmanager.conf"),
        shipped.replace(r#"user="makespacelive""#, r#"user="nobody""#),
    )
    .unwrap();

    // system.conf's default policy (its essentials); NetworkManager's own file: root owns
    // the name, everyone may call it; then /etc/dbus-1/system.d, where the image's file is.
    let policy = |etc: &std::path::Path| {
        format!(
            r#"<policy context="default"><allow user="*"/><deny own="*"/><deny send_type="method_call"/>
<allow send_type="signal"/><allow send_requested_reply="true" send_type="method_return"/>
<allow send_requested_reply="true" send_type="error"/><allow receive_type="method_call"/>
<allow receive_type="method_return"/><allow receive_type="error"/><allow receive_type="signal"/>
<allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/></policy>
<policy user="root"><allow own="org.freedesktop.NetworkManager"/><allow send_destination="org.freedesktop.NetworkManager"/></policy>
<policy context="default"><allow send_destination="org.freedesktop.NetworkManager"/></policy>
<includedir>{}</includedir>"#,
            etc.display()
        )
    };
    let call = |nm: &NmMock, user: &str| {
        std::process::Command::new("setpriv")
            .args(["--reuid", user, "--regid", "nogroup", "--clear-groups", "dbus-send", "--system", "--print-reply"])
            .args(["--dest=org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager"])
            .arg("org.freedesktop.NetworkManager.GetDevices")
            .env("DBUS_SYSTEM_BUS_ADDRESS", nm.bus_address())
            .output()
            .expect("setpriv and dbus-send (scripts/setup)")
    };

    let nm = NmMock::start_with_policy(&policy(&unchanged));
    assert!(call(&nm, "root").status.success(), "root may");
    let other = call(&nm, "nobody");
    assert!(String::from_utf8_lossy(&other.stderr).contains("AccessDenied"), "{other:?}");

    let nm = NmMock::start_with_policy(&policy(&as_service));
    let service = call(&nm, "nobody");
    assert!(service.status.success(), "the service's user may: {service:?}");
}

/// The LAN pages' device password in these tests.
const LAN_PASSWORD: &str = "lan-password-5e1f";

/// `settings` with `LAN_PASSWORD` set as the device password (its argon2id hash, as the
/// portal saves it).
fn with_password(settings: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"network-nm-tests").unwrap();
    let hash = argon2::Argon2::default().hash_password(LAN_PASSWORD.as_bytes(), &salt).unwrap();
    settings.replacen("[network]\n", &format!("password_hash = \"{hash}\"\n[network]\n"), 1)
}

/// Logged in with `LAN_PASSWORD` once the service answers.
fn log_in(service: &Service) -> Client {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while http_get(service.web_port, "/api/portal").is_none() {
        assert!(std::time::Instant::now() < deadline, "the web side did not start:\n{}", service.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    service.log_in(LAN_PASSWORD)
}

/// A service with the network managed and `LAN_PASSWORD`, logged in; waits until its
/// network mode is `until`.
fn logged_in(nm: &NmMock, until: &str) -> (Service, Client) {
    let port = free_port();
    let service = Service::start_with(
        &with_password(&settings(port, "")),
        port,
        &[("DBUS_SYSTEM_BUS_ADDRESS", nm.bus_address())],
        None,
    );
    let client = log_in(&service);
    service.wait_for(until, Duration::from_secs(20), |s| mode(s) == until);
    (service, client)
}

/// `reply` is `code`; its JSON.
fn json_of(reply: &Reply, code: u16) -> Value {
    assert_eq!(reply.code, code, "{}", reply.body);
    reply.json()
}

/// The one error of a refused call: its field and reason.
fn refusal(reply: &Reply, code: u16) -> (Value, String) {
    let body = json_of(reply, code);
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    (errors[0]["field"].clone(), errors[0]["reason"].as_str().unwrap().to_string())
}

#[test]
fn saved_networks_are_listed_added_reprioritised_and_forgotten_and_no_password_comes_back() {
    let nm = NmMock::start();
    nm.add_venue("Venue", "venue-password", "wpa2", 70, 2437);
    nm.add_venue("Lab", "lab-password-1", "wpa3", 40, 2412);
    nm.add_saved_network("Venue", "venue-password");
    let (service, client) = logged_in(&nm, "online");
    let mut answers = Vec::new();

    let wifi = client.get("/api/wifi");
    let body = json_of(&wifi, 200);
    assert_eq!(body["mode"], "online");
    assert_eq!(body["saved_error"], Value::Null);
    let venue_uuid = body["saved"][0]["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        body["saved"],
        json!([{"uuid": venue_uuid, "ssid": "Venue", "priority": 0, "security": "wpa2", "hidden": false, "active": true}])
    );
    assert_eq!(
        body["access_point"],
        json!({"ssid": "Wifi Connect", "passphrase_set": false, "applies": "the next time the access point opens"})
    );
    answers.push(wifi.body);

    // A scan while online: the radio is free, nothing closes.
    answers.push(json_of(&client.send("POST", "/api/wifi/scan", &json!({})), 200).to_string());
    let scanned = service.wait_for("the scan", Duration::from_secs(10), |s| {
        s["network"]["networks"].as_array().is_some_and(|n| n.len() == 2)
    });
    assert_eq!(
        scanned["network"]["networks"][1],
        json!({"ssid": "Lab", "signal": 40, "security": "wpa3", "band": "2.4 GHz"})
    );
    let body = json_of(&client.get("/api/wifi"), 200);
    assert_eq!(body["scan"], scanned["network"]["networks"], "GET /api/wifi shows the last scan");

    // Added: saved with its PSK in NetworkManager, autoconnect, not activated; WPA3-only
    // as the scan saw it.
    let before = methods(&nm).len();
    let added = client.send(
        "POST",
        "/api/wifi/networks",
        &json!({"ssid": "Lab", "passphrase": "lab-password-1", "hidden": false, "priority": 20}),
    );
    let lab = json_of(&added, 200);
    let lab_uuid = lab["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        lab,
        json!({"uuid": lab_uuid, "ssid": "Lab", "priority": 20, "security": "wpa3", "hidden": false, "active": false})
    );
    answers.push(added.body);
    assert_eq!(methods(&nm)[before..], ["AddConnection"], "saved, not activated");
    let profile = nm.profile(&lab_uuid).expect("NetworkManager has it");
    assert_eq!(profile["802-11-wireless-security"], json!({"key-mgmt": "sae", "psk": "lab-password-1"}));
    assert_eq!(profile["connection"]["autoconnect"], true);
    assert_eq!(profile["connection"]["autoconnect-priority"], 20);

    // A priority change keeps the PSK, and the PSK never went out to the service and back.
    let changed = client.send("PUT", &format!("/api/wifi/networks/{lab_uuid}"), &json!({"priority": -5}));
    assert_eq!(json_of(&changed, 200)["priority"], -5);
    answers.push(changed.body);
    let profile = nm.profile(&lab_uuid).unwrap();
    assert_eq!(profile["connection"]["autoconnect-priority"], -5);
    assert_eq!(profile["802-11-wireless-security"]["psk"], "lab-password-1", "the saved PSK stays");
    let update = nm.calls_of("Update2").pop().expect("Update2");
    assert_eq!(update[0]["802-11-wireless-security"], json!({"key-mgmt": "sae"}), "sent without the PSK: {update:?}");
    assert_eq!(update[1], 1, "to disk");
    let body = json_of(&client.get("/api/wifi"), 200);
    let order: Vec<&str> = body["saved"].as_array().unwrap().iter().map(|n| n["ssid"].as_str().unwrap()).collect();
    assert_eq!(order, ["Venue", "Lab"], "highest priority first");

    // Added again with a new password (and as hidden): one profile of it, the new one.
    let again = client.send(
        "POST",
        "/api/wifi/networks",
        &json!({"ssid": "Lab", "passphrase": "lab-password-2", "hidden": true}),
    );
    let body = json_of(&again, 200);
    assert_eq!((&body["hidden"], &body["priority"]), (&json!(true), &json!(0)), "{body}");
    let new_uuid = body["uuid"].as_str().unwrap().to_string();
    answers.push(again.body);
    assert!(nm.profile(&lab_uuid).is_none(), "the older profile of Lab is gone");
    let profile = nm.profile(&new_uuid).unwrap();
    assert_eq!(profile["802-11-wireless-security"]["psk"], "lab-password-2");
    assert_eq!(profile["802-11-wireless"]["hidden"], true);
    assert_eq!(nm.profiles().len(), 2);

    // Forgotten.
    let forgot = client.send_raw("DELETE", &format!("/api/wifi/networks/{new_uuid}"), "application/json", b"", &[]);
    let body = json_of(&forgot, 200);
    answers.push(forgot.body);
    assert_eq!(body["saved"].as_array().unwrap().len(), 1, "{body}");
    assert!(nm.profile(&new_uuid).is_none());
    assert_eq!(methods(&nm).last().unwrap(), "Delete");
    assert_eq!(mode(&service.status().unwrap()), "online", "still on Venue");

    let output = service.output();
    for secret in ["venue-password", "lab-password-1", "lab-password-2"] {
        assert!(!output.contains(secret), "{secret} in the log:\n{output}");
        assert!(answers.iter().all(|a| !a.contains(secret)), "{secret} in an answer: {answers:?}");
    }
}

#[test]
fn wifi_calls_name_what_was_wrong_and_change_nothing() {
    let nm = NmMock::start();
    nm.add_venue("Venue", "venue-password", "wpa2", 70, 2437);
    nm.add_saved_network("Venue", "venue-password");
    let (service, client) = logged_in(&nm, "online");
    let add = |body: Value| client.send("POST", "/api/wifi/networks", &body);

    let (field, reason) = refusal(&add(json!({"ssid": "Lab", "passphrase": "short-1"})), 400);
    assert_eq!(field, "passphrase");
    assert_eq!(reason, "the password has 7 characters; Wi-Fi passwords have 8 to 63");
    let (field, reason) = refusal(&add(json!({"ssid": "Lab", "passphrase": "é".repeat(10)})), 400);
    assert_eq!(field, "passphrase");
    assert!(reason.contains("only printable ASCII"), "{reason}");
    let (field, reason) = refusal(&add(json!({"ssid": "x".repeat(33)})), 400);
    assert_eq!((field, reason.as_str()), (json!("ssid"), "the network name is 33 bytes long; Wi-Fi allows at most 32"));
    let (field, reason) = refusal(&add(json!({"ssid": "Lab", "priority": 1000})), 400);
    assert_eq!(field, "priority");
    assert!(reason.contains("allowed -999 to 999"), "{reason}");
    let (_, reason) = refusal(&add(json!({"ssid": "Lab", "password": "lab-password"})), 400);
    assert!(reason.contains("unknown field `password`"), "{reason}");

    let unknown = "/api/wifi/networks/00000000-0000-0000-0000-000000000000";
    let (field, reason) = refusal(&client.send("PUT", unknown, &json!({"priority": 1})), 404);
    assert_eq!(field, Value::Null);
    assert!(reason.contains("no saved Wi-Fi network has this id"), "{reason}");
    refusal(&client.send_raw("DELETE", unknown, "application/json", b"", &[]), 404);
    let venue = json_of(&client.get("/api/wifi"), 200)["saved"][0]["uuid"].as_str().unwrap().to_string();
    let (field, _) =
        refusal(&client.send("PUT", &format!("/api/wifi/networks/{venue}"), &json!({"priority": -1000})), 400);
    assert_eq!(field, "priority");

    let changes = ["AddConnection", "Update", "Update2", "Delete"];
    assert!(methods(&nm).iter().all(|m| !changes.contains(&m.as_str())), "{:?}", methods(&nm));
    assert_eq!(nm.profiles().len(), 1);
    assert!(!service.output().contains("short-1"));
}

#[test]
fn the_access_point_name_and_passphrase_are_saved_and_used_the_next_time_it_opens() {
    let nm = NmMock::start();
    let (service, client) = logged_in(&nm, "access-point");
    let file = service.data_dir().join("config.toml");

    let (field, _) =
        refusal(&client.send("PUT", "/api/wifi/access-point", &json!({"ssid": "Box", "passphrase": "short"})), 400);
    assert_eq!(field, "passphrase");
    let (field, _) = refusal(&client.send("PUT", "/api/wifi/access-point", &json!({"ssid": ""})), 400);
    assert_eq!(field, "ssid");
    let untouched = std::fs::read_to_string(&file).unwrap();
    assert!(!untouched.contains("ap_ssid"), "nothing saved:\n{untouched}");

    let set = client.send(
        "PUT",
        "/api/wifi/access-point",
        &json!({"ssid": "Makerspace Box", "passphrase": "box-passphrase"}),
    );
    assert_eq!(
        json_of(&set, 200),
        json!({"ssid": "Makerspace Box", "passphrase_set": true, "applies": "the next time the access point opens"})
    );
    let saved: toml::Table = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["network"]["ap_ssid"].as_str(), Some("Makerspace Box"));
    assert_eq!(saved["network"]["ap_passphrase"].as_str(), Some("box-passphrase"));
    assert_eq!(service.status().unwrap()["network"]["ssid"], "Wifi Connect", "the one serving keeps its name");
    assert_eq!(nm.calls_of("AddAndActivateConnection2").len(), 1);

    // It opens again after a scan (the radio cannot scan beside it): with the new name.
    json_of(&client.send("POST", "/api/wifi/scan", &json!({})), 200);
    service.wait_for("the new name", Duration::from_secs(20), |s| {
        mode(s) == "access-point" && s["network"]["ssid"] == "Makerspace Box"
    });
    let opened = nm.calls_of("AddAndActivateConnection2").pop().unwrap();
    assert_eq!(opened[0]["802-11-wireless"]["ssid"], "Makerspace Box");
    assert_eq!(opened[0]["802-11-wireless-security"]["psk"], "box-passphrase");

    // Left out, the passphrase stays.
    let renamed = client.send("PUT", "/api/wifi/access-point", &json!({"ssid": "Box 2"}));
    assert_eq!(json_of(&renamed, 200)["passphrase_set"], true);
    let wifi = client.get("/api/wifi");
    assert_eq!(json_of(&wifi, 200)["access_point"]["ssid"], "Box 2");
    for answer in [&set.body, &renamed.body, &wifi.body] {
        assert!(!answer.contains("box-passphrase"), "{answer}");
    }
    assert!(!service.output().contains("box-passphrase"), "{}", service.output());
}

#[test]
fn with_the_network_unmanaged_wifi_calls_say_so() {
    let port = free_port();
    let service = Service::start(&with_password(&test_settings(port, &[])), port);
    let client = log_in(&service);
    let body = json_of(&client.get("/api/wifi"), 200);
    assert_eq!(body["mode"], "unmanaged");
    assert!(body["saved_error"].as_str().unwrap().contains("not managed by this box"), "{body}");
    let (_, reason) = refusal(&client.send("POST", "/api/wifi/networks", &json!({"ssid": "Lab"})), 409);
    assert!(reason.contains("network.manage = false"), "{reason}");
    refusal(&client.send("POST", "/api/wifi/scan", &json!({})), 409);
    // The access point's settings are settings: saved for when the network is managed.
    let set = client.send("PUT", "/api/wifi/access-point", &json!({"ssid": "Box"}));
    assert_eq!(json_of(&set, 200)["ssid"], "Box");
}

#[test]
fn without_network_manager_wifi_calls_say_it_is_not_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bus = format!("unix:path={}", dir.path().join("no-bus").display());
    let service =
        Service::start_with(&with_password(&settings(port, "")), port, &[("DBUS_SYSTEM_BUS_ADDRESS", &bus)], None);
    let client = log_in(&service);
    let body = json_of(&client.get("/api/wifi"), 200);
    assert!(body["saved_error"].as_str().unwrap().starts_with("NetworkManager is not reachable now"), "{body}");
    let (_, reason) = refusal(&client.send("POST", "/api/wifi/networks", &json!({"ssid": "Lab"})), 503);
    assert!(reason.contains("looks for it every 30 s"), "{reason}");
    refusal(&client.send("PUT", "/api/wifi/networks/some-uuid", &json!({"priority": 1})), 503);
}

#[test]
fn the_access_point_retries_the_saved_network_of_highest_priority() {
    let nm = NmMock::start();
    // Listed first and never used, Lab would lose to Venue on order alone.
    nm.add_venue("Lab", "lab-password", "wpa2", 40, 2412);
    nm.add_venue("Venue", "venue-password", "wpa2", 70, 2437);
    for ssid in ["Lab", "Venue"] {
        nm.set_venue(ssid, "present", false);
    }
    nm.add_saved_network("Lab", "lab-password");
    nm.add_saved_network("Venue", "venue-password");
    let (service, client) = logged_in(&nm, "access-point");
    let saved = json_of(&client.get("/api/wifi"), 200)["saved"].clone();
    let lab =
        saved.as_array().unwrap().iter().find(|n| n["ssid"] == "Lab").unwrap()["uuid"].as_str().unwrap().to_string();
    json_of(&client.send("PUT", &format!("/api/wifi/networks/{lab}"), &json!({"priority": 50})), 200);
    for ssid in ["Lab", "Venue"] {
        nm.set_venue(ssid, "present", true);
    }
    // No phone on the access point: after retry_saved_every_s (30 s) it tries saved networks.
    let status = service.wait_for("online", Duration::from_secs(45), |s| mode(s) == "online");
    assert_eq!(status["network"]["ssid"], "Lab", "{:?}", nm.calls());
    let lab_path = nm.profiles().into_iter().find(|(_, p)| p["connection"]["uuid"] == lab).unwrap().0;
    assert_eq!(nm.calls_of("ActivateConnection").pop().unwrap()[0], lab_path.as_str());
}

/// The SSID of the access point the service last opened.
fn last_ap_ssid(nm: &NmMock) -> Value {
    nm.calls_of("AddAndActivateConnection2").last().expect("an access point")[0]["802-11-wireless"]["ssid"].clone()
}

#[test]
fn the_network_thread_follows_the_settings_in_force() {
    let nm = NmMock::start();
    let service = on_the_access_point(&nm);
    let edit = |from: &str, to: &str| service.edit_by_hand(from, to);
    // By hand + SIGHUP: a new name, taken the next time the access point opens (a
    // rescan closes and reopens it here); the one serving keeps its name until then.
    edit("[network]\n", "[network]\nap_ssid = \"Box Two\"\n");
    assert_eq!(mode(&service.status().unwrap()), "access-point");
    assert_eq!(last_ap_ssid(&nm), "Wifi Connect");
    let opened = nm.calls_of("AddAndActivateConnection2").len();
    assert_eq!(http_post_form(service.web_port, "/rescan", &[]).unwrap().0, 303);
    service.wait_for("reopened", Duration::from_secs(20), |s| {
        mode(s) == "access-point" && s["network"]["ssid"] == "Box Two"
    });
    assert_eq!(nm.calls_of("AddAndActivateConnection2").len(), opened + 1);
    assert_eq!(last_ap_ssid(&nm), "Box Two");

    // From the LAN API (a device password set by hand first): the same.
    edit("[network]\n", &format!("password_hash = \"{}\"\n[network]\n", app::password_hash(DEVICE_PASSWORD)));
    let client = service.log_in(DEVICE_PASSWORD);
    let reply = client.send("PUT", "/api/wifi/access-point", &json!({"ssid": "Box Three"}));
    assert_eq!(reply.code, 200, "{}", reply.body);
    assert_eq!(http_post_form(service.web_port, "/rescan", &[]).unwrap().0, 303);
    service.wait_for("reopened", Duration::from_secs(20), |s| s["network"]["ssid"] == "Box Three");
    assert_eq!(last_ap_ssid(&nm), "Box Three");

    // Another section changes nothing here; a timer of the network's starts it over.
    let calls = methods(&nm).len();
    edit("bitrate_kbps = 800", "bitrate_kbps = 700");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(methods(&nm).len(), calls, "a video change touched the network: {:?}", &methods(&nm)[calls..]);
    edit("saved_wait_s = 5", "saved_wait_s = 6");
    service.wait_for("a new session", Duration::from_secs(20), |_| {
        nm.calls_of("AddAndActivateConnection2").len() > opened + 2
    });
    assert!(service.output().contains("the network settings changed; starting over"), "{}", service.output());
    assert_eq!(last_ap_ssid(&nm), "Box Three");
}
