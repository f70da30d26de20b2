"""Solve one prototype / mini-batch setting of prototypes.md and measure its geometry.

Spec: ``shared/spec/prototypes.md`` §1.4 (metrics), §3.2 (UFM recipe), §4 (C1-C12), T4-T6 (limit
minimisers).  Used by ``paper_checks/prototypes.py``, ``figures/prototypes.py`` and the sweeps
``proto-geometry`` and ``proto-limit`` registered here (run them with ``collapsekit sweep NAME
--module solvers.minibatch_experiments``).

- :func:`prototype_matrix`: the prototype geometries of §1.3 - ``etf`` (simplex ETF), ``of``
  (w_c = e_c), ``block`` (§4 C11: w_{2j} = e_{2j}, w_{2j+1} = 0.6 e_{2j} + 0.8 e_{2j+1}),
  ``random`` (orthonormal rows of a seeded Gaussian).
- :func:`solve_setting`: minimise the SupCon / SCL+P objective of :mod:`solvers.minibatch` for
  class sizes, prototypes, copies n_w, anchor convention, non-negativity (UFM+) and a batch family
  with the multi-start sphere solver (§3.2: float64 L-BFGS, several restarts, best value kept), and
  return :func:`geometry` of the best configuration with the solver record.
- :func:`geometry`: Delta_ETF, Delta_ETF_centred, Delta_OF, Delta_W (Delta(G_M, G_W)), NC1,
  class-mean norms and cosines, max_c ||mu_c - w_c|| (§1.4, uncentred means unless stated).
- :func:`limit_minimiser` / :func:`limit_gram`: the per-class minimisers h*_y of the n_w -> infinity
  limit objectives F^CE_y (P-passive) and F^anc_y (P-anchor) on the sphere or the non-negative
  sphere (T4 "limit solver"), and the predicted Gram G_ij = h*_i.h*_j.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .configurations import etf_prototypes, orthogonal_frame, orthonormal_prototypes
from .metrics import class_mean_gram_distance, class_means, nc1
from .minibatch import RowSubset, batched_loss, batches_from_spec, prototype_limit_loss
from .sphere_solver import SphereProblem, blas_limit, local_solve
from .sweeps.registry import Bool, Choice, Float, Int, Param, experiment
from .validation import check_choice, check_class_sizes, check_int, check_points, check_positive

__all__ = [
    "PROTOTYPE_KINDS",
    "block_prototypes",
    "prototype_matrix",
    "labels_from_sizes",
    "geometry",
    "SettingResult",
    "solve_setting",
    "multistart",
    "SearchResult",
    "limit_minimiser",
    "limit_gram",
]

PROTOTYPE_KINDS = ("none", "etf", "of", "block", "random")


def block_prototypes(classes: int, dim: int, cosine: float = 0.6) -> np.ndarray:
    """Block (super-class) prototypes of §4 C11: pairs w_{2j} = e_{2j},
    w_{2j+1} = cosine e_{2j} + sqrt(1 - cosine^2) e_{2j+1}; within-pair cosine ``cosine``, across
    pairs 0, entry-wise >= 0 for cosine >= 0.  K even, d >= K."""
    k = check_int(classes, "classes", 2)
    d = check_int(dim, "dim", 1)
    if k % 2 or d < k:
        raise ValueError(f"classes must be even and dim >= classes for block prototypes; got K={k}, d={d}")
    if not -1.0 < cosine < 1.0:
        raise ValueError(f"cosine must lie in (-1, 1); got {cosine!r}")
    w = np.zeros((k, d))
    for j in range(k // 2):
        w[2 * j, 2 * j] = 1.0
        w[2 * j + 1, 2 * j] = cosine
        w[2 * j + 1, 2 * j + 1] = math.sqrt(1.0 - cosine * cosine)
    return w


def prototype_matrix(kind: str, classes: int, dim: int, seed: int = 0) -> np.ndarray | None:
    """The K x d prototype rows of a named geometry (None for ``"none"``), see the module docstring."""
    check_choice(kind, "prototypes", PROTOTYPE_KINDS)
    if kind == "none":
        return None
    if kind == "etf":
        return etf_prototypes(classes, dim)
    if kind == "of":
        return orthogonal_frame(classes, dim)
    if kind == "block":
        return block_prototypes(classes, dim)
    return orthonormal_prototypes(classes, dim, seed)


def labels_from_sizes(class_sizes: object) -> np.ndarray:
    """Row labels 0..K-1, class c repeated n_c times (class-major rows)."""
    sizes = check_class_sizes(class_sizes)
    return np.repeat(np.arange(len(sizes)), sizes)


# ----------------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------------
def geometry(points: np.ndarray, labels: np.ndarray, prototypes: np.ndarray | None = None) -> dict[str, Any]:
    """Geometry of a configuration (§1.4 [CODE-K]); G_M is the Gram of the uncentred class means.

    Keys: ``delta_etf``, ``delta_etf_centred``, ``delta_of``, ``delta_w`` (None without prototypes),
    ``nc1`` (Kini's convention), ``mean_norm_min``/``mean_norm_max`` (||mu_c||), ``gram`` (G_M),
    ``cosines`` (cos(mu_c, mu_c'), c < c'), ``max_mean_to_prototype`` (max_c ||mu_c - w_c||).
    """
    m = class_means(points, labels)
    gm = m @ m.T
    norms = np.linalg.norm(m, axis=1)
    u = m / norms[:, None]
    cos = np.clip(u @ u.T, -1.0, 1.0)
    iu = np.triu_indices(m.shape[0], 1)
    out: dict[str, Any] = {
        "delta_etf": class_mean_gram_distance(points, labels, "etf"),
        "delta_etf_centred": class_mean_gram_distance(points, labels, "etf", centred=True),
        "delta_of": class_mean_gram_distance(points, labels, "of"),
        "delta_w": None, "max_mean_to_prototype": None,
        "nc1": nc1(points, labels),
        "mean_norm_min": float(norms.min()), "mean_norm_max": float(norms.max()),
        "gram": gm.tolist(), "cosines": cos[iu].tolist(),
    }
    if prototypes is not None:
        w = prototypes / np.linalg.norm(prototypes, axis=1, keepdims=True)
        out["delta_w"] = class_mean_gram_distance(points, labels, w @ w.T)
        out["max_mean_to_prototype"] = float(np.max(np.linalg.norm(m - w, axis=1)))
    return out


# ----------------------------------------------------------------------------------------------
# one setting
# ----------------------------------------------------------------------------------------------
@dataclass
class SettingResult:
    """Best configuration of a setting, its geometry and the solver record."""

    points: np.ndarray
    labels: np.ndarray
    prototypes: np.ndarray | None
    value: float
    grad_norm: float
    success: bool
    hits: int
    restarts: int
    all_values: list[float]
    geometry: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)

    def record(self, keep_points: bool = False) -> dict[str, Any]:
        """JSON-able summary (points only when asked)."""
        out = {"value": self.value, "grad_norm": self.grad_norm, "success": self.success, "hits": self.hits,
               "restarts": self.restarts, "all_values": list(self.all_values), **self.settings, **self.geometry}
        if keep_points:
            out["points"] = self.points.tolist()
        return out


@dataclass
class SearchResult:
    """Best local solve of a multi-start search: points (loss rows), value, stationarity, hit count."""

    points: np.ndarray
    fun: float
    grad_norm: float
    success: bool
    hits: int
    all_values: list[float]


def multistart(problem: SphereProblem, restarts: int, seed: int, *, gtol: float = 1e-10, max_iter: int = 20000,
               polish_steps: int = 30, hit_atol: float = 1e-9, hit_rtol: float = 1e-11) -> SearchResult:
    """``restarts`` local solves from the starts of :func:`solvers.sphere_solver.solve`'s multistart
    (``problem.random_start(default_rng([seed, r]))``, so the same seed gives the same runs), with
    the local options of :func:`~solvers.sphere_solver.local_solve` exposed: ``polish_steps`` caps the
    Newton polish, which dominates the cost on the degenerate mini-batch problems of §4 C12 (their
    minimisers are not isolated, T3).  ``hits`` counts values within hit_atol + hit_rtol |best|."""
    restarts = check_int(restarts, "restarts", 1)
    seed = check_int(seed, "seed", 0)
    with blas_limit(1):
        runs = [local_solve(problem, problem.random_start(np.random.default_rng([seed, r])), gtol=gtol,
                            max_iter=max_iter, polish_steps=polish_steps) for r in range(restarts)]
    best = min(runs, key=lambda r: r.fun)
    tol = hit_atol + hit_rtol * abs(best.fun)
    return SearchResult(problem.expand(best.points), float(best.fun), float(best.grad_norm), bool(best.success),
                        sum(r.fun <= best.fun + tol for r in runs), [float(r.fun) for r in runs])


def solve_setting(class_sizes: object, dim: int, tau: float, *, prototypes: str | np.ndarray | None = None,
                  copies: int = 0, anchors: bool = False, nonnegative: bool = False,
                  batches: str | list | None = None, restarts: int = 5, seed: int = 0,
                  collapsed: bool = False, gtol: float = 1e-10, max_iter: int = 20000,
                  polish_steps: int = 30) -> SettingResult:
    """Minimise sum_B L_B (SupCon, or SCL+P with ``copies`` = n_w copies of ``prototypes`` under
    P-anchor when ``anchors``) over free unit rows (non-negative when ``nonnegative``) in R^dim.

    ``batches``: None / ``"full"`` (one batch), ``"random:b[xR][:bind]"`` (seeded with ``seed``), a
    JSON file, or a list of index lists.  ``collapsed=True`` minimises over class-collapsed
    configurations only (one free point per class, the rows of class c all equal to it): the
    collapse ansatz, used to test whether collapse is optimal.  ``gtol``, ``max_iter`` and
    ``polish_steps`` go to :func:`solvers.sphere_solver.local_solve` (see :func:`multistart`).
    """
    labels = labels_from_sizes(class_sizes)
    k = int(labels.max()) + 1
    dim = check_int(dim, "dim", 1)
    tau = check_positive(tau, "tau")
    if isinstance(prototypes, str):
        w = prototype_matrix(prototypes, k, dim, seed)
    elif prototypes is None:
        w = None
    else:
        w = check_points(prototypes, "prototypes")
        w = w / np.linalg.norm(w, axis=1, keepdims=True)
    n_w = check_int(copies, "copies", 0)
    if n_w and w is None:
        raise ValueError("prototypes must be given (etf, of, block, random or an array) when copies >= 1")
    if batches is None or isinstance(batches, str):
        fam = batches_from_spec(batches or "full", labels, seed)
    else:
        fam = batches
    loss = batched_loss(labels, fam, tau, w, n_w, anchors)
    target = RowSubset(loss, labels, k) if collapsed else loss
    problem = SphereProblem(target, dim, nonnegative=nonnegative)
    res = multistart(problem, restarts, seed, gtol=gtol, max_iter=max_iter, polish_steps=polish_steps)
    points = res.points[labels] if collapsed else res.points
    settings = {"class_sizes": [int(c) for c in np.bincount(labels)], "dim": dim, "tau": tau, "copies": n_w,
                "anchors": bool(anchors) if n_w else None, "nonnegative": bool(nonnegative),
                "batches": len(fam), "collapsed_ansatz": bool(collapsed), "seed": seed}
    return SettingResult(points, labels, w, res.fun, res.grad_norm, res.success, res.hits, restarts,
                         res.all_values, geometry(points, labels, w if n_w else None), settings)


# ----------------------------------------------------------------------------------------------
# the per-class limit solver (T4)
# ----------------------------------------------------------------------------------------------
def limit_minimiser(prototypes: np.ndarray, label: int, tau: float, anchors: bool = False,
                    nonnegative: bool = False, restarts: int = 4, seed: int = 0) -> tuple[np.ndarray, float, bool]:
    """argmin over unit h (h >= 0 when ``nonnegative``) of F^CE_y (``anchors=False``) or F^anc_y
    (T4 [DER]); returns (h*, F_y(h*), converged)."""
    w = check_points(prototypes, "prototypes")
    y = check_int(label, "label", 0, w.shape[0] - 1)
    loss = prototype_limit_loss(np.array([y]), w, tau, anchors)
    res = multistart(SphereProblem(loss, w.shape[1], nonnegative=nonnegative), restarts, seed, gtol=1e-12)
    return res.points[0], res.fun, res.success


def limit_gram(prototypes: np.ndarray, tau: float, anchors: bool = False, nonnegative: bool = False,
               restarts: int = 4, seed: int = 0) -> np.ndarray:
    """Predicted limit Gram G_ij = h*_i.h*_j of the per-class limit minimisers (T4)."""
    w = check_points(prototypes, "prototypes")
    h = np.vstack([limit_minimiser(w, y, tau, anchors, nonnegative, restarts, seed)[0] for y in range(w.shape[0])])
    return h @ h.T


# ----------------------------------------------------------------------------------------------
# sweeps (figures run their grids through these)
# ----------------------------------------------------------------------------------------------
_SETTING_PARAMS: list[Param] = [
    Choice("sizes", ("5-5-5-5", "3-3-3-3", "10-10-2-2", "20-20-4-4"), "10-10-2-2",
           help="class sizes n_1-...-n_K (dash-separated: commas separate grid values)"),
    Int("dim", 8, low=1, help="ambient dimension d"),
    Float("tau", 0.1, low=0.0, low_open=True, help="temperature"),
    Choice("prototypes", PROTOTYPE_KINDS, "etf", help="prototype geometry (prototypes.md §1.3)"),
    Int("copies", 0, low=0, help="prototype copies n_w per class in every batch (0: plain SupCon)"),
    Bool("anchors", False, help="prototype copies are anchors (P-anchor); else P-passive"),
    Bool("nonnegative", False, help="UFM+ (entry-wise non-negative features)"),
    Choice("batches", ("full", "random:8x5", "random:16x5", "random:24x5", "random:48x5"), "full",
           help="batch family: full batch or the union of 5 random partitions into batches of b"),
    Int("restarts", 4, low=1, help="random restarts of the sphere solver"),
    Int("max_iter", 20000, low=1, help="L-BFGS iterations per local solve"),
    Int("polish_steps", 30, low=0, help="Newton polish steps per local solve (2 for the degenerate mini-batch runs)"),
]


@experiment("proto-geometry", params=_SETTING_PARAMS, version="3",
            description="SupCon / SCL+P minimiser geometry (Delta_ETF, Delta_OF, Delta_W, NC1, class-mean Gram) "
            "for one prototype / mini-batch setting (prototypes.md §4)")
def proto_geometry(*, sizes: str, dim: int, tau: float, prototypes: str, copies: int, anchors: bool,
                   nonnegative: bool, batches: str, restarts: int, max_iter: int, polish_steps: int,
                   seed: int) -> dict[str, Any]:
    """:func:`solve_setting` as a sweep task (``seed`` seeds the solver and the random batches)."""
    res = solve_setting([int(s) for s in sizes.split("-")], dim, tau, prototypes=prototypes if copies else None,
                        copies=copies, anchors=anchors, nonnegative=nonnegative, batches=batches,
                        restarts=restarts, seed=seed, max_iter=max_iter, polish_steps=polish_steps)
    return res.record()


#: Named settings of the Gram heat-maps (prototypes.md §4 C6, C7, C8, C11): keyword arguments of
#: :func:`solve_setting` plus the prototype geometry whose Gram G_W is the target.
PRESETS: dict[str, dict[str, Any]] = {
    "etf-imbalanced-anchor": dict(class_sizes=[10, 10, 2, 2], tau=0.1, prototypes="etf", copies=10, anchors=True),
    "of-passive": dict(class_sizes=[5, 5, 5, 5], tau=0.5, prototypes="of", copies=1000, anchors=False),
    "of-anchor": dict(class_sizes=[5, 5, 5, 5], tau=0.1, prototypes="of", copies=1000, anchors=True),
    "of-nonneg": dict(class_sizes=[10, 10, 2, 2], tau=0.1, prototypes="of", copies=10, anchors=True,
                      nonnegative=True),
    "block-nonneg-anchor": dict(class_sizes=[5, 5, 5, 5], tau=0.1, prototypes="block", copies=100, anchors=True,
                                nonnegative=True),
    "block-anchor": dict(class_sizes=[5, 5, 5, 5], tau=0.1, prototypes="block", copies=100, anchors=True),
    "block-passive": dict(class_sizes=[5, 5, 5, 5], tau=0.5, prototypes="block", copies=1000, anchors=False),
}


@experiment("proto-preset", params=[Choice("setting", tuple(PRESETS), "of-passive", help="named setting"),
                                    Int("dim", 8, low=4, help="ambient dimension"),
                                    Int("restarts", 2, low=1, help="random restarts")],
            version="1", description="one named prototype setting (heat-maps of G_M next to G_W)")
def proto_preset(*, setting: str, dim: int, restarts: int, seed: int) -> dict[str, Any]:
    """:func:`solve_setting` on a :data:`PRESETS` entry; adds the prototypes' Gram ``gram_w``."""
    kw = dict(PRESETS[setting])
    sizes, tau = kw.pop("class_sizes"), kw.pop("tau")
    res = solve_setting(sizes, dim, tau, restarts=restarts, seed=seed, **kw)
    assert res.prototypes is not None
    out = res.record()
    out["gram_w"] = (res.prototypes @ res.prototypes.T).tolist()
    out["setting"] = setting
    return out


@experiment("proto-limit", params=[
    Choice("prototypes", ("etf", "of", "block"), "of", help="prototype geometry"),
    Int("K", 4, low=2, help="classes"), Int("dim", 8, low=2, help="ambient dimension"),
    Float("tau", 0.5, low=0.0, low_open=True, help="temperature"),
    Bool("anchors", False, help="P-anchor limit F^anc (else P-passive F^CE)"),
    Bool("nonnegative", False, help="non-negative sphere")], seeded=True, version="1",
    description="per-class minimisers of the n_w -> infinity limit objectives (prototypes.md T4-T6) and their Gram")
def proto_limit(*, prototypes: str, K: int, dim: int, tau: float, anchors: bool, nonnegative: bool,
                seed: int) -> dict[str, Any]:
    """:func:`limit_gram` plus Delta(G, G_W) as a sweep task."""
    w = prototype_matrix(prototypes, K, dim, seed)
    assert w is not None
    g = limit_gram(w, tau, anchors, nonnegative, seed=seed)
    gw = w @ w.T
    delta = float(np.linalg.norm(g / np.linalg.norm(g) - gw / np.linalg.norm(gw)))
    return {"gram": g.tolist(), "delta_w": delta}


# ----------------------------------------------------------------------------------------------
# a small encoder trained with SCL+P (check PROTO-C16, the torch path)
# ----------------------------------------------------------------------------------------------
def train_encoder(copies: int, *, sizes: tuple[int, ...] = (40, 40, 8, 8), input_dim: int = 16, hidden: int = 64,
                  dim: int = 8, tau: float = 0.1, steps: int = 400, lr: float = 1e-2, noise: float = 1.0,
                  anchors: bool = True, seed: int = 0) -> dict[str, Any]:
    """Train an MLP encoder (input_dim -> hidden (tanh) -> dim, float64, Adam, full batch) on a seeded
    Gaussian-mixture data set with class sizes ``sizes`` under SupCon (``copies = 0``) or SCL+P with
    ``copies`` ETF prototype copies (P-anchor when ``anchors``), through the torch version of the
    library loss (:func:`solvers.torch_path.to_torch`); report Delta(G_M, G_W) and NC1 of the
    normalised training features (prototypes.md §3.1 [UNVERIFIED] setting, claim [ABS]).

    Data: class means N(0, I) in R^input_dim (``default_rng(seed)``), samples mean + noise N(0, I).
    Raises ImportError when torch is missing.
    """
    import torch

    from .losses import protosupcon, supcon
    from .torch_path import to_torch

    n_w = check_int(copies, "copies", 0)
    steps = check_int(steps, "steps", 1)
    labels = labels_from_sizes(list(sizes))
    k = len(sizes)
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((k, input_dim))
    x = means[labels] + noise * rng.standard_normal((labels.size, input_dim))
    w = etf_prototypes(k, dim)
    loss_np = (protosupcon(labels, w, n_w, tau, prototypes_as_anchors=anchors) if n_w
               else supcon(labels, tau))
    loss = to_torch(loss_np)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny dense products: one thread is ~25x faster than a contended pool
    try:
        return _train(torch, loss, labels, x, w, n_w, input_dim, hidden, dim, steps, lr, seed, sizes, tau, anchors)
    finally:
        torch.set_num_threads(threads)


def _train(torch: Any, loss: Any, labels: np.ndarray, x: np.ndarray, w: np.ndarray, n_w: int, input_dim: int,
           hidden: int, dim: int, steps: int, lr: float, seed: int, sizes: tuple[int, ...], tau: float,
           anchors: bool) -> dict[str, Any]:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(input_dim, hidden), torch.nn.Tanh(),
                              torch.nn.Linear(hidden, dim)).to(torch.float64)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xt = torch.as_tensor(x, dtype=torch.float64)
    for _ in range(steps):
        opt.zero_grad()
        val = loss(net(xt), mode="dense")
        val.backward()
        opt.step()
    with torch.no_grad():
        z = net(xt).numpy()
    geo = geometry(z, labels, w)
    return {"copies": n_w, "delta_w": geo["delta_w"], "nc1": geo["nc1"], "delta_etf": geo["delta_etf"],
            "final_loss": float(val.detach()),
            "setting": f"sizes {list(sizes)}, MLP {input_dim}-{hidden}-{dim} tanh, Adam lr {lr}, {steps} full-batch "
                       f"steps, tau {tau}, ETF prototypes, {'P-anchor' if anchors else 'P-passive'}"}
