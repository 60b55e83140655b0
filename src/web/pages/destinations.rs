//! Destinations (`/destinations`): the list, each with its state, enable/disable and
//! remove, and one form that adds a destination or edits the one picked. The key is
//! write-only: a saved one is only said to be saved.

use std::fmt::Write;

use super::{Layout, Show, Tab, Value, api_form, bound, checkbox, escape, input, layout, path_segment};
use crate::config::Destination;
use crate::secrets::mask_pasted_key;
use crate::status::DestinationStatus;
use crate::web::presets::{self, PRESETS};

const ADD_URL: &str = "/api/destinations";

pub fn destinations_page(frame: &Layout, saved: &[Destination], states: &[DestinationStatus]) -> String {
    let mut out = String::from(
        "<h1>Destinations</h1><noscript><p class=\"notice\">Changing destinations needs JavaScript; \
         what is saved is shown below.</p></noscript><section class=\"card\"><ul class=\"list\">",
    );
    if saved.is_empty() {
        out.push_str("<li class=\"hint\">No destination yet: add one below.</li>");
    }
    for (index, destination) in saved.iter().enumerate() {
        out.push_str(&item(index, destination, states));
    }
    out.push_str("</ul><div class=\"result\" aria-live=\"polite\"></div></section>");
    out.push_str("<section class=\"card\" id=\"edit-card\"><h2 id=\"edit-title\">Add a destination</h2>");
    out.push_str(&api_form("POST", ADD_URL, " id=\"edit\"", &fields()));
    out.push_str("</section>");
    layout(frame, Tab::Destinations, " data-refresh", &out)
}

/// One destination's line: name, state, where, its key saved or not, and its buttons.
/// Its state is at its place in the status, or (just added, not there yet) where the
/// status will list it: in the settings' order.
fn item(index: usize, destination: &Destination, states: &[DestinationStatus]) -> String {
    let name = escape(&destination.name);
    let (at, state) = match states.iter().position(|s| s.name == destination.name) {
        Some(at) => (at, Value::Text(states[at].state.as_str())),
        None => (index, Value::None),
    };
    let badge = bound(&format!("destinations.{at}.state"), Show::Badge, state);
    // A key pasted into the URL stays hidden; the URL is then sent only when retyped.
    let shown = mask_pasted_key(&destination.url);
    let key = if destination.key.is_empty() { "no key" } else { "key saved" };
    let enabled = if destination.enabled { "enabled" } else { "disabled" };
    let path = format!("/api/destinations/{}", path_segment(&destination.name));
    let edit = serde_json::json!({
        "path": path,
        "name": destination.name,
        "preset": presets::for_url(&destination.url).id,
        "url": shown,
        "keep_url": shown != destination.url,
        "key_saved": !destination.key.is_empty(),
        "enabled": destination.enabled,
    });
    let (verb, flip) = if destination.enabled { ("Disable", false) } else { ("Enable", true) };
    format!(
        "<li><div class=\"name\"><b>{name}</b> {badge}<small class=\"meta\">{} · {key} · {enabled}</small></div>\
         <div class=\"actions\"><button type=\"button\" data-edit=\"{}\" disabled>Edit</button>\
         <button type=\"button\" data-method=\"PUT\" data-action=\"{path}\" data-body='{{\"enabled\":{flip}}}' disabled>{verb}</button>\
         <button type=\"button\" class=\"danger\" data-method=\"DELETE\" data-action=\"{path}\" \
         data-confirm=\"Remove “{name}”? Its key is forgotten too.\" data-done=\"Removed.\" disabled>Remove</button></div></li>",
        escape(&shown),
        escape(&edit.to_string()),
    )
}

/// The add/edit form's inputs; the script fills them in for an edit.
fn fields() -> String {
    let mut out = input("d-name", "name", "Name", "text", "", "");
    out.push_str("<label for=\"d-preset\">Service</label><select id=\"d-preset\" data-skip data-preset>");
    for preset in &PRESETS {
        let _ = write!(
            out,
            "<option value=\"{}\" data-url=\"{}\">{}</option>",
            preset.id,
            preset.url.unwrap_or_default(),
            escape(preset.label)
        );
    }
    out.push_str("</select>");
    let first = PRESETS[0].url.unwrap_or_default();
    out.push_str(&input("d-url", "url", "Server URL", "text", first, ""));
    let extra = " data-keep placeholder=\"the stream key from the service\"";
    out.push_str(&input("d-key", "key", "Stream key", "password", "", extra));
    out.push_str(&checkbox("d-enabled", "enabled", "Stream to it", true));
    out.push_str(
        "<p class=\"actions\"><button type=\"submit\" class=\"primary\" disabled>Save</button>\
         <button type=\"button\" id=\"edit-cancel\" hidden>Cancel</button></p>",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{HEAVY_DESTINATIONS, SECRET_KEY, assert_a_good_page, heavy_status, layout_for_tests};
    use super::*;
    use crate::secrets::Secret;

    fn saved(n: usize) -> Vec<Destination> {
        heavy_status()
            .destinations
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, d)| Destination {
                name: d.name.clone(),
                url: if i == 1 { format!("rtmp://h/live/{SECRET_KEY}") } else { "rtmp://live.twitch.tv/app".into() },
                key: Secret::new(SECRET_KEY),
                enabled: i % 2 == 0,
            })
            .collect()
    }

    #[test]
    fn the_page_with_many_destinations_is_a_good_page() {
        let page = destinations_page(&layout_for_tests(), &saved(HEAVY_DESTINATIONS), &heavy_status().destinations);
        assert_a_good_page(&page);
        assert!(page.contains(&format!("dest-{:02}-", HEAVY_DESTINATIONS - 1)));
    }

    #[test]
    fn keys_are_write_only_and_a_key_in_the_url_stays_hidden() {
        let page = destinations_page(&layout_for_tests(), &saved(2), &heavy_status().destinations);
        assert!(!page.contains(SECRET_KEY));
        assert!(page.contains("<small class=\"meta\">rtmp://h/live/**** · key saved · disabled</small>"));
        assert!(page.contains("&quot;keep_url&quot;:true"));
        assert!(page.contains("&quot;preset&quot;:&quot;twitch&quot;"));
        assert!(page.contains("name=\"key\" value=\"\""));
        assert!(page.contains("data-body='{\"enabled\":false}'") && page.contains("data-body='{\"enabled\":true}'"));
        assert!(page.contains("data-method=\"DELETE\" data-action=\"/api/destinations/dest-00-%3C%22%26%27%3Exxx"));
        assert!(page.contains("data-confirm=\"Remove “dest-00-&lt;"));
        assert!(page.contains("data-s=\"destinations.1.state\" data-f=\"badge\">backoff<"));
    }

    #[test]
    fn a_new_destination_starts_at_the_first_preset() {
        let page = destinations_page(&layout_for_tests(), &[], &[]);
        assert!(page.contains("No destination yet"));
        assert!(page.contains("id=\"d-url\" name=\"url\" value=\"rtmp://a.rtmp.youtube.com/live2\""));
        assert!(page.contains("data-method=\"POST\" data-action=\"/api/destinations\" id=\"edit\""));
        assert!(page.contains("name=\"enabled\" checked>"));
    }
}
