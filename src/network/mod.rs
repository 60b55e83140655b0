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

//!
//! `types`: what the others read and send; `handle`: the `Network` handle; `worker`: the
//! thread and its NetworkManager session; `nm`/`nm_types`: the D-Bus edge.

mod handle;
mod led;
mod nm;
mod nm_types;
mod provisioning;
mod types;
mod worker;

pub use handle::{Links, Network};
pub use types::*;
