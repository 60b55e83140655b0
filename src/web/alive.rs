//! The watchdog's view of the web pages: the box asks itself for a page every
//! `PROBE_EVERY`; the service stops feeding systemd's watchdog once nothing has answered for
//! `SILENT_LIMIT`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::IO_TIMEOUT;

/// How often the web asks itself for a page, and how long it may go without an answer
/// before the service stops feeding systemd's watchdog (`WatchdogSec=30` then restarts it:
/// a web that answers nothing is a box nobody can reach).
pub(super) const PROBE_EVERY: Duration = Duration::from_secs(5);
pub(super) const SILENT_LIMIT: Duration = Duration::from_secs(60);

/// Whether the web pages still answer, from a request the box sends itself every
/// `PROBE_EVERY` (loopback: counted in no connection limit, so a stranger holding every
/// connection does not get the service restarted).
#[derive(Clone)]
pub struct Alive {
    /// When the pages last answered; none: not watched (no thread to watch them).
    last: Option<Arc<Mutex<Instant>>>,
    silent_limit: Duration,
}

impl Alive {
    pub fn answers(&self, now: Instant) -> bool {
        self.last.as_ref().is_none_or(|last| {
            let last = *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            now.saturating_duration_since(last) < self.silent_limit
        })
    }

    /// Asks `addr` for a probe page every `every`; each answer counts.
    pub(super) fn probe(addr: SocketAddr, every: Duration, silent_limit: Duration) -> Alive {
        let last = Arc::new(Mutex::new(Instant::now()));
        let watched = last.clone();
        let asked = move || -> std::io::Result<bool> {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
            stream.set_read_timeout(Some(IO_TIMEOUT))?;
            stream.set_write_timeout(Some(IO_TIMEOUT))?;
            stream.write_all(b"GET /generate_204 HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut head = [0; 9];
            stream.read_exact(&mut head)?;
            Ok(head.starts_with(b"HTTP/1."))
        };
        let spawned = std::thread::Builder::new().name("web-alive".into()).spawn(move || {
            let mut silent = false;
            loop {
                match asked() {
                    Ok(true) => {
                        *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
                        silent = false;
                    }
                    result if !silent => {
                        tracing::warn!("web: the pages did not answer the box itself ({result:?})");
                        silent = true;
                    }
                    _ => {}
                }
                std::thread::sleep(every);
            }
        });
        match spawned {
            Ok(_) => Alive { last: Some(watched), silent_limit },
            Err(e) => {
                tracing::error!("web: cannot watch the pages ({e}); they are taken as answering");
                Alive { last: None, silent_limit }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_that_stop_answering_are_seen_silent() {
        let answering = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = answering.local_addr().unwrap();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for stream in answering.incoming() {
                let mut stream = stream.unwrap();
                let _ = stream.read(&mut [0; 256]);
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
            }
        });
        let limit = Duration::from_millis(600);
        let alive = Alive::probe(addr, Duration::from_millis(50), limit);
        std::thread::sleep(limit * 2);
        assert!(alive.answers(Instant::now()), "an answering page is alive");

        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let alive = Alive::probe(silent.local_addr().unwrap(), Duration::from_millis(50), limit);
        assert!(alive.answers(Instant::now()), "not silent before the limit");
        std::thread::sleep(limit * 2);
        assert!(!alive.answers(Instant::now()), "a page that never answers is silent");
        drop(silent);
    }
}
