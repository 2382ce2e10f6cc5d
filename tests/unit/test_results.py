"""JUnit and results.json from the results model; the JUnit must validate against
the Jenkins schema (tests/data/junit/jenkins-junit.xsd, source in SOURCE.md)."""

import json
import subprocess

import xmlschema

from pipeline.analysis import evidence
from pipeline.model import results
from pipeline.triage import findings as triage
from pipeline.model.status import Status
from pipeline.model.cases import Case
from tests.conftest import DATA

SCHEMA = xmlschema.XMLSchema(str(DATA / "junit" / "jenkins-junit.xsd"))


def sample_run() -> results.Run:
    run = results.Run(name="wqci test fastwake-v1", properties={"series": "fastwake-v1"})
    suite = results.SuiteResult(name="x86_64/debug/smp8-numa2/fastwake-v1", properties={"accelerator": "tcg"})
    suite.cases += [
        Case("build", Status.PASS, 12.5, properties={"compiled_objects": "7"}),
        Case("test_workqueue", Status.PASS, 3.0, metrics={"items_per_sec": 9000.0},
             properties={"items_per_sec": "9000"}, case="cache"),
        Case("locktorture", Status.FAIL, 15.0, "End of test: FAILURE", "Writes: Total: 5 Fail: 1",
             variant="mutex_lock"),
        Case("boot", Status.ERROR, 240.0, "SSH did not answer within 240 s", "console tail", runs=(2,)),
        Case("ww_mutex_selftest", Status.SKIP, 0.0, "skipped: the guest failed"),
    ]
    findings = triage.extract((DATA / "splats" / "two-splats.log").read_text())
    # the lockdep report on the patched kernel only (twice), the KCSAN race on both sides
    patched = [evidence.Boot.of({"locktorture"}, findings), evidence.Boot.of({"locktorture"}, findings)]
    baseline = [evidence.Boot.of({"locktorture"}, findings[1:]), evidence.Boot.of({"locktorture"}, [])]
    history = [evidence.Boot.of({"boot"}, [])] * 2
    classified = evidence.classify(findings, findings[1:], patched, baseline, history)
    suite.findings += findings
    suite.add_classified(classified.patched)
    run.suites.append(suite)
    return run


def test_junit_validates_and_carries_everything(tmp_path):
    path = results.write_junit(sample_run(), tmp_path / "junit.xml")
    SCHEMA.validate(str(path))
    xml = path.read_text()
    assert 'name="series" value="fastwake-v1"' in xml
    assert 'name="test_workqueue.cache.items_per_sec" value="9000"' in xml
    assert "<skipped>skipped: the guest failed</skipped>" in xml
    # the new lockdep finding fails; the KCSAN one seen on the baseline is reported, not failing
    assert ('message="possible deadlock in __flush_workqueue (new: patched 2 of 2, baseline 0 of 2, history 0 of 2, '
            'p=0.0667)"') not in xml  # 2 of 2 against 0 of 4 is not yet p < 0.05: unconfirmed, passing
    assert "possible deadlock in __flush_workqueue (unconfirmed: patched 2 of 2, baseline 0 of 2, history 0 of 2, p=0.0667)" in xml
    assert "KCSAN: data-race in kick_pool / wq_worker_running (pre-existing: patched 2 of 2, baseline 1 of 2" in xml
    assert 'name="finding.lockdep.' in xml and 'class" value="unconfirmed"' in xml
    root = SCHEMA.to_dict(str(path))
    assert root["@tests"] == "7" and root["@failures"] == "1" and root["@errors"] == "1"


def test_case_names_are_derived_from_their_fields():
    """The JUnit name of each kind of case; nothing parses a name back."""
    named = [
        (Case("test_workqueue", Status.PASS, case="cpu"), "test_workqueue.cpu"),
        (Case("test_workqueue", Status.PASS, runs=(2,)), "test_workqueue#2"),
        (Case("locktorture", Status.PASS, variant="mutex_lock", runs=(2,)), "locktorture.mutex_lock#2"),
        (Case("kunit", Status.PASS, variant="v", case="suite.test", runs=(1,)), "kunit.v.suite.test#1"),
        (Case("finding", Status.FAIL, case="lockdep.0123abcd"), "finding.lockdep.0123abcd"),
        (Case("ab", Status.PASS, case="numa"), "ab.numa"),
        (Case("apply", Status.PASS, case="1"), "apply.1"),
        (Case("build", Status.PASS), "build"),
        (Case("boot", Status.PASS, runs=(2,)), "boot#2"),
        # the second boot of the third test of `wqci run`: numbered by the run, not renamed
        (Case("boot", Status.PASS, runs=(2,)).numbered(3), "boot#2#3"),
    ]
    assert [c.name for c, _ in named] == [name for _, name in named]
    reboot = named[-1][0]
    assert (reboot.suite, reboot.runs, reboot.run, reboot.stem, reboot.test) == ("boot", (2, 3), 3, "boot#2", "boot")
    assert named[0][0].run is None and named[0][0].stem == "test_workqueue.cpu"


def test_junit_classes_are_the_suites(tmp_path):
    from junitparser import JUnitXml

    (suite,) = JUnitXml.fromfile(str(results.write_junit(sample_run(), tmp_path / "junit.xml")))
    prefix = "wqci.x86_64.debug.smp8-numa2.fastwake-v1."
    assert [(c.name, c.classname[len(prefix):]) for c in suite][:5] == [
        ("build", "build"), ("test_workqueue.cache", "test_workqueue"), ("locktorture.mutex_lock", "locktorture"),
        ("boot#2", "boot"), ("ww_mutex_selftest", "ww_mutex_selftest")]


def test_results_json_has_metrics_and_findings(tmp_path):
    path = results.write_json(sample_run(), tmp_path / "results.json")
    data = json.loads(path.read_text())
    assert data["status"] == "error"
    suite = data["suites"][0]
    cache = next(c for c in suite["cases"] if c["name"] == "test_workqueue.cache")
    assert cache["metrics"] == {"items_per_sec": 9000.0}
    # the name for readers, the fields for whoever needs the identity
    fields = [{k: c[k] for k in ("name", "suite", "variant", "case", "runs")} for c in suite["cases"][2:4]]
    assert fields == [
        {"name": "locktorture.mutex_lock", "suite": "locktorture", "variant": "mutex_lock", "case": "", "runs": []},
        {"name": "boot#2", "suite": "boot", "variant": "", "case": "", "runs": [2]}]
    finding = next(c for c in suite["cases"] if c["suite"] == "finding")
    assert finding["name"] == f"finding.{finding['case']}" and finding["case"].startswith("lockdep.")
    assert [f["kind"] for f in suite["findings"]] == ["lockdep", "kcsan"]


def test_junit2html_renders(tmp_path):
    path = results.write_junit(sample_run(), tmp_path / "junit.xml")
    subprocess.run(["junit2html", str(path), str(tmp_path / "junit.html")], check=True,
                   env={"PATH": str(__import__("pathlib").Path(__import__("sys").executable).parent)})
    assert "locktorture.mutex_lock" in (tmp_path / "junit.html").read_text()


def test_listed_known_findings_pass_in_a_test_of_one_kernel():
    from pipeline.triage.findings import KnownFinding
    import re

    findings = triage.extract((DATA / "splats" / "two-splats.log").read_text())
    suite = results.SuiteResult(name="s")
    listed = (KnownFinding(re.compile(r"^kcsan: .*kick_pool"), "p->wake_cpu, annotated in 7.3"),)
    suite.add_findings(findings, listed=listed)
    lockdep, kcsan = [c for c in suite.cases if c.name.startswith("finding.")]
    assert lockdep.status is Status.FAIL and "(new," in lockdep.message
    assert kcsan.status is Status.PASS and "known: p->wake_cpu, annotated in 7.3" in kcsan.message
