"""``symxent verify``: every check the package knows, run with progress and a summary.

Each stage of the pipeline contributes a ``verify_checks()`` function returning :class:`Check`
objects; :func:`run_all` runs them and returns :class:`CheckResult` objects.
"""
from __future__ import annotations

import importlib
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterable

#: modules whose ``verify_checks()`` contribute to ``symxent verify``, in pipeline order
CHECK_MODULES = (
    "symxent.examples.check",
    "symxent.numeric_checks",
    "symxent.prove.parse",
    "symxent.prove.prover",
    "symxent.derive",
    "symxent.prove.identities",
    "symxent.codegen",
    "symxent.runtime.checks",
    "symxent.distributed.checks",
)


@dataclass(frozen=True)
class Check:
    """One named check; ``run()`` returns ``(ok, detail)``, ``ok`` None when the check cannot run here
    (e.g. it needs a GPU): reported as skipped, never as passed."""

    group: str
    name: str
    run: Callable[[], tuple]


@dataclass(frozen=True)
class CheckResult:
    group: str
    name: str
    ok: bool | None  # None: skipped
    detail: str
    seconds: float

    @property
    def status(self) -> str:
        return "skipped" if self.ok is None else "passed" if self.ok else "failed"

    def to_dict(self) -> dict:
        return dict(group=self.group, name=self.name, status=self.status, ok=self.ok, detail=self.detail,
                    seconds=self.seconds)


def collect(modules: Iterable[str] = CHECK_MODULES) -> list:
    """All checks of the given modules (a module that is missing is an error, not a skip)."""
    checks = []
    for name in modules:
        checks.extend(importlib.import_module(name).verify_checks())
    return checks


def run_check(check: Check) -> CheckResult:
    start = time.perf_counter()
    try:
        ok, detail = check.run()
    except Exception as exc:  # a crash is a failed check, with its cause
        ok, detail = False, f"raised {type(exc).__name__}: {exc} | {traceback.format_exc(limit=2).splitlines()[-1]}"
    return CheckResult(check.group, check.name, None if ok is None else bool(ok), str(detail),
                       time.perf_counter() - start)


def run_all(checks: list, progress: Callable[[int, int, CheckResult], None] | None = None) -> list:
    results = []
    for index, check in enumerate(checks, 1):
        result = run_check(check)
        results.append(result)
        if progress is not None:
            progress(index, len(checks), result)
    return results
