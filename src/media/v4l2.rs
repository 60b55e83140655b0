//! The two V4L2 ioctls discovery needs: what a device is, and which formats it captures.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

#[repr(C)]
struct Capability {
    driver: [u8; 16],
    card: [u8; 32],
    bus_info: [u8; 32],
    version: u32,
    capabilities: u32,
    device_caps: u32,
    reserved: [u32; 3],
}

#[repr(C)]
struct FormatDescription {
    index: u32,
    buf_type: u32,
    flags: u32,
    description: [u8; 32],
    pixelformat: u32,
    mbus_code: u32,
    reserved: [u32; 3],
}

nix::ioctl_read!(vidioc_querycap, b'V', 0, Capability);
nix::ioctl_readwrite!(vidioc_enum_fmt, b'V', 2, FormatDescription);

const CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
const CAP_DEVICE_CAPS: u32 = 0x8000_0000;
const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;

/// What `VIDIOC_QUERYCAP` and `VIDIOC_ENUM_FMT` tell about one device node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub driver: String,
    pub card: String,
    /// The node itself captures video (not a codec, ISP or metadata node).
    pub captures_video: bool,
    /// FourCC codes such as `H264`, `MJPG`, `YUYV`.
    pub formats: Vec<String>,
}

pub fn query(path: &Path) -> std::io::Result<DeviceInfo> {
    let file = OpenOptions::new().read(true).write(true).custom_flags(nix::libc::O_NONBLOCK).open(path)?;
    let fd = file.as_raw_fd();
    // SAFETY: the kernel fills a struct of exactly this layout; zeroed is a valid start.
    let mut cap: Capability = unsafe { std::mem::zeroed() };
    unsafe { vidioc_querycap(fd, &mut cap) }.map_err(std::io::Error::from)?;
    let caps = if cap.capabilities & CAP_DEVICE_CAPS != 0 { cap.device_caps } else { cap.capabilities };
    let captures_video = caps & CAP_VIDEO_CAPTURE != 0;
    let mut formats = Vec::new();
    if captures_video {
        for index in 0..64 {
            // SAFETY: as above.
            let mut desc: FormatDescription = unsafe { std::mem::zeroed() };
            desc.index = index;
            desc.buf_type = BUF_TYPE_VIDEO_CAPTURE;
            if unsafe { vidioc_enum_fmt(fd, &mut desc) }.is_err() {
                break;
            }
            formats.push(fourcc(desc.pixelformat));
        }
    }
    Ok(DeviceInfo { driver: c_string(&cap.driver), card: c_string(&cap.card), captures_video, formats })
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_string()
}

pub fn fourcc(code: u32) -> String {
    code.to_le_bytes().iter().map(|&b| b as char).collect::<String>().trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_fourcc_and_c_strings() {
        assert_eq!(fourcc(u32::from_le_bytes(*b"H264")), "H264");
        assert_eq!(fourcc(u32::from_le_bytes(*b"Y10 ")), "Y10");
        assert_eq!(c_string(b"uvcvideo\0\0\0"), "uvcvideo");
    }

    #[test]
    fn a_file_that_is_no_v4l2_device_is_an_error_not_a_camera() {
        assert!(query(Path::new("/dev/null")).is_err());
    }
}
