"""configs/suites.yaml loaded into frozen dataclasses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

from pipeline.config import Fields, Layout, load_named, pick
from pipeline.model.errors import ConfigError, UsageError

EXPECT = {"": 0, "EAGAIN": None}
INT_RE = re.compile(r"^-?\d+$")


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

    def check_param(self, key: str, value: str, item: str) -> None:
        """A parameter must be declared in suites.yaml (params or variants) and have the
        type of its declared value: integers stay integers."""
        declared = {**{k: v for variant in self.variants for k, v in variant.items()}, **self.params}
        if key not in declared:
            raise UsageError(detail=f"--param {item}: {self.name} has no parameter '{key}' (configs/suites.yaml); "
                             f"options are: {', '.join(sorted(declared)) or 'none'}")
        if INT_RE.match(declared[key]) and not INT_RE.match(value):
            raise UsageError(detail=f"--param {item}: {self.name}.{key} is an integer (default {declared[key]})")

    def with_params(self, overrides: Mapping[str, str]) -> "SuiteConfig":
        """`--param test_workqueue.wq_items=1000` style overrides."""
        return replace(self, params={**self.params, **overrides})


@dataclass(frozen=True)
class Suites:
    default: tuple[str, ...]
    suites: Mapping[str, SuiteConfig]
    path: Path = field(default=Path("configs/suites.yaml"))

    def get(self, name: str) -> SuiteConfig:
        return pick("suite", name, self.suites, self.path)

    def select(self, names: list[str] | None) -> list[SuiteConfig]:
        return [self.get(n) for n in (names or self.default)]

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
    return {str(k): str(v) for k, v in raw.items()}


def load_suites(layout: Layout) -> Suites:
    from pipeline.suites import PARSERS

    path = layout.configs / "suites.yaml"

    def suite(name: str, f: Fields) -> SuiteConfig:
        f.check_keys({"description", "parser", "module", "params", "variants", "duration", "timeout", "repeats",
                      "expect_exit"})
        parser = f.str("parser")
        pick("suite parser", parser, PARSERS, f"{path}: suites.{name}.parser")
        variants = tuple({str(k): str(v) for k, v in v.data.items()} for v in f.items("variants", [])) or ({},)
        expect = f.str("expect_exit", "")
        if expect not in EXPECT:
            raise ConfigError(path=path, detail=f"field 'suites.{name}.expect_exit': '{expect}'; "
                              f"options are: {', '.join(repr(e) for e in EXPECT)}")
        return SuiteConfig(
            name=name, description=f.str("description", ""), parser=parser, module=f.str("module"),
            params=_params(f, "params"), variants=variants, duration=float(f.get("duration", (int, float), 0)),
            timeout=float(f.get("timeout", (int, float), 300)), repeats=f.get("repeats", int, 1), expect_exit=expect,
        )

    named = load_named(path, "suites", "suite", suite, several=True)
    return Suites(default=named.default, suites=named.entries, path=path)
