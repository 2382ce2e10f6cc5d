"""Writing initramfs archives: the kernel's `newc` cpio format.

Written here rather than piped through cpio(1) so that archives are
reproducible (owner root, fixed mtime, sorted entries) and need no binary pipe.
The kernel unpacks concatenated archives in order, so a run's initramfs is the
cached rootfs archive followed by the modules archive and the run's keys.
Archives are cached gzip-compressed, but the initramfs handed to QEMU is not
compressed: under TCG a debug kernel needs about 4 s to inflate 5 MB, while
QEMU loads the larger plain archive in milliseconds.
"""

from __future__ import annotations

import gzip
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

MTIME = 0


@dataclass(frozen=True)
class Entry:
    """One archive member: a directory, a file (from disk or bytes) or a symlink."""

    path: str  # inside the archive, without a leading slash
    mode: int  # full st_mode including the file type bits
    data: bytes = b""


def directory(path: str, perm: int = 0o755) -> Entry:
    return Entry(path.strip("/"), stat.S_IFDIR | perm)


def file(path: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(path.strip("/"), stat.S_IFREG | perm, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path.strip("/"), stat.S_IFLNK | 0o777, target.encode())


def from_disk(path: str, source: Path) -> Entry:
    st = os.lstat(source)
    if stat.S_ISLNK(st.st_mode):
        return symlink(path, os.readlink(source))
    if stat.S_ISDIR(st.st_mode):
        return directory(path, stat.S_IMODE(st.st_mode))
    return file(path, source.read_bytes(), stat.S_IMODE(st.st_mode))


def tree(root: Path, prefix: str = "") -> list[Entry]:
    """Every directory, file and symlink under root, as archive entries under prefix."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        base = Path(prefix) / rel
        if str(base) not in ("", "."):
            entries.append(directory(str(base)))
        for name in sorted(filenames) + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            entries.append(from_disk(str(base / name), Path(dirpath) / name))
    return entries


def _header(ino: int, entry: Entry, size: int) -> bytes:
    name = entry.path.encode() + b"\0"
    fields = [ino, entry.mode, 0, 0, 1 if not stat.S_ISDIR(entry.mode) else 2, MTIME, size, 0, 0, 0, 0,
              len(name), 0]
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + name
    return head + b"\0" * (-len(head) % 4)


def pack(entries: Iterable[Entry]) -> bytes:
    """An uncompressed newc archive; parents are added for every entry."""
    members: dict[str, Entry] = {}
    for entry in entries:
        parts = entry.path.split("/")
        for i in range(1, len(parts)):
            members.setdefault("/".join(parts[:i]), directory("/".join(parts[:i])))
        members[entry.path] = entry
    out = bytearray()
    for ino, path in enumerate(sorted(members), start=1):
        entry = members[path]
        out += _header(ino, entry, len(entry.data))
        out += entry.data + b"\0" * (-len(entry.data) % 4)
    out += _header(0, Entry("TRAILER!!!", 0), 0)
    return bytes(out)


def write(path: Path, entries: Iterable[Entry]) -> Path:
    """gzip-compressed archive, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=MTIME) as gz:
        gz.write(pack(entries))
    tmp.rename(path)
    return path


def concat(dest: Path, parts: Iterable[Path]) -> Path:
    """One uncompressed initramfs from archives (gzip'd or not); the kernel unpacks them in order."""
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    with open(tmp, "wb") as out:
        for part in parts:
            data = part.read_bytes()
            out.write(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    tmp.rename(dest)
    return dest
