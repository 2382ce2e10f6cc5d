"""The exception family: three categories, and the category decides the exit code."""

import inspect

import pytest

from pipeline.model import errors
from pipeline.model.errors import EXIT_INFRA, EXIT_VERDICT, InfraError, UserError, VerdictError, WqciError

CATEGORIES = {
    UserError: ["UsageError", "ConfigError", "UnknownName", "MboxError", "KconfigError"],
    InfraError: ["MissingTool", "CommandFailed", "CommandTimeout", "TreeError", "FetchError", "SandboxError",
                 "RootfsError"],
    VerdictError: ["ApplyFailed", "BuildFailed", "GuestError"],
}


def test_every_error_is_in_exactly_one_category_with_its_exit_code():
    classes = {name for name, cls in inspect.getmembers(errors, inspect.isclass)
               if issubclass(cls, WqciError) and cls not in (WqciError, *CATEGORIES)}
    assert classes == {name for names in CATEGORIES.values() for name in names}
    for category, names in CATEGORIES.items():
        for name in names:
            cls = getattr(errors, name)
            assert [c for c in CATEGORIES if issubclass(cls, c)] == [category], name
            assert cls.exit_code == (EXIT_VERDICT if category is VerdictError else EXIT_INFRA), name


@pytest.mark.parametrize("error, text", [
    (errors.UsageError(detail="give --base"), "give --base"),
    (errors.ConfigError(path="configs/x.yaml", detail="field 'a': missing"), "configs/x.yaml: field 'a': missing"),
    (errors.UnknownName(kind="tree", name="t", where="trees.yaml", options="a, b"),
     "unknown tree 't' (trees.yaml); options are: a, b"),
    (errors.CommandTimeout(timeout=12.4, cmd="make"), "command timed out after 12 s: make"),
    (errors.FetchError(what="x.deb", detail="bad sha256"), "x.deb: bad sha256"),
    (errors.ApplyFailed(patch=2, detail="demo: patch 2/3 does not apply", report="r"), "demo: patch 2/3 does not apply"),
])
def test_messages_are_the_templates(error, text):
    assert str(error) == text


def test_apply_failed_carries_the_patch_number():
    err = errors.ApplyFailed(patch=3, detail="x", report="the hunk")
    assert err.patch == 3 and err.fields == {"patch": 3, "detail": "x", "report": "the hunk"}
    assert err.exit_code == EXIT_VERDICT
