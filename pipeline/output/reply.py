"""reply.txt: a plain-text reply to the series' thread, as the kernel CI bots write them.

The headers thread it under the patch where the first new finding appears
(`first_patch`, named by --each-patch); without that, under the last patch, the one
whose kernel was tested. Message-IDs come from the series' metadata as the run
recorded them; when one is missing the reply says so at the top instead of
inventing a header. The Reported-by and Closes lines are left for the sender to
fill. Each new finding comes with its decoded report and the flavour's kconfig
fragments; then the A/B table with its representativeness note.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import config
from pipeline.output import abtable, reproduce
from pipeline.output.console import table as text_table
from pipeline.output.rundir import ArchRun, Patch, RunView

WIDTH = 72  # prose is wrapped here; reports, tables and config lines stay as they are


def _para(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False)


@dataclass
class Found:
    """One finding, merged over the arches where it has the same class."""

    finding: dict
    arches: list[str] = field(default_factory=list)


def _merged(view: RunView, key: str) -> list[Found]:
    out: dict[str, Found] = {}
    for a in view.arches:
        for f in a.findings(key):
            out.setdefault(f["fingerprint"], Found(f)).arches.append(a.arch)
    return list(out.values())


def _subject_prefix(view: RunView, number: int, total: int) -> str:
    version = view.prop("series_version")
    v = f" v{version}" if version and version != "1" else ""
    return f"[PATCH{v}]" if total == 1 and number else f"[PATCH{v} {number}/{total}]"


def _target(view: RunView, new: list[Found]) -> tuple[Patch | None, str]:
    """The patch to reply to, and why that one."""
    if not view.patches:
        return None, "the run recorded no patches"
    failed = next((p for p in view.patches if p.status == "fail"), None)
    if failed is not None:
        return failed, f"patch {failed.number}/{failed.total} does not apply"
    firsts = [view.patch_of(f.finding.get("first_patch")) for f in new]
    if new and all(firsts):
        first = min(firsts, key=lambda p: p.number)
        return first, f"the first new finding appears with patch {first.number}/{first.total}"
    last = view.patches[-1]
    why = ("the run tested the series as a whole (--each-patch names the patch where a finding first appears)"
           if new else "the run tested the series as a whole")
    return last, why


def headers(view: RunView) -> tuple[list[str], list[str]]:
    """The mail headers, and notes for the top of the body (what could not be set)."""
    new = _merged(view, "new_findings")
    patch, why = _target(view, new)
    notes = []
    if patch is None:
        subject = f"Re: {view.prop('series_title') or view.series}"
        notes.append(f"[wqci: {why} (it stopped before applying the series); find the thread and set "
                     "In-Reply-To and References before sending]")
    else:
        subject = f"Re: {_subject_prefix(view, patch.number, patch.total)} {patch.subject}"
    out = [f"Subject: {subject}"]
    author = view.prop("series_author")
    if author:
        out.append(f"To: {author}")
    if patch is not None and patch.message_id:
        out += [f"In-Reply-To: {patch.message_id}", f"References: {patch.message_id}"]
    elif patch is not None:
        notes.append(f"[wqci: no Message-ID is recorded for patch {patch.number}/{patch.total} of {view.series}; "
                     "set In-Reply-To and References to it before sending]")
    if patch is not None:
        notes.append(f"[wqci: this replies to patch {patch.number}/{patch.total}: {why}]")
    return out, notes


def _item(text: str) -> list[str]:
    """A list item, its continuation lines hanging under its text."""
    return textwrap.wrap(text, WIDTH, initial_indent="- ", subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)


def _greeting(view: RunView) -> str:
    author = view.prop("series_author")
    first = author.split("<")[0].split()[0] if author and author.split("<")[0].split() else ""
    return f"Hi {first}," if first else "Hello,"


def _tested(view: RunView) -> list[str]:
    tree = " ".join(filter(None, (view.prop("tree"), view.prop("base_version"))))
    lines = [f"base:      {tree} at {view.prop('base_commit') or '(not recorded)'}".rstrip()]
    if view.patches:
        lines.append(f"series:    {view.series} ({len(view.patches)} patches)")
        lines += [f"  {p.number}/{p.total} {p.commit[:12] or '(not applied)':12} {p.subject}" for p in view.patches]
    for a in view.arches:
        side = a.patched or a.baseline
        if side is None:
            continue
        lines.append(f"{a.arch + ':':10} flavour {side.prop('flavor') or '?'}, .config hash "
                     f"{side.prop('config_hash') or '?'}, {side.prop('toolchain') or 'compiler not recorded'}")
        guest = f"topology {side.prop('topology') or '?'}"
        accel = side.prop("accelerator").split(" ", 1)[0]
        lines.append(f"{'':10} guest {guest}" + (f", {accel.upper()}" if accel else ""))
    lines.append("reproduce: sh reproduce.sh (in the run directory: the same kernels, with wqci test)")
    return lines


def _fragments(layout: config.Layout, flavour: str, arch: str) -> list[str]:
    """The flavour's own kconfig fragments in full, then the ones every flavour gets, by name."""
    known = reproduce.fragments(layout, flavour, arch)
    if known is None:
        return [f"(the kconfig fragments of flavour {flavour} cannot be read here)", ""]
    chosen, arch_fragment = known
    always = {f"{name}.config" for name in config.load_flavors(layout).always}
    own = [f for f in chosen.fragments if f not in always]
    out = [*_para(f"kernel config: {chosen.base}, then flavour {chosen.name}'s fragments below, then "
                  f"{', '.join(sorted(always))} and {arch_fragment} (wqci's configs/kconfig/), then "
                  "olddefconfig:"), ""]
    for name in own:
        path = layout.configs / "kconfig" / name
        out.append(f"# {name}")
        out += path.read_text().splitlines() if path.is_file() else [f"# ({path} is missing here)"]
        out.append("")
    return out


def _finding(view: RunView, n: int, found: Found, layout: config.Layout) -> list[str]:
    f = found.finding
    first = view.patch_of(f.get("first_patch"))
    lines = [f"{n}. {f['title']}", "",
             *_para(f"{f.get('class', 'new')} on {' and '.join(found.arches)}: {f.get('evidence_text', '')}"
                    .rstrip(": "), "   "),
             *_para(f"seen {f.get('count', 1)} time(s) in {f.get('where', '?')}", "   ")]
    if first is not None:
        lines += _para(f"first appears with patch {first.number}/{first.total}: {first.subject}", "   ")
    elif f.get("first_patch"):
        lines += _para(f"first appears with {f['first_patch']}", "   ")
    if f.get("touches"):
        lines += _para(f["touches"], "   ")
    lines += ["", *f.get("text", "").splitlines(), ""]
    side = next((a.patched for a in view.arches if a.arch == found.arches[0] and a.patched), None)
    flavour = side.prop("flavor") if side else view.props.get("flavor", "")
    if flavour:
        lines += _fragments(layout, flavour, found.arches[0])
    return lines


def _failures(view: RunView) -> list[str]:
    """What failed besides findings: a patch that does not apply, a build, a boot, a suite."""
    out = []
    for a in view.arches:
        for side in a.sides:
            for c in side.cases:
                if c.status in ("fail", "error") and c.group not in ("finding",):
                    # compiler and git messages keep their lines
                    first, *rest = (c.message or c.status).splitlines() or [""]
                    out += [f"- {a.arch} {side.variant}: {c.test}: {first}", *(f"  {line}" for line in rest)]
    return out


def _ab(arch: ArchRun) -> list[str]:
    rows = arch.comparison
    if not rows:
        return []
    headers, cells = abtable.table(rows)
    how = abtable.method(rows)
    lines = _para(f"test_workqueue on {arch.arch}, baseline vs patched, up to {abtable.runs_each(rows)} run(s) "
                  "a side" + (f" ({how})" if how else "") + ":")
    if arch.note:
        lines += _para(f"[{arch.note}]")
    return lines + ["", text_table(headers, cells), "", *_para(abtable.resolution(rows) + "."), ""]


def _opening(view: RunView, new: list[Found]) -> list[str]:
    """The greeting, what was found in one sentence, what was tested, and the tags to fill."""
    arches = ", ".join(a.arch for a in view.arches) or "no arch"
    if view.status == "pass":
        said = f"wqci tested this series on {arches} against its base: no new findings, the verdict is pass."
    else:
        failures = _failures(view)
        what = " and ".join(part for part in (f"{len(new)} new finding(s)" if new else "",
                                              f"{len(failures)} failure(s)" if failures else "") if part) or "failures"
        said = f"wqci tested this series on {arches} against its base and found {what}; the verdict is {view.status}."
    lines = [_greeting(view), "", *_para(said), "", *_tested(view), ""]
    if view.status != "pass":
        lines += [*_para("If you fix this in a separate patch rather than in a new version of this one, please "
                         "add these tags:"), "", "Reported-by: <name and address of who reports it>",
                  "Closes: <link to this report>", ""]
    return lines


def _others(view: RunView) -> list[str]:
    """Failures besides findings, the unconfirmed findings and the pre-existing ones."""
    lines = []
    failures = _failures(view)
    if failures and view.status != "pass":
        lines += ["Failures:", *failures, ""]
    unconfirmed = _merged(view, "unconfirmed_findings")
    if unconfirmed:
        lines += _para("Seen on the patched kernel only, but too rarely to tell (not counted against the series):")
        for f in unconfirmed:
            lines += _item(f"{f.finding['title']} ({', '.join(f.arches)}: {f.finding.get('evidence_text', '')})")
        lines.append("")
    preexisting = _merged(view, "preexisting_findings")
    if preexisting:
        lines += [*_para("Also seen, and pre-existing (the baseline or its history shows them): "
                         f"{'; '.join(f.finding['title'] for f in preexisting)}."), ""]
    return lines


def reply(view: RunView, layout: config.Layout) -> str:
    head, notes = headers(view)
    new = _merged(view, "new_findings")
    body = [line for note in notes for line in _para(note)] + ([""] if notes else [])
    body += _opening(view, new)
    for n, found in enumerate(new, 1):
        body += _finding(view, n, found, layout)
    body += _others(view)
    for a in view.arches:
        body += _ab(a)
    run_id = view.props.get("run_id")
    body += ["-- ", f"wqci, {view.name}" + (f" (run {run_id})" if run_id else "")]
    return "\n".join(head + [""] + body) + "\n"


def write(view: RunView, path: Path, layout: config.Layout) -> Path:
    path.write_text(reply(view, layout))
    return path
