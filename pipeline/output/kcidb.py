"""kcidb.json: the run in the KCIDB I/O schema (the latest version kcidb-io knows), so a
KernelCI dashboard can take wqci's results beside the other CIs'.

- a checkout per kernel source: the base tree, and the base with the series applied;
- a build per arch, flavour and variant;
- a test per case (path `suite.variant.case`; the run number is in misc, as KCIDB paths
  name what is tested, not which run);
- an issue per finding (by fingerprint, so the same finding is the same issue in every
  run) and an incident per kernel that showed it.

Ids are `wqci:<run id>:...`, the run id being the one results.json records (older
files: a hash of their content), so rewriting kcidb.json gives the same ids. Local
paths are not URLs a dashboard could fetch: logs stay out, reports go in log_excerpt.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Mapping

from kcidb_io import schema

from pipeline.output.rundir import ArchRun, CaseRow, RunView, Side

ORIGIN = "wqci"
STATUS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skip": "SKIP"}
EXCERPT = 16384  # the schema's maxLength of log_excerpt
PATH_PART = re.compile(r"[^a-zA-Z0-9_-]+")


def run_id(view: RunView) -> str:
    recorded = view.props.get("run_id")
    if recorded:
        return recorded
    return hashlib.sha256(json.dumps(view.data, sort_keys=True).encode()).hexdigest()[:16]


def _id(view: RunView, *parts: str) -> str:
    return ":".join((ORIGIN, run_id(view), *parts))


def _path(*parts: str) -> str:
    """A KCIDB test path: dot-separated words of [a-zA-Z0-9_-]."""
    words = [PATH_PART.sub("_", w).strip("_") or "_" for p in parts if p for w in p.split(".")]
    return ".".join(words)


def _time(view: RunView) -> dict:
    started = view.props.get("started", "")
    return {"start_time": started} if re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([.]\d+)?([+-]\d\d:\d\d|Z)$",
                                               started) else {}


def _checkouts(view: RunView) -> list[dict]:
    base = view.prop("base_commit")
    common = {"origin": ORIGIN, "tree_name": view.prop("tree") or "base", **_time(view)}
    if re.fullmatch(r"[0-9a-f]{40}", base):
        common["git_commit_hash"] = base
    if view.prop("base_version"):
        common["git_commit_name"] = f"v{view.prop('base_version')}"
    out = [{**common, "id": _id(view, "checkout", "baseline"), "comment": "the base tree, without patches",
            "valid": True}]
    if view.series:
        applied = all(p.status == "pass" for p in view.patches) and bool(view.patches)
        patched = {**common, "id": _id(view, "checkout", view.series), "valid": applied,
                   "comment": view.prop("series_title") or view.series,
                   "misc": {"series": view.series, "patches": [
                       {"number": p.number, "subject": p.subject, "commit": p.commit,
                        **({"message_id": p.message_id} if p.message_id else {})} for p in view.patches]}}
        ids = [p.message_id for p in view.patches if p.message_id]
        if ids:  # KCIDB wants the address form, without angle brackets
            patched["message_id"] = (view.props.get("cover_message_id") or ids[0]).strip("<>")
        failed = [p for p in view.patches if p.status == "fail"]
        if failed:
            patched["log_excerpt"] = failed[0].message[:EXCERPT]
        out.append(patched)
    return out


def _checkout_of(view: RunView, side: Side) -> str:
    return _id(view, "checkout", "baseline" if side.baseline else view.series)


def _build(view: RunView, arch: ArchRun, side: Side) -> dict | None:
    (build,) = side.group("build")[:1] or (None,)
    if build is None:  # apply failed before any build, or the run was cut short
        return None
    out = {"id": _id(view, "build", side.name), "origin": ORIGIN, "checkout_id": _checkout_of(view, side),
           "architecture": arch.arch, "config_name": side.prop("flavor") or "unknown",
           "status": STATUS[build.status], "duration": float(build.duration),
           "comment": f"{arch.arch} {side.prop('flavor')} kernel of {side.variant}"
                      + (f", with wqci's carry patch {side.prop('carried')} on top (its commit is misc.commit)"
                         if side.prop("carried") else ""),
           "misc": {k: side.prop(k) for k in ("commit", "config_hash", "topology", "carried") if side.prop(k)}}
    if side.prop("toolchain"):
        out["compiler"] = side.prop("toolchain")
    if build.status != "pass" and build.message:
        out["log_excerpt"] = build.message[:EXCERPT]
    return out


def _test(view: RunView, side: Side, case: CaseRow, index: int) -> dict:
    out = {"id": _id(view, "test", side.name, case.test, *(str(r) for r in case.runs), str(index)),
           "origin": ORIGIN, "build_id": _id(view, "build", side.name), "path": _path(case.group, case.label),
           "status": STATUS.get(case.status, "ERROR"), "duration": float(case.duration),
           "misc": {"variant": side.variant, **({"runs": list(case.runs)} if case.runs else {}),
                    **{k: v for k, v in case.properties.items() if isinstance(v, str)}}}
    if case.message:
        out["comment"] = case.message
    if "items_per_sec" in case.metrics:
        out["number"] = {"value": float(case.metrics["items_per_sec"]), "unit": "items/s"}
    return out


def _issue(view: RunView, f: Mapping) -> dict:
    return {"id": f"{ORIGIN}:finding:{f['fingerprint']}", "version": 1, "origin": ORIGIN,
            "report_subject": f["title"], "comment": f"{f['kind']}: {f['title']}",
            "culprit": {"code": True, "tool": False, "harness": False},
            "misc": {"kind": f["kind"], "fingerprint": f["fingerprint"], "frames": list(f.get("frames", []))}}


def _incidents(view: RunView, arch: ArchRun, side: Side, tests: Mapping[str, str], key: str) -> list[dict]:
    out = []
    for f in arch.findings(key):
        out.append({"id": _id(view, "incident", side.name, f["fingerprint"]), "origin": ORIGIN,
                    "issue_id": f"{ORIGIN}:finding:{f['fingerprint']}", "issue_version": 1,
                    "build_id": _id(view, "build", side.name), "present": True,
                    **({"test_id": tests[f["fingerprint"]]} if f["fingerprint"] in tests else {}),
                    "comment": f"{f.get('class', '')}: {f.get('evidence_text', '')}".strip(": "),
                    "misc": {"class": f.get("class", ""), "where": f.get("where", ""), "count": f.get("count", 1),
                             "first_patch": f.get("first_patch") or "", "touches": f.get("touches", ""),
                             "report": f.get("text", "")[:EXCERPT]}})
    return out


def to_kcidb(view: RunView) -> dict:
    data = schema.LATEST.new()
    data["checkouts"] = _checkouts(view)
    builds, tests, issues, incidents = [], [], {}, []
    for arch in view.arches:
        for side in (*arch.sides, *arch.more):
            build = _build(view, arch, side)
            if build is None:
                continue
            builds.append(build)
            finding_tests = {}
            for i, case in enumerate(c for c in side.cases if c.group != "build"):
                test = _test(view, side, case, i)
                tests.append(test)
                if case.group == "finding" and case.properties.get("fingerprint"):
                    finding_tests[case.properties["fingerprint"]] = test["id"]
            if side not in arch.sides:
                continue
            keys = ("baseline_findings",) if side.baseline else (
                "new_findings", "unconfirmed_findings", "preexisting_findings")
            for key in keys:
                for f in arch.findings(key):
                    issues.setdefault(f["fingerprint"], _issue(view, f))
                incidents += _incidents(view, arch, side, finding_tests, key)
    data.update(builds=builds, tests=tests, issues=list(issues.values()), incidents=incidents)
    return data


def write(view: RunView, path: Path) -> Path:
    path.write_text(json.dumps(to_kcidb(view), indent=1) + "\n")
    return path
