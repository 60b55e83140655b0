"""scripts/check-ab-layout finds what it is there to find."""

import importlib.machinery
import os
import shutil
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
check = importlib.machinery.SourceFileLoader("check_ab_layout", os.path.join(HERE, "..", "check-ab-layout")).load_module()


class CheckAbLayoutTest(unittest.TestCase):
    def setUp(self):
        self.meta = os.path.join(tempfile.mkdtemp(), "meta")
        shutil.copytree(check.layer.META, self.meta)

    def tearDown(self):
        shutil.rmtree(os.path.dirname(self.meta))

    def edit(self, path, old, new):
        path = os.path.join(self.meta, path)
        with open(path) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(path, "w") as f:
            f.write(text.replace(old, new, 1))

    def test_the_layers_agree(self):
        self.assertEqual(check.problems(self.meta), [])

    def test_a_pi_wks_in_another_order_is_found(self):
        wks = "files/wic/makespacelive-sdimage.wks.in"
        with open(os.path.join(self.meta, wks)) as f:
            lines = f.read().splitlines()
        parts = [i for i, line in enumerate(lines) if line.startswith("part")]
        lines[parts[1]], lines[parts[2]] = lines[parts[2]], lines[parts[1]]
        with open(os.path.join(self.meta, wks), "w") as f:
            f.write("\n".join(lines) + "\n")
        found = check.problems(self.meta)
        self.assertTrue(any("makespacelive-sdimage.wks.in" in p and "partition 2" in p for p in found), found)

    def test_a_template_name_outside_the_layout_is_found(self):
        self.edit("recipes-core/rauc/files/system.conf.in", "@@MAKESPACELIVE_BOOT_ATTEMPTS@@", "@@BOOT_TRIES@@")
        found = check.problems(self.meta)
        self.assertTrue(any("system.conf.in" in p and "BOOT_TRIES" in p for p in found), found)


if __name__ == "__main__":
    unittest.main()
