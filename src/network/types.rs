//! What the network side tells the others and takes from them: the mode, scan results,
//! saved networks, a network to join, and the rules a new network is checked by (pure).

use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::secrets::Secret;

/// The access point's own address (pinned in its profile's `ipv4.address-data`), where
/// the portal answers; `conf/dnsmasq-shared.d/makespacelive-portal.conf` repeats it.
pub const PORTAL_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 1);

/// Where the box stands in getting online; `as_str` is how `/api/status` spells it.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(into = "&'static str")]
pub enum Mode {
    /// `network.manage = false`, or no NetworkManager: the network is someone else's.
    #[default]
    Unmanaged,
    /// Giving saved networks their time after power-on.
    Starting,
    /// Looking for networks (before the access point opens, or on "Rescan").
    Scanning,
    /// "Wifi Connect" is up, waiting for a phone and the setup form.
    AccessPoint,
    /// Trying the network a person picked (or a saved one).
    Connecting,
    /// Full or limited connectivity: the box streams.
    Online,
}

impl Mode {
    /// Streaming waits while the box has no network of its own to stream on: scanning,
    /// or serving "Wifi Connect" (encoding then would only take the CPU the portal
    /// needs). Starting and connecting stream: a saved network may come up any moment,
    /// and the pipelines' reconnect logic covers the gap.
    pub fn carries_streams(self) -> bool {
        !matches!(self, Mode::Scanning | Mode::AccessPoint)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Unmanaged => "unmanaged",
            Mode::Starting => "starting",
            Mode::Scanning => "scanning",
            Mode::AccessPoint => "access-point",
            Mode::Connecting => "connecting",
            Mode::Online => "online",
        }
    }
}

impl From<Mode> for &'static str {
    fn from(mode: Mode) -> Self {
        mode.as_str()
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Open,
    /// WPA/WPA2 personal (PSK).
    Wpa2,
    /// WPA3 personal (SAE), possibly in transition mode with WPA2.
    Wpa3,
    /// 802.1X: the portal cannot set it up.
    Enterprise,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum Band {
    #[serde(rename = "2.4 GHz")]
    Ghz2_4,
    #[serde(rename = "5 GHz")]
    Ghz5,
}

/// One network the last scan found (strongest access point per SSID).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScanEntry {
    pub ssid: String,
    /// 0–100, as NetworkManager reports it.
    pub signal: u8,
    pub security: Security,
    pub band: Band,
}

/// The network side of `/api/status` and of the portal page.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct NetworkStatus {
    pub mode: Mode,
    /// The network the box is on, or the access point's name while it serves it.
    pub ssid: Option<String>,
    pub signal: Option<u8>,
    /// The box's IPv4 address on that network.
    pub address: Option<String>,
    /// Why the last attempt failed, as one plain sentence for a person.
    pub last_failure: Option<String>,
    /// What the last scan found, strongest first.
    pub networks: Vec<ScanEntry>,
    /// A passing remark for the page ("the access point closed for a few seconds to scan").
    pub notice: Option<String>,
}

/// What a person asked for in the portal.
#[derive(Debug, Clone, PartialEq)]
pub struct WifiRequest {
    pub ssid: String,
    /// Empty for an open network.
    pub passphrase: Secret,
    /// Typed by hand: the network does not announce itself.
    pub hidden: bool,
}

/// A saved Wi-Fi client profile, as the LAN pages list it; never its password.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SavedNetwork {
    /// NetworkManager's `connection.uuid`: the id the API names it by.
    pub uuid: String,
    pub ssid: String,
    /// `connection.autoconnect-priority`: of two saved networks in range, the higher wins.
    pub priority: i32,
    pub security: Security,
    pub hidden: bool,
    /// The Wi-Fi device is on it (or joining it) now.
    pub active: bool,
}

/// A network to save from the LAN pages.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNetwork {
    pub ssid: String,
    /// Empty for an open network.
    pub passphrase: Secret,
    pub hidden: bool,
    pub priority: i32,
}

/// NetworkManager's bounds of `connection.autoconnect-priority`.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -999..=999;
/// What the portal's choice gets: above NetworkManager's default 0, so it beats older profiles.
pub const PORTAL_PRIORITY: i32 = 10;

/// Why a Wi-Fi call from the LAN pages did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WifiError {
    /// `network.manage = false`.
    NotManaged,
    /// NetworkManager is not there, or did not answer in time.
    Unavailable(String),
    /// No saved Wi-Fi network has this id.
    UnknownNetwork,
    /// A bad value: the field (`ssid`, `passphrase`, `priority`) and what is allowed.
    Invalid { field: &'static str, reason: String },
    /// NetworkManager said no; its words, with the passphrase taken out.
    Refused(String),
}

impl fmt::Display for WifiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WifiError::NotManaged => {
                f.write_str("the network is not managed by this box (network.manage = false): change Wi-Fi elsewhere")
            }
            WifiError::Unavailable(why) => f.write_str(why),
            WifiError::UnknownNetwork => f.write_str("no saved Wi-Fi network has this id (GET /api/wifi lists them)"),
            WifiError::Invalid { field, reason } => write!(f, "{field}: {reason}"),
            WifiError::Refused(why) => write!(f, "NetworkManager refused: {why}"),
        }
    }
}

/// The rules a network to save must meet (those of the settings files for the name and
/// the password).
pub fn check_new_network(network: &NewNetwork) -> Result<(), WifiError> {
    let invalid = |field, reason| WifiError::Invalid { field, reason };
    crate::config::check_ssid(&network.ssid).map_err(|e| invalid("ssid", e))?;
    if !network.passphrase.is_empty() {
        crate::config::check_wpa_passphrase(&network.passphrase).map_err(|e| invalid("passphrase", e))?;
    }
    check_priority(network.priority)
}

pub fn check_priority(priority: i32) -> Result<(), WifiError> {
    if PRIORITY_RANGE.contains(&priority) {
        Ok(())
    } else {
        Err(WifiError::Invalid {
            field: "priority",
            reason: format!(
                "{priority} is out of range; allowed {} to {} (higher wins)",
                PRIORITY_RANGE.start(),
                PRIORITY_RANGE.end()
            ),
        })
    }
}

/// `iw`, by its path in the image and on Debian: root runs it (set-country), and nothing
/// in the environment chooses which program that is.
pub const IW: &str = "/usr/sbin/iw";

/// What `iw reg set` gets for `network.country`: the code, or `00` (the world domain).
pub fn regulatory_domain(country: &str) -> &str {
    if country.is_empty() { "00" } else { country }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_only_with_a_network_to_stream_on() {
        for mode in [Mode::Unmanaged, Mode::Starting, Mode::Connecting, Mode::Online] {
            assert!(mode.carries_streams(), "{mode:?}");
        }
        for mode in [Mode::Scanning, Mode::AccessPoint] {
            assert!(!mode.carries_streams(), "{mode:?}");
        }
    }

    #[test]
    fn the_shipped_dnsmasq_file_names_the_portal_address() {
        let conf =
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/dnsmasq-shared.d/makespacelive-portal.conf"));
        let addresses: Vec<Ipv4Addr> = conf
            .lines()
            .filter(|line| !line.starts_with('#'))
            .flat_map(|line| line.split(|c: char| !(c.is_ascii_digit() || c == '.')))
            .filter_map(|token| token.parse().ok())
            .collect();
        assert!(addresses.len() >= 2, "the DNS answer and option 114: {conf}");
        assert!(addresses.iter().all(|a| *a == PORTAL_ADDRESS), "{addresses:?}");
    }

    #[test]
    fn a_network_to_save_is_checked_by_the_settings_rules() {
        let network = |ssid: &str, passphrase: &str, priority| NewNetwork {
            ssid: ssid.into(),
            passphrase: Secret::new(passphrase),
            hidden: false,
            priority,
        };
        assert_eq!(check_new_network(&network("Venue", "", 0)), Ok(()), "open");
        assert_eq!(check_new_network(&network("Venue", "venue-password", -999)), Ok(()));
        let field = |n: &NewNetwork| match check_new_network(n) {
            Err(WifiError::Invalid { field, reason }) => (field, reason),
            other => panic!("{other:?}"),
        };
        let (name, reason) = field(&network("Venue", "short", 0));
        assert_eq!(name, "passphrase");
        assert!(reason.contains("8 to 63") && !reason.contains("short"), "{reason}");
        assert_eq!(field(&network("", "", 0)).0, "ssid");
        let (name, reason) = field(&network("Venue", "", 1000));
        assert_eq!(name, "priority");
        assert!(reason.contains("-999 to 999"), "{reason}");
    }

    #[test]
    fn no_country_is_the_world_domain() {
        assert_eq!(regulatory_domain(""), "00");
        assert_eq!(regulatory_domain("GB"), "GB");
    }
}
