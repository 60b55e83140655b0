//! Wi-Fi (`/wifi`): the network the box is on, its saved networks (filled in from
//! `/api/wifi` by the script), what the last scan found, and the access point's name and
//! passphrase (the passphrase only said to be set).

use std::fmt::Write;

use super::{Layout, Tab, api_form, checkbox, escape, input, layout};
use crate::config::NetworkConfig;
use crate::network::{Band, Mode, NetworkStatus, Security};

/// At most this many scanned networks are listed (strongest first).
const MAX_SCANNED: usize = 40;

pub fn wifi_page(frame: &Layout, network: &NetworkStatus, settings: &NetworkConfig) -> String {
    let mut out = String::from("<h1>Wi-Fi</h1>");
    if let Some(failure) = &network.last_failure {
        let _ = write!(out, "<p class=\"failure\">{}</p>", escape(failure));
    }
    let on = match (&network.ssid, network.signal) {
        (Some(ssid), Some(signal)) => format!("On “{}”, signal {signal} %.", escape(ssid)),
        (Some(ssid), None) => format!("On “{}”.", escape(ssid)),
        _ => match network.mode {
            Mode::Unmanaged => "The network is managed elsewhere: the box sets up no Wi-Fi.".to_string(),
            Mode::AccessPoint => "Not on a Wi-Fi network: the box serves its own access point.".to_string(),
            Mode::Online => "Online through a wired network.".to_string(),
            Mode::Starting | Mode::Scanning | Mode::Connecting => "Looking for a saved network…".to_string(),
        },
    };
    let _ = write!(out, "<p>{on}</p><div class=\"grid\"><section class=\"card\"><h2>Saved networks</h2>");
    out.push_str(
        "<p class=\"hint\">The box joins the saved network with the highest priority it finds.</p>\
         <ul class=\"nets\" id=\"saved\" data-load=\"/api/wifi\"><li class=\"hint\">\
         The list needs JavaScript.</li></ul><h3>Add a network</h3>",
    );
    let mut fields = input("w-ssid", "ssid", "Name (SSID)", "text", "", " list=\"scanned\"");
    fields.push_str(&input("w-pass", "passphrase", "Password", "password", "", " data-keep"));
    fields.push_str("<p class=\"hint\">Leave empty for an open network.</p>");
    fields.push_str(&checkbox("w-hidden", "hidden", "Hidden: it does not announce itself", false));
    fields.push_str(&input("w-prio", "priority", "Priority", "number", "0", " inputmode=\"numeric\""));
    fields.push_str("<p><button type=\"submit\" class=\"primary\" disabled>Add</button></p>");
    out.push_str(&api_form("POST", "/api/wifi/networks", "", &fields));

    out.push_str("</section><section class=\"card\"><h2>Networks in range</h2>");
    out.push_str(&api_form(
        "POST",
        "/api/wifi/scan",
        " data-body='{}' data-done=\"Scanning: what is found shows here in a few seconds.\"",
        "<button type=\"submit\" disabled>Scan again</button>",
    ));
    if network.networks.is_empty() {
        out.push_str("<p class=\"hint\">None found yet.</p>");
    }
    out.push_str("<ul class=\"nets\">");
    let mut names = String::new();
    for entry in network.networks.iter().take(MAX_SCANNED) {
        let band = match entry.band {
            Band::Ghz2_4 => "2.4 GHz",
            Band::Ghz5 => "5 GHz",
        };
        let security = match entry.security {
            Security::Open => "open",
            Security::Wpa2 => "WPA2",
            Security::Wpa3 => "WPA3",
            Security::Enterprise => "802.1X (not supported)",
        };
        let ssid = escape(&entry.ssid);
        let _ = write!(
            out,
            "<li><span class=\"name\">{ssid}<small class=\"meta\">{} % · {security} · {band}</small></span></li>",
            entry.signal
        );
        let _ = write!(names, "<option value=\"{ssid}\">");
    }
    let _ = write!(out, "</ul><datalist id=\"scanned\">{names}</datalist></section></div>");

    out.push_str("<section class=\"card\"><h2>The box's own access point</h2><p class=\"hint\">Opens when the box finds no saved network, for setting it up from a phone.</p>");
    let mut fields = input("ap-ssid", "ssid", "Name", "text", &settings.ap_ssid, "");
    let placeholder =
        if settings.ap_passphrase.is_empty() { "none: the access point is open" } else { "saved — type to replace" };
    fields.push_str(&input(
        "ap-pass",
        "passphrase",
        "Password",
        "password",
        "",
        &format!(" data-keep placeholder=\"{placeholder}\""),
    ));
    fields.push_str(
        "<p class=\"hint\">8–63 characters; a change applies the next time the access point opens.</p><p><button type=\"submit\" class=\"primary\" disabled>Save</button></p>",
    );
    out.push_str(&api_form("PUT", "/api/wifi/access-point", "", &fields));
    out.push_str("</section>");
    layout(frame, Tab::Wifi, "", &out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{SECRET_KEY, assert_a_good_page, heavy_status, layout_for_tests};
    use super::*;
    use crate::secrets::Secret;

    #[test]
    fn sixty_networks_in_range_make_a_good_page_and_the_passphrase_stays_hidden() {
        let network = heavy_status().network;
        let settings = NetworkConfig {
            ap_ssid: "Wifi <\"&'>".into(),
            ap_passphrase: Secret::new(SECRET_KEY),
            ..Default::default()
        };
        let page = wifi_page(&layout_for_tests(), &network, &settings);
        assert_a_good_page(&page);
        assert!(page.contains(&format!("net-{}-", MAX_SCANNED - 1)) && !page.contains(&format!("net-{MAX_SCANNED}-")));
        assert!(page.contains("value=\"Wifi &lt;&quot;&amp;&#39;&gt;\""));
        assert!(page.contains("placeholder=\"saved — type to replace\""));
        assert!(page.contains("On “Venue &lt;"));
    }

    #[test]
    fn an_open_access_point_says_so() {
        let page = wifi_page(&layout_for_tests(), &NetworkStatus::default(), &NetworkConfig::default());
        assert!(page.contains("none: the access point is open") && page.contains("None found yet."));
    }
}
