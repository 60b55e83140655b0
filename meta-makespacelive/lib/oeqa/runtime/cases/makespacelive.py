# OEQA runtime tests of the makespacelive appliance (testimage, on QEMU or a real Pi).
# Commands on the target use what the image has: busybox (wget without long redirect
# options, nc, awk), systemd, rauc. No curl, python3 or util-linux's findmnt.
import json
import time

from oeqa.runtime.case import OERuntimeTestCase
from oeqa.core.decorator.depends import OETestDepends
from oeqa.runtime.decorator.package import OEHasPackage


class MakespaceliveTest(OERuntimeTestCase):

    def run_ok(self, command, timeout=60):
        status, output = self.target.run(command, timeout)
        self.assertEqual(status, 0, msg="%s failed: %s" % (command, output))
        return output

    @OEHasPackage(['makespacelive'])
    @OETestDepends(['ssh.SSHTest.test_ssh'])
    def test_service_active_and_ready(self):
        # Type=notify: "active" is only reached once the service sent READY=1.
        self.run_ok('systemctl is-active makespacelive.service')
        state = self.run_ok('systemctl show -p StatusText --value makespacelive.service')
        self.assertTrue(state.strip(), msg='the service sends a STATUS= line')

    @OETestDepends(['makespacelive.MakespaceliveTest.test_service_active_and_ready'])
    def test_status_api_answers(self):
        body = self.run_ok('wget -q -O - http://127.0.0.1/api/status')
        status = json.loads(body)
        self.assertIn(status['state'], ('idle', 'connecting', 'streaming', 'reconnecting'))
        self.assertIn('destinations', status)

    @OETestDepends(['ssh.SSHTest.test_ssh'])
    def test_root_is_read_only(self):
        self.run_ok("awk '$2 == \"/\" {print $4}' /proc/mounts | tr ',' '\\n' | grep -qx ro")
        status, _ = self.target.run('touch /usr/makespacelive-write-test')
        self.assertNotEqual(status, 0, msg='the root filesystem took a write')

    @OETestDepends(['ssh.SSHTest.test_ssh'])
    def test_data_is_writable_and_persistent(self):
        self.run_ok("awk '$2 == \"/data\" {print $3}' /proc/mounts | grep -qx ext4")
        # A power cycle, not a clean reboot: what was synced must survive it. QEMU's
        # system_reset (QMP) resets the machine at once. A new QEMU process would not do:
        # testimage runs QEMU with -snapshot ("runqemu snapshot", QemuRunner.start), so
        # only the running process keeps what the guest wrote to its disk.
        runner = getattr(self.target, 'runner', None)
        if not hasattr(runner, 'run_monitor'):
            self.skipTest('a power cycle needs a QEMU target (QMP); on a Pi, pull the plug by hand')
        boot_id = self.run_ok('cat /proc/sys/kernel/random/boot_id').strip()
        self.run_ok('echo kept > /data/oeqa-persist && sync')
        answer = runner.run_monitor('system_reset')
        self.assertNotIn('error', answer or {}, msg='QMP system_reset: %s' % answer)
        # U-Boot, the boot script and the whole boot again, under TCG: give it the time
        # testimage gives the first boot.
        deadline = time.time() + int(self.td.get('TEST_QEMUBOOT_TIMEOUT') or 1200)
        while True:
            status, output = self.target.run(
                "cat /proc/sys/kernel/random/boot_id && awk '$2 == \"/data\"' /proc/mounts | grep -q .",
                timeout=60, ignore_ssh_fails=True)
            if status == 0 and output.strip() != boot_id:
                break
            if time.time() > deadline:
                self.fail('the target did not come back with /data after system_reset: %s' % output)
            time.sleep(10)
        # The cases after this one find a booted system ("degraded" is reported, not fatal).
        self.target.run('systemctl is-system-running --wait', timeout=max(60, int(deadline - time.time())))
        self.assertEqual(self.run_ok('cat /data/oeqa-persist').strip(), 'kept')
        self.run_ok('rm /data/oeqa-persist')

    @OEHasPackage(['rauc'])
    @OETestDepends(['ssh.SSHTest.test_ssh'])
    def test_rauc_sees_two_slots_and_the_booted_one(self):
        status = json.loads(self.run_ok('rauc status --output-format=json'))
        slots = [name for slot in status['slots'] for name in slot]
        self.assertEqual(sorted(slots), ['rootfs.0', 'rootfs.1'])
        self.assertIn(status['booted'], ('A', 'B'))

    @OETestDepends(['makespacelive.MakespaceliveTest.test_service_active_and_ready'])
    def test_portal_answers_the_os_probe_paths(self):
        # Android, Apple and Windows connectivity checks, on any Host header: while the box
        # is captive (unconfigured, or on its access point) each is redirected to the
        # portal; otherwise each gets its OS's own success answer. Never "not found".
        # Which of the two the box says is read from its RFC 8908 API.
        api = json.loads(self.run_ok('wget -q -O - http://127.0.0.1/captive-portal/api'))
        self.assertEqual(api['user-portal-url'], 'http://10.42.0.1/')
        for path, host, success in (('/generate_204', 'connectivitycheck.gstatic.com', '204'),
                                    ('/hotspot-detect.html', 'captive.apple.com', '200'),
                                    ('/connecttest.txt', 'www.msftconnecttest.com', '200')):
            # The first answer itself, not where a redirect leads: a raw HTTP/1.0 request
            # through busybox nc (busybox wget has no --max-redirect and follows them).
            _, output = self.target.run(
                "printf 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n' | nc 127.0.0.1 80 | head -n 1"
                % (path, host))
            words = output.split()
            code = words[1] if len(words) > 1 and words[0].startswith('HTTP/') else output
            expected = '302' if api['captive'] else success
            self.assertEqual(code, expected,
                             msg='%s on %s (captive: %s): %s' % (path, host, api['captive'], output))
