"""configs/suites.yaml loaded into frozen dataclasses."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

from pipeline.config import Fields, Layout, load_named, pick
from pipeline.model.errors import ConfigError, UsageError

EXPECT = {"": 0, "EAGAIN": None}
#: module parameter types, declared by the YAML type of each default in suites.yaml
#: (`wq_items: 2000` is an int, `hotplug: false` a bool, `torture_type: mutex_lock` a string)
PARAM_TYPES = {
    "int": (re.compile(r"^-?\d+$"), "an integer"),
    "bool": (re.compile(r"^(?:[01yYnN]|true|false)$"), "a boolean (0/1, y/n, true/false)"),
    "str": (re.compile(r"^\S+$"), "a word without spaces"),
}


@dataclass(frozen=True)
class SuiteConfig:
    name: str
    description: str
    parser: str
    module: str
    params: Mapping[str, str]
    variants: tuple[Mapping[str, str], ...] = ({},)
    duration: float = 0.0  # seconds the module runs before rmmod; 0: load and done
    timeout: float = 300.0
    repeats: int = 1
    expect_exit: str = ""
    param_types: Mapping[str, str] = field(default_factory=dict)  # name -> "int" | "bool" | "str"
    triage_params: Mapping[str, str] = field(default_factory=dict)  # on the triage flavour when the A/B has its own
    lock_stat: tuple[str, ...] = ()  # lock classes to read from /proc/lock_stat around each run
    paths: tuple[str, ...] = ()  # globs of source paths whose change selects this suite by default
    # the A/B's own flavour loads the module once per entry of ab_variants (test_workqueue: once
    # per scope, so that lock_stat is read per scope), on kernels with the carry series ab_carry
    # (patches/carry/<name>/) that gives the module the parameter this needs
    ab_carry: str = ""
    ab_variants: tuple[Mapping[str, str], ...] = ()

    def check_param(self, key: str, value: str, item: str) -> None:
        """A parameter must be declared in suites.yaml (params or variants) and have its
        declared type."""
        declared = {**{k: v for variant in self.variants for k, v in variant.items()}, **self.params}
        if key not in declared:
            raise UsageError(detail=f"--param {item}: {self.name} has no parameter '{key}' (configs/suites.yaml); "
                             f"options are: {', '.join(sorted(declared)) or 'none'}")
        pattern, what = PARAM_TYPES[self.param_types.get(key, "str")]
        if not pattern.match(value):
            raise UsageError(detail=f"--param {item}: {self.name}.{key} is {what} (default {declared[key]})")

    def with_params(self, overrides: Mapping[str, str]) -> "SuiteConfig":
        """`--param test_workqueue.wq_items=1000` style overrides; they win over triage_params too."""
        return replace(self, params={**self.params, **overrides},
                       triage_params={k: v for k, v in self.triage_params.items() if k not in overrides})

    def for_triage(self) -> "SuiteConfig":
        """The suite as run on the sanitizer kernels of `wqci run` when the A/B is measured on
        a flavour of its own: there it only has to drive the code, not to be timed."""
        return replace(self, params={**self.params, **self.triage_params})

    def for_ab(self) -> "SuiteConfig":
        """The suite as run on the A/B flavour's kernels when they carry ab_carry: one load per
        entry of ab_variants instead of the declared variants."""
        return replace(self, variants=self.ab_variants) if self.ab_variants else self


@dataclass(frozen=True)
class Suites:
    default: tuple[str, ...]
    suites: Mapping[str, SuiteConfig]
    path: Path = field(default=Path("configs/suites.yaml"))

    def get(self, name: str) -> SuiteConfig:
        return pick("suite", name, self.suites, self.path)

    def select(self, names: list[str] | None) -> list[SuiteConfig]:
        return [self.get(n) for n in (names or self.default)]

    def by_paths(self, changed: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """The default suites a change selects, and why each other one is left out.

        A suite is selected when one of the changed paths matches one of its `paths`
        globs (fnmatch: `*` also crosses `/`), or when it declares none. When nothing
        matches (a change outside every suite's paths), all defaults run."""
        chosen, skipped = [], {}
        for name in self.default:
            cfg = self.get(name)
            hits = [p for p in changed if any(fnmatch.fnmatchcase(p, g) for g in cfg.paths)]
            if not cfg.paths or hits:
                chosen.append(name)
            else:
                skipped[name] = (f"the series changes none of its paths ({', '.join(cfg.paths)}); "
                                 "it runs in the nightly or with --suite")
        return (chosen, skipped) if chosen else (list(self.default), {})

    def resolve(self, names: list[str] | None, repeat: int | None = None, params: Sequence[str] | None = None,
                timeouts: Sequence[str] | None = None) -> list[SuiteConfig]:
        """The suites to run, with `SUITE.KEY=VALUE` parameter and `SUITE=SECONDS` timeout overrides."""
        overrides: dict[str, dict[str, str]] = {}
        for item in params or []:
            key, sep, value = item.partition("=")
            suite, dot, name = key.partition(".")
            if not sep or not dot:
                raise UsageError(detail=f"--param {item}: use SUITE.KEY=VALUE")
            self.get(suite).check_param(name, value, item)
            overrides.setdefault(suite, {})[name] = value
        limits: dict[str, float] = {}
        for item in timeouts or []:
            suite, sep, seconds = item.partition("=")
            try:
                limits[suite] = float(seconds) if sep else float("nan")
            except ValueError:
                limits[suite] = float("nan")
            if limits[suite] != limits[suite]:
                raise UsageError(detail=f"--suite-timeout {item}: use SUITE=SECONDS")
            self.get(suite)
        out = []
        for cfg in self.select(names):
            cfg = cfg.with_params(overrides.get(cfg.name, {}))
            if cfg.name in limits:
                cfg = replace(cfg, timeout=limits[cfg.name])
            out.append(replace(cfg, repeats=repeat) if repeat else cfg)
        return out


def _params(f: Fields, key: str) -> dict[str, str]:
    raw = f.get(key, dict, {})
    return {str(k): _module_value(v) for k, v in raw.items()}


def _module_value(value: object) -> str:
    """A YAML value as the kernel's module parameter parser reads it."""
    return ("Y" if value else "N") if isinstance(value, bool) else str(value)


def _types(f: Fields, path: Path, name: str) -> dict[str, str]:
    """Each parameter's type from the YAML type of its value in params and variants."""
    kinds = {bool: "bool", int: "int", str: "str"}
    out: dict[str, str] = {}
    raw = [f.get("params", dict, {})] + [v.data for v in f.items("variants", [])]
    for values in raw:
        for k, v in values.items():
            kind = kinds.get(type(v))
            if kind is None:
                raise ConfigError(path=path, detail=f"field 'suites.{name}.params.{k}': {v!r} is a "
                                  f"{type(v).__name__}; a module parameter is an int, a bool or a string")
            if out.setdefault(str(k), kind) != kind:
                raise ConfigError(path=path, detail=f"field 'suites.{name}': parameter '{k}' is {out[str(k)]} "
                                  f"in one place and {kind} in another")
    return out


def load_suites(layout: Layout) -> Suites:
    from pipeline.suites import PARSERS

    path = layout.configs / "suites.yaml"

    def suite(name: str, f: Fields) -> SuiteConfig:
        f.check_keys({"description", "parser", "module", "params", "variants", "duration", "timeout", "repeats",
                      "expect_exit", "lock_stat", "paths", "triage_params", "ab_carry", "ab_variants"})
        parser = f.str("parser")
        pick("suite parser", parser, PARSERS, f"{path}: suites.{name}.parser")
        variants = tuple({str(k): _module_value(v) for k, v in v.data.items()}
                         for v in f.items("variants", [])) or ({},)
        ab_carry = f.str("ab_carry", "")
        if ab_carry and not layout.carry_series(ab_carry).is_file():
            raise ConfigError(path=path, detail=f"field 'suites.{name}.ab_carry': no patches/carry/{ab_carry}/series.yaml")
        ab_variants = tuple({str(k): _module_value(v) for k, v in v.data.items()} for v in f.items("ab_variants", []))
        if ab_variants and not ab_carry:
            raise ConfigError(path=path, detail=f"field 'suites.{name}.ab_variants': needs ab_carry, the carry "
                              "series that gives the module their parameters")
        expect = f.str("expect_exit", "")
        if expect not in EXPECT:
            raise ConfigError(path=path, detail=f"field 'suites.{name}.expect_exit': '{expect}'; "
                              f"options are: {', '.join(repr(e) for e in EXPECT)}")
        return SuiteConfig(
            name=name, description=f.str("description", ""), parser=parser, module=f.str("module"),
            params=_params(f, "params"), variants=variants, param_types=_types(f, path, name), duration=float(f.get("duration", (int, float), 0)),
            timeout=float(f.get("timeout", (int, float), 300)), repeats=f.get("repeats", int, 1), expect_exit=expect,
            lock_stat=tuple(str(c) for c in f.get("lock_stat", list, [])), triage_params=_params(f, "triage_params"),
            paths=tuple(str(g) for g in f.get("paths", list, [])), ab_carry=ab_carry, ab_variants=ab_variants,
        )

    named = load_named(path, "suites", "suite", suite, several=True)
    return Suites(default=named.default, suites=named.entries, path=path)
