//! makespacelive: a livestreaming appliance service.
//! Camera → hardware-first H.264 + AAC → FLV → RTMP(S), to several destinations, that
//! never gives up.

mod bootcfg;
mod config;
mod fsutil;
mod logging;
mod media;
mod network;
mod notify;
mod reload;
mod secrets;
mod state;
mod status;
mod supervisor;
mod update;
mod web;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

const DEFAULT_CONFIG: &str = "/usr/share/makespacelive/defaults.toml";
const DEFAULT_DATA_DIR: &str = "/data/makespacelive";
const DEFAULT_RUNTIME_DIR: &str = "/run/makespacelive";

#[derive(Parser)]
#[command(version, about = "Livestreaming appliance service: camera to H.264/AAC to RTMP(S)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (as systemd does).
    Run {
        /// The shipped defaults (read-only).
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Where the user's config.toml lives (writable, persistent).
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Where the service asks for a reboot (volatile; makespacelive-reboot.path watches it).
        #[arg(long, default_value = DEFAULT_RUNTIME_DIR)]
        runtime_dir: PathBuf,
    },
    /// Show the cameras, microphones and encoders found, and the pipeline that would run.
    Probe {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Validate a settings file (layered over the built-in defaults and AV_* variables).
    CheckConfig { file: PathBuf },
    /// Save the prototype's AV_* environment variables into the user's config.toml.
    ImportEnv {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Set the radio's regulatory domain from `network.country` (`iw reg set`; needs root,
    /// which NetworkManager cannot do for the service).
    SetCountry {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Set the device password of the LAN pages, read from standard input (one line).
    SetPassword {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Forget the device password when TRIGGER exists (a file put on the boot partition by
    /// someone holding the SD card), then remove TRIGGER; the setup page asks for a new one.
    ResetPassword {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[arg(long, default_value = "/boot/makespacelive-reset-password")]
        trigger: PathBuf,
    },
    /// The "Wifi Connect" access point's WPA2 passphrase (`network.ap_passphrase`): shows
    /// it; `--new` makes a random one for this box, `--open` goes back to an open network.
    ApPassphrase {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[arg(long, conflicts_with = "open")]
        new: bool,
        #[arg(long)]
        open: bool,
    },
    /// The Pi's config.txt: gpu_mem and the camera (`show`, `set KEY=VALUE...`).
    BootConfig {
        #[command(subcommand)]
        action: bootcfg::Action,
    },
    /// Run as root by makespacelive-reboot.service: takes the service's reboot request
    /// FILE from its inbox and prints why it asked (the unit then reboots).
    RebootRequested { file: PathBuf },
    /// Over-the-air updates: status, install FILE_OR_URL, check, download, reboot, mark.
    Update {
        #[command(subcommand)]
        action: update::cli::Action,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, data_dir, runtime_dir } => run(&config, &data_dir, &runtime_dir),
        Command::Probe { config, data_dir } => probe(&config, data_dir.as_deref()),
        Command::CheckConfig { file } => check_config(&file),
        Command::ImportEnv { config, data_dir } => import_env(&config, &data_dir),
        Command::SetCountry { config, data_dir } => set_country(&config, &data_dir),
        Command::SetPassword { config, data_dir } => set_password(&config, &data_dir),
        Command::ResetPassword { config, data_dir, trigger } => reset_password(&config, &data_dir, &trigger),
        Command::ApPassphrase { config, data_dir, new, open } => ap_passphrase(&config, &data_dir, new, open),
        Command::BootConfig { action } => bootcfg::run(action),
        Command::RebootRequested { file } => update::reboot_requested(&file),
        Command::Update { action } => update::cli::run(action),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("error: {why}");
            ExitCode::FAILURE
        }
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn run(config: &Path, data_dir: &Path, runtime_dir: &Path) -> Result<(), String> {
    // Before any thread starts: they all inherit SIGHUP blocked (reload's own thread takes it).
    reload::block()?;
    limit_malloc_arenas();
    logging::init();
    gstreamer::init().map_err(|e| format!("GStreamer: {e}"))?;
    let files = config::Files { defaults: config.to_path_buf(), data_dir: data_dir.to_path_buf(), env: env_var };
    let settings = config::Settings::load(files)?;
    // Each part of the status has one writer, handed to the thread that owns it.
    let (stream, stream_reader) = state::channel(status::StreamStatus::default());
    let (network_status, network_reader) = state::channel(network::NetworkStatus::default());
    let (update_status, update_reader) = state::channel(status::UpdateStatus::default());
    let board =
        status::Board { stream: stream_reader.clone(), network: network_reader.clone(), update: update_reader.clone() };
    let preview = Arc::new(media::preview::Preview::default());
    let network = network::Network::start(network::Links {
        settings: settings.reader(),
        status: network_status,
        stream: stream_reader.clone(),
    });
    let installer = update::agent::Agent::start(
        update::agent::Links {
            settings: settings.reader(),
            status: update_status,
            stream: stream_reader,
            network: network_reader.clone(),
        },
        data_dir.to_path_buf(),
        runtime_dir.to_path_buf(),
    );
    let update = web::UpdateSide {
        uploads: update::upload::Uploads::new(data_dir),
        installer,
        runtime_dir: runtime_dir.to_path_buf(),
    };
    // Streaming matters more than the status page: a busy port is reported, not fatal.
    let listen = settings.get().config.web.listen;
    let web = web::serve(listen, board, network, settings.clone(), update, preview.clone())
        .inspect_err(|why| tracing::error!("{why}"))
        .ok();
    reload::on_hangup(settings.clone())?;
    // The watchdog is fed only while the pages answer too (or could never listen).
    let web_answers = move |now| web.as_ref().is_none_or(|web: &web::Alive| web.answers(now));
    let links =
        supervisor::Links { settings: settings.reader(), stream, network: network_reader, update: update_reader };
    supervisor::Supervisor::new(links, preview).run(web_answers)
}

/// glibc gives each new thread its own heap arena up to 8 per core; GStreamer starts new
/// streaming threads on every rebuild, and the arenas' fragmentation reads as growth.
/// Two arenas are plenty for a box with one pipeline.
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 2);
    }
}

fn probe(config: &Path, data_dir: Option<&Path>) -> Result<(), String> {
    gstreamer::init().map_err(|e| format!("GStreamer: {e}"))?;
    let loaded = config::load(config, data_dir, env_var)?;
    for problem in loaded.notes() {
        println!("settings problem: {problem}");
    }
    let found = media::discovery::discover();
    println!("{}", media::probe_report(&found));
    let plan = media::plan::plan(&loaded.config, &found).map_err(|e| e.to_string())?;
    println!("Pipeline:\n  {}\n", plan.launch_line());
    println!("Because:");
    for reason in &plan.reasons {
        println!("  - {reason}");
    }
    Ok(())
}

fn check_config(file: &Path) -> Result<(), String> {
    // The file is the only layer over the built-in defaults; AV_* variables on top.
    let loaded = config::load(file, None, env_var)?;
    if !loaded.problems.is_empty() {
        return Err(loaded.problems.join("\n"));
    }
    println!("{} is valid. In force (with built-in defaults and AV_* variables):", file.display());
    println!("{}", config::explain(&loaded.config));
    Ok(())
}

fn import_env(config: &Path, data_dir: &Path) -> Result<(), String> {
    let loaded = config::load(config, Some(data_dir), env_var)?;
    if !loaded.problems.is_empty() {
        return Err(format!("nothing saved:\n{}", loaded.problems.join("\n")));
    }
    config::save_change(config, data_dir, |c| {
        *c = config::apply_legacy_env(c, env_var).0;
        Ok(())
    })?;
    println!("saved to {} (mode 0600)", config::user_config_path(data_dir).display());
    Ok(())
}

fn set_country(config: &Path, data_dir: &Path) -> Result<(), String> {
    let loaded = config::load(config, Some(data_dir), env_var)?;
    let domain = network::regulatory_domain(&loaded.config.network.country);
    let out = std::process::Command::new(network::IW)
        .env_clear()
        .args(["reg", "set", domain])
        .output()
        .map_err(|e| format!("iw reg set {domain}: {e}"))?;
    if !out.status.success() {
        return Err(format!("iw reg set {domain}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    println!("regulatory domain: {domain}");
    Ok(())
}

fn set_password(config: &Path, data_dir: &Path) -> Result<(), String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = secrets::Secret::new(line.trim_end_matches(['\r', '\n']));
    let hash = web::hash_new_password(&password)?;
    config::save_change(config, data_dir, |c| {
        c.web.password_hash = hash;
        Ok(())
    })?;
    println!("device password set (saved as its argon2id hash in {})", config::user_config_path(data_dir).display());
    Ok(())
}

/// Letters and digits no one misreads from a console or a label (no 0/o, 1/l/i).
const PASSPHRASE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// 12 of `PASSPHRASE_ALPHABET` in groups of 4 (about 59 bits): typed once on a phone.
fn new_ap_passphrase() -> secrets::Secret {
    let groups: Vec<String> = (0..3)
        .map(|_| {
            (0..4).map(|_| char::from(PASSPHRASE_ALPHABET[fastrand::usize(..PASSPHRASE_ALPHABET.len())])).collect()
        })
        .collect();
    secrets::Secret::new(groups.join("-"))
}

/// Shown on the console only (the one place this secret is printed: the person at the box
/// asked for it); never logged.
fn ap_passphrase(config: &Path, data_dir: &Path, new: bool, open: bool) -> Result<(), String> {
    let after = "it takes effect the next time \"Wifi Connect\" opens (or now: systemctl restart makespacelive)";
    if new || open {
        let passphrase = if new { new_ap_passphrase() } else { secrets::Secret::default() };
        let saved = passphrase.clone();
        config::save_change(config, data_dir, |c| {
            c.network.ap_passphrase = saved;
            Ok(())
        })?;
        match new {
            true => println!("\"Wifi Connect\" now asks for the passphrase {}; {after}", passphrase.expose()),
            false => println!("\"Wifi Connect\" is an open network again; {after}"),
        }
        return Ok(());
    }
    let loaded = config::load(config, Some(data_dir), env_var)?;
    let current = &loaded.config.network.ap_passphrase;
    if current.is_empty() {
        println!("\"Wifi Connect\" is an open network (makespacelive ap-passphrase --new makes a passphrase for it)");
    } else {
        println!("\"Wifi Connect\" asks for the passphrase {}", current.expose());
    }
    Ok(())
}

/// Run as root before the service (makespacelive-password-reset.service): the settings
/// file is written as `fsutil` writes as root (no link followed, the file the data
/// directory's owner's), so the service can still read it.
fn reset_password(config: &Path, data_dir: &Path, trigger: &Path) -> Result<(), String> {
    if !trigger.exists() {
        println!("{} is not there: the device password stays", trigger.display());
        return Ok(());
    }
    config::save_change(config, data_dir, |c| {
        c.web.password_hash = secrets::Secret::default();
        Ok(())
    })?;
    std::fs::remove_file(trigger).map_err(|e| {
        format!(
            "the device password is forgotten, but {} could not be removed ({e}): remove it by hand",
            trigger.display()
        )
    })?;
    println!(
        "the device password is forgotten: set a new one on the setup page (the box's address, or \"Wifi Connect\")"
    );
    Ok(())
}
