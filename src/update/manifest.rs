//! The single-box update source: a JSON manifest over HTTPS naming one bundle.
//!
//! `{"version": "1.2.3", "compatible": "makespacelive-rpi4", "url": "x.raucb",
//! "sha256": "<64 hex>", "size": 123}`; `url` may be relative to the manifest's own URL.
//! Invariant: a [`Manifest`] has every field checked (unknown fields are errors, so a
//! misspelt `sha256` is not silently ignored) and its bundle URL passes the same
//! HTTPS rule as the manifest's ([`check_scheme`]).

use url::Url;

use super::download::{Artifact, Digest, DigestKind};
use super::http::{Client, check_scheme, excerpt, shown};

const FIELDS: &str = "version, compatible, url, sha256, size";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub version: String,
    pub compatible: String,
    pub artifact: Artifact,
}

fn text_field<'a>(object: &'a serde_json::Map<String, serde_json::Value>, name: &str) -> Result<&'a str, String> {
    match object.get(name) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(format!("the manifest's `{name}` must be a non-empty string")),
        None => Err(format!("the manifest has no `{name}` (it needs {FIELDS})")),
    }
}

/// Parses a manifest fetched from `manifest_url`.
pub fn parse(text: &str, manifest_url: &Url, allow_http: bool) -> Result<Manifest, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("the manifest {} is not JSON ({e}): {}", shown(manifest_url), excerpt(text, &[])))?;
    let object = value.as_object().ok_or("the manifest must be a JSON object")?;
    if let Some(unknown) = object.keys().find(|k| !FIELDS.split(", ").any(|f| f == k.as_str())) {
        return Err(format!("the manifest has an unknown field `{unknown}`: allowed are {FIELDS}"));
    }
    let location = text_field(object, "url")?;
    let url =
        manifest_url.join(location).map_err(|e| format!("the manifest's `url` {location:?} is not a URL: {e}"))?;
    check_scheme(&url, allow_http, "the manifest's `url`")?;
    let size = match object.get("size") {
        Some(size) => {
            size.as_u64().filter(|&n| n > 0).ok_or("the manifest's `size` must be a whole number of bytes above 0")?
        }
        None => return Err(format!("the manifest has no `size` (it needs {FIELDS})")),
    };
    let digest = Digest::parse(DigestKind::Sha256, text_field(object, "sha256")?, "the manifest's `sha256`")?;
    Ok(Manifest {
        version: text_field(object, "version")?.to_string(),
        compatible: text_field(object, "compatible")?.to_string(),
        artifact: Artifact { url, size, digest },
    })
}

/// Fetches and parses the manifest at `url`.
pub fn fetch(client: &Client, url: &Url, allow_http: bool) -> Result<Manifest, String> {
    check_scheme(url, allow_http, "the manifest")?;
    let mut response =
        client.agent().get(url.as_str()).call().map_err(|e| format!("the manifest {}", client.describe(url, &e)))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(format!("the manifest {} answered HTTP {status}", shown(url)));
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .map_err(|e| format!("the manifest {}: {e}", shown(url)))?;
    parse(&text, url, allow_http)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://updates.example/box/manifest.json").unwrap()
    }

    fn manifest(fields: &str) -> String {
        format!(
            r#"{{"version": "1.2.3", "compatible": "makespacelive-rpi4", "sha256": "{}", "size": 42{fields}}}"#,
            "AB".repeat(32)
        )
    }

    #[test]
    fn relative_url_is_resolved_against_the_manifest() {
        let m = parse(&manifest(r#", "url": "bundles/x.raucb""#), &base(), false).unwrap();
        assert_eq!(m.version, "1.2.3");
        assert_eq!(m.compatible, "makespacelive-rpi4");
        assert_eq!(m.artifact.url.as_str(), "https://updates.example/box/bundles/x.raucb");
        assert_eq!(m.artifact.size, 42);
        assert_eq!(m.artifact.digest, Digest::Sha256("ab".repeat(32)));
    }

    #[test]
    fn errors_name_the_field() {
        let check = |text: &str, expected: &str| {
            let err = parse(text, &base(), false).unwrap_err();
            assert!(err.contains(expected), "{err}");
        };
        check(&manifest(""), "no `url`");
        check(&manifest(r#", "url": 5"#), "`url` must be a non-empty string");
        check(&manifest(r#", "url": "x", "sha265": "x""#), "unknown field `sha265`: allowed are version");
        check(&manifest(r#", "url": "http://updates.example/x""#), "plain HTTP");
        check(&manifest(r#", "url": "x""#).replace("42", "-1"), "`size` must be a whole number");
        check(&manifest(r#", "url": "x""#).replace(&"AB".repeat(32), "abc"), "`sha256` must be 64 hexadecimal digits");
        check("[1]", "must be a JSON object");
        check("<html>", "is not JSON");
    }

    #[test]
    fn plain_http_to_localhost_is_allowed() {
        let local = Url::parse("http://127.0.0.1:8000/manifest.json").unwrap();
        let m = parse(&manifest(r#", "url": "x.raucb""#), &local, false).unwrap();
        assert_eq!(m.artifact.url.as_str(), "http://127.0.0.1:8000/x.raucb");
    }
}
