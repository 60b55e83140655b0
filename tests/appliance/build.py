"""Builds the QEMU stand-in of the appliance from the layers: everything the project
ships, installed as the recipes install it; only what a Yocto build would compile is
taken from Debian (trixie arm64: the closest to wrynose's systemd, NetworkManager,
GStreamer 1.26 and RAUC 1.13 that this machine can fetch).

Slow pieces are cached outside the checkout (MAKESPACELIVE_APPLIANCE_CACHE, default
/var/cache/makespacelive-appliance), each under a key made of its inputs."""

import glob
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile

from . import layer

CACHE = os.environ.get("MAKESPACELIVE_APPLIANCE_CACHE", "/var/cache/makespacelive-appliance")
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
TARGET = "aarch64-unknown-linux-gnu"
SYSROOT_SUITE = "bookworm"
SYSROOT_PACKAGES = ["libgstreamer1.0-dev", "libgstreamer-plugins-base1.0-dev", "libglib2.0-dev"]

MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "manifest", layer.MACHINE + ".json")

# The image's package (the manifest's `packages`) -> the Debian packages that stand in for
# it, bringing the same units (Debian's `dnsmasq`, not the unit-less `dnsmasq-base`). ""
# is a decision, said why in a comment. A package that ships units or users, or that our
# layers name, fails the rung until it is here; unit-less library packages of the
# closure may be left out: Debian's own dependencies bring their equivalents.
DEBIAN = {
    # Packagegroups: their members are mapped one by one.
    "packagegroup-core-boot": "",
    "packagegroup-core-ssh-openssh": "",
    "base-files": "base-files",
    "base-passwd": "base-passwd",
    # Debian's essential userland (coreutils, dash, …) stands in for busybox.
    "busybox": "",
    # busybox's syslogd keeps /var/log/messages in RAM on the image; the stand-in's journal
    # (also volatile) holds the same messages (busybox-syslog.service: UNITS_IMAGE_ONLY).
    "busybox-syslog": "",
    "netbase": "netbase",
    "shadow-base": "passwd",
    # dpkg's own update-alternatives.
    "update-alternatives-opkg": "",
    # Yocto's systemd package has resolved, timesyncd, machined (machines.target) and
    # userdbd (PACKAGECONFIG); Debian splits them.
    "systemd": "systemd systemd-sysv systemd-resolved systemd-timesyncd systemd-container systemd-userdbd",
    # glibc's NSS module for resolved (the manifest's nsswitch_hosts names it).
    "libnss-resolve": "libnss-resolve",
    "systemd-udev-rules": "udev",
    # Debian's systemd ships serial-getty@.service.
    "systemd-serialgetty": "",
    # stand-in-var.service stands in for its binds (see UNITS_STAND_IN_ONLY).
    "volatile-binds": "",
    "udev": "udev",
    "kmod": "kmod",
    "dbus": "dbus",
    "dbus-common": "dbus",
    "dbus-tools": "dbus",
    "util-linux-mount": "mount",
    "util-linux-umount": "mount",
    "util-linux-agetty": "util-linux",
    "util-linux-fsck": "util-linux",
    "util-linux-swaponoff": "util-linux",
    "util-linux-mkswap": "util-linux",
    "util-linux-lsblk": "util-linux",
    "util-linux-partx": "util-linux",
    "util-linux-sfdisk": "fdisk",
    # Ours: installed from the layers as the recipes install them (Slot).
    "makespacelive": "",
    "makespacelive-data": "",
    "ca-certificates": "ca-certificates",
    "glib-networking": "glib-networking",
    # fdk-aac is not in Debian main: voaacenc (plugins-bad) is the AAC encoder here.
    "gstreamer1.0-plugins-bad-fdkaac": "gstreamer1.0-plugins-bad",
    "gstreamer1.0-plugins-bad-rtmp2": "gstreamer1.0-plugins-bad",
    "gstreamer1.0-plugins-bad-videoparsersbad": "gstreamer1.0-plugins-bad",
    "gstreamer1.0-plugins-base-alsa": "gstreamer1.0-alsa",
    "gstreamer1.0-plugins-base-app": "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-base-audioconvert": "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-base-audioresample": "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-base-audiotestsrc": "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-base-videoconvertscale": "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-base-videorate": "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-base-videotestsrc": "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good-audioparsers": "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-good-flv": "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-good-jpeg": "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-good-video4linux2": "gstreamer1.0-plugins-good",
    # The virt machine has no CSI camera for libcamera's element to find.
    "libcamera-gst": "",
    "iw": "iw",
    "wireless-regdb-static": "wireless-regdb",
    "rauc": "rauc",
    "rauc-service": "rauc-service",
    # fw_env.config is installed from the layer; U-Boot itself is uboot() below.
    "u-boot-env": "",
    "libubootenv-bin": "libubootenv-tool",
    # Debian's NetworkManager is one package with nmcli and the Wi-Fi plugin.
    "networkmanager": "network-manager",
    "networkmanager-daemon": "network-manager",
    "networkmanager-nmcli": "network-manager",
    "networkmanager-wifi": "network-manager",
    "wpa-supplicant": "wpasupplicant",
    "dnsmasq": "dnsmasq",
    "avahi-daemon": "avahi-daemon",
    "kernel-modules": "linux-image-arm64",
    "kernel-image": "linux-image-arm64 initramfs-tools",
    "kernel-image-image": "linux-image-arm64",
    "openssh": "openssh-server",
    "openssh-sshd": "openssh-server",
    "openssh-ssh": "openssh-client",
    "openssh-scp": "openssh-client",
    "openssh-keygen": "openssh-client",
    "openssh-sftp-server": "openssh-sftp-server",
}
# What only the stand-in needs: x264enc because the Pi's GPU encoder (v4l2h264enc)
# cannot exist here.
STAND_IN = ["gstreamer1.0-plugins-ugly"]
# Documentation is not installed; libraries that only GStreamer plugins the service never
# loads pull in (GL, GTK, machine learning) are removed once every package is configured,
# to keep the slot inside the wks partition size.
EXCLUDE = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*"]
UNUSED = ["libLLVM*.so*", "libgallium-*.so", "libz3.so*", "libdnnl.so*", "libonnxruntime*.so*", "libgtk-3.so*",
          "libx265.so*"]
DATA_RECIPE = os.path.join(layer.META, "recipes-core/makespacelive-data")


def run(*argv, **kwargs):
    kwargs.setdefault("check", True)
    return subprocess.run(argv, **kwargs)


def key(*parts):
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, str) and os.path.isfile(part):
            with open(part, "rb") as f:
                h.update(f.read())
        else:
            h.update(json.dumps(part, sort_keys=True).encode())
    return h.hexdigest()[:16]


def cached(name, inputs, make):
    """The path of a cached artefact `name`, made by make(path) if its inputs changed."""
    path = os.path.join(CACHE, "%s-%s" % (name, key(*inputs)))
    if not os.path.exists(path):
        tmp = path + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        if os.path.exists(tmp):
            os.unlink(tmp)
        make(tmp)
        os.rename(tmp, path)
    return path


def manifest():
    """The image's manifest (MANIFEST-SPEC: scripts/image-manifest writes it with bitbake)."""
    with open(MANIFEST) as f:
        return json.load(f)


def named_by_layers(image):
    """The packages our layers name: IMAGE_INSTALL and our recipes' RDEPENDS/RRECOMMENDS."""
    ours = [p for p in image["packages"].values() if p["recipe"] in ("makespacelive", "makespacelive-data")]
    return set(image["image_install"]).union(*(p["rdepends"] + p["rrecommends"] for p in ours))


def packages(image=None):
    """The Debian packages of the stand-in's root: every package of the image mapped."""
    image = image or manifest()
    named = named_by_layers(image)
    with_users = {u["package"] for u in image["users"]} | {g["package"] for g in image["groups"]}
    names, unmapped = [], []
    for yocto, package in sorted(image["packages"].items()):
        if yocto in image["removed_after_install"]:
            continue  # a read-only root uninstalls it again (ROOTFS_RO_UNNEEDED)
        if yocto in DEBIAN:
            names += DEBIAN[yocto].split()
        elif package["units"] or yocto in with_users or yocto in named:
            unmapped.append(yocto)
    if unmapped:
        raise KeyError("the QEMU rung has no Debian package for %s (units, users or named by our layers): "
                       "add them to DEBIAN in %s" % (", ".join(unmapped), __file__))
    return sorted(set(names + STAND_IN))


# --- U-Boot ------------------------------------------------------------------------------

UBOOT_APPEND = os.path.join(layer.META, "recipes-bsp/u-boot/u-boot_%.bbappend")
# Options renamed since Debian trixie's U-Boot (2025.01): the layer's name -> Debian's.
UBOOT_RENAMED = {"CONFIG_ENV_REDUNDANT": "CONFIG_SYS_REDUNDAND_ENVIRONMENT"}


def uboot_fragments():
    """The config fragments the append gives qemuarm64's U-Boot, in its SRC_URI order."""
    files = os.path.join(os.path.dirname(UBOOT_APPEND), "files")
    return [os.path.join(files, f) for f in layer.fetched(UBOOT_APPEND) if f.endswith(".cfg")]


def uboot():
    """Debian's U-Boot source (trixie), qemu_arm64_defconfig plus the layer's fragments."""
    fragments = uboot_fragments()
    return os.path.join(cached("u-boot", fragments + [UBOOT_RENAMED, SUITE, 3], lambda out: _make_uboot(out, fragments)),
                        "u-boot.bin")


def _make_uboot(out, fragments):
    os.makedirs(out)
    work = tempfile.mkdtemp(prefix="u-boot-", dir=CACHE)
    lists = os.path.join(work, "lists")
    os.makedirs(os.path.join(lists, "partial"))
    with open(os.path.join(work, "sources.list"), "w") as f:
        f.write("deb-src %s %s main\n" % (MIRROR, SUITE))
    apt = ["apt-get", "-q", "-o", "Dir::Etc::SourceList=%s/sources.list" % work, "-o", "Dir::Etc::SourceParts=/dev/null",
           "-o", "Dir::State::Lists=%s" % lists, "-o", "APT::Sandbox::User=root"]
    run(*apt, "update", stdout=subprocess.DEVNULL)
    # The orig tarball and Debian's patches (asked for separately: some mirrors lack the .dsc).
    run(*apt, "source", "--download-only", "--tar-only", "u-boot", cwd=work, stdout=subprocess.DEVNULL)
    run(*apt, "source", "--download-only", "--diff-only", "u-boot", cwd=work, stdout=subprocess.DEVNULL)
    src = os.path.join(work, "src")
    os.makedirs(src)
    orig = [f for f in os.listdir(work) if ".orig.tar" in f][0]
    debian = [f for f in os.listdir(work) if f.endswith(".debian.tar.xz")][0]
    run("tar", "xf", os.path.join(work, orig), "-C", src, "--strip-components=1")
    run("tar", "xf", os.path.join(work, debian), "-C", src)
    with open(os.path.join(src, "debian/patches/series")) as f:
        for patch in f.read().split("\n"):
            patch = patch.split("#")[0].strip()
            if patch:
                run("patch", "-s", "-p1", "-i", os.path.join("debian/patches", patch), cwd=src)
    build = os.path.join(work, "build")
    make = ["make", "-s", "-C", src, "O=" + build, "CROSS_COMPILE=aarch64-linux-gnu-"]
    run(*make, "qemu_arm64_defconfig")
    lines = []
    for fragment in fragments:
        with open(fragment) as f:
            lines += [line for line in f.read().splitlines() if re.match(r"(# )?CONFIG_", line)]
    lines = [re.sub(r"CONFIG_\w+", lambda m: UBOOT_RENAMED.get(m.group(0), m.group(0)), line, count=1) for line in lines]
    merged = os.path.join(work, "fragments.cfg")
    with open(merged, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    run(os.path.join(src, "scripts/kconfig/merge_config.sh"), "-O", build, "-m",
        os.path.join(build, ".config"), merged, stdout=subprocess.DEVNULL)
    run(*make, "olddefconfig")
    with open(os.path.join(build, ".config")) as f:
        config = f.read().splitlines()
    for line in lines:
        if line not in config:
            raise RuntimeError("U-Boot did not take %r from %s" % (line, ", ".join(fragments)))
    run(*make, "-j%d" % os.cpu_count())
    shutil.copy(os.path.join(build, "u-boot.bin"), out)
    shutil.rmtree(work)


# --- the root ----------------------------------------------------------------------------

# The initramfs is made once, by the kernel's own postinst (-c, after udev and kmod are
# configured: initramfs-tools depends on them); update_initramfs=no skips the -u that
# every later package's trigger would run again under emulation.
INITRAMFS_HOOK = """
mkdir -p "$1/etc/initramfs-tools/conf.d"
printf 'MODULES=list\\n' > "$1/etc/initramfs-tools/conf.d/makespacelive.conf"
printf 'virtio_mmio\\nvirtio_blk\\next4\\n' > "$1/etc/initramfs-tools/modules"
printf 'update_initramfs=no\\n' > "$1/etc/initramfs-tools/update-initramfs.conf"
"""


def base_root():
    """Debian's packages, configured (mmdebstrap under user-mode emulation): a directory."""
    names = packages()
    return cached("root", [SUITE, names, EXCLUDE, UNUSED, INITRAMFS_HOOK, 4], lambda out: _make_root(out, names))


def _make_root(out, names):
    unused = " ".join('"$1"/usr/lib/aarch64-linux-gnu/%s' % name for name in UNUSED)
    argv = ["mmdebstrap", "--arch=arm64", "--variant=apt", "--mode=root", "--format=directory",
            "--essential-hook=" + INITRAMFS_HOOK.strip().replace("\n", " && "),
            "--customize-hook=rm -f " + unused,
            "--include=" + ",".join(names)]
    argv += ["--dpkgopt=path-exclude=" + p for p in EXCLUDE]
    # The essential hook's files win over the packages' conffiles (no prompt).
    argv += ["--dpkgopt=force-confold"]
    argv += ["--dpkgopt=path-include=/usr/share/doc/*/copyright", SUITE, out, MIRROR]
    run(*argv)


# The test's own peers on the guest's simulated radios (a phone, a venue's access point
# with DHCP and an RTMP server): never in the firmware's root, an image of their own that
# the guest mounts and runs through chroot (peers.GuestPeers). busybox-static: udhcpc and
# nslookup for the phone, and wget/nc as the Yocto image has them, runnable from the
# box's own root.
PEERS = ["hostapd", "wpasupplicant", "dnsmasq-base", "iw", "iproute2", "nginx", "libnginx-mod-rtmp", "curl",
         "busybox-static"]


def peers_image():
    """An ext4 image (label `peers`) of the peers' root: Debian trixie arm64."""
    def make(out):
        os.makedirs(out)
        root = os.path.join(out, "root")
        argv = ["mmdebstrap", "--arch=arm64", "--variant=essential", "--mode=root", "--format=directory",
                "--include=" + ",".join(PEERS)]
        argv += ["--dpkgopt=path-exclude=" + p for p in EXCLUDE]
        run(*argv, SUITE, root, MIRROR)
        size = int(subprocess.check_output(["du", "-sm", root]).split()[0])
        run("mkfs.ext4", "-q", "-F", "-L", "peers", "-d", root, os.path.join(out, "peers.ext4"), "%dM" % (size + 64))
        shutil.rmtree(root)
    return os.path.join(cached("peers", [SUITE, PEERS, EXCLUDE, 1], make), "peers.ext4")


def sysroot():
    """Debian's arm64 GStreamer and GLib development files with everything they link
    against, unpacked (no maintainer scripts run): what the service is linked against.
    Bookworm: its C library is the cross compiler's, so every symbol version resolves."""
    return cached("sysroot", [SYSROOT_SUITE, SYSROOT_PACKAGES], lambda out: run(
        "mmdebstrap", "--arch=arm64", "--variant=extract", "--mode=root", "--format=directory",
        "--include=" + ",".join(SYSROOT_PACKAGES), SYSROOT_SUITE, out, MIRROR, stdout=subprocess.DEVNULL))


def service_binary():
    """The service cross-compiled for aarch64 against the sysroot above."""
    root = sysroot()
    env = dict(os.environ, PKG_CONFIG_ALLOW_CROSS="1", PKG_CONFIG_SYSROOT_DIR=root,
               PKG_CONFIG_LIBDIR=":".join(root + d for d in ("/usr/lib/aarch64-linux-gnu/pkgconfig", "/usr/share/pkgconfig")),
               CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="aarch64-linux-gnu-gcc",
               CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=--sysroot=" + root)
    run("cargo", "build", "--release", "--locked", "--quiet", "--target", TARGET, cwd=layer.ROOT, env=env)
    return os.path.join(layer.ROOT, "target", TARGET, "release", "makespacelive")


def signing_keys():
    return cached("keys", [os.path.join(layer.ROOT, "scripts/make-signing-keys")],
                  lambda out: run(os.path.join(layer.ROOT, "scripts/make-signing-keys"), out, stdout=subprocess.DEVNULL))


def test_ssh_key():
    def make(out):
        os.makedirs(out)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(out, "id"))
    return os.path.join(cached("ssh", ["ed25519"], make), "id")


# --- slots, disk, bundles ----------------------------------------------------------------

STAND_IN_VAR = """[Unit]
Description=Stand-in for Yocto's volatile binds: a writable /var over the read-only root
DefaultDependencies=no
After=systemd-remount-fs.service
Before=local-fs.target var-volatile.mount systemd-journal-flush.service systemd-random-seed.service systemd-tmpfiles-setup.service systemd-timesyncd.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'mkdir -p /run/stand-in-var/upper /run/stand-in-var/work && mount -t overlay overlay -o lowerdir=/var,upperdir=/run/stand-in-var/upper,workdir=/run/stand-in-var/work /var'

[Install]
WantedBy=local-fs.target
"""


# The image's unit name -> the stand-in's, where Debian names it otherwise. oe-core's
# socket mode starts an sshd@.service per connection (Accept=yes), Debian's ssh.socket
# one ssh.service (Accept=no); both make missing host keys in a unit of their own.
UNIT_NAMES = {"sshd.socket": "ssh.socket", "sshd@.service": "ssh.service", "sshdgenkeys.service": "sshd-keygen.service"}
# Static units the image installs outside SYSTEMD_SERVICE, each with where.
UNITS_COMPANION = {
    # openssh's do_install: the host keys, generated before sshd@.service's first start.
    "sshdgenkeys.service",
}
# Units the image enables that the stand-in has not, each with what stands in for it.
UNITS_IMAGE_ONLY = {
    # volatile-binds: stand-in-var.service (an overlay on all of /var) stands in.
    "var-volatile-lib.service", "var-volatile-cache.service", "var-volatile-spool.service", "var-volatile-srv.service",
    # busybox's syslogd: the journal stands in (DEBIAN["busybox-syslog"]).
    "busybox-syslog.service",
}
# Units only the stand-in enables, each with why.
UNITS_STAND_IN_ONLY = {
    # Stands in for volatile-binds (above).
    "stand-in-var.service",
}


# GStreamer's plugins: the stand-in keeps the image's and no more (Debian installs a plugin
# set whole, Yocto one plugin per package: gstreamer1.0-plugins-SET-NAME is libgstNAME.so),
# so an element the image lacks is missing here too. Kept besides: GStreamer's own core
# (coreelements, coretracers: the gstreamer1.0 package the plugins depend on) and x264,
# the stand-in for the Pi's encoder (v4l2h264enc: in video4linux2, with no device here).
GST_PLUGINS = "usr/lib/aarch64-linux-gnu/gstreamer-1.0"
GST_CORE = {"coreelements", "coretracers", "x264"}
# The image's plugins Debian has not -> the stand-in's (the rung's README says why).
GST_STAND_IN = {"fdkaac": "voaacenc"}
# Libraries systemd loads with dlopen() (its .note.dlopen, `systemd-analyze dlopen-metadata`
# on the box): no NEEDED entry names them, so they are never taken for a removed plugin's.
SYSTEMD_SHARED = "usr/lib/aarch64-linux-gnu/systemd/libsystemd-shared-*.so"
# Device trees Debian's kernel package installs: U-Boot hands the kernel QEMU's own.
KERNEL_DTBS = "usr/lib/linux-image-*"


def elf_needed(path):
    """The shared libraries an ELF file names (readelf), or None for a file that is not one."""
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return None
    out = subprocess.run(["readelf", "-dW", path], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", out)


def dlopen_sonames(root):
    names = set()
    for path in glob.glob(os.path.join(root, SYSTEMD_SHARED)):
        with open(path, "rb") as f:
            data = f.read()
        for listed in re.findall(rb'"soname":\s*\[([^\]]*)\]', data):
            names.update(n.decode() for n in re.findall(rb'"([^"]+)"', listed))
    if not names:
        raise RuntimeError("no dlopen() metadata found in %s" % SYSTEMD_SHARED)
    return names


def prune(root, image):
    """Removes from a slot what the image does not have: GStreamer plugins it does not
    install, the libraries only they need (by their NEEDED entries, never one something
    kept needs or systemd dlopens), Debian's device trees. Returns the MiB removed."""
    libdir = os.path.dirname(GST_PLUGINS)
    named = {re.sub(r"^gstreamer1\.0-plugins-[a-z]+-", "", p) for p in image["packages"]
             if re.match(r"gstreamer1\.0-plugins-[a-z]+-", p)}
    plugins = GST_CORE | {GST_STAND_IN.get(name, name) for name in named}
    needs, removed = {}, []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            found = elf_needed(path)
            if found is None:
                continue
            needs[path] = found
            plugin = re.fullmatch(r"libgst(.*)\.so", name)
            if folder == os.path.join(root, GST_PLUGINS) and plugin and plugin.group(1) not in plugins:
                removed.append(path)
    absent = sorted(plugins - GST_CORE - {re.fullmatch(r"libgst(.*)\.so", os.path.basename(p)).group(1)
                                          for p in needs if os.path.dirname(p) == os.path.join(root, GST_PLUGINS)})
    if absent:
        raise RuntimeError("the stand-in has no GStreamer plugin %s that the image installs (%s)" % (", ".join(absent), MANIFEST))

    def closure(start):
        seen, todo = set(), list(start)
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            for soname in needs.get(path, []):
                target = os.path.join(root, libdir, soname)
                if os.path.exists(target):
                    todo.append(os.path.realpath(target))
        return seen

    dlopened = {os.path.realpath(os.path.join(root, libdir, n)) for n in dlopen_sonames(root)}
    top = lambda path: os.path.dirname(path) == os.path.join(root, libdir)  # noqa: E731
    kept = closure([p for p in needs if p not in removed and not top(p)] + sorted(dlopened))
    removed += sorted(p for p in closure(removed) - kept - set(removed) if top(p))
    # And a library nothing kept needs that needs one of those: it could not load any more.
    while True:
        gone = {os.path.basename(p) for p in removed} | {os.path.basename(link) for link in glob.glob(
            os.path.join(root, libdir, "*.so*")) if os.path.islink(link) and os.path.realpath(link) in removed}
        broken = [p for p in needs if top(p) and p not in kept and p not in removed and gone & set(needs[p])]
        if not broken:
            break
        removed += broken
    size = sum(os.path.getsize(p) for p in removed)
    gone = set(removed)
    for path in removed:
        os.unlink(path)
    # The libraries' soname links, now dangling.
    for link in glob.glob(os.path.join(root, libdir, "*.so*")):
        if os.path.islink(link) and os.path.realpath(link) in gone:
            os.unlink(link)
    for trees in glob.glob(os.path.join(root, KERNEL_DTBS)):
        size += int(subprocess.check_output(["du", "-sb", trees]).split()[0])
        shutil.rmtree(trees)
    return size >> 20


def check_kernel(root, image):
    """Debian's kernel has every option of our kernel fragments (built in or a module)."""
    config = {}
    for path in glob.glob(os.path.join(root, "boot/config-*")):
        with open(path) as f:
            config.update(line.strip().split("=", 1) for line in f if line.startswith("CONFIG_"))
    missing = ["%s=%s" % (name, value) for name, value in sorted(image["kernel"]["config"].items())
               if value in ("y", "m") and config.get(name) not in ("y", "m")]
    if missing:
        raise RuntimeError("Debian's kernel lacks what %s asks for: %s" % (", ".join(image["kernel"]["fragments"]),
                                                                           ", ".join(missing)))


class Slot:
    """A root slot being assembled in a directory: the Debian base plus the project's
    own files installed as the recipes install them."""

    def __init__(self, work):
        self.dir = os.path.join(work, "root")
        self.values = layer.layout()
        run("rm", "-rf", self.dir)
        run("cp", "-a", base_root(), self.dir)
        self._install_project()

    def path(self, destination):
        return os.path.join(self.dir, destination.lstrip("/"))

    def nsswitch_hosts(self, hosts):
        """/etc/nsswitch.conf's hosts line is the image's (Debian's postinsts wrote their
        own); a module it names that the root has no library for fails the rung."""
        for module in re.sub(r"\[[^]]*\]", " ", hosts).split():
            if module not in ("files", "dns") and not glob.glob(self.path("/usr/lib/*/libnss_%s.so.2" % module)):
                raise RuntimeError("the image looks names up through NSS module %r; the stand-in has no "
                                   "libnss_%s.so.2 (%s)" % (module, module, MANIFEST))
        with open(self.path("/etc/nsswitch.conf")) as f:
            text = f.read()
        text, found = re.subn(r"^hosts:.*$", "hosts:          " + hosts, text, flags=re.M)
        if found != 1:
            raise RuntimeError("Debian's /etc/nsswitch.conf has %d hosts lines" % found)
        self.put("/etc/nsswitch.conf", text)

    def put(self, destination, data=None, source=None, mode=0o644):
        target = self.path(destination)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target):
            os.unlink(target)
        if source is not None:
            shutil.copyfile(source, target)
        else:
            with open(target, "w") as f:
                f.write(data)
        os.chmod(target, mode)

    def _install_list(self, listing, folder):
        for mode, source, destination in layer.install_list(listing):
            path = os.path.join(folder, source)
            if os.path.exists(path):
                self.put(destination, source=path, mode=int(mode, 8))
            else:
                self.put(destination, data=layer.render(path + ".in", self.values), mode=int(mode, 8))

    def _install_project(self):
        meta = layer.META
        # makespacelive: cargo installs the binary in /usr/bin; the rest from the list.
        self.put("/usr/bin/makespacelive", source=service_binary(), mode=0o755)
        self._install_list(os.path.join(layer.ROOT, "conf/makespacelive.install"), layer.ROOT)
        # makespacelive-data, from its own list.
        self._install_list(os.path.join(DATA_RECIPE, "files/makespacelive-data.install"), os.path.join(DATA_RECIPE, "files"))
        # The appends: rauc-conf (/usr/lib/rauc), u-boot (fw_env.config), base-files
        # (fstab), networkmanager (keyfiles on /data), avahi (IPv4 only).
        self.put("/usr/lib/rauc/system.conf", layer.render(os.path.join(meta, "recipes-core/rauc/files/system.conf.in"), self.values))
        self.put("/usr/lib/rauc/ca.cert.pem", source=os.path.join(signing_keys(), "ca.cert.pem"))
        self.put("/etc/fw_env.config", layer.render(os.path.join(meta, "recipes-bsp/u-boot/files/fw_env.config.in"), self.values))
        self.put("/etc/fstab", layer.render(os.path.join(meta, "recipes-core/base-files/files/fstab.in"), self.values))
        self.put("/etc/NetworkManager/conf.d/makespacelive.conf",
                 source=os.path.join(meta, "recipes-connectivity/networkmanager/files/makespacelive.conf"))
        self.put("/etc/dbus-1/system.d/makespacelive-networkmanager.conf",
                 source=os.path.join(meta, "recipes-connectivity/networkmanager/files/makespacelive-networkmanager.conf"))
        self.put("/etc/avahi/avahi-daemon.conf",
                 source=os.path.join(meta, "recipes-connectivity/avahi/files/avahi-daemon.conf"))
        image = manifest()
        check_kernel(self.dir, image)
        print("  stand-in: %d MiB the image does not have removed (GStreamer plugins, their libraries, "
              "device trees)" % prune(self.dir, image), flush=True)
        self.users(image)
        for path, target in image["links"].items():
            if os.path.lexists(self.path(path)):
                os.unlink(self.path(path))
            os.symlink(target, self.path(path))
        self.nsswitch_hosts(image["nsswitch_hosts"])
        # What the Yocto build makes that Debian does not: the kernel and its initramfs in
        # the slot's /boot under the names the boot script loads, mount points on the
        # read-only root, a writable /var (volatile binds), no machine-id of its own.
        boot = self.path("/boot")
        kernel = [f for f in os.listdir(boot) if f.startswith("vmlinuz-")][0]
        initrd = [f for f in os.listdir(boot) if f.startswith("initrd.img-")][0]
        os.rename(os.path.join(boot, kernel), os.path.join(boot, self.values["MAKESPACELIVE_KERNEL"]))
        os.rename(os.path.join(boot, initrd), os.path.join(boot, "initramfs"))
        for directory in ("/data", "/var/volatile"):
            os.makedirs(self.path(directory), exist_ok=True)
        self.put("/etc/machine-id", "")
        self.put("/usr/lib/systemd/system/stand-in-var.service", STAND_IN_VAR)
        self.units(image)
        # The tests drive the box over SSH with a key of their own.
        self.put("/root/.ssh/authorized_keys", source=test_ssh_key() + ".pub", mode=0o600)
        self.put("/etc/hostname", layer.hostname() + "\n")
        self.os_release(layer.distro()["DISTRO_VERSION"])

    def users(self, image):
        """The image's users and groups, as useradd.bbclass creates them: those Debian's
        packages did not create already (under the same names)."""
        for group in image["groups"]:
            if run("chroot", self.dir, "getent", "group", group["name"], check=False, stdout=subprocess.DEVNULL).returncode:
                run("chroot", self.dir, "groupadd", *shlex.split(group["groupadd"]))
        for user in image["users"]:
            if run("chroot", self.dir, "getent", "passwd", user["name"], check=False, stdout=subprocess.DEVNULL).returncode:
                run("chroot", self.dir, "useradd", *shlex.split(user["useradd"]))

    def unit_files(self):
        """{unit file: state} as systemctl lists them in the slot (enabled, disabled, static, …)."""
        listed = subprocess.check_output(["systemctl", "--root", self.dir, "list-unit-files", "--no-legend", "--plain"],
                                         text=True)
        return dict(line.split()[:2] for line in listed.splitlines() if line.strip())

    def units(self, image):
        """Exactly the image's units enabled: Debian's packages enable their own on
        installation; what the image does not enable is disabled (shipped there, disabled
        by its presets) or masked (not in the image at all). A unit without an [Install]
        section (static) is started by what needs it, in the image as here."""
        shipped = {UNIT_NAMES.get(u, u) for p in image["packages"].values() for u in p["units"]}
        shipped |= {UNIT_NAMES.get(u, u) for u in image["units"]}
        # What the image installs beside its SYSTEMD_SERVICE units, which the manifest
        # cannot list (unit files are seen only in a build): the service a socket starts,
        # which systemd.bbclass packages with it, and the static units UNITS_COMPANION
        # names. Disabled here as there, never masked: a masked service fails its socket.
        for unit in list(shipped):
            if unit.endswith(".socket"):
                shipped |= {UNIT_NAMES.get(unit[:-7] + s, unit[:-7] + s) for s in (".service", "@.service")}
        shipped |= {UNIT_NAMES.get(u, u) for u in UNITS_COMPANION}
        removed = set(image["removed_after_install"])  # with its units (run-postinsts)
        want = {UNIT_NAMES.get(u, u) for u, unit in image["units"].items()
                if unit["enabled"] and unit["package"] not in removed} - UNITS_IMAGE_ONLY
        want |= UNITS_STAND_IN_ONLY
        files = self.unit_files()
        missing = sorted(want - set(files))
        if missing:
            raise RuntimeError("the stand-in has no unit %s that the image enables (%s)" % (", ".join(missing), MANIFEST))
        enabled = {u for u, state in files.items() if state == "enabled"}
        extra = sorted(enabled - want)
        if extra:
            run("systemctl", "--root", self.dir, "--quiet", "disable", *extra)
        want -= {u for u, state in files.items() if state == "static"}
        run("systemctl", "--root", self.dir, "--quiet", "enable", *sorted(want))
        # `systemctl enable` follows each unit's Also= (avahi-daemon.service's socket), as
        # the image's postinsts do: unit files the manifest cannot see, enabled with it.
        also = {u for u, state in self.unit_files().items() if state == "enabled"} - want
        absent = [unit for unit in extra if unit not in shipped and unit not in also]
        if absent:
            run("systemctl", "--root", self.dir, "--quiet", "mask", *absent)
        enabled = {u for u, state in self.unit_files().items() if state == "enabled"}
        if enabled != want | also:
            raise RuntimeError("the stand-in's enabled units differ from the image's (%s): %s"
                               % (MANIFEST, ", ".join(sorted(enabled ^ (want | also)))))

    def os_release(self, version):
        """/usr/lib/os-release as oe-core's os-release recipe writes it (VERSION_ID is
        DISTRO_VERSION, as the bundle's version is), /etc/os-release a link to it."""
        distro = layer.distro()
        fields = [("ID", distro["DISTRO"], False), ("NAME", distro["DISTRO_NAME"], True),
                  ("VERSION", "%s (%s)" % (version, distro["DISTRO_CODENAME"]), True), ("VERSION_ID", version, False),
                  ("VERSION_CODENAME", distro["DISTRO_CODENAME"], False),
                  ("PRETTY_NAME", "%s %s (%s)" % (distro["DISTRO_NAME"], version, distro["DISTRO_CODENAME"]), True)]
        self.put("/usr/lib/os-release", "".join('%s="%s"\n' % (k, v) if quoted else "%s=%s\n" % (k, v)
                                                for k, v, quoted in fields))
        if os.path.lexists(self.path("/etc/os-release")):
            os.unlink(self.path("/etc/os-release"))
        os.symlink("../usr/lib/os-release", self.path("/etc/os-release"))

    def image(self, out, label="root"):
        """A read-only ext4 image of the slot, no larger than its content needs."""
        size = int(subprocess.check_output(["du", "-sm", self.dir]).split()[0])
        if os.path.exists(out):
            os.unlink(out)
        run("mkfs.ext4", "-q", "-F", "-L", label, "-d", self.dir, out, "%dM" % (size * 5 // 4 + 64))
        # Then as small as its content allows: an install writes the whole image.
        run("e2fsck", "-fy", out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run("resize2fs", "-M", out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        fields = dict(line.split(":", 1) for line in subprocess.check_output(["dumpe2fs", "-h", out], text=True,
                                                                              stderr=subprocess.DEVNULL).splitlines()
                      if ":" in line)
        os.truncate(out, int(fields["Block count"]) * int(fields["Block size"]))
        return out


def mkimage_script(values, out):
    with tempfile.NamedTemporaryFile("w", suffix=".cmd") as cmd:
        cmd.write(layer.render(os.path.join(layer.META, "recipes-bsp/u-boot/files/makespacelive-boot.cmd.in"), values))
        cmd.flush()
        run("mkimage", "-A", "arm64", "-T", "script", "-C", "none", "-n", "makespacelive", "-d", cmd.name, out,
            stdout=subprocess.DEVNULL)


def disk(out, slot_a, grow_mb=1024):
    """The card: the layer's qemu wks layout (four MBR partitions), boot.scr on the FAT
    partition, slot A filled, slot B empty, a fresh data partition; grow_mb of free space
    after it, as on a card larger than the image."""
    values = layer.layout()
    parts = layer.wks(os.path.join(layer.META, "files/wic/makespacelive-qemu.wks.in"), values)
    align = 4
    start, table = align, []
    for part in parts:
        table.append((start, part))
        start += (part["size_mb"] + align - 1) // align * align
    if os.path.exists(out):
        os.unlink(out)
    run("truncate", "-s", "%dM" % (start + grow_mb), out)
    script = "label: dos\n" + "".join(
        "start=%dMiB, size=%dMiB, type=%s%s\n" % (s, p["size_mb"], "c" if p["fstype"] == "vfat" else "83",
                                                 ", bootable" if p["active"] else "")
        for s, p in table)
    run("sfdisk", "-q", out, input=script.encode())
    work = tempfile.mkdtemp(dir=CACHE)
    for s, part in table:
        piece = os.path.join(work, part["label"])
        if part["fstype"] == "vfat":
            run("mkfs.vfat", "-C", "-n", part["label"], piece, str(part["size_mb"] * 1024), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            mkimage_script(values, os.path.join(work, "boot.scr"))
            run("mcopy", "-i", piece, os.path.join(work, "boot.scr"), "::boot.scr")
        elif part["source"] == "rootfs":
            piece = slot_a
        elif part["source"] == "empty":
            continue
        else:
            run("mkfs.ext4", "-q", "-F", "-L", part["label"], piece, "%dM" % part["size_mb"])
        run("dd", "if=" + piece, "of=" + out, "bs=1M", "seek=%d" % s, "conv=notrunc,sparse", "status=none")
    shutil.rmtree(work)
    return out


def bundle(slot_image, version, out, fast=True, aside=False):
    """A signed verity bundle of a slot image, as makespacelive-bundle makes it; `fast`:
    lz4 instead of mksquashfs's default (gzip, the layer's), which only gooseBit needs:
    it reads the bundle's manifest with PySquashfsImage, whose lz4 support cannot read
    squashfs's lz4 blocks. `aside`: at the lowest CPU priority, beside a running box."""
    work = tempfile.mkdtemp(dir=CACHE)
    shutil.copyfile(slot_image, os.path.join(work, "rootfs.ext4"))
    with open(os.path.join(work, "manifest.raucm"), "w") as f:
        f.write("[update]\ncompatible=makespacelive-%s\nversion=%s\n\n[bundle]\nformat=verity\n\n"
                "[image.rootfs]\nfilename=rootfs.ext4\n" % (layer.MACHINE, version))
    keys = signing_keys()
    if os.path.exists(out):
        os.unlink(out)
    run(*(["nice", "-n", "19"] if aside else []), "rauc", "bundle", "--cert", os.path.join(keys, "signing.cert.pem"), "--key", os.path.join(keys, "signing.key.pem"),
        "--keyring", os.path.join(keys, "ca.cert.pem"), *(["--mksquashfs-args=-comp lz4"] if fast else []), work, out,
        stdout=subprocess.DEVNULL)
    shutil.rmtree(work)
    return out
