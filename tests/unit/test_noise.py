"""The base's history, `wqci noise` rows and their known-findings entries, and the evidence arithmetic."""

import re

import pytest
import yaml

from pipeline.analysis import evidence
from pipeline.analysis.evidence import Boot, Count, Sighting
from pipeline.jobs import noise
from pipeline.triage import findings as triage
from pipeline.triage.history import BaseKey, History
from tests.conftest import DATA

RACE = Sighting("aaaaaaaaaaaa", "kcsan", "KCSAN: data-race in update_sd_lb_stats", "test_workqueue")
BOOT_RACE = Sighting("bbbbbbbbbbbb", "kcsan", "KCSAN: data-race in __lock_acquire", "boot")
KEY = BaseKey("linux-7.2", "c" * 40, "x86_64", "debug", "d" * 64)


def test_history_round_trips_and_skips_torn_lines(tmp_path):
    store = History(tmp_path / "h.jsonl")
    store.add(Boot(frozenset({"test_workqueue"}), (RACE,)), "run")
    with open(store.path, "a") as fh:
        fh.write('{"boot": {"exercised": ["x"]')  # a writer killed mid-line
    store.add(Boot(frozenset({"locktorture"}), ()), "test")
    assert store.boots() == [Boot(frozenset({"test_workqueue"}), (RACE,)), Boot(frozenset({"locktorture"}), ())]


def test_rates_count_only_boots_that_exercised_the_place():
    boots = [Boot(frozenset({"test_workqueue"}), (RACE, BOOT_RACE)), Boot(frozenset({"test_workqueue"}), ()),
             Boot(frozenset({"locktorture"}), (BOOT_RACE,)), Boot(frozenset({"locktorture"}), ())]
    total, rows = noise.summarise(boots)
    assert total == 4
    got = [(r.sighting.title, r.seen, r.boots, r.bound) for r in rows]
    # the race in test_workqueue: 1 of the 2 boots that ran it; the boot-time race: 2 of all 4
    assert got == [("KCSAN: data-race in __lock_acquire", 2, 4, "0.0676..0.932"),
                   ("KCSAN: data-race in update_sd_lb_stats", 1, 2, "0.0126..0.987")]


def test_known_entries_carry_their_evidence_and_merge(tmp_path):
    boots = [Boot(frozenset({"test_workqueue"}), (RACE,))] + [Boot(frozenset({"test_workqueue"}), ())] * 9
    result = noise.Noise(KEY, "linux-7.2", *noise.summarise(boots))
    path = tmp_path / "known.yaml"
    path.write_text("linux-7.2:\n  - match: '^kcsan: KCSAN: data-race in .*wq_worker_tick'\n    reason: pwq stats\n")
    assert noise.write_known(path, result) == 1
    assert noise.write_known(path, result) == 0  # already there
    data = yaml.safe_load(path.read_text())
    entry = data["linux-7.2"][1]
    assert entry["match"] == r"^kcsan:\ KCSAN:\ data\-race\ in\ update_sd_lb_stats$"
    assert entry["reason"].startswith("seen on the base in 1 of 10 boots (linux-7.2 cccccccccccc x86_64/debug "
                                      ".config dddddddddddd), rate 0.00253..0.445 at 95%")
    # and the entry works as a known-findings match
    listed = triage.load_known(path, "linux-7.2")
    f = triage.Finding("kcsan", RACE.title, RACE.fingerprint, (), "", "test_workqueue")
    assert triage.known_reason(f, listed) == entry["reason"]


def test_fisher_and_reachability():
    assert evidence.fisher_p(Count(4, 4), Count(0, 4)) == pytest.approx(1 / 70)
    assert evidence.fisher_p(Count(3, 3), Count(0, 3)) == pytest.approx(1 / 20)
    assert evidence.fisher_p(Count(1, 1), Count(0, 0)) == 1.0  # no baseline boots: nothing to compare
    f = triage.Finding("lockdep", "possible deadlock in kick_pool", "f" * 12, (), "", "test_workqueue")
    one = [Boot(frozenset({"test_workqueue"}), (Sighting.of(f),))]
    clean = [Boot(frozenset({"test_workqueue"}), ())]
    c = evidence.judge(f, one, clean, [])
    assert c.cls is evidence.FindingClass.UNCONFIRMED and c.evidence.describe() == "patched 1 of 1, baseline 0 of 1, p=0.5"
    assert evidence.reachable(c, 3) and not evidence.reachable(c, 2)
    # ten clean boots in the history: 2 of 2 is already enough
    c = evidence.judge(f, one * 2, clean, clean * 10)
    assert c.cls is evidence.FindingClass.NEW and c.evidence.p == pytest.approx(1 / 78)  # 2 of 2 against 0 of 11


def test_noise_needs_base(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    done = subprocess.run([sys.executable, "-m", "pipeline", "noise", "--arch", "x86_64"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip() == "E: --base: wqci noise measures the base kernel; give --base"
    assert re.search(r"Traceback", done.stderr) is None
