"""The defects of issue 17 stay fixed: each test reads the layer files with oelint-parser
(tests/appliance/layer.py) and checks them against what the pinned upstream code does
with them (bitbake 2.18 fae9db31, oe-core ef022bf8, meta-oe 6bf0d8ad, meta-rauc 38da0e58,
meta-raspberrypi f62c6792, U-Boot v2026.01; the commits that fixed each one cite the
lines). Each check is a function the tests also run on a broken copy, so it can fail."""

import configparser
import fnmatch
import os
import re
import shutil
import sys
import tempfile
import unittest

import yaml
from oelint_parser.cls_stash import Stash

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests"))
from appliance import layer  # noqa: E402

ROOT = layer.ROOT
META = layer.META
DISTRO = "makespacelive-os"
RECIPE = os.path.join(ROOT, "recipes-rust/makespacelive/makespacelive_0.1.0.bb")
DATA = os.path.join(META, "recipes-core/makespacelive-data/makespacelive-data_1.0.bb")
IMAGE = os.path.join(META, "recipes-core/images/makespacelive-image.bb")
BUNDLE = os.path.join(META, "recipes-core/bundles/makespacelive-bundle_1.0.bb")
RAUC_CONF = os.path.join(META, "recipes-core/rauc/rauc-conf.bbappend")
DNSMASQ = os.path.join(META, "recipes-connectivity/dnsmasq/dnsmasq_%.bbappend")
UBOOT = os.path.join(META, "recipes-bsp/u-boot/u-boot_%.bbappend")
UBOOT_FILES = os.path.join(META, "recipes-bsp/u-boot/files")
LAYOUT = os.path.join(META, "conf/distro/include/makespacelive-layout.inc")

# oe-core's directories with DISTRO_FEATURES "usrmerge" (meta/conf/bitbake.conf:17-48).
DIRS = {
    "prefix": "/usr", "exec_prefix": "/usr", "base_prefix": "", "root_prefix": "/usr",
    "bindir": "/usr/bin", "sbindir": "/usr/sbin", "libexecdir": "/usr/libexec", "libdir": "/usr/lib",
    "base_bindir": "/usr/bin", "base_sbindir": "/usr/sbin", "base_libdir": "/usr/lib",
    "nonarch_libdir": "/usr/lib", "nonarch_base_libdir": "/usr/lib", "datadir": "/usr/share",
    "sysconfdir": "/etc", "sharedstatedir": "/com", "localstatedir": "/var",
    "systemd_unitdir": "/usr/lib/systemd", "systemd_system_unitdir": "/usr/lib/systemd/system",
    "SOLIBS": ".so.*",
}
# FILES:${PN} of oe-core's bitbake.conf:338-347, which a recipe's FILES:${PN} += extends.
DEFAULT_FILES = (
    "${bindir}/* ${sbindir}/* ${libexecdir}/* ${libdir}/lib*${SOLIBS} ${sysconfdir} ${sharedstatedir} "
    "${localstatedir} ${base_bindir}/* ${base_sbindir}/* ${base_libdir}/*${SOLIBS} ${base_prefix}/lib/udev "
    "${prefix}/lib/udev ${base_libdir}/udev ${libdir}/udev ${datadir}/${BPN} ${libdir}/${BPN}/* "
    "${datadir}/pixmaps ${datadir}/applications ${datadir}/idl ${datadir}/omf ${datadir}/sounds "
    "${libdir}/bonobo/servers"
)
OPERATIONS = ("append", "prepend", "remove")


def items(path):
    """Every item of a bitbake file (layer._items gives the variables only)."""
    stash = Stash(quiet=True)
    stash.AddFile(path)
    stash.Finalize()
    return [item for item in stash.GetItemsFor() if os.path.abspath(item.Origin) == os.path.abspath(path)]


def expand(text, values):
    """${NAME} references replaced from `values`; unknown ones are left as they are."""
    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def evaluate(*paths, active=(DISTRO,), base=None):
    """NAME -> value of the plain variables of bitbake files (after the values `base`), as
    bitbake finalizes them with the overrides `active`: an assignment whose overrides are
    all active replaces the plain value; then :append, :prepend and :remove that apply.
    `FILES:${PN}` keeps its ${PN}."""
    plain, chosen, edits = dict(base or {}), {}, []
    for item in layer._items(*paths):
        parts = [p for p in item.SubItems if p != "${PN}"]
        name = item.VarName + (":${PN}" if "${PN}" in item.SubItems else "")
        ops = [p for p in parts if p in OPERATIONS]
        overrides = [p for p in parts if p not in OPERATIONS]
        if any(o not in active for o in overrides):
            continue
        value, op = layer._value(item), item.VarOp.strip()
        if ops:
            edits.append((ops[0], name, value))
        elif overrides:
            chosen[name] = value
        elif op in ("=", ":="):
            plain[name] = value
        elif op in ("?=", "??="):
            plain.setdefault(name, value)
        elif op in ("+=", ".="):
            plain[name] = (plain.get(name, "") + " " + value).strip()
    plain.update(chosen)
    for op, name, value in edits:
        if op == "append":
            plain[name] = plain.get(name, "") + " " + value
        elif op == "prepend":
            plain[name] = value + " " + plain.get(name, "")
        else:
            plain[name] = " ".join(w for w in plain.get(name, "").split() if w not in value.split())
    return {name: " ".join(value.split()) for name, value in plain.items()}


def unit(path):
    """A systemd unit or drop-in, read as systemd's ini dialect (a repeated key: the last)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(path)
    return parser


# --- finding 1: the keyring lands where rauc-conf.bb installs it from ------------------


def keyring_problems(append=RAUC_CONF):
    """bitbake's unpack (fetch2/__init__.py:1632-1640) copies file://a/b/c to
    UNPACKDIR/a/b/c; meta-rauc's rauc-conf.bb:33 installs ${UNPACKDIR}/${RAUC_KEYRING_FILE}."""
    values = evaluate(append)
    found = []
    name = values.get("RAUC_KEYRING_FILE", "")
    uri = expand(values.get("RAUC_KEYRING_URI", ""), values)
    path = uri[len("file://"):].split(";")[0].strip("/")
    if not uri.startswith("file://") or path != name:
        found.append("RAUC_KEYRING_URI %r unpacks to UNPACKDIR/%s, rauc-conf installs UNPACKDIR/%s" % (uri, path, name))
    if "${MAKESPACELIVE_KEYS_DIR}" not in values.get("FILESEXTRAPATHS", "").replace(":", " ").split():
        found.append("FILESEXTRAPATHS does not search MAKESPACELIVE_KEYS_DIR for %s" % name)
    return found


# --- finding 8: without the distro an append changes nothing ---------------------------


def distro_only():
    """Names the distro configuration sets (the values an append may name unconditionally)."""
    return set(evaluate(os.path.join(META, "conf/distro/makespacelive-os.conf"), LAYOUT))


def append_problems(path):
    """What an append does in a build without makespacelive-os (yocto-check-layer's
    test_signatures, oe-core scripts/lib/checklayer/cases/common.py:132-141): every
    assignment and task function must be under the distro's override, every flag of a task
    and every inherit must expand to nothing without the distro's variables."""
    ours, found = distro_only(), []
    for item in items(path):
        kind = type(item).__name__
        where = "%s:%d" % (os.path.basename(path), item.InFileLine)
        if kind == "Variable" and DISTRO not in item.SubItems:
            found.append("%s: %s is set without the distro" % (where, item.VarName))
        elif kind == "Function" and (item.FuncName or "").startswith("do_") and DISTRO not in item.SubItems:
            found.append("%s: %s runs without the distro" % (where, item.FuncName))
        elif kind == "FlagAssignment" and item.VarName.startswith("do_"):
            left = re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: "" if m.group(1) in ours else m.group(0), item.Value)
            if left.strip().strip('"').strip():
                found.append("%s: %s[%s] names %s without the distro" % (where, item.VarName, item.Flag, left.strip()))
        elif kind == "Inherit":
            left = re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: "" if m.group(1) in ours else m.group(0), item.Class)
            if left.strip():
                found.append("%s: inherits %s without the distro" % (where, left.strip()))
    return found


# --- finding 2: every installed file is in a package ------------------------------------


def covered(path, patterns):
    """Whether a FILES pattern takes `path`: bitbake globs each pattern in the install
    directory and takes a matching directory with everything below it."""
    parts = path.strip("/").split("/")
    for pattern in patterns:
        wanted = pattern.strip("/").split("/")
        if len(wanted) <= len(parts) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted)):
            return True
    return False


def unshipped(recipe, install):
    """Destinations of an install list that no FILES:${PN} pattern takes: oe-core's default
    plus the recipe's, plus what systemd.bbclass adds (:186-205: each SYSTEMD_SERVICE unit,
    and for a .socket its .service; a .path's .service is not added)."""
    values = evaluate(recipe)
    bpn = re.sub(r"_.*", "", os.path.basename(recipe))
    dirs = dict(DIRS, BPN=bpn)
    files = expand(DEFAULT_FILES + " " + values.get("FILES:${PN}", ""), dirs).split()
    for service in values.get("SYSTEMD_SERVICE:${PN}", "").split():
        files.append(DIRS["systemd_system_unitdir"] + "/" + service)
        if service.endswith(".socket"):
            files.append(DIRS["systemd_system_unitdir"] + "/" + service[: -len(".socket")] + ".service")
    return [dest for _, _, dest in layer.install_list(install) if not covered(dest, files)]


INSTALLS = (
    (RECIPE, os.path.join(ROOT, "conf/makespacelive.install")),
    (DATA, os.path.join(META, "recipes-core/makespacelive-data/files/makespacelive-data.install")),
)


# --- finding 6 and the redundant environment: U-Boot's configuration -----------------


def kconfig(path):
    """CONFIG_NAME -> value of a Kconfig fragment (strings without their quotes)."""
    values = {}
    with open(path) as f:
        for line in f:
            match = re.match(r"(CONFIG_[A-Za-z0-9_]+)=(.*)", line.strip())
            if match:
                values[match.group(1)] = match.group(2).strip('"')
    return values


def pi_machines():
    """The Raspberry Pi machines kas builds (kas/*.yml that include kas/raspberrypi.yml)."""
    machines = []
    for name in sorted(os.listdir(os.path.join(ROOT, "kas"))):
        with open(os.path.join(ROOT, "kas", name)) as f:
            kas = yaml.safe_load(f)
        if "kas/raspberrypi.yml" in kas.get("header", {}).get("includes", []):
            machines.append(kas["machine"])
    return machines


def uboot_fragments(machine, append=UBOOT):
    """The Kconfig fragments the U-Boot append adds for a machine under the distro, merged."""
    values = evaluate(append, active=(DISTRO, machine))
    merged = {}
    for uri in values.get("SRC_URI", "").split():
        if uri.startswith("file://") and uri.endswith(".cfg"):
            merged.update(kconfig(os.path.join(os.path.dirname(append), "files", uri[len("file://"):])))
    return merged


# U-Boot v2026.01 boot/Kconfig:1076-1082: SYS_BOOTM_LEN's default on 32-bit ARM.
BOOTM_DEFAULT = 0x800000
# meta-raspberrypi f62c6792 recipes-bsp/u-boot/files/maxsize.cfg: what the Pi 4 needed for 6.6.
BOOTM_PI4 = 0x1000000


def uboot_problems(append=UBOOT):
    found = []
    values = layer.layout()
    for machine in pi_machines() + ["qemuarm64"]:
        config = uboot_fragments(machine, append)
        if config.get("CONFIG_ENV_REDUNDANT") != "y":
            found.append("%s: U-Boot without CONFIG_ENV_REDUNDANT" % machine)
        # ENV_FAT_FILE: the Kconfig default where a fragment does not set it (env/Kconfig).
        for option, name in (("CONFIG_ENV_FAT_FILE", "MAKESPACELIVE_UBOOT_ENV_FILE"),
                             ("CONFIG_ENV_FAT_FILE_REDUND", "MAKESPACELIVE_UBOOT_ENV_FILE_REDUND")):
            default = {"CONFIG_ENV_FAT_FILE": "uboot.env"}.get(option)
            if config.get(option, default) != values[name]:
                found.append("%s: %s is %r, the layout's %s %r" % (machine, option, config.get(option, default),
                                                                   name, values[name]))
        if machine != "qemuarm64" and int(config.get("CONFIG_SYS_BOOTM_LEN", "0"), 0) < BOOTM_PI4:
            found.append("%s: CONFIG_SYS_BOOTM_LEN %s, not above U-Boot's %#x" % (
                machine, config.get("CONFIG_SYS_BOOTM_LEN", "unset"), BOOTM_DEFAULT))
    return found


class LayerTest(unittest.TestCase):
    def setUp(self):
        self.scratch = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.scratch)

    def copy(self, path, old, new):
        """A copy of a layer file with one edit, next to a copy of its files/ directory."""
        with open(path) as f:
            text = f.read()
        self.assertIn(old, text)
        directory = os.path.join(self.scratch, os.path.basename(os.path.dirname(path)))
        os.makedirs(directory, exist_ok=True)
        files = os.path.join(os.path.dirname(path), "files")
        if os.path.isdir(files) and not os.path.exists(os.path.join(directory, "files")):
            shutil.copytree(files, os.path.join(directory, "files"))
        out = os.path.join(directory, os.path.basename(path))
        with open(out, "w") as f:
            f.write(text.replace(old, new, 1))
        return out


class KeyringTest(LayerTest):
    def test_the_keyring_lands_where_rauc_conf_installs_it_from(self):
        self.assertEqual(keyring_problems(), [])

    def test_a_full_path_is_found(self):
        broken = self.copy(RAUC_CONF, 'RAUC_KEYRING_URI:makespacelive-os = "file://${RAUC_KEYRING_FILE}"',
                           'RAUC_KEYRING_URI:makespacelive-os = "file://${MAKESPACELIVE_KEYS_DIR}/ca.cert.pem"')
        self.assertTrue(any("unpacks to" in p for p in keyring_problems(broken)))


class AppendsWithoutTheDistroTest(LayerTest):
    def appends(self):
        for directory, _, names in os.walk(META):
            for name in names:
                if name.endswith(".bbappend"):
                    yield os.path.join(directory, name)

    def test_no_append_changes_a_build_without_the_distro(self):
        for path in self.appends():
            self.assertEqual(append_problems(path), [], path)

    def test_an_unconditional_prefunc_is_found(self):
        broken = self.copy(RAUC_CONF, "do_fetch[prefuncs] += \"${@d.getVar('MAKESPACELIVE_KEYRING_CHECK') or ''}\"",
                           'do_fetch[prefuncs] += "makespacelive_require_keyring"')
        self.assertTrue(any("do_fetch[prefuncs]" in p for p in append_problems(broken)))

    def test_an_unconditional_assignment_is_found(self):
        broken = self.copy(DNSMASQ, "SYSTEMD_AUTO_ENABLE:makespacelive-os", "SYSTEMD_AUTO_ENABLE")
        self.assertTrue(any("SYSTEMD_AUTO_ENABLE" in p for p in append_problems(broken)))


class ShippedTest(LayerTest):
    def test_every_installed_file_is_packaged(self):
        for recipe, install in INSTALLS:
            self.assertEqual(unshipped(recipe, install), [], recipe)

    def test_a_service_started_by_a_path_unit_or_pulled_in_and_not_in_files_is_found(self):
        # The .path units' services, and the country unit the service's Wants= pulls in:
        # none is in SYSTEMD_SERVICE, so only FILES ships them.
        broken = self.copy(RECIPE, 'FILES:${PN} += "${systemd_system_unitdir} ', 'FILES:${PN} += "')
        self.assertEqual(sorted(os.path.basename(p) for p in unshipped(broken, INSTALLS[0][1])),
                         ["makespacelive-boot-config.service", "makespacelive-country.service",
                          "makespacelive-reboot.service"])


class PortalNetworkTest(LayerTest):
    def test_dnsmasq_is_installed_and_its_own_service_is_not_enabled(self):
        self.assertIn("dnsmasq", evaluate(IMAGE)["IMAGE_INSTALL"].split())
        self.assertEqual(evaluate(DNSMASQ).get("SYSTEMD_AUTO_ENABLE"), "disable")

    def test_dnsmasq_drop_in_for_resolved_is_removed(self):
        functions = [i for i in items(DNSMASQ) if type(i).__name__ == "Function"]
        body = "".join(i.FuncBody for i in functions if i.FuncName == "do_install" and DISTRO in i.SubItems)
        self.assertIn("rm ${D}${sysconfdir}/systemd/resolved.conf.d/dnsmasq-resolved.conf", body)

    def test_no_networkd(self):
        # oe-core's systemd_259.5.bb:47-81: networkd and resolved are in the default PACKAGECONFIG.
        values = evaluate(os.path.join(META, "conf/distro/makespacelive-os.conf"), active=(DISTRO, "pn-systemd"),
                          base={"PACKAGECONFIG": "networkd resolved"})
        self.assertEqual(values["PACKAGECONFIG"].split(), ["resolved"])

    def test_the_service_starts_without_waiting_for_the_network(self):
        service = unit(os.path.join(ROOT, "conf/makespacelive.service"))
        for key in ("Wants", "After", "Requires", "BindsTo"):
            self.assertNotIn("network-online.target", service["Unit"].get(key, "").split(), key)

    def test_networkmanager_gives_its_dns_servers_to_resolved(self):
        conf = unit(os.path.join(META, "recipes-connectivity/networkmanager/files/makespacelive.conf"))
        self.assertEqual(conf["main"]["dns"], "systemd-resolved")

    def test_names_are_looked_up_through_resolved(self):
        # oe-core's base-files_3.0.14.bb:126 installs nsswitch-resolved.conf (hosts: resolve
        # first) only with DISTRO_FEATURES "systemd systemd-resolved"; systemd_259.5.bb:333
        # links /etc/resolv.conf to the stub only with RESOLV_CONF "stub-resolv".
        values = evaluate(os.path.join(META, "conf/distro/makespacelive-os.conf"))
        self.assertTrue({"systemd", "systemd-resolved"} <= set(values["DISTRO_FEATURES"].split()))
        self.assertEqual(values["RESOLV_CONF"], "stub-resolv")

    def test_the_regulatory_database_is_installed(self):
        self.assertIn("wireless-regdb-static", evaluate(IMAGE)["IMAGE_INSTALL"].split())


class CheckLayerTest(LayerTest):
    def test_no_patch_without_upstream_status(self):
        """oe-core scripts/lib/checklayer/cases/common.py:118-130 over both layers (the
        repository root is one)."""
        status = re.compile(r"^Upstream-Status: ?(Pending|Submitted|Denied|Inappropriate|Backport|Inactive-Upstream)",
                            re.MULTILINE)
        skip = {".git", "target", ".venv-tools", "node_modules"}
        for directory, dirs, names in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in skip]
            for name in names:
                if name.endswith(".patch"):
                    with open(os.path.join(directory, name), errors="replace") as f:
                        self.assertRegex(f.read(), status, os.path.join(directory, name))

    def test_no_configuration_file_sets_what_only_the_environment_can(self):
        """bitbake reads BB_ENV_PASSTHROUGH_ADDITIONS from its environment before any
        configuration file (kas passes kas.yml's env:); set in a file it does nothing."""
        for path in (os.path.join(META, "conf/distro/makespacelive-os.conf"), LAYOUT,
                     os.path.join(META, "conf/layer.conf"), os.path.join(ROOT, "conf/layer.conf")):
            self.assertNotIn("BB_ENV_PASSTHROUGH_ADDITIONS", {i.VarName for i in layer._items(path)}, path)

    def test_the_bundle_is_out_of_world(self):
        self.assertEqual(evaluate(BUNDLE).get("EXCLUDE_FROM_WORLD"), "1")

    def test_makespacelive_data_is_per_machine(self):
        classes = [c for i in items(DATA) if type(i).__name__ == "Inherit" for c in i.get_items()]
        self.assertNotIn("allarch", classes)
        self.assertEqual(evaluate(DATA).get("PACKAGE_ARCH"), "${MACHINE_ARCH}")


class UBootTest(LayerTest):
    def test_the_environment_is_redundant_and_the_pi_kernel_fits_bootm(self):
        self.assertEqual(uboot_problems(), [])
        self.assertEqual(sorted(pi_machines()), ["raspberrypi0-wifi", "raspberrypi3"])

    def test_a_pi_without_the_bootm_fragment_is_found(self):
        broken = self.copy(UBOOT, 'SRC_URI:append:makespacelive-os:raspberrypi0-wifi = " file://bootm-len.cfg"', "")
        self.assertEqual([p for p in uboot_problems(broken) if "BOOTM" in p][0].split(":")[0], "raspberrypi0-wifi")

    def test_a_redundant_file_name_other_than_the_layouts_is_found(self):
        append = self.copy(UBOOT, "FILESEXTRAPATHS", "FILESEXTRAPATHS")
        self.copy(os.path.join(UBOOT_FILES, "redundant-env.cfg"), '"uboot-redund.env"', '"uboot.env.2"')
        shutil.move(os.path.join(self.scratch, "files", "redundant-env.cfg"),
                    os.path.join(os.path.dirname(append), "files", "redundant-env.cfg"))
        self.assertTrue(any("CONFIG_ENV_FAT_FILE_REDUND" in p for p in uboot_problems(append)))

    def test_libubootenv_reads_both_copies(self):
        values = layer.layout()
        text = layer.render(os.path.join(UBOOT_FILES, "fw_env.config.in"), values)
        lines = [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        self.assertEqual([os.path.basename(line[0]) for line in lines],
                         [values["MAKESPACELIVE_UBOOT_ENV_FILE"], values["MAKESPACELIVE_UBOOT_ENV_FILE_REDUND"]])


class FailedBootTest(LayerTest):
    def test_emergency_and_rescue_reboot(self):
        data = os.path.join(META, "recipes-core/makespacelive-data/files")
        installed = {dest: source for _, source, dest in layer.install_list(os.path.join(data, "makespacelive-data.install"))}
        for target in ("emergency", "rescue"):
            dropins = [s for d, s in installed.items() if d.startswith("/usr/lib/systemd/system/%s.service.d/" % target)]
            self.assertEqual(len(dropins), 1, target)
            service = unit(os.path.join(data, dropins[0]))["Service"]
            self.assertEqual(service["ExecStart"].split()[-2:], ["--no-block", "reboot"])
            self.assertEqual(service["StandardInput"], "null")


if __name__ == "__main__":
    unittest.main()
