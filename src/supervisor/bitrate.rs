//! Adaptive bitrate, pure: what each destination's link carries and what waits for it
//! go in, the video bitrate it can take comes out; `encoder_kbps` picks the one bitrate
//! the shared encoder runs at.
//!
//! **Invariant:** a target is always within `[floor, max]`; it falls at once when a
//! standing backlog builds (to what the link was seen to carry, less headroom), and rises
//! only after the link has been clear for a while, one step at a time: quickly back to
//! just under where the link last choked, then past it only by a small probe, after a
//! wait that doubles with each probe the link refuses (any queue it builds refuses it;
//! it goes back to where it started, no lower). Once a probe holds, the link is free
//! again and the steps grow. A destination that acknowledges nothing is failing, not slow: it moves nothing
//! (the supervisor reconnects it).
//!
//! **API boundary:** `Controller::observe(now, acked, backlog_bytes) -> Reading`, with
//! `Controller::new_connection` when its connection is replaced; `encoder_kbps` over the
//! live destinations' readings. Time comes in as `Instant`s, so traces replay in tests.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::progress::RateMeter;

/// A backlog that stays above this for `STANDING` is a queue building: step down.
const DOWN_AT: f64 = 0.5;
/// A backlog that stays below this is a clear link: room to step up.
const CLEAR_BELOW: f64 = 0.25;
/// Backlogs are judged by their minimum over this long: a keyframe's burst is not a queue.
const STANDING: Duration = Duration::from_secs(1);
/// Past this much delay, whole GOPs are dropped for the destination until it is back under…
const DROP_AT: f64 = 1.5;
/// …but in a connection's first `STARTING` only past this: the first seconds run at the
/// full bitrate before the link is measured, and a viewer (or a service probing the
/// stream) that joins then should find its video, not a dropped GOP.
const DROP_AT_START: f64 = 4.0;
const STARTING: Duration = Duration::from_secs(10);
/// After a step down, a further one only if the backlog doubled, or after this long if it
/// is not draining.
const DOWN_HOLD: Duration = Duration::from_secs(3);
/// Clear this long before each step up…
const STEP_WAIT: Duration = Duration::from_secs(3);
/// …and this long before a probe past where the link last choked, doubling (to the
/// most) with each probe refused.
const PROBE_WAIT: Duration = Duration::from_secs(15);
const PROBE_WAIT_MOST: Duration = Duration::from_secs(20);
/// A probe clear this long, its backlog grown by no more than `PROBE_GROWTH` seconds,
/// holds: the link has room again. (A probe a little past the link grows its queue
/// slowly: it may take many seconds to reach `DOWN_AT`.)
const PROBE_HOLDS: Duration = Duration::from_secs(6);
const PROBE_GROWTH: f64 = 0.1;
/// Steps back up stop this far under where the link choked.
const UNDER_CHOKE: f64 = 0.95;
/// A step down aims this far under what the link carried (room for bursts and drains).
const HEADROOM: f64 = 0.85;
/// At the floor this long and still dropping GOPs: the destination is too slow to
/// follow. Twice as long without a dropped GOP: it keeps up again.
const TOO_SLOW_AFTER: Duration = Duration::from_secs(5);
/// Acknowledged nothing this long while data waits: failing, not slow.
const FAILING_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The configured video bitrate: never above it.
    pub max_kbps: u32,
    /// `video.min_bitrate_kbps`: never below it.
    pub floor_kbps: u32,
    /// The audio rides the same link at its own fixed rate.
    pub audio_kbps: u32,
}

/// What the link looks like over the last `STANDING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Nothing to judge yet: no acknowledgement counted on this connection.
    Unknown,
    /// Little waiting: there may be room for more.
    Clear,
    /// Some waiting, not growing into a queue: hold.
    Busy,
    /// A standing queue: the link carries less than is sent.
    Congested,
    /// Data waits and nothing is acknowledged: a dead link, for the supervisor.
    Failing,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// What the server acknowledged over the last few seconds (kbit/s).
    pub uplink_kbps: u64,
    /// Seconds the data now waiting adds before it reaches the server.
    pub backlog_s: f64,
    pub target_kbps: u32,
    pub link: Link,
    /// Congested even at the floor: the encoder stops following this destination.
    pub too_slow: bool,
    /// Past `DROP_AT`: the fanout drops the next whole GOP for it.
    pub shed: bool,
}

/// A step past where the link last choked, on trial.
#[derive(Debug, Clone, Copy)]
struct Probe {
    /// The target it started from (where a refusal goes back to).
    from: u32,
    at: Instant,
    /// The standing backlog when it started (s): it holds if that does not grow.
    standing: f64,
}

#[derive(Debug, Clone)]
pub struct Controller {
    limits: Limits,
    target: u32,
    acked: RateMeter,
    last_acked: Option<u64>,
    acked_moved: Instant,
    /// Recent backlogs (seconds), for their minimum over `STANDING`.
    recent: VecDeque<(Instant, f64)>,
    last_down: Option<(Instant, f64)>,
    last_up: Option<Instant>,
    clear_since: Option<Instant>,
    /// Since when the target is at the floor.
    floor_since: Option<Instant>,
    last_shed: Option<Instant>,
    /// Since when this connection, measured, dropped no GOP.
    clean_since: Option<Instant>,
    /// The video the link carried when it last choked: steps stop under it.
    choked_at: Option<u32>,
    /// A probe past `choked_at` under way.
    probe: Option<Probe>,
    probe_wait: Duration,
    /// Steps up since the link last choked (with no choke remembered, each one doubles).
    run: u32,
    /// The first acknowledgement counted on this connection: judging starts `STANDING` later.
    measuring_since: Option<Instant>,
    too_slow: bool,
}

impl Controller {
    pub fn new(limits: Limits, now: Instant) -> Self {
        Controller {
            limits,
            target: limits.max_kbps,
            acked: RateMeter::default(),
            last_acked: None,
            acked_moved: now,
            recent: VecDeque::new(),
            last_down: None,
            last_up: None,
            clear_since: None,
            floor_since: None,
            last_shed: None,
            clean_since: None,
            choked_at: None,
            probe: None,
            probe_wait: PROBE_WAIT,
            run: 0,
            measuring_since: None,
            too_slow: false,
        }
    }

    /// A new connection for the same destination: what was learnt about the link stays,
    /// the counters start over (acknowledgements count per connection).
    pub fn new_connection(&mut self, now: Instant) {
        self.acked = RateMeter::default();
        self.last_acked = None;
        self.acked_moved = now;
        self.recent.clear();
        self.clear_since = None;
        self.measuring_since = None;
        self.clean_since = None;
    }

    pub fn target_kbps(&self) -> u32 {
        self.target
    }

    /// Learnt over connections: a reconnect does not make a link faster.
    pub fn too_slow(&self) -> bool {
        self.too_slow
    }

    /// `acked`: bytes the server acknowledged on this connection (None: not found yet);
    /// `backlog_bytes`: bytes written for it that the server has not acknowledged.
    pub fn observe(&mut self, now: Instant, acked: Option<u64>, backlog_bytes: u64) -> Reading {
        let Some(acked) = acked else {
            return self.reading(0, 0.0, Link::Unknown, false);
        };
        self.acked.record(now, acked);
        if self.last_acked != Some(acked) {
            self.last_acked = Some(acked);
            self.acked_moved = now;
        }
        let uplink = self.acked.kbps();
        let since = *self.measuring_since.get_or_insert(now);
        let measured = now.saturating_duration_since(since) >= STANDING;
        // Until the uplink is measured, the link is taken to carry what is sent.
        let carried = match measured {
            true => uplink.max(u64::from(self.limits.floor_kbps + self.limits.audio_kbps)),
            false => u64::from(self.target + self.limits.audio_kbps),
        };
        let backlog_s = backlog_bytes as f64 * 8.0 / 1000.0 / carried as f64;
        let starting = now.saturating_duration_since(since) < STARTING;
        let shed = backlog_s > if starting { DROP_AT_START } else { DROP_AT };
        self.recent.push_back((now, backlog_s));
        while self.recent.front().is_some_and(|(t, _)| now.saturating_duration_since(*t) > STANDING) {
            self.recent.pop_front();
        }
        let standing = self.recent.iter().map(|(_, b)| *b).fold(f64::INFINITY, f64::min);
        let link = if !measured {
            Link::Unknown
        } else if backlog_bytes > 0 && now.saturating_duration_since(self.acked_moved) >= FAILING_AFTER {
            Link::Failing
        } else if standing > DOWN_AT || shed {
            // Shedding keeps the minimum low, but a queue past `DROP_AT` is one.
            Link::Congested
        } else if standing < CLEAR_BELOW {
            Link::Clear
        } else {
            Link::Busy
        };
        match link {
            Link::Congested => self.congested(now, standing, uplink, shed),
            Link::Clear => self.clear(now, standing),
            // Some queue: no step up; a probe that made it is refused.
            Link::Busy => {
                self.clear_since = None;
                if let Some(Probe { from, .. }) = self.probe.take() {
                    self.refused(now, from, standing);
                }
            }
            Link::Failing | Link::Unknown => self.clear_since = None,
        }
        if link != Link::Failing {
            self.judge_too_slow(now, shed, measured, uplink);
        }
        self.reading(uplink, backlog_s, link, shed)
    }

    /// Too slow: at the floor a while and still dropping GOPs (its uplink reads low
    /// then, as most of the video is dropped, so it cannot be the test). It ends after a
    /// while live and measured without a dropped GOP (not merely a while away,
    /// reconnecting): the link carried all that was sent, so that is its target.
    fn judge_too_slow(&mut self, now: Instant, shed: bool, measured: bool, uplink_kbps: u64) {
        let floor = self.limits.floor_kbps;
        if shed {
            (self.last_shed, self.clean_since) = (Some(now), None);
        } else if measured {
            self.clean_since.get_or_insert(now);
        }
        self.floor_since = if self.target == floor { self.floor_since.or(Some(now)) } else { None };
        let shedding = self.last_shed.is_some_and(|t| now.saturating_duration_since(t) < 2 * TOO_SLOW_AFTER);
        let at_floor = self.floor_since.is_some_and(|t| now.saturating_duration_since(t) >= TOO_SLOW_AFTER);
        let clean = self.clean_since.is_some_and(|t| now.saturating_duration_since(t) >= 2 * TOO_SLOW_AFTER);
        if !self.too_slow && at_floor && shedding {
            self.too_slow = true;
        } else if self.too_slow && clean {
            self.too_slow = false;
            let carried = (uplink_kbps as u32).saturating_sub(self.limits.audio_kbps);
            self.target = carried.clamp(floor, self.limits.max_kbps);
        }
    }

    /// A probe refused: back to where it started, and the next one waits longer.
    fn refused(&mut self, now: Instant, from: u32, standing: f64) {
        self.target = from;
        self.probe_wait = (self.probe_wait * 2).min(PROBE_WAIT_MOST);
        self.last_down = Some((now, standing));
    }

    fn reading(&self, uplink_kbps: u64, backlog_s: f64, link: Link, shed: bool) -> Reading {
        Reading { uplink_kbps, backlog_s, target_kbps: self.target, link, too_slow: self.too_slow, shed }
    }

    fn congested(&mut self, now: Instant, standing: f64, uplink_kbps: u64, shed: bool) {
        self.clear_since = None;
        self.run = 0;
        if let Some(Probe { from, .. }) = self.probe.take() {
            return self.refused(now, from, standing);
        }
        let may_step = match self.last_down {
            None => true,
            Some((at, backlog)) => {
                let waited = now.saturating_duration_since(at);
                // The encoder takes a moment to follow and the queue keeps growing
                // meanwhile: only a queue that doubled is a link still falling; later,
                // one that is not draining (or drains only by dropping GOPs).
                (waited >= DOWN_HOLD && (standing >= backlog || shed))
                    || (waited >= STANDING && standing > 2.0 * backlog)
            }
        };
        if may_step {
            let audio = self.limits.audio_kbps;
            let carried = (uplink_kbps as f64 * HEADROOM) as u32;
            let wanted = match carried.saturating_sub(audio) {
                0 => self.target * 3 / 4,
                video => (self.target * 3 / 4).min(video),
            };
            let next = wanted.clamp(self.limits.floor_kbps, self.limits.max_kbps);
            // Where the link choked: the video it carried (the audio took the rest).
            let carried_video = (uplink_kbps as u32).saturating_sub(audio);
            self.choked_at = Some(carried_video.max(self.limits.floor_kbps));
            self.target = self.target.min(next);
            self.last_down = Some((now, standing));
        }
    }

    fn clear(&mut self, now: Instant, standing: f64) {
        let since = *self.clear_since.get_or_insert(now);
        if let Some(probe) = self.probe
            && now.saturating_duration_since(probe.at) >= PROBE_HOLDS
            && standing <= probe.standing + PROBE_GROWTH
        {
            // The probe held, its queue did not grow: the link has room again.
            (self.probe, self.choked_at, self.probe_wait) = (None, None, PROBE_WAIT);
        }
        let max = self.limits.max_kbps;
        let step = (max / 10).max(50);
        let (next, wait, probe) = match self.choked_at {
            _ if self.target >= max || self.probe.is_some() => return,
            Some(choked) => {
                let under = ((f64::from(choked) * UNDER_CHOKE) as u32).max(self.limits.floor_kbps);
                if self.target < under {
                    ((self.target + step).min(under), STEP_WAIT, false)
                } else {
                    (choked.max(self.target) + step / 2, self.probe_wait, true)
                }
            }
            // Once two steps held, each doubles.
            None => (self.target + (step << self.run.saturating_sub(1).min(2)), STEP_WAIT, false),
        };
        let quiet = [Some(since), self.last_up, self.last_down.map(|(t, _)| t)]
            .into_iter()
            .flatten()
            .map(|t| now.saturating_duration_since(t))
            .min()
            .unwrap_or_default();
        if quiet >= wait {
            if probe {
                self.probe = Some(Probe { from: self.target, at: now, standing });
            } else if self.choked_at.is_none() {
                self.run += 1;
            }
            self.target = next.min(max);
            self.last_up = Some(now);
        }
    }
}

/// The one bitrate the shared encoder runs at: the lowest target among the live
/// destinations it follows, those neither failing nor too slow. If it follows none (all
/// too slow), the lowest target of those not failing; if none is live, `current` stays.
pub fn encoder_kbps<'a>(live: impl IntoIterator<Item = &'a Reading>, current: u32) -> u32 {
    let working: Vec<&Reading> = live.into_iter().filter(|r| r.link != Link::Failing).collect();
    let followed = working.iter().filter(|r| !r.too_slow).map(|r| r.target_kbps).min();
    followed.or_else(|| working.iter().map(|r| r.target_kbps).min()).unwrap_or(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_kbps: 2500, floor_kbps: 300, audio_kbps: 128 };
    const TICK: Duration = Duration::from_millis(200);

    /// A fluid model of one destination: the encoder sends its target plus the audio;
    /// the link carries up to its rate; what it cannot carry waits. A keyframe every 2 s
    /// is a burst of a quarter second's worth of video, within the target on average (as
    /// x264's rate control keeps it). As the fanout does, a
    /// keyframe that comes while the destination sheds starts a GOP that is dropped.
    struct Sim {
        controller: Controller,
        now: Instant,
        acked: u64,
        backlog: f64,
        ticks: u64,
        shedding: bool,
    }

    #[derive(Debug, Default)]
    struct Trace {
        targets: Vec<u32>,
        backlogs: Vec<f64>,
        shed: usize,
        too_slow: usize,
    }

    impl Trace {
        fn p95_backlog(&self) -> f64 {
            let mut b = self.backlogs.clone();
            b.sort_by(f64::total_cmp);
            b[b.len() * 95 / 100]
        }
        fn downs(&self) -> usize {
            self.targets.windows(2).filter(|w| w[1] < w[0]).count()
        }
        fn last(&self) -> u32 {
            *self.targets.last().unwrap()
        }
    }

    impl Sim {
        fn new() -> Self {
            let now = Instant::now();
            Sim { controller: Controller::new(LIMITS, now), now, acked: 0, backlog: 0.0, ticks: 0, shedding: false }
        }

        /// Runs for `seconds` on a link of `link_kbps` (0: dead).
        fn run(&mut self, seconds: u64, link_kbps: u64) -> Trace {
            let mut trace = Trace::default();
            let dt = TICK.as_secs_f64();
            for _ in 0..seconds * 1000 / TICK.as_millis() as u64 {
                self.ticks += 1;
                self.now += TICK;
                let keyframe = self.ticks.is_multiple_of(10);
                if keyframe {
                    trace.shed += usize::from(self.shedding);
                }
                let video = if self.shedding { 0.0 } else { self.controller.target_kbps() as f64 };
                let burst = if keyframe { video * 0.25 } else { 0.0 };
                self.backlog += (video * 0.875 + LIMITS.audio_kbps as f64) * dt + burst;
                let carried = (link_kbps as f64 * dt).min(self.backlog);
                self.backlog -= carried;
                self.acked += (carried * 1000.0 / 8.0) as u64;
                let reading = self.controller.observe(self.now, Some(self.acked), (self.backlog * 1000.0 / 8.0) as u64);
                if self.ticks % 10 == 9 {
                    self.shedding = reading.shed;
                }
                trace.too_slow += usize::from(reading.too_slow);
                trace.targets.push(reading.target_kbps);
                trace.backlogs.push(reading.backlog_s);
            }
            trace
        }
    }

    #[test]
    fn a_steady_fast_link_never_lowers_the_bitrate() {
        let mut sim = Sim::new();
        let trace = sim.run(300, 10_000);
        assert!(trace.targets.iter().all(|&t| t == 2500), "lowest {:?}", trace.targets.iter().min());
        assert_eq!(trace.shed, 0);
    }

    #[test]
    fn steps_down_quickly_under_the_link_rate() {
        let mut sim = Sim::new();
        sim.run(20, 10_000);
        let trace = sim.run(120, 1000);
        let over = trace.targets[5 * 5..].iter().filter(|&&t| t + 128 > 1000).count();
        assert!(over * 10 < trace.targets.len(), "under the link after 5 s, but for probes: {:?}", trace.targets);
        assert!(trace.last() >= 500, "not needlessly low: {}", trace.last());
        assert!(trace.p95_backlog() < 2.0, "p95 backlog {:.2}", trace.p95_backlog());
        eprintln!(
            "{:?}",
            (1..trace.targets.len())
                .filter(|&i| trace.targets[i] != trace.targets[i - 1])
                .map(|i| (i, trace.targets[i], trace.backlogs[i]))
                .collect::<Vec<_>>()
        );
        assert!(trace.shed <= 2, "shed {} GOPs", trace.shed);
        assert_eq!(trace.too_slow, 0);
    }

    #[test]
    fn starting_on_a_slow_link_does_not_fall_to_the_floor() {
        let mut sim = Sim::new();
        let trace = sim.run(60, 1000);
        let lowest = *trace.targets.iter().min().unwrap();
        assert!(lowest > 400, "judged before anything was measured: down to {lowest}");
        let mut tail = trace.targets[trace.targets.len() - 150..].to_vec();
        tail.sort_unstable();
        let median = tail[tail.len() / 2];
        assert!(median + 128 < 1000 && median > 600, "settled at {median} over the last 30 s");
    }

    #[test]
    fn recovers_slowly_in_steps_within_a_minute() {
        let mut sim = Sim::new();
        sim.run(120, 1000);
        let low = sim.controller.target_kbps();
        let trace = sim.run(60, 10_000);
        assert_eq!(trace.last(), 2500, "back to the configured rate within 60 s: {:?}", trace.targets);
        let steps: Vec<u32> = trace.targets.windows(2).filter(|w| w[1] != w[0]).map(|w| w[1] - w[0]).collect();
        assert!(steps.len() >= 3, "from {low} in steps, not at once: {steps:?}");
        assert!(steps[0] <= 250, "a small first step: {steps:?}");
        let at: Vec<usize> = (1..trace.targets.len()).filter(|&i| trace.targets[i] != trace.targets[i - 1]).collect();
        assert!(at.windows(2).all(|w| w[1] - w[0] >= 15), "3 s clear between steps: ticks {at:?}");
    }

    #[test]
    fn an_oscillating_link_keeps_the_delay_bounded_without_flapping() {
        let mut sim = Sim::new();
        let mut all = Trace::default();
        for _ in 0..10 {
            for rate in [1000, 3000] {
                let t = sim.run(15, rate);
                all.targets.extend(t.targets);
                all.backlogs.extend(t.backlogs);
                all.shed += t.shed;
            }
        }
        assert!(all.p95_backlog() < 2.0, "p95 backlog {:.2}", all.p95_backlog());
        assert!(all.downs() <= 30, "{} steps down in 5 minutes", all.downs());
        assert!(all.shed <= 10, "shed {}", all.shed);
    }

    #[test]
    fn probes_back_to_where_it_choked_only_slowly() {
        let mut sim = Sim::new();
        sim.run(180, 1000);
        let trace = sim.run(300, 1000);
        assert!(
            trace.downs() as u64 <= 300 / PROBE_WAIT_MOST.as_secs() + 1,
            "{} steps down in 5 min on a steady slow link",
            trace.downs()
        );
        let above = trace.targets.iter().filter(|&&t| t + 128 > 1000).count();
        assert!(above * 10 < trace.targets.len(), "probes past the link are short: {above} of {}", trace.targets.len());
        assert!(trace.p95_backlog() < 1.0, "p95 backlog {:.2}", trace.p95_backlog());
    }

    #[test]
    fn a_link_below_the_floor_is_too_slow() {
        let mut sim = Sim::new();
        let trace = sim.run(30, 300);
        assert_eq!(trace.last(), 300, "at the floor");
        assert!(sim.controller.observe(sim.now, sim.acked.into(), 1_000_000).too_slow);
        let later = sim.run(120, 300);
        assert_eq!(later.too_slow, later.targets.len(), "stays too slow between its dropped GOPs");
        let back = sim.run(60, 10_000);
        assert!((5 * 5..15 * 5).contains(&back.too_slow), "10 s without a dropped GOP ends it: {}", back.too_slow);
        sim.run(30, 300);
        assert!(sim.controller.too_slow());
        let later = sim.now + Duration::from_secs(60);
        sim.controller.new_connection(later);
        let reconnected = sim.controller.observe(later, Some(1), 0);
        assert!(reconnected.too_slow, "a while away reconnecting proves nothing");
        assert!(trace.shed > 0, "whole GOPs dropped to bound the delay");
        assert!(trace.backlogs[trace.backlogs.len() - 25..].iter().all(|&b| b < 4.0), "bounded by the drops");
    }

    #[test]
    fn a_dead_destination_moves_nothing() {
        let mut sim = Sim::new();
        sim.run(10, 10_000);
        let trace = sim.run(10, 0);
        assert!(trace.targets.iter().all(|&t| t == 2500), "no bandwidth learnt from a dead link");
        let reading = sim.controller.observe(sim.now + TICK, Some(sim.acked), 100_000);
        assert_eq!(reading.link, Link::Failing);
        assert!(reading.shed, "its backlog is shed meanwhile");
    }

    #[test]
    fn a_new_connection_keeps_what_was_learnt() {
        let mut sim = Sim::new();
        sim.run(60, 1000);
        let learnt = sim.controller.target_kbps();
        sim.controller.new_connection(sim.now);
        assert_eq!(sim.controller.observe(sim.now, None, 0).link, Link::Unknown, "no connection found yet");
        let first = sim.controller.observe(sim.now + TICK, Some(5000), 1_000_000);
        assert_eq!((first.link, first.target_kbps), (Link::Unknown, learnt), "a first second is no verdict");
        let reading = sim.controller.observe(sim.now + 6 * TICK, Some(200_000), 0);
        assert_eq!((reading.link, reading.target_kbps), (Link::Clear, learnt));
    }

    fn reading(target_kbps: u32, link: Link, too_slow: bool) -> Reading {
        Reading { uplink_kbps: 0, backlog_s: 0.0, target_kbps, link, too_slow, shed: false }
    }

    #[test]
    fn the_encoder_follows_the_slowest_it_can_rescue() {
        let fast = reading(2500, Link::Clear, false);
        let slow = reading(900, Link::Congested, false);
        let hopeless = reading(300, Link::Congested, true);
        let dead = reading(300, Link::Failing, false);
        assert_eq!(encoder_kbps([&fast, &slow], 2500), 900, "the slowest live one");
        assert_eq!(encoder_kbps([&fast, &hopeless], 2500), 2500, "not dragged down by one too slow");
        assert_eq!(encoder_kbps([&fast, &dead], 2500), 2500, "nor by one failing");
        assert_eq!(encoder_kbps([&hopeless], 2500), 300, "alone, the floor is all it can do");
        assert_eq!(encoder_kbps([&dead], 1200), 1200, "nothing to follow: stays");
        assert_eq!(encoder_kbps([], 1200), 1200);
    }
}
