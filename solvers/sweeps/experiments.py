"""The built-in experiments of ``collapsekit sweep``.

- ``loss-eval``: a loss of the registry at seeded uniform random configurations (cheap; the
  Monte Carlo mean, spread and extremes of the loss, and the mean gradient norm).
- ``ssem-guideline``: the SSEM optimum and collapse threshold of ssem.md §5-6 (R5, R6 and the
  1-D root of §6.1) from :mod:`theory.ssem` - a phase diagram over (alpha, tau, K, n, p).
- ``energy``: a global search for the minimal pair energy of N points on S^{dim-1}
  (:func:`solvers.energy_search.search_energy`, anchors.md §2-3): Thomson N = 2..200 and friends.
- ``solve``: global minimisation of any loss of the registry over free points on the sphere
  (:func:`solvers.sphere_solver.solve`), with Gram-matrix statistics, effective rank and, for
  supervised batches, the variances (W, B, T) of ssem.md §3 at the minimiser.

Batch layouts shared by ``loss-eval`` and ``solve`` (solvers/layout.py): self-supervised losses
use ``n`` instances with two views (2n rows); supervised losses ``K`` classes x ``n`` instances
x ``views`` views; energies ``n`` points.  Every random draw comes from
``numpy.random.default_rng([seed, i])`` (same seed, same result, on any worker).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..loss_registry import ENERGIES, SELF_SUPERVISED, SUPERVISED, LossOptions, build_loss
from .registry import Bool, Choice, Float, Int, experiment

EVAL_LOSSES = SELF_SUPERVISED + SUPERVISED + ENERGIES
ENERGY_KERNELS = ("riesz", "log", "gaussian")
STRATEGIES = ("multistart", "basinhopping", "warm")


def _layout(loss: str, K: int, n: int, views: int):
    from ..layout import Layout

    if loss in SELF_SUPERVISED:
        return Layout.instances(n, 2)
    if loss in ENERGIES:
        return Layout.instances(n, 1)
    return Layout.balanced(K, n, views)


def _check_batch(params: dict[str, Any]) -> None:
    """Cross-parameter checks of the batch shape (run on every task before any starts)."""
    loss, n = params["loss"], params["n"]
    if loss in SELF_SUPERVISED + ENERGIES and n < 2:
        raise ValueError(f"parameter 'n' must be >= 2 for the loss {loss!r} (instances or points); got {n}")
    if loss in SUPERVISED and n * params["views"] < 2:
        raise ValueError(f"parameters 'n' x 'views' must be >= 2 for the supervised loss {loss!r} "
                         f"(every anchor needs a positive); got n={n}, views={params['views']}")


def _options(params: dict[str, Any], seed: int) -> LossOptions:
    return LossOptions(tau=params["tau"], alpha=params["alpha"], variant=params["variant"], t=params["t"],
                       s=params["s"], seed=seed)


_BATCH_PARAMS = [
    Int("n", 8, low=1, help="instances (self-supervised), instances per class (supervised) or points (energies)"),
    Int("K", 2, low=1, help="classes (supervised losses only)"),
    Int("views", 2, low=1, help="views per instance (supervised losses only; self-supervised use 2)"),
    Int("dim", 3, low=1, help="ambient dimension d (points on S^{d-1})"),
    Float("tau", 0.5, low=1e-3, help="temperature (contrastive losses)"),
    Float("t", 2.0, low=0.0, low_open=True, help="Gaussian / uniformity scale"),
    Float("s", 1.0, low=0.0, low_open=True, help="Riesz exponent"),
    Float("alpha", 0.5, low=0.0, high=1.0, help="supcl: weight of the self-supervised term"),
    Choice("variant", ("code", "self-excluded"), "code", help="supcl variant"),
]


@experiment(
    "loss-eval",
    params=[Choice("loss", EVAL_LOSSES, "simclr", help="the loss (names of collapsekit loss)"),
            *_BATCH_PARAMS,
            Int("samples", 16, low=1, help="random configurations evaluated per task")],
    description="a loss at seeded uniform random configurations: mean, std, sem, min, max, mean |grad|",
    validate=_check_batch,
)
def loss_eval(*, loss: str, n: int, K: int, views: int, dim: int, tau: float, t: float, s: float,
              alpha: float, variant: str, samples: int, seed: int) -> dict[str, Any]:
    """Monte Carlo of a loss over iid uniform configurations on S^{dim-1}.

    Sample i draws Gaussian rows from ``default_rng([seed, i])`` (normalised inside the loss,
    so the rows are uniform on the sphere).  Returns the sample mean, standard deviation
    (ddof = 1), standard error std/sqrt(samples), min, max and the mean Euclidean gradient norm.
    """
    layout = _layout(loss, K, n, views)
    fn = build_loss(loss, layout, dim, _options(locals(), seed))
    rows = layout.n_rows
    values, grads = np.empty(samples), np.empty(samples)
    for i in range(samples):
        z = np.random.default_rng([seed, i]).standard_normal((rows, dim))
        values[i], g = fn.value_and_grad(z)
        grads[i] = np.linalg.norm(g)
    std = float(values.std(ddof=1)) if samples > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "sem": std / np.sqrt(samples),
            "min": float(values.min()), "max": float(values.max()), "grad_norm_mean": float(grads.mean()),
            "n_points": rows}


@experiment(
    "ssem-guideline",
    params=[Float("alpha", 0.5, low=0.0, high=1.0, help="weight of the self-supervised term"),
            Float("tau", 0.1, low=0.0, low_open=True, help="temperature"),
            Int("K", 4, low=2, help="classes in the batch"),
            Int("n", 5, low=2, help="instances per class"),
            Int("p", 2, low=2, help="views per instance"),
            Choice("variant", ("code", "self-excluded"), "code", help="SupCL variant (ssem.md §2)")],
    seeded=False,
    batch=256,
    description="SSEM optimum W*, B*, L*, regime and the collapse thresholds alpha*, tau_max (ssem.md R5, R6, §6.1)",
)
def ssem_guideline(*, alpha: float, tau: float, K: int, n: int, p: int, variant: str) -> dict[str, Any]:
    """``theory.ssem.beta_star`` (1-D root, ssem.md §6.1) plus ``alpha_star`` (R5) and
    ``tau_max`` (R6); ``collapse`` is ``W_star == 0``.  Provenance strings are kept in the record."""
    from theory import ssem

    opt = ssem.beta_star(alpha, tau, K, n, p=p, variant=variant)
    out = dict(opt.as_dict())
    pp = p if variant == "self-excluded" else None
    out["tau_max"] = float(ssem.tau_max(alpha, K, n, variant=variant, p=pp))
    out["alpha_star"] = float(ssem.alpha_star(K, n, tau, variant=variant, p=pp))
    out["collapse"] = bool(out["W_star"] == 0.0)
    return out


def _solver_summary(res: Any, keep_points: bool) -> dict[str, Any]:
    out = res.summary()
    out.pop("seconds", None)  # wall time is in the record's "seconds"; results stay deterministic
    if keep_points:
        out["points"] = res.points
    return out


@experiment(
    "energy",
    params=[Choice("kernel", ENERGY_KERNELS, "riesz", help="pair kernel (anchors.md §1)"),
            Int("N", 12, low=2, help="number of points"),
            Int("dim", 3, low=2, help="ambient dimension d (points on S^{d-1}; 3 = Thomson)"),
            Float("s", 1.0, low=0.0, low_open=True, help="Riesz exponent (s = 1 on S^2: Thomson)"),
            Float("t", 2.0, low=0.0, low_open=True, help="Gaussian scale"),
            Choice("strategy", STRATEGIES, "multistart", help="global strategy of the sphere solver"),
            Int("restarts", 10, low=1, help="local solves (starts or hops)"),
            Bool("keep_points", False, help="store the best configuration (N x dim floats)")],
    description="minimal pair energy of N points on the sphere (multi-start / basin hopping / warm start)",
)
def energy(*, kernel: str, N: int, dim: int, s: float, t: float, strategy: str, restarts: int,
           keep_points: bool, seed: int) -> dict[str, Any]:
    """:func:`solvers.energy_search.search_energy` (sum over unordered pairs, anchors.md §1):
    ``fun`` is the best energy, ``hits`` how many local solves reached it."""
    from ..energy_search import search_energy

    res = search_energy(kernel, N, dim, s=s, t=t, strategy=strategy, restarts=restarts, seed=seed)
    return _solver_summary(res, keep_points)


@experiment(
    "solve",
    params=[Choice("loss", EVAL_LOSSES, "supcl", help="the loss (names of collapsekit loss)"),
            *_BATCH_PARAMS,
            Choice("strategy", STRATEGIES, "multistart", help="global strategy of the sphere solver"),
            Int("restarts", 5, low=1, help="local solves (starts or hops)"),
            Bool("tied", False, help="views of an instance share one point"),
            Bool("nonnegative", False, help="entry-wise non-negative points (UFM+)"),
            Bool("keep_points", False, help="store the minimiser (rows x dim floats)")],
    description="global minimiser of a loss over free points on the sphere, with its Gram statistics",
    validate=_check_batch,
)
def solve(*, loss: str, n: int, K: int, views: int, dim: int, tau: float, t: float, s: float, alpha: float,
          variant: str, strategy: str, restarts: int, tied: bool, nonnegative: bool, keep_points: bool,
          seed: int) -> dict[str, Any]:
    """:func:`solvers.sphere_solver.solve` on the loss and batch layout, then at the minimiser:
    off-diagonal cosine statistics (``gram_summary``; within/between = same/different class or
    instance), the covariance effective rank and, for supervised losses, (W, B, T)."""
    from ..metrics import effective_rank, gram_summary, variances
    from ..sphere_solver import SphereProblem
    from ..sphere_solver import solve as sphere_solve

    layout = _layout(loss, K, n, views)
    fn = build_loss(loss, layout, dim, _options(locals(), seed))
    problem = SphereProblem(fn, dim, views=layout.views, tied=tied, nonnegative=nonnegative)
    res = sphere_solve(problem, strategy=strategy, restarts=restarts, seed=seed)
    out = _solver_summary(res, keep_points)
    pts = res.points[: layout.n_rows]
    labels = None if loss in ENERGIES else layout.row_class
    out["gram"] = gram_summary(pts, labels)
    out["effective_rank"] = float(effective_rank(pts))
    if loss in SUPERVISED:
        out["W"], out["B"], out["T"] = variances(pts, layout.row_class)
    return out
