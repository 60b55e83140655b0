//! The settings that are words rather than numbers, parsed from one string so that
//! TOML, `AV_*` variables and the web form share one spelling and one error message.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::secrets::Secret;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum VideoSource {
    Auto,
    Test,
    Libcamera,
    Device(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EncoderChoice {
    Auto,
    /// The camera's own H.264 (legacy Pi camera stack, UVC H.264 webcams).
    Camera,
    /// The Pi's hardware encoder through `v4l2h264enc`.
    V4l2,
    /// Software `x264enc`: for hosts and tests.
    X264,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AudioSource {
    Auto,
    Test,
    /// No microphone: a silent track is still sent, as some services end video-only streams.
    None,
    Alsa(String),
}

impl FromStr for VideoSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(VideoSource::Auto),
            "test" => Ok(VideoSource::Test),
            "libcamera" => Ok(VideoSource::Libcamera),
            _ if is_video_device_path(s) => Ok(VideoSource::Device(PathBuf::from(s))),
            _ => Err(format!(
                "{s:?} is not a video source; allowed: auto, test, libcamera or a device such as /dev/video0"
            )),
        }
    }
}

fn is_video_device_path(s: &str) -> bool {
    s.strip_prefix("/dev/").is_some_and(|rest| {
        !rest.is_empty() && !rest.contains("..") && rest.chars().all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c))
    })
}

impl FromStr for EncoderChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(EncoderChoice::Auto),
            "camera" => Ok(EncoderChoice::Camera),
            "v4l2" => Ok(EncoderChoice::V4l2),
            "x264" => Ok(EncoderChoice::X264),
            _ => Err(format!("{s:?} is not an encoder; allowed: auto, camera, v4l2, x264")),
        }
    }
}

impl FromStr for AudioSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(AudioSource::Auto),
            "test" => Ok(AudioSource::Test),
            "none" => Ok(AudioSource::None),
            _ if is_alsa_device(s) => Ok(AudioSource::Alsa(s.to_string())),
            _ => Err(format!(
                "{s:?} is not an audio source; allowed: auto, test, none or an ALSA device such as hw:1 or hw:1,0"
            )),
        }
    }
}

/// ALSA PCM names as `arecord -L` prints them: `hw:1`, `plughw:CARD=Device,DEV=0`, `default`.
fn is_alsa_device(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || ":,=_-.".contains(c))
}

impl fmt::Display for VideoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoSource::Auto => f.write_str("auto"),
            VideoSource::Test => f.write_str("test"),
            VideoSource::Libcamera => f.write_str("libcamera"),
            VideoSource::Device(p) => write!(f, "{}", p.display()),
        }
    }
}

impl fmt::Display for EncoderChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncoderChoice::Auto => "auto",
            EncoderChoice::Camera => "camera",
            EncoderChoice::V4l2 => "v4l2",
            EncoderChoice::X264 => "x264",
        })
    }
}

impl fmt::Display for AudioSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioSource::Auto => f.write_str("auto"),
            AudioSource::Test => f.write_str("test"),
            AudioSource::None => f.write_str("none"),
            AudioSource::Alsa(d) => f.write_str(d),
        }
    }
}

macro_rules! string_conversions {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                s.parse()
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.to_string()
            }
        }
    )*};
}
string_conversions!(VideoSource, EncoderChoice, AudioSource, UpdateSource, RebootPolicy);

/// Where the box looks for updates on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum UpdateSource {
    /// Nowhere: only `makespacelive update install` (and the web upload).
    None,
    /// A hawkBit server's DDI API (a fleet).
    Hawkbit,
    /// A JSON manifest over HTTPS (a single box).
    Manifest,
}

/// When an installed update may reboot the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RebootPolicy {
    /// Once no destination is live (never in the middle of a stream).
    WhenIdle,
    /// At once, live or not.
    Now,
    /// Only when a person says so.
    Never,
}

/// `FromStr` and `Display` for enums spelled as one word each.
macro_rules! words {
    ($t:ty, $what:literal, $($variant:ident = $word:literal),*) => {
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($word => Ok(<$t>::$variant),)*
                    _ => Err(format!(concat!("{:?} is not ", $what, "; allowed: ", words!(@list $($word),*)), s)),
                }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(<$t>::$variant => $word,)* })
            }
        }
    };
    (@list $first:literal $(, $rest:literal)*) => { concat!($first $(, ", ", $rest)*) };
}
words!(UpdateSource, "an update source", None = "none", Hawkbit = "hawkbit", Manifest = "manifest");
words!(RebootPolicy, "a reboot policy", WhenIdle = "when-idle", Now = "now", Never = "never");

/// The schemes a destination may use, with the port each connects to when the URL names
/// none (the url crate knows the defaults of the web's schemes only).
pub fn rtmp_default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "rtmp" => Some(1935),
        "rtmps" => Some(443),
        _ => None,
    }
}

/// The server a URL reaches, `scheme://host:port` (the scheme's default port written
/// out): a saved key or token belongs to it, and is never sent to another.
pub fn server_of(url: &str) -> Option<String> {
    let parsed = Url::parse(url.trim()).ok()?;
    let port = parsed.port_or_known_default().or_else(|| rtmp_default_port(parsed.scheme()))?;
    Some(format!("{}://{}:{port}", parsed.scheme(), parsed.host_str()?.to_ascii_lowercase()))
}

/// An update server's URL: empty (none), or one of `schemes` with a host and nothing a
/// person would not mean (no user or password in it: tokens have their own settings).
pub fn check_server_url(url: &str, schemes: &[&str]) -> Result<(), String> {
    if url.is_empty() {
        return Ok(());
    }
    let allowed = schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(" or ");
    let parsed = Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e}); expected {allowed}host[:port]/…"))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(format!("{url:?}: only {allowed} is allowed"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} names no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the URL holds a user name or password; put a token in its own setting".into());
    }
    Ok(())
}

/// Accepts `rtmp://host[:port]/app…` and `rtmps://…`; says what is wrong otherwise.
pub fn check_stream_url(url: &str) -> Result<(), String> {
    const EXPECTED_URL: &str = "expected rtmp://host[:port]/app or rtmps://host[:port]/app";
    const BAD_PORT: &str = "the port is not a number from 1 to 65535";
    let parsed = Url::parse(url).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => format!("not a URL; {EXPECTED_URL}"),
        url::ParseError::InvalidPort => BAD_PORT.to_string(),
        // The host's faults: empty, a character a host cannot hold, a malformed IP address.
        other => format!("the host is malformed ({other}); {EXPECTED_URL}"),
    })?;
    if !parsed.has_authority() {
        return Err(format!("not a URL; {EXPECTED_URL}"));
    }
    if rtmp_default_port(parsed.scheme()).is_none() {
        return Err(format!("scheme {}:// is not supported; only rtmp:// or rtmps://", parsed.scheme()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("the host name is missing; {EXPECTED_URL}"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("a user name or password in the URL is not supported; the stream key goes in key".into());
    }
    if parsed.port() == Some(0) {
        return Err(BAD_PORT.into());
    }
    if parsed.path().trim_matches('/').is_empty() {
        return Err("the application path is missing (as in rtmp://host/live)".into());
    }
    Ok(())
}

/// A Wi-Fi network name: 1 to 32 bytes (802.11 counts bytes, not characters).
pub fn check_ssid(ssid: &str) -> Result<(), String> {
    match ssid.len() {
        0 => Err("the network name is empty".into()),
        1..=32 => Ok(()),
        n => Err(format!("the network name is {n} bytes long; Wi-Fi allows at most 32")),
    }
}

/// A WPA2/WPA3 passphrase: 8 to 63 printable ASCII characters, or 64 hexadecimal digits
/// (the raw key). The error never repeats the passphrase.
pub fn check_wpa_passphrase(passphrase: &Secret) -> Result<(), String> {
    let p = passphrase.expose();
    let printable = p.bytes().all(|b| (0x20..=0x7e).contains(&b));
    match p.len() {
        64 if p.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        64 => {
            Err("a 64-character password must be hexadecimal digits (a raw key); a passphrase has 8 to 63 characters"
                .into())
        }
        8..=63 if printable => Ok(()),
        8..=63 => {
            Err("the password may hold only printable ASCII characters (letters, digits, punctuation, spaces)".into())
        }
        n => Err(format!("the password has {n} characters; Wi-Fi passwords have 8 to 63")),
    }
}

/// `AV_H264_ENCODER_PARAMS`-style `name=value name=value` pairs for the encoder element.
pub fn parse_encoder_params(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some((name, value))
                if !name.is_empty()
                    && !value.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                Ok((name.to_string(), value.to_string()))
            }
            _ => Err(format!("{pair:?} is not property=value (as in \"b-adapt=false threads=2\")")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_sources() {
        assert_eq!("auto".parse(), Ok(VideoSource::Auto));
        assert_eq!("/dev/video2".parse(), Ok(VideoSource::Device("/dev/video2".into())));
        let err = "cam".parse::<VideoSource>().unwrap_err();
        assert!(err.contains("allowed: auto, test, libcamera"), "{err}");
        assert!("/dev/../etc/passwd".parse::<VideoSource>().is_err());
    }

    #[test]
    fn audio_sources() {
        assert_eq!("hw:1,0".parse(), Ok(AudioSource::Alsa("hw:1,0".into())));
        assert_eq!("plughw:CARD=Device,DEV=0".parse(), Ok(AudioSource::Alsa("plughw:CARD=Device,DEV=0".into())));
        assert!("hw 1".parse::<AudioSource>().unwrap_err().contains("such as hw:1"));
    }

    #[test]
    fn round_trips_through_strings() {
        for s in ["auto", "test", "libcamera", "/dev/video0"] {
            assert_eq!(String::from(s.parse::<VideoSource>().unwrap()), s);
        }
        for s in ["auto", "camera", "v4l2", "x264"] {
            assert_eq!(String::from(s.parse::<EncoderChoice>().unwrap()), s);
        }
    }

    #[test]
    fn stream_urls() {
        assert_eq!(check_stream_url("rtmp://a.rtmp.youtube.com/live2"), Ok(()));
        assert_eq!(check_stream_url("rtmps://live-api-s.facebook.com:443/rtmp/"), Ok(()));
        assert_eq!(check_stream_url("rtmp://127.0.0.1:1935/live"), Ok(()));
        assert_eq!(check_stream_url("rtmp://[::1]:1935/live"), Ok(()));
        assert!(check_stream_url("http://x/live").unwrap_err().contains("only rtmp:// or rtmps://"));
        assert!(check_stream_url("rtmp://x:99999/live").unwrap_err().contains("port"));
        assert!(check_stream_url("rtmp://host").unwrap_err().contains("application path"));
        assert!(check_stream_url("rtmp:///live").unwrap_err().contains("host"));
        assert!(check_stream_url("youtube").unwrap_err().contains("not a URL"));
        assert!(check_stream_url("localhost:1935/live").unwrap_err().contains("not a URL"));
        assert!(check_stream_url("rtmp://x:0/live").unwrap_err().contains("port"));
        assert!(check_stream_url("rtmp://[::1/live").unwrap_err().contains("host is malformed (invalid IPv6"));
        assert!(check_stream_url("rtmp://my host/live").unwrap_err().contains("host is malformed"));
        let err = check_stream_url("rtmp://user:pa55@host/live").unwrap_err();
        assert!(err.contains("user name or password") && !err.contains("pa55"), "{err}");
    }

    #[test]
    fn ssids_count_bytes() {
        assert_eq!(check_ssid("Venue"), Ok(()));
        assert_eq!(check_ssid(&"é".repeat(16)), Ok(()));
        assert!(check_ssid(&"é".repeat(17)).unwrap_err().contains("34 bytes long; Wi-Fi allows at most 32"));
        assert!(check_ssid("").unwrap_err().contains("empty"));
    }

    #[test]
    fn wpa_passphrases() {
        let check = |p: &str| check_wpa_passphrase(&Secret::new(p));
        assert_eq!(check("12345678"), Ok(()));
        assert_eq!(check(&"a".repeat(63)), Ok(()));
        assert_eq!(check(&"0f".repeat(32)), Ok(()));
        assert!(check("short").unwrap_err().contains("has 5 characters; Wi-Fi passwords have 8 to 63"));
        assert!(check(&"g".repeat(64)).unwrap_err().contains("hexadecimal"));
        let err = check("pässwörd1").unwrap_err();
        assert!(err.contains("printable ASCII") && !err.contains("pässwörd1"), "{err}");
    }

    #[test]
    fn encoder_params() {
        assert_eq!(
            parse_encoder_params(" threads=2  b-adapt=false"),
            Ok(vec![("threads".into(), "2".into()), ("b-adapt".into(), "false".into())])
        );
        assert!(parse_encoder_params("threads").unwrap_err().contains("property=value"));
        assert_eq!(parse_encoder_params(""), Ok(vec![]));
    }
}
