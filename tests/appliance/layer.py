"""What the layers say, read with the ecosystem's own parsers (oelint-parser for bitbake
files, PyYAML for kas files): the layout values per machine, the templates they render,
the install lists, the recipes' run-time dependencies and QEMU settings of kas/qemuarm64.yml.

The QEMU rung builds its stand-in from these, so a value changed in the layers changes
what boots, and a value the rung cannot place fails loudly."""

import os
import re
import shlex
import tempfile

import yaml
from oelint_parser.cls_item import Variable
from oelint_parser.cls_stash import Stash

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
META = os.path.join(ROOT, "meta-makespacelive")
MACHINE = "qemuarm64"
# Values a full bitbake run takes from oe-core's machine configuration (qemuarm64.conf).
UPSTREAM = {"MACHINE": MACHINE, "KERNEL_IMAGETYPE": "Image"}


def _items(*paths):
    stash = Stash(quiet=True)
    for path in paths:
        stash.AddFile(path)
    stash.Finalize()
    return stash.GetItemsFor(classifier=Variable.CLASSIFIER)


def _value(item):
    return " ".join(item.VarValueStripped.replace("\x1b", " ").split())


def variables(*paths, machine=MACHINE):
    """NAME -> value for `machine`: an assignment with the machine's override wins over
    the plain one; `:append` adds."""
    plain, specific, appended = {}, {}, {}
    for item in _items(*paths):
        overrides = [o for o in item.SubItems if o not in ("${PN}",)]
        if overrides == [machine]:
            specific[item.VarName] = _value(item)
        elif overrides == ["append"]:
            appended[item.VarName] = appended.get(item.VarName, "") + " " + _value(item)
        elif not overrides:
            if item.VarOp.strip() in ("=", ":="):
                plain[item.VarName] = _value(item)
            else:
                plain.setdefault(item.VarName, _value(item))
    plain.update(specific)
    for name, extra in appended.items():
        plain[name] = (plain.get(name, "") + extra).strip()
    return plain


DISTRO_CONF = os.path.join(META, "conf/distro/makespacelive-os.conf")


def hostname():
    """The box's host name: the distro's `hostname:pn-base-files`."""
    for item in _items(DISTRO_CONF):
        if item.VarName == "hostname" and item.SubItems == ["pn-base-files"]:
            return _value(item)
    raise KeyError("%s sets no hostname:pn-base-files" % DISTRO_CONF)


def distro():
    """The distro's identity as oe-core's os-release recipe reads it: DISTRO, DISTRO_NAME,
    DISTRO_VERSION, DISTRO_CODENAME."""
    names = ("DISTRO", "DISTRO_NAME", "DISTRO_VERSION", "DISTRO_CODENAME")
    found = {item.VarName: _value(item) for item in _items(DISTRO_CONF) if item.VarName in names and not item.SubItems}
    missing = [name for name in names if name not in found]
    if missing:
        raise KeyError("%s sets no %s" % (DISTRO_CONF, ", ".join(missing)))
    return found


def layout(machine=MACHINE, upstream=None):
    """The layout values of the distro for a machine, with ${…} references expanded."""
    values = dict(upstream or UPSTREAM)
    values.update(variables(os.path.join(META, "conf/distro/include/makespacelive-layout.inc"), machine=machine))

    def expand(text):
        return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: expand(values[m.group(1)]), text)

    return {name: expand(value) for name, value in values.items()}


def render(source, values):
    """A template as makespacelive_template.bbclass renders it."""
    allowed = set(values["MAKESPACELIVE_TEMPLATE_VARS"].split())

    def value(match):
        if match.group(1) not in allowed:
            raise ValueError("%s: @@%s@@ is not one of MAKESPACELIVE_TEMPLATE_VARS" % (source, match.group(1)))
        return values[match.group(1)]

    with open(source) as f:
        return re.sub(r"@@([A-Za-z0-9_]+)@@", value, f.read())


def recipe(path):
    """The variables of a recipe that the rung needs (RDEPENDS, SYSTEMD_SERVICE, …)."""
    found = {}
    for item in _items(path):
        found[item.VarName] = (found.get(item.VarName, "") + " " + _value(item)).strip()
    return found


def fetched(path, machine=MACHINE, distro="makespacelive-os"):
    """The local files a recipe or append adds to SRC_URI for `machine` under `distro`
    (file:// entries of assignments with no other overrides than those and append)."""
    files = []
    for item in _items(path):
        overrides = set(item.SubItems) - {"append", "prepend"}
        if item.VarName == "SRC_URI" and overrides <= {machine, distro}:
            files += [uri[len("file://"):].split(";")[0] for uri in _value(item).split() if uri.startswith("file://")]
    return files


def install_list(path):
    """(mode, source, destination) lines of a .install list."""
    with open(path) as f:
        return [tuple(line.split()) for line in f if line.strip() and not line.startswith("#")]


def wks(path, values):
    """The partitions of a wks file (wic's own `part` options, read with wic's argparse
    shape): [{'label':…, 'fstype':…, 'size_mb':…, 'active':…}], in order."""
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("mountpoint", nargs="?")
    for option in ("--source", "--ondisk", "--fstype", "--label", "--align", "--size", "--fixed-size"):
        parser.add_argument(option)
    parser.add_argument("--active", action="store_true")
    parser.add_argument("--no-fstab-update", action="store_true")
    parts = []
    with open(path) as f:
        for line in f:
            line = re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: values[m.group(1)], line)
            words = shlex.split(line, comments=True)
            if not words or words[0] != "part":
                continue
            args = parser.parse_args(words[1:])
            size = args.fixed_size or args.size
            parts.append({
                "label": args.label,
                "fstype": args.fstype,
                "size_mb": int(size.rstrip("M")),
                "active": args.active,
                "source": args.source,
            })
    return parts


def qemu_settings():
    """The QB_* settings of kas/qemuarm64.yml (runqemu's), parsed as bitbake reads them."""
    with open(os.path.join(ROOT, "kas", "qemuarm64.yml")) as f:
        kas = yaml.safe_load(f)
    text = "\n".join(kas["local_conf_header"].values())
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
        conf.write(text)
        conf.flush()
        values = variables(conf.name, machine="none")
    return {name: value for name, value in values.items() if name.startswith("QB_")}
