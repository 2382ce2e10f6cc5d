"""summary.md and report.html, read top-down, from a run directory's results.json.

First the verdict and its reasons. Then per arch: each new or unconfirmed finding
with its decoded report and the code of the series it touches, other failures,
the A/B table with its plot and resolution, and what was skipped and why. The
per-case detail comes last, folded, baseline and patched side by side per suite,
with the hand-off files. `wqci report RUN_DIR` and every `wqci run` call write(),
which also writes the hand-off files (reproduce.sh, reply.txt, kcidb.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from pipeline import config
from pipeline.analysis import latency, lockab
from pipeline.output import abtable, doc, handoff, reproduce
from pipeline.output.doc import Block, Heading, Image, Items, Para, Pre
from pipeline.output.rundir import ArchRun, CaseRow, RunView, Side, clip, read

PLOT = "throughput.png"
PLOT_SIZE = (700, 450)  # pixels: figsize 7x4.5 at 100 dpi
SUMMARY_WIDTH = 200  # characters of a reason or message on the verdict's lines

FINDING_SECTIONS = (("new_findings", "new findings (fail the run)", "new"),
                    ("unconfirmed_findings", "unconfirmed findings (patched kernel only, too rare to tell)",
                     "unconfirmed"))


def write(run_dir: Path, layout: config.Layout | None = None) -> tuple[Path, Path]:
    view = read(run_dir)
    handoff.write(run_dir, view, layout or config.Layout())
    plots = plot_throughput(view, run_dir)
    blocks = document(view, plots)
    md = run_dir / "summary.md"
    md.write_text(doc.markdown(blocks))
    page = run_dir / "report.html"
    page.write_text(doc.html_page(view.name, blocks))
    return md, page


def document(view: RunView, plots: Mapping[str, str]) -> list[Block]:
    blocks: list[Block] = [verdict_block(view)]
    for arch in view.arches:
        blocks.append(arch_block(view, arch, plots.get(arch.arch)))
    blocks += detail_blocks(view)
    blocks += handoff_blocks(view)
    return blocks


# ---------------------------------------------------------------- the verdict


def _what(view: RunView) -> str:
    tree = " ".join(filter(None, (view.prop("tree"), view.prop("base_version"))))
    parts = []
    if view.series:
        title = view.prop("series_title")
        parts.append(f"series {view.series}" + (f" \"{title}\"" if title else "")
                     + (f" ({len(view.patches)} patches)" if view.patches else ""))
    if tree:
        parts.append(f"on {tree}" + (f" at {view.prop('base_commit')[:12]}" if view.prop("base_commit") else ""))
    parts.append(", ".join(a.arch for a in view.arches) or "no arch reached")
    for key, what in (("flavor", "flavour"), ("topology", "topology")):
        if view.prop(key):
            parts.append(f"{what} {view.prop(key)}")
    if view.props.get("repeat"):
        confirm = sum(int(a.outcome.get("confirm", {}).get("rounds", 0) or 0) for a in view.arches)
        parts.append(f"--repeat {view.props['repeat']}" + (f" and {confirm} confirmation pair(s)" if confirm else ""))
    if view.data.get("finished"):
        parts.append(f"written {view.data['finished']}")
    return "; ".join(parts)


def _finding_of(arch: ArchRun, case: CaseRow) -> dict | None:
    fp = case.properties.get("fingerprint")
    keys = ("new_findings", "unconfirmed_findings", "preexisting_findings", "baseline_findings")
    return next((f for k in keys for f in arch.findings(k) if f["fingerprint"] == fp), None)


def _finding_line(f: Mapping) -> str:
    """A finding in one line: what the section below says in full, without the code it touches."""
    notes = [f.get("evidence_text", "")]
    if f.get("first_patch"):
        notes.append(f"first in {f['first_patch']}")
    text = "; ".join(n for n in notes if n)
    return f"{f.get('class', 'finding')} {f['title']}" + (f" ({text})" if text else "")


def _explain(view: RunView, lines: Sequence[str], template: str) -> list[str]:
    """The verdict's reasons (or warnings) as they read best: each matched to its case by
    the text the verdict quotes (`template`), a finding by its classification."""
    out = []
    for line in lines:
        hit = None
        for arch in view.arches:
            for side in (*arch.sides, *arch.more):
                for case in side.cases:
                    if line == template.format(suite=side.name, name=case.name, message=case.message):
                        hit = (arch, side, case)
        if hit is None:
            out.append(clip(line, SUMMARY_WIDTH))
            continue
        arch, side, case = hit
        finding = _finding_of(arch, case) if case.group == "finding" else None
        text = _finding_line(finding) if finding else f"{case.test}: {case.message or case.status}"
        out.append(f"{arch.arch} {side.variant}: {clip(text, SUMMARY_WIDTH)}")
    return out


def _arch_summary(arch: ArchRun) -> str:
    counts = [(len(arch.findings(k)), what) for k, what in (
        ("new_findings", "new"), ("unconfirmed_findings", "unconfirmed"), ("preexisting_findings", "pre-existing"),
        ("baseline_findings", "of the baseline"))]
    why = _not_booted(arch)
    if why:
        return f"{arch.arch}: not booted ({why})"
    found = ", ".join(f"{n} {what}" for n, what in counts if n) or "none"
    rows = arch.comparison
    verdicts = sorted({str(r.get("verdict")) for r in rows})
    ab = f"A/B on {len(rows)} scope(s): {', '.join(verdicts)}" if rows else "no A/B table"
    return f"{arch.arch}: findings: {found}; {ab}"


def verdict_block(view: RunView) -> Block:
    v = view.verdict
    blocks: list[Block] = [Heading(1, f"{view.name}: {v['status'].upper()}"), Para(_what(view), cls="what")]
    reasons = _explain(view, v.get("reasons", []), "{suite}: {name}: {message}")
    if reasons:
        blocks += [Para(f"{len(reasons)} reason(s):", strong=True), Items(tuple(reasons), cls="reasons")]
    else:
        blocks.append(Para("PASS: no failing stage, suite or A/B scope, and no new finding.", strong=True))
    warnings = _explain(view, v.get("warnings", []), "{suite}: {message}")
    if warnings:
        blocks += [Para(f"{len(warnings)} warning(s), not counted against the series:", strong=True),
                   Items(tuple(warnings), cls="warnings")]
    blocks.append(Para(" · ".join(_arch_summary(a) for a in view.arches), cls="arches"))
    return doc.group(blocks, id="verdict", cls=v["status"], tag="header")


# ---------------------------------------------------------------- per arch


def _kernels(arch: ArchRun) -> str:
    parts = []
    for side in arch.sides:
        parts.append(f"{side.variant} {side.prop('commit')[:12] or '(not built)'}")
    side = arch.patched or arch.baseline
    text = " vs ".join(parts)
    if side is not None:
        extra = [f"flavour {side.prop('flavor')}" if side.prop("flavor") else "",
                 f".config {side.prop('config_hash')}" if side.prop("config_hash") else "",
                 side.prop("toolchain"), f"topology {side.prop('topology')}" if side.prop("topology") else "",
                 f"accelerator {side.prop('accelerator').split(' ', 1)[0]}" if side.prop("accelerator") else ""]
        text += "; " + "; ".join(e for e in extra if e)
    return text


def finding_block(f: Mapping, cls: str) -> Block:
    """A finding: its title, how it was judged and what of the series it touches, its report."""
    about = [f"{f.get('class', cls)}: {f.get('evidence_text', '')}".rstrip(": "),
             f"seen {f.get('count', 1)} time(s) in {f.get('where', '?')}"]
    if f.get("first_patch"):
        about.append(f"first appears with {f['first_patch']}")
    about.append(f.get("touches") or "touches no function the series changes")
    return doc.group([Heading(4, f["title"]), Para("; ".join(about)), Pre(f.get("text", ""), cls="report")],
                     cls=f"finding {cls}", id=f"finding-{f['fingerprint']}", tag="article")


def _failures(arch: ArchRun) -> list[str]:
    out = []
    for side in (*arch.sides, *arch.more):
        for c in side.cases:
            if c.status in ("fail", "error") and c.group != "finding":
                out.append(f"{side.variant}: {c.test}" + (f" #{c.run}" if c.run else "") + f": {c.message}")
    return out


def ab_blocks(arch: ArchRun, plot: str | None) -> list[Block]:
    rows = arch.comparison
    if not rows:
        return []
    headers, cells = abtable.table(rows)
    blocks: list[Block] = [Heading(3, "A/B test_workqueue"),
                           Para(f"baseline vs patched, up to {abtable.runs_each(rows)} run(s) a side"
                                + (f"; {abtable.method(rows)}" if abtable.method(rows) else ""))]
    if arch.note:
        blocks.append(Para(arch.note, cls="note", strong=True))
    blocks += [doc.table(headers, cells, cls="ab"), Para(abtable.resolution(rows), cls="resolution")]
    if plot:
        blocks.append(Image(plot, f"{arch.arch}: items/s per scope, baseline and patched", *PLOT_SIZE))
    return blocks + lock_blocks(arch) + latency_blocks(arch)


def lock_blocks(arch: ArchRun) -> list[Block]:
    """The lock_stat A/B (analysis/lockab.py): the mechanism behind the throughput."""
    rows = [lockab.LockComparison(**{k: r[k] for k in lockab.LockComparison.__dataclass_fields__ if k in r})
            for r in arch.outcome.get("lock_comparison", [])]
    if not rows:
        return []
    per = "each scope's own module load" if any(r.scope for r in rows) else "whole test_workqueue runs"
    return [Heading(3, "A/B /proc/lock_stat"),
            Para(f"hold time and contentions per acquisition over {per}, baseline vs patched; "
                 "Welch t on the logs, Holm over the scopes of each class and metric; it informs, it never fails a run"),
            doc.table(lockab.TABLE_HEADERS, lockab.table_rows(rows), cls="ab")]


def latency_blocks(arch: ArchRun) -> list[Block]:
    """The enqueue-latency A/B (analysis/latency.py), with the seed's latency claim beside it."""
    rows = [latency.LatencyComparison(**{k: r[k] for k in latency.LatencyComparison.__dataclass_fields__ if k in r})
            for r in arch.outcome.get("latency_comparison", [])]
    if not rows:
        return []
    blocks: list[Block] = [
        Heading(3, "A/B enqueue latency"),
        Para("test_workqueue's queue_work() latency percentiles per scope, baseline vs patched; Welch t on the "
             "logs, Holm over the scopes of each percentile; the seed's claimed change beside the scopes it is about; it informs, "
             "it never fails a run"),
        doc.table(latency.TABLE_HEADERS, latency.table_rows(rows), cls="ab")]
    unmeasured = arch.outcome.get("latency_unmeasured", [])
    if unmeasured:
        blocks.append(Items(tuple(f"the seed's {line}" for line in unmeasured)))
    return blocks


def _skipped(view: RunView, arch: ArchRun) -> list[str]:
    """Skipped cases, one line per reason with where it happened; then what the run left out."""
    by_reason: dict[tuple[str, str], list[str]] = {}
    for side in (*arch.sides, *arch.more):
        for c in side.cases:
            if c.status == "skip":
                where = side.variant + (f" #{c.run}" if c.run else "")
                by_reason.setdefault((c.test, c.message or "skipped"), []).append(where)
    out = [f"{test} ({', '.join(where)}): {why}" for (test, why), where in by_reason.items()]
    for item in view.data.get("skipped", []):  # what the run chose not to do, when results.json says
        if isinstance(item, Mapping) and item.get("arch", arch.arch) == arch.arch:
            out.append(f"{item.get('what', '?')}: {item.get('why', '')}")
    why = _not_booted(arch)
    if why:
        out.append(f"boots, suites and the A/B table: {why}")
    elif not arch.comparison:
        out.append("A/B table: no test_workqueue results on both kernels")
    if arch.patched is not None and not arch.patched.cases:
        out.append(f"{arch.patched.variant}: nothing ran (the run stopped before this kernel)")
    return out


def _not_booted(arch: ArchRun) -> str:
    """Why no guest booted on this arch ("" when one did)."""
    if any(c.group == "boot" for side in arch.sides for c in side.cases):
        return ""
    for side in arch.sides:
        failed = next((c for c in side.cases if c.group in ("apply", "build") and c.status in ("fail", "error")), None)
        if failed is not None:
            return f"the {side.variant} kernel failed at {failed.test}"
    return "the run stopped before the first boot"


def _no_new(arch: ArchRun) -> str:
    why = _not_booted(arch)
    return f"No kernel was booted on this arch ({why}), so nothing was triaged." if why else \
        "No new findings on this arch."


def arch_block(view: RunView, arch: ArchRun, plot: str | None) -> Block:
    blocks: list[Block] = [Heading(2, arch.arch, id=f"arch-{arch.arch}")]
    for key, heading, cls in FINDING_SECTIONS:
        found = arch.findings(key)
        if found:
            blocks.append(Heading(3, f"{heading} ({len(found)})"))
            blocks += [finding_block(f, cls) for f in found]
    if not arch.findings("new_findings"):
        blocks.append(Para(_no_new(arch)))
    blocks.append(Para(_kernels(arch), cls="kernels"))
    failures = _failures(arch)
    if failures:
        blocks += [Heading(3, f"other failures ({len(failures)})"), Items(tuple(failures), cls="failures")]
    blocks += ab_blocks(arch, plot)
    skipped = _skipped(view, arch)
    if skipped:
        blocks += [Heading(3, f"skipped ({len(skipped)})"), Items(tuple(skipped), cls="skipped")]
    return doc.group(blocks, cls="arch", id=f"section-{arch.arch}")


# ---------------------------------------------------------------- detail, folded


def _cell(case: CaseRow | None) -> str:
    if case is None:
        return ""
    m = case.metrics
    if "items_per_sec" in m:
        detail = f"{m['items_per_sec']:,.0f} items/s" + (f", p50 {m['p50_ns']:,.0f} ns" if "p50_ns" in m else "")
    elif m:
        detail = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in m.items())
    else:
        detail = ""
    return " ".join(part for part in (case.status, detail, case.message) if part)


def _pairs(arch: ArchRun) -> list[tuple[Side | None, Side | None]]:
    pairs = [(arch.baseline, arch.patched)]
    more = list(arch.more)
    while more:
        a = more.pop(0)
        b = more.pop(0) if more and not more[0].baseline and a.baseline else None
        pairs.append((a, b) if a.baseline else (None, a))
    return pairs


#: stages of a kernel, shown together in one table of the detail
STAGE_GROUPS = ("tree", "apply", "build", "boot", "interrupted")


def side_by_side(base: Side | None, patched: Side | None) -> list[tuple[str, list[tuple[str, ...]]]]:
    """Per suite (the stages together), its rows: case, run, the baseline's cell, the patched one's."""
    groups: dict[str, dict[tuple[str, tuple[int, ...]], list[CaseRow | None]]] = {}
    for i, side in enumerate((base, patched)):
        for c in side.cases if side else ():
            if c.group == "finding":  # shown with their classification above and below
                continue
            stage = c.group in STAGE_GROUPS
            label = c.test if stage else (c.label or c.group)
            groups.setdefault("stages" if stage else c.group, {}).setdefault((label, c.runs), [None, None])[i] = c
    return [(group, [(label, "#".join(map(str, runs)), _cell(a), _cell(b))
                     for (label, runs), (a, b) in rows.items()]) for group, rows in groups.items()]


def _counts(rows: Sequence[tuple[str, ...]], column: int) -> str:
    statuses = [r[column].split(" ", 1)[0] for r in rows if r[column]]
    return ", ".join(f"{statuses.count(s)} {s}" for s in ("fail", "error", "pass", "skip") if statuses.count(s)) \
        or "none"


def detail_blocks(view: RunView) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Details", id="details")]
    for arch in view.arches:
        for base, patched in _pairs(arch):
            names = (base.variant if base else "baseline", patched.variant if patched else view.series or "patched")
            flavour = (patched or base).prop("flavor") if (patched or base) else ""
            for group, rows in side_by_side(base, patched):
                summary = (f"{arch.arch}{' ' + flavour if flavour else ''} {group}: {names[0]} {_counts(rows, 2)}; "
                           f"{names[1]} {_counts(rows, 3)}")
                blocks.append(doc.group([doc.table(("case", "run", *names), rows)], summary=summary,
                                        cls="detail"))
        for key, what in (("preexisting_findings", "pre-existing findings of the patched kernel"),
                          ("baseline_findings", "findings of the baseline kernel (pre-existing)")):
            found = arch.findings(key)
            if found:
                blocks.append(doc.group([finding_block(f, "preexisting") for f in found],
                                        summary=f"{arch.arch}: {what} ({len(found)})"))
    provenance = [(k, str(v)) for k, v in view.props.items()]
    for arch in view.arches:
        for side in (*arch.sides, *arch.more):
            provenance += [(f"{side.name}: {k}", str(v)) for k, v in side.properties.items()]
    if provenance:
        blocks.append(doc.group([doc.table(("property", "value"), provenance)], summary="provenance (properties)"))
    return blocks


def handoff_blocks(view: RunView) -> list[Block]:
    cmds = reproduce.commands(view)
    lines = [" ".join(c.argv) for c in cmds]
    return [Heading(2, "Reproduce and hand off", id="handoff"),
            Items((f"{handoff.REPRODUCE}: rebuilds and boots the same kernels with the same suites and parameters "
                   "(sh reproduce.sh, from any directory)",
                   f"{handoff.REPLY}: a plain-text reply to the series' thread",
                   f"{handoff.KCIDB}: checkouts, builds, tests and issues in the KCIDB schema",
                   "junit.xml and results.json: every case, with its properties")),
            Pre("\n".join(lines + [" ".join(reproduce.run_command(view))]), cls="commands")]


# ---------------------------------------------------------------- the plot


def plot_throughput(view: RunView, run_dir: Path) -> dict[str, str]:
    """Per arch, median items/s per scope, baseline against patched, with the ratio's 95% CI:
    throughput.png for one arch, throughput-<arch>.png each for several."""
    arches = [a for a in view.arches if a.comparison]
    if not arches:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    for arch in arches:
        name = PLOT if len(arches) == 1 else f"throughput-{arch.arch}.png"
        fig, ax = plt.subplots(figsize=(PLOT_SIZE[0] / 100, PLOT_SIZE[1] / 100))
        _bars(ax, arch)
        fig.tight_layout()
        fig.savefig(run_dir / name, dpi=100)
        plt.close(fig)
        out[arch.arch] = name
    return out


def _bars(ax, arch: ArchRun) -> None:
    rows = arch.comparison
    xs = range(len(rows))
    base = [float(r.get("baseline") or 0) for r in rows]
    patched = [float(r.get("patched") or 0) for r in rows]

    def bound(r: Mapping, key: str, p: float) -> float:
        value = r.get(key)
        return abs(float(value) * float(r.get("baseline") or 0) - p) if isinstance(value, (int, float)) else 0.0

    # the ratio's CI, drawn on the patched bar
    err = [[bound(r, "ci_low", p) for r, p in zip(rows, patched)], [bound(r, "ci_high", p) for r, p in zip(rows, patched)]]
    ax.bar([x - 0.2 for x in xs], base, 0.4, label="baseline")
    ax.bar([x + 0.2 for x in xs], patched, 0.4, yerr=err, capsize=3, label="patched (95% CI)")
    ax.set_xticks(list(xs), [str(r.get("scope", "")) for r in rows])
    ax.set_ylabel("items/s")
    ax.set_title(f"{arch.arch}: test_workqueue" + (f"\n{arch.note}" if arch.note else ""), fontsize=9)
    ax.legend()
