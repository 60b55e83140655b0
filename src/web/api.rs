//! The JSON side of the LAN pages: errors that name the field and the reason, bodies read
//! within a limit, answers.
//!
//! Invariant: a body is refused on its declared length before a byte is read, and cut off
//! at `JSON_LIMIT` while reading (a chunked body declares none); an error never echoes a
//! value that was sent (it may be a key or a password).
//! API boundary: `ApiError`, `read_json`, `read_limited`, `reply`, `field_of`.

use std::io::{ErrorKind, Read};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{IO_TIMEOUT, Response, respond};

/// The largest JSON body accepted (settings, a destination, a network).
pub const JSON_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The setting or form field, as in the config file (`video.bitrate_kbps`) or the
    /// request's own field (`key`); none when the problem is the whole request.
    pub field: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub errors: Vec<FieldError>,
    /// Seconds to wait before asking again (429), sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    errors: &'a [FieldError],
}

impl ApiError {
    pub fn new(code: u16, reason: impl Into<String>) -> ApiError {
        ApiError { code, errors: vec![FieldError { field: None, reason: reason.into() }], retry_after: None }
    }

    /// 400 on one field.
    pub fn field(field: &str, reason: impl Into<String>) -> ApiError {
        ApiError {
            code: 400,
            errors: vec![FieldError { field: Some(field.into()), reason: reason.into() }],
            retry_after: None,
        }
    }

    /// 400 from `Config::validate`'s sentences, each under the setting it names.
    pub fn problems(problems: &[String]) -> ApiError {
        let errors =
            problems.iter().map(|p| FieldError { field: field_of(p).map(str::to_string), reason: p.clone() }).collect();
        ApiError { code: 400, errors, retry_after: None }
    }

    /// 429: wait this many seconds.
    pub fn too_many(reason: String, seconds: u64) -> ApiError {
        ApiError { retry_after: Some(seconds), ..ApiError::new(429, reason) }
    }

    pub fn response(&self) -> Response {
        let body = serde_json::to_vec_pretty(&ErrorBody { errors: &self.errors }).unwrap_or_default();
        self.with_retry_after(respond(self.code, "application/json", body))
    }

    pub fn with_retry_after(&self, response: Response) -> Response {
        match self.retry_after {
            Some(seconds) => {
                response.with_header(tiny_http::Header::from_bytes("Retry-After", seconds.to_string()).expect("digits"))
            }
            None => response,
        }
    }
}

/// The setting a validation sentence is about: every one starts with it
/// (`video.width = 3: must be …`, `destinations[0].name is empty: …`).
pub fn field_of(problem: &str) -> Option<&str> {
    let end = problem.find([' ', ':']).unwrap_or(problem.len());
    let key = &problem[..end];
    let is_key = !key.is_empty()
        && key.contains('.')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || "._[]".contains(c))
        && !key.ends_with('.');
    is_key.then_some(key)
}

pub fn reply(value: &impl Serialize) -> Response {
    respond(200, "application/json", serde_json::to_vec_pretty(value).unwrap_or_default())
}

/// The body as `T`: `application/json`, within `JSON_LIMIT`.
pub fn read_json<T: DeserializeOwned>(request: &mut tiny_http::Request) -> Result<T, ApiError> {
    let media_type = super::header(request, "Content-Type").unwrap_or_default();
    let media_type = media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if media_type != "application/json" {
        return Err(ApiError::new(415, format!("send the body as application/json, not {media_type:?}")));
    }
    let body = read_limited(request, JSON_LIMIT, "body")?;
    serde_json::from_slice(&body).map_err(|e| json_error(&e))
}

/// Names what did not fit without the value sent: "unknown field `x`, expected one of …"
/// says it, "invalid type: string \"hunter2\"" would echo it.
fn json_error(e: &serde_json::Error) -> ApiError {
    let message = e.to_string();
    let message = match message.find(": string \"").or_else(|| message.find(": \"")) {
        Some(at) if message.starts_with("invalid") => format!("{} (the value is not repeated)", &message[..at]),
        _ => message,
    };
    ApiError::new(400, format!("the JSON body does not fit: {message}"))
}

/// Up to `limit` bytes of the body (`what` names it in errors: "form", "body"); 413 when
/// it is declared or found larger, 408 when it does not come in time.
pub fn read_limited(request: &mut tiny_http::Request, limit: usize, what: &str) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::new(413, format!("the {what} is larger than {limit} bytes"));
    if request.body_length().is_some_and(|declared| declared > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    request.as_reader().take(limit as u64 + 1).read_to_end(&mut body).map_err(|e| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            ApiError::new(408, format!("the {what} did not arrive within {} s", IO_TIMEOUT.as_secs()))
        }
        _ => ApiError::new(400, format!("the {what} could not be read: {e}")),
    })?;
    if body.len() > limit { Err(too_large()) } else { Ok(body) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_sentences_are_filed_under_their_setting() {
        assert_eq!(field_of("video.width = 3: must be between 16 and 4096"), Some("video.width"));
        assert_eq!(field_of("destinations[1].name is empty: give …"), Some("destinations[1].name"));
        assert_eq!(field_of("network.ap_passphrase: must be 8–63"), Some("network.ap_passphrase"));
        assert_eq!(field_of("update.source = \"hawkbit\" needs …"), Some("update.source"));
        assert_eq!(field_of("something else happened"), None);
        assert_eq!(field_of("merged settings: x"), None);
        let error = ApiError::problems(&["video.width = 3: must be between 16 and 4096".into()]);
        assert_eq!(error.errors[0].field.as_deref(), Some("video.width"));
        assert_eq!(error.code, 400);
    }

    #[test]
    fn json_errors_never_repeat_a_value_sent() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Body {
            n: u32,
        }
        let e = serde_json::from_str::<Body>(r#"{"n": "hunter2"}"#).unwrap_err();
        let error = json_error(&e);
        let reason = &error.errors[0].reason;
        assert!(!reason.contains("hunter2") && reason.contains("invalid type"), "{reason}");
        let e = serde_json::from_str::<Body>(r#"{"m": 1}"#).unwrap_err();
        assert!(json_error(&e).errors[0].reason.contains("missing field `n`"), "{:?}", json_error(&e));
    }
}
