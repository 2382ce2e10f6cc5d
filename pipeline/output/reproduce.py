"""reproduce.sh: the run's kernels again, each built and tested by one `wqci test`.

Per arch the script tests the baseline and then the patched kernel with the run's
flavour, topology, suites and effective suite parameters, as recorded in
results.json. After each test it checks that wqci built the same commit with the
same .config (their hash) as the run did, and stops with exit 2 when not: a
reproduction on another kernel would be no reproduction. Its exit status is 1 when
a test fails (a finding, a failing suite, a patch that does not apply), as wqci's.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pipeline import config
from pipeline.model.errors import WqciError
from pipeline.output.rundir import ArchRun, RunView, Side

#: the option names of `wqci test` the script uses (one place, should they be renamed)
FLAVOUR_OPTION = "--flavor"


@dataclass(frozen=True)
class Command:
    arch: str
    variant: str
    argv: tuple[str, ...]  # without --out, which the script adds under its own directory
    commit: str  # what the run tested: the script checks wqci built it again
    config_hash: str

    @property
    def out(self) -> str:
        return f"{self.arch}/{self.variant}"


def fragments(layout: config.Layout, flavour: str, arch: str) -> tuple[config.Flavor, str] | None:
    """The flavour (its base config and fragments, in merge order) and the arch's fragment,
    as configs/ has them now; None when they cannot be read here."""
    try:
        return config.load_flavors(layout).get(flavour), config.load_arch(layout, arch).fragment
    except WqciError:
        return None


def _suite_args(view: RunView) -> list[str]:
    args: list[str] = []
    for name in filter(None, view.props.get("suites", "").split(",")):
        args += ["--suite", name]
    for item in shlex.split(view.props.get("params", "")):
        args += ["--param", item]
    return args


def command(view: RunView, arch: ArchRun, side: Side) -> Command:
    argv = ["wqci", "test", *_variant_args(view, side.baseline), "--arch", arch.arch]
    flavour = side.prop("flavor") or view.props.get("flavor", "")
    if flavour:
        argv += [FLAVOUR_OPTION, flavour]
    argv += _kconfig_args(side.prop("kconfig_add")) + _append_args(side.prop("cmdline_append"))
    topology = side.prop("topology") or view.props.get("topology", "")
    if topology:
        argv += ["--topology", topology]
    argv += _suite_args(view) + _tree_args(view)
    return Command(arch.arch, side.variant, tuple(argv), side.prop("commit"), side.prop("config_hash"))


def commands(view: RunView) -> list[Command]:
    """Baseline then patched, per arch, as the run tested them (A before B)."""
    return [command(view, a, side) for a in view.arches for side in a.sides]


def _variant_args(view: RunView, baseline: bool) -> list[str]:
    """Which kernel: the base, the series by name, or the commits of a branch (--tree --range)."""
    if baseline:
        return ["--base"]
    if view.props.get("range"):
        return ["--range", view.props["range"]]
    return ["--series", view.series]


def _tree_args(view: RunView) -> list[str]:
    p = view.props
    return (["--accel", p["accel"]] if p.get("accel", "auto") != "auto" else []) + \
        (["--tree", p["tree_path"]] if p.get("tree_path") else [])


def _kconfig_args(recorded: str) -> list[str]:
    """The run's -K options (a kernel property, shell-quoted), again."""
    return [word for item in shlex.split(recorded) for word in ("--kconfig-add", item)]


def _append_args(recorded: str) -> list[str]:
    """The run's --append kernel parameters (a kernel property, space-separated), again."""
    return [word for item in recorded.split() for word in ("--append", item)]


def run_command(view: RunView) -> list[str]:
    """The whole `wqci run` again, A/B sampling and confirmation included."""
    p = view.props
    argv = ["wqci", "run", *_variant_args(view, False), "--arch",
            p.get("arches") or ",".join(a.arch for a in view.arches)]
    for key, option in (("flavor", FLAVOUR_OPTION), ("topology", "--topology")):
        if p.get(key):
            argv += [option, p[key]]
    argv += _kconfig_args(view.prop("kconfig_add")) + _append_args(view.prop("cmdline_append"))
    if "perf_flavor" in p:  # recorded empty: the A/B ran on the flavour itself
        argv += ["--perf-flavor", p["perf_flavor"] or "none"]
    argv += _suite_args(view) + ["--repeat", p.get("repeat", "2")]
    if p.get("ab_target"):
        argv += ["--ab-target", f"{float(p['ab_target']) * 100:g}"]
    if p.get("ab_budget"):
        argv += ["--ab-budget", p["ab_budget"]]
    if p.get("confirm"):
        argv += ["--confirm", p["confirm"]]
    if p.get("max_regression"):
        argv += ["--max-regression", f"{float(p['max_regression']) * 100:g}"]
    argv += [flag for key, flag in (("each_patch", "--each-patch"), ("strict", "--strict")) if p.get(key) == "true"]
    return argv + _tree_args(view)


def _groups(words: list[str]) -> list[list[str]]:
    """Shell words grouped: each option with its value."""
    groups: list[list[str]] = []
    for w in words:
        if groups and groups[-1][0].startswith("--") and len(groups[-1]) == 1 and not w.startswith("--"):
            groups[-1].append(w)
        else:
            groups.append([w])
    return groups


def _shell(words: list[str], width: int = 96) -> str:
    """One command (already shell words) over several lines: the suites on their own
    lines, the parameters of each suite on theirs, the rest as it fits."""
    lines: list[str] = []
    line, last = "", ""
    for group in _groups(words):
        text = " ".join(group)
        option = group[0] if group[0] in ("--suite", "--param") else ""
        key = option + (group[1].split(".", 1)[0] if option == "--param" and len(group) > 1 else "")
        if line and (len(line) + 1 + len(text) > width or key != last):
            lines.append(line + " \\")
            line = "    " + text
        else:
            line = f"{line} {text}" if line else text
        last = key
    lines.append(line)
    return "\n".join(lines)


def _header(view: RunView, layout: config.Layout) -> list[str]:
    tree = " ".join(filter(None, (view.prop("tree"), view.prop("base_version"))))
    out = [f"# Tests the kernels of `{view.name}` again, as results.json in this directory records them.",
           f"# base:   {tree or 'the base tree'} at {view.prop('base_commit') or '(not recorded)'}"]
    if view.series:
        title = view.prop("series_title")
        out.append(f"# series: {view.series}" + (f" v{view.prop('series_version')}" if view.prop("series_version")
                                                 else "") + (f" \"{title}\"" if title else ""))
        out += [f"#   {p.number}/{p.total} {p.commit[:12] or '(not applied)':<12} {p.subject}" for p in view.patches]
    for a in view.arches:
        for side in a.sides:
            out.append(f"# {a.arch} {side.variant}: commit {side.prop('commit')[:12] or '(none)'}, flavour "
                       f"{side.prop('flavor') or '?'}, .config hash {side.prop('config_hash') or '(none)'}")
        flavour = (a.patched or a.baseline).prop("flavor") if a.sides else ""
        known = fragments(layout, flavour, a.arch) if flavour else None
        if known:
            out.append(f"#   .config: {known[0].base} + {' '.join(known[0].fragments)} {known[1]} (configs/kconfig/), "
                       "then olddefconfig")
    if not view.props.get("suites"):
        out.append("# results.json does not record the suites and parameters (an older wqci): "
                   "wqci test runs its defaults")
    out.append(f"# verdict of the run: {view.status}")
    return out


PRELUDE = r'''set -eu

here=$(cd "$(dirname "$0")" && pwd)
out="$here/reproduce"
status=0

# wqci test exits 1 on a verdict (a finding, a failing suite): that is the answer, keep going
test_kernel() {
    rc=0
    "$@" || rc=$?
    if [ "$rc" -gt 1 ]; then
        exit "$rc"
    fi
    if [ "$rc" -ne 0 ]; then
        status=$rc
    fi
}

# the kernel just tested must be the one the run tested: same commit, same .config
same_kernel() {
    for want in "name=\"commit\" value=\"$2\"" "name=\"config_hash\" value=\"$3\""; do
        if ! grep -qF "$want" "$1/junit.xml"; then
            echo "E: $1/junit.xml: not the kernel the run tested (expected $want)" >&2
            exit 2
        fi
    done
}
'''


def script(view: RunView, layout: config.Layout) -> str:
    lines = ["#!/bin/sh", *_header(view, layout), "#", "# Usage: sh reproduce.sh    (from any directory; results go to "
             "./reproduce/ beside this script)", PRELUDE]
    for cmd in commands(view):
        out = f'"$out"/{shlex.quote(cmd.out)}'
        lines += [f"# {cmd.arch}, {'the baseline' if cmd.variant == 'baseline' else cmd.variant}",
                  _shell(["test_kernel", *map(shlex.quote, cmd.argv), "--out", out])]
        if cmd.commit and cmd.config_hash:
            lines.append(f"same_kernel {out} {shlex.quote(cmd.commit)} {shlex.quote(cmd.config_hash)}")
        lines.append("")
    whole = " ".join(shlex.quote(w) for w in run_command(view))
    lines += ["# The whole run again (interleaved A/B boots, confirmation pairs):", f"#   {whole}", "",
              'exit "$status"', ""]
    return "\n".join(lines)
