//! The review's attacks on the web pages' availability, against the real binary: idle
//! connections until no file is left, slow bodies holding every handler, and `accept`
//! failing (which ended tiny_http's accept loop for good: "connection refused" until a
//! restart). Connections come from the host's own non-loopback address, as a stranger's
//! would (the box's own, loopback, are not counted: its watchdog probe goes that way).

mod app;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use app::{Service, exchange, free_port, test_settings};

/// An address of this host that is not loopback (CI's container has one).
fn stranger() -> IpAddr {
    nix::ifaddrs::getifaddrs()
        .unwrap()
        .filter_map(|i| i.address.and_then(|a| a.as_sockaddr_in().map(|v4| IpAddr::V4(v4.ip()))))
        .find(|ip| !ip.is_loopback())
        .expect("a non-loopback IPv4 address on this host (the attacks come from it)")
}

/// A set-up-less box listening on every address, started through `wrapper` if given.
fn start(wrapper: Option<Command>) -> Service {
    let port = free_port();
    let settings = test_settings(port, &[]).replace(&format!("127.0.0.1:{port}"), &format!("0.0.0.0:{port}"));
    let service = Service::start_with(&settings, port, &[], wrapper);
    service.wait_for("the web server", Duration::from_secs(20), |_| true);
    service
}

/// The files the service has open.
fn open_files(service: &Service) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", service.pid())).unwrap().count()
}

/// This test process may hold a thousand connections of its own.
fn more_files_here() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard.min(8192), hard).unwrap();
}

/// `GET /api/status` from `from` (connecting to it: the host's own address is the source).
fn status_code(port: u16, from: IpAddr) -> Option<u16> {
    let mut stream = TcpStream::connect((from, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(format!("GET /api/status HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes()).ok()?;
    let mut head = [0; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The review's: 508 idle connections took every file of the service (1024), and then
/// nothing was answered until a restart. Now a client gets 8, everyone 64 in all.
#[test]
fn a_thousand_idle_connections_take_no_more_than_their_share() {
    more_files_here();
    let service = start(None);
    let port = service.web_port;
    let from = stranger();
    let before = open_files(&service);
    let idle: Vec<TcpStream> = (0..1000).filter_map(|_| TcpStream::connect((from, port)).ok()).collect();
    std::thread::sleep(Duration::from_secs(1));
    let held = open_files(&service);
    eprintln!("service files: {before} before, {held} with {} idle connections offered", idle.len());
    // Each connection holds two files (tiny_http reads and writes through two handles).
    assert!(held <= before + 2 * 8 + 2, "{before} → {held} files: the per-client limit did not hold");
    // The box itself (and its watchdog probe) is answered beside them.
    assert_eq!(exchange(port, "GET /api/status HTTP/1.0\r\nHost: 127.0.0.1", b"").code, 200);
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_code(port, from) != Some(200) {
        assert!(Instant::now() < deadline, "the stranger is never served again");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The review's: four slow bodies held all four handler threads. Bodies arrive in their
/// connection's thread now; a normal request beside six slow ones is answered at once.
#[test]
fn slow_bodies_hold_no_handler() {
    let service = start(None);
    let port = service.web_port;
    let head = "POST /setup HTTP/1.1\r\nHost: 10.42.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 5000\r\n\r\npreset=cus";
    let mut slow: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream.write_all(head.as_bytes()).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        for stream in &mut slow {
            let _ = stream.write_all(b"t");
        }
        let started = Instant::now();
        let answer = exchange(port, "GET /api/status HTTP/1.0\r\nHost: 127.0.0.1", b"");
        assert_eq!(answer.code, 200);
        assert!(started.elapsed() < Duration::from_secs(2), "answered after {:?}", started.elapsed());
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `accept` failing (no file left) ended tiny_http's accept loop: from then on every
/// connection was refused. With 40 files, the box's own connections exhaust them; once
/// they close, it answers again.
#[test]
fn the_pages_answer_again_after_the_files_ran_out() {
    more_files_here();
    let mut wrapper = Command::new("prlimit");
    wrapper.args(["--nofile=40:40", "--"]);
    let mut service = start(Some(wrapper));
    let port = service.web_port;
    let own = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let flood: Vec<TcpStream> =
        (0..60).filter_map(|_| TcpStream::connect_timeout(&own, Duration::from_millis(500)).ok()).collect();
    std::thread::sleep(Duration::from_secs(2));
    // A connection takes two files: at the limit, the last one accepted may just have been
    // let go for want of its second (its `try_clone` failed), so within 3 of it.
    assert!(open_files(&service) >= 40 - 3, "the files did not run out: {}", open_files(&service));
    drop(flood);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    while app::http_get(port, "/api/status").is_none() {
        assert!(Instant::now() < deadline, "never answered again:\n{}", service.output());
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("answered again {:?} after the flood closed", started.elapsed());
    assert!(service.is_running());
}
