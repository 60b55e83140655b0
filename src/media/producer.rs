//! The one pipeline that owns the camera, the microphone and the encoders:
//! video + audio → `flvmux streamable=true` → appsink → fanout.

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::elements::{add_chain, make};
use super::fanout::Fanout;
use super::plan::{Element, MUX, Plan};

pub struct Producer {
    pub pipeline: gst::Pipeline,
    pub fanout: Arc<Fanout>,
    sink: gst_app::AppSink,
}

impl Producer {
    pub fn start(plan: &Plan) -> Result<Producer, String> {
        let pipeline = gst::Pipeline::with_name("producer");
        let (_, video) = add_chain(pipeline.upcast_ref(), &plan.video)?;
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
        Ok(Producer { pipeline, fanout, sink })
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
