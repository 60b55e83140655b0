use proptest::prelude::*;

use super::edit::{CameraState, edit, in_force};
use super::*;

fn want(gpu_mem: Option<u32>, camera: Option<Camera>) -> Wanted {
    Wanted { gpu_mem, camera }
}

fn apply(text: &str, wanted: &Wanted, board: Board) -> String {
    edit(text, wanted, board).unwrap().text
}

/// What meta-raspberrypi f62c679's rpi-config writes for our kas settings (abridged).
const SHIPPED: &str = "## gpu_mem\n##     GPU memory in megabyte.\n##\ngpu_mem=128\n\n\
                       ## start_x\n#start_x=0\n\n# Enable UART\nenable_uart=1\ncamera_auto_detect=1\n";

#[test]
fn board_from_device_tree_model() {
    assert_eq!(Board::from_model("Raspberry Pi 3 Model B Plus Rev 1.3\0"), Ok(Board::Pi3BPlus));
    assert_eq!(Board::from_model("Raspberry Pi 3 Model B Rev 1.2\0"), Ok(Board::Pi3B));
    assert_eq!(Board::from_model("Raspberry Pi Zero W Rev 1.1\0"), Ok(Board::ZeroW));
    assert_eq!(Board::from_model("Raspberry Pi Zero Rev 1.3"), Ok(Board::Zero));
    assert_eq!(Board::from_model("Raspberry Pi Zero 2 W Rev 1.0\0"), Ok(Board::Zero2W));
    let err = Board::from_model("Raspberry Pi 4 Model B Rev 1.4\0").unwrap_err();
    assert!(err.contains("unknown board model \"Raspberry Pi 4 Model B Rev 1.4\""), "{err}");
    assert!(err.contains("Raspberry Pi Zero W"), "{err}");
}

#[test]
fn settings_parse_and_bad_ones_name_what_is_allowed() {
    let args = |a: &[&str]| Wanted::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(args(&["gpu_mem=128", "camera=imx708"]), Ok(want(Some(128), Some(Camera::Sensor(Sensor::Imx708)))));
    assert_eq!(args(&["camera=off"]), Ok(want(None, Some(Camera::Off))));
    let err = |a: &[&str]| args(a).unwrap_err();
    assert!(err(&["camera=usb"]).contains("allowed auto, off, ov5647, imx219, imx477, imx708"));
    assert!(err(&["gpu=1"]).contains("unknown key `gpu`: allowed keys are gpu_mem, camera"));
    assert!(err(&["gpu_mem=lots"]).contains("allowed 16..=944"));
    assert!(err(&["gpu_mem"]).contains("not KEY=VALUE"));
    assert!(err(&["camera=off", "camera=auto"]).contains("camera is given twice"));
}

#[test]
fn gpu_mem_limits_depend_on_the_board_and_the_camera() {
    let err = edit("", &want(Some(512), None), Board::ZeroW).unwrap_err();
    assert!(err.contains("allowed 16..=384 on the Raspberry Pi Zero W"), "{err}");
    assert!(edit("", &want(Some(512), None), Board::Pi3B).is_ok());
    assert!(edit("", &want(Some(945), None), Board::Pi3B).unwrap_err().contains("16..=944"));
    assert!(edit("", &want(Some(15), None), Board::Pi3B).is_err());
    let err = edit(SHIPPED, &want(Some(64), None), Board::Pi3B).unwrap_err();
    assert!(err.contains("gpu_mem=64 is too little with the camera on: allowed 128..=944"), "{err}");
    assert!(edit("", &want(Some(64), Some(Camera::Auto)), Board::Pi3B).is_err());
    assert!(edit(SHIPPED, &want(Some(64), Some(Camera::Off)), Board::Pi3B).is_ok());
}

#[test]
fn the_shipped_file_is_already_what_we_want() {
    let edited = edit(SHIPPED, &want(Some(128), Some(Camera::Auto)), Board::ZeroW).unwrap();
    assert_eq!(edited.text, SHIPPED);
    assert!(edited.changes.is_empty());
    let found = in_force(SHIPPED, Some(Board::ZeroW));
    assert_eq!((found.gpu_mem, found.camera), (128, CameraState::Is(Camera::Auto)));
    assert_eq!(found.gpu_mem_source.unwrap().line, 4);
}

#[test]
fn edits_the_line_in_force_in_place() {
    let edited = edit(SHIPPED, &want(Some(192), Some(Camera::Sensor(Sensor::Ov5647))), Board::Pi3B).unwrap();
    let expected =
        SHIPPED.replace("gpu_mem=128", "gpu_mem=192").replace("camera_auto_detect=1", "camera_auto_detect=0")
            + "dtoverlay=ov5647\n";
    assert_eq!(edited.text, expected);
    assert_eq!(
        edited.changes,
        [
            "line 4: gpu_mem=128 → gpu_mem=192",
            "line 11: camera_auto_detect=1 → camera_auto_detect=0",
            "dtoverlay=ov5647 added at the end under [all]"
        ]
    );
    assert_eq!(in_force(&edited.text, Some(Board::Pi3B)).camera, CameraState::Is(Camera::Sensor(Sensor::Ov5647)));
    // And back: the overlay is commented out, not deleted.
    let back = apply(&edited.text, &want(None, Some(Camera::Auto)), Board::Pi3B);
    assert!(back.ends_with("camera_auto_detect=1\n#dtoverlay=ov5647\n"), "{back}");
    // And forth again: the same line is uncommented, the file does not grow.
    let forth = edit(&back, &want(None, Some(Camera::Sensor(Sensor::Ov5647))), Board::Pi3B).unwrap();
    assert_eq!(forth.text, edited.text);
    assert_eq!(forth.changes[1], "line 12: #dtoverlay=ov5647 uncommented (camera=ov5647)");
}

#[test]
fn sections_for_other_boards_are_not_touched() {
    let text = "[pi4]\ngpu_mem=256\n";
    let edited = apply(text, &want(Some(128), None), Board::Pi3B);
    assert_eq!(edited, "[pi4]\ngpu_mem=256\n[all]\ngpu_mem=128\n");
    let text = "[pi3]\ngpu_mem=256\n[all]\n";
    assert_eq!(apply(text, &want(Some(128), None), Board::Pi3B), "[pi3]\ngpu_mem=128\n[all]\n");
    // The same [pi3] line is another board's business on a Zero W.
    assert_eq!(apply(text, &want(Some(128), None), Board::ZeroW), "[pi3]\ngpu_mem=256\n[all]\ngpu_mem=128\n");
    let text = "[pi0w]\ngpu_mem=64\n";
    assert_eq!(apply(text, &want(Some(128), None), Board::ZeroW), "[pi0w]\ngpu_mem=128\n");
    assert_eq!(apply(text, &want(Some(128), None), Board::Zero), "[pi0w]\ngpu_mem=64\n[all]\ngpu_mem=128\n");
}

#[test]
fn lines_under_unknown_filters_are_never_edited() {
    let text = "gpu_mem=128\n[gpio4=1]\ngpu_mem=256\n";
    let edited = edit(text, &want(Some(128), None), Board::Pi3B).unwrap();
    assert_eq!(edited.text, "gpu_mem=128\n[gpio4=1]\ngpu_mem=256\n[all]\ngpu_mem=128\n");
    assert!(edited.changes[0].contains("line 3 sets 256 under [gpio4=1], which may apply"), "{:?}", edited.changes);
    // An overlay under such a filter cannot be undone by appending: refused, by line.
    let text = "[gpio4=1]\ndtoverlay=imx219\n";
    let err = edit(text, &want(None, Some(Camera::Auto)), Board::Pi3B).unwrap_err();
    assert!(err.contains("line 2 `dtoverlay=imx219` is under [gpio4=1]"), "{err}");
}

#[test]
fn the_per_size_gpu_mem_is_respected() {
    let text = "gpu_mem=128\ngpu_mem_512=64\n";
    let found = in_force(text, Some(Board::ZeroW));
    assert_eq!(found.gpu_mem, 64);
    assert_eq!(in_force(text, Some(Board::Pi3B)).gpu_mem, 128);
    assert_eq!(apply(text, &want(Some(160), None), Board::ZeroW), "gpu_mem=128\ngpu_mem_512=160\n");
    assert_eq!(apply(text, &want(Some(160), None), Board::Pi3B), "gpu_mem=160\ngpu_mem_512=64\n");
}

#[test]
fn legacy_camera_is_switched_off_and_never_both() {
    let text = "start_x=1\ngpu_mem=128\n";
    assert_eq!(in_force(text, Some(Board::Pi3B)).camera, CameraState::Other("legacy stack (start_x=1)".into()));
    let edited = apply(text, &want(None, Some(Camera::Auto)), Board::Pi3B);
    assert_eq!(edited, "start_x=0\ngpu_mem=128\ncamera_auto_detect=1\n");
    let text = "camera_auto_detect=1\ndtoverlay=imx219,rotation=0\ndtoverlay=vc4-kms-v3d\n";
    let found = in_force(text, Some(Board::Pi3B));
    assert_eq!(found.camera, CameraState::Other("camera_auto_detect=1 + dtoverlay=imx219".into()));
    let edited = apply(text, &want(Some(128), Some(Camera::Sensor(Sensor::Imx219))), Board::Pi3B);
    assert_eq!(edited, "camera_auto_detect=0\ndtoverlay=imx219,rotation=0\ndtoverlay=vc4-kms-v3d\ngpu_mem=128\n");
}

#[test]
fn a_repeated_camera_overlay_is_commented_out_beyond_the_first() {
    // The proptest's seed: the firmware would apply both, two sensors at one I2C address.
    let text = "dtoverlay=imx219\ndtoverlay=imx219";
    let imx219 = Camera::Sensor(Sensor::Imx219);
    assert_eq!(
        in_force(text, Some(Board::Pi3B)).camera,
        CameraState::Other("dtoverlay=imx219 + dtoverlay=imx219".into())
    );
    let edited = edit(text, &want(Some(128), Some(imx219)), Board::Pi3B).unwrap();
    assert_eq!(edited.text, "dtoverlay=imx219\n#dtoverlay=imx219\ngpu_mem=128\n");
    assert_eq!(
        edited.changes,
        [
            "gpu_mem=128 added at the end under [all] (was the default, 76)",
            "line 2: dtoverlay=imx219 commented out (repeats line 1)"
        ]
    );
    assert_eq!(in_force(&edited.text, Some(Board::Pi3B)).camera, CameraState::Is(imx219));
    let again = edit(&edited.text, &want(Some(128), Some(imx219)), Board::Pi3B).unwrap();
    assert_eq!((again.text, again.changes), (edited.text, Vec::<String>::new()));
    // Another sensor in between is commented out for the camera, the repeat as a repeat.
    let text = "gpu_mem=128\ndtoverlay=imx219,rotation=0\ndtoverlay=ov5647\n[pi3]\ndtoverlay=imx219\n";
    let edited = edit(text, &want(None, Some(imx219)), Board::Pi3B).unwrap();
    assert_eq!(edited.text, "gpu_mem=128\ndtoverlay=imx219,rotation=0\n#dtoverlay=ov5647\n[pi3]\n#dtoverlay=imx219\n");
    assert_eq!(
        edited.changes,
        [
            "line 3: dtoverlay=ov5647 commented out (camera=imx219)",
            "line 5: dtoverlay=imx219 commented out (repeats line 2)"
        ]
    );
}

#[test]
fn crlf_and_a_missing_last_newline_are_kept() {
    let text = "# boot\r\n[pi3]\r\ngpu_mem=64\r\n[pi0]\r\nx=1";
    let edited = apply(text, &want(Some(128), Some(Camera::Auto)), Board::Pi3B);
    assert_eq!(edited, "# boot\r\n[pi3]\r\ngpu_mem=128\r\n[pi0]\r\nx=1\r\n[all]\r\ncamera_auto_detect=1\r\n");
}

const KEYS: &[&str] = &["gpu_mem", "gpu_mem_512", "gpu_mem_1024", "camera_auto_detect", "start_x", "dtoverlay", "x"];
const VALUES: &[&str] = &["0", "1", "64", "128", "256", "imx219", "imx708", "ov5647,rotation=0", "vc4-kms-v3d", ""];
const FILTERS: &[&str] = &["all", "pi3", "pi3+", "pi0", "pi0w", "pi4", "cm4", "none", "gpio4=1", "edid=X"];

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..KEYS.len(), 0..VALUES.len()).prop_map(|(k, v)| format!("{}={}", KEYS[k], VALUES[v])),
        (0..FILTERS.len()).prop_map(|f| format!("[{}]", FILTERS[f])),
        (0..VALUES.len()).prop_map(|v| format!("#dtoverlay={}", VALUES[v])),
        "#[ -~]{0,20}",
        "[a-z_ =#]{0,12}",
        Just(String::new()),
    ]
}

fn file() -> impl Strategy<Value = String> {
    (prop::collection::vec((line(), any::<bool>()), 0..30), any::<bool>()).prop_map(|(lines, last_newline)| {
        let mut text: String =
            lines.iter().map(|(l, crlf)| format!("{l}{}", if *crlf { "\r\n" } else { "\n" })).collect();
        if !last_newline && text.ends_with('\n') {
            text.truncate(text.trim_end_matches(['\r', '\n']).len());
        }
        text
    })
}

fn board() -> impl Strategy<Value = Board> {
    prop_oneof![Just(Board::Pi3B), Just(Board::Pi3BPlus), Just(Board::ZeroW), Just(Board::Zero)]
}

fn wanted() -> impl Strategy<Value = Wanted> {
    let camera = prop_oneof![
        Just(Camera::Auto),
        Just(Camera::Off),
        Just(Camera::Sensor(Sensor::Imx219)),
        Just(Camera::Sensor(Sensor::Imx708))
    ];
    (prop::option::of(128u32..=384), prop::option::of(camera)).prop_map(|(gpu_mem, camera)| Wanted { gpu_mem, camera })
}

proptest! {
    /// Every original line survives byte for byte, except lines the edit names by number;
    /// those keep their terminator. Anything else is added at the end.
    #[test]
    fn round_trip_keeps_every_byte_not_edited(text in file(), wanted in wanted(), board in board()) {
        let Ok(edited) = edit(&text, &wanted, board) else { return Ok(()) };
        let old: Vec<&str> = text.split_inclusive('\n').collect();
        let new: Vec<&str> = edited.text.split_inclusive('\n').collect();
        prop_assert!(new.len() >= old.len());
        for (n, (a, b)) in old.iter().zip(&new).enumerate() {
            let named = edited.changes.iter().any(|c| c.starts_with(&format!("line {}: ", n + 1)));
            if named && a.ends_with('\n') {
                let eol = |s: &str| s.len() - s.trim_end_matches(['\r', '\n']).len();
                prop_assert_eq!(eol(a), eol(b));
            } else if n + 1 == old.len() && !a.ends_with('\n') {
                prop_assert!(named || b.starts_with(a));
            } else {
                prop_assert_eq!(a, b);
            }
        }
    }

    /// Applying twice gives the same text; what was wanted is in force afterwards.
    #[test]
    fn edits_are_idempotent_and_take_effect(text in file(), wanted in wanted(), board in board()) {
        let Ok(once) = edit(&text, &wanted, board) else { return Ok(()) };
        let twice = edit(&once.text, &wanted, board).unwrap();
        prop_assert_eq!(&twice.text, &once.text);
        prop_assert!(twice.changes.is_empty(), "{:?}", twice.changes);
        let found = in_force(&once.text, Some(board));
        if let Some(mb) = wanted.gpu_mem {
            prop_assert_eq!(found.gpu_mem, mb);
        }
        if let Some(camera) = wanted.camera {
            prop_assert_eq!(found.camera, CameraState::Is(camera));
        }
    }
}

#[test]
fn the_view_names_the_values_their_lines_and_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("boot")).unwrap();
    std::fs::write(dir.path().join("boot/config.txt"), "gpu_mem=128\ncamera_auto_detect=1\n").unwrap();
    std::fs::write(dir.path().join("model"), "Raspberry Pi Zero W Rev 1.1\0").unwrap();
    let paths = Paths::new(dir.path().join("boot"), dir.path().join("model"), dir.path().join("run"));
    let view = view(&paths).unwrap();
    assert_eq!(view.board.as_deref(), Some("Raspberry Pi Zero W (filters [pi0] [pi0w], 512 MB)"));
    assert_eq!((view.gpu_mem, view.gpu_mem_max), (128, 384));
    assert_eq!(view.gpu_mem_from.as_deref(), Some("line 1 `gpu_mem=128`, unconditional"));
    assert_eq!(view.camera, "auto");
    assert_eq!(view.camera_values, ["auto", "off", "ov5647", "imx219", "imx477", "imx708"]);
    assert_eq!(view.reboot_needed, None);
    std::fs::write(dir.path().join("model"), "Raspberry Pi 5\0").unwrap();
    let view = super::view(&paths).unwrap();
    assert!(view.board.is_none() && view.board_problem.unwrap().contains("unknown board model"));
}
