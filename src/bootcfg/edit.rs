//! What is in force for a board (`in_force`) and the pure edit (`edit`): change only the
//! lines that must change, in sections that certainly apply to the board, else append under
//! `[all]` at the end; never touch a line under a filter that cannot be checked.

use super::text::{Applies, Doc, Line};
use super::{Board, Camera, Sensor, Wanted};

/// Every camera overlay the firmware ships that `camera_auto_detect` would otherwise load;
/// a second one next to ours would fight over the CSI port.
const CAMERA_OVERLAYS: &[&str] = &[
    "ov5647", "imx219", "imx477", "imx708", "imx290", "imx296", "imx327", "imx378", "imx462", "imx500", "imx519",
    "imx258", "ov7251", "ov9281", "ov64a40",
];

/// Where a value in force comes from.
#[derive(Debug, PartialEq, Eq)]
pub struct Source {
    pub line: usize,
    pub text: String,
    pub scope: String,
    pub applies: Applies,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let may = if self.applies == Applies::Maybe { ", may apply" } else { "" };
        write!(f, "line {} `{}`, {}{may}", self.line, self.text, self.scope)
    }
}

impl Source {
    fn of(line: &Line, applies: Applies) -> Source {
        Source { line: line.number, text: line.body.to_string(), scope: line.scope.describe(), applies }
    }
}

/// How the camera is set up for a board.
#[derive(Debug, PartialEq, Eq)]
pub enum CameraState {
    Is(Camera),
    /// Anything else (legacy `start_x=1`, two overlays, auto-detect next to an overlay,
    /// a sensor we do not set): described in words.
    Other(String),
}

#[derive(Debug)]
pub struct InForce {
    pub gpu_mem: u32,
    /// None: no line, the firmware's default.
    pub gpu_mem_source: Option<Source>,
    pub camera: CameraState,
    pub camera_sources: Vec<Source>,
}

/// The per-size `gpu_mem_512`/`gpu_mem_1024` wins over `gpu_mem` on a board of that size.
fn gpu_mem_key(doc: &Doc, board: Option<Board>) -> &'static str {
    match board.map(Board::memory_mb) {
        Some(512) if doc.last("gpu_mem_512", board).is_some() => "gpu_mem_512",
        Some(1024) if doc.last("gpu_mem_1024", board).is_some() => "gpu_mem_1024",
        _ => "gpu_mem",
    }
}

fn overlay_name(value: &str) -> &str {
    value.split(',').next().unwrap_or(value).trim()
}

fn camera_overlays<'d, 'a>(doc: &'d Doc<'a>, board: Option<Board>) -> Vec<(&'d Line<'a>, &'a str, Applies)> {
    doc.settings("dtoverlay", board).filter(|(_, v, _)| CAMERA_OVERLAYS.contains(&overlay_name(v))).collect()
}

pub fn in_force(text: &str, board: Option<Board>) -> InForce {
    let doc = Doc::parse(text);
    let key = gpu_mem_key(&doc, board);
    let gpu_line = doc.last(key, board);
    let default = board.map(Board::default_gpu_mem).unwrap_or(64);
    let gpu_mem = gpu_line.and_then(|(_, v, _)| v.parse().ok()).unwrap_or(default);
    let mut camera_sources = Vec::new();
    let mut flag = |key| {
        let found = doc.last(key, board);
        camera_sources.extend(found.map(|(line, _, applies)| Source::of(line, applies)));
        found.is_some_and(|(_, v, _)| v == "1")
    };
    let auto = flag("camera_auto_detect");
    let legacy = flag("start_x");
    let overlays = camera_overlays(&doc, board);
    camera_sources.extend(overlays.iter().map(|(line, _, applies)| Source::of(line, *applies)));
    camera_sources.sort_by_key(|s| s.line);
    let names: Vec<&str> = overlays.iter().map(|(_, v, _)| overlay_name(v)).collect();
    let camera = match (legacy, auto, names.as_slice()) {
        (false, false, []) => CameraState::Is(Camera::Off),
        (false, true, []) => CameraState::Is(Camera::Auto),
        (false, false, [one]) if Sensor::from_name(one).is_some() => {
            CameraState::Is(Camera::Sensor(Sensor::from_name(one).expect("checked")))
        }
        _ => {
            let mut parts = Vec::new();
            if legacy {
                parts.push("legacy stack (start_x=1)".to_string());
            }
            if auto {
                parts.push("camera_auto_detect=1".to_string());
            }
            parts.extend(names.iter().map(|n| format!("dtoverlay={n}")));
            CameraState::Other(parts.join(" + "))
        }
    };
    InForce { gpu_mem, gpu_mem_source: gpu_line.map(|(line, _, a)| Source::of(line, a)), camera, camera_sources }
}

/// The new file and what changed, in words. Same text back (byte for byte) and no
/// changes when `wanted` is already in force.
#[derive(Debug, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    pub changes: Vec<String>,
}

#[derive(Default)]
struct Plan {
    /// (line index, new body)
    replace: Vec<(usize, String)>,
    append: Vec<String>,
    changes: Vec<String>,
}

impl Plan {
    /// A key where the last line read wins: edit that line if it certainly applies, else
    /// append (which then is the last).
    fn set_last_wins(&mut self, doc: &Doc, board: Board, key: &str, want: &str, default: &str) {
        match doc.last(key, Some(board)) {
            Some((_, value, Applies::Yes)) if value == want => {}
            Some((line, _, Applies::Yes)) => {
                self.replace.push((line.number - 1, format!("{key}={want}")));
                self.changes.push(format!("line {}: {} → {key}={want}", line.number, line.body));
            }
            Some((line, value, _)) => {
                self.append.push(format!("{key}={want}"));
                self.changes.push(format!(
                    "{key}={want} added at the end under [all] (line {} sets {value} under {}, which may apply)",
                    line.number,
                    line.scope.describe()
                ));
            }
            None if want != default => {
                self.append.push(format!("{key}={want}"));
                self.changes.push(format!("{key}={want} added at the end under [all] (was the default, {default})"));
            }
            None => {}
        }
    }

    fn set_camera(&mut self, doc: &Doc, board: Board, camera: Camera) -> Result<(), String> {
        let auto = if camera == Camera::Auto { "1" } else { "0" };
        self.set_last_wins(doc, board, "camera_auto_detect", auto, "0");
        self.set_last_wins(doc, board, "start_x", "0", "0");
        let keep = match camera {
            Camera::Sensor(sensor) => Some(sensor.name()),
            Camera::Auto | Camera::Off => None,
        };
        // The first line of the wanted overlay stays; a repeat of it is commented out too, as
        // the firmware would apply it twice (two sensors at one I2C address).
        let mut kept: Option<usize> = None;
        for (line, value, applies) in camera_overlays(doc, Some(board)) {
            if applies == Applies::Yes && Some(overlay_name(value)) == keep && kept.is_none() {
                kept = Some(line.number);
            } else if applies == Applies::Yes {
                let why = match kept {
                    Some(first) if Some(overlay_name(value)) == keep => format!("repeats line {first}"),
                    _ => format!("camera={camera}"),
                };
                self.replace.push((line.number - 1, format!("#{}", line.body)));
                self.changes.push(format!("line {}: {} commented out ({why})", line.number, line.body));
            } else {
                return Err(format!(
                    "config.txt line {} `{}` is under {}, which may apply to this board and is never edited: \
                     change it by hand, then set camera={camera} again",
                    line.number,
                    line.body,
                    line.scope.describe()
                ));
            }
        }
        if let (Some(name), None) = (keep, kept) {
            // One we commented out before comes back, so switching back and forth does not
            // grow the file.
            let commented = doc.lines.iter().rev().find(|line| {
                line.body.strip_prefix("#dtoverlay=").is_some_and(|v| overlay_name(v) == name)
                    && line.scope.applies(Some(board)) == Applies::Yes
            });
            match commented {
                Some(line) => {
                    self.replace.push((line.number - 1, line.body[1..].to_string()));
                    self.changes.push(format!("line {}: {} uncommented (camera={camera})", line.number, line.body));
                }
                None => {
                    self.append.push(format!("dtoverlay={name}"));
                    self.changes.push(format!("dtoverlay={name} added at the end under [all]"));
                }
            }
        }
        Ok(())
    }

    fn render(self, text: &str, doc: &Doc) -> Edited {
        if self.replace.is_empty() && self.append.is_empty() {
            return Edited { text: text.to_string(), changes: self.changes };
        }
        let mut out = String::with_capacity(text.len() + 64);
        for (index, line) in doc.lines.iter().enumerate() {
            match self.replace.iter().find(|(i, _)| *i == index) {
                Some((_, body)) => {
                    out.push_str(body);
                    out.push_str(line.eol());
                }
                None => out.push_str(line.raw),
            }
        }
        if !self.append.is_empty() {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push_str(doc.newline);
            }
            if !doc.end_scope.is_unconditional() {
                out.push_str("[all]");
                out.push_str(doc.newline);
            }
            for body in &self.append {
                out.push_str(body);
                out.push_str(doc.newline);
            }
        }
        Edited { text: out, changes: self.changes }
    }
}

/// Lowest `gpu_mem` with the camera on: the ISP and the hardware encoder live in GPU memory.
pub const CAMERA_MIN_GPU_MEM: u32 = 128;

/// The pure edit: (file, wanted settings, board) → new file and its changes in words.
pub fn edit(text: &str, wanted: &Wanted, board: Board) -> Result<Edited, String> {
    let doc = Doc::parse(text);
    let mut plan = Plan::default();
    if let Some(mb) = wanted.gpu_mem {
        let max = board.max_gpu_mem();
        if !(16..=max).contains(&mb) {
            return Err(format!("gpu_mem={mb} is out of range: allowed 16..={max} on the {board}"));
        }
        let default = board.default_gpu_mem().to_string();
        plan.set_last_wins(&doc, board, gpu_mem_key(&doc, Some(board)), &mb.to_string(), &default);
    }
    if let Some(camera) = wanted.camera {
        plan.set_camera(&doc, board, camera)?;
    }
    let edited = plan.render(text, &doc);
    let result = in_force(&edited.text, Some(board));
    if result.camera != CameraState::Is(Camera::Off) && result.gpu_mem < CAMERA_MIN_GPU_MEM {
        return Err(format!(
            "gpu_mem={} is too little with the camera on: allowed {CAMERA_MIN_GPU_MEM}..={} \
             (the ISP and the H.264 encoder need it), or camera=off",
            result.gpu_mem,
            board.max_gpu_mem()
        ));
    }
    Ok(edited)
}
