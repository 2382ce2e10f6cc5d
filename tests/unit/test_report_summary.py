"""summary.md (and report.html, built from the same blocks) read top-down: the verdict and its
reasons, per arch the findings, other failures, the A/B table and what was skipped, then the
detail folded, baseline and patched side by side; no message cut inside a word."""

import json
import re
import shutil
from pathlib import Path

from pipeline.output import report
from pipeline.output.rundir import clip

RUNS = Path(__file__).parents[1] / "data" / "runs"


def written(tmp_path: Path, fixture: str) -> tuple[str, str, Path]:
    run_dir = tmp_path / fixture
    shutil.copytree(RUNS / fixture, run_dir)
    md, page = report.write(run_dir)
    return md.read_text(), page.read_text(), run_dir


def test_the_summary_opens_with_the_verdict_and_reads_top_down(tmp_path):
    md, _, run_dir = written(tmp_path, "fail-new-finding")
    lines = md.splitlines()
    assert lines[0] == "# wqci run fastwake-v1: FAIL"
    order = ["**2 reason(s):**",
             "- x86_64 fastwake-v1: new KCSAN: data-race in kick_pool_pick (patched 4 of 4, baseline 0 of 4, "
             "history 0 of 6, p=0.0143; first in fastwake-v1 2/2)",
             "- arm64 fastwake-v1: build: fastwake-v1 2/2 does not build: kernel/workqueue.c:1290:9: error: "
             "implicit declaration of function 'kick_pool_pick' [-Werror=implicit-function-declaration]",
             "**1 warning(s), not counted against the series:**",
             "x86_64: findings: 1 new, 1 unconfirmed; A/B on 4 scope(s): no change detected · "
             "arm64: not booted (the fastwake-v1 kernel failed at build)",
             "## x86_64", "### new findings (fail the run) (1)", "#### KCSAN: data-race in kick_pool_pick",
             "new: patched 4 of 4, baseline 0 of 4, history 0 of 6, p=0.0143; seen 1 time(s) in test_workqueue; "
             "first appears with fastwake-v1 2/2; touches kick_pool_pick (changed by 1/2), process_one_work "
             "(changed by 2/2)",
             "BUG: KCSAN: data-race in kick_pool_pick (kernel/workqueue.c:1310 (discriminator 1))",
             "### unconfirmed findings (patched kernel only, too rare to tell) (1)",
             "#### KCSAN: data-race in process_one_work",
             "### A/B test_workqueue",
             "baseline vs patched, up to 4 run(s) a side; Welch t on log items/s, Holm over scopes",
             "**not representative of hardware (emulated with TCG, 8 vCPUs on 2 host CPUs)**",
             "| scope | baseline items/s | patched items/s | gain | 95% CI | p50 ns | p (Holm) | verdict |",
             "| cpu | 7,198 | 7,486 | +4.0% | [-0.3%, +8.5%] | 30000 -> 30000 | 0.254 | no change detected "
             "(could detect ±11.3%) |",
             "resolution: with 4 run(s) a side this A/B could detect a change of ±11.3% to ±13.4% depending on the "
             "scope",
             "![x86_64: items/s per scope, baseline and patched](throughput.png)",
             "### skipped (1)", "- wq_stress.hotplug (baseline #1, fastwake-v1 #1): hotplug=0",
             "## arm64", "No kernel was booted on this arch (the fastwake-v1 kernel failed at build), so nothing "
             "was triaged.", "### other failures (1)", "### skipped (1)",
             "- boots, suites and the A/B table: the fastwake-v1 kernel failed at build",
             "## Details", "## Reproduce and hand off"]
    at = 0
    for line in order:  # each after the one before
        assert line in lines[at:], line
        at = lines.index(line, at) + 1
    assert (run_dir / "throughput.png").stat().st_size > 10_000


def test_the_detail_is_folded_with_baseline_and_patched_side_by_side(tmp_path):
    md, page, _ = written(tmp_path, "fail-new-finding")
    detail = md[md.index("## Details"):]
    assert "<details><summary>x86_64 debug test_workqueue: baseline 20 pass; fastwake-v1 20 pass</summary>" in detail
    assert "| case | run | baseline | fastwake-v1 |" in detail
    assert "| cpu | 2 | pass 7,416 items/s, p50 30,000 ns | pass 7,713 items/s, p50 30,000 ns |" in detail
    assert "| hotplug | 1 | skip hotplug=0 | skip hotplug=0 |" in detail
    assert ("<details><summary>arm64 debug stages: baseline 2 pass; fastwake-v1 1 fail, 3 pass</summary>" in detail)
    # in the page, every table of the detail is inside a <details>, none of them open
    after = page[page.index("id='details'"):page.index("id='handoff'")]
    assert after.count("<table") == after.count("<details") and "<details open" not in page
    assert "<header id='verdict' class='fail'><h1>wqci run fastwake-v1: FAIL</h1>" in page


def test_messages_are_cut_between_words():
    message = "passed (stress (stress_inorder_work) failed with -35: a stress test ran out of time while backing off)"
    for width in range(20, len(message)):
        cut = clip(message, width)
        assert len(cut) <= width and cut.endswith("…")
        kept = cut[:-1]
        assert message.startswith(kept) and message[len(kept)] in " ,;:)", (width, cut)
    assert clip(message, len(message)) == message
    assert clip("  several\n lines  of text ", 80) == "several lines of text"


def test_long_reasons_keep_whole_words(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(RUNS / "fail-new-finding", run_dir)
    data = json.loads((run_dir / "results.json").read_text())
    long = "fastwake-v1 2/2 does not build: " + " ".join(["kernel/workqueue.c:1290:9: error: implicit declaration"] * 8)
    build = data["suites"][3]["cases"][-1]
    build["message"] = long
    data["verdict"]["reasons"][1] = f"arm64/debug/smp8-numa2/fastwake-v1: build: {long}"
    (run_dir / "results.json").write_text(json.dumps(data))
    md, _ = report.write(run_dir)
    (line,) = [l for l in md.read_text().splitlines() if l.startswith("- arm64 fastwake-v1: build: ")]
    kept = line.removeprefix("- arm64 fastwake-v1: build: ").removesuffix("…")
    assert line.endswith("…") and long.startswith(kept) and long[len(kept)] == " "
    # the whole message is in the arch's section
    assert f"\n- fastwake-v1: build: {long}\n" in md.read_text()


def test_a_pass_with_nothing_new_says_so_above_everything(tmp_path):
    md, _, _ = written(tmp_path, "pass-older-format")
    head = md.split("## x86_64")[0]
    assert head.startswith("# wqci run fastwake-v1: PASS\n")
    assert "**PASS: no failing stage, suite or A/B scope, and no new finding.**" in head
    assert "x86_64: findings: 1 pre-existing; A/B on 4 scope(s): no significant change" in head
    assert re.search(r"<details><summary>x86_64: pre-existing findings of the patched kernel \(1\)</summary>", md)


def test_an_interrupted_run_still_gets_every_file(tmp_path):
    """Ctrl-C during the first build: results.json has a tree stage, an interrupted case and no
    outcome per arch; the report and the hand-off files are written from what is there."""
    from kcidb_io import schema

    run_dir = tmp_path / "run"
    shutil.copytree(RUNS / "fail-new-finding", run_dir)
    data = json.loads((run_dir / "results.json").read_text())
    suite = data["suites"][0]
    suite["cases"] = suite["cases"][:1] + [{"name": "interrupted", "suite": "interrupted", "variant": "", "case": "",
                                            "runs": [], "status": "error", "duration": 0.0, "metrics": {},
                                            "message": "interrupted during tree, apply and build of the baseline",
                                            "properties": {}}]
    data.update(suites=[suite], arches=[], status="error",
                verdict={"status": "error", "reasons": [f"{suite['name']}: interrupted: {suite['cases'][1]['message']}"],
                         "warnings": []})
    (run_dir / "results.json").write_text(json.dumps(data))
    md, _ = report.write(run_dir)
    text = md.read_text()
    assert text.startswith("# wqci run fastwake-v1: ERROR\n")
    assert ("- x86_64 baseline: interrupted: interrupted during tree, apply and build of the baseline" in text)
    assert "x86_64: not booted (the run stopped before the first boot)" in text
    schema.LATEST.validate_exactly(json.loads((run_dir / "kcidb.json").read_text()))
    assert "test_kernel wqci test --base --arch x86_64" in (run_dir / "reproduce.sh").read_text()
    assert (run_dir / "reply.txt").read_text().startswith(
        "Subject: Re: fastwake-v1\nTo: Breno Leitao <leitao@debian.org>\n\n[wqci: the run recorded no patches (it "
        "stopped before applying the\nseries); find the thread")
