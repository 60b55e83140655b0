# OEQA runtime tests of the makespacelive appliance (testimage, on QEMU or a real Pi).
import json

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
        self.run_ok("findmnt -n -o OPTIONS / | tr ',' '\\n' | grep -qx ro")
        status, _ = self.target.run('touch /usr/makespacelive-write-test')
        self.assertNotEqual(status, 0, msg='the root filesystem took a write')

    @OETestDepends(['ssh.SSHTest.test_ssh'])
    def test_data_is_writable_and_persistent(self):
        self.run_ok("findmnt -n -o FSTYPE /data | grep -qx ext4")
        self.run_ok('echo kept > /data/oeqa-persist && sync')
        if not hasattr(self.target, 'restart'):
            self.skipTest('persistence needs a target testimage can power-cycle (QEMU)')
        # A power cycle, not a clean reboot: what was synced must survive it.
        self.target.restart()
        self.assertEqual(self.run_ok('cat /data/oeqa-persist', timeout=600).strip(), 'kept')
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
        # Android, Apple and Windows connectivity checks, on any Host header: a portal
        # answers each with a page or a redirect to itself, never "not found".
        for path, host in (('/generate_204', 'connectivitycheck.gstatic.com'),
                           ('/hotspot-detect.html', 'captive.apple.com'),
                           ('/connecttest.txt', 'www.msftconnecttest.com')):
            _, output = self.target.run(
                "wget -S -q -O /dev/null --max-redirect=0 --header 'Host: %s' http://127.0.0.1%s 2>&1 "
                "| awk '/HTTP\\//{print $2; exit}'" % (host, path))
            self.assertIn(output.strip(), ('200', '302', '303', '307'), msg='%s on %s: %s' % (path, host, output))
