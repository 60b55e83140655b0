"""makespacelive-health's deadlines (issue 17, finding 4): counted from the service's first
start, with a backstop from boot; a service that keeps dying is judged by its deaths. systemctl and rauc are fakes on PATH that answer as
systemd does and log what they are asked; the clock is the real /proc/uptime. The QEMU
rung runs the script against the real systemd."""

import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HEALTH = os.path.join(HERE, "..", "..", "meta-makespacelive/recipes-core/makespacelive-data/files/makespacelive-health")

# STARTED: seconds ago makespacelive.service first left "inactive" ("never": not started);
# ACTIVE_AFTER: is-active says "active" from that call on (0: never); RESTARTS: how often
# systemd restarted it.
SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$FAKE/log"
case "$1" in
is-active)
    calls=$(($(cat "$FAKE/is-active" 2>/dev/null || echo 0) + 1))
    echo "$calls" > "$FAKE/is-active"
    [ "$ACTIVE_AFTER" -gt 0 ] && [ "$calls" -ge "$ACTIVE_AFTER" ]
    ;;
show)
    if [ "$3" = NRestarts ]; then echo "$RESTARTS"
    elif [ "$STARTED" = never ]; then echo 0; else
        echo $(( ($(cut -d. -f1 /proc/uptime) - STARTED) * 1000000 ))
    fi
    ;;
esac
"""
RAUC = """#!/bin/sh
echo "rauc $*" >> "$FAKE/log"
"""


def uptime():
    with open("/proc/uptime") as f:
        return int(float(f.read().split()[0]))


class HealthTest(unittest.TestCase):
    def setUp(self):
        self.fake = tempfile.mkdtemp()
        for name, text in (("systemctl", SYSTEMCTL), ("rauc", RAUC)):
            with open(os.path.join(self.fake, name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(self.fake, name), 0o755)

    def tearDown(self):
        shutil.rmtree(self.fake)

    def health(self, deadline, start_deadline, started, active_after, restarts=0):
        env = dict(os.environ, PATH=self.fake + os.pathsep + os.environ["PATH"], FAKE=self.fake,
                   STARTED=str(started), ACTIVE_AFTER=str(active_after), RESTARTS=str(restarts))
        run = subprocess.run(["sh", HEALTH, str(deadline), str(start_deadline)], env=env, capture_output=True,
                             text=True, timeout=30)
        with open(os.path.join(self.fake, "log")) as f:
            calls = f.read().splitlines()
        return run.returncode, run.stdout + run.stderr, calls

    def test_a_service_started_long_ago_and_not_up_is_judged_at_once(self):
        if uptime() < 300:
            self.skipTest("this host booted less than 300 s ago")
        # The check itself starts now: its own start is not the service's.
        status, output, calls = self.health(120, 100000, started=200, active_after=0)
        self.assertEqual(status, 1)
        self.assertIn("is not up 120 s after it was started", output)
        self.assertEqual(calls[-2:], ["rauc status mark-bad booted", "systemctl reboot"])

    def test_a_service_that_comes_up_within_its_deadline_is_left_alone(self):
        status, output, calls = self.health(120, 100000, started=10, active_after=2)
        self.assertEqual(status, 0, output)
        self.assertNotIn("rauc status mark-bad booted", calls)

    def test_a_service_that_dies_at_every_start_is_judged_by_its_deaths(self):
        status, output, calls = self.health(120, 100000, started=10, active_after=0, restarts=5)
        self.assertEqual(status, 1)
        self.assertIn("died 5 times without once being up", output)
        self.assertEqual(calls[-2:], ["rauc status mark-bad booted", "systemctl reboot"])

    def test_a_service_that_died_a_few_times_and_comes_up_is_left_alone(self):
        status, output, calls = self.health(120, 100000, started=10, active_after=2, restarts=4)
        self.assertEqual(status, 0, output)
        self.assertNotIn("rauc status mark-bad booted", calls)

    def test_a_service_never_started_falls_back_after_the_deadline_from_boot(self):
        status, output, calls = self.health(120, 1, started="never", active_after=0)
        self.assertEqual(status, 1)
        self.assertIn("was not started within 1 s of boot", output)
        self.assertEqual(calls[-2:], ["rauc status mark-bad booted", "systemctl reboot"])

    def test_a_service_not_yet_started_has_its_deadline_from_boot(self):
        status, output, calls = self.health(120, uptime() + 600, started="never", active_after=2)
        self.assertEqual(status, 0, output)
        self.assertNotIn("rauc status mark-bad booted", calls)


if __name__ == "__main__":
    unittest.main()
