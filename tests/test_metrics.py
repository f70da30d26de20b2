"""Tests of solvers.sphere_law and solvers.metrics.

Expected values come from closed forms (or from independent quadrature / scipy.stats) and never
from the code under test.  Every tolerance is justified next to it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from scipy.special import gammaln

from solvers import metrics as m
from solvers import sphere_law as sl

# --------------------------------------------------------------------------------------------
# closed-form constructions (independent of the code under test)
# --------------------------------------------------------------------------------------------


def rotation(d: int, seed: int) -> np.ndarray:
    """Haar-random orthogonal d x d matrix (QR of a Gaussian with sign fix)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def simplex(M: int, d: int | None = None, seed: int | None = None) -> np.ndarray:
    """Centred regular simplex of M unit vectors in R^d (d >= M-1), cosines -1/(M-1).

    V = sqrt(M/(M-1)) (I - 11^T/M) has the simplex Gram; it lives in 1^perp, so V B with B an
    orthonormal basis of 1^perp gives coordinates in R^{M-1}; then zero-pad and rotate.
    """
    d = M - 1 if d is None else d
    q, _ = np.linalg.qr(np.column_stack([np.ones(M), np.eye(M)[:, : M - 1]]))
    v = math.sqrt(M / (M - 1)) * (np.eye(M) - 1.0 / M) @ q[:, 1:]
    z = np.zeros((M, d))
    z[:, : M - 1] = v
    return z if seed is None else z @ rotation(d, seed)


def cross_polytope(d: int, seed: int | None = None) -> np.ndarray:
    z = np.vstack([np.eye(d), -np.eye(d)])
    return z if seed is None else z @ rotation(d, seed)


def ssem(K: int, n: int, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """SSEM points z_{c,i} = sqrt(beta) w_c + sqrt(1-beta) e_{c,i} (ssem.md §4.1 coordinates)."""
    w = math.sqrt(K / (K - 1)) * (np.eye(K) - 1.0 / K)
    e = math.sqrt(n / (n - 1)) * (np.eye(n) - 1.0 / n)
    pts, labels = [], []
    for c in range(K):
        for i in range(n):
            z = np.zeros(K + K * n)
            z[:K] = math.sqrt(beta) * w[c]
            z[K + c * n : K + (c + 1) * n] = math.sqrt(1.0 - beta) * e[i]
            pts.append(z)
            labels.append(c)
    return np.array(pts), np.array(labels)


def beta_cdf(s: np.ndarray | float, d: int) -> np.ndarray | float:
    """F_d from scipy.stats (independent of sphere_law)."""
    a = (d - 1) / 2.0
    return stats.beta.cdf((1.0 + np.asarray(s)) / 2.0, a, a)


def beta_pdf(s: float, d: int) -> float:
    a = (d - 1) / 2.0
    return 0.5 * stats.beta.pdf((1.0 + s) / 2.0, a, a)


def c_d(d: int) -> float:
    return math.exp(gammaln(d / 2) - 0.5 * math.log(math.pi) - gammaln((d - 1) / 2))


# --------------------------------------------------------------------------------------------
# sphere_law
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [2, 3, 16, 128, 4096])
def test_pdf_mass_mean_variance(d: int) -> None:
    # Substitute s = sin(theta): int f(s) p_d(s) ds = int f(sin t) p_d(sin t) cos t dt, whose
    # integrand c_d cos^{d-2} t is smooth even for d = 2 (arcsine singularity removed).
    # Adaptive quadrature of a smooth integrand reaches ~1e-13; 1e-10 leaves margin.
    def mom(k: int) -> float:
        f = lambda t: math.sin(t) ** k * sl.pdf(math.sin(t), d) * math.cos(t)  # noqa: E731
        return integrate.quad(f, -math.pi / 2, math.pi / 2, points=[0.0], limit=200,
                              epsabs=1e-14, epsrel=1e-13)[0]

    assert abs(mom(0) - 1.0) < 1e-10
    assert abs(mom(1)) < 1e-10
    assert abs(mom(2) - 1.0 / d) < 1e-10 / d  # variance 1/d (dhel_kcl.md §1)


def test_pdf_closed_forms() -> None:
    s = np.linspace(-0.99, 0.99, 41)
    # d = 2 arcsine law 1/(pi sqrt(1-s^2)); d = 3 uniform 1/2.  Pure float evaluation: 1e-13.
    np.testing.assert_allclose(sl.pdf(s, 2), 1.0 / (np.pi * np.sqrt(1 - s**2)), rtol=1e-13)
    np.testing.assert_allclose(sl.pdf(s, 3), 0.5, rtol=1e-13)
    # d = 5: c_5 = 3/4, p = (3/4)(1 - s^2)
    np.testing.assert_allclose(sl.pdf(s, 5), 0.75 * (1 - s**2), rtol=1e-13)
    assert sl.pdf(1.5, 16) == 0.0 and sl.pdf(-2.0, 3) == 0.0
    # large d through log-gamma: finite and positive at 0 (c_4096 ~ sqrt(4096/(2 pi)) ~ 25.5)
    assert abs(sl.pdf(0.0, 4096) - c_d(4096)) < 1e-10 * c_d(4096)


@pytest.mark.parametrize("d", [2, 3, 7, 16, 128, 4096])
def test_cdf_quantile_and_antiderivative(d: int) -> None:
    s = np.linspace(-1.0, 1.0, 201)
    # cdf is the regularised incomplete beta: agreement with scipy.stats.beta to round-off.
    np.testing.assert_allclose(sl.cdf(s, d), beta_cdf(s, d), atol=1e-13)
    q = np.linspace(0.001, 0.999, 37)
    # quantile inverts the cdf; betaincinv is accurate to ~1e-14 in q.
    np.testing.assert_allclose(beta_cdf(sl.quantile(q, d), d), q, atol=1e-12)
    # G(-1) = 0 and G(1) = 1 = 1 - E[s] (closed form)
    np.testing.assert_allclose(sl.cdf_antiderivative([-1.0, 1.0], d), [0.0, 1.0], atol=1e-14)
    # G(0) = c_d/(d-1) (the s F term vanishes)
    assert abs(sl.cdf_antiderivative(0.0, d) - c_d(d) / (d - 1)) < 1e-13


@pytest.mark.parametrize("d", [2, 3, 16, 128])
def test_antiderivative_derivative_is_cdf(d: int) -> None:
    # Central differences, h = 1e-5: truncation error h^2 |F'''|/6 = h^2 |p_d''|/6, and
    # |p_d''| <= ~d^2 on the grid below (|s| <= 3/sqrt(d) for large d, away from the d = 2
    # endpoint singularity), giving <= 3e-7 at d = 128; round-off 1e-16/h = 1e-11.
    h = 1e-5
    grid = np.linspace(-0.9, 0.9, 37) if d < 100 else np.linspace(-0.25, 0.25, 37)
    fd = (sl.cdf_antiderivative(grid + h, d) - sl.cdf_antiderivative(grid - h, d)) / (2 * h)
    np.testing.assert_allclose(fd, beta_cdf(grid, d), atol=5e-7)


def test_cdf_is_integral_of_pdf() -> None:
    # F_3(s) = (1 + s)/2 and F_2(s) = 1/2 + arcsin(s)/pi (closed forms).
    s = np.linspace(-1, 1, 11)
    np.testing.assert_allclose(sl.cdf(s, 3), (1 + s) / 2, atol=1e-15)
    np.testing.assert_allclose(sl.cdf(s, 2), 0.5 + np.arcsin(s) / np.pi, atol=1e-14)


@pytest.mark.parametrize("d", [2, 3, 16, 128])
def test_sample_law_and_reproducibility(d: int) -> None:
    x = sl.sample(4000, d, seed=11)
    assert np.array_equal(x, sl.sample(4000, d, seed=11))
    assert np.all(np.abs(x) <= 1.0)
    # KS test against the incomplete-beta CDF (dhel_kcl.md DHEL-C23: p > 0.01); fixed seed, so
    # deterministic.
    assert stats.kstest(x, lambda s: beta_cdf(s, d)).pvalue > 0.01


def test_uniform_points_similarity_law() -> None:
    z = sl.uniform_points(400, 5, seed=3)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-14)
    # Pairwise similarities of iid uniform points follow p_5 (pairs are only weakly dependent);
    # use one similarity per disjoint pair so that the KS sample is iid.
    s = np.sum(z[0::2] * z[1::2], axis=1)
    assert stats.kstest(s, lambda t: beta_cdf(t, 5)).pvalue > 0.01


def brute_force_w1(x: np.ndarray, d: int) -> float:
    """int_{-1}^{1} |F_n - F_d| by scipy quad per interval of constant F_n, splitting each
    interval at the crossing F_d^{-1}(k/n) (scipy.stats.beta.ppf), independent of sphere_law."""
    x = np.sort(np.clip(x, -1, 1))
    n = x.size
    brk = np.concatenate(([-1.0], x, [1.0]))
    a = (d - 1) / 2.0
    total = 0.0
    for k in range(n + 1):
        lo, hi = brk[k], brk[k + 1]
        if hi <= lo:
            continue
        c = k / n
        star = 2 * stats.beta.ppf(c, a, a) - 1 if 0 < k < n else None
        pts = [lo] + ([star] if star is not None and lo < star < hi else []) + [hi]
        for p0, p1 in zip(pts[:-1], pts[1:], strict=True):
            total += abs(integrate.quad(lambda s, c=c: c - beta_cdf(s, d), p0, p1,
                                        epsabs=1e-13, epsrel=1e-12)[0])
    return total


@pytest.mark.parametrize("d", [2, 3, 16])
def test_w1_matches_brute_force_integral(d: int) -> None:
    rng = np.random.default_rng(d)
    x = np.concatenate([rng.uniform(-0.8, 0.9, 30), [0.1, 0.1, 0.1, -1.0, 1.0, 0.0]])
    # Each quad piece has a smooth monotone integrand (after splitting at the sign change), so
    # it is accurate to ~1e-13; summed over < 80 pieces this is far below the 1e-8 tolerance.
    assert abs(sl.wasserstein1_to_law(x, d) - brute_force_w1(x, d)) < 1e-8


@pytest.mark.parametrize("d", [3, 16, 128])
def test_w1_of_large_sample_is_small(d: int) -> None:
    # n iid draws from p_d (scipy's beta sampler, independent of sphere_law.sample).
    # E W1 <= (1/sqrt n) int sqrt(F(1-F)) <= 1/sqrt(n) (since F(1-F) <= 1/4 on [-1, 1]), and
    # McDiarmid (one draw moves W1 by <= 2/n) gives P(W1 > E W1 + 4/sqrt n) <= e^{-8}:
    # bound 5/sqrt(n).
    n = 20000
    a = (d - 1) / 2.0
    x = 2 * stats.beta.rvs(a, a, size=n, random_state=np.random.default_rng(5)) - 1
    assert sl.wasserstein1_to_law(x, d) < 5 / math.sqrt(n)
    # A wrong reference dimension is detected: W1(p_d, p_{4d}) is >> 5/sqrt(n)
    # (1/sqrt(n) = 0.007 vs the closed form 2|c_d/(d-1) - c_4d/(4d-1)| >= 0.03 here).
    assert sl.wasserstein1_to_law(x, 4 * d) > 0.5 * sl.wasserstein1_between(d, 4 * d)


@pytest.mark.parametrize("d", [2, 3, 16, 128])
@pytest.mark.parametrize("c", [-0.5, 0.0, 0.3])
def test_w1_point_mass(d: int, c: float) -> None:
    # W1(delta_c, p_d) = E|s - c|, computed by quadrature against scipy's beta density
    # (split at c; substitution-free quad on the d = 2 endpoint singularity reaches ~1e-10).
    f = lambda s: abs(s - c) * beta_pdf(s, d)  # noqa: E731
    expected = sum(integrate.quad(f, lo, hi, limit=200, epsabs=1e-13)[0]
                   for lo, hi in [(-1, c), (c, 1)])
    assert abs(sl.wasserstein1_to_law([c] * 7, d) - expected) < 1e-9


@pytest.mark.parametrize("k,d", [(2, 3), (3, 16), (8, 128), (64, 128)])
def test_w1_between_laws(k: int, d: int) -> None:
    # Brute-force int |F_k - F_d| (scipy beta CDFs, split at 0); quad error ~1e-12.
    f = lambda s: abs(beta_cdf(s, k) - beta_cdf(s, d))  # noqa: E731
    expected = sum(integrate.quad(f, lo, hi, epsabs=1e-13, limit=200)[0]
                   for lo, hi in [(-1, 0), (0, 1)])
    assert abs(sl.wasserstein1_between(k, d) - expected) < 1e-10
    assert sl.wasserstein1_between(d, k) == sl.wasserstein1_between(k, d)
    if d == 128 and k >= 8:
        # dhel_kcl.md DHEL-C25: Gaussian approximation ratio in [0.95, 1] for k >= 8, d = 128.
        ratio = math.sqrt(2 / math.pi) * abs(k**-0.5 - d**-0.5) / expected
        assert 0.95 <= ratio <= 1.0


# --------------------------------------------------------------------------------------------
# effective rank, spectra, ranks
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("M,d", [(3, 2), (4, 4), (6, 9), (10, 12)])
def test_erank_regular_simplex(M: int, d: int) -> None:
    z = simplex(M, d, seed=M)
    eps = 1e-7
    # RankMe closed form: singular values sqrt(M/(M-1)) x (M-1) and r - M + 1 zeros,
    # r = min(M, d); p = (1/(M-1) + eps, ..., eps, ...)/(1 + r eps).
    r = min(M, d)
    p = np.array([1 / (M - 1) + eps] * (M - 1) + [eps] * (r - M + 1)) / (1 + r * eps)
    expected = math.exp(-np.sum(p * np.log(p)))
    # The zero singular values are ~1e-16 instead of 0, perturbing p by 1e-16: 1e-12 is safe.
    assert abs(m.effective_rank(z, "rankme") - expected) < 1e-12
    # Without eps it is exactly M - 1; one zero singular value shifts the entropy by
    # ~ eps (ln(1/eps) + 1 - ln(M-1)) <= 1.7e-6, so erank/(M-1) - 1 <= 1.7e-6 < 1e-5
    # (dhel_kcl.md §7.4: "the eps correction is below 1e-5").
    assert abs(m.rankme(z) - (M - 1)) < 1e-5 * (M - 1)
    # Covariance and centred-singular conventions: the simplex is centred with a flat spectrum,
    # so both give M - 1; eigenvalues at the 1e-16 floor add ~1e-14 to the entropy.
    assert abs(m.effective_rank(z, "covariance") - (M - 1)) < 1e-10
    assert abs(m.effective_rank(z, "singular-centred") - (M - 1)) < 1e-10
    assert m.matrix_rank(z) == M - 1


@pytest.mark.parametrize("d", [2, 3, 5, 8])
def test_erank_cross_polytope(d: int) -> None:
    z = cross_polytope(d, seed=d)
    # All singular values equal sqrt(2) (Z^T Z = 2 I), so every convention gives d; after a
    # rotation they are equal to ~1e-15 relative, hence 1e-10 (spec DHEL-C28 asks 1e-6).
    for conv in m.ERANK_CONVENTIONS:
        assert abs(m.effective_rank(z, conv) - d) < 1e-10
    assert m.matrix_rank(z) == d


def test_erank_conventions_differ_and_guard() -> None:
    # Data with covariance eigenvalues exactly lam: Z = Q diag(sqrt((N-1) lam)), Q orthonormal
    # columns orthogonal to 1 (so Z is centred and cov = diag(lam)).
    lam = np.array([4.0, 1.0, 0.25, 0.0625])
    n = 20
    q, _ = np.linalg.qr(np.column_stack([np.ones(n), np.random.default_rng(0).standard_normal(
        (n, 4))]))
    z = q[:, 1:] * np.sqrt((n - 1) * lam)
    p = lam / lam.sum()
    ps = np.sqrt(lam) / np.sqrt(lam).sum()
    # Closed forms exp(H(p)); pure floating-point: 1e-12.
    assert abs(m.effective_rank(z, "covariance") - math.exp(-np.sum(p * np.log(p)))) < 1e-12
    assert abs(m.effective_rank(z, "singular-centred") - math.exp(-np.sum(ps * np.log(ps)))) < 1e-12
    np.testing.assert_allclose(m.covariance_spectrum(z), lam, atol=1e-13)
    # PITFALL documented in effective_rank: covariance < singular-centred for non-flat spectra.
    assert m.effective_rank(z, "covariance") < m.effective_rank(z, "singular-centred")
    # Off-centre collapse: all points equal -> uncentred RankMe 1, centred covariance all-zero
    # (guard: 0 with a warning).
    same = np.tile([[0.6, 0.8, 0.0]], (5, 1))
    # RankMe closed form: singular values (sigma, 0, 0) -> p = (1 + eps, eps, eps)/(1 + 3 eps);
    # 1 + 3.4e-6, i.e. 1 up to the eps correction.  Round-off of the zero singular values: 1e-12.
    pe = np.array([1 + 1e-7, 1e-7, 1e-7]) / (1 + 3e-7)
    assert abs(m.rankme(same) - math.exp(-np.sum(pe * np.log(pe)))) < 1e-12
    assert abs(m.rankme(same) - 1.0) < 1e-5
    with pytest.warns(RuntimeWarning, match="all-zero"):
        assert m.effective_rank(same, "covariance") == 0.0
    with pytest.warns(RuntimeWarning, match="all-zero"):
        assert m.effective_rank(np.zeros((4, 3)), "rankme") == 0.0


def test_covariance_spectrum_matches_numpy_cov() -> None:
    x = np.random.default_rng(1).standard_normal((30, 6)) @ np.diag([3, 2, 1, 1, 0.5, 0.1])
    # Independent reference: eigenvalues of np.cov (ddof=1); SVD vs eigh agree to 1e-12 rel.
    ref = np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1]
    np.testing.assert_allclose(m.covariance_spectrum(x), ref, rtol=1e-12, atol=1e-14)
    ref0 = np.sort(np.linalg.eigvalsh(x.T @ x / 30))[::-1]
    np.testing.assert_allclose(m.covariance_spectrum(x, center=False, ddof=0), ref0, rtol=1e-12)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    refn = np.sort(np.linalg.eigvalsh(np.cov(u.T)))[::-1]
    np.testing.assert_allclose(m.covariance_spectrum(x, l2_normalize=True), refn, rtol=1e-12,
                               atol=1e-15)
    # N < d: zero-padded to length d
    assert m.covariance_spectrum(x[:3]).shape == (6,)


def power_law_points(alpha: float, d: int, n: int) -> np.ndarray:
    lam = np.arange(1, d + 1, dtype=float) ** (-alpha)
    q, _ = np.linalg.qr(np.column_stack([np.ones(n), np.random.default_rng(2).standard_normal(
        (n, d))]))
    return q[:, 1:] * np.sqrt((n - 1) * lam)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.3])
def test_alpha_req_recovers_power_law(alpha: float) -> None:
    # Exact spectrum k^{-alpha}: weighted LS on an exact line recovers alpha up to the
    # floating-point error of the spectrum (~1e-13 relative in lam): ORTHO-C17 tolerance 1e-8.
    assert abs(m.alpha_req(power_law_points(alpha, 110, 150)) - alpha) < 1e-8
    with pytest.warns(RuntimeWarning, match="6..40"):
        assert abs(m.alpha_req(power_law_points(alpha, 40, 60)) - alpha) < 1e-8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert abs(m.alpha_req(power_law_points(alpha, 40, 60), ranks=(2, 30)) - alpha) < 1e-8


def test_rank_helpers() -> None:
    rng = np.random.default_rng(4)
    z = rng.standard_normal((50, 3)) @ rng.standard_normal((3, 8))  # rank 3 (generic)
    assert m.matrix_rank(z) == 3
    assert m.numerical_rank(z) == 3
    assert m.numerical_rank(np.zeros((3, 3))) == 0
    # matrix_rank uses an absolute tolerance on the covariance: tiny-scale data has rank 0
    assert m.matrix_rank(1e-4 * z) == 0 and m.numerical_rank(1e-4 * z) == 3


# --------------------------------------------------------------------------------------------
# variances, class means, NC1, Gram distances
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("K,n,beta", [(2, 3, 0.3), (3, 4, 0.0), (4, 2, 0.75), (3, 3, 1.0)])
def test_variances_ssem(K: int, n: int, beta: float) -> None:
    z, y = ssem(K, n, beta)
    # ssem.md §4.2: W = 1 - beta, B = beta, T = 1 (closed forms; float round-off 1e-12).
    for weighting in ("size", "uniform"):  # balanced classes: both weightings coincide
        w, b, t = m.variances(z, y, weighting)
        assert abs(w - (1 - beta)) < 1e-12 and abs(b - beta) < 1e-12 and abs(t - 1) < 1e-12
    # class means mu_c = sqrt(beta) w_c: cosines -1/(K-1) when beta > 0
    if beta > 0:
        np.testing.assert_allclose(m.class_mean_cosines(z, y), -1 / (K - 1), atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(m.class_means(z, y), axis=1), math.sqrt(beta),
                                   atol=1e-12)
    assert m.is_class_collapsed(z, y, tol=1e-12) == (beta == 1.0)


def test_variances_unit_vector_identities_and_weighting() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((23, 5))
    y = rng.integers(0, 4, 23)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    classes = np.unique(y)
    mu_c = np.array([u[y == c].mean(0) for c in classes])
    pi = np.array([np.mean(y == c) for c in classes])
    mu = u.mean(0)
    w, b, t = m.variances(x, y)  # normalises internally
    # W_c = 1 - |mu_c|^2, T = 1 - |mu|^2 for unit vectors (ssem.md §3); round-off 1e-12.
    assert abs(w - pi @ (1 - np.sum(mu_c**2, 1))) < 1e-12
    assert abs(t - (1 - mu @ mu)) < 1e-12
    assert abs(t - (w + b)) < 1e-12
    wu, bu, tu = m.variances(x, y, weighting="uniform")
    assert abs(wu - np.mean(1 - np.sum(mu_c**2, 1))) < 1e-12
    assert abs(bu - np.mean(np.sum((mu_c - mu) ** 2, 1))) < 1e-12
    # Hand example: class 0 = {e1, e1}, class 1 = {e2}: mu = (2 e1 + e2)/3, W = 0,
    # T = 1 - 5/9 = 4/9, B_size = 4/9, B_uniform = (2/9 + 8/9)/2 = 5/9 (T != W + B).
    z = np.array([[1.0, 0], [1.0, 0], [0, 1.0]])
    np.testing.assert_allclose(m.variances(z, [0, 0, 1]), (0, 4 / 9, 4 / 9), atol=1e-15)
    np.testing.assert_allclose(m.variances(z, [0, 0, 1], "uniform"), (0, 5 / 9, 4 / 9),
                               atol=1e-15)


def test_nc1_closed_form() -> None:
    # Two classes in R^2, class 1 = {(1,0), (c, s), (c, -s)}, class 2 = its mirror image.
    # mu_1 = -mu_2 = (m, 0) with m = (1 + 2c)/3, so Sigma_B = m^2 e1 e1^T and its
    # pseudo-inverse is e1 e1^T/m^2; (Sigma_W)_11 = 2 (1 - c)^2/9 (hand computation).
    # NC1 = 2 (1 - c)^2 / (1 + 2c)^2.
    phi = 0.7
    c, s = math.cos(phi), math.sin(phi)
    z = np.array([[1, 0], [c, s], [c, -s], [-1, 0], [-c, s], [-c, -s]])
    y = [0, 0, 0, 1, 1, 1]
    expected = 2 * (1 - c) ** 2 / (1 + 2 * c) ** 2
    assert abs(m.nc1(z, y) - expected) < 1e-12  # round-off only
    assert abs(m.nc1(z, y, divide_by_K=True) - expected / 2) < 1e-12
    # embedded in R^5 and rotated: unchanged
    z5 = np.hstack([z, np.zeros((6, 3))]) @ rotation(5, 1)
    assert abs(m.nc1(z5, y) - expected) < 1e-12
    # collapsed classes: NC1 = 0
    zc, yc = ssem(3, 3, 1.0)
    assert m.nc1(zc, yc) < 1e-20


@pytest.mark.parametrize("K", [2, 3, 4, 7])
def test_gram_distance_etf_of(K: int) -> None:
    expected = math.sqrt(2 - 2 * math.sqrt((K - 1) / K))  # prototypes.md §1.4 [DER]
    etf = np.eye(K) - 1.0 / K
    assert abs(m.gram_distance(etf, np.eye(K)) - expected) < 1e-12
    assert abs(m.gram_distance(3.0 * etf, np.eye(K)) - expected) < 1e-12  # scale invariance
    if K == 4:
        assert abs(expected - 0.5176) < 1e-4  # worked example (PROTO-C13a, 1e-4)
    # Collapsed ETF classes (each class 3 copies of a simplex vertex, scaled rows): Delta_ETF = 0
    reps = 3
    z = np.repeat(simplex(K, K + 1, seed=K), reps, axis=0) * np.arange(1, K * reps + 1)[:, None]
    y = np.repeat(np.arange(K), reps)
    assert m.class_mean_gram_distance(z, y, "etf") < 1e-12
    assert abs(m.class_mean_gram_distance(z, y, "of") - expected) < 1e-12
    # Orthogonal-frame classes: Delta_OF = 0, Delta_ETF = constant; centring the OF means gives
    # the Gram I - 11^T/K, so Delta_ETF_centred = 0.
    zo = np.repeat(np.eye(K + 1)[:K], reps, axis=0)
    assert m.class_mean_gram_distance(zo, y, "of") < 1e-12
    assert abs(m.class_mean_gram_distance(zo, y, "etf") - expected) < 1e-12
    assert m.class_mean_gram_distance(zo, y, "etf", centred=True) < 1e-12
    # explicit target Gram (Delta_W)
    assert m.class_mean_gram_distance(zo, y, np.eye(K)) < 1e-12


# --------------------------------------------------------------------------------------------
# alignment, uniformity, W1 uniformity
# --------------------------------------------------------------------------------------------
def test_alignment() -> None:
    rng = np.random.default_rng(8)
    u = rng.standard_normal((9, 4))
    v = rng.standard_normal((9, 4))
    un = u / np.linalg.norm(u, axis=1, keepdims=True)
    vn = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert m.alignment(u, u) == 0.0
    # rescaled rows normalise to the same unit vectors up to 1 ulp: |u - v|^2 ~ 1e-32
    assert m.alignment(u, 2.5 * u) < 1e-28
    # alpha = 2: 2 - 2 mean u.v (DHEL-C29, 1e-12)
    assert abs(m.alignment(u, v) - (2 - 2 * np.mean(np.sum(un * vn, 1)))) < 1e-12
    assert abs(m.alignment(np.eye(3), np.roll(np.eye(3), 1, axis=0), alpha=1) - math.sqrt(2)) \
        < 1e-15
    # REQ-4: normalised input gives the same value with the flag on or off
    assert abs(m.alignment(un, vn) - m.alignment(un, vn, normalize=False)) < 1e-14


@pytest.mark.parametrize("M", [2, 3, 5, 11])
@pytest.mark.parametrize("t", [0.5, 2.0, 7.0])
def test_uniformity_simplex_and_collapse(M: int, t: float) -> None:
    z = simplex(M, M + 2, seed=M) * np.linspace(0.5, 2, M)[:, None]  # rescaled rows
    # All pairs at r^2 = 2M/(M-1): unif = -2tM/(M-1) exactly (DHEL-C26, 1e-12).
    assert abs(m.uniformity(z, t) - (-2 * t * M / (M - 1))) < 1e-12
    collapsed = np.tile(z[:1], (M, 1))
    assert m.uniformity(collapsed, t) == 0.0
    assert "-2t" in (m.uniformity.__doc__ or "")  # REQ-5: docstring quotes the asymptote


@pytest.mark.parametrize("M,d", [(3, 2), (4, 3), (6, 16)])
def test_w1_uniformity_simplex(M: int, d: int) -> None:
    z = simplex(M, d, seed=1) * 3.0
    c = -1.0 / (M - 1)
    # All similarities equal c: W1 = E|s - c| under p_d, by quadrature of scipy's beta density
    # (accurate to ~1e-11; tolerance 1e-9).
    f = lambda s: abs(s - c) * beta_pdf(s, d)  # noqa: E731
    expected = sum(integrate.quad(f, lo, hi, limit=200, epsabs=1e-13)[0]
                   for lo, hi in [(-1, c), (c, 1)])
    assert abs(m.w1_uniformity(z) - expected) < 1e-9
    # explicit d overrides the ambient dimension (the authors' hard-coded 128)
    f128 = lambda s: abs(s - c) * beta_pdf(s, 128)  # noqa: E731
    e128 = sum(integrate.quad(f128, lo, hi, limit=200, epsabs=1e-13)[0]
               for lo, hi in [(-1, c), (c, 1)])
    assert abs(m.w1_uniformity(z, d=128) - e128) < 1e-9


def test_upper_similarities_blockwise() -> None:
    # The blockwise pair enumeration must reproduce the triu (i < j) order exactly for any
    # block size: compared with the dense product, differences are matmul round-off (1e-14).
    z = np.random.default_rng(9).standard_normal((23, 4))
    dense = (z @ z.T)[np.triu_indices(23, 1)]
    for block in (1, 5, 23, 1 << 22):
        np.testing.assert_allclose(m._upper_similarities(z, block), dense, rtol=0, atol=1e-14)


def test_w1_uniformity_parity_and_collapse() -> None:
    z = sl.uniform_points(200, 16, seed=2)
    exact = m.w1_uniformity(z)
    # Parity mode replaces p_d by n_ref samples: |difference| <= W1(ref sample, p_d), whose
    # mean is <= 0.3/sqrt(n_ref) for d = 16 (int sqrt(F(1-F)) ~ 1.2 sd, sd = 1/4) plus a
    # McDiarmid margin 4/sqrt(n_ref): bound 4.3/sqrt(2e5) ~ 0.0096.
    par = m.w1_uniformity(z, method="parity", seed=0, n_reference=200_000, max_pairs=None)
    assert abs(par - exact) < 4.3 / math.sqrt(200_000)
    # Collapse model: points on a 4-subsphere of R^16 are much farther from p_16 than uniform
    # ones; the continuum limit is W1(p_4, p_16) (closed form ~0.23).
    zk = np.hstack([sl.uniform_points(200, 4, seed=3), np.zeros((200, 12))])
    assert m.w1_uniformity(zk) > 0.5 * sl.wasserstein1_between(4, 16) > 5 * exact
    floor = m.w1_uniformity_noise_floor(200, 16, n_rep=3, seed=0)
    assert 0 < floor["mean"] < 0.05


# --------------------------------------------------------------------------------------------
# detection helpers and summaries
# --------------------------------------------------------------------------------------------
def test_detection_helpers() -> None:
    s = simplex(5, 7, seed=2)
    cp = cross_polytope(4, seed=3)
    of = np.eye(6)[:4] @ rotation(6, 4)
    # exact constructions: deviations at round-off (~1e-15), so tol 1e-12 accepts them
    assert m.is_regular_simplex(s, 1e-12)
    assert m.is_cross_polytope(cp, 1e-12)
    assert m.is_orthogonal_frame(of, 1e-12)
    assert not m.is_regular_simplex(cp, 1e-3)
    assert not m.is_cross_polytope(s, 1e-3)
    assert not m.is_orthogonal_frame(s, 1e-3)
    assert not m.is_cross_polytope(cp[:7], 1e-3)  # odd N
    # a perturbation of size 1e-3 is detected at tol 1e-6 but accepted at tol 1e-2
    bumped = s.copy()
    bumped[0] += 1e-3 * np.random.default_rng(0).standard_normal(7)
    assert not m.is_regular_simplex(bumped, 1e-6)
    assert m.is_regular_simplex(bumped, 1e-2)
    zc, yc = ssem(3, 4, 1.0)
    assert m.is_class_collapsed(zc, yc, 1e-12)
    zn, yn = ssem(3, 4, 0.9)
    assert not m.is_class_collapsed(zn, yn, 1e-3)  # W_c = 0.1


def test_gram_summary() -> None:
    z = simplex(4, 5, seed=0)
    out = m.gram_summary(z, labels=[0, 0, 1, 1])
    # all off-diagonal cosines equal -1/3 (round-off 1e-14)
    for key in ("min", "max", "mean", "within_mean", "between_min", "between_max"):
        assert abs(out[key] - (-1 / 3)) < 1e-14
    assert out["n_classes"] == 2
    single = m.gram_summary(z, labels=[0, 1, 2, 3])
    assert single["within_mean"] is None
    g = m.gram(z * 2.0)
    np.testing.assert_allclose(np.diag(g), 1.0)


# --------------------------------------------------------------------------------------------
# hypothesis properties
# --------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 12), d=st.integers(2, 9), r=st.integers(1, 9),
       seed=st.integers(0, 2**31 - 1))
def test_erank_between_one_and_rank(n: int, d: int, r: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = min(r, d, n)
    z = rng.standard_normal((n, r)) @ rng.standard_normal((r, d))  # generic rank r
    rank_raw = r
    rank_cov = min(r, n - 1)  # centring removes one dimension when r = n
    # eps = 0 conventions: 1 <= erank <= rank; round-off spectra at 1e-16 add ~1e-13.
    if rank_cov >= 1 and np.linalg.norm(z - z.mean(0)) > 1e-8:
        for conv in ("covariance", "singular-centred"):
            e = m.effective_rank(z, conv)
            assert 1 - 1e-9 <= e <= rank_cov * (1 + 1e-9)
    # RankMe: eps = 1e-7 on min(n, d) <= 12 entries can add at most
    # ~ 12 eps (log(1/eps) + 1) ~ 2e-5 relative to the entropy; allow 1e-4.
    e = m.rankme(z)
    assert 1 - 1e-9 <= e <= rank_raw * (1 + 1e-4)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(3, 10), d=st.integers(2, 8), k=st.integers(2, 3),
       seed=st.integers(0, 2**31 - 1))
def test_rotation_invariance(n: int, d: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d))
    v = rng.standard_normal((n, d))
    y = np.arange(n) % k
    q = rotation(d, seed % 1000)
    zq, vq = z @ q, v @ q
    # Every metric depends on the rows through inner products (or singular values), so a
    # rotation changes it only at round-off: ~1e-14 relative; 1e-9 leaves room for the
    # conditioning of entropies and pseudo-inverses of random configurations.
    scalars = [
        lambda a, b: m.effective_rank(a, "covariance"),
        lambda a, b: m.effective_rank(a, "rankme"),
        lambda a, b: m.effective_rank(a, "singular-centred"),
        lambda a, b: float(m.matrix_rank(a)),
        lambda a, b: m.variances(a, y)[0],
        lambda a, b: m.variances(a, y, "uniform")[1],
        lambda a, b: m.nc1(a, y),
        lambda a, b: m.class_mean_gram_distance(a, y, "etf"),
        lambda a, b: m.class_mean_gram_distance(a, y, "of", centred=True),
        lambda a, b: m.alignment(a, b),
        lambda a, b: m.alignment(a, b, alpha=1.0),
        lambda a, b: m.uniformity(a),
        lambda a, b: m.w1_uniformity(a),
        lambda a, b: m.simplex_deviation(a),
        lambda a, b: m.orthogonal_frame_deviation(a),
        lambda a, b: m.cross_polytope_deviation(a) if n % 2 == 0 else 0.0,
    ]
    for f in scalars:
        x0, x1 = f(z, v), f(zq, vq)
        assert math.isclose(x0, x1, rel_tol=1e-9, abs_tol=1e-12), f
    np.testing.assert_allclose(m.gram(zq), m.gram(z), atol=1e-13)
    np.testing.assert_allclose(m.covariance_spectrum(zq), m.covariance_spectrum(z), atol=1e-12)
    np.testing.assert_allclose(m.class_mean_cosines(zq, y), m.class_mean_cosines(z, y),
                               atol=1e-12)
    if n > d >= 3:  # full-rank centred covariance, so every log eigenvalue is finite
        a0, a1 = m.alpha_req(z, ranks=(1, d)), m.alpha_req(zq, ranks=(1, d))
        assert math.isclose(a0, a1, rel_tol=1e-8, abs_tol=1e-10)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 30), d=st.integers(1, 7), k=st.integers(1, 6),
       scale=st.floats(1e-3, 1e3), seed=st.integers(0, 2**31 - 1))
def test_total_equals_within_plus_between(n: int, d: int, k: int, scale: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    z = scale * rng.standard_normal((n, d))
    z[np.linalg.norm(z, axis=1) == 0] = 1.0
    y = rng.integers(0, k, n)
    w, b, t = m.variances(z, y)
    # Size-weighted law of total variance is an exact identity; round-off of sums of O(1)
    # terms: 1e-12 (ssem.md §3).
    assert abs(t - (w + b)) < 1e-12
    assert -1e-15 <= w <= 1 + 1e-12 and -1e-15 <= b and t <= 1 + 1e-12


# --------------------------------------------------------------------------------------------
# invalid input
# --------------------------------------------------------------------------------------------
def test_bad_inputs() -> None:
    good = np.eye(3)
    nan = good.copy()
    nan[1, 1] = np.nan
    zero = good.copy()
    zero[2] = 0.0
    with pytest.raises(ValueError, match="points"):
        m.uniformity(nan)
    with pytest.raises(ValueError, match="points"):
        m.gram(zero)
    with pytest.raises(ValueError, match="points"):
        m.w1_uniformity(zero)
    with pytest.raises(ValueError, match="labels"):
        m.variances(good, [0, 1])
    with pytest.raises(ValueError, match="labels"):
        m.nc1(good, [0, 0, 0])  # one class only
    with pytest.raises(ValueError, match="points"):
        m.uniformity(good[:1])
    with pytest.raises(ValueError, match="points"):
        m.w1_uniformity(good[:1])
    with pytest.raises(ValueError, match="u and v"):
        m.alignment(good, good[:2])
    with pytest.raises(ValueError, match="v"):
        m.alignment(good, zero)
    with pytest.raises(ValueError, match="t"):
        m.uniformity(good, t=0.0)
    with pytest.raises(ValueError, match="convention"):
        m.effective_rank(good, "entropy")
    with pytest.raises(ValueError, match="weighting"):
        m.variances(good, [0, 1, 1], "balanced")
    with pytest.raises(ValueError, match="tol"):
        m.is_regular_simplex(good, tol=-1.0)
    with pytest.raises(ValueError, match="target"):
        m.class_mean_gram_distance(good, [0, 1, 2], np.eye(2))
    with pytest.raises(ValueError, match="ranks"):
        m.alpha_req(np.random.default_rng(0).standard_normal((20, 10)), ranks=(5, 50))
    with pytest.raises(ValueError, match="d"):
        m.w1_uniformity(np.ones((3, 1)))
    with pytest.raises(ValueError, match="seed"):
        m.w1_uniformity(good, method="parity")
    with pytest.raises(ValueError, match="G_star"):
        m.gram_distance(np.eye(2), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="d"):
        sl.pdf(0.0, 1)
    with pytest.raises(ValueError, match="q"):
        sl.quantile(1.5, 3)
    with pytest.raises(ValueError, match="s"):
        sl.cdf(np.nan, 3)
    with pytest.raises(ValueError, match="similarities"):
        sl.wasserstein1_to_law([0.1, np.nan], 3)
    with pytest.raises(ValueError, match="similarities"):
        sl.wasserstein1_to_law([], 3)
    with pytest.raises(ValueError, match="n"):
        sl.sample(0, 3, seed=0)
