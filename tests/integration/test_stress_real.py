"""wqci's own stress modules in real guests. wq_stress and proxy_stress are built out of
tree against each kernel (x86_64 and arm64), loaded in the guest, and their KTAP results
become JUnit cases with metrics, on the base tree and on fastwake-v1-claim (fastwake-v1 runs
them as default suites in test_suites_real). --amplify adds the carry patch, its Kconfig
option and boot parameters, and its counters show the kick vs. idle-cull window being hit."""

import json
import re

import pytest

from tests.integration.test_suites_real import SCHEMA, cases, wqci

SHORT = ("--param", "wq_stress.duration_s=6", "--param", "proxy_stress.duration_s=4")
KTAP_CASES = ("wq_stress.deadline", "wq_stress.all_items_ran", "wq_stress.scope_switch", "wq_stress.hotplug",
              "proxy_stress.chain", "proxy_stress.affinity", "proxy_stress.ww_ab", "proxy_stress.signal")


def prop(xml: str, name: str) -> str:
    m = re.search(rf'<property name="{re.escape(name)}" value="([^"]*)"', xml)
    assert m, name
    return m.group(1)


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
@pytest.mark.parametrize("variant", ["base", "fastwake-v1-claim"])
def test_stress_modules_report_ktap_cases(arch, variant, layout, tmp_path):
    which = ["--base"] if variant == "base" else ["--series", variant]
    # CPU hotplug churn once, on the x86_64 base (offlining CPUs under TCG is slow)
    hotplug = arch == "x86_64" and variant == "base"
    done = wqci("test", *which, "--arch", arch, "--suite", "wq_stress", "--suite", "proxy_stress",
                "--out", str(tmp_path), *SHORT, "--param", f"wq_stress.hotplug={int(hotplug)}")
    junit = tmp_path / "junit.xml"
    assert junit.exists(), done.stderr
    SCHEMA.validate(str(junit))
    found = cases(SCHEMA.to_dict(str(junit)))
    for name in KTAP_CASES:
        assert name in found, (name, sorted(found), done.stdout[-3000:])
    bad = {n for n, c in found.items() if ("failure" in c or "error" in c) and not n.startswith("finding.")}
    assert not bad, (bad, done.stdout[-4000:])
    assert ("skipped" in found["wq_stress.hotplug"]) != hotplug
    xml = junit.read_text()
    assert int(prop(xml, "wq_stress.all_items_ran.items")) > 0
    assert prop(xml, "wq_stress.deadline.stranded") == "0"
    assert int(prop(xml, "wq_stress.scope_switch.switches")) > 0
    assert int(prop(xml, "proxy_stress.chain.ops")) > 0 and prop(xml, "proxy_stress.chain.lost_wakeups") == "0"
    if hotplug:
        assert int(prop(xml, "wq_stress.hotplug.cycles")) > 0
    # built out of tree with the kernel, installed under extra/
    commit = prop(xml, "commit")
    info = json.loads((layout.cache / "slots" / f"linux-7.2-{arch}-debug" / "out" / commit[:12] / "build.json")
                      .read_text())
    assert {"wq_stress.ko", "proxy_stress.ko"} <= set(info["modules"])


def test_amplify_reaches_the_cull_window_on_fastwake_v1(tmp_path):
    done = wqci("test", "--series", "fastwake-v1", "--suite", "wq_stress", "--amplify", "--repeat", "3",
                "--out", str(tmp_path), "--param", "wq_stress.duration_s=8")
    junit = tmp_path / "junit.xml"
    assert junit.exists(), done.stderr
    SCHEMA.validate(str(junit))
    found = cases(SCHEMA.to_dict(str(junit)))
    assert "apply.carry" in found and all(f"wq_stress.deadline#{i}" in found for i in (1, 2, 3))
    xml = junit.read_text()
    assert prop(xml, "amplify") == "wq-amplify"
    assert "workqueue.amplify_wake_delay_us=" in prop(xml, "kernel_cmdline")
    # The module found the carry patch's counters (so the option is built in), and the
    # amplified window is hit: about 7 culls of woken workers per 15 s run here, 0 in 1 run of 10.
    culled = sum(int(prop(xml, f"wq_stress.deadline#{i}.culled_kicked"))
                 + int(prop(xml, f"wq_stress.deadline#{i}.culled_new")) for i in (1, 2, 3))
    assert culled > 0, done.stdout[-3000:]
    assert prop(xml, "rate.wq_stress.deadline").startswith(tuple(f"{k} of 3 runs failed" for k in range(4)))
    assert "repeated case" in done.stdout


def test_quiet_mode_reports_an_item_whose_kick_was_skipped_as_stranded(tmp_path):
    """The detector of seed 001's stranding, proven on a real guest: the carry patch drops
    one kick on purpose, and in quiet mode no later burst of ours can rescue that item."""
    done = wqci("test", "--base", "--suite", "wq_stress", "--amplify", "--out", str(tmp_path),
                "--param", "wq_stress.quiet=1", "--param", "wq_stress.skip_kick=1",
                "--param", "wq_stress.deadline_ms=1000", "--param", "wq_stress.duration_s=5")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    junit = tmp_path / "junit.xml"
    SCHEMA.validate(str(junit))
    found = cases(SCHEMA.to_dict(str(junit)))
    (failure,) = found["wq_stress.deadline"]["failure"]
    assert failure["@message"].startswith("stranded work: wq=wq_stress") and failure["@message"].endswith(" quiet")
    xml = junit.read_text()
    assert prop(xml, "wq_stress.deadline.kicks_skipped") == "1"
    assert prop(xml, "wq_stress.deadline.stranded") == "1"
    assert prop(xml, "wq_stress.deadline.quiet") == "1"
    assert "E: base: fail" in done.stderr
