//! One pipeline per destination (`appsrc ! rtmp2sink`), so a destination that fails can
//! be torn down and rebuilt without touching the camera or the other destinations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::fanout::{Fanout, Shedding};
use super::tcp_acks;
use crate::secrets::Secret;

/// Enough for several seconds at HD bitrates; beyond that the oldest data is dropped.
const QUEUE_BYTES: u64 = 4 * 1024 * 1024;

pub struct DestinationPipeline {
    pub pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst::Element,
    buffers_in: Arc<AtomicU64>,
    acks: tcp_acks::AckCounter,
    shedding: Arc<Shedding>,
}

/// What the server took and what still waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Bytes the server acknowledged on this destination's connection.
    pub acked: u64,
    /// Bytes waiting in front of the socket and in it, not yet acknowledged.
    pub backlog: u64,
}

impl DestinationPipeline {
    pub fn start(id: u64, location: &Secret, fanout: &Fanout) -> Result<Self, String> {
        let pipeline = gst::Pipeline::with_name(&format!("destination-{id}"));
        let src = gst_app::AppSrc::builder()
            .is_live(true)
            .format(gst::Format::Time)
            .max_bytes(QUEUE_BYTES)
            .block(false)
            .build();
        src.set_property_from_str("leaky-type", "downstream");
        let sink = gst::ElementFactory::make("rtmp2sink")
            .property("location", location.expose())
            // The producer paces the stream already; timestamps restart per destination.
            .property("sync", false)
            .build()
            .map_err(|_| "the GStreamer element rtmp2sink is not installed".to_string())?;
        pipeline.add_many([src.upcast_ref(), &sink]).map_err(|e| e.to_string())?;
        src.link(&sink).map_err(|_| "cannot link appsrc to rtmp2sink".to_string())?;

        // rtmp2sink renders only once published, so a second buffer entering it means the
        // first one went out.
        let buffers_in = Arc::new(AtomicU64::new(0));
        let counter = buffers_in.clone();
        if let Some(pad) = sink.static_pad("sink") {
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counter.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        }
        if pipeline.set_state(gst::State::Playing).is_err() {
            let why = super::drain_bus(pipeline.upcast_ref()).unwrap_or_else(|| "rtmp2sink refused to start".into());
            super::shut_down(pipeline.upcast());
            return Err(why);
        }
        let shedding = Arc::new(Shedding::default());
        fanout.attach(id, src.clone(), shedding.clone());
        let peers = Arc::new(OnceLock::new());
        if let Some(address) = tcp_acks::server_address(location.expose()) {
            let peers = peers.clone();
            std::thread::spawn(move || peers.set(tcp_acks::resolve(&address)));
        }
        Ok(DestinationPipeline { pipeline, src, sink, buffers_in, acks: tcp_acks::AckCounter::new(peers), shedding })
    }

    pub fn buffers_in(&self) -> u64 {
        self.buffers_in.load(Ordering::Relaxed)
    }

    /// What the server acknowledged (TCP) on this destination's own connection and what
    /// waits for it, while the connection can be found.
    pub fn delivery(&mut self) -> Option<Delivery> {
        let socket = self.acks.delivery()?;
        Some(Delivery { acked: socket.acked, backlog: self.src.current_level_bytes() + socket.unacked })
    }

    /// On: drop whole GOPs for this destination from the next keyframe (see `Fanout`).
    pub fn shed(&self, on: bool) {
        self.shedding.set(on);
    }

    pub fn gops_dropped(&self) -> u64 {
        self.shedding.gops_dropped()
    }

    /// Bytes written to the server's socket by this connection.
    pub fn bytes_out(&self) -> u64 {
        self.sink
            .property::<Option<gst::Structure>>("stats")
            .and_then(|s| s.get::<u64>("out-bytes-total").ok())
            .unwrap_or(0)
    }
}
