"""Suite parsers on output recorded from real guests (tests/data/suites, see SOURCE.md)."""

import pytest

from pipeline import suites
from pipeline.analysis import rates
from pipeline.model.status import Status
from pipeline.model.cases import ModuleRun, SuiteRun
from tests.conftest import DATA


def recorded(name: str) -> list[ModuleRun]:
    """Split a runner log back into module runs."""
    runs = []
    for chunk in ("\n" + (DATA / "suites" / f"{name}.log").read_text()).split("\n$ ")[1:]:
        command, _, rest = chunk.partition("\n")
        output, _, log = rest.partition("--- kernel log ---\n")
        variant = command.split("torture_type=")[-1] if "torture_type=" in command else ""
        runs.append(ModuleRun(variant=variant, command=command, exit_code=1 if "unavailable" in output else 0,
                              output=output, log=log, duration=10.0))
    return runs


def parse(name: str, runs: list[ModuleRun]):
    return suites.parser(name)(SuiteRun(suite=name, runs=tuple(runs)))


def test_test_workqueue_scopes_and_metrics():
    cases = {c.name: c for c in parse("test_workqueue", recorded("test_workqueue"))}
    assert cases["test_workqueue"].status is Status.PASS
    assert cases["test_workqueue"].properties == {"threads": "8", "items_per_thread": "2000"}
    for scope in ("cpu", "smt", "cache_shard", "cache", "numa", "system"):
        assert cases[f"test_workqueue.{scope}"].status is Status.PASS
    assert cases["test_workqueue.cpu"].metrics == {"items_per_sec": 10784.0, "p50_ns": 21140.0,
                                                   "p90_ns": 38290.0, "p95_ns": 63820.0}


def test_test_workqueue_missing_scope_fails():
    (run,) = recorded("test_workqueue")
    log = "\n".join(ln for ln in run.log.splitlines() if " numa " not in ln)
    cases = {c.name: c for c in parse("test_workqueue", [ModuleRun("", run.command, 1, run.output, log, 1.0)])}
    assert cases["test_workqueue.numa"].status is Status.FAIL
    assert "no result line for scope 'numa'" in cases["test_workqueue.numa"].message


def test_test_workqueue_must_end_with_eagain():
    (run,) = recorded("test_workqueue")
    cases = parse("test_workqueue", [ModuleRun("", run.command, 0, "", run.log, 1.0)])
    assert cases[0].status is Status.FAIL and "expected EAGAIN" in cases[0].message


def test_locktorture_three_lock_types():
    cases = parse("locktorture", recorded("locktorture"))
    assert [c.name for c in cases] == ["locktorture.mutex_lock", "locktorture.ww_mutex_lock",
                                       "locktorture.rtmutex_lock"]
    assert all(c.status is Status.PASS for c in cases)
    assert all(c.metrics["writes_total"] > 0 and c.metrics["writes_fail"] == 0 for c in cases)


def test_locktorture_failure():
    run = recorded("locktorture")[0]
    broken = run.log.replace("End of test: SUCCESS", "End of test: FAILURE")
    (case,) = parse("locktorture", [ModuleRun(run.variant, run.command, 0, "", broken, 1.0)])
    assert case.status is Status.FAIL and case.message == "End of test: FAILURE"


def test_ww_mutex_deadline_edeadlk_is_a_note_not_a_failure():
    (case,) = parse("ww_mutex_selftest", recorded("ww_mutex_selftest"))
    assert case.status is Status.PASS
    assert "stress (stress_inorder_work) failed with -35" in case.properties["note"]


@pytest.mark.parametrize("line", ["cyclic deadlock not resolved, ret[2/4] = -35",
                                  "ww_mutex_lock: failed to resolve ABBA deadlock, A err=-35, B err=0",
                                  "stress (stress_one_work) failed with -22"])
def test_ww_mutex_real_failures(line):
    (run,) = recorded("ww_mutex_selftest")
    (case,) = parse("ww_mutex_selftest", [ModuleRun("", run.command, 0, "", run.log + "\n" + line, 1.0)])
    assert case.status is Status.FAIL and case.message.startswith(line.split(",")[0].split(" =")[0][:20])


def test_timeout_is_an_error():
    (case,) = parse("ww_mutex_selftest", [ModuleRun("", "modprobe test-ww_mutex", -1, "", "", 600.0, True)])
    assert case.status is Status.ERROR


def test_unknown_parser_lists_the_options():
    with pytest.raises(Exception) as exc:
        suites.parser("nope")
    assert "test_workqueue" in str(exc.value) and "locktorture" in str(exc.value)


def test_benchmark_that_ran_twice_fails():
    (run,) = recorded("test_workqueue-ran-twice")
    cases = parse("test_workqueue", [run])
    assert len(cases) == 1 and cases[0].status is Status.FAIL
    assert "ran 2 times in one load" in cases[0].message


def test_test_workqueue_repeats_are_grouped_per_scope():
    (run,) = recorded("test_workqueue")
    broken = ModuleRun("", run.command, 1, run.output,
                       "\n".join(ln for ln in run.log.splitlines() if " numa " not in ln), 1.0)
    cases = parse("test_workqueue", [run, broken])
    assert "test_workqueue.cpu#2" in {c.name for c in cases}
    found = {r.name: r for r in rates.repeated(cases)}
    assert found["test_workqueue.numa"].failed == 1 and found["test_workqueue.numa"].runs == 2
    assert found["test_workqueue.cpu"].failed == 0


def test_locktorture_repeats_are_named_apart_and_grouped_per_lock_type():
    runs = recorded("locktorture")
    cases = parse("locktorture", runs + runs)
    names = [c.name for c in cases]
    assert names[0] == "locktorture.mutex_lock#1" and names[3] == "locktorture.mutex_lock#4"
    assert (cases[3].suite, cases[3].variant, cases[3].case, cases[3].runs) == ("locktorture", "mutex_lock", "", (4,))
    assert len(set(names)) == 6
    found = {r.name: r for r in rates.repeated(cases)}
    assert set(found) == {"locktorture.mutex_lock", "locktorture.ww_mutex_lock", "locktorture.rtmutex_lock"}
    assert all(r.runs == 2 and r.failed == 0 for r in found.values())
