//! The LAN pages end to end in real headless Chromium at a phone's and a desktop's
//! viewport, driven over WebDriver, against the real service and real peers (nginx-rtmp,
//! Debian's `rauc service`, NetworkManager's D-Bus API mocked on a private bus): a wrong
//! password refused, logging in, the status page live and refreshing by itself, the
//! preview picture changing, a destination added from the page going live on nginx,
//! disabled and removed, field errors next to their inputs, every page laid out for the
//! screen and readable without JavaScript, a bundle uploaded and installed along one
//! progress bar, Wi-Fi networks saved, reprioritised and forgotten. Screenshots of every
//! step: `target/artifacts/lan/`.

mod app;
mod peers;

use std::time::Duration;

use app::{Service, free_port, test_settings};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use peers::RtmpServer;
use peers::nm::NmMock;
use peers::rauc::RaucPeer;
use peers::updatebox::{COMPATIBLE, UpdateBox, payload};
use peers::webdriver::{Phone, Viewport};
use serde_json::json;

const DEVICE_PASSWORD: &str = "lan-device-pw-4b3a";
const VENUE_KEY: &str = "venue-key-1c2d";
const ADDED_KEY: &str = "added-key-5e6f";
const SECRETS: [&str; 3] = [DEVICE_PASSWORD, VENUE_KEY, ADDED_KEY];
const PAGES: [&str; 6] = ["/", "/destinations", "/video", "/wifi", "/update", "/logs"];

/// The tests' settings with the device password's hash.
fn with_password(settings: String) -> String {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2::Argon2::default().hash_password(DEVICE_PASSWORD.as_bytes(), &salt).unwrap().to_string();
    settings.replace("[web]\n", &format!("[web]\npassword_hash = \"{hash}\"\n"))
}

/// A box set up already: a destination "venue" on nginx and the device password.
fn start_box(server: &RtmpServer) -> Service {
    let port = free_port();
    let service = Service::start(&with_password(test_settings(port, &[("venue", &server.url(), VENUE_KEY)])), port);
    service.wait_for("the web server", Duration::from_secs(10), |_| true);
    service
}

fn fill(browser: &Phone, css: &str, text: &str) {
    let input = browser.find(css);
    input.clear();
    input.type_text(text);
}

fn log_in(browser: &Phone, password: &str) {
    fill(browser, "#password", password);
    browser.find("form[action='/login'] button").tap();
}

/// The value `lan.js` keeps fresh at `path` of `/api/status` (read in one go: the page
/// may reload meanwhile).
fn shown(browser: &Phone, path: &str) -> String {
    text_of(browser, &format!("[data-s='{path}']"))
}

/// The text of the first element `css` matches, empty when none does.
fn text_of(browser: &Phone, css: &str) -> String {
    let text =
        browser.execute("const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", json!([css]));
    text.as_str().unwrap_or_default().to_string()
}

/// A digest of the preview picture's pixels as the page shows it, none before the first.
fn phone_picture(browser: &Phone) -> Option<i64> {
    browser
        .execute(
            "const img = document.getElementById('preview');
             if (img.hidden || !img.complete || !img.naturalWidth || !img.src.startsWith('blob:')) return null;
             const c = document.createElement('canvas');
             c.width = img.naturalWidth; c.height = img.naturalHeight;
             const g = c.getContext('2d'); g.drawImage(img, 0, 0);
             const d = g.getImageData(0, 0, c.width, c.height).data;
             let h = 0; for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) | 0;
             return h;",
            json!([]),
        )
        .as_i64()
}

fn assert_no_secret_in(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret:?} appears in {what}");
    }
}

/// Every page: laid out for the screen, loading nothing but the box, no secret in it.
fn visit_every_page(browser: &mut Phone, base: &str) {
    for path in PAGES {
        browser.open(&format!("{base}{path}"));
        browser
            .wait_until("the script to run", Duration::from_secs(10), |b| b.try_find("html[data-js=ready]").is_some());
        std::thread::sleep(Duration::from_millis(500)); // the data-load fetches
        browser.assert_fits();
        let loaded = browser.execute("return performance.getEntriesByType('resource').map(e => e.name)", json!([]));
        assert!(
            loaded.as_array().unwrap().iter().all(|url| url.as_str().unwrap().starts_with(base)),
            "{path} loads only from the box: {loaded}"
        );
        let weight = browser.execute(
            "return performance.getEntriesByType('navigation')[0].decodedBodySize + performance
                 .getEntriesByType('resource').filter(e => !new URL(e.name).pathname.startsWith('/api/'))
                 .reduce((sum, e) => sum + e.decodedBodySize, 0)",
            json!([]),
        );
        assert!(weight.as_u64().is_some_and(|bytes| bytes > 0 && bytes <= 60 * 1024), "{path} weighs {weight} bytes");
        assert_no_secret_in(path, &browser.source());
        let name = if path == "/" { "status" } else { &path[1..] };
        browser.screenshot(name);
    }
}

#[test]
fn the_lan_pages_at_a_phone_and_a_desktop() {
    let server = RtmpServer::start();
    let service = start_box(&server);
    let base = format!("http://127.0.0.1:{}", service.web_port);
    assert!(server.wait_publishing(VENUE_KEY, Duration::from_secs(30)), "the venue's stream reaches nginx");

    let mut phone = Phone::start_at(Viewport::Phone, true, "lan", "phone");
    phone.open(&format!("{base}/destinations"));
    assert!(phone.url().ends_with("/login?next=%2Fdestinations"), "{}", phone.url());
    phone.assert_fits();
    phone.screenshot("login");

    // A wrong password is refused and says so.
    log_in(&phone, "not-the-password");
    phone.wait_until("the refusal", Duration::from_secs(10), |p| {
        p.text().contains("this is not the device password chosen for this box")
    });
    assert!(phone.try_find("nav").is_none(), "no page behind the password");
    phone.screenshot("wrong-password");

    // The right one leads to the page asked for, then the status.
    log_in(&phone, DEVICE_PASSWORD);
    phone.wait_until("the destinations page", Duration::from_secs(10), |p| p.url().ends_with("/destinations"));
    phone.open(&format!("{base}/"));
    phone.wait_until("the venue live", Duration::from_secs(20), |p| shown(p, "destinations.0.state") == "live");
    assert_eq!(shown(&phone, "state"), "streaming");
    assert!(phone.text().contains("venue"));

    // It refreshes by itself: the uptime moves on without a reload.
    phone.execute("window.notReloaded = true", json!([]));
    let uptime = shown(&phone, "uptime_s");
    phone.wait_until("the uptime to move on", Duration::from_secs(8), |p| shown(p, "uptime_s") != uptime);
    assert_eq!(phone.execute("return window.notReloaded === true", json!([])), true, "refreshed in place");
    phone.wait_until("a bitrate", Duration::from_secs(10), |p| shown(p, "destinations.0.bitrate_kbps") != "0 kbit/s");
    phone.assert_fits();
    phone.screenshot("status-live");

    // The preview picture: there, and changing (the test pattern moves).
    phone.wait_until("a preview picture", Duration::from_secs(15), |p| phone_picture(p).is_some());
    let first = phone_picture(&phone).unwrap();
    phone.wait_until("the preview picture to change", Duration::from_secs(10), |p| {
        phone_picture(p).is_some_and(|now| now != first)
    });
    assert_eq!(phone.find("#preview-why").property("hidden"), true, "no reason shown with a picture");
    phone.screenshot("preview");

    // A wrong URL is named next to its input; nothing is added.
    phone.open(&format!("{base}/destinations"));
    phone.wait_until("the script", Duration::from_secs(10), |p| p.try_find("html[data-js=ready]").is_some());
    fill(&phone, "#d-name", "added");
    let preset = phone.find("#d-preset");
    preset.type_text("Another server");
    assert_eq!(preset.value(), "custom");
    fill(&phone, "#d-url", "http://127.0.0.1/live");
    fill(&phone, "#d-key", ADDED_KEY);
    phone.find("#edit button[type=submit]").tap();
    phone.wait_until("the URL's error", Duration::from_secs(10), |p| p.try_find("#d-url + p.err").is_some());
    let error = phone.find("#d-url + p.err").text();
    assert!(error.contains("rtmp"), "the error says what is allowed: {error}");
    assert_eq!(phone.find("#d-url").property("ariaInvalid"), "true");
    phone.assert_fits();
    phone.screenshot("url-error");

    // Added with the right URL: it goes live on nginx.
    fill(&phone, "#d-url", &server.url());
    phone.find("#edit button[type=submit]").tap();
    phone.wait_until("the added destination", Duration::from_secs(10), |p| p.text().contains("added"));
    phone.wait_until("the page again", Duration::from_secs(10), |p| text_of(p, "#flash:not([hidden])") == "Saved.");
    assert!(server.wait_publishing(ADDED_KEY, Duration::from_secs(30)), "the added destination reaches nginx");
    assert!(server.wait_publishing(VENUE_KEY, Duration::from_secs(1)), "the venue's stream goes on");
    phone.wait_until("it live on the page", Duration::from_secs(15), |p| {
        p.text().contains("added") && shown(p, "destinations.1.state") == "live"
    });
    assert!(phone.text().contains("key saved"));
    phone.screenshot("added-live");
    let config = std::fs::read_to_string(service.data_dir().join("config.toml")).unwrap();
    assert!(config.contains(ADDED_KEY), "the key typed is saved");

    // Edit shows the key as saved, never the key.
    phone.find("button[data-edit*='added']").tap();
    assert_eq!(phone.find("#d-key").value(), "");
    assert_eq!(phone.find("#d-key").property("placeholder"), "saved — type to replace");
    assert_eq!(phone.find("#d-name").value(), "added");
    phone.screenshot("edit");

    // Disabled: nginx loses it, the venue goes on.
    phone.open(&format!("{base}/destinations"));
    let disable = "button[data-method=PUT][data-action='/api/destinations/added']";
    phone.wait_until("the script", Duration::from_secs(10), |p| p.try_find("html[data-js=ready]").is_some());
    assert_eq!(phone.find(disable).text(), "Disable");
    phone.find(disable).tap();
    assert!(server.wait_not_publishing(ADDED_KEY, Duration::from_secs(20)), "disabled: nginx loses it");
    phone.wait_until("the page to say so", Duration::from_secs(10), |p| text_of(p, disable) == "Enable");
    assert!(server.wait_publishing(VENUE_KEY, Duration::from_secs(1)), "the venue's stream goes on");
    phone.screenshot("disabled");

    // Removed, after the question.
    phone.find("button[data-method=DELETE][data-action='/api/destinations/added']").tap();
    assert!(phone.accept_dialog().starts_with("Remove “added”?"));
    phone.wait_until("it gone", Duration::from_secs(10), |p| {
        p.try_find("button[data-action='/api/destinations/added']").is_none() && p.text().contains("Removed.")
    });
    let config = std::fs::read_to_string(service.data_dir().join("config.toml")).unwrap();
    assert!(!config.contains("added") && !config.contains(ADDED_KEY), "removed with its key:\n{config}");

    visit_every_page(&mut phone, &base);

    phone.open(&format!("{base}/"));
    phone.find("form[action='/logout'] button").tap();
    phone.wait_until("the login page", Duration::from_secs(10), |p| p.url().contains("/login"));
    phone.open(&format!("{base}/"));
    assert!(phone.url().contains("/login"), "logged out: {}", phone.url());
    drop(phone);

    let mut desktop = Phone::start_at(Viewport::Desktop, true, "lan", "desktop");
    desktop.open(&format!("{base}/"));
    log_in(&desktop, DEVICE_PASSWORD);
    desktop.wait_until("the status page", Duration::from_secs(10), |d| d.try_find("main[data-page=status]").is_some());
    visit_every_page(&mut desktop, &base);

    // Video settings: a bitrate out of range named at its field, then one in range runs.
    desktop.open(&format!("{base}/video"));
    desktop.wait_until("the script", Duration::from_secs(10), |d| d.try_find("html[data-js=ready]").is_some());
    let save = "form[data-action='/api/settings/video'] button[type=submit]";
    fill(&desktop, "#v-bitrate", "5");
    desktop.find(save).tap();
    desktop.wait_until("the bitrate's error", Duration::from_secs(10), |d| d.try_find("#v-bitrate + p.err").is_some());
    let error = desktop.find("#v-bitrate + p.err").text();
    assert!(error.contains("100") && error.contains("50000"), "the error says what is allowed: {error}");
    desktop.screenshot("bitrate-error");
    fill(&desktop, "#v-bitrate", "900");
    desktop.find(save).tap();
    desktop.wait_until("the pipeline at 900 kbit/s", Duration::from_secs(20), |d| {
        shown(d, "pipeline").contains("bitrate=900")
    });
    assert!(server.wait_publishing(VENUE_KEY, Duration::from_secs(20)), "the venue streams again");

    assert_no_secret_in("the service's output", &service.output());
}

/// Without JavaScript every page still reads: the data is on it.
#[test]
fn without_javascript_the_pages_still_read() {
    let server = RtmpServer::start();
    let service = start_box(&server);
    let base = format!("http://127.0.0.1:{}", service.web_port);
    service.log_in(DEVICE_PASSWORD);
    service.wait_for("the venue live", Duration::from_secs(30), |s| s["destinations"][0]["state"] == "live");

    let mut phone = Phone::start_at(Viewport::Phone, false, "lan", "nojs");
    phone.open(&format!("{base}/"));
    log_in(&phone, DEVICE_PASSWORD);
    phone.wait_until("the status page", Duration::from_secs(10), |p| p.try_find("main[data-page=status]").is_some());
    assert_eq!(shown(&phone, "destinations.0.state"), "live");
    for path in PAGES {
        phone.open(&format!("{base}{path}"));
        phone.assert_fits();
        assert_no_secret_in(path, &phone.source());
        let name = if path == "/" { "status" } else { &path[1..] };
        phone.screenshot(name);
    }
    let destinations = {
        phone.open(&format!("{base}/destinations"));
        phone.text()
    };
    assert!(destinations.contains("venue") && destinations.contains("key saved"), "{destinations}");
    assert!(destinations.contains("Changing destinations needs JavaScript"));
    phone.open(&format!("{base}/logs"));
    assert!(phone.find("#log").text().contains("web: logged in from 127.0.0.1"), "the log's lines are on the page");
}

/// The Update page at a desktop: a bundle chosen and uploaded, one bar through the upload
/// and the install (held half-way in RAUC's pre-install handler to see it there), then the
/// reboot into the new slot offered. Against Debian's real `rauc service` (tests/peers/rauc.rs).
#[test]
fn a_bundle_uploaded_from_the_update_page_installs_along_one_bar() {
    let rauc = RaucPeer::start("A");
    let web = free_port();
    let settings = with_password(test_settings(web, &[])) + "[update]\nreboot = \"never\"\n";
    let updatebox = UpdateBox::start(&rauc, &settings, web);
    updatebox.service.log_in(DEVICE_PASSWORD);
    updatebox.service.wait_for("slot A known", Duration::from_secs(20), |s| s["update"]["slot"] == "A");
    let bundle = rauc.bundle("100.0.0", COMPATIBLE, &payload(1));
    let base = format!("http://127.0.0.1:{web}");

    let mut desktop = Phone::start_at(Viewport::Desktop, true, "lan", "upload");
    desktop.open(&format!("{base}/update"));
    log_in(&desktop, DEVICE_PASSWORD);
    desktop.wait_until("the update page", Duration::from_secs(10), |d| d.try_find("html[data-js=ready]").is_some());
    assert_eq!(shown(&desktop, "update.slot"), "A");
    assert!(desktop.find("#progress").property("offsetParent").is_null(), "no bar before an upload");
    desktop.find("#bundle").type_text(bundle.to_str().unwrap());
    desktop.screenshot("chosen");

    rauc.hold_installs();
    desktop.find("#upload button[type=submit]").tap();
    desktop.wait_until("the install under way", Duration::from_secs(30), |d| {
        d.find("#progress-text").text().starts_with("Installing…")
    });
    let half_way = desktop.find("#progress").property("value").as_f64().unwrap();
    assert!((50.0..100.0).contains(&half_way), "the upload was the bar's first half: {half_way}");
    desktop.screenshot("installing");
    rauc.release_installs();
    // RAUC's own progress reaches 100 % a moment before the install is done.
    desktop.wait_until("the bar's end", Duration::from_secs(60), |d| {
        d.find("#progress").property("value") == 100.0 && !d.find("#progress-text").text().starts_with("Installing")
    });
    let said = desktop.find("#progress-text").text();
    assert!(said.contains("100.0.0 installed into slot B"), "{said}");
    desktop.wait_until("the reboot offered", Duration::from_secs(10), |d| {
        d.try_find("form[data-action='/api/reboot']:not([hidden]) button").is_some()
    });
    desktop.assert_fits();
    desktop.screenshot("installed");
    assert_eq!(rauc.primary(), "B", "the new slot boots next");

    // Nothing is live here: the reboot is asked for without a question.
    desktop.find("form[data-action='/api/reboot'] button").tap();
    assert!(peers::wait(Duration::from_secs(10), || updatebox.reboot_asked().is_some()), "the reboot was asked for");
}

/// The Wi-Fi page against NetworkManager's D-Bus API on a private bus (python-dbusmock,
/// tests/peers/nm_mock.py: the radio is the one thing simulated): a saved network added,
/// given a priority and forgotten (asked first), the access point renamed with a password
/// that never comes back.
#[test]
fn wifi_networks_are_added_reprioritised_and_forgotten_from_the_wifi_page() {
    const VENUE_WIFI: &str = "venue-wifi-pw-71";
    const LAB_WIFI: &str = "lab-wifi-pw-82";
    const AP_PASSWORD: &str = "ap-pass-93a1";
    let nm = NmMock::start();
    nm.add_venue("Venue", VENUE_WIFI, "wpa2", 70, 2437);
    nm.add_venue("Lab", LAB_WIFI, "wpa3", 40, 2412);
    nm.add_saved_network("Venue", VENUE_WIFI);
    let port = free_port();
    let settings = test_settings(port, &[]).replace("manage = false\n", "manage = true\nled = \"\"\n");
    let service =
        Service::start_with(&with_password(settings), port, &[("DBUS_SYSTEM_BUS_ADDRESS", nm.bus_address())], None);
    service.wait_for("the web server", Duration::from_secs(10), |_| true);
    let client = service.log_in(DEVICE_PASSWORD);
    service.wait_for("online", Duration::from_secs(20), |s| s["network"]["mode"] == "online");
    let base = format!("http://127.0.0.1:{port}");

    let mut phone = Phone::start_at(Viewport::Phone, true, "lan", "wifi");
    phone.open(&format!("{base}/wifi"));
    log_in(&phone, DEVICE_PASSWORD);
    let saved = |p: &Phone| {
        let script = "return [...document.querySelectorAll('#saved li')].map(li => li.textContent).join('\\n')";
        p.execute(script, json!([])).as_str().unwrap_or_default().to_string()
    };
    phone.wait_until("the saved networks", Duration::from_secs(10), |p| saved(p).contains("Venue"));
    assert!(saved(&phone).contains("on it now"), "{}", saved(&phone));
    phone.screenshot("saved");

    fill(&phone, "#w-ssid", "Lab");
    fill(&phone, "#w-pass", LAB_WIFI);
    fill(&phone, "#w-prio", "5");
    phone.find("form[data-action='/api/wifi/networks'] button[type=submit]").tap();
    phone.wait_until("Lab saved", Duration::from_secs(10), |p| saved(p).contains("Lab"));
    assert!(saved(&phone).contains("priority 5"), "{}", saved(&phone));
    let uuid = client.get("/api/wifi").json()["saved"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["ssid"] == "Lab")
        .map(|n| n["uuid"].as_str().unwrap().to_string())
        .expect("Lab saved in NetworkManager");
    let row = format!("form[data-method=PUT][data-action='/api/wifi/networks/{uuid}']");
    fill(&phone, &format!("{row} input[name=priority]"), "9");
    phone.find(&format!("{row} button")).tap();
    phone.wait_until("the new priority", Duration::from_secs(10), |p| saved(p).contains("priority 9"));
    phone.assert_fits();
    phone.screenshot("priority");

    phone.find(&format!("form[data-method=DELETE][data-action='/api/wifi/networks/{uuid}'] button")).tap();
    assert!(phone.accept_dialog().contains("Forget “Lab”?"));
    phone.wait_until("Lab forgotten", Duration::from_secs(10), |p| {
        let list = saved(p);
        list.contains("Venue") && !list.contains("Lab")
    });

    fill(&phone, "#ap-ssid", "Box <AP>");
    fill(&phone, "#ap-pass", AP_PASSWORD);
    phone.find("form[data-action='/api/wifi/access-point'] button[type=submit]").tap();
    phone.wait_until("the access point saved", Duration::from_secs(10), |p| {
        p.execute("return document.querySelector('#ap-pass').placeholder", json!([])) == "saved — type to replace"
    });
    assert_eq!(phone.find("#ap-ssid").value(), "Box <AP>");
    assert_eq!(phone.find("#ap-pass").value(), "");
    phone.screenshot("access-point");
    for secret in [VENUE_WIFI, LAB_WIFI, AP_PASSWORD] {
        assert!(!phone.source().contains(secret), "{secret} in the page");
        assert!(!service.output().contains(secret), "{secret} in the service's output");
    }
}
