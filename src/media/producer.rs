//! The one pipeline that owns the camera, the microphone and the encoders:
//! video + audio → `flvmux streamable=true` → appsink → fanout, and, where the plan has
//! one, the preview branch off the raw video (`tee`) into an appsink → `Preview`.
//! A preview branch that cannot be built is left out: the stream starts without it.

use std::sync::Arc;
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::elements::{add_chain, make};
use super::fanout::Fanout;
use super::plan::{BitrateControl, Element, MUX, Plan, PreviewPlan};
use super::preview::{Preview, Unavailable};

pub struct Producer {
    pub pipeline: gst::Pipeline,
    pub fanout: Arc<Fanout>,
    sink: gst_app::AppSink,
    /// The element whose bitrate follows the uplink, and how.
    encoder: Option<(gst::Element, BitrateControl)>,
}

impl Producer {
    pub fn start(plan: &Plan, preview: &Arc<Preview>) -> Result<Producer, String> {
        let pipeline = gst::Pipeline::with_name("producer");
        let video = match &plan.preview {
            PreviewPlan::Branch { after, branch } => {
                let (_, raw) = add_chain(pipeline.upcast_ref(), &plan.video[..*after])?;
                let (encode, video) = add_chain(pipeline.upcast_ref(), &plan.video[*after..])?;
                let tee = make(&Element { factory: "tee".into(), props: vec![] })?;
                pipeline.add(&tee).map_err(|e| e.to_string())?;
                gst::Element::link_many([&raw, &tee, &encode])
                    .map_err(|_| "cannot link the raw video to the encoder through a tee".to_string())?;
                if let Err(why) = add_branch(&pipeline, &tee, branch, preview) {
                    tracing::warn!("preview: left out, the stream runs without it: {why}");
                    preview.unavailable(Unavailable::Failed(why));
                }
                video
            }
            PreviewPlan::Off(why) => {
                preview.unavailable(why.clone());
                add_chain(pipeline.upcast_ref(), &plan.video)?.1
            }
        };
        let (_, audio) = add_chain(pipeline.upcast_ref(), &plan.audio)?;
        let mux = make(&Element { factory: MUX.into(), props: vec![("streamable".into(), "true".into())] })?;
        let sink = gst_app::AppSink::builder().name("fanout").sync(false).build();
        pipeline.add_many([&mux, sink.upcast_ref()]).map_err(|e| e.to_string())?;
        video.link(&mux).map_err(|_| "cannot link the video to flvmux".to_string())?;
        audio.link(&mux).map_err(|_| "cannot link the audio to flvmux".to_string())?;
        mux.link(&sink).map_err(|_| "cannot link flvmux to the fanout".to_string())?;

        let fanout = Arc::new(Fanout::default());
        let to_fanout = fanout.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    to_fanout.deliver(&sample);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        if pipeline.set_state(gst::State::Playing).is_err() {
            let why = super::drain_bus(pipeline.upcast_ref()).unwrap_or_else(|| "the pipeline refused to start".into());
            super::shut_down(pipeline.upcast());
            return Err(why);
        }
        let encoder = plan.bitrate.element().and_then(|factory| {
            // The pipeline's own elements only: the preview's bin has no encoder of these.
            let mut elements = pipeline.iterate_elements().into_iter().flatten();
            elements.find(|e| e.factory().is_some_and(|f| f.name() == factory)).map(|e| (e, plan.bitrate))
        });
        Ok(Producer { pipeline, fanout, sink, encoder })
    }

    /// Sets the video bitrate while streaming (no new keyframe, no restart). False where
    /// the plan has no way to.
    pub fn set_bitrate(&self, kbps: u32) -> bool {
        match &self.encoder {
            Some((x264, BitrateControl::X264)) => x264.set_property("bitrate", kbps),
            Some((v4l2, BitrateControl::V4l2(_))) => {
                let mut controls = v4l2
                    .property::<Option<gst::Structure>>("extra-controls")
                    .unwrap_or_else(|| gst::Structure::new_empty("controls"));
                controls.set("video_bitrate", i32::try_from(kbps.saturating_mul(1000)).unwrap_or(i32::MAX));
                v4l2.set_property("extra-controls", controls);
            }
            _ => return false,
        }
        true
    }

    /// Asks the encoder for a keyframe now, so a destination that just joined starts at
    /// once instead of waiting up to a whole GOP. (A camera that encodes may ignore it.)
    pub fn request_keyframe(&self) {
        let request = gst::Structure::builder("GstForceKeyUnit")
            .field("running-time", u64::MAX) // GST_CLOCK_TIME_NONE: as soon as possible
            .field("all-headers", true)
            .field("count", 0u32)
            .build();
        self.sink.send_event(gst::event::CustomUpstream::new(request));
    }
}

/// Builds the preview branch in a bin of its own, so that a failure leaves nothing in
/// the pipeline, and links it to `tee`. Pictures go to `preview`.
fn add_branch(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    branch: &[Element],
    preview: &Arc<Preview>,
) -> Result<(), String> {
    let bin = gst::Bin::with_name("preview");
    let (valve, last) = add_chain(&bin, branch)?;
    let sink = last.downcast::<gst_app::AppSink>().map_err(|_| "the preview branch must end in an appsink")?;
    let pad = valve.static_pad("sink").ok_or("the valve has no sink pad")?;
    let ghost = gst::GhostPad::with_target(&pad).map_err(|e| e.to_string())?;
    bin.add_pad(&ghost).map_err(|e| e.to_string())?;
    pipeline.add(&bin).map_err(|e| e.to_string())?;
    if tee.link(&bin).is_err() {
        let _ = pipeline.remove(&bin);
        return Err("cannot link the raw video to the preview branch".into());
    }
    let generation = preview.attach(valve, Instant::now());
    let preview = preview.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(jpeg) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                    preview.deliver(generation, &jpeg, Instant::now());
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(())
}
