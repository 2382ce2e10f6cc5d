"""Is a finding the series' doing? Classification of findings with their evidence.

Kernel reports under emulation are random: a race shows in some boots and not in
others. Each finding of the patched kernel is therefore judged on counts, not on
one sighting:

- seen in k of n patched boots that exercised the place where it appeared
  (the suite it came from, or every boot for boot-time reports),
- seen in j of m baseline boots: this run's and the base's history (same tree
  commit, arch, flavour and .config; see triage/history.py),
- listed for the base tree in configs/known-findings.yaml.

Classes:
- **pre-existing**: seen on a baseline boot (now or in the history) or listed;
- **new**: patched only, and more frequent on the patched kernel by Fisher's
  exact test (one-sided p < ALPHA): the series introduced it;
- **unconfirmed**: patched only, too rarely to tell. `wqci run` reruns where it
  appeared, on both sides, while the budget lasts and confirmation is still
  reachable (`reachable()`).

`classify()` is the one place that makes this decision.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from scipy.stats import fisher_exact

from pipeline.triage.findings import Finding, KnownFinding, dedupe, known_reason

ALPHA = 0.05
#: places every boot exercises, whatever suites it ran
ALWAYS = frozenset({"boot", "idle", "console"})


class FindingClass(str, enum.Enum):
    NEW = "new"
    UNCONFIRMED = "unconfirmed"
    PRE_EXISTING = "pre-existing"


@dataclass(frozen=True)
class Sighting:
    """One finding as one boot saw it (what the history stores)."""

    fingerprint: str
    kind: str
    title: str
    where: str

    @classmethod
    def of(cls, f: Finding) -> "Sighting":
        return cls(f.fingerprint, f.kind, f.title, f.where)


@dataclass(frozen=True)
class Boot:
    """One test of one kernel: the places it exercised and what it found there.

    A boot that needed a reboot after a hang is still one observation."""

    exercised: frozenset[str]
    sightings: tuple[Sighting, ...] = ()

    def covers(self, where: str) -> bool:
        return where in ALWAYS or where in self.exercised

    def saw(self, fingerprint: str) -> bool:
        return any(s.fingerprint == fingerprint for s in self.sightings)

    @classmethod
    def of(cls, suites: Iterable[str], findings: Iterable[Finding]) -> "Boot":
        return cls(frozenset(suites), tuple(Sighting.of(f) for f in findings))

    def to_dict(self) -> dict:
        return {"exercised": sorted(self.exercised),
                "sightings": [{"fingerprint": s.fingerprint, "kind": s.kind, "title": s.title, "where": s.where}
                              for s in self.sightings]}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Boot":
        return cls(frozenset(data.get("exercised", ())),
                   tuple(Sighting(s["fingerprint"], s["kind"], s["title"], s["where"])
                         for s in data.get("sightings", ())))


@dataclass(frozen=True)
class Count:
    seen: int
    boots: int

    def __str__(self) -> str:
        return f"{self.seen} of {self.boots}"


def count(boots: Sequence[Boot], fingerprint: str, where: str) -> Count:
    covering = [b for b in boots if b.covers(where)]
    return Count(sum(b.saw(fingerprint) for b in covering), len(covering))


def fisher_p(patched: Count, baseline: Count) -> float:
    """One-sided Fisher's exact p for "more frequent on the patched kernel"."""
    if patched.boots == 0 or baseline.boots == 0:
        return 1.0
    table = [[patched.seen, patched.boots - patched.seen], [baseline.seen, baseline.boots - baseline.seen]]
    return float(fisher_exact(table, alternative="greater")[1])


@dataclass(frozen=True)
class Evidence:
    patched: Count
    baseline: Count  # this run's baseline boots
    history: Count  # earlier boots of the same base
    p: float  # Fisher, patched vs (baseline + history)
    listed: str | None = None  # the known-findings.yaml reason

    @property
    def base_total(self) -> Count:
        return Count(self.baseline.seen + self.history.seen, self.baseline.boots + self.history.boots)

    def describe(self) -> str:
        parts = [f"patched {self.patched}", f"baseline {self.baseline}"]
        if self.history.boots:
            parts.append(f"history {self.history}")
        parts.append(f"p={self.p:.3g}")
        if self.listed:
            parts.append(f"listed: {self.listed}")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"patched": [self.patched.seen, self.patched.boots], "baseline": [self.baseline.seen,
                self.baseline.boots], "history": [self.history.seen, self.history.boots], "p": round(self.p, 6),
                "listed": self.listed}


@dataclass(frozen=True)
class Classified:
    finding: Finding
    cls: FindingClass
    evidence: Evidence
    touches: str = ""  # "touches kick_pool (changed by 2/2)"

    @property
    def fingerprint(self) -> str:
        return self.finding.fingerprint

    def to_dict(self) -> dict:
        return self.finding.to_dict() | {"class": self.cls.value, "evidence": self.evidence.to_dict(),
                                         "evidence_text": self.evidence.describe(), "touches": self.touches}


def judge(f: Finding, patched: Sequence[Boot], baseline: Sequence[Boot], history: Sequence[Boot],
          listed: Sequence[KnownFinding] = ()) -> Classified:
    ev = evidence(f, patched, baseline, history, listed)
    if ev.baseline.seen or ev.history.seen or ev.listed:
        cls = FindingClass.PRE_EXISTING
    elif ev.p < ALPHA:
        cls = FindingClass.NEW
    else:
        cls = FindingClass.UNCONFIRMED
    return Classified(f, cls, ev)


def evidence(f: Finding, patched: Sequence[Boot], baseline: Sequence[Boot], history: Sequence[Boot],
             listed: Sequence[KnownFinding] = ()) -> Evidence:
    p_count = count(patched, f.fingerprint, f.where)
    b_count = count(baseline, f.fingerprint, f.where)
    h_count = count(history, f.fingerprint, f.where)
    both = Count(b_count.seen + h_count.seen, b_count.boots + h_count.boots)
    return Evidence(p_count, b_count, h_count, fisher_p(p_count, both), known_reason(f, listed))


@dataclass
class Classification:
    """Every distinct finding of a run, patched and baseline, classified."""

    patched: list[Classified] = field(default_factory=list)
    baseline: list[Classified] = field(default_factory=list)  # always pre-existing

    def of(self, cls: FindingClass) -> list[Classified]:
        return [c for c in self.patched if c.cls is cls]


def classify(patched_findings: Iterable[Finding], baseline_findings: Iterable[Finding], patched: Sequence[Boot],
             baseline: Sequence[Boot], history: Sequence[Boot] = (),
             listed: Sequence[KnownFinding] = ()) -> Classification:
    """The one decision: each distinct patched finding is new, unconfirmed or pre-existing;
    each finding of the baseline kernel is pre-existing by definition."""
    out = Classification()
    for f in dedupe(patched_findings):
        out.patched.append(judge(f, patched, baseline, history, listed))
    for f in dedupe(baseline_findings):
        ev = evidence(f, patched, baseline, history, listed)
        out.baseline.append(Classified(f, FindingClass.PRE_EXISTING, ev))
    return out


def reachable(c: Classified, rounds: int) -> bool:
    """Could `rounds` more interleaved pairs confirm this finding? Best case: it shows in
    every new patched boot and in no new baseline boot."""
    if c.cls is not FindingClass.UNCONFIRMED or rounds <= 0:
        return False
    ev = c.evidence
    best = Count(ev.patched.seen + rounds, ev.patched.boots + rounds)
    base = ev.base_total
    return fisher_p(best, Count(base.seen, base.boots + rounds)) < ALPHA
