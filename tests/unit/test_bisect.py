import pytest

from pipeline.jobs import bisect
from pipeline.model.errors import WqciError
from pipeline.model.status import Status
from pipeline.model.results import SuiteResult
from pipeline.model.cases import Case
from pipeline.triage.findings import extract
from tests.conftest import DATA

BUILD = bisect.Predicate("build")


def series(n):
    return [(f"s {i}/{n}", f"c{i:039d}") for i in range(1, n + 1)]


def evaluator(first_bad, flaky_every=0):
    calls = []

    def evaluate(label, commit):
        calls.append(label)
        index = int(label.split()[1].split("/")[0])
        bad = index >= first_bad
        if bad and flaky_every and len(calls) % flaky_every:
            bad = False  # shows only in some runs
        return bisect.Observation(bad, f"{label} {'breaks' if bad else 'builds'}")
    return evaluate, calls


def test_three_patches_second_bad_takes_two_steps():
    evaluate, calls = evaluator(2)
    result = bisect.bisect(BUILD, ("base", "b"), series(3), evaluate)
    assert result.culprit == series(3)[1]
    assert calls == ["s 1/3", "s 2/3"]
    assert result.message.startswith("first bad: s 2/3")


@pytest.mark.parametrize("n, first_bad", [(1, 1), (2, 2), (5, 1), (8, 8), (8, 5), (13, 7)])
def test_finds_first_bad_in_log_steps(n, first_bad):
    evaluate, calls = evaluator(first_bad)
    result = bisect.bisect(BUILD, ("base", "b"), series(n), evaluate)
    assert result.culprit == series(n)[first_bad - 1]
    assert len(calls) <= n.bit_length() + 1


def test_no_bad_commit_is_said_plainly():
    evaluate, calls = evaluator(99)
    result = bisect.bisect(BUILD, ("base", "b"), series(4), evaluate)
    assert result.culprit is None and "nowhere in the range" in result.message
    assert calls[-1] == "s 4/4"  # the bad end was tested before saying so


def test_repeats_catch_a_flaky_signature_and_state_confidence():
    evaluate, _ = evaluator(2, flaky_every=3)
    result = bisect.bisect(BUILD, ("base", "b"), series(3), evaluate, repeat=3)
    assert result.culprit == series(3)[1]
    good = next(s for s in result.steps if not s.bad)
    assert good.runs == 3 and good.confidence() == "0 of 3 runs: rate < 0.632 at 95%"
    bad = next(s for s in result.steps if s.bad)
    assert bad.bad_runs == 1 and bad.confidence().startswith("1 of")


def suite_with(findings=(), cases=()):
    s = SuiteResult(name="step")
    s.findings.extend(findings)
    s.cases.extend(cases)
    return s


def test_judge_finding_by_regex_and_fingerprint():
    finding = extract((DATA / "splats" / "kcsan-data-race.log").read_text())[0]
    by_regex = bisect.Predicate("finding", pattern=r"kcsan: .*kick_pool")
    assert bisect.judge(by_regex, suite_with([finding]), True, "").bad
    by_fp = bisect.Predicate("finding", pattern=finding.fingerprint)
    assert bisect.judge(by_fp, suite_with([finding]), True, "").bad
    assert not bisect.judge(by_regex, suite_with(), True, "").bad


def test_judge_suite_and_metric():
    failing = suite_with(cases=[Case("locktorture.mutex_lock", Status.FAIL, message="End of test: FAILURE")])
    assert bisect.judge(bisect.Predicate("suite", suite="locktorture"), failing, True, "").bad
    metric = bisect.Predicate("metric", metric="test_workqueue.cache.items_per_sec", threshold=0.05)
    fast = suite_with(cases=[Case("test_workqueue.cache", Status.PASS, metrics={"items_per_sec": 1000.0})])
    slow = suite_with(cases=[Case("test_workqueue.cache#1", Status.PASS, metrics={"items_per_sec": 900.0})])
    ref = bisect.judge(metric, fast, True, "")
    assert not ref.bad and ref.value == 1000.0
    assert bisect.judge(metric, slow, True, "", baseline=1000.0).bad
    assert not bisect.judge(metric, fast, True, "", baseline=1000.0).bad


def test_predicate_parsing():
    assert bisect.parse_predicate(True, None, None, None, "5%").kind == "build"
    p = bisect.parse_predicate(False, None, None, "test_workqueue.cache.items_per_sec", "7%")
    assert p.kind == "metric" and p.threshold == pytest.approx(0.07)
    with pytest.raises(WqciError):
        bisect.parse_predicate(True, "x", None, None, "5%")
    with pytest.raises(WqciError):
        bisect.parse_predicate(False, "([", None, None, "5%")
