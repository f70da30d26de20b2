"""Minimise the asymptotic (uniformity) objectives directly over N points, for growing N.

Spec: ``shared/spec/dhel_kcl.md`` §5 (T6: the limits; T8: KCL's expected loss; T9: sigma_d is the
unique minimiser of the continuous energy), §7 (metrics) and the issue's "minimising the
asymptotic objective directly".  As N grows the minimiser of the empirical objective should
approach sigma_d: its pair-similarity law tends to p_d (W1unif falls), its effective rank (RankMe,
uncentred, dhel_kcl.md §7.4) tends to d, and its value tends to the closed-form asymptote.

Objectives (aligned views, V = U, so only the uniformity part remains):

- ``"uniformity"``  log mean_{i<j} exp(-t |z_i - z_j|^2)          (Wang-Isola, §7.2; asymptote
  -2t + log 0F1(; d/2; t^2));
- ``"kcl"``         -2 + 2 gamma mean_{i<j} exp(-t |z_i - z_j|^2) (KCL code form at V = U, §3.1;
  asymptote -2 + 2 gamma e^{-2t} 0F1(; d/2; t^2), T8);
- ``"dhel"``        -1/tau + mean_i log sum_{j != i} e^{z_i.z_j/tau} - log(N - 1)
  (DHEL paper form at V = U minus its normaliser, T6; asymptote A(d, tau)).

The pair sums are evaluated in row blocks, so memory is O(N * block) instead of O(N^2) (the
numpy stand-in for the torch issue's blockwise path; that path had not landed when this was
written).  Minimisation is the sphere solver's local L-BFGS (:func:`solvers.sphere_solver.local_solve`)
from seeded uniform starts.  The asymptotes themselves live in :mod:`theory.asymptotics`; this
module does not import ``theory`` (DESIGN.md layering) and takes the asymptote as a number.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .base import SphereLoss
from .metrics import rankme, w1_uniformity
from .sphere_law import uniform_points
from .sphere_solver import SphereProblem, local_solve
from .validation import check_choice, check_int, check_positive

__all__ = [
    "OBJECTIVES",
    "BlockGaussianMean",
    "BlockLogSumEnergy",
    "AsymptoticObjective",
    "AsymptoticResult",
    "minimise_asymptotic",
    "convergence_study",
    "fit_rate",
    "batch_configuration_metrics",
]

OBJECTIVES = ("uniformity", "kcl", "dhel")
_BLOCK_ELEMS = 1 << 21  # about 16 MB of float64 per block matrix


def _block_rows(n: int, block: int | None) -> int:
    return max(1, min(n, block if block is not None else _BLOCK_ELEMS // max(n, 1)))


class BlockGaussianMean(SphereLoss):
    """P(Z) = mean_{i<j} exp(-t |z_i - z_j|^2) and dP/dZ, in row blocks.

    dP/dz_i = (1/C(N,2)) sum_{j != i} 2t exp(-t r_ij^2) z_j  (r^2 = 2 - 2 z_i.z_j, clamped at 0).
    """

    def __init__(self, n: int, t: float = 2.0, block: int | None = None) -> None:
        self.n_points = check_int(n, "n", 2)
        self.t = check_positive(t, "t")
        self.block = block
        self.name = "gaussian-mean"

    def value_and_grad_unit(self, unit: np.ndarray) -> tuple[float, np.ndarray]:
        n = unit.shape[0]
        pairs = n * (n - 1) / 2.0
        step = _block_rows(n, self.block)
        total = 0.0
        grad = np.empty_like(unit)
        for start in range(0, n, step):
            stop = min(n, start + step)
            sim = unit[start:stop] @ unit.T
            k = np.exp(-self.t * np.maximum(2.0 - 2.0 * sim, 0.0))
            k[np.arange(stop - start), np.arange(start, stop)] = 0.0
            total += float(k.sum())
            grad[start:stop] = (2.0 * self.t / pairs) * (k @ unit)
        return total / (2.0 * pairs), grad

    def describe(self) -> dict:
        return {"name": self.name, "n": self.n_points, "t": self.t}


class BlockLogSumEnergy(SphereLoss):
    """E(Z) = mean_i log sum_{j != i} exp(z_i.z_j / tau) (the DHEL energy E_tau, T2), in row blocks.

    With w_ij the row softmax (w_ii = 0): dE/dz_i = (1/(N tau)) sum_j (w_ij + w_ji) z_j.
    """

    def __init__(self, n: int, tau: float = 0.5, block: int | None = None) -> None:
        self.n_points = check_int(n, "n", 2)
        self.tau = check_positive(tau, "tau")
        self.block = block
        self.name = "logsum-energy"

    def value_and_grad_unit(self, unit: np.ndarray) -> tuple[float, np.ndarray]:
        n = unit.shape[0]
        step = _block_rows(n, self.block)
        total = 0.0
        grad = np.zeros_like(unit)
        for start in range(0, n, step):
            stop = min(n, start + step)
            logits = (unit[start:stop] @ unit.T) / self.tau
            rows = np.arange(stop - start)
            logits[rows, np.arange(start, stop)] = -np.inf
            mx = logits.max(axis=1, keepdims=True)
            e = np.exp(logits - mx)
            s = e.sum(axis=1, keepdims=True)
            total += float(np.sum(mx[:, 0] + np.log(s[:, 0])))
            w = e / s
            grad[start:stop] += w @ unit
            grad += w.T @ unit[start:stop]
        return total / n, grad / (n * self.tau)

    def describe(self) -> dict:
        return {"name": self.name, "n": self.n_points, "tau": self.tau}


class AsymptoticObjective(SphereLoss):
    """One of :data:`OBJECTIVES` on N unit points (module docstring for the formulas)."""

    def __init__(self, kind: str, n: int, t: float = 2.0, gamma: float = 16.0, tau: float = 0.5,
                 block: int | None = None) -> None:
        self.kind = check_choice(kind, "kind", OBJECTIVES)
        self.n_points = check_int(n, "n", 2)
        self.gamma = check_positive(gamma, "gamma")
        self.name = f"asymptotic-{self.kind}"
        if self.kind == "dhel":
            self.inner: SphereLoss = BlockLogSumEnergy(n, tau, block)
            self.params = {"tau": float(tau)}
        else:
            self.inner = BlockGaussianMean(n, t, block)
            self.params = {"t": float(t)} if self.kind == "uniformity" else {"t": float(t), "gamma": self.gamma}

    def value_and_grad_unit(self, unit: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = self.inner.value_and_grad_unit(unit)
        if self.kind == "uniformity":
            if v <= 0.0:
                return math.inf, np.zeros_like(unit)
            return math.log(v), g / v
        if self.kind == "kcl":
            return -2.0 + 2.0 * self.gamma * v, 2.0 * self.gamma * g
        tau = self.params["tau"]
        return -1.0 / tau + v - math.log(self.n_points - 1), g

    def describe(self) -> dict:
        return {"name": self.name, "n": self.n_points, **self.params}


@dataclass
class AsymptoticResult:
    """One minimisation: the points, their value, and the convergence metrics."""

    kind: str
    n: int
    dim: int
    value: float
    start_value: float
    grad_norm: float
    w1: float
    w1_start: float
    erank: float
    erank_start: float
    nit: int
    seconds: float
    success: bool
    message: str
    params: dict = field(default_factory=dict)
    points: np.ndarray | None = None

    def summary(self) -> dict:
        """Every field except the points (for JSON)."""
        return {k: v for k, v in self.__dict__.items() if k != "points"}


def minimise_asymptotic(kind: str, n: int, dim: int, *, seed: int = 0, t: float = 2.0, gamma: float = 16.0,
                        tau: float = 0.5, gtol: float = 1e-8, max_iter: int = 100, block: int | None = None,
                        start: np.ndarray | None = None, keep_points: bool = False) -> AsymptoticResult:
    """Minimise the objective ``kind`` over ``n`` points on S^{dim-1} by L-BFGS from a seeded uniform
    start (or ``start``), and measure W1unif (exact, p_dim), the RankMe effective rank and the value.

    ``gtol`` is the relative Riemannian-gradient tolerance of :func:`local_solve`.  The landscape
    is very flat in its high-frequency directions (the Gaussian kernel's high-degree Gegenbauer
    coefficients are tiny, T9), so the gradient tolerance is rarely met; ``max_iter`` bounds the
    work and the record says whether the tolerance was met.  Measured at N = 400, d = 3, t = 2:
    (N - 1)(value - asymptote) is -7.06379 after 20 iterations, -7.06484 after 100 and -7.06486
    after 1500, so the default 100 iterations fix the value to about 1e-7 relative.
    """
    n = check_int(n, "n", 2)
    dim = check_int(dim, "dim", 2)
    seed = check_int(seed, "seed", 0)
    obj = AsymptoticObjective(kind, n, t, gamma, tau, block)
    z0 = uniform_points(n, dim, np.random.default_rng([seed, n, dim])) if start is None else start
    problem = SphereProblem(obj, dim)
    z0 = problem.check_start(z0)
    begin = time.perf_counter()
    start_value = obj.value_and_grad_unit(z0)[0]
    res = local_solve(problem, z0, gtol=gtol, max_iter=max_iter, polish_rounds=3, polish_steps=0)
    seconds = time.perf_counter() - begin
    return AsymptoticResult(
        kind=kind, n=n, dim=dim, value=float(res.fun), start_value=float(start_value),
        grad_norm=float(res.grad_norm), w1=w1_uniformity(res.points), w1_start=w1_uniformity(z0),
        erank=rankme(res.points), erank_start=rankme(z0), nit=int(res.nit), seconds=seconds, success=bool(res.success),
        message=res.message, params=obj.params, points=res.points if keep_points else None,
    )


def fit_rate(ns: Sequence[float], errors: Sequence[float]) -> dict[str, float]:
    """Least-squares fit log err = log C + p log N; returns {"exponent": p, "constant": C, "r2": R^2}.

    The measured convergence rate is N^p (p < 0 for convergence)."""
    x = np.log(np.asarray(ns, dtype=np.float64))
    err = np.asarray(errors, dtype=np.float64)
    if x.size < 2 or x.size != err.size:
        raise ValueError("ns and errors must have the same length >= 2")
    if np.any(err <= 0) or not np.all(np.isfinite(err)):
        raise ValueError("errors must be finite and > 0 to fit a power law")
    y = np.log(err)
    p, c = np.polyfit(x, y, 1)
    resid = y - (p * x + c)
    ss = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss if ss > 0 else 1.0
    return {"exponent": float(p), "constant": float(math.exp(c)), "r2": r2}


def convergence_study(kind: str, ns: Sequence[int], dim: int, *, asymptote: float | None = None,
                      seed: int = 0, progress=None, **options) -> dict:
    """Minimise ``kind`` for each N in ``ns`` and fit the rates at which W1unif, d - erank and
    |value - asymptote| fall with N (``asymptote``: the closed form, from :mod:`theory.asymptotics`).

    Returns {"rows": [per-N summaries + "gap"], "rates": {"w1": ..., "w1_start": ..., "erank_gap":
    ..., "erank_gap_start": ..., "value_gap": ...}} with power-law fits from :func:`fit_rate`
    (omitted when a quantity is below 1e-12, i.e. at round-off, at some N).
    """
    rows = []
    for i, n in enumerate(ns):
        res = minimise_asymptotic(kind, int(n), dim, seed=seed, **options)
        row = res.summary()
        row["erank_gap"] = dim - res.erank
        row["erank_gap_start"] = dim - res.erank_start
        if asymptote is not None:
            row["asymptote"] = float(asymptote)
            row["gap"] = res.value - float(asymptote)
        rows.append(row)
        if progress is not None:
            progress(i + 1, row)
    rates = {}
    ns_f = [r["n"] for r in rows]
    series = {"w1": [r["w1"] for r in rows], "w1_start": [r["w1_start"] for r in rows],
              "erank_gap": [r["erank_gap"] for r in rows], "erank_gap_start": [r["erank_gap_start"] for r in rows]}
    if asymptote is not None:
        series["value_gap"] = [abs(r["gap"]) for r in rows]
    for key, vals in series.items():
        # gaps at round-off level (< 1e-12, e.g. d - erank of a 2-design) have no rate to fit
        if len(vals) >= 2 and all(v > 1e-12 and math.isfinite(v) for v in vals):
            rates[key] = fit_rate(ns_f, vals)
    return {"kind": kind, "dim": dim, "rows": rows, "rates": rates}


def batch_configuration_metrics(loss: SphereLoss, instances: int, dim: int, *, restarts: int = 1, seed: int = 0,
                                gtol: float = 1e-8, max_iter: int = 2000, tied: bool = False,
                                start: str = "aligned") -> dict:
    """Minimise a two-view batch loss over M pairs in R^dim (sphere solver, seeded multistart) and
    measure the optimised configuration as dhel_kcl.md §8 F1-F2 do for trained encoders: RankMe
    effective rank and exact W1unif (p_dim) of U, Wang-Isola alignment of (U, V) and min_i u_i.v_i.

    ``start="aligned"`` (default) starts every restart from V = U + 1e-3 noise with U uniform, the
    remedy of dhel_kcl.md §9.8 (random starts leave KCL with large t at permuted, misaligned local
    minima: min u.v = -0.53 measured at M = 8, d = 16, t = 8); ``"random"``: independent U and V.
    """
    from .metrics import alignment
    from .sphere_solver import minimize_loss

    m = check_int(instances, "instances", 2)
    dim = check_int(dim, "dim", 2)
    restarts = check_int(restarts, "restarts", 1)
    check_choice(start, "start", ("aligned", "random"))
    starts = []
    if start == "aligned" and not tied:
        for r in range(restarts):
            rng = np.random.default_rng([seed, 11, r])
            u0 = uniform_points(m, dim, rng)
            starts.append(np.vstack([u0, u0 + 1e-3 * rng.standard_normal(u0.shape)]))
    res = minimize_loss(loss, dim, views=2, tied=tied, restarts=restarts, seed=seed, starts=starts,
                        gtol=gtol, max_iter=max_iter)
    u, v = res.points[:m], res.points[m:]
    return {"value": float(res.fun), "erank": rankme(u), "w1": w1_uniformity(u), "alignment": alignment(u, v),
            "min_uv": float(np.min(np.sum(u * v, axis=1))), "hits": int(res.hits), "restarts": int(res.restarts),
            "success": bool(res.success), "seconds": float(res.seconds)}
