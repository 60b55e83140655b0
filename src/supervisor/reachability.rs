//! While a destination waits out its backoff, a cheap TCP probe watches its server: when
//! the server turns from unreachable to reachable (restarted, network back) the wait is
//! cut short. A server that is reachable but refuses the stream never flips, so it gets
//! the full backoff and is not hammered.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::media::tcp_acks::server_address;
use crate::secrets::Secret;

const PROBE_EVERY: Duration = Duration::from_millis(500);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Reachability {
    in_flight: Option<Receiver<bool>>,
    last_probe: Option<Instant>,
    seen_unreachable: bool,
}

impl Reachability {
    /// Call on every tick of a backoff; true when the server has just come back.
    pub fn came_back(&mut self, location: &Secret, now: Instant) -> bool {
        if let Some(rx) = &self.in_flight {
            match rx.try_recv() {
                Ok(reachable) => {
                    self.in_flight = None;
                    if self.observe(reachable) {
                        return true;
                    }
                }
                Err(mpsc::TryRecvError::Empty) => return false,
                Err(mpsc::TryRecvError::Disconnected) => self.in_flight = None,
            }
        }
        if self.last_probe.is_none_or(|t| now.saturating_duration_since(t) >= PROBE_EVERY) {
            if let Some(address) = server_address(location.expose()) {
                let (tx, rx) = mpsc::channel();
                std::thread::spawn(move || {
                    let _ = tx.send(reachable(&address));
                });
                self.in_flight = Some(rx);
            }
            self.last_probe = Some(now);
        }
        false
    }

    /// True on the first reachable answer after an unreachable one.
    fn observe(&mut self, reachable: bool) -> bool {
        if reachable {
            std::mem::take(&mut self.seen_unreachable)
        } else {
            self.seen_unreachable = true;
            false
        }
    }

    /// After a working connection broke, the server is presumed gone: the first probe
    /// that reaches it again ends the wait (a restarted server is back within a second).
    pub fn presume_gone(&mut self) {
        *self = Reachability { seen_unreachable: true, ..Reachability::default() };
    }

    /// A new connection attempt starts from scratch.
    pub fn reset(&mut self) {
        *self = Reachability::default();
    }
}

fn reachable(address: &str) -> bool {
    address
        .to_socket_addrs()
        .map(|mut addrs| addrs.any(|a| TcpStream::connect_timeout(&a, PROBE_TIMEOUT).is_ok()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_only_from_unreachable_to_reachable() {
        let mut r = Reachability::default();
        assert!(!r.observe(true), "reachable all along is no news");
        assert!(!r.observe(false), "going away is no news either");
        assert!(!r.observe(false));
        assert!(r.observe(true), "coming back is");
        assert!(!r.observe(true), "and only once");
    }

    #[test]
    fn a_broken_working_connection_retries_at_the_first_reachable_probe() {
        let mut r = Reachability::default();
        r.presume_gone();
        assert!(r.observe(true));
    }

    #[test]
    fn probes_a_real_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        assert!(reachable(&address));
        drop(listener);
        assert!(!reachable(&address));
        assert!(!reachable("no-such-host.invalid:1935"));
    }
}
