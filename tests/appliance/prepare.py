"""Builds the rung's slow, cached pieces ahead of the scenarios: U-Boot, the peers' image,
the Debian root and the signing keys (build.py caches each under a key of its inputs, so a
warm cache makes this a no-op). scripts/test starts it in the background, at low priority,
while cargo's checks and tests run: cold, the root's package configuration under
user-mode emulation is the rung's longest wait, and it needs no cargo."""

import time

from . import build


def main():
    for name, make in (("u-boot", build.uboot), ("peers", build.peers_image), ("root", build.base_root),
                       ("keys", build.signing_keys), ("ssh key", build.test_ssh_key)):
        start = time.monotonic()
        make()
        print("prepare: %s ready (%.0f s)" % (name, time.monotonic() - start), flush=True)


if __name__ == "__main__":
    main()
