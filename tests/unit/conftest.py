from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def user_series(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$WQCI_SERIES for every unit test (and the wqci subprocesses it starts) is a fresh
    temporary directory: an imported series never lands in the real ~/.local/share."""
    home = tmp_path_factory.mktemp("user-series")
    monkeypatch.setenv("WQCI_SERIES", str(home))
    return home
