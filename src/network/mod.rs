//! Getting the box online: NetworkManager over D-Bus (zbus), the "Wifi Connect" access
//! point, connecting to the network a person picked in the portal, and the status LED.
//!
//! SKELETON (interface shared by the portal and the status page; the network helper fills
//! in `start` and the submodules `provisioning` (pure state machine), `nm` (the D-Bus edge)
//! and `led`).

use std::sync::mpsc;

use serde::Serialize;

use crate::config::NetworkConfig;
use crate::secrets::Secret;
use crate::status::SharedStatus;

/// The box's address on its own access point (NetworkManager's shared mode); the portal lives here.
pub const PORTAL_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 42, 0, 1);

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

enum Command {
    Connect(WifiRequest),
    Rescan,
}

/// The handle the portal and the status page hold.
#[derive(Clone)]
pub struct Network {
    commands: mpsc::Sender<Command>,
    /// The network thread writes `status.network`; the supervisor leaves it alone.
    status: SharedStatus,
}

impl Network {
    /// Starts the network thread (or, with `manage = false`, a handle that stays unmanaged).
    pub fn start(config: &NetworkConfig, status: SharedStatus) -> Network {
        let _ = config;
        let (commands, _) = mpsc::channel();
        Network { commands, status }
    }

    pub fn status(&self) -> NetworkStatus {
        self.status.lock().expect("status lock").network.clone()
    }

    /// Saves nothing: the caller has saved the stream settings first.
    pub fn connect(&self, request: WifiRequest) {
        let _ = self.commands.send(Command::Connect(request));
    }

    pub fn rescan(&self) {
        let _ = self.commands.send(Command::Rescan);
    }
}
