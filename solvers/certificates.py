"""Certified global optima: the convex relaxation of a loss over Gram matrices (DESIGN.md).

A loss that is convex in the Gram matrix (see :mod:`solvers.certificates_expr`) is minimised over

    { G symmetric : G psd, G_ii = 1 for free points, fixed block = F F^T [, G >= 0 entrywise] }

which drops only the constraint rank G <= d.  Its optimal value is therefore a lower bound on the
loss of every configuration in every dimension (dhel_kcl.md T5 [RECON]; ssem.md §5.11 [DER+SDP]),
and the bound is attained -- the relaxation is *tight* -- when an optimal G has rank <= d, in which
case factorising G gives points (:func:`points_from_gram`).  With ``nonnegative=True`` the set is
the doubly non-negative relaxation of the Gram matrices of non-negative unit vectors (the UFM+
model, prototypes.md §1.2), again a lower bound.

Certificate: a configuration in R^d with loss value ``v`` (an upper bound on the minimum: the local
solver's best value, or the value at the factorised points) and the bound ``lb`` certify that ``v``
is the global minimum in R^d to within ``v - lb``; :func:`certify` reports ``certified`` when
``v - lb <= atol + rtol |v|``.  The bound used is the smaller of the solver's primal and dual
objectives (the dual objective bounds the relaxation from below up to the solver's feasibility
tolerance), so ``lower_bound`` is conservative by the reported duality gap.

Solvers: Clarabel (interior point, exponential/power and psd cones) for small problems, SCS
(first-order splitting) first from Gram order ``AUTO_SCS_FROM`` on, each the other's fallback.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from .base import SphereLoss
from .certificates_expr import (
    GramStructure,
    NonConvexLossError,
    gram_structure,
    gram_value,
    loss_expression,
)
from .validation import check_choice, check_int, check_positive

__all__ = [
    "GramCertificate",
    "GramRelaxation",
    "NonConvexLossError",
    "SOLVERS",
    "certify",
    "compare",
    "numerical_rank",
    "points_from_gram",
    "relax",
    "solve_relaxation",
]

SOLVERS = ("auto", "clarabel", "scs")
#: Clarabel stopping tolerances (its defaults, stated explicitly): gap and feasibility 1e-8.  Tighter
#: values make Clarabel stop "almost solved" on the doubly non-negative problems (the optimum has
#: many entries at the G >= 0 boundary) without improving the value; measured objective errors
#: against closed forms are below 1e-8 (tests/test_certificates.py).
CLARABEL_OPTIONS = {"tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8, "tol_feas": 1e-8, "max_iter": 400}
#: SCS (first-order splitting): 1e-9 residual targets; it may stop at max_iters "inaccurate"
#: (then the other solver is tried).  Measured errors against closed forms <= 1e-9 up to 128 rows.
SCS_OPTIONS = {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 100000}
OK_STATUSES = ("optimal",)
#: ``solver="auto"``: Clarabel first below this Gram order, SCS first from it (the other is the
#: fallback).  Measured on 2 shared cores (benchmarks/results/certify_scaling_*.json): SimCLR with
#: 64 rows, Clarabel 18.8 s vs SCS 3.5 s; 96 rows, 122 s vs 7.4 s; SupCon with 48 rows 2.2 s vs
#: 4.2 s, 64 rows 11.7 s vs 14.0 s, 96 rows 300 s vs 67 s; both within 6e-8 of the closed forms.
AUTO_SCS_FROM = 64


# ----------------------------------------------------------------------------------------------
# the relaxation problem
# ----------------------------------------------------------------------------------------------
@dataclass
class GramRelaxation:
    """The cvxpy problem of a loss's Gram relaxation (built once, solvable with either solver)."""

    loss: SphereLoss
    structure: GramStructure
    problem: cp.Problem
    objective_constant: float
    terms: list[str]
    build_seconds: float

    @property
    def size(self) -> dict:
        """Structural size: Gram order, free points, fixed rows, loss rows (cone counts come with a solve)."""
        return {"gram_order": self.structure.n_var, "free_points": self.structure.n_free_var,
                "fixed_rows": self.structure.n_fixed, "loss_rows": self.structure.n_rows}


def relax(loss: SphereLoss, *, views: int = 1, tied: bool = False, nonnegative: bool = False) -> GramRelaxation:
    """Build the relaxation of ``loss`` (raises :class:`NonConvexLossError` naming a non-convex term).

    ``tied``: the ``views`` rows of each instance (view-major) share one point, so their Gram
    entries are the constant 1 (the relaxation of the tied problem); ``nonnegative``: add
    G >= 0 entrywise.
    """
    start = time.perf_counter()
    st = gram_structure(loss, views=views, tied=tied, nonnegative=nonnegative)
    obj = loss_expression(loss, st)
    if not isinstance(obj.expr, cp.Expression):
        obj_expr = cp.Constant(0.0) + 0.0 * cp.sum(st.variable)
    else:
        obj_expr = obj.expr
    if not obj_expr.is_convex():  # safety net: the term-by-term checks should have refused already
        raise NonConvexLossError(f"{loss.name}: the objective is not DCP-convex in G ({obj.terms})")
    problem = cp.Problem(cp.Minimize(obj_expr), st.constraints())
    return GramRelaxation(loss, st, problem, obj.constant, obj.terms, time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------
# result record
# ----------------------------------------------------------------------------------------------
@dataclass
class GramCertificate:
    """Outcome of a relaxation solve (scipy-style record), optionally compared with a local value.

    ``lower_bound``: min(primal, dual) objective (a bound on the loss in every dimension, to the
    solver's tolerance).  ``gram``: the optimal similarity matrix of all loss rows (ties expanded,
    fixed rows last).  ``rank``: eigenvalues of the Gram variable above ``rank_tol``.
    ``tight``: rank <= dim.  ``points``/``points_value``: free rows in R^dim from factorising G
    (when tight) and the loss there.  ``template_value``: the numpy template evaluated at ``gram``
    (must agree with the cvxpy objective: a cross-check of the expression).  ``gap``: best upper
    bound (local value or points value) minus ``lower_bound``.  ``local``/``local_points``: the
    sphere solver's record and best configuration when :func:`certify` ran it.
    """

    lower_bound: float
    primal_value: float
    dual_value: float | None
    duality_gap: float | None
    status: str
    solver: str
    gram: np.ndarray
    eigenvalues: np.ndarray
    rank: int
    rank_tol: float
    template_value: float
    seconds: float
    solve_seconds: float
    iterations: int | None
    size: dict
    compile_seconds: float | None = None
    dim: int | None = None
    tight: bool | None = None
    points: np.ndarray | None = None
    points_value: float | None = None
    points_feasible: bool | None = None
    local_value: float | None = None
    upper_bound: float | None = None
    gap: float | None = None
    certified: bool = False
    atol: float = 1e-6
    rtol: float = 1e-6
    message: str = ""
    local: dict = field(default_factory=dict)
    local_points: np.ndarray | None = None

    @property
    def fun(self) -> float:
        """scipy-style alias of ``lower_bound``."""
        return self.lower_bound

    def summary(self) -> dict:
        """Every scalar field (no arrays) for JSON reports."""
        return {
            "lower_bound": self.lower_bound, "primal_value": self.primal_value, "dual_value": self.dual_value,
            "duality_gap": self.duality_gap, "status": self.status, "solver": self.solver, "rank": self.rank,
            "rank_tol": self.rank_tol, "top_eigenvalues": self.eigenvalues[: min(12, self.eigenvalues.size)],
            "template_value": self.template_value, "seconds": self.seconds, "solve_seconds": self.solve_seconds,
            "compile_seconds": self.compile_seconds,
            "iterations": self.iterations, "size": self.size, "dim": self.dim, "tight": self.tight,
            "points_value": self.points_value, "points_feasible": self.points_feasible,
            "local_value": self.local_value, "upper_bound": self.upper_bound, "gap": self.gap,
            "certified": self.certified, "atol": self.atol, "rtol": self.rtol, "message": self.message,
            "local": self.local,
        }


# ----------------------------------------------------------------------------------------------
# solving
# ----------------------------------------------------------------------------------------------
def _run_solver(problem: cp.Problem, name: str, options: dict | None) -> dict:
    """Solve in place with solver ``name``.

    Returns {"dual": dual objective incl. cvxpy's offset (None if unavailable), "iterations",
    "compile_seconds" (cvxpy canonicalisation), "cones": sizes of the conic program}.
    """
    solver = cp.CLARABEL if name == "clarabel" else cp.SCS
    opts = dict(CLARABEL_OPTIONS if name == "clarabel" else SCS_OPTIONS)
    opts.update(options or {})
    try:  # cvxpy's own two-step path (Problem._solve), kept to read the solver's dual objective
        from cvxpy.reductions.solvers.solver_inverse_data import SolverInverseData
    except ImportError:  # pragma: no cover - other cvxpy versions: primal value only
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver=solver, **opts)
        return {"dual": None, "iterations": problem.solver_stats.num_iters, "compile_seconds": None, "cones": {}}
    t0 = time.perf_counter()
    data, chain, inverse = problem.get_problem_data(solver)
    compile_s = time.perf_counter() - t0
    dims = data[cp.settings.DIMS] if cp.settings.DIMS in data else data.get("dims")
    cones = {"variables": int(data["c"].size), "rows": int(data["A"].shape[0]),
             "exp_cones": int(getattr(dims, "exp", 0)), "psd_orders": list(getattr(dims, "psd", []))}
    raw = chain.solve_via_data(problem, data, False, False, opts)
    inverse[-1] = SolverInverseData(inverse[-1], chain.solver, opts)
    with warnings.catch_warnings():  # "Solution may be inaccurate": the status is reported instead
        warnings.simplefilter("ignore", UserWarning)
        problem.unpack_results(raw, chain, inverse)
    if name == "clarabel":
        primal, dual, iters = float(raw.obj_val), float(raw.obj_val_dual), int(raw.iterations)
    else:
        info = raw["info"]
        primal, dual, iters = float(info["pobj"]), float(info["dobj"]), int(info["iter"])
    out = {"dual": None, "iterations": iters, "compile_seconds": compile_s, "cones": cones}
    if problem.value is not None and math.isfinite(problem.value) and math.isfinite(dual):
        out["dual"] = dual + (float(problem.value) - primal)
    return out


def numerical_rank(gram: np.ndarray, rank_tol: float) -> tuple[int, np.ndarray]:
    """(number of eigenvalues > rank_tol, eigenvalues in decreasing order) of a symmetric matrix."""
    ev = np.linalg.eigvalsh(0.5 * (gram + gram.T))[::-1]
    return int(np.sum(ev > rank_tol)), ev


def points_from_gram(gram: np.ndarray, dim: int, rank_tol: float, fixed: np.ndarray | None = None,
                     n_fixed_last: int = 0) -> tuple[np.ndarray | None, float]:
    """Rows X in R^dim with X X^T ~ ``gram`` from its top eigenpairs (None if rank > dim).

    With ``fixed`` (the last ``n_fixed_last`` rows of ``gram`` are fixed points F in R^dim), the
    factor V is rotated onto F by orthogonal Procrustes (Q with orthonormal rows maximising
    tr(Q^T V_F^T F)), so the free rows are expressed in the prototypes' coordinates.  Returns the
    rows (renormalised to unit length for the free ones) and the residual |V_F Q - F|_F (0 if no
    fixed rows).
    """
    rank, _ = numerical_rank(gram, rank_tol)
    if rank > dim:
        return None, math.inf
    w, u = np.linalg.eigh(0.5 * (gram + gram.T))
    order = np.argsort(w)[::-1][: max(rank, 1)]
    v = u[:, order] * np.sqrt(np.maximum(w[order], 0.0))
    if fixed is not None and n_fixed_last:
        vf = v[-n_fixed_last:]
        a, _, bt = np.linalg.svd(vf.T @ fixed, full_matrices=False)
        q = a @ bt
        x = v @ q
        resid = float(np.linalg.norm(vf @ q - fixed))
        x = x[:-n_fixed_last]
    else:
        x = np.hstack([v, np.zeros((v.shape[0], dim - v.shape[1]))])
        resid = 0.0
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0), resid


def solve_relaxation(loss: SphereLoss | GramRelaxation, *, dim: int | None = None, views: int = 1,
                     tied: bool = False, nonnegative: bool = False, solver: str = "auto",
                     rank_tol: float = 1e-5, solver_options: dict | None = None) -> GramCertificate:
    """Solve the Gram relaxation of ``loss`` (or a prebuilt :class:`GramRelaxation`).

    ``solver="auto"`` tries Clarabel (SCS for Gram order >= ``AUTO_SCS_FROM``) and falls back to
    the other solver when the first fails or does not reach status "optimal".  With ``dim`` the
    optimal G is factorised when rank <= dim and the loss is evaluated at the points (an upper
    bound on the minimum in R^dim).
    """
    solver = check_choice(solver, "solver", SOLVERS)
    rank_tol = check_positive(rank_tol, "rank_tol")
    if dim is not None:
        dim = check_int(dim, "dim", 1)
    start = time.perf_counter()
    rel = loss if isinstance(loss, GramRelaxation) else relax(loss, views=views, tied=tied,
                                                                nonnegative=nonnegative)
    st = rel.structure
    if dim is not None and st.fixed is not None and st.fixed.shape[1] != dim:
        raise ValueError(f"dim must equal the prototypes' dimension {st.fixed.shape[1]}; got {dim}")
    if solver == "auto":
        order = ["clarabel", "scs"] if st.n_var < AUTO_SCS_FROM else ["scs", "clarabel"]
    else:
        order = [solver]
    notes, run, used = [], {"dual": None, "iterations": None, "compile_seconds": None, "cones": {}}, order[0]
    t_solve = time.perf_counter()
    for name in order:
        used = name
        try:
            run = _run_solver(rel.problem, name, solver_options)
        except (cp.error.SolverError, ValueError, ArithmeticError) as exc:
            notes.append(f"{name} failed: {exc}")
            continue
        if rel.problem.status in OK_STATUSES:
            break
        notes.append(f"{name}: status {rel.problem.status}")
    solve_seconds = time.perf_counter() - t_solve
    status = str(rel.problem.status)
    gv = st.variable.value
    if gv is None or rel.problem.value is None:
        raise RuntimeError(f"relaxation of {rel.loss.name} was not solved: {'; '.join(notes) or status}")
    primal = float(rel.problem.value) + rel.objective_constant
    dual = run["dual"]
    dual_total = None if dual is None else dual + rel.objective_constant
    lower = primal if dual_total is None else min(primal, dual_total)
    gap = None if dual_total is None else abs(primal - dual_total)
    rank, ev = numerical_rank(gv, rank_tol)
    sim = st.full_gram(gv)
    cert = GramCertificate(
        lower_bound=lower, primal_value=primal, dual_value=dual_total, duality_gap=gap, status=status,
        solver=used, gram=sim, eigenvalues=ev, rank=rank, rank_tol=rank_tol,
        template_value=gram_value(rel.loss, sim), seconds=0.0, solve_seconds=solve_seconds,
        iterations=run["iterations"], size={**rel.size, **run["cones"]}, dim=dim,
        compile_seconds=run["compile_seconds"], message="; ".join(notes),
    )
    if abs(cert.template_value - primal) > 1e-6 * (1.0 + abs(primal)):  # G only ~1e-8 feasible
        cert.message = "; ".join(filter(None, [cert.message, "numpy template and cvxpy objective disagree at G: "
                                               f"{cert.template_value!r} vs {primal!r}"]))
    if dim is not None:
        _attach_points(cert, rel, gv, dim, rank_tol)
    cert.seconds = time.perf_counter() - start
    return cert


def _attach_points(cert: GramCertificate, rel: GramRelaxation, gv: np.ndarray, dim: int,
                   rank_tol: float) -> None:
    st = rel.structure
    cert.tight = cert.rank <= dim
    if not cert.tight:
        return
    x, resid = points_from_gram(gv, dim, rank_tol, st.fixed, st.n_fixed)
    if x is None or resid > 1e-4:  # the fixed block is reproduced to the solver's accuracy
        cert.message = "; ".join(filter(None, [cert.message, f"factorisation residual {resid:.2g}"]))
        return
    pts = x[st.row_var[: st.n_free]]
    feasible = True
    if st.nonnegative:
        # rotations of a non-negative factor are generally not non-negative: feasible only if the
        # eigen-factor happens to be (up to round-off 1e-9, then clipped)
        feasible = bool(np.all(pts >= -1e-9))
        pts = np.maximum(pts, 0.0)
        if feasible and np.any(np.linalg.norm(pts, axis=1) == 0):
            feasible = False
    cert.points_feasible = feasible
    if feasible:
        cert.points = pts / np.linalg.norm(pts, axis=1, keepdims=True)
        cert.points_value = float(rel.loss.value(cert.points))


# ----------------------------------------------------------------------------------------------
# certification against a local value
# ----------------------------------------------------------------------------------------------
def compare(cert: GramCertificate, local_value: float | None, *, atol: float = 1e-6,
            rtol: float = 1e-6) -> GramCertificate:
    """Fill ``upper_bound``, ``gap`` and ``certified`` from a local value and the factorised points.

    upper = min(local value, points value when feasible); gap = upper - lower_bound;
    certified iff the solver status is optimal and gap <= atol + rtol |upper|.  A gap below
    -(atol + rtol |upper|) means a configuration beat the bound: reported in ``message`` (it
    would refute the relaxation or reveal a solver failure) and never certified.
    """
    cert.atol, cert.rtol = float(atol), float(rtol)
    cert.local_value = None if local_value is None else float(local_value)
    candidates = [v for v in (cert.local_value, cert.points_value) if v is not None and math.isfinite(v)]
    if not candidates:
        cert.certified = False
        return cert
    upper = min(candidates)
    cert.upper_bound = upper
    cert.gap = upper - cert.lower_bound
    tol = atol + rtol * abs(upper)
    if cert.gap < -tol:
        cert.message = "; ".join(filter(None, [cert.message, f"a configuration is below the bound by "
                                               f"{-cert.gap:.3g} (> {tol:.2g}): solver inaccuracy or a bug"]))
    cert.certified = bool(cert.status in OK_STATUSES and abs(cert.gap) <= tol)
    return cert


def certify(loss: SphereLoss, dim: int, *, local_value: float | None = None, views: int = 1,
            tied: bool = False, nonnegative: bool = False, restarts: int = 10, seed: int = 0,
            strategy: str = "multistart", solver: str = "auto", rank_tol: float = 1e-5,
            atol: float = 1e-6, rtol: float = 1e-6, local_options: dict | None = None) -> GramCertificate:
    """Relaxation bound for ``loss`` plus a local minimisation in R^dim, and the certificate.

    Without ``local_value`` the local value comes from :func:`solvers.sphere_solver.minimize_loss`
    (``restarts`` seeded starts, same ``views``/``tied``/``nonnegative`` structure).  Certified
    means: the best configuration found in R^dim is a global minimiser to within atol + rtol |v|.
    """
    cert = solve_relaxation(loss, dim=dim, views=views, tied=tied, nonnegative=nonnegative, solver=solver,
                            rank_tol=rank_tol)
    if local_value is None:
        from .sphere_solver import minimize_loss

        res = minimize_loss(loss, dim, views=views, tied=tied, nonnegative=nonnegative, restarts=restarts,
                            seed=seed, strategy=strategy, **(local_options or {}))
        local_value = res.fun
        cert.local = {"fun": res.fun, "restarts": res.restarts, "hits": res.hits, "seconds": res.seconds,
                      "success": res.success, "grad_norm": res.grad_norm, "strategy": res.strategy}
        cert.local_points = res.points
    return compare(cert, local_value, atol=atol, rtol=rtol)
