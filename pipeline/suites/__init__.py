"""Suite parsers, found by name: each turns a suite's kernel log into test cases.

A parser is a function (SuiteRun) -> list[Case]; it does not print and does not
touch the guest. Adding one is a module here plus an entry in PARSERS.
"""

from __future__ import annotations

from typing import Callable

from pipeline.config import pick
from pipeline.suites import ktap_suite, locktorture, test_workqueue, ww_mutex
from pipeline.model.cases import Case, SuiteRun

Parser = Callable[[SuiteRun], list[Case]]

PARSERS: dict[str, Parser] = {
    "test_workqueue": test_workqueue.parse,
    "locktorture": locktorture.parse,
    "ww_mutex_selftest": ww_mutex.parse,
    "ktap": ktap_suite.parse,
}


def parser(name: str, where: str = "configs/suites.yaml") -> Parser:
    return pick("suite parser", name, PARSERS, where)


__all__ = ["Case", "SuiteRun", "PARSERS", "parser"]
