"""``collapsekit energy``: minimise a hyperspherical pair energy (Thomson, Riesz, log, Gaussian).

The energy is E_f = sum_{i<j} f(|x_i - x_j|^2), each unordered pair once (the Thomson-table
convention, anchors.md §1 and §13).  When a reference exists the output compares with it: the
Thomson table for Riesz s = 1 on S^2 (N = 2..100; pass rule E <= table + 1e-8, anchors.md §2.3)
and the simplex lemma C(N,2) f(2N/(N-1)) for N <= d + 1 (anchors.md §3.3).
"""

from __future__ import annotations

import argparse
import time

from solvers.kernels import Riesz
from solvers.validation import check_int, check_positive

from ..output import dumps
from ..reference_data import read_table, thomson_table
from .solve import _add_solver_arguments, run_solver, save_npz

THOMSON_TOL = 1e-8  # anchors.md §2.3 comparison rule
# = solvers.energy_search.KERNELS, written out so that building the parser does not import
# scipy.optimize (equality asserted in tests/test_cli_startup.py)
KERNELS = ("riesz", "log", "gaussian")


def register(sub, groups) -> None:
    p = sub.add_parser(
        "energy", help="minimise a Riesz / log / Gaussian pair energy of N points on S^{d-1}",
        description="Minimise E = sum_{i<j} f(|x_i - x_j|^2) over N unit vectors in R^d (pairs counted once, "
        "the Thomson-table convention). Kernels: riesz f = r^{-s} (s = 1, d = 3 is Thomson), log "
        "f = log(1/r), gaussian f = exp(-t r^2). Reports the best energy, the points, how many restarts "
        "reached it, and the Thomson table value (riesz s = 1, d = 3, N <= 100) or the simplex value "
        "(N <= d + 1) when one applies.",
    )
    p.add_argument("--kernel", choices=KERNELS, default="riesz", help="pair kernel (default riesz)")
    p.add_argument("--s", type=float, default=None, help="riesz exponent s > 0 (default 1; riesz only)")
    p.add_argument("--t", type=float, default=None, help="gaussian scale t > 0 (default 2; gaussian only)")
    p.add_argument("--n", type=int, required=True, help="number of points N >= 2 (required, no default)")
    p.add_argument("--dim", type=int, default=3,
                   help="ambient dimension d >= 2 (points on S^{d-1}); default 3")
    _add_solver_arguments(p)
    p.add_argument("--hop-fraction", type=float, default=0.05,
                   help="basinhopping: fraction of points moved per hop, in (0, 1] (default 0.05)")
    p.add_argument("--hop-step", type=float, default=1.0,
                   help="basinhopping: standard deviation > 0 of the Gaussian move (default 1.0)")
    p.add_argument("--warm-s", type=float, default=None,
                   help="warm: Riesz exponent > 0 of the first stage (default d - 2, or 1 when d <= 3)")
    p.add_argument("--save", default=None, metavar="FILE.npz",
                   help="save the points and the summary to FILE.npz (default: not saved)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object instead of text, no progress bar (default: text)")
    p.set_defaults(func=run)


def _kernel_params(args: argparse.Namespace) -> tuple[float | None, float | None]:
    if args.s is not None and args.kernel != "riesz":
        raise ValueError(f"s applies only to --kernel riesz; got --kernel {args.kernel}")
    if args.t is not None and args.kernel != "gaussian":
        raise ValueError(f"t applies only to --kernel gaussian; got --kernel {args.kernel}")
    s = check_positive(args.s, "s") if args.s is not None else (1.0 if args.kernel == "riesz" else None)
    t = check_positive(args.t, "t") if args.t is not None else (2.0 if args.kernel == "gaussian" else None)
    return s, t


def _table_reference(kernel: str, n: int, dim: int, s: float | None) -> tuple[str, float, float] | None:
    """(table name, value, absolute tolerance) of the S^2 tables that cover (kernel, N), if any."""
    if dim != 3:
        return None
    if kernel == "riesz" and s == 1.0:
        value = thomson_table().get(n)
        return None if value is None else ("thomson_energies.csv", value, THOMSON_TOL)
    column = "log_energy" if kernel == "log" else ("s2_energy" if kernel == "riesz" and s == 2.0 else None)
    if column is None:
        return None
    for row in read_table("riesz_log_and_s2_energies_S2.csv"):
        if int(row["N"]) == n:
            value = float(row[column])
            return "riesz_log_and_s2_energies_S2.csv:" + column, value, 1e-8 + 1e-10 * abs(value)
    return None


def references(kernel: str, n: int, dim: int, s: float | None, t: float | None, energy: float) -> dict:
    """Table / closed-form values this (kernel, N, d) can be compared with, and the gaps.

    Tables (S^2 only): Thomson (riesz s = 1, N = 2..100; pass if E <= table + 1e-8, anchors.md
    §2.3) and the log / s = 2 table (N = 2..30; 1e-8 + 1e-10 relative, anchors.md §3.4); a value
    below the table by more than the tolerance is flagged as a possible record (re-check it in
    higher precision).  Simplex lemma C(N,2) f(2N/(N-1)) for N <= d + 1 (anchors.md §3.3).
    """
    out: dict = {}
    ref = _table_reference(kernel, n, dim, s)
    if ref is not None:
        name, value, tol = ref
        out.update(reference_table=name, reference_value=value, reference_gap=energy - value,
                   reference_tolerance=tol, matches_reference=abs(energy - value) <= tol,
                   below_reference=energy < value - tol)
    if n <= dim + 1:
        from solvers.energy_search import simplex_energy  # lazy: scipy.optimize

        value = simplex_energy(kernel, n, s, t)
        out.update(simplex_energy=value, simplex_gap=energy - value)
    return out


def run(args: argparse.Namespace) -> int:
    from solvers.energy_search import PairEnergy, energy_problem, make_kernel, warm_exponent  # lazy: scipy.optimize

    start = time.perf_counter()
    n = check_int(args.n, "n", 2)
    dim = check_int(args.dim, "dim", 2)
    s, t = _kernel_params(args)
    problem = energy_problem(args.kernel, n, dim, s, t)
    warm_s = check_positive(args.warm_s, "warm-s") if args.warm_s is not None else warm_exponent(dim)
    result = run_solver(problem, args, f"{args.kernel} N={n}", hop_fraction=args.hop_fraction,
                        hop_step=args.hop_step, warm_loss=PairEnergy(Riesz(warm_s), n))
    kernel = make_kernel(args.kernel, s, t)
    payload = {
        "energy": result.fun, "kernel": kernel.describe(), "pairs": "i<j (each unordered pair once)",
        "n": n, "dim": dim, **references(args.kernel, n, dim, s, t, result.fun),
        "grad_norm": result.grad_norm, "grad_tol": result.grad_tol, "restarts": result.restarts,
        "hits": result.hits, "hit_tol": result.hit_tol, "all_values": result.all_values,
        "strategy": result.strategy, "warm_s": warm_s if args.strategy == "warm" else None,
        "success": result.success, "message": result.message, "nit": result.nit, "nfev": result.nfev,
        "seed": args.seed, "solver_seconds": result.seconds, "points": result.points,
    }
    payload["seconds"] = time.perf_counter() - start
    if args.save:
        save_npz(args.save, result, payload)
    print(dumps(payload) if args.json else summary_text(payload))
    return 0


def summary_text(p: dict) -> str:
    params = ", ".join(f"{k} = {v:g}" for k, v in p["kernel"].items() if k != "kernel")
    name = p["kernel"]["kernel"] + (f" ({params})" if params else "")
    lines = [
        f"{name} energy of {p['n']} points on S^{p['dim'] - 1}: E = {p['energy']:.12f}",
        f"  gradient norm {p['grad_norm']:.3g} ({'converged' if p['success'] else 'NOT converged'}); "
        f"{p['hits']}/{p['restarts']} restarts reached the best value [{p['strategy']}, {p['seconds']:.2f} s]",
    ]
    if "reference_value" in p:
        verdict = "matches" if p["matches_reference"] else ("BELOW (record?)" if p["below_reference"] else "ABOVE")
        lines.append(f"  {p['reference_table']} {p['reference_value']:.10f}: gap {p['reference_gap']:+.3g} "
                     f"({verdict}, tolerance {p['reference_tolerance']:.3g})")
    if "simplex_energy" in p:
        lines.append(f"  simplex value {p['simplex_energy']:.12g}: gap {p['simplex_gap']:+.3g}")
    return "\n".join(lines)
