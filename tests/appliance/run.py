"""Boots the appliance in QEMU for a person: the same card the rung tests, the console on
the terminal (Ctrl-A X quits QEMU), SSH and the box's web port forwarded to the host."""

import os
import sys

from . import build
from .machine import Appliance


def main():
    work = os.path.join(build.CACHE, "run")
    os.makedirs(work, exist_ok=True)
    disk = os.path.join(work, "card.img")
    if "--fresh" in sys.argv or not os.path.exists(disk):
        slot = build.Slot(work)
        slot.put("/etc/makespacelive-build", "local\n")
        build.disk(disk, slot.image(os.path.join(work, "slot.ext4")))
    box = Appliance(disk, os.path.join(work, "console.log"), build.uboot())
    argv = box.argv()
    argv[argv.index("-serial") + 1] = "mon:stdio"
    argv[argv.index("-chardev"):argv.index("-chardev") + 2] = []
    argv[argv.index("-monitor"):argv.index("-monitor") + 2] = []
    print("makespacelive in QEMU: status http://127.0.0.1:%d/api/status, "
          "ssh -i %s -p %d root@127.0.0.1 (Ctrl-A X quits)" % (box.web_port, build.test_ssh_key(), box.ssh_port),
          flush=True)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
