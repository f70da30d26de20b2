"""The registry of checks (DESIGN.md, "Checks and reports").

A check is a record: id (e.g. ``SSEM-C3``), statement, provenance (one of PROVENANCES; the spec's
own tag such as ``[DER+NUM]`` is kept in ``spec_tag``), method (one of METHODS), and a function
``func(quick: bool) -> Outcome``.  A refuted claim is a result, not an error: the check passes when
the numerics reproduce what the spec expects (confirmation *or* refutation), and the report shows
the verdict and the counterexample.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

PROVENANCES = ("paper", "paper-abstract", "authors-code", "literature", "third-party", "derived", "reconstruction")
METHODS = ("symbolic", "numeric", "certificate", "monte-carlo", "training")
STATUSES = ("pass", "fail", "skip")
NON_CHECK_MODULES = {"cli", "registry", "report", "commands", "loss_options", "output"}


class Skip(Exception):
    """Raised by a check that cannot run here (e.g. an optional dependency is missing)."""


@dataclass
class Outcome:
    """What a check measured.  ``passed`` is the check's own assertion (tolerance applied)."""

    expected: Any
    measured: Any
    tolerance: Any
    passed: bool
    verdict: str = "confirmed"
    detail: str = ""
    counterexample: Any = None


@dataclass(frozen=True)
class Check:
    id: str
    paper: str
    statement: str
    provenance: str
    spec_tag: str
    method: str
    func: Callable[[bool], Outcome]


@dataclass
class CheckResult:
    id: str
    paper: str
    statement: str
    provenance: str
    spec_tag: str
    method: str
    status: str
    verdict: str | None
    expected: Any
    measured: Any
    tolerance: Any
    detail: str
    counterexample: Any
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


REGISTRY: dict[str, Check] = {}


def check(id: str, paper: str, statement: str, provenance: str, spec_tag: str,
          method: str) -> Callable[[Callable[[bool], Outcome]], Callable[[bool], Outcome]]:
    """Decorator registering ``func(quick) -> Outcome`` as a check."""
    if provenance not in PROVENANCES:
        raise ValueError(f"provenance must be one of {PROVENANCES}; got {provenance!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")

    def deco(func: Callable[[bool], Outcome]) -> Callable[[bool], Outcome]:
        if id in REGISTRY and REGISTRY[id].func is not func:
            raise ValueError(f"duplicate check id {id!r}")
        REGISTRY[id] = Check(id, paper, statement, provenance, spec_tag, method, func)
        return func

    return deco


def load_all() -> None:
    """Import every paper module of this package so that its checks register."""
    import paper_checks

    for info in pkgutil.iter_modules(paper_checks.__path__):
        if info.name not in NON_CHECK_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"paper_checks.{info.name}")


def papers() -> list[str]:
    load_all()
    return sorted({c.paper for c in REGISTRY.values()})


def select(paper: str | None = None, ids: Iterable[str] | None = None) -> list[Check]:
    """Checks of one paper (or all), optionally restricted to ids; unknown names raise ValueError."""
    load_all()
    chosen = list(REGISTRY.values())
    if paper is not None:
        known = papers()
        if paper not in known:
            raise ValueError(f"paper must be one of {', '.join(known)}; got {paper!r}")
        chosen = [c for c in chosen if c.paper == paper]
    if ids:
        wanted = set(ids)
        missing = wanted - {c.id for c in chosen}
        if missing:
            raise ValueError(f"unknown check id(s): {', '.join(sorted(missing))}")
        chosen = [c for c in chosen if c.id in wanted]
    return sorted(chosen, key=lambda c: (c.paper, c.id))


def run_one(chk: Check, quick: bool) -> CheckResult:
    """Run one check; exceptions become a failing result with the traceback's last line."""
    start = time.perf_counter()
    verdict: str | None = None
    expected = measured = tolerance = counterexample = None
    detail = ""
    try:
        out = chk.func(quick)
        status = "pass" if out.passed else "fail"
        verdict = out.verdict
        expected, measured, tolerance = out.expected, out.measured, out.tolerance
        detail, counterexample = out.detail, out.counterexample
    except Skip as exc:
        status, detail = "skip", str(exc)
    except Exception as exc:  # a crashing check is a failing check, reported with its reason
        status = "fail"
        detail = f"error: {type(exc).__name__}: {exc} | {traceback.format_exc().strip().splitlines()[-3:]}"
    return CheckResult(chk.id, chk.paper, chk.statement, chk.provenance, chk.spec_tag, chk.method, status,
                       verdict, expected, measured, tolerance, detail, counterexample,
                       round(time.perf_counter() - start, 3))


@dataclass
class RunSummary:
    results: list[CheckResult] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in STATUSES}

    @property
    def ok(self) -> bool:
        return self.counts["fail"] == 0
