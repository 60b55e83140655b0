"""The air around the box on the QEMU rung: the kernel's simulated 802.11 radios
(`mac80211_hwsim`, three of them) in the guest, and the test's peers on two of them, each
in its own network namespace: a phone (`wpa_supplicant`, busybox `udhcpc` and
`nslookup`, `curl`) and a venue's WPA2 access point (`hostapd`, `dnsmasq` for DHCP and
DNS, nginx-rtmp). The first radio stays in the box's namespace for its NetworkManager.

The radios are the only thing simulated: frames really go through mac80211, so
association, WPA2's handshake, DHCP and DNS are the real ones. The peers are not part of
the firmware: they run from their own image (build.peers_image, a read-only disk
labelled `peers`), mounted at /run/peers and entered with chroot; `ip netns exec`
inside the chroot puts them in their namespace."""

import re
import shlex
import time

PEERS = "/run/peers"
# The box's access point as the shipped defaults open it, and NetworkManager's shared-mode address.
AP_SSID = "Wifi Connect"
PORTAL = "10.42.0.1"
VENUE_SSID = "Makerspace"
VENUE_PASSPHRASE = "soldering-iron-42"
VENUE_ADDRESS = "192.168.50.1"
# A name only the venue's DNS server knows (its address, handed out by its DHCP).
VENUE_NAME = "rtmp.makerspace.example"
VENUE_CHANNEL = 1
STAT_PORT = 8080
# mac80211_hwsim gives radio N the address 02:00:00:00:NN:00.
RADIOS = {"box": 0, "phone": 1, "venue": 2}

HOSTAPD = """interface={interface}
driver=nl80211
ctrl_interface=/run/venue/hostapd
ssid={ssid}
hw_mode=g
channel={channel}
wpa=2
wpa_key_mgmt=WPA-PSK
rsn_pairwise=CCMP
wpa_passphrase={passphrase}
"""
NGINX = """load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
pid /run/venue/nginx.pid;
error_log /run/venue/nginx.log info;
events {{}}
rtmp {{ access_log off; server {{ listen {address}:1935; application live {{ live on; record off; }} }} }}
http {{ access_log off; client_body_temp_path /run/venue; proxy_temp_path /run/venue;
  fastcgi_temp_path /run/venue; uwsgi_temp_path /run/venue; scgi_temp_path /run/venue;
  server {{ listen {address}:{stat}; location /stat {{ rtmp_stat all; }} }} }}
"""
PHONE_WPA = """ctrl_interface=/run/phone/wpa
network={{
  ssid="{ssid}"
  key_mgmt=NONE
}}
"""
# udhcpc's script: take the lease as a phone does, and keep its options (known ones by
# name, others as optN in hex) for the test to read.
UDHCPC = """#!/bin/sh
case "$1" in
bound|renew)
  ip -4 address flush dev "$interface"
  ip address add "$ip/$mask" dev "$interface"
  env > /run/phone/lease.tmp && mv /run/phone/lease.tmp /run/phone/lease ;;
deconfig) ip -4 address flush dev "$interface" ;;
esac
exit 0
"""


class Air:
    def __init__(self, box):
        self.box = box
        self.interfaces = {}

    # --- the guest's side ---------------------------------------------------------------

    def peer(self, namespace, command):
        """`command` as the box runs it: in the peers' root, in `namespace` (None: the box's own)."""
        inner = "ip netns exec %s sh -c %s" % (namespace, shlex.quote(command)) if namespace else \
            "sh -c %s" % shlex.quote(command)
        return "chroot %s %s" % (PEERS, inner)

    def on(self, namespace, command, check=True, timeout=120):
        return self.box.ssh(self.peer(namespace, command), check=check, timeout=timeout)

    def put(self, path, text, mode="644"):
        """A file on the peers' /run (a tmpfs)."""
        self.box.ssh("mkdir -p $(dirname %s%s) && cat > %s%s && chmod %s %s%s"
                     % (PEERS, path, PEERS, path, mode, PEERS, path), stdin=text)

    def mount(self):
        """The peers' image at /run/peers, ready to chroot into (again: nothing done twice)."""
        mounts = [("-o ro /dev/disk/by-label/peers", ""), ("-t proc proc", "/proc"), ("-t sysfs sysfs", "/sys"),
                  ("--bind /dev", "/dev"), ("-t tmpfs tmpfs", "/run"), ("-t tmpfs tmpfs", "/tmp")]
        self.box.ssh("mkdir -p %s && " % PEERS + " && ".join(
            "{ mountpoint -q %s%s || mount %s %s%s; }" % (PEERS, where, what, PEERS, where) for what, where in mounts))

    def power_up(self):
        """Loads three simulated radios and hands the phone's and the venue's to their
        namespaces. Returns the box's Wi-Fi interface."""
        self.mount()
        self.box.ssh("modprobe mac80211_hwsim radios=%d" % len(RADIOS))
        phys = dict(line.split() for line in self.box.ssh(
            "for p in /sys/class/ieee80211/*; do echo $(cat $p/macaddress) ${p##*/}; done").splitlines())
        for name, index in RADIOS.items():
            phy = phys["02:00:00:00:%02x:00" % index]
            if name != "box":
                self.on(None, "ip netns add %s && ip -n %s link set lo up && iw phy %s set netns name %s"
                        % (name, name, phy, name))
            # `iw dev` lists the interfaces of the namespace it runs in, under "phy#N".
            self.interfaces[name] = self.on(name if name != "box" else None,
                                            "iw dev | awk '/^phy#/ {p = $1} p == \"phy#%s\" && $1 == \"Interface\" {print $2}'"
                                            % phy[3:])
        return self.interfaces["box"]

    # --- the venue ----------------------------------------------------------------------

    def venue_up(self):
        """The venue's WPA2 access point with DHCP, DNS (its DHCP names itself the DNS
        server; it answers VENUE_NAME) and nginx-rtmp behind it."""
        wlan = self.interfaces["venue"]
        self.put("/run/venue/hostapd.conf", HOSTAPD.format(interface=wlan, ssid=VENUE_SSID, channel=VENUE_CHANNEL,
                                                           passphrase=VENUE_PASSPHRASE))
        self.put("/run/venue/nginx.conf", NGINX.format(address=VENUE_ADDRESS, stat=STAT_PORT))
        self.on("venue", "ip address replace %s/24 dev %s && ip link set %s up && "
                "hostapd -B -P /run/venue/hostapd.pid -f /run/venue/hostapd.log /run/venue/hostapd.conf && "
                "dnsmasq --conf-file=/dev/null --interface=%s --bind-interfaces --except-interface=lo "
                "--no-resolv --no-hosts --host-record=%s,%s "
                "--dhcp-range=192.168.50.10,192.168.50.99,1h --dhcp-leasefile=/run/venue/leases "
                "--pid-file=/run/venue/dnsmasq.pid && "
                "{ [ -e /run/venue/nginx.pid ] || nginx -e /run/venue/nginx.log -c /run/venue/nginx.conf; }"
                % (VENUE_ADDRESS, wlan, wlan, wlan, VENUE_NAME, VENUE_ADDRESS))

    def venue_down(self):
        """The venue's access point disappears (nginx stays: the AP is what goes)."""
        self.on("venue", "kill $(cat /run/venue/hostapd.pid /run/venue/dnsmasq.pid) && "
                "rm -f /run/venue/hostapd.pid /run/venue/dnsmasq.pid")  # each removes its own as it ends

    def venue_streams(self):
        """{stream name: {"publishing": bool, "video": codec, "audio": codec}} from nginx-rtmp's stat page."""
        xml = self.on("venue", "curl -s -m 10 http://%s:%d/stat" % (VENUE_ADDRESS, STAT_PORT), check=False)
        streams = {}
        for chunk in xml.split("<stream>")[1:]:
            codec = lambda kind: (re.search(r"<%s>.*?<codec>([^<]*)</codec>" % kind, chunk, re.S) or [None, None])[1]
            streams[re.search(r"<name>([^<]*)</name>", chunk).group(1)] = {
                "publishing": "<publishing/>" in chunk, "video": codec("video"), "audio": codec("audio")}
        return streams

    # --- the phone ----------------------------------------------------------------------

    def phone_join(self, ssid=AP_SSID, timeout=90):
        """The phone joins the open network `ssid` and takes a DHCP lease, asking for option
        114 as phones that know RFC 8910 do. Returns the lease's options."""
        wlan = self.interfaces["phone"]
        self.put("/run/phone/wpa.conf", PHONE_WPA.format(ssid=ssid))
        self.put("/run/phone/udhcpc", UDHCPC, mode="755")
        self.on("phone", "rm -f /run/phone/lease && wpa_supplicant -B -P /run/phone/wpa.pid -f /run/phone/wpa.log "
                "-i %s -c /run/phone/wpa.conf" % wlan)
        deadline = time.monotonic() + timeout
        while "wpa_state=COMPLETED" not in self.on("phone", "wpa_cli -p /run/phone/wpa -i %s status" % wlan, check=False):
            if time.monotonic() > deadline:
                raise AssertionError("the phone did not associate with %r within %d s:\n%s"
                                     % (ssid, timeout, self.on("phone", "tail -n 30 /run/phone/wpa.log", check=False)))
            time.sleep(2)
        # A clean environment: the script's is then the lease's options only.
        try:
            self.on("phone", "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin busybox udhcpc -q -n -t 10 -T 3 -O 114 -i %s "
                    "-s /run/phone/udhcpc" % wlan, timeout=90)
        except AssertionError as no_lease:
            # What the box did meanwhile: the service's and NetworkManager's words, the phones it sees.
            raise AssertionError("%s\n--- the box:\n%s" % (no_lease, self.box.run(
                "journalctl -b -n 60 -o short-monotonic -u makespacelive -u NetworkManager; "
                "iw dev %s station dump" % self.interfaces["box"]).stdout)) from None
        lease = self.on("phone", "cat /run/phone/lease")
        return dict(line.split("=", 1) for line in lease.splitlines() if "=" in line)

    def phone_leave(self):
        self.on("phone", "kill $(cat /run/phone/wpa.pid) && rm /run/phone/wpa.pid && ip -4 address flush dev %s"
                % self.interfaces["phone"])

    def phone_resolve(self, name, server):
        """The addresses `server` gives the phone for `name` (busybox nslookup, A records)."""
        out = self.on("phone", "busybox nslookup -type=a %s %s" % (name, server), check=False)
        answer = out.split("Name:", 1)[1] if "Name:" in out else ""
        return re.findall(r"Address:\s*([0-9.]+)", answer)

    def phone_page(self, path):
        """The portal's page at `path`, as the phone's browser gets it."""
        return self.on("phone", "curl -s -f -m 30 http://%s%s" % (PORTAL, path))

    def phone_post(self, path, form):
        """The phone sends `form` (application/x-www-form-urlencoded) to the portal: (status, page)."""
        fields = " ".join("--data-urlencode %s" % shlex.quote("%s=%s" % item) for item in form.items())
        out = self.on("phone", "curl -s -m 30 -w '\\n%%{http_code}' %s http://%s%s" % (fields, PORTAL, path))
        page, _, code = out.rpartition("\n")
        return code, page

    def phone_get(self, host, path, address):
        """What the phone's browser gets first for http://host/path when `host` resolves to
        `address`: (status code, Location)."""
        out = self.on("phone", "curl -s -o /dev/null -m 20 -w '%%{http_code} %%{redirect_url}' --resolve %s:80:%s "
                      "http://%s%s" % (host, address, host, path), check=False)
        code, _, location = out.partition(" ")
        return code, location
