"""Console triage on a corpus of real kernel reports (tests/data/splats, sources in SOURCES.yaml)."""

import subprocess
import sys

import pytest
import yaml

from pipeline.model.status import Status
from pipeline.triage import findings as triage
from tests.conftest import DATA, ROOT

SPLATS = DATA / "splats"
CORPUS = yaml.safe_load((SPLATS / "SOURCES.yaml").read_text())["files"]


@pytest.mark.parametrize("entry", CORPUS, ids=[e["file"] for e in CORPUS])
def test_corpus(entry):
    expected = entry["expected"]["findings"]
    got = triage.extract((SPLATS / entry["file"]).read_text(errors="replace"))
    assert [f.kind for f in got] == [e["kind"] for e in expected]
    for want, have in zip(expected, got):
        assert have.title == want["title"]
        assert have.fingerprint == want["fingerprint"]
        # top_frames were read off the report independently of wqci's parser: the first three that
        # are not helper frames, in order
        wanted = [f for f in want.get("top_frames") or [] if not triage.is_noise(f)]
        assert list(have.frames[:3]) == wanted[:3]


def test_clean_boot_has_no_findings():
    assert triage.triage((SPLATS / "clean-boot.log").read_text()) == []


def test_titles_do_not_depend_on_addresses_pids_cpus_or_time():
    text = (SPLATS / "soft-lockup.log").read_text()
    other = (text.replace("CPU#0", "CPU#5").replace("stuck for 44s", "stuck for 22s").replace("[exportfs:1180]",
             "[exportfs:77]").replace("7972.", "12.").replace("+0x54/0xd0", "+0x58/0xd0"))
    a, b = triage.extract(text)[0], triage.extract(other)[0]
    assert a.title == b.title == "soft lockup in __nfsd_file_cache_purge"
    assert a.fingerprint == b.fingerprint


def test_duplicates_are_counted_once():
    text = (SPLATS / "wq-lockup.log").read_text()
    findings = triage.triage(text + "\n" + text)
    assert len(findings) == 1 and findings[0].count == 2


def test_report_text_is_whole():
    kcsan = triage.extract((SPLATS / "kcsan-data-race.log").read_text())[0]
    assert kcsan.text.splitlines()[0].startswith("=====")
    assert kcsan.text.splitlines()[-1].startswith("=====")
    assert "Reported by Kernel Concurrency Sanitizer" in kcsan.text
    warn = [f for f in triage.extract((SPLATS / "real-multi-cifs-6.6.log").read_text()) if f.kind == "warn"][0]
    assert "cut here" in warn.text.splitlines()[0] and "end trace" in warn.text.splitlines()[-1]


def test_oops_and_its_panic_are_one_finding():
    findings = triage.extract((SPLATS / "oops-page-fault-panic.log").read_text())
    assert len(findings) == 1
    assert "Kernel panic - not syncing: Fatal exception" in findings[0].text


def test_where_comes_from_suite_markers():
    splat = (SPLATS / "kcsan-data-race.log").read_text()
    console = ("[    1.0] booting\n[   10.0] wqci: begin suite test_workqueue run 1\n" + splat +
               "\n[   20.0] wqci: end suite test_workqueue run 1\n")
    (finding,) = triage.triage(console)
    assert finding.where == "test_workqueue"


def test_cli_prints_exactly_two_findings(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pipeline", "triage", str(SPLATS / "two-splats.log"),
                           "--junit", str(tmp_path / "t.xml")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr  # findings
    lines = done.stdout.splitlines()
    assert lines[-1] == "2 finding(s)"
    assert lines[0].startswith("lockdep") and "possible deadlock in __flush_workqueue" in lines[0]
    assert lines[1].startswith("kcsan") and "KCSAN: data-race in kick_pool / wq_worker_running" in lines[1]
    xml = (tmp_path / "t.xml").read_text()
    assert xml.count("<failure") == 2


def wqci_triage(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "pipeline", "triage", *args], cwd=ROOT, capture_output=True,
                          text=stdin is None or isinstance(stdin, str), input=stdin)


def test_cli_exit_codes_stdin_gzip_and_known(tmp_path):
    import gzip

    clean = wqci_triage(str(SPLATS / "clean-boot.log"))
    assert (clean.returncode, clean.stdout) == (0, "0 finding(s)\n")
    quoted = "".join(f"> {line}\n" for line in (SPLATS / "kcsan-data-race.log").read_text().splitlines())
    piped = wqci_triage("-", stdin=quoted)
    assert piped.returncode == 1
    assert piped.stdout.splitlines()[0].startswith("kcsan            1x  KCSAN: data-race in kick_pool / wq_worker_running")
    packed = tmp_path / "console.log.gz"
    packed.write_bytes(gzip.compress((SPLATS / "two-splats.log").read_bytes()))
    assert wqci_triage(str(packed)).stdout.splitlines()[-1] == "2 finding(s)"
    known = tmp_path / "known.yaml"
    known.write_text("any-tree:\n  - match: '^lockdep: possible deadlock in __flush_workqueue$'\n    reason: seen before\n"
                     "other-tree:\n  - match: '^kcsan: .*kick_pool'\n    reason: p->wake_cpu\n")
    expected = wqci_triage(str(SPLATS / "two-splats.log"), "--known", str(known))
    assert expected.returncode == 0 and expected.stdout.splitlines()[-1] == "2 finding(s), 2 known"
    binary = tmp_path / "vmlinux"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" * 8)
    refused = wqci_triage(str(binary))
    assert refused.returncode == 2 and refused.stderr.startswith(f"E: {binary}: ")


def _repeated_console(printed_in: set[int], runs: int) -> str:
    """A console of `runs` wq_stress runs between wqci's markers, the recorded KCSAN report of
    unknown origin printed in the runs of `printed_in` (twice in the first of them)."""
    report = (DATA / "splats" / "kcsan-race-unknown-origin.log").read_text()
    lines = []
    for k in range(1, runs + 1):
        lines.append(f"[  {10 * k}.000000] wqci: begin suite wq_stress run {k}")
        if k in printed_in:
            lines += [report] * (2 if k == min(printed_in) else 1)
        lines.append(f"[  {10 * k + 9}.000000] wqci: end suite wq_stress run {k}")
    return "\n".join(lines) + "\n"


def test_a_finding_knows_the_runs_that_printed_it():
    (finding,) = triage.triage(_repeated_console({2, 4}, 5))
    assert (finding.where, finding.runs, finding.count) == ("wq_stress", (2, 4), 3)
    assert finding.to_dict()["runs"] == [2, 4]
    # a paste without wqci's markers has no runs
    assert triage.triage((DATA / "splats" / "kcsan-race-unknown-origin.log").read_text())[0].runs == ()


def test_repeated_runs_give_each_finding_its_incidence_with_an_exact_bound():
    from pipeline.analysis import rates
    from pipeline.model.cases import Case
    from pipeline.model.results import SuiteResult

    found = triage.triage(_repeated_console({2, 4}, 5))
    cases = [Case("wq_stress", Status.PASS, case="stranded", runs=(k,)) for k in range(1, 6)]
    (rate,) = rates.incidence(found, cases).values()
    assert (rate.name, rate.failed, rate.runs) == ("KCSAN: data-race in test_kernel_rmw_array", 2, 5)
    assert (round(rate.low, 4), round(rate.high, 4)) == (0.0527, 0.8534)  # Clopper-Pearson, 2 of 5
    assert rate.text == "2 of 5 runs of wq_stress printed it: rate 0.4, 0.0527..0.853 at 95%"
    # not repeated: no incidence; a finding of another suite: none either
    assert rates.incidence(found, cases[:1]) == {}
    assert rates.incidence(found, [Case("proxy_stress", Status.PASS, runs=(k,)) for k in (1, 2)]) == {}
    # the finding's case carries it
    suite = SuiteResult(name="x86_64/debug/smp8-numa2/base")
    suite.cases.extend(cases)
    suite.add_findings(found, incidence={fp: r.text for fp, r in rates.incidence(found, cases).items()})
    last = suite.cases[-1]
    assert last.message == ("KCSAN: data-race in test_kernel_rmw_array (new, seen 3x in wq_stress; "
                            "2 of 5 runs of wq_stress printed it: rate 0.4, 0.0527..0.853 at 95%)")
    assert last.properties["incidence"].startswith("2 of 5 runs")


def test_one_title_with_two_stacks_is_a_row_each_and_one_for_the_title():
    from dataclasses import replace

    from pipeline.analysis import rates
    from pipeline.model.cases import Case

    (f,) = triage.triage(_repeated_console({2, 4}, 5))
    other = replace(f, fingerprint="f" * 40, frames=("kick_pool", "process_one_work"), runs=(4, 5))
    f = replace(f, frames=("kick_pool", "__queue_work", "queue_work_on", "wq_stress_fn"))
    cases = [Case("wq_stress", Status.PASS, case="stranded", runs=(k,)) for k in range(1, 6)]
    found = rates.incidence([f, other], cases)
    title = "KCSAN: data-race in test_kernel_rmw_array"
    assert [(k, r.name, r.failed) for k, r in found.items()] == [
        (f.fingerprint, f"{title} (kick_pool < __queue_work < queue_work_on)", 2),
        ("f" * 40, f"{title} (kick_pool < process_one_work)", 2),
        (f"wq_stress|{title}", f"{title} (any of its 2 reports)", 3)]  # runs {2, 4} and {4, 5}
