"""The base's history: what every boot of a base kernel found, kept across runs.

A base kernel is a tree commit, an arch, a flavour and a .config (its hash).
Every boot of one (by `wqci run`, `wqci test --base`, a nightly base cell or
`wqci noise`) appends one line to history/<key>.jsonl under the cache: the
places the boot exercised and the findings it saw there. The evidence about the
base's noise so grows with use, and a rare race of the base tree is recognised
as pre-existing even when this run's baseline boots missed it.

Lines are appended under an flock, each in one write, so concurrent wqci
invocations can share a history.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.analysis.evidence import Boot
from pipeline.build.kernel import BuildResult
from pipeline.config import Layout


@dataclass(frozen=True)
class BaseKey:
    tree: str
    commit: str
    arch: str
    flavor: str
    config_hash: str

    @classmethod
    def of(cls, build: BuildResult) -> "BaseKey":
        req = build.request
        return cls(req.tree.key, req.commit, req.arch.name, req.flavor.name, build.config_hash)

    @property
    def name(self) -> str:
        return f"{self.tree}-{self.arch}-{self.flavor}-{self.commit[:12]}-{self.config_hash[:12]}"

    def describe(self) -> str:
        return f"{self.tree} {self.commit[:12]} {self.arch}/{self.flavor} .config {self.config_hash[:12]}"


@dataclass(frozen=True)
class History:
    path: Path

    @classmethod
    def of(cls, layout: Layout, key: BaseKey) -> "History":
        return cls(layout.cache / "history" / f"{key.name}.jsonl")

    def boots(self) -> list[Boot]:
        """Every recorded boot; a torn or foreign line is skipped, not fatal."""
        try:
            lines = self.path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(Boot.from_dict(json.loads(line)["boot"]))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def add(self, boot: Boot, source: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "source": source,
                           "boot": boot.to_dict()}, sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = "\n" + line  # a writer killed mid-line: its torn line stays alone
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def for_build(layout: Layout, build: BuildResult | None) -> History | None:
    if build is None or not build.config_hash:
        return None
    return History.of(layout, BaseKey.of(build))
