"""Builds the rung's slow pieces ahead of the scenarios: U-Boot, the peers' image, the
Debian root, the signing keys (build.py caches each under a key of its inputs, so a warm
cache makes this a no-op) and the service cross-compiled (cargo's own no-op when built).
The scenarios then need no internet (appliance/own-network closes it).

scripts/test starts it in the background, at low priority, while cargo's checks and tests
run: cold, the root's package configuration under
user-mode emulation is the rung's longest wait, and it needs no cargo.

The root is one long job on one core (dpkg's scripts under emulation, one at a time), so
it starts first and the others are built beside it: cold, the rung then waits for the
root alone (2026-12-07 at 5571a20, beside cargo's phase: root 1400 s; beside it U-Boot
143 s, the peers 336 s, the service 411 s; the rung waited 382 s for the root)."""

import threading
import time

from . import build


def made(name, make):
    start = time.monotonic()
    make()
    print("prepare: %s ready (%.0f s)" % (name, time.monotonic() - start), flush=True)


def main():
    failed = []

    def root():
        try:
            made("root", build.base_root)
        except BaseException as e:  # reported below, after the others are built
            failed.append(e)

    beside = threading.Thread(target=root, name="root")
    beside.start()
    for name, make in (("u-boot", build.uboot), ("peers", build.peers_image), ("keys", build.signing_keys),
                       ("ssh key", build.test_ssh_key), ("service", build.service_binary)):
        made(name, make)
    beside.join()
    if failed:
        raise failed[0]


if __name__ == "__main__":
    main()
