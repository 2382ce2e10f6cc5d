"""A real two-cell nightly (base kernel, two topologies), split in two shards and merged."""

import subprocess
import sys

import xmlschema

from tests.conftest import DATA, ROOT

SCHEMA = xmlschema.XMLSchema(str(DATA / "junit" / "jenkins-junit.xsd"))


def wqci(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600)


def test_two_shards_merge_into_one_junit(tmp_path):
    matrix = str(DATA / "nightly-2cell.yaml")
    for index in (1, 2):
        done = wqci("nightly", "--matrix", matrix, "--shard", f"{index}/2", "--out", str(tmp_path / f"s{index}"))
        assert "1 of 2 cells" in done.stdout, done.stderr
    done = wqci("nightly", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m"))
    junit = tmp_path / "m" / "junit.xml"
    SCHEMA.validate(str(junit))
    xml = junit.read_text()
    assert "base--x86_64--debug--smp8-flat/" in xml and "base--x86_64--debug--smt8/" in xml
    assert xml.count('<testcase name="test_workqueue.cache"') == 2
    # both cells booted (a deep output path once broke QEMU's QMP socket) and ran the suite
    boots = [c for s in SCHEMA.to_dict(str(junit))["testsuite"] for c in s["testcase"] if c["@name"] == "boot"]
    assert len(boots) == 2 and not any("failure" in c or "error" in c for c in boots)
    assert "base--x86_64--debug--smt8" in done.stdout
