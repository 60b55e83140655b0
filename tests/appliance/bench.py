"""Boot, update and rollback figures of the appliance under QEMU (TCG), printed as a table.

  power-on -> READY -> published   the card with a destination set, from QEMU's start
  bare boot -> multi-user          the same root booted by QEMU's -kernel straight to
                                   multi-user.target, the service masked: what a plain
                                   system needs on this machine
  update install                   `rauc install` of a signed verity bundle
  rollback                         reboot into a broken slot -> back on the good one,
                                   published again
Ratios compare numbers taken in one run (the machine is shared and noisy)."""

import os
import shutil
import time

from . import build, layer
from .machine import Appliance
from .peers import RtmpServer
from .test_appliance import KEY, Story

BOOT = 900


def main():
    work = os.path.join(build.CACHE, "bench")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    server = RtmpServer()
    slot = build.Slot(work)
    good = slot.image(os.path.join(work, "good.ext4"))
    undo = Story.break_service(slot)
    broken = slot.image(os.path.join(work, "broken.ext4"))
    undo()
    disk = build.disk(os.path.join(work, "card.img"), good)
    box = Appliance(disk, os.path.join(work, "console.log"), build.uboot())
    rows = []
    try:
        box.power_on()
        box.wait_ssh(BOOT)
        box.wait_until("systemctl is-active makespacelive.service", 300)
        box.ssh("runuser -u makespacelive -- env AV_STREAM_URL=%s AV_STREAM_KEY=%s AV_VIDEO_SOURCE=test "
                "AV_VIDEO_WIDTH=320 AV_VIDEO_HEIGHT=180 AV_VIDEO_FRAMERATE=15 makespacelive import-env "
                "--config /usr/share/makespacelive/defaults.toml --data-dir /data/makespacelive" % (server.guest_url(), KEY))
        box.wait_until("systemctl is-active makespacelive-health.service", 300)
        box.send("systemctl poweroff")
        box.process.wait(300)
        start = time.monotonic()
        box.power_on()
        box.wait_console(r"makespacelive: booting slot A ", BOOT)
        uboot = time.monotonic() - start
        box.wait_ssh(BOOT)
        ready = box.wait_until("systemctl show -p ActiveEnterTimestampMonotonic --value makespacelive.service | grep -v '^0$'", 300)
        kernel_to_ready = int(ready) / 1e6
        assert server.wait_publishing(KEY, 300)
        published = time.monotonic() - start
        rows.append(("power-on -> U-Boot boots slot A", uboot))
        rows.append(("kernel start -> service READY (guest clock)", kernel_to_ready))
        rows.append(("power-on -> published", published))
        # Update and rollback.
        bundle = build.bundle(good, "2.0", os.path.join(work, "good.raucb"))
        box.put(bundle, "/data/update.raucb")
        t = time.monotonic()
        box.ssh("rauc install /data/update.raucb", timeout=1200)
        rows.append(("update install (rauc install, verity bundle %d MB)" % (os.path.getsize(bundle) >> 20),
                     time.monotonic() - t))
        box.send("systemctl reboot")
        box.wait_console(r"makespacelive: booting slot B ", BOOT)
        box.wait_ssh(BOOT)
        box.wait_until("systemctl is-active makespacelive-health.service", 300)
        bundle = build.bundle(broken, "broken", os.path.join(work, "broken.raucb"))
        box.put(bundle, "/data/update.raucb")
        box.ssh("rauc install /data/update.raucb", timeout=1200)
        t = time.monotonic()
        box.send("systemctl reboot")
        box.wait_console(r"makespacelive: booting slot A ", BOOT)
        box.wait_console(r"makespacelive: booting slot B ", 1200)
        while KEY in server.publishing():  # the old session, until nginx drops it
            time.sleep(1)
        assert server.wait_publishing(KEY, 600)
        rows.append(("rollback: reboot into a broken slot -> back on B, published", time.monotonic() - t))
        box.power_cut()
        # The bare boot: the same root, QEMU's -kernel, no U-Boot, the service masked.
        values = layer.layout()
        argv = box.argv()
        argv[argv.index("-bios"):argv.index("-bios") + 2] = []
        root = "%s%s" % (values["MAKESPACELIVE_DISK"], values["MAKESPACELIVE_PART_B"])
        boot = slot.path("/boot")
        argv += ["-kernel", os.path.join(boot, values["MAKESPACELIVE_KERNEL"]), "-initrd", os.path.join(boot, "initramfs"),
                 "-append", "console=ttyAMA0 root=%s ro rootwait systemd.mask=makespacelive.service "
                            "systemd.mask=makespacelive-health.service systemd.show_status=1" % root]
        box.argv = lambda: argv
        t = time.monotonic()
        box.power_on()
        box.wait_console(r"Reached target.*[Mm]ulti-[Uu]ser", BOOT)
        bare = time.monotonic() - t
        rows.append(("bare boot of the same root -> multi-user.target", bare))
        rows.append(("ratio: power-on -> published / bare boot", published / bare))
    finally:
        box.power_cut()
        server.stop()
    print("\n%-66s %10s" % ("figure (QEMU TCG, 2 cores)", "value"))
    for name, value in rows:
        print("%-66s %10s" % (name, "%.2f" % value if name.startswith("ratio") else "%.1f s" % value))


if __name__ == "__main__":
    main()
