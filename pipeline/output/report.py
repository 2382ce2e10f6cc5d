"""summary.md, report.html and the throughput plot, from a run directory's results.json.

`wqci report RUN_DIR` and every `wqci run` call write(); the report is built
from results.json only, so it can be regenerated at any time.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from pipeline.analysis import compare
from pipeline.model.errors import UsageError

PLOT = "throughput.png"


def load(run_dir: Path) -> dict:
    path = run_dir / "results.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(detail=f"{path}: no results.json here (is this a wqci run directory?)") from None
    except ValueError as exc:
        raise UsageError(detail=f"{path}: not valid JSON: {exc}") from None


def write(run_dir: Path) -> tuple[Path, Path]:
    data = load(run_dir)
    plot = plot_throughput(data, run_dir / PLOT)
    md = run_dir / "summary.md"
    md.write_text(markdown(data, plot))
    page = run_dir / "report.html"
    page.write_text(to_html(data, plot))
    return md, page


def stage_rows(data: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for suite in data.get("suites", []):
        for case in suite["cases"]:
            if case["name"].startswith(("finding.", "test_workqueue.")) and "#" not in case["name"]:
                continue
            rows.append((suite["name"], case["name"], case["status"], case["message"][:100]))
    return rows


def commands(data: dict) -> list[str]:
    """The commands that reproduce each step."""
    props = data.get("properties", {})
    series = props.get("series", "SERIES")
    arches = sorted({a["arch"] for a in data.get("arches", [])}) or ["x86_64"]
    out = ["wqci tree fetch", f"wqci apply --series {series}"]
    for arch in arches:
        out += [f"wqci build --base --arch {arch}", f"wqci build --series {series} --arch {arch}",
                f"wqci test --base --arch {arch}", f"wqci test --series {series} --arch {arch}"]
    out.append(f"wqci run --series {series} --arch {','.join(arches)} --repeat {props.get('repeat', '1')}")
    return out


def _table(headers: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _comparisons(arch: dict) -> list[compare.ScopeComparison]:
    keep = compare.ScopeComparison.__dataclass_fields__
    return [compare.ScopeComparison(**{k: v for k, v in row.items() if k in keep}) for row in arch["comparison"]]


FINDING_SECTIONS = (("new_findings", "new findings (fail the run)"),
                    ("unconfirmed_findings", "unconfirmed findings (patched kernel only, too rare to tell)"),
                    ("preexisting_findings", "pre-existing findings of the patched kernel"),
                    ("baseline_findings", "findings of the baseline kernel (pre-existing)"))


def verdict_of(data: dict) -> dict:
    """The verdict results.json states (older files: their status)."""
    return data.get("verdict") or {"status": data["status"], "reasons": [], "warnings": []}


def finding_line(f: dict) -> str:
    extra = [f.get("evidence_text", "")] + [f"first in {f['first_patch']}" if f.get("first_patch") else "",
                                             f.get("touches", "")]
    notes = "; ".join(e for e in extra if e)
    return f"{f['kind']}: {f['title']} [{f['fingerprint']}] x{f['count']} in {f['where']}" + (
        f" ({notes})" if notes else "")


def markdown(data: dict, plot: Path | None) -> str:
    verdict = verdict_of(data)
    out = [f"# {data['name']}: {verdict['status'].upper()}", ""]
    counts = data.get("counts", {})
    out += [", ".join(f"{v} {k}" for k, v in counts.items()), ""]
    out += [f"- fails: {r}" for r in verdict["reasons"]] + [f"- warning: {w}" for w in verdict["warnings"]] + [""]
    out += ["## Stages", "", _table(("suite", "case", "status", "message"), stage_rows(data)), ""]
    for arch in data.get("arches", []):
        out += [f"## {arch['arch']}", ""]
        if arch.get("note"):
            out += [f"**{arch['note']}**", ""]
        if arch["comparison"]:
            out += ["### A/B test_workqueue", "",
                    _table(compare.TABLE_HEADERS, compare.table_rows(_comparisons(arch))), ""]
        for key, heading in FINDING_SECTIONS:
            out += [f"### {heading} ({len(arch.get(key, []))})", ""]
            for f in arch.get(key, []):
                out += [f"- {finding_line(f)}", "", "```", f["text"][:6000], "```", ""]
    if plot is not None:
        out += [f"![throughput]({plot.name})", ""]
    out += ["## Reproduce", "", "```sh", *commands(data), "```", ""]
    return "\n".join(out)


def to_html(data: dict, plot: Path | None) -> str:
    def table(headers, rows) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td class='{html.escape(str(c))}'>{html.escape(str(c))}</td>"
                                        for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    verdict = verdict_of(data)
    parts = [f"<h1>{html.escape(data['name'])}: {verdict['status'].upper()}</h1>", "<ul>"]
    parts += [f"<li class='fail'>fails: {html.escape(r)}</li>" for r in verdict["reasons"]]
    parts += [f"<li class='warn'>warning: {html.escape(w)}</li>" for w in verdict["warnings"]]
    parts += ["</ul>", "<h2>Stages</h2>", table(("suite", "case", "status", "message"), stage_rows(data))]
    for arch in data.get("arches", []):
        parts.append(f"<h2>{html.escape(arch['arch'])}</h2>")
        if arch.get("note"):
            parts.append(f"<p class='note'><b>{html.escape(arch['note'])}</b></p>")
        if arch["comparison"]:
            parts += ["<h3>A/B test_workqueue</h3>",
                      table(compare.TABLE_HEADERS, compare.table_rows(_comparisons(arch)))]
        for key, heading in FINDING_SECTIONS:
            parts.append(f"<h3>{html.escape(heading)} ({len(arch.get(key, []))})</h3>")
            for f in arch.get(key, []):
                parts.append(f"<details><summary>{html.escape(finding_line(f))}</summary>"
                             f"<pre>{html.escape(f['text'])}</pre></details>")
    if plot is not None:
        parts.append(f"<h2>Throughput</h2><img src='{plot.name}' alt='per-scope throughput'>")
    parts += ["<h2>Reproduce</h2><pre>" + html.escape("\n".join(commands(data))) + "</pre>"]
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:2px 6px;font-size:90%}td.fail,td.error{background:#fcc}td.pass{background:#cfc}"
             "pre{background:#f4f4f4;padding:6px;overflow:auto}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(data['name'])}</title>" \
           f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n"


def plot_throughput(data: dict, path: Path) -> Path | None:
    """Per-scope median items/s, baseline against patched, with the ratio's 95% CI."""
    arches = [a for a in data.get("arches", []) if a["comparison"]]
    if not arches:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(arches), figsize=(7 * len(arches), 4.5), squeeze=False)
    for ax, arch in zip(axes[0], arches):
        rows = arch["comparison"]
        xs = range(len(rows))
        base = [r["baseline"] for r in rows]
        patched = [r["patched"] for r in rows]
        # CI of the ratio, drawn on the patched bar
        err = [[p - (r["ci_low"] * r["baseline"]) if r["ci_low"] else 0 for p, r in zip(patched, rows)],
               [(r["ci_high"] * r["baseline"]) - p if r["ci_high"] else 0 for p, r in zip(patched, rows)]]
        ax.bar([x - 0.2 for x in xs], base, 0.4, label="baseline")
        ax.bar([x + 0.2 for x in xs], patched, 0.4, yerr=err, capsize=3, label="patched (95% CI)")
        ax.set_xticks(list(xs), [r["scope"] for r in rows])
        ax.set_ylabel("items/s (median)")
        title = f"{arch['arch']}: test_workqueue"
        ax.set_title(title + ("\n" + arch["note"] if arch.get("note") else ""), fontsize=9)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
