"""The appliance under QEMU (aarch64 virt, TCG), started the way kas/qemuarm64.yml tells
runqemu to start it: U-Boot as firmware (QB_DEFAULT_BIOS), no -kernel
(QB_DEFAULT_KERNEL = "none"), the disk and devices of QB_ROOTFS_OPT and QB_OPT_APPEND.
The console goes to a log file; the tests drive the box over SSH through a host port."""

import os
import re
import shlex
import shutil
import socket
import subprocess
import time

from . import build, layer


TRANSFER_SIZE = 1 << 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Appliance:
    def __init__(self, disk, console, bios, peers=None):
        self.disk, self.console, self.bios, self.peers = disk, console, bios, peers
        # How the tests hand the box a large file (a bundle): a drive of its own, written
        # on the host, read by the box with O_DIRECT. SSH under TCG carries 4 MB/s.
        self.transfer = disk + ".transfer"
        self.ssh_port, self.web_port = free_port(), free_port()
        self.process = None
        self.sent = []  # commands started by send(), reaped when the box goes down
        self.seen = 0  # console offset already matched by wait_console

    def argv(self):
        qb = layer.qemu_settings()
        if qb.get("QB_DEFAULT_KERNEL") != "none":
            raise AssertionError("kas/qemuarm64.yml must set QB_DEFAULT_KERNEL = \"none\": with a kernel, runqemu "
                                 "passes -kernel and U-Boot boots it instead of the A/B script")
        if qb.get("QB_DEFAULT_BIOS") != "u-boot.bin":
            raise AssertionError("kas/qemuarm64.yml must start U-Boot as QEMU's firmware (QB_DEFAULT_BIOS)")
        net = "user,id=net0,hostfwd=tcp:127.0.0.1:%d-:22,hostfwd=tcp:127.0.0.1:%d-:80" % (self.ssh_port, self.web_port)
        return (["qemu-system-aarch64", "-machine", "virt", "-cpu", "cortex-a57", "-smp", "2", "-m", "1024",
                 "-bios", self.bios, "-nographic", "-monitor", "none",
                 # Appended to, across power cycles (-serial file: would truncate it).
                 "-chardev", "file,id=console,append=on,path=" + self.console, "-serial", "chardev:console",
                 "-netdev", net, "-device", "virtio-net-device,netdev=net0"]
                # The test's transfer drive and peers (air.py), read-only. Before the card:
                # on virt, a later virtio-mmio device gets a lower transport, which U-Boot
                # counts first (`virtio 0`) and Linux names first (/dev/vda), and both must
                # be the card.
                + ["-drive", "id=transfer,file=%s,if=none,format=raw,readonly=on" % self.transfer,
                   "-device", "virtio-blk-device,drive=transfer,serial=transfer"]
                + (["-drive", "id=peers,file=%s,if=none,format=raw,readonly=on" % self.peers,
                    "-device", "virtio-blk-device,drive=peers"] if self.peers else [])
                + shlex.split(qb["QB_ROOTFS_OPT"].replace("@ROOTFS@", self.disk))
                + shlex.split(qb.get("QB_OPT_APPEND", "")))

    def power_on(self):
        with open(self.console, "a"):
            pass
        with open(self.transfer, "ab") as f:
            f.truncate(TRANSFER_SIZE)  # sparse; the box sees its size as it was at power-on
        self.seen = os.path.getsize(self.console)
        self.process = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

    def power_cut(self):
        """Pulls the plug: QEMU killed, nothing flushed by the guest."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
        for sent in self.sent:
            sent.kill()
            sent.wait()
        self.sent = []

    def text(self):
        with open(self.console, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tail(self, lines=60):
        return "\n".join(self.text().splitlines()[-lines:])

    def wait_console(self, pattern, timeout):
        """Waits for a console line matching `pattern` after what earlier waits matched."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            match = re.compile(pattern).search(text, self.seen)
            if match:
                self.seen = match.end()
                return match
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError("QEMU exited (%s) waiting for %r" % (self.process.returncode, pattern))
            time.sleep(1)
        raise AssertionError("no %r on the console within %d s" % (pattern, timeout))

    def ssh_argv(self, command):
        return ["ssh", "-q", "-i", build.test_ssh_key(), "-p", str(self.ssh_port), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "-o", "BatchMode=yes",
                "root@127.0.0.1", command]

    def send(self, command):
        """Starts `command` on the box without waiting for it (a reboot, a power-off)."""
        self.sent = [p for p in self.sent if p.poll() is None]
        self.sent.append(subprocess.Popen(self.ssh_argv(command), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def run(self, command, timeout=120, stdin=None):
        argv = self.ssh_argv(command)
        if isinstance(stdin, str):
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=stdin)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=stdin or subprocess.DEVNULL)

    def put(self, source, destination):
        """Copies a host file to the box (through the transfer drive)."""
        size = os.path.getsize(source)
        if size > TRANSFER_SIZE:
            raise AssertionError("%s is larger than the transfer drive (%d bytes)" % (source, TRANSFER_SIZE))
        with open(source, "rb") as f, open(self.transfer, "r+b") as drive:
            shutil.copyfileobj(f, drive, 1 << 20)
        # O_DIRECT reads whole blocks only: whole MiBs, then cut to the file's size.
        self.ssh("dd if=/dev/disk/by-id/virtio-transfer of={0} bs=1M iflag=direct count={1} status=none && "
                 "truncate -s {2} {0}".format(destination, -(-size >> 20), size), timeout=600)

    def ssh(self, command, check=True, timeout=120, stdin=None):
        result = self.run(command, timeout, stdin)
        if check and result.returncode != 0:
            raise AssertionError("on the box: %s -> %d\n%s%s" % (command, result.returncode, result.stdout, result.stderr))
        return result.stdout.strip()

    def wait_ssh(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.run("true", timeout=20).returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError("QEMU exited waiting for SSH")
            time.sleep(2)
        raise AssertionError("no SSH within %d s" % timeout)

    def wait_until(self, command, timeout, every=3):
        """Waits until `command` succeeds on the box; returns its output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                result = self.run(command, timeout=30)
                if result.returncode == 0:
                    return result.stdout.strip()
            except subprocess.TimeoutExpired:
                pass
            time.sleep(every)
        raise AssertionError("%r did not succeed on the box within %d s" % (command, timeout))
