"""Faults on real guests: wqci killed mid-boot leaves no QEMU behind; SIGTERM mid-suite
leaves an error case and a JUnit that is not green, with the findings so far kept."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import xmlschema

from tests.conftest import DATA, ROOT
from tests.integration.conftest import processes

SCHEMA = xmlschema.XMLSchema(str(DATA / "junit" / "jenkins-junit.xsd"))


def qemus_for(out_dir: Path) -> list[int]:
    return processes(b"qemu-system", str(out_dir))


def start_test(out_dir: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """`wqci test` with these arguments (default: the base with test_workqueue), output to out_dir."""
    args = args or ("--base", "--suite", "test_workqueue", "--param", "test_workqueue.wq_items=2000")
    return subprocess.Popen([sys.executable, "-m", "pipeline", "test", *args, "--out", str(out_dir)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def interrupt_during(p: subprocess.Popen, out_dir: Path, line: str, sig: int, settle: float) -> str:
    """Send sig settle seconds after wqci printed line; wqci must exit 130 and leave no QEMU."""
    wait_for_line(p, line)
    time.sleep(settle)
    pids = qemus_for(out_dir)
    p.send_signal(sig)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 130, out
    assert gone(pids)
    return out


def wait_for_line(p: subprocess.Popen, needle: str, timeout: float = 900) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"never saw {needle!r}:\n{''.join(lines)[-3000:]}")


def gone(pids: list[int], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.2)
    return False


def test_kill_9_mid_boot_leaves_no_qemu(tmp_path, base_tree):
    p = start_test(tmp_path)
    wait_for_line(p, "boot 1:")
    deadline = time.monotonic() + 60
    while not (pids := qemus_for(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pids, "QEMU never started"
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    assert gone(pids), f"QEMU {pids} outlived a SIGKILLed wqci"
    assert qemus_for(tmp_path) == []


def test_sigterm_mid_suite_is_an_error_case_and_not_green(tmp_path, base_tree):
    interrupt_during(start_test(tmp_path), tmp_path, "suite test_workqueue", signal.SIGTERM, 3)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["status"] == "error" and data["verdict"]["status"] == "error"
    cases = {c["name"]: c for c in data["suites"][0]["cases"]}
    assert cases["interrupted"]["status"] == "error"
    assert cases["interrupted"]["message"] == "interrupted during suite test_workqueue"
    assert cases["boot"]["status"] == "pass"
    root = SCHEMA.to_dict(str(tmp_path / "junit.xml"))
    assert root["@errors"] == "1"
    assert os.path.getsize(tmp_path / "console.log") > 0  # the console so far is kept (and was triaged)


def test_ctrl_c_mid_suite_keeps_the_findings_of_the_console_so_far(tmp_path, base_tree):
    """The seeded inversion's lockdep report appears during test_workqueue; Ctrl-C while
    the next suite runs must keep it as a failing finding beside the interrupted case."""
    env = {**os.environ, "WQCI_PATCHES": str(DATA / "series")}
    p = start_test(tmp_path, "--series", "seeded-lock-inversion", "--suite", "test_workqueue", "--suite", "wq_stress",
                   "--param", "test_workqueue.wq_items=200", "--param", "wq_stress.duration_s=60", env=env)
    out = interrupt_during(p, tmp_path, "suite wq_stress", signal.SIGINT, 5)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["verdict"]["status"] == "error"
    cases = {c["name"]: c for c in data["suites"][0]["cases"]}
    assert cases["interrupted"]["message"] == "interrupted during suite wq_stress"
    findings = [c for c in cases.values() if c["name"].startswith("finding.lockdep.")]
    assert [(c["status"], c["message"].split(" (")[0]) for c in findings] == [
        ("fail", "possible deadlock in wq_affn_scope_store")], out[-3000:]
    assert cases["test_workqueue"]["status"] == "pass"
