"""Speed-up of a sweep on 2 local workers against 1, measured in one run.

The grid is a small Thomson sweep (``energy``, N = 2..40, 3 multi-start restarts, seed 0): the
kind of grid the papers' figures need, with task costs growing like N^2.  Each configuration
runs into a fresh store (nothing reused), timed end to end as a user sees it (process pool
start-up included); runs alternate 1, 2, 1, 2, ... workers and the median of each is reported.
``ideal_speedup`` = wall_1 / (overhead + task_seconds / 2), with overhead = wall_1 -
task_seconds (pool start-up, bookkeeping) taken as serial: the speed-up if the task time halved
exactly.  The machine may be shared, and other processes on the cores lower the measured
speed-up: the script also times two bare CPU loops against one, before and after (2.0 means
two free cores), and prints the load average.

    python benchmarks/sweep_speedup.py [--repeats R] [--grid energy|loss-eval] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from solvers.sweeps import load_results, run_sweep

GRIDS = {
    "energy": ("energy", {"N": list(range(2, 41)), "restarts": [3]}, [0]),
    "loss-eval": ("loss-eval", {"loss": ["simclr", "supcon", "riesz"], "n": [16, 32], "dim": [8, 32],
                                "samples": [100]}, list(range(4))),
}


def one_run(name: str, grid: dict, seeds: list[int], workers: int, folder: Path) -> dict:
    store = folder / f"{name}-{workers}-{time.monotonic_ns()}.jsonl"
    start = time.perf_counter()
    summary = run_sweep(name, grid, seeds, store=store, workers=workers, progress=False)
    wall = time.perf_counter() - start
    if summary.failed or summary.computed != summary.tasks:
        raise RuntimeError(f"benchmark sweep did not complete: {summary}")
    task_seconds = sum(r["seconds"] for r in load_results(store, name))
    return {"workers": workers, "wall": wall, "task_seconds": task_seconds, "tasks": summary.tasks}


BURN = "x = 0\nfor i in range(15_000_000):\n    x += i\n"


def raw_parallel_speedup() -> float:
    """Wall time of one pure-Python CPU loop / wall time of two at once (2 = two free cores)."""
    def burn(k: int) -> float:
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(k)]
        for p in procs:
            p.wait()
        return time.perf_counter() - start

    one = burn(1)
    two = burn(2)
    return 2.0 * one / two


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=1, help="runs per worker count, >= 1 (default 1)")
    ap.add_argument("--grid", choices=sorted(GRIDS), default="energy", help="which grid (default energy)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    name, grid, seeds = GRIDS[args.grid]
    load_before = os.getloadavg()
    raw_before = raw_parallel_speedup()
    runs: dict[int, list[dict]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for w in (1, 2):
                runs[w].append(one_run(name, grid, seeds, w, Path(tmp)))
    wall1 = statistics.median(r["wall"] for r in runs[1])
    wall2 = statistics.median(r["wall"] for r in runs[2])
    task1 = statistics.median(r["task_seconds"] for r in runs[1])
    out = {
        "grid": args.grid, "experiment": name, "tasks": runs[1][0]["tasks"], "cores": os.cpu_count(),
        "repeats": args.repeats, "wall_1_worker_s": round(wall1, 3), "wall_2_workers_s": round(wall2, 3),
        "speedup": round(wall1 / wall2, 3), "task_seconds_1_worker": round(task1, 3),
        "ideal_speedup": round(wall1 / ((wall1 - task1) + task1 / 2.0), 3),
        "raw_2_process_speedup_before": round(raw_before, 3),
        "raw_2_process_speedup_after": round(raw_parallel_speedup(), 3),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{name}: {out['tasks']} tasks; 1 worker {wall1:.2f} s, 2 workers {wall2:.2f} s -> "
              f"speed-up {out['speedup']:.2f}x (ideal given start-up {out['ideal_speedup']:.2f}x; two bare "
              f"CPU loops ran {out['raw_2_process_speedup_before']:.2f}x / "
              f"{out['raw_2_process_speedup_after']:.2f}x faster than one before / after; load average "
              f"{out['loadavg_before']} -> {out['loadavg_after']}, {out['cores']} cores)")


if __name__ == "__main__":
    main()
