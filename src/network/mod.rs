//! Getting the box online: NetworkManager over D-Bus (zbus), the "Wifi Connect" access
//! point, connecting to the network a person picked in the portal, and the status LED.
//!
//! One thread (`network`) owns the D-Bus connection: it turns NetworkManager's signals,
//! the portal's commands and a one-second tick into events for the pure state machine
//! (`provisioning`), carries out its actions (`nm`), drives the LED (`led`) and is the only
//! writer of `status.network`. The portal and the status page hold a `Network` handle.
//! The LAN pages' Wi-Fi calls (saved networks: list, add, forget, priority) go through
//! that thread too, each with a reply channel and a deadline: one owner of NetworkManager
//! keeps them in order with the machine's own actions (a portal attempt deleting and
//! re-adding a profile, say), and the machine learns at once whether saved networks remain.

mod led;
mod nm;
mod nm_types;
mod provisioning;

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{Loaded, NetworkConfig};
use crate::secrets::Secret;
use crate::state::{Reader, Writer};
use crate::status::StreamStatus;
use nm::{Nm, Signal};
use nm_types::{Connectivity, DeviceState, Reason, State};
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

enum Input {
    Connect(WifiRequest),
    Rescan,
    Signal(Signal),
    Call(Call),
}

/// A LAN page's call, carried out on the network thread only before its deadline, half
/// the caller's wait: what the caller gave up on was not done (unless NetworkManager
/// itself took seconds), so "nothing was changed" holds.
struct Call {
    deadline: Instant,
    /// Adds, forgets or changes profiles: the machine is told whether saved networks remain.
    changes_saved: bool,
    run: CallBody,
}

/// A call's work on the network thread's NetworkManager session and last scan; it sends
/// its own answer.
type CallBody = Box<dyn FnOnce(&Nm, &[nm::RawAp]) + Send>;

/// How long a Wi-Fi call waits for the network thread (a busy tick, a scan request).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the network thread reads of the others, and the one thing it writes.
pub struct Links {
    /// The settings in force: the thread follows its `[network]` section.
    pub settings: Reader<Loaded>,
    /// The only writer of the network's part of the status.
    pub status: Writer<NetworkStatus>,
    /// For the LED: a weak uplink.
    pub stream: Reader<StreamStatus>,
}

/// The handle the portal and the status page hold.
#[derive(Clone)]
pub struct Network {
    commands: mpsc::Sender<Input>,
    status: Reader<NetworkStatus>,
    settings: Reader<Loaded>,
    /// A NetworkManager session is up on the network thread.
    session: Arc<AtomicBool>,
}

impl Network {
    /// Starts the network thread, which manages the network while `network.manage` is on.
    pub fn start(links: Links) -> Network {
        let (commands, inputs) = mpsc::channel();
        let session = Arc::new(AtomicBool::new(false));
        let handle = Network {
            commands,
            status: links.status.reader(),
            settings: links.settings.clone(),
            session: session.clone(),
        };
        let sender = handle.commands.clone();
        std::thread::Builder::new()
            .name("network".into())
            .spawn(move || supervise(&links, &inputs, &sender, &session))
            .expect("spawn the network thread");
        handle
    }

    pub fn status(&self) -> NetworkStatus {
        NetworkStatus::clone(&self.status.get())
    }

    /// Saves nothing: the caller has saved the stream settings first.
    pub fn connect(&self, request: WifiRequest) {
        let _ = self.commands.send(Input::Connect(request));
    }

    /// Asks for a scan (the access point may close for it); the status shows the result.
    pub fn rescan(&self) -> Result<(), WifiError> {
        self.reachable()?;
        self.commands.send(Input::Rescan).map_err(|_| unreachable())
    }

    /// The saved Wi-Fi networks, highest priority first.
    pub fn saved_networks(&self) -> Result<Vec<SavedNetwork>, WifiError> {
        self.ask(false, |nm, _| {
            let mut list: Vec<SavedNetwork> = nm.saved_networks()?.into_iter().map(|(_, n)| n).collect();
            list.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.ssid.cmp(&b.ssid)));
            Ok(list)
        })
    }

    /// Saves a network (replacing saved profiles of that SSID) for NetworkManager to join
    /// by itself when it is in range; does not switch to it now.
    pub fn add_network(&self, network: NewNetwork) -> Result<SavedNetwork, WifiError> {
        check_new_network(&network)?;
        let secrets = [network.passphrase.clone()];
        let result = self.ask(true, move |nm, aps| {
            let request =
                WifiRequest { ssid: network.ssid.clone(), passphrase: network.passphrase, hidden: network.hidden };
            let settings = nm::client_settings(&request, nm::strongest(aps, &request.ssid), network.priority);
            let path = nm.add_saved(&settings, &request.ssid)?;
            let saved = nm.saved_networks()?.into_iter().find(|(p, _)| *p == path).map(|(_, n)| n);
            saved.ok_or_else(|| WifiError::Refused("the saved network vanished at once".into()))
        });
        // NetworkManager's errors may quote the settings they were sent.
        result.map_err(|e| match e {
            WifiError::Refused(why) => WifiError::Refused(crate::secrets::scrub(&why, &secrets)),
            other => other,
        })
    }

    /// Deletes a saved network; if the box is on it, NetworkManager disconnects.
    pub fn forget_network(&self, uuid: &str) -> Result<(), WifiError> {
        let uuid = uuid.to_string();
        self.ask(true, move |nm, _| nm.delete(&profile(nm, &uuid)?).map_err(WifiError::from))
    }

    /// Changes a saved network's priority; its password stays as saved.
    pub fn set_priority(&self, uuid: &str, priority: i32) -> Result<SavedNetwork, WifiError> {
        check_priority(priority)?;
        let uuid = uuid.to_string();
        self.ask(true, move |nm, _| {
            nm.set_priority(&profile(nm, &uuid)?, priority)?;
            let saved = nm.saved_networks()?.into_iter().find(|(_, n)| n.uuid == uuid).map(|(_, n)| n);
            saved.ok_or(WifiError::UnknownNetwork)
        })
    }

    /// Runs `f` on the network thread and waits for its answer, at most `CALL_TIMEOUT`.
    fn ask<T: Send + 'static>(
        &self,
        changes_saved: bool,
        f: impl FnOnce(&Nm, &[nm::RawAp]) -> Result<T, WifiError> + Send + 'static,
    ) -> Result<T, WifiError> {
        self.reachable()?;
        let (reply, answer) = mpsc::sync_channel(1);
        let run = Box::new(move |nm: &Nm, aps: &[nm::RawAp]| {
            let _ = reply.send(f(nm, aps));
        });
        let call = Call { deadline: Instant::now() + CALL_TIMEOUT / 2, changes_saved, run };
        self.commands.send(Input::Call(call)).map_err(|_| unreachable())?;
        match answer.recv_timeout(CALL_TIMEOUT) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(WifiError::Unavailable(format!(
                "NetworkManager did not answer within {} s; nothing was changed",
                CALL_TIMEOUT.as_secs()
            ))),
            // The session ended, or the call came too late to be carried out.
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(unreachable()),
        }
    }

    /// Managed here, and a NetworkManager session up.
    fn reachable(&self) -> Result<(), WifiError> {
        if !self.settings.get().config.network.manage {
            Err(WifiError::NotManaged)
        } else if !self.session.load(Ordering::Relaxed) {
            Err(unreachable())
        } else {
            Ok(())
        }
    }
}

fn unreachable() -> WifiError {
    let every = NM_RETRY.as_secs();
    WifiError::Unavailable(format!("NetworkManager is not reachable now; the box looks for it every {every} s"))
}

impl From<nm::Error> for WifiError {
    fn from(e: nm::Error) -> WifiError {
        WifiError::Refused(e.to_string())
    }
}

/// The saved Wi-Fi client profile with this uuid.
fn profile(nm: &Nm, uuid: &str) -> Result<zbus::zvariant::OwnedObjectPath, WifiError> {
    let found = nm.saved_networks()?.into_iter().find(|(_, n)| n.uuid == uuid);
    found.map(|(path, _)| path).ok_or(WifiError::UnknownNetwork)
}

const TICK: Duration = Duration::from_secs(1);
/// Without NetworkManager, how often it is looked for again (logged once).
const NM_RETRY: Duration = Duration::from_secs(30);

/// Connects to NetworkManager and drives the machine while `network.manage` is on;
/// without NetworkManager, `Mode::Unmanaged` and a slow retry. A change of the network
/// settings that the running session cannot take ends it; the next one starts with them.
fn supervise(links: &Links, inputs: &mpsc::Receiver<Input>, sender: &mpsc::Sender<Input>, session: &AtomicBool) {
    let mut logged = false;
    loop {
        let settings = links.settings.get();
        let mut config = settings.config.network.clone();
        if !config.manage {
            tracing::info!("network.manage = false: the network is left to others");
            links.status.set(NetworkStatus::default());
            wait_for_change(links, &config, None);
            while inputs.try_recv().is_ok() {}
            continue;
        }
        let mut led = led::Led::start(&config.led);
        let why = match Nm::connect(&config.interface) {
            Ok(nm) => {
                logged = false;
                tracing::info!("network: NetworkManager drives {}", nm.interface);
                session.store(true, Ordering::Relaxed);
                let mut edge = Edge {
                    nm,
                    config: &mut config,
                    version: settings.version,
                    ap: None,
                    scan_from: None,
                    aps: Vec::new(),
                };
                let why = edge.drive(inputs, sender, links, &mut led);
                session.store(false, Ordering::Relaxed);
                why
            }
            Err(why) => why,
        };
        links.status.set(NetworkStatus::default());
        if let Some(led) = &mut led {
            led.show(led::Pattern::Off);
        }
        if links.settings.get().config.network != config {
            tracing::info!("network: the network settings changed; starting over with them");
            continue;
        }
        if !logged {
            tracing::warn!("network: {why}; the network stays unmanaged, looking again every {} s", NM_RETRY.as_secs());
            logged = true;
        }
        wait_for_change(links, &config, Some(NM_RETRY));
        // What the portal asked meanwhile cannot be done any more (a call's caller hears
        // so when its reply channel drops).
        while inputs.try_recv().is_ok() {}
    }
}

/// Waits until the network settings in force differ from `config`, or `most` passed.
fn wait_for_change(links: &Links, config: &NetworkConfig, most: Option<Duration>) {
    let until = most.map(|most| Instant::now() + most);
    let mut seen = links.settings.get().version;
    loop {
        let left = match until {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(left) => left,
                None => return,
            },
            None => Duration::from_secs(3600),
        };
        match links.settings.wait_newer(seen, left) {
            Some(newer) if newer.config.network == *config => seen = newer.version,
            Some(_) => return,
            None if until.is_some() => return,
            None => {}
        }
    }
}

/// An active connection holds the default route (NetworkManager's state CONNECTED_SITE
/// or CONNECTED_GLOBAL) and it is not a captive portal (the stream could not pass a
/// venue's login page). Connectivity alone does not tell: it is the best of all
/// devices', so the box's own access point counts as limited; and
/// without a connectivity check NetworkManager only guesses it once, at activation
/// (none for a venue whose route came a moment later). Seen on the QEMU rung, NM 1.52.
fn is_online(connectivity: Connectivity, state: State) -> bool {
    state >= State::ConnectedSite && connectivity != Connectivity::Portal
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
    /// The network settings this session runs with; the access point's name, passphrase
    /// and channel, and the country, follow the settings in force without a new session.
    config: &'a mut NetworkConfig,
    /// The version of the settings in force `config` was taken from.
    version: u64,
    /// The access point's active connection and name while it serves.
    ap: Option<(zbus::zvariant::OwnedObjectPath, String)>,
    /// `LastScan` when a scan was requested, until it moves.
    scan_from: Option<i64>,
    /// The last scan's access points (for the key management of a connection).
    aps: Vec<nm::RawAp>,
}

impl Edge<'_> {
    /// Runs until NetworkManager goes away; returns why.
    fn drive(
        &mut self,
        inputs: &mpsc::Receiver<Input>,
        sender: &mpsc::Sender<Input>,
        links: &Links,
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
                Ok(Input::Signal(Signal::DeviceState(DeviceState::Failed, reason))) => {
                    vec![if machine.ap_up() { Event::ApFailed } else { Event::DeviceFailed(reason) }]
                }
                Ok(Input::Signal(Signal::DeviceState(..))) => Vec::new(),
                Ok(Input::Call(call)) if Instant::now() < call.deadline => {
                    (call.run)(&self.nm, &self.aps);
                    match call.changes_saved.then(|| self.nm.has_saved()) {
                        Some(Ok(saved)) => vec![Event::Saved(saved)],
                        Some(Err(e)) => return lost(e),
                        None => Vec::new(),
                    }
                }
                Ok(Input::Call(_)) => Vec::new(),
                Err(mpsc::RecvTimeoutError::Timeout) => match self.poll() {
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
                let weak = links.stream.get().weak_network();
                led.show(led::pattern(network.mode, network.last_failure.is_some(), weak));
            }
            links.status.set(network);
            if let Some(why) = self.follow_settings(&links.settings) {
                return why;
            }
        }
    }

    /// Takes what a new version of the settings changed in `[network]`: the access point's
    /// name, passphrase and channel (used the next time it opens; one serving now keeps
    /// its own) and the country (set as root at boot) in place; anything else ends the
    /// session (the answer says why) for a new one with the new settings.
    fn follow_settings(&mut self, settings: &Reader<Loaded>) -> Option<String> {
        let latest = settings.get();
        if latest.version == self.version {
            return None;
        }
        self.version = latest.version;
        let new = &latest.config.network;
        let in_place = NetworkConfig {
            ap_ssid: new.ap_ssid.clone(),
            ap_passphrase: new.ap_passphrase.clone(),
            ap_channel: new.ap_channel,
            country: new.country.clone(),
            ..self.config.clone()
        };
        if in_place != *new {
            return Some("the network settings changed".into());
        }
        if *self.config != in_place {
            tracing::info!("network: the access point will be {:?} the next time it opens", new.ap_ssid);
            *self.config = in_place;
        }
        None
    }

    fn online(&self) -> Result<Event, nm::Error> {
        Ok(Event::Online(is_online(self.nm.connectivity()?, self.nm.state()?)))
    }

    /// The tick: connectivity, a scan that finished.
    fn poll(&mut self) -> Result<Vec<Event>, nm::Error> {
        let mut events = vec![self.online()?, Event::Tick];
        if let Some(from) = self.scan_from
            && self.nm.last_scan()? != from
        {
            self.scan_from = None;
            self.aps = self.nm.access_points()?;
            events.push(Event::ScanDone(nm::scan_entries(&self.aps)));
        }
        Ok(events)
    }

    /// Phones associated with the access point, from the kernel (`iw station dump`):
    /// NetworkManager does not expose them, and a DHCP lease outlives the phone by an hour.
    fn stations(&self) -> usize {
        std::process::Command::new(IW)
            .args(["dev", &self.nm.interface, "station", "dump"])
            .output()
            .map(|out| nm::count_stations(&String::from_utf8_lossy(&out.stdout)))
            .unwrap_or(0)
    }

    /// Carries out actions; a refusal (or a fact learnt doing it, as a count of phones)
    /// becomes the event the machine expects, handled at once.
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
                        self.ap = Some((active, self.config.ap_ssid.clone()));
                        None
                    }
                    Err(e) => {
                        tracing::warn!("network: the access point did not start: {e}");
                        Some(Event::ApFailed)
                    }
                }
            }
            Action::StopAp => {
                if let Some((active, _)) = self.ap.take()
                    && let Err(e) = self.nm.deactivate(&active)
                {
                    tracing::warn!("network: closing the access point: {e}");
                }
                None
            }
            Action::Connect(request) => {
                let settings = nm::client_settings(&request, nm::strongest(&self.aps, &request.ssid), PORTAL_PRIORITY);
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
                        Some(Event::DeviceFailed(Reason::Other(0)))
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
            Action::CountStations => Some(Event::Stations(self.stations())),
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
            // The name it serves under, not one changed since.
            let serving = self.ap.as_ref().map(|(_, ssid)| ssid);
            status.ssid = Some(serving.unwrap_or(&self.config.ap_ssid).clone());
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
    fn online_is_a_default_route_that_is_no_captive_portal() {
        use Connectivity::{Full, Limited, None, Portal, Unknown};
        use State::{ConnectedGlobal, ConnectedLocal, ConnectedSite, Disconnected};
        assert!(is_online(Full, ConnectedGlobal) && is_online(Limited, ConnectedSite), "limited: no Internet");
        assert!(is_online(None, ConnectedSite) && is_online(Unknown, ConnectedSite), "no check: the route decides");
        assert!(!is_online(Portal, ConnectedSite), "a captive portal");
        assert!(!is_online(Limited, ConnectedLocal), "the box's own access point: local only");
        assert!(!is_online(None, Disconnected));
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
    fn a_wifi_call_on_an_unmanaged_network_says_so() {
        let network = NetworkConfig { manage: false, ..NetworkConfig::default() };
        let config = crate::config::Config { network, ..Default::default() };
        let (_settings, settings) = crate::state::channel(Loaded { config, problems: vec![], warnings: vec![] });
        let (_stream, stream) = crate::state::channel(StreamStatus::default());
        let (status, _) = crate::state::channel(NetworkStatus::default());
        let network = Network::start(Links { settings, status, stream });
        assert_eq!(network.saved_networks(), Err(WifiError::NotManaged));
        assert_eq!(network.forget_network("u-1"), Err(WifiError::NotManaged));
        assert_eq!(network.set_priority("u-1", 5), Err(WifiError::NotManaged));
        assert_eq!(network.rescan(), Err(WifiError::NotManaged));
        let bad = NewNetwork { ssid: "Venue".into(), passphrase: Secret::new("short"), hidden: false, priority: 0 };
        assert!(
            matches!(network.add_network(bad), Err(WifiError::Invalid { field: "passphrase", .. })),
            "checked first"
        );
        assert!(WifiError::NotManaged.to_string().contains("network.manage = false"));
    }

    #[test]
    fn no_country_is_the_world_domain() {
        assert_eq!(regulatory_domain(""), "00");
        assert_eq!(regulatory_domain("GB"), "GB");
    }
}
