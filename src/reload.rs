//! SIGHUP (`systemctl reload`, or a hand edit of the settings file) re-reads the settings
//! into the ones in force.
//!
//! Invariant: SIGHUP is blocked in every thread of the service and taken only by the
//! thread `on_hangup` starts (sigwait), so no handler and no global flag is needed.
//! Boundary: `block` first thing in `main` (threads inherit the mask), `on_hangup` once.

use nix::sys::signal::{SigSet, Signal};

use crate::config::Settings;

fn hangup() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGHUP);
    set
}

/// Blocks SIGHUP in this thread, and so in every thread started from it afterwards.
pub fn block() -> Result<(), String> {
    hangup().thread_block().map_err(|e| format!("cannot block SIGHUP: {e}"))
}

/// Starts the thread that reloads the settings at every SIGHUP.
pub fn on_hangup(settings: Settings) -> Result<(), String> {
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            let set = hangup();
            loop {
                match set.wait() {
                    Ok(_) => {
                        tracing::info!("settings: SIGHUP, reading the settings files again");
                        settings.reload();
                    }
                    Err(e) => {
                        tracing::error!("settings: waiting for SIGHUP failed ({e}); reloads only through the web now");
                        return;
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the SIGHUP thread: {e}"))
}
