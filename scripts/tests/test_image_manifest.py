"""Unit tests of scripts/image-manifest's staleness check: which files the manifest is
made from, their hash, and what --check says when they change.
Run: python3 -m unittest discover -s scripts/tests"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "image-manifest")
loader = SourceFileLoader("image_manifest", SCRIPT)
image_manifest = module_from_spec(spec_from_loader("image_manifest", loader))
loader.exec_module(image_manifest)

FILES = {
    "kas.yml": "repos: {}\n",
    "kas.lock.yml": "overrides: {}\n",
    "kas/qemuarm64.yml": "machine: qemuarm64\n",
    "conf/layer.conf": "BBFILES += \"\"\n",
    "conf/makespacelive.install": "makespacelive.service\n",
    "conf/defaults.toml": "[stream]\n",
    "meta-makespacelive/conf/layer.conf": "LAYERSERIES_COMPAT = \"wrynose\"\n",
    "meta-makespacelive/recipes-core/images/makespacelive-image.bb": "IMAGE_INSTALL = \"dnsmasq\"\n",
    "recipes-rust/makespacelive/makespacelive_0.1.0.bb": "SRCREV = \"1\"\n",
    "src/main.rs": "fn main() {}\n",
}


class ImageManifestCheck(unittest.TestCase):
    def setUp(self):
        self.repo = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.repo)
        for path, text in FILES.items():
            self.write(path, text)
        self.machines = ("qemuarm64",)
        digests = image_manifest.file_digests(self.repo)
        self.write(f"{image_manifest.MANIFEST_DIR}/qemuarm64.json", json.dumps(
            {"machine": "qemuarm64", "inputs": {"sha256": image_manifest.inputs_sha256(digests), "files": digests}}))

    def write(self, path, text):
        full = os.path.join(self.repo, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as fh:
            fh.write(text)

    def check(self):
        return image_manifest.check(self.repo, self.machines)

    def test_inputs_are_the_layers_and_kas_files_only(self):
        self.write("meta-makespacelive/lib/oeqa/__pycache__/x.cpython-311.pyc", "\0")
        self.assertEqual(image_manifest.input_files(self.repo), [
            "conf/layer.conf", "conf/makespacelive.install", "kas.lock.yml", "kas.yml", "kas/qemuarm64.yml",
            "meta-makespacelive/conf/layer.conf", "meta-makespacelive/recipes-core/images/makespacelive-image.bb",
            "recipes-rust/makespacelive/makespacelive_0.1.0.bb"])

    def test_current_manifest_passes(self):
        self.assertEqual(self.check(), [])

    def test_a_change_outside_the_inputs_does_not_matter(self):
        self.write("src/main.rs", "fn main() { println!(); }\n")
        self.write("conf/defaults.toml", "[stream]\nkey = 1\n")
        self.assertEqual(self.check(), [])

    def test_changed_layer_file_is_named(self):
        self.write("meta-makespacelive/recipes-core/images/makespacelive-image.bb", "IMAGE_INSTALL = \"\"\n")
        self.assertEqual(self.check(), [
            f"{image_manifest.MANIFEST_DIR}/qemuarm64.json is stale: "
            "meta-makespacelive/recipes-core/images/makespacelive-image.bb (changed)"])

    def test_new_and_removed_files_are_named(self):
        self.write("meta-makespacelive/recipes-connectivity/dnsmasq/dnsmasq_%.bbappend", "SYSTEMD_AUTO_ENABLE = \"disable\"\n")
        os.unlink(os.path.join(self.repo, "recipes-rust/makespacelive/makespacelive_0.1.0.bb"))
        self.write("kas/raspberrypi3.yml", "machine: raspberrypi3\n")
        problems = self.check()
        self.assertEqual(len(problems), 1)
        for expected in ("kas/raspberrypi3.yml (added)",
                         "meta-makespacelive/recipes-connectivity/dnsmasq/dnsmasq_%.bbappend (added)",
                         "recipes-rust/makespacelive/makespacelive_0.1.0.bb (removed)"):
            self.assertIn(expected, problems[0])

    def test_pin_change_in_the_lock_file_is_stale(self):
        self.write("kas.lock.yml", "overrides: {repos: {openembedded-core: {commit: abc}}}\n")
        self.assertIn("kas.lock.yml (changed)", self.check()[0])

    def test_missing_manifest_fails(self):
        self.machines = ("qemuarm64", "raspberrypi3")
        self.assertEqual(self.check(), [
            f"{image_manifest.MANIFEST_DIR}/raspberrypi3.json: unreadable "
            f"([Errno 2] No such file or directory: '{self.repo}/{image_manifest.MANIFEST_DIR}/raspberrypi3.json')"])

    def test_edited_file_list_does_not_match_its_hash(self):
        path = os.path.join(self.repo, image_manifest.MANIFEST_DIR, "qemuarm64.json")
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
        manifest["inputs"]["files"]["kas.yml"] = "0" * 64
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh)
        self.assertEqual(self.check(), [
            f"{image_manifest.MANIFEST_DIR}/qemuarm64.json: its recorded hash does not match its file list",
            f"{image_manifest.MANIFEST_DIR}/qemuarm64.json is stale: kas.yml (changed)"])

    def test_hash_depends_on_paths_and_contents(self):
        digests = image_manifest.file_digests(self.repo)
        self.assertNotEqual(image_manifest.inputs_sha256({"kas.yml": digests["kas.yml"]}),
                            image_manifest.inputs_sha256({"kas/kas.yml": digests["kas.yml"]}))
        self.assertNotEqual(image_manifest.inputs_sha256({"kas.yml": digests["kas.yml"]}),
                            image_manifest.inputs_sha256({"kas.yml": digests["kas.lock.yml"]}))
        self.assertEqual(image_manifest.inputs_sha256(digests), image_manifest.inputs_sha256(dict(reversed(digests.items()))))

    def test_the_command_over_this_repository(self):
        """--check as check-layers runs it, over a copy of this repository's inputs with
        freshly made manifests: exit 0, then 1 naming the file once a layer file changes."""
        repo = os.path.join(self.repo, "copy")
        src = os.path.abspath(os.path.join(HERE, "..", ".."))
        for part in ("scripts", "kas", "conf", "meta-makespacelive", "recipes-rust"):
            shutil.copytree(os.path.join(src, part), os.path.join(repo, part),
                            ignore=shutil.ignore_patterns("__pycache__"))
        for f in ("kas.yml", "kas.lock.yml"):
            shutil.copy(os.path.join(src, f), repo)
        digests = image_manifest.file_digests(repo)
        os.makedirs(os.path.join(repo, image_manifest.MANIFEST_DIR))
        for m in image_manifest.MACHINES:
            with open(os.path.join(repo, image_manifest.MANIFEST_DIR, f"{m}.json"), "w", encoding="utf-8") as fh:
                json.dump({"inputs": {"sha256": image_manifest.inputs_sha256(digests), "files": digests}}, fh)
        script = os.path.join(repo, "scripts", "image-manifest")
        run = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        with open(os.path.join(repo, "meta-makespacelive/conf/layer.conf"), "a", encoding="utf-8") as fh:
            fh.write("# changed\n")
        run = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True)
        self.assertEqual(run.returncode, 1)
        self.assertEqual(run.stdout.count("meta-makespacelive/conf/layer.conf (changed)"), len(image_manifest.MACHINES))

if __name__ == "__main__":
    unittest.main()
