"""How many interleaved baseline/patched pairs an A/B needs: `--repeat N` or `--repeat auto`.

`auto` adds pairs until every scope's 95% interval of the ratio is within ±target
(abstats.half_width), or another pair would not fit in the time budget, or the
pair limit is reached. At least 2 pairs are always run (no interval without 2 runs
a side), and a third when it fits in the budget: with two runs a side the interval
rests on one or two degrees of freedom, so a narrow one is mostly luck.

Stopping on a narrow interval favours runs whose spread came out small by chance,
which costs some coverage. Because the rule waits for all six scopes, the 95%
intervals at the stop still held the true ratio in 95-97% of simulated runs (1-3%
noise, stops after 3 to 19 pairs; tests/unit/test_ab_calibration.py). A rule over a
single scope would drop to about 92%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from pipeline.analysis import abstats

DEFAULT_TARGET = 0.03  # ±3%
DEFAULT_BUDGET = 300.0  # seconds of A/B pairs
DEFAULT_MAX_PAIRS = 20
MIN_PAIRS = 2
CHEAP_PAIRS = 3  # the third pair is run whenever it fits in the budget

# why sampling stopped (the record's "stopped")
FIXED = "fixed"
TARGET = "target"
BUDGET = "budget"
MAX_PAIRS = "max-pairs"
NO_DATA = "no-data"
INTERRUPTED = "interrupted"

Samples = Mapping[str, tuple[Sequence[float], Sequence[float]]]  # scope -> (baseline, patched)


@dataclass(frozen=True)
class Plan:
    """`pairs` for `--repeat N`, None for auto; the rest only matters for auto."""

    pairs: int | None = None
    target: float = DEFAULT_TARGET  # relative half-width of the 95% interval
    budget: float = DEFAULT_BUDGET  # seconds
    max_pairs: int = DEFAULT_MAX_PAIRS

    @property
    def auto(self) -> bool:
        return self.pairs is None


@dataclass(frozen=True)
class Decision:
    more: bool
    why: str  # FIXED, TARGET, ... when it stops; "" while it goes on
    detail: str  # one sentence for people
    half_widths: dict[str, float] = field(default_factory=dict)  # scope -> relative, inf below 2 runs a side


def half_widths(samples: Samples) -> dict[str, float]:
    return {scope: abstats.half_width(a, b) for scope, (a, b) in samples.items()}


def decide(plan: Plan, samples: Samples, pairs: int, elapsed: float, last_pair: float) -> Decision:
    """Whether to run another pair, after `pairs` pairs that took `elapsed` seconds of the
    budget, the last of them `last_pair` seconds (the estimate for the next one)."""
    widths = half_widths(samples)
    if not plan.auto:
        if pairs < plan.pairs:
            return Decision(True, "", f"pair {pairs + 1} of {plan.pairs}", widths)
        return Decision(False, FIXED, f"{pairs} pair(s) as asked (--repeat {plan.pairs})", widths)
    if pairs < MIN_PAIRS:
        return Decision(True, "", f"pair {pairs + 1}: at least {MIN_PAIRS} are needed for an interval", widths)
    if not widths:
        return Decision(False, NO_DATA, f"no scope has results on both sides after {pairs} pair(s)", widths)
    if pairs >= plan.max_pairs:
        return Decision(False, MAX_PAIRS, f"the limit of {plan.max_pairs} pairs", widths)
    fits = elapsed + last_pair <= plan.budget
    widest = max(widths.values())
    if widest <= plan.target and not (pairs < CHEAP_PAIRS and fits):
        return Decision(False, TARGET, f"every scope within ±{plan.target * 100:g}% "
                        f"(widest {_pct(widest)}) after {pairs} pairs", widths)
    if not fits:
        return Decision(False, BUDGET, f"another pair (~{last_pair:.0f} s) would pass the {plan.budget:g} s budget "
                        f"({elapsed:.0f} s used; widest {_pct(widest)})", widths)
    return Decision(True, "", f"pair {pairs + 1}: widest {_pct(widest)}, target ±{plan.target * 100:g}%", widths)


def _pct(width: float) -> str:
    """A half-width for people: "±4.2%", "over ±100%", or "±?" before there is one."""
    if math.isinf(width):
        return "±?"
    return "over ±100%" if width > 1.0 else f"±{width * 100:.1f}%"


def record(plan: Plan, decision: Decision, pairs: int, seconds: float) -> dict:
    """What results.json keeps of the sampling (JSON: no inf, percentages rounded)."""
    return {
        "mode": "auto" if plan.auto else "fixed", "pairs": pairs, "stopped": decision.why or INTERRUPTED,
        "detail": decision.detail, "seconds": round(seconds, 1),
        "target_percent": plan.target * 100 if plan.auto else None,
        "budget_seconds": plan.budget if plan.auto else None,
        "max_pairs": plan.max_pairs if plan.auto else plan.pairs,
        "half_width_percent": {s: (None if math.isinf(w) else round(w * 100, 2))
                               for s, w in decision.half_widths.items()},
    }


def describe(rec: Mapping[str, object]) -> str:
    """One line for the terminal: '6 pair(s) in 4.1 min (auto): every scope within ±3% ...'."""
    how = "auto" if rec.get("mode") == "auto" else "fixed"
    minutes = float(rec.get("seconds") or 0) / 60
    return f"{rec.get('pairs')} pair(s) in {minutes:.1f} min ({how}); stopped: {rec.get('detail')}"
