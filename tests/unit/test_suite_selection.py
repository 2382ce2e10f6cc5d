"""Default suites chosen by what a series changes, and module parameters checked by their declared type."""

import pytest

from pipeline import config
from pipeline.analysis.touched import changed_paths
from pipeline.model.errors import ConfigError, UsageError
from pipeline.suites.config import load_suites
from tests.conftest import ROOT

LAYOUT = config.Layout(root=ROOT)


def test_a_workqueue_series_selects_the_workqueue_suites_and_says_why_the_others_are_skipped():
    suites = load_suites(LAYOUT)
    series = config.load_series(LAYOUT, "fastwake-v1")
    paths = changed_paths(series.patch_paths())
    assert paths == ["kernel/workqueue.c"]
    chosen, skipped = suites.by_paths(paths)
    assert chosen == ["test_workqueue", "wq_stress", "proxy_stress"]
    assert sorted(skipped) == ["locktorture", "ww_mutex_selftest"]
    assert skipped["ww_mutex_selftest"].startswith("the series changes none of its paths (kernel/locking/ww_*, ")
    assert skipped["ww_mutex_selftest"].endswith("it runs in the nightly or with --suite")


def test_a_scheduler_series_selects_every_suite():
    suites = load_suites(LAYOUT)
    paths = changed_paths(config.load_series(LAYOUT, "wake-prefer").patch_paths())
    assert suites.by_paths(paths) == (list(suites.default), {})


def test_a_change_no_suite_claims_runs_all_defaults():
    suites = load_suites(LAYOUT)
    assert suites.by_paths(["Documentation/core-api/workqueue.rst"]) == (list(suites.default), {})


@pytest.mark.parametrize("key, value", [("wq_items", "1000"), ("wq_items", "-1")])
def test_declared_integer_parameters_take_integers(key, value):
    load_suites(LAYOUT).get("test_workqueue").check_param(key, value, f"test_workqueue.{key}={value}")


@pytest.mark.parametrize("value, what", [("1.5", "an integer"), ("abc", "an integer")])
def test_declared_integer_parameters_refuse_other_values(value, what):
    with pytest.raises(UsageError) as e:
        load_suites(LAYOUT).get("test_workqueue").check_param("wq_items", value, f"test_workqueue.wq_items={value}")
    assert str(e.value) == f"--param test_workqueue.wq_items={value}: test_workqueue.wq_items is {what} (default 2000)"


def _suites_yaml(tmp_path, params: str):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "suites.yaml").write_text(
        "default: [s]\nsuites:\n  s:\n    parser: ktap\n    module: m\n    params: " + params + "\n")
    return config.Layout(root=tmp_path)


def test_yaml_types_declare_bool_and_string_parameters(tmp_path):
    s = load_suites(_suites_yaml(tmp_path, "{verbose: true, mode: fast}")).get("s")
    assert s.param_types == {"verbose": "bool", "mode": "str"}
    assert s.params == {"verbose": "Y", "mode": "fast"}  # as the kernel's param parser reads a bool
    s.check_param("verbose", "n", "s.verbose=n")
    with pytest.raises(UsageError, match=r"s.verbose is a boolean \(0/1, y/n, true/false\) \(default Y\)"):
        s.check_param("verbose", "maybe", "s.verbose=maybe")


def test_a_parameter_of_no_module_type_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"suites.s.params.ratio': 0.5 is a float; a module parameter is an int"):
        load_suites(_suites_yaml(tmp_path, "{ratio: 0.5}"))


def test_triage_params_lighten_the_sanitizer_side_unless_the_user_set_them():
    suites = load_suites(LAYOUT)
    (tw,) = suites.resolve(["test_workqueue"])
    assert tw.params["wq_items"] == "2000" and tw.for_triage().params["wq_items"] == "300"
    (mine,) = suites.resolve(["test_workqueue"], params=["test_workqueue.wq_items=700"])
    assert mine.params["wq_items"] == "700" and mine.for_triage().params["wq_items"] == "700"
