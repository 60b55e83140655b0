//! `Network`: the handle the portal, the LAN pages and `main` hold. It starts the network
//! thread and hands it requests (join, rescan) and the LAN pages' Wi-Fi calls, each with a
//! reply channel and a deadline: only that thread talks to NetworkManager.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::nm::{self, Nm, Signal};
use super::types::*;
use super::worker;
use crate::config::Loaded;
use crate::state::{Reader, Writer};
use crate::status::StreamStatus;

pub(super) enum Input {
    Connect(WifiRequest),
    Rescan,
    Signal(Signal),
    Call(Call),
}

/// A LAN page's call, carried out on the network thread only before its deadline, half
/// the caller's wait: what the caller gave up on was not done (unless NetworkManager
/// itself took seconds), so "nothing was changed" holds.
pub(super) struct Call {
    pub(super) deadline: Instant,
    /// Adds, forgets or changes profiles: the machine is told whether saved networks remain.
    pub(super) changes_saved: bool,
    pub(super) run: CallBody,
}

/// A call's work on the network thread's NetworkManager session and last scan; it sends
/// its own answer.
pub(super) type CallBody = Box<dyn FnOnce(&Nm, &[nm::RawAp]) + Send>;

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
            .spawn(move || worker::supervise(&links, &inputs, &sender, &session))
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
    let every = worker::NM_RETRY.as_secs();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkConfig;
    use crate::secrets::Secret;

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
}
