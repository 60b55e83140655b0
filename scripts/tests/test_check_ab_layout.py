"""Unit tests of scripts/check-ab-layout: a consistent layout passes, each kind of
disagreement is found. Run: python3 -m unittest discover -s scripts/tests"""

import os
import tempfile
import unittest
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name, path):
    loader = SourceFileLoader(name, path)
    module = module_from_spec(spec_from_loader(name, loader))
    loader.exec_module(module)
    return module


ab = load("check_ab_layout", os.path.join(HERE, "..", "check-ab-layout"))

WKS_PI = """\
bootloader --ptable msdos
part /boot --source bootimg-partition --ondisk mmcblk0 --fstype=vfat --label boot --active --size 100
part / --source rootfs --ondisk mmcblk0 --fstype=ext4 --label rootfs_A --fixed-size 1024M
part --source empty --ondisk mmcblk0 --fstype=ext4 --label rootfs_B --fixed-size 1024M
part /data --ondisk mmcblk0 --fstype=ext4 --label data --size 64M
"""
WKS_QEMU = WKS_PI.replace("mmcblk0", "vda")

SYSTEM_CONF = """\
# comment
[system]
compatible=makespacelive-@@MACHINE@@
bootloader=uboot
data-directory=/data/rauc
boot-attempts=@@MAKESPACELIVE_BOOT_ATTEMPTS@@

[keyring]
path=ca.cert.pem

[slot.rootfs.0]
device=@@MAKESPACELIVE_DISK@@2
type=ext4
bootname=A

[slot.rootfs.1]
device=@@MAKESPACELIVE_DISK@@3
type=ext4
bootname=B
"""

FSTAB = """\
/dev/root            /                    auto       ro                            1  1
proc                 /proc                proc       defaults                      0  0
LABEL=data           /data                ext4       defaults,noatime              0  2
"""

# The project's style: the slot block only sets variables, one shared boot tail.
BOOT = """\
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT @@MAKESPACELIVE_BOOT_ATTEMPTS@@
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT @@MAKESPACELIVE_BOOT_ATTEMPTS@@
setenv rootpart
for slot in ${BOOT_ORDER}; do
  if test -n "${rootpart}"; then
    echo "skip"
  elif test "${slot}" = "A" && itest ${BOOT_A_LEFT} -gt 0; then
    setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
    setenv rootpart 2
    setenv raucslot A
  elif test "${slot}" = "B" && itest ${BOOT_B_LEFT} -gt 0; then
    setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
    setenv rootpart 3
    setenv raucslot B
  fi
done
if test -z "${rootpart}"; then
  setenv BOOT_A_LEFT @@MAKESPACELIVE_BOOT_ATTEMPTS@@
  setenv BOOT_B_LEFT @@MAKESPACELIVE_BOOT_ATTEMPTS@@
  saveenv
  reset
fi
saveenv
if load @@BOOT_MEDIA@@ 0:4 ${scriptaddr} machine-id.env; then env import -t ${scriptaddr}; fi
setenv bootargs "${bootargs} root=@@MAKESPACELIVE_DISK@@${rootpart} ro rauc.slot=${raucslot}"
load @@BOOT_MEDIA@@ 0:${rootpart} ${kernel_addr_r} boot/Image
booti ${kernel_addr_r} - ${fdt_addr}
"""

# meta-rauc's documented style: nested ifs, everything literal inside each slot block.
BOOT_LITERAL = """\
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
setenv bootpart
for BOOT_SLOT in "${BOOT_ORDER}"; do
  if test "x${bootpart}" != "x"; then
    # skip remaining slots
  elif test "x${BOOT_SLOT}" = "xA"; then
    if itest ${BOOT_A_LEFT} -gt 0; then
      setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
      setenv bootpart "root=/dev/mmcblk0p2"
      setenv bootdev "mmc 0:2"
      setenv raucslot "rauc.slot=A"
    fi
  elif test "x${BOOT_SLOT}" = "xB"; then
    if itest ${BOOT_B_LEFT} -gt 0; then
      setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
      setenv bootpart "root=/dev/mmcblk0p3"
      setenv bootdev "mmc 0:3"
      setenv raucslot "rauc.slot=B"
    fi
  fi
done
"""

DISTRO = """\
MAKESPACELIVE_DISK ?= "/dev/mmcblk0p"
MAKESPACELIVE_DISK:qemuarm64 = "/dev/vda"
MAKESPACELIVE_BOOT_ATTEMPTS ?= "3"
"""

GOOD = {
    "wks-pi": ("sd.wks.in", WKS_PI),
    "wks-qemu": ("qemu.wks.in", WKS_QEMU),
    "system.conf": ("system.conf.in", SYSTEM_CONF),
    "fstab": ("fstab", FSTAB),
    "boot-pi": ("boot.cmd.in", BOOT),
    "boot-qemu": ("boot.cmd.in", BOOT),
    "distro": ("makespacelive.conf", DISTRO),
}


def run(**changes):
    files = dict(GOOD)
    for role, text in changes.items():
        role = role.replace("_", "-").replace("system-conf", "system.conf")
        files[role] = (files[role][0], text)
    return ab.check(files)[0]


class GoodLayouts(unittest.TestCase):
    def test_project_style_is_consistent(self):
        self.assertEqual(run(), [])

    def test_meta_rauc_literal_style_is_consistent(self):
        conf = SYSTEM_CONF.replace("@@MAKESPACELIVE_BOOT_ATTEMPTS@@", "3") \
                          .replace("@@MAKESPACELIVE_DISK@@", "/dev/mmcblk0p")
        findings = run(boot_pi=BOOT_LITERAL, boot_qemu=BOOT_LITERAL, system_conf=conf,
                       wks_qemu=WKS_PI)
        self.assertEqual(findings, [])

    def test_parsed_partitions_and_slots(self):
        b = ab.parse_boot_script(BOOT)
        self.assertEqual(b["uses"]["A"]["root"], {("@@MAKESPACELIVE_DISK@@", 2)})
        self.assertEqual(b["uses"]["B"]["load"], {3})
        self.assertEqual(b["uses"]["B"]["rauc"], {"B"})
        self.assertEqual([p for _, p in b["global_loads"]], [4])
        self.assertEqual(ab.wks_numbers(ab.parse_wks(WKS_PI)),
                         {"boot": 1, "rootfs_A": 2, "rootfs_B": 3, "data": 4})

    def test_more_than_four_msdos_partitions_use_logical_numbers(self):
        wks = ab.parse_wks(WKS_PI + "part /extra --fstype=ext4 --label extra --size 8M\n")
        self.assertEqual([p["number"] for p in wks["parts"]], [1, 2, 3, 5, 6])
        self.assertTrue(any("not all MBR primary" in f for f in ab.check_wks("x", wks)))

    def test_table_has_a_row_per_file_and_one_for_the_shared_script(self):
        rows = ab.check(GOOD)[1]
        self.assertEqual([r[0] for r in rows],
                         ["sd.wks.in", "qemu.wks.in", "system.conf.in", "fstab", "boot.cmd.in"])


class Mismatches(unittest.TestCase):
    def assertFinds(self, findings, *needles):
        for needle in needles:
            self.assertTrue(any(needle in f for f in findings),
                            "no finding with %r in:\n%s" % (needle, "\n".join(findings)))

    def test_wks_with_rootfs_b_moved(self):
        wks = WKS_PI.splitlines(keepends=True)
        wks.insert(3, "part /spare --ondisk mmcblk0 --fstype=ext4 --label spare --size 8M\n")
        findings = run(wks_pi="".join(wks))
        self.assertFinds(findings, "partitions in order are boot rootfs_A spare rootfs_B data",
                         "rootfs_B is partition 5, the layout has it on 3",
                         "data is partition 6")
        # only the wks is blamed: the other files agree with the layout
        self.assertFalse([f for f in findings if not f.startswith("sd.wks.in")])

    def test_qemu_wks_with_slots_swapped(self):
        lines = WKS_QEMU.splitlines(keepends=True)
        lines[2], lines[3] = lines[3], lines[2]
        findings = run(wks_qemu="".join(lines))
        self.assertFinds(findings, "qemu.wks.in: rootfs_A is partition 3", "qemu.wks.in: rootfs_B is partition 2")

    def test_slot_device_on_the_wrong_partition(self):
        findings = run(system_conf=SYSTEM_CONF.replace("@@3", "@@4"))
        self.assertFinds(findings, "slot rootfs.1 (bootname B) is partition 4, rootfs_B is partition 3")

    def test_boot_script_boots_the_wrong_partition(self):
        bad = BOOT.replace("setenv rootpart 3", "setenv rootpart 4")
        self.assertFinds(run(boot_pi=bad, boot_qemu=bad), "slot B boots root= partition 4",
                         "slot B loads from partition 4")

    def test_literal_script_with_wrong_load_partition(self):
        conf = SYSTEM_CONF.replace("@@MAKESPACELIVE_BOOT_ATTEMPTS@@", "3") \
                          .replace("@@MAKESPACELIVE_DISK@@", "/dev/mmcblk0p")
        bad = BOOT_LITERAL.replace('"mmc 0:3"', '"mmc 0:2"')
        findings = run(boot_pi=bad, boot_qemu=bad, system_conf=conf, wks_qemu=WKS_PI)
        self.assertFinds(findings, "slot B loads from partition 2")

    def test_mismatched_attempts(self):
        findings = run(system_conf=SYSTEM_CONF.replace("boot-attempts=@@MAKESPACELIVE_BOOT_ATTEMPTS@@",
                                                       "boot-attempts=5"))
        self.assertFinds(findings, "BOOT_A_LEFT set to @@MAKESPACELIVE_BOOT_ATTEMPTS@@, system.conf"
                         " boot-attempts is 5")

    def test_literal_attempts_differ(self):
        bad = BOOT.replace("setenv BOOT_B_LEFT @@MAKESPACELIVE_BOOT_ATTEMPTS@@\n  saveenv",
                           "setenv BOOT_B_LEFT 4\n  saveenv")
        self.assertFinds(run(boot_pi=bad), "BOOT_B_LEFT set to 4")

    def test_placeholder_attempts_equal_literal_through_the_distro(self):
        conf = SYSTEM_CONF.replace("boot-attempts=@@MAKESPACELIVE_BOOT_ATTEMPTS@@", "boot-attempts=3")
        self.assertEqual(run(system_conf=conf), [])

    def test_attempts_absent(self):
        conf = SYSTEM_CONF.replace("boot-attempts=@@MAKESPACELIVE_BOOT_ATTEMPTS@@\n", "")
        self.assertFinds(run(system_conf=conf), "no boot-attempts in [system]")

    def test_setexpr_comparison(self):
        bad = BOOT.replace('itest ${BOOT_A_LEFT} -gt 0',
                           'setexpr left ${BOOT_A_LEFT} -gt 0')
        findings = run(boot_pi=bad, boot_qemu=bad)
        self.assertFinds(findings, "setexpr used as a comparison", "no itest comparison of BOOT_A_LEFT")

    def test_setexpr_as_condition(self):
        bad = BOOT.replace("    setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1\n",
                           "    if setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1; then echo; fi\n")
        self.assertFinds(run(boot_pi=bad), "setexpr used as a comparison")

    def test_decrement_is_not_a_comparison(self):
        self.assertEqual(ab.parse_boot_script(BOOT)["setexpr_bad"], [])

    def test_decimal_test_on_a_counter(self):
        bad = BOOT.replace('itest ${BOOT_B_LEFT} -gt 0', 'test ${BOOT_B_LEFT} -gt 0')
        self.assertFinds(run(boot_qemu=bad, boot_pi=bad), "numeric test on a boot counter",
                         "no itest comparison of BOOT_B_LEFT")

    def test_bootnames(self):
        findings = run(system_conf=SYSTEM_CONF.replace("bootname=B", "bootname=C"))
        self.assertFinds(findings, "bootnames are A, C", "boot counters for BOOT_A_LEFT BOOT_B_LEFT")

    def test_rauc_slot_for_the_wrong_slot(self):
        bad = BOOT.replace("setenv raucslot B", "setenv raucslot A")
        self.assertFinds(run(boot_pi=bad), "slot B passes rauc.slot=A")

    def test_fstab_data_on_a_literal_device(self):
        self.assertFinds(run(fstab=FSTAB.replace("LABEL=data", "/dev/mmcblk0p3")),
                         "/data is partition 3, the data partition is 4",
                         "the disk differs per machine")

    def test_fstab_data_by_label_of_another_partition(self):
        self.assertFinds(run(fstab=FSTAB.replace("LABEL=data", "LABEL=rootfs_B")),
                         "label is data", "/data is partition 3")

    def test_fstab_root_writable(self):
        self.assertFinds(run(fstab=FSTAB.replace("auto       ro", "auto       rw")),
                         "the root is read-only")

    def test_data_not_on_data(self):
        self.assertFinds(run(system_conf=SYSTEM_CONF.replace("/data/rauc", "/var/lib/rauc")),
                         "data-directory=/var/lib/rauc is not on /data")

    def test_disk_placeholder_does_not_match_the_qemu_wks(self):
        self.assertFinds(run(distro=DISTRO.replace('"/dev/vda"', '"/dev/sda"')),
                         "slot devices are /dev/sdaN for qemu.wks.in")

    def test_gpt_and_wrong_fstype(self):
        bad = WKS_PI.replace("msdos", "gpt").replace("--fstype=vfat", "--fstype=ext4")
        self.assertFinds(run(wks_pi=bad), "partition table is gpt", "partition 'boot' is ext4, expected vfat")

    def test_missing_file(self):
        files = dict(GOOD)
        files["boot-pi"] = ("rpi/boot.cmd.in", None)
        self.assertTrue(any("rpi/boot.cmd.in: missing" in f for f in ab.check(files)[0]))


class BootScriptResolution(unittest.TestCase):
    def test_first_directory_on_filesextrapaths_wins(self):
        with tempfile.TemporaryDirectory() as root:
            app = os.path.join(root, "layer", "dyn", "recipes-bsp", "rpi-u-boot-scr")
            shared = os.path.join(root, "layer", "recipes-bsp", "u-boot", "files")
            os.makedirs(app)
            os.makedirs(shared)
            text = 'FILESEXTRAPATHS:prepend := "${THISDIR}/files:"\n' \
                   'FILESEXTRAPATHS:prepend:makespacelive := "${THISDIR}/../../../recipes-bsp/u-boot/files:"\n'
            bbappend = os.path.join(app, "rpi-u-boot-scr.bbappend")
            self.assertEqual(ab.filesextrapaths(bbappend, text),
                             [shared, os.path.join(app, "files")])

    def make_tree(self, root, pi_bbappend):
        def write(rel, text):
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        for role, rel in ab.PATHS.items():
            write(rel, GOOD[role][1])
        write(ab.BOOT_SCRIPTS["boot-qemu"][1], 'FILESEXTRAPATHS:prepend:makespacelive := "${THISDIR}/files:"\n')
        write(os.path.join(os.path.dirname(ab.BOOT_SCRIPTS["boot-qemu"][1]), "files", "boot.cmd.in"), BOOT)
        write(ab.BOOT_SCRIPTS["boot-pi"][1], pi_bbappend)

    def test_pi_takes_the_shared_template(self):
        with tempfile.TemporaryDirectory() as root:
            self.make_tree(root, 'FILESEXTRAPATHS:prepend:makespacelive := '
                                 '"${THISDIR}/../../../../recipes-bsp/u-boot/files:"\n')
            files, notes = ab.read_files(root)
            self.assertEqual(notes, [])
            self.assertEqual(files["boot-pi"][0], ab.BOOT_SCRIPTS["boot-qemu"][0])
            self.assertEqual(ab.check(files)[0], [])

    def test_pi_without_our_boot_script(self):
        with tempfile.TemporaryDirectory() as root:
            self.make_tree(root, "# no FILESEXTRAPATHS\n")
            files, notes = ab.read_files(root)
            self.assertTrue(any("single-root" in n for n in notes))
            self.assertIsNone(files["boot-pi"][1])

    def test_unused_copy_of_the_pi_script(self):
        with tempfile.TemporaryDirectory() as root:
            self.make_tree(root, 'FILESEXTRAPATHS:prepend := "${THISDIR}/../../../../recipes-bsp/u-boot/files:"\n')
            spec = os.path.join(root, ab.BOOT_SCRIPTS["boot-pi"][0])
            os.makedirs(os.path.dirname(spec))
            with open(spec, "w") as f:
                f.write(BOOT)
            notes = ab.read_files(root)[1]
            self.assertTrue(any(n.startswith(ab.BOOT_SCRIPTS["boot-pi"][0] + ": not used") for n in notes))


if __name__ == "__main__":
    unittest.main()
