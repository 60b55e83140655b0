//! Just enough FLV to start a destination cleanly and to drop whole GOPs:
//! `flvmux streamable=true` pushes one tag per buffer, and a late joiner must begin at a
//! video keyframe.

const TAG_VIDEO: u8 = 9;
const TAG_HEADER_LEN: usize = 11;
const FRAME_TYPE_KEY: u8 = 1;

/// True for an FLV video tag.
pub fn is_video_tag(tag: &[u8]) -> bool {
    tag.first().is_some_and(|t| t & 0x1f == TAG_VIDEO)
}

/// True for an FLV video tag holding a keyframe (the first byte of its body says so).
pub fn is_video_keyframe_tag(tag: &[u8]) -> bool {
    tag.len() > TAG_HEADER_LEN && is_video_tag(tag) && tag[TAG_HEADER_LEN] >> 4 == FRAME_TYPE_KEY
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: u8, first_body_byte: u8) -> Vec<u8> {
        let mut t = vec![kind, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0];
        t.extend([first_body_byte, 1, 0, 0, 0]);
        t
    }

    #[test]
    fn recognises_video_tags() {
        assert!(is_video_tag(&tag(9, 0x27)));
        assert!(!is_video_tag(&tag(8, 0xaf)), "audio tag");
        assert!(!is_video_tag(&[]));
    }

    #[test]
    fn recognises_keyframes_only() {
        assert!(is_video_keyframe_tag(&tag(9, 0x17)));
        assert!(!is_video_keyframe_tag(&tag(9, 0x27)), "inter frame");
        assert!(!is_video_keyframe_tag(&tag(8, 0x17)), "audio tag");
        assert!(!is_video_keyframe_tag(&[9, 0, 0]), "truncated");
    }
}
