"""Universal optima: recover the 600-cell (120 points in R^4) and E8 (240 points in R^8).

Cohn & Kumar (J. AMS 2007): both configurations minimise every completely monotone pair energy,
so the best a solver can reach under the Gaussian kernel exp(-t r^2) and the harmonic Riesz
kernel r^{-(d-2)} is the energy of the construction (anchors.md §5).  The constructions are
:func:`solvers.universal_optima.six_hundred_cell` and :func:`~solvers.universal_optima.e8_roots`
(anchors.md §5.3 recipes 4 and 6); their energies are computed from the points, never copied,
and cross-checked against the inner-product-distribution formula E = (N/2) sum_j m_j f(2 - 2 t_j)
(anchors.md §5.4, to 1e-12 relative).

For each (configuration, kernel) the script runs the ``warm`` strategy (Riesz s = d - 2 first,
then the target; anchors.md §11) and plain random ``multistart`` from the same seeds, and reports
hit rates (|E - E_construction| <= 1e-9 E, anchors.md §14 U7) and the universal-optimum check
(no run below E_construction (1 - 1e-9), U6).  Times are ratios to one energy-and-gradient
evaluation measured in the same process.

Usage:  python benchmarks/universal_optima.py --restarts 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from thomson import eval_seconds, print_header, print_row, write_results  # sibling benchmark script

from solvers.energy_search import PairEnergy, search_energy
from solvers.kernels import Gaussian, Riesz
from solvers.sphere_solver import blas_limit
from solvers.universal_optima import e8_roots, six_hundred_cell

HIT_RTOL = 1e-9  # anchors.md §14 U6/U7


def distribution_energy(points: np.ndarray, kernel) -> float:
    """(N/2) sum_j m_j f(2 - 2 t_j) from the inner products seen from point 0 (anchors.md §5.4)."""
    t = np.round(points[1:] @ points[0], 12)
    values, counts = np.unique(t, return_counts=True)
    return points.shape[0] / 2 * float(np.sum(counts * kernel.value(values)))


CONFIGS = {"600-cell": (six_hundred_cell, 4), "E8": (e8_roots, 8)}


def cases(t: float) -> list[tuple[str, str, dict, object]]:
    """(configuration, kernel name, kernel kwargs, kernel object) for Gaussian t and Riesz d - 2."""
    out = []
    for name, (_, d) in CONFIGS.items():
        out.append((name, "gaussian", {"t": t}, Gaussian(t)))
        out.append((name, "riesz", {"s": float(d - 2)}, Riesz(float(d - 2))))
    return out


def run_case(name: str, kname: str, kwargs: dict, kernel, restarts: int, seed: int) -> list[dict]:
    build, d = CONFIGS[name]
    pts = build()
    n = pts.shape[0]
    loss = PairEnergy(kernel, n)
    target = loss.value(pts)
    check = distribution_energy(pts, kernel)
    assert abs(check - target) <= 1e-12 * abs(target), (name, kname, check, target)
    base = eval_seconds(loss, pts)
    rows = []
    for strategy in ("warm", "multistart"):
        t0 = time.perf_counter()
        res = search_energy(kname, n, d, strategy=strategy, restarts=restarts, seed=seed, **kwargs)
        secs = time.perf_counter() - t0
        hits = sum(abs(v - target) <= HIT_RTOL * abs(target) for v in res.all_values)
        rows.append({
            "config": name, "kernel": f"{kname} {kwargs}", "strategy": strategy, "N": n, "d": d,
            "target": target, "best": res.fun, "best_rel_gap": (res.fun - target) / abs(target),
            "hit_rate": hits / res.restarts, "restarts": res.restarts,
            "below_construction": bool(min(res.all_values) < target * (1 - HIT_RTOL)),
            "all_values": res.all_values, "seconds": secs, "cost_evals": secs / base,
        })
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--restarts", type=int, default=5, help="starts per strategy and case (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--t", type=float, default=2.0, help="Gaussian scale t > 0 (default 2)")
    p.add_argument("--only", choices=tuple(CONFIGS), default=None, help="one configuration (default both)")
    args = p.parse_args(argv)
    cols = [("config", "config", "s"), ("kernel", "kernel", "s"), ("strategy", "strategy", "s"),
            ("best_rel_gap", "rel gap", "+.1e"), ("hit_rate", "hit rate", ".2f"),
            ("below_construction", "below?", ""), ("cost_evals", "cost/eval", ".0f"), ("seconds", "s", ".1f")]
    print_header(cols)
    rows = []
    with blas_limit(1):
        for name, kname, kwargs, kernel in cases(args.t):
            if args.only and name != args.only:
                continue
            for row in run_case(name, kname, kwargs, kernel, args.restarts, args.seed):
                rows.append(row)
                print_row(row, cols)
    print(f"wrote {write_results('universal_optima', {'args': vars(args), 'rows': rows})}")


if __name__ == "__main__":
    main()
