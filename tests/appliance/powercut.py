"""Power cuts at random moments on the QEMU rung (scripts/bench-powercut): the box must
come back on a good slot by itself, stream, and keep every setting it had.

The moments, in turn:
  install      `rauc install` of a signed verity bundle, cut anywhere in it
  first boot   the first boot of a new card (data partition grown and laid out) or of a
               freshly installed slot, cut anywhere from power-on to healthy
  save         the service's atomic settings save (import-env as the service user, in a
               loop), cut anywhere in it
  fw_setenv    libubootenv rewriting U-Boot's environment (the boot counters live there),
               in a loop, cut anywhere in it
After each cut: power on, and wait for the box to publish to the host's nginx-rtmp again.
A box that does not publish within RECOVER seconds is a brick (counted, its console kept,
then a new card so the run goes on). Settings are the user's config.toml: after a cut it
must still be a valid file holding the stream key and one of the values written (the one
before or the one being saved); and U-Boot's environment must still hold the variable the
bench set in it (a lost environment is U-Boot's defaults: boot counters and all reset).
A first boot is cut within the time a first boot takes to publish (the longest seen so
far). A cut's timing is drawn from a seeded random generator: the same --seed repeats the
same run."""

import argparse
import os
import random
import shutil
import statistics
import time
import tomllib

from . import build
from .machine import Appliance
from .peers import RtmpServer

KEY = "powercut"
BOOT = 900  # s: power-on to SSH under TCG on a busy 2-core machine
RECOVER = 1500  # s: power-on to published again, else the cut bricked the box
MOMENTS = ("install", "first boot", "save", "fw_setenv")
CONFIG = "/data/makespacelive/config.toml"
CLI = "--config /usr/share/makespacelive/defaults.toml --data-dir /data/makespacelive"
# The two audio bitrates the save loop writes in turn (neither the default, so the file
# holds it): after a cut, one of them is there.
BITRATES = ("96", "64")
# Set in U-Boot's environment at setup, rewritten by the fw_setenv moment.
ENV_VARIABLE = "makespacelive_powercut"


def settings_command(url, bitrate):
    return ("runuser -u makespacelive -- env AV_STREAM_URL=%s AV_STREAM_KEY=%s AV_VIDEO_SOURCE=test "
            "AV_VIDEO_WIDTH=320 AV_VIDEO_HEIGHT=180 AV_VIDEO_FRAMERATE=15 AV_AUDIO_BITRATE=%s "
            "makespacelive import-env %s" % (url, KEY, bitrate, CLI))


class Bench:
    def __init__(self, work, seed):
        self.work = work
        self.rng = random.Random(seed)
        self.server = RtmpServer()
        slot = build.Slot(work)
        slot.put("/etc/makespacelive-build", "1.0\n")
        self.factory = slot.image(os.path.join(work, "slot-1.0.ext4"))
        slot.put("/etc/makespacelive-build", "2.0\n")
        self.bundle = build.bundle(slot.image(os.path.join(work, "slot-2.0.ext4")), "2.0",
                                   os.path.join(work, "update.raucb"))
        self.disk = os.path.join(work, "card.img")
        self.box = None
        self.install_s = 120.0  # until the first full install is timed
        self.first_boot_s = 90.0  # power-on to published: the longest boot seen

    # --- the box -------------------------------------------------------------------------

    def new_card(self):
        """A factory card, powered on for the first time, set up and streaming."""
        if self.box:
            self.box.power_cut()
        build.disk(self.disk, self.factory)
        self.box = Appliance(self.disk, os.path.join(self.work, "console.log"), build.uboot())
        self.box.power_on()
        self.box.wait_ssh(BOOT)
        self.setup()

    def setup(self):
        """Settings as a person would set them, then streaming."""
        self.box.wait_until("test -d /data/makespacelive && systemctl is-active makespacelive.service", 600)
        self.box.ssh(settings_command(self.server.guest_url(), BITRATES[0]) + " && systemctl reload-or-restart makespacelive")
        if not self.server.wait_publishing(KEY, 600):
            raise AssertionError("the new card never published:\n" + self.box.tail())
        if self.box.run("test -f /data/update.raucb").returncode:
            self.box.put(self.bundle, "/data/update.raucb")
        if self.env_value() is None:
            self.box.ssh("fw_setenv %s 0" % ENV_VARIABLE)

    def settings(self):
        """The stream key and audio bitrate the box holds, or why they are lost."""
        if ".bad-" in self.box.ssh("ls /data/makespacelive"):
            return None, "the settings file was put aside as bad"
        if self.box.run("makespacelive check-config %s" % CONFIG).returncode != 0:
            return None, "%s does not validate" % CONFIG
        try:
            held = tomllib.loads(self.box.ssh("cat " + CONFIG))
        except (AssertionError, tomllib.TOMLDecodeError) as e:
            return None, "%s unreadable: %s" % (CONFIG, e)
        if KEY not in str(held.get("destinations", held.get("stream", ""))):
            return None, "no stream key in %s" % CONFIG
        bitrate = str(held.get("audio", {}).get("bitrate_kbps"))
        if bitrate not in BITRATES:
            return None, "the audio bitrate is %s, not one of those written (%s)" % (bitrate, ", ".join(BITRATES))
        value = self.env_value()
        if value is None or not value.isdigit():
            return None, "U-Boot's environment lost %s (%r)" % (ENV_VARIABLE, value)
        return bitrate, ""

    def env_value(self):
        """The bench's variable in U-Boot's environment, or None. (libubootenv's
        `fw_printenv -n` prints nothing and exits 0 for a variable that is not there.)"""
        for line in self.box.ssh("fw_printenv").splitlines():
            name, _, value = line.partition("=")
            if name == ENV_VARIABLE:
                return value
        return None

    def slot(self):
        return [w for w in self.box.ssh("cat /proc/cmdline").split() if w.startswith("rauc.slot=")][0][10:]

    def cut_after(self, seconds):
        time.sleep(seconds)
        self.box.power_cut()
        # nginx keeps the dead session until drop_idle_publisher ends it.
        deadline = time.monotonic() + 30
        while KEY in self.server.publishing() and time.monotonic() < deadline:
            time.sleep(1)

    # --- the moments -----------------------------------------------------------------------

    def cut_install(self):
        self.box.ssh("systemd-run --unit=powercut-install-%d rauc install /data/update.raucb" % time.time_ns())
        at = self.rng.uniform(1, self.install_s)
        self.cut_after(at)
        return "%.0f s into rauc install" % at

    def cut_first_boot(self, factory):
        if factory:
            self.box.power_cut()
            build.disk(self.disk, self.factory)
            self.box.power_on()
        else:
            start = time.monotonic()
            self.box.ssh("rauc install /data/update.raucb", timeout=1800)
            self.install_s = time.monotonic() - start
            self.box.send("systemctl reboot")
        at = self.rng.uniform(2, self.first_boot_s)
        self.cut_after(at)
        return "%.0f s into the first boot of %s" % (at, "a factory card" if factory else "an installed slot")

    def cut_save(self):
        loop = "while :; do %s; %s; done" % (settings_command(self.server.guest_url(), BITRATES[1]),
                                             settings_command(self.server.guest_url(), BITRATES[0]))
        self.box.send(loop)
        at = self.rng.uniform(2, 20)
        self.cut_after(at)
        return "%.0f s into a loop of settings saves" % at

    def cut_fw_setenv(self):
        self.box.send("i=0; while :; do i=$((i+1)); fw_setenv %s $i; done" % ENV_VARIABLE)
        at = self.rng.uniform(2, 20)
        self.cut_after(at)
        return "%.0f s into a loop of fw_setenv" % at

    # --- the run -------------------------------------------------------------------------

    def recover(self, factory):
        """Power on; seconds to published again, or None (a brick). A factory card had
        no settings yet: it is set up once it is up, as a person would."""
        start = time.monotonic()
        self.box.power_on()
        if factory:
            try:
                self.box.wait_ssh(RECOVER)
                self.setup()
            except AssertionError:
                return None
        elif not self.server.wait_publishing(KEY, RECOVER):
            return None
        seconds = time.monotonic() - start
        if not factory:  # a factory card's time includes its setup
            self.first_boot_s = max(self.first_boot_s, seconds)
        return seconds

    def run(self, cuts):
        self.new_card()
        rows = []
        for n in range(cuts):
            moment = MOMENTS[n % len(MOMENTS)]
            before = self.slot()
            factory = moment == "first boot" and (n // len(MOMENTS)) % 2 == 0
            if moment == "install":
                what = self.cut_install()
            elif moment == "first boot":
                what = self.cut_first_boot(factory)
            elif moment == "save":
                what = self.cut_save()
            else:
                what = self.cut_fw_setenv()
            seconds = self.recover(factory)
            row = {"moment": moment, "what": what, "seconds": seconds, "lost": "", "slot": ""}
            if seconds is None:
                row["lost"] = "brick"
                keep = os.path.join(self.work, "brick-%d-console.log" % n)
                shutil.copy(self.box.console, keep)
                print("cut %d: BRICK (%s): console kept in %s" % (n + 1, what, keep), flush=True)
                self.new_card()
            else:
                self.box.wait_ssh(BOOT)
                bitrate, why = self.settings()
                if bitrate is None:
                    row["lost"] = why
                row["slot"] = "%s -> %s" % (before, self.slot())
                print("cut %d: %s: published again after %.0f s, slot %s%s" % (
                    n + 1, what, seconds, row["slot"], ", SETTINGS LOST: " + why if row["lost"] else ""), flush=True)
                if row["lost"]:
                    self.setup()
            rows.append(row)
        return rows

    def stop(self):
        if self.box:
            self.box.power_cut()
        self.server.stop()


def table(rows):
    lines = ["%-12s %5s %7s %15s %26s" % ("moment", "cuts", "bricks", "settings lost", "power-on -> published")]
    for moment in MOMENTS + ("all",):
        mine = [r for r in rows if moment in (r["moment"], "all")]
        if not mine:
            continue
        times = [r["seconds"] for r in mine if r["seconds"] is not None]
        spread = "median %.0f s, max %.0f s" % (statistics.median(times), max(times)) if times else "-"
        lines.append("%-12s %5d %7d %15d %26s" % (moment, len(mine), sum(r["lost"] == "brick" for r in mine),
                                                  sum(bool(r["lost"]) and r["lost"] != "brick" for r in mine), spread))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cuts", type=int, default=30, help="power cuts in all (default 30)")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="the random moments' seed")
    args = parser.parse_args()
    work = os.path.join(build.CACHE, "powercut")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    print("bench-powercut: %d cuts, seed %d" % (args.cuts, args.seed), flush=True)
    bench = Bench(work, args.seed)
    try:
        rows = bench.run(args.cuts)
    finally:
        bench.stop()
    print("\n" + table(rows))


if __name__ == "__main__":
    main()
