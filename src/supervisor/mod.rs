//! The box's control loop: starts the producer and one pipeline per destination, judges
//! each by bus errors and by whether bytes move, and rebuilds what failed with backoff.
//! A failing destination never touches the producer or the other destinations.

mod backoff;
mod bitrate;
mod progress;
mod reachability;
mod reconcile;
mod slot;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, Loaded};
use crate::media::destination::DestinationPipeline;
use crate::media::preview::{Preview, Unavailable};
use crate::media::producer::Producer;
use crate::media::{self, SourceError, discovery, plan};
use crate::network::NetworkStatus;
use crate::secrets;
use crate::state::{Reader, Snapshot, Writer};
use crate::status::{self, DestinationStatus, StreamStatus, UpdateStatus};
use gstreamer::prelude::*;

use backoff::Backoff;
use progress::{Heartbeat, Progress, STABLE_AFTER, Verdict};
use reconcile::{Change, Reload};
use slot::{Connection, Slot, Source, close, limits, slot_status};

const TICK: Duration = Duration::from_millis(200);
/// The producer must deliver its first buffer within this (cameras are slow to start)…
const SOURCE_START_TIMEOUT: Duration = Duration::from_secs(15);
/// …and then never go quiet for longer than this.
const SOURCE_STALL_AFTER: Duration = Duration::from_secs(5);
/// Upstream counts as flowing for destination stall checks while it delivered this recently.
const UPSTREAM_QUIET: Duration = Duration::from_secs(1);
/// A connection that was live this long and then broke is retried as soon as its server
/// answers again; one that breaks sooner (a server refusing the stream) waits its backoff.
const WORKED_FOR: Duration = Duration::from_secs(2);

/// What the supervisor reads of the other threads and the one thing it writes.
pub struct Links {
    /// The settings in force; a new version is reconciled with the running ones.
    pub settings: Reader<Loaded>,
    /// The only writer of the stream's part of the status.
    pub stream: Writer<StreamStatus>,
    /// Whether there is a network to stream on, and the update's word for the summary.
    pub network: Reader<NetworkStatus>,
    pub update: Reader<UpdateStatus>,
}

pub struct Supervisor {
    config: Config,
    /// The version of the settings in force that `config` is.
    settings_version: u64,
    config_problems: Vec<String>,
    secrets: Vec<secrets::Secret>,
    links: Links,
    preview: Arc<Preview>,
    started: Instant,
    source: Option<Source>,
    source_backoff: Backoff,
    source_retry_at: Instant,
    source_error: Option<SourceError>,
    pipeline_line: Option<String>,
    /// The plan the producer runs, kept to show destinations changed without a rebuild.
    plan: Option<plan::Plan>,
    slots: Vec<Slot>,
    next_id: u64,
    ever_live: bool,
    last_summary: String,
    /// The encoder's bitrate now (kbit/s); kept across producer restarts.
    video_kbps: u32,
}

impl Supervisor {
    /// Starts from the settings in force now.
    pub fn new(links: Links, preview: Arc<Preview>) -> Self {
        let settings = links.settings.get();
        let config = settings.config.clone();
        let now = Instant::now();
        let limits = limits(&config);
        let slots = config.destinations.iter().map(|d| Slot::new(d, limits, now)).collect();
        Supervisor {
            video_kbps: config.video.bitrate_kbps,
            secrets: config.secrets(),
            config,
            settings_version: settings.version,
            config_problems: settings.notes(),
            links,
            preview,
            started: now,
            source: None,
            source_backoff: Backoff::default(),
            source_retry_at: now,
            source_error: None,
            pipeline_line: None,
            plan: None,
            slots,
            next_id: 0,
            ever_live: false,
            last_summary: String::new(),
        }
    }

    /// Runs forever; tells systemd READY once, then WATCHDOG on every healthy turn while
    /// `web_answers` (the LAN pages still answer: a box nobody can reach is restarted).
    /// New settings in force (saved from the web, or SIGHUP) are reconciled with the
    /// running ones at the next turn.
    pub fn run(mut self, web_answers: impl Fn(Instant) -> bool) -> ! {
        let mut ready = false;
        let mut web_silent = false;
        loop {
            let now = Instant::now();
            let settings = self.links.settings.get();
            if settings.version != self.settings_version {
                self = self.reloaded(&settings);
            }
            self.tick(now);
            let summary = self.publish_status(now);
            if !ready {
                crate::notify::ready();
                ready = true;
            }
            if summary != self.last_summary {
                tracing::info!("{summary}");
                crate::notify::status(&summary);
                self.last_summary = summary;
            }
            if web_answers(now) {
                crate::notify::watchdog();
                web_silent = false;
            } else if !web_silent {
                tracing::error!(
                    "the web pages stopped answering: the watchdog is no longer fed, systemd restarts the service"
                );
                web_silent = true;
            }
            std::thread::sleep(TICK);
        }
    }

    fn reloaded(mut self, loaded: &Snapshot<Loaded>) -> Self {
        match reconcile::reconcile(&self.config, &loaded.config) {
            Reload::Destinations(changes) => {
                self.apply(&changes, loaded);
                self
            }
            Reload::Rebuild => {
                tracing::info!("settings changed: the camera side changed, rebuilding the pipelines");
                self.stop_all();
                let Supervisor { links, preview, started, last_summary, .. } = self;
                let mut next = Supervisor::new(links, preview);
                next.started = started;
                next.last_summary = last_summary;
                next
            }
        }
    }

    /// The producer stays; destinations change by name as `reconcile` decided.
    fn apply(&mut self, changes: &[(String, Change)], loaded: &Snapshot<Loaded>) {
        let touched: Vec<String> =
            changes.iter().filter(|(_, c)| *c != Change::Keep).map(|(name, c)| format!("{name}: {c:?}")).collect();
        let touched = if touched.is_empty() { "none".to_string() } else { touched.join(", ") };
        tracing::info!("settings changed: the camera side is unchanged; destinations changed: {touched}");
        let mut old = std::mem::take(&mut self.slots);
        for (name, change) in changes {
            if let Some(mut slot) = old.iter().position(|s| &s.name == name).map(|i| old.swap_remove(i)) {
                if *change == Change::Keep {
                    self.slots.push(slot);
                    continue;
                }
                if let Some(connection) = slot.connection.take() {
                    close(self.source.as_ref(), &mut slot, connection);
                }
            }
            if let Some(d) = loaded.config.destinations.iter().find(|d| &d.name == name) {
                self.slots.push(Slot::new(d, limits(&loaded.config), Instant::now()));
            }
        }
        self.secrets = loaded.config.secrets();
        self.config_problems = loaded.notes();
        self.config = loaded.config.clone();
        self.settings_version = loaded.version;
        if let Some(plan) = self.plan.as_mut() {
            plan.destinations = self.slots.iter().filter_map(|s| s.planned.clone()).collect();
            self.pipeline_line = Some(plan.launch_line());
        }
        if !self.slots.iter().any(|s| s.enabled) {
            self.stop_all();
        }
    }

    fn stop_all(&mut self) {
        for slot in &mut self.slots {
            if let Some(connection) = slot.connection.take() {
                close(None, slot, connection);
            }
            slot.retry_at = None;
        }
        if let Some(source) = self.source.take() {
            media::shut_down(source.producer.pipeline.into());
        }
        let why = if self.config.web.preview { Unavailable::NotStreaming } else { Unavailable::Disabled };
        self.preview.unavailable(why);
    }

    fn tick(&mut self, now: Instant) {
        self.preview.tick(now);
        let mode = self.links.network.get().mode;
        if !mode.carries_streams() {
            if self.source.is_some() {
                tracing::info!("no network to stream on ({}): the pipelines wait for one", mode.as_str());
                self.stop_all();
            }
            // Whatever failed while offline says nothing about the network to come.
            self.source_retry_at = now;
            self.source_backoff.reset();
            for slot in &mut self.slots {
                slot.backoff.reset();
            }
            return;
        }
        if self.slots.iter().any(|s| s.enabled) {
            self.tend_source(now);
        }
        let upstream_flowing =
            self.source.as_mut().is_some_and(|s| s.heartbeat.beat(s.producer.fanout.samples(), now) < UPSTREAM_QUIET);
        for index in 0..self.slots.len() {
            self.tend_destination(index, now, upstream_flowing);
        }
        self.follow_uplink();
    }

    /// Sets the encoder to what the live destinations' links can take.
    fn follow_uplink(&mut self) {
        let Some(source) = &self.source else { return };
        if !self.config.video.adaptive {
            return;
        }
        let live = self.slots.iter().filter_map(|s| s.reading.as_ref());
        let wanted = bitrate::encoder_kbps(live, self.video_kbps);
        if wanted != self.video_kbps && source.producer.set_bitrate(wanted) {
            let why = match self
                .slots
                .iter()
                .filter_map(|s| Some((&s.name, s.reading?)))
                .min_by_key(|(_, r)| r.target_kbps)
            {
                Some((name, r)) if wanted < self.video_kbps => {
                    format!("{name} carries {} kbit/s with {:.1} s waiting", r.uplink_kbps, r.backlog_s)
                }
                _ => "the uplink has room".to_string(),
            };
            tracing::info!("video bitrate {} -> {wanted} kbit/s: {why}", self.video_kbps);
            self.video_kbps = wanted;
        }
    }

    fn tend_source(&mut self, now: Instant) {
        let Some(source) = self.source.as_mut() else {
            if now >= self.source_retry_at {
                self.start_source(now);
            }
            return;
        };
        let quiet = source.heartbeat.beat(source.producer.fanout.samples(), now);
        source.delivered |= quiet.is_zero();
        let failure = media::drain_bus(source.producer.pipeline.upcast_ref()).or_else(|| {
            if !source.delivered && now.saturating_duration_since(source.started) >= SOURCE_START_TIMEOUT {
                Some(format!("the camera/microphone delivered nothing within {}s", SOURCE_START_TIMEOUT.as_secs()))
            } else if source.delivered && quiet >= SOURCE_STALL_AFTER {
                Some(format!("the camera/microphone stopped delivering for {}s", quiet.as_secs()))
            } else {
                None
            }
        });
        if let Some(why) = failure {
            self.fail_source(SourceError::Failed(why), now);
        } else if source.delivered && now.saturating_duration_since(source.started) >= STABLE_AFTER {
            self.source_backoff.reset();
        }
    }

    fn start_source(&mut self, now: Instant) {
        let found = discovery::discover();
        let started = plan::plan(&self.config, &found).and_then(|plan| {
            let line = plan.launch_line();
            if self.pipeline_line.as_deref() != Some(&line) {
                tracing::info!("pipeline: {line}");
                for reason in &plan.reasons {
                    tracing::info!("because {reason}");
                }
            }
            self.pipeline_line = Some(line);
            for slot in &mut self.slots {
                slot.planned = plan.destinations.iter().find(|d| d.name == slot.name).cloned();
            }
            let producer = Producer::start(&plan, &self.preview);
            self.plan = Some(plan);
            Ok(producer?)
        });
        match started {
            Ok(producer) => {
                // What was learnt of the uplink holds for the new producer too.
                if self.config.video.adaptive && self.video_kbps != self.config.video.bitrate_kbps {
                    producer.set_bitrate(self.video_kbps);
                }
                self.source = Some(Source { producer, heartbeat: Heartbeat::new(now), started: now, delivered: false });
            }
            Err(why) => self.fail_source(why, now),
        }
    }

    /// The producer is gone: every destination is rebuilt after it, as timestamps and
    /// stream headers start over.
    fn fail_source(&mut self, why: SourceError, now: Instant) {
        let why = match why {
            SourceError::Failed(why) => SourceError::Failed(secrets::scrub(&why, &self.secrets)),
            missing => missing,
        };
        let delay = self.source_backoff.next_delay(fastrand::f64());
        tracing::warn!("camera side failed: {why}; retrying in {:.1}s", delay.as_secs_f64());
        self.stop_all();
        self.source_error = Some(why);
        self.source_retry_at = now + delay;
    }

    fn tend_destination(&mut self, index: usize, now: Instant, upstream_flowing: bool) {
        let Some(source) = &self.source else { return };
        let slot = &mut self.slots[index];
        if !slot.enabled {
            return;
        }
        let Some(connection) = slot.connection.as_mut() else {
            let Some(planned) = slot.planned.clone() else { return };
            let server_back = slot.retry_at.is_some() && slot.reachability.came_back(&planned.location, now);
            if server_back {
                tracing::info!("{}: the server is reachable again, reconnecting now", slot.name);
            }
            if server_back || slot.retry_at.is_none_or(|t| now >= t) {
                slot.reachability.reset();
                self.next_id += 1;
                match DestinationPipeline::start(self.next_id, &planned.location, &source.producer.fanout) {
                    Ok(pipeline) => {
                        source.producer.request_keyframe();
                        tracing::info!("{}: connecting to {}", slot.name, planned.masked_location);
                        slot.retry_at = None;
                        slot.controller.new_connection(now);
                        slot.connection = Some(Connection { id: self.next_id, pipeline, progress: Progress::new(now) });
                    }
                    Err(why) => self.fail_destination(index, why, now),
                }
            }
            return;
        };
        let bytes = connection.pipeline.bytes_out();
        slot.rate.record(now, slot.bytes_before + bytes);
        let was_live = connection.progress.live_since().is_some();
        let delivery = connection.pipeline.delivery();
        let acked = delivery.map(|d| d.acked);
        slot.reading = was_live.then(|| {
            let reading = slot.controller.observe(now, acked, delivery.map_or(0, |d| d.backlog));
            connection.pipeline.shed(reading.shed);
            reading
        });
        let failure = match media::drain_bus(connection.pipeline.pipeline.upcast_ref()) {
            Some(error) => Some(error),
            None => {
                match connection.progress.observe(now, connection.pipeline.buffers_in(), bytes, acked, upstream_flowing)
                {
                    Verdict::Stalled => Some("the server acknowledged nothing for 3 s (network stalled)".to_string()),
                    Verdict::TimedOut => Some("could not publish within 15 s".to_string()),
                    Verdict::Live if !was_live => {
                        tracing::info!("{}: live", slot.name);
                        self.ever_live = true;
                        None
                    }
                    Verdict::Live | Verdict::Connecting => None,
                }
            }
        };
        let stable = connection.progress.live_since().is_some_and(|t| now.saturating_duration_since(t) >= STABLE_AFTER);
        if let Some(why) = failure {
            self.fail_destination(index, why, now);
        } else if stable {
            slot.backoff.reset();
        }
    }

    fn fail_destination(&mut self, index: usize, why: String, now: Instant) {
        let why = secrets::scrub(&why, &self.secrets);
        let slot = &mut self.slots[index];
        slot.reachability.reset();
        if let Some(connection) = slot.connection.take() {
            let worked =
                connection.progress.live_since().is_some_and(|t| now.saturating_duration_since(t) >= WORKED_FOR);
            if worked {
                slot.reachability.presume_gone();
            }
            close(self.source.as_ref(), slot, connection);
        }
        slot.reading = None;
        let delay = slot.backoff.next_delay(fastrand::f64());
        tracing::warn!("{}: {why}; reconnecting in {:.1}s", slot.name, delay.as_secs_f64());
        slot.reconnects += 1;
        slot.last_error = Some(why);
        slot.retry_at = Some(now + delay);
    }

    /// Publishes the stream's part of the status; returns the summary of the whole.
    fn publish_status(&self, now: Instant) -> String {
        let destinations: Vec<DestinationStatus> =
            self.slots.iter().map(|slot| slot_status(slot, self.source.is_some(), now)).collect();
        let stream = StreamStatus {
            state: status::box_state(&destinations, self.ever_live),
            uptime_s: now.saturating_duration_since(self.started).as_secs(),
            pipeline: self.pipeline_line.clone(),
            source_error: self.source_error.clone(),
            config_problems: self.config_problems.clone(),
            destinations,
            // The supervisor publishes only from its loop, whose first turn tells READY=1.
            ready: true,
            video_kbps: self.video_kbps,
            configured_kbps: self.config.video.bitrate_kbps,
        };
        let summary = status::compose(&stream, &self.links.network.get(), &self.links.update.get()).summary;
        self.links.stream.set(stream);
        summary
    }
}
