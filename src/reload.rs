//! SIGHUP asks the service to re-read its settings and rebuild its pipelines, as
//! `systemctl reload` does and as the settings page will after saving.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hangup(_: nix::libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

pub fn install() -> Result<(), String> {
    let action = SigAction::new(SigHandler::Handler(on_hangup), SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGHUP, &action) }.map(|_| ()).map_err(|e| format!("cannot handle SIGHUP: {e}"))
}

/// True once per SIGHUP received.
pub fn requested() -> bool {
    REQUESTED.swap(false, Ordering::SeqCst)
}

/// Asks for a reload from inside the process (the portal after saving settings).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}
