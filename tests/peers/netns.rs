//! Named network namespaces for tests: made with `ip netns add`, deleted on drop (with
//! the veth ends in them), and reached only through programs run inside them
//! (`ip netns exec`). Nothing here touches the host's own network.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `ip ARGS`, panicking with its output when it fails.
pub fn ip(args: &[&str]) {
    run("ip", args, "iproute2, scripts/setup");
}

/// Runs `tc ARGS`, panicking with its output when it fails.
pub fn tc(args: &[&str]) {
    run("tc", args, "iproute2, scripts/setup");
}

fn run(program: &str, args: &[&str], package: &str) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} ({package}): {e}"));
    assert!(out.status.success(), "{program} {}: {}", args.join(" "), text(&out));
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A name no other test run uses: the process id and a counter (interface names have at
/// most 15 characters).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A named network namespace, deleted (with the veth end in it) when dropped.
pub struct Netns(pub String);

impl Netns {
    /// Panics unless the test runs as root: namespaces need it, and CI runs as root.
    pub fn add(name: String) -> Netns {
        // The owner of /proc/self is the effective user.
        let euid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
        assert_eq!(euid, 0, "this test needs root (network namespaces); CI runs it as root");
        ip(&["netns", "add", &name]);
        let ns = Netns(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ns
    }

    /// A command that runs what is appended to it inside this namespace (`ip netns
    /// exec` execs it: the child's pid is the program's).
    pub fn wrapper(&self) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.0]);
        command
    }

    /// A command that runs `program` inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = self.wrapper();
        command.arg(program);
        command
    }

    /// Whether something in this namespace accepts TCP connections on loopback `port`.
    pub fn accepts(&self, port: u16) -> bool {
        self.command("bash")
            .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
            .output()
            .expect("ip netns exec bash")
            .status
            .success()
    }

    /// `GET path` on loopback `port` inside this namespace (curl, 5 s at most): the body
    /// of a 2xx answer.
    pub fn http_get(&self, port: u16, path: &str) -> Option<String> {
        let out = self
            .command("curl")
            .args(["-sf", "--max-time", "5", &format!("http://127.0.0.1:{port}{path}")])
            .output()
            .expect("curl is installed (scripts/setup)");
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "delete", &self.0]).status();
    }
}
