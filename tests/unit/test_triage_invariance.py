"""One report, one finding, one title, one fingerprint: whatever else the console holds.

Real reports from the corpus are changed here, in code, the way consoles change them: other
CPUs' lines in between, a second report printed at the same time (line by line or in blocks),
wqci's suite markers in the middle, transport prefixes (syslog, journal, dmesg, caller ids, mail
quotes, indentation) and other times, addresses, CPUs, PIDs and task names. The findings must not
change, except where the report is placed (where) and how many times it is counted.
"""

import random
import re

import pytest

from pipeline.triage import findings as triage
from pipeline.triage import logtext
from tests.conftest import DATA

SPLATS = DATA / "splats"
KCSAN, LOCKDEP = "kcsan-data-race.log", "lockdep-circular.log"
WARN, WARN_NEW = "warn-cut-here.log", "warn-new-format.log"
ATOMIC, RCU = "atomic-sleep.log", "rcu-stall.log"
REPORTS = [KCSAN, LOCKDEP, WARN, WARN_NEW, ATOMIC, RCU]
BOOT = [ln for ln in (SPLATS / "clean-boot.log").read_text().splitlines() if ln.strip()]
PREFIX_RE = re.compile(r"^(\[\s*\d+\.\d+\])?\s?(?:\[\s*[TC]\d+\]\s?)?")


def read(name: str) -> str:
    return (SPLATS / name).read_text()


def signature(text: str) -> list[tuple]:
    return [(f.kind, f.title, f.fingerprint, f.frames[:3]) for f in triage.triage(text)]


ALONE = {name: signature(read(name)) for name in REPORTS}


def test_the_reports_alone():
    assert ALONE == {
        KCSAN: [("kcsan", "KCSAN: data-race in kick_pool / wq_worker_running", "c9fcabaafe56",
                 ("wq_worker_running", "usb_start_wait_urb", "usb_internal_control_msg"))],
        LOCKDEP: [("lockdep", "possible deadlock in nbd_config_put", "3987090a8827",
                   ("refcount_dec_and_mutex_lock", "nbd_config_put", "recv_work"))],
        WARN: [("warn", "WARNING in xfs_iunlink_lookup", "7df682eef273",
                ("xfs_iunlink_insert_inode", "xfs_iunlink", "xfs_create_tmpfile"))],
        WARN_NEW: [("warn", "WARNING in __queue_work", "beeed3a6dee1",
                    ("queue_delayed_work_on", "hci_connect_sco", "sco_connect"))],
        ATOMIC: [("atomic_sleep", "sleeping function called from invalid context in __flush_work", "9f603644adfb",
                  ("__flush_work", "__cancel_work_timer", "cifs_put_tcp_session"))],
        RCU: [("rcu_stall", "rcu stall in __nfsd_file_cache_purge", "36146534dcde",
               ("expkey_flush", "write_flush", "proc_reg_write"))],
    }


# ------------------------------------------------------------------------------- transformations


def interleave(a: str, b: str, step_a: int = 1, step_b: int = 1) -> str:
    """step_a lines of a, step_b lines of b, and again, until both are printed."""
    first, second, out = a.splitlines(), b.splitlines(), []
    while first or second:
        out += first[:step_a] + second[:step_b]
        del first[:step_a], second[:step_b]
    return "\n".join(out) + "\n"


def other_cpu(text: str, every: int, lines: int = 1) -> str:
    """Ordinary boot lines of another CPU after every `every` lines of text."""
    out, k = [], 0
    for n, line in enumerate(text.splitlines(), 1):
        out.append(line)
        if n % every == 0:
            out += BOOT[k:k + lines]
            k += lines
    return "\n".join(out) + "\n"


def with_caller(text: str, caller: str) -> str:
    """The lines as CONFIG_PRINTK_CALLER prints them, for one task."""
    out = []
    for line in logtext.normalise(text).splitlines():
        m = PREFIX_RE.match(line)
        out.append(f"{m.group(1) or ''}[{caller:>6}] {line[m.end():]}")
    return "\n".join(out) + "\n"


def prefixed(text: str, style: str) -> str:
    out = []
    for line in logtext.normalise(text).splitlines():
        m = PREFIX_RE.match(line)
        ts, msg = (m.group(1) + " " if m.group(1) else ""), line[m.end():]
        out.append({
            "syslog": f"Aug 23 19:30:27 testhost kernel: {ts}{msg}",
            "syslog without kernel time": f"Aug 23 19:30:27 testhost kernel: {msg}",
            "journal short-iso": f"2025-08-23T19:30:27+0200 testhost kernel: {ts}{msg}",
            "journal short-precise": f"Aug 23 19:30:27.123456 testhost kernel: {ts}{msg}",
            "dmesg -x": f"kern  :warn  : {ts}{msg}",
            "dmesg -T": f"[Sat Aug 23 19:30:27 2025] {msg}",
            "dmesg -r": f"<4>{ts}{msg}",
            "caller id": f"{ts.strip()}[  T4242] {msg}",
            "caller id without padding": f"{ts.strip()}[C3] {msg}",
            "mail quote": f"> {ts}{msg}",
            "nested mail quote": f"> > {ts}{msg}",
            "nested mail quote without space": f">> {ts}{msg}",
            "indented paste": f"    {ts}{msg}",
        }[style])
    return "\n".join(out) + "\n"


def renumbered(text: str) -> str:
    """Another run: other times, addresses, offsets, CPUs, PIDs and task names (the same task keeps
    one new PID and name wherever it is named)."""
    text = re.sub(r"\[\s*(\d+)\.(\d+)\]", lambda m: "[%5d.%06d]" % (int(m.group(1)) + 4321, int(m.group(2)) // 3), text)
    text = re.sub(r"\b[0-9a-f]{16}\b", lambda m: "%016x" % (int(m.group(0), 16) ^ 0x5a5a5a5a5a5a), text)
    text = re.sub(r"\+0x([0-9a-f]+)/0x", lambda m: "+0x%x/0x" % (int(m.group(1), 16) + 8), text)
    text = re.sub(r"(PID: |pid: |by task |task \S+:|\[\S+:|/)(\d+)(?=[\s:\]/,]|$)",
                  lambda m: m.group(1) + str(int(m.group(2)) * 7 + 13), text)
    for pattern, repl in [(r"CPU: \d+", "CPU: 7"), (r"CPU#\d+", "CPU#7"), (r"on cpu \d+", "on cpu 7"),
                          (r"\bkworker/", "kthread/"), (r"\bsyz\.0\.0\b", "syz-executor"),
                          (r"\d+ jiffies", "99 jiffies")]:
        text = re.sub(pattern, repl, text)
    return text


def with_marker(text: str, marker: str, at: float = 0.5) -> str:
    lines = text.splitlines()
    n = int(len(lines) * at)
    return "\n".join(lines[:n] + [marker] + lines[n:]) + "\n"


# ------------------------------------------------------------------------------------ invariance


STYLES = ["syslog", "syslog without kernel time", "journal short-iso", "journal short-precise", "dmesg -x",
          "dmesg -T", "dmesg -r", "caller id", "caller id without padding", "mail quote", "nested mail quote",
          "nested mail quote without space", "indented paste"]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", REPORTS)
def test_a_prefix_on_every_line_changes_nothing(name, style):
    assert signature(prefixed(read(name), style)) == ALONE[name]


@pytest.mark.parametrize("name", REPORTS)
def test_times_addresses_cpus_pids_and_tasks_change_nothing(name):
    changed = renumbered(read(name))
    assert changed != read(name)
    assert signature(changed) == ALONE[name]


@pytest.mark.parametrize("every, lines", [(1, 1), (2, 1), (3, 2), (5, 3)])
@pytest.mark.parametrize("name", REPORTS)
def test_other_cpus_lines_in_between_change_nothing(name, every, lines):
    assert signature(other_cpu(read(name), every, lines)) == ALONE[name]


@pytest.mark.parametrize("steps", [(1, 1), (3, 2), (5, 5), (2, 7)])
@pytest.mark.parametrize("warn", [WARN, WARN_NEW])
def test_a_warn_and_a_lockdep_report_mixed_keep_their_fingerprints(warn, steps):
    for first, second in [(warn, LOCKDEP), (LOCKDEP, warn)]:
        mixed = interleave(read(first), read(second), *steps)
        assert sorted(signature(mixed)) == sorted(ALONE[first] + ALONE[second])


@pytest.mark.parametrize("first, second", [(a, b) for a in REPORTS for b in REPORTS if a != b])
def test_two_reports_printed_line_by_line_keep_their_fingerprints(first, second):
    mixed = interleave(read(first), read(second))
    assert sorted(signature(mixed)) == sorted(ALONE[first] + ALONE[second])


def test_a_sleeping_in_atomic_report_mixed_with_another_cpus_warn_is_one_finding():
    # the known bad case: the report became "... invalid context" and "... invalid context in __queue_work"
    for steps in [(1, 1), (2, 1), (1, 3), (4, 4)]:
        got = signature(interleave(read(ATOMIC), read(WARN_NEW), *steps))
        assert sorted(got) == sorted(ALONE[ATOMIC] + ALONE[WARN_NEW]), steps


@pytest.mark.parametrize("seed", range(8))
def test_with_caller_ids_any_interleaving_is_undone(seed):
    rng = random.Random(seed)
    first, second = rng.sample(REPORTS, 2)
    a, b = with_caller(read(first), "T100").splitlines(), with_caller(read(second), "T200").splitlines()
    mixed = []
    while a or b:
        src = a if a and (not b or rng.random() < 0.5) else b
        n = rng.randint(1, 9)
        mixed += src[:n]
        del src[:n]
    assert sorted(signature("\n".join(mixed))) == sorted(ALONE[first] + ALONE[second])


@pytest.mark.parametrize("marker", ["wqci: end suite test_workqueue run 1", "wqci: begin suite locktorture run 2"])
@pytest.mark.parametrize("at", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("name", REPORTS)
def test_a_suite_marker_in_a_report_changes_nothing(name, marker, at):
    console = ("[   10.000000] wqci: begin suite test_workqueue run 1\n"
               + with_marker(read(name), "[   99.000000] " + marker, at)
               + "[  100.000000] wqci: end suite locktorture run 2\n")
    (finding,) = triage.triage(console)
    assert (finding.kind, finding.title, finding.fingerprint, finding.frames[:3]) == ALONE[name][0]
    assert finding.where == "test_workqueue"  # where the report started
    assert marker not in finding.text


def test_where_follows_the_markers_around_each_report():
    console = "\n".join(["[    1.0] booting", read(WARN).rstrip("\n"),
                         "[   10.0] wqci: begin suite test_workqueue run 1", read(KCSAN).rstrip("\n"),
                         "[   20.0] wqci: end suite test_workqueue run 1", read(ATOMIC).rstrip("\n")]) + "\n"
    assert [(f.kind, f.where) for f in triage.triage(console)] == [
        ("warn", "boot"), ("kcsan", "test_workqueue"), ("atomic_sleep", "idle")]


def test_the_same_report_twice_is_one_finding_counted_twice():
    once = read(ATOMIC)
    (finding,) = triage.triage(once + renumbered(once))
    assert finding.count == 2 and finding.fingerprint == ALONE[ATOMIC][0][2]
