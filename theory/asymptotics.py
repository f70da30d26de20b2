"""Asymptotic (large-batch) and expected values of the DHEL / KCL family at the uniform measure.

Spec: ``shared/spec/dhel_kcl.md`` §1 (the law p_d and its moment generating function), §5 (T6-T9),
§6 (special functions), §7 (metrics); ``shared/spec/anchors.md`` §3.2 (Riesz continuum) and §7
(the key closed form and its numerically robust evaluation).

Contents (every function names its formula and its source):

* the inner-product law p_d of two independent uniform points on S^{d-1}: density, CDF, moments
  E s^{2k} = (1/2)_k / (d/2)_k, E|s|, and the exact W1(p_k, p_d) of the collapse model;
* m_d(kappa) = E e^{kappa s} = 0F1(; d/2; kappa^2/4) in the log domain, with the fallback chain of
  anchors.md §7.1 (Bessel ``ive`` -> ``hyp0f1`` -> mpmath) and an independent Gauss-Jacobi
  quadrature route;
* the limits A(d, tau), A_code(d, tau), each loss's log-normaliser and the delta-method finite-M
  corrections (T6, T7);
* the KCL expected loss (T8), Wang-Isola uniformity of sigma_d and its large-d expansion (§7.2),
  the Riesz continuum energy I_s(d) with log-gamma (anchors.md §3.2), the saturation of
  Wang-Isola relative to W1 (§7.2-7.3);
* Gegenbauer coefficients of e^{kappa s} (closed form, T9) and of the KCL kernels (Rodrigues-form
  quadrature, whose integrand is positive, so positivity is numerically meaningful up to n = 20).

The sympy derivations (moments, the 0F1 series, the d = 3 elementary form, the large-d series,
the kernels' n-th derivatives) run at call time.  This module does not import :mod:`solvers`
(DESIGN.md layering): p_d is recomputed here so that a check can compare two independent routes.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable

import numpy as np
import sympy as sp
from scipy import special as sc

from . import _validation as chk

__all__ = [
    "INFONCE_FAMILY",
    "KCL_KERNELS",
    "PROV",
    "similarity_log_normaliser",
    "similarity_pdf",
    "similarity_cdf",
    "similarity_moment",
    "symbolic_moment",
    "mgf_series_identity",
    "symbolic_mgf_d3",
    "mean_abs_similarity",
    "w1_between_laws",
    "w1_gaussian_approx",
    "log_mgf",
    "log_mgf_route",
    "log_mgf_series",
    "log_mgf_bessel",
    "log_mgf_hyp0f1",
    "log_mgf_mpmath",
    "log_mgf_quadrature",
    "log_mgf_d3",
    "expectation_uniform",
    "limit_A",
    "limit_A_code",
    "asymptotic_limit",
    "log_normaliser",
    "delta_method",
    "uniformity_uniform",
    "uniformity_large_d",
    "symbolic_uniformity_series",
    "uniformity_simplex",
    "kcl_expected_energy",
    "kcl_expected_loss",
    "riesz_continuum",
    "finite_n_minimum",
    "wang_isola_saturation",
    "gegenbauer_norm",
    "gegenbauer_coefficient_gaussian",
    "gegenbauer_coefficient",
]

#: provenance strings reported with every value (spec tags, dhel_kcl.md §0.2, anchors.md §0)
PROV = {
    "law": "dhel_kcl.md §1, §6 [LIT; DER by quadrature]",
    "mgf": "dhel_kcl.md §1, §6; anchors.md §7.1 [LIT] [DER+NUM]",
    "limit": "dhel_kcl.md T6 [LIT for InfoNCE; RECON for the others; DER]",
    "delta": "dhel_kcl.md T7 [DER]",
    "kcl": "dhel_kcl.md T8 [ABS; RECON; DER]",
    "uniformity": "dhel_kcl.md §7.2; anchors.md §7.2 [LIT; DER]",
    "riesz": "anchors.md §3.2 [LIT+NUM]",
    "w1": "dhel_kcl.md §7.3 [DER]",
    "gegenbauer": "dhel_kcl.md T9 [LIT]",
}

INFONCE_FAMILY = ("infonce", "simclr", "dcl", "dhel", "dhel2")
KCL_KERNELS = ("gaussian", "log", "imq", "riesz")
_QUAD_NODES = 100  # Gauss-Jacobi nodes: exact for degree 199; e^{20 s} needs degree ~ 80 for 1e-16


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def _dim(d: object, name: str = "d", minimum: int = 2) -> int:
    return chk.integer(d, name, minimum)


def _real(x: object, name: str, positive: bool = False, nonneg: bool = False) -> float:
    if positive:
        return chk.positive(x, name)
    return chk.nonnegative(x, name) if nonneg else chk.real(x, name)


def _loss(name: object) -> str:
    if name not in INFONCE_FAMILY:
        raise ValueError(f"loss must be one of {', '.join(INFONCE_FAMILY)}; got {name!r}")
    return str(name)


# --------------------------------------------------------------------------------------------
# the law p_d (dhel_kcl.md §1, §6)
# --------------------------------------------------------------------------------------------
def similarity_log_normaliser(d: int) -> float:
    """log c_d, c_d = Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2))  (dhel_kcl.md §1) [LIT]."""
    d = _dim(d)
    return float(sc.gammaln(d / 2.0) - 0.5 * math.log(math.pi) - sc.gammaln((d - 1) / 2.0))


def similarity_pdf(s: object, d: int) -> np.ndarray:
    """p_d(s) = c_d (1 - s^2)^{(d-3)/2} on [-1, 1], 0 outside (§1) [LIT]; log-domain evaluation."""
    d = _dim(d)
    x = np.asarray(s, dtype=np.float64)
    xc = np.clip(x, -1.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        expo = (d - 3) / 2.0
        logv = similarity_log_normaliser(d) + (0.0 if expo == 0 else expo * (np.log1p(-xc) + np.log1p(xc)))
        return np.where(np.abs(x) <= 1.0, np.exp(logv), 0.0)


def similarity_cdf(s: object, d: int) -> np.ndarray:
    """F_d(s) = I_{(1+s)/2}((d-1)/2, (d-1)/2), since (1+s)/2 ~ Beta((d-1)/2, (d-1)/2) (§6) [LIT]."""
    d = _dim(d)
    a = (d - 1) / 2.0
    return sc.betainc(a, a, np.clip((1.0 + np.asarray(s, dtype=np.float64)) / 2.0, 0.0, 1.0))


def similarity_moment(k: int, d: int) -> float:
    """E s^k under p_d: 0 for odd k, (1/2)_{k/2} / (d/2)_{k/2} for even k (anchors.md §5.1, §7.1)
    [LIT; DER: :func:`symbolic_moment`].  Evaluated with log-gamma (large k, d)."""
    d = _dim(d)
    k = _dim(k, "k", 0)
    if k % 2:
        return 0.0
    j = k // 2
    return math.exp(math.lgamma(0.5 + j) - math.lgamma(0.5) - math.lgamma(d / 2.0 + j) + math.lgamma(d / 2.0))


@functools.cache
def symbolic_moment() -> sp.Expr:
    """Derive E s^{2k} = B(k + 1/2, (d-1)/2) / B(1/2, (d-1)/2) = (1/2)_k / (d/2)_k with sympy.

    Derivation: s^2 ~ Beta(1/2, (d-1)/2) under p_d (substitute w = s^2 in
    c_d int s^{2k} (1-s^2)^{(d-3)/2} ds), so E s^{2k} is a ratio of Beta functions; gammasimp
    turns it into rising factorials.  Returns the simplified ratio (derived / rising-factorial
    form), which must be exactly 1.
    """
    k, d = sp.symbols("k d", positive=True)
    half = sp.Rational(1, 2)
    derived = sp.beta(k + half, (d - 1) / 2) / sp.beta(half, (d - 1) / 2)
    ratio = sp.gammasimp(sp.expand_func(derived) / (sp.rf(half, k) / sp.rf(d / 2, k)))
    return sp.simplify(ratio)


@functools.cache
def mgf_series_identity() -> sp.Expr:
    """Term-by-term: E s^{2k} kappa^{2k} / (2k)! equals the 0F1(; d/2; kappa^2/4) term
    (kappa^2/4)^k / (k! (d/2)_k), using (2k)! = 4^k k! (1/2)_k (anchors.md §7.1 derivation).
    Returns the simplified ratio of the two coefficients (exactly 1)."""
    k, d = sp.symbols("k d", positive=True)
    half = sp.Rational(1, 2)
    moment = sp.rf(half, k) / sp.rf(d / 2, k)
    term_mgf = moment / sp.factorial(2 * k)
    term_0f1 = sp.Rational(1, 4) ** k / (sp.factorial(k) * sp.rf(d / 2, k))
    return sp.simplify(sp.powsimp(sp.gammasimp(sp.expand_func(term_mgf / term_0f1)), force=True))


@functools.cache
def symbolic_mgf_d3() -> sp.Expr:
    """0F1(; 3/2; kappa^2/4) expanded by sympy: sinh(kappa)/kappa (the d = 3 elementary form)."""
    kappa = sp.symbols("kappa", positive=True)
    return sp.simplify(sp.hyperexpand(sp.hyper([], [sp.Rational(3, 2)], kappa**2 / 4)))


def mean_abs_similarity(d: int) -> float:
    """E|s| = 2 c_d / (d - 1) under p_d  [DER: E|s| = 2 int_0^1 s c_d (1-s^2)^{(d-3)/2} ds]."""
    d = _dim(d)
    return float(2.0 * math.exp(similarity_log_normaliser(d) - math.log(d - 1)))


def w1_between_laws(k: int, d: int) -> float:
    """Exact W1(p_k, p_d) = 2 |c_k/(k-1) - c_d/(d-1)| = |E_k|s| - E_d|s||  (dhel_kcl.md §7.3) [DER].

    Both laws are symmetric and p_d/p_k is monotone in |s|, so F_k - F_d changes sign only at 0
    and W1 = int |F_k - F_d| = 2 |int_{-1}^0 (F_k - F_d)| = |E_k|s| - E_d|s||.
    """
    return abs(mean_abs_similarity(_dim(k, "k")) - mean_abs_similarity(_dim(d)))


def w1_gaussian_approx(k: int, d: int) -> float:
    """sqrt(2/pi) |k^{-1/2} - d^{-1/2}|, from p_d ~ N(0, 1/d) (§7.3) [DER]; underestimates W1."""
    k, d = _dim(k, "k"), _dim(d)
    return math.sqrt(2.0 / math.pi) * abs(k**-0.5 - d**-0.5)


# --------------------------------------------------------------------------------------------
# m_d(kappa) = E e^{kappa s} = 0F1(; d/2; kappa^2/4)   (anchors.md §7.1)
# --------------------------------------------------------------------------------------------
def log_mgf_bessel(kappa: float, d: int) -> float:
    """Bessel route: log Gamma(d/2) + (1 - d/2) log(kappa/2) + log ive(d/2 - 1, kappa) + kappa.

    Returns NaN where ``ive`` is not a positive normal float (large order at moderate kappa).
    """
    d = _dim(d)
    kappa = abs(_real(kappa, "kappa"))
    if kappa == 0.0:
        return 0.0
    nu = d / 2.0 - 1.0
    v = float(sc.ive(nu, kappa))
    if not (v >= np.finfo(np.float64).tiny and math.isfinite(v)):
        return math.nan
    return math.lgamma(d / 2.0) + (1.0 - d / 2.0) * math.log(kappa / 2.0) + math.log(v) + kappa


def log_mgf_hyp0f1(kappa: float, d: int) -> float:
    """Hypergeometric route: log hyp0f1(d/2, kappa^2/4); NaN when it overflows (small d, large kappa)."""
    d = _dim(d)
    kappa = _real(kappa, "kappa")
    v = float(sc.hyp0f1(d / 2.0, kappa * kappa / 4.0))
    if not (math.isfinite(v) and v > 0.0):
        return math.nan
    return math.log(v)


def log_mgf_mpmath(kappa: float, d: int, dps: int = 30) -> float:
    """Last resort: log 0F1 with mpmath (a sympy dependency) at ``dps`` digits."""
    import mpmath

    d = _dim(d)
    kappa = _real(kappa, "kappa")
    with mpmath.workdps(dps):
        return float(mpmath.log(mpmath.hyp0f1(mpmath.mpf(d) / 2, mpmath.mpf(kappa) ** 2 / 4)))


def log_mgf_series(kappa: float, d: int) -> float:
    """Series route for small arguments: log1p(sum_{k>=1} z^k / (k! (d/2)_k)), z = kappa^2/4.

    Used when z <= 1 or z <= d/4: there log m_d is small (about kappa^2/(2d)) and the Bessel and
    hyp0f1 routes, which form it as log of 1 + tiny or as a sum of O(1) logs, keep only its absolute
    accuracy (~1e-16), i.e. lose relative accuracy; the series keeps ~1e-16 relative.  NaN outside
    that range.
    """
    d = _dim(d)
    kappa = _real(kappa, "kappa")
    z, b = kappa * kappa / 4.0, d / 2.0
    if not (z <= 1.0 or z <= b / 2.0):
        return math.nan
    total, term = 0.0, 1.0
    for k in range(1, 200):
        term *= z / (k * (b + k - 1))
        total += term
        if term <= 1e-18 * total:
            break
    return math.log1p(total)


def log_mgf_route(kappa: float, d: int) -> str:
    """The route :func:`log_mgf` uses at (kappa, d): "series", "bessel", "hyp0f1" or "mpmath"."""
    if not math.isnan(log_mgf_series(kappa, d)):
        return "series"
    if not math.isnan(log_mgf_bessel(kappa, d)):
        return "bessel"
    if not math.isnan(log_mgf_hyp0f1(kappa, d)):
        return "hyp0f1"
    return "mpmath"


def log_mgf(kappa: float, d: int) -> float:
    """log m_d(kappa) = log E_{s ~ p_d} e^{kappa s} = log 0F1(; d/2; kappa^2/4)  (dhel_kcl.md §1)
    [LIT] [DER+NUM].

    Fallback chain of anchors.md §7.1: the Bessel route when ``ive`` is positive and normal, else
    ``hyp0f1`` when finite, else mpmath; preceded, for small arguments (z = kappa^2/4 <= max(1, d/4)),
    by the series :func:`log_mgf_series`, which keeps the relative accuracy of the small log (the
    Bessel route loses it: 4e-10 relative at d = 3, kappa = 0.004).  Even in kappa; 0 at kappa = 0.
    """
    d = _dim(d)
    kappa = abs(_real(kappa, "kappa"))
    if kappa == 0.0:
        return 0.0
    v = log_mgf_series(kappa, d)
    if not math.isnan(v):
        return v
    v = log_mgf_bessel(kappa, d)
    if not math.isnan(v):
        return v
    v = log_mgf_hyp0f1(kappa, d)
    if not math.isnan(v):
        return v
    return log_mgf_mpmath(kappa, d)


@functools.cache
def _jacobi(n: int, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    x, w = sc.roots_jacobi(n, alpha, beta)
    return x, np.log(w)


def log_mgf_quadrature(kappa: float, d: int, nodes: int = _QUAD_NODES) -> float:
    """Independent route: log int e^{kappa s} p_d(s) ds as a log-sum-exp over Gauss-Jacobi nodes
    with alpha = beta = (d-3)/2, normalised by the quadrature's own total weight (§6)."""
    d = _dim(d)
    kappa = _real(kappa, "kappa")
    a = (d - 3) / 2.0
    x, logw = _jacobi(_dim(nodes, "nodes", 2), a, a)
    return float(sc.logsumexp(kappa * x + logw) - sc.logsumexp(logw))


def log_mgf_d3(kappa: float) -> float:
    """d = 3 elementary form log(sinh(kappa)/kappa) = kappa + log1p(-e^{-2 kappa}) - log(2 kappa)."""
    kappa = abs(_real(kappa, "kappa"))
    if kappa == 0.0:
        return 0.0
    if kappa < 0.5:  # log1p of sinh(k)/k - 1 = sum_{j>=1} k^{2j}/(2j+1)! (no cancellation; 12 terms < 1e-30)
        return math.log1p(sum(kappa ** (2 * j) / math.factorial(2 * j + 1) for j in range(1, 13)))
    return kappa + math.log1p(-math.exp(-2.0 * kappa)) - math.log(2.0 * kappa)


def expectation_uniform(f: Callable[[np.ndarray], np.ndarray], d: int, nodes: int = _QUAD_NODES) -> float:
    """E_{s ~ p_d} f(s) by Gauss-Jacobi quadrature (alpha = beta = (d-3)/2), for f smooth on [-1, 1]."""
    d = _dim(d)
    a = (d - 3) / 2.0
    x, logw = _jacobi(_dim(nodes, "nodes", 2), a, a)
    w = np.exp(logw - sc.logsumexp(logw))
    return float(np.sum(w * f(x)))


# --------------------------------------------------------------------------------------------
# T6 - T7: limits, normalisers, finite-M corrections
# --------------------------------------------------------------------------------------------
def limit_A(d: int, tau: float) -> float:
    """A(d, tau) = -1/tau + log 0F1(; d/2; 1/(4 tau^2)): common limit of InfoNCE, SimCLR, DCL and
    DHEL (paper) minus their normalisers at an aligned uniform encoder (T6) [LIT; DER]."""
    tau = _real(tau, "tau", positive=True)
    return -1.0 / tau + log_mgf(1.0 / tau, d)


def limit_A_code(d: int, tau: float) -> float:
    """A_code(d, tau) = -1/tau + 2 log 0F1(; d/2; 1/(4 tau^2)) (DHEL code form, T6) [DER]."""
    tau = _real(tau, "tau", positive=True)
    return -1.0 / tau + 2.0 * log_mgf(1.0 / tau, d)


def asymptotic_limit(loss: str, d: int, tau: float) -> float:
    """lim_{M -> inf} [L_loss - normaliser] at the aligned uniform encoder (T6 table)."""
    return limit_A_code(d, tau) if _loss(loss) == "dhel2" else limit_A(d, tau)


def log_normaliser(loss: str, instances: int) -> float:
    """The normaliser of T6: log M (InfoNCE), log 2M (SimCLR), log 2(M-1) (DCL), log(M-1) (DHEL
    paper), 2 log(M-1) (DHEL code)  [LIT for InfoNCE; RECON]."""
    loss = _loss(loss)
    m = _dim(instances, "instances", 2)
    return {"infonce": math.log(m), "simclr": math.log(2 * m), "dcl": math.log(2 * (m - 1)),
            "dhel": math.log(m - 1), "dhel2": 2.0 * math.log(m - 1)}[loss]


def delta_method(loss: str, d: int, tau: float, instances: int) -> float:
    """Delta-method approximation of E[L_loss] - normaliser for M iid aligned uniform pairs (T7) [DER].

    With m = 0F1(; d/2; 1/(4 tau^2)), m2 = 0F1(; d/2; 1/tau^2), v = m2 - m^2, e = e^{1/tau}:
    DHEL/DCL A - v/(2(M-1)m^2); DHEL code A_code - v/((M-1)m^2);
    InfoNCE A + log(1 + (e/m - 1)/M) - (M-1)v/(2((M-1)m + e)^2);
    SimCLR A + log(1 + (e/m - 2)/(2M)) - 4(M-1)v/(2(2(M-1)m + e)^2).
    Evaluated with ratios r = v/m^2 and e/m in the log domain (no overflow for small tau).
    """
    loss = _loss(loss)
    m_ = _dim(instances, "instances", 2)
    tau = _real(tau, "tau", positive=True)
    lm = log_mgf(1.0 / tau, d)
    r = math.expm1(log_mgf(2.0 / tau, d) - 2.0 * lm)  # v / m^2
    a = limit_A(d, tau)
    if loss in ("dhel", "dcl"):
        return a - r / (2.0 * (m_ - 1))
    if loss == "dhel2":
        return limit_A_code(d, tau) - r / (m_ - 1)
    e_over_m = math.exp(1.0 / tau - lm)
    if loss == "infonce":
        return a + math.log1p((e_over_m - 1.0) / m_) - (m_ - 1) * r / (2.0 * ((m_ - 1) + e_over_m) ** 2)
    return a + math.log1p((e_over_m - 2.0) / (2 * m_)) - 4.0 * (m_ - 1) * r / (2.0 * (2 * (m_ - 1) + e_over_m) ** 2)


# --------------------------------------------------------------------------------------------
# Wang-Isola uniformity (§7.2) and KCL expectations (T8)
# --------------------------------------------------------------------------------------------
def uniformity_uniform(d: int, t: float = 2.0) -> float:
    """unif_t(sigma_d) = log E e^{-t|x-y|^2} = -2t + log 0F1(; d/2; t^2) = A(d, 1/(2t)) (§7.2) [LIT]."""
    t = _real(t, "t", positive=True)
    return -2.0 * t + log_mgf(2.0 * t, d)


def uniformity_large_d(d: int, t: float = 2.0) -> float:
    """Large-d expansion -2t + 2t^2/d (error O(t^4/d^3), §7.2) [DER: :func:`symbolic_uniformity_series`]."""
    d = _dim(d)
    t = _real(t, "t", positive=True)
    return -2.0 * t + 2.0 * t * t / d


@functools.cache
def symbolic_uniformity_series(order: int = 3) -> sp.Expr:
    """Series of log 0F1(; d/2; t^2) in eps = 1/d up to eps^order (sympy), from the 0F1 series
    sum_k t^{2k} / (k! (d/2)_k) truncated at k = order (enough for eps^order, since the k-th term
    is O(eps^k)).  Leading terms: 2 t^2 eps - 4 t^4 eps^3 + ... (the eps^2 terms cancel)."""
    t, eps = sp.symbols("t epsilon", positive=True)
    b = 1 / (2 * eps)
    series = sum(t ** (2 * k) / (sp.factorial(k) * sp.rf(b, k)) for k in range(order + 1))
    return sp.expand(sp.series(sp.log(series), eps, 0, order + 1).removeO())


def uniformity_simplex(instances: int, t: float = 2.0) -> float:
    """Wang-Isola uniformity at a regular simplex of M points: exactly -2tM/(M-1) (§7.2) [LIT]."""
    m = _dim(instances, "instances", 2)
    return -2.0 * _real(t, "t", positive=True) * m / (m - 1)


def riesz_continuum(s: float, d: int) -> float:
    """I_s(d) = E|x - y|^{-s} = 2^{d-2-s} Gamma(d/2) Gamma((d-1-s)/2) / (sqrt(pi) Gamma(d-1-s/2)),
    s < d - 1 (s < 0 allowed: E|x-y|^{|s|}); log-gamma and log 2 throughout (anchors.md §3.2)."""
    d = _dim(d)
    s = _real(s, "s")
    if s >= d - 1:
        raise ValueError(f"s must be < d - 1 = {d - 1} (the continuum energy diverges); got {s}")
    log_v = ((d - 2 - s) * math.log(2.0) + math.lgamma(d / 2.0) + math.lgamma((d - 1 - s) / 2.0)
             - 0.5 * math.log(math.pi) - math.lgamma(d - 1 - s / 2.0))
    return math.exp(log_v)


def _kcl_psi(kernel: str, t: float) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
    """(psi_E as a function of x = r^2, psi_A(0)) of the authors' code (dhel_kcl.md §2.2)."""
    if kernel not in KCL_KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KCL_KERNELS)}; got {kernel!r}")
    if kernel == "gaussian":
        t = _real(t, "t", positive=True)
        return (lambda x: np.exp(-t * x)), 1.0
    if kernel == "log":
        t = _real(t, "t", positive=True)
        return (lambda x: -0.5 * np.log1p(t * x)), 0.0
    if kernel == "imq":
        c = _real(t, "t", positive=True)
        return (lambda x: c / np.sqrt(c * c + x)), 1.0
    s = _real(t, "t")
    if s >= 0.0:
        raise ValueError(f"t must be < 0 for the KCL riesz kernel (s = t > 0 is ill-posed, §9.10); got {t}")
    return (lambda x: -(x ** (abs(s) / 2.0))), 0.0


def kcl_expected_energy(d: int, kernel: str = "gaussian", t: float = 2.0) -> float:
    """E_{s ~ p_d} psi_E(2 - 2s): the continuum KCL energy of sigma_d (T8) [DER].

    gaussian: e^{-2t} 0F1(; d/2; t^2) (closed form); riesz s = t < 0: -I_s(d) (closed form);
    log, imq: Gauss-Jacobi quadrature (smooth integrands).
    """
    d = _dim(d)
    psi, _ = _kcl_psi(kernel, t)
    if kernel == "gaussian":
        return math.exp(-2.0 * t + log_mgf(2.0 * t, d))
    if kernel == "riesz":
        return -riesz_continuum(t, d)
    return expectation_uniform(lambda s: psi(2.0 - 2.0 * s), d)


def kcl_expected_loss(d: int, kernel: str = "gaussian", t: float = 2.0, gamma: float = 16.0,
                      form: str = "code") -> float:
    """Expected KCL loss of the aligned uniform encoder, independent of the batch size M (T8).

    code form: -2 psi_A(0) + 2 gamma E psi_E; paper form: -psi(0) + gamma E psi (psi = psi_E).
    Gaussian: -2 + 2 gamma e^{-2t} 0F1(; d/2; t^2) (code), -1 + gamma e^{-2t} 0F1(; d/2; t^2) (paper).
    """
    gamma = _real(gamma, "gamma", positive=True)
    if form not in ("code", "paper"):
        raise ValueError(f"form must be 'code' or 'paper'; got {form!r}")
    psi, psi_a0 = _kcl_psi(kernel, t)
    energy = kcl_expected_energy(d, kernel, t)
    if form == "code":
        return -2.0 * psi_a0 + 2.0 * gamma * energy
    return -float(psi(np.array(0.0))) + gamma * energy


def finite_n_minimum(kind: str, n: int, d: int, t: float = 2.0, gamma: float = 16.0,
                     tau: float = 0.5) -> dict[str, float]:
    """Leading finite-N behaviour of the minimum of an asymptotic objective over N points (the
    "diagonal-exclusion" law; toolkit derivation [DER], checked by direct minimisation).

    For a positive-definite kernel K whose Gegenbauer coefficients of degree >= 1 are >= 0 (T9),
    sum_{i,j} K(z_i.z_j) >= N^2 I with I = E_{sigma_d} K, so the off-diagonal mean obeys

        mean_{i != j} K >= I - (K(1) - I)/(N - 1),

    (a rigorous lower bound for every N-point configuration), with near-equality at a minimiser
    whose full (diagonal included) kernel mean is I + o(1/N).
    Hence, to first order in 1/(N - 1):

    - ``uniformity`` (K = e^{-t r^2}, K(1) = 1): value >= log(I - (1 - I)/(N-1)),
      slope = -(1/I - 1);
    - ``kcl``: -2 + 2 gamma mean K >= -2 + 2 gamma (I - (1 - I)/(N-1)), slope = -2 gamma (1 - I);
    - ``dhel`` (-1/tau + mean_i log sum_{j != i} e^{s/tau} - log(N-1)): with sum_j (incl. self)
      = N m, value ~ A(d, tau) + log((N - e^{1/tau}/m)/(N-1)), slope = 1 - e^{1/tau}/m.

    The off-diagonal similarity law of such a configuration is (N/(N-1)) mu_full - delta_1/(N-1);
    with mu_full = p_d, W1(., p_d) = E_{p_d}|1 - s|/(N-1) = 1/(N-1), so ``w1_slope`` = 1.

    Returns {"asymptote", "predicted" (the N-point value above), "lower_bound" (True for
    uniformity and kcl, where it is a rigorous lower bound; False for dhel, a first-order
    approximation), "slope" (coefficient of 1/(N-1)), "w1_slope"}.
    """
    if kind not in ("uniformity", "kcl", "dhel"):
        raise ValueError(f"kind must be one of uniformity, kcl, dhel; got {kind!r}")
    n = _dim(n, "n", 2)
    if kind == "dhel":
        tau = _real(tau, "tau", positive=True)
        lm = log_mgf(1.0 / tau, d)
        e_over_m = math.exp(1.0 / tau - lm)
        asym = limit_A(d, tau)
        pred = asym + math.log((n - e_over_m) / (n - 1)) if n > e_over_m else -math.inf
        return {"asymptote": asym, "predicted": pred, "lower_bound": False, "slope": 1.0 - e_over_m,
                "w1_slope": 1.0}
    i_val = math.exp(uniformity_uniform(d, t))
    off = i_val - (1.0 - i_val) / (n - 1)
    if kind == "uniformity":
        return {"asymptote": math.log(i_val), "predicted": math.log(off) if off > 0 else -math.inf,
                "lower_bound": True, "slope": -(1.0 / i_val - 1.0), "w1_slope": 1.0}
    gamma = _real(gamma, "gamma", positive=True)
    return {"asymptote": -2.0 + 2.0 * gamma * i_val, "predicted": -2.0 + 2.0 * gamma * off,
            "lower_bound": True, "slope": -2.0 * gamma * (1.0 - i_val), "w1_slope": 1.0}


def wang_isola_saturation(d: int, k: int, t: float = 2.0) -> dict[str, float]:
    """Continuum gaps between a k-subsphere law and sigma_d (§7.2-7.3, check C27) [DER]:

    w1_gap = W1(p_k, p_d); wi_gap = unif_t(sigma_k) - unif_t(sigma_d); ratio = w1_gap / wi_gap;
    asymptote = sqrt(2/pi) (sqrt(d/k) - 1) sqrt(d) / (2 t^2 (d/k - 1)), which for k = d/2 is
    sqrt(2/pi)(sqrt 2 - 1) sqrt(d) / (2 t^2)  (Gaussian approximations of both gaps).
    """
    d = _dim(d)
    k = _dim(k, "k")
    t = _real(t, "t", positive=True)
    if k >= d:
        raise ValueError(f"k must be < d = {d} (a proper subsphere); got {k}")
    w1 = w1_between_laws(k, d)
    wi = uniformity_uniform(k, t) - uniformity_uniform(d, t)
    asym = math.sqrt(2.0 / math.pi) * (k**-0.5 - d**-0.5) / (2.0 * t * t * (1.0 / k - 1.0 / d))
    return {"w1_gap": w1, "wi_gap": wi, "ratio": w1 / wi, "asymptote": asym}


# --------------------------------------------------------------------------------------------
# T9: Gegenbauer coefficients
# --------------------------------------------------------------------------------------------
def gegenbauer_norm(n: int, d: int) -> float:
    """log h_n, h_n = int (C_n^lam)^2 (1-s^2)^{lam-1/2} ds = pi 2^{1-2lam} Gamma(n+2lam)/(n! (n+lam) Gamma(lam)^2),
    lam = d/2 - 1 (d >= 3)  [LIT: DLMF 18.3]."""
    d = _dim(d, "d", 3)
    n = _dim(n, "n", 0)
    lam = d / 2.0 - 1.0
    return (math.log(math.pi) + (1.0 - 2.0 * lam) * math.log(2.0) + math.lgamma(n + 2 * lam)
            - math.lgamma(n + 1) - math.log(n + lam) - 2.0 * math.lgamma(lam))


def gegenbauer_coefficient_gaussian(n: int, kappa: float, d: int) -> float:
    """a_n in e^{kappa s} = sum_n a_n C_n^lam(s): a_n = Gamma(lam) (kappa/2)^{-lam} (n + lam) I_{n+lam}(kappa),
    lam = d/2 - 1 (T9) [LIT: DLMF 10.23.8]; log-domain via ``ive``."""
    d = _dim(d, "d", 3)
    n = _dim(n, "n", 0)
    kappa = _real(kappa, "kappa", positive=True)
    lam = d / 2.0 - 1.0
    v = float(sc.ive(n + lam, kappa))
    if v > 0.0 and math.isfinite(v):
        log_i = math.log(v) + kappa
    else:  # tiny I: leading series term (kappa/2)^nu / Gamma(nu + 1), relative error < kappa^2/(4(nu+1))
        log_i = (n + lam) * math.log(kappa / 2.0) - math.lgamma(n + lam + 1.0)
    return math.exp(math.lgamma(lam) - lam * math.log(kappa / 2.0) + math.log(n + lam) + log_i)


@functools.cache
def _kernel_derivative(kernel: str, n: int, param: float) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
    """(h, extra) with d^n/ds^n psi(2 - 2s) = h(s) (1 - s)^extra, from sympy (T9 positivity).

    ``extra`` is the algebraic singular exponent at s = 1 (riesz only; 0 otherwise), handled by
    the Jacobi weight of the quadrature instead of the integrand.
    """
    s = sp.symbols("s", real=True)
    x = 2 - 2 * s
    p = sp.nsimplify(param)
    if kernel == "gaussian":
        f = sp.exp(-p * x)
    elif kernel == "log":
        f = -sp.log(1 + p * x) / 2
    elif kernel == "imq":
        f = p / sp.sqrt(p**2 + x)
    else:  # riesz, s = param < 0: -x^{a/2}; derivative is c (1 - s)^{a/2 - n}
        a = -p
        f = -(x ** (a / 2))
    der = sp.diff(f, s, n)
    if kernel == "riesz":
        extra = float(-p / 2 - n)
        h_expr = sp.simplify(der / (1 - s) ** (-p / 2 - n))
        return sp.lambdify(s, h_expr, "numpy"), extra
    return sp.lambdify(s, der, "numpy"), 0.0


def gegenbauer_coefficient(n: int, d: int, kernel: str, param: float, nodes: int = 120) -> float:
    """a_n of f(s) = psi(2 - 2s) in the Gegenbauer basis C_n^lam, lam = d/2 - 1, by the Rodrigues form

        int f C_n^lam (1-s^2)^{lam-1/2} ds = (2lam)_n / (2^n n! (lam+1/2)_n) int f^{(n)}(s) (1-s^2)^{n+lam-1/2} ds

    (n integrations by parts; boundary terms vanish), divided by h_n.  For completely monotone
    psi, f^{(n)} = (-2)^n psi^{(n)}(2 - 2s) >= 0, so the integrand is positive and the quadrature
    (Gauss-Jacobi, f^{(n)} from sympy) resolves even tiny coefficients (T9, check C22) [LIT; DER].
    ``kernel``: gaussian (param t: f = e^{-t(2-2s)}), log (t), imq (c), riesz (s < 0, |s| < 2).
    """
    d = _dim(d, "d", 3)
    n = _dim(n, "n", 0)
    if kernel not in KCL_KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KCL_KERNELS)}; got {kernel!r}")
    param = _real(param, "param")
    if kernel == "riesz" and not -2.0 < param < 0.0:
        raise ValueError(f"param must lie in (-2, 0) for the riesz kernel (Schoenberg regime); got {param}")
    if kernel != "riesz" and param <= 0.0:
        raise ValueError(f"param must be > 0 for the {kernel} kernel; got {param}")
    lam = d / 2.0 - 1.0
    h, extra = _kernel_derivative(kernel, n, param)
    beta = n + lam - 0.5
    x, logw = _jacobi(_dim(nodes, "nodes", 2), beta + extra, beta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vals = np.asarray(h(x), dtype=np.float64) * np.ones_like(x)
    integral = float(np.sum(np.exp(logw) * vals))
    log_k = (sc.gammaln(2 * lam + n) - sc.gammaln(2 * lam) - n * math.log(2.0) - sc.gammaln(n + 1)
             - sc.gammaln(lam + 0.5 + n) + sc.gammaln(lam + 0.5))
    return float(integral * math.exp(log_k - gegenbauer_norm(n, d)))
