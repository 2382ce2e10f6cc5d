"""KTAP parsing (pipeline/ktap.py) and the ktap suite parser, on kunit's recorded logs and
samples in our modules' format (tests/data/ktap, see SOURCE.md)."""

import pytest

from pipeline import suites
from pipeline.suites import ktap
from pipeline.model.status import Status
from pipeline.model.cases import ModuleRun, SuiteRun
from tests.conftest import DATA


def sample(name: str) -> str:
    return (DATA / "ktap" / name).read_text()


def one(text: str) -> ktap.KtapDocument:
    (doc,) = ktap.parse(text)
    return doc


def walk(results):
    for r in results:
        yield r
        yield from walk(r.subtests)


def counts(doc: ktap.KtapDocument) -> dict[str, int]:
    out = {s.value: 0 for s in Status}
    for r in walk(doc.results):
        out[r.status.value] += 1
    return out


@pytest.mark.parametrize("line, message", [
    ("[   12.345678] KTAP version 1", "KTAP version 1"),
    ("<6>KTAP version 1", "KTAP version 1"),
    ("<6>[   12.345678] ok 1 bursts", "ok 1 bursts"),
    ("[    0.060000][    T1] \t# Subtest: kunit-resource-test", "\t# Subtest: kunit-resource-test"),
    ("[   12.345678]     ok 1 cpu\r", "    ok 1 cpu"),
    ("[   12.345678]", ""),
    ("    ok 1 cpu", "    ok 1 cpu"),
    ("[drm] ok 1 not a timestamp", "[drm] ok 1 not a timestamp"),
])
def test_strip_prefix(line, message):
    assert ktap.strip_prefix(line) == message


def test_kunit_failure_tab_nesting_and_noise():
    doc = one(sample("test_is_test_passed-failure.log"))
    assert (doc.version, doc.plan, doc.problems) == ("TAP version 14", 2, ())
    assert [(r.name, r.status) for r in doc.results] == [("sysctl_test", Status.PASS), ("example", Status.FAIL)]
    assert counts(doc) == {"pass": 10, "fail": 2, "error": 0, "skip": 0}
    failed = doc.results[1].subtests[0]
    assert failed.name == "example_simple_test" and not failed.ok
    # "init_suite" and "Expected 1 + 1 == 3" are not KTAP lines; the "#" lines are this test's
    assert failed.diagnostics == ("example_simple_test: initializing",
                                  "example_simple_test: EXPECTATION FAILED at lib/kunit/example-test.c:30",
                                  "example_simple_test: example_simple_test failed")


def test_kunit_nested_failure_two_levels_deep():
    doc = one(sample("test_is_test_passed-failure-nested.log"))
    assert doc.problems == ()
    first, second = doc.results
    assert (first.name, first.ok, [s.name for s in first.subtests]) == ("subtest 1", False, ["test 1"])
    assert first.subtests[0].status is Status.PASS
    assert (second.name, [(s.name, s.status) for s in second.subtests]) == \
        ("subtest 2", [("subsubtest 1", Status.FAIL)])


def test_kunit_skips():
    doc = one(sample("test_skip_tests.log"))
    assert counts(doc) == {"pass": 6, "fail": 0, "error": 0, "skip": 1}
    skipped = doc.results[1].subtests[1]
    assert (skipped.name, skipped.directive, skipped.reason, skipped.ok) == \
        ("example_skip_test", "SKIP", "this test should be skipped", True)


def test_kselftest_skip_without_a_name_and_nested_tap_as_diagnostics():
    doc = one(sample("test_is_test_passed-kselftest.log"))
    assert doc.version == "TAP version 13" and doc.problems == ()
    assert [r.status for r in doc.results] == [Status.PASS, Status.PASS, Status.SKIP]
    assert (doc.results[2].name, doc.results[2].reason) == ("", "selftests: membarrier: membarrier_test_multi_thread")
    assert doc.results[0].diagnostics[:3] == ("selftests: membarrier: membarrier_test_single_thread",
                                              "TAP version 13", "1..2")
    assert doc.results[0].subtests == ()


def test_missing_plan_is_allowed():
    doc = one(sample("test_is_test_passed-missing_plan.log"))
    assert (doc.plan, doc.problems) == (None, ())
    assert [len(r.subtests) for r in doc.results] == [8, 2]


def test_panic_inside_a_suite_is_a_failed_test_and_problems():
    doc = one(sample("test_kernel_panic_interrupt.log"))
    crashed = doc.results[2]
    assert (crashed.number, crashed.name, crashed.status, crashed.directive) == \
        (3, "string-stream-test", Status.FAIL, "ERROR")
    assert [s.name for s in crashed.subtests] == ["string_stream_test_empty_on_creation"]
    assert doc.problems == ("test 3 'string-stream-test': no result line after its subtests",
                            "string-stream-test: plan 1..3 but 1 results")


@pytest.mark.parametrize("name", ["test_interrupted_tap_output.log", "test_multiple_prefixes.log"])
def test_kernel_lines_and_prefixes_around_kunit_output(name):
    doc = one(sample(name))
    assert doc.problems == () and doc.plan == 3
    assert [(r.name, len(r.subtests)) for r in doc.results] == \
        [("kunit-resource-test", 5), ("kunit-try-catch-test", 2), ("string-stream-test", 3)]
    assert counts(doc)["pass"] == 13


def test_subtest_header_names_the_nested_document():
    doc = one(sample("test_parse_subtest_header.log"))
    assert [(r.name, [s.name for s in r.subtests]) for r in doc.results] == [("suite", ["test"])]


def test_our_format_metrics_and_diagnostics():
    doc = one(sample("wq_stress.log"))
    bursts, deadline, hotplug = doc.results
    assert bursts.status is Status.PASS and bursts.diagnostics[0] == "wq_stress: 8 producers, 2 workqueues, 20 s"
    assert bursts.metrics == {"items": 48000.0, "wall_ms": 20100.0, "lat_p50_us": 35.0, "lat_p99_us": 900.0,
                              "lat_max_us": 4100.0}
    assert deadline.status is Status.FAIL and deadline.metrics == {}
    assert deadline.diagnostics == ("stranded work: wq=wq_stress0 item=17 queued_at_ms=1234 cpu=3 scope=numa "
                                    "waited_ms=5000",)
    assert (hotplug.status, hotplug.reason) == (Status.SKIP, "hotplug=0")


def test_our_format_nested():
    doc = one(sample("wq_stress-nested.log"))
    scopes, flush = doc.results
    assert doc.problems == ()
    assert (scopes.status, scopes.diagnostics) == (Status.FAIL, ("scopes: 1 of 2 failed",))
    assert [(s.name, s.status, s.metrics["lat_p99_us"]) for s in scopes.subtests] == \
        [("cpu", Status.PASS, 700.0), ("numa", Status.FAIL, 1200.0)]
    assert scopes.subtests[1].diagnostics[0].startswith("stranded work: wq=wq_stress1")
    assert flush.metrics == {"items": 30000.0, "seconds": 5.0}


@pytest.mark.parametrize("directive, status", [("# SKIP no hotplug", Status.SKIP), ("# skip", Status.SKIP),
                                               ("# TODO broken", Status.PASS), ("# XFAIL known", Status.PASS),
                                               ("# TIMEOUT 30 seconds", Status.FAIL), ("# rcode=3", Status.FAIL),
                                               ("", Status.FAIL)])
def test_directives(directive, status):
    (result,) = one(f"KTAP version 1\n1..1\nnot ok 1 t {directive}\n").results
    assert result.status is status and result.name == "t"


def test_hyphen_before_the_name_is_not_part_of_it():
    assert [r.name for r in one("TAP version 14\n1..2\nok 1 - a-b\nok 2 -c\n").results] == ["a-b", "-c"]


def test_problems_not_exceptions():
    doc = one("KTAP version 1\n1..4\nok 1 a\n# metric: x=1 y=fast =3\nok 3 b\n1..5\nBail out! no memory\n")
    assert doc.problems == ("result 3 out of order (expected 2)", "b: metric 'y=fast' is not key=number",
                            "b: metric '=3' is not key=number", "second plan line 1..5", "bail out: no memory",
                            "plan 1..4 but 2 results")
    assert doc.results[1].metrics == {"x": 1.0}


def test_nothing_but_a_version_line():
    assert one("KTAP version 1\n").problems == ("no plan and no results",)
    assert ktap.parse("1..3\nok 1 a\n# no version line before these\n") == []


def test_one_document_per_module_load_and_trailing_diagnostics():
    log = "\n".join(["[ 1.0] KTAP version 1", "[ 1.1] 1..1", "[ 1.2] ok 1 a", "[ 1.3] # done",
                     "[ 1.4] random: crng init done", "[ 2.0] KTAP version 1", "[ 2.1] 1..1", "[ 2.2] not ok 1 a"])
    first, second = ktap.parse(log)
    assert (first.results[0].ok, first.diagnostics, second.results[0].ok) == (True, ("done",), False)


def test_sibling_nested_documents_without_their_result_line():
    doc = one("KTAP version 1\n1..2\n  KTAP version 1\n  1..1\n  ok 1 x\n  KTAP version 1\n  1..1\n  ok 1 y\n"
              "ok 2 second\n")
    assert [(r.number, r.name, r.ok, [s.name for s in r.subtests]) for r in doc.results] == \
        [(1, "", False, ["x"]), (2, "second", True, ["y"])]
    assert doc.problems == ("test 1: no result line after its subtests",)


def test_diagnostics_left_in_a_nested_document_go_to_its_parent():
    doc = one("KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: example\n    1..1\n    ok 1 t\n"
              "    # example: pass:1 fail:0\n# parent line\nok 1 example\n")
    assert doc.results[0].diagnostics == ("example: pass:1 fail:0", "parent line")
    assert doc.results[0].subtests[0].diagnostics == ()


def test_render_for_people():
    doc = one(sample("wq_stress-nested.log"))
    assert ktap.render(doc.results[0])[-3:] == ["    not ok 2 numa", "# scopes: 1 of 2 failed", "not ok 1 scopes"]
    assert ktap.render(ktap.KtapResult(3, "hotplug", True, "SKIP", "hotplug=0")) == ["ok 3 hotplug # SKIP hotplug=0"]


# the suite parser


def mod(log: str, exit_code: int = 0, variant: str = "", duration: float = 30.0, **kw) -> ModuleRun:
    return ModuleRun(variant=variant, command="modprobe wq_stress", exit_code=exit_code, output=kw.pop("output", ""),
                     log=log, duration=duration, **kw)


def cases_of(*runs: ModuleRun, suite: str = "wq_stress"):
    return {c.name: c for c in suites.parser("ktap")(SuiteRun(suite=suite, runs=tuple(runs)))}


def test_suite_cases_from_our_format():
    cases = cases_of(mod(sample("wq_stress.log")))
    assert list(cases) == ["wq_stress.bursts", "wq_stress.deadline", "wq_stress.hotplug"]
    bursts, deadline, hotplug = cases.values()
    assert (bursts.status, bursts.message, bursts.duration) == (Status.PASS, "", pytest.approx(20.1))
    assert bursts.metrics["lat_p99_us"] == 900.0
    assert "# metric: items=48000" in bursts.text and bursts.text.endswith("ok 1 bursts")
    assert deadline.status is Status.FAIL
    assert deadline.message.startswith("stranded work: wq=wq_stress0 item=17")
    assert (hotplug.status, hotplug.message) == (Status.SKIP, "hotplug=0")
    # 30 s of run, 20.1 s measured by bursts: the other two share the rest
    assert deadline.duration == pytest.approx(4.95) and hotplug.duration == pytest.approx(4.95)


def test_suite_subtests_become_cases():
    cases = cases_of(mod(sample("wq_stress-nested.log"), duration=20.0))
    assert {n: c.status for n, c in cases.items()} == {
        "wq_stress.scopes": Status.FAIL, "wq_stress.scopes.cpu": Status.PASS, "wq_stress.scopes.numa": Status.FAIL,
        "wq_stress.flush": Status.PASS}
    assert cases["wq_stress.scopes"].message == "scopes: 1 of 2 failed"
    assert [(c.suite, c.variant, c.case, c.runs) for c in cases.values()][:2] == [
        ("wq_stress", "", "scopes", ()), ("wq_stress", "", "scopes.cpu", ())]
    assert "    not ok 2 numa" in cases["wq_stress.scopes"].text
    assert (cases["wq_stress.flush"].duration, cases["wq_stress.scopes"].duration) == (5.0, 15.0)
    assert cases["wq_stress.scopes.numa"].duration == pytest.approx(5.0)
    assert cases["wq_stress.scopes.numa"].message.startswith("stranded work: wq=wq_stress1")


def test_suite_failure_message_skips_metrics():
    cases = cases_of(mod("KTAP version 1\n1..1\n# metric: items=3\n# lost 2 items\nnot ok 1 bursts\n"))
    assert cases["wq_stress.bursts"].message == "lost 2 items"
    assert cases["wq_stress.bursts"].metrics == {"items": 3.0}


def test_suite_kunit_crash_gives_a_ktap_error():
    cases = cases_of(mod(sample("test_kernel_panic_interrupt.log")), suite="kunit")
    assert cases["kunit.string-stream-test"].status is Status.FAIL
    assert cases["kunit.string-stream-test"].message == "ERROR no result line after its subtests"
    assert cases["kunit.string-stream-test.string_stream_test_empty_on_creation"].status is Status.PASS
    assert cases["kunit.ktap"].status is Status.ERROR
    assert cases["kunit.ktap"].message == "test 3 'string-stream-test': no result line after its subtests"


def test_suite_timed_out_run():
    cases = cases_of(mod("", exit_code=-1, timed_out=True, duration=600.0))
    assert list(cases) == ["wq_stress"] and cases["wq_stress"].status is Status.ERROR


def test_suite_no_ktap_output():
    (case,) = cases_of(mod("wq_stress: unknown parameter 'nr' ignored\n", exit_code=1,
                           output="modprobe: ERROR: could not insert 'wq_stress'")).values()
    assert (case.name, case.status, case.message) == ("wq_stress", Status.FAIL, "no KTAP output")
    assert "could not insert" in case.text and "unknown parameter" in case.text


def test_suite_load_failure_after_passing_tests():
    log = "KTAP version 1\n1..1\nok 1 bursts\n"
    cases = cases_of(mod(log, exit_code=1, output="modprobe: ERROR: could not insert 'wq_stress': Invalid argument"))
    assert cases["wq_stress.load"].status is Status.FAIL and cases["wq_stress.load"].message == "load exited 1"
    assert "Invalid argument" in cases["wq_stress.load"].text
    # a failing test already says the run failed: no load case then
    assert "wq_stress.load" not in cases_of(mod(log.replace("ok 1", "not ok 1"), exit_code=1))


def test_suite_repeats_and_variants_are_named_apart():
    log = sample("wq_stress.log")
    names = list(cases_of(mod(log, variant="numa"), mod(log, variant="numa"), mod("", timed_out=True)))
    assert names[:3] == ["wq_stress.numa.bursts#1", "wq_stress.numa.deadline#1", "wq_stress.numa.hotplug#1"]
    assert names[3] == "wq_stress.numa.bursts#2" and names[-1] == "wq_stress#3"
    # the identity is in fields; the names above are derived from them
    case = cases_of(mod(log, variant="numa"), mod(log, variant="numa"))["wq_stress.numa.bursts#2"]
    assert (case.suite, case.variant, case.case, case.runs, case.stem) == (
        "wq_stress", "numa", "bursts", (2,), "wq_stress.numa.bursts")
    assert list(cases_of(mod("KTAP version 1\n1..0\n"), mod("KTAP version 1\n1..0\n"))) == ["wq_stress#1",
                                                                                             "wq_stress#2"]


def test_suite_two_documents_in_one_run():
    cases = cases_of(mod("KTAP version 1\n1..1\nok 1 a\nKTAP version 1\n1..1\nok 1 b\n"))
    assert cases["wq_stress.ktap"].message == "2 KTAP documents in one run"
    assert cases["wq_stress.a"].status is Status.PASS and cases["wq_stress.b"].status is Status.PASS


def test_suite_plan_zero_is_a_skip():
    (case,) = cases_of(mod("KTAP version 1\n1..0\n")).values()
    assert (case.name, case.status, case.message) == ("wq_stress", Status.SKIP, "no tests (plan 1..0)")


def test_recorded_amplified_wq_stress_run():
    docs = ktap.parse(sample("wq_stress-amplified-recorded.log"))
    assert len(docs) == 1 and not docs[0].problems
    results = {r.name: r for r in docs[0].results}
    assert [r.status for r in docs[0].results] == [Status.PASS, Status.PASS, Status.PASS, Status.SKIP]
    assert results["deadline"].metrics == {"stranded": 0, "cancelled": 0, "culled_kicked": 5, "culled_new": 1}
    assert results["all_items_ran"].metrics["items"] == 15904
    assert results["hotplug"].reason == "hotplug=0"


def test_recorded_proxy_stress_failure_keeps_its_reports_and_skips_the_stacks():
    run = SuiteRun("proxy_stress", (ModuleRun("", "modprobe proxy_stress", 0, "",
                                              sample("proxy_stress-recorded.log"), 17.0),))
    found = {c.name: c for c in suites.parser("ktap")(run)}
    assert set(found) == {"proxy_stress.chain", "proxy_stress.affinity", "proxy_stress.ww_ab", "proxy_stress.signal"}
    ww = found["proxy_stress.ww_ab"]
    assert ww.status is Status.FAIL and ww.message.startswith("lost wakeup: ww1")
    assert ww.text.count("lost wakeup:") == 3 and "Call Trace" not in ww.text
    assert ww.metrics["lost_wakeups"] == 3 and ww.metrics["backoffs"] == 1428
    assert found["proxy_stress.signal"].status is Status.PASS
