//! The 2018 prototype was configured with `AV_*` environment variables; people still
//! have them in their notes, so they keep working as the top layer of settings.
//!
//! A variable that does not parse, or that would make the settings invalid, is reported
//! and skipped: one typo must not stop the box from streaming.

use super::{AudioSource, Config, Destination};
use crate::secrets::Secret;

/// Applies each `AV_*` variable `get` returns; returns the result and one problem per
/// rejected variable.
pub fn apply_legacy_env(base: &Config, get: impl Fn(&str) -> Option<String>) -> (Config, Vec<String>) {
    let mut config = base.clone();
    let mut problems = Vec::new();
    let value = |name: &str| get(name).filter(|v| !v.trim().is_empty()).map(|v| v.trim().to_string());

    let mut apply = |name: &str, change: &dyn Fn(&mut Config, &str) -> Result<(), String>| {
        let Some(raw) = value(name) else { return };
        let mut candidate = config.clone();
        let shown = match name {
            "AV_STREAM_KEY" => crate::secrets::MASK.to_string(),
            "AV_STREAM_URL" => crate::secrets::mask_pasted_key(&raw),
            _ => raw.clone(),
        };
        let outcome = change(&mut candidate, &raw).and_then(|()| {
            candidate.validate().or_else(|new| {
                let old = config.validate().err().unwrap_or_default();
                let introduced: Vec<String> = new.into_iter().filter(|p| !old.contains(p)).collect();
                if introduced.is_empty() { Ok(()) } else { Err(introduced.join("; ")) }
            })
        });
        match outcome {
            Ok(()) => config = candidate,
            Err(why) => problems.push(format!("{name}={shown:?} ignored: {why}")),
        }
    };

    apply("AV_VIDEO_SOURCE", &|c, v| {
        c.video.source = v.parse()?;
        Ok(())
    });
    for (name, field, what) in NUMBERS {
        apply(name, &|c, v| {
            *field(c) = v.parse().map_err(|_| format!("not a whole number; expected {what}"))?;
            Ok(())
        });
    }
    apply("AV_H264_ENCODER_PARAMS", &|c, v| {
        c.video.encoder_params = v.to_string();
        Ok(())
    });
    apply("AV_AUDIO_DEVICE", &|c, v| {
        // The prototype took a bare ALSA card number.
        c.audio.source =
            if v.chars().all(|ch| ch.is_ascii_digit()) { AudioSource::Alsa(format!("hw:{v}")) } else { v.parse()? };
        Ok(())
    });
    apply("AV_DISABLE_AUDIO", &|c, v| {
        if flag(v)? {
            c.audio.source = AudioSource::None;
        }
        Ok(())
    });
    apply("AV_STREAM_URL", &|c, v| {
        c.destinations =
            vec![Destination { name: "stream".into(), url: v.into(), key: Secret::default(), enabled: true }];
        Ok(())
    });
    apply("AV_STREAM_KEY", &|c, v| match c.destinations.as_mut_slice() {
        [only] if only.name == "stream" => {
            only.key = Secret::new(v);
            Ok(())
        }
        _ => Err("AV_STREAM_KEY needs AV_STREAM_URL to be set too".into()),
    });
    (config, problems)
}

type NumberField = fn(&mut Config) -> &mut u32;

/// The numeric variables: name, the setting, and what a good value looks like.
const NUMBERS: [(&str, NumberField, &str); 5] = [
    ("AV_VIDEO_WIDTH", |c| &mut c.video.width, "pixels, e.g. 1280"),
    ("AV_VIDEO_HEIGHT", |c| &mut c.video.height, "pixels, e.g. 720"),
    ("AV_VIDEO_FRAMERATE", |c| &mut c.video.framerate, "frames per second, e.g. 30"),
    ("AV_AUDIO_SAMPLING_RATE", |c| &mut c.audio.sample_rate, "Hz, e.g. 48000"),
    ("AV_AUDIO_BITRATE", |c| &mut c.audio.bitrate_kbps, "kbps, e.g. 128"),
];

fn flag(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected 1 or 0 (or true/false)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VideoSource;
    use std::collections::HashMap;

    fn apply(vars: &[(&str, &str)]) -> (Config, Vec<String>) {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        apply_legacy_env(&Config::default(), |k| vars.get(k).cloned())
    }

    #[test]
    fn prototype_variables_map_onto_settings() {
        let (c, problems) = apply(&[
            ("AV_STREAM_URL", "rtmp://example.org/live"),
            ("AV_STREAM_KEY", "sekrit"),
            ("AV_AUDIO_DEVICE", "1"),
            ("AV_AUDIO_SAMPLING_RATE", "16000"),
            ("AV_AUDIO_BITRATE", "96"),
            ("AV_VIDEO_SOURCE", "/dev/video1"),
            ("AV_VIDEO_WIDTH", "640"),
            ("AV_VIDEO_HEIGHT", "360"),
            ("AV_VIDEO_FRAMERATE", "25"),
            ("AV_H264_ENCODER_PARAMS", "threads=2"),
        ]);
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(c.destinations[0].location().expose(), "rtmp://example.org/live/sekrit");
        assert_eq!(c.audio.source, AudioSource::Alsa("hw:1".into()));
        assert_eq!((c.audio.sample_rate, c.audio.bitrate_kbps), (16000, 96));
        assert_eq!(c.video.source, VideoSource::Device("/dev/video1".into()));
        assert_eq!((c.video.width, c.video.height, c.video.framerate), (640, 360, 25));
        assert_eq!(c.video.encoder_params, "threads=2");
    }

    #[test]
    fn disable_audio_still_sends_silence() {
        assert_eq!(apply(&[("AV_DISABLE_AUDIO", "1")]).0.audio.source, AudioSource::None);
        assert_eq!(apply(&[("AV_DISABLE_AUDIO", "0")]).0.audio.source, AudioSource::Auto);
    }

    #[test]
    fn bad_values_are_reported_and_skipped() {
        let (c, problems) = apply(&[
            ("AV_VIDEO_WIDTH", "wide"),
            ("AV_VIDEO_HEIGHT", "100000"),
            ("AV_DISABLE_AUDIO", "maybe"),
            ("AV_STREAM_URL", "http://example.org/live"),
            ("AV_STREAM_KEY", "sekrit"),
        ]);
        assert_eq!(c, Config::default());
        let all = problems.join("\n");
        assert!(all.contains("AV_VIDEO_WIDTH=\"wide\" ignored: not a whole number; expected pixels"), "{all}");
        assert!(all.contains("AV_VIDEO_HEIGHT=\"100000\" ignored: video.height = 100000: must be between"), "{all}");
        assert!(all.contains("AV_DISABLE_AUDIO=\"maybe\" ignored: expected 1 or 0"), "{all}");
        assert!(all.contains("AV_STREAM_URL=\"http://example.org/live\" ignored"), "{all}");
        assert!(all.contains("AV_STREAM_KEY=\"****\" ignored: AV_STREAM_KEY needs AV_STREAM_URL"), "{all}");
        assert!(!all.contains("sekrit"), "{all}");
    }

    #[test]
    fn empty_variables_count_as_unset() {
        assert_eq!(apply(&[("AV_VIDEO_WIDTH", ""), ("AV_STREAM_URL", " ")]), (Config::default(), vec![]));
    }
}
