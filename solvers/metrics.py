"""Geometry and collapse metrics of point configurations (rows are points).

Every function states its formula and its source (spec file and section, with the spec's
provenance tag).  Invalid input raises ``ValueError`` naming the argument (solvers.validation).

Conventions and pitfalls (read before comparing numbers across papers):

- **Normalisation.**  Metrics defined on the sphere (Gram, cosines, variances, class means, NC1,
  Gram distances, alignment, uniformity, W1-uniformity, the detection helpers) L2-normalise the
  rows first unless ``normalize=False`` (anchors.md REQ-4; zero rows are then rejected).  The
  spectral metrics (covariance spectrum, effective rank, rank, alpha-ReQ) work on the raw rows by
  default (``l2_normalize=False``), as in the reference code (orthoreg.md §3, dhel_kcl.md §7.4).
- **Effective rank has three conventions that give different numbers** (orthoreg.md §3.2-3.3,
  dhel_kcl.md §7.4): ``"covariance"`` (Roy-Vetterli on the centred covariance eigenvalues, the
  toolkit default here and the convention of the DirectCLR toys), ``"rankme"`` (Garrido et al. on
  the singular values of the raw *uncentred* matrix, with p_k = sigma_k/sum(sigma) + eps; the
  convention of the DHEL/KCL checks) and ``"singular-centred"`` (singular values of the centred
  matrix).  For any non-flat spectrum erank(covariance) <= erank(singular-centred); centred and
  uncentred agree for centred configurations (simplex, cross-polytope) but differ for off-centre
  collapse (all points equal: RankMe 1, covariance 0).  Always record which one is used.
- **Class weighting.**  ``variances`` with size weights satisfies T = W + B exactly; the uniform
  weighting does not (ssem.md §3, §8.5).
- **Pairs.**  Uniformity and W1-uniformity use unordered pairs i < j, never the diagonal
  (dhel_kcl.md §9.3).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import pdist
from scipy.special import logsumexp

from . import sphere_law
from .base import normalize_rows
from .validation import (
    check_choice,
    check_finite,
    check_int,
    check_labels,
    check_points,
    check_positive,
)

__all__ = [
    "gram",
    "gram_summary",
    "variances",
    "class_means",
    "class_mean_cosines",
    "covariance_spectrum",
    "effective_rank",
    "effective_rank_of_values",
    "rankme",
    "matrix_rank",
    "numerical_rank",
    "alpha_req",
    "power_law_exponent",
    "nc1",
    "gram_distance",
    "class_mean_gram_distance",
    "alignment",
    "uniformity",
    "w1_uniformity",
    "w1_uniformity_noise_floor",
    "simplex_deviation",
    "orthogonal_frame_deviation",
    "cross_polytope_deviation",
    "is_regular_simplex",
    "is_orthogonal_frame",
    "is_class_collapsed",
    "is_cross_polytope",
]

ERANK_CONVENTIONS = ("covariance", "rankme", "singular-centred")
RANKME_EPS = 1e-7


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _points(points: object, normalize: bool, name: str = "points") -> np.ndarray:
    """Validated float64 rows, L2-normalised when ``normalize`` (zero rows rejected then)."""
    x = check_points(points, name, allow_zero_rows=not normalize)
    return normalize_rows(x)[0] if normalize else x


def _at_least(x: np.ndarray, n: int, name: str, why: str) -> None:
    if x.shape[0] < n:
        raise ValueError(f"{name} must have at least {n} rows ({why}); got {x.shape[0]}")


def _labelled(
    points: object, labels: object, normalize: bool, min_classes: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, class index per row in 0..K-1, sorted class labels)."""
    x = _points(points, normalize)
    y = check_labels(labels, x.shape[0], "labels")
    classes, idx = np.unique(y, return_inverse=True)
    if classes.size < min_classes:
        raise ValueError(f"labels must contain at least {min_classes} classes; got {classes.size}")
    return x, idx, classes


def _means(x: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(idx, minlength=k).astype(np.float64)
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, idx, x)
    return sums / counts[:, None], counts


def _tol(tol: object) -> float:
    v = check_finite(tol, "tol")
    if v < 0.0:
        raise ValueError(f"tol must be a finite real number >= 0; got {tol!r}")
    return v


def _offdiag(g: np.ndarray) -> np.ndarray:
    return g[~np.eye(g.shape[0], dtype=bool)]


# --------------------------------------------------------------------------------------------
# Gram matrix and cosine statistics
# --------------------------------------------------------------------------------------------
def gram(points: object, normalize: bool = True) -> np.ndarray:
    """Gram matrix G = Z Z^T of the rows Z (cosine matrix when ``normalize``, clipped to [-1, 1]).

    Source: DESIGN.md (losses as functions of S = Z Z^T); prototypes.md §1.4.
    """
    z = _points(points, normalize)
    g = z @ z.T
    if normalize:
        np.clip(g, -1.0, 1.0, out=g)
        np.fill_diagonal(g, 1.0)
    return g


def _stats(v: np.ndarray, prefix: str) -> dict[str, float | None]:
    if v.size == 0:
        return {f"{prefix}min": None, f"{prefix}max": None, f"{prefix}mean": None}
    return {
        f"{prefix}min": float(v.min()),
        f"{prefix}max": float(v.max()),
        f"{prefix}mean": float(v.mean()),
    }


def gram_summary(points: object, labels: object | None = None) -> dict[str, float | int | None]:
    """Off-diagonal cosine statistics of the normalised rows: ``min``, ``max``, ``mean`` over
    i != j; with ``labels`` also ``within_*`` (same class) and ``between_*`` (different classes).
    Empty sets give ``None``.  Source: prototypes.md §1.4 (mean angle statistic) [CODE-K].
    """
    g = gram(points, normalize=True)
    n = g.shape[0]
    _at_least(g, 2, "points", "off-diagonal cosines need two points")
    off = ~np.eye(n, dtype=bool)
    out: dict[str, float | int | None] = {"n_points": n}
    out.update(_stats(g[off], ""))
    if labels is not None:
        y = check_labels(labels, n, "labels")
        same = (y[:, None] == y[None, :]) & off
        out["n_classes"] = int(np.unique(y).size)
        out.update(_stats(g[same], "within_"))
        out.update(_stats(g[off & ~same], "between_"))
    return out


# --------------------------------------------------------------------------------------------
# Variances and class means
# --------------------------------------------------------------------------------------------
def variances(
    points: object, labels: object, weighting: str = "size", normalize: bool = True
) -> tuple[float, float, float]:
    """(W, B, T): within-class, between-class and total variance (ssem.md §3) [REC; CODE].

    mu_c = class mean, mu = global mean of the (normalised) rows, pi_c the class weights:

        W_c = mean_{z in c} ||z - mu_c||^2   (= 1 - ||mu_c||^2 for unit rows)
        W   = sum_c pi_c W_c,   B = sum_c pi_c ||mu_c - mu||^2,   T = mean_z ||z - mu||^2

    ``weighting="size"``: pi_c = n_c/N (authors' synthetic code) and T = W + B exactly.
    ``weighting="uniform"``: pi_c = 1/K; then T = W + B fails for unbalanced classes (the
    authors' evaluation code instead defines between = T - W).  Balanced classes: all coincide.
    """
    check_choice(weighting, "weighting", ("size", "uniform"))
    x, idx, classes = _labelled(points, labels, normalize)
    k = classes.size
    mu_c, counts = _means(x, idx, k)
    mu = x.mean(axis=0)
    dev = x - mu_c[idx]
    w_c = np.bincount(idx, weights=np.einsum("ij,ij->i", dev, dev), minlength=k) / counts
    pi = counts / x.shape[0] if weighting == "size" else np.full(k, 1.0 / k)
    w = float(pi @ w_c)
    b = float(pi @ np.sum((mu_c - mu) ** 2, axis=1))
    gdev = x - mu
    t = float(np.mean(np.einsum("ij,ij->i", gdev, gdev)))
    return w, b, t


def class_means(points: object, labels: object, normalize: bool = True) -> np.ndarray:
    """(K, d) uncentred class means mu_c of the L2-normalised rows, classes in sorted label order.

    Source: prototypes.md §1.4 (mu_c uncentred mean of the normalised embeddings) [CODE-K].
    """
    x, idx, classes = _labelled(points, labels, normalize)
    return _means(x, idx, classes.size)[0]


def class_mean_cosines(points: object, labels: object) -> np.ndarray:
    """cos(mu_c, mu_c') for c < c' (K(K-1)/2 values, row-major upper triangle).

    Their mean is the mean angle statistic sum_{c != c'} cos(mu_c, mu_c')/(K^2 - K)
    (prototypes.md §1.4) [CODE-K].  A zero class mean has no direction: ValueError.
    """
    m = class_means(points, labels)
    if m.shape[0] < 2:
        raise ValueError(f"labels must contain at least 2 classes; got {m.shape[0]}")
    norms = np.linalg.norm(m, axis=1)
    if np.any(norms <= 1e-12):
        bad = int(np.argmin(norms))
        raise ValueError(
            f"points: the mean of class index {bad} is (numerically) zero, so its cosine with "
            "other class means is undefined"
        )
    u = m / norms[:, None]
    g = np.clip(u @ u.T, -1.0, 1.0)
    return g[np.triu_indices(m.shape[0], 1)]


# --------------------------------------------------------------------------------------------
# Spectra and ranks
# --------------------------------------------------------------------------------------------
def covariance_spectrum(
    points: object, center: bool = True, l2_normalize: bool = False, ddof: int = 1
) -> np.ndarray:
    """Eigenvalues lambda_1 >= ... >= lambda_d of C = (1/(N - ddof)) sum_i (z_i - zbar)(z_i -
    zbar)^T (zbar = 0 when ``center=False``), via the SVD of the (centred) rows: lambda_k =
    sigma_k^2/(N - ddof), zero-padded to length d.  Nonnegative by construction.

    Source: orthoreg.md §3.1 [CODE-DCLR] (reference scripts: ddof = 1; the ImageNet script
    L2-normalises first, the toys do not).
    """
    z = _points(points, l2_normalize)
    ddof = check_int(ddof, "ddof", minimum=0)
    n, d = z.shape
    if n - ddof <= 0:
        raise ValueError(f"points must have more than ddof = {ddof} rows; got {n}")
    if center:
        z = z - z.mean(axis=0)
    s = np.linalg.svd(z, compute_uv=False)
    lam = np.zeros(d)
    lam[: s.size] = s**2 / (n - ddof)
    return lam


def effective_rank_of_values(values: object, eps: float = 0.0) -> float:
    """Roy-Vetterli effective rank exp(-sum_k p_k log p_k) of nonnegative ``values``.

    p_k = s_k / sum_j s_j + eps, renormalised to sum 1 (eps = 0: plain Roy-Vetterli, 0 log 0 = 0;
    eps = 1e-7: RankMe).  Tiny negative values (floating-point floor) are clipped to 0
    (orthoreg.md §5.8).  All-zero input returns 0 with a RuntimeWarning (dhel_kcl.md §7.4 guard).
    Source: orthoreg.md §3.2-3.3 [LIT].
    """
    s = np.asarray(values, dtype=np.float64).ravel()
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError("values must be a non-empty array of finite numbers")
    if np.any(s < -1e-12 * max(1.0, float(np.abs(s).max()))):
        raise ValueError("values must be nonnegative (spectrum or singular values)")
    if not math.isfinite(eps) or eps < 0.0:
        raise ValueError(f"eps must be a finite real number >= 0; got {eps!r}")
    s = np.clip(s, 0.0, None)
    total = float(s.sum())
    if total == 0.0:
        warnings.warn(
            "effective rank of an all-zero spectrum: returning 0", RuntimeWarning, stacklevel=2
        )
        return 0.0
    p = s / total + eps
    p = p / p.sum()
    p = p[p > 0.0]
    return float(np.exp(-np.sum(p * np.log(p))))


def effective_rank(
    points: object,
    convention: str = "covariance",
    eps: float | None = None,
    l2_normalize: bool = False,
    ddof: int = 1,
) -> float:
    """Effective rank erank = exp(H(p)) of the rows under one of three conventions.

    - ``"covariance"`` (default): p_k proportional to the centred covariance eigenvalues
      lambda_k(C) (orthoreg.md §3.2 toolkit convention, DirectCLR toys) [LIT].
    - ``"rankme"``: RankMe of Garrido et al.: singular values sigma_k of the *raw, uncentred*
      N x d matrix, k <= min(N, d), p_k = sigma_k/sum(sigma) + eps with eps = 1e-7, renormalised
      (dhel_kcl.md §7.4, orthoreg.md §3.3) [CODE; LIT].  Regular simplex of M points: M - 1 (eps
      correction < 1e-5); cross-polytope {+-e_k} in R^d: d exactly.  The clean version is
      implemented (no rescaling quirk of the authors' code).
    - ``"singular-centred"``: p_k proportional to the singular values of the centred matrix
      (= sqrt(lambda_k)); larger than ``"covariance"`` for any non-flat spectrum.

    PITFALL: the conventions give different numbers (and some libraries feed sigma^2 into the
    RankMe formula); they agree only on flat spectra.  ``eps`` defaults to 1e-7 for RankMe and 0
    otherwise.  Zero rows are allowed unless ``l2_normalize``.  An all-zero spectrum returns 0
    with a RuntimeWarning.  Properties: 1 <= erank <= rank (eps = 0).
    """
    check_choice(convention, "convention", ERANK_CONVENTIONS)
    if eps is None:
        eps = RANKME_EPS if convention == "rankme" else 0.0
    eps = float(eps)
    if not math.isfinite(eps) or eps < 0.0:
        raise ValueError(f"eps must be a finite real number >= 0; got {eps!r}")
    if convention == "covariance":
        values = covariance_spectrum(points, center=True, l2_normalize=l2_normalize, ddof=ddof)
    else:
        z = _points(points, l2_normalize)
        if convention == "singular-centred":
            _at_least(z, 2, "points", "centring needs two points")
            z = z - z.mean(axis=0)
        values = np.linalg.svd(z, compute_uv=False)
    return effective_rank_of_values(values, eps=eps)


def rankme(points: object, eps: float = RANKME_EPS) -> float:
    """RankMe (Garrido et al. 2023) = ``effective_rank(points, "rankme", eps)``; see there."""
    return effective_rank(points, convention="rankme", eps=eps)


def matrix_rank(points: object, tol: float = 1e-5, l2_normalize: bool = False) -> int:
    """rank(Z) = matrix_rank(cov(Z^T), tol): number of singular values of the centred d x d
    covariance (ddof = 1) above the *absolute* threshold ``tol`` (dhel_kcl.md §7.4) [CODE]."""
    tol = check_positive(tol, "tol")
    lam = covariance_spectrum(points, center=True, l2_normalize=l2_normalize, ddof=1)
    return int(np.count_nonzero(lam > tol))


def numerical_rank(matrix: object, rtol: float | None = None) -> int:
    """Number of singular values sigma_k > rtol * sigma_max of ``matrix`` (rtol = None:
    max(shape) * machine epsilon, numpy's default).  A zero matrix has rank 0."""
    a = check_points(matrix, "matrix", allow_zero_rows=True)
    s = np.linalg.svd(a, compute_uv=False)
    r = max(a.shape) * np.finfo(np.float64).eps if rtol is None else check_positive(rtol, "rtol")
    if s[0] == 0.0:
        return 0
    return int(np.count_nonzero(s > r * s[0]))


def power_law_exponent(eigenvalues: object, ranks: Sequence[int] | None = None) -> float:
    """alpha of lambda_k ~ k^{-alpha}: negative slope of the weighted least-squares fit of
    log|lambda_k| against log k over the 1-based rank window [lo, hi] with weights 1/k
    (orthoreg.md §3.4; Stringer et al. 2019 reference, which uses |lambda|) [LIT; LIB].

    Default window: ranks 6..100; if fewer than 100 values, 6..len with a RuntimeWarning.
    A zero eigenvalue inside the window gives +inf (total collapse) with a RuntimeWarning.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64).ravel()
    if lam.size == 0 or not np.all(np.isfinite(lam)):
        raise ValueError("eigenvalues must be a non-empty array of finite numbers")
    lam = np.sort(np.abs(lam))[::-1]
    n = lam.size
    if ranks is None:
        if n < 7:
            raise ValueError(
                f"eigenvalues: the default rank window 6..100 needs at least 7 values; got {n}"
            )
        lo, hi = 6, min(100, n)
        if n < 100:
            warnings.warn(
                f"alpha-ReQ: only {n} eigenvalues, fitting ranks 6..{n} instead of 6..100",
                RuntimeWarning,
                stacklevel=2,
            )
    else:
        try:
            lo, hi = (int(r) for r in ranks)
        except (TypeError, ValueError):
            raise ValueError(f"ranks must be a pair (lo, hi) of integers; got {ranks!r}") from None
        if not 1 <= lo < hi <= n:
            raise ValueError(f"ranks must satisfy 1 <= lo < hi <= {n}; got {ranks!r}")
    k = np.arange(lo, hi + 1, dtype=np.float64)
    y = lam[lo - 1 : hi]
    if np.any(y == 0.0):
        warnings.warn(
            "alpha-ReQ: zero eigenvalue inside the rank window, returning inf",
            RuntimeWarning,
            stacklevel=2,
        )
        return math.inf
    x = np.column_stack([-np.log(k), np.ones_like(k)])
    w = 1.0 / k
    coef = np.linalg.solve(x.T @ (x * w[:, None]), (x * w[:, None]).T @ np.log(y))
    return float(coef[0])


def alpha_req(
    points: object,
    ranks: Sequence[int] | None = None,
    center: bool = True,
    l2_normalize: bool = False,
    ddof: int = 1,
) -> float:
    """alpha-ReQ (Agrawal et al. 2022): ``power_law_exponent`` of the covariance spectrum
    (``covariance_spectrum(points, center, l2_normalize, ddof)``), ranks 6..100 weighted 1/k;
    for d < 100 ranks 6..d with a warning; explicit ``ranks=(lo, hi)`` accepted
    (orthoreg.md §3.4) [LIT; LIB].  Small alpha: flat spectrum; large alpha: collapse."""
    lam = covariance_spectrum(points, center=center, l2_normalize=l2_normalize, ddof=ddof)
    return power_law_exponent(lam, ranks)


# --------------------------------------------------------------------------------------------
# Neural-collapse metrics
# --------------------------------------------------------------------------------------------
def nc1(
    points: object, labels: object, divide_by_K: bool = False, normalize: bool = True
) -> float:
    """NC1 = Tr(Sigma_W Sigma_B^+) (prototypes.md §1.4, Kini's convention) [CODE-K].

        Sigma_W = (1/N) sum_i (z_i - mu_{y_i})(z_i - mu_{y_i})^T
        Sigma_B = (1/K) sum_c (mu_c - mubar)(mu_c - mubar)^T,  mubar = (1/K) sum_c mu_c

    Sigma_B^+ keeps the top K - 1 singular directions.  Kini does not divide by K (default);
    many papers do (``divide_by_K=True``).  If Sigma_B is zero (all class means equal) the result
    is +inf (0 when also Sigma_W = 0) with a RuntimeWarning.
    """
    x, idx, classes = _labelled(points, labels, normalize, min_classes=2)
    k = classes.size
    mu_c, _ = _means(x, idx, k)
    dev = x - mu_c[idx]
    sw = dev.T @ dev / x.shape[0]
    mc = mu_c - mu_c.mean(axis=0)
    sb = mc.T @ mc / k
    u, s, _ = np.linalg.svd(sb)
    keep = min(k - 1, s.size)
    u, s = u[:, :keep], s[:keep]
    good = s > 1e-12 * max(float(s.max(initial=0.0)), 1e-300)
    if not np.any(good):
        warnings.warn(
            "NC1: between-class scatter is zero (all class means coincide)",
            RuntimeWarning,
            stacklevel=2,
        )
        return 0.0 if float(np.trace(sw)) == 0.0 else math.inf
    u, s = u[:, good], s[good]
    val = float(np.trace(u.T @ sw @ u / s[None, :]))
    val = max(val, 0.0)
    return val / k if divide_by_K else val


def gram_distance(G: object, G_star: object) -> float:
    """Delta(G, G*) = || G/||G||_F - G*/||G*||_F ||_F   (prototypes.md §1.4) [CODE-K].

    Scale-invariant in each argument; Delta(ETF, OF) = sqrt(2 - 2 sqrt((K-1)/K)) [DER].
    """
    a = check_points(G, "G", allow_zero_rows=True)
    b = check_points(G_star, "G_star", allow_zero_rows=True)
    if a.shape != b.shape or a.shape[0] != a.shape[1]:
        raise ValueError(
            f"G and G_star must be square matrices of the same shape; got {a.shape} and {b.shape}"
        )
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0:
        raise ValueError("G must not be the zero matrix (Frobenius norm > 0 required)")
    if nb == 0.0:
        raise ValueError("G_star must not be the zero matrix (Frobenius norm > 0 required)")
    return float(np.linalg.norm(a / na - b / nb))


def class_mean_gram_distance(
    points: object,
    labels: object,
    target: str | object = "etf",
    centred: bool = False,
) -> float:
    """Delta(G_M, G*) with G_M = M M^T, M = (K, d) class means of the normalised rows
    (prototypes.md §1.4) [CODE-K]:

    - ``target="etf"``: G* = I - 11^T/K (Delta_ETF; ``centred=True`` subtracts
      mubar = (1/K) sum_c mu_c first: Delta_ETF_centred, Kini's plotting convention);
    - ``target="of"``: G* = I (Delta_OF);
    - an array: G* = that K x K Gram matrix (Delta_W, e.g. the prototypes' Gram G_W).

    Default uncentred means (toolkit convention); centred and uncentred differ for off-centre
    means (prototypes.md §5.3).
    """
    m = class_means(points, labels)
    k = m.shape[0]
    if k < 2:
        raise ValueError(f"labels must contain at least 2 classes; got {k}")
    if centred:
        m = m - m.mean(axis=0)
    gm = m @ m.T
    if isinstance(target, str):
        check_choice(target, "target", ("etf", "of"))
        g_star = np.eye(k) - (np.ones((k, k)) / k if target == "etf" else 0.0)
    else:
        g_star = check_points(target, "target", allow_zero_rows=True)
        if g_star.shape != (k, k):
            raise ValueError(f"target must be a ({k}, {k}) Gram matrix; got {g_star.shape}")
    if np.linalg.norm(gm) == 0.0:
        raise ValueError("points: all class means are zero, so their Gram matrix is zero")
    return gram_distance(gm, g_star)


# --------------------------------------------------------------------------------------------
# Alignment and uniformity
# --------------------------------------------------------------------------------------------
def alignment(u: object, v: object, alpha: float = 2.0, normalize: bool = True) -> float:
    """align_alpha(U, V) = mean_i ||u_i - v_i||^alpha (Wang & Isola; dhel_kcl.md §7.1) [CODE].

    alpha = 2 gives 2 - 2 mean_i u_i.v_i; 0 at perfect alignment.  ||u - v||^2 is computed
    directly (no 2 - 2u.v cancellation, dhel_kcl.md §9.5).
    """
    a = _points(u, normalize, "u")
    b = _points(v, normalize, "v")
    if a.shape != b.shape:
        raise ValueError(f"u and v must have the same shape; got {a.shape} and {b.shape}")
    alpha = check_positive(alpha, "alpha")
    r2 = np.sum((a - b) ** 2, axis=1)
    return float(np.mean(r2 ** (alpha / 2.0)))


def uniformity(points: object, t: float = 2.0, normalize: bool = True) -> float:
    """unif_t(Z) = log mean_{i<j} exp(-t ||z_i - z_j||^2), t = 2 by default
    (Wang & Isola; dhel_kcl.md §7.2, orthoreg.md §3.5) [CODE; LIT].

    Computed as LSE_{i<j}(-t r_ij^2) - log(M(M-1)/2) over the M(M-1)/2 unordered pairs (never the
    diagonal).  Negative by design: 0 at complete collapse, -2tM/(M-1) at a regular simplex of
    M points, -2t + log 0F1(; d/2; t^2) at the uniform law on S^{d-1}, which tends to the
    asymptote -2t (= -4 at t = 2) as d -> infinity.  Fewer than 2 points: ValueError.
    """
    z = _points(points, normalize)
    _at_least(z, 2, "points", "uniformity averages over pairs i < j")
    t = check_positive(t, "t")
    r2 = pdist(z, metric="sqeuclidean")
    return float(logsumexp(-t * r2) - math.log(r2.size))


def _upper_similarities(z: np.ndarray, block_elems: int = 1 << 22) -> np.ndarray:
    """z_i.z_j for i < j in row-major (np.triu_indices) order, computed in row blocks so that
    memory stays O(N * block) on top of the N(N-1)/2 output."""
    n = z.shape[0]
    out = np.empty(n * (n - 1) // 2)
    pos = 0
    step = max(1, block_elems // n)
    for start in range(0, n - 1, step):
        stop = min(n - 1, start + step)
        g = z[start:stop] @ z[start:].T
        for i in range(start, stop):
            row = g[i - start, i - start + 1 :]
            out[pos : pos + row.size] = row
            pos += row.size
    return out


def w1_uniformity(
    points: object,
    d: int | None = None,
    normalize: bool = True,
    method: str = "exact",
    seed: int | np.random.Generator | None = None,
    n_reference: int = 10_000,
    max_pairs: int | None = 50_000,
) -> float:
    """W1unif(Z): Wasserstein-1 distance between the empirical law of the upper-triangle
    similarities {z_i.z_j : i < j} and p_d, d = ambient dimension Z.shape[1] by default
    (dhel_kcl.md §7.3) [CODE; RECON].

    ``method="exact"`` (default, deterministic): ``sphere_law.wasserstein1_to_law``.
    ``method="parity"`` (authors' code, needs ``seed``): ``n_reference`` draws from p_d,
    at most ``max_pairs`` similarities subsampled without replacement (None: all), then
    ``scipy.stats.wasserstein_distance``.  Rows are normalised by default (the authors' code
    does not).  Even exactly uniform samples give W1unif > 0; see
    ``w1_uniformity_noise_floor``.  Collapse onto a k-subsphere: W1unif -> W1(p_k, p_d).
    """
    z = _points(points, normalize)
    _at_least(z, 2, "points", "W1 uniformity uses pairs i < j")
    d = z.shape[1] if d is None else d
    d = check_int(d, "d", minimum=2)
    check_choice(method, "method", ("exact", "parity"))
    sims = _upper_similarities(z)
    if method == "exact":
        return sphere_law.wasserstein1_to_law(sims, d)
    from scipy.stats import wasserstein_distance

    if seed is None:
        raise ValueError("seed must be given (int >= 0 or numpy Generator) for method='parity'")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(
        check_int(seed, "seed", minimum=0)
    )
    n_reference = check_int(n_reference, "n_reference", minimum=1)
    ref = sphere_law.sample(n_reference, d, rng)
    if max_pairs is not None:
        max_pairs = check_int(max_pairs, "max_pairs", minimum=1)
        if sims.size > max_pairs:
            sims = rng.choice(sims, size=max_pairs, replace=False)
    return float(wasserstein_distance(sims, ref))


def w1_uniformity_noise_floor(
    n: int, d: int, n_rep: int = 20, seed: int | np.random.Generator = 0
) -> dict[str, float]:
    """Monte Carlo mean and standard deviation of the exact W1unif of ``n`` iid uniform points
    on S^{d-1} over ``n_rep`` repetitions: the value to report next to W1unif
    (dhel_kcl.md §7.3, "Noise floor")."""
    n = check_int(n, "n", minimum=2)
    d = check_int(d, "d", minimum=2)
    n_rep = check_int(n_rep, "n_rep", minimum=1)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(
        check_int(seed, "seed", minimum=0)
    )
    vals = np.array(
        [w1_uniformity(sphere_law.uniform_points(n, d, rng)) for _ in range(n_rep)]
    )
    std = float(vals.std(ddof=1)) if n_rep > 1 else 0.0
    return {"mean": float(vals.mean()), "std": std, "n_rep": float(n_rep)}


# --------------------------------------------------------------------------------------------
# Detection helpers (explicit tolerances)
# --------------------------------------------------------------------------------------------
def simplex_deviation(points: object, normalize: bool = True) -> float:
    """max_{i != j} |cos(z_i, z_j) + 1/(M-1)|: 0 iff the M rows form a centred regular simplex
    (dhel_kcl.md §3.2, T1) [LIT]."""
    g = gram(points, normalize)
    _at_least(g, 2, "points", "a simplex needs two points")
    return float(np.max(np.abs(_offdiag(g) + 1.0 / (g.shape[0] - 1))))


def orthogonal_frame_deviation(points: object, normalize: bool = True) -> float:
    """max_{i != j} |cos(z_i, z_j)|: 0 iff the rows are mutually orthogonal (prototypes.md T2)."""
    g = gram(points, normalize)
    _at_least(g, 2, "points", "orthogonality needs two points")
    return float(np.max(np.abs(_offdiag(g))))


def cross_polytope_deviation(points: object, normalize: bool = True) -> float:
    """Deviation from a cross-polytope {+-e_1, ..., +-e_m} (N = 2m rows, any rotation): each row
    is paired with its most negative partner (the pairing must be mutual) and the result is
    max(|cos + 1| over partners, |cos| over all other pairs); +inf if N is odd or the pairing
    is not mutual (dhel_kcl.md §3.2) [LIT]."""
    g = gram(points, normalize)
    n = g.shape[0]
    _at_least(g, 2, "points", "a cross-polytope needs two points")
    if n % 2:
        return math.inf
    h = g.copy()
    np.fill_diagonal(h, np.inf)
    partner = np.argmin(h, axis=1)
    if np.any(partner[partner] != np.arange(n)):
        return math.inf
    rows = np.arange(n)
    dev_pair = np.abs(g[rows, partner] + 1.0)
    mask = ~np.eye(n, dtype=bool)
    mask[rows, partner] = False
    dev_rest = np.abs(g[mask]) if np.any(mask) else np.zeros(1)
    return float(max(dev_pair.max(), dev_rest.max()))


def is_regular_simplex(points: object, tol: float, normalize: bool = True) -> bool:
    """True iff ``simplex_deviation(points) <= tol`` (every off-diagonal cosine -1/(M-1))."""
    return simplex_deviation(points, normalize) <= _tol(tol)


def is_orthogonal_frame(points: object, tol: float, normalize: bool = True) -> bool:
    """True iff ``orthogonal_frame_deviation(points) <= tol`` (all off-diagonal cosines 0)."""
    return orthogonal_frame_deviation(points, normalize) <= _tol(tol)


def is_cross_polytope(points: object, tol: float, normalize: bool = True) -> bool:
    """True iff ``cross_polytope_deviation(points) <= tol``."""
    return cross_polytope_deviation(points, normalize) <= _tol(tol)


def is_class_collapsed(
    points: object, labels: object, tol: float, normalize: bool = True
) -> bool:
    """Class collapse: max_c W_c <= tol, with W_c = mean_{z in c} ||z - mu_c||^2 the within-class
    variance of the normalised rows (ssem.md §3: collapse means W = 0).  The per-class maximum is
    used so that one uncollapsed small class cannot hide in the size-weighted mean W."""
    tol = _tol(tol)
    x, idx, classes = _labelled(points, labels, normalize)
    mu_c, counts = _means(x, idx, classes.size)
    dev = x - mu_c[idx]
    w_c = np.bincount(idx, weights=np.einsum("ij,ij->i", dev, dev), minlength=classes.size)
    return bool(np.max(w_c / counts) <= tol)
