"""Grids -> tasks: parse and check a grid against an experiment's declared parameters.

A grid maps parameter names to lists of values; the tasks are the Cartesian product of the
lists (parameters in declaration order, seeds innermost), with every parameter not in the grid
at its declared default.  Everything is checked before a task starts: an unknown parameter, an
empty list, a value of the wrong type or out of range, a missing required parameter, seeds for a
deterministic experiment, and the experiment's own cross-parameter ``validate`` hook - each
raises ValueError naming the parameter.

Task keys: ``sha256(canonical JSON of {experiment, version, params incl. seed})``, truncated to
32 hex digits (128 bits).  Canonical JSON sorts keys, has no spaces and writes floats with
Python's shortest round-trip ``repr``, so the key is the same on every machine and in every run;
values are coerced to the declared type first, so ``tau=1`` and ``tau=1.0`` are one task.

Command-line value syntax (``--grid name=ITEMS``, ITEMS comma-separated, each item one of):

- a value: ``0.5``, ``simclr``, ``true``;
- an integer range (inclusive) ``2..30`` or with a step ``2..30..4``;
- ``lin:A:B:N`` (N evenly spaced floats from A to B) or ``log:A:B:N`` (N geometrically spaced
  floats), rounded to 15 significant digits so that 0.1 + 0.2 prints as 0.3.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .registry import Experiment, Param


@dataclass(frozen=True)
class Task:
    """One task of a sweep: canonical parameters (``seed`` included when seeded) and its key."""

    experiment: str
    version: str
    params: dict[str, Any]
    key: str


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, shortest float repr; NaN/inf refused (not valid JSON)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def task_key(experiment: str, version: str, params: Mapping[str, Any]) -> str:
    """Stable key of one task: 32 hex digits of sha256 over the canonical JSON."""
    blob = canonical_json({"experiment": experiment, "version": version, "params": dict(params)})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


# ----------------------------------------------------------------------------------------------
# command-line parsing
# ----------------------------------------------------------------------------------------------
def _round15(x: float) -> float:
    return float(f"{x:.15g}")


def _expand_item(param: Param, item: str) -> list[Any]:
    item = item.strip()
    if not item:
        raise ValueError(f"parameter {param.name!r} has an empty value in its list")
    if param.kind is int and ".." in item:
        parts = item.split("..")
        if len(parts) not in (2, 3):
            raise ValueError(f"parameter {param.name!r}: an integer range is A..B or A..B..STEP; got {item!r}")
        try:
            a, b, *step = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f"parameter {param.name!r}: an integer range is A..B or A..B..STEP; "
                             f"got {item!r}") from None
        st = step[0] if step else 1
        if st < 1 or b < a:
            raise ValueError(f"parameter {param.name!r}: range {item!r} needs A <= B and STEP >= 1")
        return [param.coerce(v) for v in range(a, b + 1, st)]
    if param.kind is float and item[:4] in ("lin:", "log:"):
        parts = item.split(":")
        try:
            a, b, n = float(parts[1]), float(parts[2]), int(parts[3])
            if len(parts) != 4:
                raise IndexError
        except (IndexError, ValueError):
            raise ValueError(f"parameter {param.name!r}: use lin:A:B:N or log:A:B:N; got {item!r}") from None
        if n < 1:
            raise ValueError(f"parameter {param.name!r}: N in {item!r} must be >= 1")
        if parts[0] == "log" and (a <= 0 or b <= 0):
            raise ValueError(f"parameter {param.name!r}: log:A:B:N needs A > 0 and B > 0; got {item!r}")
        if n == 1:
            vals = [a]
        elif parts[0] == "lin":
            vals = [a + (b - a) * i / (n - 1) for i in range(n)]
        else:
            la, lb = math.log(a), math.log(b)
            vals = [math.exp(la + (lb - la) * i / (n - 1)) for i in range(n)]
        return [param.coerce(_round15(v)) for v in vals]
    return [param.parse(item)]


def parse_grid(exp: Experiment, items: Iterable[str]) -> dict[str, list[Any]]:
    """``["K=2,4", "tau=lin:0.1:1:10"]`` -> ``{"K": [2, 4], "tau": [0.1, ..., 1.0]}`` (checked)."""
    grid: dict[str, list[Any]] = {}
    for raw in items:
        if "=" not in raw:
            raise ValueError(f"grid entries are NAME=V1,V2,...; got {raw!r}")
        name, _, values = raw.partition("=")
        name = name.strip()
        param = exp.param(name)
        if name in grid:
            raise ValueError(f"parameter {name!r} is given twice in the grid")
        if not values.strip():
            raise ValueError(f"parameter {name!r} has an empty list of values; give at least one")
        grid[name] = [v for item in values.split(",") for v in _expand_item(param, item)]
    return grid


def parse_seeds(text: str) -> list[int]:
    """``"4"`` -> seeds 0..3; ``"2:6"`` -> 2, 3, 4, 5; ``"0,5,9"`` -> that list."""
    text = text.strip()
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        elif ":" in text:
            a, b = (int(s) for s in text.split(":"))
            seeds = list(range(a, b))
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise ValueError(f"seeds must be a count N (seeds 0..N-1), a range A:B or a list S1,S2,...; "
                         f"got {text!r}") from None
    return check_seeds(seeds)


def check_seeds(seeds: Iterable[object]) -> list[int]:
    """Non-empty list of distinct integers >= 0."""
    out: list[int] = []
    for s in seeds:
        integral = isinstance(s, numbers.Integral) or (isinstance(s, float) and s.is_integer())
        if isinstance(s, bool) or not integral:
            raise ValueError(f"seeds must be integers >= 0; got {s!r}")
        v = int(s)  # type: ignore[arg-type]
        if v < 0:
            raise ValueError(f"seeds must be integers >= 0; got {s!r}")
        if v in out:
            raise ValueError(f"seeds must be distinct; {v} appears twice")
        out.append(v)
    if not out:
        raise ValueError("seeds must hold at least one seed")
    return out


# ----------------------------------------------------------------------------------------------
# planning
# ----------------------------------------------------------------------------------------------
def _values(param: Param, values: object) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, set, frozenset)) and not (
            hasattr(values, "__iter__") and hasattr(values, "__len__")):
        values = [values]  # a scalar is a one-value list
    vals = list(values)  # type: ignore[call-overload]
    if not vals:
        raise ValueError(f"parameter {param.name!r} has an empty list of values; give at least one")
    return [param.coerce(v.item() if hasattr(v, "item") and not isinstance(v, (str, bytes)) else v)
            for v in vals]


def plan(exp: Experiment, grid: Mapping[str, object], seeds: Iterable[object] | None = None) -> list[Task]:
    """Every task of ``exp`` over ``grid`` x ``seeds``, checked, without duplicates, in a fixed order."""
    if not isinstance(grid, Mapping):
        raise ValueError(f"grid must be a mapping of parameter name -> list of values; got {type(grid).__name__}")
    for name in grid:
        if name not in exp.param_names:
            raise ValueError(exp.unknown_message(str(name)))
    axes: list[list[Any]] = []
    for p in exp.params:
        if p.name in grid:
            axes.append(_values(p, grid[p.name]))
        elif p.required:
            raise ValueError(f"parameter {p.name!r} is required by experiment {exp.name!r} "
                             f"({p.describe_range()}); add it to the grid ({p.name}=...)")
        else:
            axes.append([p.default])
    if exp.seeded:
        seed_list = check_seeds([0] if seeds is None else seeds)
    elif seeds is not None:
        raise ValueError(f"seeds: experiment {exp.name!r} is deterministic (it takes no seed); omit the seeds")
    else:
        seed_list = []
    tasks: list[Task] = []
    seen: set[str] = set()
    for combo in itertools.product(*axes):
        params = dict(zip(exp.param_names, combo, strict=True))
        if exp.validate is not None:
            exp.validate(dict(params))
        for s in seed_list or [None]:
            full = dict(params) if s is None else {**params, "seed": s}
            key = task_key(exp.name, exp.version, full)
            if key not in seen:
                seen.add(key)
                tasks.append(Task(exp.name, exp.version, full, key))
    return tasks
