"""Real minimal debug kernels from the real 7.2 tree, x86_64 and arm64 (cached in ~/.cache/wqci).

A cold build takes about 5.5 minutes per arch on 2 cores; later runs reuse the
slots and ccache, so these tests mostly measure incremental rebuilds.
"""

import json
import os

import pytest

from pipeline import config
from pipeline.build import kernel as build
from pipeline.build import kconfig
from pipeline.intake import series
from pipeline.model.errors import KconfigError
from pipeline.model.status import Status

REQUIRED = {
    "KCSAN": "y", "PROVE_LOCKING": "y", "SCHED_PROXY_EXEC": "y", "TEST_WORKQUEUE": "m",
    "LOCK_TORTURE_TEST": "m", "WW_MUTEX_SELFTEST": "m", "CC_OPTIMIZE_FOR_PERFORMANCE": "y",
    "NUMA": "y", "SMP": "y",
}
MODULES = {"test_workqueue.ko", "locktorture.ko", "test-ww_mutex.ko"}


def base_request(layout, info, arch_name, flavor=None):
    flavors = config.load_flavors(layout)
    return build.BuildRequest(tree=info, arch=config.load_arch(layout, arch_name), flavor=flavors.get(flavor),
                              commit=info.commit, label="base", series="fastwake-v1")


@pytest.mark.parametrize("arch_name", ["x86_64", "arm64"])
def test_fastwake_builds_debug_kernel(layout, base_tree, arch_name):
    s = config.load_series(layout, "fastwake-v1")
    applied = series.apply(layout, s, base_tree)
    commits = [(f"fastwake-v1 {p.number}/{p.total}", p.commit) for p in applied.patches]
    base = base_request(layout, base_tree, arch_name)
    # baseline first, then the series in the same slot: an incremental rebuild
    base_result = build.build(layout, base)
    assert base_result.status is Status.PASS, base_result.errors
    verdict = build.build_series(layout, base, commits, each_patch=False)
    assert verdict.ok, verdict.message
    result = verdict.results[-1]
    image = result.artifacts["image"]
    assert image.name == ("bzImage" if arch_name == "x86_64" else "Image")
    assert image.stat().st_size > 1_000_000
    final = kconfig.parse_config(result.artifacts["config"].read_text())
    for option, value in REQUIRED.items():
        assert final.get(option) == value, option
    names = {line.rsplit("/", 1)[-1] for line in result.artifacts["module_list"].read_text().split()}
    assert MODULES <= names
    meta = json.loads((result.out / "build.json").read_text())
    assert meta["key"]["patches"] == [c for _, c in commits]
    if not result.cached:
        # fastwake-v1 touches kernel/workqueue.c only: a handful of objects, not the tree
        assert 0 < meta["compiled_objects"] < 50, meta["compiled_objects"]


def test_dropped_dependency_fails_fast(layout, base_tree, tmp_path):
    """A fragment asking for TEST_WORKQUEUE without RUNTIME_TESTING_MENU is refused before compiling."""
    root = tmp_path / "project"
    (root / "configs").mkdir(parents=True)
    for sub in ("arches", "kconfig"):
        (root / "configs" / sub).symlink_to(layout.configs / sub)
    (root / "configs" / "flavors.yaml").write_text(
        "base: tinyconfig\nalways: [guest]\ndefault: bad\nflavors:\n  bad: {fragments: [bad-tests]}\n"
    )
    # a fragment of the test's own next to the real ones is not allowed; use a copy of the kconfig dir
    (root / "configs" / "kconfig").unlink()
    (root / "configs" / "kconfig").mkdir()
    for frag in layout.configs.glob("kconfig/*.config"):
        (root / "configs" / "kconfig" / frag.name).write_text(frag.read_text())
    (root / "configs" / "kconfig" / "bad-tests.config").write_text(
        "# CONFIG_RUNTIME_TESTING_MENU is not set\nCONFIG_TEST_WORKQUEUE=m\n")
    lay = config.Layout(root=root, cache=layout.cache)
    req = build.BuildRequest(tree=base_tree, arch=config.load_arch(lay, "x86_64"),
                             flavor=config.load_flavors(lay).get("bad"), commit=base_tree.commit, label="base")
    with pytest.raises(KconfigError) as exc:
        build.build(lay, req)
    msg = str(exc.value)
    assert "CONFIG_TEST_WORKQUEUE=m (bad-tests.config) ended as not set" in msg
    assert "needs RUNTIME_TESTING_MENU" in msg


@pytest.mark.skipif(not os.environ.get("WQCI_SLOW_TESTS"),
                    reason="a second full kernel build (wake-prefer changes sched.h): WQCI_SLOW_TESTS=1 runs it")
def test_wake_prefer_gets_a_clear_verdict(layout, base_tree, tmp_path):
    """The RFC was build-tested elsewhere only: whatever the answer on 7.2, it is stated plainly.
    It changes include/linux/sched.h, so on an empty cache it costs a whole build of its own
    (6.3 of the 86 minutes a cold `make test` took): opt-in, like the nightly's slow suites."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    done = subprocess.run([sys.executable, "-m", "pipeline", "build", "--series", "wake-prefer", "--arch", "x86_64",
                           "--flavor", "lockstat"], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if done.returncode == 0:
        assert "wake-prefer builds (x86_64/lockstat)" in done.stdout
    else:
        assert done.returncode == 1, done.stderr
        assert "wake-prefer" in done.stderr and "error:" in done.stderr
