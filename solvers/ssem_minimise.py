"""Direct minimisation of the SupCL loss over free unit points, and the SSEM geometry of a result.

Spec: ``shared/spec/ssem.md`` (section 2: the loss; section 3: variances; section 4: the SSEM;
section 8.7: how to minimise; section 10: the checks that compare this with ``theory.ssem``).

- :func:`minimise_ssem` minimises the SupCL loss ``solvers.losses.supcl`` (code or self-excluded
  variant, anchor mean) for K classes x n instances x p views in R^d with the sphere solver
  (:mod:`solvers.sphere_solver`), following the advice of spec section 8.7:

  * d a little above d_min = Kn - 1 (default d = Kn + 2, the lower end of the SSEM-C6 range; for
    the self-excluded variant above the view-split rank Kn(p-1) + K - 1 of R10 as well);
  * at least 3 seeded Gaussian starts, the best kept (the solver reports how many reached it);
  * L-BFGS with the analytic gradient to a Riemannian gradient norm of ``gtol = 1e-12`` (relative
    to the Euclidean gradient, with a Newton polish; stricter than the spec's ftol = 1e-15,
    which a value-based rule cannot resolve below float64 round-off of L);
  * temperature continuation for tau < 0.5: each start is first minimised at tau = 0.5, then
    along a geometric path down to tau (ratio at most 4 per step), and only then polished at
    tau.  At small tau the cross-class similarities span an exponentially flat direction
    (section 8.7); measured here (4 configurations at tau = 0.1, alpha in {0, 0.5, 0.8}, 3 starts)
    a direct start left their standard deviation at up to 2e-2 after 1-6 s, the continued start
    at <= 2e-8 after 0.1-0.5 s.

- :func:`ssem_geometry` measures what the SSEM predicts at a configuration: within-, between- and
  total variance (W, B, T) of section 3 (size weights), the smallest cosine between views of one
  instance (1 when views are aligned), mean and standard deviation of the same-class
  (other-instance) and cross-class cosines (constant in an SSEM), the norm of the global mean
  (0 in an SSEM) and the spread of the instance means within a class (0 in the self-excluded
  "view-split" regime, R10).
- :func:`ssem_coordinates` builds the SSEM of section 4.1 explicitly (the reference point the
  minimiser is compared with).

The sweep experiment ``ssem-minimise`` (registered on import) runs :func:`minimise_ssem` on a
grid through :mod:`solvers.sweeps` (figures use it; ``collapsekit sweep ssem-minimise --module
solvers.ssem_minimise`` from the command line).

Provenance: the loss is ``[CODE]`` (authors' synthetic / ImageNet code, section 2.2); the
optimisation protocol is spec section 8.7.  This module does not use ``theory`` (the checks
compare the two).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from .layout import Layout
from .losses import supcl
from .metrics import variances
from .sphere_solver import SphereProblem, blas_limit, local_solve, solve
from .sweeps import Bool, Choice, Float, Int, experiment
from .validation import check_choice, check_int, check_positive, check_unit_interval

VARIANTS = ("code", "self-excluded")
#: d = Kn - 1 + EXTRA_DIM by default (spec section 8.7: "Kn + 2 to Kn + 4")
EXTRA_DIM = 3
#: temperature from which continuation starts, and below which it is used
TAU_START = 0.5
#: largest ratio between consecutive temperatures of the continuation path
MAX_RATIO = 4.0
#: gradient tolerance of the intermediate (continuation) solves; only the final solve is tight
PATH_GTOL = 1e-8


# ----------------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SSEMGeometry:
    """The SSEM-relevant statistics of one configuration (see :func:`ssem_geometry`).

    Cosines are over ordered pairs of distinct rows: ``view_alignment`` = min over pairs of views
    of one instance (``nan`` when p = 1); ``same_class_*`` over pairs of one class and different
    instances; ``cross_class_*`` over pairs of different classes; ``*_spread`` = max - min.
    """

    W: float
    B: float
    T: float
    mean_norm: float
    view_alignment: float
    same_class_cos_mean: float
    same_class_cos_std: float
    same_class_cos_spread: float
    cross_class_cos_mean: float
    cross_class_cos_std: float
    cross_class_cos_spread: float
    instance_mean_spread: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def ssem_geometry(points: object, layout: Layout) -> SSEMGeometry:
    """Variances and cosine statistics of ``points`` (rows view-major as ``layout``; normalised here).

    W, B, T: ``solvers.metrics.variances`` with size weights (spec section 3; T = W + B exactly).
    In an SSEM (section 4.2): view_alignment = 1, the same-class cosines all equal
    s1 = (n beta - 1)/(n-1), the cross-class cosines all equal s2 = -beta/(K-1), mean_norm = 0,
    T = 1, W = 1 - beta.  ``instance_mean_spread`` = max_{c,i} |m_{c,i} - mu_c| with m_{c,i} the
    mean of instance i's views and mu_c the class mean (0 in the R10 view-split regime).
    """
    if not isinstance(layout, Layout):
        raise ValueError("layout must be a solvers.layout.Layout")
    z = np.asarray(points, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] != layout.n_rows:
        raise ValueError(f"points must have shape ({layout.n_rows}, d) (the layout's rows); got {z.shape}")
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    W, B, T = variances(z, layout.row_class)
    g = z @ z.T
    cls, inst = layout.row_class, layout.row_instance
    off = ~np.eye(z.shape[0], dtype=bool)
    same_inst = (inst[:, None] == inst[None, :]) & off
    same_cls = (cls[:, None] == cls[None, :]) & ~(inst[:, None] == inst[None, :])
    cross = cls[:, None] != cls[None, :]

    def stats(mask: np.ndarray) -> tuple[float, float, float]:
        v = g[mask]
        if v.size == 0:
            return math.nan, math.nan, math.nan
        return float(v.mean()), float(v.std()), float(v.max() - v.min())

    sc, xc = stats(same_cls), stats(cross)
    align = float(g[same_inst].min()) if np.any(same_inst) else math.nan
    m = z.reshape(layout.views, layout.n_instances, -1).mean(axis=0)  # instance means
    icls = layout.instance_class
    mu_c = np.stack([m[icls == c].mean(axis=0) for c in range(int(icls.max()) + 1)])
    spread = float(np.max(np.linalg.norm(m - mu_c[icls], axis=1)))
    return SSEMGeometry(W=W, B=B, T=T, mean_norm=float(np.linalg.norm(z.mean(axis=0))), view_alignment=align,
                        same_class_cos_mean=sc[0], same_class_cos_std=sc[1], same_class_cos_spread=sc[2],
                        cross_class_cos_mean=xc[0], cross_class_cos_std=xc[1], cross_class_cos_spread=xc[2],
                        instance_mean_spread=spread)


def ssem_coordinates(K: int, n: int, p: int, beta: float, dim: int | None = None) -> np.ndarray:
    """Explicit SSEM points of spec section 4.1, view-major (row = view * Kn + c n + i).

    z_{c,i,a} = sqrt(beta) w_c + sqrt(1-beta) e_{c,i} with w_c = sqrt(K/(K-1)) (eps_c - 1/K) in R^K
    and e_{c,i} = sqrt(n/(n-1)) (eps_i - 1/n) in block c of R^{Kn}; the points are rotated onto
    their span (SVD) and zero-padded to ``dim`` (default: the rank, Kn - 1 for 0 < beta < 1).
    ValueError if ``dim`` is below the rank.
    """
    K = check_int(K, "K", 2)
    n = check_int(n, "n", 2)
    p = check_int(p, "p", 1)
    beta = check_unit_interval(beta, "beta")
    w = math.sqrt(K / (K - 1)) * (np.eye(K) - 1.0 / K)
    e = math.sqrt(n / (n - 1)) * (np.eye(n) - 1.0 / n)
    x = np.zeros((K * n, K + K * n))
    for c in range(K):
        rows = slice(c * n, (c + 1) * n)
        x[rows, :K] = math.sqrt(beta) * w[c]
        x[rows, K + c * n: K + (c + 1) * n] = math.sqrt(1.0 - beta) * e
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    rank = int(np.sum(s > 1e-10 * s[0]))  # singular values are O(1) or exactly 0 up to round-off
    y = x @ vt[:rank].T
    d = rank if dim is None else check_int(dim, "dim", 1)
    if d < rank:
        raise ValueError(f"dim must be >= the SSEM rank {rank} for K={K}, n={n}, beta={beta}; got {d}")
    y = np.hstack([y, np.zeros((K * n, d - rank))])
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return np.tile(y, (p, 1))


# ----------------------------------------------------------------------------------------------
# minimisation
# ----------------------------------------------------------------------------------------------
@dataclass
class SSEMMinimum:
    """Best of the local solves of :func:`minimise_ssem`, with the geometry of the minimiser.

    ``fun``: the loss (spec section 2, anchor mean); ``hits``: local solves within the solver's
    hit tolerance of ``fun``; ``all_values``: every final value in start order; ``tau_path``:
    the continuation temperatures (the last is ``tau``); ``points``: the rows (view-major).
    """

    K: int
    n: int
    p: int
    alpha: float
    tau: float
    variant: str
    dim: int
    seed: int
    restarts: int
    fun: float
    grad_norm: float
    success: bool
    hits: int
    all_values: list[float]
    tau_path: list[float]
    seconds: float
    message: str
    geometry: SSEMGeometry
    points: np.ndarray = field(repr=False)

    def __getattr__(self, name: str) -> Any:
        # geometry fields read as attributes of the result (result.W, result.view_alignment, ...)
        geo = self.__dict__.get("geometry")
        if geo is not None and name in SSEMGeometry.__dataclass_fields__:
            return getattr(geo, name)
        raise AttributeError(name)

    def as_dict(self, include_points: bool = False) -> dict[str, Any]:
        """Flat JSON-friendly dict (geometry fields at top level)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("geometry", "points")}
        out["all_values"] = list(self.all_values)
        out["tau_path"] = list(self.tau_path)
        out.update(self.geometry.as_dict())
        if include_points:
            out["points"] = self.points.tolist()
        return out


def tau_path(tau: float, tau_start: float = TAU_START, max_ratio: float = MAX_RATIO) -> list[float]:
    """Continuation temperatures: [tau] if tau >= tau_start, else a geometric path from tau_start
    down to tau whose consecutive ratios are at most ``max_ratio``."""
    tau = check_positive(tau, "tau")
    tau_start = check_positive(tau_start, "tau_start")
    max_ratio = check_positive(max_ratio, "max_ratio")
    if max_ratio <= 1.0:
        raise ValueError(f"max_ratio must be > 1; got {max_ratio!r}")
    if tau >= tau_start:
        return [tau]
    steps = math.ceil(math.log(tau_start / tau) / math.log(max_ratio) - 1e-12)
    return [tau_start * (tau / tau_start) ** (k / steps) for k in range(steps)] + [tau]


def default_dim(K: int, n: int, p: int, variant: str = "code") -> int:
    """Largest rank a minimiser can need, plus EXTRA_DIM (spec section 8.7: d a little above d_min).

    Code variant: Kn - 1 (SSEM, section 4.3).  Self-excluded: max(Kn - 1, Kn(p-1) + K - 1), the
    latter the rank of the view-split optimum (R10); e.g. (K, n, p) = (4, 5, 2) needs d >= 23,
    and at d = Kn + 2 = 22 the minimiser stayed 5.6e-5 above the R10 minimum at alpha = 0,
    tau = 0.1 (measured).
    """
    rank = K * n - 1
    if variant == "self-excluded":
        rank = max(rank, K * n * (p - 1) + K - 1)
    return rank + EXTRA_DIM


def _problem(layout: Layout, alpha: float, tau: float, variant: str, dim: int) -> SphereProblem:
    return SphereProblem(supcl(layout, alpha, tau, variant=variant), dim)


def minimise_ssem(K: int, n: int, p: int = 2, alpha: float = 0.5, tau: float = 0.5, variant: str = "code",
                  dim: int | None = None, restarts: int = 3, seed: int = 0, continuation: bool = True,
                  gtol: float = 1e-12, max_iter: int = 20000) -> SSEMMinimum:
    """Minimise the SupCL loss (spec section 2) over K n p free unit points in R^dim.

    Start r draws Gaussian rows from ``numpy.random.default_rng([seed, r])`` (the sphere solver's
    convention); with ``continuation`` and tau < 0.5 each start is first carried along
    :func:`tau_path` (local solves to gtol 1e-8), then all starts are polished at tau by
    :func:`solvers.sphere_solver.solve` (``gtol`` relative Riemannian gradient norm, L-BFGS then
    Newton polish) and the best is kept.  ``dim`` defaults to :func:`default_dim` (Kn + 2 for the
    code variant).  BLAS is single-threaded
    during the search (many tiny BLAS calls; see ``sphere_solver.solve``).
    """
    K = check_int(K, "K", 2)
    n = check_int(n, "n", 2)
    variant = check_choice(variant, "variant", VARIANTS)
    p = check_int(p, "p", 2 if variant == "self-excluded" else 1)
    alpha = check_unit_interval(alpha, "alpha")
    tau = check_positive(tau, "tau")
    d = default_dim(K, n, p, variant) if dim is None else check_int(dim, "dim", 1)
    restarts = check_int(restarts, "restarts", 1)
    seed = check_int(seed, "seed", 0)
    layout = Layout.balanced(K, n, p)
    path = tau_path(tau) if continuation else [tau]
    start_time = time.perf_counter()
    with blas_limit(1):
        final = _problem(layout, alpha, tau, variant, d)
        starts = []
        if len(path) > 1:
            stages = [_problem(layout, alpha, t, variant, d) for t in path[:-1]]
            for r in range(restarts):
                z = final.random_start(np.random.default_rng([seed, r]))
                for stage in stages:
                    z = local_solve(stage, z, gtol=PATH_GTOL, max_iter=max_iter).points
                starts.append(z)
        res = solve(final, restarts=restarts, seed=seed, starts=starts, gtol=gtol, max_iter=max_iter,
                    blas_threads=None)
    pts = res.points
    return SSEMMinimum(K=K, n=n, p=p, alpha=alpha, tau=tau, variant=variant, dim=d, seed=seed, restarts=restarts,
                       fun=float(res.fun), grad_norm=float(res.grad_norm), success=bool(res.success),
                       hits=int(res.hits), all_values=[float(v) for v in res.all_values], tau_path=path,
                       seconds=time.perf_counter() - start_time, message=res.message,
                       geometry=ssem_geometry(pts, layout), points=pts)


# ----------------------------------------------------------------------------------------------
# sweep experiment
# ----------------------------------------------------------------------------------------------
def _check_task(params: dict[str, Any]) -> None:
    """Cross-parameter check of one ``ssem-minimise`` task (before any task starts)."""
    if params["variant"] == "self-excluded" and params["p"] < 2:
        raise ValueError(f"parameter 'p' must be >= 2 for variant 'self-excluded'; got {params['p']}")


@experiment(
    "ssem-minimise",
    params=[Float("alpha", 0.5, low=0.0, high=1.0, help="weight of the self-supervised term"),
            Float("tau", 0.5, low=1e-3, help="temperature"),
            Int("K", 4, low=2, help="classes"),
            Int("n", 5, low=2, help="instances per class"),
            Int("p", 2, low=1, help="views per instance (>= 2 for self-excluded)"),
            Choice("variant", VARIANTS, "code", help="SupCL variant (ssem.md §2.2)"),
            Int("dim", 0, low=0, help="embedding dimension d (0: default_dim, Kn + 2 for the code variant)"),
            Int("restarts", 3, low=1, help="seeded starts (spec §8.7: >= 3)"),
            Bool("continuation", True, help="temperature continuation from tau = 0.5 (spec §8.7)")],
    description="direct minimisation of the SupCL loss over free unit points (ssem.md §8.7): W, B, T, "
                "view alignment, same-/cross-class cosine spreads",
    validate=_check_task,
)
def ssem_minimise_task(*, alpha: float, tau: float, K: int, n: int, p: int, variant: str, dim: int,
                       restarts: int, continuation: bool, seed: int) -> dict[str, Any]:
    """One :func:`minimise_ssem` run as a JSON-able record (points not kept; wall time dropped so
    that records are deterministic)."""
    res = minimise_ssem(K, n, p, alpha, tau, variant, dim or None, restarts, seed, continuation)
    out = res.as_dict()
    out.pop("seconds", None)
    out.pop("message", None)
    return out
