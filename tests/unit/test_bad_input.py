"""Bad input gets one `E:` line naming the file or flag, exit 2, before any fetch, build or
boot, no traceback and nothing written to the cache (table-driven, the real CLI)."""

import os
import shlex
import subprocess
import sys

import pytest

from tests.conftest import DATA, ROOT, git

FILES = {
    "broken.yaml": b"a: [\n",
    "nonutf.yaml": b"\xff\xfe bad",
    "bad.mbox": b"not an mbox\n",
    "corrupt/nightly.json": b'[{"cell": ',
}

# (arguments, the E: line's start); {d} is a directory holding FILES
CASES = [
    ("run --series nosuch", "E: unknown series 'nosuch' ("),
    ("run --series fastwake-v1 --repeat 0", "E: Invalid value for '--repeat': 0; give a number of pairs (1 or more) or auto"),
    ("run --series fastwake-v1 --repeat -3", "E: Invalid value for '--repeat'"),
    ("run --series fastwake-v1 --repeat abc",
     "E: Invalid value for '--repeat': 'abc'; give a number of pairs (1 or more) or auto"),
    ("run --series fastwake-v1 --ab-budget -1",
     "E: Invalid value for '--ab-budget': Input should be greater than or equal to 0"),
    ("run --series fastwake-v1 --ab-target 0",
     "E: Invalid value for '--ab-target': Input should be greater than or equal to 0.1"),
    ("run --series fastwake-v1 --accel xen", "E: Invalid value for '--accel': 'xen'; options are: auto, kvm, tcg"),
    ("run --series fastwake-v1 --flavor debgu", "E: unknown flavour 'debgu' ("),
    ("run --series fastwake-v1 --perf-flavor prf", "E: unknown flavour 'prf' ("),
    ("run --series fastwake-v1 --param test_workqueue.nope=1",
     "E: --param test_workqueue.nope=1: test_workqueue has no parameter 'nope' (configs/suites.yaml); options are: "
     "nr_threads, wq_items"),
    ("run --series fastwake-v1 --param test_workqueue.wq_items=abc",
     "E: --param test_workqueue.wq_items=abc: test_workqueue.wq_items is an integer (default 2000)"),
    ("run --series fastwake-v1 --param nosuch.key=1", "E: unknown suite 'nosuch' ("),
    ("run --series fastwake-v1 --param wq_items", "E: --param wq_items: use SUITE.KEY=VALUE"),
    ("run --series fastwake-v1 --topology nosuch", "E: unknown topology 'nosuch' ("),
    ("run --series fastwake-v1 --arch sparc", "E: unknown arch 'sparc' ("),
    ("run --series fastwake-v1 --confirm -1", "E: Invalid value for '--confirm'"),
    ("run --series fastwake-v1 --bogus", "E: No such option: --bogus"),
    ("test --base --flavor debgu", "E: unknown flavour 'debgu' ("),
    ("test --base --repeat 0", "E: Invalid value for '--repeat'"),
    ("test --base --suite nosuch", "E: unknown suite 'nosuch' ("),
    ("test --base --suite-timeout test_workqueue=abc", "E: --suite-timeout test_workqueue=abc: use SUITE=SECONDS"),
    ("test --series fastwake-v1 --base", "E: give exactly one of --series NAME or --base"),
    ("test --series nosuch", "E: unknown series 'nosuch' ("),
    ("boot --base --arch sparc", "E: unknown arch 'sparc' ("),
    ("boot --base --arch all --shell", "E: --shell: opens one guest; give one arch, not --arch all"),
    ("test --base --arch all,sparc", "E: unknown arch 'sparc' ("),
    ("test --base --param wq_stress.hotplug=maybe",
     "E: --param wq_stress.hotplug=maybe: wq_stress.hotplug is an integer (default 0)"),
    ("test --base --param locktorture.torture_type='a b'",
     "E: --param locktorture.torture_type=a b: locktorture.torture_type is a word without spaces (default "),
    ("noise --base --arch x86_64,sparc", "E: unknown arch 'sparc' ("),
    ("bisect --series fastwake-v1 --build-fails --arch all,sparc", "E: unknown arch 'sparc' ("),
    ("build --base --arch sparc,x86_64", "E: unknown arch 'sparc' ("),
    ("nightly --shard 1/2", "E: --matrix FILE: wqci nightly runs only the matrix it is given"),
    ("nightly --matrix {d}/broken.yaml", "E: {d}/broken.yaml: invalid YAML: line 2:"),
    ("nightly --matrix {d}/nonutf.yaml", "E: {d}/nonutf.yaml: not UTF-8 text (byte 0xff at offset 0)"),
    ("nightly merge {d}/corrupt", "E: {d}/corrupt/nightly.json: not a wqci nightly index (JSONDecodeError"),
    ("nightly merge {d}", "E: {d}: no nightly.json (not a wqci nightly output directory)"),
    ("series import {d}/bad.mbox --name x", "E: {d}/bad.mbox: not an mbox"),
    ("series show nosuch", "E: unknown series 'nosuch' ("),
    ("series import {d}/corrupt-hunk.mbox --name x",
     "E: {d}/corrupt-hunk.mbox: patch 1 \"workqueue: split kick_pool() into kick_pool_pick() + wake_up_process()\": "
     "corrupt patch at line"),
    ("apply --series fastwake-v1 --tree {d}/corrupt", "E: tree {d}/corrupt: not the top of a git checkout (it is inside"),
    ("report {d}", "E: {d}/results.json: no results.json here"),
    ("bisect --series fastwake-v1", "E: give exactly one predicate"),
    ("bisect --tree {d}/corrupt --good a --bad b --build-fails", "E: tree {d}/corrupt: not the top of a git checkout"),
    ("bisect --tree {d}/nosuch --good a --bad b --build-fails", "E: tree {d}/nosuch: no such directory"),
    ("noise --arch x86_64", "E: --base: wqci noise measures the base kernel; give --base"),
    ("noise --base --arch sparc", "E: unknown arch 'sparc' ("),
    # kernel-tool conventions: -K checked like a fragment's lines, short flags, --flavour
    ("build --base -K CONFIG_KCSAN=maybe",
     'E: --kconfig-add CONFIG_KCSAN=maybe: the value must be y, m, n, a number or a "string"'),
    ("run --series fastwake-v1 -K KCSAN=y",
     "E: --kconfig-add KCSAN=y: give CONFIG_NAME=VALUE, the name in capitals, digits and _ (e.g. CONFIG_KCSAN=y)"),
    ("test --base --kconfig-add CONFIG_kcsan=y", "E: --kconfig-add CONFIG_kcsan=y: give CONFIG_NAME=VALUE"),
    ("boot --base -K CONFIG_CMDLINE=console=ttyS0",
     'E: --kconfig-add CONFIG_CMDLINE=console=ttyS0: the value must be y, m, n, a number or a "string"'),
    ("bisect --series fastwake-v1 --build-fails -K CONFIG_X", "E: --kconfig-add CONFIG_X: give CONFIG_NAME=VALUE"),
    ("noise --base -K CONFIG_X=y -K CONFIG_Y=yes", 'E: --kconfig-add CONFIG_Y=yes: the value must be y, m, n'),
    ("build --base -j 0", "E: Invalid value for '--jobs' / '-j': Input should be greater than or equal to 1"),
    ("run --series fastwake-v1 -j many", "E: Invalid value for '--jobs' / '-j'"),
    ("build --base -a sparc", "E: unknown arch 'sparc' ("),
    ("test --base -o {d}/out --suite nosuch --ci", "E: unknown suite 'nosuch' ("),
    ("test --base --flavour debgu", "E: unknown flavour 'debgu' ("),
    ("run --series fastwake-v1 --perf-flavour prf", "E: unknown flavour 'prf' ("),
    ("nightly -o {d}/night -j 2 --ci --shard 1/2", "E: --matrix FILE: wqci nightly runs only the matrix it is given"),
    ("apply --series nosuch --ci", "E: unknown series 'nosuch' ("),
    ("test --base --append 'kcsan.skip_watch=1 kcsan.udelay_task=200'",
     "E: --append 'kcsan.skip_watch=1 kcsan.udelay_task=200': give one kernel parameter, name or name=value"),
    ("boot --base --append '=1'", "E: --append '=1': give one kernel parameter"),
    ("run --series fastwake-v1 --append 'quiet\"'", "E: --append 'quiet\"': give one kernel parameter"),
]


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    for name, data in FILES.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    # the real mbox with one context line of its first hunk cut out
    text = (DATA / "mbox" / "fastwake-v1.mbox").read_text()
    hunk = text.index("\n", text.index("\n", text.index("@@ ")) + 1)
    (d / "corrupt-hunk.mbox").write_text(text[:hunk] + text[text.index("\n", hunk + 1):])
    git(d, "init", "-q")  # so {d}/corrupt is a subdirectory of an unrelated checkout
    return d


@pytest.mark.parametrize("args,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_e_line_and_exit_2(bad_dir, tmp_path, args, expected):
    cache = tmp_path / "cache"
    argv = [a.format(d=bad_dir) for a in shlex.split(args)]
    done = subprocess.run([sys.executable, "-m", "pipeline", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "WQCI_CACHE": str(cache)})
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert done.returncode == 2, done.stderr + done.stdout
    assert len(lines) == 1 and lines[0].startswith(expected.format(d=bad_dir)), lines
    assert "Traceback" not in done.stderr + done.stdout
    # nothing fetched, built or booted: at most the logs directory
    assert not cache.exists() or {p.name for p in cache.iterdir()} <= {"logs"}


@pytest.mark.parametrize("command", ["run", "test", "build", "boot", "bisect", "noise", "apply", "nightly"])
def test_a_bare_command_that_does_long_work_shows_its_help(command):
    done = subprocess.run([sys.executable, "-m", "pipeline", command], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and f"Usage: python -m pipeline {command} [OPTIONS]" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_a_broken_series_yaml_is_reported_and_the_others_still_listed(tmp_path):
    import shutil

    shutil.copytree(ROOT / "patches" / "fastwake-v1", tmp_path / "fastwake-v1")
    (tmp_path / "zzz").mkdir()
    (tmp_path / "zzz" / "series.yaml").write_text("name: [\n")
    done = subprocess.run([sys.executable, "-m", "pipeline", "series", "list"], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "WQCI_PATCHES": str(tmp_path)})
    assert done.returncode == 2
    assert [ln.split()[0] for ln in done.stdout.splitlines()[2:]] == ["fastwake-v1"]
    assert done.stderr.splitlines() == [f"E: {tmp_path / 'zzz' / 'series.yaml'}: invalid YAML: line 2: expected the "
                                        "node content, but found '<stream end>'"]
