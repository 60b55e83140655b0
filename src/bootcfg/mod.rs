//! The Raspberry Pi's `config.txt` on the FAT boot partition: `gpu_mem` and the camera.
//!
//! Invariant: every byte of the file that is not an edited line is kept (comments, order,
//! conditional sections, CRLF); an edit changes only what is in force for this board, never
//! a line under a filter that cannot be checked here, and is idempotent. `edit::edit` is
//! pure (file, wanted, board) → file; `store` does the power-loss-safe write (remount,
//! temp, fsync, rename) and the `reboot-needed` marker; `request` carries a change from the
//! unprivileged service to the root helper (`apply-request`) and its answer back. API:
//! `Action` and `run` for the CLI, `reboot_needed` for whoever reports or acts on pending
//! changes, `view` and `request::ask` for the web.

mod edit;
pub mod request;
mod store;
mod text;

use std::fmt;
use std::path::{Path, PathBuf};

use edit::{CameraState, InForce};

/// The boards the image is built for (meta-raspberrypi `raspberrypi3`, `raspberrypi0-wifi`)
/// and their close kin, from `/proc/device-tree/model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    Pi3B,
    Pi3BPlus,
    Pi3APlus,
    Zero,
    ZeroW,
    Zero2W,
}

impl Board {
    /// Longest prefix first: "Zero 2 W" and "Zero W" before "Zero".
    const MODELS: &[(&str, Board)] = &[
        ("Raspberry Pi 3 Model B Plus", Board::Pi3BPlus),
        ("Raspberry Pi 3 Model A Plus", Board::Pi3APlus),
        ("Raspberry Pi 3 Model B", Board::Pi3B),
        ("Raspberry Pi Zero 2 W", Board::Zero2W),
        ("Raspberry Pi Zero W", Board::ZeroW),
        ("Raspberry Pi Zero", Board::Zero),
    ];

    /// The device tree's model string ("Raspberry Pi Zero W Rev 1.1", NUL-terminated).
    pub fn from_model(model: &str) -> Result<Board, String> {
        let model = model.trim_end_matches('\0').trim();
        Board::MODELS.iter().find(|(prefix, _)| model.starts_with(prefix)).map(|(_, board)| *board).ok_or_else(|| {
            let known: Vec<&str> = Board::MODELS.iter().map(|(m, _)| *m).collect();
            format!("unknown board model \"{model}\": known are {}", known.join(", "))
        })
    }

    pub fn memory_mb(self) -> u32 {
        match self {
            Board::Pi3B | Board::Pi3BPlus => 1024,
            Board::Pi3APlus | Board::Zero | Board::ZeroW | Board::Zero2W => 512,
        }
    }

    /// The firmware's `gpu_mem` when config.txt sets none (Raspberry Pi docs, "Memory options").
    pub fn default_gpu_mem(self) -> u32 {
        if self.memory_mb() >= 1024 { 76 } else { 64 }
    }

    /// 944 is the firmware's ceiling on 1 GB; on 512 MB boards Raspberry Pi's recommended
    /// maximum, 384, leaves Linux 128 MB.
    pub fn max_gpu_mem(self) -> u32 {
        if self.memory_mb() >= 1024 { 944 } else { 384 }
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Board::Pi3B => "Raspberry Pi 3 Model B (filter [pi3], 1 GB)",
            Board::Pi3BPlus => "Raspberry Pi 3 Model B+ (filters [pi3] [pi3+], 1 GB)",
            Board::Pi3APlus => "Raspberry Pi 3 Model A+ (filters [pi3] [pi3+], 512 MB)",
            Board::Zero => "Raspberry Pi Zero (filter [pi0], 512 MB)",
            Board::ZeroW => "Raspberry Pi Zero W (filters [pi0] [pi0w], 512 MB)",
            Board::Zero2W => "Raspberry Pi Zero 2 W (filters [pi0] [pi0w] [pi02], 512 MB)",
        })
    }
}

/// The camera sensors whose overlay we set when auto-detection is not wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sensor {
    Ov5647,
    Imx219,
    Imx477,
    Imx708,
}

impl Sensor {
    const ALL: [Sensor; 4] = [Sensor::Ov5647, Sensor::Imx219, Sensor::Imx477, Sensor::Imx708];

    pub fn name(self) -> &'static str {
        match self {
            Sensor::Ov5647 => "ov5647",
            Sensor::Imx219 => "imx219",
            Sensor::Imx477 => "imx477",
            Sensor::Imx708 => "imx708",
        }
    }

    pub fn from_name(name: &str) -> Option<Sensor> {
        Sensor::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The camera on the libcamera stack; the legacy `start_x` stack is never enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Camera {
    /// `camera_auto_detect=1`: the firmware loads the connected sensor's overlay.
    Auto,
    /// `camera_auto_detect=0` and one `dtoverlay=SENSOR`.
    Sensor(Sensor),
    Off,
}

const CAMERA_VALUES: &str = "auto, off, ov5647, imx219, imx477, imx708";

impl std::str::FromStr for Camera {
    type Err = String;
    fn from_str(s: &str) -> Result<Camera, String> {
        match s {
            "auto" => Ok(Camera::Auto),
            "off" => Ok(Camera::Off),
            other => Sensor::from_name(other)
                .map(Camera::Sensor)
                .ok_or_else(|| format!("camera={other} is not a camera value: allowed {CAMERA_VALUES}")),
        }
    }
}

impl fmt::Display for Camera {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Camera::Auto => f.write_str("auto"),
            Camera::Off => f.write_str("off"),
            Camera::Sensor(s) => f.write_str(s.name()),
        }
    }
}

/// The settings a person asked for; None leaves it as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub gpu_mem: Option<u32>,
    pub camera: Option<Camera>,
}

impl Wanted {
    /// `KEY=VALUE` arguments: `gpu_mem=MB`, `camera=auto|off|SENSOR`, each at most once.
    pub fn parse(args: &[String]) -> Result<Wanted, String> {
        let mut wanted = Wanted::default();
        if args.is_empty() {
            return Err("nothing to set: give KEY=VALUE, keys gpu_mem, camera".into());
        }
        for arg in args {
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| format!("`{arg}` is not KEY=VALUE: keys are gpu_mem (16..=944), camera"))?;
            let twice = || format!("{key} is given twice");
            match key {
                "gpu_mem" => {
                    let mb = value.parse().map_err(|_| {
                        format!("gpu_mem={value} is not a number of megabytes: allowed 16..=944 (384 on 512 MB boards)")
                    })?;
                    wanted.gpu_mem.replace(mb).map_or(Ok(()), |_| Err(twice()))?;
                }
                "camera" => {
                    wanted.camera.replace(value.parse()?).map_or(Ok(()), |_| Err(twice()))?;
                }
                other => return Err(format!("unknown key `{other}`: allowed keys are gpu_mem, camera")),
            }
        }
        Ok(wanted)
    }
}

#[derive(clap::Subcommand)]
pub enum Action {
    /// Show the board and the gpu_mem and camera settings in force for it, with their lines.
    Show {
        #[command(flatten)]
        paths: Paths,
    },
    /// Change settings (gpu_mem=MB, camera=auto|off|ov5647|imx219|imx477|imx708); takes
    /// effect at the next reboot.
    Set {
        #[arg(value_name = "KEY=VALUE", required = true)]
        settings: Vec<String>,
        #[command(flatten)]
        paths: Paths,
    },
    /// Apply a change the service asked for in FILE (JSON), answering in
    /// `<runtime-dir>/boot-config.result`; run as root by makespacelive-boot-config.path.
    ApplyRequest {
        file: PathBuf,
        #[command(flatten)]
        paths: Paths,
    },
}

#[derive(clap::Args)]
pub struct Paths {
    /// The mounted boot partition holding config.txt.
    #[arg(long, default_value = "/boot")]
    boot_dir: PathBuf,
    /// The board's model string.
    #[arg(long, default_value = "/proc/device-tree/model")]
    model_file: PathBuf,
    /// Where the `reboot-needed` marker and the answers to the service go: root's, the
    /// service reads them (`answers_dir`).
    #[arg(long, default_value = "/run/makespacelive-root")]
    answers_dir: PathBuf,
}

impl Paths {
    #[cfg(test)]
    pub fn new(boot_dir: PathBuf, model_file: PathBuf, answers_dir: PathBuf) -> Paths {
        Paths { boot_dir, model_file, answers_dir }
    }

    fn config(&self) -> PathBuf {
        self.boot_dir.join("config.txt")
    }

    fn board(&self) -> Result<Board, String> {
        let model = std::fs::read(&self.model_file).map_err(|e| format!("{}: {e}", self.model_file.display()))?;
        Board::from_model(&String::from_utf8_lossy(&model)).map_err(|e| format!("{}: {e}", self.model_file.display()))
    }

    /// A missing file is the firmware's defaults: an empty text.
    fn read_config(&self) -> Result<String, String> {
        let path = self.config();
        let bytes = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
            other => other.map_err(|e| format!("{}: {e}", path.display()))?,
        };
        String::from_utf8(bytes).map_err(|e| {
            format!("{}: not UTF-8 text (byte {}): not edited", path.display(), e.utf8_error().valid_up_to())
        })
    }
}

pub fn run(action: Action) -> Result<(), String> {
    match action {
        Action::Show { paths } => show(&paths),
        Action::Set { settings, paths } => set(&settings, &paths),
        Action::ApplyRequest { file, paths } => request::apply_request(&file, &paths),
    }
}

fn show(paths: &Paths) -> Result<(), String> {
    let text = paths.read_config()?;
    let board = match paths.board() {
        Ok(board) => {
            println!("board: {board}");
            Some(board)
        }
        Err(why) => {
            println!("board: {why}; every model section counts as \"may apply\"");
            None
        }
    };
    println!("file: {}", paths.config().display());
    print!("{}", describe(&edit::in_force(&text, board)));
    println!("{}", reboot_line(&paths.answers_dir));
    Ok(())
}

/// What is in force, as the web shows it.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct View {
    /// The board, or why it is not known (then every model section "may apply").
    pub board: Option<String>,
    pub board_problem: Option<String>,
    pub file: String,
    pub gpu_mem: u32,
    /// The line it comes from; None: the firmware's default.
    pub gpu_mem_from: Option<String>,
    /// `auto`, `off`, a sensor, or `other: …` for a setup this service does not make.
    pub camera: String,
    pub camera_from: Vec<String>,
    /// What may be set: `camera` values and the `gpu_mem` range on this board.
    pub camera_values: Vec<String>,
    pub gpu_mem_max: u32,
    /// The changes made since boot, one a line; they take effect at the next reboot.
    pub reboot_needed: Option<String>,
}

pub fn view(paths: &Paths) -> Result<View, String> {
    let text = paths.read_config()?;
    let board = paths.board();
    let found = edit::in_force(&text, board.as_ref().ok().copied());
    Ok(View {
        board: board.as_ref().ok().map(Board::to_string),
        board_problem: board.as_ref().err().cloned(),
        file: paths.config().display().to_string(),
        gpu_mem: found.gpu_mem,
        gpu_mem_from: found.gpu_mem_source.as_ref().map(ToString::to_string),
        camera: match &found.camera {
            CameraState::Is(camera) => camera.to_string(),
            CameraState::Other(words) => format!("other: {words}"),
        },
        camera_from: found.camera_sources.iter().map(ToString::to_string).collect(),
        camera_values: CAMERA_VALUES.split(", ").map(String::from).collect(),
        gpu_mem_max: board.map_or(944, Board::max_gpu_mem),
        reboot_needed: reboot_needed(&paths.answers_dir),
    })
}

fn describe(found: &InForce) -> String {
    let gpu_source = match &found.gpu_mem_source {
        Some(source) => format!("from {source}"),
        None => "no line: the firmware's default".into(),
    };
    let camera = match &found.camera {
        CameraState::Is(camera) => camera.to_string(),
        CameraState::Other(words) => format!("other: {words}"),
    };
    let mut out = format!("gpu_mem: {} MB ({gpu_source})\ncamera: {camera}\n", found.gpu_mem);
    if found.camera_sources.is_empty() {
        out.push_str("  no camera lines: the firmware's default (off)\n");
    }
    for source in &found.camera_sources {
        out.push_str(&format!("  from {source}\n"));
    }
    out
}

/// Where root answers the service and keeps its markers, beside the service's own runtime
/// directory (the service's inbox, which it owns): `/run/makespacelive` →
/// `/run/makespacelive-root`, root's (tmpfiles), readable by the service's group. The
/// service can replace nothing in it, so the helper can write there.
pub fn answers_dir(runtime_dir: &Path) -> PathBuf {
    let mut dir = runtime_dir.as_os_str().to_owned();
    dir.push("-root");
    PathBuf::from(dir)
}

/// The config.txt changes made since boot (one a line), if any: they take effect at the
/// next reboot. `/run` is a tmpfs, so a reboot clears them.
pub fn reboot_needed(answers_dir: &Path) -> Option<String> {
    store::read_marker(answers_dir).filter(|s| !s.trim().is_empty())
}

fn reboot_line(answers_dir: &Path) -> String {
    match reboot_needed(answers_dir) {
        Some(changes) => format!("reboot needed: yes, config.txt changed since boot:\n{}", changes.trim_end()),
        None => "reboot needed: no change recorded since boot".into(),
    }
}

fn set(settings: &[String], paths: &Paths) -> Result<(), String> {
    let wanted = Wanted::parse(settings)?;
    let (board, changes) = apply(&wanted, paths)?;
    if changes.is_empty() {
        println!("nothing to change: already in force on the {board}");
        return Ok(());
    }
    for change in &changes {
        println!("{change}");
    }
    println!("reboot needed: the firmware reads config.txt only at boot");
    Ok(())
}

/// Edits config.txt for this board and records the reboot it needs; the changes in
/// words, none when `wanted` is in force already.
fn apply(wanted: &Wanted, paths: &Paths) -> Result<(Board, Vec<String>), String> {
    let board = paths.board()?;
    let text = paths.read_config()?;
    let edited = edit::edit(&text, wanted, board)?;
    if edited.text != text {
        store::write_config_marked(&paths.config(), edited.text.as_bytes(), &paths.answers_dir, &edited.changes)?;
    }
    Ok((board, if edited.text == text { Vec::new() } else { edited.changes }))
}

#[cfg(test)]
mod tests;
