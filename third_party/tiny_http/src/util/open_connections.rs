//! makespacelive: the connections open at once, in total and per client, counted by the
//! accept loop and released when a connection's thread is done with it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// How many connections may be open at once.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// In all (every connection holds a thread and a file).
    pub total: usize,
    /// From one client, as `client` groups addresses.
    pub per_client: usize,
    /// The client an address belongs to (an IPv6 /64 is one client).
    pub client: fn(IpAddr) -> IpAddr,
}

impl ConnectionLimits {
    /// Upstream's behaviour: no limit.
    pub const UNLIMITED: ConnectionLimits = ConnectionLimits { total: usize::MAX, per_client: usize::MAX, client: same };
}

fn same(ip: IpAddr) -> IpAddr {
    ip
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

pub struct OpenConnections {
    limits: ConnectionLimits,
    counts: Arc<Mutex<Counts>>,
}

/// One admitted connection; dropping it releases its place.
pub struct Slot {
    counts: Arc<Mutex<Counts>>,
    client: Option<IpAddr>,
}

impl OpenConnections {
    pub fn new(limits: ConnectionLimits) -> OpenConnections {
        OpenConnections { limits, counts: Arc::default() }
    }

    /// A place for a connection from `peer`, or none: over a limit. The box's own
    /// connections (loopback, a Unix socket) are counted in no limit.
    pub fn admit(&self, peer: Option<IpAddr>) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let client = peer.filter(|ip| !ip.is_loopback()).map(self.limits.client);
        if let Some(client) = client {
            let from_client = counts.by_client.get(&client).copied().unwrap_or(0);
            if counts.total >= self.limits.total || from_client >= self.limits.per_client {
                return None;
            }
            counts.total += 1;
            *counts.by_client.entry(client).or_insert(0) += 1;
        }
        Some(Slot { counts: self.counts.clone(), client })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(client) = self.client else { return };
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.by_client.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                counts.by_client.remove(&client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_release() {
        let open = OpenConnections::new(ConnectionLimits { total: 3, per_client: 2, client: same });
        let a: IpAddr = [192, 168, 1, 2].into();
        let b: IpAddr = [192, 168, 1, 3].into();
        let one = open.admit(Some(a)).unwrap();
        let _two = open.admit(Some(a)).unwrap();
        assert!(open.admit(Some(a)).is_none(), "per client");
        let _three = open.admit(Some(b)).unwrap();
        assert!(open.admit(Some(b)).is_none(), "in total");
        assert!(open.admit(Some([127, 0, 0, 1].into())).is_some(), "loopback exempt");
        drop(one);
        assert!(open.admit(Some(a)).is_some(), "released");
    }
}
