//! Stream keys must never leave the process in clear: not in logs, errors, the status
//! page or the printed pipeline. Everything that shows a location or foreign error text
//! goes through here.

pub const MASK: &str = "****";

/// Hides the key in a stream location. With no separate key the stream name (last path
/// segment after the application) and any query string are hidden, since services put
/// the key there when people paste a whole URL.
pub fn mask_location(location: &str, key: &str) -> String {
    if !key.is_empty() {
        return scrub(location, &[key]);
    }
    let (without_query, had_query) = match location.split_once('?') {
        Some((base, _)) => (base, true),
        None => (location, false),
    };
    let mut masked = match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let segments: Vec<&str> = rest.split('/').collect();
            // host / app / stream…: everything past the app is the stream name.
            if segments.len() > 2 && segments[2..].iter().any(|s| !s.is_empty()) {
                format!("{scheme}://{}/{}/{MASK}", segments[0], segments[1])
            } else {
                without_query.to_string()
            }
        }
        None => without_query.to_string(),
    };
    if had_query {
        masked.push('?');
        masked.push_str(MASK);
    }
    masked
}

/// Replaces every occurrence of each secret in foreign text (GStreamer errors, say).
pub fn scrub<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().map(AsRef::as_ref).filter(|s| !s.is_empty()) {
        out = out.replace(secret, MASK);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_separate_key() {
        assert_eq!(mask_location("rtmp://h/live2/abcd-1234", "abcd-1234"), "rtmp://h/live2/****");
    }

    #[test]
    fn masks_a_key_pasted_into_the_url() {
        assert_eq!(mask_location("rtmp://h:1935/live/abcd", ""), "rtmp://h:1935/live/****");
        assert_eq!(mask_location("rtmps://h/rtmp/FB-1-2?s_bl=1&a=b", ""), "rtmps://h/rtmp/****?****");
        assert_eq!(mask_location("rtmp://h/live", ""), "rtmp://h/live");
        assert_eq!(mask_location("rtmp://h/live/", ""), "rtmp://h/live/");
    }

    #[test]
    fn scrubs_every_secret() {
        assert_eq!(scrub("a KEY1 b KEY2 KEY1", &["KEY1", "KEY2", ""]), "a **** b **** ****");
    }
}
