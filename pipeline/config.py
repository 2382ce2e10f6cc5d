"""Facts as data: YAML under configs/ and patches/, loaded into frozen dataclasses.

Every validation error names the file and the field, so a typo in a YAML file
ends as one `E:` line the user can act on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Generic, Mapping, TypeVar

import yaml

from pipeline.model.errors import ConfigError, UnknownName, UsageError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Layout:
    """Where the project's data and wqci's cache live."""

    root: Path = PROJECT_ROOT
    cache: Path = field(default_factory=lambda: default_cache())
    # the user's own series (`wqci series import` writes here): $WQCI_SERIES
    series_home: Path = field(default_factory=lambda: default_series_home())
    # series given on the command line (`--tree PATH --range BASE..HEAD`), found by name
    # like the others so that every job takes them as it takes any series
    given: tuple["Series", ...] = ()

    @property
    def configs(self) -> Path:
        return self.root / "configs"

    @property
    def patches(self) -> Path:
        """The series that ship with wqci (WQCI_PATCHES points at another such directory,
        e.g. tests/data/series)."""
        env = os.environ.get("WQCI_PATCHES")
        return Path(env).resolve() if env else self.root / "patches"

    @property
    def guest(self) -> Path:
        return self.root / "guest"

    def carry_series(self, name: str) -> Path:
        """wqci's own carry series `name` (patches/carry/<name>/series.yaml; never WQCI_PATCHES')."""
        return self.root / "patches" / "carry" / name / "series.yaml"


def default_cache() -> Path:
    env = os.environ.get("WQCI_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "wqci"


def default_series_home() -> Path:
    """$WQCI_SERIES, else $XDG_DATA_HOME/wqci/series (~/.local/share/wqci/series)."""
    env = os.environ.get("WQCI_SERIES")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "wqci" / "series"


# ---------------------------------------------------------------- YAML helpers


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path=path, detail="file not found") from None
    except OSError as exc:
        raise ConfigError(path=path, detail=exc.strerror or str(exc)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path=path, detail=f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(path=path, detail=f"invalid YAML: {where}{problem}") from None


class Fields:
    """Typed access to one YAML mapping; errors name the file and the field."""

    def __init__(self, data: Any, path: Path, where: str = "") -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path=path, detail=f"{where or 'top level'}: expected a mapping")
        self.data = data
        self.path = path
        self.where = where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _fail(self, key: str, detail: str) -> ConfigError:
        return ConfigError(path=self.path, detail=f"field '{self._name(key)}': {detail}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is ...:
                raise self._fail(key, "missing")
            return default
        value = self.data[key]
        if kind is int and isinstance(value, bool):
            raise self._fail(key, "expected int")
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self._fail(key, f"expected {names}, got {type(value).__name__}")
        return value

    def str(self, key: str, default: Any = ...) -> Any:
        return self.get(key, str, default)

    def strs(self, key: str, default: Any = ...) -> tuple[str, ...]:
        value = self.get(key, (list, tuple), default)
        for item in value:
            if not isinstance(item, str):
                raise self._fail(key, "expected a list of strings")
        return tuple(value)

    def sub(self, key: str, default: Any = ...) -> "Fields":
        return Fields(self.get(key, dict, default), self.path, self._name(key))

    def items(self, key: str, default: Any = ...) -> list["Fields"]:
        value = self.get(key, list, default)
        return [Fields(item, self.path, f"{self._name(key)}[{i}]") for i, item in enumerate(value)]

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.data) - allowed)
        if unknown:
            raise ConfigError(
                path=self.path,
                detail=f"{self.where or 'top level'}: unknown field '{unknown[0]}'; "
                f"valid fields: {', '.join(sorted(allowed))}",
            )


def pick(kind: str, name: str, table: Mapping[str, Any], where: Path | str) -> Any:
    """Select a named entry; a miss lists the options."""
    try:
        return table[name]
    except KeyError:
        raise UnknownName(kind=kind, name=name, where=where, options=", ".join(sorted(table)) or "(none)") from None


T = TypeVar("T")


@dataclass(frozen=True)
class Named(Generic[T]):
    """A file of named entries and the default among them (trees, flavours, topologies, suites)."""

    top: Fields  # the whole file, for its other keys
    entries: dict[str, T]
    default: Any  # a name, or with several=True a tuple of names


def load_named(path: Path, section: str, kind: str, entry: Callable[[str, Fields], T],
               other_keys: frozenset[str] = frozenset(), several: bool = False) -> Named[T]:
    """`default:` and a `section:` mapping of name -> entry, each read by entry(name, fields);
    the default names (one, or with several=True a list) must be entries."""
    top = Fields(load_yaml(path), path)
    top.check_keys({"default", section, *other_keys})
    entries = {name: entry(name, Fields(raw, path, f"{section}.{name}"))
               for name, raw in top.get(section, dict).items()}
    default = top.strs("default") if several else top.str("default")
    for name in default if several else (default,):
        pick(kind, name, entries, f"{path}: default")
    return Named(top, entries, default)


# ---------------------------------------------------------------- trees


@dataclass(frozen=True)
class Tree:
    """A named base tree: a Debian source package pinned by its .deb's sha256."""

    name: str
    package: str
    version: str
    suite: str
    sha256: str
    tarball: str
    description: str = ""

    @property
    def tag(self) -> str:
        return f"v{self.version}"


@dataclass(frozen=True)
class Trees:
    default: str
    trees: Mapping[str, Tree]
    path: Path

    def get(self, name: str | None) -> Tree:
        return pick("tree", name or self.default, self.trees, self.path)


def load_trees(layout: Layout) -> Trees:
    path = layout.configs / "trees.yaml"

    def tree(name: str, f: Fields) -> Tree:
        f.check_keys({"package", "version", "suite", "sha256", "tarball", "description"})
        return Tree(name=name, package=f.str("package"), version=f.str("version"), suite=f.str("suite"),
                    sha256=f.str("sha256"), tarball=f.str("tarball"), description=f.str("description", ""))

    named = load_named(path, "trees", "tree", tree)
    return Trees(default=named.default, trees=named.entries, path=path)


# ---------------------------------------------------------------- series


@dataclass(frozen=True)
class PatchRef:
    file: str
    subject: str
    message_id: str = ""
    trailers: tuple[str, ...] = ()  # collected from replies on the list (already in the patch file)


@dataclass(frozen=True)
class Claim:
    claim: str
    measure: str


@dataclass(frozen=True)
class Series:
    name: str
    title: str
    version: int
    base: str  # the tree in configs/trees.yaml
    author: str
    date: str
    description: str
    links: tuple[str, ...]
    patches: tuple[PatchRef, ...]
    claims: tuple[Claim, ...]
    reconstruction: str
    rebase: str
    directory: Path
    base_commit: str = ""  # the posting's `base-commit:`: applied there when the tree has it
    prerequisite_patch_ids: tuple[str, ...] = ()  # `prerequisite-patch-id:` lines (recorded, not applied)
    cover_file: str = ""  # the cover letter, as mailed, beside the patches
    cover_message_id: str = ""

    def patch_paths(self) -> list[Path]:
        return [self.directory / p.file for p in self.patches]


SERIES_KEYS = {
    "name", "title", "version", "base", "author", "date", "description", "links",
    "patches", "claims", "reconstruction", "rebase", "base_commit", "prerequisite_patch_ids", "cover",
}


def load_series_file(path: Path) -> Series:
    f = Fields(load_yaml(path), path)
    f.check_keys(SERIES_KEYS)
    patches = []
    for p in f.items("patches"):
        p.check_keys({"file", "subject", "message_id", "trailers"})
        ref = PatchRef(file=p.str("file"), subject=p.str("subject"), message_id=p.str("message_id", ""),
                       trailers=p.strs("trailers", ()))
        if not (path.parent / ref.file).is_file():
            raise ConfigError(path=path, detail=f"field '{p.where}.file': {ref.file} does not exist")
        patches.append(ref)
    if not patches:
        raise ConfigError(path=path, detail="field 'patches': the series has no patches")
    claims = []
    for c in f.items("claims", []):
        c.check_keys({"claim", "measure"})
        claims.append(Claim(claim=c.str("claim"), measure=c.str("measure")))
    cover = f.sub("cover", {})
    cover.check_keys({"file", "message_id"})
    if cover.str("file", "") and not (path.parent / cover.str("file")).is_file():
        raise ConfigError(path=path, detail=f"field 'cover.file': {cover.str('file')} does not exist")
    name = f.str("name")
    if name != path.parent.name:
        raise ConfigError(path=path, detail=f"field 'name': '{name}' differs from the directory name '{path.parent.name}'")
    return Series(
        name=name,
        title=f.str("title"),
        version=f.get("version", int),
        base=f.str("base"),
        author=f.str("author"),
        date=str(f.get("date", (str, object))),
        description=f.str("description", "").strip(),
        links=f.strs("links", ()),
        patches=tuple(patches),
        claims=tuple(claims),
        reconstruction=f.str("reconstruction", "").strip(),
        rebase=f.str("rebase", "").strip(),
        directory=path.parent,
        base_commit=f.str("base_commit", ""),
        prerequisite_patch_ids=f.strs("prerequisite_patch_ids", ()),
        cover_file=cover.str("file", ""),
        cover_message_id=cover.str("message_id", ""),
    )


@dataclass(frozen=True)
class SeriesEntry:
    """Where a series named NAME comes from. A user's series shadows a bundled one of the
    same name (`wqci series import` refuses to create such a name, but one can appear when a
    later wqci ships a series the user already has)."""

    name: str
    origin: str  # "bundled", "user" or "given" (--range)
    path: Path  # its series.yaml (for a given series: its directory)
    shadowed: bool = False  # a series of the same name from a later source wins


def series_entries(layout: Layout) -> list[SeriesEntry]:
    """Every series wqci can find, sorted by name; the one that --series NAME resolves to is
    the last of its name (given > user > bundled)."""
    found: list[SeriesEntry] = []
    for origin, where in (("bundled", layout.patches), ("user", layout.series_home)):
        if where.is_dir():
            found += [SeriesEntry(p.parent.name, origin, p) for p in sorted(where.glob("*/series.yaml"))]
    found += [SeriesEntry(s.name, "given", s.directory) for s in layout.given]
    winners = {e.name: e for e in found}  # later sources win
    return sorted((e if winners[e.name] is e else replace(e, shadowed=True) for e in found),
                  key=lambda e: (e.name, e.shadowed is False))


def series_names(layout: Layout) -> list[str]:
    return sorted({e.name for e in series_entries(layout)})


def load_series(layout: Layout, name: str) -> Series:
    """The series --series NAME means: one given on the command line, a user's, or a bundled one."""
    given = next((s for s in layout.given if s.name == name), None)
    if given is not None:
        return given
    entry = next((e for e in series_entries(layout) if e.name == name and not e.shadowed), None)
    if entry is None:
        where = f"{layout.patches} and {layout.series_home}"
        pick("series", name, {n: None for n in series_names(layout)}, where)
    return load_series_file(entry.path)


# ---------------------------------------------------------------- arches


@dataclass(frozen=True)
class QemuFacts:
    binary: str
    machine: str
    cpu: str
    console: str
    tcg: str


@dataclass(frozen=True)
class Arch:
    name: str
    arch: str
    cross_compile: str
    debian_arch: str
    image_target: str
    image_path: str
    fragment: str
    qemu: QemuFacts

    @property
    def srcarch(self) -> str:
        """The directory under arch/ (x86_64 builds from arch/x86)."""
        return "x86" if self.arch in ("x86_64", "i386", "x86") else self.arch


def arch_names(layout: Layout) -> list[str]:
    return sorted(p.stem for p in (layout.configs / "arches").glob("*.yaml"))


def load_arch(layout: Layout, name: str) -> Arch:
    path = layout.configs / "arches" / f"{name}.yaml"
    if not path.is_file():
        pick("arch", name, {n: None for n in arch_names(layout)}, path.parent)
    f = Fields(load_yaml(path), path)
    f.check_keys({"name", "arch", "cross_compile", "debian_arch", "image_target", "image_path", "fragment", "qemu"})
    q = f.sub("qemu")
    q.check_keys({"binary", "machine", "cpu", "console", "tcg"})
    fragment = f.str("fragment")
    if not (layout.configs / "kconfig" / fragment).is_file():
        raise ConfigError(path=path, detail=f"field 'fragment': configs/kconfig/{fragment} does not exist")
    return Arch(
        name=f.str("name"), arch=f.str("arch"), cross_compile=f.str("cross_compile", ""),
        debian_arch=f.str("debian_arch"), image_target=f.str("image_target"), image_path=f.str("image_path"),
        fragment=fragment,
        qemu=QemuFacts(binary=q.str("binary"), machine=q.str("machine"), cpu=q.str("cpu"),
                       console=q.str("console"), tcg=q.str("tcg")),
    )


def select_arches(layout: Layout, spec: str) -> list[Arch]:
    """`x86_64`, `x86_64,arm64` or `all` (in a list too), each arch once, in the order given."""
    names: list[str] = []
    for item in (n.strip() for n in spec.split(",")):
        for name in arch_names(layout) if item == "all" else [item] if item else []:
            if name not in names:
                names.append(name)
    if not names:
        raise UsageError(detail=f"--arch {spec!r}: give x86_64, arm64, a comma list, or all")
    return [load_arch(layout, n) for n in names]


# ---------------------------------------------------------------- flavours


@dataclass(frozen=True)
class Conflict:
    options: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Flavor:
    name: str
    description: str
    base: str
    fragments: tuple[str, ...]  # file names under configs/kconfig/, arch fragment excluded
    conflicts: tuple[Conflict, ...] = ()


@dataclass(frozen=True)
class Flavors:
    default: str
    base: str
    always: tuple[str, ...]
    flavors: Mapping[str, tuple[str, str]]  # name -> (description, fragments)
    conflicts: tuple[Conflict, ...]
    path: Path

    def get(self, spec: str | None) -> Flavor:
        """One flavour, or several joined with '+' (e.g. `lockdep+kasan`)."""
        names = (spec or self.default).split("+")
        fragments: list[str] = list(self.always)
        descriptions = []
        for name in names:
            description, frags = pick("flavour", name, self.flavors, self.path)
            descriptions.append(description)
            fragments += [f for f in frags if f not in fragments]
        return Flavor(name="+".join(names), description="; ".join(descriptions), base=self.base,
                      fragments=tuple(f"{f}.config" for f in fragments), conflicts=self.conflicts)


def load_flavors(layout: Layout) -> Flavors:
    path = layout.configs / "flavors.yaml"
    known = {p.stem for p in (layout.configs / "kconfig").glob("*.config")}

    def fragments(f: Fields, key: str) -> tuple[str, ...]:
        names = f.strs(key)
        for n in names:
            if n not in known:
                raise ConfigError(path=path, detail=f"field '{f.where + '.' if f.where else ''}{key}': "
                                  f"no fragment configs/kconfig/{n}.config; fragments: {', '.join(sorted(known))}")
        return names

    def flavor(name: str, f: Fields) -> tuple[str, tuple[str, ...]]:
        f.check_keys({"description", "fragments"})
        return f.str("description", ""), fragments(f, "fragments")

    named = load_named(path, "flavors", "flavour", flavor, frozenset({"base", "always", "conflicts"}))
    top = named.top
    conflicts = []
    for c in top.items("conflicts", []):
        c.check_keys({"options", "reason"})
        conflicts.append(Conflict(options=c.strs("options"), reason=c.str("reason", "")))
    return Flavors(default=named.default, base=top.str("base"), always=fragments(top, "always"),
                   flavors=named.entries, conflicts=tuple(conflicts), path=path)


# ---------------------------------------------------------------- race amplification


@dataclass(frozen=True)
class Amplify:
    """`--amplify`: a carry patch on top of the series, its Kconfig fragment, boot parameters."""

    carry: Series
    fragment: str  # file name under configs/kconfig/
    cmdline: tuple[str, ...]

    def flavor(self, flavor: Flavor) -> Flavor:
        """The same flavour (and build slot) with the carry patch's option turned on."""
        return replace(flavor, fragments=flavor.fragments + (self.fragment,))


def load_amplify(layout: Layout) -> Amplify:
    path = layout.configs / "amplify.yaml"
    f = Fields(load_yaml(path), path)
    f.check_keys({"carry", "fragment", "cmdline"})
    carry = f.str("carry")
    series_file = layout.carry_series(carry)
    if not series_file.is_file():
        raise ConfigError(path=path, detail=f"field 'carry': no {series_file.relative_to(layout.root)}")
    fragment = f.str("fragment")
    if not (layout.configs / "kconfig" / f"{fragment}.config").is_file():
        raise ConfigError(path=path, detail=f"field 'fragment': no configs/kconfig/{fragment}.config")
    return Amplify(carry=load_series_file(series_file), fragment=f"{fragment}.config",
                   cmdline=f.strs("cmdline", ()))
