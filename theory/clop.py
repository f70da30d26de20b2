"""CLOP: large learning rates, collapsed stationary points and the overshoot thresholds.

Spec: ``shared/spec/clop.md`` (arXiv 2403.18699 v1 "CLOA/OAR", v2 "CLOP"; follow-up 2512.07880).

The v2 theorem text is not available (spec §0.1): the lemmas and thresholds below are the
toolkit's **reconstruction** ``[REC]`` of the paper's learning-rate analysis; their *truth* is
derived here with sympy ``[DER]``.  Every public result carries a ``provenance`` string.

* Lemma A (orthogonality), Lemma B (norm growth), Lemma C (angular step), Lemma D (stationarity
  of the collapsed sets C1/C2), Lemma E (CLOP breaks it): ``lemma_a`` ... ``lemma_e``.  Each
  returns a :class:`SymbolicIdentity` whose ``residual`` is what ``sympy.simplify`` leaves of
  "left side - right side" (``"0"`` when the identity is proved).  General dimension through
  ``MatrixSymbol`` where sympy allows, explicit coordinates (d = 2, 3) otherwise (spec §4.3).
* Collapsed-configuration loss values (spec §4.4): :func:`c1_values`, :func:`c2_loss_value`.
* Threshold maps T1-T4 (spec §4.5): :func:`threshold_map` derives the linear factor, the stability
  interval and the series at the critical step from the map itself; :func:`raw_norm_threshold`
  (T4, eta < 2 r^2/k); :func:`two_cycle_amplitude` (the 2-cycle above the threshold).
* InfoNCE pull / push coefficients (T5): :func:`infonce_coefficients`.
* The learning-rate bound for a configuration (``collapsekit theory lr-bound``): :func:`lr_bound`;
  the pure-CLOP bound eta < 4 |S_b| / lambda (spec §4.6): :func:`clop_cosine_threshold`.

This module does not import :mod:`solvers` (layering rule, DESIGN.md); the numerical iteration of
the same maps lives in :mod:`solvers.gd_maps`, and the checks compare the two.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np
import sympy as sp
from scipy.optimize import brentq

from . import _validation as chk

__all__ = [
    "PROV_LEMMA",
    "PROV_THRESHOLD",
    "SymbolicIdentity",
    "ThresholdMap",
    "aligned_pairs_monotone",
    "c1_values",
    "c2_loss_value",
    "clop_cosine_threshold",
    "collapsed_ntxent_symbolic",
    "etf_prototype_facts",
    "infonce_coefficients",
    "lemma_a",
    "lemma_b",
    "lemma_c",
    "lemma_d",
    "lemma_e",
    "lr_bound",
    "never_used_fraction",
    "raw_norm_threshold",
    "threshold_map",
    "two_cycle_amplitude",
    "MAP_KINDS",
]

PROV_LEMMA = "[DER] (truth, sympy); role as the paper's lemma [REC] (clop.md §4.3)"
PROV_THRESHOLD = (
    "[REC] reconstruction — the paper's exact statement was not available; "
    "the map itself [DER] (clop.md §4.5)"
)
PROV_VALUES = "[DER] (clop.md §4.4)"

#: threshold maps of spec §4.5: kind -> (number of moving points, description)
MAP_KINDS: dict[str, tuple[int, str]] = {
    "fixed": (1, "T1: one point attracted to a fixed target, loss k(1 - cos theta)"),
    "mutual": (2, "T2: mutual attraction of a pair, per-point coefficient k"),
    "repel-fixed": (1, "T3: one point repelled from a fixed point, loss k cos theta, eps = pi - theta"),
    "repel-mutual": (2, "T3: mutual repulsion of a pair, eps = pi - theta"),
}


# --------------------------------------------------------------------------------------------
# validation (theory must not import solvers.validation)
# --------------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SymbolicIdentity:
    """One symbolic identity: ``residual`` = simplify(lhs - rhs) as a string; ``holds`` iff 0."""

    name: str
    statement: str
    setting: str
    residual: str
    holds: bool
    provenance: str = PROV_LEMMA

    def as_dict(self) -> dict:
        return asdict(self)


def _identity(name: str, statement: str, setting: str, residual: sp.Expr | sp.MatrixBase,
              provenance: str = PROV_LEMMA) -> SymbolicIdentity:
    if isinstance(residual, sp.MatrixBase):
        res = residual.applyfunc(sp.simplify)
        holds = bool(res.is_zero_matrix)
        text = "0" if holds else str(res)
    elif isinstance(residual, sp.MatrixExpr):
        res = sp.simplify(residual.doit())
        holds = bool(getattr(res, "is_ZeroMatrix", False)) or res == 0
        text = "0" if holds else str(res)
    else:
        res = sp.simplify(residual)
        holds = res == 0
        text = str(res)
    return SymbolicIdentity(name, statement, setting, text, bool(holds), provenance)


# --------------------------------------------------------------------------------------------
# Lemmas A-C: f(x) = F(x/|x|)
# --------------------------------------------------------------------------------------------
LEMMA_FORMS = ("linear", "exp-quadratic", "general")


def _form(form: str, u: list[sp.Expr]) -> sp.Expr:
    """F(u) of spec §4.3: a.u; exp(a.u/tau) + (b.u)^2; or an undefined function F(u_1..u_d)."""
    d = len(u)
    if form == "general":
        return sp.Function("F")(*u)
    a = sp.symbols(f"a0:{d}", real=True)
    au = sum(ai * ui for ai, ui in zip(a, u, strict=True))
    if form == "linear":
        return au
    b = sp.symbols(f"b0:{d}", real=True)
    tau = sp.Symbol("tau", positive=True)
    return sp.exp(au / tau) + sum(bi * ui for bi, ui in zip(b, u, strict=True)) ** 2


@functools.cache
def _raw_gradient(dim: int, form: str) -> tuple[tuple[sp.Symbol, ...], tuple[sp.Expr, ...]]:
    x = sp.symbols(f"x0:{dim}", real=True)
    r = sp.sqrt(sum(xi**2 for xi in x))
    f = _form(form, [xi / r for xi in x])
    return x, tuple(sp.diff(f, xi) for xi in x)


def lemma_a(dim: int | None = 3, form: str = "general") -> SymbolicIdentity:
    """Lemma A: x^T grad f(x) = 0 for f(x) = F(x/|x|) (Euler, 0-homogeneous; clop.md §4.3).

    ``dim`` = 2, 3 (or 4): explicit coordinates, F one of ``LEMMA_FORMS`` ("general" = an
    undefined sympy Function, i.e. any differentiable F).  ``dim=None``: general dimension n with
    ``MatrixSymbol`` u (n x 1), using the chain rule grad f = (I - u u^T) grad F / r (itself derived
    in coordinates for d = 2, 3) and u^T u = 1.
    """
    form = chk.choice(form, "form", LEMMA_FORMS)
    statement = "x . grad_x F(x/|x|) = 0"
    if dim is None:
        n = sp.Symbol("n", integer=True, positive=True)
        u = sp.MatrixSymbol("u", n, 1)
        gF = sp.MatrixSymbol("gF", n, 1)
        r = sp.Symbol("r", positive=True)
        expr = (r * u.T * (sp.Identity(n) - u * u.T) * gF / r).expand().subs(u.T * u, sp.Identity(1))
        return _identity("Lemma A", statement, "general dimension n (MatrixSymbol, |u| = 1)", expr)
    dim = chk.integer(dim, "dim", 2, 4)
    x, grad = _raw_gradient(dim, form)
    residual = sum(xi * gi for xi, gi in zip(x, grad, strict=True))
    return _identity("Lemma A", statement, f"d = {dim}, F {form}", residual)


def lemma_b(dim: int | None = 3, form: str = "general") -> SymbolicIdentity:
    """Lemma B: |x - eta grad f|^2 = |x|^2 + eta^2 |grad f|^2 (clop.md §4.3).

    Coordinates as in :func:`lemma_a`; ``dim=None`` proves it in general dimension from the
    expansion |x - eta g|^2 = |x|^2 - 2 eta x.g + eta^2 |g|^2 and Lemma A's x.g = 0 (matrix form).
    """
    form = chk.choice(form, "form", LEMMA_FORMS)
    eta = sp.Symbol("eta", positive=True)
    statement = "|x - eta grad f|^2 - |x|^2 - eta^2 |grad f|^2 = 0"
    if dim is None:
        n = sp.Symbol("n", integer=True, positive=True)
        u = sp.MatrixSymbol("u", n, 1)
        g = sp.MatrixSymbol("g", n, 1)  # g = grad f, with u^T g = 0 by Lemma A
        r = sp.Symbol("r", positive=True)
        step = r * u - eta * g
        expr = (step.T * step - r**2 * u.T * u - eta**2 * g.T * g).expand()
        expr = expr.subs({u.T * g: sp.ZeroMatrix(1, 1), g.T * u: sp.ZeroMatrix(1, 1)})
        return _identity("Lemma B", statement,
                         "general dimension n (MatrixSymbol, x = r u, u.grad f = 0 by Lemma A)", expr)
    dim = chk.integer(dim, "dim", 2, 4)
    x, grad = _raw_gradient(dim, form)
    r2 = sum(xi**2 for xi in x)
    g2 = sum(gi**2 for gi in grad)
    full = sp.expand(sum((xi - eta * gi) ** 2 for xi, gi in zip(x, grad, strict=True)) - r2 - eta**2 * g2)
    # the eta^2 terms cancel identically after expansion; what is left is -2 eta x.grad f
    linear = sp.simplify(full.coeff(eta, 1))
    residual = sp.simplify(full.coeff(eta, 2)) * eta**2 + linear * eta + sp.simplify(full.coeff(eta, 0))
    return _identity("Lemma B", statement, f"d = {dim}, F {form}", residual)


def lemma_c() -> list[SymbolicIdentity]:
    """Lemma C: one GD step rotates u toward -g by phi with tan(phi) = eta |g| / r^2 (clop.md §4.3).

    (i) R^2 with x = (r, 0), Euclidean gradient g/r with g = (0, gamma): x+ = (r, -eta gamma / r);
    (ii) any dimension (MatrixSymbol): x+ = r u - eta g / r with u^T g = 0, so the component of x+
    along u is r and the orthogonal component has norm eta |g| / r.
    """
    r, eta, gamma = sp.symbols("r eta gamma", positive=True)
    xp = sp.Matrix([r, 0]) - eta * sp.Matrix([0, gamma]) / r
    tan_phi = -xp[1] / xp[0]
    out = [_identity("Lemma C", "tan(phi) - eta |g| / r^2 = 0", "R^2, x = (r, 0), g = (0, gamma)",
                     tan_phi - eta * gamma / r**2)]
    n = sp.Symbol("n", integer=True, positive=True)
    u = sp.MatrixSymbol("u", n, 1)
    g = sp.MatrixSymbol("g", n, 1)
    xplus = r * u - eta * g / r
    zero = {u.T * u: sp.Identity(1), u.T * g: sp.ZeroMatrix(1, 1)}
    along = (u.T * xplus).expand().subs(zero)
    out.append(_identity("Lemma C", "u.x+ - r = 0 (the step keeps the component along u)",
                         "general dimension n (MatrixSymbol, |u| = 1, u.g = 0)",
                         along - r * sp.Identity(1)))
    # hence (I - u u^T) x+ = x+ - r u = -eta g / r, of norm eta |g| / r: tan(phi) = eta |g| / r^2
    perp = (xplus - u * (u.T * xplus)).expand().subs(zero)
    out.append(_identity("Lemma C", "(I - u u^T) x+ + eta g / r = 0",
                         "general dimension n (MatrixSymbol, |u| = 1, u.g = 0)",
                         perp + eta * g / r))
    return out


# --------------------------------------------------------------------------------------------
# Lemma D and E: collapsed configurations
# --------------------------------------------------------------------------------------------
def _reduce(expr: sp.Expr, relations: list[sp.Expr], gens: list[sp.Symbol]) -> sp.Expr:
    """Remainder of the polynomial ``expr`` modulo ``relations`` (e.g. sin^2 + cos^2 - 1,
    sigma^2 - 1); the relations are in disjoint variables, so they form a Groebner basis and the
    remainder is 0 iff ``expr`` vanishes on the variety."""
    return sp.reduced(sp.expand(expr), relations, *gens)[1]


def lemma_d(n_points: int = 4, dim: int = 3, control: bool = False) -> list[SymbolicIdentity]:
    """Lemma D: at C1/C2 (u_a = sigma_a u*) every tangent gradient g_i = (I - u_i u_i^T) h_i is 0.

    h_i = sum_a (gamma_ia + gamma_ai) u_a with *symbolic* coefficients gamma (= dL/ds for any
    L(S)); u* = (cos al, sin al cos be, sin al sin be) in R^3 (or the R^2 analogue), symbolic
    signs; the residual is reduced modulo sin^2 + cos^2 = 1 and sigma^2 = 1 (clop.md §4.3).
    A second identity proves it in general dimension with a MatrixSymbol u* (|u*| = 1):
    (I - u* u*^T) u* = 0.  ``control=True`` is the negative control: point 0 is moved off the
    line (u_0 = e_2 in R^3, e_2 in R^2), and the same computation must leave a nonzero residual.
    """
    n_points = chk.integer(n_points, "n_points", 2, 6)
    dim = chk.integer(dim, "dim", 2, 3)
    ca, sa, cb, sb = sp.symbols("cos_alpha sin_alpha cos_beta sin_beta", real=True)
    if dim == 3:  # u* = (cos al, sin al cos be, sin al sin be) with the trig functions as symbols
        ustar = sp.Matrix([ca, sa * cb, sa * sb])
        trig = [sa**2 + ca**2 - 1, sb**2 + cb**2 - 1]
    else:
        ustar = sp.Matrix([ca, sa])
        trig = [sa**2 + ca**2 - 1]
    sig = sp.symbols(f"sigma0:{n_points}", real=True)
    gam = sp.Matrix(n_points, n_points, lambda i, a: sp.Symbol(f"gamma_{i}{a}", real=True))
    relations = trig + [s**2 - 1 for s in sig]
    gens = list(sig) + [sa, ca] + ([sb, cb] if dim == 3 else []) + list(gam)
    pts = [sig[a] * ustar for a in range(n_points)]
    if control:
        pts[0] = sp.Matrix([0, 1, 0][:dim])
    worst: list[sp.Matrix] = []
    for i in range(n_points):
        ui = pts[i]
        h = sp.zeros(dim, 1)
        for a in range(n_points):
            h += (gam[i, a] + gam[a, i]) * pts[a]
        g = h - ui * (ui.T * h)[0, 0]
        worst.append(g.applyfunc(lambda e: _reduce(e, relations, gens)))
    stacked = sp.Matrix.vstack(*worst)
    setting = f"N = {n_points} points, d = {dim}, symbolic gamma_ia and signs (sigma^2 = 1)"
    if control:
        setting += "; negative control: u_0 = e_2 off the line"
    out = [_identity("Lemma D", "g_i = (I - u_i u_i^T) h_i = 0 for every i at u_a = sigma_a u*",
                     setting, stacked)]
    if control:
        return out
    n = sp.Symbol("n", integer=True, positive=True)
    u = sp.MatrixSymbol("u", n, 1)
    c = sp.Symbol("c", real=True)
    expr = ((sp.Identity(n) - u * u.T) * (c * u)).expand().subs(u.T * u, sp.Identity(1))
    out.append(_identity("Lemma D", "(I - u* u*^T) h = 0 for h = c u* (h in span(u*))",
                         "general dimension n (MatrixSymbol, |u*| = 1)", expr))
    return out


def lemma_e() -> list[SymbolicIdentity]:
    """Lemma E: at C1 with two labelled classes, cosine CLOP has a nonzero tangent gradient.

    Prototypes c_0 = e_1, c_1 = e_2 in R^3, u* = (u1, u2, u3) with |u*| = 1, coefficient k > 0.
    The CLOP tangent gradient on a view of class y is -k (c_y - (u*.c_y) u*), with squared norm
    k^2 (1 - (u*.c_y)^2).  Summed over the two classes it simplifies to k^2 (1 + u3^2) >= k^2 > 0,
    so it cannot vanish for both; it vanishes for class y alone when u* = c_y (clop.md §4.3).
    Returns three identities: the sum, the vanishing at u* = c_0, the value k^2 for class 1 there.
    """
    k = sp.Symbol("k", positive=True)
    u1, u2 = sp.symbols("u1 u2", real=True)
    u3 = sp.Symbol("u3", real=True)
    ustar = sp.Matrix([u1, u2, u3])
    protos = [sp.Matrix([1, 0, 0]), sp.Matrix([0, 1, 0])]

    def tangent(c: sp.Matrix, u: sp.Matrix) -> sp.Matrix:
        return -k * (c - (u.T * c)[0, 0] * u)

    sq = [sp.expand((tangent(c, ustar).T * tangent(c, ustar))[0, 0]) for c in protos]
    total = sp.expand(sum(sq)).subs(u1**2, 1 - u2**2 - u3**2)
    at_c0 = sp.Matrix([1, 0, 0])
    return [
        _identity("Lemma E", "sum_y |g_y|^2 - k^2 (1 + u3^2) = 0 on |u*| = 1",
                  "C1, prototypes e1, e2 in R^3", total - k**2 * (1 + u3**2), "[DER] (clop.md §4.3)"),
        _identity("Lemma E", "|g_0|^2 = 0 at u* = c_0", "C1 at the class-0 prototype",
                  (tangent(protos[0], at_c0).T * tangent(protos[0], at_c0))[0, 0],
                  "[DER] (clop.md §4.3)"),
        _identity("Lemma E", "|g_1|^2 - k^2 = 0 at u* = c_0", "C1 at the class-0 prototype",
                  (tangent(protos[1], at_c0).T * tangent(protos[1], at_c0))[0, 0] - k**2,
                  "[DER] (clop.md §4.3)"),
    ]


# --------------------------------------------------------------------------------------------
# loss values at collapsed configurations (spec §4.4)
# --------------------------------------------------------------------------------------------
def collapsed_ntxent_symbolic() -> SymbolicIdentity:
    """L_NTX(C1) - log(2B - 1) = 0 for every B and tau (mean over 2B anchors, self excluded).

    At C1 every s = 1: each anchor gives -1/tau + log((2B - 1) e^{1/tau}) (clop.md §4.4).
    """
    b = sp.Symbol("B", integer=True, positive=True)
    tau = sp.Symbol("tau", positive=True)
    n = 2 * b
    per_anchor = -1 / tau + sp.log((n - 1) * sp.exp(1 / tau))
    value = sp.expand_log(n * per_anchor / n, force=True)
    return _identity("CLOP-V1", "L_NTX(C1) - log(2B - 1) = 0",
                     "symbolic B, tau; mean over 2B anchors; denominators over a != i",
                     value - sp.log(2 * b - 1), PROV_VALUES)


def aligned_pairs_monotone(negatives: int = 3) -> dict:
    """On the set where every positive pair coincides, NT-Xent's anchor term is
    -1/tau + log(e^{1/tau} + sum_a e^{s_a/tau}) (clop.md §4.4); its derivative in each s_a is
    e^{s_a/tau} / (tau (e^{1/tau} + sum)) > 0, so C1 (all s = 1) is the *maximum* on that set.

    Returns the derivative (string) and whether sympy proves it positive for real s, tau > 0.
    """
    m = chk.integer(negatives, "negatives", 1, 8)
    tau = sp.Symbol("tau", positive=True)
    s = sp.symbols(f"s1:{m + 1}", real=True)
    term = -1 / tau + sp.log(sp.exp(1 / tau) + sum(sp.exp(si / tau) for si in s))
    deriv = sp.simplify(sp.diff(term, s[0]))
    return {"derivative": str(deriv), "positive": bool(deriv.is_positive), "provenance": PROV_VALUES}


def c1_values(batch: int, labels: object | None = None) -> dict[str, float]:
    """Loss values at C1 (all u equal) under each convention of clop.md §4.4 / §7.1.

    ``ntxent`` and ``supcon_out`` (any labels): log(2B - 1); ``ntxent_sum`` (sum over anchors):
    2B log(2B - 1); ``self_in_denominator``: log(2B); ``dcl``: log(2B - 2); ``cross_view``
    (cross-view-only denominators): log B; ``repo_supcon``: (1/B) sum_a log(B / |P_a|) with
    P_a = {b : y_b = y_a != -1} u {a} (``labels`` of the B source samples, -1 = unlabelled;
    default all unlabelled, giving log B).
    """
    b = chk.integer(batch, "batch", 2)
    n = 2 * b
    if labels is None:
        lab = np.full(b, -1)
    else:
        lab = np.asarray(labels)
        if lab.shape != (b,):
            raise ValueError(f"labels must have one entry per source sample ({b}); got shape {lab.shape}")
    sizes = []
    for a in range(b):
        same = np.flatnonzero((lab == lab[a]) & (lab != -1)) if lab[a] != -1 else np.array([], int)
        sizes.append(len(set(same.tolist()) | {a}))
    return {
        "ntxent": math.log(n - 1),
        "supcon_out": math.log(n - 1),
        "ntxent_sum": n * math.log(n - 1),
        "self_in_denominator": math.log(n),
        "dcl": math.log(n - 2),
        "cross_view": math.log(b),
        "repo_supcon": float(np.mean([math.log(b / s) for s in sizes])),
    }


def c2_loss_value(signs: object, tau: float) -> float:
    """NT-Xent at the colinear configuration u_i = sigma_i u* (clop.md §4.4).

    L_i = -sigma_i sigma_j(i) / tau + log(n+(i) e^{1/tau} + n-(i) e^{-1/tau}), with
    n+(i) = #{a != i : sigma_a = sigma_i}, n-(i) = N - 1 - n+(i); L = mean_i L_i.  The log is
    evaluated max-shifted: log(e^{1/tau}(n+ + n- e^{-2/tau})).
    """
    sig = np.asarray(signs, dtype=float)
    if sig.ndim != 1 or sig.size < 4 or sig.size % 2 or not np.all(np.abs(sig) == 1.0):
        raise ValueError("signs must be a 1-D array of +-1 of even length >= 4 (two views of B >= 2)")
    tau = chk.positive(tau, "tau")
    n = sig.size
    b = n // 2
    partner = (np.arange(n) + b) % n
    n_plus = np.array([np.sum(sig == sig[i]) - 1 for i in range(n)], dtype=float)
    n_minus = n - 1 - n_plus
    lse = 1.0 / tau + np.log(n_plus + n_minus * math.exp(-2.0 / tau))
    return float(np.mean(-sig * sig[partner] / tau + lse))


def etf_prototype_facts() -> list[SymbolicIdentity]:
    """ETF-variant prototypes: rows of I_d - 11^T/d (clop.md §3.2, P2), symbolic d.

    |row|^2 = 1 - 1/d; cosine between two rows -1/(d - 1); the largest <u, c> over unit u is
    |c| = sqrt(1 - 1/d), so min cosine-CLOP = lam (1 - sqrt(1 - 1/d)) > 0.
    """
    d = sp.Symbol("d", integer=True, positive=True)
    lam = sp.Symbol("lambda", positive=True)
    norm2 = (1 - 1 / d) ** 2 + (d - 1) / d**2          # entry i: 1 - 1/d; d - 1 entries -1/d
    inner = 2 * (1 - 1 / d) * (-1 / d) + (d - 2) / d**2  # entries i, j: mixed; d - 2 entries 1/d^2
    cos = inner / norm2
    clop_min = lam * (1 - sp.sqrt(norm2))
    tag = "[CODE] (construction), [DER] (values)"
    return [
        _identity("CLOP-P2", "|c|^2 - (1 - 1/d) = 0", "rows of I_d - 11^T/d, symbolic d",
                  norm2 - (1 - 1 / d), tag),
        _identity("CLOP-P2", "cos(c_i, c_j) + 1/(d - 1) = 0", "i != j, symbolic d",
                  cos + 1 / (d - 1), tag),
        _identity("CLOP-P2", "min_u lam (1 - u.c) - lam (1 - sqrt(1 - 1/d)) = 0",
                  "max over unit u of u.c is |c| (Cauchy-Schwarz)",
                  clop_min - lam * (1 - sp.sqrt(1 - 1 / d)), tag),
    ]


def never_used_fraction(batch: int, fraction: float, epochs: int) -> float:
    """Expected fraction of samples whose label is never used: (1 - q)^E, q = floor(B p)/B.

    Per-batch resampling of the v2-era code (clop.md §3.3, [CODE] 669f931; value [DER]).
    """
    b = chk.integer(batch, "batch", 1)
    p = chk.real(fraction, "fraction")
    if not 0.0 < p <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1]; got {fraction!r}")
    e = chk.integer(epochs, "epochs", 0)
    q = math.floor(b * p) / b
    return (1.0 - q) ** e


# --------------------------------------------------------------------------------------------
# threshold maps (spec §4.5)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ThresholdMap:
    """A renormalised-GD angle map theta -> theta - m arctan(a sin theta), a = eta k.

    ``m`` = 1 (one point moves) or 2 (both points move); ``derivative_at_0`` = 1 - m a;
    local convergence iff |1 - m a| < 1, i.e. 0 < a < ``critical`` = 2/m; at a = critical the map
    is ``series_at_critical`` (sublinear convergence).  Above it the 2-cycle amplitude theta*
    solves 2 theta* = m arctan(a sin theta*) (:func:`two_cycle_amplitude`).
    """

    kind: str
    description: str
    variable: str
    signed_map: str
    derivative_at_0: str
    stability_condition: str
    critical: float
    series_at_critical: str
    provenance: str = PROV_THRESHOLD

    def as_dict(self) -> dict:
        return asdict(self)


@functools.cache
def threshold_map(kind: str = "fixed") -> ThresholdMap:
    """Derive one of the maps T1-T3 of clop.md §4.5 with sympy (see :class:`ThresholdMap`).

    For the repulsive maps (T3) the variable is eps = pi - theta: the tangent gradient of k cos
    theta has magnitude k sin theta = k sin eps and points away from the other point, so the
    step shortens eps exactly as the attractive step shortens theta.
    """
    kind = chk.choice(kind, "kind", tuple(MAP_KINDS))
    m, desc = MAP_KINDS[kind]
    a = sp.Symbol("a", positive=True)  # a = eta k
    v = sp.Symbol("eps" if kind.startswith("repel") else "theta", real=True)
    if kind.startswith("repel"):
        # one step on theta: theta+ = theta + m arctan(a sin theta); in eps = pi - theta:
        th = sp.pi - v
        fmap = sp.pi - (th + m * sp.atan(a * sp.sin(th)))
    else:
        fmap = v - m * sp.atan(a * sp.sin(v))
    fmap = sp.simplify(fmap)
    deriv = sp.simplify(sp.diff(fmap, v).subs(v, 0))
    stable = sp.solve_univariate_inequality(sp.Abs(deriv) < 1, a, relational=False)
    crit = sp.Rational(2, m)
    series = sp.series(fmap.subs(a, crit), v, 0, 5).removeO()
    return ThresholdMap(
        kind=kind, description=desc, variable=str(v), signed_map=str(fmap),
        derivative_at_0=str(deriv), stability_condition=f"a = eta k in {stable}",
        critical=float(crit), series_at_critical=f"{sp.expand(series)} + O({v}**5)",
    )


def raw_norm_threshold() -> dict[str, str]:
    """T4: with raw norm r and no renormalisation the effective step is a = eta k / r^2 (Lemma C),
    so T1's condition a < 2 becomes eta < 2 r^2 / k; the norm obeys r+^2 = r^2 + eta^2 k^2
    sin^2(theta) / r^2 (Lemma B).  Derived by substitution and solving for eta (clop.md §4.5).
    """
    eta, k, r = sp.symbols("eta k r", positive=True)
    t1 = threshold_map("fixed")
    a = sp.Symbol("a", positive=True)
    crit = sp.Rational(2, 1) if t1.critical == 2.0 else sp.nsimplify(t1.critical)
    bound = sp.solve(sp.Eq(a.subs(a, eta * k / r**2), crit), eta)[0]
    return {"eta_max": str(bound), "effective_step": "eta k / r^2", "norm_update":
            "r+^2 = r^2 + eta^2 k^2 sin(theta)^2 / r^2", "provenance": PROV_THRESHOLD}


def two_cycle_amplitude(eta_k: float, moving: int = 1) -> float:
    """theta* > 0 of the symmetric 2-cycle above the threshold: 2 theta* = m arctan(a sin theta*).

    Exists iff m a > 2 (m = ``moving`` points, a = eta k); found by Brent's method on
    (0, pi/2] where the left side minus the right side changes sign once (clop.md §4.5 T1/T2).
    """
    a = chk.positive(eta_k, "eta_k")
    m = chk.integer(moving, "moving", 1, 2)
    if m * a <= 2.0:
        raise ValueError(f"eta_k must exceed {2.0 / m:g} for a 2-cycle with {m} moving point(s); got {a!r}")

    def f(t: float) -> float:
        return 2.0 * t - m * math.atan(a * math.sin(t))

    lo = 1e-300
    # f < 0 near 0 (slope 2 - m a < 0) and f(pi/2) = pi - m arctan(a) > 0 for m <= 2
    return float(brentq(f, lo, math.pi / 2, xtol=1e-16, rtol=4 * np.finfo(float).eps, maxiter=500))


# --------------------------------------------------------------------------------------------
# InfoNCE coefficients (T5) and the learning-rate bound
# --------------------------------------------------------------------------------------------
def infonce_coefficients(n_points: int = 4) -> dict[str, SymbolicIdentity]:
    """T5: per-term coefficients of L_i = -s_ij/tau + log sum_{a != i} e^{s_ia/tau} (clop.md §4.5).

    With P_i = e^{s_ij/tau}/sum and w_ia the softmax over negatives only:
    -dL_i/ds_ij = (1 - P_i)/tau (pull) and dL_i/ds_ia = (1 - P_i) w_ia / tau (push); at C1
    P = 1/(N - 1) and w = 1/(N - 2).  Symbolic similarities s_i1..s_i{N-1} for anchor 0.
    """
    n = chk.integer(n_points, "n_points", 3, 8)
    tau = sp.Symbol("tau", positive=True)
    s = sp.symbols(f"s1:{n}", real=True)  # s[0] = positive, s[1:] = negatives
    ex = [sp.exp(si / tau) for si in s]
    total = sum(ex)
    loss = -s[0] / tau + sp.log(total)
    p = ex[0] / total
    neg_total = sum(ex[1:])
    w = [e / neg_total for e in ex[1:]]
    pull = _identity("CLOP-T5", "-dL_i/ds_ij - (1 - P_i)/tau = 0", f"N = {n}, symbolic s",
                     -sp.diff(loss, s[0]) - (1 - p) / tau, "[P1] (corrected /tau), [DER]")
    push = _identity("CLOP-T5", "dL_i/ds_ia - (1 - P_i) w_ia / tau = 0", f"N = {n}, first negative",
                     sp.diff(loss, s[1]) - (1 - p) * w[0] / tau, "[P1] (corrected /tau), [DER]")
    at_c1 = {si: 1 for si in s}
    p_c1 = _identity("CLOP-T5", "P(C1) - 1/(N - 1) = 0", f"N = {n}", p.subs(at_c1) - sp.Rational(1, n - 1),
                     "[DER]")
    w_c1 = _identity("CLOP-T5", "w(C1) - 1/(N - 2) = 0", f"N = {n}",
                     w[0].subs(at_c1) - sp.Rational(1, n - 2), "[DER]")
    return {"pull": pull, "push": push, "P_at_C1": p_c1, "w_at_C1": w_c1}


LR_LOSSES = ("infonce", "supcon")
REDUCTIONS = ("sum", "mean")


def lr_bound(loss: str = "infonce", tau: float = 1.0, batch: int | None = None, norm: float = 1.0,
             reduction: str | None = None, classes: int | None = None) -> dict:
    """Reconstructed per-term learning-rate bound eta_max = 2 r^2 / k (clop.md §4.5 T1/T4/T5) [REC].

    k is the largest attraction coefficient of one anchor term on the point being moved:
    k = c (1 - P_i)/tau <= c/tau, with c = 1 (``reduction="sum"``, one term as in v1, no batch
    dependence) or c = 1/N, N = 2B (``"mean"``, the toolkit convention, needs ``batch``).  For
    SupCon L_out the total pull toward the positive set is sum_p (1/|P(i)| - A_ip)/tau =
    (1 - P_i)/tau with P_i the softmax mass of the positives, so the same bound holds.  ``norm``
    r is the raw embedding norm (the effective step is eta/r^2, Lemma C).

    Also returned: the mutual-pair bound (T2; both anchor terms of a positive pair pull, per-point
    coefficient 2c/tau, bound r^2 tau/(2c)), and with ``batch`` the coefficients and bound at C1
    (P = 1/(N - 1) for InfoNCE; P = |P(i)|/(N - 1) with |P(i)| = N/C - 1 for SupCon with
    ``classes`` balanced classes; push w = 1/(N - 2) for InfoNCE).
    """
    loss = chk.choice(loss, "loss", LR_LOSSES)
    tau = chk.positive(tau, "tau")
    r = chk.positive(norm, "norm")
    b = None if batch is None else chk.integer(batch, "batch", 2)
    if reduction is None:
        reduction = "mean" if b is not None else "sum"
    reduction = chk.choice(reduction, "reduction", REDUCTIONS)
    if reduction == "mean" and b is None:
        raise ValueError("batch is required for reduction='mean' (the mean is over N = 2B anchors)")
    if classes is not None and loss != "supcon":
        raise ValueError("classes applies to loss='supcon' only")
    n = None if b is None else 2 * b
    c = 1.0 / n if reduction == "mean" and n is not None else 1.0
    k = c / tau
    eta_max = 2.0 * r**2 / k
    assumptions = [
        "reconstruction [REC]: the paper's exact statement was not available (clop.md §0.1, §4.5)",
        "one anchor term at a time: the coupling between terms is ignored (T5)",
        "k = largest attraction coefficient of one term, sup over configurations of "
        "c (1 - P_i)/tau = c/tau",
        "fixed-target overshoot map T1: renormalised GD converges iff eta k / r^2 < 2 "
        "(Lemma C: effective angular step eta/r^2)",
        f"raw embedding norm r = {r:g} (r = 1: unit norms / renormalised steps)",
        "plain gradient descent: no momentum, weight decay or LARS (they break Lemma B)",
        f"reduction '{reduction}': " + ("sum over anchors, no batch-size dependence (v1 form)"
                                         if reduction == "sum" else
                                         f"mean over N = 2B = {n} anchors divides every force by N"),
        "free points / per-embedding step; not the empirical threshold of a shared encoder "
        "(clop.md §4.5, §7.11)",
    ]
    out: dict = {
        "loss": loss, "tau": tau, "batch": b, "norm": r, "reduction": reduction,
        "eta_max": eta_max, "coefficient_k": k,
        "formula": "eta_max = 2 r^2 / k, k = c / tau, c = 1 (sum) or 1/(2B) (mean)",
        "bounds": {
            "fixed_target_T1": eta_max,
            "mutual_pair_T2": r**2 / (2.0 * k),
        },
        "assumptions": assumptions,
        "provenance": PROV_THRESHOLD,
    }
    if n is not None:
        if loss == "infonce":
            p_c1 = 1.0 / (n - 1)
        elif classes is not None:
            cl = chk.integer(classes, "classes", 1)
            if n % cl or n // cl < 2:
                raise ValueError(f"classes must divide N = 2B = {n} with at least 2 rows per class; got {cl}")
            p_c1 = (n // cl - 1) / (n - 1)
        else:
            p_c1 = None
        if p_c1 is not None:
            k_c1 = c * (1.0 - p_c1) / tau
            out["at_C1"] = {"P": p_c1, "pull_k": k_c1, "eta_max": 2.0 * r**2 / k_c1}
            if loss == "infonce":
                out["at_C1"]["w"] = 1.0 / (n - 2)
                out["at_C1"]["push_k"] = k_c1 / (n - 2)
    return out


def clop_cosine_threshold(lam: float, labelled: int, norm: float = 1.0) -> float:
    """Pure cosine CLOP on free points: each view is T1 with k = lam/(2|S_b|), so renormalised GD
    converges iff eta < 4 |S_b| r^2 / lam (clop.md §4.6; [DER], [REC] where it uses T1)."""
    lam = chk.positive(lam, "lam")
    s = chk.integer(labelled, "labelled", 1)
    r = chk.positive(norm, "norm")
    return 4.0 * s * r**2 / lam
