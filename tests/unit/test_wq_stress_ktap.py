"""wq_stress's rescue, quiet-mode and culls-by-waker metrics, as the KTAP parser and the suite
parser read them. The samples (tests/data/ktap/wq_stress-*-handwritten.log) are hand-written in
the format the module prints; the last tests check that the module and the carry patch still
print and define what those samples use."""

import re

import pytest

from pipeline import suites
from pipeline.analysis import rates
from pipeline.model.cases import ModuleRun, SuiteRun
from pipeline.model.status import Status
from pipeline.suites import ktap
from tests.conftest import DATA, ROOT

MODULE = ROOT / "guest" / "modules" / "wq_stress" / "wq_stress.c"
RESCUED = "wq_stress-rescued-handwritten.log"
QUIET = "wq_stress-quiet-stranded-handwritten.log"
SOURCE_PREFIX = "culled_kicked_"


def sample(name: str) -> str:
    return (DATA / "ktap" / name).read_text()


def results(name: str) -> dict[str, ktap.KtapResult]:
    (doc,) = ktap.parse(sample(name))
    assert doc.problems == ()
    return {r.name: r for r in doc.results}


def cases_of(*names: str) -> dict:
    runs = tuple(ModuleRun("", "modprobe wq_stress", 0, "", sample(n), 30.0) for n in names)
    return {c.name: c for c in suites.parser("ktap")(SuiteRun("wq_stress", runs))}


def by_source(metrics) -> dict[str, float]:
    """The culls by the victim's last waker: culled_kicked_<call site>[_unlocked]."""
    return {k.removeprefix(SOURCE_PREFIX): v for k, v in metrics.items() if k.startswith(SOURCE_PREFIX)}


def test_rescued_items_and_their_delays():
    found = results(RESCUED)
    assert [(r.name, r.status) for r in found.values()] == [
        ("deadline", Status.PASS), ("rescue", Status.FAIL), ("all_items_ran", Status.PASS),
        ("scope_switch", Status.PASS), ("hotplug", Status.SKIP)]
    assert found["rescue"].metrics == {
        "rescued": 3, "rescued_p50_us": 31204, "rescued_max_us": 58113, "rescue_min_ms": 10,
        "rescue_checked": 16640, "rescue_candidates": 41, "stall_under_1ms": 30, "stall_1_10ms": 8,
        "stall_10_100ms": 3, "stall_over_100ms": 0}


def test_culls_by_waker_beside_the_counters():
    deadline = results(RESCUED)["deadline"]
    assert deadline.metrics == {
        "stranded": 0, "cancelled": 0, "quiet": 0, "culled_kicked": 7, "culled_new": 1, "culled_pending": 2,
        "unlocked_wakes": 40213, "kicks_skipped": 0, "culled_kicked___queue_work_unlocked": 5,
        "culled_kicked_process_one_work_unlocked": 2, "culled_kicked_create_worker": 1}
    sources = by_source(deadline.metrics)
    assert sources == {"__queue_work_unlocked": 5, "process_one_work_unlocked": 2, "create_worker": 1}
    # every runnable idle worker culled is counted once under its waker
    assert sum(sources.values()) == deadline.metrics["culled_kicked"] + deadline.metrics["culled_new"]
    # the header and the knobs are diagnostics, not metrics
    assert deadline.diagnostics[1] == "amplify: idle_timeout_ms=5 wake_delay_us=0 unlocked_wake_delay_us=2000"


def test_a_failed_rescue_is_named_by_its_finding():
    cases = cases_of(RESCUED)
    rescue = cases["wq_stress.rescue"]
    assert rescue.status is Status.FAIL and rescue.case == "rescue"
    assert rescue.message == ("3 items started only after another burst's queue_work to their pool, which had "
                              "started none of ours for 10 ms or more (longest wait 58113 us)")
    assert rescue.properties["rescued"] == "3" and rescue.metrics["rescued_max_us"] == 58113
    assert cases["wq_stress.deadline"].status is Status.PASS


def test_quiet_mode_strands_the_item_whose_kick_was_skipped():
    found = results(QUIET)
    deadline = found["deadline"]
    assert deadline.status is Status.FAIL
    assert deadline.metrics == {
        "stranded": 1, "cancelled": 1, "quiet": 1, "culled_kicked": 2, "culled_new": 0, "culled_pending": 0,
        "unlocked_wakes": 0, "kicks_skipped": 1, "culled_kicked_kick_pool": 2}
    assert by_source(deadline.metrics) == {"kick_pool": 2}
    # the sysrq t dump between the KTAP lines is not part of the result
    assert not any("Showing busy workqueues" in d or "pending:" in d for d in deadline.diagnostics)
    assert "skip_kick: 1 of 1 lone items had their kick skipped, in 1 tries" in deadline.diagnostics
    assert found["rescue"].status is Status.PASS and found["rescue"].metrics["rescued"] == 0
    assert found["all_items_ran"].metrics["queued"] - found["all_items_ran"].metrics["items"] == 1


def test_quiet_mode_stranded_case_message_is_the_report():
    cases = cases_of(QUIET)
    deadline = cases["wq_stress.deadline"]
    assert deadline.message == ("stranded work: wq=wq_stress0 item=0 producer=0 queued_at_ms=95 cpu=0 node=0 "
                                "scope=cache waited_ms=5004 quiet")
    assert deadline.metrics["stranded"] == 1 and deadline.metrics["quiet"] == 1
    assert cases["wq_stress.all_items_ran"].message == "513 items queued, 512 ran, 1 cancelled"


def test_repeated_runs_give_rates_and_totals_by_waker():
    cases = cases_of(RESCUED, QUIET, RESCUED)
    found = {r.name: r for r in rates.repeated(cases.values())}
    rescue, deadline = found["wq_stress.rescue"], found["wq_stress.deadline"]
    assert (rescue.failed, rescue.runs, rescue.totals["rescued"]) == (2, 3, 6)
    assert (deadline.failed, deadline.totals["stranded"]) == (1, 1)
    assert by_source(deadline.totals) == {"__queue_work_unlocked": 10, "process_one_work_unlocked": 4,
                                          "create_worker": 2, "kick_pool": 2}


# the module and the samples agree


def module_metric_keys() -> list[list[str]]:
    """The keys of each fixed `# metric:` line wq_stress.c prints, in order."""
    formats = re.findall(r'ktap_diag\("metric: ([^"]*)"', MODULE.read_text())
    return [re.findall(r"(\w+)=%", f) for f in formats if not f.startswith(SOURCE_PREFIX)]


def module_counters() -> list[str]:
    """The carry patch counters wq_stress reports as their change over the run (amp_counters)."""
    block = re.search(r"amp_counters\[\] = \{(.*?)\};", MODULE.read_text(), re.S).group(1)
    return re.findall(r'"(\w+)"', block)


@pytest.mark.parametrize("name", [RESCUED, QUIET])
def test_samples_use_the_metric_lines_the_module_prints(name):
    fixed, counters = module_metric_keys(), module_counters()
    for diag in (d for r in results(name).values() for d in r.diagnostics if ktap.METRIC_RE.match(d)):
        keys = re.findall(r"([\w.-]+)=", diag)
        if len(keys) == 1 and keys[0].startswith(SOURCE_PREFIX):
            assert re.fullmatch(r"culled_kicked_\w+", keys[0])
        elif set(keys) <= set(counters):
            assert keys == [c for c in counters if c in keys]
        else:
            assert keys in fixed, diag


def test_module_knows_every_test_of_the_samples():
    text = MODULE.read_text()
    printed = {name for _, name in re.findall(r'ktap_(?:result|skip)\((\d), "(\w+)"', text)}
    assert printed == set(results(RESCUED)) == set(results(QUIET))
    assert "ktap_header(5)" in text


def test_culls_with_work_pending_are_split_by_who_runs_the_work():
    """Recorded on fastwake-v1: one cull left its pool's pending work with nobody to run it."""
    deadline = results("wq_stress-pending-split-recorded.log")["deadline"]
    assert deadline.status is Status.PASS
    split = {k: deadline.metrics[k] for k in ("culled_pending", "culled_pending_busy", "culled_pending_woken",
                                              "culled_pending_alone")}
    assert split == {"culled_pending": 7, "culled_pending_busy": 4, "culled_pending_woken": 2,
                     "culled_pending_alone": 1}
    assert by_source(deadline.metrics) == {"__queue_work_unlocked": 7, "process_one_work_unlocked": 3}
    # the repeated-runs table totals them, in this order
    case = cases_of("wq_stress-pending-split-recorded.log")["wq_stress.deadline"]
    keys = [k for k, _ in rates.Rate("d", 0, 2, 0, 1, totals=case.metrics).events()]
    assert keys[:4] == ["stranded", "culled_kicked", "culled_new", "culled_pending"]
    assert keys[4:7] == ["culled_pending_busy", "culled_pending_woken", "culled_pending_alone"]
