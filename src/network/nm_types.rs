//! NetworkManager's numbers as types, from its D-Bus API reference (`NMState`,
//! `NMConnectivityState`, `NMDeviceState`, `NMDeviceStateReason`, `NMDeviceType`): the
//! service's decisions compare variants, never numbers.
//!
//! **Invariant:** every `u32` NetworkManager sends has a value here; one it adds in a later
//! release is `Unknown` or `Other(n)` (kept, for the log), never an error.
//! **API boundary:** `From<u32>` for each, used where `nm` reads a property or a signal.

/// `NMState`, NetworkManager's overall state. Ordered as NetworkManager orders it: more
/// connected is greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Unknown,
    Asleep,
    Disconnected,
    Disconnecting,
    Connecting,
    /// Only a link-local or the box's own access point's network.
    ConnectedLocal,
    /// A default route, the Internet not (yet) confirmed.
    ConnectedSite,
    ConnectedGlobal,
}

impl From<u32> for State {
    fn from(n: u32) -> State {
        match n {
            10 => State::Asleep,
            20 => State::Disconnected,
            30 => State::Disconnecting,
            40 => State::Connecting,
            50 => State::ConnectedLocal,
            60 => State::ConnectedSite,
            70 => State::ConnectedGlobal,
            _ => State::Unknown,
        }
    }
}

/// `NMConnectivityState`: what NetworkManager's connectivity check found (the best of all
/// devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connectivity {
    /// Not checked (no check configured, or not yet).
    Unknown,
    None,
    /// A captive portal: a login page stands between the box and the Internet.
    Portal,
    Limited,
    Full,
}

impl From<u32> for Connectivity {
    fn from(n: u32) -> Connectivity {
        match n {
            1 => Connectivity::None,
            2 => Connectivity::Portal,
            3 => Connectivity::Limited,
            4 => Connectivity::Full,
            _ => Connectivity::Unknown,
        }
    }
}

/// `NMDeviceState`, of the Wi-Fi device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    Unmanaged,
    Unavailable,
    Disconnected,
    Prepare,
    Config,
    NeedAuth,
    IpConfig,
    IpCheck,
    Secondaries,
    Activated,
    Deactivating,
    /// NetworkManager gave up on the connection; the signal's reason says why.
    Failed,
    Other(u32),
}

impl From<u32> for DeviceState {
    fn from(n: u32) -> DeviceState {
        match n {
            10 => DeviceState::Unmanaged,
            20 => DeviceState::Unavailable,
            30 => DeviceState::Disconnected,
            40 => DeviceState::Prepare,
            50 => DeviceState::Config,
            60 => DeviceState::NeedAuth,
            70 => DeviceState::IpConfig,
            80 => DeviceState::IpCheck,
            90 => DeviceState::Secondaries,
            100 => DeviceState::Activated,
            110 => DeviceState::Deactivating,
            120 => DeviceState::Failed,
            other => DeviceState::Other(other),
        }
    }
}

/// `NMDeviceStateReason`: the reasons the portal tells a person apart; the rest by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    IpConfigUnavailable,
    IpConfigExpired,
    NoSecrets,
    SupplicantDisconnect,
    SupplicantConfigFailed,
    SupplicantTimeout,
    DhcpStartFailed,
    DhcpError,
    DhcpFailed,
    SsidNotFound,
    Other(u32),
}

impl From<u32> for Reason {
    fn from(n: u32) -> Reason {
        match n {
            5 => Reason::IpConfigUnavailable,
            6 => Reason::IpConfigExpired,
            7 => Reason::NoSecrets,
            8 => Reason::SupplicantDisconnect,
            9 => Reason::SupplicantConfigFailed,
            11 => Reason::SupplicantTimeout,
            15 => Reason::DhcpStartFailed,
            16 => Reason::DhcpError,
            17 => Reason::DhcpFailed,
            53 => Reason::SsidNotFound,
            other => Reason::Other(other),
        }
    }
}

/// `NMDeviceType`: the kinds of device the service looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    Ethernet,
    Wifi,
    Other(u32),
}

impl From<u32> for DeviceType {
    fn from(n: u32) -> DeviceType {
        match n {
            1 => DeviceType::Ethernet,
            2 => DeviceType::Wifi,
            other => DeviceType::Other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_networkmanager_become_variants_and_new_ones_are_kept() {
        assert_eq!(State::from(70), State::ConnectedGlobal);
        assert!(State::from(60) > State::ConnectedLocal && State::from(50) < State::ConnectedSite);
        assert_eq!(State::from(65), State::Unknown);
        assert_eq!(Connectivity::from(2), Connectivity::Portal);
        assert_eq!(Connectivity::from(9), Connectivity::Unknown);
        assert_eq!(DeviceState::from(120), DeviceState::Failed);
        assert_eq!(DeviceState::from(125), DeviceState::Other(125));
        assert_eq!(Reason::from(53), Reason::SsidNotFound);
        assert_eq!(Reason::from(36), Reason::Other(36));
        assert_eq!(DeviceType::from(2), DeviceType::Wifi);
        assert_eq!(DeviceType::from(30), DeviceType::Other(30));
    }
}
