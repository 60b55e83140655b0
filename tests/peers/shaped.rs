//! A constrained uplink: two network namespaces, "box" and "server", joined by a veth
//! pair whose box end is rate-limited with `tc tbf` (the box's egress is its upload; the
//! way back is not shaped). And a viewer: ffmpeg decoding a stream, counting frames and
//! decode errors as they come.
//!
//! Needs root, ip and tc (iproute2), ffmpeg; a missing one fails the test.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::netns::{Netns, ip, tc, unique};

/// The box's and the server's address on the link (private to the two namespaces).
pub const BOX_ADDRESS: &str = "10.231.0.1";
pub const SERVER_ADDRESS: &str = "10.231.0.2";

pub struct ShapedLink {
    box_if: String,
    pub box_ns: Arc<Netns>,
    pub server_ns: Arc<Netns>,
}

impl ShapedLink {
    /// The link with the box's upload limited to `kbit_s`.
    pub fn new(kbit_s: u32) -> ShapedLink {
        let box_ns = Arc::new(Netns::add(unique("mslupbox")));
        let server_ns = Arc::new(Netns::add(unique("mslupsrv")));
        let (box_if, server_if) = (unique("mslub"), unique("mslus"));
        // Both ends made straight inside their namespaces: nothing touches the host's.
        ip(&[
            "link",
            "add",
            &box_if,
            "netns",
            &box_ns.0,
            "type",
            "veth",
            "peer",
            "name",
            &server_if,
            "netns",
            &server_ns.0,
        ]);
        for (ns, link, address) in [(&box_ns, &box_if, BOX_ADDRESS), (&server_ns, &server_if, SERVER_ADDRESS)] {
            ip(&["-n", &ns.0, "address", "add", &format!("{address}/24"), "dev", link]);
            ip(&["-n", &ns.0, "link", "set", link, "up"]);
        }
        let link = ShapedLink { box_if, box_ns, server_ns };
        link.shape("add", kbit_s);
        link
    }

    /// Changes the upload limit in place (`tc qdisc change`: connections stay up).
    pub fn set_rate(&self, kbit_s: u32) {
        self.shape("change", kbit_s);
    }

    /// A token bucket of `kbit_s`; 32 KB of burst is above the rate's bytes per timer
    /// tick at 10 Mbit/s and several full-size packets at 1 Mbit/s; at most 100 ms of
    /// packets queue in it (a venue access point queues as much), the rest is dropped
    /// and TCP backs off.
    fn shape(&self, verb: &str, kbit_s: u32) {
        let rate = format!("{kbit_s}kbit");
        tc(&[
            "-n",
            &self.box_ns.0,
            "qdisc",
            verb,
            "dev",
            &self.box_if,
            "root",
            "tbf",
            "rate",
            &rate,
            "burst",
            "32kb",
            "latency",
            "100ms",
        ]);
    }
}

/// ffmpeg decoding a live stream's video to nowhere: frames decoded so far (its
/// `-progress` report, twice a second) and the errors it printed, each with when it
/// was seen. Killed on drop.
pub struct Viewer {
    child: Child,
    progress: Arc<Mutex<Vec<(Instant, u64)>>>,
    errors: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Viewer {
    /// Starts watching `url` from inside `ns`.
    pub fn start(ns: &Netns, url: &str) -> Viewer {
        let mut child = ns
            .command("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-progress", "pipe:1", "-stats_period", "0.5"])
            .args(["-i", url, "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "null", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ffmpeg is installed (scripts/setup)");
        let progress = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let seen = progress.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(Ok(frame)) = line.strip_prefix("frame=").map(|n| n.trim().parse()) {
                    seen.lock().unwrap().push((Instant::now(), frame));
                }
            }
        });
        let said = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                said.lock().unwrap().push((Instant::now(), line));
            }
        });
        Viewer { child, progress, errors }
    }

    /// Frames decoded a second over `from..to`: the count ffmpeg had reported by `to`
    /// less the count by `from`, over the whole span (a viewer that stalls or dies
    /// counts as decoding nothing). None before its first report.
    pub fn frames_per_second(&self, from: Instant, to: Instant) -> Option<f64> {
        let progress = self.progress.lock().unwrap();
        let by = |t: Instant| progress.iter().take_while(|(at, _)| *at <= t).last().map(|(_, frames)| *frames);
        let decoded = by(to)? - by(from).unwrap_or(0);
        Some(decoded as f64 / to.duration_since(from).as_secs_f64())
    }

    /// What ffmpeg printed (errors only: `-loglevel error`) inside `from..to`.
    pub fn errors(&self, from: Instant, to: Instant) -> Vec<String> {
        let errors = self.errors.lock().unwrap();
        errors.iter().filter(|(at, _)| (from..=to).contains(at)).map(|(_, line)| line.clone()).collect()
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
