//! Pure judgements about whether data is moving: a bus error is not the only way a stream
//! dies; on a black-holed network nothing errors, the bytes just stop.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A live destination whose socket took no bytes for this long is declared stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(3);
/// Handshake, connect and publish must be done within this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A destination live this long has its backoff reset.
pub const STABLE_AFTER: Duration = Duration::from_secs(20);

/// Tracks a counter and when it last moved.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    value: u64,
    since: Instant,
}

impl Heartbeat {
    pub fn new(now: Instant) -> Self {
        Heartbeat { value: 0, since: now }
    }

    /// Records the counter; returns how long it has not moved.
    pub fn beat(&mut self, value: u64, now: Instant) -> Duration {
        if value != self.value {
            self.value = value;
            self.since = now;
        }
        now.saturating_duration_since(self.since)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Connecting,
    Live,
    Stalled,
    TimedOut,
}

/// One connection's life: connecting until data goes out, then live until it stops.
#[derive(Debug, Clone)]
pub struct Progress {
    started: Instant,
    live_since: Option<Instant>,
    written: Heartbeat,
    acked: Heartbeat,
}

impl Progress {
    pub fn new(now: Instant) -> Self {
        Progress { started: now, live_since: None, written: Heartbeat::new(now), acked: Heartbeat::new(now) }
    }

    pub fn live_since(&self) -> Option<Instant> {
        self.live_since
    }

    /// `bytes_acked` is what the server acknowledged, when known: written bytes alone
    /// keep rising for a while into a dead link's send buffer. `upstream_flowing` is false
    /// while the producer itself delivers nothing: a quiet socket is then not this
    /// destination's fault.
    pub fn observe(
        &mut self,
        now: Instant,
        buffers_in: u64,
        bytes_out: u64,
        bytes_acked: Option<u64>,
        upstream_flowing: bool,
    ) -> Verdict {
        let acked = bytes_acked.unwrap_or(bytes_out);
        let idle = self.written.beat(bytes_out, now).max(self.acked.beat(acked, now));
        if !upstream_flowing {
            self.written = Heartbeat { value: bytes_out, since: now };
            self.acked = Heartbeat { value: acked, since: now };
        }
        match self.live_since {
            None if buffers_in >= 2 && bytes_out > 0 => {
                self.live_since = Some(now);
                Verdict::Live
            }
            None if now.saturating_duration_since(self.started) >= CONNECT_TIMEOUT => Verdict::TimedOut,
            None => Verdict::Connecting,
            Some(_) if upstream_flowing && idle >= STALL_AFTER => Verdict::Stalled,
            Some(_) => Verdict::Live,
        }
    }
}

/// Bits per second over the last few seconds.
#[derive(Debug, Default, Clone)]
pub struct RateMeter {
    samples: VecDeque<(Instant, u64)>,
}

const RATE_WINDOW: Duration = Duration::from_secs(3);

impl RateMeter {
    pub fn record(&mut self, now: Instant, total_bytes: u64) {
        self.samples.push_back((now, total_bytes));
        while self.samples.front().is_some_and(|(t, _)| now.saturating_duration_since(*t) > RATE_WINDOW) {
            self.samples.pop_front();
        }
    }

    pub fn kbps(&self) -> u64 {
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
                let seconds = t1.duration_since(*t0).as_secs_f64();
                (b1.saturating_sub(*b0) as f64 * 8.0 / 1000.0 / seconds).round() as u64
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn connecting_then_live_then_stalled() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        assert_eq!(p.observe(t0, 0, 0, None, true), Verdict::Connecting);
        assert_eq!(p.observe(t0 + S, 1, 3000, None, true), Verdict::Connecting, "one buffer may still be blocked");
        assert_eq!(p.observe(t0 + 2 * S, 5, 9000, None, true), Verdict::Live);
        assert_eq!(p.live_since(), Some(t0 + 2 * S));
        assert_eq!(p.observe(t0 + 4 * S, 9, 9000, None, true), Verdict::Live);
        assert_eq!(p.observe(t0 + 5 * S, 9, 9000, None, true), Verdict::Stalled);
    }

    #[test]
    fn a_quiet_producer_is_not_the_destinations_fault() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        p.observe(t0, 2, 100, None, true);
        assert_eq!(p.observe(t0 + 10 * S, 2, 100, None, false), Verdict::Live);
        assert_eq!(p.observe(t0 + 11 * S, 2, 100, None, true), Verdict::Live);
        assert_eq!(p.observe(t0 + 14 * S, 2, 100, None, true), Verdict::Stalled);
    }

    #[test]
    fn written_bytes_without_acks_are_a_stall() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        assert_eq!(p.observe(t0, 2, 100, Some(100), true), Verdict::Live);
        assert_eq!(p.observe(t0 + S, 9, 5000, Some(100), true), Verdict::Live);
        assert_eq!(p.observe(t0 + 3 * S, 20, 90_000, Some(100), true), Verdict::Stalled);
    }

    #[test]
    fn never_publishing_times_out() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        assert_eq!(p.observe(t0 + 14 * S, 1, 0, None, true), Verdict::Connecting);
        assert_eq!(p.observe(t0 + 15 * S, 1, 0, None, true), Verdict::TimedOut);
    }

    #[test]
    fn heartbeat_measures_quiet_time() {
        let t0 = Instant::now();
        let mut h = Heartbeat::new(t0);
        assert_eq!(h.beat(0, t0 + S), S);
        assert_eq!(h.beat(1, t0 + 2 * S), Duration::ZERO);
        assert_eq!(h.beat(1, t0 + 5 * S), 3 * S);
    }

    #[test]
    fn rate_over_the_window() {
        let t0 = Instant::now();
        let mut r = RateMeter::default();
        assert_eq!(r.kbps(), 0);
        r.record(t0, 0);
        r.record(t0 + S, 100_000);
        r.record(t0 + 2 * S, 200_000);
        assert_eq!(r.kbps(), 800);
        r.record(t0 + 10 * S, 200_000);
        assert_eq!(r.kbps(), 0, "old samples leave the window");
    }
}
