"""Real bisects on the real tree, in the x86_64 debug slot (each step an incremental build)."""

import os
import subprocess
import sys

import xmlschema

from tests.conftest import DATA, ROOT

SCHEMA = xmlschema.XMLSchema(str(DATA / "junit" / "jenkins-junit.xsd"))
ENV = {**os.environ, "WQCI_PATCHES": str(DATA / "series")}


def wqci(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600, env=ENV)


def test_bisect_build_failure_names_patch_2_in_two_steps(tmp_path):
    done = wqci("bisect", "--series", "bisect-build", "--build-fails", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr + done.stdout
    assert "culprit: bisect-build 2/3" in done.stdout
    assert "2 step(s)" in done.stdout
    assert "wqci_no_such_function" in done.stdout
    SCHEMA.validate(str(tmp_path / "junit.xml"))
    log = (tmp_path / "bisect.log").read_text().splitlines()
    assert [ln.split("\t")[2] for ln in log if "\t" in ln] == ["good", "bad"]


def test_bisect_finding_names_the_warning_patch(tmp_path):
    done = wqci("bisect", "--series", "warn-bisect", "--finding", "WARNING in test_workqueue_init",
                "--suite", "test_workqueue", "--param", "test_workqueue.wq_items=100", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr + done.stdout
    assert "culprit: warn-bisect 2/3" in done.stdout
    assert "deliberate warning for wqci's bisect test" in done.stdout
    SCHEMA.validate(str(tmp_path / "junit.xml"))
