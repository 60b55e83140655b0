//! Logs go to the journal when systemd started us (JOURNAL_STREAM is set), else stderr;
//! the same lines are also kept in memory, the last [`RING_LINES`], for the web's
//! `/api/logs` (`recent`).
//!
//! Invariant: the ring holds exactly what the formatter printed (secrets are masked
//! before they reach any log: a `Secret` cannot print itself), and never more than
//! [`RING_LINES`] lines.

use std::collections::VecDeque;
use std::io;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

/// How many recent lines the ring keeps.
pub const RING_LINES: usize = 500;

static RING: OnceLock<Ring> = OnceLock::new();

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ring = RING.get_or_init(|| Ring::new(RING_LINES));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_ansi(false).with_target(false).with_writer(ring));
    if std::env::var_os("JOURNAL_STREAM").is_some()
        && let Ok(journald) = tracing_journald::layer()
    {
        registry.with(journald).init();
        return;
    }
    registry.with(fmt::layer().with_writer(std::io::stderr).with_target(false)).init();
}

/// The last `lines` lines logged (oldest first); none before `init`.
pub fn recent(lines: usize) -> Vec<String> {
    RING.get().map(|ring| ring.last(lines)).unwrap_or_default()
}

/// The last `capacity` lines written to it.
pub struct Ring {
    capacity: usize,
    lines: Mutex<VecDeque<String>>,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring { capacity, lines: Mutex::new(VecDeque::with_capacity(capacity)) }
    }

    fn push(&self, text: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for line in text.lines().filter(|l| !l.is_empty()) {
            if lines.len() == self.capacity {
                lines.pop_front();
            }
            lines.push_back(line.to_string());
        }
    }

    pub fn last(&self, n: usize) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        lines.iter().skip(lines.len().saturating_sub(n)).cloned().collect()
    }
}

/// One event's text, gathered by the formatter and pushed whole when it is dropped.
pub struct RingWriter<'a> {
    ring: &'a Ring,
    buf: Vec<u8>,
}

impl io::Write for RingWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RingWriter<'_> {
    fn drop(&mut self) {
        self.ring.push(&String::from_utf8_lossy(&self.buf));
    }
}

impl MakeWriter<'_> for &'static Ring {
    type Writer = RingWriter<'static>;

    fn make_writer(&self) -> RingWriter<'static> {
        RingWriter { ring: self, buf: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_lines_in_order() {
        let ring: &'static Ring = Box::leak(Box::new(Ring::new(3)));
        for text in ["one\n", "two\nthree\n", "four\n"] {
            let mut writer = ring.make_writer();
            io::Write::write_all(&mut writer, text.as_bytes()).unwrap();
        }
        assert_eq!(ring.last(10), ["two", "three", "four"]);
        assert_eq!(ring.last(1), ["four"]);
        assert!(ring.last(0).is_empty());
    }

    #[test]
    fn formatted_events_land_in_the_ring_with_secrets_masked() {
        let ring: &'static Ring = Box::leak(Box::new(Ring::new(RING_LINES)));
        let subscriber =
            tracing_subscriber::registry().with(fmt::layer().with_ansi(false).with_target(false).with_writer(ring));
        let key = crate::secrets::Secret::new("sk-live-1234");
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!("destination {:?} failed: {}", key, "connection refused");
        });
        let lines = ring.last(RING_LINES);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("WARN") && lines[0].contains("failed: connection refused"), "{lines:?}");
        assert!(!lines[0].contains("sk-live-1234"), "{lines:?}");
    }
}
