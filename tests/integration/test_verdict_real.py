"""Verdicts on real kernels: a seeded lock-order inversion must fail the run, confirmed,
on patch 2, touching the functions it changed; a finding only the baseline shows
must leave the run green. test_workqueue only, few items, to stay small."""

import json
import os
import subprocess
import sys

import xmlschema

from pipeline import config
from pipeline.intake import tree as trees
from tests.conftest import DATA, ROOT, git

SCHEMA = xmlschema.XMLSchema(str(DATA / "junit" / "jenkins-junit.xsd"))
ENV = {**os.environ, "WQCI_PATCHES": str(DATA / "series")}
SMALL = ("--repeat", "1", "--suite", "test_workqueue", "--param", "test_workqueue.wq_items=200", "--ci",
         "--perf-flavor", "none")  # the verdict is about findings: no A/B flavour to build
EXIT = {"pass": 0, "fail": 1, "error": 1}


def wqci(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600, env=ENV)


def test_a_seeded_lock_inversion_is_new_confirmed_on_patch_2(tmp_path, base_tree):
    done = wqci("run", "--series", "seeded-lock-inversion", "--each-patch", "--out", str(tmp_path), *SMALL)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["verdict"]["status"] == "fail", done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 1
    SCHEMA.validate(str(tmp_path / "junit.xml"))
    (arch,) = data["arches"]
    (new,) = arch["new_findings"]
    assert new["kind"] == "lockdep" and new["title"] == "possible deadlock in wq_affn_scope_store", new
    assert new["class"] == "new" and new["first_patch"] == "seeded-lock-inversion 2/2"
    seen, boots = new["evidence"]["patched"]
    assert seen == boots and new["evidence"]["p"] < 0.05 and new["evidence"]["baseline"][0] == 0
    assert "wq_affn_scope_store (changed by 2/2)" in new["touches"]
    assert "kick_pool (changed by 1/2)" in new["touches"]
    # the one failing finding case, and the same verdict on the terminal and in the summary
    failing = [c for s in data["suites"] for c in s["cases"] if c["status"] in ("fail", "error")]
    assert [c["name"] for c in failing] == [f"finding.lockdep.{new['fingerprint']}"]
    assert "E: seeded-lock-inversion: fail" in done.stderr
    assert "NEW lockdep: possible deadlock in wq_affn_scope_store" in done.stdout
    assert (tmp_path / "summary.md").read_text().startswith("# wqci run seeded-lock-inversion: FAIL")
    # the hand-off: reproduce.sh, run as written with wqci on PATH, gets the same finding again
    env = {**ENV, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    again = subprocess.run(["sh", str(tmp_path / "reproduce.sh")], cwd="/", env=env, capture_output=True,
                           text=True, timeout=3600)
    assert again.returncode == 1, again.stdout[-3000:] + again.stderr[-3000:]
    redo = json.loads((tmp_path / "reproduce" / "x86_64" / "seeded-lock-inversion" / "results.json").read_text())
    titles = [c["message"].split(" (")[0] for s in redo["suites"] for c in s["cases"]
              if c["name"] == f"finding.lockdep.{new['fingerprint']}"]
    assert titles == ["possible deadlock in wq_affn_scope_store"], again.stdout[-3000:]
    assert (tmp_path / "reproduce" / "x86_64" / "baseline" / "junit.xml").exists()  # the baseline was tested too
    reply = (tmp_path / "reply.txt").read_text()
    assert "possible deadlock in wq_affn_scope_store" in reply and "Reported-by:" in reply


def test_a_finding_of_the_baseline_only_is_pre_existing_and_the_run_passes(tmp_path, base_tree):
    layout = config.Layout()
    repo = layout.cache / "test-trees" / "warn-base"
    if not (repo / ".git").exists():  # the base tree plus a commit that warns in test_workqueue
        repo.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "-q", "--shared", str(base_tree.repo), str(repo)], check=True)
        git(repo, "checkout", "-q", base_tree.commit)
        git(repo, "am", "-q", str(DATA / "series" / "warn-bisect" /
                                   "0002-test_workqueue-warn-once-when-the-benchmark-starts.patch"))
    done = wqci("run", "--series", "seeded-fix", "--tree", str(repo), "--out", str(tmp_path), *SMALL)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["verdict"]["status"] == "pass", data["verdict"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (arch,) = data["arches"]
    warn = [f for f in arch["baseline_findings"] if f["title"] == "WARNING in test_workqueue_init"]
    assert len(warn) == 1 and warn[0]["class"] == "pre-existing"
    assert arch["new_findings"] == []
    assert all(f["title"] != "WARNING in test_workqueue_init" for f in arch["unconfirmed_findings"])
    baseline_case = next(c for c in data["suites"][0]["cases"] if c["name"] == f"finding.warn.{warn[0]['fingerprint']}")
    assert baseline_case["status"] == "pass" and baseline_case["properties"]["class"] == "pre-existing"
    assert SCHEMA.to_dict(str(tmp_path / "junit.xml"))["@failures"] == "0"
    assert done.stdout.rstrip().endswith("I: seeded-fix: pass") or "I: seeded-fix: pass" in done.stdout


def test_noise_boots_the_base_and_reports_its_history(tmp_path, base_tree):
    history = config.Layout().cache / "history"
    before = sum(len(p.read_text().splitlines()) for p in history.glob("*.jsonl")) if history.exists() else 0
    known = tmp_path / "known.yaml"
    done = wqci("noise", "--base", "--boots", "1", "--suite", "test_workqueue", "--param",
                "test_workqueue.wq_items=200", "--out", str(tmp_path / "boots"), "--write-known", str(known))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    after = sum(len(p.read_text().splitlines()) for p in history.glob("*.jsonl"))
    assert after == before + 1  # this boot joined the base's history
    lines = [ln for ln in done.stdout.splitlines() if not ln.startswith("I: ")]
    head = lines[0]
    assert head.startswith("linux-7.2 ") and " x86_64/debug .config " in head and "boot(s) in the history" in head
    assert " ".join(lines[1].split()) == "finding where seen rate (95%) fingerprint"
    assert (tmp_path / "boots" / "boot-1" / "console.log").exists()
    assert known.exists() and known.read_text().startswith("linux-7.2:")
