//! The update, reboot, boot configuration and log calls: `GET /api/update`,
//! `POST /api/update/upload`, `POST /api/reboot`, `GET/PUT /api/boot-config`,
//! `GET /api/logs`. The router has checked the session and the CSRF token before these.
//!
//! Invariants: an uploaded bundle is streamed onto the data partition (`update::upload`),
//! never held in memory, and refused before reading when it cannot be taken; only the
//! update thread installs it and writes `status.update`; config.txt is read and changed
//! only by the root helper (`bootcfg::request`: the boot partition is root's); a reboot
//! while a destination is live needs `"confirm": true`. Deciding lives in `reboot_refusal`,
//! `boot_config_error`, `lines_wanted` and `upload::not_now` (pure).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::api::{ApiError, read_json, reply};
use super::{Portal, Response, header, query_value, respond};
use crate::bootcfg::{self, Camera, Wanted};
use crate::status::{DestinationState, DestinationStatus};
use crate::update::agent::Installer;
use crate::update::upload::{self, Uploads};

/// How long `/api/boot-config` waits for the root helper's answer.
const HELPER_WAIT: Duration = Duration::from_secs(10);
/// `GET /api/logs` without `lines=`.
const DEFAULT_LINES: usize = 100;

/// What these calls need besides the status.
pub struct UpdateSide {
    pub uploads: Uploads,
    pub installer: Installer,
    /// Where a reboot and the boot configuration are asked for.
    pub runtime_dir: PathBuf,
}

/// `GET /api/update`: `status.update`.
pub fn get(portal: &Portal) -> Result<Response, ApiError> {
    Ok(reply(&*portal.board.update.get()))
}

#[derive(Serialize)]
struct Stored {
    bytes: u64,
    message: &'static str,
}

/// `POST /api/update/upload`: the raw bundle (`application/octet-stream`) with its
/// `Content-Length`; 202 once stored, the install then shows in `GET /api/update`.
pub fn upload(portal: &Portal, request: &mut tiny_http::Request) -> Result<Response, ApiError> {
    let media_type = header(request, "Content-Type").unwrap_or_default();
    let media_type = media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if media_type != "application/octet-stream" {
        return Err(ApiError::new(
            415,
            format!("send the bundle (.raucb) as the raw body, application/octet-stream, not {media_type:?}"),
        ));
    }
    let not_now = upload::not_now(&portal.board.update.get());
    if let Some(refusal) = not_now {
        return Err(refused(refusal));
    }
    let side = &portal.update;
    let declared = request.body_length().map(|n| n as u64);
    let limit = u64::from(portal.settings.get().config.update.upload_limit_mb) * 1024 * 1024;
    let stored = side.uploads.receive(request.as_reader(), declared, limit).map_err(refused)?;
    let bytes = std::fs::metadata(stored.path()).map(|m| m.len()).unwrap_or_default();
    tracing::info!("web: a bundle of {bytes} bytes was uploaded; handing it to the update thread");
    side.installer.install(stored).map_err(|why| ApiError::new(500, why))?;
    let message = "stored; it is being installed: follow GET /api/update";
    let body = serde_json::to_vec_pretty(&Stored { bytes, message }).unwrap_or_default();
    Ok(respond(202, "application/json", body))
}

fn refused(refusal: upload::Refusal) -> ApiError {
    tracing::warn!("web: an uploaded bundle was refused: {refusal}");
    ApiError::new(refusal.code(), refusal.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RebootBody {
    #[serde(default)]
    confirm: bool,
}

/// Why a reboot asked for from the web is not done now: it would end a live stream and
/// the person has not confirmed that.
pub fn reboot_refusal(destinations: &[DestinationStatus], confirm: bool) -> Option<String> {
    let live: Vec<String> =
        destinations.iter().filter(|d| d.state == DestinationState::Live).map(|d| format!("{:?}", d.name)).collect();
    (!confirm && !live.is_empty()).then(|| {
        format!(
            "the box is streaming live to {}: a reboot ends the stream; send {{\"confirm\": true}} to reboot anyway",
            live.join(", ")
        )
    })
}

/// `POST /api/reboot` (`{"confirm": true}` while a destination is live).
pub fn reboot(portal: &Portal, request: &mut tiny_http::Request) -> Result<Response, ApiError> {
    let body: RebootBody = read_json(request)?;
    let destinations = portal.board.stream.get().destinations.clone();
    if let Some(why) = reboot_refusal(&destinations, body.confirm) {
        return Err(ApiError::new(409, why));
    }
    crate::update::request_reboot(&portal.update.runtime_dir, "as asked from the web")
        .map_err(|why| ApiError::new(500, why))?;
    let body = serde_json::to_vec_pretty(&serde_json::json!({ "message": "rebooting" })).unwrap_or_default();
    Ok(respond(202, "application/json", body))
}

/// `GET /api/boot-config`: what config.txt has in force for this board (read by the helper).
pub fn boot_config(portal: &Portal) -> Result<Response, ApiError> {
    let answer = bootcfg::request::ask(&portal.update.runtime_dir, &Wanted::default(), HELPER_WAIT)
        .map_err(|why| ApiError::new(503, why))?;
    match (answer.view, answer.error) {
        (Some(view), _) => Ok(reply(&view)),
        (None, why) => Err(ApiError::new(500, why.unwrap_or_default())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BootConfigBody {
    camera: Option<String>,
    gpu_mem: Option<u32>,
}

#[derive(Serialize)]
struct Changed {
    changes: Vec<String>,
    /// Every change since boot that waits for a reboot.
    reboot_needed: Option<String>,
    message: String,
    /// What is in force now (as `GET /api/boot-config`).
    view: Option<bootcfg::View>,
}

/// The helper's refusal under the field it names (`gpu_mem=…`, `camera=…`).
pub fn boot_config_error(reason: String) -> ApiError {
    match ["gpu_mem", "camera"].into_iter().find(|field| reason.starts_with(&format!("{field}="))) {
        Some(field) => ApiError::field(field, reason),
        None => ApiError::new(400, reason),
    }
}

/// `PUT /api/boot-config` `{camera, gpu_mem}`: asks the root helper, waits for its answer.
pub fn set_boot_config(portal: &Portal, request: &mut tiny_http::Request) -> Result<Response, ApiError> {
    let body: BootConfigBody = read_json(request)?;
    let camera =
        body.camera.as_deref().map(str::parse::<Camera>).transpose().map_err(|e| ApiError::field("camera", e))?;
    let wanted = Wanted { gpu_mem: body.gpu_mem, camera };
    if wanted == Wanted::default() {
        return Err(ApiError::new(400, "nothing to set: give camera, gpu_mem or both"));
    }
    let answer = bootcfg::request::ask(&portal.update.runtime_dir, &wanted, HELPER_WAIT)
        .map_err(|why| ApiError::new(503, why))?;
    if let Some(why) = answer.error {
        return Err(boot_config_error(why));
    }
    let message = if answer.changes.is_empty() {
        "nothing to change: already in force".to_string()
    } else {
        tracing::info!("web: config.txt changed: {}", answer.changes.join("; "));
        "reboot needed: the firmware reads config.txt only at boot".to_string()
    };
    Ok(reply(&Changed { changes: answer.changes, reboot_needed: answer.reboot_needed, message, view: answer.view }))
}

/// `lines=N` of `GET /api/logs`: 1 to the ring's size, `DEFAULT_LINES` when absent.
pub fn lines_wanted(value: Option<&str>) -> Result<usize, String> {
    let max = crate::logging::RING_LINES;
    match value {
        None => Ok(DEFAULT_LINES),
        Some(n) => n.parse().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| format!("lines must be 1 to {max}")),
    }
}

/// `GET /api/logs?lines=N`: the service's last log lines, oldest first.
pub fn logs(request: &tiny_http::Request) -> Result<Response, ApiError> {
    let lines =
        lines_wanted(query_value(request.url(), "lines").as_deref()).map_err(|e| ApiError::field("lines", e))?;
    Ok(reply(&serde_json::json!({ "lines": crate::logging::recent(lines) })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(name: &str, state: DestinationState) -> DestinationStatus {
        DestinationStatus { name: name.into(), state, ..DestinationStatus::default() }
    }

    #[test]
    fn a_reboot_during_a_live_stream_needs_a_confirmation() {
        let idle = [destination("yt", DestinationState::Backoff), destination("tw", DestinationState::Disabled)];
        assert_eq!(reboot_refusal(&idle, false), None);
        let live = [destination("yt", DestinationState::Live), destination("tw", DestinationState::Live)];
        let why = reboot_refusal(&live, false).unwrap();
        assert!(why.contains("streaming live to \"yt\", \"tw\"") && why.contains("\"confirm\": true"), "{why}");
        assert_eq!(reboot_refusal(&live, true), None);
    }

    #[test]
    fn the_helpers_refusal_is_filed_under_its_field() {
        let error = boot_config_error("gpu_mem=2000 is out of range: allowed 16..=944".into());
        assert_eq!(error.errors[0].field.as_deref(), Some("gpu_mem"));
        let error = boot_config_error("unknown board model \"x\"".into());
        assert_eq!((error.code, error.errors[0].field.as_deref()), (400, None));
    }

    #[test]
    fn log_lines_are_bounded() {
        assert_eq!(lines_wanted(None), Ok(DEFAULT_LINES));
        assert_eq!(lines_wanted(Some("500")), Ok(500));
        assert_eq!(lines_wanted(Some("0")), Err("lines must be 1 to 500".into()));
        assert!(lines_wanted(Some("501")).is_err() && lines_wanted(Some("many")).is_err());
    }
}
