"""SSEM: the Simplex-to-Simplex Embedding Model and the collapse threshold of SupCL.

Spec: ``shared/spec/ssem.md`` (Lee, Oh, Lee, Sohn, AISTATS 2025, arXiv 2503.08203).

Everything below is *derived at run time with sympy* from the definitions, never typed in as a
closed form:

* the SSEM Gram entries s1(beta), s2(beta), from the inner products of
  z_{c,i} = sqrt(beta) w_c + sqrt(1-beta) e_{c,i} and the simplex / orthogonality facts of
  spec section 4.1;
* the loss restricted to SSEM, L(beta) (R2), from the per-anchor softmax loss of section 2 with the
  group counts of each variant (self counted: ``"code"``; self excluded: ``"self-excluded"``);
* L'(beta) (R4), L''(beta) (R3), the collapse threshold alpha* from L'(1) = 0 (R5), the
  temperature bound tau_max (R6), the small-tau asymptote of W* (R8), and, for the self-excluded
  variant, the reduced 2-D objective of R10 and alpha_split.

The derivations are cached per variant (:func:`functools.lru_cache`) and lambdified into
numerically safe forms: every exponential is shifted by the largest similarity (1), so all
exponents are <= 0 and nothing overflows for tiny tau; thresholds use u = exp(-K/((K-1) tau));
tau_max uses ``log1p``; beta* is found by Brent's method in w = 1 - beta (spec section 6.1).

sympy is imported only by the derivation itself.  The Python source that ``sympy.lambdify``
generates (plain arithmetic on ``math`` / ``numpy`` functions) is cached on disk, keyed by a hash
of this module's source and the sympy version, so that later processes answer without importing
sympy (section "On-disk cache of the generated code" below; ``$COLLAPSEKIT_CACHE``, default
``~/.cache/collapsekit``; ``COLLAPSEKIT_NO_CACHE=1`` disables it).  The cached and the freshly
lambdified functions are the same code: identical values.

Every public result carries a ``provenance`` string with the spec's tags, e.g.
``"R5 [REC] [DER+NUM]"`` (spec section 0).  This module does not import :mod:`solvers`
(layering rule, DESIGN.md): the explicit-coordinate cross-check lives in the tests.
"""

from __future__ import annotations

import ast
import builtins
import functools
import hashlib
import importlib
import json
import math
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from . import _validation as chk

__all__ = [
    "VARIANTS",
    "SSEMDerivation",
    "SSEMNumerics",
    "SSEMOptimum",
    "TaggedFloat",
    "TaggedInt",
    "TaggedStr",
    "alpha_eff_supcon",
    "alpha_split",
    "alpha_star",
    "batch_to_Kn",
    "beta_star",
    "d_min",
    "derivation",
    "Kn_from_paper",
    "loss_ssem",
    "numeric_functions",
    "reduced_self_excluded_minimum",
    "regime",
    "symbolic_summary",
    "tau_max",
    "W_small_tau",
]

# --------------------------------------------------------------------------------------------
# Provenance tags (spec section 0), reported verbatim.
# --------------------------------------------------------------------------------------------
_REC = "[REC] [DER+NUM]"
PROV_LOSS = f"R2 (loss restricted to SSEM) {_REC}"
PROV_BETA = f"R2-R5 (beta* by Brent root of L'(beta) in w = 1 - beta) {_REC}"
PROV_ALPHA_STAR = f"R5 (collapse threshold from L'(1) = 0) {_REC}"
PROV_TAU_MAX = f"R6 (temperature bound) {_REC}"
PROV_SMALL_TAU = f"R8 (small-tau asymptote of W*) {_REC}"
PROV_D_MIN = f"section 4.3 / R9 (minimum dimension) {_REC}"
PROV_ALPHA_EFF = "section 2.6 / R7 (SupCon equivalence) [DER+NUM]"
PROV_R10 = "R10 (self-excluded regimes, reduced 2-D problem) [DER+NUM] [DER+SDP]"
PROV_BATCH = "section 6.2 [CODE] (setup) + [REC] (mapping)"
PROV_PAPER = "section 1 authors' notation [CODE]"

#: accepted spellings of the loss variant -> canonical name
VARIANTS: dict[str, str] = {
    "code": "code",
    "incl-self": "code",
    "self-excluded": "self-excluded",
}

_EPS = float(np.finfo(np.float64).eps)
_XTOL = 1e-15  # spec section 6.1
_RTOL = 4.0 * _EPS  # spec section 6.1 (the smallest rtol brentq accepts)
# The R10 side condition is a difference of O(1) softmax weights; at an interior root it equals
# -((np-1) + (K-1)np) e^{s2/tau}/D < 0 exactly (see SSEMDerivation.side_condition_at_root), which
# can be far below rounding (~1e-14 observed at tau = 0.01); only a clear violation counts.
_SIDE_TOL = 1e-12


# --------------------------------------------------------------------------------------------
# Tagged scalars: behave as float / int / str and carry ``.provenance``.
# --------------------------------------------------------------------------------------------
class TaggedFloat(float):
    """A ``float`` with a ``provenance`` attribute (arithmetic returns plain floats)."""

    provenance: str

    def __new__(cls, value: float, provenance: str) -> TaggedFloat:
        obj = super().__new__(cls, value)
        obj.provenance = provenance
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (float(self), self.provenance))


class TaggedInt(int):
    """An ``int`` with a ``provenance`` attribute."""

    provenance: str

    def __new__(cls, value: int, provenance: str) -> TaggedInt:
        obj = super().__new__(cls, value)
        obj.provenance = provenance
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (int(self), self.provenance))


class TaggedStr(str):
    """A ``str`` with a ``provenance`` attribute."""

    provenance: str

    def __new__(cls, value: str, provenance: str) -> TaggedStr:
        obj = super().__new__(cls, value)
        obj.provenance = provenance
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.provenance))


# --------------------------------------------------------------------------------------------
# Validation (private: theory must not import solvers.validation).
# --------------------------------------------------------------------------------------------
def _check_variant(variant: object) -> str:
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}; got {variant!r}")
    return VARIANTS[variant]


def _check_Kn(K: object, n: object) -> tuple[int, int]:
    return chk.integer(K, "K", 2), chk.integer(n, "n", 2)


def _check_p(p: object, variant: str, *, required: bool) -> int:
    """p >= 1 (code) or p >= 2 (self-excluded); ``None`` allowed for the code variant only."""
    if p is None:
        if variant == "self-excluded" and required:
            raise ValueError(
                "p (views per instance) is required for variant='self-excluded' and must be an integer >= 2; got None"
            )
        return 2  # the code variant does not depend on p (R2); 2 is a placeholder
    return chk.integer(p, "p", 2 if variant == "self-excluded" else 1)


# --------------------------------------------------------------------------------------------
# Symbolic derivation
# --------------------------------------------------------------------------------------------
# sympy and the symbols below are set by _load_sympy() on the first derivation: answering from
# the on-disk cache of the generated code must not import sympy (~0.4 s).
sp: Any = None
_beta: Any = None
_alpha: Any = None
_tau: Any = None
_K: Any = None
_n: Any = None
_p: Any = None
_w: Any = None  # w = 1 - beta
_u: Any = None  # u = 1/r = exp(-K/((K-1) tau))
_v: Any = None  # v = 1 - alpha
_r: Any = None
_a: Any = None  # R10: mean other-view similarity abar
_b: Any = None  # R10: mean same-class similarity bbar
_X: Any = None
_eps: Any = None
_m: Any = None  # log-sum-exp shift of the R10 objective


def _load_sympy() -> None:
    """Import sympy and create the symbols of the derivation (once per process)."""
    global sp, _beta, _alpha, _tau, _K, _n, _p, _w, _u, _v, _r, _a, _b, _X, _eps, _m
    if sp is not None:
        return
    import sympy

    _beta, _alpha, _tau = sympy.symbols("beta alpha tau", positive=True)
    _K, _n, _p = sympy.symbols("K n p", positive=True)
    _w, _u, _v, _r = sympy.symbols("w u v r", positive=True)
    _a, _b = sympy.symbols("abar bbar", real=True)
    _X, _eps = sympy.symbols("X epsilon", positive=True)
    _m = sympy.Symbol("m", real=True)
    sp = sympy  # last: a failure above leaves the module in its initial state


def _symbolic(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: import sympy (and create the symbols) before running a derivation step."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _load_sympy()
        return func(*args, **kwargs)

    return wrapper


@_symbolic
def _basis_dot(x: tuple[Any, ...], y: tuple[Any, ...]) -> sp.Expr:
    """Inner products of the SSEM building blocks (spec section 4.1).

    ``("w", c)``: class simplex, w_c . w_c' = 1 or -1/(K-1); ``("e", c, i)``: instance simplex
    of class c, e_ci . e_ci' = 1 or -1/(n-1); distinct classes' instance simplices are mutually
    orthogonal and orthogonal to span{w_c}.
    """
    if x[0] != y[0]:
        return sp.Integer(0)
    if x[0] == "w":
        return sp.Integer(1) if x[1] == y[1] else -1 / (_K - 1)
    if x[1] != y[1]:
        return sp.Integer(0)
    return sp.Integer(1) if x[2] == y[2] else -1 / (_n - 1)


@_symbolic
def _ssem_point(c: int, i: int) -> dict[tuple[Any, ...], sp.Expr]:
    """z_{c,i,a} = sqrt(beta) w_c + sqrt(1-beta) e_{c,i} (every view a), as basis coefficients."""
    return {("w", c): sp.sqrt(_beta), ("e", c, i): sp.sqrt(1 - _beta)}


@_symbolic
def _dot(x: dict[tuple[Any, ...], sp.Expr], y: dict[tuple[Any, ...], sp.Expr]) -> sp.Expr:
    """Bilinear expansion of x . y over the building blocks."""
    return sp.Add(*(cx * cy * _basis_dot(kx, ky) for kx, cx in x.items() for ky, cy in y.items()))


@_symbolic
def _exp_to_u(expr: sp.Expr) -> sp.Expr:
    """Rewrite every exp(arg) as u**k with u = exp(-K/((K-1) tau)); fails if arg is not k*log u."""

    def repl(arg: sp.Expr) -> sp.Expr:
        k = sp.cancel(-arg * (_K - 1) * _tau / _K)
        if k.has(_tau):
            raise ArithmeticError(f"exp({arg}) is not a power of u")
        return _u**k

    return expr.replace(sp.exp, repl)


@_symbolic
def _solve_linear(expr: sp.Expr, x: sp.Symbol) -> sp.Expr:
    """Solve expr(x) = 0 where the numerator of expr is affine in x (asserted)."""
    num = sp.expand(sp.numer(sp.together(expr)))
    poly = sp.Poly(num, x)
    if poly.degree() != 1:
        raise ArithmeticError(f"expected an equation affine in {x}; degree {poly.degree()}")
    c1, c0 = poly.all_coeffs()
    return sp.factor(sp.cancel(-c0 / c1))


@dataclass(frozen=True)
class SSEMDerivation:
    """The sympy expressions of one variant (symbols: beta, alpha, tau, K, n, p; u; v; abar, bbar).

    ``L`` is the R2 loss written literally (log of the un-shifted denominator); ``L_stable`` is
    the same function with the log-sum-exp shifted by the largest similarity (1).
    """

    variant: str
    symbols: dict[str, sp.Symbol]
    s0: sp.Expr  # same instance (any view): 1
    s1: sp.Expr  # same class, other instance
    s2: sp.Expr  # other class
    W: sp.Expr  # within-class variance of the SSEM (R1)
    mu2: sp.Expr  # squared norm of the global mean
    c0: sp.Expr  # self-group count in the denominator: p (code) or p - 1
    D: sp.Expr  # denominator of every anchor
    L: sp.Expr
    L_stable: sp.Expr
    dL: sp.Expr
    d2L: sp.Expr
    alpha_star: sp.Expr  # in tau (R5)
    alpha_star_u: sp.Expr  # in u = exp(-K/((K-1) tau))
    alpha_star_limit: sp.Expr  # tau -> 0 limit (u = 0)
    r_of_alpha: sp.Expr  # r = exp(K/((K-1) tau_max)) solving alpha*(r) = alpha (R6)
    tau_max: sp.Expr
    tau_max_log1p_arg: sp.Expr  # x(v, K, n, p) with tau_max = K/((K-1) log1p(x)), v = 1 - alpha
    W_small_tau: sp.Expr  # R8
    alpha_eff: sp.Expr  # equal per-positive weight point (section 2.6)
    G_se: sp.Expr | None = None  # R10 reduced objective (self-excluded only)
    alpha_split: sp.Expr | None = None
    alpha_split_u: sp.Expr | None = None
    alpha_star_from_R10: sp.Expr | None = None  # alpha*_se re-derived from the R10 cone
    side_condition: sp.Expr | None = None  # R10 regime 1: must be <= 0 at beta*
    side_condition_at_root: sp.Expr | None = None  # the same with alpha eliminated by L' = 0


@_symbolic
def _symbols() -> dict[str, sp.Symbol]:
    return {
        "beta": _beta, "alpha": _alpha, "tau": _tau, "K": _K, "n": _n, "p": _p,
        "w": _w, "u": _u, "v": _v, "r": _r, "abar": _a, "bbar": _b,
    }  # fmt: skip


@functools.cache
@_symbolic
def _gram() -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr, sp.Expr]:
    """s0, s1, s2 from the construction; W and |mu|^2 from the class / global means (R1)."""
    anchor = _ssem_point(0, 0)
    s0 = _dot(anchor, _ssem_point(0, 0))  # any view of the same instance: identical point
    s1 = _dot(anchor, _ssem_point(0, 1))
    s2 = _dot(anchor, _ssem_point(1, 0))
    # |mu_c|^2 = mean over ordered pairs of one class (views coincide): (1 + (n-1) s1)/n
    W = sp.factor(sp.cancel(1 - (s0 + (_n - 1) * s1) / _n))
    mu2 = sp.cancel((s0 + (_n - 1) * s1 + (_K - 1) * _n * s2) / (_K * _n))
    return s0, s1, s2, W, mu2


@functools.cache
@_symbolic
def _loss(variant: str) -> tuple[sp.Expr, ...]:
    """Per-anchor loss of section 2 restricted to SSEM -> (c0, D, L, L_stable, dL, Dtilde)."""
    s0, s1, s2, _, _ = _gram()
    code = variant == "code"
    c0 = _p if code else _p - 1  # self group in the denominator (incl. j itself for "code")
    n_sup = (_n - 1) * _p  # supervised positives: other instances of the class, all views
    n_self = _p if code else _p - 1  # self-supervised positives (incl. j itself for "code")
    groups = [(c0, s0), ((_n - 1) * _p, s1), ((_K - 1) * _n * _p, s2)]
    D = sum(cnt * sp.exp(s / _tau) for cnt, s in groups)
    # -log S(j -> k) = log D - z_k . z_j / tau; the anchor mean over identical anchors is itself.
    nls = lambda logD, s: logD - s / _tau  # noqa: E731
    ell_raw = (1 - _alpha) / n_sup * (n_sup * nls(sp.log(D), s1)) + _alpha / n_self * (n_self * nls(sp.log(D), s0))
    # log-sum-exp shifted by the largest similarity s0 = 1 (exact identity, safe for tiny tau)
    Dt = sum(cnt * sp.exp((s - 1) / _tau) for cnt, s in groups)  # D e^{-1/tau}
    logD_stable = 1 / _tau + sp.log(Dt)
    ell = (1 - _alpha) / n_sup * (n_sup * nls(logD_stable, s1)) + _alpha / n_self * (n_self * nls(logD_stable, s0))
    dL = sp.diff(ell, _beta)
    return c0, D, ell_raw, ell, dL, Dt


@_symbolic
def _G_self_excluded() -> tuple[sp.Expr, sp.Expr]:
    """R10 reduced objective G_se(abar, bbar) and cbar at its bound.

    The log-sum-exp is shifted by a free symbol m (the identity holds for every m; numerically m
    is the largest of abar, bbar, cbar, so the shifted denominator is >= 1 for any tau).
    """
    cbar = -(1 + (_p - 1) * _a + (_n - 1) * _p * _b) / ((_K - 1) * _n * _p)
    Dt = (
        (_p - 1) * sp.exp((_a - _m) / _tau)
        + (_n - 1) * _p * sp.exp((_b - _m) / _tau)
        + (_K - 1) * _n * _p * sp.exp((cbar - _m) / _tau)
    )
    G = _m / _tau + sp.log(Dt) - ((1 - _alpha) * _b + _alpha * _a) / _tau
    return G, cbar


@functools.cache
@_symbolic
def _threshold(variant: str) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """alpha* from L'(1) = 0 (R5): in tau, in u, and its tau -> 0 limit."""
    # at beta = 1 every shifted exponential is a power of u (s1 - 1 = 0, s2 - 1 = -K/(K-1))
    dL1_u = _exp_to_u(_loss(variant)[4].xreplace({_beta: 1}))
    a_star_u = _solve_linear(dL1_u, _alpha)
    a_star = a_star_u.subs(_u, sp.exp(-_K / ((_K - 1) * _tau)))
    return a_star, a_star_u, sp.factor(a_star_u.subs(_u, 0))


@functools.cache
@_symbolic
def _tau_bound(variant: str) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """R6: solve alpha*(r) = alpha for r = exp(K/((K-1) tau)); tau_max = K/((K-1) log r)."""
    a_star_r = sp.cancel(_threshold(variant)[1].subs(_u, 1 / _r))
    r_sol = _solve_linear(a_star_r - _alpha, _r)
    x = sp.factor(sp.cancel(r_sol.subs(_alpha, 1 - _v) - 1))  # r = 1 + x, x in v = 1 - alpha
    return r_sol, _K / ((_K - 1) * sp.log(r_sol)), x


@functools.cache
@_symbolic
def _small_tau(variant: str) -> sp.Expr:
    """R8: leading order of L'(beta) = 0 as tau -> 0 with 1 - s1 = O(tau).

    With X = exp((s1-1)/tau) held fixed, exp((s2-1)/tau) <= exp(-1/tau) -> 0, so it is set to 0;
    the remaining equation is affine in X after clearing denominators.
    """
    s0, s1, s2, _, _ = _gram()
    dL = _loss(variant)[4]
    g = (dL * _tau / _n).xreplace({sp.exp((s2 - 1) / _tau): _eps, sp.exp((s1 - 1) / _tau): _X})
    g0 = g.xreplace({_eps: 0})
    if g0.has(_beta):
        raise ArithmeticError("small-tau reduction left a beta dependence")
    X_sol = _solve_linear(g0, _X)
    # s1* = 1 + tau log X and W = (n-1)/n (1 - s1)   (R1: W = 1 - beta)
    return (_n - 1) / _n * _tau * sp.log(sp.factor(1 / X_sol))


@functools.cache
@_symbolic
def _r10() -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr]:
    """R10: directional derivatives of G_se at collapse (1, 1) along the cone generators.

    (-1, -(p-1)/p) (Cauchy-Schwarz edge) gives alpha_split; (0, -1) gives alpha*_se again.
    """
    G, _ = _G_self_excluded()
    ga, gb = sp.diff(G, _a), sp.diff(G, _b)  # m is a constant shift: G does not depend on it
    G = G.xreplace({_m: 1})
    at = {_a: 1, _b: 1, _m: 1}  # at collapse the largest similarity is abar = bbar = 1
    d_split = _exp_to_u((-ga - (_p - 1) / _p * gb).xreplace(at) * _tau)
    d_star = _exp_to_u((-gb).xreplace(at) * _tau)
    a_split_u = _solve_linear(d_split, _alpha)
    a_split = a_split_u.subs(_u, sp.exp(-_K / ((_K - 1) * _tau)))
    return G, a_split, a_split_u, _solve_linear(d_star, _alpha)


@functools.cache
@_symbolic
def _side_condition() -> tuple[sp.Expr, sp.Expr]:
    """R10 regime-1 side condition and its value at any stationary point of L_SSEM.

    side = (p-1)(e^{1/tau} - e^{s2/tau})/D - alpha (self-excluded); eliminating alpha with
    L'(beta) = 0 (R4) leaves -((np-1) + (K-1)np) e^{s2/tau}/D, which is < 0: the condition holds at
    every interior SSEM optimum (the spec's R10 lists it as checked on a grid, not proven).
    """
    s0, s1, s2, _, _ = _gram()
    _, D, L_raw, _, _, _ = _loss("self-excluded")
    E = sp.symbols("E0 E1 E2", positive=True)
    atoms = [sp.exp(s0 / _tau), sp.exp(s1 / _tau), sp.exp(s2 / _tau)]
    to_E, from_E = dict(zip(atoms, E, strict=True)), dict(zip(E, atoms, strict=True))
    side = (_p - 1) * (sp.exp(1 / _tau) - sp.exp(s2 / _tau)) / D - _alpha
    alpha_root = _solve_linear(sp.diff(L_raw, _beta).subs(to_E), _alpha)
    side_root = sp.factor(sp.cancel(side.subs(to_E).subs(_alpha, alpha_root)))
    return side, side_root.subs(from_E)


@functools.cache
@_symbolic
def derivation(variant: str = "code") -> SSEMDerivation:
    """All sympy expressions for one variant (cached; a few tenths of a second on first call).

    Provenance: R1-R8 (and R10 for ``"self-excluded"``) ``[REC] [DER+NUM]``.
    """
    variant = _check_variant(variant)
    s0, s1, s2, W, mu2 = _gram()
    c0, D, L_raw, L, dL, _ = _loss(variant)
    a_star, a_star_u, a_lim = _threshold(variant)
    r_sol, tmax, x = _tau_bound(variant)
    extra: dict[str, Any] = {}
    if variant == "self-excluded":
        G, a_split, a_split_u, a_star_r10 = _r10()
        side, side_root = _side_condition()
        extra = {
            "G_se": G,
            "alpha_split": a_split,
            "alpha_split_u": a_split_u,
            "alpha_star_from_R10": a_star_r10,
            "side_condition": side,
            "side_condition_at_root": side_root,
        }
    # section 2.6: equal per-positive weights alpha/(p-1) = (1-alpha)/((n-1)p), denominators cleared
    a_eff = _solve_linear(_alpha * (_n - 1) * _p - (1 - _alpha) * (_p - 1), _alpha)
    return SSEMDerivation(
        variant=variant,
        symbols=_symbols(),
        s0=s0,
        s1=s1,
        s2=s2,
        W=W,
        mu2=mu2,
        c0=c0,
        D=D,
        L=L_raw,
        L_stable=L,
        dL=dL,
        d2L=sp.diff(dL, _beta),
        alpha_star=a_star,
        alpha_star_u=a_star_u,
        alpha_star_limit=a_lim,
        r_of_alpha=r_sol,
        tau_max=tmax,
        tau_max_log1p_arg=x,
        W_small_tau=_small_tau(variant),
        alpha_eff=a_eff,
        **extra,
    )


@_symbolic
def symbolic_summary(variant: str = "code", p: int | None = None) -> dict[str, str]:
    """The derived sympy expressions as strings, for reports.

    Keys: ``s1``, ``s2``, ``W``, ``L``, ``dL_dbeta``, ``alpha_star``, ``alpha_star_u``,
    ``alpha_star_limit``, ``tau_max``, ``W_small_tau`` (and ``alpha_split`` for the self-excluded
    variant), plus ``provenance``.  With ``p`` given, p is substituted.
    """
    v = _check_variant(variant)
    d = derivation(v)
    sub: dict[sp.Symbol, Any] = {}
    if p is not None:
        sub = {_p: _check_p(p, v, required=True)}

    def fmt(e: sp.Expr) -> str:
        return sp.sstr(e.subs(sub) if sub else e)

    out = {
        "variant": v,
        "s1": fmt(d.s1),
        "s2": fmt(d.s2),
        "W": fmt(d.W),
        "L": fmt(d.L),
        "dL_dbeta": fmt(d.dL),
        "alpha_star": fmt(d.alpha_star),
        "alpha_star_u": fmt(d.alpha_star_u) + "   (u = exp(-K/((K-1)*tau)))",
        "alpha_star_limit": fmt(d.alpha_star_limit),
        "tau_max": fmt(d.tau_max),
        "W_small_tau": fmt(d.W_small_tau),
        "provenance": f"R1-R8 {_REC}, derived at run time with sympy",
    }
    if v == "self-excluded":
        out["alpha_split"] = fmt(d.alpha_split)
        out["provenance"] += f"; alpha_split: {PROV_R10}"
    return out


# --------------------------------------------------------------------------------------------
# Lambdified numerics
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SSEMNumerics:
    """Lambdified, numerically safe forms of one variant's derivation.

    ``L_w(w, alpha, tau, K, n, p)`` and ``dL_w(...)`` are L and dL/dbeta at beta = 1 - w;
    ``alpha_star_u(u, K, n, p)`` with u = exp(-K/((K-1) tau)); ``alpha_star_limit(K, n, p)``;
    ``tau_max_x(v, K, n, p)`` is x with tau_max = K/((K-1) log1p(x)), v = 1 - alpha;
    ``W_small_tau(alpha, tau, n, p)``; for the self-excluded variant ``alpha_split_u(u, K, n, p)``
    and ``G``, ``dG_a``, ``dG_b`` (abar, bbar, alpha, tau, K, n, p) of R10.  No input checks.
    """

    variant: str
    L_w: Callable[..., Any]
    dL_w: Callable[..., Any]
    alpha_star_u: Callable[..., Any]
    alpha_star_limit: Callable[..., Any]
    tau_max_x: Callable[..., Any]
    W_small_tau: Callable[..., Any]
    alpha_split_u: Callable[..., Any] | None = None
    G: Callable[..., Any] | None = None
    dG_a: Callable[..., Any] | None = None
    dG_b: Callable[..., Any] | None = None


_VARIANT_FUNCTIONS = ("L_w", "dL_w", "alpha_star_u", "alpha_star_limit", "tau_max_x", "W_small_tau")
#: the generated functions, in groups that are derived together and cached in one file each
_GROUPS: dict[str, tuple[str, ...]] = {
    "code": _VARIANT_FUNCTIONS,
    "self-excluded": _VARIANT_FUNCTIONS,
    "common": ("w_etf", "alpha_eff"),
    "r10": ("alpha_split_u", "cbar", "G", "dG_a", "dG_b"),
}


@_symbolic
def _lambdify_group(group: str) -> dict[str, Callable[..., Any]]:
    """Derive one group's expressions with sympy and lambdify them (see :class:`SSEMNumerics`).

    ``"code"`` / ``"self-excluded"``: L and L' at beta = 1 - w (R2, R4), alpha*(u) and its limit
    (R5), x(v) of tau_max (R6), the small-tau W* (R8).  ``"common"``: w at s1 = s2 (the alpha = 1
    root, section 4.4) and alpha_eff (section 2.6).  ``"r10"``: alpha_split(u), cbar and G_se with
    its two partial derivatives (R10; the log-sum-exp shift m is an argument).
    """
    args_w = (_w, _alpha, _tau, _K, _n, _p)
    args_u = (_u, _K, _n, _p)
    if group in ("code", "self-excluded"):
        _, _, _, L, dL, Dt = _loss(group)
        at_w = {_beta: 1 - _w}
        # L = log(Dtilde) + rest; the rest is O(w) once simplified (no 1/tau - s1/tau cancellation)
        rest = sp.factor(sp.cancel(sp.expand(L.xreplace(at_w) - sp.log(Dt.xreplace(at_w)))))
        if rest.has(sp.log):
            raise ArithmeticError("L - log(Dtilde) still contains a logarithm")
        _, a_u, a_lim = _threshold(group)
        return {
            "L_w": sp.lambdify(args_w, sp.log(Dt.xreplace(at_w)) + rest, "numpy"),
            "dL_w": sp.lambdify(args_w, dL.xreplace(at_w), "math"),
            "alpha_star_u": sp.lambdify(args_u, a_u, "math"),
            "alpha_star_limit": sp.lambdify((_K, _n, _p), a_lim, "math"),
            "tau_max_x": sp.lambdify((_v, _K, _n, _p), _tau_bound(group)[2], "math"),
            "W_small_tau": sp.lambdify((_alpha, _tau, _n, _p), _small_tau(group), "math"),
        }
    if group == "common":
        _, s1, s2, _, _ = _gram()
        beta_etf = _solve_linear(s1 - s2, _beta)  # s1(beta) = s2(beta): the full ETF
        # section 2.6: equal per-positive weights alpha/(p-1) = (1-alpha)/((n-1)p)
        a_eff = _solve_linear(_alpha * (_n - 1) * _p - (1 - _alpha) * (_p - 1), _alpha)
        return {
            "w_etf": sp.lambdify((_K, _n), sp.factor(1 - beta_etf), "math"),
            "alpha_eff": sp.lambdify((_n, _p), a_eff, "math"),
        }
    if group == "r10":
        _, _, a_split_u, _ = _r10()
        G, cbar = _G_self_excluded()
        args = (_a, _b, _m, _alpha, _tau, _K, _n, _p)
        out = {
            "alpha_split_u": sp.lambdify(args_u, a_split_u, "math"),
            "cbar": sp.lambdify((_a, _b, _K, _n, _p), cbar, "math"),
        }
        for name, expr in (("G", G), ("dG_a", sp.diff(G, _a)), ("dG_b", sp.diff(G, _b))):
            out[name] = sp.lambdify(args, expr, "math")
        return out
    raise ValueError(f"group must be one of {sorted(_GROUPS)}; got {group!r}")


# --------------------------------------------------------------------------------------------
# On-disk cache of the generated code
# --------------------------------------------------------------------------------------------
# One JSON file per group, ``ssem-numerics-<group>.json``, holding the source text that lambdify
# generated for each function and, for every global name that text uses, the math / numpy /
# builtins attribute it denotes.  A file is used only if its key (sha256 of the cache format,
# this module's source and the sympy version) matches, its checksum matches, and every source
# is a single ``def f(args): return <expression>`` built from arithmetic, numeric literals, the
# arguments and those recorded names (checked on the syntax tree before compiling); anything else
# (missing, truncated, corrupted, stale or foreign file) is ignored and regenerated.  Files are
# written atomically (temporary file + os.replace), so concurrent processes never see half a file.
_CACHE_FORMAT = 1
_CACHE_MODULES = ("math", "numpy", "builtins")  # the only modules generated code may refer to
_AST_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod, ast.FloorDiv, ast.USub, ast.UAdd)


def _sympy_version() -> str:
    """The installed sympy version, read without importing sympy (release.py, else metadata)."""
    import importlib.util

    spec = importlib.util.find_spec("sympy")
    if spec is not None and spec.origin:
        release = Path(spec.origin).with_name("release.py")
        try:
            found = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", release.read_text(encoding="utf-8"))
        except OSError:
            found = None
        if found:
            return found.group(1)
    from importlib.metadata import version

    return version("sympy")


@functools.cache
def _cache_key() -> str | None:
    """sha256 of the cache format, this module's source and the sympy version (None: unavailable)."""
    try:
        source = Path(__file__).read_bytes()
        sympy_version = _sympy_version()
    except Exception:  # no readable source or no sympy metadata: run without the cache
        return None
    h = hashlib.sha256(f"collapsekit theory.ssem cache format {_CACHE_FORMAT}\n".encode())
    h.update(source)
    h.update(f"\nsympy {sympy_version}\n".encode())
    return h.hexdigest()


def _usable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def _private_temp_dir() -> Path | None:
    """``<tmp>/collapsekit-<uid>``, mode 0700; refused unless it is our own non-shared directory."""
    import stat
    import tempfile

    uid = os.getuid() if hasattr(os, "getuid") else None
    path = Path(tempfile.gettempdir()) / f"collapsekit-{uid if uid is not None else 'cache'}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or (uid is not None and (st.st_uid != uid or st.st_mode & 0o022)):
        return None
    return path if os.access(path, os.W_OK | os.X_OK) else None


def _cache_dir() -> Path | None:
    """``$COLLAPSEKIT_CACHE``, else ``~/.cache/collapsekit``; a private temp dir if not writable.

    ``None`` (no cache) when ``COLLAPSEKIT_NO_CACHE`` is set to anything but ``""`` / ``"0"``, or
    when no directory is writable.
    """
    if os.environ.get("COLLAPSEKIT_NO_CACHE", "") not in ("", "0"):
        return None
    env = os.environ.get("COLLAPSEKIT_CACHE", "")
    try:
        path = Path(env).expanduser() if env else Path.home() / ".cache" / "collapsekit"
    except RuntimeError:  # no home directory
        path = None
    if path is not None and _usable_dir(path):
        return path
    return _private_temp_dir()


def _cache_path(group: str) -> Path | None:
    """The cache file of one group, or ``None`` when caching is off or unavailable."""
    directory = _cache_dir()
    if directory is None or _cache_key() is None:
        return None
    return directory / f"ssem-numerics-{group}.json"


def _checksum(functions: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(functions, sort_keys=True).encode()).hexdigest()


def _check_generated(tree: ast.Module, namespace: dict[str, list[Any]]) -> ast.FunctionDef:
    """Accept only ``def f(a, b, ...): return <arithmetic of a, b, numbers, namespace names>``."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        raise ValueError("expected exactly one function definition")
    fn = tree.body[0]
    a = fn.args
    if fn.decorator_list or a.posonlyargs or a.kwonlyargs or a.vararg or a.kwarg or a.defaults:
        raise ValueError("expected plain positional arguments")
    if len(fn.body) != 1 or not isinstance(fn.body[0], ast.Return) or fn.body[0].value is None:
        raise ValueError("expected a single return statement")
    params = {arg.arg for arg in a.args}
    modules = {name for name, (_, attr) in namespace.items() if attr is None}
    for node in ast.walk(fn.body[0].value):
        if isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load) or (node.id not in params and node.id not in namespace):
                raise ValueError(f"unexpected name {node.id!r}")
        elif isinstance(node, ast.Attribute):  # module.function, e.g. numpy.exp
            if not (isinstance(node.value, ast.Name) and node.value.id in modules) or node.attr.startswith("_"):
                raise ValueError("unexpected attribute access")
        elif isinstance(node, ast.Call):
            if node.keywords or not isinstance(node.func, (ast.Name, ast.Attribute)):
                raise ValueError("unexpected call")
        elif isinstance(node, ast.Constant):
            if type(node.value) not in (int, float):
                raise ValueError("unexpected constant")
        elif not isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Load, *_AST_OPERATORS)):
            raise ValueError(f"unexpected syntax {type(node).__name__}")
    return fn


def _compile_entry(entry: dict[str, Any], label: str) -> Callable[..., Any]:
    """Rebuild one cached function: check its source, resolve its names, compile it."""
    source, namespace = entry["source"], entry["namespace"]
    if not isinstance(source, str) or not isinstance(namespace, dict):
        raise ValueError("malformed entry")
    for name, ref in namespace.items():
        if not (
            isinstance(name, str)
            and isinstance(ref, list)
            and len(ref) == 2
            and ref[0] in _CACHE_MODULES
            and (ref[1] is None or (isinstance(ref[1], str) and not ref[1].startswith("_")))
        ):
            raise ValueError(f"malformed namespace entry {name!r}")
    tree = ast.parse(source, mode="exec")
    fn = _check_generated(tree, namespace)
    env: dict[str, Any] = {"__builtins__": builtins}
    for name, (module, attr) in namespace.items():
        mod = importlib.import_module(module)
        env[name] = mod if attr is None else getattr(mod, attr)
    exec(compile(tree, f"<theory.ssem cached {label}>", "exec"), env)  # checked above: arithmetic only
    return env[fn.name]


def _locate(obj: Any, name: str) -> list[Any]:
    """[module, attribute] (attribute None: the module itself) of a math / numpy / builtins object."""
    mods = [importlib.import_module(m) for m in _CACHE_MODULES]
    for mod in mods:
        if obj is mod:
            return [mod.__name__, None]
        if not name.startswith("_") and getattr(mod, name, None) is obj:
            return [mod.__name__, name]
    for mod in mods:
        for attr, value in vars(mod).items():
            if value is obj and not attr.startswith("_"):
                return [mod.__name__, attr]
    raise ValueError(f"{name!r} is not a math / numpy / builtins object")


def _serialise(func: Callable[..., Any], label: str) -> dict[str, Any]:
    """The source of a lambdified function and the math/numpy names it uses; verified by rebuilding
    it and comparing the code objects (same bytecode, constants and names: the same function)."""
    import inspect

    source = inspect.getsource(func)
    tree = ast.parse(source, mode="exec")
    params = {arg.arg for fn in tree.body if isinstance(fn, ast.FunctionDef) for arg in fn.args.args}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id not in params}
    namespace = {name: _locate(func.__globals__[name], name) for name in sorted(names)}
    entry = {"source": source, "namespace": namespace}
    rebuilt = _compile_entry(entry, label)
    a, b = func.__code__, rebuilt.__code__
    if (a.co_code, a.co_consts, a.co_names, a.co_varnames) != (b.co_code, b.co_consts, b.co_names, b.co_varnames):
        raise ValueError(f"{label}: the cached source does not reproduce the lambdified function")
    if any(rebuilt.__globals__[n] is not func.__globals__[n] for n in namespace):
        raise ValueError(f"{label}: a name resolves to a different object")
    return entry


def _cache_load(path: Path, group: str) -> dict[str, Callable[..., Any]] | None:
    """The group's functions from its cache file, or ``None`` if the file is absent or unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT or data.get("group") != group:
            return None
        if data.get("key") != _cache_key():
            return None  # stale: another version of this module or of sympy
        functions = data["functions"]
        if data.get("checksum") != _checksum(functions) or sorted(functions) != sorted(_GROUPS[group]):
            return None
        return {name: _compile_entry(functions[name], f"{group}:{name}") for name in _GROUPS[group]}
    except Exception:  # missing, unreadable or corrupted: any failure means "derive again"
        return None


def _atomic_write(path: Path, text: str) -> None:
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _cache_store(path: Path, group: str, funcs: dict[str, Callable[..., Any]]) -> bool:
    """Write the group's generated code to ``path`` (atomically); False if it could not be cached."""
    try:
        functions = {name: _serialise(funcs[name], f"{group}:{name}") for name in _GROUPS[group]}
        payload = {
            "format": _CACHE_FORMAT,
            "key": _cache_key(),
            "group": group,
            "module": __name__,
            "sympy": sp.__version__,
            "functions": functions,
            "checksum": _checksum(functions),
        }
        _atomic_write(path, json.dumps(payload, indent=1, sort_keys=True))
    except Exception:  # the cache is an optimisation: never fail a computation because of it
        return False
    return True


@functools.cache
def _numeric(group: str) -> dict[str, Callable[..., Any]]:
    """One group's numeric functions: from the on-disk cache, else derived with sympy and cached."""
    if group not in _GROUPS:
        raise ValueError(f"group must be one of {sorted(_GROUPS)}; got {group!r}")
    path = _cache_path(group)
    if path is not None:
        cached = _cache_load(path, group)
        if cached is not None:
            return cached
    funcs = _lambdify_group(group)
    if path is not None:
        _cache_store(path, group, funcs)
    return funcs


def _num_threshold(variant: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    g = _numeric(variant)
    return g["alpha_star_u"], g["alpha_star_limit"]


def _num_loss(variant: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    g = _numeric(variant)
    return g["L_w"], g["dL_w"]


def _num_w_etf() -> Callable[..., Any]:
    """w = 1 - beta at s1(beta) = s2(beta), the alpha = 1 root (section 4.4: the full ETF)."""
    return _numeric("common")["w_etf"]


def _num_tau(variant: str) -> Callable[..., Any]:
    return _numeric(variant)["tau_max_x"]


def _num_small_tau(variant: str) -> Callable[..., Any]:
    return _numeric(variant)["W_small_tau"]


@functools.cache
def _num_r10() -> tuple[Callable[..., Any], ...]:
    """alpha_split(u, K, n, p) and G_se, dG_se/dabar, dG_se/dbbar at (abar, bbar, alpha, tau, K, n, p)."""
    g = _numeric("r10")
    c_num = g["cbar"]

    def shifted(f: Callable[..., Any]) -> Callable[..., float]:
        def h(a: float, b: float, alpha: float, tau: float, K: int, n: int, p: int) -> float:
            m = max(a, b, c_num(a, b, K, n, p))
            return f(a, b, m, alpha, tau, K, n, p)

        return h

    return (g["alpha_split_u"], *(shifted(g[name]) for name in ("G", "dG_a", "dG_b")))


def numeric_functions(variant: str = "code") -> SSEMNumerics:
    """The lambdified numeric functions of one variant (from the on-disk cache, else derived)."""
    v = _check_variant(variant)
    L_w, dL_w = _num_loss(v)
    a_u, a_lim = _num_threshold(v)
    extra: dict[str, Any] = {}
    if v == "self-excluded":
        a_split_u, G, Ga, Gb = _num_r10()
        extra = {"alpha_split_u": a_split_u, "G": G, "dG_a": Ga, "dG_b": Gb}
    return SSEMNumerics(
        variant=v,
        L_w=L_w,
        dL_w=dL_w,
        alpha_star_u=a_u,
        alpha_star_limit=a_lim,
        tau_max_x=_num_tau(v),
        W_small_tau=_num_small_tau(v),
        **extra,
    )


def _limit(variant: str, n: int, p: int) -> float:
    """The tau -> 0 limit of alpha* (1/n or (p-1)/(np-1)), correctly rounded (K drops out).

    Comparing alpha with the rounded limit treats ``alpha = 0.2`` as 1/5 for n = 5, consistently
    with alpha* in floats (which equals the rounded limit at tiny tau).  Any float above it is
    also above the exact limit.
    """
    return float(_num_threshold(variant)[1](Fraction(2), Fraction(n), Fraction(p)))


def _u_of(tau: float, K: int) -> float:
    """u = exp(-K/((K-1) tau)) = 1/r; underflows harmlessly to 0 for tiny tau."""
    return math.exp(-K / ((K - 1) * tau))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def alpha_star(K: int, n: int, tau: float, variant: str = "code", p: int | None = None) -> TaggedFloat:
    """Collapse threshold (R5): beta* = 1 (W* = 0) iff alpha <= alpha*.

    Derived from L'(1) = 0.  Code variant (independent of p)::

        alpha* = (r + Kn - 1) / (n (r + K - 1)) = (1 + (Kn-1) u) / (n (1 + (K-1) u)),

    self-excluded: 1 - alpha* = (n-1) p (1-u) / ((np-1) + (K-1) n p u),
    with r = exp(K/((K-1) tau)) = 1/u.  Evaluated in the u form (safe for tiny tau).
    ``p`` is required for ``variant="self-excluded"``.  Provenance: R5 ``[REC] [DER+NUM]``.
    """
    v = _check_variant(variant)
    K, n = _check_Kn(K, n)
    tau = chk.positive(tau, "tau")
    p_ = _check_p(p, v, required=True)
    val = _num_threshold(v)[0](_u_of(tau, K), K, n, p_)
    return TaggedFloat(val, PROV_ALPHA_STAR)


def tau_max(alpha: float, K: int, n: int, variant: str = "code", p: int | None = None) -> TaggedFloat:
    """Temperature bound (R6): collapse is avoided iff tau < tau_max(alpha).

    tau_max = K / ((K-1) log r(alpha)) where r solves alpha*(r) = alpha; computed as
    K / ((K-1) log1p(x)) with x = r - 1 written in v = 1 - alpha.  Code variant:
    r = (1 + (K-1) q)/(1 - q), q = n(1-alpha)/(n-1).  Returns ``0.0`` when alpha <= the
    small-tau limit of alpha* (1/n or (p-1)/(np-1)) and ``inf`` at alpha = 1.
    Provenance: R6 ``[REC] [DER+NUM]``.
    """
    v_ = _check_variant(variant)
    alpha = chk.unit_interval(alpha, "alpha")
    K, n = _check_Kn(K, n)
    p_ = _check_p(p, v_, required=True)
    if alpha <= _limit(v_, n, p_):
        return TaggedFloat(0.0, PROV_TAU_MAX)
    if alpha == 1.0:
        return TaggedFloat(math.inf, PROV_TAU_MAX)
    # x is a rational function of v = 1 - alpha: evaluate it exactly at the float alpha (its
    # denominator vanishes at the limit, so float evaluation would cancel catastrophically there)
    x = _num_tau(v_)(1 - Fraction(alpha), K, n, p_)
    return TaggedFloat(K / ((K - 1) * math.log1p(float(x))), PROV_TAU_MAX)


def loss_ssem(
    beta: float | np.ndarray,
    alpha: float,
    tau: float,
    K: int,
    n: int,
    p: int = 2,
    variant: str = "code",
) -> TaggedFloat | np.ndarray:
    """The SupCL loss restricted to SSEM (R2), evaluated in the log domain.

    L(beta) = log D(beta) - ((1-alpha) s1(beta) + alpha)/tau, with
    D = c0 e^{1/tau} + (n-1)p e^{s1/tau} + (K-1)np e^{s2/tau}, s1 = (n beta - 1)/(n-1),
    s2 = -beta/(K-1), c0 = p (code) or p-1 (self-excluded).  Array ``beta`` gives an array.
    Provenance: R2 ``[REC] [DER+NUM]``.
    """
    v = _check_variant(variant)
    alpha, tau = chk.unit_interval(alpha, "alpha"), chk.positive(tau, "tau")
    K, n = _check_Kn(K, n)
    p_ = _check_p(p, v, required=True)
    try:
        b = np.asarray(beta, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"beta must be a real number or array in [0, 1]; got {beta!r}") from None
    if np.any(np.isnan(b)) or np.any((b < 0.0) | (b > 1.0)):
        raise ValueError(f"beta must lie in [0, 1]; got {beta!r}")
    val = _num_loss(v)[0](1.0 - b, alpha, tau, K, n, p_)
    if b.ndim == 0:
        return TaggedFloat(float(val), PROV_LOSS)
    return np.asarray(val, dtype=np.float64)


def W_small_tau(alpha: float, tau: float, n: int, variant: str = "code", p: int | None = None) -> TaggedFloat:
    """Small-tau asymptote of W* (R8).

    Code: W* ~ (n-1)/n * tau * ln(alpha (n-1)/(1-alpha)) for alpha > 1/n; self-excluded:
    W* ~ (n-1)/n * tau * ln(alpha p (n-1)/((1-alpha)(p-1))) for alpha > (p-1)/(np-1).
    Returns ``nan`` at or below that limit and ``inf`` at alpha = 1 (where the asymptote does not
    apply: s1 = s2 there).  The exact value is ``beta_star(...).W_star``.
    Provenance: R8 ``[REC] [DER+NUM]``.
    """
    v = _check_variant(variant)
    alpha, tau = chk.unit_interval(alpha, "alpha"), chk.positive(tau, "tau")
    n = chk.integer(n, "n", 2)
    p_ = _check_p(p, v, required=True)
    if alpha <= _limit(v, n, p_):
        return TaggedFloat(math.nan, PROV_SMALL_TAU)
    if alpha == 1.0:
        return TaggedFloat(math.inf, PROV_SMALL_TAU)
    return TaggedFloat(_num_small_tau(v)(alpha, tau, n, p_), PROV_SMALL_TAU)


def d_min(K: int, n: int, beta: float | None = None) -> TaggedInt:
    """Minimum dimension of the SSEM (section 4.3): Kn - 1 if beta < 1 (or None), K - 1 if beta = 1.

    Provenance: section 4.3 ``[REC] [DER+NUM]``.
    """
    K, n = _check_Kn(K, n)
    if beta is not None:
        if chk.unit_interval(beta, "beta") == 1.0:
            return TaggedInt(K - 1, PROV_D_MIN)
    return TaggedInt(K * n - 1, PROV_D_MIN)


def alpha_eff_supcon(n: int, p: int) -> TaggedFloat:
    """SupCon L_out equals the self-excluded variant at alpha_eff = (p-1)/(np-1) (section 2.6).

    Derived from equal per-positive weights alpha/(p-1) = (1-alpha)/((n-1)p).  ``p >= 1``.
    Provenance: section 2.6 / R7 ``[DER+NUM]``.
    """
    n = chk.integer(n, "n", 2)
    p = chk.integer(p, "p", 1)
    return TaggedFloat(float(_numeric("common")["alpha_eff"](n, p)), PROV_ALPHA_EFF)


def alpha_split(K: int, n: int, p: int, tau: float) -> TaggedFloat:
    """R10 (self-excluded): below alpha_split the minimiser is "view-split", not an SSEM.

    alpha_split = (p-1)(n p E - 1), E = (r-1)/((np-1) r + (K-1) n p), derived as the zero of the
    directional derivative of G_se at collapse along the Cauchy-Schwarz edge (-1, -(p-1)/p).
    May be negative (then the SSEM is optimal for every alpha).  ``p >= 2``.
    Provenance: R10 ``[DER+NUM] [DER+SDP]``.
    """
    K, n = _check_Kn(K, n)
    p = chk.integer(p, "p", 2)
    tau = chk.positive(tau, "tau")
    return TaggedFloat(_num_r10()[0](_u_of(tau, K), K, n, p), PROV_R10)


def regime(alpha: float, tau: float, K: int, n: int, p: int = 2, variant: str = "code") -> TaggedStr:
    """``"ssem-interior"``, ``"collapse"`` or ``"view-split"`` (self-excluded only).

    Code (R5): collapse iff alpha <= alpha*.  Self-excluded (R10): alpha > alpha*_se interior;
    max(0, alpha_split) <= alpha <= alpha*_se collapse; alpha < alpha_split view-split.
    """
    v = _check_variant(variant)
    alpha, tau = chk.unit_interval(alpha, "alpha"), chk.positive(tau, "tau")
    K, n = _check_Kn(K, n)
    p_ = _check_p(p, v, required=True)
    a_star = alpha_star(K, n, tau, v, p_)
    if v == "code":
        name = "collapse" if alpha <= a_star else "ssem-interior"
        return TaggedStr(name, PROV_ALPHA_STAR)
    if alpha > a_star:
        name = "ssem-interior"
    elif alpha >= alpha_split(K, n, p_, tau):
        name = "collapse"
    else:
        name = "view-split"
    return TaggedStr(name, f"{PROV_ALPHA_STAR}; {PROV_R10}")


@dataclass(frozen=True)
class SSEMOptimum:
    """Result of :func:`beta_star`.  ``result["W_star"]`` works as well as ``result.W_star``.

    ``beta_star``, ``W_ssem = 1 - beta_star`` and ``L_ssem`` refer to the minimiser of L restricted
    to SSEM.  ``W_star``, ``B_star``, ``T_star``, ``L_star`` are the global optimum: equal to the
    SSEM values except in the self-excluded "view-split" regime (R10), where they come from the
    reduced 2-D problem (never 1 - beta* there, spec section 6.1).  ``abar``/``bbar``: mean
    same-instance (other views) and same-class similarities at the optimum (self-excluded only).
    """

    alpha: float
    tau: float
    K: int
    n: int
    p: int
    variant: str
    beta_star: float
    W_star: float
    B_star: float
    T_star: float
    L_star: float
    regime: str
    d_min: int
    alpha_star: float
    W_ssem: float
    L_ssem: float
    W_small_tau: float
    provenance: str
    alpha_split: float | None = None
    abar: float | None = None
    bbar: float | None = None
    side_condition: float | None = None  # R10 regime 1: (p-1)(e^{1/tau}-e^{s2/tau})/D - alpha <= 0

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def as_dict(self) -> dict[str, Any]:
        """Plain ``dict`` (JSON-friendly)."""
        return asdict(self)


def reduced_self_excluded_minimum(alpha: float, tau: float, K: int, n: int, p: int) -> dict[str, float | str]:
    """Global minimum of the self-excluded loss via the reduced 2-D convex problem of R10.

    Minimises G_se(abar, bbar) over -1/(p-1) <= abar <= 1,
    -(1+(p-1) abar)/((n-1)p) <= bbar <= (1+(p-1) abar)/p, with cbar at its bound (mu = 0).
    Nested 1-D Brent roots: h(abar) = min_b G_se is convex, and h'(abar) is the derivative of G_se
    along the active b-constraint (envelope theorem).  Returns abar, bbar, L (the minimum) and
    W = 1 - (1 + (p-1) abar + (n-1) p bbar)/(np).  Provenance: R10 ``[DER+NUM] [DER+SDP]``.
    """
    from scipy.optimize import brentq  # lazy: ~0.3 s to import, not needed for the thresholds

    alpha, tau = chk.unit_interval(alpha, "alpha"), chk.positive(tau, "tau")
    K, n = _check_Kn(K, n)
    p = chk.integer(p, "p", 2)
    _, G, Ga, Gb = _num_r10()
    args = (alpha, tau, K, n, p)
    slope_hi = (p - 1) / p
    slope_lo = -(p - 1) / ((n - 1) * p)

    def inner(a: float) -> tuple[float, float]:
        """b*(a) and h'(a)."""
        m = 1.0 + (p - 1) * a
        b_hi, b_lo = m / p, -m / ((n - 1) * p)
        g_hi = Gb(a, b_hi, *args)
        if g_hi <= 0.0:
            return b_hi, Ga(a, b_hi, *args) + g_hi * slope_hi
        g_lo = Gb(a, b_lo, *args)
        if g_lo >= 0.0:
            return b_lo, Ga(a, b_lo, *args) + g_lo * slope_lo
        b = brentq(lambda bb: Gb(a, bb, *args), b_lo, b_hi, xtol=_XTOL, rtol=_RTOL)
        return b, Ga(a, b, *args)

    a_lo = -1.0 / (p - 1)
    if inner(1.0)[1] <= 0.0:
        a = 1.0
    elif inner(a_lo)[1] >= 0.0:
        a = a_lo
    else:
        a = brentq(lambda aa: inner(aa)[1], a_lo, 1.0, xtol=_XTOL, rtol=_RTOL)
    b = inner(a)[0]
    W = 1.0 - (1.0 + (p - 1) * a + (n - 1) * p * b) / (n * p)
    return {"abar": a, "bbar": b, "L": G(a, b, *args), "W": W, "provenance": PROV_R10}


def beta_star(alpha: float, tau: float, K: int, n: int, p: int = 2, variant: str = "code") -> SSEMOptimum:
    """Minimiser beta* of L_SSEM on [0, 1] by 1-D root finding (spec section 6.1).

    In w = 1 - beta: if L'(1) <= 0 (equivalently alpha <= alpha*, asserted) then beta* = 1;
    otherwise beta* = 1 - w* with w* the unique root of L'(1 - w) on (0, 1) (Brent, xtol 1e-15,
    rtol 4 eps); at alpha = 1 the root s1 = s2 is taken in closed form.  W* = 1 - beta*,
    B* = beta*, T* = 1.  For the self-excluded variant R10 is also evaluated: below alpha_split
    the reduced 2-D problem gives the true optimum ("view-split").  The regime-1 side condition is
    reported and re-checked at run time, although the derivation shows it always holds
    (:attr:`SSEMDerivation.side_condition_at_root`).
    Provenance: R2-R5 ``[REC] [DER+NUM]`` (+ R10 tags for the self-excluded variant).
    """
    from scipy.optimize import brentq  # lazy: ~0.3 s to import, not needed for the thresholds

    v = _check_variant(variant)
    alpha, tau = chk.unit_interval(alpha, "alpha"), chk.positive(tau, "tau")
    K, n = _check_Kn(K, n)
    p = _check_p(p, v, required=True)
    L_w, dL_w = _num_loss(v)
    a_star = alpha_star(K, n, tau, v, p)
    f = lambda w: dL_w(w, alpha, tau, K, n, p)  # noqa: E731  (L'(beta) at beta = 1 - w)
    f0 = f(0.0)
    collapse = alpha <= a_star
    # f0 = (n/tau) (alpha - alpha*)/(n-1) analytically: the two tests must agree away from a tie
    tie = abs(alpha - a_star) <= 1e-12  # rounding of f0 is ~(n-1) eps in alpha units; bugs are O(1)
    if not tie and collapse != (f0 <= 0.0):
        raise RuntimeError(f"inconsistent collapse test: alpha={alpha!r}, alpha*={float(a_star)!r}, L'(1)={f0!r}")
    if collapse or f0 <= 0.0:
        w_star = 0.0
    elif alpha == 1.0:
        # L' = (n/tau) p (e^{s1/tau} - e^{s2/tau})/D vanishes exactly where s1 = s2; solved in
        # closed form because at tiny tau every term of L' underflows near that point
        w_star = _num_w_etf()(K, n)
    else:
        w_star = brentq(f, 0.0, 1.0, xtol=_XTOL, rtol=_RTOL)
    beta = 1.0 - w_star
    L_ssem = float(L_w(w_star, alpha, tau, K, n, p))
    W_asym = W_small_tau(alpha, tau, n, v, p)
    prov = PROV_BETA
    fields: dict[str, Any] = {}
    W_opt, L_opt = w_star, L_ssem
    # the regime follows the exact threshold (as regime() does); within the rounding band
    # |alpha - alpha*| < ~1e-14, where L'(1) cannot be signed reliably, W* = 0 to within ~1e-13
    name = "collapse" if collapse else "ssem-interior"
    dmin = K - 1 if w_star == 0.0 else K * n - 1
    if v == "self-excluded":
        a_split = alpha_split(K, n, p, tau)
        fields["alpha_split"] = float(a_split)
        fields["abar"], fields["bbar"] = 1.0, float(1.0 - n / (n - 1) * w_star)
        side = None
        if name == "ssem-interior":
            # R10 regime 1 side condition: dG_se/dabar <= 0 at (1, s1(beta*)) (not proven)
            s1 = 1.0 - n / (n - 1) * w_star
            side = _num_r10()[2](1.0, s1, alpha, tau, K, n, p) * tau
            fields["side_condition"] = side
        if alpha < a_split or (side is not None and side > _SIDE_TOL):
            if side is not None and side > _SIDE_TOL:
                warnings.warn(
                    "R10 side condition fails at beta*: the SSEM is not the global optimum of the "
                    "self-excluded loss here; reporting the reduced 2-D minimum",
                    RuntimeWarning,
                    stacklevel=2,
                )
            red = reduced_self_excluded_minimum(alpha, tau, K, n, p)
            W_opt, L_opt = float(red["W"]), float(red["L"])
            fields["abar"], fields["bbar"] = float(red["abar"]), float(red["bbar"])
            name = "view-split"
            dmin = K * n * (p - 1) + K - 1  # rank of the view-split Gram matrix (R10)
            prov = f"{PROV_BETA}; optimum: {PROV_R10}"
        else:
            prov = f"{PROV_BETA}; regime: {PROV_R10}"
    return SSEMOptimum(
        alpha=alpha,
        tau=tau,
        K=K,
        n=n,
        p=p,
        variant=v,
        beta_star=beta,
        W_star=W_opt,
        B_star=1.0 - W_opt,
        T_star=1.0,
        L_star=L_opt,
        regime=name,
        d_min=dmin,
        alpha_star=float(a_star),
        W_ssem=w_star,
        L_ssem=L_ssem,
        W_small_tau=float(W_asym),
        provenance=prov,
        **fields,
    )


def batch_to_Kn(
    B: int,
    num_classes: int,
    classes_per_batch: int | None = None,
    views: int | None = None,
    balanced: bool = True,
) -> dict[str, Any]:
    """Map one training batch to (K, n) (spec section 6.2).

    ``B`` counts instances, or embeddings when ``views=p`` is given (then B is divided by p first).
    Balanced over all C classes: K = C, n = B/C (C must divide B, n >= 2).  With
    ``classes_per_batch=K_b``: K = K_b, n = B/K_b.  ``balanced=False``: approximate K = expected
    number of distinct classes among B uniform draws, C (1 - (1 - 1/C)^B), n = B/K, flagged
    ``approximate=True`` with a warning.  Provenance: section 6.2 ``[CODE]`` + ``[REC]``.
    """
    B = chk.integer(B, "B", 1)
    C = chk.integer(num_classes, "num_classes", 2)
    if views is not None:
        pv = chk.integer(views, "views", 1)
        if B % pv:
            raise ValueError(f"B must be divisible by views={pv} (B counts embeddings); got B={B}")
        B //= pv
    else:
        pv = None
    if classes_per_batch is not None:
        Kb = chk.integer(classes_per_batch, "classes_per_batch", 2)
        if Kb > C:
            raise ValueError(f"classes_per_batch must be in [2, num_classes={C}]; got {Kb}")
    else:
        Kb = C
    out: dict[str, Any] = {"B_instances": B, "p": pv, "provenance": PROV_BATCH}
    if not balanced:
        K_exp = Kb * (1.0 - (1.0 - 1.0 / Kb) ** B)
        warnings.warn(
            "unbalanced batches: the SSEM theory does not apply exactly; (K, n) is approximate",
            UserWarning,
            stacklevel=2,
        )
        out.update(K=K_exp, n=B / K_exp, approximate=True)
        return out
    if B % Kb:
        raise ValueError(
            f"B={B} instances must be divisible by the number of classes per batch K={Kb} for a balanced batch"
        )
    n = B // Kb
    if n < 2:
        raise ValueError(f"n = B/K must be >= 2 (n = 1 leaves no supervised positives); got B={B}, K={Kb}")
    out.update(K=Kb, n=n, approximate=False)
    return out


def Kn_from_paper(m: int, N: int) -> dict[str, Any]:
    """Authors' notation (m classes, N total instances) -> spec (K, n) = (m, N/m) (section 1)."""
    m = chk.integer(m, "m", 2)
    N = chk.integer(N, "N", 2)
    if N % m or N // m < 2:
        raise ValueError(f"N must be a multiple of m with N/m >= 2; got m={m}, N={N}")
    return {"K": m, "n": N // m, "provenance": PROV_PAPER}
