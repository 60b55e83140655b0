//! Deciding the pipeline: a pure function of the settings and what discovery found.
//! The plan can be printed (`probe`), diffed and unit-tested without any hardware.

use crate::config::{AudioSource, Config, EncoderChoice, VideoSource};
use crate::secrets::Secret;

use super::SourceError;
use super::discovery::{Camera, CameraKind, Discovery};
use super::preview::Unavailable;

/// One GStreamer element with its properties as `gst-launch-1.0` would spell them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub factory: String,
    pub props: Vec<(String, String)>,
}

/// A stream location holds the key: it is a `Secret`, and `Debug` shows the masked one.
#[derive(Clone, PartialEq, Eq)]
pub struct PlannedDestination {
    pub name: String,
    pub location: Secret,
    pub masked_location: String,
}

impl std::fmt::Debug for PlannedDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.name, self.masked_location)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Source to parsed H.264, ending in a queue in front of the muxer.
    pub video: Vec<Element>,
    /// Source to parsed AAC, ending in a queue in front of the muxer.
    pub audio: Vec<Element>,
    pub destinations: Vec<PlannedDestination>,
    pub preview: PreviewPlan,
    /// How the video bitrate follows the uplink while streaming.
    pub bitrate: BitrateControl,
    /// Why each choice was made, in words, for `probe` and the log.
    pub reasons: Vec<String>,
}

/// The live preview's branch off the raw video, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewPlan {
    /// A `tee` after the first `after` elements of `video` (where frames are raw, before
    /// the H.264 encoder) feeds `branch`: valve, rate limit, leaky queue, scale, JPEG
    /// encoder, appsink.
    Branch {
        after: usize,
        branch: Vec<Element>,
    },
    Off(Unavailable),
}

/// How the video bitrate can change while streaming, on which element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitrateControl {
    /// `x264enc`'s `bitrate` (kbit/s), which x264 takes without a new keyframe.
    X264,
    /// The V4L2 `video_bitrate` control (bit/s) in this element's `extra-controls`, which
    /// GStreamer applies at once to the open device: the Pi's encoder (`v4l2h264enc`) or
    /// the legacy Pi camera's own H.264 (`v4l2src`).
    V4l2(&'static str),
    /// A webcam's own H.264: UVC has no standard bitrate control; only whole GOPs can go.
    Fixed,
    /// `video.adaptive = false`.
    Off,
}

impl BitrateControl {
    /// The factory of the element whose bitrate is set, if any.
    pub fn element(self) -> Option<&'static str> {
        match self {
            BitrateControl::X264 => Some("x264enc"),
            BitrateControl::V4l2(element) => Some(element),
            BitrateControl::Fixed | BitrateControl::Off => None,
        }
    }
}

pub const MUX: &str = "flvmux";
pub const KEYFRAME_SECONDS: u32 = 2;
/// The preview is at most this wide (its height keeps the aspect ratio).
pub const PREVIEW_WIDTH: u32 = 320;

fn element(factory: &str, props: &[(&str, String)]) -> Element {
    Element { factory: factory.into(), props: props.iter().map(|(k, v)| (k.to_string(), v.clone())).collect() }
}

fn caps(caps: String) -> Element {
    element("capsfilter", &[("caps", caps)])
}

enum Input<'a> {
    TestPattern,
    Libcamera,
    V4l2(&'a Camera),
}

#[derive(Clone, Copy)]
enum Encode {
    Passthrough,
    V4l2,
    X264,
}

pub fn plan(config: &Config, found: &Discovery) -> Result<Plan, SourceError> {
    let mut reasons = Vec::new();
    let input = choose_input(&config.video.source, found, &mut reasons)?;
    let encode = choose_encoder(config.video.encoder, &input, found, &mut reasons)?;
    let (video, raw_frames, control) = video_chain(config, &input, encode, found, &mut reasons)?;
    let bitrate = bitrate_control(config, control, &mut reasons);
    let preview = preview_plan(config, raw_frames, found, &mut reasons);
    let audio = audio_chain(config, found, &mut reasons)?;
    let destinations: Vec<PlannedDestination> =
        config.destinations.iter().filter(|d| d.enabled).map(PlannedDestination::of).collect();
    if destinations.is_empty() {
        reasons.push("no destination is enabled: nothing will be streamed".into());
    }
    if let Some(missing) = ["h264parse", MUX, "rtmp2sink"].into_iter().find(|e| !found.has(e)) {
        return Err(SourceError::Missing(missing));
    }
    Ok(Plan { video, audio, destinations, preview, bitrate, reasons })
}

impl PlannedDestination {
    pub fn of(d: &crate::config::Destination) -> Self {
        PlannedDestination { name: d.name.clone(), location: d.location(), masked_location: d.masked_location() }
    }
}

fn bitrate_control(config: &Config, control: BitrateControl, reasons: &mut Vec<String>) -> BitrateControl {
    let v = &config.video;
    let (control, reason) = match control {
        _ if !v.adaptive => {
            (BitrateControl::Off, format!("fixed at {} kbit/s (video.adaptive = false)", v.bitrate_kbps))
        }
        BitrateControl::X264 => (control, "follows the uplink, set live through x264enc's bitrate".to_string()),
        BitrateControl::V4l2(element) => {
            (control, format!("follows the uplink, set live through the video_bitrate control of {element}"))
        }
        BitrateControl::Fixed | BitrateControl::Off => (
            BitrateControl::Fixed,
            "the webcam's own H.264 cannot be changed while streaming: on a weak uplink whole GOPs are dropped \
             instead"
                .to_string(),
        ),
    };
    reasons.push(format!("bitrate: {reason}"));
    control
}

/// The branch after `raw_frames` elements of the video chain (None: the camera encodes).
fn preview_plan(
    config: &Config,
    raw_frames: Option<usize>,
    found: &Discovery,
    reasons: &mut Vec<String>,
) -> PreviewPlan {
    // A camera that encodes H.264 itself gets no preview rather than a decoder fed its
    // keyframes: the webcam chooses its own keyframe interval (the picture could be many
    // seconds old) and a decoder costs the memory and CPU the Zero's stream needs.
    let Some(after) = raw_frames.filter(|_| config.web.preview) else {
        let why = if config.web.preview { Unavailable::CameraEncodes } else { Unavailable::Disabled };
        reasons.push(format!("preview: none, {}", why.reason()));
        return PreviewPlan::Off(why);
    };
    if let Some(missing) = ["videorate", "videoscale", "videoconvert"].into_iter().find(|e| !found.has(e)) {
        reasons.push(format!("preview: none, {missing} is not installed"));
        return PreviewPlan::Off(Unavailable::Missing(missing.into()));
    }
    // On the Pi, bcm2835-codec's JPEG encoder (/dev/video31, "encode_image") is the GPU's
    // hardware encoder; GStreamer names it v4l2jpegenc.
    let encoder = match ["v4l2jpegenc", "jpegenc"].into_iter().find(|e| found.has(e)) {
        Some(encoder) => encoder,
        None => {
            reasons.push("preview: none, neither v4l2jpegenc nor jpegenc is installed".into());
            return PreviewPlan::Off(Unavailable::Missing("jpegenc".into()));
        }
    };
    let (w, h) = preview_size(config.video.width, config.video.height);
    reasons.push(format!("preview: {w}x{h} JPEG ({encoder}) once a second, only while someone looks"));
    let branch = vec![
        // Closed, it drops frames in the camera's thread before anything else is done
        // with them; sticky events (caps, segment, EOS) pass, so reopening needs nothing.
        element("valve", &[("drop", "true".into()), ("drop-mode", "forward-sticky-events".into())]),
        element("videorate", &[("drop-only", "true".into()), ("max-rate", "1".into())]),
        // The encoder's side never waits on the preview: one frame, the oldest dropped.
        element(
            "queue",
            &[
                ("leaky", "downstream".into()),
                ("max-size-buffers", "1".into()),
                ("max-size-bytes", "0".into()),
                ("max-size-time", "0".into()),
            ],
        ),
        element("videoscale", &[]),
        element("videoconvert", &[]),
        caps(format!("video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1")),
        element(encoder, &[]),
        // Not async: a sink that gets no buffer while the valve is closed must not hold
        // the pipeline's start (and with it the stream) waiting for its preroll.
        element(
            "appsink",
            &[
                ("max-buffers", "1".into()),
                ("drop", "true".into()),
                ("sync", "false".into()),
                ("async", "false".into()),
            ],
        ),
    ];
    PreviewPlan::Branch { after, branch }
}

/// At most `PREVIEW_WIDTH` wide, the aspect ratio kept, both sides even.
fn preview_size(width: u32, height: u32) -> (u32, u32) {
    let w = width.min(PREVIEW_WIDTH) & !1;
    let h = ((u64::from(height) * u64::from(w) / u64::from(width)) as u32 & !1).max(2);
    (w.max(2), h)
}

fn choose_input<'a>(
    source: &VideoSource,
    found: &'a Discovery,
    reasons: &mut Vec<String>,
) -> Result<Input<'a>, String> {
    let listed = || {
        if found.cameras.is_empty() {
            "no camera was found".to_string()
        } else {
            format!("cameras found: {}", found.cameras.iter().map(Camera::describe).collect::<Vec<_>>().join(", "))
        }
    };
    match source {
        VideoSource::Test => {
            reasons.push("video.source = test: moving colour bars".into());
            Ok(Input::TestPattern)
        }
        VideoSource::Libcamera if found.has("libcamerasrc") => {
            reasons.push("video.source = libcamera: libcamerasrc".into());
            Ok(Input::Libcamera)
        }
        VideoSource::Libcamera => Err("video.source = libcamera, but the libcamerasrc element is not installed".into()),
        VideoSource::Device(path) => match found.cameras.iter().find(|c| &c.device == path) {
            Some(camera) => {
                reasons.push(format!("video.source = {}: {}", path.display(), camera.describe()));
                Ok(Input::V4l2(camera))
            }
            None => Err(format!("video.source = {}: no such camera; {}", path.display(), listed())),
        },
        VideoSource::Auto => {
            let usable = |c: &&Camera| c.kind() != CameraKind::LibcameraSensor || found.has("libcamerasrc");
            let best = found.cameras.iter().filter(usable).min_by_key(|c| c.kind());
            match best {
                Some(camera) if camera.kind() == CameraKind::LibcameraSensor => {
                    reasons.push(format!("camera: {} is a CSI sensor: libcamerasrc", camera.describe()));
                    Ok(Input::Libcamera)
                }
                Some(camera) => {
                    reasons.push(format!("camera: {} ({:?})", camera.describe(), camera.kind()));
                    Ok(Input::V4l2(camera))
                }
                None => {
                    reasons.push(format!("{}: streaming a test pattern until a camera is connected", listed()));
                    Ok(Input::TestPattern)
                }
            }
        }
    }
}

fn choose_encoder(
    choice: EncoderChoice,
    input: &Input,
    found: &Discovery,
    reasons: &mut Vec<String>,
) -> Result<Encode, String> {
    let camera_h264 = matches!(input, Input::V4l2(c) if c.offers("H264"));
    match choice {
        EncoderChoice::Camera if camera_h264 => Ok(Encode::Passthrough),
        EncoderChoice::Camera => Err(match input {
            Input::V4l2(c) => format!(
                "video.encoder = camera, but {} offers no H.264 (its formats: {}); use auto, v4l2 or x264",
                c.describe(),
                c.formats.join(", ")
            ),
            _ => "video.encoder = camera needs a V4L2 camera that outputs H.264; use auto, v4l2 or x264".into(),
        }),
        EncoderChoice::V4l2 if found.has("v4l2h264enc") => Ok(Encode::V4l2),
        EncoderChoice::V4l2 => {
            Err("video.encoder = v4l2, but this system has no v4l2h264enc (the Pi's bcm2835-codec); use auto or x264"
                .into())
        }
        EncoderChoice::X264 if found.has("x264enc") => Ok(Encode::X264),
        EncoderChoice::X264 => Err("video.encoder = x264, but x264enc is not installed; use auto".into()),
        EncoderChoice::Auto if camera_h264 => {
            reasons.push("encoder: the camera outputs H.264 itself, passed through without re-encoding".into());
            Ok(Encode::Passthrough)
        }
        EncoderChoice::Auto if found.has("v4l2h264enc") => {
            reasons.push("encoder: hardware v4l2h264enc".into());
            Ok(Encode::V4l2)
        }
        EncoderChoice::Auto if found.has("x264enc") => {
            reasons.push("encoder: no hardware encoder here, software x264enc".into());
            Ok(Encode::X264)
        }
        EncoderChoice::Auto => Err("no H.264 encoder: neither v4l2h264enc nor x264enc is installed".into()),
    }
}

fn video_chain(
    config: &Config,
    input: &Input,
    encode: Encode,
    found: &Discovery,
    reasons: &mut Vec<String>,
) -> Result<(Vec<Element>, Option<usize>, BitrateControl), String> {
    let v = &config.video;
    let (w, h, fps) = (v.width, v.height, v.framerate);
    let size = format!("width={w},height={h},framerate={fps}/1");
    let gop = fps * KEYFRAME_SECONDS;
    let bitrate = v.bitrate_kbps;
    let params = crate::config::parse_encoder_params(&v.encoder_params)?;
    let mut chain = Vec::new();
    let mut raw_frames = None;
    let mut control = BitrateControl::Fixed;

    match (input, encode) {
        (Input::V4l2(camera), Encode::Passthrough) => {
            let mut props = vec![("device", camera.device.display().to_string())];
            if camera.kind() == CameraKind::LegacyPiCamera {
                control = BitrateControl::V4l2("v4l2src");
                props.push((
                    "extra-controls",
                    format!("c,video_bitrate={},h264_i_frame_period={gop},repeat_sequence_header=1", bitrate * 1000),
                ));
            } else {
                reasons.push("the webcam chooses its own bitrate and keyframe interval".into());
            }
            chain.push(element("v4l2src", &props));
            chain.push(caps(format!("video/x-h264,{size}")));
            if !params.is_empty() {
                reasons.push("video.encoder_params ignored: the camera encodes, there is no encoder element".into());
            }
        }
        (_, Encode::Passthrough) => unreachable!("passthrough is only chosen for a V4L2 camera"),
        (input, encode) => {
            chain.extend(raw_source(input, &size, found));
            raw_frames = Some(chain.len());
            let mut encoder = match encode {
                Encode::V4l2 => {
                    control = BitrateControl::V4l2("v4l2h264enc");
                    chain.push(element("v4l2convert", &[]));
                    element(
                        "v4l2h264enc",
                        &[(
                            "extra-controls",
                            format!(
                                "controls,repeat_sequence_header=1,video_bitrate={},h264_i_frame_period={gop}",
                                bitrate * 1000
                            ),
                        )],
                    )
                }
                _ => {
                    control = BitrateControl::X264;
                    // Without a pinned format x264 may pick 4:4:4, which players and services refuse.
                    chain.push(element("videoconvert", &[]));
                    chain.push(caps("video/x-raw,format=I420".into()));
                    element(
                        "x264enc",
                        &[
                            ("tune", "zerolatency".into()),
                            ("speed-preset", "ultrafast".into()),
                            ("bitrate", bitrate.to_string()),
                            ("key-int-max", gop.to_string()),
                        ],
                    )
                }
            };
            encoder.props.extend(params);
            chain.push(encoder);
            if matches!(encode, Encode::V4l2) {
                // Levels below 3 fail, and without a level 1.18+ fails at STREAMON.
                chain.push(caps("video/x-h264,level=(string)4".into()));
            }
        }
    }
    chain.push(element("h264parse", &[]));
    chain.push(element("queue", &[]));
    Ok((chain, raw_frames, control))
}

fn raw_source(input: &Input, size: &str, found: &Discovery) -> Vec<Element> {
    match input {
        Input::TestPattern => vec![
            // Moving, so that a picture shows whether it is live (the preview, a player).
            element(
                "videotestsrc",
                &[("is-live", "true".into()), ("pattern", "smpte".into()), ("horizontal-speed", "2".into())],
            ),
            caps(format!("video/x-raw,{size}")),
        ],
        Input::Libcamera => vec![element("libcamerasrc", &[]), caps(format!("video/x-raw,{size},format=NV12"))],
        Input::V4l2(camera) => {
            let src = element("v4l2src", &[("device", camera.device.display().to_string())]);
            // USB 2 webcams give HD frame rates only as MJPEG.
            if camera.offers("MJPG") {
                let decoder = if found.has("v4l2jpegdec") { "v4l2jpegdec" } else { "jpegdec" };
                vec![src, caps(format!("image/jpeg,{size}")), element(decoder, &[])]
            } else {
                vec![src, caps(format!("video/x-raw,{size}"))]
            }
        }
    }
}

fn audio_chain(config: &Config, found: &Discovery, reasons: &mut Vec<String>) -> Result<Vec<Element>, String> {
    let a = &config.audio;
    let silence = || element("audiotestsrc", &[("is-live", "true".into()), ("wave", "silence".into())]);
    let source = match &a.source {
        AudioSource::Test => {
            reasons.push("audio.source = test: a 440 Hz tone".into());
            element(
                "audiotestsrc",
                &[
                    ("is-live", "true".into()),
                    ("wave", "sine".into()),
                    ("freq", "440".into()),
                    ("volume", "0.2".into()),
                ],
            )
        }
        AudioSource::None => {
            reasons.push("audio.source = none: a silent track (services drop streams without audio)".into());
            silence()
        }
        AudioSource::Alsa(device) => {
            reasons.push(format!("audio.source = {device}: ALSA capture"));
            element("alsasrc", &[("device", device.clone())])
        }
        AudioSource::Auto => match found.audio_inputs.first() {
            Some(mic) if found.has("alsasrc") => {
                reasons.push(format!("microphone: {} ({})", mic.alsa_device(), mic.name));
                element("alsasrc", &[("device", mic.alsa_device())])
            }
            _ => {
                reasons
                    .push("no microphone found: sending a silent track (services drop streams without audio)".into());
                silence()
            }
        },
    };
    let encoder = ["fdkaacenc", "avenc_aac", "voaacenc"]
        .into_iter()
        .find(|e| found.has(e))
        .ok_or("no AAC encoder: install fdkaacenc (fdk-aac), avenc_aac (gst-libav) or voaacenc")?;
    Ok(vec![
        source,
        element("audioconvert", &[]),
        element("audioresample", &[]),
        caps(format!("audio/x-raw,rate={},channels=2", a.sample_rate)),
        element(encoder, &[("bitrate", (a.bitrate_kbps * 1000).to_string())]),
        element("aacparse", &[]),
        element("queue", &[]),
    ])
}

impl Plan {
    /// The equivalent `gst-launch-1.0` command, ready to paste into a shell, keys masked.
    pub fn launch_line(&self) -> String {
        let chain = |elements: &[Element]| elements.iter().map(render).collect::<Vec<_>>().join(" ! ");
        let video = match &self.preview {
            PreviewPlan::Branch { after, branch } => format!(
                "{} ! tee name=raw ! {} ! mux.  raw. ! {}",
                chain(&self.video[..*after]),
                chain(&self.video[*after..]),
                chain(branch)
            ),
            PreviewPlan::Off(_) => format!("{} ! mux.", chain(&self.video)),
        };
        let mut line = format!(
            "gst-launch-1.0 -e {video}  {} ! mux.  {MUX} name=mux streamable=true ! tee name=t",
            chain(&self.audio)
        );
        if self.destinations.is_empty() {
            line.push_str("  t. ! queue ! fakesink");
        }
        for d in &self.destinations {
            line.push_str(&format!(
                "  t. ! queue ! rtmp2sink {}",
                shell_word(&format!("location={}", d.masked_location))
            ));
        }
        line
    }
}

fn render(e: &Element) -> String {
    if e.factory == "capsfilter" {
        return e.props.iter().map(|(_, v)| shell_word(v)).collect();
    }
    std::iter::once(e.factory.clone())
        .chain(e.props.iter().map(|(k, v)| shell_word(&format!("{k}={v}"))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a word for a POSIX shell only when it needs it.
fn shell_word(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "_-./:=,+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Destination;
    use crate::media::discovery::AudioInput;

    fn host_elements() -> Discovery {
        let elements = [
            "videotestsrc",
            "audiotestsrc",
            "x264enc",
            "avenc_aac",
            "h264parse",
            "flvmux",
            "rtmp2sink",
            "alsasrc",
            "jpegdec",
            "v4l2src",
            "videorate",
            "videoscale",
            "videoconvert",
            "jpegenc",
        ];
        Discovery { elements: elements.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    fn pi_elements() -> Discovery {
        let mut d = host_elements();
        d.elements
            .extend(["v4l2h264enc", "v4l2convert", "v4l2jpegdec", "v4l2jpegenc", "libcamerasrc"].map(String::from));
        d.elements.remove("x264enc");
        d
    }

    fn camera(device: &str, driver: &str, formats: &[&str]) -> Camera {
        Camera {
            device: device.into(),
            driver: driver.into(),
            card: "cam".into(),
            formats: formats.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn config() -> Config {
        Config {
            destinations: vec![Destination {
                name: "yt".into(),
                url: "rtmp://h/live2".into(),
                key: Secret::new("SECRET"),
                enabled: true,
            }],
            ..Default::default()
        }
    }

    fn factories(chain: &[Element]) -> Vec<&str> {
        chain.iter().map(|e| e.factory.as_str()).collect()
    }

    fn prop<'a>(chain: &'a [Element], factory: &str, name: &str) -> &'a str {
        let e = chain.iter().find(|e| e.factory == factory).unwrap_or_else(|| panic!("no {factory}"));
        e.props.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn host_without_camera_streams_test_pattern_with_x264_and_silence() {
        let p = plan(&config(), &host_elements()).unwrap();
        assert_eq!(
            factories(&p.video),
            ["videotestsrc", "capsfilter", "videoconvert", "capsfilter", "x264enc", "h264parse", "queue"]
        );
        assert_eq!(prop(&p.video, "x264enc", "key-int-max"), "60");
        assert_eq!(prop(&p.video, "x264enc", "bitrate"), "2500");
        assert_eq!(prop(&p.audio, "audiotestsrc", "wave"), "silence");
        assert_eq!(prop(&p.audio, "avenc_aac", "bitrate"), "128000");
        assert!(p.reasons.iter().any(|r| r.contains("no camera was found")), "{:?}", p.reasons);
    }

    #[test]
    fn legacy_pi_camera_passes_its_h264_through() {
        let mut found = pi_elements();
        found.cameras = vec![camera("/dev/video0", "bm2835 mmal", &["YU12", "H264", "MJPG"])];
        let p = plan(&config(), &found).unwrap();
        assert_eq!(factories(&p.video), ["v4l2src", "capsfilter", "h264parse", "queue"]);
        assert_eq!(
            prop(&p.video, "v4l2src", "extra-controls"),
            "c,video_bitrate=2500000,h264_i_frame_period=60,repeat_sequence_header=1"
        );
        assert_eq!(prop(&p.video, "capsfilter", "caps"), "video/x-h264,width=1280,height=720,framerate=30/1");
    }

    #[test]
    fn libcamera_sensor_goes_through_v4l2convert_and_the_hardware_encoder_with_a_level() {
        let mut found = pi_elements();
        found.cameras = vec![camera("/dev/video0", "unicam", &["pBAA"])];
        let p = plan(&config(), &found).unwrap();
        assert_eq!(
            factories(&p.video),
            ["libcamerasrc", "capsfilter", "v4l2convert", "v4l2h264enc", "capsfilter", "h264parse", "queue"]
        );
        assert_eq!(
            prop(&p.video, "v4l2h264enc", "extra-controls"),
            "controls,repeat_sequence_header=1,video_bitrate=2500000,h264_i_frame_period=60"
        );
        assert_eq!(p.video[4].props[0].1, "video/x-h264,level=(string)4");
    }

    #[test]
    fn usb_webcam_prefers_h264_then_mjpeg() {
        let mut found = pi_elements();
        found.cameras = vec![camera("/dev/video0", "uvcvideo", &["YUYV", "MJPG"])];
        let p = plan(&config(), &found).unwrap();
        assert_eq!(factories(&p.video)[..4], ["v4l2src", "capsfilter", "v4l2jpegdec", "v4l2convert"]);
        found.cameras = vec![camera("/dev/video0", "uvcvideo", &["YUYV", "H264"])];
        let p = plan(&config(), &found).unwrap();
        assert_eq!(factories(&p.video), ["v4l2src", "capsfilter", "h264parse", "queue"]);
    }

    #[test]
    fn the_bitrate_follows_the_uplink_where_the_encoder_allows_and_probe_says_where_not() {
        let webcam_h264 = |mut found: Discovery| {
            found.cameras = vec![camera("/dev/video0", "uvcvideo", &["H264"])];
            found
        };
        let legacy = |mut found: Discovery| {
            found.cameras = vec![camera("/dev/video0", "bm2835 mmal", &["H264"])];
            found
        };
        let sensor = |mut found: Discovery| {
            found.cameras = vec![camera("/dev/video0", "unicam", &["pBAA"])];
            found
        };
        for (found, control, says) in [
            (host_elements(), BitrateControl::X264, "set live through x264enc's bitrate"),
            (sensor(pi_elements()), BitrateControl::V4l2("v4l2h264enc"), "video_bitrate control of v4l2h264enc"),
            (legacy(pi_elements()), BitrateControl::V4l2("v4l2src"), "video_bitrate control of v4l2src"),
            (webcam_h264(pi_elements()), BitrateControl::Fixed, "whole GOPs are dropped instead"),
        ] {
            let p = plan(&config(), &found).unwrap();
            assert_eq!(p.bitrate, control);
            assert!(p.reasons.iter().any(|r| r.starts_with("bitrate: ") && r.contains(says)), "{:?}", p.reasons);
        }
        let mut fixed = config();
        fixed.video.adaptive = false;
        let p = plan(&fixed, &host_elements()).unwrap();
        assert_eq!(p.bitrate, BitrateControl::Off);
        assert!(p.reasons.contains(&"bitrate: fixed at 2500 kbit/s (video.adaptive = false)".to_string()));
    }

    #[test]
    fn legacy_camera_wins_over_a_webcam_and_mic_is_used() {
        let mut found = pi_elements();
        found.cameras =
            vec![camera("/dev/video0", "uvcvideo", &["YUYV"]), camera("/dev/video1", "bm2835 mmal", &["H264"])];
        found.audio_inputs = vec![AudioInput { card: 1, device: 0, name: "USB Audio".into() }];
        let p = plan(&config(), &found).unwrap();
        assert_eq!(prop(&p.video, "v4l2src", "device"), "/dev/video1");
        assert_eq!(prop(&p.audio, "alsasrc", "device"), "hw:1,0");
    }

    #[test]
    fn impossible_choices_are_explained() {
        let mut c = config();
        c.video.encoder = EncoderChoice::Camera;
        let mut found = host_elements();
        found.cameras = vec![camera("/dev/video0", "uvcvideo", &["YUYV", "MJPG"])];
        assert!(plan(&c, &found).unwrap_err().to_string().contains("offers no H.264 (its formats: YUYV, MJPG)"));
        c.video.encoder = EncoderChoice::V4l2;
        assert!(plan(&c, &found).unwrap_err().to_string().contains("no v4l2h264enc"));
        c.video.encoder = EncoderChoice::Auto;
        c.video.source = VideoSource::Device("/dev/video7".into());
        let err = plan(&c, &found).unwrap_err().to_string();
        assert!(err.contains("/dev/video7: no such camera; cameras found: /dev/video0 (cam, uvcvideo)"), "{err}");
        c.video.source = VideoSource::Libcamera;
        assert!(plan(&c, &found).unwrap_err().to_string().contains("libcamerasrc element is not installed"));
    }

    #[test]
    fn encoder_params_reach_the_encoder() {
        let mut c = config();
        c.video.encoder_params = "threads=2".into();
        let p = plan(&c, &host_elements()).unwrap();
        assert_eq!(prop(&p.video, "x264enc", "threads"), "2");
    }

    #[test]
    fn launch_line_masks_keys_and_quotes_for_the_shell() {
        let mut c = config();
        c.destinations.push(Destination {
            name: "b".into(),
            url: "rtmp://h2/app".into(),
            key: Secret::new("OTHER"),
            enabled: true,
        });
        c.destinations.push(Destination {
            name: "off".into(),
            url: "rtmp://h3/app".into(),
            key: Secret::new("X"),
            enabled: false,
        });
        let line = plan(&c, &host_elements()).unwrap().launch_line();
        assert!(!line.contains("SECRET") && !line.contains("OTHER"), "{line}");
        assert!(line.contains("rtmp2sink 'location=rtmp://h/live2/****'"), "{line}");
        assert!(line.contains("rtmp2sink 'location=rtmp://h2/app/****'"), "{line}");
        assert!(!line.contains("h3"), "{line}");
        assert!(line.starts_with("gst-launch-1.0 -e videotestsrc is-live=true pattern=smpte horizontal-speed=2 ! video/x-raw,width=1280,height=720,framerate=30/1 ! tee name=raw ! videoconvert"), "{line}");
        assert!(line.contains("h264parse ! queue ! mux.  raw. ! valve drop=true drop-mode=forward-sticky-events ! videorate drop-only=true max-rate=1 ! queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0 ! videoscale ! videoconvert ! video/x-raw,width=320,height=180,pixel-aspect-ratio=1/1 ! jpegenc ! appsink max-buffers=1 drop=true sync=false async=false  audiotestsrc"), "{line}");
        assert!(line.contains("flvmux name=mux streamable=true ! tee name=t"), "{line}");
    }

    fn branch(p: &Plan) -> (usize, &[Element]) {
        match &p.preview {
            PreviewPlan::Branch { after, branch } => (*after, branch),
            PreviewPlan::Off(why) => panic!("no preview: {why:?}"),
        }
    }

    #[test]
    fn the_preview_branches_off_raw_frames_closed_rate_limited_and_scaled_before_encoding() {
        let p = plan(&config(), &host_elements()).unwrap();
        let (after, chain) = branch(&p);
        assert_eq!(factories(&p.video[..after]), ["videotestsrc", "capsfilter"], "before the encoder");
        assert_eq!(
            factories(chain),
            ["valve", "videorate", "queue", "videoscale", "videoconvert", "capsfilter", "jpegenc", "appsink"]
        );
        assert_eq!(prop(chain, "valve", "drop"), "true", "closed until somebody looks");
        assert_eq!(prop(chain, "videorate", "max-rate"), "1");
        assert_eq!(prop(chain, "queue", "leaky"), "downstream");
        assert_eq!(prop(chain, "queue", "max-size-buffers"), "1");
        assert_eq!(prop(chain, "capsfilter", "caps"), "video/x-raw,width=320,height=180,pixel-aspect-ratio=1/1");
        assert_eq!(prop(chain, "appsink", "drop"), "true");

        let mut found = pi_elements();
        found.cameras = vec![camera("/dev/video0", "unicam", &["pBAA"])];
        let p = plan(&config(), &found).unwrap();
        let (after, chain) = branch(&p);
        assert_eq!(factories(&p.video[..after]), ["libcamerasrc", "capsfilter"]);
        assert_eq!(factories(&p.video[after..])[0], "v4l2convert");
        assert!(factories(chain).contains(&"v4l2jpegenc"), "the Pi's hardware JPEG encoder");

        found.cameras = vec![camera("/dev/video0", "uvcvideo", &["YUYV", "MJPG"])];
        let p = plan(&config(), &found).unwrap();
        assert_eq!(factories(&p.video[..branch(&p).0]), ["v4l2src", "capsfilter", "v4l2jpegdec"], "decoded frames");
    }

    #[test]
    fn no_preview_when_switched_off_when_the_camera_encodes_or_without_an_encoder() {
        let mut c = config();
        c.web.preview = false;
        let p = plan(&c, &host_elements()).unwrap();
        assert_eq!(p.preview, PreviewPlan::Off(Unavailable::Disabled));
        assert!(!p.launch_line().contains("tee name=raw"), "no branch at all");

        let mut found = pi_elements();
        found.cameras = vec![camera("/dev/video0", "bm2835 mmal", &["YU12", "H264", "MJPG"])];
        assert_eq!(plan(&config(), &found).unwrap().preview, PreviewPlan::Off(Unavailable::CameraEncodes));

        let mut found = host_elements();
        found.elements.remove("jpegenc");
        assert_eq!(plan(&config(), &found).unwrap().preview, PreviewPlan::Off(Unavailable::Missing("jpegenc".into())));
    }

    #[test]
    fn preview_size_keeps_the_aspect_and_never_grows() {
        assert_eq!(preview_size(1280, 720), (320, 180));
        assert_eq!(preview_size(640, 480), (320, 240));
        assert_eq!(preview_size(1920, 1080), (320, 180));
        assert_eq!(preview_size(160, 120), (160, 120));
        assert_eq!(preview_size(4096, 16), (320, 2));
    }

    #[test]
    fn no_aac_encoder_is_an_error() {
        let mut found = host_elements();
        found.elements.remove("avenc_aac");
        assert!(plan(&config(), &found).unwrap_err().to_string().contains("no AAC encoder"));
    }

    #[test]
    fn an_element_the_stream_cannot_do_without_is_missing_not_failed() {
        for element in ["h264parse", MUX, "rtmp2sink"] {
            let mut found = host_elements();
            found.elements.remove(element);
            let err = plan(&config(), &found).unwrap_err();
            assert_eq!(err, SourceError::Missing(element));
            assert_eq!(err.to_string(), format!("the GStreamer element {element} is not installed"));
        }
        let mut found = host_elements();
        found.elements.remove("avenc_aac");
        assert!(matches!(plan(&config(), &found), Err(SourceError::Failed(_))));
    }
}
