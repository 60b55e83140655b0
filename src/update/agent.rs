//! The service's update thread: judges the boot against the pending record, marks the
//! slot, reports the outcome, and looks for updates at the configured source.
//!
//! **Invariant:** the only writer of the update's part of the status (it holds the
//! `Writer`); the `[update]` settings in force are the ones it acts on (a new source,
//! server or reboot policy is taken at the next turn, no restart). It never reboots the box in the
//! middle of a live stream unless the policy says "now"; it asks for a reboot by creating
//! `<runtime_dir>/reboot` (a systemd path unit does it as root). Every decision is made by
//! `verdict`'s pure functions; this thread does the calls. A bundle uploaded from the web
//! reaches it through its `Installer` and is installed as `update install` does it.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::rauc::{Mark, Rauc};
use super::record::{Origin, Outcome, Pending, Records};
use super::source::{Offer, Source};
use super::upload::Upload;
use super::verdict::{self, AfterBoot, Health, Seen};
use super::{Running, unix_now};
use crate::config::{Loaded, RebootPolicy, UpdateConfig, UpdateSource};
use crate::network::NetworkStatus;
use crate::state::{Reader, Writer};
use crate::status::{StreamStatus, UpdateState, UpdateStatus};

const TICK: Duration = Duration::from_secs(1);
/// How soon RAUC is asked again when it is not there, and a failed report is resent.
const RETRY: Duration = Duration::from_secs(30);

/// What the update thread reads of the others, and the one thing it writes.
pub struct Links {
    pub settings: Reader<Loaded>,
    /// The only writer of the update's part of the status.
    pub status: Writer<UpdateStatus>,
    /// The health check's view: the stream (ready, live) and the network (online).
    pub stream: Reader<StreamStatus>,
    pub network: Reader<NetworkStatus>,
}

pub struct Agent {
    /// The `[update]` settings in force, and their version.
    config: UpdateConfig,
    settings_version: u64,
    links: Links,
    records: Records,
    runtime_dir: PathBuf,
    source: Option<Source>,
    next_check: Instant,
    /// A slot that could not be marked good is tried again from then (not every tick).
    next_mark: Instant,
    uploads: Receiver<Upload>,
}

/// The web's handle on the update thread.
#[derive(Clone)]
pub struct Installer {
    uploads: Sender<Upload>,
}

impl Installer {
    /// Hands a stored bundle to the update thread, which installs it (progress in
    /// `status.update`) and then drops it, which deletes the file.
    pub fn install(&self, upload: Upload) -> Result<(), String> {
        self.uploads.send(upload).map_err(|_| "the update thread is not running: nothing installed".to_string())
    }
}

/// Where the thread stands in the life of one update.
enum Phase {
    /// An ordinary boot: mark the slot good once ready, then look for updates.
    Ordinary { marked: bool },
    /// Installed; reboot when the policy allows.
    Installed(Pending),
    /// The first boot of a new version: judge it.
    Verify { pending: Pending, since: Duration, seen: Seen },
    /// Judged; tell the server, then close the record.
    Report(Pending),
    /// A reboot was asked for; nothing more to do in this boot.
    Rebooting,
}

impl Agent {
    pub fn start(links: Links, data_dir: PathBuf, runtime_dir: PathBuf) -> Installer {
        let (installer, uploads) = mpsc::channel();
        let settings = links.settings.get();
        let agent = Agent {
            config: settings.config.update.clone(),
            settings_version: settings.version,
            links,
            records: Records::new(&data_dir),
            runtime_dir,
            source: None,
            next_check: Instant::now(),
            next_mark: Instant::now(),
            uploads,
        };
        std::thread::Builder::new().name("update".into()).spawn(move || agent.run()).expect("spawn the update thread");
        Installer { uploads: installer }
    }

    fn run(mut self) {
        let (rauc, running) = loop {
            match Rauc::connect().map_err(|e| e.to_string()).and_then(|rauc| super::running(&rauc).map(|r| (rauc, r))) {
                Ok(found) => break found,
                Err(why) => {
                    let why = format!("updates are unavailable: {why}");
                    self.show(UpdateState::Idle, None, Some(why.clone()));
                    // An upload meanwhile is refused (the web refuses them while no slot is
                    // known); its refusal stays shown until the next attempt.
                    let next = Instant::now() + RETRY;
                    while let Some(left) = next.checked_duration_since(Instant::now()) {
                        self.follow_settings();
                        match self.uploads.recv_timeout(left.min(TICK)) {
                            Ok(upload) => {
                                let refused = format!("{} not installed: {why}", describe(&upload));
                                self.show(UpdateState::Failed, None, Some(refused));
                            }
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(left.min(TICK)),
                        }
                    }
                }
            }
        };
        self.set(|u| {
            u.version = running.version.clone();
            u.slot = Some(running.slot.clone());
        });
        self.make_source(&running);
        let mut phase = self.after_boot(&rauc, &running);
        loop {
            if self.follow_settings() {
                self.make_source(&running);
                self.next_check = Instant::now();
            }
            phase = self.step(&rauc, &running, phase);
            match self.uploads.recv_timeout(TICK) {
                Ok(upload) => phase = self.install_upload(&rauc, &running, phase, upload),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(TICK),
            }
        }
    }

    /// Takes new `[update]` settings in force (the reboot policy, the health window and
    /// the upload limit hold from now on); returns whether where updates come from
    /// changed, and so the source must be made again.
    fn follow_settings(&mut self) -> bool {
        let latest = self.links.settings.get();
        if latest.version == self.settings_version {
            return false;
        }
        self.settings_version = latest.version;
        let new = &latest.config.update;
        if *new == self.config {
            return false;
        }
        let old = std::mem::replace(&mut self.config, new.clone());
        let same_source = UpdateConfig {
            reboot: old.reboot,
            health_window_s: old.health_window_s,
            upload_limit_mb: old.upload_limit_mb,
            ..new.clone()
        } == old;
        let source = describe_source(new);
        tracing::info!("update: settings changed: updates from {source}, reboot {}", new.reboot);
        self.set(|_| {});
        !same_source
    }

    /// The update source the settings in force name, for the firmware running.
    fn make_source(&mut self, running: &Running) {
        let version = running.version.as_deref().unwrap_or_default();
        self.source = Source::from_config(&self.config, version, &running.compatible).unwrap_or_else(|why| {
            tracing::error!("update: {why}; not looking for updates");
            None
        });
    }

    /// Installs an uploaded bundle when nothing else is under way; the file goes when
    /// the install ends.
    fn install_upload(&mut self, rauc: &Rauc, running: &Running, phase: Phase, upload: Upload) -> Phase {
        let what = describe(&upload);
        let Phase::Ordinary { marked } = phase else {
            let why = match &phase {
                Phase::Installed(pending) => super::waiting_for_reboot(pending),
                Phase::Verify { pending, .. } => format!("{} is still being checked", pending.to_version),
                Phase::Report(pending) => format!("the outcome of {} is still being reported", pending.to_version),
                Phase::Rebooting | Phase::Ordinary { .. } => "the box is rebooting".into(),
            };
            tracing::error!("update: {what} not installed: {why}");
            self.show(UpdateState::Failed, None, Some(format!("{what} not installed: {why}")));
            return phase;
        };
        upload.under_way(format!("{what} is being installed"));
        tracing::info!("update: installing {what}");
        let installed =
            upload.path().canonicalize().map_err(|e| format!("{}: {e}", upload.path().display())).and_then(|file| {
                let file = file.to_string_lossy();
                self.install_file(rauc, running, &file, Origin::File { path: file.to_string() }, &what)
                    .map_err(String::from)
            });
        drop(upload);
        match installed {
            Ok(pending) => {
                tracing::info!("update: {} installed into slot {}", pending.to_version, pending.expect_slot);
                Phase::Installed(pending)
            }
            Err(why) => {
                tracing::error!("update: {what} not installed: {why}");
                self.show(UpdateState::Failed, None, Some(format!("{what} not installed: {why}")));
                Phase::Ordinary { marked }
            }
        }
    }

    /// `super::install` with its progress shown in `status.update`.
    fn install_file(
        &self,
        rauc: &Rauc,
        running: &Running,
        file: &str,
        origin: Origin,
        what: &str,
    ) -> Result<Pending, super::InstallError> {
        let status = &self.links.status;
        super::install(rauc, running, file, origin, false, &self.records, &mut |p| {
            show_progress(
                status,
                UpdateState::Installing,
                p.percent.into(),
                format!("installing {what}: {}", p.message),
            )
        })
    }

    fn after_boot(&mut self, rauc: &Rauc, running: &Running) -> Phase {
        let pending = match self.records.pending() {
            Ok(pending) => pending,
            Err(why) => {
                tracing::error!("update: {why}");
                None
            }
        };
        self.show_last();
        match verdict::after_boot(pending, &running.slot, &super::boot_id()) {
            AfterBoot::Ordinary => Phase::Ordinary { marked: false },
            AfterBoot::AwaitingReboot(pending) => Phase::Installed(pending),
            AfterBoot::Report(pending) => Phase::Report(pending),
            AfterBoot::Verify(mut pending) => {
                let since = self.verify_since(&mut pending);
                tracing::info!(
                    "update: running {} from slot {} for the first time: checking its health (for up to {} s)",
                    pending.to_version,
                    running.slot,
                    self.config.health_window_s
                );
                Phase::Verify { pending, since, seen: Seen::default() }
            }
            AfterBoot::RolledBack(mut pending, why) => {
                tracing::error!("update to {} failed: {why}", pending.to_version);
                if let Err(e) = rauc.mark(Mark::Active, "booted") {
                    tracing::error!("update: could not make slot {} primary again: {e}", running.slot);
                }
                pending.outcome = Some(Outcome { success: false, details: why, at: unix_now() });
                self.save(&pending);
                Phase::Report(pending)
            }
        }
    }

    /// When this boot's health check began (uptime), kept in the record so that a restart
    /// of the service does not give the new version a fresh window.
    fn verify_since(&self, pending: &mut Pending) -> Duration {
        let boot = super::boot_id();
        match &pending.verifying {
            Some((id, since)) if *id == boot => Duration::from_secs(*since),
            _ => {
                let now = super::uptime();
                pending.verifying = Some((boot, now.as_secs()));
                self.save(pending);
                now
            }
        }
    }

    fn step(&mut self, rauc: &Rauc, running: &Running, phase: Phase) -> Phase {
        match phase {
            Phase::Ordinary { marked } => {
                let ready = self.links.stream.get().ready;
                let marked = marked || (ready && Instant::now() >= self.next_mark && self.mark_good(rauc, running));
                if !marked && ready {
                    self.next_mark = Instant::now() + RETRY;
                }
                // `makespacelive update install` writes the record from another process.
                match self.records.pending() {
                    Ok(Some(pending)) if pending.outcome.is_none() => return Phase::Installed(pending),
                    Ok(_) => {}
                    Err(why) => tracing::error!("update: {why}"),
                }
                if let Some(changes) = crate::bootcfg::reboot_needed(&crate::bootcfg::answers_dir(&self.runtime_dir)) {
                    let changes = changes.trim().replace('\n', "; ");
                    self.set(|u| u.reboot_needed = Some(format!("the boot configuration changed: {changes}")));
                    let state = self.links.stream.get().state;
                    if verdict::may_reboot(self.config.reboot, state) {
                        self.reboot(&format!("for the boot configuration: {changes}"));
                        return Phase::Rebooting;
                    }
                }
                if marked && Instant::now() >= self.next_check {
                    return self.check(rauc, running);
                }
                Phase::Ordinary { marked }
            }
            Phase::Installed(pending) => {
                let state = self.links.stream.get().state;
                let message = format!(
                    "{} installed into slot {}; {}",
                    pending.to_version,
                    pending.expect_slot,
                    match self.config.reboot {
                        RebootPolicy::WhenIdle => "rebooting once the stream is idle",
                        RebootPolicy::Now => "rebooting",
                        RebootPolicy::Never => "reboot to run it",
                    }
                );
                self.set(|u| u.reboot_needed = Some(message.clone()));
                if verdict::may_reboot(self.config.reboot, state) {
                    self.reboot(&format!("to run {} from slot {}", pending.to_version, pending.expect_slot));
                    return Phase::Rebooting;
                }
                self.show(UpdateState::Installed, Some(100), Some(message));
                Phase::Installed(pending)
            }
            Phase::Verify { mut pending, since, mut seen } => {
                seen.observe(&self.links.stream.get(), &self.links.network.get());
                let window = Duration::from_secs(self.config.health_window_s.into());
                match verdict::judge(&seen, super::uptime().saturating_sub(since), window) {
                    Health::Waiting => {
                        let message = format!("checking the health of {}", pending.to_version);
                        self.show(UpdateState::Verifying, None, Some(message));
                        Phase::Verify { pending, since, seen }
                    }
                    Health::Healthy => {
                        self.mark_good(rauc, running);
                        let details = format!("running {} from slot {}: healthy", pending.to_version, running.slot);
                        tracing::info!("update: {details}");
                        pending.outcome = Some(Outcome { success: true, details, at: unix_now() });
                        self.save(&pending);
                        Phase::Report(pending)
                    }
                    Health::Unhealthy(why) => {
                        tracing::error!(
                            "update: {} is not healthy ({why}): marking slot {} bad",
                            pending.to_version,
                            running.slot
                        );
                        pending.failure = Some(format!("version {} {why}", pending.to_version));
                        self.save(&pending);
                        if let Err(e) = rauc.mark(Mark::Bad, "booted") {
                            tracing::error!("update: could not mark slot {} bad: {e}", running.slot);
                        }
                        self.reboot(&format!("{} is not healthy: back to the other slot", pending.to_version));
                        Phase::Rebooting
                    }
                }
            }
            Phase::Report(pending) => self.report(pending),
            Phase::Rebooting => Phase::Rebooting,
        }
    }

    fn mark_good(&self, rauc: &Rauc, running: &Running) -> bool {
        match rauc.mark(Mark::Good, "booted") {
            Ok(_) => {
                tracing::info!("update: slot {} marked good", running.slot);
                true
            }
            Err(e) => {
                tracing::error!("update: could not mark slot {} good: {e}", running.slot);
                false
            }
        }
    }

    /// Tells the server (hawkBit) the outcome, then closes the record.
    fn report(&mut self, pending: Pending) -> Phase {
        let Some(outcome) = pending.outcome.clone() else { return Phase::Ordinary { marked: true } };
        if let Origin::Hawkbit { action_id, .. } = &pending.origin {
            // Resent every RETRY, not every tick: the server may be down for long.
            if Instant::now() < self.next_check {
                return Phase::Report(pending);
            }
            let told = match &self.source {
                Some(source) => source.close(action_id, outcome.success, &outcome.details),
                None => Err("update.source is no longer hawkbit".into()),
            };
            if let Err(why) = told {
                tracing::warn!("update: the outcome could not be reported yet ({why}); trying again in {RETRY:?}");
                self.next_check = Instant::now() + RETRY;
                return Phase::Report(pending);
            }
        }
        match self.records.close(&pending, outcome.clone()) {
            Ok(()) => self.show_last(),
            Err(why) => tracing::error!("update: {why}"),
        }
        let state = if outcome.success { UpdateState::Idle } else { UpdateState::Failed };
        self.show(state, None, Some(outcome.details));
        self.set(|u| u.reboot_needed = None);
        Phase::Ordinary { marked: outcome.success }
    }

    /// Asks the source; downloads, checks and installs what it offers.
    fn check(&mut self, rauc: &Rauc, running: &Running) -> Phase {
        let Some(source) = self.source.take() else {
            self.next_check = Instant::now() + Duration::from_secs(3600);
            return Phase::Ordinary { marked: true };
        };
        self.show(UpdateState::Checking, None, None);
        let checked = source.check();
        self.set(|u| u.last_check = Some(unix_now()));
        let phase = match checked {
            Ok(checked) => {
                let every = Duration::from_secs(self.config.check_every_s.into());
                self.next_check = Instant::now() + checked.sleep.unwrap_or(every);
                let wanted = |o: &Offer| {
                    source.wanted(o, running.version.as_deref(), &running.compatible) && !self.failed_before(o)
                };
                match checked.offer.filter(wanted) {
                    Some(offer) => self.take(rauc, running, &source, &offer),
                    None => {
                        self.show(UpdateState::Idle, None, None);
                        Phase::Ordinary { marked: true }
                    }
                }
            }
            Err(why) => {
                tracing::warn!("update: {why}");
                self.next_check =
                    Instant::now() + Duration::from_secs(self.config.check_every_s.into()).min(RETRY * 10);
                self.show(UpdateState::Failed, None, Some(why));
                Phase::Ordinary { marked: true }
            }
        };
        self.source = Some(source);
        phase
    }

    fn take(&mut self, rauc: &Rauc, running: &Running, source: &Source, offer: &Offer) -> Phase {
        let version = offer.version.clone().unwrap_or_else(|| offer.filename.clone());
        tracing::info!("update: {version} is offered; downloading");
        let fetched = source.fetch(offer, &self.records.dir().join("download"), &mut |got, total| {
            let percent = got * 100 / total.max(1);
            show_progress(&self.links.status, UpdateState::Downloading, percent, format!("downloading {version}"));
        });
        let file = match fetched {
            Ok(file) => file,
            Err(why) => {
                // `fetch` told hawkBit already.
                tracing::error!("update: {version} not downloaded: {why}");
                self.show(UpdateState::Failed, None, Some(format!("{version} not downloaded: {why}")));
                return Phase::Ordinary { marked: true };
            }
        };
        let installed = {
            let result =
                self.install_file(rauc, running, &file.to_string_lossy(), source.origin(offer, &self.config), &version);
            // The bundle is in the slot now (or refused): its copy only takes room.
            let _ = std::fs::remove_file(&file);
            result
        };
        match installed {
            Ok(pending) => {
                let note = format!("installed into slot {}, rebooting to check its health", pending.expect_slot);
                if let Err(why) = source.proceeding(offer, &note) {
                    tracing::warn!("update: could not report the install: {why}");
                }
                tracing::info!("update: {} {note}", pending.to_version);
                Phase::Installed(pending)
            }
            Err(why) => {
                tracing::error!("update: {version} not installed: {why}");
                if let Err(also) = source.finish(offer, false, &why.to_string()) {
                    tracing::warn!("update: could not report the failure: {also}");
                }
                self.show(UpdateState::Failed, None, Some(format!("{version} not installed: {why}")));
                Phase::Ordinary { marked: true }
            }
        }
    }

    /// A manifest keeps offering a version that failed: it is not tried again (hawkBit
    /// closes the action instead).
    fn failed_before(&self, offer: &Offer) -> bool {
        offer.action.is_none()
            && matches!(self.records.last(), Ok(Some(last))
                if !last.outcome.success && Some(&last.to_version) == offer.version.as_ref())
    }

    fn reboot(&self, why: &str) {
        self.show(UpdateState::Rebooting, None, Some(format!("rebooting {why}")));
        if let Err(e) = super::request_reboot(&self.runtime_dir, why) {
            tracing::error!("update: {e}");
        }
    }

    fn show_last(&self) {
        let last = self.records.last().unwrap_or_else(|why| {
            tracing::error!("update: {why}");
            None
        });
        self.set(|u| u.last = last);
    }

    fn save(&self, pending: &Pending) {
        if let Err(why) = self.records.save_pending(pending) {
            tracing::error!("update: {why}");
        }
    }

    fn show(&self, state: UpdateState, progress: Option<u8>, message: Option<String>) {
        self.set(|u| {
            u.state = state;
            u.progress = progress;
            u.message = message.clone();
        });
    }

    fn set(&self, change: impl FnOnce(&mut UpdateStatus)) {
        self.links.status.update(|u| {
            change(u);
            u.source = describe_source(&self.config);
        });
    }
}

/// An install or download under way, in the update's status.
fn show_progress(status: &Writer<UpdateStatus>, state: UpdateState, percent: u64, message: String) {
    status.update(|u| {
        u.state = state;
        u.progress = Some(percent.min(100) as u8);
        u.message = Some(message);
    });
}

/// An uploaded bundle, as the status names it.
fn describe(upload: &Upload) -> String {
    let size = std::fs::metadata(upload.path()).map(|m| m.len()).unwrap_or_default();
    format!("the uploaded bundle ({size} bytes)")
}

fn describe_source(config: &UpdateConfig) -> String {
    match config.source {
        UpdateSource::None => "files only".into(),
        UpdateSource::Hawkbit => format!("hawkBit {}", config.hawkbit_url),
        UpdateSource::Manifest => format!("manifest {}", config.manifest_url),
    }
}
