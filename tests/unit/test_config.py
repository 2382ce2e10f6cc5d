from pathlib import Path

import pytest

from pipeline import config
from pipeline.model.errors import ConfigError, UnknownName

SERIES = """\
name: demo
title: demo series
version: 2
base: linux-7.2
author: A U Thor <a@example.org>
date: 2026-05-26
patches:
  - file: 0001-x.patch
    subject: "x: do y"
"""


def write_series(layout: config.Layout, text: str, name: str = "demo") -> Path:
    d = layout.patches / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "0001-x.patch").write_text("patch\n")
    (d / "series.yaml").write_text(text)
    return d / "series.yaml"


def test_real_configs_load():
    layout = config.Layout()
    trees = config.load_trees(layout)
    assert trees.get(None).name == "linux-7.2"
    assert trees.get(None).tag == "v7.2.13-1"
    names = config.series_names(layout)
    assert {"fastwake-v1", "fastwake-v1-claim", "wake-prefer"} <= set(names)
    for name in names:
        s = config.load_series(layout, name)
        assert s.patches and all(p.is_file() for p in s.patch_paths())
        assert s.base in trees.trees


def test_series_loads(tmp_layout):
    write_series(tmp_layout, SERIES)
    s = config.load_series(tmp_layout, "demo")
    assert (s.name, s.version, s.date) == ("demo", 2, "2026-05-26")
    assert s.patches[0].subject == "x: do y"


def test_unknown_series_lists_options(tmp_layout):
    write_series(tmp_layout, SERIES)
    with pytest.raises(UnknownName) as exc:
        config.load_series(tmp_layout, "nope")
    assert "unknown series 'nope'" in str(exc.value) and "demo" in str(exc.value)


def test_bad_yaml_names_file_and_line(tmp_layout):
    path = write_series(tmp_layout, SERIES + "  - [unclosed\n")
    with pytest.raises(ConfigError) as exc:
        config.load_series(tmp_layout, "demo")
    msg = str(exc.value)
    assert str(path) in msg and "invalid YAML" in msg and "line" in msg


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda t: t.replace("version: 2\n", ""), "'version': missing"),
        (lambda t: t.replace("version: 2", "version: two"), "'version': expected int"),
        (lambda t: t + "colour: red\n", "unknown field 'colour'"),
        (lambda t: t.replace("0001-x.patch", "0009-gone.patch"), "0009-gone.patch does not exist"),
        (lambda t: t.replace("name: demo", "name: other"), "differs from the directory name"),
    ],
)
def test_bad_fields_are_named(tmp_layout, edit, field):
    write_series(tmp_layout, edit(SERIES))
    with pytest.raises(ConfigError) as exc:
        config.load_series(tmp_layout, "demo")
    assert field in str(exc.value)
    assert "series.yaml" in str(exc.value)


def test_unknown_tree_lists_options():
    trees = config.load_trees(config.Layout())
    with pytest.raises(UnknownName) as exc:
        trees.get("linux-9.9")
    assert "linux-7.2" in str(exc.value)


def test_cache_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WQCI_CACHE", str(tmp_path / "c"))
    assert config.default_cache() == tmp_path / "c"


@pytest.mark.parametrize("flavor", ["debug", "kcsan", "lockdep", "perf", "kasan"])
@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_every_flavour_asks_for_what_the_suites_and_triage_need(flavor, arch):
    from pipeline.build import kconfig

    layout = config.Layout()
    flav = config.load_flavors(layout).get(flavor)
    wanted = {r.option: r.value for r in kconfig.requests(kconfig.fragment_paths(layout, config.load_arch(
        layout, arch), flav))}
    # tinyconfig turns BUG off: without it every WARN_ON is silent and triage sees nothing
    assert wanted["BUG"] == "y"
    assert wanted["TEST_WORKQUEUE"] == "m" and wanted["CC_OPTIMIZE_FOR_PERFORMANCE"] == "y"
    assert wanted["NR_CPUS"] == "64" and wanted["NUMA"] == "y"
    if flavor == "debug":
        assert wanted["KCSAN"] == wanted["PROVE_LOCKING"] == wanted["SCHED_PROXY_EXEC"] == "y"
