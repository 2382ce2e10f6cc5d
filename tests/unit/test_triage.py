"""Console triage on a corpus of real kernel reports (tests/data/splats, sources in SOURCES.yaml)."""

import subprocess
import sys

import pytest
import yaml

from pipeline.triage import findings as triage
from tests.conftest import DATA, ROOT

SPLATS = DATA / "splats"
CORPUS = yaml.safe_load((SPLATS / "SOURCES.yaml").read_text())["files"]


@pytest.mark.parametrize("entry", CORPUS, ids=[e["file"] for e in CORPUS])
def test_corpus(entry):
    expected = entry["expected"]["findings"]
    got = triage.extract((SPLATS / entry["file"]).read_text(errors="replace"))
    assert [f.kind for f in got] == [e["kind"] for e in expected]
    for want, have in zip(expected, got):
        assert have.title == want["title"]
        assert have.fingerprint == want["fingerprint"]
        # top_frames were read off the report independently of wqci's parser
        wanted = [f for f in want.get("top_frames") or [] if not triage.is_noise(f)]
        if wanted:
            assert wanted[0] in have.frames[:3], (wanted, have.frames)


def test_clean_boot_has_no_findings():
    assert triage.triage((SPLATS / "clean-boot.log").read_text()) == []


def test_titles_do_not_depend_on_addresses_pids_cpus_or_time():
    text = (SPLATS / "soft-lockup.log").read_text()
    other = (text.replace("CPU#0", "CPU#5").replace("stuck for 44s", "stuck for 22s").replace("[exportfs:1180]",
             "[exportfs:77]").replace("7972.", "12.").replace("+0x54/0xd0", "+0x58/0xd0"))
    a, b = triage.extract(text)[0], triage.extract(other)[0]
    assert a.title == b.title == "soft lockup in __nfsd_file_cache_purge"
    assert a.fingerprint == b.fingerprint


def test_duplicates_are_counted_once():
    text = (SPLATS / "wq-lockup.log").read_text()
    findings = triage.triage(text + "\n" + text)
    assert len(findings) == 1 and findings[0].count == 2


def test_report_text_is_whole():
    kcsan = triage.extract((SPLATS / "kcsan-data-race.log").read_text())[0]
    assert kcsan.text.splitlines()[0].startswith("=====")
    assert kcsan.text.splitlines()[-1].startswith("=====")
    assert "Reported by Kernel Concurrency Sanitizer" in kcsan.text
    warn = [f for f in triage.extract((SPLATS / "real-multi-cifs-6.6.log").read_text()) if f.kind == "warn"][0]
    assert "cut here" in warn.text.splitlines()[0] and "end trace" in warn.text.splitlines()[-1]


def test_oops_and_its_panic_are_one_finding():
    findings = triage.extract((SPLATS / "oops-page-fault-panic.log").read_text())
    assert len(findings) == 1
    assert "Kernel panic - not syncing: Fatal exception" in findings[0].text


def test_where_comes_from_suite_markers():
    splat = (SPLATS / "kcsan-data-race.log").read_text()
    console = ("[    1.0] booting\n[   10.0] wqci: begin suite test_workqueue run 1\n" + splat +
               "\n[   20.0] wqci: end suite test_workqueue run 1\n")
    (finding,) = triage.triage(console)
    assert finding.where == "test_workqueue"


def test_cli_prints_exactly_two_findings(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pipeline", "triage", str(SPLATS / "two-splats.log"),
                           "--junit", str(tmp_path / "t.xml")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "2 finding(s)"
    assert lines[0].startswith("lockdep") and "possible recursive locking detected" in lines[0]
    assert lines[1].startswith("kcsan") and "KCSAN: data-race in kick_pool / wq_worker_running" in lines[1]
    xml = (tmp_path / "t.xml").read_text()
    assert xml.count("<failure") == 2
