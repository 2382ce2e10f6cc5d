"""Integration fixtures: the real tree, fetched once into the shared wqci cache."""

from pathlib import Path

import pytest

from pipeline import config
from pipeline.intake import tree


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def layout() -> config.Layout:
    return config.Layout()


@pytest.fixture(scope="session")
def base_tree(layout):
    """linux-7.2 from Debian's linux-source-7.2, cached under ~/.cache/wqci."""
    cfg = config.load_trees(layout).get(None)
    return tree.fetch(layout, cfg)


def processes(program: bytes, needle: str) -> list[int]:
    """PIDs of the running processes whose program name ends with program and whose
    command line names needle (a run or slot directory), read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].rsplit(b"/", 1)[-1].startswith(program) and any(needle.encode() in a for a in argv):
            found.append(int(entry.name))
    return found
