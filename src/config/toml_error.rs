//! Turns a TOML/serde error into one line that names the file, the line, the key and
//! what is allowed, without ever echoing a secret value.

/// Keys whose values must not be shown, even when they are wrong.
const SECRET_KEYS: [&str; 5] = ["key", "password", "token", "passphrase", "hash"];

/// A key (`destinations[0].key`, `web.password_hash`) whose value is a secret.
pub fn is_secret_key(key_path: &str) -> bool {
    SECRET_KEYS.contains(&key_path.rsplit(['.', '_']).next().unwrap_or_default())
}

pub fn describe(path: &str, text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', " ");
    let Some(span) = err.span() else {
        return format!("{path}: {message}");
    };
    let offset = span.start.min(text.len());
    let line_no = text[..offset].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let key_path = key_path_at(text, line_no, line);
    let message = if is_secret_key(&key_path) {
        "must be a quoted string such as \"abcd-1234\" (the value is not shown because it is secret)".to_string()
    } else {
        message
    };
    if key_path.is_empty() {
        format!("{path}:{line_no}: {message}")
    } else {
        format!("{path}:{line_no}: {key_path}: {message}")
    }
}

/// `video.width` for a `width = …` line under `[video]`; `destinations[1].url` under the
/// second `[[destinations]]`.
fn key_path_at(text: &str, line_no: usize, line: &str) -> String {
    let mut table = String::new();
    let mut array_counts: Vec<(String, usize)> = Vec::new();
    for header in text.lines().take(line_no).map(str::trim) {
        if let Some(name) = header.strip_prefix("[[").and_then(|h| h.split("]]").next()) {
            let name = name.trim().to_string();
            let index = match array_counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => {
                    *count += 1;
                    *count - 1
                }
                None => {
                    array_counts.push((name.clone(), 1));
                    0
                }
            };
            table = format!("{name}[{index}]");
        } else if let Some(name) = header.strip_prefix('[').and_then(|h| h.split(']').next()) {
            table = name.trim().to_string();
        }
    }
    let key = line.split_once('=').map(|(k, _)| k.trim()).filter(|k| !k.starts_with('['));
    match (table.is_empty(), key) {
        (_, None) => table,
        (true, Some(key)) => key.to_string(),
        (false, Some(key)) => format!("{table}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn error_for(text: &str) -> String {
        let err = toml::from_str::<Config>(text).unwrap_err();
        describe("/data/config.toml", text, &err)
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let e = error_for("[video]\nwidth = \"big\"\n");
        assert!(e.starts_with("/data/config.toml:2: video.width: invalid type: string \"big\""), "{e}");
    }

    #[test]
    fn unknown_key_lists_the_allowed_ones() {
        let e = error_for("[audio]\nsample_rate = 48000\nvolume = 3\n");
        assert!(e.contains(":3: audio.volume: unknown field `volume`, expected one of `source`"), "{e}");
    }

    #[test]
    fn bad_enum_value_says_what_is_allowed() {
        let e = error_for("[video]\nencoder = \"nvenc\"\n");
        assert!(e.contains("video.encoder: \"nvenc\" is not an encoder; allowed: auto, camera, v4l2, x264"), "{e}");
    }

    #[test]
    fn second_destination_is_indexed_and_secrets_are_hidden() {
        let text = "[[destinations]]\nname = \"a\"\nurl = \"rtmp://h/a\"\n\n[[destinations]]\nname = \"b\"\nurl = \"rtmp://h/b\"\nkey = 98765\n";
        let e = error_for(text);
        assert!(e.contains(":8: destinations[1].key: must be a quoted string"), "{e}");
        assert!(!e.contains("98765"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = error_for("[video\nwidth = 3\n");
        assert!(e.starts_with("/data/config.toml:1:"), "{e}");
    }
}
