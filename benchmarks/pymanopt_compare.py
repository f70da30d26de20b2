"""L-BFGS (collapsekit) against pymanopt 2.2.1 on the oblique manifold, from common starts.

Thomson energy U = sum_{i<j} 1/|x_i - x_j| of N points on S^2 (anchors.md §2, §11).  For each
seeded start (the solver's own restart r of seed S, so all methods see the same points) the
script runs

- collapsekit ``local_solve`` (scipy L-BFGS on x/|x| plus the gradient-only Newton polish),
- pymanopt ``TrustRegions`` (analytic Euclidean Hessian-vector product below),
- pymanopt ``ConjugateGradient`` (Hestenes-Stiefel, default line search),

on ``pymanopt.manifolds.Oblique(3, N)`` (columns are the points), all under the same BLAS
thread cap (``--blas-threads``, default 1).  A run succeeds when its energy
is <= U_table(N) + 1e-8 (anchors.md §2.3).  Reported per method: success rate, mean time per
start and time-to-best = total time / successes, the times as ratios to L-BFGS in the same
process.

Euclidean Hessian of E = sum_{i<j} k(t_ij), t_ij = <x_i, x_j>, k(t) = (2 - 2t)^{-s/2}:
    (H V)_i = sum_{j != i} [ k''(t_ij) (<x_i, v_j> + <v_i, x_j>) x_j + k'(t_ij) v_j ],
    k'(t) = s (2 - 2t)^{-s/2 - 1},  k''(t) = s (s + 2) (2 - 2t)^{-s/2 - 2}.

Usage:  python benchmarks/pymanopt_compare.py --n 50 100 --starts 5
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from thomson import print_header, print_row, write_results  # sibling benchmark script

from paper_checks.reference_data import thomson_table
from solvers.energy_search import energy_problem
from solvers.sphere_solver import blas_limit, local_solve

TABLE_TOL = 1e-8


def riesz_parts(x: np.ndarray, s: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k(T), k'(T), k''(T)) for the Gram matrix T of the rows x, diagonal set to 0."""
    t = x @ x.T
    np.fill_diagonal(t, -1.0)
    r2 = np.maximum(2.0 - 2.0 * t, 1e-300)
    k0 = r2 ** (-s / 2)
    k1 = s * r2 ** (-s / 2 - 1)
    k2 = s * (s + 2) * r2 ** (-s / 2 - 2)
    for m in (k0, k1, k2):
        np.fill_diagonal(m, 0.0)
    return k0, k1, k2


def pymanopt_problem(n: int):
    """The Thomson problem on pymanopt's Oblique(3, N) with analytic gradient and Hessian."""
    import pymanopt
    from pymanopt.manifolds import Oblique

    manifold = Oblique(3, n)

    @pymanopt.function.numpy(manifold)
    def cost(x):
        return 0.5 * float(riesz_parts(x.T)[0].sum())

    @pymanopt.function.numpy(manifold)
    def egrad(x):
        _, k1, _ = riesz_parts(x.T)
        return (k1 @ x.T).T

    @pymanopt.function.numpy(manifold)
    def ehess(x, v):
        p, w = x.T, v.T
        _, k1, k2 = riesz_parts(p)
        a = p @ w.T + w @ p.T
        return ((k2 * a) @ p + k1 @ w).T

    return pymanopt.Problem(manifold, cost, euclidean_gradient=egrad, euclidean_hessian=ehess)


def run_pymanopt(problem, optimizer_name: str, start: np.ndarray, max_time: float) -> tuple[float, float]:
    from pymanopt.optimizers import ConjugateGradient, TrustRegions

    common = {"verbosity": 0, "min_gradient_norm": 1e-8, "max_time": max_time}
    if optimizer_name == "TrustRegions":
        opt = TrustRegions(max_iterations=2000, **common)
    else:
        opt = ConjugateGradient(max_iterations=20000, max_cost_evaluations=100000, **common)
    t0 = time.perf_counter()
    res = opt.run(problem, initial_point=start.T.copy())
    return float(res.cost), time.perf_counter() - t0


def compare(n: int, starts: int, seed: int, max_time: float) -> list[dict]:
    table = thomson_table()[n]
    ours = energy_problem("riesz", n, 3)
    manopt = pymanopt_problem(n)
    records = {m: [] for m in ("L-BFGS", "TrustRegions", "ConjugateGradient")}
    for r in range(starts):
        start = ours.random_start(np.random.default_rng([seed, r]))
        t0 = time.perf_counter()
        res = local_solve(ours, start)
        records["L-BFGS"].append((res.fun, time.perf_counter() - t0))
        for name in ("TrustRegions", "ConjugateGradient"):
            records[name].append(run_pymanopt(manopt, name, start, max_time))
    base = sum(t for _, t in records["L-BFGS"]) / starts
    base_ttb = _time_to_best(records["L-BFGS"], table)
    rows = []
    for name, rec in records.items():
        ttb = _time_to_best(rec, table)
        rows.append({
            "N": n, "method": name, "success_rate": sum(v <= table + TABLE_TOL for v, _ in rec) / starts,
            "best_gap": min(v for v, _ in rec) - table, "time_per_start_ratio": sum(t for _, t in rec) / starts / base,
            "time_to_best_ratio": ttb / base_ttb if math.isfinite(ttb) and math.isfinite(base_ttb) else None,
            "seconds": sum(t for _, t in rec), "values": [v for v, _ in rec],
        })
    return rows


def _time_to_best(rec: list[tuple[float, float]], table: float) -> float:
    hits = sum(v <= table + TABLE_TOL for v, _ in rec)
    return sum(t for _, t in rec) / hits if hits else math.inf


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[50, 100], help="values of N (default 50 100)")
    p.add_argument("--starts", type=int, default=5, help="common random starts per N (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--max-time", type=float, default=120.0, help="pymanopt time limit per run, s (default 120)")
    p.add_argument("--blas-threads", type=int, default=1, help="BLAS threads for all methods (default 1)")
    args = p.parse_args(argv)
    cols = [("N", "N", "d"), ("method", "method", "s"), ("success_rate", "success", ".2f"),
            ("best_gap", "best gap", "+.2e"), ("time_per_start_ratio", "t/start", ".2f"),
            ("time_to_best_ratio", "t-to-best", ".2f")]
    print("times are ratios to collapsekit L-BFGS in the same process (per start, and to the best value)")
    print_header(cols)
    rows = []
    with blas_limit(args.blas_threads):  # the same BLAS setting for every method
        for n in args.n:
            for row in compare(n, args.starts, args.seed, args.max_time):
                rows.append(row)
                print_row(row, cols)
    print(f"wrote {write_results('pymanopt_compare', {'args': vars(args), 'rows': rows})}")


if __name__ == "__main__":
    main()
