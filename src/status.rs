//! What the box reports about itself: the JSON of `/api/status`, the systemd STATUS= line.

use std::sync::{Arc, Mutex};

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Status {
    /// `idle`, `connecting`, `streaming` or `reconnecting`.
    pub state: String,
    /// One human line, as systemd shows it.
    pub summary: String,
    pub version: String,
    pub uptime_s: u64,
    /// The running pipeline as a `gst-launch-1.0` line, keys masked.
    pub pipeline: Option<String>,
    /// Why the camera/encoder side last failed, if it did.
    pub source_error: Option<String>,
    /// Settings that were rejected (a kept-aside file, an ignored `AV_*` variable).
    pub config_problems: Vec<String>,
    pub destinations: Vec<DestinationStatus>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DestinationStatus {
    pub name: String,
    /// `disabled`, `waiting` (for the camera side), `connecting`, `live` or `backoff`.
    pub state: String,
    /// The location with the key masked.
    pub url: String,
    pub bytes_sent: u64,
    pub bitrate_kbps: u64,
    pub reconnects: u64,
    pub last_error: Option<String>,
    pub live_for_s: Option<u64>,
    pub retry_in_s: Option<f64>,
}

pub type SharedStatus = Arc<Mutex<Status>>;

/// The box's state from its destinations' states.
pub fn box_state(destinations: &[DestinationStatus], ever_live: bool) -> &'static str {
    let enabled = destinations.iter().filter(|d| d.state != "disabled").count();
    if enabled == 0 {
        "idle"
    } else if destinations.iter().any(|d| d.state == "live") {
        "streaming"
    } else if ever_live {
        "reconnecting"
    } else {
        "connecting"
    }
}

/// `streaming 1/2: youtube live, twitch backoff (connection refused)`.
pub fn summary(state: &str, destinations: &[DestinationStatus]) -> String {
    let enabled: Vec<&DestinationStatus> = destinations.iter().filter(|d| d.state != "disabled").collect();
    if enabled.is_empty() {
        return "idle: no destination is enabled".into();
    }
    let live = enabled.iter().filter(|d| d.state == "live").count();
    let each: Vec<String> = enabled
        .iter()
        .map(|d| match (&d.state[..], &d.last_error) {
            ("live", _) | (_, None) => format!("{} {}", d.name, d.state),
            (_, Some(e)) => format!("{} {} ({e})", d.name, d.state),
        })
        .collect();
    format!("{state} {live}/{}: {}", enabled.len(), each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(name: &str, state: &str, error: Option<&str>) -> DestinationStatus {
        DestinationStatus {
            name: name.into(),
            state: state.into(),
            last_error: error.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn state_follows_destinations() {
        assert_eq!(box_state(&[], false), "idle");
        assert_eq!(box_state(&[dest("a", "disabled", None)], true), "idle");
        assert_eq!(box_state(&[dest("a", "connecting", None)], false), "connecting");
        assert_eq!(box_state(&[dest("a", "backoff", None), dest("b", "live", None)], true), "streaming");
        assert_eq!(box_state(&[dest("a", "backoff", None)], true), "reconnecting");
    }

    #[test]
    fn summary_names_each_destination_and_its_trouble() {
        let d = [dest("yt", "live", None), dest("tw", "backoff", Some("refused")), dest("x", "disabled", None)];
        assert_eq!(summary("streaming", &d), "streaming 1/2: yt live, tw backoff (refused)");
        assert_eq!(summary("idle", &[]), "idle: no destination is enabled");
    }
}
