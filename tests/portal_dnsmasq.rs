//! The captive portal's `dnsmasq-shared.d` file against the real dnsmasq, started the way
//! NetworkManager starts it for a shared-IPv4 connection, in a network namespace ("the
//! box") joined by a veth pair to another one ("a phone"). From the phone, a real DHCP
//! client (busybox udhcpc) and a real DNS client (dig) see what a phone on the "Wifi
//! Connect" access point would see.
//!
//! Needs root (network namespaces) and dnsmasq, dig, busybox and ip (scripts/setup
//! installs them). Without them the tests fail rather than skip: CI runs as root, and a
//! skip there would hide a broken setup.

mod app;
mod peers;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use peers::netns::{Netns, ip, text, unique};

/// NetworkManager's default address for shared mode: the box, and so the portal.
const PORTAL: &str = "10.42.0.1";
const PORTAL_PREFIX: u8 = 24;
/// What DHCP option 114 (RFC 8910) must carry: the URI of the portal's RFC 8908 API
/// (`web::probes::CAPTIVE_API_PATH` on the portal's address).
const CAPTIVE_PORTAL_URI: &str = "http://10.42.0.1/captive-portal/api";
/// Where NetworkManager reads the extra dnsmasq configuration of shared mode.
const SHARED_CONF_DIR: &str = "/etc/NetworkManager/dnsmasq-shared.d/";

/// The shipped files NetworkManager's dnsmasq reads, by their name on the box, from the
/// package's install list (the list the recipe and the QEMU rung install from).
fn shipped_shared_conf_files() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let list = std::fs::read_to_string(root.join("conf/makespacelive.install")).unwrap();
    list.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| match line.split_whitespace().collect::<Vec<_>>()[..] {
            [_mode, source, destination] => {
                let name = destination.strip_prefix(SHARED_CONF_DIR)?;
                Some((name.to_string(), root.join(source)))
            }
            _ => None,
        })
        .collect()
}

/// The access point: dnsmasq in the box's namespace with the shipped files as its
/// `--conf-dir`, and the phone's namespace at the other end of a veth pair.
struct AccessPoint {
    dnsmasq: Child,
    dir: tempfile::TempDir,
    phone_if: String,
    // Fields drop after `Drop::drop` has killed dnsmasq: the namespaces go last.
    phone: Netns,
    _box_ns: Netns, // held for its Drop
}

impl AccessPoint {
    fn start() -> AccessPoint {
        let dir = tempfile::tempdir().unwrap();
        let conf_dir = dir.path().join("dnsmasq-shared.d");
        std::fs::create_dir(&conf_dir).unwrap();
        let shipped = shipped_shared_conf_files();
        assert_eq!(shipped.len(), 1, "conf/makespacelive.install: one file for {SHARED_CONF_DIR}: {shipped:?}");
        for (name, source) in &shipped {
            std::fs::copy(source, conf_dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        }

        let box_ns = Netns::add(unique("mslbox"));
        let phone = Netns::add(unique("mslphone"));
        let (box_if, phone_if) = (unique("mslb"), unique("mslp"));
        // Both ends made straight inside their namespaces: nothing touches the host's.
        ip(&["link", "add", &box_if, "netns", &box_ns.0, "type", "veth", "peer", "name", &phone_if, "netns", &phone.0]);
        ip(&["-n", &box_ns.0, "address", "add", &format!("{PORTAL}/{PORTAL_PREFIX}"), "dev", &box_if]);
        for (ns, link) in [(&box_ns, &box_if), (&phone, &phone_if)] {
            ip(&["-n", &ns.0, "link", "set", link, "up"]);
        }

        // NetworkManager's command line (src/core/dnsmasq/nm-dnsmasq-manager.c,
        // create_dm_cmd_line) for 10.42.0.1/24 on a connection without a default route
        // or DNS servers of its own: the range is nm_dnsmasq_utils_get_range's, the
        // lease and pid files are NM's in a temp dir. --log-dhcp and --log-queries are
        // what NM adds itself with NM_DNSMASQ_DEBUG; --log-facility keeps them here.
        let d = dir.path();
        let pid_file = d.join("dnsmasq.pid");
        let log = d.join("dnsmasq.log");
        let dnsmasq = box_ns
            .command("dnsmasq")
            .arg("--log-dhcp")
            .arg("--log-queries")
            .arg("--conf-file=/dev/null")
            .arg("--no-hosts")
            .arg("--keep-in-foreground")
            .arg("--bind-interfaces")
            .arg("--except-interface=lo")
            .arg("--clear-on-reload")
            .arg("--strict-order")
            .arg(format!("--listen-address={PORTAL}"))
            .arg("--dhcp-range=10.42.0.10,10.42.0.254,60m")
            .arg(format!("--dhcp-leasefile={}", d.join(format!("dnsmasq-{box_if}.leases")).display()))
            .arg(format!("--pid-file={}", pid_file.display()))
            .arg(format!("--conf-dir={}", conf_dir.display()))
            .arg(format!("--log-facility={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("dnsmasq.stderr")).unwrap())
            .spawn()
            .expect("ip netns exec dnsmasq");
        let mut ap = AccessPoint { dnsmasq, dir, phone_if, phone, _box_ns: box_ns };
        // dnsmasq writes its pid file once its sockets are bound; a configuration it
        // rejects ends it at once.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pid_file.exists() {
            if let Some(status) = ap.dnsmasq.try_wait().unwrap() {
                panic!(
                    "dnsmasq exited ({status}): not installed (dnsmasq-base, scripts/setup), or it rejects \
                     the configuration (below)\n{}",
                    ap.log()
                );
            }
            assert!(Instant::now() < deadline, "dnsmasq did not start within 10 s\n{}", ap.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        ap
    }

    /// dnsmasq's stderr and log, for failure messages.
    fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("dnsmasq stderr:\n{}\ndnsmasq log:\n{}", read("dnsmasq.stderr"), read("dnsmasq.log"))
    }

    /// The phone joins: busybox udhcpc asks for the usual options and option 114, as
    /// phones that know RFC 8910 do (Android 11+, iOS 14+), and the lease's options are returned as udhcpc hands
    /// them to its script (known options by name, others as `optN` in hex). The phone
    /// then takes the leased address, as a phone would.
    fn join(&self) -> BTreeMap<String, String> {
        let lease_file = self.dir.path().join("lease.env");
        let script = self.dir.path().join("udhcpc.script");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$1\" = bound ] && env > '{0}.tmp' && mv '{0}.tmp' '{0}'\nexit 0\n",
                lease_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Foreground, quit once bound, give up after 10 discovers 2 s apart (dnsmasq
        // pings an address for up to 3 s before it offers it).
        let out = self
            .phone
            .command("busybox")
            .args(["udhcpc", "-f", "-q", "-n", "-t", "10", "-T", "2", "-O", "114", "-i", &self.phone_if, "-s"])
            .arg(&script)
            // The script's environment is then the lease's options only.
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .expect("ip netns exec busybox udhcpc");
        assert!(out.status.success(), "udhcpc got no lease: {}\n{}", text(&out), self.log());
        let env = std::fs::read_to_string(&lease_file)
            .unwrap_or_else(|e| panic!("udhcpc's script never saw `bound` ({e}): {}\n{}", text(&out), self.log()));
        let lease: BTreeMap<String, String> =
            env.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let address = format!("{}/{}", lease["ip"], lease["mask"]);
        ip(&["-n", &self.phone.0, "address", "add", &address, "dev", &self.phone_if]);
        lease
    }

    /// `dig NAME TYPE` from the phone against `server`: the status and the answer records
    /// as (type, data).
    fn dig(&self, server: &str, name: &str, rtype: &str) -> (String, Vec<(String, String)>) {
        let out = self
            .phone
            .command("dig")
            .args([&format!("@{server}"), "+time=2", "+tries=2", "+noall", "+comments", "+answer", name, rtype])
            .output()
            .expect("ip netns exec dig");
        let out = text(&out);
        let status = out
            .split("status: ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("dig {name} {rtype}: no answer from {server}:\n{out}\n{}", self.log()))
            .to_string();
        let answers = out
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
                [_name, _ttl, "IN", rtype, ref data @ ..] => Some((rtype.to_string(), data.join(" "))),
                _ => None,
            })
            .collect();
        (status, answers)
    }
}

impl Drop for AccessPoint {
    fn drop(&mut self) {
        // The child is `ip netns exec`, which became dnsmasq (it execs): kill that pid.
        let _ = self.dnsmasq.kill();
        let _ = self.dnsmasq.wait();
        // Then the namespaces (the fields) are deleted, the veth pair with them.
    }
}

/// Decodes udhcpc's hex for an option it has no name for.
fn hex_bytes(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex: {hex}");
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
}

#[test]
fn dhcp_names_the_box_as_dns_server_and_the_portal_in_option_114() {
    let ap = AccessPoint::start();
    let lease = ap.join();
    let leased: std::net::Ipv4Addr = lease["ip"].parse().unwrap();
    assert!((10..=254).contains(&leased.octets()[3]) && lease["mask"] == "24", "{lease:?}");
    assert_eq!(lease["serverid"], PORTAL, "{lease:?}");
    // Every name the phone looks up must go to the box, which answers with itself.
    assert_eq!(lease.get("dns").map(String::as_str), Some(PORTAL), "{lease:?}\n{}", ap.log());
    let option_114 =
        lease.get("opt114").unwrap_or_else(|| panic!("no option 114 in the lease: {lease:?}\n{}", ap.log()));
    // Byte for byte: no quotes, no NUL, no trailing byte (RFC 8910: the URI, no terminator).
    assert_eq!(String::from_utf8_lossy(&hex_bytes(option_114)), CAPTIVE_PORTAL_URI, "{lease:?}");
}

#[test]
fn every_name_a_phone_looks_up_resolves_to_the_portal() {
    let ap = AccessPoint::start();
    let lease = ap.join();
    let server = &lease["dns"];
    let random = format!("n{:016x}.example.net", fastrand::u64(..));
    let names = [
        "connectivitycheck.gstatic.com", // Android
        "www.google.com",                // Android's fallback probe
        "captive.apple.com",             // iOS, macOS
        "www.msftconnecttest.com",       // Windows
        "detectportal.firefox.com",      // Firefox
        "nmcheck.gnome.org",             // NetworkManager on a laptop
        "example.org",
        "Example.ORG",
        "setup", // a single label, as a person might type it
        &random,
    ];
    for name in names {
        let (status, answers) = ap.dig(server, name, "A");
        assert_eq!(status, "NOERROR", "{name}: {answers:?}\n{}", ap.log());
        assert_eq!(answers, [("A".to_string(), PORTAL.to_string())], "{name}\n{}", ap.log());
    }
}
