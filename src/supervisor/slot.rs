//! One destination as the supervisor keeps it (`Slot`: its connection, backoff, bitrate
//! controller and counters), the producer it hangs off (`Source`), and how a slot is shown
//! in the status.

use std::time::Instant;

use super::backoff::Backoff;
use super::bitrate::{Controller, Limits, Reading};
use super::progress::{Heartbeat, Progress, RateMeter};
use super::reachability::Reachability;
use crate::config::{Config, Destination};
use crate::media;
use crate::media::destination::DestinationPipeline;
use crate::media::plan::PlannedDestination;
use crate::media::producer::Producer;
use crate::status::{DestinationState, DestinationStatus};

pub(super) struct Source {
    pub(super) producer: Producer,
    pub(super) heartbeat: Heartbeat,
    pub(super) started: Instant,
    pub(super) delivered: bool,
}

pub(super) struct Connection {
    pub(super) id: u64,
    pub(super) pipeline: DestinationPipeline,
    pub(super) progress: Progress,
}

pub(super) struct Slot {
    pub(super) name: String,
    pub(super) enabled: bool,
    pub(super) planned: Option<PlannedDestination>,
    pub(super) masked_url: String,
    pub(super) connection: Option<Connection>,
    pub(super) backoff: Backoff,
    pub(super) retry_at: Option<Instant>,
    pub(super) reachability: Reachability,
    pub(super) reconnects: u64,
    pub(super) bytes_before: u64,
    pub(super) gops_before: u64,
    pub(super) rate: RateMeter,
    pub(super) last_error: Option<String>,
    pub(super) controller: Controller,
    /// The controller's last word while live.
    pub(super) reading: Option<Reading>,
}

/// What the bitrate controllers may do, from the settings.
pub(super) fn limits(config: &Config) -> Limits {
    Limits {
        max_kbps: config.video.bitrate_kbps,
        floor_kbps: config.video.min_bitrate_kbps.min(config.video.bitrate_kbps),
        // `audio.source = none` still sends (silent) AAC.
        audio_kbps: config.audio.bitrate_kbps,
    }
}

impl Slot {
    pub(super) fn new(d: &Destination, limits: Limits, now: Instant) -> Slot {
        Slot {
            name: d.name.clone(),
            enabled: d.enabled,
            planned: d.enabled.then(|| PlannedDestination::of(d)),
            masked_url: d.masked_location(),
            connection: None,
            backoff: Backoff::default(),
            retry_at: None,
            reachability: Reachability::default(),
            reconnects: 0,
            bytes_before: 0,
            gops_before: 0,
            rate: RateMeter::default(),
            last_error: None,
            controller: Controller::new(limits, now),
            reading: None,
        }
    }
}

/// Stops a destination's pipeline and takes it off the producer's fanout.
pub(super) fn close(source: Option<&Source>, slot: &mut Slot, connection: Connection) {
    if let Some(source) = source {
        source.producer.fanout.detach(connection.id);
    }
    slot.bytes_before += connection.pipeline.bytes_out();
    slot.gops_before += connection.pipeline.gops_dropped();
    slot.reading = None;
    media::shut_down(connection.pipeline.pipeline.into());
}

pub(super) fn slot_status(slot: &Slot, source_running: bool, now: Instant) -> DestinationStatus {
    let live_since = slot.connection.as_ref().and_then(|c| c.progress.live_since());
    let state = match (&slot.connection, live_since, slot.retry_at) {
        _ if !slot.enabled => DestinationState::Disabled,
        (Some(_), Some(_), _) => DestinationState::Live,
        (Some(_), None, _) => DestinationState::Connecting,
        (None, _, Some(_)) if source_running => DestinationState::Backoff,
        (None, _, _) => DestinationState::Waiting,
    };
    DestinationStatus {
        name: slot.name.clone(),
        state,
        url: slot.masked_url.clone(),
        bytes_sent: slot.bytes_before + slot.connection.as_ref().map_or(0, |c| c.pipeline.bytes_out()),
        bitrate_kbps: if live_since.is_some() { slot.rate.kbps() } else { 0 },
        reconnects: slot.reconnects,
        last_error: slot.last_error.clone(),
        live_for_s: live_since.map(|t| now.saturating_duration_since(t).as_secs()),
        retry_in_s: slot
            .retry_at
            .filter(|_| slot.connection.is_none())
            .map(|t| (t.saturating_duration_since(now).as_secs_f64() * 10.0).round() / 10.0),
        uplink_kbps: slot.reading.map_or(0, |r| r.uplink_kbps),
        target_kbps: slot.controller.target_kbps(),
        backlog_s: slot.reading.map_or(0.0, |r| (r.backlog_s * 100.0).round() / 100.0),
        gops_dropped: slot.gops_before + slot.connection.as_ref().map_or(0, |c| c.pipeline.gops_dropped()),
        too_slow: slot.controller.too_slow(),
    }
}
