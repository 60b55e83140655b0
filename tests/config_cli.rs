//! Bad input through the real binary: every mistake gets an error naming the file, the
//! key, the bad value and what is allowed; a corrupt user file is kept aside, never lost.

mod app;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use app::{Service, free_port, run_cli, test_settings, text, write};

fn check(contents: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "settings.toml", contents);
    let out = run_cli(&["check-config", file.to_str().unwrap()], env);
    (out.status.success(), text(&out))
}

#[test]
fn a_good_file_is_explained_with_keys_masked() {
    let (ok, out) =
        check("[[destinations]]\nname = \"yt\"\nurl = \"rtmp://a.rtmp.youtube.com/live2\"\nkey = \"abcd-1234\"\n", &[]);
    assert!(ok, "{out}");
    assert!(out.contains("destination \"yt\": rtmp://a.rtmp.youtube.com/live2/**** (enabled)"), "{out}");
    assert!(!out.contains("abcd-1234"), "{out}");
}

#[test]
fn http_url_is_refused_by_name() {
    let (ok, out) = check("[[destinations]]\nname = \"x\"\nurl = \"http://example.org/live\"\nkey = \"k3y\"\n", &[]);
    assert!(!ok);
    assert!(out.contains("settings.toml: destinations[0].url = \"http://example.org/live\""), "{out}");
    assert!(out.contains("only rtmp:// or rtmps://"), "{out}");
}

#[test]
fn unknown_key_lists_the_allowed_keys() {
    let (ok, out) = check("[video]\nresolution = \"720p\"\n", &[]);
    assert!(!ok);
    assert!(
        out.contains("settings.toml:2: video.resolution: unknown field `resolution`, expected one of `source`"),
        "{out}"
    );
}

#[test]
fn wrong_type_names_line_key_and_expected_type() {
    let (ok, out) = check("[video]\nwidth = \"wide\"\n", &[]);
    assert!(!ok);
    assert!(out.contains("settings.toml:2: video.width: invalid type: string \"wide\", expected u32"), "{out}");
}

#[test]
fn out_of_range_and_bad_words_say_what_is_allowed() {
    let (ok, out) = check("[audio]\nsample_rate = 12345\nsource = \"mic please\"\n", &[]);
    assert!(!ok);
    assert!(out.contains("audio.source: \"mic please\" is not an audio source; allowed: auto, test, none"), "{out}");
    let (ok, out) = check("[audio]\nsample_rate = 12345\n", &[]);
    assert!(!ok);
    assert!(
        out.contains("audio.sample_rate = 12345: must be one of 16000, 22050, 24000, 32000, 44100, 48000"),
        "{out}"
    );
}

#[test]
fn missing_file_is_named() {
    let out = run_cli(&["check-config", "/nonexistent/settings.toml"], &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("/nonexistent/settings.toml: cannot read: No such file"), "{}", text(&out));
    let out = run_cli(&["run", "--config", "/nonexistent/defaults.toml", "--data-dir", "/tmp"], &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("/nonexistent/defaults.toml: cannot read"), "{}", text(&out));
}

#[test]
fn av_variables_that_do_not_parse_are_named() {
    let env = [("AV_VIDEO_WIDTH", "wide"), ("AV_AUDIO_BITRATE", "9000"), ("AV_STREAM_KEY", "lonely-key")];
    let (ok, out) = check("", &env);
    assert!(!ok);
    assert!(out.contains("AV_VIDEO_WIDTH=\"wide\" ignored: not a whole number; expected pixels"), "{out}");
    assert!(
        out.contains("AV_AUDIO_BITRATE=\"9000\" ignored: audio.bitrate_kbps = 9000: must be between 16 and 512"),
        "{out}"
    );
    assert!(out.contains("AV_STREAM_KEY=\"****\" ignored: AV_STREAM_KEY needs AV_STREAM_URL"), "{out}");
    assert!(!out.contains("lonely-key"), "{out}");
}

#[test]
fn av_variables_become_a_destination() {
    let env = [("AV_STREAM_URL", "rtmp://example.org/live"), ("AV_STREAM_KEY", "k-42"), ("AV_VIDEO_WIDTH", "640")];
    let (ok, out) = check("", &env);
    assert!(ok, "{out}");
    assert!(out.contains("640x720"), "{out}");
    assert!(out.contains("destination \"stream\": rtmp://example.org/live/**** (enabled)"), "{out}");
}

#[test]
fn import_env_saves_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("AV_STREAM_URL", "rtmp://example.org/live"), ("AV_STREAM_KEY", "k-42")];
    let out = run_cli(&["import-env", "--config", app::DEFAULTS, "--data-dir", data.to_str().unwrap()], &env);
    assert!(out.status.success(), "{}", text(&out));
    let saved = data.join("config.toml");
    assert_eq!(std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777, 0o600);
    let (ok, out) = check(&std::fs::read_to_string(&saved).unwrap(), &[]);
    assert!(ok && out.contains("rtmp://example.org/live/****"), "{out}");
}

#[test]
fn corrupt_user_settings_are_kept_aside_and_the_box_runs_on_defaults() {
    // The file is set aside whole, its status port too: the box must run on the defaults
    // layer, here the shipped defaults with the status page moved to a free port.
    let web = free_port();
    let shipped = std::fs::read_to_string(app::DEFAULTS).unwrap();
    let defaults = shipped.replace("listen = \"0.0.0.0:80\"", &format!("listen = \"127.0.0.1:{web}\""));
    assert_ne!(defaults, shipped, "the shipped defaults' web.listen line moved");
    let corrupt = format!("{}\n[video\nwidth = = 1\n", test_settings(free_port(), &[]));
    let mut service = Service::start_on_defaults(&defaults, &corrupt, web);
    let status =
        service.wait_for("the status on the defaults' port", Duration::from_secs(10), |s| s["state"] == "idle");
    assert!(service.is_running(), "a corrupt user file must not stop the box:\n{}", service.output());
    let problems = status["config_problems"].to_string();
    assert!(problems.contains("config.toml:") && problems.contains("kept aside as"), "{status:#}");
    let output = service.output();
    assert!(output.contains("config.toml:") && output.contains("kept aside as"), "{output}");
    let aside: Vec<_> = std::fs::read_dir(service.data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("config.toml.bad-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read_to_string(&aside[0]).unwrap(), corrupt, "kept byte for byte");
    assert!(!service.data_dir().join("config.toml").exists());
}

#[test]
fn corrupt_user_settings_are_reported_in_the_status() {
    // The web port comes from the shipped defaults' layer here, so give it through a
    // valid user file first, then corrupt it and reload with SIGHUP.
    let web = free_port();
    let service = Service::start(&test_settings(web, &[]), web);
    service.wait_for("the status page", Duration::from_secs(10), |s| s["state"] == "idle");
    std::fs::write(service.data_dir().join("config.toml"), "[audio]\nbitrate_kbps = \"loud\"\n").unwrap();
    service.reload();
    let status = service.wait_for("the problem in the status", Duration::from_secs(10), |s| {
        s["config_problems"].as_array().is_some_and(|p| !p.is_empty())
    });
    let problem = status["config_problems"][0].as_str().unwrap();
    assert!(problem.contains("config.toml:2: audio.bitrate_kbps: invalid type: string \"loud\""), "{problem}");
    assert!(problem.contains("kept aside as"), "{problem}");
}

/// The rollback case through the real binary: a settings file written by a newer
/// firmware (keys this one does not know, in a section, a new section and a
/// destination) runs this one with its known settings, is reported as a warning in the
/// log and the status, and a change saved by this firmware keeps the newer keys.
#[test]
fn a_newer_firmwares_settings_run_and_survive_a_save() {
    let web = free_port();
    let newer = format!(
        "{}adaptive = true\n[update_channel]\nname = \"beta\"\n[[destinations]]\nname = \"yt\"\n\
         url = \"rtmp://127.0.0.1:9/live\"\nkey = \"k-42\"\nenabled = false\nfloor_kbps = 300\n",
        test_settings(web, &[]).replace("[network]", "[network]\nband = \"5GHz\"")
    );
    let service = Service::start(&newer, web);
    let status = service.wait_for("the warnings in the status", Duration::from_secs(10), |s| {
        s["config_problems"].as_array().is_some_and(|p| p.len() == 4)
    });
    let warnings = status["config_problems"].to_string();
    for key in ["network.band", "network.adaptive", "update_channel", "destinations[\\\"yt\\\"].floor_kbps"] {
        assert!(warnings.contains(&format!("{key} is not a setting of this firmware")), "{key}: {warnings}");
    }
    assert!(service.output().contains("WARN"), "{}", service.output());
    assert_eq!(status["state"], "idle", "known settings in force: the one destination is disabled");

    let data = service.data_dir();
    let out = run_cli(
        &["import-env", "--config", app::DEFAULTS, "--data-dir", data.to_str().unwrap()],
        &[("AV_VIDEO_FRAMERATE", "25")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let saved: toml::Table = toml::from_str(&std::fs::read_to_string(data.join("config.toml")).unwrap()).unwrap();
    assert_eq!(saved["video"]["framerate"].as_integer(), Some(25), "the change: {saved:#?}");
    assert_eq!(saved["network"]["band"].as_str(), Some("5GHz"), "{saved:#?}");
    assert_eq!(saved["network"]["adaptive"].as_bool(), Some(true), "{saved:#?}");
    assert_eq!(saved["update_channel"]["name"].as_str(), Some("beta"), "{saved:#?}");
    assert_eq!(saved["destinations"][0]["floor_kbps"].as_integer(), Some(300), "{saved:#?}");
    assert_eq!(saved["destinations"][0]["key"].as_str(), Some("k-42"), "{saved:#?}");
    assert!(saved["video"].get("source").is_some(), "differs from the shipped \"auto\": kept");
    assert!(saved["video"].get("encoder").is_none(), "equal to the shipped default: not written: {saved:#?}");
}

/// The access point's passphrase, for the person at the box's console: a random one of
/// this box's (WPA2-valid, unambiguous letters), shown, saved as a setting; open again.
#[test]
fn ap_passphrase_makes_shows_and_forgets_a_passphrase_of_this_box() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |flags: &[&str]| {
        let mut args = vec!["ap-passphrase", "--config", app::DEFAULTS, "--data-dir", data.to_str().unwrap()];
        args.extend_from_slice(flags);
        let out = run_cli(&args, &[]);
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    assert!(run(&[]).contains("is an open network"));
    let made = run(&["--new"]);
    let passphrase = made.split("passphrase ").nth(1).unwrap().split(';').next().unwrap().to_string();
    assert_eq!(passphrase.len(), 14, "{made}");
    assert!(passphrase.chars().all(|c| "abcdefghjkmnpqrstuvwxyz23456789-".contains(c)), "{passphrase}");
    assert_ne!(run(&["--new"]), made, "each one new");
    let shown = run(&[]);
    let saved: toml::Table = toml::from_str(&std::fs::read_to_string(data.join("config.toml")).unwrap()).unwrap();
    let saved = saved["network"]["ap_passphrase"].as_str().unwrap();
    assert!(shown.contains(&format!("asks for the passphrase {saved}")), "{shown}");
    assert!(run(&["--open"]).contains("open network again"));
    assert!(run(&[]).contains("is an open network"));
}
