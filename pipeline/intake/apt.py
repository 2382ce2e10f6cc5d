"""Debian packages through a private apt configuration under the wqci cache.

The system's apt configuration is only read (for the mirror URI and keyring);
nothing under /etc/apt is created or changed. Adding sid to the system's
sources and then installing anything upgrades half the system, so everything
wqci fetches from other suites goes through its own sources list, lists,
cache and an empty dpkg status.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import proc
from pipeline.model.errors import FetchError

SYSTEM_SOURCES = (Path("/etc/apt/sources.list.d"), Path("/etc/apt/sources.list"))
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
LISTS_MAX_AGE = 24 * 3600
LIST_RE = re.compile(r"^deb\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<uri>\S+)\s+\S+")


@dataclass(frozen=True)
class Mirror:
    uri: str
    keyring: str


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas, current = [], {}
    for line in text.splitlines() + [""]:
        if not line.strip():
            if current:
                stanzas.append(current)
            current = {}
        elif not line.startswith("#") and ":" in line and not line[0].isspace():
            key, _, value = line.partition(":")
            current[key.strip().lower()] = value.strip()
    return stanzas


def system_mirror(sources: tuple[Path, ...] = SYSTEM_SOURCES) -> Mirror:
    """The Debian archive the system already uses (not -security, not third party)."""
    candidates: list[Mirror] = []
    for src in sources:
        files = sorted(src.glob("*.sources")) + sorted(src.glob("*.list")) if src.is_dir() else [src]
        for path in files:
            if not path.is_file():
                continue
            text = path.read_text(errors="replace")
            if path.suffix == ".sources":
                for st in _deb822_stanzas(text):
                    for uri in st.get("uris", "").split():
                        candidates.append(Mirror(uri, st.get("signed-by", DEFAULT_KEYRING)))
            else:
                for line in text.splitlines():
                    m = LIST_RE.match(line)
                    if m:
                        opts = dict(o.split("=", 1) for o in (m.group("opts") or "").split() if "=" in o)
                        candidates.append(Mirror(m.group("uri"), opts.get("signed-by", DEFAULT_KEYRING)))
    for mirror in candidates:
        if "debian" in mirror.uri and "security" not in mirror.uri:
            return mirror
    raise FetchError(what="/etc/apt", detail="no Debian archive found in the system's apt sources")


@dataclass(frozen=True)
class PrivateApt:
    """apt-get with its own sources, lists and cache under `root`."""

    root: Path
    mirror: Mirror
    suite: str
    arch: str = "amd64"

    @classmethod
    def for_suite(cls, cache: Path, suite: str, arch: str = "amd64") -> "PrivateApt":
        return cls(root=cache / "apt" / f"{suite}-{arch}", mirror=system_mirror(), suite=suite, arch=arch)

    def options(self) -> list[str]:
        opts = {
            "Dir::Etc::SourceList": self.root / "sources.list",
            "Dir::Etc::SourceParts": "/dev/null",
            "Dir::State::Lists": self.root / "lists",
            "Dir::Cache": self.root / "cache",
            "Dir::State::status": "/dev/null",
            "Acquire::Check-Valid-Until": "false",
            "APT::Sandbox::User": "root",
            "APT::Architecture": self.arch,
            "APT::Architectures::": self.arch,
        }
        argv = []
        for key, value in opts.items():
            argv += ["-o", f"{key}={value}"]
        return argv

    def _prepare(self) -> None:
        for sub in ("lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        line = f"deb [signed-by={self.mirror.keyring}] {self.mirror.uri} {self.suite} main\n"
        (self.root / "sources.list").write_text(line)

    def update(self, force: bool = False, log_path: Path | None = None) -> None:
        self._prepare()
        stamp = self.root / "updated"
        if not force and stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE:
            return
        proc.run(["apt-get", *self.options(), "update"], log_path=log_path, timeout=600)
        stamp.touch()

    def download(self, package: str, version: str, dest: Path, log_path: Path | None = None) -> Path:
        """Fetch one .deb into dest (cached: a file already there is reused)."""
        dest.mkdir(parents=True, exist_ok=True)
        existing = sorted(dest.glob(f"{package}_{version.split(':')[-1] or '*'}_*.deb"))
        if existing:
            return existing[0]
        self.update(log_path=log_path)
        spec = f"{package}={version}" if version else package
        done = proc.run(["apt-get", *self.options(), "download", spec], cwd=dest, log_path=log_path,
                        timeout=1800, check=False)
        if done.returncode != 0:
            # A stale list may not know the version yet: refresh once and retry.
            self.update(force=True, log_path=log_path)
            proc.run(["apt-get", *self.options(), "download", spec], cwd=dest, log_path=log_path, timeout=1800)
        found = sorted(dest.glob(f"{package}_*.deb"))
        if not found:
            raise FetchError(what=package, detail=f"apt-get download left no .deb in {dest}")
        return found[-1]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
