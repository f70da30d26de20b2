"""Orthogonality regularisation (SO, SRIP): symbolic derivations with sympy.

Spec: ``shared/spec/orthoreg.md`` (He, Du, Ma, NeurIPS 2024; regularisers of Bansal et al. 2018).

Everything here is derived at run time from the definitions (never typed in and trusted):

* gradients of SO (both Gram sides) and of the quadratic form behind SRIP, by differentiating
  the entry-wise expansion of an explicit symbolic matrix (§1.5) [DER];
* the identity between the Gram conventions, ||W^T W - I_n||_F^2 - ||W W^T - I_m||_F^2 = n - m
  for wide W (§2.3), and the singular-value form ||Q D Q^T - I||_F^2 = sum (u_i - 1)^2 (§1.3);
* Prop. 1 and its finite-sample sharpening as matrix-symbol algebra (§2.1) [3P] (proof [DER]);
* the SO gradient flow of the singular values: the flow is diagonal in the SVD basis,
  dsigma/dt = -4 gamma sigma (sigma^2 - 1), and u = sigma^2 has the closed form
  u(t) = 1/(1 + (1/u0 - 1) e^{-8 gamma t}) obtained with ``dsolve`` (§2.4) [DER];
* log-convexity of ||A^m x||^2 in m (monotone power iteration, §2.5) for two eigen-components;
* the expected SO of an iid initialisation, E SO = r[(L s^2 - 1)^2 + L(kappa - 1)s^4]
  + r(r - 1) L s^4, from moment calculus, confirmed by exact moment expansion on small explicit
  matrices (§1.7) [DER];
* the uniformity of the uniform sphere, -2t + log[Gamma(d/2) t^{-(d/2-1)} I_{d/2-1}(2t)]
  (= -4 + log[Gamma(d/2)(1/2)^{d/2-1} I_{d/2-1}(4)] at t = 2), confirmed against the exact
  integral for odd d (§3.5) [DER].

This module never imports :mod:`solvers` (DESIGN.md layering); the checks compare the two.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import sympy as sp
from scipy.special import gammaln, ive

__all__ = [
    "Derivation",
    "so_gradient",
    "srip_quadratic_gradient",
    "gram_convention_identity",
    "singular_value_form",
    "prop1",
    "so_flow",
    "so_flow_u",
    "so_flow_sigma",
    "power_iteration_log_convexity",
    "expected_so_symbolic",
    "expected_so_moment_check",
    "expected_so",
    "srip_mp_edge",
    "uniformity_uniform_sphere",
    "uniformity_integral_check",
    "symbolic_summary",
]

PROV_GRAD = "orthoreg.md §1.5 [DER]"
PROV_GRAM = "orthoreg.md §2.3 [DER]"
PROV_SV = "orthoreg.md §1.3 [CODE-B]/[DER]"
PROV_PROP1 = "orthoreg.md §2.1 Prop. 1 [3P] (proof [DER])"
PROV_FLOW = "orthoreg.md §2.4 [DER]"
PROV_POWER = "orthoreg.md §2.5 [DER]"
PROV_INIT = "orthoreg.md §1.7 [DER]"
PROV_UNIF = "orthoreg.md §3.5 [DER]"


@dataclass(frozen=True)
class Derivation:
    """One symbolic identity: ``holds`` is True iff the residual simplified to exactly zero."""

    name: str
    statement: str
    holds: bool
    residual: str
    provenance: str

    def as_dict(self) -> dict:
        return {"name": self.name, "statement": self.statement, "holds": self.holds,
                "residual": self.residual, "provenance": self.provenance}


def _sym_matrix(prefix: str, m: int, n: int) -> sp.Matrix:
    return sp.Matrix(m, n, lambda i, j: sp.Symbol(f"{prefix}{i}{j}", real=True))


def _check_dims(m: int, n: int) -> None:
    for name, v in (("m", m), ("n", n)):
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 6:
            raise ValueError(f"{name} must be an integer in [1, 6] (symbolic size); got {v!r}")


def _frob2(a: sp.Matrix) -> sp.Expr:
    return sum(x**2 for x in a)


# --------------------------------------------------------------------------------------------
# gradients (§1.5)
# --------------------------------------------------------------------------------------------
@functools.cache
def so_gradient(m: int, n: int, side: str) -> Derivation:
    """d SO / dW for an explicit symbolic m x n matrix W, against the closed forms
    4 W (W^T W - I) (``side="right"``, G = W^T W) and 4 (W W^T - I) W (``side="left"``)."""
    _check_dims(m, n)
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left'; got {side!r}")
    w = _sym_matrix("w", m, n)
    e = (w.T * w - sp.eye(n)) if side == "right" else (w * w.T - sp.eye(m))
    so_val = _frob2(e)
    grad = sp.Matrix(m, n, lambda i, j: sp.diff(so_val, w[i, j]))
    closed = 4 * w * e if side == "right" else 4 * e * w
    res = (grad - closed).expand()
    formula = "4 W (W^T W - I)" if side == "right" else "4 (W W^T - I) W"
    return Derivation(f"so_gradient_{side}_{m}x{n}", f"grad SO = {formula} ({m}x{n})",
                      res == sp.zeros(m, n), str(res.norm() if res != sp.zeros(m, n) else 0),
                      PROV_GRAD)


@functools.cache
def srip_quadratic_gradient(m: int, n: int, side: str) -> Derivation:
    """d/dW of q(W) = v^T (G - I) v at a fixed vector v: 2 W v v^T (G = W^T W) or 2 v v^T W
    (G = W W^T).  With v the top |eigen|vector and s its sign, SRIP = s q near W, so by
    Danskin's theorem grad SRIP = 2 s W v v^T / 2 s v v^T W where the top |eigenvalue| is simple.
    """
    _check_dims(m, n)
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left'; got {side!r}")
    w = _sym_matrix("w", m, n)
    k = n if side == "right" else m
    v = sp.Matrix(k, 1, lambda i, _j: sp.Symbol(f"v{i}", real=True))
    g = (w.T * w - sp.eye(n)) if side == "right" else (w * w.T - sp.eye(m))
    q = (v.T * g * v)[0, 0]
    grad = sp.Matrix(m, n, lambda i, j: sp.diff(q, w[i, j]))
    closed = 2 * w * v * v.T if side == "right" else 2 * v * v.T * w
    res = (grad - closed).expand()
    formula = "2 W v v^T" if side == "right" else "2 v v^T W"
    return Derivation(f"srip_gradient_{side}_{m}x{n}", f"d(v^T (G - I) v)/dW = {formula}",
                      res == sp.zeros(m, n), "0" if res == sp.zeros(m, n) else str(res), PROV_GRAD)


# --------------------------------------------------------------------------------------------
# Gram conventions and singular-value forms (§1.3, §2.3)
# --------------------------------------------------------------------------------------------
@functools.cache
def gram_convention_identity(m: int, n: int) -> Derivation:
    """||W^T W - I_n||_F^2 - ||W W^T - I_m||_F^2 = n - m for any m x n W (exact polynomial
    identity: tr((W^T W)^2) = tr((W W^T)^2) and tr(W^T W) = tr(W W^T))."""
    _check_dims(m, n)
    w = _sym_matrix("w", m, n)
    diff = _frob2(w.T * w - sp.eye(n)) - _frob2(w * w.T - sp.eye(m))
    res = sp.expand(diff - (n - m))
    return Derivation(f"gram_identity_{m}x{n}",
                      f"||W^T W - I_{n}||^2 - ||W W^T - I_{m}||^2 = {n - m}", res == 0, str(res),
                      PROV_GRAM)


@functools.cache
def singular_value_form() -> Derivation:
    """||Q diag(u1, u2) Q^T - I||_F^2 = (u1 - 1)^2 + (u2 - 1)^2 for a symbolic rotation Q:
    SO depends on the Gram eigenvalues u_i = sigma_i^2 only (2 x 2 case; the general case is
    the same orthogonal invariance of the Frobenius norm)."""
    th, u1, u2 = sp.symbols("theta u1 u2", real=True)
    q = sp.Matrix([[sp.cos(th), -sp.sin(th)], [sp.sin(th), sp.cos(th)]])
    g = q * sp.diag(u1, u2) * q.T
    res = sp.simplify(sp.trigsimp(sp.expand(_frob2(g - sp.eye(2)) - (u1 - 1) ** 2 - (u2 - 1) ** 2)))
    return Derivation("singular_value_form", "SO = sum_i (sigma_i^2 - 1)^2 (rotation-invariant)",
                      res == 0, str(res), PROV_SV)


@functools.cache
def prop1() -> list[Derivation]:
    """Prop. 1 and its finite-sample form, as matrix-symbol algebra with W^T W = I substituted:

    (a) Sigma_S = W^T (s^2 I) W = s^2 I;  (b) mean S = mean(X) W = 0 when mean(X) = 0;
    (c) square orthogonal W: W^T Sigma_hat W - s^2 I = W^T (Sigma_hat - s^2 I) W exactly.
    """
    d, k = sp.symbols("d k", integer=True, positive=True)
    s2 = sp.Symbol("sigma2", positive=True)
    w = sp.MatrixSymbol("W", d, k)
    ws = sp.MatrixSymbol("Wsq", d, d)
    sig = sp.MatrixSymbol("SigmaHat", d, d)
    xbar = sp.MatrixSymbol("xbar", 1, d)
    ident = sp.Identity(k)
    a = (w.T * (s2 * sp.Identity(d)) * w).doit()
    a = sp.simplify(a.subs(w.T * w, ident) - s2 * ident)
    b = (xbar * w).subs(xbar, sp.ZeroMatrix(1, d)).doit()
    lhs = ws.T * sig * ws - s2 * sp.Identity(d)
    rhs = sp.expand(ws.T * (sig - s2 * sp.Identity(d)) * ws)
    c = sp.simplify(sp.expand(lhs - rhs).subs(ws.T * ws, sp.Identity(d)).doit())
    return [
        Derivation("prop1_covariance", "W^T W = I, Sigma_X = s^2 I  =>  Sigma_S = s^2 I",
                   a == sp.ZeroMatrix(k, k) or a == 0, str(a), PROV_PROP1),
        Derivation("prop1_mean", "mean(X) = 0  =>  mean(S) = mean(X) W = 0",
                   b == sp.ZeroMatrix(1, k), str(b), PROV_PROP1),
        Derivation("prop1_finite_sample",
                   "square orthogonal W: Sigma_hat_S - s^2 I = W^T (Sigma_hat_X - s^2 I) W",
                   c == sp.ZeroMatrix(d, d) or c == 0, str(c), PROV_PROP1),
    ]


# --------------------------------------------------------------------------------------------
# SO gradient flow (§2.4)
# --------------------------------------------------------------------------------------------
@functools.cache
def so_flow() -> dict[str, object]:
    """Derive the SO gradient flow of the singular values.

    1. For W = diag(sigma_1, sigma_2, sigma_3) (the flow in the SVD basis; U, V are constant
       because -grad SO = -4 U diag(sigma (sigma^2 - 1)) V^T is diagonal there) the right-hand
       side -gamma grad SO is diagonal with entries -4 gamma sigma_i (sigma_i^2 - 1).
    2. u = sigma^2 obeys du/dt = 2 sigma dsigma/dt = -8 gamma u (u - 1); ``dsolve`` with
       u(0) = u0 gives u(t), compared with 1/(1 + (1/u0 - 1) e^{-8 gamma t}).
    3. Fixed points sigma = 0 (f'(0) = 4 gamma > 0: unstable) and sigma = 1 (f'(1) = -8 gamma:
       attracting); near 0, sigma(t) ~ sigma0 e^{4 gamma t}.
    """
    gamma, t, u0 = sp.symbols("gamma t u0", positive=True)
    sig = sp.symbols("s1:4", real=True)
    w = sp.diag(*sig)
    rhs = -gamma * 4 * w * (w.T * w - sp.eye(3))
    diag_ok = all(sp.expand(rhs[i, j]) == 0 for i in range(3) for j in range(3) if i != j)
    s = sp.Symbol("sigma", positive=True)
    f = sp.expand(rhs[0, 0].subs(sig[0], s))
    f_expected = -4 * gamma * s * (s**2 - 1)
    u = sp.Function("u")
    ode = sp.Eq(u(t).diff(t), sp.expand((2 * s * f).subs(s**2, u(t)).subs(s, sp.sqrt(u(t)))))
    sol = sp.dsolve(ode, u(t), ics={u(0): u0})
    sols = sol if isinstance(sol, list) else [sol]
    closed = 1 / (1 + (1 / u0 - 1) * sp.exp(-8 * gamma * t))
    match = any(sp.simplify(si.rhs - closed) == 0 for si in sols)
    fprime = sp.diff(f_expected, s)
    items = [
        Derivation("so_flow_diagonal", "-gamma grad SO(diag(sigma)) is diagonal (SVD basis fixed)",
                   diag_ok, "0" if diag_ok else str(rhs), PROV_FLOW),
        Derivation("so_flow_sigma", "dsigma/dt = -4 gamma sigma (sigma^2 - 1)",
                   sp.simplify(f - f_expected) == 0, str(sp.simplify(f - f_expected)), PROV_FLOW),
        Derivation("so_flow_u", "u(t) = 1/(1 + (1/u0 - 1) exp(-8 gamma t)) (dsolve)", match,
                   str([si.rhs for si in sols]), PROV_FLOW),
        Derivation("so_flow_stability", "f'(0) = 4 gamma > 0 (unstable), f'(1) = -8 gamma (stable)",
                   sp.simplify(fprime.subs(s, 0) - 4 * gamma) == 0
                   and sp.simplify(fprime.subs(s, 1) + 8 * gamma) == 0,
                   str((fprime.subs(s, 0), fprime.subs(s, 1))), PROV_FLOW),
    ]
    return {"derivations": items, "sigma_rhs": f_expected, "u_closed_form": closed,
            "symbols": (gamma, t, u0)}


def so_flow_u(t: float, u0: float, gamma: float) -> float:
    """u(t) = sigma(t)^2 = 1/(1 + (1/u0 - 1) e^{-8 gamma t}); u0 = 0 stays 0 (§2.4) [DER].
    Evaluated as u0/(u0 + (1 - u0) e^{-8 gamma t}) (no 1/u0 overflow for tiny u0)."""
    for name, v in (("t", t), ("u0", u0), ("gamma", gamma)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite real number >= 0; got {v!r}")
    if u0 == 0.0:
        return 0.0
    e = math.exp(-8.0 * gamma * t)
    return u0 / (u0 + (1.0 - u0) * e)


def so_flow_sigma(t: float, sigma0: float, gamma: float) -> float:
    """sigma(t) = sqrt(u(t)) with u0 = sigma0^2 (see :func:`so_flow_u`)."""
    return math.sqrt(so_flow_u(t, sigma0 * sigma0, gamma))


# --------------------------------------------------------------------------------------------
# power iteration (§2.5)
# --------------------------------------------------------------------------------------------
@functools.cache
def power_iteration_log_convexity() -> Derivation:
    """f(m) = ||A^m x||^2 = c1^2 l1^{2m} + c2^2 l2^{2m} (two eigen-components, l_i > 0 here in
    |l_i|) is log-convex: f f'' - f'^2 = c1^2 c2^2 l1^{2m} l2^{2m} (log l1^2 - log l2^2)^2 >= 0,
    hence r_m = sqrt(f(m)/f(m-1)) is non-decreasing and tends to max|l_i| (bounded by rho(A))."""
    m = sp.Symbol("m", real=True)
    c1, c2, l1, l2 = sp.symbols("c1 c2 l1 l2", positive=True)
    f = c1**2 * l1 ** (2 * m) + c2**2 * l2 ** (2 * m)
    lhs = f * sp.diff(f, m, 2) - sp.diff(f, m) ** 2
    rhs = c1**2 * c2**2 * l1 ** (2 * m) * l2 ** (2 * m) * (2 * sp.log(l1) - 2 * sp.log(l2)) ** 2
    res = sp.simplify(sp.expand(sp.expand_log(lhs - rhs, force=True)))
    return Derivation("power_iteration_log_convexity",
                      "f f'' - f'^2 = c1^2 c2^2 l1^2m l2^2m (log l1^2 - log l2^2)^2 >= 0",
                      res == 0, str(res), PROV_POWER)


# --------------------------------------------------------------------------------------------
# expected SO at initialisation (§1.7)
# --------------------------------------------------------------------------------------------
@functools.cache
def expected_so_symbolic() -> sp.Expr:
    """E SO for an L x r matrix (L >= r, G = W^T W, r x r) with iid entries of mean 0, variance
    s^2, E w^4 = kappa s^4, from moment calculus:

    diagonal  G_jj = sum_i w_ij^2:  E (G_jj - 1)^2 = Var G_jj + (E G_jj - 1)^2
                                                   = L (kappa - 1) s^4 + (L s^2 - 1)^2;
    off-diag  G_jk = sum_i w_ij w_ik:  E G_jk^2 = L s^4  (cross terms vanish by independence);
    total     r [(L s^2 - 1)^2 + L (kappa - 1) s^4] + r (r - 1) L s^4.
    """
    big_l, r, s2, kappa = sp.symbols("L r s2 kappa", positive=True)
    e_gjj = big_l * s2
    var_gjj = big_l * (kappa * s2**2 - s2**2)
    diag = var_gjj + (e_gjj - 1) ** 2
    off = big_l * s2**2
    return sp.simplify(r * diag + r * (r - 1) * off)


@functools.cache
def expected_so_moment_check(m: int, n: int) -> Derivation:
    """Exact expectation of the polynomial SO(W) (small Gram) of an explicit m x n symbolic
    matrix, by replacing every monomial with its moments (E w = E w^3 = 0, E w^2 = s^2,
    E w^4 = kappa s^4, independent entries), against :func:`expected_so_symbolic` with
    L = max(m, n), r = min(m, n)."""
    _check_dims(m, n)
    w = _sym_matrix("w", m, n)
    e = (w.T * w - sp.eye(n)) if m > n else (w * w.T - sp.eye(m))
    poly = sp.Poly(sp.expand(_frob2(e)), *list(w))
    s2, kappa = sp.symbols("s2 kappa", positive=True)
    moment = {0: sp.Integer(1), 1: sp.Integer(0), 2: s2, 3: sp.Integer(0), 4: kappa * s2**2}
    total = sp.Integer(0)
    for powers, coef in poly.as_dict().items():
        term = sp.Integer(coef)
        for p in powers:
            term *= moment[p]
            if term == 0:
                break
        total += term
    big_l, r = sp.symbols("L r", positive=True)
    target = expected_so_symbolic().subs({big_l: max(m, n), r: min(m, n)})
    res = sp.expand(total - target.subs({sp.Symbol("s2", positive=True): s2,
                                          sp.Symbol("kappa", positive=True): kappa}))
    return Derivation(f"expected_so_{m}x{n}", "E SO = r[(L s^2-1)^2 + L(kappa-1)s^4] + r(r-1)L s^4",
                      res == 0, str(res), PROV_INIT)


@functools.cache
def _expected_so_numeric():
    big_l, r, s2, kappa = sp.symbols("L r s2 kappa", positive=True)
    return sp.lambdify((big_l, r, s2, kappa), expected_so_symbolic(), "math")


def expected_so(m: int, n: int, s2: float, kappa: float) -> float:
    """E SO of an m x n matrix (small Gram) with iid entries (variance s2, kurtosis factor
    kappa), L = max(m, n), r = min(m, n) (orthoreg.md §1.7) [DER]."""
    if min(m, n) < 1:
        raise ValueError(f"m and n must be integers >= 1; got {m!r}, {n!r}")
    if not (s2 > 0 and kappa >= 1):
        raise ValueError(f"s2 must be > 0 and kappa >= 1; got {s2!r}, {kappa!r}")
    return float(_expected_so_numeric()(max(m, n), min(m, n), s2, kappa))


def srip_mp_edge(m: int, n: int, s2: float) -> float:
    """Marchenko-Pastur-edge approximation of SRIP for an m x n matrix with iid entries of
    variance s2 (orthoreg.md §1.7) [DER]: max(|s2 (sqrt L + sqrt r)^2 - 1|,
    |s2 (sqrt L - sqrt r)^2 - 1|), L = max(m, n), r = min(m, n)."""
    if min(m, n) < 1 or not s2 > 0:
        raise ValueError(f"m, n must be >= 1 and s2 > 0; got {m!r}, {n!r}, {s2!r}")
    big_l, r = max(m, n), min(m, n)
    hi = s2 * (math.sqrt(big_l) + math.sqrt(r)) ** 2
    lo = s2 * (math.sqrt(big_l) - math.sqrt(r)) ** 2
    return max(abs(hi - 1.0), abs(lo - 1.0))


# --------------------------------------------------------------------------------------------
# uniformity of the uniform sphere (§3.5)
# --------------------------------------------------------------------------------------------
def uniformity_uniform_sphere(d: int, t: float = 2.0) -> float:
    """L_unif of the uniform law on S^{d-1} (orthoreg.md §3.5) [DER]:

        log E exp(-t ||x - y||^2) = -2t + log E e^{2t u}
                                  = -2t + log Gamma(d/2) - nu log t + log I_nu(2t),  nu = d/2 - 1

    (u = x.y with density c_d (1 - u^2)^{(d-3)/2}; the Bessel integral
    int e^{a u} (1 - u^2)^{nu - 1/2} du = sqrt(pi) Gamma(nu + 1/2) (2/a)^nu I_nu(a)).  At t = 2:
    -4 + log[Gamma(d/2) (1/2)^{d/2-1} I_{d/2-1}(4)], about -4 + 8/d.  Evaluated with log-gamma
    and the exponentially scaled Bessel function (no overflow for large d).
    """
    if not isinstance(d, int) or isinstance(d, bool) or d < 2:
        raise ValueError(f"d must be an integer >= 2; got {d!r}")
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"t must be a finite real number > 0; got {t!r}")
    nu = d / 2.0 - 1.0
    a = 2.0 * t
    log_i = math.log(float(ive(nu, a))) + a
    return -2.0 * t + float(gammaln(d / 2.0)) - nu * math.log(t) + log_i


@functools.cache
def uniformity_integral_check(d: int, t: int = 2) -> Derivation:
    """For odd d, integrate c_d int_{-1}^{1} e^{2 t u} (1 - u^2)^{(d-3)/2} du exactly with sympy
    and compare exp(2t) E exp(-t||x-y||^2) with the Bessel closed form (to 1e-12 relative: the
    Bessel side is evaluated in floating point)."""
    if d < 3 or d % 2 == 0:
        raise ValueError(f"d must be an odd integer >= 3 (polynomial integrand); got {d!r}")
    u = sp.Symbol("u", real=True)
    cd = sp.gamma(sp.Rational(d, 2)) / (sp.sqrt(sp.pi) * sp.gamma(sp.Rational(d - 1, 2)))
    integral = sp.integrate(sp.exp(2 * t * u) * (1 - u**2) ** sp.Rational(d - 3, 2), (u, -1, 1))
    exact = float(sp.N(sp.log(cd * integral) - 2 * t, 30))
    closed = uniformity_uniform_sphere(d, float(t))
    err = abs(exact - closed)
    return Derivation(f"uniformity_integral_d{d}",
                      f"log E exp(-{t}|x-y|^2) on S^{d - 1}: exact integral = Bessel form",
                      err <= 1e-12 * max(1.0, abs(exact)), f"{err:.3e}", PROV_UNIF)


def symbolic_summary() -> list[Derivation]:
    """Every derivation of this module at small representative sizes."""
    out: list[Derivation] = []
    for m, n in ((3, 2), (2, 3)):
        out.append(so_gradient(m, n, "right" if m > n else "left"))
        out.append(srip_quadratic_gradient(m, n, "right" if m > n else "left"))
    out.append(gram_convention_identity(2, 3))
    out.append(gram_convention_identity(2, 4))
    out.append(singular_value_form())
    out.extend(prop1())
    out.extend(so_flow()["derivations"])
    out.append(power_iteration_log_convexity())
    out.append(expected_so_moment_check(3, 2))
    out.append(expected_so_moment_check(2, 3))
    out.append(uniformity_integral_check(3))
    out.append(uniformity_integral_check(5))
    return out
