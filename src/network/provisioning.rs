//! The provisioning state machine: what the box does to get online, decided from events
//! with no I/O. The NetworkManager edge (`nm`) feeds it events and carries out its
//! actions; timers are deadlines compared with the `now` each event carries, and every
//! duration comes from `Timing`.

use std::time::{Duration, Instant};

use super::nm_types::Reason;
use super::{Mode, ScanEntry, WifiRequest};
use crate::config::NetworkConfig;

/// The timers and retry rules, as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// At start, how long saved networks get before the access point opens.
    pub saved_wait: Duration,
    /// How long a scan may take before the list is taken as it is.
    pub scan_timeout: Duration,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// While the access point waits with no phone on it, saved networks are tried this often.
    pub retry_saved_every: Duration,
    /// Online lost for this long: back to the access point.
    pub lost_grace: Duration,
    /// An access point that failed to start is tried again after this.
    pub ap_retry: Duration,
}

impl Timing {
    pub fn from_config(config: &NetworkConfig) -> Timing {
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        Timing {
            saved_wait: secs(config.saved_wait_s),
            scan_timeout: Duration::from_secs(15),
            connect_timeout: secs(config.connect_timeout_s),
            retry_saved_every: secs(config.retry_saved_every_s),
            lost_grace: secs(config.lost_grace_s),
            ap_retry: Duration::from_secs(10),
        }
    }
}

/// Why NetworkManager gave up on a connection (`NMDeviceStateReason`), grouped by what a
/// person can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    WrongPassword,
    NetworkGone,
    NoAddress,
    /// Our own bound (`Timing::connect_timeout`) ran out.
    Timeout,
    Other(u32),
}

impl Failure {
    pub fn from_reason(reason: Reason) -> Failure {
        match reason {
            Reason::NoSecrets
            | Reason::SupplicantDisconnect
            | Reason::SupplicantConfigFailed
            | Reason::SupplicantTimeout => Failure::WrongPassword,
            Reason::SsidNotFound => Failure::NetworkGone,
            Reason::IpConfigUnavailable
            | Reason::IpConfigExpired
            | Reason::DhcpStartFailed
            | Reason::DhcpError
            | Reason::DhcpFailed => Failure::NoAddress,
            Reason::Other(other) => Failure::Other(other),
        }
    }

    /// One plain sentence for the portal page.
    pub fn sentence(self, ssid: &str, timeout: Duration) -> String {
        match self {
            Failure::WrongPassword => format!("The password for “{ssid}” was not accepted. Check it and try again."),
            Failure::NetworkGone => {
                format!("“{ssid}” could not be found. Is it in range, and is the name spelled exactly right?")
            }
            Failure::NoAddress => {
                format!(
                    "“{ssid}” accepted the password but gave the box no address (DHCP). Ask the venue whether new devices are allowed."
                )
            }
            Failure::Timeout => format!("“{ssid}” did not let the box in within {} seconds.", timeout.as_secs()),
            Failure::Other(reason) => {
                format!("Connecting to “{ssid}” failed (NetworkManager reason {reason}).")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Tick,
    /// NetworkManager's connectivity: full or limited is `true`.
    Online(bool),
    ScanDone(Vec<ScanEntry>),
    /// NetworkManager refused to scan (a radio serving an access point, typically).
    ScanRefused,
    ApFailed,
    /// Phones associated with the access point, counted when `Action::CountStations` asked.
    Stations(usize),
    /// Whether NetworkManager holds saved networks (after one was forgotten).
    Saved(bool),
    /// The Wi-Fi device went to FAILED with this `NMDeviceStateReason`.
    DeviceFailed(Reason),
    Connect(WifiRequest),
    Rescan,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    RequestScan,
    StartAp,
    StopAp,
    /// Add (replacing any saved profile of that SSID) and activate a client connection.
    Connect(WifiRequest),
    /// Delete the saved profile of a network the portal's attempt could not join.
    Forget(String),
    /// Let NetworkManager bring up the best saved connection.
    ActivateSaved,
    /// Count the phones on the access point now (answered with `Event::Stations`): the
    /// access point closes for a retry of saved networks only on a count taken at that
    /// moment, never on an older one a phone that just joined is missing from.
    CountStations,
}

/// What a connection attempt is for.
#[derive(Debug, Clone, PartialEq)]
enum Attempt {
    Portal(String),
    Saved,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Starting {
        until: Instant,
    },
    /// Before the access point opens, or with it closed for a rescan.
    Scanning {
        until: Instant,
    },
    AccessPoint {
        up: bool,
        retry_at: Instant,
        rescan_until: Option<Instant>,
    },
    Connecting {
        attempt: Attempt,
        until: Instant,
    },
    Online {
        lost_since: Option<Instant>,
        rescan_until: Option<Instant>,
    },
}

pub const RESCAN_NOTICE: &str =
    "The access point closed for a few seconds to look for networks. If your phone left it, join it again.";

pub struct Machine {
    timing: Timing,
    state: State,
    /// Whether NetworkManager has saved connections to retry.
    saved: bool,
    last_failure: Option<String>,
    notice: Option<String>,
    networks: Vec<ScanEntry>,
}

impl Machine {
    /// Power-on: saved networks get `saved_wait`; with none, scanning starts at once.
    pub fn start(timing: Timing, saved: bool, now: Instant) -> (Machine, Vec<Action>) {
        let mut machine = Machine {
            timing,
            state: State::Starting { until: now + timing.saved_wait },
            saved,
            last_failure: None,
            notice: None,
            networks: Vec::new(),
        };
        let actions = if saved { Vec::new() } else { machine.scan(now) };
        (machine, actions)
    }

    pub fn mode(&self) -> Mode {
        match self.state {
            State::Starting { .. } => Mode::Starting,
            State::Scanning { .. } => Mode::Scanning,
            State::AccessPoint { .. } => Mode::AccessPoint,
            State::Connecting { .. } => Mode::Connecting,
            State::Online { .. } => Mode::Online,
        }
    }

    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    pub fn networks(&self) -> &[ScanEntry] {
        &self.networks
    }

    /// The access point should be serving (for the edge's status: SSID and address).
    pub fn ap_up(&self) -> bool {
        matches!(self.state, State::AccessPoint { up: true, .. })
    }

    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        match event {
            Event::Tick => self.tick(now),
            Event::Online(online) => self.online(online, now),
            Event::ScanDone(networks) => {
                self.networks = networks;
                self.scan_over(now)
            }
            Event::ScanRefused => self.scan_refused(now),
            Event::ApFailed => {
                if let State::AccessPoint { up, retry_at, .. } = &mut self.state {
                    *up = false;
                    *retry_at = now + self.timing.ap_retry;
                }
                Vec::new()
            }
            Event::Stations(count) => self.stations(count, now),
            Event::Saved(saved) => {
                self.saved = saved;
                Vec::new()
            }
            Event::DeviceFailed(reason) => self.device_failed(reason, now),
            Event::Connect(request) => self.connect(request, now),
            Event::Rescan => self.rescan(now),
        }
    }

    fn scan(&mut self, now: Instant) -> Vec<Action> {
        self.state = State::Scanning { until: now + self.timing.scan_timeout };
        vec![Action::RequestScan]
    }

    fn open_ap(&mut self, now: Instant) -> Vec<Action> {
        self.wait_another_round(now);
        vec![Action::StartAp]
    }

    fn tick(&mut self, now: Instant) -> Vec<Action> {
        match self.state.clone() {
            State::Starting { until } if now >= until => self.scan(now),
            State::Scanning { until } if now >= until => self.open_ap(now),
            State::AccessPoint { rescan_until: Some(until), .. } if now >= until => {
                // A scan accepted but never finished: the radio needs the access point down.
                self.scan_refused(now)
            }
            State::AccessPoint { up: false, retry_at, .. } if now >= retry_at => self.open_ap(now),
            State::AccessPoint { up: true, retry_at, .. } if now >= retry_at => {
                if self.saved {
                    vec![Action::CountStations]
                } else {
                    self.wait_another_round(now);
                    Vec::new()
                }
            }
            State::Connecting { attempt, until } if now >= until => self.attempt_failed(attempt, Failure::Timeout, now),
            State::Online { lost_since: Some(since), .. } if now >= since + self.timing.lost_grace => self.open_ap(now),
            State::Online { rescan_until: Some(until), lost_since } if now >= until => {
                self.state = State::Online { lost_since, rescan_until: None };
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The count `Action::CountStations` asked for: with a phone on the access point a
    /// person may be filling in the form, so it stays; with none, saved networks are tried.
    fn stations(&mut self, count: usize, now: Instant) -> Vec<Action> {
        match self.state {
            State::AccessPoint { up: true, retry_at, .. } if now >= retry_at && self.saved => {
                if count > 0 {
                    self.wait_another_round(now);
                    Vec::new()
                } else {
                    self.state = State::Connecting { attempt: Attempt::Saved, until: now + self.timing.saved_wait };
                    vec![Action::StopAp, Action::ActivateSaved]
                }
            }
            _ => Vec::new(),
        }
    }

    /// The access point serves until the next retry of saved networks.
    fn wait_another_round(&mut self, now: Instant) {
        self.state = State::AccessPoint { up: true, retry_at: now + self.timing.retry_saved_every, rescan_until: None };
    }

    fn online(&mut self, online: bool, now: Instant) -> Vec<Action> {
        match (&mut self.state, online) {
            (State::Online { lost_since, .. }, true) => {
                *lost_since = None;
                Vec::new()
            }
            (State::Online { lost_since, .. }, false) => {
                lost_since.get_or_insert(now);
                Vec::new()
            }
            (State::AccessPoint { up, .. }, true) => {
                // Ethernet plugged in while the access point serves: the cable wins.
                let actions = if *up { vec![Action::StopAp] } else { Vec::new() };
                self.became_online();
                actions
            }
            (State::Starting { .. } | State::Connecting { .. } | State::Scanning { .. }, true) => {
                self.became_online();
                Vec::new()
            }
            (_, false) => Vec::new(),
        }
    }

    fn became_online(&mut self) {
        self.state = State::Online { lost_since: None, rescan_until: None };
        self.last_failure = None;
        self.notice = None;
        self.saved = true;
    }

    fn scan_over(&mut self, now: Instant) -> Vec<Action> {
        match &mut self.state {
            State::Scanning { .. } => self.open_ap(now),
            State::AccessPoint { rescan_until, .. } | State::Online { rescan_until, .. } => {
                *rescan_until = None;
                Vec::new()
            }
            State::Starting { .. } | State::Connecting { .. } => Vec::new(),
        }
    }

    fn scan_refused(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::AccessPoint { up: true, .. } => {
                self.notice = Some(RESCAN_NOTICE.to_string());
                let mut actions = vec![Action::StopAp];
                actions.extend(self.scan(now));
                actions
            }
            State::AccessPoint { .. } => self.scan(now),
            // Nothing to close: open the access point with the list there is.
            State::Scanning { .. } => self.open_ap(now),
            State::Online { lost_since, .. } => {
                self.state = State::Online { lost_since, rescan_until: None };
                Vec::new()
            }
            State::Starting { .. } | State::Connecting { .. } => Vec::new(),
        }
    }

    fn rescan(&mut self, now: Instant) -> Vec<Action> {
        let until = Some(now + self.timing.scan_timeout);
        match &mut self.state {
            State::AccessPoint { up: true, rescan_until, .. } | State::Online { rescan_until, .. } => {
                *rescan_until = until;
                vec![Action::RequestScan]
            }
            State::AccessPoint { up: false, .. } => self.scan(now),
            State::Starting { .. } | State::Scanning { .. } | State::Connecting { .. } => Vec::new(),
        }
    }

    fn connect(&mut self, request: WifiRequest, now: Instant) -> Vec<Action> {
        let mut actions = if self.ap_up() { vec![Action::StopAp] } else { Vec::new() };
        self.state = State::Connecting {
            attempt: Attempt::Portal(request.ssid.clone()),
            until: now + self.timing.connect_timeout,
        };
        self.last_failure = None;
        self.notice = None;
        self.saved = true;
        actions.push(Action::Connect(request));
        actions
    }

    fn device_failed(&mut self, reason: Reason, now: Instant) -> Vec<Action> {
        match &self.state {
            State::Connecting { attempt, .. } => {
                let attempt = attempt.clone();
                self.attempt_failed(attempt, Failure::from_reason(reason), now)
            }
            _ => Vec::new(),
        }
    }

    fn attempt_failed(&mut self, attempt: Attempt, failure: Failure, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Attempt::Portal(ssid) = attempt {
            self.last_failure = Some(failure.sentence(&ssid, self.timing.connect_timeout));
            actions.push(Action::Forget(ssid));
        }
        actions.extend(self.open_ap(now));
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{Band, Security};
    use crate::secrets::Secret;

    const S: Duration = Duration::from_secs(1);

    fn timing() -> Timing {
        Timing {
            saved_wait: 30 * S,
            scan_timeout: 15 * S,
            connect_timeout: 45 * S,
            retry_saved_every: 300 * S,
            lost_grace: 60 * S,
            ap_retry: 10 * S,
        }
    }

    fn venue() -> ScanEntry {
        ScanEntry { ssid: "Venue".into(), signal: 70, security: Security::Wpa2, band: Band::Ghz2_4 }
    }

    fn request(ssid: &str) -> WifiRequest {
        WifiRequest { ssid: ssid.into(), passphrase: Secret::new("wrong-one"), hidden: false }
    }

    /// A machine with a clock: `at(s, event)` hands it `event` `s` seconds after power-on.
    struct Run {
        machine: Machine,
        t0: Instant,
    }

    impl Run {
        fn start(saved: bool) -> (Run, Vec<Action>) {
            let t0 = Instant::now();
            let (machine, actions) = Machine::start(timing(), saved, t0);
            (Run { machine, t0 }, actions)
        }

        fn at(&mut self, secs: u64, event: Event) -> Vec<Action> {
            self.machine.handle(event, self.t0 + Duration::from_secs(secs))
        }

        /// No saved network: scan, find the venue, open the access point.
        fn on_ap() -> Run {
            let (mut run, actions) = Run::start(false);
            assert_eq!(actions, [Action::RequestScan]);
            assert_eq!(run.at(2, Event::ScanDone(vec![venue()])), [Action::StartAp]);
            run
        }
    }

    #[test]
    fn power_on_with_a_saved_network_that_comes_up() {
        let (mut run, actions) = Run::start(true);
        assert!(actions.is_empty(), "NetworkManager autoconnects saved networks itself");
        assert_eq!(run.machine.mode(), Mode::Starting);
        assert!(run.at(10, Event::Tick).is_empty());
        assert!(run.at(12, Event::Online(true)).is_empty());
        assert_eq!(run.machine.mode(), Mode::Online);
        assert!(run.at(100, Event::Tick).is_empty(), "online stays online");
    }

    #[test]
    fn saved_networks_that_do_not_come_up_in_time_lead_to_scan_then_ap() {
        let (mut run, _) = Run::start(true);
        assert!(run.at(29, Event::Tick).is_empty());
        assert_eq!(run.at(30, Event::Tick), [Action::RequestScan]);
        assert_eq!(run.machine.mode(), Mode::Scanning);
        assert_eq!(run.at(33, Event::ScanDone(vec![venue()])), [Action::StartAp]);
        assert_eq!(run.machine.mode(), Mode::AccessPoint);
        assert_eq!(run.machine.networks(), [venue()]);
    }

    #[test]
    fn no_network_scans_then_opens_the_ap_and_a_silent_scan_times_out() {
        let run = Run::on_ap();
        assert_eq!(run.machine.mode(), Mode::AccessPoint);
        assert!(run.machine.ap_up());

        let (mut run, _) = Run::start(false);
        assert!(run.at(14, Event::Tick).is_empty());
        assert_eq!(run.at(15, Event::Tick), [Action::StartAp], "the scan_timeout bounds the wait");
        assert!(run.machine.networks().is_empty());
    }

    #[test]
    fn wrong_password_brings_the_ap_back_with_its_sentence() {
        let mut run = Run::on_ap();
        assert_eq!(run.at(60, Event::Connect(request("Venue"))), [Action::StopAp, Action::Connect(request("Venue"))]);
        assert_eq!(run.machine.mode(), Mode::Connecting);
        assert_eq!(
            run.at(70, Event::DeviceFailed(Reason::NoSecrets)),
            [Action::Forget("Venue".into()), Action::StartAp]
        );
        assert_eq!(run.machine.mode(), Mode::AccessPoint);
        assert_eq!(
            run.machine.last_failure(),
            Some("The password for “Venue” was not accepted. Check it and try again.")
        );
    }

    #[test]
    fn each_reason_is_one_sentence() {
        let sentence = |reason: u32| Failure::from_reason(reason.into()).sentence("Venue", 45 * S);
        assert_eq!(sentence(8), sentence(7));
        assert!(sentence(53).contains("could not be found"));
        assert!(sentence(5).contains("no address (DHCP)"));
        assert_eq!(sentence(17), sentence(5));
        assert!(sentence(36).contains("reason 36"));
        assert_eq!(Failure::Timeout.sentence("Venue", 45 * S), "“Venue” did not let the box in within 45 seconds.");
    }

    #[test]
    fn a_connection_that_never_finishes_times_out() {
        let mut run = Run::on_ap();
        run.at(60, Event::Connect(request("Venue")));
        assert!(run.at(104, Event::Tick).is_empty());
        assert_eq!(run.at(105, Event::Tick), [Action::Forget("Venue".into()), Action::StartAp]);
        assert!(run.machine.last_failure().unwrap().contains("within 45 seconds"));
    }

    #[test]
    fn good_password_goes_online_and_clears_the_failure() {
        let mut run = Run::on_ap();
        run.at(60, Event::Connect(request("Venue")));
        run.at(70, Event::DeviceFailed(Reason::NoSecrets));
        run.at(80, Event::Connect(request("Venue")));
        assert_eq!(run.machine.last_failure(), None);
        assert!(run.at(85, Event::Online(true)).is_empty());
        assert_eq!(run.machine.mode(), Mode::Online);
        assert!(
            run.at(90, Event::DeviceFailed(Reason::Other(36))).is_empty(),
            "a failure while online is NetworkManager's to retry"
        );
        assert_eq!(run.machine.mode(), Mode::Online);
    }

    #[test]
    fn online_lost_goes_back_to_the_ap_and_retries_saved_networks_while_no_phone_is_on_it() {
        let (mut run, _) = Run::start(true);
        run.at(5, Event::Online(true));
        run.at(100, Event::Online(false));
        assert!(run.at(130, Event::Online(true)).is_empty(), "a short drop is NetworkManager's to mend");
        run.at(200, Event::Online(false));
        assert!(run.at(259, Event::Tick).is_empty());
        assert_eq!(run.at(260, Event::Tick), [Action::StartAp], "lost for lost_grace");
        assert_eq!(run.machine.mode(), Mode::AccessPoint);

        // The retry counts the phones on the access point at that moment; with one on it
        // (a person filling in the form, or a phone that joined a second ago) it waits
        // another round.
        assert!(run.at(559, Event::Tick).is_empty());
        assert_eq!(run.at(560, Event::Tick), [Action::CountStations]);
        assert!(run.at(560, Event::Stations(1)).is_empty());
        assert_eq!(run.machine.mode(), Mode::AccessPoint);
        assert!(run.at(600, Event::Stations(0)).is_empty(), "a count nobody asked for decides nothing");
        assert!(run.at(859, Event::Tick).is_empty());
        assert_eq!(run.at(860, Event::Tick), [Action::CountStations]);
        assert_eq!(run.at(860, Event::Stations(0)), [Action::StopAp, Action::ActivateSaved]);
        assert_eq!(run.machine.mode(), Mode::Connecting);
        // Still gone: the access point comes back without a sentence (nobody asked).
        assert_eq!(run.at(890, Event::Tick), [Action::StartAp]);
        assert_eq!(run.machine.last_failure(), None);
        // The next round finds it.
        assert_eq!(run.at(1190, Event::Tick), [Action::CountStations]);
        assert_eq!(run.at(1190, Event::Stations(0)), [Action::StopAp, Action::ActivateSaved]);
        run.at(1195, Event::Online(true));
        assert_eq!(run.machine.mode(), Mode::Online);
    }

    #[test]
    fn no_saved_network_means_no_retry() {
        let mut run = Run::on_ap();
        assert!(run.at(1000, Event::Tick).is_empty());
        assert_eq!(run.machine.mode(), Mode::AccessPoint);

        // The portal's network failed and was forgotten: still nothing to retry.
        run.at(1010, Event::Connect(request("Venue")));
        run.at(1020, Event::DeviceFailed(Reason::NoSecrets));
        run.at(1020, Event::Saved(false));
        assert!(run.at(2000, Event::Tick).is_empty());
    }

    #[test]
    fn rescan_on_the_ap_when_the_radio_can_scan() {
        let mut run = Run::on_ap();
        assert_eq!(run.at(50, Event::Rescan), [Action::RequestScan]);
        let other = ScanEntry { ssid: "Other".into(), ..venue() };
        assert!(run.at(53, Event::ScanDone(vec![venue(), other.clone()])).is_empty());
        assert_eq!(run.machine.networks(), [venue(), other]);
        assert!(run.machine.ap_up());
        assert_eq!(run.machine.notice(), None);
    }

    #[test]
    fn rescan_drops_the_ap_when_the_radio_refuses_and_says_so() {
        let mut run = Run::on_ap();
        assert_eq!(run.at(50, Event::Rescan), [Action::RequestScan]);
        assert_eq!(run.at(50, Event::ScanRefused), [Action::StopAp, Action::RequestScan]);
        assert_eq!(run.machine.mode(), Mode::Scanning);
        assert_eq!(run.machine.notice(), Some(RESCAN_NOTICE));
        assert_eq!(run.at(54, Event::ScanDone(vec![])), [Action::StartAp]);
        assert_eq!(run.machine.mode(), Mode::AccessPoint);

        // Accepted but never finished counts as refused.
        assert_eq!(run.at(100, Event::Rescan), [Action::RequestScan]);
        assert_eq!(run.at(115, Event::Tick), [Action::StopAp, Action::RequestScan]);
    }

    #[test]
    fn an_ap_that_fails_to_start_is_retried() {
        let mut run = Run::on_ap();
        assert!(run.at(3, Event::ApFailed).is_empty());
        assert!(!run.machine.ap_up());
        assert!(run.at(12, Event::Tick).is_empty());
        assert_eq!(run.at(13, Event::Tick), [Action::StartAp]);
    }

    #[test]
    fn ethernet_while_the_ap_serves_wins() {
        let mut run = Run::on_ap();
        assert_eq!(run.at(40, Event::Online(true)), [Action::StopAp]);
        assert_eq!(run.machine.mode(), Mode::Online);
    }
}
