//! What the box reports about itself: the JSON of `/api/status`, the systemd STATUS= line.

use serde::Serialize;

use crate::media::SourceError;
use crate::network::NetworkStatus;
use crate::state::Reader;

/// The box's streaming state; `as_str` is how `/api/status` spells it.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(into = "&'static str")]
pub enum BoxState {
    /// No destination is enabled.
    #[default]
    Idle,
    /// Not live yet since the start.
    Connecting,
    /// At least one destination is live.
    Streaming,
    /// Was live, no destination is now.
    Reconnecting,
}

/// One destination's state; `as_str` is how `/api/status` spells it.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(into = "&'static str")]
pub enum DestinationState {
    Disabled,
    /// For the camera/encoder side to run.
    #[default]
    Waiting,
    Connecting,
    Live,
    /// Waiting out a retry delay after a failure.
    Backoff,
}

impl BoxState {
    pub fn as_str(self) -> &'static str {
        match self {
            BoxState::Idle => "idle",
            BoxState::Connecting => "connecting",
            BoxState::Streaming => "streaming",
            BoxState::Reconnecting => "reconnecting",
        }
    }
}

impl DestinationState {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationState::Disabled => "disabled",
            DestinationState::Waiting => "waiting",
            DestinationState::Connecting => "connecting",
            DestinationState::Live => "live",
            DestinationState::Backoff => "backoff",
        }
    }
}

impl UpdateState {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Idle => "idle",
            UpdateState::Checking => "checking",
            UpdateState::Downloading => "downloading",
            UpdateState::Installing => "installing",
            UpdateState::Installed => "installed",
            UpdateState::Rebooting => "rebooting",
            UpdateState::Verifying => "verifying",
            UpdateState::Failed => "failed",
        }
    }
}

impl From<UpdateState> for &'static str {
    fn from(state: UpdateState) -> Self {
        state.as_str()
    }
}

impl From<BoxState> for &'static str {
    fn from(state: BoxState) -> Self {
        state.as_str()
    }
}

impl From<DestinationState> for &'static str {
    fn from(state: DestinationState) -> Self {
        state.as_str()
    }
}

/// What `/api/status` shows: the three published parts put together by [`compose`].
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Status {
    pub state: BoxState,
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
    pub network: crate::network::NetworkStatus,
    /// The supervisor has run its first turn and told systemd READY=1.
    pub ready: bool,
    pub update: UpdateStatus,
    /// The video bitrate the encoder runs at now (kbit/s).
    pub video_kbps: u32,
    /// The bitrate is cut to less than half of `video.bitrate_kbps` by a weak uplink.
    pub weak_network: bool,
}

/// The supervisor's part of the status (it holds the only writer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStatus {
    pub state: BoxState,
    pub uptime_s: u64,
    pub pipeline: Option<String>,
    pub source_error: Option<SourceError>,
    pub config_problems: Vec<String>,
    pub destinations: Vec<DestinationStatus>,
    /// False until the supervisor's first turn (which tells systemd READY=1).
    pub ready: bool,
    /// The encoder's bitrate now, and the one set (`video.bitrate_kbps`), in kbit/s.
    pub video_kbps: u32,
    pub configured_kbps: u32,
}

impl StreamStatus {
    /// A weak uplink holds the bitrate under half of the one set.
    pub fn weak_network(&self) -> bool {
        self.video_kbps < self.configured_kbps / 2
    }
}

/// The readers of the three parts, as the LAN pages hold them.
#[derive(Clone)]
pub struct Board {
    pub stream: Reader<StreamStatus>,
    pub network: Reader<NetworkStatus>,
    pub update: Reader<UpdateStatus>,
}

impl Board {
    pub fn now(&self) -> Status {
        compose(&self.stream.get(), &self.network.get(), &self.update.get())
    }
}

/// The status of the box from its parts; the summary says what the parts say together
/// (streaming waits for a network; a weak uplink; an update under way).
pub fn compose(stream: &StreamStatus, network: &NetworkStatus, update: &UpdateStatus) -> Status {
    let mut line = summary(stream.state, &stream.destinations);
    if !network.mode.carries_streams() && stream.state != BoxState::Idle {
        line = format!("waiting for a network ({}): {line}", network.mode.as_str());
    }
    let weak_network = stream.weak_network();
    if weak_network {
        line = format!("{line}; weak network: video at {} of {} kbit/s", stream.video_kbps, stream.configured_kbps);
    }
    if let (state, Some(message)) = (update.state, &update.message)
        && state != UpdateState::Idle
    {
        line = format!("{line}; update: {message}");
    }
    Status {
        state: stream.state,
        summary: line,
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_s: stream.uptime_s,
        pipeline: stream.pipeline.clone(),
        source_error: stream.source_error.as_ref().map(ToString::to_string),
        config_problems: stream.config_problems.clone(),
        destinations: stream.destinations.clone(),
        network: network.clone(),
        ready: stream.ready,
        update: update.clone(),
        video_kbps: stream.video_kbps,
        weak_network,
    }
}

/// Over-the-air updates: the firmware running, what is going on, what happened last.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct UpdateStatus {
    pub state: UpdateState,
    /// The firmware version running and the slot it booted from.
    pub version: Option<String>,
    pub slot: Option<String>,
    /// Of the download or the install under way, 0–100.
    pub progress: Option<u8>,
    /// One sentence on what is going on or what went wrong.
    pub message: Option<String>,
    /// Where updates come from ("hawkBit https://…", "manifest https://…", "files only").
    pub source: String,
    /// Unix time of the last look at the update server.
    pub last_check: Option<u64>,
    /// What happened to the last update, in words.
    pub last: Option<crate::update::record::Last>,
    /// A change that takes effect only after a reboot (an update installed, the boot
    /// configuration edited).
    pub reboot_needed: Option<String>,
}

/// `as_str` is how `/api/status` spells it.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(into = "&'static str")]
pub enum UpdateState {
    /// Nothing under way (also: updates are off, or RAUC is not there: see `message`).
    #[default]
    Idle,
    Checking,
    Downloading,
    Installing,
    /// Installed into the other slot; waiting to reboot into it.
    Installed,
    Rebooting,
    /// Running a new version that has not yet passed its health check.
    Verifying,
    /// The last step failed; the running system is untouched (see `message`).
    Failed,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DestinationStatus {
    pub name: String,
    pub state: DestinationState,
    /// The location with the key masked.
    pub url: String,
    pub bytes_sent: u64,
    pub bitrate_kbps: u64,
    pub reconnects: u64,
    pub last_error: Option<String>,
    pub live_for_s: Option<u64>,
    pub retry_in_s: Option<f64>,
    /// What the server acknowledged over the last seconds (kbit/s): the uplink it gets.
    pub uplink_kbps: u64,
    /// The video bitrate this destination's link can take now (`video.adaptive`).
    pub target_kbps: u32,
    /// Seconds of delay waiting for it (queued and in the socket, not yet acknowledged).
    pub backlog_s: f64,
    /// Whole GOPs it did not get because its backlog passed the limit.
    pub gops_dropped: u64,
    /// Congested even at `video.min_bitrate_kbps`: the encoder does not follow it down.
    pub too_slow: bool,
}

/// The box's state from its destinations' states.
pub fn box_state(destinations: &[DestinationStatus], ever_live: bool) -> BoxState {
    let enabled = destinations.iter().filter(|d| d.state != DestinationState::Disabled).count();
    if enabled == 0 {
        BoxState::Idle
    } else if destinations.iter().any(|d| d.state == DestinationState::Live) {
        BoxState::Streaming
    } else if ever_live {
        BoxState::Reconnecting
    } else {
        BoxState::Connecting
    }
}

/// `streaming 1/2: youtube live, twitch backoff (connection refused)`.
pub fn summary(state: BoxState, destinations: &[DestinationStatus]) -> String {
    let enabled: Vec<&DestinationStatus> =
        destinations.iter().filter(|d| d.state != DestinationState::Disabled).collect();
    if enabled.is_empty() {
        return "idle: no destination is enabled".into();
    }
    let live = enabled.iter().filter(|d| d.state == DestinationState::Live).count();
    let each: Vec<String> = enabled
        .iter()
        .map(|d| match (d.state, &d.last_error) {
            (DestinationState::Live, _) if d.too_slow => format!("{} live (too slow for the bitrate)", d.name),
            (DestinationState::Live, _) | (_, None) => format!("{} {}", d.name, d.state.as_str()),
            (_, Some(e)) => format!("{} {} ({e})", d.name, d.state.as_str()),
        })
        .collect();
    format!("{} {live}/{}: {}", state.as_str(), enabled.len(), each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::BoxState::{Idle, Reconnecting, Streaming};
    use super::DestinationState::{Backoff, Disabled, Live};
    use super::*;

    fn dest(name: &str, state: DestinationState, error: Option<&str>) -> DestinationStatus {
        DestinationStatus { name: name.into(), state, last_error: error.map(Into::into), ..Default::default() }
    }

    #[test]
    fn state_follows_destinations() {
        assert_eq!(box_state(&[], false), Idle);
        assert_eq!(box_state(&[dest("a", Disabled, None)], true), Idle);
        assert_eq!(box_state(&[dest("a", DestinationState::Connecting, None)], false), BoxState::Connecting);
        assert_eq!(box_state(&[dest("a", Backoff, None), dest("b", Live, None)], true), Streaming);
        assert_eq!(box_state(&[dest("a", Backoff, None)], true), Reconnecting);
    }

    #[test]
    fn states_are_spelled_as_the_api_always_did() {
        assert_eq!(serde_json::to_string(&Reconnecting).unwrap(), "\"reconnecting\"");
        assert_eq!(serde_json::to_string(&Backoff).unwrap(), "\"backoff\"");
        assert_eq!(Reconnecting.as_str(), "reconnecting");
        assert_eq!(serde_json::to_string(&UpdateState::Installed).unwrap(), "\"installed\"");
    }

    #[test]
    fn summary_names_each_destination_and_its_trouble() {
        let d = [dest("yt", Live, None), dest("tw", Backoff, Some("refused")), dest("x", Disabled, None)];
        assert_eq!(summary(Streaming, &d), "streaming 1/2: yt live, tw backoff (refused)");
        let slow = DestinationStatus { too_slow: true, ..dest("yt", Live, None) };
        assert_eq!(summary(Streaming, &[slow]), "streaming 1/1: yt live (too slow for the bitrate)");
        assert_eq!(summary(Idle, &[]), "idle: no destination is enabled");
    }
}
