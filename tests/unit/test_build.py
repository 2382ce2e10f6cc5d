"""Configure, verify and build against the fake kernel tree in tests/data/fake-kernel."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline import config
from pipeline.build import kernel as build
from pipeline.build import kconfig
from pipeline.intake import tree
from pipeline.model.errors import KconfigError
from pipeline.model.status import Status
from tests.conftest import DATA, git

FLAVORS = """\
base: tinyconfig
always: [guest]
default: debug
flavors:
  debug: {fragments: [tests, proxy-exec]}
  broken: {fragments: [tests-no-menu]}
  kcsan: {fragments: [kcsan]}
  kasan: {fragments: [kasan]}
conflicts:
  - options: [KCSAN, KASAN]
    reason: they instrument the same accesses
"""
FRAGMENTS = {
    "guest": "CONFIG_MODULES=y\n",
    "tests": "CONFIG_RUNTIME_TESTING_MENU=y\nCONFIG_TEST_WORKQUEUE=m\n",
    "tests-no-menu": "CONFIG_TEST_WORKQUEUE=m\n",
    "proxy-exec": "CONFIG_EXPERT=y\nCONFIG_SCHED_PROXY_EXEC=y\n# CONFIG_SCHED_CLASS_EXT is not set\n",
    "kcsan": "CONFIG_KCSAN=y\n",
    "kasan": "CONFIG_KASAN=y\n",
    "arch-fake": "CONFIG_CC_OPTIMIZE_FOR_PERFORMANCE=y\n",
}
ARCH = """\
name: fake
arch: x86_64
cross_compile: ""
debian_arch: amd64
image_target: bzImage
image_path: arch/x86/boot/bzImage
fragment: arch-fake.config
qemu: {binary: qemu-system-x86_64, machine: q35, cpu: max, console: ttyS0, tcg: tcg}
"""


@pytest.fixture
def fake(tmp_path):
    """A project whose configs describe one fake arch, and the fake tree as a git repo."""
    root = tmp_path / "project"
    (root / "configs" / "arches").mkdir(parents=True)
    (root / "configs" / "kconfig").mkdir()
    (root / "configs" / "flavors.yaml").write_text(FLAVORS)
    (root / "configs" / "arches" / "fake.yaml").write_text(ARCH)
    for name, text in FRAGMENTS.items():
        (root / "configs" / "kconfig" / f"{name}.config").write_text(text)
    layout = config.Layout(root=root, cache=tmp_path / "cache")
    repo = tmp_path / "linux"
    shutil.copytree(DATA / "fake-kernel", repo)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "fake base")
    return layout, tree.user_tree(repo)


def request(layout, info, flavor="debug", commit=None, label="base", sandbox=False, ccache=False):
    flavors = config.load_flavors(layout)
    return build.BuildRequest(tree=info, arch=config.load_arch(layout, "fake"), flavor=flavors.get(flavor),
                              commit=commit or info.commit, label=label, sandbox=sandbox, ccache=ccache, jobs=2)


def commit_change(repo: Path, path: str, text: str, subject: str) -> str:
    (repo / path).write_text(text)
    git(repo, "commit", "-q", "-am", subject)
    return git(repo, "rev-parse", "HEAD").strip()


def test_build_records_artifacts_and_build_json(fake):
    layout, info = fake
    result = build.build(layout, request(layout, info))
    assert result.status is Status.PASS and not result.cached
    assert result.compiled == 3
    for key in ("image", "system_map", "vmlinux", "config", "module_list"):
        assert result.artifacts[key].is_file()
    assert "lib/modules/7.2.0/kernel/lib/test_workqueue.ko" in result.artifacts["module_list"].read_text()
    meta = json.loads((result.out / "build.json").read_text())
    assert meta["result"] == "pass" and meta["compiled_objects"] == 3
    assert meta["key"]["commit"] == info.commit and meta["key"]["arch"] == "fake"
    assert meta["key"]["config_hash"] == result.config_hash
    assert meta["key"]["toolchain"]["cc"].startswith("gcc")
    final = kconfig.parse_config(result.artifacts["config"].read_text())
    assert final["TEST_WORKQUEUE"] == "m" and final["SCHED_PROXY_EXEC"] == "y"


def test_unchanged_build_is_skipped_and_patch_rebuilds_one_object(fake):
    layout, info = fake
    first = build.build(layout, request(layout, info))
    again = build.build(layout, request(layout, info))
    assert again.cached and again.compiled == 0
    # same fragments and Kconfig files: the configuration step was not redone
    assert "tinyconfig" not in again.log.read_text()
    patched = commit_change(info.repo, "kernel/workqueue.c", "int wq_line1;\nint wq_line2 = 2;\nint wq_line3;\n",
                            "workqueue: change")
    result = build.build(layout, request(layout, info, commit=patched, label="patched"))
    assert result.status is Status.PASS and not result.cached
    # git checkout in the slot kept the other files' mtimes: only workqueue.o is rebuilt
    assert result.compiled == 1
    assert "CC      kernel/workqueue.o" in result.log.read_text()
    assert first.out != result.out and first.artifacts["image"].is_file()


def test_dropped_option_names_the_missing_dependency(fake):
    layout, info = fake
    with pytest.raises(KconfigError) as exc:
        build.build(layout, request(layout, info, flavor="broken"))
    msg = str(exc.value)
    assert "CONFIG_TEST_WORKQUEUE=m (tests-no-menu.config) ended as not set" in msg
    assert "needs RUNTIME_TESTING_MENU" in msg and "RUNTIME_TESTING_MENU=n" in msg


def test_proxy_exec_dependencies_are_explained(tmp_path, fake):
    layout, info = fake
    (layout.configs / "kconfig" / "proxy-exec.config").write_text("CONFIG_SCHED_PROXY_EXEC=y\n")
    with pytest.raises(KconfigError) as exc:
        build.build(layout, request(layout, info))
    msg = str(exc.value)
    assert "CONFIG_SCHED_PROXY_EXEC=y" in msg
    assert "!SCHED_CLASS_EXT (SCHED_CLASS_EXT=y)" in msg and "EXPERT (EXPERT=n)" in msg


def test_conflicting_flavours_are_refused(fake):
    layout, info = fake
    with pytest.raises(KconfigError) as exc:
        build.build(layout, request(layout, info, flavor="kcsan+kasan"))
    assert "CONFIG_KCSAN (kcsan.config) and CONFIG_KASAN (kasan.config), which cannot coexist" in str(exc.value)
    # refused before anything ran
    assert not (build.slot_for(layout, info, request(layout, info).arch,
                               config.load_flavors(layout).get("kcsan+kasan")).build / ".config").exists()


def test_compiler_error_is_reported(fake, monkeypatch):
    layout, info = fake
    monkeypatch.setenv("FAIL", "1")
    result = build.build(layout, request(layout, info))
    assert result.status is Status.FAIL
    assert result.errors[0] == "kernel/workqueue.c:1234:9: error: implicit declaration of function 'kick_pool_pick'"
    assert json.loads((result.out / "build.json").read_text())["result"] == "fail"


def test_series_verdict_names_the_first_breaking_patch(fake, monkeypatch):
    layout, info = fake
    good = commit_change(info.repo, "kernel/workqueue.c", "int a;\n", "wq: fine")
    bad = commit_change(info.repo, "kernel/workqueue.c", "int a = ;\n", "wq: broken")
    third = commit_change(info.repo, "kernel/sched/core.c", "int b;\n", "sched: fine")
    base = request(layout, info)
    base = replace(base, series="demo")
    commits = [("demo 1/3", good), ("demo 2/3", bad), ("demo 3/3", third)]
    verdict = build.build_series(layout, base, commits, each_patch=True)
    assert not verdict.ok
    assert verdict.message.startswith("demo 2/3 is the first patch that breaks the build (fake/debug)")
    assert "kernel/workqueue.c:1:9: error" in verdict.message
    assert [r.request.label for r in verdict.results] == ["demo 1/3", "demo 2/3"]
    head = build.build_series(layout, base, commits, each_patch=False)
    assert not head.ok and head.message.startswith("the base builds but demo does not")


def test_sandbox_unshares_network_and_protects_the_host(fake, monkeypatch):
    layout, info = fake
    if build.sandbox.probe() is not None:
        pytest.skip(build.sandbox.probe())
    monkeypatch.setenv("TRY_ESCAPE", "1")
    result = build.build(layout, request(layout, info, sandbox=True, ccache=shutil.which("ccache") is not None))
    assert result.status is Status.PASS, result.errors
    slot = build.slot_for(layout, info, result.request.arch, result.request.flavor)
    assert (slot.build / "netdevs.txt").read_text().split() == ["lo"]
    assert (slot.build / "escape.txt").read_text().strip() == "contained"
    assert not Path("/usr/wqci-escape").exists()


def test_bisect_on_the_fake_tree_names_the_broken_commit(fake, tmp_path):
    from pipeline.jobs import bisect
    from pipeline.jobs import bisect_steps
    from pipeline.guest import topology

    layout, info = fake
    p1 = commit_change(info.repo, "kernel/sched/core.c", "int sched_core = 1;\n", "sched: fine")
    p2 = commit_change(info.repo, "kernel/workqueue.c", "int wq_line1 = ;\n", "wq: broken")
    p3 = commit_change(info.repo, "lib/test_workqueue.c", "int test_wq = 3;\n", "test: fine")
    plan = bisect_steps.StepPlan(tree=info, arch=config.load_arch(layout, "fake"),
                                 flavor=config.load_flavors(layout).get("debug"),
                                 topology=topology.Topology("t", 1, 1, 1, 1, 512), suites=(), out_dir=tmp_path,
                                 sandbox=False)
    predicate = bisect.Predicate("build")
    evaluate = bisect_steps.evaluator(layout, plan, predicate, lambda s: None)
    commits = [("p1", p1), ("p2", p2), ("p3", p3)]
    result = bisect.bisect(predicate, ("base", info.commit), commits, evaluate)
    assert result.culprit == ("p2", p2)
    assert [s.label for s in result.steps] == ["p1", "p2"]
    assert "kernel/workqueue.c:1:16: error: expected expression" in result.steps[1].evidence
    # every step built in the one slot, incrementally: p2 compiled only what p1..p2 changed
    slot = build.slot_for(layout, info, plan.arch, plan.flavor)
    assert json.loads((slot.out(p2) / "build.json").read_text())["compiled_objects"] <= 2


def test_bisect_of_a_finding_builds_boots_and_triages_each_step(fake, tmp_path, monkeypatch):
    """The real step of `wqci bisect --finding`: an incremental build of the fake tree, a boot
    with the suite on a fake guest, the console triaged and judged; the search names the
    patch from which the module's load prints the lockdep report."""
    from pipeline.jobs import bisect
    from pipeline.jobs import bisect_steps
    from pipeline.guest import topology
    from pipeline.suites.config import load_suites
    from tests.conftest import ROOT
    from tests.fakes.guest import FakeMachine, Module, recorded

    layout, info = fake
    commits = [(f"p{i}", commit_change(info.repo, "kernel/sched/core.c", f"int sched_core = {i};\n", f"sched: {i}"))
               for i in range(1, 5)]
    clean = recorded("test_workqueue", "test_workqueue:")
    splat = Module(clean.output, clean.log + "\n" + (DATA / "splats" / "lockdep-circular.log").read_text(),
                   clean.exit_code)
    machine = FakeMachine(lambda kernel, boot, module: splat if kernel in ("p2", "p3", "p4") else clean)
    suites = tuple(load_suites(config.Layout(root=ROOT)).resolve(["test_workqueue"]))
    plan = bisect_steps.StepPlan(tree=info, arch=config.load_arch(layout, "fake"),
                                 flavor=config.load_flavors(layout).get("debug"),
                                 topology=topology.Topology("t", 1, 1, 1, 1, 512), suites=suites, out_dir=tmp_path,
                                 sandbox=False)
    predicate = bisect.Predicate("finding", pattern=r"^lockdep: possible deadlock in nbd_config_put")
    evaluate = bisect_steps.evaluator(layout, plan, predicate, lambda s: None, booted=machine.booted)
    result = bisect.bisect(predicate, ("base", info.commit), commits, evaluate)
    assert result.culprit == commits[1]
    assert [(s.label, s.bad) for s in result.steps] == [("p2", True), ("p1", False)]
    assert machine.boots == [("p2", 1), ("p1", 1)]
    assert result.steps[0].evidence.startswith("lockdep: possible deadlock in nbd_config_put [")
    assert result.steps[1].evidence == "0 finding(s), none matching"
    assert (tmp_path / "step-1" / "test_workqueue.log").is_file() and (tmp_path / "step-2" / "console.log").is_file()


def test_help_text_is_not_an_if_block(tmp_path):
    kc = tmp_path / "Kconfig"
    kc.write_text("config A\n\tbool \"a\"\n\thelp\n\t  if you say Y here the\n\t  system crashes\n\n"
                  "if MENU\n\nconfig B\n\ttristate \"b\"\n\tdepends on m\n\nendif # MENU\n")
    d = kconfig.parse_definition(kc, 9)
    assert d.enclosing == ("MENU",) and d.depends == ("m",)


KCONFIG_EXTRA = """\
config SLUB_TINY
\tbool "Tiny slab"

config HAVE_ARCH_KASAN
\tbool

config KASAN
\tbool "KASAN"
\tdepends on (HAVE_ARCH_KASAN || \\
\t\t    SLUB_TINY) && \\
\t\t   !SLUB_TINY # the continuation is one expression

config SCHED_MC_PRIO
\tbool "ITMT"
\tselect CPU_FREQ

config CPU_FREQ
\tbool "cpufreq"

config ACPI_LPIT
\tbool
\tdefault y
"""


@pytest.mark.parametrize(("option", "value", "final", "expected"), [
    ("KASAN", "y", {"HAVE_ARCH_KASAN": "y", "SLUB_TINY": "y"}, "needs !SLUB_TINY (SLUB_TINY=y)"),
    ("CPU_FREQ", "n", {"SCHED_MC_PRIO": "y", "CPU_FREQ": "y"}, "ended as y: selected by SCHED_MC_PRIO"),
    ("ACPI_LPIT", "n", {"ACPI_LPIT": "y"}, "no enabled option selects it; it may have no prompt"),
])
def test_explain_reads_continued_dependencies_and_selectors(tmp_path, option, value, final, expected):
    (tmp_path / "Kconfig").write_text(KCONFIG_EXTRA)
    request = kconfig.Request(option=option, value=value, fragment="x.config")
    assert expected in kconfig.explain(tmp_path, request, final)


def test_two_builds_in_one_slot_take_turns_and_each_gets_its_own_tree(fake, caplog):
    """Two wqci builds of different commits in one slot at once: one waits for the other's
    lock (an I: notice names the holder) and each vmlinux holds its own commit's code."""
    import threading

    from pipeline.build import slotlock

    layout, info = fake
    a = commit_change(info.repo, "kernel/workqueue.c", "int only_in_a(void) { return 1; }\n", "a")
    git(info.repo, "checkout", "-q", "HEAD~1")
    b = commit_change(info.repo, "kernel/workqueue.c", "int only_in_b(void) { return 2; }\n", "b")
    results = {}
    gate = threading.Event()
    real = build.checkout

    def slow_checkout(*args):  # widen the window a build without a lock would lose
        gate.set()
        real(*args)
        import time

        time.sleep(0.5)

    def run(name, commit):
        results[name] = build.build(layout, request(layout, info, commit=commit, label=name))

    caplog.set_level("INFO", logger="wqci.notice")
    build.checkout = slow_checkout
    try:
        first = threading.Thread(target=run, args=("a", a))
        first.start()
        gate.wait(10)
        second = threading.Thread(target=run, args=("b", b))
        second.start()
        first.join(60)
        second.join(60)
    finally:
        build.checkout = real
    assert results["a"].status is Status.PASS and results["b"].status is Status.PASS
    assert b"only_in_a" in results["a"].artifacts["vmlinux"].read_bytes()
    assert b"only_in_b" not in results["a"].artifacts["vmlinux"].read_bytes()
    assert b"only_in_b" in results["b"].artifacts["vmlinux"].read_bytes()
    (wait,) = [r.getMessage() for r in caplog.records if r.name == slotlock.notice.name]
    assert wait.startswith(f"{build.slot_for(layout, info, results['a'].request.arch, results['a'].request.flavor).root}"
                           f" is in use by pid ") and "waiting up to 7200 s" in wait


def test_a_slot_lock_times_out_naming_its_holder(tmp_path):
    import threading

    from pipeline.build import slotlock

    lock = tmp_path / "slot" / "lock"
    inside, leave = threading.Event(), threading.Event()

    def hold():
        with slotlock.held(lock, 1):
            inside.set()
            leave.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(10)
    try:
        with pytest.raises(slotlock.LockTimeout) as exc:
            with slotlock.held(lock, 0.3):
                pass
        assert str(exc.value).startswith(f"{tmp_path / 'slot'}: still held by pid ")
        assert str(exc.value).endswith("after 0 s (--lock-timeout)")
    finally:
        leave.set()
        holder.join()
    with slotlock.held(lock, 0.3):  # free again
        pass


def test_a_build_cut_short_is_not_cached_and_the_next_one_repairs_the_slot(fake, caplog):
    layout, info = fake
    req = request(layout, info)
    slot = build.slot_for(layout, info, req.arch, req.flavor)
    first = build.build(layout, req)
    # as if killed mid-make on a rebuild: no completion marker, the in-progress marker left
    (first.out / "build.json").unlink()
    (slot.root / "building").write_text("base by pid 1\n")
    caplog.set_level("INFO", logger="wqci.notice")
    again = build.build(layout, req)
    assert again.status is Status.PASS and not again.cached
    assert not (slot.root / "building").exists()
    assert [r.getMessage() for r in caplog.records] == [
        f"{slot.root}: the last build here was cut short (base by pid 1); continuing from its state"]


def demo_series(layout, info, changes):
    """Series `demo` of the fake project: one patch per (path, text, subject) on the fake tree."""
    from tests.conftest import ROOT

    shutil.copy(ROOT / "configs" / "trees.yaml", layout.configs / "trees.yaml")
    git(info.repo, "checkout", "-q", "-b", "work")
    for path, text, subject in changes:
        commit_change(info.repo, path, text, subject)
    patches = layout.patches / "demo"
    git(info.repo, "format-patch", "-q", "-o", str(patches), f"{info.commit}..work")
    git(info.repo, "checkout", "-q", "-")
    files = sorted(p.name for p in patches.glob("*.patch"))
    (patches / "series.yaml").write_text(
        "name: demo\ntitle: demo\nversion: 1\nbase: linux-7.2\nauthor: A\ndate: 2026-01-01\npatches:\n"
        + "".join(f"  - {{file: {f}, subject: {c[2]}}}\n" for f, c in zip(files, changes)))


def test_the_build_job_builds_each_arch_and_names_the_first_breaking_patch(fake):
    """`wqci build` without the CLI: the series applied on the user's tree, each patch built in the slot."""
    from pipeline.jobs import build as build_job

    layout, info = fake
    demo_series(layout, info, [("kernel/sched/core.c", "int b;\n", "sched fine"),
                               ("kernel/workqueue.c", "int a = ;\n", "wq broken")])
    arch, flavor = config.load_arch(layout, "fake"), config.load_flavors(layout).get("debug")
    slot = build.slot_for(layout, info, arch, flavor).root
    lines, seen = [], []
    req = build_job.BuildsRequest(series="demo", arches=(arch,), flavor=flavor, tree_path=info.repo, each_patch=True,
                                  ccache=False, sandbox=False)
    builds = build_job.build_arches(layout, req, lines.append, seen.append)
    assert lines == [f"building demo for fake/debug in {slot}"]
    assert builds.name == "demo" and not builds.ok
    assert seen == list(builds.arches) and [(b.arch.name, b.slot) for b in seen] == [("fake", slot)]
    verdict = seen[0].verdict
    assert [(r.request.label, r.status) for r in verdict.results] == [("demo 1/2", Status.PASS),
                                                                      ("demo 2/2", Status.FAIL)]
    assert verdict.message.startswith("demo 2/2 is the first patch that breaks the build (fake/debug): "
                                      "kernel/workqueue.c:1:9: error")

    base = build_job.build_arches(layout, replace(req, series=None, each_patch=False), lines.append)
    assert base.name == "base" and base.ok
    (only,) = base.arches
    assert only.verdict.message == "base builds (fake/debug)"
    assert [(r.request.label, r.request.commit) for r in only.verdict.results] == [("base", info.commit)]
    assert lines[-1] == f"building base for fake/debug in {slot}"


def test_prepare_names_the_first_patch_that_does_not_build(fake, tmp_path):
    """`wqci test`/`wqci run`: the head does not build, so the patches before it are built in
    order (the same search as `wqci build --each-patch`) and the build stage names patch 2."""
    from pipeline.jobs import prepare
    from pipeline.model.results import SuiteResult

    layout, info = fake
    demo_series(layout, info, [("kernel/sched/core.c", "int b;\n", "sched fine"),
                               ("kernel/workqueue.c", "int a = ;\n", "wq broken"),
                               ("lib/test_workqueue.c", "int c;\n", "test fine")])
    arch = config.load_arch(layout, "fake")
    wanted = prepare.Variant(series="demo", tree_path=info.repo, flavor="debug", sandbox=False, ccache=False)
    prepared = prepare.prepare(layout, wanted, arch, tmp_path / "logs")
    assert not prepared.ok
    suite = SuiteResult(name="fake/debug/t/demo")
    for stage in prepared.stages:
        suite.add_stage(stage)
    assert [(c.name, c.status) for c in suite.cases] == [
        ("tree", Status.PASS), ("apply.1", Status.PASS), ("apply.2", Status.PASS), ("apply.3", Status.PASS),
        ("build", Status.FAIL)]
    assert [(c.suite, c.case) for c in suite.cases[1:4]] == [("apply", "1"), ("apply", "2"), ("apply", "3")]
    assert suite.cases[-1].message.startswith(
        'patch 2/3 "wq broken" does not build: kernel/workqueue.c:1:9: error')
    assert suite.cases[-1].properties["breaking_patch"] == "2"  # for whoever acts on it, not in a sentence
    # the head, then patches 1 and 2 in order, all in the one slot
    slot = build.slot_for(layout, info, arch, config.load_flavors(layout).get("debug"))
    built = sorted(p.name for p in (slot.root / "out").iterdir())
    assert built == sorted(c[:12] for _, c in prepared.commits)
    with pytest.raises(prepare.BuildFailed, match=r'^build: patch 2/3 "wq broken" does not build'):
        prepare.built(prepared)


def test_append_reaches_the_guests_kernel_command_line(fake, tmp_path):
    """`--append` parameters come after the boot config's, and are recorded with the kernel."""
    from pipeline.guest import boot
    from pipeline.jobs import prepare

    layout, info = fake
    demo_series(layout, info, [("kernel/workqueue.c", "int a;\n", "wq fine")])
    arch = config.load_arch(layout, "fake")
    wanted = prepare.Variant(series="demo", tree_path=info.repo, flavor="debug", sandbox=False, ccache=False,
                             append=("kcsan.skip_watch=1000", "kcsan.udelay_task=200"))
    prepared = prepare.prepare(layout, wanted, arch, tmp_path / "logs")
    assert prepared.ok
    assert prepared.cmdline == ("kcsan.skip_watch=1000", "kcsan.udelay_task=200")
    assert prepared.properties["cmdline_append"] == "kcsan.skip_watch=1000 kcsan.udelay_task=200"
    cfg = boot.BootConfig(cmdline=("console={console}", "loglevel=7"), timeouts={})
    assert boot.cmdline(cfg, arch, prepared.cmdline) == (
        f"console={arch.qemu.console} loglevel=7 kcsan.skip_watch=1000 kcsan.udelay_task=200")


def test_a_carry_that_breaks_the_build_is_dropped_and_the_tree_built_without_it(fake, tmp_path):
    """The suites' carry series applies but the tree does not compile with it: the carry's
    stage is skipped with the compiler's error, and the verdict is the tree's own build."""
    from pipeline.jobs import prepare
    from pipeline.model.results import SuiteResult

    layout, info = fake
    demo_series(layout, info, [("kernel/workqueue.c", "int a;\n", "wq fine")])
    # a carry series, as under patches/carry/, that does not compile here
    git(info.repo, "checkout", "-q", "-b", "carry")
    commit_change(info.repo, "lib/test_workqueue.c", "int c = ;\n", "bench: scope parameter")
    carry_dir = layout.root / "patches" / "carry" / "bench"
    git(info.repo, "format-patch", "-q", "-o", str(carry_dir), f"{info.commit}..carry")
    git(info.repo, "checkout", "-q", "-")
    (patch,) = carry_dir.glob("*.patch")
    (carry_dir / "series.yaml").write_text("name: bench\ntitle: bench\nversion: 1\nbase: linux-7.2\nauthor: A\n"
                                           f"date: 2026-01-01\npatches:\n  - {{file: {patch.name}, subject: s}}\n")
    arch = config.load_arch(layout, "fake")
    wanted = prepare.Variant(series="demo", tree_path=info.repo, flavor="debug", sandbox=False, ccache=False,
                             carry=("bench",))
    prepared = prepare.prepare(layout, wanted, arch, tmp_path / "logs")
    assert prepared.ok and "carried" not in prepared.properties
    suite = SuiteResult(name="fake/debug/t/demo")
    for stage in prepared.stages:
        suite.add_stage(stage)
    assert [(c.name, c.status) for c in suite.cases] == [
        ("tree", Status.PASS), ("apply.1", Status.PASS), ("apply.bench", Status.SKIP), ("build", Status.PASS)]
    skipped = suite.cases[2].message
    assert skipped.startswith("skipped: the tree does not build with it (lib/test_workqueue.c:1:9: error")
    assert skipped.endswith("; the suites run without it")
    assert prepared.build.request.commit == prepared.commits[-1][1]  # the series' head, not the carry's commit
