//! The Wi-Fi page's API: the saved networks (NetworkManager's, through `Network`), the
//! last scan, and the access point's name and passphrase (settings, saved through
//! `config::Settings`; the network thread takes them for the next time the access point
//! opens).
//!
//! Invariants: no answer or log line carries a password (saved networks are listed
//! without theirs, the access point's only as whether it is set); a refused call changes
//! nothing and names the field with what is allowed (the settings files' own checks).
//! API boundary: the handlers the router calls.

use serde::{Deserialize, Serialize};

use crate::config;
use crate::network::{Mode, NewNetwork, SavedNetwork, ScanEntry, WifiError};
use crate::secrets::Secret;

use super::api::{ApiError, read_json, reply};
use super::{Portal, Response, settings};

/// `GET /api/wifi`.
#[derive(Serialize)]
struct WifiJson {
    mode: Mode,
    /// Highest priority first; empty when they cannot be read (`saved_error` says why).
    saved: Vec<SavedNetwork>,
    saved_error: Option<String>,
    /// The last scan, strongest first.
    scan: Vec<ScanEntry>,
    access_point: AccessPointJson,
}

#[derive(Serialize)]
struct AccessPointJson {
    ssid: String,
    /// WPA2 with a passphrase (never shown), or open.
    passphrase_set: bool,
    /// When a change takes effect.
    applies: &'static str,
}

const APPLIES: &str = "the next time the access point opens";

impl AccessPointJson {
    fn of(network: &config::NetworkConfig) -> AccessPointJson {
        AccessPointJson {
            ssid: network.ap_ssid.clone(),
            passphrase_set: !network.ap_passphrase.is_empty(),
            applies: APPLIES,
        }
    }
}

pub fn get(portal: &Portal) -> Result<Response, ApiError> {
    let status = portal.network.status();
    let (saved, saved_error) = match portal.network.saved_networks() {
        Ok(saved) => (saved, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let access_point = AccessPointJson::of(&portal.settings.get().config.network);
    Ok(reply(&WifiJson { mode: status.mode, saved, saved_error, scan: status.networks, access_point }))
}

/// `POST /api/wifi/scan`: asked for; answers the Wi-Fi state, where the result shows
/// once it is in.
pub fn scan(portal: &Portal) -> Result<Response, ApiError> {
    portal.network.rescan().map_err(api_error)?;
    get(portal)
}

/// `POST /api/wifi/networks`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkBody {
    ssid: String,
    /// Absent or empty: an open network.
    #[serde(default)]
    passphrase: Secret,
    #[serde(default)]
    hidden: bool,
    /// NetworkManager's default 0.
    #[serde(default)]
    priority: i32,
}

pub fn add(portal: &Portal, request: &mut tiny_http::Request) -> Result<Response, ApiError> {
    let body: NetworkBody = read_json(request)?;
    let network =
        NewNetwork { ssid: body.ssid, passphrase: body.passphrase, hidden: body.hidden, priority: body.priority };
    let ssid = network.ssid.clone();
    let saved = portal.network.add_network(network).map_err(api_error)?;
    tracing::info!("web: Wi-Fi network {ssid:?} saved (priority {})", saved.priority);
    Ok(reply(&saved))
}

/// `PUT /api/wifi/networks/{uuid}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorityBody {
    priority: i32,
}

pub fn set_priority(portal: &Portal, request: &mut tiny_http::Request, uuid: &str) -> Result<Response, ApiError> {
    let body: PriorityBody = read_json(request)?;
    let saved = portal.network.set_priority(uuid, body.priority).map_err(api_error)?;
    tracing::info!("web: Wi-Fi network {:?} now has priority {}", saved.ssid, saved.priority);
    Ok(reply(&saved))
}

/// `DELETE /api/wifi/networks/{uuid}`: answers the Wi-Fi state without it.
pub fn forget(portal: &Portal, uuid: &str) -> Result<Response, ApiError> {
    portal.network.forget_network(uuid).map_err(api_error)?;
    tracing::info!("web: a saved Wi-Fi network was forgotten");
    get(portal)
}

/// `PUT /api/wifi/access-point`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessPointBody {
    ssid: String,
    /// Absent: kept as it is; empty: an open access point.
    passphrase: Option<Secret>,
}

pub fn set_access_point(portal: &Portal, request: &mut tiny_http::Request) -> Result<Response, ApiError> {
    let body: AccessPointBody = read_json(request)?;
    config::check_ssid(&body.ssid).map_err(|e| ApiError::field("ssid", e))?;
    if let Some(passphrase) = body.passphrase.as_ref().filter(|p| !p.is_empty()) {
        config::check_wpa_passphrase(passphrase).map_err(|e| ApiError::field("passphrase", e))?;
    }
    let saved = settings::save(portal, |c| {
        c.network.ap_ssid = body.ssid;
        if let Some(passphrase) = body.passphrase {
            c.network.ap_passphrase = passphrase;
        }
        Ok(())
    })?;
    tracing::info!("web: the access point will be {:?} ({APPLIES})", saved.network.ap_ssid);
    Ok(reply(&AccessPointJson::of(&saved.network)))
}

/// A Wi-Fi call's failure as the API answers it.
fn api_error(e: WifiError) -> ApiError {
    match &e {
        WifiError::Invalid { field, reason } => ApiError::field(field, reason.clone()),
        WifiError::NotManaged => ApiError::new(409, e.to_string()),
        WifiError::UnknownNetwork => ApiError::new(404, e.to_string()),
        WifiError::Unavailable(_) => ApiError::new(503, e.to_string()),
        WifiError::Refused(_) => ApiError::new(502, e.to_string()),
    }
}
