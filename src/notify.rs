//! systemd's notify protocol. Outside systemd (no NOTIFY_SOCKET) these do nothing.

use sd_notify::NotifyState;

pub fn ready() {
    let _ = sd_notify::notify(&[NotifyState::Ready]);
}

/// Sent only from the control loop: if the loop wedges, systemd restarts the service.
pub fn watchdog() {
    let _ = sd_notify::notify(&[NotifyState::Watchdog]);
}

pub fn status(line: &str) {
    let _ = sd_notify::notify(&[NotifyState::Status(line)]);
}
