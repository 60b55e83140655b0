//! The network thread: one NetworkManager session at a time (`Edge`), turning signals,
//! the handle's requests and a one-second tick into events for the pure machine
//! (`provisioning`) and carrying out its actions; the only writer of the network's status.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::handle::{Input, Links};
use super::led;
use super::nm::{self, Nm, Signal};
use super::nm_types::{Connectivity, DeviceState, Reason, State};
use super::provisioning::{Action, Event, Machine, Timing};
use super::types::*;
use crate::config::{Loaded, NetworkConfig};
use crate::state::Reader;

const TICK: Duration = Duration::from_secs(1);
/// Without NetworkManager, how often it is looked for again (logged once).
pub(super) const NM_RETRY: Duration = Duration::from_secs(30);

/// Connects to NetworkManager and drives the machine while `network.manage` is on;
/// without NetworkManager, `Mode::Unmanaged` and a slow retry. A change of the network
/// settings that the running session cannot take ends it; the next one starts with them.
pub(super) fn supervise(
    links: &Links,
    inputs: &mpsc::Receiver<Input>,
    sender: &mpsc::Sender<Input>,
    session: &AtomicBool,
) {
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
    fn online_is_a_default_route_that_is_no_captive_portal() {
        use Connectivity::{Full, Limited, None, Portal, Unknown};
        use State::{ConnectedGlobal, ConnectedLocal, ConnectedSite, Disconnected};
        assert!(is_online(Full, ConnectedGlobal) && is_online(Limited, ConnectedSite), "limited: no Internet");
        assert!(is_online(None, ConnectedSite) && is_online(Unknown, ConnectedSite), "no check: the route decides");
        assert!(!is_online(Portal, ConnectedSite), "a captive portal");
        assert!(!is_online(Limited, ConnectedLocal), "the box's own access point: local only");
        assert!(!is_online(None, Disconnected));
    }
}
