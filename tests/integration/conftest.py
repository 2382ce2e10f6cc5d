"""Integration fixtures: the real tree, fetched once into the shared wqci cache."""

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
