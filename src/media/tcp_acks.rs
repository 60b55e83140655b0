//! How many bytes the server has acknowledged, read from the kernel (`TCP_INFO`) on this
//! process's own sockets, and how many still wait in the socket (`SIOCOUTQ`). Bytes
//! written to a socket prove nothing: on a black-holed network the send buffer keeps
//! taking data for many seconds (megabytes, on a link that was fast); only the peer's
//! ACKs show the stream is getting through.
//!
//! A claimed connection gets `TCP_NOTSENT_LOWAT`: the kernel then takes little more than
//! it can send soon, so a slow link's queue builds in front of the socket, where whole
//! GOPs can be dropped, rather than in a send buffer that only grows the delay.
//!
//! Several destinations may stream to one server (same host and port), each over its own
//! connection of this process. Each destination therefore claims one connection, process
//! wide, and counts only that one's ACKs: a stalled connection is not hidden by a
//! flowing one beside it.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::RawFd;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock, PoisonError};

use nix::libc;
use nix::sys::socket::{SockaddrStorage, getpeername, getsockname};
use url::Url;

use crate::config::rtmp_default_port;

/// `host:port` of an RTMP(S) location, with the schemes' default ports.
pub fn server_address(location: &str) -> Option<String> {
    let url = Url::parse(location).ok()?;
    let default_port = rtmp_default_port(url.scheme())?;
    let host = url.host_str().filter(|h| !h.is_empty())?;
    Some(format!("{host}:{}", url.port().unwrap_or(default_port)))
}

/// Resolves `host:port` (in the caller's thread: it may block on DNS).
pub fn resolve(address: &str) -> Vec<SocketAddr> {
    address.to_socket_addrs().map(|a| a.collect()).unwrap_or_default()
}

/// One TCP connection: the pair of addresses is unique while it lives (the kernel may
/// give one local port to connections to different servers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Endpoints {
    local: SocketAddr,
    peer: SocketAddr,
}

/// The connections some `AckCounter` counts, process wide.
static CLAIMED: LazyLock<Mutex<HashSet<Endpoints>>> = LazyLock::new(Mutex::default);

fn claimed() -> MutexGuard<'static, HashSet<Endpoints>> {
    CLAIMED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The kernel counts the SYN as one byte acknowledged.
const SYN: u64 = 1;
/// Unsent bytes the kernel takes beyond what is in flight: about 0.1 s at 1 Mbit/s.
const NOTSENT_LOWAT: libc::c_int = 16 * 1024;

/// What the kernel says of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Bytes the server acknowledged (the SYN counts as one).
    pub acked: u64,
    /// Bytes written to the socket and not yet acknowledged, sent or not.
    pub unacked: u64,
}

/// One of this process's connections to the server.
struct Connection {
    endpoints: Endpoints,
    fd: RawFd,
    delivery: Delivery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// No connection to the server that is nobody else's has carried data yet.
    Waiting,
    Counting(Endpoints),
    /// The claimed connection closed; another one to the server is someone else's.
    Gone,
}

/// Counts the bytes the server acknowledged on one connection: the first to carry data
/// that no other counter has claimed (not a reachability probe, which carries none).
/// Dropping the counter releases the claim.
pub struct AckCounter {
    /// The server's addresses, once resolved (off the control loop: DNS may block).
    peers: Arc<OnceLock<Vec<SocketAddr>>>,
    claim: Claim,
}

impl AckCounter {
    pub fn new(peers: Arc<OnceLock<Vec<SocketAddr>>>) -> Self {
        AckCounter { peers, claim: Claim::Waiting }
    }

    /// The claimed connection's delivery; `None` before it is found and after it closed.
    pub fn delivery(&mut self) -> Option<Delivery> {
        let peers = self.peers.get()?;
        let connections = connections_to(peers);
        let acked: Vec<(Endpoints, u64)> = connections.iter().map(|c| (c.endpoints, c.delivery.acked)).collect();
        let mut claimed = claimed();
        let claim = next_claim(self.claim, &acked, &claimed);
        if claim != self.claim {
            if let Claim::Counting(mine) = self.claim {
                claimed.remove(&mine);
            }
            if let Claim::Counting(mine) = claim {
                claimed.insert(mine);
                if let Some(c) = connections.iter().find(|c| c.endpoints == mine) {
                    limit_unsent(c.fd);
                }
            }
            self.claim = claim;
        }
        let Claim::Counting(mine) = self.claim else { return None };
        connections.iter().find(|c| c.endpoints == mine).map(|c| c.delivery)
    }
}

impl Drop for AckCounter {
    fn drop(&mut self) {
        if let Claim::Counting(mine) = self.claim {
            claimed().remove(&mine);
        }
    }
}

/// The pure decision: given this process's connections to the server (in fd order,
/// which is roughly oldest first) with the bytes each had acknowledged, and those
/// claimed by any counter, what `claim` becomes.
fn next_claim(claim: Claim, connections: &[(Endpoints, u64)], claimed: &HashSet<Endpoints>) -> Claim {
    match claim {
        Claim::Waiting => connections
            .iter()
            .find(|(c, acked)| *acked > SYN && !claimed.contains(c))
            .map_or(Claim::Waiting, |(c, _)| Claim::Counting(*c)),
        Claim::Counting(mine) if connections.iter().any(|(c, _)| *c == mine) => claim,
        Claim::Counting(_) | Claim::Gone => Claim::Gone,
    }
}

/// This process's TCP connections to any of `peers`, in fd order, with their delivery.
fn connections_to(peers: &[SocketAddr]) -> Vec<Connection> {
    socket_fds()
        .into_iter()
        .filter_map(|fd| {
            let peer = socket_addr(&getpeername::<SockaddrStorage>(fd).ok()?)?;
            if !peers.iter().any(|p| p.ip() == peer.ip() && p.port() == peer.port()) {
                return None;
            }
            let local = socket_addr(&getsockname::<SockaddrStorage>(fd).ok()?)?;
            let delivery = Delivery { acked: tcp_bytes_acked(fd)?, unacked: send_queue(fd)? };
            Some(Connection { endpoints: Endpoints { local, peer }, fd, delivery })
        })
        .collect()
}

fn socket_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    let mut fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok())
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")))
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
    match (storage.as_sockaddr_in(), storage.as_sockaddr_in6()) {
        (Some(v4), _) => Some(SocketAddr::from(*v4)),
        (None, Some(v6)) => Some(std::net::SocketAddrV6::from(*v6).into()),
        (None, None) => None,
    }
}

fn tcp_bytes_acked(fd: RawFd) -> Option<u64> {
    // SAFETY: TCP_INFO fills at most `len` bytes of a zeroed tcp_info; fd may have been
    // closed meanwhile, in which case getsockopt fails and nothing is read.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        );
        (rc == 0).then_some(info.tcpi_bytes_acked)
    }
}

/// Bytes in the socket's send queue not yet acknowledged (`SIOCOUTQ`).
fn send_queue(fd: RawFd) -> Option<u64> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int; a closed fd makes the ioctl fail, nothing is read.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued as *mut libc::c_int) };
    (rc == 0).then(|| u64::try_from(queued).unwrap_or(0))
}

/// Best effort: without it the stream still flows, with more delay on a slow link.
fn limit_unsent(fd: RawFd) {
    let lowat = NOTSENT_LOWAT;
    // SAFETY: sets one int option on our own socket; a closed fd makes the call fail.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&lowat as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!("TCP_NOTSENT_LOWAT: {}", std::io::Error::last_os_error());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    #[test]
    fn addresses_with_default_ports() {
        assert_eq!(server_address("rtmp://a.rtmp.youtube.com/live2/KEY").as_deref(), Some("a.rtmp.youtube.com:1935"));
        assert_eq!(server_address("rtmps://h/rtmp/KEY").as_deref(), Some("h:443"));
        assert_eq!(server_address("rtmp://127.0.0.1:19350/live").as_deref(), Some("127.0.0.1:19350"));
        assert_eq!(server_address("rtmp://[::1]/live").as_deref(), Some("[::1]:1935"));
        assert_eq!(server_address("RTMP://user@h:1936/live?k").as_deref(), Some("h:1936"));
        assert_eq!(server_address("http://h/x"), None);
        assert_eq!(server_address("rtmp:///live"), None);
    }

    fn endpoints(local_port: u16) -> Endpoints {
        Endpoints {
            local: SocketAddr::from(([127, 0, 0, 1], local_port)),
            peer: SocketAddr::from(([10, 0, 0, 1], 1935)),
        }
    }

    #[test]
    fn claims_the_first_connection_that_carried_data_and_is_nobody_elses() {
        let (a, b, c) = (endpoints(40001), endpoints(40002), endpoints(40003));
        let none = HashSet::new();
        assert_eq!(next_claim(Claim::Waiting, &[], &none), Claim::Waiting);
        assert_eq!(next_claim(Claim::Waiting, &[(a, SYN)], &none), Claim::Waiting, "no data yet: a probe?");
        let others = HashSet::from([a]);
        assert_eq!(next_claim(Claim::Waiting, &[(a, 900), (b, 0), (c, 70)], &others), Claim::Counting(c));
        assert_eq!(next_claim(Claim::Counting(c), &[(a, 900), (c, 80)], &others), Claim::Counting(c));
    }

    #[test]
    fn a_closed_connection_is_gone_for_good() {
        let (a, b) = (endpoints(40001), endpoints(40002));
        assert_eq!(next_claim(Claim::Counting(a), &[(b, 500)], &HashSet::new()), Claim::Gone);
        assert_eq!(next_claim(Claim::Gone, &[(a, 500), (b, 500)], &HashSet::new()), Claim::Gone);
    }

    fn counter_to(server: SocketAddr) -> AckCounter {
        AckCounter::new(Arc::new(OnceLock::from(vec![server])))
    }

    /// Writes `n` bytes from `client` and reads them all on `accepted`.
    fn deliver(client: &mut TcpStream, accepted: &mut TcpStream, n: usize) {
        client.write_all(&vec![7u8; n]).unwrap();
        accepted.read_exact(&mut vec![0u8; n]).unwrap();
    }

    /// Polls until the counter reports `want` (ACKs arrive a moment after the data).
    fn settles_at(counter: &mut AckCounter, want: Option<u64>) -> Option<u64> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = counter.delivery().map(|d| d.acked);
            if got == want || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn counts_what_the_peer_acknowledged_on_our_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let mut counter = counter_to(server);
        assert_eq!(counter.delivery().map(|d| d.acked), None, "no connection yet");
        let mut client = TcpStream::connect(server).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        deliver(&mut client, &mut accepted, 10_000);
        assert_eq!(settles_at(&mut counter, Some(SYN + 10_000)), Some(SYN + 10_000));
        let mut elsewhere = counter_to("127.0.0.1:9".parse().unwrap());
        assert_eq!(elsewhere.delivery(), None);
        drop(client);
        assert_eq!(settles_at(&mut counter, None), None, "the connection closed");
    }

    #[test]
    fn two_counters_on_one_server_each_count_their_own_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let (mut first, mut second) = (counter_to(server), counter_to(server));
        let mut one = TcpStream::connect(server).unwrap();
        let (mut one_accepted, _) = listener.accept().unwrap();
        deliver(&mut one, &mut one_accepted, 10_000);
        assert_eq!(
            settles_at(&mut first, Some(SYN + 10_000)),
            Some(SYN + 10_000),
            "the first claims the only connection"
        );
        assert_eq!(second.delivery().map(|d| d.acked), None, "the only connection is the first's");

        let mut two = TcpStream::connect(server).unwrap();
        let (mut two_accepted, _) = listener.accept().unwrap();
        deliver(&mut two, &mut two_accepted, 50_000);
        deliver(&mut one, &mut one_accepted, 1_000);
        assert_eq!(settles_at(&mut second, Some(SYN + 50_000)), Some(SYN + 50_000), "not the sum, not the first's");
        assert_eq!(settles_at(&mut first, Some(SYN + 11_000)), Some(SYN + 11_000));

        // A counter dropped releases its connection to the next one.
        drop(first);
        let mut third = counter_to(server);
        assert_eq!(settles_at(&mut third, Some(SYN + 11_000)), Some(SYN + 11_000));
        assert_eq!(second.delivery().map(|d| d.acked), Some(SYN + 50_000));
    }

    #[test]
    fn what_waits_in_the_socket_is_counted_and_the_claimed_socket_holds_little_unsent() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let mut counter = counter_to(server);
        let mut client = TcpStream::connect(server).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        deliver(&mut client, &mut accepted, 1000);
        assert_eq!(settles_at(&mut counter, Some(SYN + 1000)), Some(SYN + 1000), "claimed");
        // The server reads nothing more: its window fills, then our socket's queue.
        client.set_nonblocking(true).unwrap();
        let mut written = 1000u64;
        let chunk = vec![1u8; 4096];
        while let Ok(n) = client.write(&chunk) {
            written += n as u64;
        }
        std::thread::sleep(Duration::from_millis(200));
        let d = counter.delivery().unwrap();
        assert_eq!(d.acked + d.unacked, SYN + written, "acknowledged + waiting = all written: {d:?}");
        assert!(d.unacked > 0, "{d:?}");
        let mut lowat: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: reads one int option of our own open socket.
        let rc = unsafe {
            libc::getsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&client),
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                (&mut lowat as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!((rc, lowat), (0, NOTSENT_LOWAT), "the claimed socket takes little unsent data");
    }
}
