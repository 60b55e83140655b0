//! Reading the layers from disk and saving the user's layer back.
//!
//! The shipped defaults are strict (an unknown key there is a bug in the image, and
//! `check-config` holds a file to the same rule). The user's file is forward compatible:
//! keys this version does not know are reported as warnings, ignored, and kept when the
//! file is saved (`layer`).

use std::path::{Path, PathBuf};

use super::{Config, apply_legacy_env, layer, toml_error};
use crate::fsutil;

/// The settings in force and every non-fatal problem met on the way (a user file that
/// was kept aside, an `AV_*` variable that was ignored), and warnings (keys of a newer
/// firmware), for the log and the status page.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

impl Loaded {
    pub fn log(&self) {
        for problem in &self.problems {
            tracing::error!("settings: {problem}");
        }
        for warning in &self.warnings {
            tracing::warn!("settings: {warning}");
        }
    }

    /// Problems, then warnings: what the status page lists.
    pub fn notes(&self) -> Vec<String> {
        self.problems.iter().chain(&self.warnings).cloned().collect()
    }
}

pub fn user_config_path(data_dir: &Path) -> PathBuf {
    data_dir.join("config.toml")
}

/// Loads `defaults` (shipped, read-only: an error there is fatal), then the user's
/// `config.toml` in `data_dir` (an error there is kept aside and reported, never fatal;
/// unknown keys are warned about), then the `AV_*` variables from `env`.
pub fn load(defaults: &Path, data_dir: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Loaded, String> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut merged = read_defaults(defaults)?;

    if let Some(user) = data_dir.map(user_config_path) {
        match read_user(&user) {
            Ok(Some(read)) => {
                warnings.extend(read.unknown.iter().map(|u| {
                    format!(
                        "{}: {} is not a setting of this firmware ({}); it is ignored and kept in the file",
                        user.display(),
                        u.path(),
                        env!("CARGO_PKG_VERSION")
                    )
                }));
                merge(&mut merged, read.known);
            }
            Ok(None) => {}
            Err(UserFileError::Unreadable(why)) => {
                problems.push(format!("{why}; using the shipped defaults"));
            }
            Err(UserFileError::Invalid(why)) => problems.push(match fsutil::keep_aside(&user) {
                Ok(aside) => format!(
                    "{why}\nThe file was kept aside as {} and the box runs on the shipped defaults.",
                    aside.display()
                ),
                Err(e) => format!("{why}\nIt could not be kept aside ({e}); the box runs on the shipped defaults."),
            }),
        }
    }

    let config = Config::deserialize_table(merged)?;
    let (config, env_problems) = apply_legacy_env(&config, env);
    problems.extend(env_problems);
    Ok(Loaded { config, problems, warnings })
}

/// The shipped defaults as a table, checked strictly.
fn read_defaults(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let shown = path.display().to_string();
    let config: Config = toml::from_str(&text).map_err(|e| toml_error::describe(&shown, &text, &e))?;
    validate(&shown, &config)?;
    toml::from_str(&text).map_err(|e| toml_error::describe(&shown, &text, &e))
}

/// The user's file: what this version knows (checked on its own, so errors point into
/// it) and the keys it does not.
struct UserFile {
    known: toml::Table,
    unknown: Vec<layer::Unknown>,
}

enum UserFileError {
    Unreadable(String),
    Invalid(String),
}

/// The largest user file read: settings are a few kilobytes.
const USER_FILE_LIMIT: u64 = 1 << 20;

fn read_user(path: &Path) -> Result<Option<UserFile>, UserFileError> {
    // Root reads it too (set-country, reset-password): never through a link the owner of
    // the directory planted, never a FIFO.
    let unreadable = |e: String| UserFileError::Unreadable(format!("{}: cannot read ({e})", path.display()));
    let text = match fsutil::read_bounded(path, USER_FILE_LIMIT) {
        Ok(Some(bytes)) => String::from_utf8(bytes).map_err(|e| unreadable(format!("not UTF-8: {e}")))?,
        Ok(None) => return Ok(None),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let shown = path.display().to_string();
    let invalid = |e: toml::de::Error| UserFileError::Invalid(toml_error::describe(&shown, &text, &e));
    let raw: toml::Table = toml::from_str(&text).map_err(invalid)?;
    let (known, unknown) = layer::split(&raw);
    // Typed from the text when nothing is unknown, so that errors name their line.
    let config: Config = if unknown.is_empty() {
        toml::from_str(&text).map_err(invalid)?
    } else {
        serde::Deserialize::deserialize(known.clone()).map_err(invalid)?
    };
    validate(&shown, &config).map_err(UserFileError::Invalid)?;
    Ok(Some(UserFile { known, unknown }))
}

fn validate(shown: &str, config: &Config) -> Result<(), String> {
    config.validate().map_err(|problems| format!("{shown}: {}", problems.join(&format!("\n{shown}: "))))
}

/// Tables merge key by key; anything else (numbers, the destinations list) is replaced.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl Config {
    fn deserialize_table(table: toml::Table) -> Result<Config, String> {
        let config: Config =
            serde::Deserialize::deserialize(table).map_err(|e: toml::de::Error| format!("merged settings: {e}"))?;
        config.validate().map_err(|p| format!("merged settings: {}", p.join("; ")))?;
        Ok(config)
    }
}

/// Changes the user's settings: `change` gets them as the shipped defaults and the user's
/// file make them (no `AV_*` variables), the result is validated whole and saved
/// atomically with mode 0600 (it holds stream keys), holding only what differs from the
/// shipped defaults plus every key of the file this version does not know. A user file
/// that does not parse is not overwritten. Returns the saved settings.
pub fn save_change(
    defaults: &Path,
    data_dir: &Path,
    change: impl FnOnce(&mut Config) -> Result<(), String>,
) -> Result<Config, String> {
    let path = user_config_path(data_dir);
    let shipped_table = read_defaults(defaults)?;
    let shipped = Config::deserialize_table(shipped_table.clone())?;
    let user = match read_user(&path) {
        Ok(user) => user,
        Err(UserFileError::Unreadable(why) | UserFileError::Invalid(why)) => {
            return Err(format!("{why}\nNothing was saved; the file was left as it is."));
        }
    };
    let mut merged = shipped_table;
    if let Some(user) = &user {
        merge(&mut merged, user.known.clone());
    }
    let mut config = Config::deserialize_table(merged)?;
    change(&mut config)?;
    config.validate().map_err(|problems| problems.join("; "))?;

    let mut table = layer::diff(&layer::to_table(&config), &layer::to_table(&shipped));
    if let Some(user) = &user {
        layer::restore(&mut table, &user.unknown);
    }
    let text = toml::to_string_pretty(&table).map_err(|e| format!("cannot serialise settings: {e}"))?;
    fsutil::write_atomic(&path, text.as_bytes(), 0o600).map_err(|e| format!("{}: cannot save: {e}", path.display()))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AudioSource;
    use std::os::unix::fs::PermissionsExt;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn setup(defaults: &str, user: Option<&str>) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let defaults_path = dir.path().join("defaults.toml");
        std::fs::write(&defaults_path, defaults).unwrap();
        if let Some(user) = user {
            std::fs::write(dir.path().join("config.toml"), user).unwrap();
        }
        (dir, defaults_path)
    }

    #[test]
    fn user_layer_overrides_defaults_key_by_key() {
        let (dir, defaults) = setup("[video]\nwidth = 640\nheight = 360\n", Some("[video]\nheight = 480\n"));
        let loaded = load(&defaults, Some(dir.path()), no_env).unwrap();
        assert_eq!((loaded.config.video.width, loaded.config.video.height), (640, 480));
        assert!(loaded.problems.is_empty());
    }

    #[test]
    fn corrupt_user_file_is_kept_aside_and_defaults_run() {
        let (dir, defaults) = setup("[video]\nwidth = 640\n", Some("[video\nwidth = = 3"));
        let loaded = load(&defaults, Some(dir.path()), no_env).unwrap();
        assert_eq!(loaded.config.video.width, 640);
        assert!(loaded.problems[0].contains("config.toml:1:"), "{:?}", loaded.problems);
        assert!(!dir.path().join("config.toml").exists());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("config.toml.bad-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read_to_string(dir.path().join(&aside[0])).unwrap(), "[video\nwidth = = 3");
    }

    #[test]
    fn broken_defaults_are_fatal_and_named() {
        let (dir, defaults) = setup("[video]\nwidth = -1\n", None);
        let err = load(&defaults, Some(dir.path()), no_env).unwrap_err();
        assert!(err.contains("defaults.toml:2: video.width"), "{err}");
        let err = load(&dir.path().join("missing.toml"), None, no_env).unwrap_err();
        assert!(err.contains("missing.toml: cannot read"), "{err}");
    }

    #[test]
    fn env_is_the_top_layer() {
        let (dir, defaults) = setup("", Some("[audio]\nsource = \"test\"\n"));
        let env = |k: &str| (k == "AV_DISABLE_AUDIO").then(|| "1".to_string());
        let loaded = load(&defaults, Some(dir.path()), env).unwrap();
        assert_eq!(loaded.config.audio.source, AudioSource::None);
    }

    fn yt() -> crate::config::Destination {
        crate::config::Destination {
            name: "yt".into(),
            url: "rtmp://h/live2".into(),
            key: crate::secrets::Secret::new("k"),
            enabled: true,
        }
    }

    #[test]
    fn save_is_private_and_round_trips() {
        let (dir, defaults) = setup("", None);
        let saved = save_change(&defaults, dir.path(), |c| {
            c.destinations.push(yt());
            Ok(())
        })
        .unwrap();
        let path = user_config_path(dir.path());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load(&defaults, Some(dir.path()), no_env).unwrap().config, saved);
        assert_eq!(saved.destinations, [yt()]);
    }

    #[test]
    fn save_writes_only_what_differs_from_the_shipped_defaults() {
        let (dir, defaults) = setup("[video]\nwidth = 640\nheight = 360\n", Some("[video]\nheight = 480\n"));
        save_change(&defaults, dir.path(), |c| {
            c.audio.bitrate_kbps = 96;
            c.video.width = 640;
            Ok(())
        })
        .unwrap();
        let text = std::fs::read_to_string(user_config_path(dir.path())).unwrap();
        assert_eq!(text, "[audio]\nbitrate_kbps = 96\n\n[video]\nheight = 480\n");
    }

    #[test]
    fn av_variables_are_not_written_by_a_change() {
        let (dir, defaults) = setup("", None);
        save_change(&defaults, dir.path(), |c| {
            c.video.framerate = 25;
            Ok(())
        })
        .unwrap();
        let env = |k: &str| (k == "AV_VIDEO_WIDTH").then(|| "640".to_string());
        assert_eq!(load(&defaults, Some(dir.path()), env).unwrap().config.video.width, 640);
        assert!(!std::fs::read_to_string(user_config_path(dir.path())).unwrap().contains("width"));
    }

    #[test]
    fn a_refused_change_saves_nothing() {
        let (dir, defaults) = setup("", Some("[video]\nheight = 480\n"));
        let err = save_change(&defaults, dir.path(), |c| {
            c.video.width = 3;
            Ok(())
        })
        .unwrap_err();
        assert!(err.contains("video.width = 3: must be between 16 and 4096"), "{err}");
        assert_eq!(std::fs::read_to_string(user_config_path(dir.path())).unwrap(), "[video]\nheight = 480\n");
    }

    /// The rollback case: a newer firmware added settings and wrote them; this one loads
    /// the file, warns, runs, and a change saved here keeps the newer keys.
    #[test]
    fn keys_of_a_newer_firmware_are_kept_through_a_save() {
        let newer = "[video]\nheight = 480\nhdr = true\n\n[update2]\nchannel = \"beta\"\n\n\
                     [[destinations]]\nname = \"yt\"\nurl = \"rtmp://h/live2\"\nkey = \"k\"\nfloor_kbps = 300\n";
        let (dir, defaults) = setup("", Some(newer));
        let loaded = load(&defaults, Some(dir.path()), no_env).unwrap();
        assert_eq!(loaded.problems, Vec::<String>::new());
        assert_eq!(loaded.config.video.height, 480);
        assert_eq!(loaded.config.destinations, [yt()]);
        let warnings = loaded.warnings.join("\n");
        for key in ["video.hdr", "update2", "destinations[\"yt\"].floor_kbps"] {
            assert!(warnings.contains(&format!("{key} is not a setting of this firmware")), "{warnings}");
        }

        save_change(&defaults, dir.path(), |c| {
            c.video.framerate = 25;
            Ok(())
        })
        .unwrap();
        let saved: toml::Table =
            toml::from_str(&std::fs::read_to_string(user_config_path(dir.path())).unwrap()).unwrap();
        let mut expected: toml::Table = toml::from_str(newer).unwrap();
        expected["video"].as_table_mut().unwrap().insert("framerate".into(), 25.into());
        // A list is written whole.
        expected["destinations"][0].as_table_mut().unwrap().insert("enabled".into(), true.into());
        assert_eq!(saved, expected);
    }

    #[test]
    fn a_user_file_that_does_not_parse_is_never_overwritten_by_a_save() {
        let (dir, defaults) = setup("", Some("[video\n"));
        let err = save_change(&defaults, dir.path(), |_| Ok(())).unwrap_err();
        assert!(err.contains("Nothing was saved"), "{err}");
        assert_eq!(std::fs::read_to_string(user_config_path(dir.path())).unwrap(), "[video\n");
    }
}
