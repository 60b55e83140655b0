//! Update (`/update`): the firmware running, a bundle to upload and install with one
//! progress bar through both, the update server and its last check, the reboot into the
//! new slot, and what happened to the last update, in words.

use super::video::reboot_form;
use super::{Layout, Show, Tab, Value, bound, duration, escape, layout, row, row_if};
use crate::status::Status;
use crate::update::record::{Last, Origin};

pub struct UpdatePage<'a> {
    pub status: &'a Status,
    /// Unix time now, for "checked 5 min ago".
    pub now: u64,
}

pub fn update_page(frame: &Layout, page: &UpdatePage) -> String {
    let update = &page.status.update;
    let mut out =
        String::from("<h1>Update</h1><div class=\"grid\"><section class=\"card\"><h2>Firmware</h2><dl class=\"kv\">");
    row(&mut out, "Version", &bound("update.version", Show::Text, update.version.as_deref().into()));
    row(&mut out, "Booted slot", &bound("update.slot", Show::Text, update.slot.as_deref().into()));
    row(&mut out, "State", &bound("update.state", Show::Badge, Value::Text(update.state.as_str())));
    row_if(&mut out, "", "update.message", update.message.as_deref());
    row(&mut out, "Progress", &bound("update.progress", Show::Percent, update.progress.map(u64::from).into()));
    out.push_str("</dl>");
    out.push_str(&reboot_form(page.status));
    out.push_str("</section><section class=\"card\"><h2>Update server</h2><dl class=\"kv\">");
    row(&mut out, "From", &escape(&update.source));
    let checked = match update.last_check {
        Some(at) => format!("{} ago", duration(page.now.saturating_sub(at))),
        None => "not yet".into(),
    };
    row(&mut out, "Last check", &checked);
    row(&mut out, "Last update", &last_in_words(update.last.as_ref()));
    out.push_str("</dl></section></div>");

    out.push_str(
        "<section class=\"card\"><h2>Install a bundle from this computer</h2>\
         <form id=\"upload\" method=\"post\"><label for=\"bundle\">Bundle (.raucb)</label>\
         <input type=\"file\" id=\"bundle\" name=\"bundle\" accept=\".raucb\">\
         <p><button type=\"submit\" class=\"primary\" disabled>Upload and install</button></p>\
         <div hidden><progress id=\"progress\" max=\"100\" value=\"0\"></progress>\
         <p id=\"progress-text\" aria-live=\"polite\"></p></div><div class=\"result\"></div></form>\
         <noscript><p class=\"notice\">Uploading needs JavaScript.</p></noscript></section>",
    );
    layout(frame, Tab::Update, " data-refresh", &out)
}

fn last_in_words(last: Option<&Last>) -> String {
    let Some(last) = last else { return "none yet".into() };
    let from = match &last.origin {
        Origin::File { .. } => "an uploaded bundle".to_string(),
        Origin::Manifest { url } => format!("the manifest at {url}"),
        Origin::Hawkbit { server, .. } => format!("hawkBit at {server}"),
    };
    let verdict = if last.outcome.success { "succeeded" } else { "failed, the box went back to the version before" };
    escape(&format!("{} → {} from {from} {verdict}: {}", last.from_version, last.to_version, last.outcome.details))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_a_good_page, heavy_status, layout_for_tests};
    use super::*;
    use crate::update::record::Outcome;

    #[test]
    fn an_update_under_way_makes_a_good_page() {
        let mut status = heavy_status();
        status.update.last = Some(Last {
            origin: Origin::Hawkbit {
                server: "https://hawkbit.example.org".into(),
                tenant: "DEFAULT".into(),
                controller_id: "box".into(),
                action_id: "7".into(),
            },
            from_version: "2026.10.0".into(),
            to_version: "2026.11.1 <\"&'>".into(),
            outcome: Outcome { success: false, details: "no stream within 300 s".into(), at: 1_700_000_000 },
        });
        let page = update_page(&layout_for_tests(), &UpdatePage { status: &status, now: 1_700_000_300 });
        assert_a_good_page(&page.replace("https://hawkbit.example.org", ""));
        assert!(page.contains("failed, the box went back to the version before: no stream within 300 s"));
        assert!(page.contains("<dt>Last check</dt><dd>5 min 0 s ago</dd>"));
        assert!(page.contains("data-s=\"update.progress\" data-f=\"pct\">42 %<"));
    }

    #[test]
    fn a_quiet_box_has_had_no_update() {
        let page = update_page(&layout_for_tests(), &UpdatePage { status: &Status::default(), now: 0 });
        assert!(page.contains("<dd>none yet</dd>") && page.contains("<dd>not yet</dd>"));
    }
}
