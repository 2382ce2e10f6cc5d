"""The A/B table of an arch, from the comparison rows results.json holds.

Rows written by this wqci are `compare.ScopeComparison.to_dict()`: they are turned
back into ScopeComparison and shown with `compare.table_rows`, the table the
terminal prints. Rows of an older results.json lack fields of the current
dataclass; they are shown from the fields they have, in the same column order.
Columns that are empty in every row (the seed's numbers, for a series without
published figures) are left out.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

from pipeline.analysis import compare

Row = Mapping[str, object]


def _current(rows: Sequence[Row]) -> list[compare.ScopeComparison] | None:
    fields = dataclasses.fields(compare.ScopeComparison)
    required = {f.name for f in fields if f.default is dataclasses.MISSING}
    if not rows or not all(required <= set(r) for r in rows):
        return None
    names = {f.name for f in fields}
    return [compare.ScopeComparison(**{k: v for k, v in r.items() if k in names}) for r in rows]


def _num(value: object, fmt: str) -> str:
    if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, fmt)


def _older(row: Row) -> tuple[str, ...]:
    """A row of an older results.json: the median-and-bootstrap A/B."""
    low, high = row.get("ci_low"), row.get("ci_high")
    ci = (f"[{(low - 1) * 100:+.1f}%, {(high - 1) * 100:+.1f}%]"
          if isinstance(low, (int, float)) and isinstance(high, (int, float)) else "n/a")
    a, b = row.get("baseline_p50"), row.get("patched_p50")
    p50 = f"{a:.0f} -> {b:.0f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) else ""
    gain = row.get("gain_percent")
    if gain is None and isinstance(row.get("ratio"), (int, float)):
        gain = (float(row["ratio"]) - 1) * 100
    return (str(row.get("scope", "")), _num(row.get("baseline"), ",.0f"), _num(row.get("patched"), ",.0f"),
            _num(gain, "+.1f") + ("%" if isinstance(gain, (int, float)) else ""), ci, p50,
            _num(row.get("p_value"), ".3f"), str(row.get("statement") or row.get("verdict") or ""))


OLDER_HEADERS = ("scope", "baseline items/s", "patched items/s", "gain", "95% CI", "p50 ns", "p (MWU)", "verdict")


def table(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the rows' table, as the terminal shows it."""
    current = _current(rows)
    if current is not None:
        headers, cells = list(compare.TABLE_HEADERS), [list(r) for r in compare.table_rows(current)]
    else:
        headers, cells = list(OLDER_HEADERS), [list(_older(r)) for r in rows]
    keep = [i for i in range(len(headers)) if any(row[i] for row in cells)]
    return [headers[i] for i in keep], [[row[i] for i in keep] for row in cells]


def runs_each(rows: Sequence[Row]) -> int:
    return max((max(int(r.get("n_baseline", 0) or 0), int(r.get("n_patched", 0) or 0)) for r in rows), default=0)


def method(rows: Sequence[Row]) -> str:
    """How the rows were computed, when they say."""
    methods = sorted({str(r["method"]) for r in rows if r.get("method")})
    return "; ".join(methods)


def resolution(rows: Sequence[Row]) -> str:
    """What size of change this A/B could tell from noise: the detectable change when the
    rows carry it, else the half-width of the ratio's 95% interval."""
    n = runs_each(rows)
    detectable = [float(r["detectable"]) * 100 for r in rows if isinstance(r.get("detectable"), (int, float))]
    if detectable:
        low, high = min(detectable), max(detectable)
        if low > 100:
            return (f"resolution: none; with {n} run(s) a side the runs are too noisy to tell even a doubling "
                    "or halving from noise")
        shown = "over ±100%" if high > 100 else f"±{high:.1f}%"
        span = f"±{low:.1f}%" + (f" to {shown} depending on the scope" if round(low, 1) != round(high, 1) else "")
        return f"resolution: with {n} run(s) a side this A/B could detect a change of {span}"
    widths = [(float(r["ci_high"]) - float(r["ci_low"])) * 50 for r in rows
              if isinstance(r.get("ci_low"), (int, float)) and isinstance(r.get("ci_high"), (int, float))]
    if not widths:
        return (f"resolution: none; with {n} run(s) a side there is no confidence interval, "
                "so no change can be told from noise (use --repeat 3 or more)")
    span = f"±{min(widths):.0f}%" + (f" to ±{max(widths):.0f}%" if round(max(widths)) != round(min(widths)) else "")
    return (f"resolution: the 95% confidence intervals are {span} wide, with {n} run(s) a side; "
            "smaller changes cannot be told from noise")
