//! How many bytes the server has acknowledged, read from the kernel (`TCP_INFO`) on this
//! process's own sockets. Bytes written to a socket prove nothing: on a black-holed
//! network the send buffer keeps taking data for many seconds (megabytes, on a link that
//! was fast); only the peer's ACKs show the stream is getting through.

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::RawFd;

use nix::libc;
use nix::sys::socket::{SockaddrStorage, getpeername};

/// `host:port` of an RTMP(S) location, with the schemes' default ports.
pub fn server_address(location: &str) -> Option<String> {
    let (scheme, rest) = location.split_once("://")?;
    let default_port = match scheme {
        "rtmp" => 1935,
        "rtmps" => 443,
        _ => return None,
    };
    let authority = rest.split('/').next()?;
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    Some(if has_port { authority.to_string() } else { format!("{authority}:{default_port}") })
}

/// Resolves `host:port` (in the caller's thread: it may block on DNS).
pub fn resolve(address: &str) -> Vec<SocketAddr> {
    address.to_socket_addrs().map(|a| a.collect()).unwrap_or_default()
}

/// Sum of bytes acknowledged on this process's TCP connections to any of `peers`;
/// `None` when there is no such connection.
pub fn bytes_acked_to(peers: &[SocketAddr]) -> Option<u64> {
    let mut total = None;
    for fd in socket_fds() {
        let Ok(peer) = getpeername::<SockaddrStorage>(fd) else { continue };
        if !peers.iter().any(|p| same_address(&peer, p)) {
            continue;
        }
        if let Some(acked) = tcp_bytes_acked(fd) {
            *total.get_or_insert(0) += acked;
        }
    }
    total
}

fn socket_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    dir.filter_map(|e| e.ok())
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")))
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

fn same_address(storage: &SockaddrStorage, addr: &SocketAddr) -> bool {
    match addr {
        SocketAddr::V4(a) => storage.as_sockaddr_in().is_some_and(|s| s.ip() == *a.ip() && s.port() == a.port()),
        SocketAddr::V6(a) => storage.as_sockaddr_in6().is_some_and(|s| s.ip() == *a.ip() && s.port() == a.port()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn addresses_with_default_ports() {
        assert_eq!(server_address("rtmp://a.rtmp.youtube.com/live2/KEY").as_deref(), Some("a.rtmp.youtube.com:1935"));
        assert_eq!(server_address("rtmps://h/rtmp/KEY").as_deref(), Some("h:443"));
        assert_eq!(server_address("rtmp://127.0.0.1:19350/live").as_deref(), Some("127.0.0.1:19350"));
        assert_eq!(server_address("rtmp://[::1]/live").as_deref(), Some("[::1]:1935"));
        assert_eq!(server_address("http://h/x"), None);
    }

    #[test]
    fn counts_what_the_peer_acknowledged_on_our_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        assert_eq!(bytes_acked_to(&[server]), None, "no connection yet");
        let mut client = std::net::TcpStream::connect(server).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        client.write_all(&[7u8; 10_000]).unwrap();
        let mut got = vec![0u8; 10_000];
        accepted.read_exact(&mut got).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while bytes_acked_to(&[server]).unwrap_or(0) < 10_000 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(bytes_acked_to(&[server]).unwrap() >= 10_000);
        let elsewhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(bytes_acked_to(&[elsewhere]), None);
    }
}
