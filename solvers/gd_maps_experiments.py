"""Free-point gradient-descent experiments of the CLOP spec: F1, F2 and T6 (clop.md §6.2, §8).

All gradients are the loss library's analytic ones, every quantity is float64, and the random
streams follow the spec's draw order exactly (numpy ``default_rng(seed)``):

- **F1** (:func:`f1_run`) — do free points collapse at large eta?  B = 64, C = 4, d = 16,
  tau = 0.5, 300 full-batch steps; draws: labels y (B integers in 0..C-1, drawn even for NT-Xent),
  then a raw 2B x d standard-normal matrix.  Loss: SupCon L_out on [y; y] or NT-Xent (instance
  labels); mode ``renorm`` or ``free`` (:func:`solvers.gd_maps.gradient_descent`).
- **F2** (:func:`f2_run`) — lambda-geometry: SupCon L_out + cosine CLOP with every row labelled,
  eta = 2, 600 renormalised steps; draws: y, then G (C x d) whose thin-SVD V^T gives the
  prototypes (the construction of :func:`solvers.configurations.orthonormal_prototypes`, drawn
  from the shared stream), then the initial 2B x d normal matrix, rows normalised.
- **T6** (:func:`t6_run`) — pure cosine CLOP on free points: the F2 setup and stream without the
  base loss; each view is a T1 problem with k = lam / (2B) (threshold eta = 4B / lam).

Outcomes are ``[DER-NUM]``; they support the reconstruction ``[REC]`` of §4.5 and the abstract's
claims ``[ABS2]``.
"""

from __future__ import annotations

import numpy as np

from .gd_maps import angle, collapse_measures, gradient_descent
from .losses import clop_term, simclr, supcon
from .sphere_solver import minimize_loss
from .validation import check_choice, check_int, check_positive

__all__ = ["F1_ETAS", "F2_LAMBDAS", "f1_run", "f2_run", "free_point_stream", "supcon_optimum", "t6_run"]

#: grids of clop.md §6.2
F1_ETAS = (0.01, 0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0)
F2_LAMBDAS = (0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 20.0, 100.0)
F1_LOSSES = ("supcon", "ntxent")


def free_point_stream(seed: int, batch: int = 64, classes: int = 4, dim: int = 16,
                      prototypes: bool = False) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(labels y, prototypes Phi or None, raw 2B x d start) drawn in the order of clop.md §6.2.

    ``prototypes=False`` (F1): y, then X.  ``prototypes=True`` (F2, T6): y, then G -> Phi = V^T
    (``numpy.linalg.svd(G, full_matrices=False)``, spec §7.5), then X (to be normalised).
    """
    b = check_int(batch, "batch", 2)
    c = check_int(classes, "classes", 2)
    d = check_int(dim, "dim", 2)
    if prototypes and c > d:
        raise ValueError(f"dim must be >= classes for orthonormal prototypes (C = {c}); got {d}")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=b)
    phi = None
    if prototypes:
        g = rng.standard_normal((c, d))
        phi = np.linalg.svd(g, full_matrices=False)[2]
    x = rng.standard_normal((2 * b, d))
    return y, phi, x


def _rows_labels(y: np.ndarray) -> np.ndarray:
    return np.concatenate([y, y])


def f1_run(loss: str, mode: str, eta: float, seed: int, batch: int = 64, classes: int = 4,
           dim: int = 16, tau: float = 0.5, steps: int = 300) -> dict:
    """One F1 run (clop.md §6.2).  Returns the final loss (last evaluated step), the collapse
    measures of the final rows (erank(U), mean |cos|, inter-class cosine, erank(M) for labels
    [y; y]), the mean raw norm and the smallest relative per-step norm change (Lemma B)."""
    loss = check_choice(loss, "loss", F1_LOSSES)
    y, _, x = free_point_stream(seed, batch, classes, dim)
    rows = _rows_labels(y)
    obj = supcon(rows, tau) if loss == "supcon" else simclr(y.size, tau)
    gd = gradient_descent(obj, x, eta, steps, mode=mode)
    meas = collapse_measures(gd.points, rows)
    return {"loss": loss, "mode": mode, "eta": float(eta), "seed": int(seed),
            "final_loss": float(gd.values[-1]) if gd.values.size else float("nan"),
            "diverged": gd.diverged, "min_rel_norm_change": gd.min_rel_norm_change,
            "classes_present": int(np.unique(y).size), **meas}


def supcon_optimum(seed: int, batch: int = 64, classes: int = 4, dim: int = 16, tau: float = 0.5,
                   restarts: int = 2) -> dict:
    """Minimum of SupCon L_out on the F1 labels [y; y] by the sphere solver (multistart L-BFGS,
    :func:`solvers.sphere_solver.minimize_loss`) and its collapse measures: the reference that
    shows SupCon's rank C - 1 (deformed simplex) is its optimum, not a pathology (clop.md §4.7)."""
    y, _, _ = free_point_stream(seed, batch, classes, dim)
    rows = _rows_labels(y)
    res = minimize_loss(supcon(rows, tau), dim, restarts=check_int(restarts, "restarts", 1), seed=seed)
    return {"seed": int(seed), "fun": float(res.fun), "success": bool(res.success), "hits": int(res.hits),
            "restarts": int(res.restarts), **collapse_measures(res.points, rows)}


def _f2_loss(rows: np.ndarray, phi: np.ndarray, lam: float, tau: float, base: bool = True):
    parts = []
    if base:
        parts.append(supcon(rows, tau))
    if lam > 0:
        parts.append(clop_term(rows, phi, lam=lam, distance="cosine"))
    if not parts:
        raise ValueError("lam must be > 0 when the base loss is removed")
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def f2_run(lam: float, seed: int, batch: int = 64, classes: int = 4, dim: int = 16,
           tau: float = 0.5, eta: float = 2.0, steps: int = 600) -> dict:
    """One F2 run: SupCon L_out + lam * mean over the 2B rows of (1 - u.c_y), renormalised GD
    (clop.md §6.2 F2).  Returns the M4 class-geometry triple (``interclass_cos``,
    ``erank_means``, ``proto_cos``) and the final loss; ``lam = 0`` is SupCon alone."""
    lam = float(lam)
    if lam < 0 or not np.isfinite(lam):
        raise ValueError(f"lam must be a finite real number >= 0; got {lam!r}")
    y, phi, x = free_point_stream(seed, batch, classes, dim, prototypes=True)
    assert phi is not None
    rows = _rows_labels(y)
    gd = gradient_descent(_f2_loss(rows, phi, lam, tau), x, eta, steps, mode="renorm")
    present = np.unique(y)
    meas = collapse_measures(gd.points, rows, phi[present])
    return {"lam": lam, "seed": int(seed), "eta": float(eta),
            "final_loss": float(gd.values[-1]), "clop_bound_eta_k": eta * lam / (2 * y.size),
            "classes_present": int(present.size), **meas}


def t6_run(eta: float, seed: int = 0, lam: float = 1.0, batch: int = 64, classes: int = 4,
           dim: int = 16, steps: int = 2000) -> dict:
    """Pure cosine CLOP on free points (clop.md §8 CLOP-T6): the F2 stream, no base loss.

    Returns the per-row angles to the prototypes at the last two iterates (``theta_last``,
    ``theta_prev``, atan2 form), the per-view coefficient k = lam/(2B) and eta k."""
    eta = check_positive(eta, "eta")
    lam = check_positive(lam, "lam")
    y, phi, x = free_point_stream(seed, batch, classes, dim, prototypes=True)
    assert phi is not None
    rows = _rows_labels(y)
    loss = clop_term(rows, phi, lam=lam, distance="cosine")
    last: dict[int, np.ndarray] = {}

    def keep(t: int, z: np.ndarray) -> None:
        if t >= steps - 1:
            last[t] = angle(z, phi[rows])

    gd = gradient_descent(loss, x, eta, steps, mode="renorm", callback=keep)
    k = lam / (2 * y.size)
    return {"eta": eta, "k": k, "eta_k": eta * k, "steps": gd.steps,
            "theta_last": np.atleast_1d(last[gd.steps]), "theta_prev": np.atleast_1d(last[gd.steps - 1])}
