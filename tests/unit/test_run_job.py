"""`wqci run` orchestration and verdicts, with a backend that replays recorded consoles.

Each test scripts what every boot of each side prints (real reports from
tests/data/splats between wqci's suite markers) and checks the exact
classification, the interleaving, the confirmation reruns and the one verdict
that JUnit, results.json, summary.md and the exit code state.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import xmlschema

from pipeline import config
from pipeline.analysis.evidence import Boot, FindingClass
from pipeline.build.kernel import BuildRequest, BuildResult
from pipeline.guest.topology import load_topologies
from pipeline.intake.tree import TreeInfo
from pipeline.jobs import prepare
from pipeline.jobs import run as abrun
from pipeline.jobs import variant
from pipeline.model import verdict
from pipeline.model.cases import Case
from pipeline.model.status import StageResult, Status
from pipeline.suites import runner
from pipeline.suites.config import load_suites
from pipeline.triage import findings as triage
from pipeline.triage.history import History
from tests.conftest import DATA, ROOT
from tests.fakes.guest import HANG, FakeMachine, recorded

SPLATS = DATA / "splats"
SCHEMA = xmlschema.XMLSchema(str(DATA / "junit" / "jenkins-junit.xsd"))
LAYOUT = config.Layout(root=ROOT)
KCSAN = (SPLATS / "kcsan-data-race.log").read_text()
LOCKDEP = (SPLATS / "lockdep-circular.log").read_text()
CLEAN = ""


def console(**by_suite: str) -> str:
    """A console: each suite's begin marker, what it printed, its end marker."""
    out = ["[    1.000000] Linux version 7.2.13 (wqci)"]
    for suite, text in by_suite.items():
        if suite == "boot":
            out.append(text)
            continue
        out += [f"[   10.000000] wqci: begin suite {suite} run 1", text, f"[   20.000000] wqci: end suite {suite} run 1"]
    return "\n".join(out)


@dataclass
class FakeBackend:
    """Replays one console per test call of each side; clean once the script runs out."""

    consoles: dict[str, list[str]]
    history_dir: Path
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def prepare(self, wanted, arch, out_dir):
        label = wanted.series or "base"
        commits = [(f"{label} {i}/2", f"{i:040x}") for i in (1, 2)] if wanted.series else []
        return self._prepared(label, arch, commits, commits[-1][1] if commits else "b" * 40)

    def prepare_commit(self, head, arch, label, commit):
        return self._prepared(label, arch, head.commits, commit)

    def _prepared(self, label, arch, commits, commit):
        info = TreeInfo(name="linux-7.2", repo=Path("/nonexistent"), commit="b" * 40, version="7.2.13-1")
        flavor = config.load_flavors(LAYOUT).get(None)
        req = BuildRequest(tree=info, arch=arch, flavor=flavor, commit=commit, label=label)
        build = BuildResult(req, Status.PASS, 1.0, Path("/nonexistent/build.log"), Path("/nonexistent"),
                            config_hash="c" * 64)
        out = prepare.Prepared(label=label, info=info, commits=list(commits), build=build)
        out.stages.append(StageResult("build", Status.PASS, 1.0, message="cached"))
        return out

    def test(self, arch, prepared, suites, out_dir, result, progress):
        names = tuple(s.name for s in suites)
        self.calls.append((prepared.label, names))
        script = self.consoles.get(prepared.label, [])
        text = script.pop(0) if script else CLEAN
        result.cases.append(Case("boot", Status.PASS, 10.0))
        result.cases += [Case(name, Status.PASS, 1.0) for name in names]
        found = triage.triage(text)
        result.findings.extend(found)
        return found

    def history(self, prepared):
        return History(self.history_dir / "base.jsonl")


def request(tmp_path, suites=("test_workqueue",), **kw):
    arch = config.load_arch(LAYOUT, "x86_64")
    defaults = dict(series="fastwake-v1", arches=(arch,), flavor=None,
                    topology=load_topologies(LAYOUT).get(None),
                    suites=tuple(load_suites(LAYOUT).resolve(list(suites), None, [])), repeat=1,
                    out_dir=tmp_path / "out")
    return abrun.RunRequest(**{**defaults, **kw})


def run(tmp_path, consoles, **kw):
    backend = FakeBackend({k: list(v) for k, v in consoles.items()}, tmp_path / "history")
    req = request(tmp_path, **kw)
    result, (outcome,) = abrun.run(LAYOUT, req, lambda s: None, backend)
    return backend, result, outcome, json.loads((req.out_dir / "results.json").read_text())


def classes(outcome):
    return [(c.finding.kind, c.cls.value, str(c.evidence.patched), str(c.evidence.baseline))
            for c in outcome.classification.patched]


def test_a_baseline_only_finding_is_pre_existing_and_the_run_passes(tmp_path):
    backend, result, outcome, data = run(tmp_path, {"base": [console(test_workqueue=KCSAN)]})
    assert classes(outcome) == []
    (base,) = outcome.classification.baseline
    assert base.cls is FindingClass.PRE_EXISTING and base.finding.title == "KCSAN: data-race in kick_pool / wq_worker_running"
    case = next(c for c in outcome.baseline.cases if c.name.startswith("finding."))
    assert case.status is Status.PASS and case.properties["class"] == "pre-existing"
    assert "Reported by Kernel Concurrency Sanitizer" in case.text  # the report stays, in system-out
    assert verdict.of_run(result).status is Status.PASS
    assert data["verdict"] == {"status": "pass", "reasons": [], "warnings": []}
    assert [f["title"] for f in data["arches"][0]["baseline_findings"]] == [base.finding.title]
    assert (tmp_path / "out" / "summary.md").read_text().startswith("# wqci run fastwake-v1: PASS")
    SCHEMA.validate(str(tmp_path / "out" / "junit.xml"))
    assert SCHEMA.to_dict(str(tmp_path / "out" / "junit.xml"))["@failures"] == "0"
    assert backend.calls == [("base", ("test_workqueue",)), ("fastwake-v1", ("test_workqueue",))]


def test_a_finding_on_both_sides_is_pre_existing(tmp_path):
    both = console(test_workqueue=KCSAN)
    _, result, outcome, data = run(tmp_path, {"base": [both], "fastwake-v1": [both]})
    assert classes(outcome) == [("kcsan", "pre-existing", "1 of 1", "1 of 1")]
    assert all(c.status is Status.PASS for s in result.suites for c in s.cases)
    assert data["verdict"]["status"] == "pass"


def test_a_listed_finding_is_pre_existing(tmp_path):
    # configs/known-findings.yaml lists kick_pool's p->wake_cpu race for linux-7.2
    _, result, outcome, _ = run(tmp_path, {"fastwake-v1": [console(test_workqueue=KCSAN)]}, confirm=0)
    (c,) = outcome.classification.patched
    assert c.cls is FindingClass.PRE_EXISTING and c.evidence.listed.startswith("p->wake_cpu written by kick_pool")
    assert verdict.of_run(result).status is Status.PASS


def test_noise_seen_once_on_the_patched_kernel_is_unconfirmed_after_one_rerun(tmp_path):
    backend, result, outcome, data = run(tmp_path, {"fastwake-v1": [console(test_workqueue=LOCKDEP)]},
                                         suites=("test_workqueue", "locktorture"))
    # after one pair (1 of 2 against 0 of 2) not even 2 more clean-baseline pairs could reach p < 0.05
    assert outcome.confirm_rounds == 1
    assert classes(outcome) == [("lockdep", "unconfirmed", "1 of 2", "0 of 2")]
    # A B A B, and the rerun runs only the suite where the finding appeared
    assert backend.calls == [("base", ("test_workqueue", "locktorture")),
                             ("fastwake-v1", ("test_workqueue", "locktorture")),
                             ("base", ("test_workqueue",)), ("fastwake-v1", ("test_workqueue",))]
    v = verdict.of_run(result)
    assert v.status is Status.PASS and len(v.warnings) == 1 and "(unconfirmed: patched 1 of 2" in v.warnings[0]
    assert data["verdict"]["warnings"] == list(v.warnings)
    assert [f["class"] for f in data["arches"][0]["unconfirmed_findings"]] == ["unconfirmed"]


def test_strict_fails_on_an_unconfirmed_finding(tmp_path):
    _, result, outcome, data = run(tmp_path, {"fastwake-v1": [console(test_workqueue=LOCKDEP)]}, strict=True)
    assert classes(outcome) == [("lockdep", "unconfirmed", "1 of 2", "0 of 2")]
    assert verdict.of_run(result).exit_code == 1 and data["verdict"]["status"] == "fail"


def test_a_finding_on_every_patched_boot_is_confirmed_new(tmp_path):
    splat = console(test_workqueue=LOCKDEP)
    backend, result, outcome, data = run(tmp_path, {"fastwake-v1": [splat] * 4}, each_patch=True,
                                         touches=lambda f: "touches kick_pool (changed by 2/2)")
    # 2 of 2 (p=0.17) and 3 of 3 (p=0.05) are not enough; 4 of 4 against 0 of 4 is p=0.014
    assert outcome.confirm_rounds == 3
    assert classes(outcome) == [("lockdep", "new", "4 of 4", "0 of 4")]
    (c,) = outcome.of(FindingClass.NEW)
    assert round(c.evidence.p, 4) == 0.0143
    # each-patch: patch 1/2 (clean console) does not show it, so it is the last patch's
    assert outcome.culprits == {c.fingerprint: "fastwake-v1 2/2"}
    assert backend.calls[-1] == ("fastwake-v1 1/2", ("test_workqueue",))
    case = next(x for x in outcome.patched.cases if x.name.startswith("finding."))
    assert case.status is Status.FAIL and case.properties["first_patch"] == "fastwake-v1 2/2"
    assert case.properties["touches"] == "touches kick_pool (changed by 2/2)"
    v = verdict.of_run(result)
    assert v.status is Status.FAIL and v.exit_code == 1 and len(v.reasons) == 1
    assert data["verdict"]["status"] == "fail" and data["status"] == "fail"
    (new,) = data["arches"][0]["new_findings"]
    assert new["first_patch"] == "fastwake-v1 2/2" and new["evidence"]["patched"] == [4, 4]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert summary.startswith("# wqci run fastwake-v1: FAIL") and "### new findings (fail the run) (1)" in summary
    assert SCHEMA.to_dict(str(tmp_path / "out" / "junit.xml"))["@failures"] == "1"


def test_the_history_of_the_base_makes_pre_existing_and_shortens_confirmation(tmp_path):
    store = History(tmp_path / "history" / "base.jsonl")
    (seen,) = triage.triage(console(test_workqueue=KCSAN))
    store.add(Boot.of({"test_workqueue"}, [seen]), "test")  # the base showed the race once, long ago
    for _ in range(10):
        store.add(Boot.of({"test_workqueue"}, []), "test")
    splat = console(test_workqueue=LOCKDEP + "\n" + KCSAN.replace("kick_pool", "kick_pool_x"))
    _, result, outcome, _ = run(tmp_path, {"fastwake-v1": [splat, splat]}, confirm=3)
    got = {c.finding.kind: (c.cls.value, str(c.evidence.history)) for c in outcome.classification.patched}
    # the lockdep report: 2 of 2 against 0 of 2 + 0 of 11 clean history boots is p=1/105: new after one pair
    assert got["lockdep"] == ("new", "0 of 11")
    assert outcome.confirm_rounds == 1
    # this run's baseline boots were added to the history
    assert len(store.boots()) == 11 + 2


def test_history_marks_a_finding_pre_existing(tmp_path):
    store = History(tmp_path / "history" / "base.jsonl")
    (seen,) = triage.triage(console(test_workqueue=LOCKDEP))
    store.add(Boot.of({"test_workqueue"}, [seen]), "nightly")
    _, result, outcome, _ = run(tmp_path, {"fastwake-v1": [console(test_workqueue=LOCKDEP)]})
    assert classes(outcome) == [("lockdep", "pre-existing", "1 of 1", "0 of 1")]
    assert str(outcome.classification.patched[0].evidence.history) == "1 of 1"
    assert outcome.confirm_rounds == 0


def test_a_boot_time_finding_is_rerun_with_no_suites(tmp_path):
    backend, _, outcome, _ = run(tmp_path, {"fastwake-v1": [console(boot=LOCKDEP)]})
    assert classes(outcome) == [("lockdep", "unconfirmed", "1 of 2", "0 of 2")]
    assert backend.calls[2:] == [("base", ()), ("fastwake-v1", ())]


def test_repeats_interleave_and_name_their_runs(tmp_path):
    backend, result, _, _ = run(tmp_path, {}, repeat=2, suites=("test_workqueue", "locktorture"))
    assert [c[0] for c in backend.calls] == ["base", "fastwake-v1", "base", "fastwake-v1"]
    assert backend.calls[2][1] == ("test_workqueue",)  # repeats run only what the A/B needs
    names = [c.name for c in result.suites[1].cases]
    assert names[:1] == ["build"] and "locktorture#1" in names and "test_workqueue#2" in names


@pytest.mark.parametrize("interrupt_at", [2, 3])
def test_an_interrupted_run_keeps_and_classifies_what_it_saw(tmp_path, interrupt_at):
    class Interrupting(FakeBackend):
        def test(self, *args):
            if len(self.calls) + 1 == interrupt_at:
                raise KeyboardInterrupt
            return super().test(*args)

    backend = Interrupting({"base": [console(test_workqueue=KCSAN)], "fastwake-v1": [console(test_workqueue=LOCKDEP)]},
                           tmp_path / "history")
    req = request(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        abrun.run(LAYOUT, req, lambda s: None, backend)
    data = json.loads((req.out_dir / "results.json").read_text())
    (arch,) = data["arches"]
    assert [f["class"] for f in arch["baseline_findings"]] == ["pre-existing"]
    # interrupted in the patched boot: nothing of it; in the confirmation pair: the first pair's finding
    assert [f["evidence_text"] for f in arch["unconfirmed_findings"]] == (
        [] if interrupt_at == 2 else ["patched 1 of 1, baseline 0 of 1, p=0.5"])
    # never green: an error case says where the run was cut short
    errors = [(s["name"], c["name"], c["message"]) for s in data["suites"] for c in s["cases"] if c["status"] == "error"]
    side = "fastwake-v1" if interrupt_at == 2 else "baseline"
    assert errors == [(f"x86_64/debug/smp8-numa2/{side}", "interrupted",
                       "interrupted during run 1" if interrupt_at == 2 else "interrupted during confirm 2")]
    assert data["verdict"]["status"] == "error" and data["status"] == "error"
    assert SCHEMA.to_dict(str(req.out_dir / "junit.xml"))["@errors"] == "1"


# ---------------------------------------------------------------- the real test of a kernel, on fake guests

MODULES = {"test_workqueue": recorded("test_workqueue", "test_workqueue:"),
           "test-ww_mutex": recorded("ww_mutex_selftest", "mutex selftests|stress (")}


@dataclass
class GuestReplay(FakeBackend):
    """Builds as FakeBackend does, tests with the real variant.run_variant on the machine's fake guests."""

    machine: FakeMachine | None = None

    def test(self, arch, prepared, suites, out_dir, result, progress):
        self.calls.append((prepared.label, tuple(s.name for s in suites)))
        req = variant.TestRequest(arch=arch, topology=load_topologies(LAYOUT).get(None), build=prepared.build,
                                  suites=tuple(suites), out_dir=out_dir)
        return variant.run_variant(LAYOUT, req, result, progress, booted=self.machine.booted)


def test_a_hung_suite_costs_a_reboot_and_the_run_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "CONSOLE_SETTLE", 0.0)
    # test_workqueue hangs in the first boot of the patched kernel, and only there
    machine = FakeMachine(lambda kernel, boot, module: HANG if (kernel, boot, module) == (
        "fastwake-v1", 1, "test_workqueue") else MODULES[module])
    backend = GuestReplay({}, tmp_path / "history", machine=machine)
    req = request(tmp_path, suites=("test_workqueue", "ww_mutex_selftest"), repeat=2)
    result, (outcome,) = abrun.run(LAYOUT, req, lambda s: None, backend)

    # the patched kernel was booted again for the suite after the hang, then tested again in pair 2
    assert machine.boots == [("base", 1), ("fastwake-v1", 1), ("fastwake-v1", 2), ("base", 2), ("fastwake-v1", 3)]
    scopes = ("cpu", "smt", "cache_shard", "cache", "numa", "system")
    wq = lambda run: [f"test_workqueue#{run}"] + [f"test_workqueue.{s}#{run}" for s in scopes]  # noqa: E731
    # throughput, then enqueue latency (p50, p95) per scope
    ab = [f"ab.{s}" for s in scopes] + [f"ab.{s}.latency.{p}" for s in scopes for p in ("p50", "p95")]
    statuses = lambda suite: [(c.name, c.status.value) for c in suite.cases]  # noqa: E731
    assert statuses(outcome.baseline) == [("build", "pass"), ("boot#1", "pass")] + [(n, "pass") for n in wq(1)] + [
        ("ww_mutex_selftest#1", "pass"), ("boot#2", "pass")] + [(n, "pass") for n in wq(2)]
    assert statuses(outcome.patched) == [
        ("build", "pass"), ("boot#1", "pass"), ("test_workqueue#1", "error"),
        ("boot#2#1", "pass"), ("ww_mutex_selftest#1", "pass"),
        ("boot#2", "pass")] + [(n, "pass") for n in wq(2)] + [(n, "pass") for n in ab]
    hung = outcome.patched.cases[2]
    assert (hung.suite, hung.runs, hung.message) == ("test_workqueue", (1,), "timed out after 600 s")
    assert hung.text.startswith("sysrq via /proc/sysrq-trigger\nconsole tail:\n") and "sysrq: Show State" in hung.text
    # the A/B still compares: two baseline runs against the patched kernel's one complete run
    assert [(r.scope, r.n_baseline, r.n_patched) for r in outcome.comparison] == [(s, 2, 1) for s in scopes]

    data = json.loads((req.out_dir / "results.json").read_text())
    assert data["verdict"] == {"status": "error", "warnings": [], "reasons": [
        "x86_64/debug/smp8-numa2/fastwake-v1: test_workqueue#1: timed out after 600 s"]}
    assert verdict.of_run(result).exit_code == 1
    assert SCHEMA.to_dict(str(req.out_dir / "junit.xml"))["@errors"] == "1"
    # one console per test, both boots in it
    console = (req.out_dir / "x86_64" / "fastwake-v1" / "run-1" / "console.log").read_text()
    assert console.count("Linux version 7.2.13 (fastwake-v1)") == 2


def test_append_reaches_every_kernel_and_keeps_the_base_history_stock(tmp_path):
    class Recording(FakeBackend):
        asked: list = []

        def prepare(self, wanted, arch, out_dir):
            self.asked.append((wanted.series, wanted.flavor, wanted.append))
            return super().prepare(wanted, arch, out_dir)

    backend = Recording({}, tmp_path / "history")
    req = request(tmp_path, repeat=1, perf_flavor="lockstat", append=("kcsan.udelay_task=400",))
    abrun.run(LAYOUT, req, lambda s: None, backend)
    assert backend.asked == [(None, None, ("kcsan.udelay_task=400",)), ("fastwake-v1", None, ("kcsan.udelay_task=400",)),
                             (None, "lockstat", ("kcsan.udelay_task=400",)),
                             ("fastwake-v1", "lockstat", ("kcsan.udelay_task=400",))]
    assert History(tmp_path / "history" / "base.jsonl").boots() == []  # boots with other settings are not the base's
    # without --append the same run adds its baseline boot to the history
    abrun.run(LAYOUT, request(tmp_path, repeat=1), lambda s: None, FakeBackend({}, tmp_path / "history"))
    assert len(History(tmp_path / "history" / "base.jsonl").boots()) == 1
