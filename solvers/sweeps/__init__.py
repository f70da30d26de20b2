"""Sweeps: grids of independent tasks on a process pool or a Dask cluster, with a resumable store.

DESIGN.md, "Sweeps".  A sweep is a registered *experiment* (a top-level function of keyword
parameters, :func:`experiment`) and a grid (lists of values, plus seeds).  :func:`run_sweep`
checks the grid, skips the tasks already in the store (``resume=True``), runs the rest through
a ``concurrent.futures.Executor`` (local process pool, or a Dask client's executor) and appends
one JSON line per finished task to the store.  Figures read the store with
:func:`load_results` (plain dicts) or :func:`results_frame` (pandas), or call
:func:`sweep_records`, which runs only what is missing and returns the records in grid order.

Modules: :mod:`.registry` (experiments and parameter declarations), :mod:`.grid` (grid parsing,
checking, task keys), :mod:`.store` (the JSON-lines store), :mod:`.engine` (execution),
:mod:`.experiments` (the built-in experiments).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .engine import SweepInterrupted, SweepSummary, run_sweep
from .grid import Task, parse_grid, parse_seeds, plan, task_key
from .registry import (
    EXPERIMENT_MODULES,
    EXPERIMENTS,
    Bool,
    Choice,
    Experiment,
    Float,
    Int,
    Param,
    experiment,
    get_experiment,
    load_experiments,
)
from .store import StoreWriter, compact, flatten, load_results, read_store, results_frame

STORE_DIR_ENV = "COLLAPSEKIT_SWEEP_DIR"


def default_store(name: str) -> Path:
    """``$COLLAPSEKIT_SWEEP_DIR/NAME.jsonl`` (default folder ``sweeps`` in the working directory)."""
    return Path(os.environ.get(STORE_DIR_ENV, "sweeps")) / f"{name}.jsonl"


def sweep_records(name: str, grid: Mapping[str, object], seeds: Iterable[object] | None = None, *,
                  store: str | os.PathLike | None = None, workers: int | None = None,
                  scheduler: str | None = None, progress: bool | None = False) -> list[dict[str, Any]]:
    """Run (resuming) the sweep and return one ``ok`` record per task, in grid order.

    What figures call: a second call with the same grid costs no solver time.  Raises
    RuntimeError naming the failed tasks if any task failed.
    """
    path = Path(store) if store is not None else default_store(name)
    summary = run_sweep(name, grid, seeds, store=path, resume=True, workers=workers, scheduler=scheduler,
                        progress=progress)
    if summary.failed:
        raise RuntimeError(f"sweep {name!r}: {summary.failed} task(s) failed, e.g. {summary.failures[:3]}")
    exp = get_experiment(name)
    by_key = {r["key"]: r for r in load_results(path, name)}
    return [by_key[t.key] for t in plan(exp, grid, seeds)]


__all__ = [
    "EXPERIMENTS", "EXPERIMENT_MODULES", "Bool", "Choice", "Experiment", "Float", "Int", "Param",
    "StoreWriter", "SweepInterrupted", "SweepSummary", "Task", "compact", "default_store", "experiment",
    "flatten", "get_experiment", "load_experiments", "load_results", "parse_grid", "parse_seeds", "plan",
    "read_store", "results_frame", "run_sweep", "sweep_records", "task_key",
]
