//! Real peers on loopback: nginx with the RTMP module (and its stream module as a TLS
//! proxy in front of it), a test CA made with openssl, ffprobe to see what arrived,
//! NetworkManager's D-Bus API (`nm`), a phone in headless Chromium (`webdriver`), gooseBit
//! as a hawkBit server (`goosebit`), a misbehaving HTTPS file server (`http_server`), a
//! TCP proxy that cuts a connection once (`cut_proxy`), Debian's `rauc service` (`rauc`)
//! and a box under update made of it and the service binary (`updatebox`), network
//! namespaces (`netns`) and a rate-limited link between two of them with a viewer at
//! its far end (`shaped`).
#![allow(dead_code)]

pub mod cut_proxy;
pub mod goosebit;
pub mod http_server;
pub mod netns;
pub mod nm;
pub mod rauc;
pub mod shaped;
pub mod updatebox;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::app::{free_port, http_get};
use netns::Netns;

const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// An nginx of its own, on free loopback ports, with its config in a temp dir; in the
/// host's network or in a network namespace of the test's.
struct Nginx {
    dir: tempfile::TempDir,
    child: Option<Child>,
    netns: Option<Arc<Netns>>,
}

impl Nginx {
    /// `config_body` gets the temp dir, for paths nginx must write to.
    fn new(module: &str, config_body: impl FnOnce(&Path) -> String) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let body = config_body(dir.path());
        let config = format!(
            "load_module {module};\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\nevents {{}}\n{body}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
        Nginx { dir, child: None, netns: None }
    }

    fn start(&mut self, port: u16) {
        let mut command = match &self.netns {
            Some(ns) => ns.command("nginx"),
            None => Command::new("nginx"),
        };
        let child = command
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.dir.path().join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("error.log")).unwrap())
            .spawn()
            .expect("nginx is installed (scripts/setup)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.accepts(port) {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn accepts(&self, port: u16) -> bool {
        match &self.netns {
            Some(ns) => ns.accepts(port),
            None => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        }
    }

    fn http_get(&self, port: u16, path: &str) -> Option<String> {
        match &self.netns {
            Some(ns) => ns.http_get(port, path),
            None => http_get(port, path),
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM is nginx's fast shutdown: clients are dropped at once.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct RtmpServer {
    nginx: Nginx,
    pub port: u16,
    stat_port: u16,
}

impl RtmpServer {
    pub fn start() -> RtmpServer {
        RtmpServer::start_on(None)
    }

    /// An RTMP server inside `netns`, listening on all its addresses (the statistics
    /// page on its loopback only); `url` names loopback, which only programs run in
    /// `netns` reach.
    pub fn start_in(netns: Arc<Netns>) -> RtmpServer {
        RtmpServer::start_on(Some(netns))
    }

    fn start_on(netns: Option<Arc<Netns>>) -> RtmpServer {
        let (port, stat_port) = (free_port(), free_port());
        let listen = if netns.is_some() { "0.0.0.0" } else { "127.0.0.1" };
        let mut nginx = Nginx::new(RTMP_MODULE, |dir| {
            let t = dir.display();
            format!(
                "rtmp {{ server {{ listen {listen}:{port}; drop_idle_publisher 3s;\n\
               application live {{ live on; record off; }} }} }}\n\
             http {{ access_log off; client_body_temp_path {t}; proxy_temp_path {t}; fastcgi_temp_path {t};\n\
               uwsgi_temp_path {t}; scgi_temp_path {t};\n\
               server {{ listen 127.0.0.1:{stat_port}; location /stat {{ rtmp_stat all; }} }} }}"
            )
        });
        nginx.netns = netns;
        nginx.start(port);
        RtmpServer { nginx, port, stat_port }
    }

    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live", self.port)
    }

    pub fn stop(&mut self) {
        self.nginx.stop();
    }

    pub fn restart(&mut self) {
        self.nginx.stop();
        self.nginx.start(self.port);
    }

    /// Stream names being published now, from nginx-rtmp's statistics page.
    pub fn publishing(&self) -> Vec<String> {
        let Some(xml) = self.nginx.http_get(self.stat_port, "/stat") else { return Vec::new() };
        xml.split("<stream>")
            .skip(1)
            .filter(|s| s.contains("<publishing/>"))
            .filter_map(|s| Some(s.split("<name>").nth(1)?.split("</name>").next()?.to_string()))
            .collect()
    }

    pub fn wait_publishing(&self, key: &str, timeout: Duration) -> bool {
        wait(timeout, || self.publishing().iter().any(|k| k == key))
    }

    pub fn wait_not_publishing(&self, key: &str, timeout: Duration) -> bool {
        wait(timeout, || !self.publishing().iter().any(|k| k == key))
    }

    /// The publishing client of the stream `key` as nginx-rtmp's statistics page shows
    /// it: its connection id and how long it has been connected (ms).
    pub fn publisher(&self, key: &str) -> Option<(u64, u64)> {
        let xml = self.nginx.http_get(self.stat_port, "/stat")?;
        let stream = xml.split("<stream>").skip(1).find(|s| s.contains(&format!("<name>{key}</name>")))?;
        let client = stream.split("<client>").skip(1).find(|c| c.contains("<publishing/>"))?;
        let field =
            |name: &str| client.split(&format!("<{name}>")).nth(1)?.split(&format!("</{name}>")).next()?.parse().ok();
        Some((field("id")?, field("time")?))
    }

    /// Bytes received for the stream `key`, if it is being published.
    pub fn bytes_in(&self, key: &str) -> Option<u64> {
        let xml = self.nginx.http_get(self.stat_port, "/stat")?;
        let stream = xml.split("<stream>").skip(1).find(|s| s.contains(&format!("<name>{key}</name>")))?;
        stream.split("<bytes_in>").nth(1)?.split("</bytes_in>").next()?.parse().ok()
    }
}

pub fn wait(timeout: Duration, ok: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// TLS in front of an RTMP server (nginx's stream module), with a certificate for
/// `localhost` signed by a test CA made here.
pub struct TlsProxy {
    nginx: Nginx,
    pub port: u16,
    ca: PathBuf,
}

impl TlsProxy {
    pub fn start(backend_port: u16) -> TlsProxy {
        let port = free_port();
        let mut nginx = Nginx::new(STREAM_MODULE, |dir| {
            make_test_ca(dir);
            let c = dir.display();
            format!(
                "stream {{ server {{ listen 127.0.0.1:{port} ssl; proxy_pass 127.0.0.1:{backend_port};\n\
                   ssl_certificate {c}/server.crt; ssl_certificate_key {c}/server.key; }} }}"
            )
        });
        nginx.start(port);
        let ca = nginx.dir.path().join("ca.crt");
        TlsProxy { nginx, port, ca }
    }

    pub fn url(&self) -> String {
        format!("rtmps://localhost:{}/live", self.port)
    }

    pub fn ca_cert(&self) -> &Path {
        &self.ca
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl is installed");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn make_test_ca(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=makespacelive test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
}

/// A command that runs the service in a private mount namespace where the system CA
/// bundle also holds `ca`. rtmp2sink's TLS (glib-networking, GnuTLS) trusts only the
/// system bundle, and nothing on the host is changed this way.
pub fn command_trusting_ca(ca: &Path) -> Command {
    let bundle = ca.with_file_name("bundle-with-test-ca.crt");
    let mut text = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    text.push_str(&std::fs::read_to_string(ca).unwrap());
    std::fs::write(&bundle, text).unwrap();
    command_with_files(&[(&bundle, "/etc/ssl/certs/ca-certificates.crt")])
}

/// A command that runs the service where names resolve only through `/etc/hosts`: its
/// resolver is loopback, where none answers. A test that saves a real service's URL
/// (YouTube's) can then never reach it.
pub fn command_without_dns(dir: &Path) -> Command {
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n").unwrap();
    command_with_files(&[(&resolv, "/etc/resolv.conf")])
}

/// A command that runs what is appended to it in a private mount namespace where each
/// file is bind-mounted over a system path: nothing on the host changes.
fn command_with_files(binds: &[(&Path, &str)]) -> Command {
    let mut command = Command::new("unshare");
    command.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        r#"while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; shift; exec "$@""#,
        "sh",
    ]);
    for (file, over) in binds {
        command.arg(file).arg(over);
    }
    command.arg("--");
    command
}

#[derive(Debug, Default)]
pub struct StreamReport {
    pub video_codec: String,
    pub width: u64,
    pub height: u64,
    pub fps: f64,
    pub audio_codec: Option<String>,
    pub audio_profile: Option<String>,
    pub keyframe_times: Vec<f64>,
    pub video_packets: usize,
}

impl StreamReport {
    /// Median time between video keyframes.
    pub fn keyframe_interval(&self) -> Option<f64> {
        let mut gaps: Vec<f64> = self.keyframe_times.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_by(f64::total_cmp);
        gaps.get(gaps.len() / 2).copied()
    }
}

/// Reads `seconds` of a live stream with ffprobe: its streams and its video keyframes.
pub fn ffprobe_stream(url: &str, seconds: u32) -> StreamReport {
    let out = Command::new("timeout")
        .args([
            &(seconds + 30).to_string(),
            "ffprobe",
            "-v",
            "error",
            "-show_streams",
            "-show_packets",
            "-select_streams",
            "v:0",
        ])
        .args([
            "-show_entries",
            "stream=codec_type,codec_name,width,height,avg_frame_rate,r_frame_rate:packet=pts_time,flags",
        ])
        .args(["-read_intervals", &format!("%+{seconds}"), "-of", "json", url])
        .output()
        .expect("ffprobe is installed");
    assert!(out.status.success(), "ffprobe {url}: {}", String::from_utf8_lossy(&out.stderr));
    let video: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let audio_out = Command::new("timeout")
        .args(["30", "ffprobe", "-v", "error", "-show_streams", "-select_streams", "a:0", "-of", "json", url])
        .output()
        .unwrap();
    let audio: serde_json::Value = serde_json::from_slice(&audio_out.stdout).unwrap_or_default();
    let v = &video["streams"][0];
    let a = &audio["streams"][0];
    let rate = v["r_frame_rate"].as_str().unwrap_or("0/1");
    let (num, den) = rate.split_once('/').unwrap_or(("0", "1"));
    StreamReport {
        video_packets: video["packets"].as_array().map_or(0, Vec::len),
        video_codec: v["codec_name"].as_str().unwrap_or("").into(),
        width: v["width"].as_u64().unwrap_or(0),
        height: v["height"].as_u64().unwrap_or(0),
        fps: num.parse::<f64>().unwrap_or(0.0) / den.parse::<f64>().unwrap_or(1.0),
        audio_codec: a["codec_name"].as_str().map(Into::into),
        audio_profile: a["profile"].as_str().map(Into::into),
        keyframe_times: video["packets"]
            .as_array()
            .map(|p| {
                p.iter()
                    .filter(|p| p["flags"].as_str().is_some_and(|f| f.starts_with('K')))
                    .filter_map(|p| p["pts_time"].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Drops every packet to and from a loopback port (iptables), as a vanished network
/// does: no reset, no error, the bytes just stop. Removed again on drop.
pub struct BlackHole {
    rules: Vec<Vec<String>>,
}

impl BlackHole {
    pub fn open(port: u16) -> BlackHole {
        let rules: Vec<Vec<String>> = ["--dport", "--sport"]
            .iter()
            .map(|side| {
                ["INPUT", "-i", "lo", "-p", "tcp", side, &port.to_string(), "-j", "DROP"].map(String::from).to_vec()
            })
            .collect();
        for rule in &rules {
            let status = Command::new("iptables").arg("-I").args(rule).status().expect("iptables is installed");
            assert!(status.success(), "iptables -I {rule:?} (needs root)");
        }
        BlackHole { rules }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        for rule in &self.rules {
            let _ = Command::new("iptables").arg("-D").args(rule).status();
        }
    }
}
