"""cvxpy expressions of the Gram matrix, built from the loss templates (DESIGN.md, "Certificates").

Every loss of the two templates of :mod:`solvers.templates` is a function of the similarity matrix
S = Zf Zf^T of the loss rows (free rows, then fixed prototype rows).  This module turns the
*same* template objects -- their positive-weight matrix ``P``, log-weight matrices ``logw``,
kernel weight matrices ``W`` -- into a cvxpy expression of a Gram variable, so that the convex
relaxation and the numeric path share one definition (no loss is re-implemented here):

- :class:`~solvers.templates.LogSumExpLoss` (dhel_kcl.md T5, ssem.md §2.5)::

      L(G) = c0 + (1/D) [ -(1/tau) sum_ij P_ij G_ij
                          + sum_g sum_r c_g[r] log_sum_exp_{j: logw_g[r,j] > -inf}(G_rj/tau + logw_g[r,j]) ]

  convex iff every row with more than one *variable* column has c_g[r] >= 0 (a negative
  coefficient makes -log-sum-exp, which is concave: SupCon L_in's log-mean-exp over positives).
- :class:`~solvers.templates.PairKernelLoss`: sum_terms scale sum_ij W_ij k(G_ij), convex when each
  weighted kernel is (convex kernel with positive weight, concave kernel with negative weight,
  affine kernel with any weight); ``outer="log"`` with the Gaussian kernel is a log-sum-exp of
  affine functions (Wang-Isola uniformity).  Kernel curvature in s = <x, y> (x = 2 - 2 s):
  Gaussian exp(2ts - 2t) convex; Riesz s > 0: x^{-s/2} convex; Riesz s < 0: -x^{|s|/2} convex
  for |s| < 2, affine at |s| = 2, concave for |s| > 2; log -(1/2) log x convex; KCL's
  -c log(1 + t x) convex for c > 0; inverse multiquadric c (c^2 + x)^{-1/2} convex; distance
  power x^{a/2} concave for a < 2, affine at 2, convex for a > 2; linear affine; square convex.
- :class:`~solvers.base.SumLoss`: the weighted sum of its terms' expressions.

Structure of the Gram variable ``Gv`` (one row per *variable point*): free rows, optionally tied
(all views of an instance share one variable point, row = view * M + instance), then the fixed
rows.  Entries of S whose two rows share a variable point are the constant 1; entries between two
fixed rows are the constants F F^T; all others are entries of ``Gv``.  Constant entries are
evaluated numerically with the same kernel objects, which is what makes a concave term on
constrained-constant entries (KCL's alignment term with tied views, dhel_kcl.md T2/T5) harmless.
Provenance: dhel_kcl.md T5 [RECON], ssem.md §2.5 / §5.11 [DER+SDP].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import scipy.sparse as sps
from scipy.special import logsumexp

from .base import GramLoss, SphereLoss, SumLoss
from .kernels import (
    DistancePower,
    Gaussian,
    InverseMultiquadric,
    Kernel,
    Linear,
    Log,
    LogOnePlus,
    Riesz,
    Square,
)
from .templates import LogSumExpLoss, PairKernelLoss
from .validation import check_int


class NonConvexLossError(ValueError):
    """The loss is not a convex function of the Gram matrix; the message names the term."""


# ----------------------------------------------------------------------------------------------
# the Gram variable and its structure
# ----------------------------------------------------------------------------------------------
@dataclass
class GramStructure:
    """Map from loss rows (free rows, then fixed rows) to rows of the Gram variable ``Gv``.

    ``row_var[r]`` is the variable point of loss row r; free rows come first in ``Gv`` (``n_free_var``
    of them), then one row per fixed row.  ``fixed`` holds the fixed rows (or None).
    """

    n_free: int
    row_var: np.ndarray
    n_free_var: int
    fixed: np.ndarray | None
    nonnegative: bool = False
    tied: bool = False
    views: int = 1
    variable: cp.Variable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.n_fixed = 0 if self.fixed is None else int(self.fixed.shape[0])
        self.n_var = self.n_free_var + self.n_fixed
        self.fixed_gram = None if self.fixed is None else self.fixed @ self.fixed.T
        self.variable = cp.Variable((self.n_var, self.n_var), symmetric=True, name="G")
        self._vec = cp.vec(self.variable, order="F")

    @property
    def n_rows(self) -> int:
        """Loss rows: free rows plus fixed rows."""
        return self.n_free + self.n_fixed

    def constraints(self) -> list[cp.Constraint]:
        """G psd, unit diagonal on free points, fixed block = F F^T, and G >= 0 if non-negative."""
        g = self.variable
        cons: list[cp.Constraint] = [g >> 0, cp.diag(g)[: self.n_free_var] == 1.0]
        if self.n_fixed:
            f = slice(self.n_free_var, self.n_var)
            cons.append(g[f, f] == self.fixed_gram)
        if self.nonnegative:
            cons.append(g >= 0.0)
        return cons

    # -- entries of S as affine expressions ----------------------------------------------------
    def classify(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For entries S[rows, cols]: (is_variable, flat index into vec(Gv), constant value)."""
        vr, vc = self.row_var[rows], self.row_var[cols]
        const = np.zeros(rows.shape)
        both_fixed = (vr >= self.n_free_var) & (vc >= self.n_free_var)
        if np.any(both_fixed):
            off = self.n_free_var
            const[both_fixed] = self.fixed_gram[vr[both_fixed] - off, vc[both_fixed] - off]
        same = (vr == vc) & ~both_fixed
        const[same] = 1.0
        is_var = ~(both_fixed | same)
        lo, hi = np.minimum(vr, vc), np.maximum(vr, vc)
        return is_var, lo + self.n_var * hi, const

    def affine(self, rows: np.ndarray, cols: np.ndarray) -> tuple[cp.Expression | None, np.ndarray]:
        """(A vec(Gv) or None, b): the entries S[rows, cols] = A vec(Gv) + b."""
        is_var, flat, const = self.classify(rows, cols)
        if not np.any(is_var):
            return None, const
        m = rows.size
        sel = sps.csr_matrix((np.ones(int(is_var.sum())), (np.flatnonzero(is_var), flat[is_var])),
                             shape=(m, self.n_var * self.n_var))
        return sel @ self._vec, const

    def entries(self, rows: np.ndarray, cols: np.ndarray) -> cp.Expression | np.ndarray:
        """S[rows, cols] as one affine expression (or a constant array when nothing varies)."""
        expr, const = self.affine(rows, cols)
        return const if expr is None else expr + const

    def linear(self, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> tuple[cp.Expression | float,
                                                                                         float]:
        """sum_k weights_k S[rows_k, cols_k] = (variable part, constant part)."""
        is_var, flat, const = self.classify(rows, cols)
        c = float(np.dot(weights[~is_var], const[~is_var]))
        if not np.any(is_var):
            return 0.0, c
        coeff = np.bincount(flat[is_var], weights=weights[is_var], minlength=self.n_var * self.n_var)
        return coeff @ self._vec, c

    # -- numeric side ------------------------------------------------------------------------
    def full_gram(self, gv: np.ndarray) -> np.ndarray:
        """The similarity matrix S of all loss rows from a value of ``Gv`` (ties expanded)."""
        s = gv[np.ix_(self.row_var, self.row_var)].copy()
        if self.n_fixed:
            f = slice(self.n_free, self.n_rows)
            s[f, f] = self.fixed_gram
        return s


def gram_structure(loss: SphereLoss, *, views: int = 1, tied: bool = False,
                   nonnegative: bool = False) -> GramStructure:
    """The Gram variable for ``loss`` (see :class:`GramStructure`)."""
    n_free = loss.n_points
    if n_free is None:
        raise ValueError("loss must fix its number of rows (n_points) to be relaxed")
    views = check_int(views, "views", 1)
    fixed = _common_fixed(loss)
    if nonnegative and fixed is not None and np.any(fixed @ fixed.T < 0.0):
        raise ValueError("prototypes must have pairwise inner products >= 0 under nonnegative=True "
                         "(their Gram block is fixed and G >= 0 entrywise would be infeasible)")
    if tied:
        if n_free % views:
            raise ValueError(f"views ({views}) must divide the number of rows ({n_free}) to tie views")
        m = n_free // views
        free_var = np.arange(n_free) % m
    else:
        m, free_var = n_free, np.arange(n_free)
    n_fixed = 0 if fixed is None else fixed.shape[0]
    row_var = np.concatenate([free_var, m + np.arange(n_fixed)]).astype(int)
    return GramStructure(n_free, row_var, m, fixed, nonnegative, tied, views)


def _common_fixed(loss: SphereLoss) -> np.ndarray | None:
    """The fixed rows shared by every term of ``loss`` (terms without fixed rows are fine)."""
    if isinstance(loss, SumLoss):
        found = [f for f in (_common_fixed(t) for _, t in loss.terms) if f is not None]
        for f in found[1:]:
            if f.shape != found[0].shape or not np.array_equal(f, found[0]):
                raise ValueError("terms of a sum must share the same fixed rows (prototypes) to be relaxed")
        return found[0] if found else None
    if isinstance(loss, GramLoss):
        return None if loss.fixed is None else np.asarray(loss.fixed, dtype=np.float64)
    raise NonConvexLossError(
        f"loss {loss.name!r} ({type(loss).__name__}) is not a function of the Gram matrix, so it has "
        "no Gram relaxation (e.g. CLOP's manhattan distance depends on coordinates)"
    )


# ----------------------------------------------------------------------------------------------
# kernels: curvature in s and a DCP expression
# ----------------------------------------------------------------------------------------------
KernelForm = tuple[str, Callable[[cp.Expression], cp.Expression]]


def kernel_form(kernel: Kernel) -> KernelForm:
    """(curvature in s: "convex" | "concave" | "affine", s -> DCP expression of k(s))."""
    if isinstance(kernel, Gaussian):
        t = kernel.t
        return "convex", lambda s: cp.exp(2.0 * t * s - 2.0 * t)
    if isinstance(kernel, Riesz):
        if kernel.s > 0:
            a = kernel.s / 2.0
            return "convex", lambda s: cp.power(2.0 - 2.0 * s, -a)
        p = -kernel.s / 2.0
        if p == 1.0:
            return "affine", lambda s: -(2.0 - 2.0 * s)
        return ("convex" if p < 1.0 else "concave"), lambda s: -cp.power(2.0 - 2.0 * s, p)
    if isinstance(kernel, Log):
        return "convex", lambda s: -0.5 * cp.log(2.0 - 2.0 * s)
    if isinstance(kernel, LogOnePlus):
        t, c = kernel.t, kernel.c
        return ("convex" if c > 0 else "concave"), lambda s: -c * cp.log(1.0 + t * (2.0 - 2.0 * s))
    if isinstance(kernel, InverseMultiquadric):
        c = kernel.c
        return "convex", lambda s: c * cp.power(c * c + 2.0 - 2.0 * s, -0.5)
    if isinstance(kernel, DistancePower):
        p = kernel.alpha / 2.0
        if p == 1.0:
            return "affine", lambda s: 2.0 - 2.0 * s
        return ("convex" if p > 1.0 else "concave"), lambda s: cp.power(2.0 - 2.0 * s, p)
    if isinstance(kernel, Linear):
        return "affine", lambda s: s
    if isinstance(kernel, Square):
        return "convex", lambda s: cp.square(s)
    raise NonConvexLossError(f"kernel {kernel.name!r} ({type(kernel).__name__}) has no known convex form in G")


def _kernel_label(kernel: Kernel) -> str:
    return ", ".join(f"{k}={v}" for k, v in kernel.describe().items())


# ----------------------------------------------------------------------------------------------
# expressions of the templates
# ----------------------------------------------------------------------------------------------
@dataclass
class GramObjective:
    """The relaxation objective: ``expr`` (cvxpy, convex) plus the numeric ``constant``."""

    expr: cp.Expression | float
    constant: float
    terms: list[str]

    @property
    def total(self) -> cp.Expression:
        return self.expr + self.constant


def loss_expression(loss: SphereLoss, structure: GramStructure) -> GramObjective:
    """The convex cvxpy expression of ``loss`` in the Gram variable of ``structure``.

    Raises :class:`NonConvexLossError` naming the first term that is not convex in G.
    """
    if isinstance(loss, SumLoss):
        expr: cp.Expression | float = 0.0
        const, names = 0.0, []
        for k, (w, term) in enumerate(loss.terms):
            sub = loss_expression(term, structure) if w != 0 else GramObjective(0.0, 0.0, [])
            if w < 0 and not _is_affine(sub.expr):
                raise NonConvexLossError(
                    f"{loss.name}: term {k} ({term.name}) enters with weight {w} < 0 and is convex in G, "
                    "so the sum is not convex in the Gram matrix"
                )
            expr = expr + w * sub.expr
            const += w * sub.constant
            names += [f"{w:g} x {n}" for n in sub.terms]
        return GramObjective(expr, const, names)
    if isinstance(loss, LogSumExpLoss):
        return _lse_expression(loss, structure)
    if isinstance(loss, PairKernelLoss):
        return _kernel_expression(loss, structure)
    _common_fixed(loss)  # raises for non-Gram losses
    raise NonConvexLossError(f"loss {loss.name!r} ({type(loss).__name__}) is not one of the two templates")


def _is_affine(expr: cp.Expression | float) -> bool:
    return not isinstance(expr, cp.Expression) or expr.is_affine()


def _lse_expression(loss: LogSumExpLoss, st: GramStructure) -> GramObjective:
    n = loss.positives.shape[0]
    _check_size(loss.name, n, st)
    inv_tau = 1.0 / loss.tau
    scale = 1.0 / loss.denominator
    if scale <= 0:
        raise NonConvexLossError(f"{loss.name}: denominator {loss.denominator} <= 0 flips convexity")
    pr, pc = np.nonzero(loss.positives)
    lin_var, lin_const = st.linear(pr, pc, -inv_tau * loss.positives[pr, pc])
    expr: cp.Expression | float = lin_var
    const = lin_const
    names = ["-(1/tau) <P, G>"]
    for g, grp in enumerate(loss.groups):
        finite = np.isfinite(grp.logw)
        counts = finite[grp.rows].sum(axis=1)
        for k in np.unique(counts):
            rows = grp.rows[counts == k]
            coef = grp.coef[rows]
            rr = np.repeat(rows, k)
            cc = np.concatenate([np.flatnonzero(finite[r]) for r in rows])
            logw = grp.logw[rr, cc]
            is_var, _, cvals = st.classify(rr, cc)
            var_rows = is_var.reshape(rows.size, k).any(axis=1)
            bad = (coef < 0) & var_rows & (k > 1)
            if np.any(bad):
                r = int(rows[np.flatnonzero(bad)[0]])
                raise NonConvexLossError(
                    f"{loss.name}: log-sum-exp group {g} enters row {r} with coefficient {grp.coef[r]:g} < 0 "
                    f"over {k} variable columns; -log-sum-exp is concave in G (e.g. SupCon L_in's "
                    "log-mean-exp over the positives), so the loss is not convex in the Gram matrix"
                )
            # rows without variable entries: numeric constants
            fixed_rows = ~var_rows
            if np.any(fixed_rows):
                vals = (cvals * inv_tau + logw).reshape(rows.size, k)[fixed_rows]
                const += float(np.dot(coef[fixed_rows], logsumexp(vals, axis=1)))
            if not np.any(var_rows):
                continue
            keep = np.repeat(var_rows, k)
            x = st.entries(rr[keep], cc[keep])
            cv = coef[var_rows]
            logits = x * inv_tau + logw[keep]
            if k == 1:  # log-sum-exp of one entry is the entry itself: linear, any sign
                expr = expr + cv @ logits
            else:
                lse = cp.log_sum_exp(cp.reshape(logits, (int(var_rows.sum()), int(k)), order="C"), axis=1)
                expr = expr + cv @ lse
        names.append(f"group {g}: sum_r c_r LSE_r")
    return GramObjective(scale * expr, loss.constant + scale * const, names)


def _check_size(name: str, n: int, st: GramStructure) -> None:
    if n not in (st.n_free, st.n_rows):
        raise ValueError(f"{name}: template has {n} rows but the Gram structure has {st.n_free} free and "
                         f"{st.n_fixed} fixed rows")


def _kernel_expression(loss: PairKernelLoss, st: GramStructure) -> GramObjective:
    n = loss.terms[0].weights.shape[0]
    _check_size(loss.name, n, st)
    if loss.outer == "log":
        return _log_outer_expression(loss, st)
    expr: cp.Expression | float = 0.0
    const = loss.constant
    names = []
    for k, term in enumerate(loss.terms):
        rows, cols = np.nonzero(term.weights)
        w = term.scale * term.weights[rows, cols]
        is_var, _, cvals = st.classify(rows, cols)
        if np.any(~is_var):
            kv = term.kernel.value(cvals[~is_var])
            if not np.all(np.isfinite(kv)):
                raise ValueError(
                    f"{loss.name}: kernel term {k} ({_kernel_label(term.kernel)}) is infinite on entries forced "
                    "to coincide (tied views or duplicated fixed rows); the relaxation would be +inf"
                )
            const += float(np.dot(w[~is_var], kv))
        if not np.any(is_var):
            names.append(f"term {k}: constant")
            continue
        curv, form = kernel_form(term.kernel)
        for sign in (1.0, -1.0):
            part = is_var & (np.sign(w) == sign)
            if not np.any(part):
                continue
            ok = curv == "affine" or (curv == "convex") == (sign > 0)
            if not ok:
                r, c = int(rows[part][0]), int(cols[part][0])
                raise NonConvexLossError(
                    f"{loss.name}: kernel term {k} ({_kernel_label(term.kernel)}) has weight "
                    f"{'+' if sign > 0 else '-'}{abs(w[part][0]):g} on {int(part.sum())} variable entries "
                    f"(e.g. G[{r}, {c}]) and the kernel is {curv} in G there, so the term is "
                    f"{'concave' if curv == 'convex' else 'convex' if sign < 0 else 'concave'} "
                    "and the loss is not convex in the Gram matrix"
                    + (" (KCL's alignment term; tie the views, dhel_kcl.md T2/T5, to relax the energy only)"
                       if loss.name == "kcl" else "")
                )
            s = st.entries(rows[part], cols[part])
            expr = expr + w[part] @ form(s)
        names.append(f"term {k}: {_kernel_label(term.kernel)}")
    return GramObjective(expr, const, names)


def _log_outer_expression(loss: PairKernelLoss, st: GramStructure) -> GramObjective:
    (term,) = loss.terms
    if not isinstance(term.kernel, Gaussian):
        raise NonConvexLossError(
            f"{loss.name}: outer log of kernel {term.kernel.name!r} is not a log-sum-exp of affine functions of G"
        )
    rows, cols = np.nonzero(term.weights)
    w = term.weights[rows, cols]
    if np.any(w < 0) or term.scale < 0:
        raise NonConvexLossError(f"{loss.name}: outer log with negative weights or scale is not convex in G")
    t = term.kernel.t
    x = st.entries(rows, cols)
    logits = 2.0 * t * x - 2.0 * t + np.log(w)
    if isinstance(logits, np.ndarray):
        return GramObjective(0.0, loss.constant + term.scale * float(logsumexp(logits)), ["constant"])
    return GramObjective(term.scale * cp.log_sum_exp(logits), loss.constant,
                         [f"log-sum-exp: {_kernel_label(term.kernel)}"])


# ----------------------------------------------------------------------------------------------
# numeric value of a loss at a given similarity matrix (the cross-check of the expression)
# ----------------------------------------------------------------------------------------------
def gram_value(loss: SphereLoss, sim: np.ndarray) -> float:
    """The template's own value at the similarity matrix ``sim`` of all loss rows (numpy path)."""
    if isinstance(loss, SumLoss):
        return float(sum(w * gram_value(t, sim) for w, t in loss.terms))
    if isinstance(loss, GramLoss):
        n = loss.n_points + (0 if loss.fixed is None else loss.fixed.shape[0])
        return float(loss.value_and_grad_gram(sim[:n, :n])[0])
    raise NonConvexLossError(f"loss {loss.name!r} is not a function of the Gram matrix")
