"""The enqueue-latency A/B of test_workqueue: per scope, the queue_work() latency
percentiles it prints (p50, p95), baseline against patched, with the seed's own
latency claim beside them.

test_workqueue prints p50, p90 and p95 of each scope; a claim about another
percentile (seed 003's p99) is reported as not measurable by this benchmark, not
compared with a neighbour. The seed's claim is in absolute nanoseconds on its own
machine; what carries over to another machine is the relative change, so that is
what is compared: "p50 ~2875 -> ~2625 ns" is a change of -8.7%, checked against our
95% interval of the patched/baseline ratio with seedclaims.verdict, on the scopes
the claim is about ("the contended scopes": those the series' throughput claim calls
contended).

The statistics are the throughput A/B's (abstats.py: Welch's t on the logs, Holm
within each percentile over the scopes). Latency informs; it never fails a run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from pipeline import config
from pipeline.analysis import abstats, seedclaims
from pipeline.analysis.compare import SCOPES

#: the percentiles test_workqueue prints, as metric names of its scope cases
MEASURED = {"p50": "p50_ns", "p95": "p95_ns"}
PRINTED = "test_workqueue prints p50, p90 and p95"
#: "p50 ~2875 -> ~2625 ns" (also with a unicode arrow or "to")
_CHANGE = re.compile(r"\b(p\d+)\s*~?\s*(\d+(?:\.\d+)?)\s*(?:->|\u2192|to)\s*~?\s*(\d+(?:\.\d+)?)\s*ns\b")
_LATENCY = re.compile(r"latenc", re.I)
_CONTENDED = re.compile(r"(?<!un)contended", re.I)


@dataclass(frozen=True)
class LatencyClaim:
    percentile: str  # "p50"
    before_ns: float
    after_ns: float
    scopes: tuple[str, ...]  # the scopes it is about

    @property
    def change(self) -> float:
        """The claimed change in percent."""
        return (self.after_ns / self.before_ns - 1) * 100


@dataclass(frozen=True)
class LatencyComparison(abstats.InformativeRow):
    scope: str = ""
    percentile: str = ""  # "p50"
    seed_change: float | None = None  # the seed's claimed change, percent
    seed_verdict: str | None = None


def published(claims: Sequence[config.Claim]) -> list[LatencyClaim]:
    """The latency changes a series claims for test_workqueue. A claim that names scopes is
    about those; one "on the contended scopes" is about the scopes the series calls
    contended (contended_scopes)."""
    contended = contended_scopes(claims)
    out = []
    for claim in claims:
        if seedclaims.SUITE not in claim.measure or not _LATENCY.search(claim.claim + claim.measure):
            continue
        named = tuple(s for s in SCOPES if re.search(rf"\b{s}\b", claim.claim))
        for percentile, before, after in _CHANGE.findall(claim.claim):
            out.append(LatencyClaim(percentile, float(before), float(after), named or contended))
    return out


def contended_scopes(claims: Sequence[config.Claim]) -> tuple[str, ...]:
    """The scopes named by a test_workqueue claim about "contended" scopes (seed 003's
    throughput claim lists them); else those whose published gain is 1% or more. Fixed
    by the claims, whatever resolution the A/B has."""
    named = [s for c in claims if seedclaims.SUITE in c.measure and _CONTENDED.search(c.claim)
             for s in SCOPES if re.search(rf"\b{s}\b", c.claim)]
    if named:
        return tuple(s for s in SCOPES if s in named)
    return tuple(s for s, gain in seedclaims.published(claims).items() if abs(gain) >= 1.0)


def compare(baseline: Mapping[str, Sequence[Mapping[str, float]]], patched: Mapping[str, Sequence[Mapping[str, float]]],
            claims: Sequence[LatencyClaim] = (), floor: float = 0.03) -> list[LatencyComparison]:
    """One row per scope and measured percentile both sides have, in scope order; the
    seed's claimed change beside the rows it is about."""
    values: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for scope in SCOPES:
        for percentile, metric in MEASURED.items():
            a = [m[metric] for m in baseline.get(scope, ()) if m.get(metric, 0) > 0]
            b = [m[metric] for m in patched.get(scope, ()) if m.get(metric, 0) > 0]
            if a and b:
                values[(scope, percentile)] = (a, b)
    seed = {(s, c.percentile): c.change for c in claims for s in c.scopes}
    rows = []
    # Holm within each percentile, over the scopes
    for (scope, percentile), (fit, p) in abstats.fit_all(values, family=lambda k: k[1]).items():
        fields = abstats.row_fields(*values[scope, percentile], fit, p)
        claimed = seed.get((scope, percentile))
        rows.append(LatencyComparison(
            **fields, statement=abstats.reading(fit, p, "lower", "higher"), scope=scope, percentile=percentile,
            seed_change=claimed, seed_verdict=None if claimed is None else seedclaims.verdict(
                claimed, fields["ci_low"], fields["ci_high"], float(fit.half_width) if fit else None, floor)))
    return rows


def unmeasured(claims: Sequence[LatencyClaim]) -> list[str]:
    """What the seed claims that this benchmark cannot measure, one line each."""
    return [f"{c.percentile} {c.before_ns:g} -> {c.after_ns:g} ns ({c.change:+.1f}%): not measured, {PRINTED}"
            for c in claims if c.percentile not in MEASURED]


TABLE_HEADERS = ("scope", "latency", "baseline ns", "patched ns", "change", "95% CI", "p (Holm)", "runs", "reading",
                 "seed", "vs seed")


def table_rows(rows: Sequence[LatencyComparison]) -> list[tuple[str, ...]]:
    return [(r.scope, r.percentile, f"{r.baseline:.0f}", f"{r.patched:.0f}", *r.cells(),
             f"{r.seed_change:+.1f}%" if r.seed_change is not None else "", r.seed_verdict or "")
            for r in rows]
