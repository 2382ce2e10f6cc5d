"""The seed's published A/B numbers beside wqci's, with a verdict per scope.

The numbers come from the series' `claims` in series.yaml, as written there: a claim
measured with test_workqueue that names a scope and a signed percentage, e.g.
"cache_shard +8.0%, cache +8.9%" or "cpu -0.4%, smt -0.4%". The claim text stays the
one source of truth; nothing is copied into a second table.
"""

from __future__ import annotations

import re
from typing import Sequence

from pipeline import config

AGREES = "agrees"
CONTRADICTS = "contradicts"
CANNOT_TELL = "cannot tell at this resolution"

SUITE = "test_workqueue"
#: "<scope> <sign><number>%" with the scopes test_workqueue reports
_SCOPE_GAIN = re.compile(r"\b(cpu|smt|cache_shard|cache|numa|system)\s+([+\-\u2212]\d+(?:\.\d+)?)\s?%")


def published(claims: Sequence[config.Claim]) -> dict[str, float]:
    """Scope -> the seed's gain in percent, from the claims measured with test_workqueue
    (the first number given for a scope wins)."""
    out: dict[str, float] = {}
    for claim in claims:
        if SUITE not in claim.measure:
            continue
        for scope, gain in _SCOPE_GAIN.findall(claim.claim):
            out.setdefault(scope, float(gain.replace("\u2212", "-")))
    return out


def verdict(seed_percent: float, ci_low: float | None, ci_high: float | None, half_width: float | None,
            floor: float) -> str:
    """How the seed's gain (percent) stands against our 95% interval of the ratio.

    A claimed change of at least `floor` (a fraction: the A/B's target resolution):
    - contradicts: our interval excludes the seed's value;
    - cannot tell at this resolution: it holds it, but is wider (half-width) than the
      claimed change, so it cannot tell it from no change;
    - agrees: it holds it and is narrow enough.

    A smaller claimed change, such as cpu -0.4% "within noise", is a claim of no change
    beyond ±floor: it agrees when our whole interval lies within ±floor, contradicts when
    the interval lies wholly outside, and cannot tell otherwise. (Taken literally, -0.4%
    would be contradicted by any interval narrower than it that is centred on 0.)

    No interval (fewer than 2 runs a side): cannot tell.
    """
    if ci_low is None or ci_high is None or half_width is None:
        return CANNOT_TELL
    claimed = seed_percent / 100
    if abs(claimed) < floor:
        if 1 - floor <= ci_low and ci_high <= 1 + floor:
            return AGREES
        if ci_high < 1 - floor or ci_low > 1 + floor:
            return CONTRADICTS
        return CANNOT_TELL
    if not ci_low <= 1 + claimed <= ci_high:
        return CONTRADICTS
    if half_width > abs(claimed):
        return CANNOT_TELL
    return AGREES
