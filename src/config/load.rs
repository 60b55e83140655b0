//! Reading the layers from disk and saving the user's layer back.

use std::path::{Path, PathBuf};

use super::{Config, apply_legacy_env, toml_error};
use crate::fsutil;

/// The settings in force and every non-fatal problem met on the way (a user file that
/// was kept aside, an `AV_*` variable that was ignored) for the log and the status page.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub problems: Vec<String>,
}

pub fn user_config_path(data_dir: &Path) -> PathBuf {
    data_dir.join("config.toml")
}

/// Loads `defaults` (shipped, read-only: an error there is fatal), then the user's
/// `config.toml` in `data_dir` (an error there is kept aside and reported, never fatal),
/// then the `AV_*` variables from `env`.
pub fn load(defaults: &Path, data_dir: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Loaded, String> {
    let mut problems = Vec::new();
    let defaults_text =
        std::fs::read_to_string(defaults).map_err(|e| format!("{}: cannot read: {e}", defaults.display()))?;
    let mut merged = parse_layer(defaults, &defaults_text)?;

    if let Some(user) = data_dir.map(user_config_path) {
        match std::fs::read_to_string(&user) {
            Ok(text) => match parse_layer(&user, &text) {
                Ok(layer) => merge(&mut merged, layer),
                Err(why) => problems.push(match fsutil::keep_aside(&user) {
                    Ok(aside) => format!(
                        "{why}\nThe file was kept aside as {} and the box runs on the shipped defaults.",
                        aside.display()
                    ),
                    Err(e) => format!("{why}\nIt could not be kept aside ({e}); the box runs on the shipped defaults."),
                }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => problems.push(format!("{}: cannot read ({e}); using the shipped defaults", user.display())),
        }
    }

    let config = Config::deserialize_table(merged)?;
    let (config, env_problems) = apply_legacy_env(&config, env);
    problems.extend(env_problems);
    Ok(Loaded { config, problems })
}

/// Checks one file on its own (so errors point into it), then returns its raw table
/// for merging.
fn parse_layer(path: &Path, text: &str) -> Result<toml::Table, String> {
    let shown = path.display().to_string();
    let config: Config = toml::from_str(text).map_err(|e| toml_error::describe(&shown, text, &e))?;
    config.validate().map_err(|problems| format!("{shown}: {}", problems.join(&format!("\n{shown}: "))))?;
    toml::from_str(text).map_err(|e| toml_error::describe(&shown, text, &e))
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

/// Writes the user's layer atomically with mode 0600 (it holds stream keys).
pub fn save(data_dir: &Path, config: &Config) -> Result<PathBuf, String> {
    let text = toml::to_string_pretty(config).map_err(|e| format!("cannot serialise settings: {e}"))?;
    let path = user_config_path(data_dir);
    fsutil::write_atomic(&path, text.as_bytes(), 0o600).map_err(|e| format!("{}: cannot save: {e}", path.display()))?;
    Ok(path)
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

    #[test]
    fn save_is_private_and_round_trips() {
        let (dir, defaults) = setup("", None);
        let mut config = Config::default();
        config.destinations.push(crate::config::Destination {
            name: "yt".into(),
            url: "rtmp://h/live2".into(),
            key: crate::secrets::Secret::new("k"),
            enabled: true,
        });
        let path = save(dir.path(), &config).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load(&defaults, Some(dir.path()), no_env).unwrap().config, config);
    }
}
