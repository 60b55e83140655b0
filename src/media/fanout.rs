//! Hands the muxed FLV stream from the one producer to every destination's pipeline.
//! Pushing never blocks: a destination that stalls drops its own oldest data and is
//! restarted by the supervisor, while the others keep flowing.
//!
//! **Invariant:** a destination's video starts at a keyframe and loses only whole GOPs:
//! while its `Shedding` is on, a keyframe starts a GOP whose video it does not get (its
//! audio goes on), so its delay stops growing and its picture never decodes broken.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer_app as gst_app;

use super::flv;

#[derive(Default)]
pub struct Fanout {
    outlets: Mutex<Outlets>,
    samples: AtomicU64,
}

#[derive(Default)]
struct Outlets {
    /// The muxer's caps; their `streamheader` (FLV header, metadata, codec set-up) is
    /// what each destination must send first, however late it joins.
    caps: Option<gst::Caps>,
    list: Vec<Outlet>,
}

struct Outlet {
    id: u64,
    src: gst_app::AppSrc,
    shedding: Arc<Shedding>,
    waiting_for_keyframe: bool,
    dropping_gop: bool,
}

/// One destination's wish to drop GOPs (set by its supervisor) and how many it dropped.
#[derive(Default)]
pub struct Shedding {
    wanted: AtomicBool,
    gops_dropped: AtomicU64,
}

impl Shedding {
    /// On: the next keyframe starts a GOP this destination does not get.
    pub fn set(&self, on: bool) {
        self.wanted.store(on, Ordering::Relaxed);
    }

    pub fn gops_dropped(&self) -> u64 {
        self.gops_dropped.load(Ordering::Relaxed)
    }
}

impl Fanout {
    pub fn attach(&self, id: u64, src: gst_app::AppSrc, shedding: Arc<Shedding>) {
        let mut outlets = self.outlets.lock().expect("fanout lock");
        if let Some(caps) = &outlets.caps {
            src.set_caps(Some(caps));
        }
        outlets.list.push(Outlet { id, src, shedding, waiting_for_keyframe: true, dropping_gop: false });
    }

    pub fn detach(&self, id: u64) {
        self.outlets.lock().expect("fanout lock").list.retain(|o| o.id != id);
    }

    /// Buffers the muxer has produced so far: the producer's heartbeat.
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    pub fn deliver(&self, sample: &gst::Sample) {
        self.samples.fetch_add(1, Ordering::Relaxed);
        let Some(buffer) = sample.buffer_owned() else { return };
        let mut outlets = self.outlets.lock().expect("fanout lock");
        if let Some(caps) = sample.caps_owned().filter(|c| outlets.caps.as_ref() != Some(c)) {
            for outlet in &outlets.list {
                outlet.src.set_caps(Some(&caps));
            }
            outlets.caps = Some(caps);
        }
        // Header buffers travel in the caps' streamheader instead.
        if buffer.flags().contains(gst::BufferFlags::HEADER) {
            return;
        }
        let (video, keyframe) = buffer
            .map_readable()
            .map(|m| (flv::is_video_tag(&m), flv::is_video_keyframe_tag(&m)))
            .unwrap_or((false, false));
        for outlet in outlets.list.iter_mut() {
            if keyframe {
                outlet.dropping_gop = !outlet.waiting_for_keyframe && outlet.shedding.wanted.load(Ordering::Relaxed);
                outlet.waiting_for_keyframe = false;
                if outlet.dropping_gop {
                    outlet.shedding.gops_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            if outlet.waiting_for_keyframe || (outlet.dropping_gop && video) {
                continue;
            }
            // A full or stopped destination refuses; that is its supervisor's business.
            let _ = outlet.src.push_buffer(buffer.clone());
        }
    }
}
