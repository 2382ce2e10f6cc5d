"""The lock_stat A/B per affinity scope: the carry patch that gives test_workqueue its
scope= parameter, committed without a worktree; one module load per scope on the A/B
flavour; parsing and comparing those loads scope by scope."""

import pytest
import yaml

from pipeline import config
from pipeline.analysis import lockab
from pipeline.intake import series, tree
from pipeline.jobs import prepare
from pipeline.jobs import run as abrun
from pipeline.model import results
from pipeline.model.cases import Case, ModuleRun, SuiteRun
from pipeline.model.errors import ApplyFailed, ConfigError
from pipeline.model.status import Status
from pipeline.suites import lockstat, test_workqueue
from pipeline.suites.config import load_suites
from tests.conftest import DATA, ROOT, git
from tests.unit.test_apply import make_series
from tests.unit.test_run_job import LAYOUT, FakeBackend, request

DUMP = (DATA / "lockstat" / "x86_64-test_workqueue.txt").read_text()
CARRY = "test-workqueue-scope"


def test_a_carry_is_committed_on_top_without_touching_any_checkout(tmp_layout, small_repo):
    carry = make_series(tmp_layout, small_repo, [("int line20;", "int line20 = 2;", "bench: carry")], name="carry")
    info = tree.user_tree(small_repo)
    before = (git(small_repo, "rev-parse", "HEAD"), git(small_repo, "status", "--porcelain"))
    head = series.commit_onto(info, carry, info.commit)
    assert git(small_repo, "rev-parse", f"{head}~1").strip() == info.commit
    assert "int line20 = 2;" in git(small_repo, "show", f"{head}:kernel/workqueue.c")
    assert git(small_repo, "log", "-1", "--format=%an|%s", head).strip() == "wqci|bench: carry"
    assert (git(small_repo, "rev-parse", "HEAD"), git(small_repo, "status", "--porcelain")) == before
    assert not (tmp_layout.cache / "worktrees").exists()  # no worktree was made for it
    # the same patch on the same commit is the same commit (the slot's cached build is found again)
    assert series.commit_onto(info, carry, info.commit) == head


def test_a_carry_that_does_not_apply_names_its_patch(tmp_layout, small_repo):
    carry = make_series(tmp_layout, small_repo, [("int line20;", "int line20 = 2;", "bench: carry")], name="carry")
    f = small_repo / "kernel" / "workqueue.c"
    f.write_text(f.read_text().replace("int line20;", "int line20 = 7;"))
    git(small_repo, "commit", "-q", "-am", "upstream changed the benchmark")
    info = tree.user_tree(small_repo)
    with pytest.raises(ApplyFailed) as err:
        series.commit_onto(info, carry, info.commit)
    assert err.value.patch == 1
    assert str(err.value).startswith('carry: patch 1/1 "bench: carry" (0001-bench-carry.patch) does not apply: ')
    assert "kernel/workqueue.c" in str(err.value)


def test_the_project_carry_gives_test_workqueue_a_scope_parameter():
    cfg = load_suites(LAYOUT).get("test_workqueue")
    assert cfg.ab_carry == CARRY
    assert [v["scope"] for v in cfg.ab_variants] == list(test_workqueue.SCOPES)
    assert cfg.for_ab().variants == cfg.ab_variants and cfg.variants == ({},)
    assert cfg.for_triage().variants == ({},)
    carry = config.load_series_file(ROOT / "patches" / "carry" / CARRY / "series.yaml")
    patch = carry.patch_paths()[0].read_text()
    assert "module_param_named(scope, only_scope, charp, 0444);" in patch
    assert "+++ b/lib/test_workqueue.c" in patch and patch.count("diff --git") == 1
    # a suite without ab_variants runs its own variants on the A/B flavour too
    torture = load_suites(LAYOUT).get("locktorture")
    assert torture.for_ab() == torture


@pytest.mark.parametrize(("fields", "detail"), [
    ({"ab_carry": "nope"}, "field 'suites.test_workqueue.ab_carry': no patches/carry/nope/series.yaml"),
    ({"ab_carry": "", "ab_variants": [{"scope": "cpu"}]},
     "field 'suites.test_workqueue.ab_variants': needs ab_carry"),
])
def test_suites_yaml_refuses_a_missing_carry(tmp_path, fields, detail):
    root = tmp_path / "project"
    (root / "configs").mkdir(parents=True)
    data = yaml.safe_load((ROOT / "configs" / "suites.yaml").read_text())
    data["suites"]["test_workqueue"].update(fields)
    (root / "configs" / "suites.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_suites(config.Layout(root=root, cache=tmp_path / "cache"))
    assert detail in str(err.value) and "suites.yaml" in str(err.value)


def one_scope(scope: str, items: int, stat: str = "") -> ModuleRun:
    log = (f"[ 1.0] test_workqueue: running 8 threads, 300 items/thread\n"
           f"[ 2.0] test_workqueue:   {scope:<16} {items} items/sec\tp50=3000\tp90=5000\tp95=7000 ns\n")
    return ModuleRun(variant=scope, command=f"modprobe test_workqueue scope={scope}", exit_code=1,
                     output="modprobe: ERROR: could not insert 'test_workqueue': Resource temporarily unavailable",
                     log=log, duration=6.0, lock_stat=stat)


def test_a_one_scope_load_expects_only_its_scope():
    run = SuiteRun("test_workqueue", (one_scope("cpu", 1000), one_scope("numa", 900)))
    cases = test_workqueue.parse(run)
    assert len({c.name for c in cases}) == len(cases) == 4  # every JUnit name once
    loads = [c for c in cases if c.case == "load"]
    scopes = [c for c in cases if c.case != "load"]
    assert [(c.name, c.status) for c in loads] == [("test_workqueue.cpu.load", Status.PASS),
                                                    ("test_workqueue.numa.load", Status.PASS)]
    assert [(c.case, c.variant, c.metrics["items_per_sec"], c.duration) for c in scopes] == [
        ("cpu", "", 1000.0, 6.0), ("numa", "", 900.0, 6.0)]
    # the per-scope cases are what the throughput A/B reads, under the same names as a whole run's
    suite = results.SuiteResult(name="x")
    suite.cases += scopes
    assert {k: [m["items_per_sec"] for m in v] for k, v in abrun.scope_metrics(suite).items()} == {
        "cpu": [1000.0], "numa": [900.0]}


def test_a_whole_run_still_fails_a_scope_without_its_line():
    whole = one_scope("cpu", 1000)
    whole = ModuleRun(variant="", command="modprobe test_workqueue", exit_code=1, output=whole.output,
                      log=whole.log, duration=6.0)
    failed = [(c.case, c.message) for c in test_workqueue.parse(SuiteRun("test_workqueue", (whole,)))
              if c.status is Status.FAIL]
    assert failed == [(s, f"no result line for scope '{s}'") for s in test_workqueue.SCOPES if s != "cpu"]


def test_lock_stat_of_each_scope_is_its_own_row():
    run = SuiteRun("test_workqueue", (one_scope("cpu", 1000, DUMP), one_scope("numa", 900, DUMP)))
    cases = lockstat.cases(run, ["&pool->lock"])
    assert [c.name for c in cases] == ["test_workqueue.cpu.lockstat.pool-lock", "test_workqueue.numa.lockstat.pool-lock"]
    metrics = lockab.lock_metrics(cases)
    assert list(metrics) == [(scope, "&pool->lock", m) for scope in ("all", "cpu", "numa")
                             for m in ("hold_us_per_acq", "contentions_per_acq")]
    assert metrics[("cpu", "&pool->lock", "hold_us_per_acq")] == [pytest.approx(9879011.33 / 138220)]


def test_all_scopes_sum_each_runs_loads_before_dividing():
    def load(scope, run, acq, hold_per_acq, contentions):
        return Case("test_workqueue", Status.PASS, case="lockstat.pool-lock", variant=scope, runs=(run,),
                    properties={"lock_class": "&pool->lock"},
                    metrics={"acquisitions": acq, "hold_us_per_acq": hold_per_acq, "contentions": contentions,
                             "contentions_per_acq": contentions / acq})

    cases = [load("cpu", 1, 100.0, 2.0, 10.0), load("numa", 1, 300.0, 1.0, 0.0),
             load("cpu", 2, 200.0, 1.0, 20.0), load("numa", 2, 200.0, 3.0, 20.0),
             load("cpu", 3, 500.0, 9.0, 50.0)]  # run 3 hung after its first scope: no "all" value
    metrics = lockab.lock_metrics(cases)
    # run 1: (100*2 + 300*1) / 400 = 1.25 us, 10/400 contentions; run 2: (200 + 600) / 400 = 2.0, 40/400
    assert metrics[("all", "&pool->lock", "hold_us_per_acq")] == [1.25, 2.0]
    assert metrics[("all", "&pool->lock", "contentions_per_acq")] == [0.025, 0.1]
    assert metrics[("numa", "&pool->lock", "hold_us_per_acq")] == [1.0, 3.0]
    # a whole run (no scope) is its own figure and gets no second "all" row
    whole = [Case("test_workqueue", Status.PASS, case="lockstat.pool-lock", runs=(1,),
                  properties={"lock_class": "&pool->lock"}, metrics={"acquisitions": 5.0, "hold_us_per_acq": 1.0})]
    assert lockab.lock_metrics(whole) == {("", "&pool->lock", "hold_us_per_acq"): [1.0]}


def test_per_scope_rows_are_compared_and_corrected_together():
    hold = "hold_us_per_acq"
    base = {("cpu", "&pool->lock", hold): [10.0, 10.2, 9.9, 10.1], ("numa", "&pool->lock", hold): [10.0, 10.3, 9.8, 10.1]}
    patched = {("cpu", "&pool->lock", hold): [10.1, 10.0, 9.9, 10.2], ("numa", "&pool->lock", hold): [5.0, 5.1, 4.9, 5.05]}
    rows = {r.scope: r for r in lockab.compare(base, patched)}
    assert rows["numa"].statement == "shorter hold" and rows["numa"].change == pytest.approx(-49.9, abs=0.3)
    assert rows["cpu"].statement.startswith("no change detected")
    # Holm over both rows: the larger raw p is not below its own adjusted value
    assert rows["cpu"].p_holm >= rows["cpu"].p_value
    table = lockab.table_rows([rows["numa"]])
    assert table[0][:3] == ("numa", "&pool->lock", hold) and lockab.TABLE_HEADERS[0] == "scope"
    # a results.json written before scopes existed still reads (no scope: a whole load, "whole")
    old = {k: v for k, v in rows["cpu"].to_dict().items() if k != "change_percent"}
    assert lockab.table_rows([lockab.LockComparison(**old)])[0][0] == "cpu"
    old.pop("scope", None)
    assert lockab.table_rows([lockab.LockComparison(**{**old})])[0][0] == "whole"


class Carrying(FakeBackend):
    """Records what each prepare asked to carry and which variants each A/B test ran;
    the patched side's carry applies only when `patched_carries`."""

    def __init__(self, history_dir, patched_carries=True):
        super().__init__({}, history_dir)
        self.asked: list[tuple[str, tuple[str, ...]]] = []
        self.variants: list[tuple[str, tuple]] = []
        self.patched_carries = patched_carries

    def prepare(self, wanted, arch, out_dir):
        out = super().prepare(wanted, arch, out_dir)
        self.asked.append((out.label, wanted.carry))
        if wanted.carry and (out.label == "base" or self.patched_carries):
            out.properties["carried"] = " ".join(wanted.carry)
        return out

    def test(self, arch, prepared, suites, out_dir, result, progress):
        self.variants.append((prepared.label, tuple(",".join(v.values()) for s in suites for v in s.variants)))
        return super().test(arch, prepared, suites, out_dir, result, progress)


@pytest.mark.parametrize(("patched_carries", "ab_variants"), [
    (True, tuple(test_workqueue.SCOPES)),
    (False, ("",)),  # the carry did not apply on one side: both sides run whole, as on any tree
])
def test_the_ab_flavour_loads_test_workqueue_once_per_scope_where_both_sides_carry(tmp_path, patched_carries,
                                                                                  ab_variants):
    backend = Carrying(tmp_path / "history", patched_carries)
    req = request(tmp_path, repeat=2, perf_flavor="lockstat", suites=("test_workqueue", "locktorture"))
    abrun.run(LAYOUT, req, lambda s: None, backend)
    # the debug kernels of triage carry nothing; the A/B's lockstat kernels carry the scope patch
    assert backend.asked == [("base", ()), ("fastwake-v1", ()), ("base", (CARRY,)), ("fastwake-v1", (CARRY,))]
    # two triage pairs on the debug kernels (the first with every suite), then two A/B pairs
    triage, ab = backend.variants[:4], backend.variants[4:]
    torture = ("", "mutex_lock", "ww_mutex_lock", "rtmutex_lock")
    assert triage == [("base", torture), ("fastwake-v1", torture), ("base", ("",)), ("fastwake-v1", ("",))]
    assert ab == [("base", ab_variants), ("fastwake-v1", ab_variants)] * 2


def test_prepare_skips_a_carry_that_does_not_apply_and_says_so(tmp_layout, small_repo, tmp_path):
    make_series(tmp_layout, small_repo, [("int line20;", "int line20 = 2;", "bench: carry")], name="scope")
    (tmp_layout.root / "patches" / "carry").mkdir()
    (tmp_layout.patches / "scope").rename(tmp_layout.root / "patches" / "carry" / "scope")
    info = tree.user_tree(small_repo)
    out = prepare.Prepared(label="base")
    head = prepare._carry_for_suites(tmp_layout, info, "scope", info.commit, out, tmp_path / "logs")
    assert git(small_repo, "rev-parse", f"{head}~1").strip() == info.commit
    assert [(s.name, s.case, s.status) for s in out.stages] == [("apply", "scope", Status.PASS)]
    assert out.properties["carried"] == "scope"
    # the benchmark changed upstream: the carry is skipped, not blamed on anything, and not recorded as carried
    f = small_repo / "kernel" / "workqueue.c"
    f.write_text(f.read_text().replace("int line20;", "int line20 = 7;"))
    git(small_repo, "commit", "-q", "-am", "upstream changed the benchmark")
    info = tree.user_tree(small_repo)
    out = prepare.Prepared(label="base")
    assert prepare._carry_for_suites(tmp_layout, info, "scope", info.commit, out, tmp_path / "logs") is None
    (stage,) = out.stages
    assert (stage.name, stage.case, stage.status) == ("apply", "scope", Status.SKIP)
    assert "does not apply" in stage.message and stage.message.endswith("; the suites run without it")
    assert "carried" not in out.properties


def test_holm_corrects_each_class_and_metric_over_the_scopes_only():
    hold, cont = "hold_us_per_acq", "contentions_per_acq"
    base = {(s, "&pool->lock", hold): [10.0, 10.2, 9.9] for s in ("all", "cpu", "numa")}
    patched = {(s, "&pool->lock", hold): [7.0, 7.3, 6.8] for s in ("all", "cpu", "numa")}
    base[("all", "wq_pool_mutex", cont)] = [0.10, 0.11, 0.10]
    patched[("all", "wq_pool_mutex", cont)] = [0.05, 0.06, 0.05]
    rows = {(r.scope, r.lock_class): r for r in lockab.compare(base, patched)}
    alone = rows[("all", "wq_pool_mutex")]
    assert alone.p_holm == pytest.approx(alone.p_value)  # a family of one: nothing to correct for
    # three scopes with the same data: the same raw p, each multiplied by 3 (not by 4: the other class is apart)
    pool = [rows[(s, "&pool->lock")] for s in ("all", "cpu", "numa")]
    p = pool[0].p_value
    assert [r.p_value for r in pool] == [pytest.approx(p)] * 3
    assert [r.p_holm for r in pool] == [pytest.approx(min(1.0, 3 * p))] * 3


def test_a_change_that_does_not_survive_holm_says_so():
    from pipeline.analysis import abstats

    fit = abstats.welch_log([10.0, 10.5, 9.5], [7.0, 7.6, 6.5])
    assert fit.ci[1] < 1
    assert abstats.reading(fit, 0.2, "lower", "higher").startswith(
        "lower, but not after Holm's correction (95% CI ")
    assert abstats.reading(fit, 0.01, "lower", "higher") == "lower"
    flat = abstats.welch_log([10.0, 10.5, 9.5], [10.2, 9.8, 10.1])
    assert abstats.reading(flat, 0.9, "lower", "higher").startswith("no change detected (95% CI ")
    assert abstats.reading(None, None, "lower", "higher") == "cannot tell: fewer than 2 runs a side"


def test_the_terminal_shows_all_scopes_of_every_class_and_the_first_class_scope_by_scope():
    hold = "hold_us_per_acq"
    base, patched = {}, {}
    for scope in ("all", "cpu", "numa"):
        for name in ("&pool->lock", "&rq->__lock"):
            base[(scope, name, hold)], patched[(scope, name, hold)] = [10.0, 10.2, 9.9], [7.0, 7.3, 6.8]
        base[(scope, "wq_mayday_lock", hold)], patched[(scope, "wq_mayday_lock", hold)] = [0.0, 0.0], [0.0, 0.0]
    rows = lockab.compare(base, patched)
    shown = [(r.scope, r.lock_class) for r in lockab.summary(rows)]
    assert shown == [("all", "&pool->lock"), ("all", "&rq->__lock"), ("cpu", "&pool->lock"), ("numa", "&pool->lock")]
    assert len(rows) == 9  # everything else stays in results.json
