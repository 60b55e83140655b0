//! A phone's browser keeps its connection to the box open: every answer on it must come
//! at once, not after the client's delayed ACK (40 ms on Linux, up to 200 ms elsewhere),
//! which is what Nagle's algorithm costs an answer written in two parts.

mod app;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use app::{Service, free_port, test_settings};

#[test]
fn answers_on_a_kept_alive_connection_are_not_held_back() {
    let port = free_port();
    let service = Service::start(&test_settings(port, &[]), port);
    service.wait_for("the web pages", Duration::from_secs(10), |s| s["network"].is_object());
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut times = Vec::new();
    for path in ["/"; 12] {
        let start = Instant::now();
        // One write, as a browser sends a request (write! would send it in pieces).
        writer.write_all(format!("GET {path} HTTP/1.1\r\nHost: 10.42.0.1\r\n\r\n").as_bytes()).unwrap();
        let mut length = 0;
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            line.clear();
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert!(length > 1024, "{path}: an answer larger than one write ({length} bytes)");
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(median < Duration::from_millis(20), "answers took {times:?}");
}
