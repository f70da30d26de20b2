"""The law p_d of the inner product of two independent uniform points on S^{d-1}.

For x, y iid uniform on S^{d-1} (d >= 2) the similarity s = x.y has density    (dhel_kcl.md §1)

    p_d(s) = c_d (1 - s^2)^{(d-3)/2},   s in [-1, 1],
    c_d    = Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2)),

i.e. (1 + s)/2 ~ Beta((d-1)/2, (d-1)/2); mean 0, variance 1/d.  d = 2 is the arcsine law and
d = 3 the uniform law on [-1, 1].  c_d is evaluated through log-gamma, so d = 4096 and beyond
are fine.  The CDF, its quantile and its antiderivative follow dhel_kcl.md §6:

    F_d(s)      = I_{(1+s)/2}((d-1)/2, (d-1)/2)                    (regularised incomplete beta)
    F_d^{-1}(q) = 2 betaincinv(a, a, q) - 1,   a = (d-1)/2
    G_d(s)      = int_{-1}^s F_d = s F_d(s) + c_d (1 - s^2)^{(d-1)/2} / (d - 1)

``wasserstein1_to_law`` is the exact, deterministic W1 distance between an empirical law of
similarities and p_d (dhel_kcl.md §7.3, the toolkit's default for the W1-uniformity metric).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import betainc, betaincinv, gammaln

from .validation import check_int

__all__ = [
    "log_normaliser",
    "pdf",
    "cdf",
    "quantile",
    "cdf_antiderivative",
    "sample",
    "uniform_points",
    "wasserstein1_to_law",
    "wasserstein1_between",
    "mean_abs_similarity",
]

SeedLike = int | np.random.Generator


def _check_d(d: object, name: str = "d") -> int:
    return check_int(d, name, minimum=2)


def _as_real_array(values: object, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be real numbers: {exc}") from None
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} must not contain NaN")
    return arr


def _rng(seed: object) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_int(seed, "seed", minimum=0))


def _out(arr: np.ndarray) -> np.ndarray | float:
    return float(arr) if arr.ndim == 0 else arr


def log_normaliser(d: int) -> float:
    """log c_d = lgamma(d/2) - log(pi)/2 - lgamma((d-1)/2)   (dhel_kcl.md §1) [LIT]."""
    d = _check_d(d)
    return float(gammaln(d / 2.0) - 0.5 * math.log(math.pi) - gammaln((d - 1) / 2.0))


def pdf(s: object, d: int) -> np.ndarray | float:
    """Density p_d(s) = c_d (1 - s^2)^{(d-3)/2} on [-1, 1], 0 outside (dhel_kcl.md §1) [LIT].

    Evaluated in the log domain, log(1 - s^2) = log1p(-s) + log1p(s).  At s = +-1 the value is
    +inf for d = 2, 1/2 for d = 3 and 0 for d > 3.
    """
    d = _check_d(d)
    x = _as_real_array(s, "s")
    expo = (d - 3) / 2.0
    inside = np.abs(x) <= 1.0
    xc = np.clip(x, -1.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if expo == 0.0:
            logv = np.full_like(xc, log_normaliser(d))
        else:
            logv = log_normaliser(d) + expo * (np.log1p(-xc) + np.log1p(xc))
        out = np.where(inside, np.exp(logv), 0.0)
    return _out(out)


def cdf(s: object, d: int) -> np.ndarray | float:
    """F_d(s) = I_{(1+s)/2}((d-1)/2, (d-1)/2), with F = 0 below -1 and 1 above 1 (§6) [LIT]."""
    d = _check_d(d)
    x = _as_real_array(s, "s")
    a = (d - 1) / 2.0
    return _out(betainc(a, a, np.clip((1.0 + x) / 2.0, 0.0, 1.0)))


def quantile(q: object, d: int) -> np.ndarray | float:
    """F_d^{-1}(q) = 2 betaincinv(a, a, q) - 1 with a = (d-1)/2, for q in [0, 1] (§6)."""
    d = _check_d(d)
    qq = _as_real_array(q, "q")
    if np.any((qq < 0.0) | (qq > 1.0)):
        raise ValueError("q must lie in [0, 1]")
    a = (d - 1) / 2.0
    return _out(2.0 * betaincinv(a, a, qq) - 1.0)


def _tail_term(x: np.ndarray, d: int) -> np.ndarray:
    """c_d (1 - x^2)^{(d-1)/2} / (d - 1), in the log domain; 0 for |x| >= 1."""
    xc = np.clip(x, -1.0, 1.0)
    with np.errstate(divide="ignore"):
        logv = (
            log_normaliser(d)
            + 0.5 * (d - 1) * (np.log1p(-xc) + np.log1p(xc))
            - math.log(d - 1)
        )
    return np.exp(logv)


def cdf_antiderivative(s: object, d: int) -> np.ndarray | float:
    """G_d(s) = int_{-1}^s F_d(r) dr = s F_d(s) + c_d (1 - s^2)^{(d-1)/2} / (d-1)   (§6) [DER].

    G_d(-1) = 0, G_d(1) = 1 (since E s = 0); extended by 0 below -1 and by s above 1.
    dG_d/ds = F_d because d/ds [c_d (1-s^2)^{(d-1)/2}/(d-1)] = -s p_d(s).
    """
    d = _check_d(d)
    x = _as_real_array(s, "s")
    a = (d - 1) / 2.0
    f = betainc(a, a, np.clip((1.0 + x) / 2.0, 0.0, 1.0))
    return _out(x * f + _tail_term(x, d))


def sample(n: int, d: int, seed: SeedLike) -> np.ndarray:
    """n iid draws from p_d: s = 2B - 1, B ~ Beta((d-1)/2, (d-1)/2)   (§6) [LIT].

    ``seed`` is an int (>= 0) or a numpy Generator; same seed, same draws.
    """
    n = check_int(n, "n", minimum=1)
    d = _check_d(d)
    a = (d - 1) / 2.0
    return 2.0 * _rng(seed).beta(a, a, size=n) - 1.0


def uniform_points(n: int, d: int, seed: SeedLike) -> np.ndarray:
    """n iid uniform points on S^{d-1} as rows: normalised standard Gaussians (§6) [LIT]."""
    n = check_int(n, "n", minimum=1)
    d = check_int(d, "d", minimum=1)
    g = _rng(seed).standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def wasserstein1_to_law(similarities: object, d: int) -> float:
    """Exact W1 = int_{-1}^{1} |F_n(s) - F_d(s)| ds between the empirical law F_n of
    ``similarities`` and p_d (dhel_kcl.md §7.3, toolkit default; deterministic) [RECON; DER].

    Algorithm (§7.3): sort the n values clipped to [-1, 1]; add breakpoints -1 and 1.  On each
    interval (x_k, x_{k+1}), k = 0..n, F_n = c = k/n is constant and c - F_d is decreasing, so it
    changes sign at most once, at s* = F_d^{-1}(c).  Split there if s* is inside and integrate
    each piece exactly with the antiderivative: int_a^b (c - F_d) = c (b - a) - (G_d(b) - G_d(a)).
    Only intervals where F_d(x_k) < c < F_d(x_{k+1}) need the quantile.
    """
    d = _check_d(d)
    try:
        x = np.asarray(similarities, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"similarities must be a numeric array: {exc}") from None
    if x.size == 0:
        raise ValueError("similarities must contain at least one value")
    if not np.all(np.isfinite(x)):
        raise ValueError("similarities must be finite (no NaN or inf)")
    n = x.size
    x = np.sort(np.clip(x, -1.0, 1.0))
    a = (d - 1) / 2.0
    brk = np.concatenate(([-1.0], x, [1.0]))
    fb = betainc(a, a, (1.0 + brk) / 2.0)
    gb = brk * fb + _tail_term(brk, d)
    left, right = brk[:-1], brk[1:]
    g_left, g_right = gb[:-1], gb[1:]
    c = np.arange(n + 1, dtype=np.float64) / n
    total = np.abs(c * (right - left) - (g_right - g_left))
    split = (fb[:-1] < c) & (c < fb[1:]) & (right > left)
    if np.any(split):
        idx = np.flatnonzero(split)
        cs = c[idx]
        mid = np.clip(2.0 * betaincinv(a, a, cs) - 1.0, left[idx], right[idx])
        g_mid = mid * cs + _tail_term(mid, d)  # F_d(s*) = c exactly
        total[idx] = np.abs(cs * (mid - left[idx]) - (g_mid - g_left[idx])) + np.abs(
            cs * (right[idx] - mid) - (g_right[idx] - g_mid)
        )
    return float(np.sum(total))


def mean_abs_similarity(d: int) -> float:
    """E|s| under p_d = 2 G_d(0) = 2 c_d / (d - 1)   [DER]; about sqrt(2/(pi d)) for large d."""
    d = _check_d(d)
    return float(2.0 * math.exp(log_normaliser(d) - math.log(d - 1)))


def wasserstein1_between(d1: int, d2: int) -> float:
    """Exact W1(p_{d1}, p_{d2}) = 2 |c_{d1}/(d1-1) - c_{d2}/(d2-1)|   [DER].

    Derivation: both laws are symmetric about 0 and p_{d2}/p_{d1} is monotone in |s|, so
    F_{d1} - F_{d2} changes sign only at s = 0; hence W1 = 2 |G_{d1}(0) - G_{d2}(0)| with
    G_d(0) = c_d/(d-1).  This is the collapse-model limit W1(p_k, p_d) of dhel_kcl.md §7.3; its
    Gaussian approximation sqrt(2/pi) |k^{-1/2} - d^{-1/2}| underestimates it.
    """
    return abs(mean_abs_similarity(_check_d(d1, "d1")) - mean_abs_similarity(_check_d(d2, "d2")))
