"""reply.txt from recorded results.json: the headers that thread it, the tags left to fill,
each new finding with its report and kconfig fragments, the A/B table with its note."""

import copy
import json
from pathlib import Path

from pipeline import config
from pipeline.output import reply, rundir

RUNS = Path(__file__).parents[1] / "data" / "runs"
LAYOUT = config.Layout()
SUBJECT2 = "workqueue: defer wake_up_process() outside pool->lock on hot paths"
MID1 = "<20260526-fastwake-v1-1-e69ad86923e6@debian.org>"
MID2 = "<20260526-fastwake-v1-2-e69ad86923e6@debian.org>"


def data(fixture: str) -> dict:
    return json.loads((RUNS / fixture / "results.json").read_text())


def text_of(d: dict) -> tuple[list[str], str]:
    text = reply.reply(rundir.view(d), LAYOUT)
    head, _, body = text.partition("\n\n")
    return head.splitlines(), body


def test_a_new_finding_replies_to_the_patch_it_first_appears_with():
    head, body = text_of(data("fail-new-finding"))
    assert head == [f"Subject: Re: [PATCH 2/2] {SUBJECT2}", "To: Breno Leitao <leitao@debian.org>",
                    f"In-Reply-To: {MID2}", f"References: {MID2}"]
    assert body.startswith("[wqci: this replies to patch 2/2: the first new finding appears with\npatch 2/2]\n\n"
                           "Hi Breno,\n")
    assert "\nReported-by: <name and address of who reports it>\nCloses: <link to this report>\n" in body
    # the finding: title, evidence, where it first appears, the report as decoded, the flavour's fragments
    assert "\n1. KCSAN: data-race in kick_pool_pick\n" in body
    assert "   new on x86_64: patched 4 of 4, baseline 0 of 4, history 0 of 6,\n   p=0.0143\n" in body
    assert "kick_pool_pick (kernel/workqueue.c:1310 (discriminator 1))\nprocess_one_work (kernel/workqueue.c:3327)\n" \
        in body
    kcsan = (LAYOUT.configs / "kconfig" / "kcsan.config").read_text()
    assert "\n# kcsan.config\n" + kcsan in body and "\n# lockdep.config\n" in body
    assert "guest.config, perf.config and arch-x86_64.config" in body
    # the other failure, the unconfirmed finding, the A/B table and its note
    assert "- arm64 fastwake-v1: build: fastwake-v1 2/2 does not build: kernel/workqueue.c:1290:9:" in body
    assert "- KCSAN: data-race in process_one_work (x86_64: patched 1 of 4, baseline\n  0 of 4" in body
    assert "[not representative of hardware (emulated with TCG, 8 vCPUs on 2 host\nCPUs)]" in body
    assert ("\nscope  baseline items/s  patched items/s  gain   95% CI          p50 ns          p (Holm)  verdict\n"
            in body)
    assert ("\ncpu    7,198             7,486            +4.0%  [-0.3%, +8.5%]  30000 -> 30000  0.254     no change "
            "detected (could detect ±11.3%)\n") in body
    assert "\nresolution: with 4 run(s) a side this A/B could detect a change of\n±11.3% to ±13.4%" in body
    assert body.endswith("-- \nwqci, wqci run fastwake-v1 (run 3f9a0c2e7b1d4e65)\n")


def test_prose_is_wrapped_and_reports_are_not():
    _, body = text_of(data("fail-new-finding"))
    report = data("fail-new-finding")["arches"][0]["new_findings"][0]["text"]
    long_report_lines = [line for line in report.splitlines() if len(line) > reply.WIDTH]
    assert long_report_lines and all(line in body.splitlines() for line in long_report_lines)


def test_without_each_patch_it_replies_to_the_last_patch_and_says_why():
    d = data("fail-new-finding")
    for arch in d["arches"]:
        for f in arch["new_findings"]:
            f["first_patch"] = None
    head, body = text_of(d)
    assert head[0] == f"Subject: Re: [PATCH 2/2] {SUBJECT2}" and head[2] == f"In-Reply-To: {MID2}"
    assert "[wqci: this replies to patch 2/2: the run tested the series as a whole\n(--each-patch names" in body


def test_a_finding_of_patch_1_replies_to_patch_1():
    d = data("fail-new-finding")
    d["arches"][0]["new_findings"][0]["first_patch"] = "fastwake-v1 1/2"
    head, body = text_of(d)
    assert head[0] == "Subject: Re: [PATCH 1/2] workqueue: split kick_pool() into kick_pool_pick() + wake_up_process()"
    assert head[2:] == [f"In-Reply-To: {MID1}", f"References: {MID1}"]
    assert "first appears with patch 1/2: workqueue: split kick_pool() into" in body


def test_a_patch_that_does_not_apply_is_the_one_replied_to():
    d = copy.deepcopy(data("fail-new-finding"))
    arm = d["suites"][3]
    apply2 = next(c for c in arm["cases"] if c["name"] == "apply.2")
    apply2.update(status="fail", message="patch 2/2 does not apply: kernel/workqueue.c hunk #3")
    d["suites"] = [arm]
    head, _ = text_of(d)
    assert head[0] == f"Subject: Re: [PATCH 2/2] {SUBJECT2}" and head[2] == f"In-Reply-To: {MID2}"


def test_a_pass_is_a_short_reply_and_a_missing_message_id_is_said_not_invented():
    head, body = text_of(data("pass-older-format"))
    assert head == [f"Subject: Re: [PATCH 2/2] {SUBJECT2}"]
    assert body.startswith("[wqci: no Message-ID is recorded for patch 2/2 of fastwake-v1; set\n"
                           "In-Reply-To and References to it before sending]\n")
    assert "\nHello,\n\nwqci tested this series on x86_64 against its base: no new findings, the\nverdict is pass.\n" \
        in body
    assert "Reported-by" not in body and "Closes" not in body
    assert "Also seen, and pre-existing (the baseline or its history shows them):\nKCSAN: data-race in " \
           "process_one_work." in body
    assert "[not representative of hardware (emulated with TCG)]" in body
    assert len(body.splitlines()) < 40
