"""Progress that tells the time: the events tasks send (model/progress.py), their rendering as
rich bars or plain `I:` lines (output/console.py), and the build's bar fed by make's output on
the fake kernel tree -- under a real pseudo-terminal, as a person sees it."""

import io
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time

import pytest
from rich.console import Console

from pipeline.build import estimate
from pipeline.build import kconfig
from pipeline.build import kernel as build
from pipeline.model import progress
from pipeline.model.progress import TaskAdvanced, TaskEnded, TaskStarted
from pipeline.output import console as ui
from tests.conftest import ROOT
from tests.unit.test_build import commit_change, fake, request  # noqa: F401 (fake is a fixture)


class Clock:
    """A monotonic clock the test moves by hand, so that the estimates are exact."""

    START = 100.0

    def __init__(self) -> None:
        self.t = self.START

    def __call__(self) -> float:
        return self.t


# A build of 20 objects, one every 3 s, then two boots of one arch (the second is
# estimated from the first) and a suite that fails: (seconds since the start, event).
RECORDED = [
    (0, TaskStarted(1, "build base x86_64/debug", 20, "objects", basis="as many as the slot's last build")),
    *[(3 * i, TaskAdvanced(1, i, 20)) for i in range(1, 21)],
    (60, TaskEnded(1, True)),
    (60, TaskStarted(2, "boot x86_64", 300, "s", clock=True, kind="boot x86_64 tcg")),
    (80, TaskEnded(2, True)),
    (80, TaskStarted(3, "boot x86_64", 300, "s", clock=True, kind="boot x86_64 tcg")),
    (85, TaskEnded(3, True)),
    (85, TaskStarted(4, "suite test_workqueue", 600, "s", clock=True, kind="suite test_workqueue")),
    (90, TaskEnded(4, False)),
]


def replay(shown: ui.Progress, clock: Clock, events=RECORDED) -> None:
    for at, event in events:
        clock.t = Clock.START + at
        shown.event(event)


def test_bars_show_objects_of_the_expected_count_and_the_time_left():
    clock = Clock()
    out = Console(file=io.StringIO(), width=100, force_terminal=True, record=True, color_system=None)
    with ui.Progress(plain=False, console=out, now=clock) as shown:
        replay(shown, clock, RECORDED[:12])  # up to 11 of 20 objects, at 33 s
        clock.t += 1.5
        bar = Console(width=100, record=True, file=io.StringIO(), color_system=None)
        bar.print(shown._bars.get_renderable())
        now = bar.export_text()
        replay(shown, clock, RECORDED[12:])
    text = out.export_text()
    # every count of the build was drawn, each with the estimate from its pace so far
    for done in range(1, 20):
        assert f" {done}/20 objects about {ui.duration(3 * (20 - done))} left" in text
    # 1.5 s after the 11th object: the bar 11/20 full (of 24 cells), 34.5 s / 11 * 9 left
    assert now == "⠋ build base x86_64/debug " + "━" * 13 + " " * 11 + " 11/20 objects about 0:28 left\n"
    assert "I: [   60.0 s] build base x86_64/debug: 20 objects in 1:00" in text
    # the first boot has only its timeout as a bound; the second is estimated from the first
    assert "boot x86_64 " in text and "0:00 of 5:00 at most 5:00 left" in text
    assert "0:00 of 5:00 about 0:20 left" in text
    assert "I: [   80.0 s] boot x86_64: done in 0:20" in text
    assert "I: [   90.0 s] suite test_workqueue: stopped after 0:05" in text


def test_a_clock_moves_on_between_events():
    clock = Clock()
    out = Console(file=io.StringIO(), width=100, force_terminal=True, record=True, color_system=None)
    with ui.Progress(plain=False, console=out, now=clock) as shown:
        shown.event(TaskStarted(7, "boot arm64 until SSH answers", 600, "s", clock=True))
        clock.t += 75
        view = Console(width=100, record=True, file=io.StringIO(), color_system=None)
        view.print(shown._bars.get_renderable())  # what the next redraw shows
        shown.event(TaskEnded(7, True))
    assert view.export_text() == "⠋ boot arm64 until SSH answers " + "━" * 3 + " " * 21 + \
        " 1:15 of 10:00 at most 8:45 left\n"


def test_plain_lines_for_ci_a_tenth_at_a_time(capsys):
    clock = Clock()
    with ui.Progress(plain=True, now=clock) as shown:
        shown("x86_64: tree and baseline build")
        replay(shown, clock)
    assert capsys.readouterr().out.splitlines() == [
        "I: [    0.0 s] x86_64: tree and baseline build",
        "I: [    0.0 s] build base x86_64/debug: 0/20 objects (as many as the slot's last build)",
        "I: [    6.0 s] build base x86_64/debug: 2/20 objects, about 0:54 left",
        "I: [   12.0 s] build base x86_64/debug: 4/20 objects, about 0:48 left",
        "I: [   18.0 s] build base x86_64/debug: 6/20 objects, about 0:42 left",
        "I: [   24.0 s] build base x86_64/debug: 8/20 objects, about 0:36 left",
        "I: [   30.0 s] build base x86_64/debug: 10/20 objects, about 0:30 left",
        "I: [   36.0 s] build base x86_64/debug: 12/20 objects, about 0:24 left",
        "I: [   42.0 s] build base x86_64/debug: 14/20 objects, about 0:18 left",
        "I: [   48.0 s] build base x86_64/debug: 16/20 objects, about 0:12 left",
        "I: [   54.0 s] build base x86_64/debug: 18/20 objects, about 0:06 left",
        "I: [   60.0 s] build base x86_64/debug: 20/20 objects",
        "I: [   60.0 s] build base x86_64/debug: 20 objects in 1:00",
        "I: [   60.0 s] boot x86_64: 0:00 of 5:00",
        "I: [   80.0 s] boot x86_64: done in 0:20",
        "I: [   80.0 s] boot x86_64: 0:00 of 5:00",
        "I: [   85.0 s] boot x86_64: done in 0:05",
        "I: [   85.0 s] suite test_workqueue: 0:00 of 10:00",
        "I: [   90.0 s] suite test_workqueue: stopped after 0:05",
    ]


def test_plain_lines_without_a_total_come_once_a_minute(capsys):
    clock = Clock()
    with ui.Progress(plain=True, now=clock) as shown:
        shown.event(TaskStarted(1, "build base arm64/debug", None, "objects"))
        for i in range(1, 31):
            clock.t += 5
            shown.event(TaskAdvanced(1, i, None))
        shown.event(TaskEnded(1, True))
    assert capsys.readouterr().out.splitlines() == [
        "I: [    0.0 s] build base arm64/debug: 0 objects",
        "I: [   60.0 s] build base arm64/debug: 12 objects",
        "I: [  120.0 s] build base arm64/debug: 24 objects",
        "I: [  150.0 s] build base arm64/debug: 30 objects in 2:30",
    ]


@pytest.mark.parametrize("completed,total,rough,expected", [
    (5, 20, False, "5/20 objects"),
    (5, 20, True, "5/~20 objects"),
    (25, 20, False, "25 objects (expected 20)"),
    (5, None, False, "5 objects"),
])
def test_counts(completed, total, rough, expected):
    shown = ui.Shown(TaskStarted(1, "b", total, "objects", rough=rough), t0=0.0, completed=completed)
    assert shown.count(10.0) == expected
    assert shown.left(10.0) == ("about 0:30 left" if completed == 5 and total else "")


def test_durations():
    assert [ui.duration(s) for s in (0, 59.4, 61, 3599, 3600, 7322)] == \
        ["0:00", "0:59", "1:01", "59:59", "1:00:00", "2:02:02"]


def test_a_task_without_a_reporter_costs_nothing_and_one_that_raises_ends_not_ok():
    with progress.task("quiet", 3, "objects") as t:
        t.advance()  # nobody listens: no error
    seen = []
    with progress.reporting(seen.append):
        with pytest.raises(RuntimeError):
            with progress.task("make", 2, "objects", basis="counted") as t:
                t.advance()
                raise RuntimeError("make failed")
    ident = seen[0].task
    assert seen == [TaskStarted(ident, "make", 2, "objects", basis="counted", kind="make"),
                    TaskAdvanced(ident, 1, 2), TaskEnded(ident, False)]
    with progress.task("after", None) as t:  # the reporter is gone again
        t.advance()
    assert len(seen) == 3


# ---------------------------------------------------------------- the build's bar on the fake tree


def test_a_build_reports_each_object_compiled_of_the_expected_count(fake):
    layout, info = fake
    seen = []
    with progress.reporting(seen.append):
        build.build(layout, request(layout, info))  # a fresh slot: counted in its Kbuild files
        patched = commit_change(info.repo, "kernel/workqueue.c", "int changed;\n", "wq: change")
        build.build(layout, request(layout, info, commit=patched, label="patched"))  # like the last build
        again = commit_change(info.repo, "kernel/sched/core.c", "int changed;\n", "sched: change")
        build.build(layout, request(layout, info, commit=again, label="again"))  # like the last: one object
    starts = [e for e in seen if isinstance(e, TaskStarted)]
    assert [(s.name, s.total, s.unit, s.basis, s.rough) for s in starts] == [
        ("build base fake/debug", 3, "objects", "counted in the Makefiles", True),
        ("build patched fake/debug", 3, "objects", "as many as the slot's last build", False),
        ("build again fake/debug", 1, "objects", "as many as the slot's last build", False),
    ]
    first = starts[0].task
    assert [e.completed for e in seen if isinstance(e, TaskAdvanced) and e.task == first] == [1, 2, 3]
    assert [e for e in seen if isinstance(e, TaskEnded)] == [TaskEnded(s.task, True) for s in starts]


def test_a_failing_make_ends_its_task_not_ok(fake, monkeypatch):
    layout, info = fake
    monkeypatch.setenv("FAIL", "1")
    seen = []
    with progress.reporting(seen.append):
        build.build(layout, request(layout, info))
    assert isinstance(seen[-1], TaskEnded) and not seen[-1].ok


def test_a_cold_build_directory_expects_the_slots_largest_build(tmp_path):
    slot = tmp_path / "slot"
    for name, compiled, mtime in (("big", 1079, 1), ("small", 4, 2)):
        (slot / "out" / name).mkdir(parents=True)
        (slot / "out" / name / "build.json").write_text(json.dumps({"compiled_objects": compiled,
                                                                    "key": {"config_hash": "abc"}}))
        os.utime(slot / "out" / name / "build.json", (mtime, mtime))
    warm = slot / "build"
    warm.mkdir()
    # no vmlinux: whatever the last build did, this one compiles everything
    assert estimate.expected(slot, warm, "abc", {}, tmp_path, "x86") == \
        estimate.Expected(1079, "as many as the slot's largest build")
    (warm / "vmlinux").write_text("")
    assert estimate.expected(slot, warm, "abc", {}, tmp_path, "x86") == \
        estimate.Expected(4, "as many as the slot's last build")
    # a new .config recompiles (nearly) everything
    assert estimate.expected(slot, warm, "other", {}, tmp_path, "x86").count == 1079
    # a last build that compiled nothing (a forced rebuild) gives no total
    (slot / "out" / "noop").mkdir()
    (slot / "out" / "noop" / "build.json").write_text(json.dumps({"compiled_objects": 0,
                                                                   "key": {"config_hash": "abc"}}))
    assert estimate.expected(slot, warm, "abc", {}, tmp_path, "x86") == estimate.Expected(None, "")
    # no builds, nothing in the Makefiles: no total either
    assert estimate.expected(tmp_path / "empty", warm, "abc", {}, tmp_path, "x86") == \
        estimate.Expected(None, "", rough=True)


def test_counting_targets_follows_enabled_directories_and_composite_objects(tmp_path):
    files = {
        "Kbuild": "obj-y += kernel/\nobj-$(CONFIG_NET) += net/\nobj-$(CONFIG_SOUND) += sound/\n",
        "kernel/Makefile": "obj-y = fork.o exit.o \\\n\tsched/\nobj-$(CONFIG_KCSAN) += kcsan.o # a comment.o\n",
        "kernel/sched/Makefile": "obj-y += core.o\nobj-m += test.o\n",
        "net/Makefile": "obj-y += sock.o\ncomposite-y := a.o b.o c.o\nobj-y += composite.o\nhostprogs := gen\n",
        "sound/Makefile": "obj-y += never.o\n",
        "lib/Makefile": "lib-y += string.o\n",
        "arch/x86/lib/Makefile": "lib-y += memcpy_64.o\n",
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    config = {"NET": "y", "KCSAN": "n", "SOUND": "n"}
    # fork exit core test sock a b c string memcpy_64
    assert estimate.count_targets(tmp_path, config, "x86") == 10
    assert estimate.count_targets(tmp_path, {**config, "KCSAN": "y"}, "x86") == 11


# ---------------------------------------------------------------- a terminal session

DRIVER = """
import sys
from pathlib import Path
from pipeline import cli, config
root, cache = Path(sys.argv[1]), Path(sys.argv[2])
cli.layout = lambda: config.Layout(root=root, cache=cache)
sys.argv = ["wqci", *sys.argv[3:]]
cli.main()
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def terminal_session(argv: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run argv with a pseudo-terminal as its stdout and stderr; its exit code and what it wrote."""
    master, slave = pty.openpty()
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=ROOT, env=env)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if not ready:
            if child.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return child.wait(timeout=10), b"".join(chunks).decode(errors="replace")


def test_the_build_bar_advances_in_a_terminal(fake):
    """`wqci build` of the fake tree under a pseudo-terminal: the bar is drawn again for each
    object make compiles, with its count and its estimate, and leaves one line when done."""
    layout, info = fake
    shutil.copy(ROOT / "configs" / "trees.yaml", layout.configs / "trees.yaml")
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "110", "LINES": "30"}
    env.pop("NO_COLOR", None)
    code, text = terminal_session([sys.executable, "-c", DRIVER, str(layout.root), str(layout.cache), "build",
                                   "--base", "--tree", str(info.repo), "-a", "fake", "-j", "1", "--no-ccache",
                                   "--no-sandbox"], env)
    assert code == 0, text
    screen = ANSI.sub("", text)
    counts = [int(m.group(1)) for m in re.finditer(r"build base fake/debug\s+\S+\s+(\d)/~3 objects", screen)]
    # drawn at 0 before make, then after each object: the bar advanced through every count in order
    assert sorted(set(counts)) == [0, 1, 2, 3], screen
    assert counts == sorted(counts), screen
    assert re.search(r"[12]/~3 objects about 0:0\d left", screen), screen
    assert re.search(r"I: \[\s*[\d.]+ s\] build base fake/debug: 3 objects in 0:0\d", screen), screen
    assert "━" in screen  # a bar, not plain lines
    # the same command with --ci: plain I: lines only
    code, text = terminal_session([sys.executable, "-c", DRIVER, str(layout.root), str(layout.cache), "build",
                                   "--base", "--tree", str(info.repo), "-a", "fake", "--no-ccache", "--no-sandbox",
                                   "--force", "--ci"], env)
    assert code == 0, text
    assert "━" not in text and "\x1b[" not in text
    assert re.search(r"I: \[\s*[\d.]+ s\] build base fake/debug: 0 objects in 0:0\d", text), text


def test_added_options_change_the_config_fragment(tmp_path):
    """-K lines form a fragment of their own, merged last; CONFIG_X=n as kconfig writes it."""
    assert kconfig._added_fragment(tmp_path, ("CONFIG_A=y", "CONFIG_B=n", 'CONFIG_C="x y"')) == \
        [tmp_path / kconfig.ADDED_FRAGMENT]
    assert (tmp_path / kconfig.ADDED_FRAGMENT).read_text() == \
        'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n'
    assert kconfig._added_fragment(tmp_path, ()) == [] and not (tmp_path / kconfig.ADDED_FRAGMENT).exists()
