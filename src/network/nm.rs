//! The NetworkManager edge: D-Bus calls on the system bus (zbus, blocking API; the bus is
//! `DBUS_SYSTEM_BUS_ADDRESS` when set) and the settings dictionaries the service sends.
//! Building dictionaries and reading scan results are pure functions; everything else
//! here is one D-Bus call or signal subscription.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use zbus::blocking::{Connection, MessageIterator};
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

use super::nm_types::{Connectivity, DeviceState, DeviceType, Reason, State};
use super::{Band, PORTAL_ADDRESS, SavedNetwork, ScanEntry, Security, WifiRequest};
use crate::config::NetworkConfig;

const NM: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const SETTINGS_PATH: &str = "/org/freedesktop/NetworkManager/Settings";
const SETTINGS: &str = "org.freedesktop.NetworkManager.Settings";
const CONNECTION: &str = "org.freedesktop.NetworkManager.Settings.Connection";
const DEVICE: &str = "org.freedesktop.NetworkManager.Device";
const WIRELESS: &str = "org.freedesktop.NetworkManager.Device.Wireless";
const ACCESS_POINT: &str = "org.freedesktop.NetworkManager.AccessPoint";
const ACTIVE: &str = "org.freedesktop.NetworkManager.Connection.Active";
const IP4: &str = "org.freedesktop.NetworkManager.IP4Config";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// `NM80211ApSecurityFlags` key management bits.
const KEY_MGMT_PSK: u32 = 0x100;
const KEY_MGMT_802_1X: u32 = 0x200;
const KEY_MGMT_SAE: u32 = 0x400;
/// `NM80211ApFlags` PRIVACY: WEP when no WPA flags are set.
const AP_PRIVACY: u32 = 0x1;
/// `NMSettingsUpdate2Flags` TO_DISK: the changed profile is written to its keyfile.
const UPDATE2_TO_DISK: u32 = 0x1;

pub type Error = zbus::Error;
type Settings<'a> = HashMap<&'static str, HashMap<&'static str, Value<'a>>>;
/// A saved profile's settings as `GetSettings` returns them.
type Saved = HashMap<String, HashMap<String, OwnedValue>>;

/// One access point as NetworkManager reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAp {
    pub ssid: Vec<u8>,
    pub strength: u8,
    pub flags: u32,
    pub wpa_flags: u32,
    pub rsn_flags: u32,
    pub frequency: u32,
}

impl RawAp {
    fn security(&self) -> Security {
        let key_mgmt = self.wpa_flags | self.rsn_flags;
        if key_mgmt & KEY_MGMT_802_1X != 0 {
            Security::Enterprise
        } else if key_mgmt & KEY_MGMT_SAE != 0 {
            Security::Wpa3
        } else if key_mgmt & KEY_MGMT_PSK != 0 || self.flags & AP_PRIVACY != 0 {
            Security::Wpa2
        } else {
            Security::Open
        }
    }
}

/// The networks a scan found: the strongest access point per SSID, strongest first;
/// hidden (empty-SSID) ones left out.
pub fn scan_entries(aps: &[RawAp]) -> Vec<ScanEntry> {
    let mut best: HashMap<String, ScanEntry> = HashMap::new();
    for ap in aps.iter().filter(|ap| !ap.ssid.is_empty()) {
        let entry = ScanEntry {
            ssid: String::from_utf8_lossy(&ap.ssid).into_owned(),
            signal: ap.strength.min(100),
            security: ap.security(),
            band: if ap.frequency >= 4900 { Band::Ghz5 } else { Band::Ghz2_4 },
        };
        match best.get(&entry.ssid) {
            Some(known) if known.signal >= entry.signal => {}
            _ => {
                best.insert(entry.ssid.clone(), entry);
            }
        }
    }
    let mut entries: Vec<ScanEntry> = best.into_values().collect();
    entries.sort_by(|a, b| b.signal.cmp(&a.signal).then_with(|| a.ssid.cmp(&b.ssid)));
    entries
}

/// The strongest access point of `ssid` in a scan.
pub fn strongest<'a>(aps: &'a [RawAp], ssid: &str) -> Option<&'a RawAp> {
    aps.iter().filter(|ap| ap.ssid == ssid.as_bytes()).max_by_key(|ap| ap.strength)
}

/// Key management for a client connection: `sae` only for a WPA3-only network (what it
/// advertises); in WPA2/WPA3 transition mode `wpa-psk`, which every radio and driver does
/// (SAE through the Pi's brcmfmac depends on its firmware), and for a network not seen in
/// the scan (hidden) `wpa-psk` too.
pub fn key_mgmt(seen: Option<&RawAp>) -> &'static str {
    match seen {
        Some(ap) => {
            let key_mgmt = ap.wpa_flags | ap.rsn_flags;
            if key_mgmt & KEY_MGMT_SAE != 0 && key_mgmt & KEY_MGMT_PSK == 0 { "sae" } else { "wpa-psk" }
        }
        None => "wpa-psk",
    }
}

/// The access point's profile: volatile by the options `AddAndActivateConnection2` gets.
pub fn ap_settings(config: &NetworkConfig, interface: &str) -> Settings<'static> {
    let mut settings = Settings::new();
    settings.insert(
        "connection",
        HashMap::from([
            ("type", Value::from("802-11-wireless")),
            ("id", Value::from(config.ap_ssid.clone())),
            ("autoconnect", Value::from(false)),
            ("interface-name", Value::from(interface.to_string())),
        ]),
    );
    settings.insert(
        "802-11-wireless",
        HashMap::from([
            ("ssid", Value::from(config.ap_ssid.as_bytes().to_vec())),
            ("mode", Value::from("ap")),
            ("band", Value::from("bg")),
            ("channel", Value::from(config.ap_channel)),
        ]),
    );
    if !config.ap_passphrase.is_empty() {
        settings.insert(
            "802-11-wireless-security",
            HashMap::from([
                ("key-mgmt", Value::from("wpa-psk")),
                ("proto", Value::from(vec!["rsn"])),
                ("pairwise", Value::from(vec!["ccmp"])),
                ("group", Value::from(vec!["ccmp"])),
                ("psk", Value::from(config.ap_passphrase.expose().to_string())),
            ]),
        );
    }
    let address = HashMap::from([("address", Value::from(PORTAL_ADDRESS.to_string())), ("prefix", Value::from(24u32))]);
    settings.insert(
        "ipv4",
        HashMap::from([("method", Value::from("shared")), ("address-data", Value::from(vec![address]))]),
    );
    settings.insert("ipv6", HashMap::from([("method", Value::from("disabled"))]));
    settings
}

/// A client profile for the network a person picked; saved (to `/data`) by NetworkManager.
/// Of two saved networks in range, NetworkManager brings up the one of higher `priority`.
pub fn client_settings(request: &WifiRequest, seen: Option<&RawAp>, priority: i32) -> Settings<'static> {
    let mut settings = Settings::new();
    settings.insert(
        "connection",
        HashMap::from([
            ("type", Value::from("802-11-wireless")),
            ("id", Value::from(request.ssid.clone())),
            ("autoconnect", Value::from(true)),
            ("autoconnect-priority", Value::from(priority)),
            // A wrong password fails at once instead of NetworkManager asking for it again.
            ("auth-retries", Value::from(1i32)),
        ]),
    );
    let mut wireless = HashMap::from([
        ("ssid", Value::from(request.ssid.as_bytes().to_vec())),
        ("mode", Value::from("infrastructure")),
    ]);
    if request.hidden {
        wireless.insert("hidden", Value::from(true));
    }
    settings.insert("802-11-wireless", wireless);
    if !request.passphrase.is_empty() {
        settings.insert(
            "802-11-wireless-security",
            HashMap::from([
                ("key-mgmt", Value::from(key_mgmt(seen))),
                ("psk", Value::from(request.passphrase.expose().to_string())),
            ]),
        );
    }
    settings
}

/// Associated stations in `iw dev IFACE station dump` output.
pub fn count_stations(iw_output: &str) -> usize {
    iw_output.lines().filter(|line| line.starts_with("Station ")).count()
}

/// What a saved profile's `key-mgmt` asks of the network (absent: open). WEP (`none`)
/// counts as a password, as in `scan_entries`; OWE is open to the person.
pub fn saved_security(key_mgmt: Option<&str>) -> Security {
    match key_mgmt {
        None | Some("owe") => Security::Open,
        Some("sae") => Security::Wpa3,
        Some("wpa-eap" | "wpa-eap-suite-b-192" | "ieee8021x") => Security::Enterprise,
        Some(_) => Security::Wpa2,
    }
}

/// A saved Wi-Fi client profile as the LAN API shows it; `None` for other profiles
/// (Ethernet, the box's own access point). Reads no secret: `GetSettings` has none.
pub fn saved_network(settings: &Saved, active_uuid: Option<&str>) -> Option<SavedNetwork> {
    if text(settings, "connection", "type") != "802-11-wireless" || text(settings, "802-11-wireless", "mode") == "ap" {
        return None;
    }
    let uuid = text(settings, "connection", "uuid");
    let value = |group: &str, key: &str| settings.get(group).and_then(|g| g.get(key)).and_then(|v| v.try_clone().ok());
    let ssid = value("802-11-wireless", "ssid").and_then(|v| Vec::<u8>::try_from(v).ok()).unwrap_or_default();
    let security = settings
        .contains_key("802-11-wireless-security")
        .then(|| text(settings, "802-11-wireless-security", "key-mgmt"));
    Some(SavedNetwork {
        active: active_uuid == Some(uuid.as_str()),
        ssid: String::from_utf8_lossy(&ssid).into_owned(),
        priority: value("connection", "autoconnect-priority").and_then(|v| i32::try_from(v).ok()).unwrap_or(0),
        security: saved_security(security.as_deref()),
        hidden: value("802-11-wireless", "hidden").and_then(|v| bool::try_from(v).ok()).unwrap_or(false),
        uuid,
    })
}

/// A saved Wi-Fi client profile's place in NetworkManager's autoconnect order (higher
/// first): its `autoconnect-priority`, then the time it was last used; `None` for other
/// profiles.
pub fn autoconnect_rank(settings: &Saved) -> Option<(i32, u64)> {
    let network = saved_network(settings, None)?;
    let used = settings.get("connection").and_then(|c| c.get("timestamp")).and_then(|v| u64::try_from(v).ok());
    Some((network.priority, used.unwrap_or(0)))
}

/// What a signal subscription reports to the run loop.
#[derive(Debug)]
pub enum Signal {
    /// Device `StateChanged`: new state and reason.
    DeviceState(DeviceState, Reason),
    /// NetworkManager's `Connectivity` or `State` property changed.
    Connectivity,
}

/// A connection to NetworkManager and the Wi-Fi device it drives.
pub struct Nm {
    conn: Connection,
    pub device: OwnedObjectPath,
    pub interface: String,
}

impl Nm {
    /// Connects to the system bus and finds the Wi-Fi device (`interface`, or the first).
    pub fn connect(interface: &str) -> Result<Nm, String> {
        let conn = Connection::system().map_err(|e| format!("the system D-Bus: {e}"))?;
        let devices: Vec<OwnedObjectPath> =
            call(&conn, NM_PATH, NM, "GetDevices", &()).map_err(|e| format!("NetworkManager: {e}"))?;
        for device in devices {
            let kind: u32 = get(&conn, &device, DEVICE, "DeviceType").map_err(|e| format!("NetworkManager: {e}"))?;
            let kind = DeviceType::from(kind);
            let name: String = get(&conn, &device, DEVICE, "Interface").map_err(|e| format!("NetworkManager: {e}"))?;
            if kind == DeviceType::Wifi && (interface.is_empty() || interface == name) {
                return Ok(Nm { conn, device, interface: name });
            }
        }
        Err(if interface.is_empty() {
            "NetworkManager has no Wi-Fi device".into()
        } else {
            format!("NetworkManager has no Wi-Fi device {interface:?}")
        })
    }

    /// Hands the device's `StateChanged` and NetworkManager's connectivity changes to
    /// `to`, from threads of their own, until it returns `false`.
    pub fn subscribe(&self, to: impl Fn(Signal) -> bool + Clone + Send + 'static) -> Result<(), Error> {
        let state = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .path(self.device.as_str())?
            .interface(DEVICE)?
            .member("StateChanged")?
            .build();
        let properties = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .path(NM_PATH)?
            .interface(PROPERTIES)?
            .member("PropertiesChanged")?
            .build();
        let states = MessageIterator::for_match_rule(state, &self.conn, Some(64))?;
        let changes = MessageIterator::for_match_rule(properties, &self.conn, Some(64))?;
        let to_changes = to.clone();
        spawn("nm-device", move || {
            for message in states.flatten() {
                if let Ok((new, _old, reason)) = message.body().deserialize::<(u32, u32, u32)>()
                    && !to(Signal::DeviceState(new.into(), reason.into()))
                {
                    return;
                }
            }
        });
        spawn("nm-properties", move || {
            for message in changes.flatten() {
                let Ok((_, changed, _)) =
                    message.body().deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>()
                else {
                    continue;
                };
                if (changed.contains_key("Connectivity") || changed.contains_key("State"))
                    && !to_changes(Signal::Connectivity)
                {
                    return;
                }
            }
        });
        Ok(())
    }

    pub fn connectivity(&self) -> Result<Connectivity, Error> {
        get::<u32>(&self.conn, NM_PATH, NM, "Connectivity").map(Connectivity::from)
    }

    pub fn state(&self) -> Result<State, Error> {
        get::<u32>(&self.conn, NM_PATH, NM, "State").map(State::from)
    }

    /// Saved profiles NetworkManager would bring up by itself (Wi-Fi clients and Ethernet).
    pub fn has_saved(&self) -> Result<bool, Error> {
        Ok(self.saved()?.iter().any(|(_, settings)| {
            let kind = text(settings, "connection", "type");
            let auto = settings
                .get("connection")
                .and_then(|c| c.get("autoconnect"))
                .is_none_or(|v| bool::try_from(v).unwrap_or(true));
            auto && (kind == "802-3-ethernet"
                || (kind == "802-11-wireless" && text(settings, "802-11-wireless", "mode") != "ap"))
        }))
    }

    fn saved(&self) -> Result<Vec<(OwnedObjectPath, Saved)>, Error> {
        let paths: Vec<OwnedObjectPath> = call(&self.conn, SETTINGS_PATH, SETTINGS, "ListConnections", &())?;
        paths
            .into_iter()
            .map(|path| {
                let settings = call(&self.conn, &path, CONNECTION, "GetSettings", &())?;
                Ok((path, settings))
            })
            .collect()
    }

    pub fn last_scan(&self) -> Result<i64, Error> {
        get(&self.conn, &self.device, WIRELESS, "LastScan")
    }

    pub fn request_scan(&self) -> Result<(), Error> {
        call(&self.conn, &self.device, WIRELESS, "RequestScan", &(HashMap::<&str, Value>::new(),))
    }

    pub fn access_points(&self) -> Result<Vec<RawAp>, Error> {
        let paths: Vec<OwnedObjectPath> = call(&self.conn, &self.device, WIRELESS, "GetAllAccessPoints", &())?;
        paths
            .iter()
            .map(|ap| {
                Ok(RawAp {
                    ssid: get(&self.conn, ap, ACCESS_POINT, "Ssid")?,
                    strength: get(&self.conn, ap, ACCESS_POINT, "Strength")?,
                    flags: get(&self.conn, ap, ACCESS_POINT, "Flags")?,
                    wpa_flags: get(&self.conn, ap, ACCESS_POINT, "WpaFlags")?,
                    rsn_flags: get(&self.conn, ap, ACCESS_POINT, "RsnFlags")?,
                    frequency: get(&self.conn, ap, ACCESS_POINT, "Frequency")?,
                })
            })
            .collect()
    }

    /// Adds and activates a profile on the Wi-Fi device; returns the active connection.
    pub fn add_and_activate(&self, settings: &Settings, options: &[(&str, &str)]) -> Result<OwnedObjectPath, Error> {
        let options: HashMap<&str, Value> = options.iter().map(|(k, v)| (*k, Value::from(*v))).collect();
        let root = ObjectPath::from_static_str_unchecked("/");
        let (_, active, _): (OwnedObjectPath, OwnedObjectPath, HashMap<String, OwnedValue>) =
            call(&self.conn, NM_PATH, NM, "AddAndActivateConnection2", &(settings, &self.device, root, options))?;
        Ok(active)
    }

    pub fn deactivate(&self, active: &OwnedObjectPath) -> Result<(), Error> {
        call(&self.conn, NM_PATH, NM, "DeactivateConnection", &(active,))
    }

    /// Deletes saved client profiles for `ssid`, so that a retry does not pile up duplicates.
    pub fn forget(&self, ssid: &str) -> Result<(), Error> {
        self.forget_others(ssid, None)
    }

    /// Deletes saved client profiles for `ssid` but `keep`.
    fn forget_others(&self, ssid: &str, keep: Option<&OwnedObjectPath>) -> Result<(), Error> {
        for (path, settings) in self.saved()?.into_iter().filter(|(path, _)| Some(path) != keep) {
            let same = settings
                .get("802-11-wireless")
                .and_then(|w| w.get("ssid"))
                .and_then(|v| Vec::<u8>::try_from(v.try_clone().ok()?).ok())
                .is_some_and(|bytes| bytes == ssid.as_bytes());
            if same && text(&settings, "802-11-wireless", "mode") != "ap" {
                call::<()>(&self.conn, &path, CONNECTION, "Delete", &())?;
            }
        }
        Ok(())
    }

    /// The saved Wi-Fi client profiles, with their paths.
    pub fn saved_networks(&self) -> Result<Vec<(OwnedObjectPath, SavedNetwork)>, Error> {
        let active: OwnedObjectPath = get(&self.conn, &self.device, DEVICE, "ActiveConnection")?;
        let active_uuid: Option<String> =
            if active.as_str() == "/" { None } else { Some(get(&self.conn, &active, ACTIVE, "Uuid")?) };
        Ok(self
            .saved()?
            .into_iter()
            .filter_map(|(path, settings)| Some((path, saved_network(&settings, active_uuid.as_deref())?)))
            .collect())
    }

    /// Saves a client profile (NetworkManager writes its keyfile) without activating it:
    /// with `autoconnect` set, NetworkManager brings it up by itself when it is in range
    /// and nothing better is. Older profiles of the same SSID are deleted once it is saved.
    pub fn add_saved(&self, settings: &Settings, ssid: &str) -> Result<OwnedObjectPath, Error> {
        let path: OwnedObjectPath = call(&self.conn, SETTINGS_PATH, SETTINGS, "AddConnection", &(settings,))?;
        self.forget_others(ssid, Some(&path))?;
        Ok(path)
    }

    /// Changes a saved profile's `autoconnect-priority`, keeping its password.
    ///
    /// `Update2` replaces the whole profile with what it is sent, and `GetSettings` never
    /// returns secrets. NetworkManager's `update_auth_cb` (src/core/settings/
    /// nm-settings-connection.c, the same for `Update` and `Update2`): "If the new
    /// connection has no secrets, we do not want to remove all secrets, rather we keep all
    /// the existing ones", merging the secrets it has into the new profile. So the
    /// settings go back without any secret, and the PSK never passes through this process.
    pub fn set_priority(&self, profile: &OwnedObjectPath, priority: i32) -> Result<(), Error> {
        let mut settings: Saved = call(&self.conn, profile, CONNECTION, "GetSettings", &())?;
        settings
            .entry("connection".into())
            .or_default()
            .insert("autoconnect-priority".into(), OwnedValue::from(priority));
        let _: HashMap<String, OwnedValue> = call(
            &self.conn,
            profile,
            CONNECTION,
            "Update2",
            &(settings, UPDATE2_TO_DISK, HashMap::<&str, Value>::new()),
        )?;
        Ok(())
    }

    /// Deletes one saved profile (NetworkManager removes its keyfile, and disconnects it
    /// if it is up).
    pub fn delete(&self, profile: &OwnedObjectPath) -> Result<(), Error> {
        call(&self.conn, profile, CONNECTION, "Delete", &())
    }

    /// Activates the saved Wi-Fi profile NetworkManager would pick (`autoconnect_rank`).
    /// Named, not "/": right after the access point closes, NetworkManager's own pick is
    /// still its profile (seen on the QEMU rung), and its scan list is stale from the
    /// access point's time.
    pub fn activate_saved(&self) -> Result<(), Error> {
        let best = self
            .saved()?
            .into_iter()
            .filter_map(|(path, settings)| Some((autoconnect_rank(&settings)?, path)))
            .max_by_key(|(rank, _)| *rank);
        let Some((_, profile)) = best else {
            return Err(Error::Failure("no saved Wi-Fi network".into()));
        };
        let root = ObjectPath::from_static_str_unchecked("/");
        call::<OwnedObjectPath>(&self.conn, NM_PATH, NM, "ActivateConnection", &(&profile, &self.device, &root))?;
        Ok(())
    }

    /// The SSID and signal of the access point the device is associated with, if any.
    pub fn associated(&self) -> Result<Option<(String, u8)>, Error> {
        let ap: OwnedObjectPath = get(&self.conn, &self.device, WIRELESS, "ActiveAccessPoint")?;
        if ap.as_str() == "/" {
            return Ok(None);
        }
        let ssid: Vec<u8> = get(&self.conn, &ap, ACCESS_POINT, "Ssid")?;
        let strength: u8 = get(&self.conn, &ap, ACCESS_POINT, "Strength")?;
        Ok(Some((String::from_utf8_lossy(&ssid).into_owned(), strength.min(100))))
    }

    /// The IPv4 address of NetworkManager's primary connection.
    pub fn address(&self) -> Result<Option<Ipv4Addr>, Error> {
        let primary: OwnedObjectPath = get(&self.conn, NM_PATH, NM, "PrimaryConnection")?;
        if primary.as_str() == "/" {
            return Ok(None);
        }
        let config: OwnedObjectPath = get(&self.conn, &primary, ACTIVE, "Ip4Config")?;
        if config.as_str() == "/" {
            return Ok(None);
        }
        let data: Vec<HashMap<String, OwnedValue>> = get(&self.conn, &config, IP4, "AddressData")?;
        Ok(data
            .first()
            .and_then(|entry| entry.get("address"))
            .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
            .and_then(|a| a.parse().ok()))
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().name(name.into()).spawn(f).expect("spawn a D-Bus signal thread");
}

fn text(settings: &Saved, group: &str, key: &str) -> String {
    settings
        .get(group)
        .and_then(|g| g.get(key))
        .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
        .unwrap_or_default()
}

fn call<R>(
    conn: &Connection,
    path: &str,
    iface: &str,
    method: &str,
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) -> Result<R, Error>
where
    R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
{
    let reply = conn.call_method(Some(NM), path, Some(iface), method, body)?;
    reply.body().deserialize()
}

fn get<R>(conn: &Connection, path: &str, iface: &str, name: &str) -> Result<R, Error>
where
    R: TryFrom<OwnedValue>,
    R::Error: Into<zbus::zvariant::Error>,
{
    let value: OwnedValue = call(conn, path, PROPERTIES, "Get", &(iface, name))?;
    R::try_from(value).map_err(|e| Error::Variant(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::SavedNetwork;
    use crate::secrets::Secret;

    fn ap(ssid: &str, strength: u8, rsn: u32, frequency: u32) -> RawAp {
        RawAp { ssid: ssid.into(), strength, flags: 0, wpa_flags: 0, rsn_flags: rsn, frequency }
    }

    #[test]
    fn scan_keeps_the_strongest_per_ssid_and_reads_security_and_band() {
        let entries = scan_entries(&[
            ap("Venue", 40, KEY_MGMT_PSK, 2437),
            ap("Venue", 80, KEY_MGMT_PSK, 5180),
            ap("", 99, 0, 2412),
            ap("Cafe", 60, 0, 2412),
            ap("Lab", 50, KEY_MGMT_PSK | KEY_MGMT_SAE, 2412),
            ap("Corp", 30, KEY_MGMT_802_1X, 2412),
            RawAp { flags: AP_PRIVACY, ..ap("Old", 20, 0, 2412) },
        ]);
        let got: Vec<_> = entries.iter().map(|e| (e.ssid.as_str(), e.signal, e.security, e.band)).collect();
        assert_eq!(
            got,
            [
                ("Venue", 80, Security::Wpa2, Band::Ghz5),
                ("Cafe", 60, Security::Open, Band::Ghz2_4),
                ("Lab", 50, Security::Wpa3, Band::Ghz2_4),
                ("Corp", 30, Security::Enterprise, Band::Ghz2_4),
                ("Old", 20, Security::Wpa2, Band::Ghz2_4),
            ]
        );
    }

    #[test]
    fn sae_only_for_wpa3_only_networks() {
        assert_eq!(key_mgmt(Some(&ap("a", 1, KEY_MGMT_SAE, 2412))), "sae");
        assert_eq!(key_mgmt(Some(&ap("a", 1, KEY_MGMT_SAE | KEY_MGMT_PSK, 2412))), "wpa-psk");
        assert_eq!(key_mgmt(Some(&ap("a", 1, KEY_MGMT_PSK, 2412))), "wpa-psk");
        assert_eq!(key_mgmt(None), "wpa-psk");
    }

    #[test]
    fn stations_are_counted_from_iw() {
        let dump =
            "Station 02:00:00:00:01:00 (on wlan0)\n\tinactive time:\t100 ms\nStation 02:00:00:00:02:00 (on wlan0)\n";
        assert_eq!(count_stations(dump), 2);
        assert_eq!(count_stations(""), 0);
    }

    fn profile(groups: &[(&str, &[(&str, Value)])]) -> Saved {
        groups
            .iter()
            .map(|(group, values)| {
                let values = values.iter().map(|(k, v)| (k.to_string(), OwnedValue::try_from(v.clone()).unwrap()));
                (group.to_string(), values.collect())
            })
            .collect()
    }

    #[test]
    fn a_saved_wifi_profile_is_read_and_other_profiles_are_left_out() {
        let connection = |uuid: &str| {
            [
                ("type", Value::from("802-11-wireless")),
                ("uuid", Value::from(uuid.to_string())),
                ("autoconnect-priority", Value::from(5i32)),
            ]
        };
        let venue = profile(&[
            ("connection", &connection("u-1")),
            ("802-11-wireless", &[("ssid", Value::from(b"Venue".to_vec())), ("hidden", Value::from(true))]),
            ("802-11-wireless-security", &[("key-mgmt", Value::from("sae"))]),
        ]);
        let got = saved_network(&venue, Some("u-1")).unwrap();
        assert_eq!(
            got,
            SavedNetwork {
                uuid: "u-1".into(),
                ssid: "Venue".into(),
                priority: 5,
                security: Security::Wpa3,
                hidden: true,
                active: true
            }
        );
        let cafe = profile(&[
            ("connection", &[("type", Value::from("802-11-wireless")), ("uuid", Value::from("u-2"))]),
            ("802-11-wireless", &[("ssid", Value::from(b"Cafe".to_vec()))]),
        ]);
        let got = saved_network(&cafe, Some("u-1")).unwrap();
        assert_eq!((got.priority, got.security, got.hidden, got.active), (0, Security::Open, false, false));

        let ap = profile(&[("connection", &connection("u-3")), ("802-11-wireless", &[("mode", Value::from("ap"))])]);
        assert_eq!(saved_network(&ap, None), None, "the box's own access point");
        let wired = profile(&[("connection", &[("type", Value::from("802-3-ethernet"))])]);
        assert_eq!(saved_network(&wired, None), None);
    }

    #[test]
    fn the_saved_network_to_try_is_the_highest_priority_then_the_last_used() {
        let wifi = |priority: i32, used: u64| {
            profile(&[
                (
                    "connection",
                    &[
                        ("type", Value::from("802-11-wireless")),
                        ("autoconnect-priority", Value::from(priority)),
                        ("timestamp", Value::from(used)),
                    ],
                ),
                ("802-11-wireless", &[("ssid", Value::from(b"Venue".to_vec()))]),
            ])
        };
        let older_preferred = autoconnect_rank(&wifi(5, 100));
        assert!(older_preferred > autoconnect_rank(&wifi(0, 200)), "priority first");
        assert!(autoconnect_rank(&wifi(0, 200)) > autoconnect_rank(&wifi(0, 100)), "then the last used");
        let never_used = profile(&[
            ("connection", &[("type", Value::from("802-11-wireless"))]),
            ("802-11-wireless", &[("ssid", Value::from(b"Lab".to_vec()))]),
        ]);
        assert_eq!(autoconnect_rank(&never_used), Some((0, 0)));
        let wired = profile(&[("connection", &[("type", Value::from("802-3-ethernet"))])]);
        assert_eq!(autoconnect_rank(&wired), None);
    }

    #[test]
    fn saved_security_follows_key_management() {
        assert_eq!(saved_security(None), Security::Open);
        assert_eq!(saved_security(Some("owe")), Security::Open);
        assert_eq!(saved_security(Some("wpa-psk")), Security::Wpa2);
        assert_eq!(saved_security(Some("none")), Security::Wpa2, "WEP: a password");
        assert_eq!(saved_security(Some("sae")), Security::Wpa3);
        assert_eq!(saved_security(Some("wpa-eap")), Security::Enterprise);
    }

    #[test]
    fn client_settings_carry_hidden_and_psk_only_when_needed() {
        let open = WifiRequest { ssid: "Cafe".into(), passphrase: Secret::default(), hidden: false };
        let settings = client_settings(&open, None, 10);
        assert!(!settings.contains_key("802-11-wireless-security"));
        assert!(!settings["802-11-wireless"].contains_key("hidden"));
        assert_eq!(settings["connection"]["auth-retries"], Value::from(1i32));
        assert_eq!(settings["connection"]["autoconnect-priority"], Value::from(10i32));
        let hidden = WifiRequest { ssid: "Lab".into(), passphrase: Secret::new("password1"), hidden: true };
        let settings = client_settings(&hidden, None, 10);
        assert_eq!(settings["802-11-wireless"]["hidden"], Value::from(true));
        assert_eq!(settings["802-11-wireless-security"]["key-mgmt"], Value::from("wpa-psk"));
    }
}
