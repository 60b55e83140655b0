//! Reads what this system has: cameras (V4L2 ioctls), microphones (ALSA) and the
//! GStreamer elements the plan may use. Only I/O here; deciding is `plan`'s job.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::v4l2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Camera {
    pub device: PathBuf,
    pub driver: String,
    pub card: String,
    pub formats: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CameraKind {
    /// bcm2835-v4l2 on the legacy camera stack: the GPU encodes H.264 itself.
    LegacyPiCamera,
    /// A CSI sensor behind unicam: raw Bayer, usable only through libcamera.
    LibcameraSensor,
    UsbWebcam,
    OtherV4l2,
}

impl Camera {
    /// By V4L2 driver name, as the Pi kernels name them.
    pub fn kind(&self) -> CameraKind {
        match self.driver.as_str() {
            "bm2835 mmal" | "bcm2835 mmal" => CameraKind::LegacyPiCamera,
            "unicam" | "rp1-cfe" => CameraKind::LibcameraSensor,
            "uvcvideo" => CameraKind::UsbWebcam,
            _ => CameraKind::OtherV4l2,
        }
    }

    pub fn offers(&self, fourcc: &str) -> bool {
        self.formats.iter().any(|f| f == fourcc)
    }

    pub fn describe(&self) -> String {
        format!("{} ({}, {})", self.device.display(), self.card, self.driver)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioInput {
    pub card: u32,
    pub device: u32,
    pub name: String,
}

impl AudioInput {
    pub fn alsa_device(&self) -> String {
        format!("hw:{},{}", self.card, self.device)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    pub cameras: Vec<Camera>,
    pub audio_inputs: Vec<AudioInput>,
    pub elements: BTreeSet<String>,
}

impl Discovery {
    pub fn has(&self, element: &str) -> bool {
        self.elements.contains(element)
    }
}

/// Every GStreamer element a plan can name; `probe` lists their availability.
pub const ELEMENTS: [&str; 21] = [
    "libcamerasrc",
    "v4l2src",
    "v4l2h264enc",
    "v4l2convert",
    "v4l2jpegdec",
    "jpegdec",
    "x264enc",
    "fdkaacenc",
    "avenc_aac",
    "voaacenc",
    "alsasrc",
    "videotestsrc",
    "audiotestsrc",
    "h264parse",
    "flvmux",
    "rtmp2sink",
    "videorate",
    "videoscale",
    "videoconvert",
    "v4l2jpegenc",
    "jpegenc",
];

pub fn discover() -> Discovery {
    Discovery { cameras: cameras(), audio_inputs: audio_inputs(), elements: available_elements() }
}

fn cameras() -> Vec<Camera> {
    let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("video")))
                .collect()
        })
        .unwrap_or_default();
    nodes.sort_by_key(|p| video_node_number(p));
    nodes
        .into_iter()
        .filter_map(|device| {
            let info = v4l2::query(&device).ok()?;
            info.captures_video.then_some(Camera {
                device,
                driver: info.driver,
                card: info.card,
                formats: info.formats,
            })
        })
        .collect()
}

fn video_node_number(path: &std::path::Path) -> u32 {
    path.to_string_lossy().trim_start_matches("/dev/video").parse().unwrap_or(u32::MAX)
}

fn audio_inputs() -> Vec<AudioInput> {
    std::fs::read_to_string("/proc/asound/pcm").map(|text| parse_proc_asound_pcm(&text)).unwrap_or_default()
}

/// Lines like `01-00: USB Audio : USB Audio : capture 1`; only capture devices count.
pub fn parse_proc_asound_pcm(text: &str) -> Vec<AudioInput> {
    text.lines()
        .filter_map(|line| {
            let (address, rest) = line.split_once(':')?;
            let (card, device) = address.trim().split_once('-')?;
            let fields: Vec<&str> = rest.split(" : ").map(str::trim).collect();
            if !fields.iter().any(|f| f.starts_with("capture")) {
                return None;
            }
            Some(AudioInput {
                card: card.parse().ok()?,
                device: device.parse().ok()?,
                name: fields.first().copied().unwrap_or("").to_string(),
            })
        })
        .collect()
}

fn available_elements() -> BTreeSet<String> {
    ELEMENTS.iter().filter(|name| gstreamer::ElementFactory::find(name).is_some()).map(|n| n.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_capture_devices_only() {
        let text = "00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8\n\
                    01-00: USB Audio : USB Audio : playback 1 : capture 1\n\
                    02-03: C920 : USB Audio : capture 1\n";
        assert_eq!(
            parse_proc_asound_pcm(text),
            vec![
                AudioInput { card: 1, device: 0, name: "USB Audio".into() },
                AudioInput { card: 2, device: 3, name: "C920".into() },
            ]
        );
        assert_eq!(parse_proc_asound_pcm(text)[1].alsa_device(), "hw:2,3");
    }

    #[test]
    fn classifies_cameras_by_driver_name() {
        let cam = |driver: &str| Camera {
            device: "/dev/video0".into(),
            driver: driver.into(),
            card: "c".into(),
            formats: vec![],
        };
        assert_eq!(cam("bm2835 mmal").kind(), CameraKind::LegacyPiCamera);
        assert_eq!(cam("unicam").kind(), CameraKind::LibcameraSensor);
        assert_eq!(cam("uvcvideo").kind(), CameraKind::UsbWebcam);
        assert_eq!(cam("vivid").kind(), CameraKind::OtherV4l2);
    }

    #[test]
    fn finds_the_elements_installed_here() {
        gstreamer::init().unwrap();
        let found = available_elements();
        assert!(found.contains("flvmux") && found.contains("videotestsrc"), "{found:?}");
        assert!(!found.contains("no-such-element"));
    }
}
