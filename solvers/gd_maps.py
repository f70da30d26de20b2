"""Exact iteration of the gradient-descent maps of the CLOP analysis, on angles and on free points.

Spec: ``shared/spec/clop.md`` §4.5-4.6 (threshold maps T1-T7), §6.1 (collapse measures), §6.2
(free-point experiments F1, F2).  The maps themselves are ``[DER]``; their role as the paper's
learning-rate bound is a reconstruction ``[REC]``.

Two levels:

- **Angle maps** (:func:`iterate_map`): the signed scalar maps of spec §4.5-4.6,

      cosine (T1-T3):   theta -> theta - m arctan(a sin theta)
      euclidean (T7):   theta -> theta - sign(theta) arctan(a cos(theta / 2))

  with a = eta k and m = 1 (one moving point) or 2 (a mutual pair).
- **Vector gradient descent** (:func:`gradient_descent`) on free points with the loss library's
  analytic gradients: each step x_i <- x_i - eta (I - z_i z_i^T) dL/dz_i / |x_i| (the raw-point
  gradient of :meth:`solvers.base.SphereLoss.value_and_grad`), followed in mode ``"renorm"`` by
  x_i <- x_i / |x_i|.  :func:`pair_run` sets up the two-point problems of T1-T4 from library losses
  (CLOP cosine term for the fixed target, the linear pair kernel for the mutual pair, negated
  for repulsion) and records the angle measured as atan2(|(I - c c^T) u|, u.c) (spec §7.12).

The F1/F2/T6 experiments of spec §6.2 are in :mod:`solvers.gd_maps_experiments`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .base import SphereLoss, normalize_rows
from .kernels import Linear
from .losses import clop_term
from .metrics import class_means, effective_rank_of_values, variances
from .templates import KernelTerm, PairKernelLoss
from .validation import check_choice, check_int, check_points, check_positive

__all__ = [
    "DISTANCES",
    "MODES",
    "GDResult",
    "PairRun",
    "TermForces",
    "angle",
    "collapse_measures",
    "erank",
    "gradient_descent",
    "infonce_term_forces",
    "iterate_map",
    "map_step",
    "mean_abs_cos",
    "pair_run",
    "rotate_in_plane",
]

MODES = ("renorm", "free")
DISTANCES = ("cosine", "euclidean")
PAIR_KINDS = ("fixed", "mutual", "repel-fixed", "repel-mutual")


# --------------------------------------------------------------------------------------------
# angle maps (spec §4.5 T1-T3, §4.6 T7)
# --------------------------------------------------------------------------------------------
def map_step(theta: np.ndarray | float, eta_k: float, moving: int = 1,
             distance: str = "cosine") -> np.ndarray | float:
    """One step of the signed angle map (clop.md §4.5-4.6).

    ``distance="cosine"``: theta - m arctan(a sin theta) (T1 m = 1, T2 m = 2; T3 in eps = pi - theta).
    ``distance="euclidean"``: theta - sign(theta) arctan(a cos(theta/2)) (non-squared |u - c|, T7;
    sign(0) = 0: an iterate exactly on the target stays there).
    """
    a = check_positive(eta_k, "eta_k")
    m = check_int(moving, "moving", 1, 2)
    check_choice(distance, "distance", DISTANCES)
    t = np.asarray(theta, dtype=np.float64)
    if distance == "cosine":
        out = t - m * np.arctan(a * np.sin(t))
    else:
        out = t - m * np.sign(t) * np.arctan(a * np.cos(t / 2.0))
    return float(out) if out.ndim == 0 else out


def iterate_map(theta0: float, eta_k: float, steps: int, moving: int = 1,
                distance: str = "cosine") -> np.ndarray:
    """Signed trajectory theta_0 .. theta_steps of :func:`map_step` (float64, plain iteration)."""
    steps = check_int(steps, "steps", 0)
    out = np.empty(steps + 1)
    out[0] = float(theta0)
    for n in range(steps):
        out[n + 1] = map_step(out[n], eta_k, moving, distance)
    return out


# --------------------------------------------------------------------------------------------
# collapse measures (spec §6.1)
# --------------------------------------------------------------------------------------------
def angle(u: np.ndarray, c: np.ndarray) -> np.ndarray | float:
    """Angle between rows of ``u`` and ``c`` as atan2(|(I - c c^T) u|, u.c) (clop.md §7.12).

    Both are normalised first; accurate to round-off for tiny angles (arccos is not).
    """
    uu = np.atleast_2d(np.asarray(u, dtype=np.float64))
    cc = np.atleast_2d(np.asarray(c, dtype=np.float64))
    uu = uu / np.linalg.norm(uu, axis=1, keepdims=True)
    cc = cc / np.linalg.norm(cc, axis=1, keepdims=True)
    dot = np.sum(uu * cc, axis=1)
    perp = np.linalg.norm(uu - dot[:, None] * cc, axis=1)
    out = np.arctan2(perp, dot)
    return float(out[0]) if out.size == 1 else out


def erank(points: np.ndarray) -> float:
    """M1: Roy-Vetterli effective rank of the singular values of the *uncentred* row-normalised
    matrix, p_k = sigma_k / sum sigma, no epsilon (clop.md §6.1 [TK]); range [1, min(n, d)]."""
    u = normalize_rows(check_points(points, "points"))[0]
    return effective_rank_of_values(np.linalg.svd(u, compute_uv=False))


def mean_abs_cos(points: np.ndarray) -> tuple[float, float]:
    """M2: (mean |cos|, mean cos) over unordered pairs a < b of the normalised rows (clop.md §6.1)."""
    u = normalize_rows(check_points(points, "points"))[0]
    n = u.shape[0]
    if n < 2:
        raise ValueError(f"points must have at least 2 rows for pair cosines; got {n}")
    g = np.clip(u @ u.T, -1.0, 1.0)
    iu = np.triu_indices(n, 1)
    return float(np.mean(np.abs(g[iu]))), float(np.mean(g[iu]))


def collapse_measures(points: np.ndarray, labels: np.ndarray | None = None,
                      prototypes: np.ndarray | None = None) -> dict[str, float]:
    """M1, M2, M4 of clop.md §6.1 on the rows of ``points`` (normalised inside).

    Keys: ``erank`` (M1), ``mean_abs_cos`` and ``mean_cos`` (M2), ``total_variance``
    (1 - |mean u|^2, v1's metric; *not* a collapse test, spec §7.14), ``mean_norm`` (raw).
    With ``labels``: ``interclass_cos`` (mean off-diagonal cosine of the normalised class means M),
    ``erank_means`` (M1 of M); with ``prototypes`` (row c = class c, classes 0..C-1 in sorted
    label order) also ``proto_cos`` = mean_c cos(M_c, c_c).
    """
    x = check_points(points, "points")
    u, norms = normalize_rows(x)
    mac, mc = mean_abs_cos(u)
    out = {"erank": erank(u), "mean_abs_cos": mac, "mean_cos": mc,
           "total_variance": variances(u, np.zeros(u.shape[0], dtype=int))[2],
           "mean_norm": float(norms.mean())}
    if labels is not None:
        means = class_means(u, labels)
        mn = np.linalg.norm(means, axis=1)
        if np.any(mn <= 1e-12):
            raise ValueError("points: a class mean is numerically zero, its direction is undefined")
        m = means / mn[:, None]
        k = m.shape[0]
        g = m @ m.T
        off = ~np.eye(k, dtype=bool)
        out["interclass_cos"] = float(g[off].mean()) if k > 1 else float("nan")
        out["erank_means"] = erank(m)
        if prototypes is not None:
            p = check_points(prototypes, "prototypes")
            if p.shape[0] != k or p.shape[1] != m.shape[1]:
                raise ValueError(f"prototypes must have shape ({k}, {m.shape[1]}); got {p.shape}")
            pu = normalize_rows(p)[0]
            out["proto_cos"] = float(np.mean(np.sum(m * pu, axis=1)))
    return out


# --------------------------------------------------------------------------------------------
# plain gradient descent on free points with the library's gradients
# --------------------------------------------------------------------------------------------
@dataclass
class GDResult:
    """Record of :func:`gradient_descent` (scipy-style plain record).

    ``points``: final raw rows; ``values``: loss at every evaluated step (before its update);
    ``norms``: raw row norms after every step (steps + 1, N) when ``record_norms``;
    ``min_rel_norm_change``: min over steps and rows of (|x+| - |x|)/|x| (Lemma B: >= 0 in mode
    ``free``); ``grad_norm``: Riemannian gradient norm at the last evaluation; ``diverged``.
    """

    points: np.ndarray
    values: np.ndarray
    norms: np.ndarray | None
    min_rel_norm_change: float
    grad_norm: float
    steps: int
    mode: str
    eta: float
    diverged: bool = False
    extra: dict = field(default_factory=dict)


def gradient_descent(loss: SphereLoss, start: np.ndarray, eta: float, steps: int,
                     mode: str = "renorm", record_norms: bool = False,
                     callback: Callable[[int, np.ndarray], None] | None = None) -> GDResult:
    """Full-batch plain GD x <- x - eta dL/dx on raw points (clop.md §6.2 F1 step list).

    dL/dx_i = (I - u_i u_i^T) dL/du_i / |x_i| from ``loss.value_and_grad`` (the library's analytic
    gradient through the normalisation).  ``mode="renorm"``: rows renormalised after each step
    (then x <- normalise(x - eta g) with g the Riemannian gradient); ``"free"``: no
    renormalisation (the effective angular rate is eta/|x|^2, Lemma C).  Stops early, flagged
    ``diverged``, if a value or row becomes non-finite or zero.  ``callback(t, x)`` sees the
    iterate x_t for t = 0 .. steps (read-only use).
    """
    x = check_points(start, "start").copy()
    eta = check_positive(eta, "eta")
    steps = check_int(steps, "steps", 0)
    mode = check_choice(mode, "mode", MODES)
    if mode == "renorm":
        x = normalize_rows(x)[0]
    values = np.empty(steps)
    norms = np.empty((steps + 1, x.shape[0])) if record_norms else None
    r = np.linalg.norm(x, axis=1)
    if norms is not None:
        norms[0] = r
    min_change = math.inf
    grad_norm = math.nan
    diverged = False
    done = 0
    if callback is not None:
        callback(0, x)
    for t in range(steps):
        val, g = loss.value_and_grad(x)
        values[t] = val
        grad_norm = float(np.linalg.norm(g * r[:, None]))  # Riemannian gradient (|x| g)
        new = x - eta * g
        new_r = np.linalg.norm(new, axis=1)
        if not (math.isfinite(val) and np.all(np.isfinite(new)) and np.all(new_r > 0)):
            diverged = True
            break
        min_change = min(min_change, float(np.min((new_r - r) / r)))
        if mode == "renorm":
            new = new / new_r[:, None]
            new_r = np.ones_like(new_r)
        x, r = new, new_r
        done = t + 1
        if norms is not None:
            norms[done] = new_r
        if callback is not None:
            callback(done, x)
    return GDResult(x, values[:done], None if norms is None else norms[: done + 1], min_change,
                    grad_norm, done, mode, eta, diverged)


# --------------------------------------------------------------------------------------------
# the two-point model problems T1-T4 as vector iterations
# --------------------------------------------------------------------------------------------
def rotate_in_plane(theta: float, dim: int = 3) -> np.ndarray:
    """The unit vector cos(theta) e_1 + sin(theta) e_2 in R^dim."""
    v = np.zeros(check_int(dim, "dim", 2))
    v[0], v[1] = math.cos(theta), math.sin(theta)
    return v


@dataclass
class PairRun:
    """Angles (atan2 form) between the moving point and its partner at every step, raw norms."""

    kind: str
    eta: float
    k: float
    angles: np.ndarray
    norms: np.ndarray
    gd: GDResult


def pair_run(kind: str, theta0: float, eta: float, k: float, steps: int, r0: float = 1.0,
             mode: str = "renorm", dim: int = 3) -> PairRun:
    """Vector GD on S^{dim-1} for the model problems of clop.md §4.5, with library losses.

    - ``"fixed"`` (T1, T4): one point, loss k (1 - u.c) = ``clop_term([0], c, lam=k)`` (cosine);
    - ``"mutual"`` (T2): two points, loss k (1 - u_1.u_2), the pair-kernel template with the
      linear kernel (the library's ``alignment(1, 2)`` equals 2(1 - s) but goes through the
      clamped distance 2 - 2s, whose gradient vanishes once s rounds to 1, i.e. theta < 1.5e-8);
    - ``"repel-fixed"`` / ``"repel-mutual"`` (T3): the same losses negated (k cos theta + const).
    The moving point starts at angle ``theta0`` from e_1 in the (e_1, e_2) plane with raw norm
    ``r0``; the fixed target (or the partner) is e_1.  ``angles`` are the partner angles theta_n.
    """
    kind = check_choice(kind, "kind", PAIR_KINDS)
    k = check_positive(k, "k")
    r0 = check_positive(r0, "r0")
    target = np.eye(1, dim)
    moving = r0 * rotate_in_plane(float(theta0), dim)[None, :]
    if kind in ("fixed", "repel-fixed"):
        base: SphereLoss = clop_term(np.array([0]), target, lam=k, distance="cosine")
        start = moving
    else:
        w = np.zeros((2, 2))
        w[0, 1] = 1.0
        base = PairKernelLoss([KernelTerm(w, Linear(), -k)], constant=k, n_points=2, name="pair")
        start = np.vstack([moving, r0 * target])
    loss = (-1.0) * base if kind.startswith("repel") else base
    if kind in ("fixed", "repel-fixed"):
        def measure(x: np.ndarray) -> float:
            return angle(x[0], target[0])
    else:
        def measure(x: np.ndarray) -> float:
            return angle(x[0], x[1])
    angles: list[float] = []
    gd = gradient_descent(loss, start, eta, steps, mode=mode, record_norms=True,
                          callback=lambda _t, x: angles.append(measure(x)))
    return PairRun(kind, float(eta), k, np.array(angles), gd.norms, gd)



# --------------------------------------------------------------------------------------------
# v1's per-term InfoNCE gradients (spec §4.1, T5)
# --------------------------------------------------------------------------------------------
@dataclass
class TermForces:
    """Per-anchor-term forces of NT-Xent (clop.md §4.1 with the /tau correction).

    ``positive_prob`` P_i = e^{s_ij/tau} / sum_{a != i} e^{s_ia/tau}; ``negative_weights`` w_ia
    = softmax of s_ia/tau over a not in {i, j(i)} (0 at a = i, j(i)); ``term_grads[i]`` is the
    (N, d) gradient of the single term L_i with respect to all rows:

        dL_i/du_i = -(1 - P_i)/tau (u_j - sum_a w_ia u_a),   dL_i/du_j = -(1 - P_i)/tau u_i,
        dL_i/du_a = (1 - P_i) w_ia / tau u_i;

    ``grad`` = (1/N) sum_i term_grads[i] (mean reduction).  Pull coefficient (1 - P_i)/tau, push
    coefficient (1 - P_i) w_ia / tau (both divided by N under the mean).
    """

    positive_prob: np.ndarray
    negative_weights: np.ndarray
    term_grads: np.ndarray
    grad: np.ndarray
    value: float


def infonce_term_forces(unit: np.ndarray, tau: float) -> TermForces:
    """Evaluate v1's per-term gradient formulas on unit rows (two-view layout, N = 2B rows)."""
    u = check_points(unit, "unit")
    tau = check_positive(tau, "tau")
    n = u.shape[0]
    if n % 2 or n < 4:
        raise ValueError(f"unit must have an even number >= 4 of rows (two views); got {n}")
    idx = np.arange(n)
    part = (idx + n // 2) % n
    logits = (u @ u.T) / tau
    np.fill_diagonal(logits, -np.inf)
    mx = logits.max(axis=1, keepdims=True)
    ex = np.exp(logits - mx)
    tot = ex.sum(axis=1)
    p = ex[idx, part] / tot
    neg = ex.copy()
    neg[idx, part] = 0.0
    w = neg / neg.sum(axis=1, keepdims=True)
    value = float(np.mean(-logits[idx, part] + mx[:, 0] + np.log(tot)))
    terms = np.zeros((n, n, u.shape[1]))
    for i in range(n):
        j = part[i]
        c = (1.0 - p[i]) / tau
        terms[i, i] = -c * (u[j] - w[i] @ u)
        terms[i, j] = -c * u[i]
        others = np.flatnonzero((idx != i) & (idx != j))
        terms[i, others] = c * w[i, others, None] * u[i][None, :]
    return TermForces(p, w, terms, terms.sum(axis=0) / n, value)
