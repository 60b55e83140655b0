//! Jittered exponential backoff: a sub-second first retry (a restarted server is back at
//! once), doubling to a cap so a dead server is not hammered, jittered so a fleet does not
//! reconnect in lockstep.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(500);
const CAP: Duration = Duration::from_secs(30);
const JITTER: f64 = 0.2;

#[derive(Debug, Default, Clone)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// `jitter` is uniform in [0, 1); the delay varies by ±20 % around the nominal one.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let nominal = FIRST.saturating_mul(1u32 << self.attempt.min(16)).min(CAP);
        self.attempt = self.attempt.saturating_add(1);
        nominal.mul_f64(1.0 - JITTER + 2.0 * JITTER * jitter.clamp(0.0, 1.0))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_half_a_second_to_the_cap() {
        let mut b = Backoff::default();
        let nominal: Vec<u64> = (0..9).map(|_| b.next_delay(0.5).as_millis() as u64).collect();
        assert_eq!(nominal, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let mut low = Backoff::default();
        let mut high = Backoff::default();
        assert_eq!(low.next_delay(0.0), Duration::from_millis(400));
        assert_eq!(high.next_delay(1.0), Duration::from_millis(600));
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::default();
        for _ in 0..5 {
            b.next_delay(0.5);
        }
        b.reset();
        assert_eq!(b.next_delay(0.5), Duration::from_millis(500));
    }
}
