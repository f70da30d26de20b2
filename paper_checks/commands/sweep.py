"""``collapsekit sweep``: run a grid of tasks on a process pool or a Dask cluster, resumably."""

from __future__ import annotations

import argparse
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

from ..output import dumps


def register(sub, groups) -> None:
    p = sub.add_parser(
        "sweep", help="run a grid of experiment tasks (process pool or Dask), resumable, into a JSON-lines store",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run experiment NAME on the product of the --grid value lists (x --seeds), one task per "
        "grid point and seed, on a local process pool (default: all cores) or a Dask cluster "
        "(--scheduler). Each finished task is appended as one JSON line to --store, keyed by a hash of "
        "the experiment and its parameters; with --resume only the tasks missing from the store run. "
        "The grid is checked against the experiment's declared parameters before any task starts.\n\n"
        "Grid values: comma-separated items, each a value, an integer range A..B[..STEP] (inclusive), "
        "lin:A:B:N or log:A:B:N (N floats).  Examples:\n"
        "  collapsekit sweep ssem-guideline --grid alpha=lin:0:1:21 tau=0.05,0.1,0.5,1 K=4 n=5\n"
        "  collapsekit sweep energy --grid N=2..30 --seeds 2 --workers 2 --resume\n"
        "  collapsekit sweep loss-eval --grid loss=simclr,dcl n=8,16 --scheduler tcp://10.0.0.5:8786\n"
        "  collapsekit sweep --list",
    )
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="the experiment (see --list): loss-eval, ssem-guideline, energy, solve, ...")
    p.add_argument("--grid", action="extend", nargs="+", default=[], metavar="KEY=V1,V2,...",
                   help="parameter values (repeatable); parameters not given take their defaults")
    p.add_argument("--seeds", default=None, metavar="S",
                   help="seeds of a seeded experiment: a count N (0..N-1), a range A:B or a list S1,S2 "
                   "(default: seed 0; deterministic experiments take none)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="W",
                       help="local worker processes, >= 1 (default: all cores)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on the Dask cluster at ADDRESS (e.g. tcp://host:8786); needs "
                       "pip install 'collapsekit[dask]' here and collapsekit on every worker")
    p.add_argument("--store", default=None, metavar="PATH",
                   help="JSON-lines result store (default: $COLLAPSEKIT_SWEEP_DIR/NAME.jsonl, folder 'sweeps')")
    p.add_argument("--resume", action="store_true",
                   help="reuse the tasks already in the store and run only the missing (or failed) ones; "
                   "without it a store that already holds some of the tasks is refused")
    p.add_argument("--batch", type=int, default=None, metavar="B",
                   help="tasks per submission, >= 1 (default: the experiment's hint, reduced so that every "
                   "worker gets work)")
    p.add_argument("--module", action="append", default=[], metavar="MODULE",
                   help="import MODULE (dotted path) to register more experiments (repeatable)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the grid and count the tasks (and those already stored) without running any")
    p.add_argument("--compact", action="store_true",
                   help="after the sweep, rewrite the store with one record per task and no torn lines")
    p.add_argument("--list", action="store_true",
                   help="list the experiments (with NAME: its parameters, types, defaults and ranges)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (tasks, computed, reused, failed, seconds, store, ...); no progress bar")
    p.set_defaults(func=run)


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt in the main thread, so the sweep stops cleanly."""
    hit: list[int] = []

    def handler(signum, frame):
        hit.append(signum)
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield hit
        return
    try:
        yield hit
    finally:
        signal.signal(signal.SIGTERM, old)


def _list(args: argparse.Namespace) -> int:
    from solvers.sweeps import EXPERIMENTS, get_experiment, load_experiments  # lazy: experiment registry

    if args.name:
        info = get_experiment(args.name, args.module).describe()
        if args.json:
            print(dumps(info))
            return 0
        print(f"{info['name']}: {info['description']}")
        print(f"  function {info['function']}, version {info['version']}, "
              f"{'seeded (--seeds)' if info['seeded'] else 'deterministic (no seeds)'}")
        for prm in info["params"]:
            default = "required" if prm["required"] else f"default {prm['default']}"
            print(f"  {prm['name']:<12} {prm['range']}; {default}. {prm['help']}")
        return 0
    load_experiments(args.module)
    rows = [EXPERIMENTS[n].describe() for n in sorted(EXPERIMENTS)]
    if args.json:
        print(dumps({"experiments": rows}))
    else:
        for r in rows:
            print(f"{r['name']:<16} {r['description']}")
            print(f"{'':<16} params: {', '.join(x['name'] for x in r['params'])}"
                  f"{' (+ seeds)' if r['seeded'] else ''}")
    return 0


def run(args: argparse.Namespace) -> int:
    from solvers.sweeps import (  # lazy: the sweep engine and its experiment registry
        SweepInterrupted,
        compact,
        default_store,
        get_experiment,
        parse_grid,
        parse_seeds,
        plan,
        read_store,
        run_sweep,
    )

    if args.name is None and args.grid and "=" not in args.grid[-1]:
        args.name = args.grid.pop()  # "sweep --grid K=2 NAME": --grid took NAME as a value
    if args.list:
        return _list(args)
    if not args.name:
        raise ValueError("NAME is required: the experiment to sweep (collapsekit sweep --list shows them)")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"workers must be an integer >= 1; got {args.workers}")
    if args.batch is not None and args.batch < 1:
        raise ValueError(f"batch must be an integer >= 1; got {args.batch}")
    exp = get_experiment(args.name, args.module)
    grid = parse_grid(exp, args.grid)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    store = Path(args.store) if args.store else default_store(exp.name)
    if args.dry_run:
        tasks = plan(exp, grid, seeds)
        done = {r["key"] for r in read_store(store).records if r.get("status") == "ok"}
        stored = sum(t.key in done for t in tasks)
        payload = {"experiment": exp.name, "tasks": len(tasks), "stored": stored, "to_run": len(tasks) - stored,
                   "store": str(store), "dry_run": True}
        print(dumps(payload) if args.json else
              f"sweep {exp.name}: {len(tasks)} tasks, {stored} already in {store}, {len(tasks) - stored} to run")
        return 0
    with _sigterm_as_interrupt() as signals:
        try:
            summary = run_sweep(exp.name, grid, seeds, store=store, resume=args.resume, workers=args.workers,
                                scheduler=args.scheduler, progress=False if args.json else None,
                                batch=args.batch, extra_modules=args.module)
            code = 1 if summary.failed else 0
        except SweepInterrupted as exc:
            summary = exc.summary
            code = 128 + (signals[0] if signals else signal.SIGINT)
        except RuntimeError as exc:  # the local pool kept breaking: say so, keep what is stored
            print(dumps({"error": str(exc), "store": str(store)}) if args.json else
                  f"collapsekit sweep: error: {exc}", file=sys.stdout if args.json else sys.stderr)
            return 1
    payload = summary.as_dict()
    if args.compact and not summary.interrupted:
        payload["compaction"] = compact(store)
    if args.json:
        print(dumps(payload))
        return code
    state = "interrupted" if summary.interrupted else "done"
    print(f"sweep {summary.experiment} {state}: {summary.tasks} tasks, {summary.computed} computed, "
          f"{summary.reused} reused, {summary.failed} failed in {summary.seconds:.1f} s "
          f"({summary.executor}, {summary.workers} workers) -> {summary.store}")
    for f in summary.failures:
        print(f"  failed {f['params']}: {f['error']}", file=sys.stderr)
    if summary.interrupted:
        print(f"  resume with the same command plus --resume to run the "
              f"{summary.tasks - summary.reused - summary.computed - summary.failed} missing tasks",
              file=sys.stderr)
    return code
