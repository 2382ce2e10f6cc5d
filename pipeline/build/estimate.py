"""How many objects a build will compile: the total of its progress bar.

A slot remembers its builds (out/<commit>/build.json, `compiled_objects`), and
they are the best guess: an incremental build in a warm build directory with an
unchanged .config compiles about what the last one did (the files a patch
touches), and a build after a new .config or in an empty build directory about
what the slot's largest build did. A slot without builds counts the objects the
tree's Makefiles list under the final .config. That count is rough (objects
built by rules of their own, generated and host-side files are not listed) and
the bar says so, but close: 1032 counted where x86_64/perf compiled 1079, 797
where arm64/debug compiled 776.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

# obj-y += a.o dir/   obj-$(CONFIG_X) += b.o   lib-y := c.o   foo-y += d.o e.o   foo-objs := f.o
ASSIGN_RE = re.compile(r"^\s*([A-Za-z0-9_.-]+?)-(y|m|objs|\$\(CONFIG_([A-Za-z0-9_]+)\))\s*[:+]?=\s*(.*)$")
LISTS = ("obj", "lib")  # what kbuild builds; other names are the parts of a composite object
NESTING = 3  # composite objects made of composite objects, at most this deep


@dataclass(frozen=True)
class Expected:
    count: int | None  # None: no idea
    basis: str  # where count comes from, for people
    rough: bool = False


def expected(root: Path, build_dir: Path, config_hash: str, config: Mapping[str, str], src: Path,
             srcarch: str) -> Expected:
    """The objects the next make in a slot will compile (root: the slot, its builds under out/)."""
    builds = _builds(root)
    warm = (build_dir / "vmlinux").exists()
    if builds and warm and builds[-1].get("key", {}).get("config_hash") == config_hash:
        last = int(builds[-1].get("compiled_objects", 0))
        # a last build that compiled nothing says nothing about this one: no total then
        return Expected(last, "as many as the slot's last build") if last else Expected(None, "")
    largest = max((int(b.get("compiled_objects", 0)) for b in builds), default=0)
    if largest:
        return Expected(largest, "as many as the slot's largest build")
    counted = count_targets(src, config, srcarch)
    return Expected(counted or None, "counted in the Makefiles" if counted else "", rough=True)


def _builds(root: Path) -> list[dict]:
    """The slot's recorded builds, oldest first."""
    found = []
    for path in (root / "out").glob("*/build.json"):
        try:
            found.append((path.stat().st_mtime, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    return [info for _, info in sorted(found, key=lambda pair: pair[0]) if isinstance(info, dict)]


def count_targets(src: Path, config: Mapping[str, str], srcarch: str) -> int:
    """Objects the tree's Kbuild files list under this .config, from the top directory (and the
    library directories, which the top Makefile names in libs-y) down through every
    subdirectory an enabled line names."""
    enabled = {name for name, value in config.items() if value in ("y", "m")}
    todo, seen, objects = [Path(f"arch/{srcarch}/lib"), Path("lib"), Path(".")], set(), 0
    while todo:
        directory = todo.pop()
        if directory in seen:
            continue
        seen.add(directory)
        makefile = next((src / directory / n for n in ("Kbuild", "Makefile") if (src / directory / n).is_file()), None)
        if makefile is None:
            continue
        listed, subdirs, parts = _lists(makefile.read_text(errors="replace"), enabled, srcarch)
        todo += [directory / d for d in subdirs]
        objects += sum(_parts(name, parts, NESTING) for name in listed)
    return objects


def _lists(text: str, enabled: set[str], srcarch: str) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """One Makefile's enabled objects, subdirectories, and composite objects' parts."""
    listed: dict[str, None] = {}
    subdirs: list[str] = []
    parts: dict[str, list[str]] = {}
    for line in _logical_lines(text):
        m = ASSIGN_RE.match(line)
        if not m or (m.group(3) and m.group(3) not in enabled):
            continue
        words = [w for w in m.group(4).replace("$(SRCARCH)", srcarch).split() if "$" not in w]
        if m.group(1) in LISTS:
            subdirs += [w for w in words if w.endswith("/")]
            listed.update((w[:-2], None) for w in words if w.endswith(".o"))
        else:
            parts.setdefault(m.group(1), []).extend(w[:-2] for w in words if w.endswith(".o"))
    return list(listed), subdirs, parts


def _parts(name: str, parts: Mapping[str, list[str]], depth: int) -> int:
    """A composite object counts its parts; a plain one counts once."""
    if name not in parts or depth == 0:
        return 1
    return sum(_parts(p, parts, depth - 1) for p in dict.fromkeys(parts[name]))


def _logical_lines(text: str) -> Iterator[str]:
    """Lines with comments cut and backslash continuations joined."""
    pending = ""
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending
