//! The stream services the portal offers by name, so that a person pastes only the key.
//! Ingest URLs as the services (and OBS Studio's services list) publish them.

#[derive(Debug, PartialEq, Eq)]
pub struct Preset {
    /// The form's value, and the destination's name when the portal creates one.
    pub id: &'static str,
    pub label: &'static str,
    /// `None`: the person types the URL.
    pub url: Option<&'static str>,
}

pub const CUSTOM: &str = "custom";

pub const PRESETS: [Preset; 6] = [
    Preset { id: "youtube", label: "YouTube (RTMP)", url: Some("rtmp://a.rtmp.youtube.com/live2") },
    Preset { id: "youtube-rtmps", label: "YouTube (RTMPS)", url: Some("rtmps://a.rtmps.youtube.com:443/live2") },
    Preset { id: "twitch", label: "Twitch", url: Some("rtmp://live.twitch.tv/app") },
    Preset { id: "facebook", label: "Facebook Live (RTMPS)", url: Some("rtmps://live-api-s.facebook.com:443/rtmp/") },
    Preset { id: "restream", label: "Restream", url: Some("rtmp://live.restream.io/live") },
    Preset { id: CUSTOM, label: "Another server (type its URL)", url: None },
];

pub fn by_id(id: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.id == id)
}

/// The preset a saved URL came from; a URL no preset has is the custom one.
pub fn for_url(url: &str) -> &'static Preset {
    PRESETS.iter().find(|p| p.url == Some(url)).unwrap_or(&PRESETS[PRESETS.len() - 1])
}

/// The allowed values, for error messages.
pub fn ids() -> String {
    PRESETS.map(|p| p.id).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_url_is_a_valid_stream_url() {
        for preset in &PRESETS {
            if let Some(url) = preset.url {
                assert_eq!(crate::config::check_stream_url(url), Ok(()), "{}", preset.id);
            }
        }
        assert_eq!(PRESETS.last().map(|p| p.id), Some(CUSTOM));
    }

    #[test]
    fn saved_urls_map_back_to_their_preset() {
        assert_eq!(for_url("rtmp://live.twitch.tv/app").id, "twitch");
        assert_eq!(for_url("rtmp://127.0.0.1/live").id, CUSTOM);
        assert_eq!(by_id("facebook").and_then(|p| p.url), Some("rtmps://live-api-s.facebook.com:443/rtmp/"));
        assert_eq!(by_id("myspace"), None);
        assert_eq!(ids(), "youtube, youtube-rtmps, twitch, facebook, restream, custom");
    }
}
