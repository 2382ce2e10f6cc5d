"""-K/--kconfig-add CONFIG_X=VALUE: checked like a fragment's lines before any work, merged
after the flavour's fragments, verified in the final .config like them, and part of the
build's identity (the fake kernel tree of test_build)."""

import json
import re
from dataclasses import replace

import pytest

from pipeline.build import kconfig
from pipeline.build import kernel as build
from pipeline.model.errors import ConfigError, KconfigError, UsageError
from tests.unit.test_build import fake, request  # noqa: F401 (fake is a fixture)


@pytest.mark.parametrize("item", ["CONFIG_KCSAN=y", "CONFIG_TEST_WORKQUEUE=m", "CONFIG_EXPERT=n", "CONFIG_NR_CPUS=64",
                                  "CONFIG_LOG_BUF_SHIFT=-1", "CONFIG_PHYSICAL_START=0x1000000",
                                  'CONFIG_CMDLINE="console=ttyS0 nokaslr"', 'CONFIG_X=""', 'CONFIG_X="a\\"b"'])
def test_good_options(item):
    assert kconfig.check_added(item) == item


@pytest.mark.parametrize("item,why", [
    ("KCSAN=y", "give CONFIG_NAME=VALUE, the name in capitals, digits and _ (e.g. CONFIG_KCSAN=y)"),
    ("CONFIG_kcsan=y", "give CONFIG_NAME=VALUE"),
    ("CONFIG_KCSAN", "give CONFIG_NAME=VALUE"),
    ("CONFIG_=y", "give CONFIG_NAME=VALUE"),
    ("CONFIG_KCSAN=yes", 'the value must be y, m, n, a number or a "string"'),
    ("CONFIG_KCSAN=", 'the value must be y, m, n, a number or a "string"'),
    ("CONFIG_CMDLINE=console=ttyS0", 'the value must be y, m, n, a number or a "string"'),
    ('CONFIG_CMDLINE="a"b"', 'the value must be y, m, n, a number or a "string"'),
])
def test_bad_options_are_usage_errors(item, why):
    with pytest.raises(UsageError) as exc:
        kconfig.check_added(item)
    assert str(exc.value).startswith(f"--kconfig-add {item}: {why}")


def test_a_fragment_line_is_checked_the_same_way(tmp_path):
    frag = tmp_path / "bad.config"
    frag.write_text("# a comment\nCONFIG_A=y\n# CONFIG_B is not set\n\nCONFIG_C=maybe\n")
    with pytest.raises(ConfigError) as exc:
        kconfig.requests([frag])
    assert str(exc.value) == f'{frag}: line 5: CONFIG_C=maybe: the value must be y, m, n, a number or a "string"'


def test_an_added_option_holds_in_the_final_config_and_changes_the_build(fake):
    layout, info = fake
    plain = build.build(layout, request(layout, info, flavor="kcsan"))
    added = build.build(layout, replace(request(layout, info, flavor="kcsan"), kconfig_add=("CONFIG_EXPERT=y",)))
    assert not added.cached, "-K is part of the build's identity"
    final = kconfig.parse_config(added.artifacts["config"].read_text())
    assert final["EXPERT"] == "y" and "EXPERT" not in kconfig.parse_config(plain.artifacts["config"].read_text())
    assert added.config_hash != plain.config_hash
    key = json.loads((added.out / "build.json").read_text())["key"]
    assert key["kconfig_add"] == ["CONFIG_EXPERT=y"]
    assert "kconfig_add" not in json.loads((plain.out / "build.json").read_text())["key"]
    # each keeps its own artifacts: both are cached now
    assert plain.out.name == info.commit[:12] and re.fullmatch(info.commit[:12] + r"-K[0-9a-f]{8}", added.out.name)
    again = build.build(layout, replace(request(layout, info, flavor="kcsan"), kconfig_add=("CONFIG_EXPERT=y",)))
    back = build.build(layout, request(layout, info, flavor="kcsan"))
    assert again.cached and back.cached
    assert back.config_hash == plain.config_hash and back.artifacts["config"] == plain.artifacts["config"]


def test_an_added_option_overrides_the_flavours_and_may_turn_one_off(fake):
    layout, info = fake
    result = build.build(layout, replace(request(layout, info), kconfig_add=("CONFIG_SCHED_PROXY_EXEC=n",)))
    final = kconfig.parse_config(result.artifacts["config"].read_text())
    assert final["SCHED_PROXY_EXEC"] == "n" and final["TEST_WORKQUEUE"] == "m"


def test_a_dropped_added_option_is_explained_before_anything_compiles(fake):
    layout, info = fake
    req = replace(request(layout, info, flavor="kcsan"), kconfig_add=("CONFIG_TEST_WORKQUEUE=m",))
    with pytest.raises(KconfigError) as exc:
        build.build(layout, req)
    assert ("CONFIG_TEST_WORKQUEUE=m (-K) ended as not set: needs RUNTIME_TESTING_MENU (enclosing "
            "`if RUNTIME_TESTING_MENU` in Kconfig; RUNTIME_TESTING_MENU=n)") in str(exc.value)
    slot = build.slot_for(layout, info, req.arch, req.flavor)
    assert not list(slot.build.rglob("*.o"))
