"""The two loss templates of DESIGN.md, as functions of the similarity matrix S.

1. Log-sum-exp contrastive template (InfoNCE, SimCLR, DCL, DHEL, SupCon, SSEM mixture,
   prototype-augmented SupCon, CE with a fixed classifier)::

       L(S) = c0 + (1/D) [ - sum_ij P_ij S_ij / tau
                           + sum_g sum_r c_g[r] * log sum_j exp(S_rj / tau + B_g[r, j]) ]

   P is the positive-weight matrix, each group g has row coefficients c_g and a log-weight
   matrix B_g (``-inf`` = excluded column; ``log m`` = a column standing for m identical copies,
   which keeps prototype copies at O(1) cost).  dL/dS_rj = (1/D) [-P_rj + sum_g c_g[r] w_g[r, j]] / tau
   with w_g the row softmax.  Every log-sum-exp is max-shifted, so tau down to 1e-3 stays finite
   (anchors.md REQ-3).

2. Pairwise kernel template (energies, KCL, uniformity, alignment)::

       L(S) = c0 + sum_terms scale * sum_ij W_ij k(S_ij)         (outer = "none")
       L(S) = log( sum_ij W_ij exp(logk(S_ij)) )                  (outer = "log", exp-type kernels)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from .base import GramLoss
from .kernels import Kernel


@dataclass
class LseGroup:
    """One log-sum-exp group: row coefficients ``coef`` (N,) and log-weights ``logw`` (N, N)."""

    coef: np.ndarray
    logw: np.ndarray

    def __post_init__(self) -> None:
        self.rows = np.flatnonzero(self.coef != 0.0)
        empty = ~np.any(np.isfinite(self.logw[self.rows]), axis=1)
        if np.any(empty):
            raise ValueError(
                f"log-sum-exp group has an empty denominator for row {int(self.rows[empty][0])}"
            )


@dataclass
class LogSumExpLoss(GramLoss):
    """Template 1 (see module docstring)."""

    positives: np.ndarray
    groups: list[LseGroup]
    tau: float
    denominator: float
    constant: float = 0.0
    n_points: int | None = None
    fixed: np.ndarray | None = None
    name: str = "lse"
    params: dict = field(default_factory=dict)

    def value_and_grad_gram(self, sim: np.ndarray) -> tuple[float, np.ndarray]:
        inv_tau = 1.0 / self.tau
        logits = sim * inv_tau
        total = -float(np.sum(self.positives * logits))
        g_sim = -self.positives.copy()
        for grp in self.groups:
            rows = grp.rows
            shifted = logits[rows] + grp.logw[rows]
            row_max = np.max(shifted, axis=1, keepdims=True)
            expd = np.exp(shifted - row_max)
            sums = np.sum(expd, axis=1, keepdims=True)
            lse = row_max[:, 0] + np.log(sums[:, 0])
            c = grp.coef[rows]
            total += float(np.dot(c, lse))
            g_sim[rows] += c[:, None] * (expd / sums)
        scale = 1.0 / self.denominator
        return self.constant + total * scale, g_sim * (scale * inv_tau)

    def describe(self) -> dict:
        return {"name": self.name, "tau": self.tau, **self.params}


@dataclass
class KernelTerm:
    """sum_ij weights_ij * kernel(S_ij), multiplied by ``scale``."""

    weights: np.ndarray
    kernel: Kernel
    scale: float = 1.0


@dataclass
class PairKernelLoss(GramLoss):
    """Template 2 (see module docstring)."""

    terms: list[KernelTerm]
    outer: str = "none"
    constant: float = 0.0
    n_points: int | None = None
    fixed: np.ndarray | None = None
    name: str = "kernel"
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outer not in ("none", "log"):
            raise ValueError(f"outer must be 'none' or 'log'; got {self.outer!r}")
        if self.outer == "log" and len(self.terms) != 1:
            raise ValueError("outer='log' takes exactly one kernel term")
        self._support = [np.nonzero(t.weights) for t in self.terms]

    def value_and_grad_gram(self, sim: np.ndarray) -> tuple[float, np.ndarray]:
        g_sim = np.zeros_like(sim)
        if self.outer == "log":
            (term,) = self.terms
            idx = self._support[0]
            logk = term.kernel.log_value(sim[idx])
            a = logk + np.log(term.weights[idx])
            lse = float(logsumexp(a))
            soft = np.exp(a - lse)
            g_sim[idx] = soft * term.kernel.dlog_ds(sim[idx])
            return self.constant + term.scale * lse, term.scale * g_sim
        total = self.constant
        for term, idx in zip(self.terms, self._support, strict=True):
            s = sim[idx]
            w = term.weights[idx]
            total += term.scale * float(np.sum(w * term.kernel.value(s)))
            g_sim[idx] += term.scale * w * term.kernel.deriv(s)
        return total, g_sim

    def describe(self) -> dict:
        return {"name": self.name, **self.params}
