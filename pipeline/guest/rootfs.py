"""The guest's initramfs, built from Debian packages of the guest's architecture.

The base archive (busybox, dropbear, sftp-server, kmod and the shared libraries
they need, plus guest/init) is cached per (arch, package set). A run's initramfs
is that archive followed by the build's modules and the run's SSH keys, each a
separate gzip'd cpio that the kernel unpacks in order: assembling it takes
well under a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline import proc
from pipeline.intake import apt
from pipeline.guest import cpio
from pipeline.config import Arch, Fields, Layout, load_yaml
from pipeline.model.errors import RootfsError

NEEDED_RE = re.compile(r"\(NEEDED\)\s+Shared library: \[(.+?)\]")
INTERP_RE = re.compile(r"Requesting program interpreter: (\S+?)\]")


@dataclass(frozen=True)
class PackageSet:
    suite: str
    packages: tuple[str, ...]
    binaries: tuple[str, ...]
    links: tuple[tuple[str, str], ...]
    path: Path


def load_packages(layout: Layout) -> PackageSet:
    path = layout.guest / "packages.yaml"
    f = Fields(load_yaml(path), path)
    f.check_keys({"suite", "packages", "binaries", "links"})
    links = f.get("links", dict, {})
    return PackageSet(suite=f.str("suite"), packages=f.strs("packages"), binaries=f.strs("binaries"),
                      links=tuple(sorted((str(k), str(v)) for k, v in links.items())), path=path)


def fingerprint(layout: Layout, arch: Arch, pkgs: PackageSet) -> str:
    digest = hashlib.sha256()
    for part in (arch.debian_arch, pkgs.path.read_bytes(), (layout.guest / "init").read_bytes()):
        digest.update(part if isinstance(part, bytes) else part.encode())
    for skel in sorted((layout.guest / "skel").rglob("*")):
        if skel.is_file():
            digest.update(str(skel.relative_to(layout.guest)).encode() + skel.read_bytes())
    return digest.hexdigest()[:12]


def base_archive(layout: Layout, arch: Arch, log_path: Path | None = None) -> Path:
    """The cached base initramfs for arch, built on first use."""
    pkgs = load_packages(layout)
    out = layout.cache / "rootfs" / f"{arch.name}-{fingerprint(layout, arch, pkgs)}.cpio.gz"
    if out.is_file():
        return out
    private = apt.PrivateApt.for_suite(layout.cache, pkgs.suite, arch.debian_arch)
    debs_dir = layout.cache / "debs" / f"{pkgs.suite}-{arch.debian_arch}"
    debs = [private.download(name, "", debs_dir, log_path=log_path) for name in pkgs.packages]
    with tempfile.TemporaryDirectory(prefix="rootfs.", dir=layout.cache) as tmp:
        staging = Path(tmp)
        for deb in debs:
            proc.run(["dpkg-deb", "-x", str(deb), str(staging)], log_path=log_path)
        entries = select(staging, pkgs)
    entries += [cpio.from_disk("init", layout.guest / "init")]
    for skel in sorted((layout.guest / "skel").rglob("*")):
        if skel.is_file():
            entries.append(cpio.from_disk(str(skel.relative_to(layout.guest / "skel")), skel))
    for d in ("proc", "sys", "dev", "tmp", "run", "root", "etc/dropbear", "lib/modules"):
        entries.append(cpio.directory(d))
    cpio.write(out, entries)
    manifest = {"arch": arch.name, "suite": pkgs.suite, "debs": [d.name for d in debs],
                "files": sorted(e.path for e in entries)}
    out.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def select(staging: Path, pkgs: PackageSet) -> list[cpio.Entry]:
    """The binaries, their interpreter and the closure of their NEEDED libraries."""
    wanted: dict[str, Path] = {}
    queue = []
    for rel in pkgs.binaries:
        if not (staging / rel).exists():
            raise RootfsError(detail=f"{pkgs.path}: binary {rel} is in none of the packages")
        wanted[rel] = staging / rel
        queue.append(staging / rel)
    lib_dirs = [d for d in staging.glob("**/lib*/*-linux-gnu*") if d.is_dir()] + \
               [staging / "lib", staging / "usr/lib", staging / "lib64"]
    while queue:
        elf = queue.pop()
        interp, needed = elf_deps(elf.resolve())
        if interp:
            add_path(staging, interp.lstrip("/"), wanted)
        for lib in needed:
            found = next((d / lib for d in lib_dirs if (d / lib).exists()), None)
            if found is None:
                raise RootfsError(detail=f"{pkgs.path}: {elf.relative_to(staging)} needs {lib}, "
                                  "which none of the packages provides")
            rel = str(found.relative_to(staging))
            if rel not in wanted:
                add_path(staging, rel, wanted)
                queue.append(found)
    entries = [cpio.from_disk(rel, src) for rel, src in sorted(wanted.items())]
    entries += [cpio.symlink(link, target) for link, target in pkgs.links]
    return entries


def add_path(staging: Path, rel: str, wanted: dict[str, Path]) -> None:
    """Add rel and, when it is a symlink, what it points to (inside staging)."""
    path = staging / rel
    while True:
        wanted[str(path.relative_to(staging))] = path
        if not path.is_symlink():
            return
        target = Path(os.readlink(path))
        path = (staging / str(target).lstrip("/")) if target.is_absolute() else (path.parent / target)
        path = Path(os.path.normpath(path))
        if not path.exists() and not path.is_symlink():
            return


def elf_deps(path: Path) -> tuple[str | None, list[str]]:
    done = proc.run(["readelf", "-d", "-l", "-W", str(path)], check=False)
    interp = INTERP_RE.search(done.stdout)
    return (interp.group(1) if interp else None), NEEDED_RE.findall(done.stdout)


def modules_archive(modules_dir: Path, dest: Path) -> Path:
    """The build's installed modules (lib/modules/<release>/...) as their own archive."""
    if dest.is_file() and dest.stat().st_mtime >= modules_dir.stat().st_mtime:
        return dest
    return cpio.write(dest, cpio.tree(modules_dir / "lib" / "modules", "lib/modules"))


def keys_archive(dest: Path, host_key: Path, authorized_key: str) -> Path:
    return cpio.write(dest, [
        cpio.file("etc/dropbear/dropbear_ed25519_host_key", host_key.read_bytes(), 0o600),
        cpio.directory("root/.ssh", 0o700),
        cpio.file("root/.ssh/authorized_keys", authorized_key.encode(), 0o600),
    ])
