//! Getting the box online: NetworkManager over D-Bus (zbus), the "Wifi Connect" access
//! point, connecting to the network a person picked in the portal, and the status LED.
//!
//! One thread (`network`) owns the D-Bus connection: it turns NetworkManager's signals,
//! the portal's commands and a one-second tick into events for the pure state machine
//! (`provisioning`), carries out its actions (`nm`), drives the LED (`led`) and is the only
//! writer of `status.network`. The portal and the status page hold a `Network` handle.

mod led;
mod nm;
mod provisioning;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::NetworkConfig;
use crate::secrets::Secret;
use crate::status::SharedStatus;
use nm::{Nm, Signal};
use provisioning::{Action, Event, Machine, Timing};

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

/// What `iw reg set` gets for `network.country`: the code, or `00` (the world domain).
pub fn regulatory_domain(country: &str) -> &str {
    if country.is_empty() { "00" } else { country }
}

enum Input {
    Connect(WifiRequest),
    Rescan,
    Signal(Signal),
}

/// The handle the portal and the status page hold.
#[derive(Clone)]
pub struct Network {
    commands: mpsc::Sender<Input>,
    /// The network thread writes `status.network`; the supervisor leaves it alone.
    status: SharedStatus,
}

impl Network {
    /// Starts the network thread (or, with `manage = false`, a handle that stays unmanaged).
    pub fn start(config: &NetworkConfig, status: SharedStatus) -> Network {
        let (commands, inputs) = mpsc::channel();
        if config.manage {
            let (config, sender, shared) = (config.clone(), commands.clone(), status.clone());
            std::thread::Builder::new()
                .name("network".into())
                .spawn(move || supervise(&config, &inputs, &sender, &shared))
                .expect("spawn the network thread");
        } else {
            tracing::info!("network.manage = false: the network is left to others");
        }
        Network { commands, status }
    }

    pub fn status(&self) -> NetworkStatus {
        self.status.lock().expect("status lock").network.clone()
    }

    /// Saves nothing: the caller has saved the stream settings first.
    pub fn connect(&self, request: WifiRequest) {
        let _ = self.commands.send(Input::Connect(request));
    }

    pub fn rescan(&self) {
        let _ = self.commands.send(Input::Rescan);
    }
}

const TICK: Duration = Duration::from_secs(1);
/// Without NetworkManager, how often it is looked for again (logged once).
const NM_RETRY: Duration = Duration::from_secs(30);
/// How often `iw` is asked for the phones on the access point.
const STATIONS_EVERY: u32 = 5;

/// Connects to NetworkManager and drives the machine; without it, `Mode::Unmanaged` and a
/// slow retry.
fn supervise(
    config: &NetworkConfig,
    inputs: &mpsc::Receiver<Input>,
    sender: &mpsc::Sender<Input>,
    status: &SharedStatus,
) {
    let mut led = led::Led::start(&config.led);
    let mut logged = false;
    loop {
        let why = match Nm::connect(&config.interface) {
            Ok(nm) => {
                logged = false;
                tracing::info!("network: NetworkManager drives {}", nm.interface);
                let mut edge = Edge { nm, config, ap: None, scan_from: None, aps: Vec::new(), ticks: 0 };
                edge.drive(inputs, sender, status, &mut led)
            }
            Err(why) => why,
        };
        status.lock().expect("status lock").network = NetworkStatus::default();
        if let Some(led) = &mut led {
            led.show(led::Pattern::Off);
        }
        if !logged {
            tracing::warn!("network: {why}; the network stays unmanaged, looking again every {} s", NM_RETRY.as_secs());
            logged = true;
        }
        std::thread::sleep(NM_RETRY);
        // What the portal asked meanwhile cannot be done any more.
        while inputs.try_recv().is_ok() {}
    }
}

/// An active connection holds the default route (NetworkManager's state CONNECTED_SITE,
/// 60, or CONNECTED_GLOBAL, 70) and it is not a captive portal (connectivity 2: the
/// stream could not pass a venue's login page). Connectivity alone does not tell: it is
/// the best of all devices', so the box's own access point counts as limited (3); and
/// without a connectivity check NetworkManager only guesses it once, at activation
/// (none for a venue whose route came a moment later). Seen on the QEMU rung, NM 1.52.
fn is_online(connectivity: u32, state: u32) -> bool {
    state >= 60 && connectivity != 2
}

/// Marks a session over when dropped.
struct EndOfSession(Arc<AtomicBool>);

impl Drop for EndOfSession {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// The I/O side of one NetworkManager session: carries out actions, turns polls into events.
struct Edge<'a> {
    nm: Nm,
    config: &'a NetworkConfig,
    /// The access point's active connection while it serves.
    ap: Option<zbus::zvariant::OwnedObjectPath>,
    /// `LastScan` when a scan was requested, until it moves.
    scan_from: Option<i64>,
    /// The last scan's access points (for the key management of a connection).
    aps: Vec<nm::RawAp>,
    ticks: u32,
}

impl Edge<'_> {
    /// Runs until NetworkManager goes away; returns why.
    fn drive(
        &mut self,
        inputs: &mpsc::Receiver<Input>,
        sender: &mpsc::Sender<Input>,
        status: &SharedStatus,
        led: &mut Option<led::Led>,
    ) -> String {
        let lost = |e: nm::Error| format!("NetworkManager: {e}");
        // The subscription threads end at their next signal once this session is over.
        let session = Arc::new(AtomicBool::new(true));
        let _over = EndOfSession(session.clone());
        let sender = sender.clone();
        let forward = move |signal| session.load(Ordering::Relaxed) && sender.send(Input::Signal(signal)).is_ok();
        if let Err(e) = self.nm.subscribe(forward) {
            return lost(e);
        }
        let saved = match self.nm.has_saved() {
            Ok(saved) => saved,
            Err(e) => return lost(e),
        };
        let timing = Timing::from_config(self.config);
        let (mut machine, actions) = Machine::start(timing, saved, Instant::now());
        self.execute(&mut machine, actions);
        loop {
            let events = match inputs.recv_timeout(TICK) {
                Ok(Input::Connect(request)) => vec![Event::Connect(request)],
                Ok(Input::Rescan) => vec![Event::Rescan],
                Ok(Input::Signal(Signal::Connectivity)) => match self.online() {
                    Ok(event) => vec![event],
                    Err(e) => return lost(e),
                },
                Ok(Input::Signal(Signal::DeviceState(state, reason))) if state == nm::DEVICE_FAILED => {
                    vec![if machine.ap_up() { Event::ApFailed } else { Event::DeviceFailed(reason) }]
                }
                Ok(Input::Signal(Signal::DeviceState(..))) => Vec::new(),
                Err(mpsc::RecvTimeoutError::Timeout) => match self.poll(&machine) {
                    Ok(events) => events,
                    Err(e) => return lost(e),
                },
                Err(mpsc::RecvTimeoutError::Disconnected) => return "the service is stopping".into(),
            };
            for event in events {
                let actions = machine.handle(event, Instant::now());
                self.execute(&mut machine, actions);
            }
            let network = self.status(&machine);
            if let Some(led) = led {
                led.show(led::pattern(network.mode, network.last_failure.is_some()));
            }
            status.lock().expect("status lock").network = network;
        }
    }

    fn online(&self) -> Result<Event, nm::Error> {
        Ok(Event::Online(is_online(self.nm.connectivity()?, self.nm.state()?)))
    }

    /// The tick: connectivity, a scan that finished, the phones on the access point.
    fn poll(&mut self, machine: &Machine) -> Result<Vec<Event>, nm::Error> {
        let mut events = vec![self.online()?, Event::Tick];
        if let Some(from) = self.scan_from
            && self.nm.last_scan()? != from
        {
            self.scan_from = None;
            self.aps = self.nm.access_points()?;
            events.push(Event::ScanDone(nm::scan_entries(&self.aps)));
        }
        self.ticks = self.ticks.wrapping_add(1);
        if machine.ap_up() && self.ticks.is_multiple_of(STATIONS_EVERY) {
            events.push(Event::Stations(self.stations()));
        }
        Ok(events)
    }

    /// Phones associated with the access point, from the kernel (`iw station dump`):
    /// NetworkManager does not expose them, and a DHCP lease outlives the phone by an hour.
    fn stations(&self) -> usize {
        std::process::Command::new("iw")
            .args(["dev", &self.nm.interface, "station", "dump"])
            .output()
            .map(|out| nm::count_stations(&String::from_utf8_lossy(&out.stdout)))
            .unwrap_or(0)
    }

    /// Carries out actions; a refusal (or a fact learnt doing it) becomes the event the
    /// machine expects, handled at once.
    fn execute(&mut self, machine: &mut Machine, actions: Vec<Action>) {
        let mut pending = actions;
        while !pending.is_empty() {
            let mut refusals = Vec::new();
            for action in pending {
                if let Some(event) = self.perform(action) {
                    refusals.push(event);
                }
            }
            pending = refusals.into_iter().flat_map(|event| machine.handle(event, Instant::now())).collect();
        }
    }

    fn perform(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::RequestScan => {
                let from = self.nm.last_scan().unwrap_or_default();
                match self.nm.request_scan() {
                    Ok(()) => {
                        self.scan_from = Some(from);
                        None
                    }
                    Err(e) => {
                        tracing::info!("network: NetworkManager would not scan: {e}");
                        self.scan_from = None;
                        Some(Event::ScanRefused)
                    }
                }
            }
            Action::StartAp => {
                let settings = nm::ap_settings(self.config, &self.nm.interface);
                match self
                    .nm
                    .add_and_activate(&settings, &[("persist", "volatile"), ("bind-activation", "dbus-client")])
                {
                    Ok(active) => {
                        tracing::info!("network: access point {:?} opening", self.config.ap_ssid);
                        self.ap = Some(active);
                        None
                    }
                    Err(e) => {
                        tracing::warn!("network: the access point did not start: {e}");
                        Some(Event::ApFailed)
                    }
                }
            }
            Action::StopAp => {
                if let Some(active) = self.ap.take()
                    && let Err(e) = self.nm.deactivate(&active)
                {
                    tracing::warn!("network: closing the access point: {e}");
                }
                None
            }
            Action::Connect(request) => {
                let seen = self.aps.iter().filter(|ap| ap.ssid == request.ssid.as_bytes()).max_by_key(|ap| ap.strength);
                let settings = nm::client_settings(&request, seen);
                let result = self
                    .nm
                    .forget(&request.ssid)
                    .and_then(|()| self.nm.add_and_activate(&settings, &[("persist", "disk")]));
                match result {
                    Ok(_) => {
                        tracing::info!("network: connecting to {:?}", request.ssid);
                        None
                    }
                    Err(e) => {
                        tracing::warn!("network: NetworkManager refused the connection to {:?}: {e}", request.ssid);
                        Some(Event::DeviceFailed(0))
                    }
                }
            }
            Action::Forget(ssid) => match self.nm.forget(&ssid).and_then(|()| self.nm.has_saved()) {
                Ok(saved) => Some(Event::Saved(saved)),
                Err(e) => {
                    tracing::warn!("network: forgetting {ssid:?}: {e}");
                    None
                }
            },
            Action::ActivateSaved => {
                if let Err(e) = self.nm.activate_saved() {
                    tracing::info!("network: no saved network to try: {e}");
                }
                None
            }
        }
    }

    fn status(&self, machine: &Machine) -> NetworkStatus {
        let mut status = NetworkStatus {
            mode: machine.mode(),
            last_failure: machine.last_failure().map(String::from),
            notice: machine.notice().map(String::from),
            networks: machine.networks().to_vec(),
            ..NetworkStatus::default()
        };
        if machine.ap_up() {
            status.ssid = Some(self.config.ap_ssid.clone());
            status.address = Some(PORTAL_ADDRESS.to_string());
        } else if status.mode == Mode::Online {
            if let Ok(Some((ssid, signal))) = self.nm.associated() {
                status.ssid = Some(ssid);
                status.signal = Some(signal);
            }
            status.address = self.nm.address().ok().flatten().map(|a| a.to_string());
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn online_is_a_default_route_that_is_no_captive_portal() {
        assert!(is_online(4, 70) && is_online(3, 60), "full; limited (a venue without Internet)");
        assert!(is_online(1, 60) && is_online(0, 60), "no connectivity check: the route decides");
        assert!(!is_online(2, 60), "a captive portal");
        assert!(!is_online(3, 50), "the box's own access point: local only");
        assert!(!is_online(1, 20));
    }

    #[test]
    fn no_country_is_the_world_domain() {
        assert_eq!(regulatory_domain(""), "00");
        assert_eq!(regulatory_domain("GB"), "GB");
    }
}
