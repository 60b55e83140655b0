"""The layer's OEQA runtime cases (meta-makespacelive/lib/oeqa/runtime/cases), run as they
are against the booted stand-in: a small stand-in for OEQA's runtime API (the test case
class with `self.target.run(command, timeout)` over the rung's SSH; dependency and
package decorators that let every case run) is placed where the cases import it from.

The commands in the cases expect the image's busybox (`wget`, `nc`): the peers' static
busybox stands in for it, on the PATH of every command."""

import os
import sys
import types
import unittest

from . import air, layer

CASES = os.path.join(layer.META, "lib/oeqa/runtime/cases")
BUSYBOX_BIN = "/run/oeqa-busybox"


class Target:
    def __init__(self, box):
        self.box = box

    def run(self, command, timeout=None, ignore_ssh_fails=False):
        result = self.box.run("PATH=%s:$PATH; %s" % (BUSYBOX_BIN, command), timeout=timeout or 300)
        return result.returncode, (result.stdout + result.stderr).strip()


def _stand_in_modules(target):
    """oeqa.runtime.case, oeqa.core.decorator.depends, oeqa.runtime.decorator.package."""
    case = types.ModuleType("oeqa.runtime.case")
    case.OERuntimeTestCase = type("OERuntimeTestCase", (unittest.TestCase,), {"target": target, "td": {}})
    depends = types.ModuleType("oeqa.core.decorator.depends")
    depends.OETestDepends = lambda names: (lambda f: f)
    package = types.ModuleType("oeqa.runtime.decorator.package")
    package.OEHasPackage = lambda names: (lambda f: f)
    packages = ("oeqa", "oeqa.runtime", "oeqa.core", "oeqa.core.decorator", "oeqa.runtime.decorator")
    modules = {name: types.ModuleType(name) for name in packages}
    modules.update({m.__name__: m for m in (case, depends, package)})
    return modules


def run(box, name, stream):
    """Runs the OEQA case file `name` (e.g. "makespacelive") against `box`; the unittest result."""
    air.Air(box).mount()
    box.ssh("mkdir -p {0} && for tool in wget nc; do ln -sf {1}/usr/bin/busybox {0}/$tool; done"
            .format(BUSYBOX_BIN, air.PEERS))
    stand_ins = _stand_in_modules(Target(box))
    sys.modules.update(stand_ins)
    try:
        module = types.ModuleType("oeqa_" + name)
        path = os.path.join(CASES, name + ".py")
        with open(path) as f:
            exec(compile(f.read(), path, "exec"), module.__dict__)
        # A loader of its own: the default one carries the command line's -k patterns.
        suite = unittest.TestLoader().loadTestsFromModule(module)
    finally:
        for stand_in in stand_ins:
            del sys.modules[stand_in]
    return unittest.TextTestRunner(stream=stream, verbosity=2).run(suite)
