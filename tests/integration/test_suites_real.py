"""The real suites in real guests: `wqci test` writes a JUnit file that validates,
with per-scope test_workqueue cases, locktorture for three lock types, the
ww_mutex selftest and wqci's own stress modules; a suite forced to hang becomes
an error case with forensics."""

import subprocess
import sys

import pytest
import xmlschema

from tests.conftest import DATA, ROOT

SCHEMA = xmlschema.XMLSchema(str(DATA / "junit" / "jenkins-junit.xsd"))


def wqci(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def cases(xml: dict) -> dict[str, dict]:
    out = {}
    for suite in xml["testsuite"]:
        for case in suite["testcase"]:
            out[case["@name"]] = case
    return out


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_wqci_test_fastwake(arch, tmp_path):
    # arm64's numa and system scopes run at ~70 items/s under TCG: keep them short there; and its
    # ww_mutex selftest takes 8 minutes under TCG (2 on x86_64, which proves its parser): not there
    items = "200" if arch == "arm64" else "1000"
    selftest = ("ww_mutex_selftest",) if arch == "x86_64" else ()
    suites = ("test_workqueue", "locktorture", "wq_stress", "proxy_stress", *selftest)
    done = wqci("test", "--series", "fastwake-v1", "--arch", arch, "--out", str(tmp_path),
                *[arg for name in suites for arg in ("--suite", name)],
                "--param", "locktorture.nwriters_stress=2", "--param", f"test_workqueue.wq_items={items}",
                "--param", "wq_stress.duration_s=8", "--param", "proxy_stress.duration_s=6")
    junit = tmp_path / "junit.xml"
    assert junit.exists(), done.stderr
    SCHEMA.validate(str(junit))
    found = cases(SCHEMA.to_dict(str(junit)))
    for name in ("tree", "apply.1", "apply.2", "build", "boot", "test_workqueue", *selftest,
                 "locktorture.mutex_lock", "locktorture.ww_mutex_lock", "locktorture.rtmutex_lock",
                 # wqci's own modules (default suites), KTAP cases
                 "wq_stress.deadline", "wq_stress.all_items_ran", "proxy_stress.chain", "proxy_stress.signal"):
        assert name in found, (name, sorted(found))
    for scope in ("cpu", "smt", "cache_shard", "cache", "numa", "system"):
        assert f"test_workqueue.{scope}" in found
    xml = junit.read_text()
    assert 'name="test_workqueue.cache.items_per_sec"' in xml and 'name="test_workqueue.cache.p50_ns"' in xml
    for name in ("console.log", "dmesg.txt", "results.json", "test_workqueue.log", "locktorture.log"):
        assert (tmp_path / name).exists(), name
    # Passing suites pass; a finding (e.g. a KCSAN race on 7.2) fails the run but is in the JUnit
    failing = {n for n, c in found.items() if "failure" in c or "error" in c}
    assert all(n.startswith("finding.") for n in failing), (failing, done.stdout[-3000:])
    assert done.returncode == (1 if failing else 0), done.stderr


def test_hung_suite_is_an_error_with_forensics_and_the_rest_runs(tmp_path):
    # a timeout shorter than the benchmark forces the "hang"
    done = wqci("test", "--base", "--suite", "test_workqueue", "--suite", "proxy_stress",
                "--out", str(tmp_path), "--param", "test_workqueue.wq_items=200000", "--suite-timeout",
                "test_workqueue=5", "--param", "proxy_stress.duration_s=4")
    junit = tmp_path / "junit.xml"
    SCHEMA.validate(str(junit))
    found = cases(SCHEMA.to_dict(str(junit)))
    hung = found["test_workqueue"]
    assert "error" in hung
    error = hung["error"][0] if isinstance(hung["error"], list) else hung["error"]
    assert "timed out after 5 s" in error["@message"]
    assert "sysrq" in error["$"] and "console tail" in error["$"]
    assert "boot#2" in found  # the guest was rebooted for the next suite
    assert "proxy_stress.chain" in found and "skipped" not in found["proxy_stress.chain"]
    assert done.returncode == 1
