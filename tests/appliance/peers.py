"""The host's side of the rung: nginx with the RTMP module (the guest reaches the host as
10.0.2.2 through QEMU's user network) and ffprobe to check what arrived."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

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
        self.process = subprocess.Popen(["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf")])
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

    def stop(self):
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
