"""Run a sweep: tasks through a ``concurrent.futures.Executor``, records into the store.

The executor is a local :class:`~concurrent.futures.ProcessPoolExecutor` (all cores by default,
``spawn`` start method, one BLAS thread per worker unless the user set ``OMP_NUM_THREADS`` and
friends), or the executor of a Dask ``distributed.Client`` connected to a scheduler address
(``pip install 'collapsekit[dask]'``), or any executor passed in.  There is no other scheduling
code: the engine submits batches of tasks and waits for them (DESIGN.md, "Sweeps").

Resume: a task whose key already has an ``ok`` record in the store is *reused* (not run again)
when ``resume=True``; without it, a store that already holds some of the tasks is refused (so
that nothing is recomputed or duplicated silently).  Failed tasks are run again on resume.

Interruption: Ctrl-C (or SIGTERM, which the CLI turns into the same) cancels the pending tasks,
terminates the local workers and raises :class:`SweepInterrupted` carrying the summary; every
record reported before it is on disk.  A lost local worker (killed, out of memory) breaks a
process pool: the engine starts a new pool and resubmits the unfinished batches, up to
``max_pool_restarts`` times.  Dask reschedules the tasks of a lost worker itself.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from .grid import Task, plan
from .registry import Experiment, get_experiment
from .store import StoreWriter, make_record, read_store

BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
MAX_FAILURES_LISTED = 10


@dataclass
class SweepSummary:
    """What a sweep did.  ``tasks = computed + reused + failed`` unless ``interrupted``.

    ``computed``: tasks run now that succeeded; ``reused``: tasks found in the store (``ok``);
    ``failed``: tasks run now that raised (their records have ``status="failed"`` and are
    retried by the next ``resume``); ``failures``: the first few, with parameters and error.
    """

    experiment: str
    tasks: int
    computed: int = 0
    reused: int = 0
    failed: int = 0
    seconds: float = 0.0
    store: str = ""
    executor: str = ""
    workers: int = 0
    interrupted: bool = False
    pool_restarts: int = 0
    skipped_lines: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SweepInterrupted(KeyboardInterrupt):
    """Raised when a sweep is interrupted (Ctrl-C, SIGTERM); ``.summary`` says what was stored."""

    def __init__(self, summary: SweepSummary) -> None:
        super().__init__(f"sweep {summary.experiment!r} interrupted after "
                         f"{summary.computed + summary.failed} of {summary.tasks - summary.reused} tasks")
        self.summary = summary


# ----------------------------------------------------------------------------------------------
# what a worker runs
# ----------------------------------------------------------------------------------------------
def jsonable(obj: Any) -> Any:
    """numpy scalars/arrays, tuples and dataclasses -> plain JSON types (floats may be non-finite)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(asdict(obj))
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays and scalars
        return jsonable(obj.tolist())
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return int(obj)  # plain int (drops subclasses such as theory's TaggedInt)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    raise TypeError(f"task results must be JSON-able; got {type(obj).__name__}")


def run_batch(func: Any, experiment: str, version: str,
              batch: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Run tasks one after the other and return their store records (executed on a worker).

    An exception of the task function becomes a ``failed`` record with the error; a result that
    is not a JSON-able mapping too.
    """
    import json

    records = []
    for key, params in batch:
        start = time.perf_counter()
        try:
            out = func(**params)
            if not isinstance(out, Mapping):
                raise TypeError(f"task functions must return a mapping; got {type(out).__name__}")
            result = jsonable(out)
            json.dumps(result, allow_nan=True)
            status, error = "ok", None
        except Exception as exc:  # noqa: BLE001 - a task's failure is data, not a crash
            result, status, error = None, "failed", f"{type(exc).__name__}: {exc}"
        records.append(make_record(key, experiment, version, params, status, result, error,
                                   time.perf_counter() - start))
    return records


def _init_worker() -> None:
    """Local workers ignore Ctrl-C: the driver handles it and terminates them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ----------------------------------------------------------------------------------------------
# executors
# ----------------------------------------------------------------------------------------------
def available_cores() -> int:
    """Cores this process may run on (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


_ENV_LOCK = threading.Lock()
_ENV_STATE: dict[str, Any] = {"depth": 0, "saved": {}}


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Set the BLAS/OpenMP thread variables to 1 (unless already set) for workers started inside.

    The parallelism of a sweep is across tasks; W workers with all-core BLAS each would
    oversubscribe the machine (Dask's nanny does the same).  Re-entrant and thread-safe: the
    variables are restored when the last user leaves.
    """
    with _ENV_LOCK:
        if _ENV_STATE["depth"] == 0:
            _ENV_STATE["saved"] = {v: os.environ.get(v) for v in BLAS_THREAD_VARS}
            for v in BLAS_THREAD_VARS:
                os.environ.setdefault(v, "1")
        _ENV_STATE["depth"] += 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            _ENV_STATE["depth"] -= 1
            if _ENV_STATE["depth"] == 0:
                for v, old in _ENV_STATE["saved"].items():
                    if old is None:
                        os.environ.pop(v, None)
                    else:
                        os.environ[v] = old


def local_pool(workers: int) -> ProcessPoolExecutor:
    """A ``spawn`` process pool of ``workers`` processes that ignore Ctrl-C."""
    import multiprocessing

    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker)


def dask_client(address: str, timeout: str | float = "10s"):
    """A ``distributed.Client`` connected to ``address`` (lazy import, clear error if missing)."""
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("scheduler: running on a Dask cluster needs dask.distributed; install it "
                         "with pip install 'collapsekit[dask]' (or 'dask[distributed]')") from None
    try:
        return Client(address, timeout=timeout)
    except OSError as exc:
        raise ValueError(f"scheduler: cannot connect to the Dask scheduler at {address!r}: {exc}") from None


def _terminate(executor: Executor) -> None:
    """Cancel pending work; for a local pool also kill the running workers."""
    procs = dict(getattr(executor, "_processes", None) or {})  # CPython's ProcessPoolExecutor
    try:
        executor.shutdown(wait=False, cancel_futures=True)
    except TypeError:  # executors without cancel_futures (Dask's ClientExecutor)
        executor.shutdown(wait=False)
    for proc in list(procs.values()):
        if proc.is_alive():
            proc.terminate()
    for proc in list(procs.values()):
        proc.join(timeout=5)


# ----------------------------------------------------------------------------------------------
# the sweep
# ----------------------------------------------------------------------------------------------
def _batches(tasks: Sequence[Task], size: int) -> list[list[Task]]:
    return [list(tasks[i:i + size]) for i in range(0, len(tasks), size)]


def _progress_bar(total: int, initial: int, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"sweep {name}", unit="task", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True, smoothing=0.1)


def run_sweep(name: str, grid: Mapping[str, object], seeds: Iterable[object] | None = None, *,
              store: str | os.PathLike, resume: bool = False, workers: int | None = None,
              scheduler: str | None = None, executor: Executor | None = None,
              progress: bool | None = None, batch: int | None = None,
              max_pool_restarts: int = 3, extra_modules: Iterable[str] = ()) -> SweepSummary:
    """Run every task of experiment ``name`` over ``grid`` x ``seeds`` not already in ``store``.

    Executor: ``executor`` if given (not shut down here); else a Dask client's executor when
    ``scheduler`` (an address such as ``tcp://host:8786``) is given; else a local process pool
    of ``workers`` processes (default: all cores).  ``batch`` tasks travel per submission
    (default: the experiment's ``batch`` hint, reduced so that every worker gets work).
    ``progress``: tqdm bar on stderr (default: when stderr is a terminal).  Returns a
    :class:`SweepSummary`; raises :class:`SweepInterrupted` on Ctrl-C/SIGTERM and ValueError on
    a bad grid before any task starts.
    """
    start = time.perf_counter()
    exp = get_experiment(name, extra_modules)
    tasks = plan(exp, grid, seeds)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
    if sum(x is not None for x in (workers, scheduler, executor)) > 1:
        raise ValueError("give at most one of workers, scheduler and executor")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"batch must be an integer >= 1; got {batch!r}")
    store_path = Path(store)
    if store_path.exists() and store_path.is_dir():
        raise ValueError(f"store must be a file path (JSON lines); {str(store_path)!r} is a folder")
    report = read_store(store_path)
    done = {r["key"] for r in report.records if r.get("status") == "ok"}
    reused = [t for t in tasks if t.key in done]
    if reused and not resume:
        raise ValueError(
            f"store {str(store_path)!r} already holds {len(reused)} of the {len(tasks)} tasks of this sweep; "
            "pass --resume (resume=True) to reuse them and run only the missing ones, or choose another store")
    pending = [t for t in tasks if t.key not in done]
    summary = SweepSummary(exp.name, len(tasks), reused=len(reused), store=str(store_path),
                           skipped_lines=report.skipped)
    if not pending:
        summary.executor = "none (all tasks reused)"
        summary.seconds = time.perf_counter() - start
        return summary

    own_client = None
    if executor is not None:
        summary.executor, n_workers = type(executor).__name__, max(1, workers or available_cores())
    elif scheduler is not None:
        own_client = dask_client(scheduler)
        executor = own_client.get_executor(pure=False)
        info = own_client.scheduler_info()
        n_workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
        summary.executor = f"dask {scheduler}"
    else:
        n_workers = workers or available_cores()
        summary.executor = "process-pool"
    summary.workers = n_workers
    size = batch or max(1, min(exp.batch, math.ceil(len(pending) / (4 * n_workers))))
    bar = _progress_bar(len(tasks), len(reused), exp.name, sys.stderr.isatty() if progress is None else progress)
    try:
        own_pool = own_client is None and executor is None
        with single_threaded_blas() if own_pool else nullcontext(), StoreWriter(store_path) as writer:
            _execute(exp, _batches(pending, size), executor, own_pool, n_workers, writer, summary, bar,
                     max_pool_restarts, start)
    finally:
        bar.close()
        if own_client is not None:
            own_client.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _execute(exp: Experiment, batches: list[list[Task]], executor: Executor | None, own_pool: bool,
             n_workers: int, writer: StoreWriter, summary: SweepSummary, bar: Any,
             max_pool_restarts: int, start: float) -> None:
    """Submit every batch, store each as it completes; replace a broken local pool and resubmit."""
    pool = local_pool(n_workers) if own_pool else executor
    assert pool is not None
    todo = list(batches)
    try:
        while todo:
            futures = {pool.submit(run_batch, exp.func, exp.name, exp.version,
                                   [(t.key, t.params) for t in b]): b for b in todo}
            todo, pool_done = [], 0
            for fut in as_completed(futures):  # one waiter per future: O(tasks), not O(tasks^2)
                b = futures[fut]
                try:
                    records = fut.result()
                    pool_done += 1
                except BrokenProcessPool:  # a worker died: every unfinished future fails with it
                    todo.append(b)
                    continue
                except Exception as exc:  # noqa: BLE001 - lost Dask worker etc.: the batch failed
                    err = f"{type(exc).__name__}: {exc}"
                    records = [make_record(t.key, exp.name, exp.version, t.params, "failed", None, err, 0.0)
                               for t in b]
                _store(records, writer, summary, bar)
            if todo:
                if not own_pool or summary.pool_restarts >= max_pool_restarts or not pool_done:
                    raise RuntimeError(
                        f"the process pool broke (a worker died) {summary.pool_restarts + 1} time(s)"
                        f"{'' if pool_done else ' before finishing any task'}; the finished tasks are "
                        "stored, run again with resume to compute the rest.  Workers are started with "
                        "'spawn': a script that runs a sweep must do so under "
                        "if __name__ == '__main__':")
                _terminate(pool)
                summary.pool_restarts += 1
                pool = local_pool(n_workers)
    except KeyboardInterrupt:
        _terminate(pool)
        # recount from the store: the interrupt may have landed between a write and its count
        mine = {t.key for b in batches for t in b}
        summary.computed = sum(1 for k in {r["key"] for r in read_store(writer.path).records
                                           if r.get("status") == "ok"} if k in mine)
        summary.interrupted = True
        summary.seconds = time.perf_counter() - start
        raise SweepInterrupted(summary) from None
    finally:
        if own_pool and not summary.interrupted:
            pool.shutdown(wait=True)


def _store(records: list[dict[str, Any]], writer: StoreWriter, summary: SweepSummary, bar: Any) -> None:
    """Append a finished batch (one write, one fsync) and count it."""
    writer.append_many(records)
    for rec in records:
        if rec["status"] == "ok":
            summary.computed += 1
        else:
            summary.failed += 1
            if len(summary.failures) < MAX_FAILURES_LISTED:
                summary.failures.append({"params": rec["params"], "error": rec["error"]})
    bar.update(len(records))
    if summary.failed:
        bar.set_postfix(failed=summary.failed, refresh=False)
