"""reproduce.sh, written from a recorded results.json, run by sh with a stand-in `wqci` on
PATH that records its argv and answers as `wqci test` does (a junit.xml naming the kernel
it tested, an exit code). The real thing is the integration test that runs reproduce.sh
from a failed run's directory."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline import config
from pipeline.cli import app
from pipeline.output import handoff, reproduce, rundir

RUNS = Path(__file__).parents[1] / "data" / "runs"
BASE = "cf8379af4645e9b4a434dfae4e15393d695cd614"
HEAD = "99dcf4410b24aa3bbdf42ebdfbf98d000730d7f0"
X86_HASH, ARM_HASH = "214158d4b6073115", "8a51c0d2e9f34b17"

FAKE = """#!{python}
import json, os, sys
from pathlib import Path
state = Path(os.environ["FAKE_WQCI"])
calls = sorted(state.glob("call-*"))
(state / f"call-{{len(calls):02d}}").write_text(json.dumps(sys.argv[1:]))
out = Path(sys.argv[sys.argv.index("--out") + 1])
key = "/".join(out.parts[-2:])
kernels = json.loads((state / "kernels.json").read_text())
commit, config_hash, code = kernels[key]
out.mkdir(parents=True, exist_ok=True)
(out / "junit.xml").write_text(
    f'<testsuites><testsuite name="x"><properties><property name="base_commit" value="{BASE}"/>'
    f'<property name="commit" value="{{commit}}"/><property name="config_hash" value="{{config_hash}}"/>'
    '</properties></testsuite></testsuites>')
sys.exit(code)
"""


def written(tmp_path: Path, fixture: str, edit=None) -> Path:
    run_dir = tmp_path / "run dir"  # a space: every path in the script must be quoted
    shutil.copytree(RUNS / fixture, run_dir)
    if edit:
        data = json.loads((run_dir / "results.json").read_text())
        edit(data)
        (run_dir / "results.json").write_text(json.dumps(data))
    handoff.write(run_dir, rundir.read(run_dir), config.Layout())
    return run_dir


def run_script(tmp_path: Path, run_dir: Path, kernels: dict) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    state, bin_dir, elsewhere = tmp_path / "state", tmp_path / "bin", tmp_path / "elsewhere"
    for d in (state, bin_dir, elsewhere):
        d.mkdir()
    (state / "kernels.json").write_text(json.dumps(kernels))
    fake = bin_dir / "wqci"
    fake.write_text(FAKE.format(python=sys.executable, BASE=BASE))
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_WQCI": str(state)}
    # from another directory: the script finds its own
    done = subprocess.run(["sh", str(run_dir / "reproduce.sh")], cwd=elsewhere, env=env, capture_output=True,
                          text=True, timeout=60)
    calls = [json.loads(p.read_text()) for p in sorted(state.glob("call-*"))]
    return done, calls


SUITES = ["--suite", "test_workqueue", "--suite", "wq_stress",
          "--param", "test_workqueue.wq_items=500", "--param", "test_workqueue.nr_threads=0",
          "--param", "wq_stress.duration_s=15", "--param", "wq_stress.hotplug=0"]
SAME = {"x86_64/baseline": [BASE, X86_HASH, 0], "x86_64/fastwake-v1": [HEAD, X86_HASH, 1],
        "arm64/baseline": [BASE, ARM_HASH, 0], "arm64/fastwake-v1": [HEAD, ARM_HASH, 1]}


def test_reproduce_sh_tests_each_kernel_of_the_run_with_its_suites_and_parameters(tmp_path):
    run_dir = written(tmp_path, "fail-new-finding")
    script = run_dir / "reproduce.sh"
    assert os.access(script, os.X_OK) and script.read_text().startswith("#!/bin/sh\n")
    done, calls = run_script(tmp_path, run_dir, SAME)
    out = run_dir / "reproduce"
    common = ["--flavor", "debug", "--topology", "smp8-numa2", *SUITES]
    assert calls == [
        ["test", "--base", "--arch", "x86_64", *common, "--out", f"{out}/x86_64/baseline"],
        ["test", "--series", "fastwake-v1", "--arch", "x86_64", *common, "--out", f"{out}/x86_64/fastwake-v1"],
        ["test", "--base", "--arch", "arm64", *common, "--out", f"{out}/arm64/baseline"],
        ["test", "--series", "fastwake-v1", "--arch", "arm64", *common, "--out", f"{out}/arm64/fastwake-v1"],
    ]
    # the patched kernels' verdict (exit 1) is the answer: every kernel still ran, and the script says 1
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""


def test_reproduce_sh_stops_when_wqci_builds_another_kernel(tmp_path):
    run_dir = written(tmp_path, "fail-new-finding")
    moved = {**SAME, "x86_64/fastwake-v1": ["0" * 40, X86_HASH, 0]}
    done, calls = run_script(tmp_path, run_dir, moved)
    assert done.returncode == 2 and len(calls) == 2
    assert done.stderr.startswith(f"E: {run_dir}/reproduce/x86_64/fastwake-v1/junit.xml: not the kernel the run "
                                  f'tested (expected name="commit" value="{HEAD}")')


def test_reproduce_sh_stops_on_an_infrastructure_error(tmp_path):
    run_dir = written(tmp_path, "fail-new-finding")
    done, calls = run_script(tmp_path, run_dir, {**SAME, "x86_64/baseline": [BASE, X86_HASH, 2]})
    assert done.returncode == 2 and len(calls) == 1


def test_reproduce_sh_quotes_what_the_shell_would_split(tmp_path):
    tree = "/home/dev/linux tree/it's $HOME"

    def edit(data):  # a series taken from a branch of the user's tree
        data["properties"].update(tree_path=tree, accel="tcg", range="v7.2..wq-fast")

    run_dir = written(tmp_path, "fail-new-finding", edit)
    _, calls = run_script(tmp_path, run_dir, SAME)
    assert calls[0][-6:] == ["--accel", "tcg", "--tree", tree, "--out", f"{run_dir}/reproduce/x86_64/baseline"]
    assert calls[1][:6] == ["test", "--range", "v7.2..wq-fast", "--arch", "x86_64", "--flavor"]


@pytest.mark.parametrize(("prop", "recorded", "option", "values"), [
    # the -K options the kernels were built with, as prepare records them (shlex.join)
    ("kconfig_add", 'CONFIG_DEBUG_ATOMIC_SLEEP=y \'CONFIG_CMDLINE="a b"\'', "--kconfig-add",
     ["CONFIG_DEBUG_ATOMIC_SLEEP=y", 'CONFIG_CMDLINE="a b"']),
    # the kernel parameters the guests booted with (space-separated)
    ("cmdline_append", "kcsan.udelay_task=400 nokaslr", "--append", ["kcsan.udelay_task=400", "nokaslr"]),
], ids=["kconfig-add", "append"])
def test_reproduce_sh_passes_what_the_kernels_were_built_and_booted_with(tmp_path, prop, recorded, option, values):
    def edit(data):
        for suite in data["suites"]:
            suite["properties"][prop] = recorded

    run_dir = written(tmp_path, "fail-new-finding", edit)
    _, calls = run_script(tmp_path, run_dir, SAME)
    expected = [word for value in values for word in (option, value)]
    assert len(calls) == 4
    for call in [*calls, reproduce.run_command(rundir.read(run_dir))]:  # each `wqci test`, then the whole `wqci run`
        at = call.index(option)
        assert call[at:at + len(expected)] == expected


def test_an_older_results_json_runs_wqci_test_on_its_defaults_and_says_so(tmp_path):
    run_dir = written(tmp_path, "pass-older-format")
    text = (run_dir / "reproduce.sh").read_text()
    assert "# results.json does not record the suites and parameters (an older wqci)" in text
    done, calls = run_script(tmp_path, run_dir, {"x86_64/baseline": [BASE, X86_HASH, 0],
                                                 "x86_64/fastwake-v1": [HEAD, X86_HASH, 0]})
    assert calls == [
        ["test", "--base", "--arch", "x86_64", "--flavor", "debug", "--topology", "smp8-numa2",
         "--out", f"{run_dir}/reproduce/x86_64/baseline"],
        ["test", "--series", "fastwake-v1", "--arch", "x86_64", "--flavor", "debug", "--topology", "smp8-numa2",
         "--out", f"{run_dir}/reproduce/x86_64/fastwake-v1"]]
    assert done.returncode == 0, done.stderr


def test_the_options_the_script_uses_are_options_of_wqci():
    """reproduce.sh must run as written: every option it passes exists in the CLI."""
    runner = CliRunner()
    offered = {command: set(re.findall(r"(?<![\w-])--[a-z][\w-]*",
                                       runner.invoke(app, [command, "--help"], terminal_width=200).output))
               for command in ("test", "run")}
    for extra in ({"accel": "tcg", "perf_flavor": "perf", "strict": "true", "ab_target": "0.03", "ab_budget": "600"},
                  {"tree_path": "/src/linux", "range": "v7.2..HEAD"}):
        view = rundir.read(RUNS / "fail-new-finding")
        view.data["properties"].update(extra)
        used = {"test": {w for c in reproduce.commands(view) for w in c.argv if w.startswith("--")},
                "run": {w for w in reproduce.run_command(view) if w.startswith("--")}}
        for command in ("test", "run"):
            assert used[command] - offered[command] == set(), (command, extra)


@pytest.mark.parametrize("fixture", ["fail-new-finding", "pass-older-format"])
def test_reproduce_sh_is_valid_sh(tmp_path, fixture):
    run_dir = written(tmp_path, fixture)
    assert subprocess.run(["sh", "-n", str(run_dir / "reproduce.sh")]).returncode == 0
