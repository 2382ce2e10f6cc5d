"""The enqueue-latency A/B on synthetic runs with a known change, the seed's latency
claims read from series.yaml, and the rows in every output of `wqci run`."""

import json

import numpy as np
import pytest

from pipeline import config
from pipeline.analysis import latency, seedclaims
from pipeline.jobs import run as abrun
from pipeline.model.cases import Case
from pipeline.model.status import Status
from pipeline.output import report
from pipeline.suites import test_workqueue
from tests.unit.test_run_job import LAYOUT, FakeBackend, request

CONTENDED = ("cache_shard", "cache", "numa", "system")


def test_fastwake_claims_are_read_with_their_scopes():
    claims = latency.published(config.load_series(LAYOUT, "fastwake-v1").claims)
    assert [(c.percentile, c.before_ns, c.after_ns, c.scopes) for c in claims] == [
        ("p50", 2875.0, 2625.0, CONTENDED), ("p99", 5000.0, 4200.0, CONTENDED)]
    assert claims[0].change == pytest.approx(-8.696, abs=0.001)
    assert latency.unmeasured(claims) == [
        "p99 5000 -> 4200 ns (-16.0%): not measured, test_workqueue prints p50, p90 and p95"]


def test_the_contended_scopes_are_the_claims_not_the_resolutions():
    claims = config.load_series(LAYOUT, "fastwake-v1").claims
    assert latency.contended_scopes(claims) == CONTENDED  # named by the "contended" claim, not "uncontended"
    # without such a claim: the scopes with a published gain of 1% or more
    plain = (config.Claim("cpu -0.4%, numa +10.5%, cache +1.0%", "items/s; suite test_workqueue"),)
    assert latency.contended_scopes(plain) == ("numa", "cache")


def test_a_claim_that_names_its_scopes_is_about_those_and_others_are_ignored():
    claims = (config.Claim("p50 3000 \u2192 2400 ns on numa", "latency; suite test_workqueue"),
              config.Claim("p50 100 -> 50 ns", "latency measured with fio"),  # not test_workqueue
              config.Claim("cache +8.0%", "items/s; suite test_workqueue"))  # not latency
    (claim,) = latency.published(claims)
    assert (claim.percentile, claim.scopes, claim.change) == ("p50", ("numa",), pytest.approx(-20.0))


def runs(level: float, noise: float, n: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{"p50_ns": level * float(np.exp(rng.normal(0, noise))), "p95_ns": 2 * level,
             "items_per_sec": 1000.0} for _ in range(n)]


def test_a_lower_p50_is_found_and_set_beside_the_seed():
    base = {s: runs(2875, 0.01, 5, 1) for s in ("cpu", *CONTENDED)}
    patched = {s: runs(2625, 0.01, 5, 2) for s in ("cpu", *CONTENDED)}
    claims = latency.published(config.load_series(LAYOUT, "fastwake-v1").claims)
    rows = {(r.scope, r.percentile): r for r in latency.compare(base, patched, claims, 0.03)}
    assert list(rows)[:2] == [("cpu", "p50"), ("cpu", "p95")]  # scope order, p50 then p95
    numa = rows[("numa", "p50")]
    assert numa.statement == "lower" and numa.change == pytest.approx(-8.7, abs=1.5)
    assert numa.ci_low < 1 + numa.seed_change / 100 < numa.ci_high
    assert (numa.seed_change, numa.seed_verdict) == (pytest.approx(-8.696, abs=0.001), seedclaims.AGREES)
    # cpu is not a scope the claim is about; p95 is not a percentile it claims
    assert rows[("cpu", "p50")].seed_verdict is None and rows[("numa", "p95")].seed_change is None
    # p95 is exactly twice p50's level on each side: the same -8.7%, without noise
    assert rows[("numa", "p95")].change == pytest.approx(-8.696, abs=0.001)
    assert rows[("numa", "p95")].statement == "lower"


def test_no_change_contradicts_the_seed_when_the_interval_is_narrow():
    base = {"numa": runs(2875, 0.005, 6, 3)}
    patched = {"numa": runs(2875, 0.005, 6, 4)}
    claims = [latency.LatencyClaim("p50", 2875.0, 2625.0, ("numa",))]
    (p50, _) = latency.compare(base, patched, claims, 0.03)
    assert p50.statement.startswith("no change detected (95% CI ")
    assert p50.seed_verdict == seedclaims.CONTRADICTS


def test_one_run_a_side_cannot_tell():
    (p50, p95) = latency.compare({"cache": runs(2875, 0.01, 1, 5)}, {"cache": runs(2625, 0.01, 1, 6)})
    assert p50.statement == "cannot tell: fewer than 2 runs a side" and p50.ci_low is None
    assert latency.table_rows([p50])[0][5] == "n/a"


class Latencies(FakeBackend):
    """test_workqueue's scopes: p50 2875 ns on the baseline, 2625 patched, a little noise."""

    def __init__(self, history_dir):
        super().__init__({}, history_dir)
        self.rng = np.random.default_rng(11)

    def test(self, arch, prepared, suites, out_dir, result, progress):
        found = super().test(arch, prepared, suites, out_dir, result, progress)
        level = 2625 if prepared.label != "base" else 2875
        result.cases += [Case(test_workqueue.NAME, Status.PASS, case=scope, metrics={
            "items_per_sec": 1000.0 * float(np.exp(self.rng.normal(0, 0.01))),
            "p50_ns": level * float(np.exp(self.rng.normal(0, 0.01))), "p95_ns": 9000.0})
            for scope in test_workqueue.SCOPES]
        return found


def test_the_run_states_latency_in_results_junit_and_the_report(tmp_path):
    backend = Latencies(tmp_path / "history")
    req = request(tmp_path, repeat=4)
    result, (outcome,) = abrun.run(LAYOUT, req, lambda s: None, backend)
    data = json.loads((req.out_dir / "results.json").read_text())["arches"][0]
    rows = {(r["scope"], r["percentile"]): r for r in data["latency_comparison"]}
    assert len(rows) == 12 and rows[("system", "p50")]["statement"] == "lower"
    assert rows[("system", "p50")]["seed_verdict"] == seedclaims.AGREES
    assert data["latency_unmeasured"] == [
        "p99 5000 -> 4200 ns (-16.0%): not measured, test_workqueue prints p50, p90 and p95"]
    cases = {c.name: c for c in result.suites[1].cases if c.suite == "ab"}
    case = cases["ab.system.latency.p50"]
    assert case.status is Status.PASS and case.message.startswith("system: enqueue latency p50 -")
    assert case.message.endswith(f"lower; the seed: -8.7%, {seedclaims.AGREES}")
    text = (req.out_dir / "summary.md").read_text()
    assert "A/B enqueue latency" in text and "the seed's p99 5000 -> 4200 ns" in text
    # a results.json from before latency was compared still makes a report
    assert report.latency_blocks(type("Arch", (), {"outcome": {}})()) == []
