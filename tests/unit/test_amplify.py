"""--amplify: the carry series on top of another series, its config, and the repeat rates."""

import re

import pytest
import yaml

from pipeline import config
from pipeline.build import kernel as build
from pipeline.analysis import rates
from pipeline.intake import series
from pipeline.intake import tree
from pipeline.model.errors import ConfigError
from pipeline.model.status import Status
from pipeline.model.cases import Case
from tests.conftest import ROOT, git
from tests.unit.test_apply import EDITS, make_series


def test_project_amplify_config_loads():
    amp = config.load_amplify(config.Layout())
    assert amp.carry.name == "wq-amplify"
    assert all(p.is_file() for p in amp.carry.patch_paths())
    assert any(a.startswith("workqueue.amplify_idle_timeout_ms=") for a in amp.cmdline)
    debug = config.load_flavors(config.Layout()).get("debug")
    amplified = amp.flavor(debug)
    # same flavour name (same build slot), one fragment more
    assert amplified.name == debug.name and amplified.fragments == debug.fragments + ("amplify.config",)
    text = (ROOT / "configs" / "kconfig" / amp.fragment).read_text()
    assert "CONFIG_DEBUG_WQ_RACE_AMPLIFY=y" in text
    patch = amp.carry.patch_paths()[0].read_text()
    assert "config DEBUG_WQ_RACE_AMPLIFY" in patch and "amplify_culled_kicked" in patch


def test_amplify_config_names_a_missing_carry(tmp_path):
    root = tmp_path / "project"
    (root / "configs" / "kconfig").mkdir(parents=True)
    (root / "configs" / "kconfig" / "amplify.config").write_text("CONFIG_X=y\n")
    (root / "configs" / "amplify.yaml").write_text(yaml.safe_dump({"carry": "nope", "fragment": "amplify"}))
    with pytest.raises(ConfigError) as err:
        config.load_amplify(config.Layout(root=root, cache=tmp_path / "cache"))
    assert "amplify.yaml" in str(err.value) and "patches/carry/nope/series.yaml" in str(err.value)


def test_carry_applies_on_top_of_the_series_in_its_own_worktree(tmp_layout, small_repo):
    s = make_series(tmp_layout, small_repo, EDITS)
    carry = make_series(tmp_layout, small_repo, [("int line20;", "int line20 = 2;", "debug: carry")], name="carry")
    info = tree.user_tree(small_repo)
    applied = series.apply(tmp_layout, s, info)
    on_top = series.apply(tmp_layout, carry, info, onto=(s.name, applied.head))
    assert on_top.worktree != applied.worktree and on_top.worktree.name == "demo+carry"
    assert on_top.base == applied.head
    assert git(on_top.worktree, "rev-parse", "HEAD~1").strip() == applied.head
    text = (on_top.worktree / "kernel" / "workqueue.c").read_text()
    assert "int line10 = 1;" in text and "int line20 = 2;" in text
    # the series' own worktree is untouched
    assert "int line20 = 2;" not in (applied.worktree / "kernel" / "workqueue.c").read_text()


def test_own_modules_are_listed_and_hashed(tmp_path):
    layout = config.Layout()
    assert [p.name for p in build.own_modules(layout)] == ["proxy_stress", "wq_stress"]
    root = tmp_path / "project"
    (root / "guest" / "modules" / "m").mkdir(parents=True)
    src = root / "guest" / "modules" / "m" / "m.c"
    src.write_text("int x;\n")
    (src.parent / "Kbuild").write_text("obj-m := m.o\n")
    mine = config.Layout(root=root, cache=tmp_path / "cache")
    before = build.own_modules_hash(mine)
    src.write_text("int y;\n")
    assert build.own_modules_hash(mine) != before


def case(suite: str, status: Status, test: str = "", runs: tuple[int, ...] = (), **metrics: float) -> Case:
    return Case(suite, status, metrics=metrics, case=test, runs=runs)


def test_rates_group_repeated_cases_and_bound_them():
    cases = [case("boot", Status.PASS)]
    cases += [case("wq_stress", Status.PASS, "deadline", (i,), stranded=0, culled_kicked=i) for i in range(1, 11)]
    cases += [case("proxy_stress", Status.FAIL if i == 2 else Status.PASS, "chain", (i,)) for i in range(1, 5)]
    cases += [case("once", Status.FAIL, runs=(1,))]
    # a reboot inside the second and third test of `wqci run`: boot#2#2 and boot#2#3 are one case
    cases += [case("boot", Status.PASS, runs=(2, k)) for k in (2, 3)]
    found = {r.name: r for r in rates.repeated(cases)}
    assert set(found) == {"wq_stress.deadline", "proxy_stress.chain", "boot#2"}
    deadline = found["wq_stress.deadline"]
    assert (deadline.failed, deadline.runs) == (0, 10)
    assert deadline.totals == {"stranded": 0, "culled_kicked": 55}
    # 0 of 10: one-sided exact bound 1 - 0.05**(1/10), close to the rule of three
    assert deadline.high == pytest.approx(0.2589, abs=1e-3) and deadline.high < 3 / 10
    assert deadline.text.startswith("0 of 10 runs failed: rate < 0.259")
    chain = found["proxy_stress.chain"]
    assert chain.failed == 1 and chain.low < 0.25 < chain.high
    props = rates.properties(found.values())
    assert props["rate.wq_stress.deadline"].endswith("total stranded 0, culled_kicked 55")


@pytest.mark.parametrize("failed,runs", [(1, 10), (5, 10), (10, 10), (3, 30)])
def test_bounds_contain_the_observed_rate(failed, runs):
    low, high = rates.bounds(failed, runs)
    assert 0 <= low <= failed / runs <= high <= 1
    if failed < runs:  # the same rate over more runs: a narrower interval
        low4, high4 = rates.bounds(failed * 4, runs * 4)
        assert high4 - low4 < high - low


def test_failures_count_errors_too():
    found = rates.repeated([case("s", Status.ERROR, runs=(1,)), case("s", Status.PASS, runs=(2,))])
    assert found[0].failed == 1


# the carry patch, wq_stress and configs/amplify.yaml name the same knobs

WQ_STRESS = ROOT / "guest" / "modules" / "wq_stress" / "wq_stress.c"


def carry_params() -> set[str]:
    """workqueue.<name> parameters the carry patch adds (module_param_named / module_param_cb)."""
    text = config.load_amplify(config.Layout()).carry.patch_paths()[0].read_text()
    added = "\n".join(line[1:] for line in text.splitlines() if line.startswith("+"))
    return set(re.findall(r"module_param_(?:named|cb)\((\w+),", added))


def test_wq_stress_reads_and_writes_only_knobs_the_carry_defines():
    text = WQ_STRESS.read_text()
    used = set(re.findall(r'AMPLIFY\("(\w+)"\)', text))
    used |= {m for m in re.findall(r'wqs_set_knob\("(\w+)"', text)}
    used |= set(re.findall(r'"(\w+)"', re.search(r"amp_counters\[\] = \{(.*?)\};", text, re.S).group(1)))
    assert {"skip_kick", "cull_sources", "unlocked_wake_delay_us", "culled_pending", "culled_pending_alone"} <= used
    assert {f"amplify_{name}" for name in used} <= carry_params()


def test_amplify_cmdline_sets_only_carry_knobs():
    amp = config.load_amplify(config.Layout())
    names = {arg.split("=")[0].removeprefix("workqueue.") for arg in amp.cmdline}
    assert {"amplify_idle_timeout_ms", "amplify_wake_delay_us", "amplify_unlocked_wake_delay_us"} == names
    assert names <= carry_params()


def changed_lines(patch: str, path: str = "kernel/workqueue.c") -> tuple[set[str], set[str]]:
    """(context and removed, added) lines of a patch's hunks in one file, stripped, the short ones left out."""
    keep, added, inside = set(), set(), False
    for line in patch.splitlines():
        if line.startswith("diff --git"):
            inside = line.endswith(f" b/{path}")
        elif inside and not line.startswith(("---", "+++", "@@", "index ")) and len(line.strip()) > 12:
            (added if line.startswith("+") else keep).add(line[1:].strip())
    return keep, added


@pytest.mark.parametrize("name", ["fastwake-v1", "fastwake-v1-claim", "wake-prefer"])
def test_carry_hunks_stay_clear_of_what_the_series_change(name):
    """A static guard for "one carry patch applies on every series": no line the carry patch
    needs (context or removed) is one that a series removes or adds. The real check is
    git am on the real tree (tests/integration)."""
    needs, _ = changed_lines(config.load_amplify(config.Layout()).carry.patch_paths()[0].read_text())
    touched: set[str] = set()
    for patch in sorted((ROOT / "patches" / name).glob("0*.patch")):
        text = patch.read_text()
        removed = {line[1:].strip() for line in text.splitlines()
                   if line.startswith("-") and not line.startswith("---") and len(line.strip()) > 12}
        touched |= removed | changed_lines(text)[1]
    assert not needs & touched
