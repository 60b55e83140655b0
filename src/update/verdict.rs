//! The pure decisions about an update's truth: what a boot means for the pending record
//! (`after_boot`), whether the new system is healthy (`judge`), and whether the box may
//! reboot into an installed update now (`may_reboot`).
//!
//! **Invariant:** an update is a success only after the box booted the slot the install
//! made primary and passed the health check there; anything else that ends the pending
//! record is a failure with its reason.

use std::collections::BTreeSet;
use std::time::Duration;

use super::record::Pending;
use crate::config::RebootPolicy;
use crate::media::SourceError;
use crate::network::Mode;
use crate::network::NetworkStatus;
use crate::status::{BoxState, DestinationState, StreamStatus};

/// What this boot means for the update in the record, with the record.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterBoot {
    /// No update pending: an ordinary boot.
    Ordinary,
    /// Installed, the box has not rebooted since (the service restarted meanwhile).
    AwaitingReboot(Pending),
    /// The box runs the new slot: judge its health.
    Verify(Pending),
    /// The box is back on the old slot (or on neither): the update failed, for this reason.
    RolledBack(Pending, String),
    /// Judged already; the verdict still has to reach the server.
    Report(Pending),
}

pub fn after_boot(pending: Option<Pending>, booted: &str, boot_id: &str) -> AfterBoot {
    let Some(p) = pending else { return AfterBoot::Ordinary };
    if p.outcome.is_some() {
        AfterBoot::Report(p)
    } else if p.boot_id == boot_id {
        AfterBoot::AwaitingReboot(p)
    } else if booted == p.expect_slot {
        AfterBoot::Verify(p)
    } else {
        let why = match &p.failure {
            Some(failure) => format!("{failure}; the box went back to slot {booted}"),
            None if booted == p.from_slot => format!(
                "version {} in slot {} did not come up (it ran out of boot attempts or was not ready in time); \
                 the box went back to slot {booted} and version {}",
                p.to_version, p.expect_slot, p.from_version
            ),
            None => format!(
                "the box booted slot {booted}, neither the new slot {} nor the old {}",
                p.expect_slot, p.from_slot
            ),
        };
        AfterBoot::RolledBack(p, why)
    }
}

/// What the health check has seen since the service started.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Seen {
    pub ready: bool,
    pub online: bool,
    /// The enabled destinations, and those of them that have been live.
    pub enabled: BTreeSet<String>,
    pub published: BTreeSet<String>,
    /// The last error of each enabled destination that has not published.
    pub errors: Vec<(String, String)>,
    /// Why the camera/encoder side failed, if it did (then no destination can publish).
    pub source_error: Option<SourceError>,
}

impl Seen {
    /// Adds what the stream's and the network's status show now.
    pub fn observe(&mut self, status: &StreamStatus, network: &NetworkStatus) {
        self.ready |= status.ready;
        self.online = matches!(network.mode, Mode::Online | Mode::Unmanaged);
        self.enabled.clear();
        self.errors.clear();
        self.source_error.clone_from(&status.source_error);
        for d in status.destinations.iter().filter(|d| d.state != DestinationState::Disabled) {
            self.enabled.insert(d.name.clone());
            if d.state == DestinationState::Live {
                self.published.insert(d.name.clone());
            } else if let Some(e) = &d.last_error {
                self.errors.push((d.name.clone(), e.clone()));
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    Waiting,
    Healthy,
    Unhealthy(String),
}

/// Healthy once ready, online, and every enabled destination has published (or none is
/// enabled); unhealthy, naming what was missing, when `elapsed` reaches `window` — or at
/// once when the stream lacks an element this version does not have, which no wait brings.
pub fn judge(seen: &Seen, elapsed: Duration, window: Duration) -> Health {
    let silent: Vec<&String> = seen.enabled.difference(&seen.published).collect();
    if seen.ready && seen.online && silent.is_empty() {
        return Health::Healthy;
    }
    if let Some(missing @ SourceError::Missing(_)) = seen.source_error.as_ref().filter(|_| !silent.is_empty()) {
        return Health::Unhealthy(format!(
            "not healthy: {} and no destination can publish without it ({})",
            missing,
            silent.iter().map(|name| format!("{name:?}")).collect::<Vec<_>>().join(", ")
        ));
    }
    if elapsed < window {
        return Health::Waiting;
    }
    let mut missing = Vec::new();
    if !seen.ready {
        missing.push("the service never became ready".to_string());
    }
    if !seen.online {
        missing.push("the box was not online".to_string());
    }
    for name in &silent {
        missing.push(match seen.errors.iter().find(|(n, _)| n == *name) {
            Some((_, e)) => format!("destination {name:?} never published ({e})"),
            None => format!("destination {name:?} never published"),
        });
    }
    if let Some(e) = seen.source_error.as_ref().filter(|_| !silent.is_empty()) {
        missing.push(format!("the camera/encoder side failed ({e})"));
    }
    Health::Unhealthy(format!("not healthy within {} s: {}", window.as_secs(), missing.join("; ")))
}

/// Whether an installed update may reboot the box now: never in the middle of a live
/// stream unless the policy says "now" (a person reboots with `makespacelive update reboot`).
pub fn may_reboot(policy: RebootPolicy, state: BoxState) -> bool {
    match policy {
        RebootPolicy::Now => true,
        RebootPolicy::WhenIdle => state != BoxState::Streaming,
        RebootPolicy::Never => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::DestinationStatus;
    use crate::update::record::Origin;

    fn pending() -> Pending {
        Pending {
            origin: Origin::File { path: "/data/x.raucb".into() },
            from_version: "0.1.0".into(),
            to_version: "0.2.0".into(),
            from_slot: "A".into(),
            expect_slot: "B".into(),
            boot_id: "boot-1".into(),
            installed_at: 0,
            verifying: None,
            failure: None,
            outcome: None,
        }
    }

    #[test]
    fn a_boot_is_read_against_the_record() {
        let p = pending();
        assert_eq!(after_boot(None, "A", "boot-2"), AfterBoot::Ordinary);
        assert_eq!(after_boot(Some(p.clone()), "A", "boot-1"), AfterBoot::AwaitingReboot(p.clone()));
        assert_eq!(after_boot(Some(p.clone()), "B", "boot-2"), AfterBoot::Verify(p.clone()));
        let AfterBoot::RolledBack(back, why) = after_boot(Some(p.clone()), "A", "boot-2") else { panic!() };
        assert_eq!(back, p);
        assert!(why.contains("version 0.2.0 in slot B did not come up") && why.contains("back to slot A"), "{why}");
        let failed = Pending { failure: Some("not healthy within 300 s: the box was not online".into()), ..pending() };
        let AfterBoot::RolledBack(_, why) = after_boot(Some(failed), "A", "boot-3") else { panic!() };
        assert_eq!(why, "not healthy within 300 s: the box was not online; the box went back to slot A");
        let judged = Pending {
            outcome: Some(super::super::record::Outcome { success: true, details: String::new(), at: 0 }),
            ..pending()
        };
        assert_eq!(after_boot(Some(judged.clone()), "B", "boot-1"), AfterBoot::Report(judged));
    }

    fn status(
        ready: bool,
        mode: Mode,
        destinations: &[(&str, DestinationState, Option<&str>)],
    ) -> (StreamStatus, NetworkStatus) {
        let mut s = StreamStatus { ready, ..StreamStatus::default() };
        s.destinations = destinations
            .iter()
            .map(|(n, state, e)| DestinationStatus {
                name: n.to_string(),
                state: *state,
                last_error: e.map(Into::into),
                ..Default::default()
            })
            .collect();
        (s, NetworkStatus { mode, ..NetworkStatus::default() })
    }

    fn observe(seen: &mut Seen, (stream, network): (StreamStatus, NetworkStatus)) {
        seen.observe(&stream, &network);
    }

    #[test]
    fn healthy_needs_ready_online_and_every_destination_published_once() {
        let window = Duration::from_secs(300);
        let mut seen = Seen::default();
        observe(
            &mut seen,
            status(
                true,
                Mode::Online,
                &[("yt", DestinationState::Live, None), ("tw", DestinationState::Connecting, None)],
            ),
        );
        assert_eq!(judge(&seen, Duration::from_secs(10), window), Health::Waiting);
        // yt has published once: its later backoff does not undo that.
        observe(
            &mut seen,
            status(
                true,
                Mode::Online,
                &[("yt", DestinationState::Backoff, None), ("tw", DestinationState::Live, None)],
            ),
        );
        assert_eq!(judge(&seen, Duration::from_secs(20), window), Health::Healthy);
        let mut none = Seen::default();
        observe(&mut none, status(true, Mode::Unmanaged, &[("off", DestinationState::Disabled, None)]));
        assert_eq!(
            judge(&none, Duration::ZERO, window),
            Health::Healthy,
            "nothing configured: ready and online is enough"
        );
    }

    #[test]
    fn a_version_that_lacks_an_element_of_the_stream_is_judged_at_once() {
        let mut seen = Seen::default();
        let mut lacking = status(true, Mode::Online, &[("host", DestinationState::Waiting, None)]);
        lacking.0.source_error = Some(SourceError::Missing("rtmp2sink"));
        observe(&mut seen, lacking);
        assert_eq!(
            judge(&seen, Duration::from_secs(3), Duration::from_secs(300)),
            Health::Unhealthy(
                "not healthy: the GStreamer element rtmp2sink is not installed and no destination can publish \
                 without it (\"host\")"
                    .into()
            )
        );
        // With nothing to publish, nothing is missing.
        let mut idle = Seen::default();
        let mut nothing = status(true, Mode::Online, &[]);
        nothing.0.source_error = Some(SourceError::Missing("rtmp2sink"));
        observe(&mut idle, nothing);
        assert_eq!(judge(&idle, Duration::from_secs(3), Duration::from_secs(300)), Health::Healthy);
    }

    #[test]
    fn unhealthy_names_what_was_missing() {
        let mut seen = Seen::default();
        observe(
            &mut seen,
            status(
                true,
                Mode::AccessPoint,
                &[
                    ("yt", DestinationState::Backoff, Some("connection refused")),
                    ("tw", DestinationState::Connecting, None),
                ],
            ),
        );
        assert_eq!(judge(&seen, Duration::from_secs(299), Duration::from_secs(300)), Health::Waiting);
        assert_eq!(
            judge(&seen, Duration::from_secs(300), Duration::from_secs(300)),
            Health::Unhealthy(
                "not healthy within 300 s: the box was not online; destination \"tw\" never published; \
                 destination \"yt\" never published (connection refused)"
                    .into()
            )
        );
        let mut broken = Seen::default();
        let mut status = status(true, Mode::Online, &[("host", DestinationState::Waiting, None)]);
        status.0.source_error = Some(SourceError::Failed("the camera is gone".into()));
        observe(&mut broken, status);
        assert_eq!(judge(&broken, Duration::from_secs(299), Duration::from_secs(300)), Health::Waiting);
        let Health::Unhealthy(why) = judge(&broken, Duration::from_secs(300), Duration::from_secs(300)) else {
            panic!()
        };
        assert!(
            why.ends_with("destination \"host\" never published; the camera/encoder side failed (the camera is gone)"),
            "{why}"
        );
        let never = Seen::default();
        let Health::Unhealthy(why) = judge(&never, Duration::from_secs(300), Duration::from_secs(300)) else {
            panic!()
        };
        assert!(why.contains("the service never became ready"), "{why}");
    }

    #[test]
    fn reboots_wait_for_the_stream_to_end_unless_the_policy_says_now() {
        use RebootPolicy::*;
        assert!(may_reboot(WhenIdle, BoxState::Idle));
        assert!(may_reboot(WhenIdle, BoxState::Reconnecting));
        assert!(!may_reboot(WhenIdle, BoxState::Streaming));
        assert!(may_reboot(Now, BoxState::Streaming));
        assert!(!may_reboot(Never, BoxState::Idle));
    }
}
