import os
import subprocess
from pathlib import Path

import pytest

from pipeline.config import Layout

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.org",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.org"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout


@pytest.fixture
def tmp_layout(tmp_path: Path) -> Layout:
    """A project root and cache of our own; configs are copied from the real project."""
    root = tmp_path / "project"
    (root / "patches").mkdir(parents=True)
    (root / "configs").symlink_to(ROOT / "configs")
    return Layout(root=root, cache=tmp_path / "cache")


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    """A temporary git repository standing in for a kernel tree."""
    repo = tmp_path / "kernel"
    (repo / "kernel").mkdir(parents=True)
    lines = [f"int line{i};" for i in range(1, 41)]
    (repo / "kernel" / "workqueue.c").write_text("\n".join(lines) + "\n")
    (repo / "Makefile").write_text("all:\n\t@true\n")
    git(repo, "init", "-q", "-b", "master")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo
