"""What the benchmarks (bench-stream, bench-web) share: a private network namespace, their
own nginx-rtmp with its statistics page, the release build of the service, /proc readings
and the table they print."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAUC_PEER = os.path.join(ROOT, "tests", "peers", "rauc-peer.sh")
BIN = os.path.join(ROOT, "target", "release", "makespacelive")
DEFAULTS = os.path.join(ROOT, "conf", "defaults.toml")
NAME = os.path.basename(sys.argv[0])


def in_private_netns(why):
    """Builds the release binary, then re-executes this script under `unshare --net` with
    loopback up (the re-executed copy returns at once)."""
    if os.environ.get("MSL_BENCH_NETNS") == "1":
        sh("ip", "link", "set", "lo", "up")
        return
    if os.geteuid() != 0:
        sys.exit(f"{NAME}: needs root ({why})")
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    env = dict(os.environ, MSL_BENCH_NETNS="1")
    os.execvpe("unshare", ["unshare", "--net", sys.executable] + sys.argv, env)


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


class Nginx:
    """nginx-rtmp on 127.0.0.1, with its statistics and control pages over HTTP. In another
    namespace: `wrapper` starts it there (nsenter), it listens on `listen` and this side
    reaches it at `address`."""

    def __init__(self, work, key, rtmp_port=1935, stat_port=8088, address="127.0.0.1", listen=None, wrapper=()):
        self.work, self.key, self.rtmp_port, self.stat_port = work, key, rtmp_port, stat_port
        self.address, self.wrapper = address, list(wrapper)
        listen = listen or address
        self.conf = os.path.join(work, "nginx.conf")
        os.makedirs(os.path.join(work, "tmp"), exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(f"""
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx.log;
events {{}}
rtmp {{
  server {{
    listen {listen}:{rtmp_port};
    # A real server forgets a publisher whose network vanished; without this a
    # republish after a black hole is refused until the old session times out.
    drop_idle_publisher 3s;
    application live {{ live on; record off; }}
  }}
}}
http {{
  access_log off;
  client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp; fastcgi_temp_path {work}/tmp;
  uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
  server {{
    listen {listen}:{stat_port};
    location /stat {{ rtmp_stat all; }}
    location /control {{ rtmp_control all; }}
  }}
}}
""")
        self.proc = None

    def url(self):
        return f"rtmp://{self.address}:{self.rtmp_port}/live"

    def start(self):
        self.proc = subprocess.Popen(self.wrapper + ["nginx", "-p", self.work, "-c", self.conf])
        wait_until(lambda: port_open(self.rtmp_port, self.address), 10, "nginx to listen")
        return time.monotonic()

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown: drops clients at once
            self.proc.wait(10)
            self.proc = None

    def drop_publisher(self):
        urllib.request.urlopen(f"http://{self.address}:{self.stat_port}/control/drop/publisher?app=live&name={self.key}",
                               timeout=2).read()

    def _stream(self):
        """The statistics block of our stream while it is published, else None."""
        try:
            xml = urllib.request.urlopen(f"http://{self.address}:{self.stat_port}/stat", timeout=1).read().decode()
        except OSError:
            return None
        for stream in re.findall(r"<stream>(.*?)</stream>", xml, re.S):
            if f"<name>{self.key}</name>" in stream and "<publishing/>" in stream:
                return stream
        return None

    def publishing(self):
        return self._stream() is not None

    def bytes_in(self):
        """Bytes received for our stream so far (None while it is not published)."""
        stream = self._stream()
        found = stream and re.search(r"<bytes_in>(\d+)</bytes_in>", stream)
        return int(found.group(1)) if found else None


def port_open(port, address="127.0.0.1"):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((address, port)) == 0


def wait_until(predicate, timeout, what, every=0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(every)
    raise SystemExit(f"{NAME}: timed out waiting for {what}")


def test_pattern_settings(web_port, video=""):
    """Settings (config.toml) for the test pattern at 640x360, 30 fps, 800 kb/s, and the
    web page on 127.0.0.1:web_port; `video` lines (TOML) replace or add [video] keys."""
    keys = {"width": "640", "height": "360", "framerate": "30", "bitrate_kbps": "800"}
    keys.update(line.split(" = ", 1) for line in video.splitlines() if line.strip())
    lines = "".join(f"{k} = {v}\n" for k, v in keys.items())
    return f"""[video]
source = "test"
{lines}[audio]
source = "test"
[web]
listen = "127.0.0.1:{web_port}"
"""


def stream_settings(web_port, rtmp_port, key, address="127.0.0.1", video=""):
    """The test pattern (with `video` as in test_pattern_settings) streamed to our nginx-rtmp
    at `address`; the network is left alone."""
    return test_pattern_settings(web_port, video) + (
        f'[network]\nmanage = false\n[[destinations]]\nname = "bench"\n'
        f'url = "rtmp://{address}:{rtmp_port}/live"\nkey = "{key}"\n')


def gst_launch_line(data_dir, key):
    """The gst-launch-1.0 line `probe` prints for the settings in data_dir, with the stream key."""
    out = sh(BIN, "probe", "--config", DEFAULTS, "--data-dir", data_dir).stdout
    line = next(l.strip() for l in out.splitlines() if l.strip().startswith("gst-launch-1.0"))
    return line.replace("****", key)


def start_service(data_dir, log, env=None, args=()):
    return subprocess.Popen([BIN, "run", "--config", DEFAULTS, "--data-dir", data_dir, *args],
                            stdout=log, stderr=log, env=dict(os.environ, RUST_LOG="warn", **(env or {})))


def status(web_port, cookie=None):
    """/api/status as JSON (with the session cookie once a device password is set), or None."""
    headers = {"Cookie": cookie} if cookie else {}
    request = urllib.request.Request(f"http://127.0.0.1:{web_port}/api/status", headers=headers)
    try:
        return json.load(urllib.request.urlopen(request, timeout=1))
    except (OSError, ValueError):
        return None


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RaucPeer:
    """tests/peers/rauc.rs in short: in `work` (its own directory), dbus-daemon, then
    `rauc service` booted from A; `env` has the bus for the service and `rauc`."""

    def __init__(self, work):
        self.work = work
        os.makedirs(work, exist_ok=True)
        subprocess.run([RAUC_PEER, "setup", work], check=True)
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={work}/bus")
        self.log = open(os.path.join(work, "service.log"), "w")
        self.daemon = subprocess.Popen(["dbus-daemon", f"--config-file={work}/bus.conf", "--nofork"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: os.path.exists(f"{work}/bus"), 10, "dbus-daemon")
        self.service = subprocess.Popen(["rauc", f"--conf={work}/system.conf", "service", "--override-boot-slot=A"],
                                        stdout=self.log, stderr=self.log, env=self.env)
        wait_until(self.running, 10, "rauc service", every=0.05)

    def running(self):
        return subprocess.run(["rauc", "status"], env=self.env, capture_output=True).returncode == 0

    def bundle(self, version, mib, compatible="makespacelive-test"):
        """A plain bundle for `compatible` (the peer's own by default) signed by the peer's CA,
        with `mib` MiB of random bytes (squashfs cannot shrink them) as the rootfs image."""
        payload, out = os.path.join(self.work, "payload"), os.path.join(self.work, f"{version}.raucb")
        with open(payload, "wb") as f:
            f.write(os.urandom(mib << 20))
        subprocess.run([RAUC_PEER, "bundle", self.work, version, compatible, payload, out], check=True)
        os.remove(payload)
        return out

    def close(self):
        stop(self.service)
        stop(self.daemon)
        self.log.close()


def cpu_seconds(stat_path):
    """User + system CPU seconds from a /proc/…/stat file."""
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_and_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return cpu_seconds(f"/proc/{pid}/stat"), rss / 1024.0


def print_table(rows, header=("figure", "measured", "target")):
    """Rows of strings under `header`, every column but the last padded to its widest cell."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]

    def line(cells):
        print("  ".join([f"{c:<{w}}" for c, w in zip(cells, widths)] + [cells[-1]]))
    line(header)
    line(["-" * w for w in widths] + ["-" * 22])
    for row in rows:
        line(row)
