//! A TCP proxy on loopback in front of a server (TLS passes through untouched) that cuts
//! one connection, once: the first whose answer passes `cut_after` bytes. It counts the
//! bytes it forwarded to clients, so a test can tell a resumed download from one started
//! over. While `refusing`, it closes every connection at once (the server is "down") and
//! counts them. Drop stops accepting.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

pub struct CutProxy {
    pub port: u16,
    shared: Arc<Shared>,
}

struct Shared {
    cut_after: u64,
    cuts: AtomicU32,
    forwarded: AtomicU64,
    refusing: AtomicBool,
    refused: AtomicU32,
    stop: AtomicBool,
}

impl CutProxy {
    pub fn start(target: u16, cut_after: u64) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            cut_after,
            cuts: AtomicU32::new(0),
            forwarded: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
            refused: AtomicU32::new(0),
            stop: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                if accepting.refusing.load(Ordering::SeqCst) {
                    accepting.refused.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(("127.0.0.1", target))) else { continue };
                let shared = accepting.clone();
                std::thread::spawn(move || forward(client, server, &shared));
            }
        });
        CutProxy { port, shared }
    }

    /// How many connections were cut (0 or 1).
    pub fn cuts(&self) -> u32 {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Closes every new connection at once (`true`) or forwards again.
    pub fn refuse(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// How many connections were closed while refusing.
    pub fn refused(&self) -> u32 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Bytes sent from the server to clients, over all connections.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }
}

fn forward(client: TcpStream, server: TcpStream, shared: &Shared) {
    let (mut up_from, mut up_to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_from, &mut up_to);
        let _ = up_to.shutdown(Shutdown::Write);
    });
    let (mut from, mut to) = (server, client);
    let mut buf = [0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        sent += n as u64;
        if sent > shared.cut_after && shared.cuts.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        shared.forwarded.fetch_add(n as u64, Ordering::SeqCst);
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
