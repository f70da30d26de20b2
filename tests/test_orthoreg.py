"""SO / SRIP regularisers, their gradients and conventions, and the spectral propositions
(orthoreg.md §1-§3).  Expected values come from the spec's closed forms, from sympy derivations in
theory/orthoreg.py, or from independent numpy linear algebra, never from the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers import metrics
from solvers import orthoreg as orr
from theory import orthoreg as th

SETTINGS = settings(max_examples=25, deadline=None)
shapes = st.tuples(st.integers(1, 7), st.integers(1, 7))
seeds = st.integers(0, 2**31 - 1)


def fd_grad(f, w: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central finite differences (truncation O(h^2) ~ 1e-12 relative, round-off ~ eps/h ~ 1e-10)."""
    g = np.zeros_like(w)
    for idx in np.ndindex(*w.shape):
        e = np.zeros_like(w)
        e[idx] = h
        g[idx] = (f(w + e) - f(w - e)) / (2 * h)
    return g


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||b||, 1): relative, with an absolute floor (the O(1) gradient scale of
    O(1) matrices; FD round-off is ~1e-10) for an exactly zero reference
    (e.g. the SRIP gradient under the large Gram when the top |eigenvalue| comes from a zero
    eigenvalue of W^T W: v is in the null space of W and 2 s W v v^T = 0)."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1.0))


def orthonormal_columns(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((n, k)))
    return q


# ---------------------------------------------------------------------------------------------
# ORTHO-C1, C2: gradients
# ---------------------------------------------------------------------------------------------
@SETTINGS
@given(shape=shapes, seed=seeds, gram=st.sampled_from(orr.GRAMS), squared=st.booleans())
def test_so_gradient_matches_finite_differences(shape, seed, gram, squared):
    w = np.random.default_rng(seed).standard_normal(shape)
    g = orr.so_grad(w, gram, squared)
    # rel 1e-6 (spec ORTHO-C1): central differences are accurate to ~1e-9 here
    assert rel_err(g, fd_grad(lambda x: orr.so(x, gram, squared), w)) < 1e-6


@SETTINGS
@given(shape=shapes, seed=seeds)
def test_so_gradient_closed_forms_of_the_spec(shape, seed):
    w = np.random.default_rng(seed).standard_normal(shape)
    m, n = shape
    tall = 4 * w @ (w.T @ w - np.eye(n))
    wide = 4 * (w @ w.T - np.eye(m)) @ w
    expected = tall if m > n else wide
    # 1e-12: the same float64 products in a different association order
    assert rel_err(orr.so_grad(w), expected) < 1e-12
    assert rel_err(orr.so_grad(w, "large"), tall) < 1e-12


@SETTINGS
@given(shape=shapes, seed=seeds, gram=st.sampled_from(orr.GRAMS))
def test_srip_gradient_matches_finite_differences_at_simple_top(shape, seed, gram):
    w = np.random.default_rng(seed).standard_normal(shape)
    lam, v, gap = orr.srip_top_eigenpair(w, gram)
    if gap < 1e-3:  # SRIP is not differentiable at a tie; the spec's statement needs a gap
        return
    g = orr.srip_grad(w, gram)
    # rel 1e-5 (spec ORTHO-C2); the FD step 1e-6 stays far inside the gap so no switch happens
    assert rel_err(g, fd_grad(lambda x: orr.srip(x, gram), w)) < 1e-5
    s = math.copysign(1.0, lam)
    expected = 2 * s * (w @ np.outer(v, v) if orr.gram_side(w.shape, gram) == "right"
                        else np.outer(v, v) @ w)
    assert rel_err(g, expected) < 1e-12  # float64 round-off of the same products


def test_symbolic_gradients_and_identities_hold():
    """Every sympy derivation of theory/orthoreg.py reduces to an exact zero residual."""
    failed = [d.name for d in th.symbolic_summary() if not d.holds]
    assert failed == []


# ---------------------------------------------------------------------------------------------
# ORTHO-C3 .. C6: singular-value forms, minimisers, Gram conventions
# ---------------------------------------------------------------------------------------------
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_singular_value_forms_and_layout_invariance(shape, seed):
    w = np.random.default_rng(seed).standard_normal(shape)
    s2 = np.linalg.svd(w, compute_uv=False) ** 2
    so_sv, srip_sv = float(np.sum((s2 - 1) ** 2)), float(np.max(np.abs(s2 - 1)))
    scale = max(1.0, so_sv)
    # 1e-10 (spec ORTHO-C3): eigh vs svd of O(10)-sized matrices agree to ~1e-13 relative
    assert abs(orr.so(w) - so_sv) <= 1e-10 * scale
    assert abs(orr.srip(w) - srip_sv) <= 1e-10 * max(1.0, srip_sv)
    assert abs(orr.so(w.T) - orr.so(w)) <= 1e-10 * scale
    assert abs(orr.srip(w.T) - orr.srip(w)) <= 1e-10 * max(1.0, srip_sv)
    assert abs(orr.so(w, squared=False) - math.sqrt(orr.so(w))) <= 1e-12 * math.sqrt(scale)


@SETTINGS
@given(n=st.integers(2, 8), seed=seeds, data=st.data())
def test_tall_minimisers(n, seed, data):
    k = data.draw(st.integers(1, n))
    rng = np.random.default_rng(seed)
    q = orthonormal_columns(n, k, rng)
    # 1e-12 (ORTHO-C4): Householder QR gives Q^T Q = I to ~1e-15
    assert orr.so(q) < 1e-24 and orr.srip(q) < 1e-12
    w = q * rng.uniform(0.5, 1.5, size=k)  # non-orthonormal columns: both strictly positive
    if np.max(np.abs(np.linalg.norm(w, axis=0) - 1)) > 1e-3:
        assert orr.so(w) > 1e-8 and orr.srip(w) > 1e-4


@SETTINGS
@given(m=st.integers(1, 6), extra=st.integers(1, 6), seed=seeds)
def test_large_gram_identity_and_parseval_minimum(m, extra, seed):
    n = m + extra
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((m, n))
    # exact polynomial identity (ORTHO-C5); 1e-10 relative covers float64 sums of O(100) terms
    diff = orr.so(w, "large") - orr.so(w, "small")
    assert abs(diff - (n - m)) <= 1e-10 * max(1.0, orr.so(w, "large"))
    parseval = orthonormal_columns(n, m, rng).T  # m x n with W W^T = I_m
    assert abs(orr.so(parseval, "large") - (n - m)) <= 1e-10
    assert orr.so(parseval, "small") <= 1e-20


@SETTINGS
@given(m=st.integers(1, 5), extra=st.integers(1, 5), seed=seeds)
def test_srip_is_degenerate_under_large_gram(m, extra, seed):
    n = m + extra
    rng = np.random.default_rng(seed)
    rows = orthonormal_columns(n, m, rng).T
    for w in (rows, math.sqrt(1.9) * rows):
        # 1e-12 (ORTHO-C6): the zero eigenvalues of W^T W are exact to ~1e-15
        assert abs(orr.srip(w, "large") - 1.0) <= 1e-12
    # any W with sigma_i^2 in [0, 2] gives exactly 1
    u, _, vt = np.linalg.svd(rng.standard_normal((m, n)), full_matrices=False)
    w = (u * np.sqrt(rng.uniform(0, 2, m))) @ vt
    assert abs(orr.srip(w, "large") - 1.0) <= 1e-12
    assert orr.srip(rows, "small") <= 1e-12


# ---------------------------------------------------------------------------------------------
# ORTHO-C7: power iteration
# ---------------------------------------------------------------------------------------------
@SETTINGS
@given(n=st.integers(2, 8), seed=seeds, n_iter=st.integers(1, 12))
def test_power_iteration_is_monotone_and_below_the_spectral_radius(n, seed, n_iter):
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((n, n))
    a = b + b.T
    rho = float(np.max(np.abs(np.linalg.eigvalsh(a))))
    r = orr.power_iteration_ratios(a, rng.standard_normal(n), n_iter)
    # 1e-12 relative: the Cauchy-Schwarz inequality holds exactly; slack is float64 round-off
    assert np.all(np.diff(r) >= -1e-12 * rho)
    assert np.all(r <= rho * (1 + 1e-12))


@SETTINGS
@given(shape=shapes, seed=seeds, start=st.sampled_from(orr.STARTS))
def test_power_srip_is_a_lower_bound_and_bansal_variant_is_its_square(shape, seed, start):
    w = np.random.default_rng(seed).standard_normal(shape)
    exact = orr.srip(w)
    est = orr.srip(w, exact=False, n_iter=2, start=start, seed=seed)
    assert est <= exact * (1 + 1e-12)  # §2.5: r_m <= rho (round-off slack)
    sq = orr.srip(w, exact=False, n_iter=2, start=start, seed=seed, variant="bansal_squared")
    assert sq == pytest.approx(est**2, rel=1e-14)  # same draw (same seed), squared


def test_bansal_estimate_equals_the_code_formula():
    """||A (A b / ||A b||)||^2 with b ~ U[0, 1) (Bansal's l2_reg_ortho) [CODE-B]."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((9, 4))
    a = w.T @ w - np.eye(4)
    b = np.random.default_rng(11).random(4)
    v = a @ b
    expected = float(np.linalg.norm(a @ (v / np.linalg.norm(v))) ** 2)
    got = orr.srip(w, exact=False, n_iter=2, start="uniform", seed=11, variant="bansal_squared")
    assert got == pytest.approx(expected, rel=1e-13)  # same arithmetic up to association


# ---------------------------------------------------------------------------------------------
# reshaping conventions
# ---------------------------------------------------------------------------------------------
def test_reshape_conventions():
    lin = np.arange(6.0).reshape(2, 3)  # [d_out, d_in]
    assert np.array_equal(orr.reshape_weight(lin), lin.T)
    conv = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)  # [c_out, c_in, kh, kw]
    w = orr.reshape_weight(conv)
    assert w.shape == (12, 2)
    assert np.array_equal(w[:, 1], conv[1].ravel())  # column j = flattened filter j
    with pytest.raises(ValueError, match="weight"):
        orr.reshape_weight(np.ones(5))


def test_regulariser_grad_in_the_weight_layout_matches_finite_differences():
    conv = np.random.default_rng(0).standard_normal((3, 2, 2, 2))  # 8 x 3 tall matrix
    for kind in ("so", "srip"):
        g = orr.regulariser_grad(conv, kind)
        num = fd_grad(lambda x, k=kind: orr.regulariser(x, k), conv)
        assert rel_err(g, num) < 1e-5  # FD accuracy (see fd_grad); SRIP top gap checked below
    assert orr.srip_top_eigenpair(orr.reshape_weight(conv))[2] > 1e-2


def test_total_regulariser_sums_layers():
    rng = np.random.default_rng(1)
    ws = [rng.standard_normal((4, 3)), rng.standard_normal((5, 2, 3, 3))]
    expected = sum(orr.singular_value_forms(orr.reshape_weight(w))["so"] for w in ws)
    assert orr.total_regulariser(ws) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="weights"):
        orr.total_regulariser([])


# ---------------------------------------------------------------------------------------------
# ORTHO-C8 .. C11: covariance propagation
# ---------------------------------------------------------------------------------------------
@SETTINGS
@given(n=st.integers(2, 8), seed=seeds, data=st.data())
def test_prop1_and_its_finite_sample_identity(n, seed, data):
    k = data.draw(st.integers(1, n))
    rng = np.random.default_rng(seed)
    q = orthonormal_columns(n, k, rng)
    s2 = float(rng.uniform(0.1, 3.0))
    # Prop. 1: exact up to round-off (1e-12 relative to s2)
    assert np.allclose(orr.propagate_covariance(s2 * np.eye(n), q), s2 * np.eye(k),
                       atol=1e-12 * s2, rtol=0)
    x = rng.standard_normal((50, n)) * math.sqrt(s2)
    sx = np.cov(x.T)
    qs = orthonormal_columns(n, n, rng)
    ss = np.cov((x @ qs).T)
    dev_x = np.linalg.norm(sx - s2 * np.eye(n), 2)
    dev_s = np.linalg.norm(ss - s2 * np.eye(n), 2)
    assert abs(dev_x - dev_s) <= 1e-10 * max(1.0, dev_x)  # ORTHO-C8 exact equality, 1e-10


@SETTINGS
@given(n=st.integers(2, 8), seed=seeds, data=st.data())
def test_square_orthogonal_preserves_and_tall_orthonormal_interlaces(n, seed, data):
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((n, n))
    sigma = b @ b.T + 0.1 * np.eye(n)
    lam = np.sort(np.linalg.eigvalsh(sigma))[::-1]
    q = orthonormal_columns(n, n, rng)
    ls = np.sort(np.linalg.eigvalsh(orr.propagate_covariance(sigma, q)))[::-1]
    assert np.allclose(ls, lam, atol=1e-12 * lam[0], rtol=0)  # ORTHO-C9, 1e-12 relative
    k = data.draw(st.integers(1, n))
    pb = orr.poincare_bounds(sigma, orthonormal_columns(n, k, rng))
    tol = 1e-12 * lam[0]  # ORTHO-C10, float64 eigenvalue round-off
    assert np.all(pb["lower"] <= pb["middle"] + tol) and np.all(pb["middle"] <= pb["upper"] + tol)
    assert np.allclose(pb["upper"], lam[:k]) and np.allclose(pb["lower"], lam[n - k:])


@SETTINGS
@given(n=st.integers(2, 8), seed=seeds, spread=st.floats(0.0, 0.9))
def test_ostrowski_ratios_within_srip_band(n, seed, spread):
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((n, n))
    sigma = b @ b.T + 0.1 * np.eye(n)
    u, _, vt = np.linalg.svd(rng.standard_normal((n, n)))
    sv = np.sqrt(1 + rng.uniform(-spread, spread, n))  # sigma_i^2 in [1 - spread, 1 + spread]
    w = (u * sv) @ vt
    out = orr.eigenvalue_ratios(sigma, w)
    delta = float(np.max(np.abs(sv**2 - 1)))  # SRIP from the construction
    assert out["delta"] == pytest.approx(delta, abs=1e-12)
    tol = 1e-12 * 10  # ratios of eigenvalues >= 0.1: relative round-off ~1e-14 each
    assert np.all(out["ratios"] >= 1 - delta - tol) and np.all(out["ratios"] <= 1 + delta + tol)
    assert delta <= math.sqrt(out["so"]) + 1e-12  # delta <= sqrt(SO) (max <= l2 norm)


# ---------------------------------------------------------------------------------------------
# ORTHO-C12: SO gradient flow
# ---------------------------------------------------------------------------------------------
def test_so_flow_closed_form_matches_integration_and_sympy():
    rng = np.random.default_rng(0)
    u, _, vt = np.linalg.svd(rng.standard_normal((5, 3)), full_matrices=False)
    w0 = (u * np.array([2.0, 0.5, 1e-3])) @ vt
    gamma, t = 0.7, 0.9
    closed = orr.so_flow_closed_form(w0, gamma, t)
    integ = orr.so_flow_integrate(w0, gamma, t)
    # 1e-8: DOP853 with rtol 1e-11 over a smooth flow
    assert np.max(np.abs(closed - integ)) < 1e-8
    s_t = np.linalg.svd(closed, compute_uv=False)
    expected = sorted((th.so_flow_sigma(t, s0, gamma) for s0 in (2.0, 0.5, 1e-3)), reverse=True)
    assert np.allclose(s_t, expected, rtol=1e-12, atol=0)  # same closed form, two evaluations


def test_so_flow_reaches_one_and_zero_stays_zero():
    for s0 in (1e-8, 0.5, 2.0):
        # spec ORTHO-C12: all reach 1 by gamma t = 10 (1e-8 start: e^{-80}/1e-16 ~ 2e-19)
        assert th.so_flow_sigma(10.0, s0, 1.0) == pytest.approx(1.0, abs=1e-6)
    assert th.so_flow_sigma(10.0, 0.0, 1.0) == 0.0
    # near zero: sigma(t) ~ sigma0 e^{4 gamma t} (relative error O(sigma^2))
    assert th.so_flow_sigma(1.0, 1e-8, 1.0) == pytest.approx(1e-8 * math.exp(4.0), rel=1e-6)


# ---------------------------------------------------------------------------------------------
# ORTHO-C13 (small): initialisation magnitudes
# ---------------------------------------------------------------------------------------------
def test_expected_so_formula_against_monte_carlo():
    rng = np.random.default_rng(5)
    m, n, s2 = 30, 10, 1.0 / 30
    vals = np.array([orr.so(rng.standard_normal((m, n)) * math.sqrt(s2)) for _ in range(4000)])
    expected = th.expected_so(m, n, s2, 3.0)
    se = vals.std(ddof=1) / math.sqrt(vals.size)
    assert abs(vals.mean() - expected) < 4 * se  # Monte Carlo, 4 standard errors


def test_init_moments_and_shapes():
    shapes = orr.resnet18_cifar_conv_shapes()
    assert len(shapes) == 20
    assert shapes[0].matrix_shape == (27, 64)
    wide = [s.name for s in shapes if s.matrix_shape[0] < s.matrix_shape[1]]
    assert wide == ["stem", "layer2.shortcut", "layer3.shortcut", "layer4.shortcut"]
    layer = orr.ConvShape("x", 64, 64, 3)
    s2, kappa = orr.init_moments(layer, "default_uniform")
    a = 1 / math.sqrt(576)
    assert s2 == pytest.approx(a * a / 3) and kappa == pytest.approx(1.8)
    draws = orr.init_kernel(layer, "default_uniform", np.random.default_rng(0))
    assert np.max(np.abs(draws)) <= a
    assert draws.var() == pytest.approx(s2, rel=0.01)  # 36,864 draws: SE of the variance ~0.5%


def test_mp_edge_approximates_exact_srip():
    rng = np.random.default_rng(2)
    m, n = 576, 64
    s2 = 2.0 / (64 * 9)
    w = rng.standard_normal((m, n)) * math.sqrt(s2)
    assert orr.srip(w) == pytest.approx(th.srip_mp_edge(m, n, s2), rel=0.05)  # spec: ~5%


# ---------------------------------------------------------------------------------------------
# metrics (§3) and the two effective-rank conventions
# ---------------------------------------------------------------------------------------------
def test_erank_conventions_side_by_side():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4000, 8)) * np.array([4, 2, 1, 1, 0.5, 0.5, 0.25, 0.1])
    out = orr.collapse_metrics(z)
    lam = out["spectrum"]
    p = lam / lam.sum()
    assert out["erank_covariance"] == pytest.approx(math.exp(-np.sum(p * np.log(p))), rel=1e-12)
    q = np.sqrt(lam) / np.sqrt(lam).sum()
    assert out["erank_singular_centred"] == pytest.approx(math.exp(-np.sum(q * np.log(q))),
                                                          rel=1e-10)
    # the pitfall: the conventions differ for a non-flat spectrum, in the stated direction
    assert out["erank_covariance"] < out["erank_singular_centred"] - 0.5
    assert out["rankme_on_covariance"] < out["rankme"] - 0.5
    flat = orthonormal_columns(8, 8, rng) * 3.0  # orthogonal rows
    z_flat = np.vstack([flat, -flat])  # centred, covariance exactly proportional to I
    f = orr.collapse_metrics(z_flat)
    assert f["erank_covariance"] == pytest.approx(8.0, rel=1e-10)
    assert f["erank_singular_centred"] == pytest.approx(8.0, rel=1e-10)


def test_uniformity_closed_form_against_monte_carlo():
    rng = np.random.default_rng(0)
    d = 16
    x = rng.standard_normal((3000, d))
    mc = metrics.uniformity(x)
    # spec ORTHO-C15 tolerance 0.02 (MC over ~4.5e6 dependent pairs of 3000 points)
    assert abs(mc - th.uniformity_uniform_sphere(d)) < 0.02
    assert th.uniformity_uniform_sphere(16) == pytest.approx(-3.51, abs=0.005)
    assert th.uniformity_uniform_sphere(128) == pytest.approx(-3.94, abs=0.005)


def test_normalised_spectrum_and_feature_rows():
    assert np.allclose(orr.normalised_spectrum([1.0, 4.0, 2.0]), [1.0, 0.5, 0.25])
    assert np.allclose(orr.normalised_spectrum([1.0, 3.0], by="sum"), [0.75, 0.25])
    fm = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    rows = orr.feature_rows(fm)
    assert rows.shape == (8, 3) and np.array_equal(rows[1], fm[0, :, 0, 1])
    assert np.allclose(orr.feature_rows(fm, "gap"), fm.mean(axis=(2, 3)))
    with pytest.raises(ValueError, match="by"):
        orr.normalised_spectrum([1.0], by="median")


def test_bansal_schedule_and_r1_table():
    # orthoreg.md §1.6: multipliers relative to the base value
    expected = {1: 1e-2, 20: 1e-2, 21: 1e-5, 50: 1e-5, 60: 1e-6, 100: 1e-8, 121: 0.0}
    for epoch, value in expected.items():
        assert orr.bansal_gamma(epoch) == pytest.approx(value, rel=1e-15, abs=0)
    assert orr.R1_GAMMAS["resnet18"] == (1e-6, 1e-3)
    assert orr.R1_GAMMAS["vit_base"][1] is None


def test_invalid_arguments_raise_value_errors():
    w = np.eye(3)
    with pytest.raises(ValueError, match="gram"):
        orr.so(w, gram="medium")
    with pytest.raises(ValueError, match="variant"):
        orr.srip(w, variant="sq")
    with pytest.raises(ValueError, match="seed"):
        orr.srip(w, exact=False)
    with pytest.raises(ValueError, match="n_iter"):
        orr.srip(w, exact=False, n_iter=0, seed=0)
    with pytest.raises(ValueError, match="gamma"):
        orr.so_flow_closed_form(w, -1.0, 1.0)
    with pytest.raises(ValueError, match="init"):
        orr.init_moments(orr.ConvShape("x", 2, 2, 1), "xavier")
    with pytest.raises(ValueError, match="d must"):
        th.uniformity_uniform_sphere(1)
