//! Status (`/`): the box, its preview picture, each destination, the network, the firmware.

use std::fmt::Write;

use super::{Layout, Show, Tab, Value, bound, escape, layout, row, row_if};
use crate::status::Status;

pub fn status_page(frame: &Layout, status: &Status) -> String {
    let mut out = String::from("<h1>Status</h1>");
    for problem in status.source_error.iter().chain(&status.config_problems) {
        let _ = write!(out, "<p class=\"problem\">{}</p>", escape(problem));
    }
    out.push_str("<div class=\"grid\"><section class=\"card\"><h2>The box</h2><dl class=\"kv\">");
    row(&mut out, "State", &bound("state", Show::Badge, Value::Text(status.state.as_str())));
    row(&mut out, "In short", &bound("summary", Show::Text, Value::Text(&status.summary)));
    row(&mut out, "Up for", &bound("uptime_s", Show::Duration, Value::Number(status.uptime_s)));
    row(&mut out, "Video now", &bound("video_kbps", Show::Kbps, Value::Number(status.video_kbps.into())));
    out.push_str("</dl>");
    flag(
        &mut out,
        "weak_network",
        status.weak_network,
        "Weak network: the uplink carries less than half the bitrate set, so the video goes at a lower quality \
         until it recovers.",
    );
    out.push_str("</section>");

    out.push_str(
        "<section class=\"card preview\"><h2>What the camera sends</h2>\
         <img id=\"preview\" src=\"/api/preview.jpg\" alt=\"The camera's picture, a few seconds old\">\
         <p class=\"why\" id=\"preview-why\" hidden></p></section></div>",
    );

    out.push_str("<section class=\"card\"><h2>Destinations</h2>");
    if status.destinations.is_empty() {
        out.push_str("<p class=\"hint\">None yet: add one under <a href=\"/destinations\">Destinations</a>.</p>");
    }
    out.push_str("<div class=\"grid\">");
    for (i, d) in status.destinations.iter().enumerate() {
        let at = |key: &str| format!("destinations.{i}.{key}");
        let _ = write!(
            out,
            "<div class=\"dest\"><h3>{} {}</h3><dl class=\"kv\">",
            escape(&d.name),
            bound(&at("state"), Show::Badge, Value::Text(d.state.as_str()))
        );
        row(&mut out, "To", &bound(&at("url"), Show::Text, Value::Text(&d.url)));
        row(&mut out, "Bitrate", &bound(&at("bitrate_kbps"), Show::Kbps, Value::Number(d.bitrate_kbps)));
        row(&mut out, "Sent", &bound(&at("bytes_sent"), Show::Bytes, Value::Number(d.bytes_sent)));
        row(&mut out, "Live for", &bound(&at("live_for_s"), Show::Duration, d.live_for_s.into()));
        row(&mut out, "Reconnects", &bound(&at("reconnects"), Show::Text, Value::Number(d.reconnects)));
        row(&mut out, "Uplink", &bound(&at("uplink_kbps"), Show::Kbps, Value::Number(d.uplink_kbps)));
        row(&mut out, "Delay (s)", &bound(&at("backlog_s"), Show::Text, Value::Text(&d.backlog_s.to_string())));
        row(&mut out, "GOPs dropped", &bound(&at("gops_dropped"), Show::Text, Value::Number(d.gops_dropped)));
        row(&mut out, "Last error", &bound(&at("last_error"), Show::Text, d.last_error.as_deref().into()));
        out.push_str("</dl>");
        flag(
            &mut out,
            &at("too_slow"),
            d.too_slow,
            "Too slow: this uplink cannot carry even the lowest bitrate; the other destinations do not wait for it.",
        );
        out.push_str("</div>");
    }
    out.push_str("</div></section><div class=\"grid\"><section class=\"card\"><h2>Network</h2><dl class=\"kv\">");
    let network = &status.network;
    row(&mut out, "Mode", &bound("network.mode", Show::Text, Value::Text(network.mode.as_str())));
    row(&mut out, "Wi-Fi", &bound("network.ssid", Show::Text, network.ssid.as_deref().into()));
    row(&mut out, "Signal", &bound("network.signal", Show::Percent, network.signal.map(u64::from).into()));
    row(&mut out, "Address", &bound("network.address", Show::Text, network.address.as_deref().into()));
    out.push_str("</dl></section><section class=\"card\"><h2>Firmware</h2><dl class=\"kv\">");
    let update = &status.update;
    row(&mut out, "Service", &bound("version", Show::Text, Value::Text(&status.version)));
    row(&mut out, "System", &bound("update.version", Show::Text, update.version.as_deref().into()));
    row(&mut out, "Booted slot", &bound("update.slot", Show::Text, update.slot.as_deref().into()));
    row(&mut out, "Update", &bound("update.state", Show::Badge, Value::Text(update.state.as_str())));
    row_if(&mut out, "", "update.message", update.message.as_deref());
    row_if(&mut out, "Reboot needed", "update.reboot_needed", update.reboot_needed.as_deref());
    out.push_str("</dl><p><a href=\"/update\">Update…</a></p></section></div>");

    let shape: Vec<&str> = status.destinations.iter().map(|d| d.name.as_str()).collect();
    let attrs = format!(" data-refresh data-shape=\"{}\"", escape(&shape.join("\n")));
    layout(frame, Tab::Status, &attrs, &out)
}

/// A warning shown while the `/api/status` boolean at `path` is true.
fn flag(out: &mut String, path: &str, on: bool, text: &str) {
    let hidden = if on { "" } else { " hidden" };
    let _ = write!(out, "<p class=\"problem\" data-if=\"{path}\"{hidden}>{text}</p>");
}

#[cfg(test)]
mod tests {
    use super::super::tests::{HEAVY_DESTINATIONS, assert_a_good_page, heavy_status, layout_for_tests};
    use super::*;

    #[test]
    fn the_status_page_with_everything_on_it_is_a_good_page() {
        let page = status_page(&layout_for_tests(), &heavy_status());
        assert_a_good_page(&page.replace("src=\"/api/preview.jpg\"", ""));
        let last = HEAVY_DESTINATIONS - 1;
        assert!(page.contains(&format!("dest-{last:02}-")), "all destinations listed");
        assert!(page.contains(&format!("data-s=\"destinations.{last}.bitrate_kbps\" data-f=\"kbps\">2480 kbit/s<")));
        assert!(page.contains(">123.5 GB<") && page.contains(">2 h 2 min<") && page.contains(">3 d 0 h<"));
        assert!(page.contains("<img id=\"preview\" src=\"/api/preview.jpg\""));
        assert!(page.contains("data-refresh"));
        assert!(page.contains("<p class=\"problem\" data-if=\"destinations.1.too_slow\">Too slow"), "shown");
        assert!(page.contains("<p class=\"problem\" data-if=\"destinations.0.too_slow\" hidden>"), "hidden");
        assert!(page.contains("<p class=\"problem\" data-if=\"weak_network\" hidden>Weak network"));
        assert!(page.contains("data-s=\"destinations.0.backlog_s\" data-f=\"text\">0.25<"));
    }

    #[test]
    fn an_empty_box_says_what_to_do() {
        let page = status_page(&layout_for_tests(), &Status::default());
        assert!(page.contains("None yet"));
        assert!(page.contains("data-s=\"network.ssid\" data-f=\"text\">—<"));
        assert!(page.contains("data-shape=\"\""));
    }
}
