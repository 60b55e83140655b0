//! The service's settings: shipped defaults, overlaid by the user's file on the data
//! partition, overlaid by the 2018 prototype's `AV_*` environment variables.
//!
//! Parsing and validation are pure; `load` and `save` are the only I/O.

mod layer;
mod legacy_env;
mod load;
mod published;
mod toml_error;
mod values;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::secrets::Secret;

pub use layer::to_table;
pub use legacy_env::apply_legacy_env;
pub use load::{Loaded, load, save_change, user_config_path};
pub use published::{Files, SaveError, Settings};
pub use toml_error::is_secret_key;
pub use values::{
    AudioSource, EncoderChoice, RebootPolicy, UpdateSource, VideoSource, check_ssid, check_stream_url,
    check_wpa_passphrase, parse_encoder_params, rtmp_default_port, server_of,
};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub video: VideoConfig,
    pub audio: AudioConfig,
    pub destinations: Vec<Destination>,
    pub web: WebConfig,
    pub network: NetworkConfig,
    pub update: UpdateConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VideoConfig {
    pub source: VideoSource,
    pub encoder: EncoderChoice,
    pub width: u32,
    pub height: u32,
    pub framerate: u32,
    pub bitrate_kbps: u32,
    /// Follow the uplink: lower the bitrate while the network cannot carry it.
    pub adaptive: bool,
    /// How low `adaptive` may go.
    pub min_bitrate_kbps: u32,
    /// Extra `property=value` pairs for the H.264 encoder element (`AV_H264_ENCODER_PARAMS`).
    pub encoder_params: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioConfig {
    pub source: AudioSource,
    pub sample_rate: u32,
    pub bitrate_kbps: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub name: String,
    /// `rtmp://host[:port]/app` or `rtmps://…`; the key is appended as the last path segment.
    pub url: String,
    #[serde(default)]
    pub key: Secret,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    pub listen: SocketAddr,
    /// The device password of the LAN settings pages as an argon2id PHC string (never the
    /// password itself); empty until set in the portal.
    pub password_hash: Secret,
    /// The live preview's branch off the producer (`/api/preview.jpg`); off: no branch at all.
    pub preview: bool,
}

/// Getting the box online: NetworkManager, the "Wifi Connect" access point and the LED.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Off: the service leaves the network to others (hosts, tests, a box wired by hand).
    pub manage: bool,
    /// The Wi-Fi device to use; empty: the first one NetworkManager has.
    pub interface: String,
    pub ap_ssid: String,
    /// Empty: an open access point; else WPA2 with this passphrase (8–63 characters).
    pub ap_passphrase: Secret,
    /// 2.4 GHz channel of the access point, 1–13.
    pub ap_channel: u32,
    /// ISO 3166 country code for the radio's regulatory domain ("GB"); empty: the world domain.
    pub country: String,
    /// At start, how long saved networks (Wi-Fi or Ethernet) get before the access point opens.
    pub saved_wait_s: u32,
    /// How long one connection attempt from the portal may take.
    pub connect_timeout_s: u32,
    /// While the access point waits with no phone on it, saved networks are tried this often.
    pub retry_saved_every_s: u32,
    /// Online lost for this long (every saved network gone): back to the access point.
    pub lost_grace_s: u32,
    /// The status LED (a sysfs `leds` directory); empty: none.
    pub led: PathBuf,
}

/// Over-the-air updates: where they come from and when they may reboot the box.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateConfig {
    pub source: UpdateSource,
    /// hawkBit: the server's base URL (`https://hawkbit.example.org`), tenant and this
    /// box's controller id (empty: the host name).
    pub hawkbit_url: String,
    pub tenant: String,
    pub controller_id: String,
    /// hawkBit: the target's own token, or the tenant's gateway token (at most one).
    pub target_token: Secret,
    pub gateway_token: Secret,
    /// manifest: where the JSON manifest is (`https://…`).
    pub manifest_url: String,
    /// manifest: how often it is fetched (hawkBit says itself how often to ask).
    pub check_every_s: u32,
    /// How long a connection or any read from the server may take.
    pub timeout_s: u32,
    pub reboot: RebootPolicy,
    /// After the reboot into a new version: how long it gets to be healthy (ready,
    /// online, every enabled destination published) before it is marked bad.
    pub health_window_s: u32,
    /// The largest bundle the web accepts as an upload, in MiB.
    pub upload_limit_mb: u32,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            source: UpdateSource::None,
            hawkbit_url: String::new(),
            tenant: "DEFAULT".into(),
            controller_id: String::new(),
            target_token: Secret::default(),
            gateway_token: Secret::default(),
            manifest_url: String::new(),
            check_every_s: 3600,
            timeout_s: 30,
            reboot: RebootPolicy::WhenIdle,
            health_window_s: 300,
            upload_limit_mb: 1024,
        }
    }
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            source: VideoSource::Auto,
            encoder: EncoderChoice::Auto,
            width: 1280,
            height: 720,
            framerate: 30,
            bitrate_kbps: 2500,
            adaptive: true,
            min_bitrate_kbps: 300,
            encoder_params: String::new(),
        }
    }
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig { source: AudioSource::Auto, sample_rate: 48000, bitrate_kbps: 128 }
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig { listen: SocketAddr::from(([0, 0, 0, 0], 80)), password_hash: Secret::default(), preview: true }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            manage: true,
            interface: String::new(),
            ap_ssid: "Wifi Connect".into(),
            ap_passphrase: Secret::default(),
            ap_channel: 6,
            country: String::new(),
            saved_wait_s: 30,
            connect_timeout_s: 45,
            retry_saved_every_s: 300,
            lost_grace_s: 60,
            led: PathBuf::from("/sys/class/leds/ACT"),
        }
    }
}

/// The most destinations a box takes: each is a pipeline and a connection on one uplink.
pub const MAX_DESTINATIONS: usize = 16;

pub const SAMPLE_RATES: [u32; 6] = [16000, 22050, 24000, 32000, 44100, 48000];

impl Destination {
    /// Where `rtmp2sink` connects: the URL with the key as its last path segment.
    pub fn location(&self) -> Secret {
        if self.key.is_empty() {
            Secret::new(self.url.clone())
        } else {
            Secret::new(format!("{}/{}", self.url.trim_end_matches('/'), self.key.expose()))
        }
    }

    /// The location as it may be shown to people and logs.
    pub fn masked_location(&self) -> String {
        crate::secrets::mask_destination(&self.url, &self.key)
    }
}

impl Config {
    /// Every stream key in the settings, for scrubbing text that leaves the process.
    pub fn secrets(&self) -> Vec<Secret> {
        self.destinations.iter().map(|d| d.key.clone()).filter(|k| !k.is_empty()).collect()
    }

    /// Checks what the types cannot: ranges, URL schemes, unique names.
    /// Each problem names the key, the bad value and what is allowed.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let v = &self.video;
        check_range(&mut problems, "video.width", v.width, 16, 4096);
        check_range(&mut problems, "video.height", v.height, 16, 4096);
        for (key, value) in [("video.width", v.width), ("video.height", v.height)] {
            if value % 2 != 0 {
                problems.push(format!("{key} = {value}: must be even (H.264 uses 4:2:0 chroma)"));
            }
        }
        check_range(&mut problems, "video.framerate", v.framerate, 1, 120);
        check_range(&mut problems, "video.bitrate_kbps", v.bitrate_kbps, 100, 50_000);
        if !(100..=v.bitrate_kbps.max(100)).contains(&v.min_bitrate_kbps) {
            problems.push(format!(
                "video.min_bitrate_kbps = {}: must be between 100 and video.bitrate_kbps ({})",
                v.min_bitrate_kbps, v.bitrate_kbps
            ));
        }
        if let Err(e) = values::parse_encoder_params(&v.encoder_params) {
            problems.push(format!("video.encoder_params: {e}"));
        }
        let a = &self.audio;
        if !SAMPLE_RATES.contains(&a.sample_rate) {
            problems.push(format!(
                "audio.sample_rate = {}: must be one of {}",
                a.sample_rate,
                SAMPLE_RATES.map(|r| r.to_string()).join(", ")
            ));
        }
        check_range(&mut problems, "audio.bitrate_kbps", a.bitrate_kbps, 16, 512);
        if self.destinations.len() > MAX_DESTINATIONS {
            problems.push(format!(
                "destinations: {} are listed; a box streams to at most {MAX_DESTINATIONS} at once (each is a connection \
                 its uplink must carry)",
                self.destinations.len()
            ));
        }
        for (i, d) in self.destinations.iter().enumerate() {
            let at = format!("destinations[{i}]");
            if d.name.trim().is_empty() {
                problems.push(format!("{at}.name is empty: give each destination a name"));
            } else if self.destinations[..i].iter().any(|o| o.name == d.name) {
                problems.push(format!("{at}.name = {:?}: used twice; names must be unique", d.name));
            }
            if let Err(e) = values::check_stream_url(&d.url) {
                problems.push(format!("{at}.url = {:?}: {e}", crate::secrets::mask_pasted_key(&d.url)));
            }
            if d.key.expose().chars().any(char::is_whitespace) {
                problems.push(format!("{at}.key contains white space: paste the key without spaces"));
            }
        }
        let n = &self.network;
        if let Err(e) = values::check_ssid(&n.ap_ssid) {
            problems.push(format!("network.ap_ssid: {e}"));
        }
        if !n.ap_passphrase.is_empty()
            && let Err(e) = values::check_wpa_passphrase(&n.ap_passphrase)
        {
            problems.push(format!("network.ap_passphrase: {e}"));
        }
        check_range(&mut problems, "network.ap_channel", n.ap_channel, 1, 13);
        let two_capitals = n.country.len() == 2 && n.country.bytes().all(|b| b.is_ascii_uppercase());
        if !(n.country.is_empty() || two_capitals) {
            problems.push(format!(
                "network.country = {:?}: must be a two-letter ISO 3166 code in capitals (as in \"GB\") or empty",
                n.country
            ));
        }
        check_range(&mut problems, "network.saved_wait_s", n.saved_wait_s, 5, 600);
        check_range(&mut problems, "network.connect_timeout_s", n.connect_timeout_s, 10, 300);
        check_range(&mut problems, "network.retry_saved_every_s", n.retry_saved_every_s, 30, 86_400);
        check_range(&mut problems, "network.lost_grace_s", n.lost_grace_s, 5, 3600);
        problems.extend(self.update.problems());
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

impl UpdateConfig {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        check_range(&mut problems, "update.check_every_s", self.check_every_s, 60, 7 * 86_400);
        check_range(&mut problems, "update.health_window_s", self.health_window_s, 30, 3600);
        check_range(&mut problems, "update.timeout_s", self.timeout_s, 1, 600);
        check_range(&mut problems, "update.upload_limit_mb", self.upload_limit_mb, 16, 16_384);
        if let Err(e) = values::check_server_url(&self.hawkbit_url, &["https", "http"]) {
            problems.push(format!("update.hawkbit_url: {e}"));
        }
        if let Err(e) = values::check_server_url(&self.manifest_url, &["https"]) {
            problems.push(format!("update.manifest_url: {e}"));
        }
        let word = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if self.tenant.is_empty() || !word(&self.tenant) {
            problems.push(format!(
                "update.tenant = {:?}: must be letters, digits, - _ or . (hawkBit's default is \"DEFAULT\")",
                self.tenant
            ));
        }
        if !word(&self.controller_id) || self.controller_id.len() > 64 {
            problems.push(format!(
                "update.controller_id = {:?}: must be up to 64 letters, digits, - _ or . (empty: the host name)",
                self.controller_id
            ));
        }
        if !self.target_token.is_empty() && !self.gateway_token.is_empty() {
            problems.push("update.target_token and update.gateway_token are both set: give one of them".into());
        }
        match self.source {
            UpdateSource::Hawkbit if self.hawkbit_url.is_empty() => {
                problems.push("update.source = \"hawkbit\" needs update.hawkbit_url".into());
            }
            UpdateSource::Manifest if self.manifest_url.is_empty() => {
                problems.push("update.source = \"manifest\" needs update.manifest_url".into());
            }
            _ => {}
        }
        problems
    }
}

fn check_range(problems: &mut Vec<String>, key: &str, value: u32, min: u32, max: u32) {
    if !(min..=max).contains(&value) {
        problems.push(format!("{key} = {value}: must be between {min} and {max}"));
    }
}

/// The settings in force, as `check-config` prints them, keys masked.
pub fn explain(config: &Config) -> String {
    let v = &config.video;
    let a = &config.audio;
    let mut lines = vec![
        format!(
            "video: source {}, encoder {}, {}x{} at {} fps, {} kbps ({}){}",
            v.source,
            v.encoder,
            v.width,
            v.height,
            v.framerate,
            v.bitrate_kbps,
            if v.adaptive {
                format!("adaptive, down to {} kbps on a weak uplink", v.min_bitrate_kbps)
            } else {
                "fixed".to_string()
            },
            if v.encoder_params.is_empty() {
                String::new()
            } else {
                format!(", encoder params {:?}", v.encoder_params)
            }
        ),
        format!("audio: source {}, {} Hz, {} kbps AAC", a.source, a.sample_rate, a.bitrate_kbps),
    ];
    if config.destinations.is_empty() {
        lines.push("destinations: none (nothing will be streamed)".into());
    }
    for d in &config.destinations {
        let state = if d.enabled { "enabled" } else { "disabled" };
        lines.push(format!("destination {:?}: {} ({state})", d.name, d.masked_location()));
    }
    let preview = if config.web.preview { "on" } else { "off" };
    lines.push(format!("web: listening on {}, live preview {preview}", config.web.listen));
    let n = &config.network;
    lines.push(if n.manage {
        format!(
            "network: managed; access point {:?} ({}) on channel {}",
            n.ap_ssid,
            if n.ap_passphrase.is_empty() { "open" } else { "WPA2" },
            n.ap_channel
        )
    } else {
        "network: left to others (network.manage = false)".into()
    });
    let u = &config.update;
    lines.push(
        match u.source {
            UpdateSource::None => "updates: from files only (update.source = \"none\")".to_string(),
            UpdateSource::Hawkbit => format!("updates: hawkBit {} (tenant {})", u.hawkbit_url, u.tenant),
            UpdateSource::Manifest => format!("updates: manifest {}, every {} s", u.manifest_url, u.check_every_s),
        } + &format!("; reboot {}, health window {} s", u.reboot, u.health_window_s),
    );
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(url: &str, key: &str) -> Destination {
        Destination { name: "d".into(), url: url.into(), key: Secret::new(key), enabled: true }
    }

    #[test]
    fn a_box_streams_to_at_most_sixteen_destinations() {
        let destinations = (0..MAX_DESTINATIONS)
            .map(|n| Destination { name: format!("d{n}"), ..destination("rtmp://a/live", "k") })
            .collect();
        let mut config = Config { destinations, ..Config::default() };
        assert_eq!(config.validate(), Ok(()));
        config.destinations.push(Destination { name: "one more".into(), ..destination("rtmp://a/live", "k") });
        let problems = config.validate().unwrap_err();
        assert!(problems[0].starts_with("destinations: 17 are listed; a box streams to at most 16"), "{problems:?}");
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn location_joins_url_and_key() {
        assert_eq!(destination("rtmp://h/live/", "abc").location().expose(), "rtmp://h/live/abc");
        assert_eq!(destination("rtmp://h/live", "").location().expose(), "rtmp://h/live");
        assert_eq!(destination("rtmp://h/live", "abc").masked_location(), "rtmp://h/live/****");
    }

    #[test]
    fn validation_names_key_value_and_allowed() {
        let mut c = Config::default();
        c.video.width = 99999;
        c.video.height = 721;
        c.audio.sample_rate = 12345;
        c.destinations = vec![destination("http://x/live", "secret"), destination("rtmp://h/a", "")];
        let problems = c.validate().unwrap_err();
        let all = problems.join("\n");
        assert!(all.contains("video.width = 99999: must be between 16 and 4096"), "{all}");
        assert!(all.contains("video.height = 721: must be even"), "{all}");
        assert!(all.contains("audio.sample_rate = 12345: must be one of 16000"), "{all}");
        assert!(all.contains("destinations[0].url"), "{all}");
        assert!(all.contains("rtmp:// or rtmps://"), "{all}");
        assert!(all.contains("destinations[1].name = \"d\": used twice"), "{all}");
        assert!(!all.contains("secret"), "{all}");
    }

    #[test]
    fn update_settings_say_what_is_allowed() {
        let mut c = Config::default();
        c.update.source = UpdateSource::Manifest;
        c.update.manifest_url = "http://example.org/m.json".into();
        c.update.hawkbit_url = "https://user:pw@hawkbit.example.org".into();
        c.update.target_token = Secret::new("t0ken-1");
        c.update.gateway_token = Secret::new("g4te-1");
        c.update.health_window_s = 5;
        let all = c.validate().unwrap_err().join("\n");
        assert!(all.contains("update.manifest_url: \"http://example.org/m.json\": only https:// is allowed"), "{all}");
        assert!(all.contains("update.hawkbit_url: the URL holds a user name or password"), "{all}");
        assert!(all.contains("update.target_token and update.gateway_token are both set"), "{all}");
        assert!(all.contains("update.health_window_s = 5: must be between 30 and 3600"), "{all}");
        assert!(!all.contains("t0ken") && !all.contains("g4te") && !all.contains(":pw@"), "{all}");
        c.update = UpdateConfig { source: UpdateSource::Hawkbit, ..UpdateConfig::default() };
        assert_eq!(c.validate().unwrap_err(), ["update.source = \"hawkbit\" needs update.hawkbit_url"]);
        assert_eq!(
            "weekly".parse::<RebootPolicy>().unwrap_err(),
            "\"weekly\" is not a reboot policy; allowed: when-idle, now, never"
        );
    }
}
