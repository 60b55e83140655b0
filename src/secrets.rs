//! Stream keys must never leave the process in clear: not in logs, errors, the status
//! page or the printed pipeline. Everything that shows a location or foreign error text
//! goes through here.

use serde::{Deserialize, Serialize};
use url::Url;

pub const MASK: &str = "****";

/// A stream key, or a location that holds one. It cannot print itself: `Debug` shows
/// `****` and there is no `Display`; the clear text is had only through `expose`, at
/// the one place that hands it to GStreamer or compares it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(clear: impl Into<String>) -> Self {
        Secret(clear.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

/// Shortest secret that `scrub` hides in free text: a shorter one cannot be told apart
/// from ordinary words (and is no real stream key).
const SCRUB_MIN_LEN: usize = 4;

/// The location `url` + key as it may be shown: the key, and any stream name or query
/// pasted into the URL itself, become `****`.
pub fn mask_destination(url: &str, key: &Secret) -> String {
    let url = mask_pasted_key(url);
    if key.is_empty() { url } else { format!("{}/{MASK}", url.trim_end_matches('/')) }
}

/// Hides what may be a key pasted into a URL: the stream name (path past the
/// application), any query, fragment or password. What does not parse as a URL with a
/// path is hidden whole.
pub fn mask_pasted_key(location: &str) -> String {
    let Ok(mut url) = Url::parse(location) else { return MASK.to_string() };
    if url.cannot_be_a_base() {
        return MASK.to_string();
    }
    let segments: Vec<String> = url.path_segments().map(|s| s.map(String::from).collect()).unwrap_or_default();
    // app / stream…: everything past the app is the stream name.
    if let [app, stream @ ..] = segments.as_slice()
        && stream.iter().any(|s| !s.is_empty())
    {
        url.set_path(&format!("/{app}/{MASK}"));
    }
    if url.query().is_some() {
        url.set_query(Some(MASK));
    }
    if url.fragment().is_some() {
        url.set_fragment(Some(MASK));
    }
    if url.password().is_some() {
        // Fails only for URLs without a host, which hold no password.
        let _ = url.set_password(Some(MASK));
    }
    url.into()
}

/// Replaces every occurrence of each secret in foreign text (GStreamer errors, say).
pub fn scrub(text: &str, secrets: &[Secret]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().map(Secret::expose).filter(|s| s.len() >= SCRUB_MIN_LEN) {
        out = out.replace(secret, MASK);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(clear: &[&str]) -> Vec<Secret> {
        clear.iter().map(|s| Secret::new(*s)).collect()
    }

    #[test]
    fn a_secret_cannot_print_itself() {
        let key = Secret::new("abcd-1234");
        assert_eq!(format!("{key:?}"), MASK);
        assert_eq!(format!("{:?}", Some(&key)), "Some(****)");
        assert_eq!(key.expose(), "abcd-1234");
        assert_eq!(serde_json::to_string(&key).unwrap(), "\"abcd-1234\"", "settings files keep the clear key");
    }

    #[test]
    fn masks_the_separate_key() {
        assert_eq!(mask_destination("rtmp://h/live2", &Secret::new("abcd-1234")), "rtmp://h/live2/****");
    }

    #[test]
    fn masks_a_key_pasted_into_the_url() {
        assert_eq!(mask_pasted_key("rtmp://h:1935/live/abcd"), "rtmp://h:1935/live/****");
        assert_eq!(mask_pasted_key("rtmps://h/rtmp/FB-1-2?s_bl=1&a=b"), "rtmps://h/rtmp/****?****");
        assert_eq!(mask_pasted_key("rtmp://h/live"), "rtmp://h/live");
        assert_eq!(mask_pasted_key("rtmp://h/live/"), "rtmp://h/live/");
        assert_eq!(mask_pasted_key("rtmp://[::1]:1935/live/abcd#x"), "rtmp://[::1]:1935/live/****#****");
        assert_eq!(mask_pasted_key("rtmp://u:abcd@h/live"), "rtmp://u:****@h/live");
        assert_eq!(mask_pasted_key("http://example.org/live"), "http://example.org/live");
        assert_eq!(mask_pasted_key("rtmp://h:99999/live/abcd"), MASK, "what does not parse is hidden whole");
        assert_eq!(mask_pasted_key("localhost:1935/live/abcd"), MASK);
    }

    #[test]
    fn scrubs_every_secret() {
        assert_eq!(scrub("a KEY1 b KEY2 KEY1", &secrets(&["KEY1", "KEY2", ""])), "a **** b **** ****");
        assert_eq!(scrub("connection refused", &secrets(&["n"])), "connection refused", "too short to scrub");
    }

    #[test]
    fn masks_a_destination_by_structure_even_with_a_short_key() {
        assert_eq!(mask_destination("rtmp://h:1/live/", &Secret::new("n")), "rtmp://h:1/live/****");
        assert_eq!(mask_destination("rtmp://h/live/pasted", &Secret::new("k")), "rtmp://h/live/****/****");
        assert_eq!(mask_destination("rtmp://h/live/pasted", &Secret::default()), "rtmp://h/live/****");
    }
}
