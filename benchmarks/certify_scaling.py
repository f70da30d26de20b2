"""Certificate scaling: relaxation solve time and bound-vs-local gap against problem size.

For each loss family and number of points N the script builds the Gram relaxation
(:mod:`solvers.certificates`), solves it with Clarabel (interior point; exponential cones for the
log-sum-exp losses, power cones for the Riesz energy, one psd cone of order N), and records

- ``compile_s`` (cvxpy canonicalisation), ``solve_s`` (conic solver), iterations, cone counts,
  the peak resident memory of the process, the solver status;
- ``bound_err``: |bound - closed form| (dhel_kcl.md T1/T5 for SimCLR, prototypes.md T1 for SupCon,
  anchors.md §3.3 for the Riesz energy) -- the relaxation's accuracy at that size;
- ``rank`` of the optimal G and ``gap`` = best local value in R^d (sphere solver, ``--restarts``
  seeded starts) minus the bound: ~0 when rank <= d (certified), the non-tightness otherwise.

A family stops growing once one solve takes longer than ``--budget`` seconds: that size is where
the conic formulation stops being practical on this machine (the note in the README reports it).

Usage:  python benchmarks/certify_scaling.py                       # default sizes, writes results/
        python benchmarks/certify_scaling.py --sizes 8 16 32 --families simclr --budget 30
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

from solvers.certificates import relax, solve_relaxation
from solvers.losses import riesz_energy, simclr, supcon
from solvers.sphere_solver import blas_limit, minimize_loss

RESULTS = Path(__file__).resolve().parent / "results"
TAU = 0.5
CLASSES = 4


def family(name: str, n: int):
    """(loss, closed-form relaxation value) for ``n`` points (rounded to the family's granularity)."""
    if name == "simclr":  # n = 2M rows; T1 value holds for the relaxation at every M (T5)
        m = n // 2
        return simclr(m, TAU), math.log1p(2 * (m - 1) * math.exp(-m / (TAU * (m - 1))))
    if name == "supcon":  # K = 4 balanced classes, n/K per class; Graf's value (mean over anchors)
        per = n // CLASSES
        big = CLASSES * per
        closed = math.log(per - 1 + (big - per) * math.exp(-CLASSES / ((CLASSES - 1) * TAU)))
        return supcon(np.repeat(np.arange(CLASSES), per), TAU), closed
    if name == "riesz":  # Thomson energy; simplex bound C(N,2) (2N/(N-1))^{-1/2} (anchors.md §3.3)
        return riesz_energy(n, 1.0), n * (n - 1) / 2 * (2 * n / (n - 1)) ** -0.5
    raise ValueError(f"family must be simclr, supcon or riesz; got {name!r}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


_LOCAL: dict = {}


def run_one(name: str, n: int, dim: int, restarts: int, solver: str) -> dict:
    loss, closed = family(name, n)
    t0 = time.perf_counter()
    rel = relax(loss)
    build_s = time.perf_counter() - t0
    cert = solve_relaxation(rel, dim=dim, solver=solver)
    key = (name, n, dim, restarts)
    if key not in _LOCAL:  # the local solve does not depend on the conic solver: once per size
        _LOCAL[key] = minimize_loss(loss, dim, restarts=restarts, seed=0)
    local = _LOCAL[key]
    return {
        "family": name, "points": loss.n_points, "dim": dim, "build_s": build_s,
        "compile_s": cert.compile_seconds, "solve_s": cert.solve_seconds - (cert.compile_seconds or 0.0),
        "iterations": cert.iterations, "status": cert.status, "solver": cert.solver,
        "exp_cones": cert.size.get("exp_cones"), "conic_rows": cert.size.get("rows"),
        "conic_vars": cert.size.get("variables"), "bound": cert.lower_bound, "closed_form": closed,
        "bound_err": abs(cert.lower_bound - closed), "duality_gap": cert.duality_gap, "rank": cert.rank,
        "local_value": local.fun, "local_hits": local.hits, "local_s": local.seconds,
        "gap": local.fun - cert.lower_bound, "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", nargs="+", default=["supcon", "simclr", "riesz"],
                    help="loss families (default: supcon simclr riesz)")
    ap.add_argument("--sizes", nargs="+", type=int, default=[8, 16, 24, 32, 48, 64, 80, 96, 128],
                    help="numbers of points N (default 8 ... 128)")
    ap.add_argument("--dim", type=int, default=3, help="dimension of the local solve (default 3)")
    ap.add_argument("--restarts", type=int, default=2, help="local solver restarts (default 2)")
    ap.add_argument("--budget", type=float, default=120.0,
                    help="stop a family after a solve longer than this many seconds (default 120)")
    ap.add_argument("--solvers", nargs="+", default=["clarabel", "scs"], choices=("clarabel", "scs"),
                    help="conic solvers to time (default: clarabel scs)")
    ap.add_argument("--max-points", nargs="*", default=[], metavar="FAMILY=N",
                    help="cap the sizes of one family, e.g. riesz=64 (default: no cap)")
    ap.add_argument("--out", default="certify_scaling", help="results/<out>.json (default certify_scaling)")
    args = ap.parse_args()
    caps = {k: int(v) for k, v in (item.split("=") for item in args.max_points)}
    rows = []
    with blas_limit(1):
        for solver, fam in ((s, f) for s in args.solvers for f in args.families):
            for n in args.sizes:
                if n > caps.get(fam, n):
                    break
                row = run_one(fam, n, args.dim, args.restarts, solver)
                rows.append(row)
                print(f"{solver:8s} {fam:7s} N={row['points']:4d} compile {row['compile_s']:7.2f} s"
                      f"  solve {row['solve_s']:8.2f} s"
                      f"  it {row['iterations']:3d}  exp cones {row['exp_cones']:6d}  {row['status']:18s}"
                      f"  |bound-closed| {row['bound_err']:.1e}  rank {row['rank']:3d}  gap(d={args.dim}) "
                      f"{row['gap']:.4g}  rss {row['peak_rss_mb']:.0f} MB", flush=True)
                if row["compile_s"] + row["solve_s"] > args.budget:
                    print(f"{solver} {fam}: stopped after N = {row['points']} (solve > {args.budget} s)", flush=True)
                    break
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": {"python": platform.python_version(), "platform": platform.platform(),
                           "cpus": os.cpu_count(), "numpy": np.__version__},
               "settings": vars(args), "rows": rows}
    path = RESULTS / f"{args.out}.json"
    path.write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
