"""Minimise a loss over a product of spheres: local L-BFGS polish plus global strategies.

Manifold, problem and optimiser are kept apart as in pymanopt (DESIGN.md, "Solvers"):

- :class:`SphereProblem` is the manifold with its structure: a :class:`~solvers.base.SphereLoss`
  on N rows in R^d, views tied or free, an optional non-negativity constraint.  Fixed rows
  (prototypes) live in the loss (``GramLoss.fixed``) and never reach the optimiser.
- :func:`local_solve` is the local optimiser: scipy L-BFGS(-B) on the normalised
  parametrisation z_i = y_i / |y_i| with the analytic gradient (anchors.md §2.1)

      dL/dy_i = (I - z_i z_i^T) dL/dz_i / |y_i|,

  restarted from the renormalised point ("re-polish") until the Riemannian gradient norm is at
  most ``gtol * max(1, |grad_E L|)`` (grad_E the Euclidean gradient, the scale of anchors.md
  §14 U5).  Output rows are renormalised, so max_i ||z_i| - 1| is a few ulps, far below the
  1e-12 of anchors.md REQ-8.
- :func:`solve` runs a global strategy: seeded ``multistart``, monotonic ``basinhopping``
  (perturb a subset of points, polish, accept if better), or ``warm`` (minimise a Riesz energy
  first, s = d - 2 or 1, then polish under the target: finds E8 and the 600-cell for Gaussian
  kernels where random starts fail, anchors.md §11).  It reports how many local solves reached
  the best value (``hits``, anchors.md §13 "report hit rates").

Structure:

- **Tied views** (``tied=True``): all ``views`` rows of an instance share one free point; the
  free variables are the M instance points and the loss rows are their view-major copies
  (row = view * M + instance, :mod:`solvers.layout`).  dL/dy_i sums the row gradients.
- **Non-negativity** (``nonnegative=True``, the UFM+ / ReLU-features model, prototypes.md §1.2
  and §3.2): q_i = u_i * u_i (entry-wise), z_i = q_i / |q_i|, so every z_i >= 0 and the problem
  stays unconstrained in u; dL/du_i = 2 u_i * [(I - z_i z_i^T) dL/dz_i / |q_i|].  Stationarity
  is measured by the KKT residual of {z >= 0, |z| = 1}: with r = (I - z z^T) dL/dz,
  res = z - max(z - r, 0) (r on the free coordinates, min(r, 0) on coordinates at 0).

Randomness only through ``seed``: restart r draws from ``numpy.random.default_rng([seed, r])``,
so the first R restarts are the same whatever the total count (same seed, same result).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from .base import SphereLoss, tangent_project
from .losses import riesz_energy
from .validation import check_choice, check_finite, check_int, check_points, check_positive

STRATEGIES = ("multistart", "basinhopping", "warm")
Progress = Callable[[int, float], None]


# ----------------------------------------------------------------------------------------------
# the manifold with its structure
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SphereProblem:
    """A loss on ``loss.n_points`` rows in R^dim, optimised over free unit points.

    ``tied``: each instance's ``views`` rows (view-major) share one free point.
    ``nonnegative``: every free point is entry-wise >= 0 (squared parametrisation).
    """

    loss: SphereLoss
    dim: int
    views: int = 1
    tied: bool = False
    nonnegative: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "dim", check_int(self.dim, "dim", 1))
        object.__setattr__(self, "views", check_int(self.views, "views", 1))
        rows = self.loss.n_points
        if rows is None:
            raise ValueError("loss must fix its number of rows (n_points) to be minimised")
        if self.tied and rows % self.views:
            raise ValueError(f"views ({self.views}) must divide the number of rows ({rows}) to tie views")
        fixed = getattr(self.loss, "fixed", None)
        if fixed is not None and fixed.shape[1] != self.dim:
            raise ValueError(f"dim must equal the prototypes' dimension {fixed.shape[1]}; got {self.dim}")

    # -- shapes -------------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        """Rows the loss sees (views expanded)."""
        return int(self.loss.n_points)  # type: ignore[arg-type]

    @property
    def n_free(self) -> int:
        """Free points the optimiser moves."""
        return self.n_rows // self.views if self.tied else self.n_rows

    def expand(self, free: np.ndarray) -> np.ndarray:
        """Loss rows from free points (view-major copies when tied)."""
        return np.tile(free, (self.views, 1)) if self.tied else free

    def _reduce(self, grad_rows: np.ndarray) -> np.ndarray:
        if not self.tied:
            return grad_rows
        return grad_rows.reshape(self.views, self.n_free, self.dim).sum(axis=0)

    # -- parametrisation ------------------------------------------------------------------------
    def unit_from_params(self, u: np.ndarray) -> np.ndarray:
        """Free unit rows z = q / |q| with q = u (or u * u when non-negative)."""
        q = u.reshape(self.n_free, self.dim)
        q = q * q if self.nonnegative else q
        return q / np.linalg.norm(q, axis=1, keepdims=True)

    def params_from_unit(self, z: np.ndarray) -> np.ndarray:
        """Parameters of free unit rows z (the inverse of :meth:`unit_from_params` up to scale)."""
        return np.sqrt(np.maximum(z, 0.0)) if self.nonnegative else z.copy()

    def value_and_grad_params(self, flat: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss and gradient with respect to the flat parameter vector (scipy's ``jac=True``)."""
        u = flat.reshape(self.n_free, self.dim)
        q = u * u if self.nonnegative else u
        norms = np.linalg.norm(q, axis=1)
        if not np.all(norms > 0.0):
            return math.inf, np.zeros_like(flat)
        z = q / norms[:, None]
        val, g_rows = self.loss.value_and_grad_unit(self.expand(z))
        if not math.isfinite(val):
            return math.inf, np.zeros_like(flat)
        g_q = tangent_project(z, self._reduce(g_rows)) / norms[:, None]
        g_u = 2.0 * u * g_q if self.nonnegative else g_q
        return float(val), g_u.ravel()

    # -- stationarity -------------------------------------------------------------------------
    def stationarity(self, z: np.ndarray) -> tuple[float, float, float]:
        """(value, Riemannian gradient norm or KKT residual, Euclidean gradient norm) at free z."""
        val, g_rows = self.loss.value_and_grad_unit(self.expand(z))
        g = self._reduce(g_rows)
        r = tangent_project(z, g)
        if self.nonnegative:
            r = z - np.maximum(z - r, 0.0)
        return float(val), float(np.linalg.norm(r)), float(np.linalg.norm(g))

    # -- starts -------------------------------------------------------------------------------
    def random_start(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform free points: normalised standard Gaussians (absolute values if non-negative)."""
        g = rng.standard_normal((self.n_free, self.dim))
        if self.nonnegative:
            g = np.abs(g)
        return g / np.linalg.norm(g, axis=1, keepdims=True)

    def check_start(self, start: object) -> np.ndarray:
        """Validate a start (free points, shape (n_free, dim)) and normalise its rows."""
        x = check_points(start, "start")
        if x.shape != (self.n_free, self.dim):
            raise ValueError(f"start must have shape ({self.n_free}, {self.dim}) (free points); got {x.shape}")
        if self.nonnegative and np.any(x < 0.0):
            raise ValueError("start must be entry-wise non-negative when nonnegative=True")
        return x / np.linalg.norm(x, axis=1, keepdims=True)


# ----------------------------------------------------------------------------------------------
# local solver
# ----------------------------------------------------------------------------------------------
@dataclass
class LocalResult:
    """One local polish: free unit points and the convergence record."""

    points: np.ndarray
    fun: float
    grad_norm: float
    grad_tol: float
    nit: int
    nfev: int
    success: bool
    message: str


def local_solve(problem: SphereProblem, start: object, *, gtol: float = 1e-10, max_iter: int = 20000,
                polish_rounds: int = 10, maxcor: int = 30, polish_steps: int = 30) -> LocalResult:
    """L-BFGS on the normalised parametrisation, re-polished until converged.

    Stage 1 runs scipy's L-BFGS-B (no bounds) from the renormalised current point, round after
    round (each round also resets the curvature memory), while the value still decreases.
    Stage 2, entered when stage 1 stops short of the tolerance (the usual case at large N: near
    the minimum the decrease per step falls below the float64 resolution of the value, about
    1e-16 |L|, so a value-based line search stalls at a gradient norm of about
    sqrt(1e-16 |L| lambda_max)), is :func:`newton_polish` (at most ``polish_steps`` Newton
    steps), which needs gradients only.  Converged means: Riemannian gradient norm (KKT residual
    when non-negative) <= ``gtol * max(1, |grad_E L|_F)``.
    """
    gtol = check_positive(gtol, "gtol")
    max_iter = check_int(max_iter, "max_iter", 1)
    polish_rounds = check_int(polish_rounds, "polish_rounds", 1)
    polish_steps = check_int(polish_steps, "polish_steps", 0)
    z = problem.check_start(start)
    val, gnorm, enorm = problem.stationarity(z)
    tol = gtol * max(1.0, enorm)
    nit = nfev = 0
    note = "start already stationary"
    for _ in range(polish_rounds):
        if gnorm <= tol or nit >= max_iter:
            break
        res = minimize(problem.value_and_grad_params, problem.params_from_unit(z).ravel(), jac=True,
                       method="L-BFGS-B",
                       options={"maxiter": max_iter - nit, "maxcor": maxcor, "ftol": 0.0, "gtol": 0.0,
                                "maxls": 40, "maxfun": 10 * max_iter})
        nit += int(res.nit)
        nfev += int(res.nfev)
        note = f"L-BFGS: {res.message}"
        new_z = problem.unit_from_params(res.x)
        new_val, new_g, new_e = problem.stationarity(new_z)
        if not math.isfinite(new_val) or new_val > val:
            break  # a failed round never replaces a better point
        improved = new_val < val or new_g < gnorm
        z, val, gnorm, tol = new_z, new_val, new_g, gtol * max(1.0, new_e)
        if not improved:
            break
    if gnorm > tol and polish_steps > 0:
        z, val, gnorm, tol, evals = newton_polish(problem, z, gtol, polish_steps)
        nfev += evals
        note = f"{note}; Newton polish: {evals} gradient evaluations"
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    ok = gnorm <= tol
    what = "KKT residual" if problem.nonnegative else "Riemannian gradient norm"
    msg = f"{'converged' if ok else 'not converged'}: {what} {gnorm:.3g} {'<=' if ok else '>'} {tol:.3g}"
    return LocalResult(z, val, gnorm, tol, nit, nfev, ok, f"{msg} ({note})")


def _retract(w: np.ndarray) -> np.ndarray:
    return w / np.linalg.norm(w, axis=1, keepdims=True)


def _param_rgrad(problem: SphereProblem, w: np.ndarray) -> np.ndarray:
    """Gradient of f(w) = L(z(w)) on unit parameter rows w (tangent: f is row-scale invariant)."""
    _, g = problem.value_and_grad_params(w.ravel())
    return tangent_project(w, g.reshape(w.shape))


def _truncated_cg(hess: Callable[[np.ndarray], np.ndarray], g: np.ndarray, rtol: float,
                  max_iter: int) -> tuple[np.ndarray, int]:
    """Approximately solve H d = -g by conjugate gradients (Steihaug: stop at negative curvature)."""
    d = np.zeros_like(g)
    r = -g
    p = r.copy()
    rr = float(np.sum(r * r))
    target = (rtol**2) * rr
    it = 0
    for it in range(1, max_iter + 1):
        hp = hess(p)
        curv = float(np.sum(p * hp))
        if curv <= 0.0:
            return (d if it > 1 else -g), it
        alpha = rr / curv
        d += alpha * p
        r -= alpha * hp
        rr_new = float(np.sum(r * r))
        if rr_new <= target:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return d, it


def newton_polish(problem: SphereProblem, z: np.ndarray, gtol: float = 1e-10, steps: int = 30,
                  fd_step: float = 1e-7) -> tuple[np.ndarray, float, float, float, int]:
    """Riemannian Newton steps with finite-difference Hessian-vector products, gradients only.

    The parameter rows w (w = z, or sqrt(z) when non-negative) are kept on the unit sphere
    (retraction w -> w/|w|, under which the loss is invariant).  Hess f(w)[v] is approximated by
    P_w[(grad f(R(w + h v)) - grad f(w)) / h] with h = ``fd_step`` / |v| (Boumal, *An
    Introduction to Optimization on Smooth Manifolds*, §6.6 and §10.6) and the Newton system is
    solved by truncated conjugate gradients (forcing term min(0.5, sqrt|g|)).  A step is kept
    when it lowers the stationarity measure without raising the value beyond its float64 noise
    (1e-13 max(1, |L|)); otherwise it is halved (up to 20 times).  Returns
    (z, value, measure, tol, gradient evaluations).
    """
    w = _retract(problem.params_from_unit(z))
    val, gnorm, enorm = problem.stationarity(z)
    tol = gtol * max(1.0, enorm)
    evals = 0
    n_dof = w.size
    for _ in range(steps):
        if gnorm <= tol:
            break
        g = _param_rgrad(problem, w)
        evals += 1

        def hess(v: np.ndarray, w=w, g=g) -> np.ndarray:
            nv = float(np.linalg.norm(v))
            h = fd_step / nv
            return tangent_project(w, (_param_rgrad(problem, _retract(w + h * v)) - g) / h)

        rtol = min(0.5, math.sqrt(float(np.linalg.norm(g))))
        d, its = _truncated_cg(hess, g, rtol, n_dof)
        evals += its
        t, accepted = 1.0, False
        for _ in range(20):
            new_w = _retract(w + t * d)
            new_z = problem.unit_from_params(new_w)
            new_val, new_g, new_e = problem.stationarity(new_z)
            evals += 1
            if new_g < gnorm and new_val <= val + 1e-13 * max(1.0, abs(val)):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        w, z, val, gnorm, tol = new_w, new_z, new_val, new_g, gtol * max(1.0, new_e)
    return z, val, gnorm, tol, evals


# ----------------------------------------------------------------------------------------------
# result record
# ----------------------------------------------------------------------------------------------
@dataclass
class SphereResult:
    """Outcome of a global search, in the style of ``scipy.optimize.OptimizeResult``.

    ``points`` are the loss rows (views expanded), exactly unit; ``free_points`` the optimiser's
    variables; ``fun`` the best value and ``grad_norm`` its Riemannian gradient norm (KKT
    residual when non-negative); ``all_values`` the value of every local solve in order;
    ``hits`` how many of them are within ``hit_tol`` of ``fun``.
    """

    points: np.ndarray
    fun: float
    grad_norm: float
    nit: int
    nfev: int
    restarts: int
    hits: int
    seconds: float
    success: bool
    message: str
    strategy: str
    all_values: list[float] = field(default_factory=list)
    free_points: np.ndarray | None = None
    grad_tol: float = 0.0
    hit_tol: float = 0.0
    best_restart: int = 0
    warm_values: list[float] = field(default_factory=list)

    @property
    def x(self) -> np.ndarray:
        """scipy-style alias of ``points``."""
        return self.points

    def summary(self) -> dict:
        """Every field except the point arrays (for JSON reports)."""
        return {
            "fun": self.fun, "grad_norm": self.grad_norm, "grad_tol": self.grad_tol, "nit": self.nit,
            "nfev": self.nfev, "restarts": self.restarts, "hits": self.hits, "hit_tol": self.hit_tol,
            "best_restart": self.best_restart, "seconds": self.seconds, "success": self.success,
            "message": self.message, "strategy": self.strategy, "all_values": list(self.all_values),
            "warm_values": list(self.warm_values),
        }


# ----------------------------------------------------------------------------------------------
# global strategies
# ----------------------------------------------------------------------------------------------
@dataclass
class _Search:
    """Book-keeping shared by the strategies: every local solve, the best one, the clock."""

    problem: SphereProblem
    local: dict
    time_limit: float | None
    progress: Progress | None
    target: float | None = None
    start: float = field(default_factory=time.perf_counter)
    runs: list[LocalResult] = field(default_factory=list)
    nit: int = 0
    nfev: int = 0
    best: int = -1

    def out_of_time(self) -> bool:
        """True once the time limit has passed or the target value is reached (never before the
        first local solve)."""
        if not self.runs:
            return False
        if self.target is not None and self.runs[self.best].fun <= self.target:
            return True
        return self.time_limit is not None and time.perf_counter() - self.start >= self.time_limit

    def record(self, res: LocalResult, extra_nit: int = 0, extra_nfev: int = 0) -> None:
        self.runs.append(res)
        self.nit += res.nit + extra_nit
        self.nfev += res.nfev + extra_nfev
        if self.best < 0 or res.fun < self.runs[self.best].fun:
            self.best = len(self.runs) - 1
        if self.progress is not None:
            self.progress(len(self.runs), self.runs[self.best].fun)

    def result(self, strategy: str, hit_atol: float, hit_rtol: float, stopped: str,
               warm_values: Sequence[float] = ()) -> SphereResult:
        best = self.runs[self.best]
        values = [r.fun for r in self.runs]
        hit_tol = hit_atol + hit_rtol * abs(best.fun)
        hits = sum(v <= best.fun + hit_tol for v in values)
        msg = f"{strategy}: best of {len(values)} local solves, {hits} within {hit_tol:.3g}; {best.message}"
        if stopped:
            msg += f"; {stopped}"
        return SphereResult(
            points=self.problem.expand(best.points), fun=best.fun, grad_norm=best.grad_norm, nit=self.nit,
            nfev=self.nfev, restarts=len(values), hits=int(hits), seconds=time.perf_counter() - self.start,
            success=best.success, message=msg, strategy=strategy, all_values=values,
            free_points=best.points, grad_tol=best.grad_tol, hit_tol=hit_tol, best_restart=self.best,
            warm_values=list(warm_values),
        )


def _rng(seed: int, r: int) -> np.random.Generator:
    return np.random.default_rng([seed, r])


def _stop_note(search: _Search, done: int, planned: int) -> str:
    if done >= planned:
        return ""
    if search.target is not None and search.runs[search.best].fun <= search.target:
        return f"target {search.target!r} reached after {done} of {planned}"
    return f"time limit {search.time_limit} s reached after {done} of {planned}"


def _multistart(search: _Search, restarts: int, seed: int, starts: Sequence[np.ndarray]) -> str:
    for r in range(restarts):
        if search.out_of_time():
            return _stop_note(search, r, restarts)
        start = starts[r] if r < len(starts) else search.problem.random_start(_rng(seed, r))
        search.record(local_solve(search.problem, start, **search.local))
    return ""


def perturb(points: np.ndarray, rng: np.random.Generator, fraction: float, step: float,
            nonnegative: bool = False) -> np.ndarray:
    """Move ceil(fraction * N) random rows by ``step`` times a standard Gaussian and renormalise
    (absolute values first when non-negative): the basin-hopping move."""
    z = points.copy()
    k = max(1, math.ceil(fraction * z.shape[0]))
    idx = rng.choice(z.shape[0], size=k, replace=False)
    moved = z[idx] + step * rng.standard_normal((k, z.shape[1]))
    if nonnegative:
        moved = np.abs(moved)
    norms = np.linalg.norm(moved, axis=1, keepdims=True)
    keep = norms[:, 0] > 0.0  # a row moved exactly to 0 stays where it was
    z[idx[keep]] = moved[keep] / norms[keep]
    return z


def _basinhopping(search: _Search, hops: int, seed: int, starts: Sequence[np.ndarray],
                  fraction: float, step: float) -> str:
    problem = search.problem
    first = starts[0] if starts else problem.random_start(_rng(seed, 0))
    search.record(local_solve(problem, first, **search.local))
    for h in range(1, hops):
        if search.out_of_time():
            return _stop_note(search, h, hops)
        current = search.runs[search.best].points
        trial = perturb(current, _rng(seed, h), fraction, step, problem.nonnegative)
        search.record(local_solve(problem, trial, **search.local))
    return ""


def default_warm_loss(problem: SphereProblem) -> SphereLoss:
    """Riesz s-energy of the free points with s = d - 2 (harmonic), or s = 1 when d <= 2."""
    return riesz_energy(problem.n_free, float(max(problem.dim - 2, 1)))


def _warm(search: _Search, restarts: int, seed: int, starts: Sequence[np.ndarray],
          warm_loss: SphereLoss | None, warm_values: list[float]) -> str:
    problem = search.problem
    if warm_loss is None and problem.n_free >= 2:
        warm_loss = default_warm_loss(problem)
    warm = None if warm_loss is None else SphereProblem(warm_loss, problem.dim, nonnegative=problem.nonnegative)
    if warm is not None and warm.n_free != problem.n_free:
        raise ValueError(f"warm_loss must have {problem.n_free} rows (the free points); got {warm.n_free}")
    for r in range(restarts):
        if search.out_of_time():
            return _stop_note(search, r, restarts)
        start = starts[r] if r < len(starts) else problem.random_start(_rng(seed, r))
        extra = (0, 0)
        if warm is not None:
            pre = local_solve(warm, start, gtol=1e-8, max_iter=search.local.get("max_iter", 20000))
            warm_values.append(pre.fun)
            start, extra = pre.points, (pre.nit, pre.nfev)
        search.record(local_solve(problem, start, **search.local), *extra)
    return ""


def solve(problem: SphereProblem, *, strategy: str = "multistart", restarts: int = 10, seed: int = 0,
          starts: Sequence[object] = (), time_limit: float | None = None, progress: Progress | None = None,
          gtol: float = 1e-10, max_iter: int = 20000, polish_rounds: int = 10,
          hit_atol: float = 1e-9, hit_rtol: float = 1e-11, hop_fraction: float = 0.05,
          hop_step: float = 1.0, warm_loss: SphereLoss | None = None,
          target: float | None = None, blas_threads: int | None = 1) -> SphereResult:
    """Global minimisation of ``problem`` with a named strategy.

    - ``multistart``: ``restarts`` local solves from seeded uniform starts (``starts`` first).
    - ``basinhopping``: one local solve, then ``restarts - 1`` hops: perturb ceil(hop_fraction N)
      points of the best configuration by ``hop_step`` Gaussian noise, polish, keep if better
      (defaults 0.05 and 1.0: on Thomson N = 78, 2 of 4 seeds reached the table within 25 hops,
      against 1 of 4 for (0.1, 0.5) and (0.2, 0.3); a small sample, not a tuned optimum).
    - ``warm``: per restart, minimise ``warm_loss`` (default Riesz s = d - 2, or 1 if d <= 2, on
      the free points) from the start, then polish under the target (anchors.md §11).

    ``hits`` counts local solves with value <= best + hit_atol + hit_rtol |best|.  With
    ``time_limit`` (seconds) no new local solve starts once the limit has passed (at least one
    always runs); with ``target`` none starts once the best value is <= ``target`` (time-to-target
    runs, e.g. a table value plus its tolerance).  ``progress(done, best_value)`` is called after
    every local solve.

    ``blas_threads`` caps the BLAS thread pool during the search (through ``threadpoolctl`` when
    it is installed; ``None`` leaves it alone).  The default 1 matters: the L-BFGS-B kernel makes
    many tiny BLAS calls, which a multi-threaded OpenBLAS on a busy machine can slow down a
    hundredfold (measured here: 0.03 s single-threaded against up to 2 s for one N = 20 run).
    """
    check_choice(strategy, "strategy", STRATEGIES)
    restarts = check_int(restarts, "restarts", 1)
    seed = check_int(seed, "seed", 0)
    if time_limit is not None:
        time_limit = check_positive(time_limit, "time_limit")
    hop_fraction = check_positive(hop_fraction, "hop_fraction")
    if hop_fraction > 1.0:
        raise ValueError(f"hop_fraction must lie in (0, 1]; got {hop_fraction!r}")
    hop_step = check_positive(hop_step, "hop_step")
    hit_atol = _nonneg(hit_atol, "hit_atol")
    hit_rtol = _nonneg(hit_rtol, "hit_rtol")
    start_list = [problem.check_start(s) for s in starts]
    if target is not None:
        target = check_finite(target, "target")
    search = _Search(problem, {"gtol": gtol, "max_iter": max_iter, "polish_rounds": polish_rounds},
                     time_limit, progress, target)
    warm_values: list[float] = []
    with blas_limit(blas_threads):
        if strategy == "multistart":
            stopped = _multistart(search, restarts, seed, start_list)
        elif strategy == "basinhopping":
            stopped = _basinhopping(search, restarts, seed, start_list, hop_fraction, hop_step)
        else:
            stopped = _warm(search, restarts, seed, start_list, warm_loss, warm_values)
    return search.result(strategy, hit_atol, hit_rtol, stopped, warm_values)


def blas_limit(threads: int | None) -> contextlib.AbstractContextManager:
    """Context manager capping the BLAS threads (threadpoolctl if installed, else a no-op)."""
    if threads is None:
        return contextlib.nullcontext()
    threads = check_int(threads, "blas_threads", 1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(threads, user_api="blas")


def minimize_loss(loss: SphereLoss, dim: int, *, views: int = 1, tied: bool = False,
                  nonnegative: bool = False, **options) -> SphereResult:
    """Shorthand: ``solve(SphereProblem(loss, dim, views, tied, nonnegative), **options)``."""
    return solve(SphereProblem(loss, dim, views, tied, nonnegative), **options)


def _nonneg(value: object, name: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite real number >= 0; got {value!r}") from None
    if not math.isfinite(v) or v < 0.0:
        raise ValueError(f"{name} must be a finite real number >= 0; got {value!r}")
    return v
