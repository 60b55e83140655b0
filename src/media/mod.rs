//! Cameras, microphones, encoders and the GStreamer pipelines.
//!
//! `discovery` reads the system, `plan` decides (pure), the rest runs what was decided.

pub mod destination;
pub mod discovery;
mod elements;
pub mod fanout;
mod flv;
pub mod plan;
pub mod preview;
pub mod producer;
pub mod tcp_acks;
mod v4l2;

use std::sync::mpsc;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

/// Why the camera/encoder side is not running.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceError {
    /// An element the stream cannot do without is not in this firmware. No retry brings
    /// it: an update that lost one is judged at once (`update::verdict::judge`).
    Missing(&'static str),
    /// Anything else; it may pass (a camera plugged in, a device freed).
    Failed(String),
}

impl From<String> for SourceError {
    fn from(why: String) -> Self {
        SourceError::Failed(why)
    }
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::Missing(element) => write!(f, "the GStreamer element {element} is not installed"),
            SourceError::Failed(why) => f.write_str(why),
        }
    }
}

/// How long a pipeline may take to stop before the process gives up on it.
pub const TEARDOWN_LIMIT: Duration = Duration::from_secs(10);

/// Empties the pipeline's bus and returns its first error or end-of-stream, as a line
/// naming the element. Every message must be taken off: a queued message holds a
/// reference to its source, and so would keep a torn-down pipeline alive for ever.
pub fn drain_bus(pipeline: &gst::Element) -> Option<String> {
    let bus = pipeline.bus()?;
    let mut first = None;
    while let Some(message) = bus.pop() {
        if first.is_none() && matches!(message.type_(), gst::MessageType::Error | gst::MessageType::Eos) {
            first = Some(describe(&message));
        }
    }
    first
}

pub fn describe(message: &gst::Message) -> String {
    let from = message.src().map(|s| s.name().to_string()).unwrap_or_default();
    match message.view() {
        gst::MessageView::Error(err) => format!("{from}: {}", err.error()),
        gst::MessageView::Eos(_) => format!("{from}: the stream ended"),
        _ => format!("{from}: {:?}", message.type_()),
    }
}

/// Stops a pipeline without blocking the caller. A pipeline that has not stopped within
/// `TEARDOWN_LIMIT` means a wedged driver or element: the process exits and systemd
/// starts it afresh, which is the only sure way out.
pub fn shut_down(pipeline: gst::Element) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let name = pipeline.name().to_string();
    std::thread::spawn(move || {
        let _ = pipeline.set_state(gst::State::Null);
        // Drop what is still queued: those messages hold references to the elements.
        if let Some(bus) = pipeline.bus() {
            bus.set_flushing(true);
        }
        let _ = done_tx.send(());
    });
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(TEARDOWN_LIMIT) {
            tracing::error!("pipeline {name} did not stop within {TEARDOWN_LIMIT:?}; exiting for a clean restart");
            std::process::exit(70);
        }
    });
}

/// The discovery table `probe` prints.
pub fn probe_report(found: &discovery::Discovery) -> String {
    let mut out = String::from("Cameras:\n");
    if found.cameras.is_empty() {
        out.push_str("  (none)\n");
    }
    for c in &found.cameras {
        out.push_str(&format!(
            "  {:<12} {:<16} {:<24} {:<16} {}\n",
            c.device.display(),
            c.driver,
            c.card,
            format!("{:?}", c.kind()),
            c.formats.join(",")
        ));
    }
    out.push_str("Audio inputs:\n");
    if found.audio_inputs.is_empty() {
        out.push_str("  (none)\n");
    }
    for a in &found.audio_inputs {
        out.push_str(&format!("  {:<12} {}\n", a.alsa_device(), a.name));
    }
    out.push_str("GStreamer elements:\n");
    for name in discovery::ELEMENTS {
        let mark = if found.has(name) { "yes" } else { "no" };
        out.push_str(&format!("  {name:<14} {mark}\n"));
    }
    out
}
