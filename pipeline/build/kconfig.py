"""Kernel configuration: tinyconfig, the flavour's fragments merged with the
kernel's own merge_config.sh, olddefconfig, then verification.

Kconfig silently drops an option whose dependencies are not met (TEST_WORKQUEUE
without RUNTIME_TESTING_MENU, SCHED_PROXY_EXEC without EXPERT). A silently
dropped option makes a build that tests nothing, so every requested option must
hold in the final .config, and a dropped one is reported with the dependency
that is not met, before anything is compiled.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from pipeline import proc
from pipeline.config import Arch, Flavor, Layout
from pipeline.model.errors import ConfigError, KconfigError, UsageError

Runner = Callable[[Sequence[str]], proc.Completed]

SET_RE = re.compile(r"^CONFIG_(\w+)=(.*)$")
UNSET_RE = re.compile(r"^# CONFIG_(\w+) is not set$")
TRISTATE = {"n": 0, "m": 1, "y": 2}


@dataclass(frozen=True)
class Request:
    option: str
    value: str  # y, m, n or a literal
    fragment: str


@dataclass(frozen=True)
class KconfigResult:
    config: Path
    config_hash: str
    fragments: tuple[Path, ...]
    requested: tuple[Request, ...]
    duration: float


def parse_config(text: str) -> dict[str, str]:
    """`CONFIG_X=y` -> {"X": "y"}; `# CONFIG_X is not set` -> {"X": "n"}."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if m := SET_RE.match(line):
            values[m.group(1)] = m.group(2).strip('"')
        elif m := UNSET_RE.match(line):
            values[m.group(1)] = "n"
    return values


def fragment_paths(layout: Layout, arch: Arch, flavor: Flavor) -> list[Path]:
    kdir = layout.configs / "kconfig"
    return [kdir / f for f in flavor.fragments] + [kdir / arch.fragment]


def requests(fragments: Sequence[Path]) -> list[Request]:
    """What the fragments ask for; a later fragment overrides an earlier one."""
    merged: dict[str, Request] = {}
    for frag in fragments:
        text = frag.read_text()
        check_fragment(frag, text)
        label = ADDED_LABEL if frag.name == ADDED_FRAGMENT else frag.name
        for option, value in parse_config(text).items():
            merged[option] = Request(option, value, label)
    return list(merged.values())


# ---------------------------------------------------------------- what a fragment line may say

OPTION_RE = re.compile(r"^CONFIG_[A-Z0-9_]+$")
VALUE_RE = re.compile(r'^(y|m|n|-?[0-9]+|0x[0-9a-fA-F]+|"([^"\\]|\\.)*")$')
#: -K/--kconfig-add lines: a fragment of their own, merged after the flavour's and the arch's
ADDED_FRAGMENT = "wqci-kconfig-add.config"
ADDED_LABEL = "-K"


def option_problem(line: str) -> str | None:
    """Why `CONFIG_X=VALUE` is not a line a fragment may have, or None when it may."""
    name, eq, value = line.partition("=")
    if not eq or not OPTION_RE.match(name):
        return "give CONFIG_NAME=VALUE, the name in capitals, digits and _ (e.g. CONFIG_KCSAN=y)"
    if not VALUE_RE.match(value):
        return 'the value must be y, m, n, a number or a "string"'
    return None


def check_fragment(path: Path, text: str) -> None:
    """Every line of a fragment is blank, a comment (`# CONFIG_X is not set` among them) or a
    valid CONFIG_X=VALUE."""
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        why = option_problem(line)
        if why:
            raise ConfigError(path=path, detail=f"line {number}: {line}: {why}")


def check_added(item: str) -> str:
    """One `-K CONFIG_X=VALUE`, checked as a fragment's lines are: a usage error before any work."""
    why = option_problem(item)
    if why:
        raise UsageError(detail=f"--kconfig-add {item}: {why}")
    return item


def _added_fragment(build: Path, added: Sequence[str]) -> list[Path]:
    """The -K options as a fragment in the build directory (none without -K); CONFIG_X=n is
    written as kconfig writes it, `# CONFIG_X is not set`."""
    path = build / ADDED_FRAGMENT
    if not added:
        path.unlink(missing_ok=True)
        return []
    lines = [f"# {item[:-2]} is not set" if item.endswith("=n") else item for item in map(check_added, added)]
    path.write_text("".join(f"{line}\n" for line in lines))
    return [path]


def check_conflicts(flavor: Flavor, wanted: Sequence[Request]) -> None:
    enabled = {r.option: r for r in wanted if r.value in ("y", "m")}
    for conflict in flavor.conflicts:
        both = [enabled[o] for o in conflict.options if o in enabled]
        if len(both) == len(conflict.options):
            asked = " and ".join(f"CONFIG_{r.option} ({r.fragment})" for r in both)
            raise KconfigError(detail=f"flavour '{flavor.name}' asks for {asked}, which cannot coexist: "
                               f"{conflict.reason}")


def config_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def configure(layout: Layout, arch: Arch, flavor: Flavor, src: Path, build: Path, run: Runner,
              added: Sequence[str] = ()) -> KconfigResult:
    """Write build/.config for arch and flavour (and the -K options, CONFIG_X=VALUE) and
    verify it; `run` runs make and scripts."""
    started = time.monotonic()
    build.mkdir(parents=True, exist_ok=True)
    fragments = fragment_paths(layout, arch, flavor) + _added_fragment(build, added)
    wanted = requests(fragments)
    check_conflicts(flavor, wanted)
    config = build / ".config"
    key = inputs_key(src, arch, flavor, fragments)
    stamp = build / ".wqci-config-inputs"
    if not (config.exists() and stamp.exists() and stamp.read_text() == key):
        # the three steps take ~20 s; their inputs are the fragments and the tree's Kconfig files
        stamp.unlink(missing_ok=True)
        run(["make", f"O={build}", flavor.base])
        run([str(src / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(build), str(build / ".config"),
             *map(str, fragments)])
        run(["make", f"O={build}", "olddefconfig"])
        stamp.write_text(key)
    final = parse_config(config.read_text())
    dropped = [r for r in wanted if not holds(r, final)]
    if dropped:
        lines = [explain(src, r, final, arch.srcarch) for r in dropped]
        raise KconfigError(
            detail=f"{arch.name}/{flavor.name}: {len(dropped)} requested option(s) not in the final .config: "
            + "; ".join(lines),
            report="\n".join(["", *("  " + ln for ln in lines)]),
        )
    return KconfigResult(config=config, config_hash=config_hash(config), fragments=tuple(fragments),
                         requested=tuple(wanted), duration=time.monotonic() - started)


def inputs_key(src: Path, arch: Arch, flavor: Flavor, fragments: Sequence[Path]) -> str:
    """What decides the .config: arch, base target, fragments, every Kconfig* blob, the compiler."""
    digest = hashlib.sha256(f"{arch.name}|{arch.cross_compile}|{flavor.base}".encode())
    for frag in fragments:
        digest.update(frag.name.encode() + frag.read_bytes())
    tree = proc.run(["git", "-C", str(src), "ls-tree", "-r", "HEAD"], check=False).stdout
    digest.update("".join(ln for ln in tree.splitlines(keepends=True) if "Kconfig" in ln).encode())
    status = proc.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"], check=False).stdout
    digest.update(status.encode())
    return digest.hexdigest()


def holds(request: Request, final: Mapping[str, str]) -> bool:
    have = final.get(request.option, "n")
    return have == request.value


# ---------------------------------------------------------------- explaining a dropped option


@dataclass(frozen=True)
class Definition:
    file: Path
    line: int
    depends: tuple[str, ...]  # the symbol's own `depends on` expressions
    enclosing: tuple[str, ...]  # `if EXPR` blocks and `menu` dependencies around it


def kconfig_lines(src: Path, pattern: str) -> list[tuple[Path, int]]:
    """(file, line number) of every line of the tree's Kconfig files matching an ERE."""
    done = proc.run(["grep", "-rn", "--include=Kconfig*", "-E", pattern, str(src)], check=False)
    return [(Path(path), int(number)) for path, number, _ in (ln.split(":", 2) for ln in done.stdout.splitlines())]


def find_definition(src: Path, option: str, arch_hint: str = "") -> Definition | None:
    hits = kconfig_lines(src, rf"^\s*(menu)?config {option}\s*$")
    if not hits:
        return None
    # Prefer the current arch's definition when several arches define it (NUMA).
    hits.sort(key=lambda h: (f"/arch/{arch_hint}/" not in str(h[0])) if arch_hint else 0)
    return parse_definition(*hits[0])


def parse_definition(path: Path, number: int) -> Definition:
    lines = path.read_text(errors="replace").splitlines()
    enclosing: list[str] = []
    for line in lines[: number - 1]:
        # `if`/`endif` blocks start in column 0; indented lines are help text
        if line.startswith("if "):
            enclosing.append(line[3:].split("#")[0].strip())
        elif re.match(r"^endif\b", line) and enclosing:
            enclosing.pop()
    depends = []
    body = iter(lines[number:])
    for line in body:
        if re.match(r"^(config|menuconfig|choice|endchoice|menu|endmenu|if|endif|source|comment)\b", line):
            break
        word = line.split("#")[0].strip()
        while word.endswith("\\"):  # an expression continued on the next line
            word = word[:-1].strip() + " " + next(body, "").split("#")[0].strip()
        if word.startswith("depends on "):
            depends.append(word[len("depends on "):])
    return Definition(file=path, line=number, depends=tuple(depends), enclosing=tuple(enclosing))


def explain(src: Path, request: Request, final: Mapping[str, str], srcarch: str = "") -> str:
    have = final.get(request.option, "n")
    head = (f"CONFIG_{request.option}={request.value} ({request.fragment}) ended as "
            f"{'not set' if have == 'n' else have}")
    if request.value == "n":
        found = selectors(src, request.option, final)
        if found:
            return head + f": selected by {', '.join(found)}"
        return head + ": no enabled option selects it; it may have no prompt, only a default"
    definition = find_definition(src, request.option, srcarch)
    if definition is None:
        return head + ": no such option in this tree"
    where = f"{definition.file.relative_to(src) if definition.file.is_relative_to(src) else definition.file}"
    unmet = []
    for expr in definition.enclosing:
        if evaluate(expr, final) == 0:
            unmet.append(f"{expr} (enclosing `if {expr}` in {where}; {describe_terms(expr, final)})")
    for expr in definition.depends:
        for term in split_and(expr):
            if evaluate(term, final) < TRISTATE.get(request.value, 2):
                unmet.append(f"{term} ({describe_terms(term, final)})")
    unmet = list(dict.fromkeys(unmet))
    if not unmet:
        return head + f": its dependencies in {where}:{definition.line} hold; it may be selected only by " \
                      "other options, or lost to a choice"
    return head + ": needs " + " and ".join(unmet)


def selectors(src: Path, option: str, final: Mapping[str, str]) -> list[str]:
    """Enabled symbols whose `select` lines name option."""
    found = []
    for path, number in kconfig_lines(src, rf"^\s*select {option}(\s|$)"):
        above = path.read_text(errors="replace").splitlines()[:number]
        owner = next((m.group(1) for ln in reversed(above) if (m := re.match(r"^\s*(?:menu)?config (\w+)", ln))), "")
        if final.get(owner, "n") in ("y", "m"):
            found.append(owner)
    return sorted(set(found))


def describe_terms(expr: str, final: Mapping[str, str]) -> str:
    symbols = sorted(set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", expr)))
    return ", ".join(f"{s}={final.get(s, 'n')}" for s in symbols) or expr


def split_and(expr: str) -> list[str]:
    """Top-level `&&` terms of a Kconfig expression."""
    terms, depth, current = [], 0, ""
    i = 0
    while i < len(expr):
        ch = expr[i]
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and expr.startswith("&&", i):
            terms.append(current.strip())
            current = ""
            i += 2
            continue
        current += ch
        i += 1
    terms.append(current.strip())
    return [t for t in terms if t]


TOKEN_RE = re.compile(r"\s*(\|\||&&|!=|[()!=<>]|\"[^\"]*\"|[A-Za-z0-9_]+)")


def evaluate(expr: str, final: Mapping[str, str]) -> int:
    """Evaluate a Kconfig dependency expression to n/m/y as 0/1/2."""
    tokens = TOKEN_RE.findall(expr)
    pos = 0

    def peek() -> str:
        return tokens[pos] if pos < len(tokens) else ""

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1] if pos <= len(tokens) else ""

    def value_of(sym: str) -> str:
        if sym in TRISTATE:
            # `m` means nothing without module support
            return "n" if sym == "m" and final.get("MODULES", "n") != "y" else sym
        return final.get(sym, sym.strip('"') if sym.startswith('"') else "n")

    def atom() -> int:
        tok = take()
        if tok == "!":
            return 2 - atom()
        if tok == "(":
            v = disjunction()
            take()
            return v
        if peek() in ("=", "!="):
            op, other = take(), take()
            same = value_of(tok) == value_of(other)
            return 2 if same == (op == "=") else 0
        return TRISTATE.get(value_of(tok), 2 if value_of(tok) not in ("", "n") else 0)

    def conjunction() -> int:
        v = atom()
        while peek() == "&&":
            take()
            v = min(v, atom())
        return v

    def disjunction() -> int:
        v = conjunction()
        while peek() == "||":
            take()
            v = max(v, conjunction())
        return v

    return disjunction() if tokens else 2
