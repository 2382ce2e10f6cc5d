import pytest
import xmlschema
from junitparser import Failure, JUnitXml

from pipeline import config
from pipeline.guest.topology import load_topologies
from pipeline.jobs import bisect
from pipeline.jobs import bisect_steps
from pipeline.intake import tree as trees
from pipeline.model.errors import WqciError
from pipeline.model.status import Status
from pipeline.model.results import SuiteResult
from pipeline.model.cases import Case
from pipeline.triage.findings import extract
from tests.conftest import DATA, ROOT, git
from tests.unit.test_apply import make_series

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
    failing = suite_with(cases=[Case("locktorture", Status.FAIL, message="End of test: FAILURE",
                                     variant="mutex_lock")])
    assert bisect.judge(bisect.Predicate("suite", suite="locktorture"), failing, True, "").bad
    metric = bisect.Predicate("metric", metric="test_workqueue.cache.items_per_sec", threshold=0.05)
    fast = suite_with(cases=[Case("test_workqueue", Status.PASS, metrics={"items_per_sec": 1000.0}, case="cache")])
    slow = suite_with(cases=[Case("test_workqueue", Status.PASS, metrics={"items_per_sec": 900.0}, case="cache",
                                  runs=(1,))])
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


# ---------------------------------------------------------------- the job (jobs/bisect_steps.py), with a fake evaluate

SCHEMA = xmlschema.XMLSchema(str(DATA / "junit" / "jenkins-junit.xsd"))
GOOD_LINE = "0 of 1 runs: rate < 0.95 at 95%"


def job_request(out_dir, predicate=BUILD, **where):
    layout = config.Layout(root=ROOT)
    return bisect_steps.BisectRequest(predicate=predicate, arch=config.load_arch(layout, "x86_64"),
                                      flavor=config.load_flavors(layout).get(None),
                                      topology=load_topologies(layout).get(None), suites=(), out_dir=out_dir, **where)


def fetched_base(layout, repo):
    """The default base tree as `wqci tree fetch` leaves it under the cache: a clone of repo with the tree's tag."""
    tree = config.load_trees(layout).get(None)
    dest = trees.tree_path(layout, tree.name)
    dest.parent.mkdir(parents=True)
    git(dest.parent, "clone", "-q", str(repo), str(dest))
    git(dest, "tag", tree.tag)
    return git(dest, "rev-parse", "HEAD").strip()


def bad_at(*bad_labels):
    """A fake step: bad at the commits with these labels, good elsewhere; every call is recorded."""
    calls = []

    def evaluate(label, commit):
        calls.append(label)
        bad = label in bad_labels
        return bisect.Observation(bad, f"{'breaks' if bad else 'builds'} at {label}\nsecond line")
    return evaluate, calls


def test_job_over_a_range_of_a_users_tree_writes_log_and_junit(tmp_layout, small_repo, tmp_path):
    good = git(small_repo, "rev-parse", "HEAD").strip()
    commits = []
    for i in range(1, 5):
        (small_repo / "Makefile").write_text(f"all:\n\t@echo {i}\n")
        git(small_repo, "commit", "-q", "-am", f"change {i}")
        commits.append(git(small_repo, "rev-parse", "HEAD").strip())
    labels = [f"{c[:12]} change {i}" for i, c in enumerate(commits, 1)]
    evaluate, calls = bad_at(*labels[2:])
    lines = []
    req = job_request(tmp_path / "out", tree_path=small_repo, good=good, bad="HEAD")
    outcome = bisect_steps.run_bisect(tmp_layout, req, lines.append, evaluate)

    assert calls == [labels[1], labels[2]]  # 4 commits: the 2nd is good, the 3rd bad; nothing else to test
    assert outcome.name == "kernel"
    assert outcome.result.culprit == (labels[2], commits[2])
    assert outcome.culprit.commit == commits[2] and outcome.culprit.evidence == f"breaks at {labels[2]}\nsecond line"
    assert lines == [
        "bisecting 4 commit(s) of kernel: bad when the build fails",
        f"{labels[1]} {commits[1][:12]}: good ({GOOD_LINE}, 0 s) builds at {labels[1]}",
        f"{labels[2]} {commits[2][:12]}: BAD (1 of 1 runs bad, 0 s) breaks at {labels[2]}",
    ]
    assert outcome.log == tmp_path / "out" / "bisect.log"
    assert outcome.log.read_text() == (
        f"{labels[1]}\t{commits[1]}\tgood\t{GOOD_LINE}\t0.0s\nbuilds at {labels[1]}\nsecond line\n\n"
        f"{labels[2]}\t{commits[2]}\tbad\t1 of 1 runs bad\t0.0s\nbreaks at {labels[2]}\nsecond line\n")

    assert outcome.junit == tmp_path / "out" / "junit.xml"
    SCHEMA.validate(str(outcome.junit))
    (suite,) = list(JUnitXml.fromfile(str(outcome.junit)))
    assert suite.name == "bisect/kernel"
    cases = list(suite)
    assert [c.name for c in cases] == [f"step1.{labels[1]}", f"step2.{labels[2]}", "culprit"]
    assert [c.is_passed for c in cases] == [True, True, False]
    (failure,) = cases[2].result
    assert isinstance(failure, Failure)
    assert failure.message == f"first bad: {labels[2]} ({commits[2][:12]}): the build fails"
    props = {p.name: p.value for p in suite.properties()}
    assert props == {"predicate": "the build fails", "good": f"{good} {good}", "culprit": f"{labels[2]} {commits[2]}",
                     f"step1.{labels[1]}.commit": commits[1], f"step1.{labels[1]}.bad": "false",
                     f"step2.{labels[2]}.commit": commits[2], f"step2.{labels[2]}.bad": "true"}


def test_job_over_a_series_and_a_range_without_culprit(tmp_layout, small_repo, tmp_path):
    edits = [(f"int line{n};", f"long line{n};", f"workqueue: change {i}") for i, n in enumerate((5, 20, 35), 1)]
    make_series(tmp_layout, small_repo, edits)
    base = fetched_base(tmp_layout, small_repo)
    lines = []
    req = job_request(tmp_path / "out", series="demo", repeat=2)
    evaluate, calls = bad_at("demo 2/3", "demo 3/3")
    found = bisect_steps.run_bisect(tmp_layout, req, lines.append, evaluate)
    assert calls == ["demo 1/3", "demo 1/3", "demo 2/3"]  # good needs both runs, bad once is bad
    assert found.result.good == ("base", base)
    assert found.result.culprit[0] == "demo 2/3"
    assert lines[0] == "bisecting 3 commit(s) of demo: bad when the build fails"
    assert [ln.split("\t")[:4] for ln in found.log.read_text().splitlines() if "\t" in ln] == [
        ["demo 1/3", found.result.steps[0].commit, "good", "0 of 2 runs: rate < 0.776 at 95%"],
        ["demo 2/3", found.result.culprit[1], "bad", "1 of 1 runs bad"]]

    never, calls = bad_at()
    none = bisect_steps.run_bisect(tmp_layout, job_request(tmp_path / "none", series="demo"), lambda s: None, never)
    assert calls == ["demo 1/3", "demo 2/3", "demo 3/3"]  # the bad end is tested before saying so
    assert none.culprit is None
    assert none.result.message == "the build fails nowhere in the range, not even at demo 3/3"
    (suite,) = list(JUnitXml.fromfile(str(none.junit)))
    assert [(c.name, c.is_passed) for c in suite] == [("step1.demo 1/3", True), ("step2.demo 2/3", True),
                                                      ("step3.demo 3/3", True), ("culprit", True)]
    assert {p.name: p.value for p in suite.properties()}["culprit"] == "none"


def test_job_measures_the_good_end_first_for_a_metric(tmp_layout, small_repo, tmp_path):
    make_series(tmp_layout, small_repo, [("int line5;", "long line5;", "workqueue: slower")])
    fetched_base(tmp_layout, small_repo)
    metric = bisect.Predicate("metric", metric="test_workqueue.cache.items_per_sec", threshold=0.05)
    seen = []

    def evaluate(label, commit):
        seen.append(label)
        return bisect.Observation(True, "900 items/s", 900.0)
    evaluate.reference = lambda label, commit: seen.append(f"reference {label}") or 1000.0
    lines = []
    found = bisect_steps.run_bisect(tmp_layout, job_request(tmp_path, metric, series="demo"), lines.append, evaluate)
    assert seen == ["reference base", "demo 1/1"]
    assert lines[:2] == ["bisecting 1 commit(s) of demo: bad when test_workqueue.cache.items_per_sec drops more "
                         "than 5% below the good end", "reference at the good end: 1000.0"]
    assert found.result.culprit[0] == "demo 1/1"


def test_suites_for_each_predicate(tmp_layout):
    (tmp_layout.root / "patches" / "carry").symlink_to(ROOT / "patches" / "carry")  # suites.yaml names one
    build = bisect_steps.suites_for(tmp_layout, BUILD, ["test_workqueue"], None)
    assert build == ()  # a build predicate boots nothing, whatever --suite says
    suite = bisect_steps.suites_for(tmp_layout, bisect.Predicate("suite", suite="locktorture"), None, None)
    assert [s.name for s in suite] == ["locktorture"]
    metric = bisect.Predicate("metric", metric="test_workqueue.cache.items_per_sec")
    (wq,) = bisect_steps.suites_for(tmp_layout, metric, None, ["test_workqueue.wq_items=100"])
    assert wq.name == "test_workqueue" and wq.params["wq_items"] == "100"
    asked = bisect_steps.suites_for(tmp_layout, bisect.Predicate("finding", pattern="x"), ["ww_mutex_selftest"], None)
    assert [s.name for s in asked] == ["ww_mutex_selftest"]


def test_a_request_is_a_series_or_a_range_of_a_checkout(tmp_path, monkeypatch):
    with pytest.raises(WqciError, match=r"^give --series NAME, or --tree PATH with --good REV and --bad REV$"):
        job_request(None)
    with pytest.raises(WqciError, match=r"^give --series NAME, or --tree PATH"):
        job_request(None, series="demo", tree_path=tmp_path)
    with pytest.raises(WqciError, match=r"^--tree needs --good REV and --bad REV$"):
        job_request(None, tree_path=tmp_path, good="HEAD~2")
    assert job_request(None, series="demo").name == "demo"
    assert job_request(None, tree_path=tmp_path / "linux", good="a", bad="b").name == "linux"


def test_the_default_output_directory_is_named_after_the_range(tmp_layout, small_repo, tmp_path, monkeypatch):
    git(small_repo, "commit", "-q", "--allow-empty", "-m", "change 1")
    monkeypatch.chdir(tmp_path)
    req = job_request(None, tree_path=small_repo, good="HEAD~1", bad="HEAD")
    outcome = bisect_steps.run_bisect(tmp_layout, req, lambda s: None, bad_at()[0])
    assert outcome.junit == tmp_path / "out" / "bisect-kernel" / "junit.xml"
    assert outcome.log.is_file() and outcome.culprit is None
