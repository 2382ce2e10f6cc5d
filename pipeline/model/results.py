"""The results model (a run, its suites, their cases) and its two outputs:
JUnit written with junitparser, and results.json with the same content plus metrics.

One JUnit testsuite per arch/flavour/topology/variant; one testcase per stage
(tree, each patch's apply, build, boot, each suite, each test_workqueue scope)
and one per triage finding, failing when it counts against the kernel. Properties
carry provenance. A testcase's name and class come from its case's fields
(model/cases.py); results.json has the name and the fields.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from pipeline.model.status import Status, StageResult, worst
from pipeline.model.cases import Case

__all__ = ["Case", "Run", "SuiteResult", "set_totals", "to_junit", "write_junit", "write_json"]
from pipeline.analysis.evidence import Classified, FindingClass
from pipeline.triage.findings import Finding, KnownFinding, known_reason


@dataclass
class SuiteResult:
    """Everything measured for one arch/flavour/topology/variant."""

    name: str
    cases: list[Case] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    timestamp: float = field(default_factory=time.time)

    def add_stage(self, stage: StageResult) -> None:
        self.cases.append(Case(stage.name, stage.status, stage.duration, stage.message,
                               text=str(stage.log) if stage.log else "", properties=dict(stage.properties),
                               case=stage.case))

    def add_findings(self, findings: Iterable[Finding], listed: Sequence[KnownFinding] = (),
                     incidence: Mapping[str, str] | None = None) -> None:
        """One case per finding of a kernel tested on its own (`wqci test`, `wqci triage`):
        failing, unless configs/known-findings.yaml lists it for the base tree. `incidence`
        (by fingerprint) says in how many runs of a repeated suite it was printed."""
        for f in findings:
            reason = known_reason(f, listed)
            label = f"known: {reason}" if reason else "new"
            seen = (incidence or {}).get(f.fingerprint)
            self.cases.append(_finding_case(f, Status.PASS if reason else Status.FAIL,
                                            f"{label}, seen {f.count}x in {f.where}" + (f"; {seen}" if seen else ""),
                                            {"incidence": seen} if seen else {}))

    def add_classified(self, classified: Iterable[Classified], strict: bool = False,
                       first_patch: Mapping[str, str] | None = None) -> None:
        """One case per distinct finding of `wqci run`, from its classification: only a new
        finding fails (and an unconfirmed one under --strict); the report stays in
        system-out and the evidence in properties."""
        for c in classified:
            f = c.finding
            fails = c.cls is FindingClass.NEW or (strict and c.cls is FindingClass.UNCONFIRMED)
            culprit = (first_patch or {}).get(f.fingerprint)
            notes = [c.evidence.describe()] + [n for n in (c.touches, f"first in {culprit}" if culprit else "") if n]
            props = {"class": c.cls.value, "evidence": c.evidence.describe(), "fisher_p": f"{c.evidence.p:.4g}"}
            props.update({k: v for k, v in (("touches", c.touches), ("first_patch", culprit)) if v})
            self.cases.append(_finding_case(f, Status.FAIL if fails else Status.PASS,
                                            f"{c.cls.value}: {'; '.join(notes)}", props))

    @property
    def status(self) -> Status:
        return worst(c.status for c in self.cases)


def _finding_case(f: Finding, status: Status, judgement: str, properties: Mapping[str, str]) -> Case:
    """The case of one finding: its title and how it was judged, the report in its text."""
    return Case("finding", status, 0.0, f"{f.title} ({judgement})", f.decoded or f.text,
                properties={"kind": f.kind, "fingerprint": f.fingerprint, "where": f.where, **properties},
                case=f"{f.kind}.{f.fingerprint}")


@dataclass
class Run:
    name: str
    suites: list[SuiteResult] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return worst(s.status for s in self.suites)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for suite in self.suites:
            for case in suite.cases:
                out[case.status.value] += 1
        return out


def _classname(suite: SuiteResult, case: Case) -> str:
    return f"wqci.{suite.name.replace('/', '.')}.{case.suite}"


def to_junit(run: Run) -> JUnitXml:
    xml = JUnitXml(name=run.name)
    for suite in run.suites:
        ts = TestSuite(suite.name)
        ts.timestamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(suite.timestamp))
        ts.hostname = "localhost"
        for key, value in {**run.properties, **suite.properties}.items():
            ts.add_property(key, str(value))
        for case in suite.cases:
            for key, value in case.properties.items():
                ts.add_property(f"{case.name}.{key}", str(value))
            ts.add_testcase(_case(suite, case))
        ts.update_statistics()
        xml.add_testsuite(ts)
    return set_totals(xml)


def set_totals(xml: JUnitXml) -> JUnitXml:
    """Totals on <testsuites> by hand: update_statistics() also writes `skipped`
    there, which the Jenkins schema does not allow."""
    suites = list(xml)
    xml.tests = sum(ts.tests for ts in suites)
    xml.failures = sum(ts.failures for ts in suites)
    xml.errors = sum(ts.errors for ts in suites)
    xml.time = round(sum(ts.time for ts in suites), 3)
    return xml


def _case(suite: SuiteResult, case: Case) -> TestCase:
    tc = TestCase(case.name, classname=_classname(suite, case), time=round(case.duration, 3))
    if case.status is Status.FAIL:
        result = Failure(case.message or "failed", type_="failure")
        result.text = case.text or case.message
        tc.result = [result]
    elif case.status is Status.ERROR:
        result = Error(case.message or "error", type_="error")
        result.text = case.text or case.message
        tc.result = [result]
    elif case.status is Status.SKIP:
        # the Jenkins schema gives <skipped> no attributes: the reason is its text
        skipped = Skipped()
        skipped.text = case.message or "skipped"
        tc.result = [skipped]
    elif case.text or case.message:
        tc.system_out = "\n".join(part for part in (case.message, case.text) if part)
    return tc


def write_junit(run: Run, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    to_junit(run).write(str(tmp), pretty=True)
    tmp.rename(path)
    return path


def to_dict(run: Run) -> dict:
    return {
        "name": run.name, "status": run.status.value, "counts": run.counts(), "properties": run.properties,
        "suites": [{
            "name": s.name, "status": s.status.value, "properties": s.properties,
            "cases": [{"name": c.name, **c.identity(), "status": c.status.value, "duration": round(c.duration, 3),
                       "message": c.message, "metrics": dict(c.metrics), "properties": dict(c.properties)}
                      for c in s.cases],
            "findings": [f.to_dict() for f in s.findings],
        } for s in run.suites],
    }


def write_json(run: Run, path: Path, extra: Mapping | None = None) -> Path:
    from pipeline.model.verdict import of_run

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    data = {**to_dict(run), "verdict": of_run(run).to_dict(), **(extra or {})}
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.rename(path)
    return path
