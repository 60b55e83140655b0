"""The host's side of the rung: nginx with the RTMP module and gooseBit, the update server
(the guest reaches the host's loopback as 10.0.2.2 through QEMU's user network), and
ffprobe to check what arrived."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

from . import layer
from .machine import free_port

RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


class RtmpServer:
    def __init__(self):
        self.port, self.stat_port = free_port(), free_port()
        self.dir = tempfile.mkdtemp(prefix="appliance-nginx-")
        d = self.dir
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write("load_module %s;\ndaemon off;\npid %s/nginx.pid;\nerror_log %s/error.log info;\nevents {}\n"
                    "rtmp { server { listen 127.0.0.1:%d; drop_idle_publisher 10s;\n"
                    "  application live { live on; record off; } } }\n"
                    "http { access_log off; client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n"
                    "  uwsgi_temp_path %s; scgi_temp_path %s;\n"
                    "  server { listen 127.0.0.1:%d; location /stat { rtmp_stat all; } } }\n"
                    % (RTMP_MODULE, d, d, self.port, d, d, d, d, d, self.stat_port))
        self.start()

    def start(self):
        """Starts nginx (again: the same ports, as a server back from a restart)."""
        self.process = subprocess.Popen(["nginx", "-p", self.dir, "-c", os.path.join(self.dir, "nginx.conf")])
        time.sleep(0.5)

    def guest_url(self):
        return "rtmp://10.0.2.2:%d/live" % self.port

    def publishing(self):
        try:
            xml = urllib.request.urlopen("http://127.0.0.1:%d/stat" % self.stat_port, timeout=5).read().decode()
        except OSError:
            return []
        return [s.split("<name>")[1].split("</name>")[0] for s in xml.split("<stream>")[1:] if "<publishing/>" in s]

    def wait_publishing(self, key, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if key in self.publishing():
                return True
            time.sleep(2)
        return False

    def probe(self, key):
        """The codecs of what the server receives, read back with ffprobe."""
        out = subprocess.run(["ffprobe", "-v", "error", "-rw_timeout", "20000000", "-show_entries",
                              "stream=codec_name,codec_type,width,height", "-of", "json",
                              "rtmp://127.0.0.1:%d/live/%s" % (self.port, key)],
                             capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout or "{}").get("streams", [])

    def halt(self):
        """Stops nginx, keeping its configuration for start()."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()

    def stop(self):
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)


GOOSEBIT = os.path.join(layer.ROOT, "tests/peers/goosebit.py")


class GooseBit:
    """gooseBit on a host loopback port, driven by tests/peers/goosebit.py (its database
    and artifacts in a directory of its own)."""

    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.dir = tempfile.mkdtemp(prefix="appliance-goosebit-")
        self.command("prepare", self.dir)
        self.log = open(os.path.join(self.dir, "goosebit.log"), "w")
        self.process = subprocess.Popen(["python3", GOOSEBIT, "serve", self.dir, "127.0.0.1", str(self.port)],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.command("wait", self.url, "120")

    def command(self, *argv):
        out = subprocess.run(["python3", GOOSEBIT, *argv], capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise AssertionError("goosebit.py %s: %s%s" % (argv[0], out.stdout, out.stderr))
        return json.loads(out.stdout)

    def guest_url(self):
        return "http://10.0.2.2:%d" % self.port

    def upload(self, bundle):
        """The software gooseBit made of a bundle: {"id", "version", ...}."""
        return self.command("upload", self.url, bundle)

    def assign(self, device, software):
        self.command("assign", self.url, device, str(software["id"]))

    def device(self, device):
        """What gooseBit shows of a device ({"last_state", "sw_version", "log", ...});
        None before it first polled."""
        out = subprocess.run(["python3", GOOSEBIT, "device", self.url, device], capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def stop(self):
        self.process.terminate()
        self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
