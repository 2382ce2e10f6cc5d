"""Kernel-tool conventions of the CLI: -h, --version, short flags (-a -o -j -K), --flavour as
well as --flavor, --ci on every command that does work, defaults and an example in every
help. The options are read from the real Typer app; -h and --version run the real entry point."""

import re
import subprocess
import sys
from importlib import metadata

import pytest
import typer
from typer.testing import CliRunner

from pipeline import cli
from tests.conftest import ROOT

COMMAND = typer.main.get_command(cli.app)
#: the commands that build, boot or apply: each takes --ci
WORK = ("run", "test", "build", "boot", "bisect", "noise", "nightly", "apply")
#: the commands that build a kernel: each takes -j and (except nightly, whose matrix says what to build) -K
BUILDS = ("run", "test", "build", "boot", "bisect", "noise", "nightly")


def commands(group=COMMAND, path=()):
    """(path, click command) of every command and group, depth first."""
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from commands(sub, (*path, name))


def options(path: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """--long name -> every spelling of that option, for one command."""
    found = dict(commands())[path]
    return {p.opts[0]: tuple(p.opts + p.secondary_opts) for p in found.params if p.opts[0].startswith("--")}


def help_text(*args: str) -> str:
    done = CliRunner().invoke(cli.app, [*args], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    return done.output


def test_version_prints_the_package_version():
    done = subprocess.run([sys.executable, "-m", "pipeline", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"wqci {metadata.version('wqci')}\n", "")


def test_h_is_help_for_the_tool_and_its_commands():
    done = subprocess.run([sys.executable, "-m", "pipeline", "-h"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and "Usage: python -m pipeline [OPTIONS] COMMAND [ARGS]..." in done.stdout
    for path, _ in commands():
        assert help_text(*path, "-h") == help_text(*path, "--help"), path


@pytest.mark.parametrize("command", WORK)
def test_every_command_that_does_work_takes_ci(command):
    assert options((command,))["--ci"] == ("--ci",)


@pytest.mark.parametrize("command", BUILDS)
def test_every_command_that_builds_takes_jobs_and_kconfig_add(command):
    opts = options((command,))
    assert opts["--jobs"] == ("--jobs", "-j")
    assert command == "nightly" or opts["--kconfig-add"] == ("--kconfig-add", "-K")


def test_short_flags_and_the_flavour_spellings():
    for path, command in commands():
        opts = options(path) if path else {}
        if "--arch" in opts:
            assert opts["--arch"] == ("--arch", "-a"), path
        if "--out" in opts:
            assert opts["--out"] == ("--out", "-o"), path
        if "--flavor" in opts:
            assert opts["--flavor"] == ("--flavor", "--flavour"), path
        if "--perf-flavor" in opts:
            assert opts["--perf-flavor"] == ("--perf-flavor", "--perf-flavour"), path
    # every command that has --arch takes all
    assert {p[0] for p, _ in commands() if len(p) == 1 and "--arch" in options(p)} == \
        {"run", "test", "build", "boot", "bisect", "noise"}


def test_help_says_flavour_shows_defaults_and_an_example():
    for path, command in commands():
        shown = help_text(*path, "-h")
        assert re.search(r"Example: (dmesg \| )?wqci ", shown), path
        assert " flavor" not in shown.lower().replace("--flavor", "").replace("--perf-flavor", ""), path
    build = " ".join(help_text("build", "-h").split())
    assert "x86_64, arm64, a comma list, or all. [default: x86_64]" in build
    assert "Parallel jobs of make (make -j). [default: (one per CPU)]" in build
    assert "[default: (the default of configs/flavors.yaml)]" in build
    assert "Example: wqci build --series fastwake-v1 -a all -j 8 -K CONFIG_DEBUG_ATOMIC_SLEEP=y" in build


def test_a_reader_that_goes_away_ends_wqci_quietly():
    """`wqci triage log | head -1`: no "internal error" once head has what it wanted."""
    import subprocess
    import sys

    from tests.conftest import DATA

    child = subprocess.Popen([sys.executable, "-m", "pipeline", "triage", str(DATA / "splats" / "interleaved.log")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=DATA.parents[1])
    child.stdout.close()  # before wqci has printed anything
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141, err
    assert err == ""


def test_sigint_interrupts_even_when_it_came_in_ignored():
    """`wqci ... &` from a script (no job control) inherits SIGINT ignored; kill -INT still stops it."""
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import DATA

    child = subprocess.Popen([sys.executable, "-m", "pipeline", "triage", "-"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=DATA.parents[1],
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until wqci has its handler (then it reads stdin, which never ends)
        caught = next(ln for ln in open(f"/proc/{child.pid}/status") if ln.startswith("SigCgt:"))
        if int(caught.split()[1], 16) & (1 << (signal.SIGINT - 1)):
            break
        time.sleep(0.1)
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130 and err.decode().strip() == "E: interrupted"
