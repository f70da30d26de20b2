"""Loss library: gradients against finite differences, closed forms, conventions, bad input.

Expected values come from the closed forms of anchors.md §8.2 / dhel_kcl.md §3 and from direct
per-anchor formulas written independently here (loops over anchors, scipy's logsumexp), never
from the template code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from solvers.configurations import etf_prototypes, orthonormal_prototypes, random_sphere_points, regular_simplex
from solvers.layout import Layout
from solvers.losses import (
    alignment,
    ce_fixed,
    clop_term,
    dcl,
    dhel,
    frame_potential,
    gaussian_energy,
    infonce,
    kcl,
    log_energy,
    protosupcon,
    riesz_energy,
    simclr,
    supcl,
    supcon,
    uniformity,
    with_clop,
)

SETTINGS = settings(max_examples=20, deadline=None)


def fd_relative_error(loss, x: np.ndarray, eps: float = 1e-6) -> float:
    """Relative error of the analytic gradient against central differences.

    Central differences have truncation error O(eps^2 |f'''|) ~ 1e-12 and round-off
    O(1e-16 |f| / eps) ~ 1e-10 for O(1) losses, so a relative error < 1e-6 leaves a margin of
    four orders of magnitude while still catching any wrong term.
    """
    _, g = loss.value_and_grad(x)
    num = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (loss.value(xp) - loss.value(xm)) / (2 * eps)
    return float(np.linalg.norm(num - g) / max(np.linalg.norm(num), 1e-12))


def raw_points(seed: int, n: int, d: int) -> np.ndarray:
    """Unnormalised Gaussian points (norms vary, so the normalisation chain is exercised)."""
    return np.random.default_rng(seed).standard_normal((n, d)) * 1.7


SSL_BUILDERS = {
    "infonce": lambda m, tau: infonce(m, tau),
    "simclr": lambda m, tau: simclr(m, tau),
    "dcl": lambda m, tau: dcl(m, tau),
    "dcl-one-direction": lambda m, tau: dcl(m, tau, symmetric=False),
    "dhel": lambda m, tau: dhel(m, tau, "paper"),
    "dhel2": lambda m, tau: dhel(m, tau, "code"),
    "kcl-gaussian-code": lambda m, tau: kcl(m, "gaussian", 2.0, 16.0, "code"),
    "kcl-gaussian-paper": lambda m, tau: kcl(m, "gaussian", 1.0, 4.0, "paper"),
    "kcl-log": lambda m, tau: kcl(m, "log", 2.0, 16.0, "code"),
    "kcl-imq": lambda m, tau: kcl(m, "imq", 1.5, 2.0, "paper"),
    "kcl-riesz": lambda m, tau: kcl(m, "riesz", -1.0, 3.0, "code"),
    "alignment": lambda m, tau: alignment(m),
}


@pytest.mark.parametrize("name", sorted(SSL_BUILDERS))
@SETTINGS
@given(m=st.integers(2, 5), d=st.integers(2, 5), tau=st.floats(0.05, 2.0), seed=st.integers(0, 10**6))
def test_self_supervised_gradients(name, m, d, tau, seed):
    loss = SSL_BUILDERS[name](m, tau)
    assert fd_relative_error(loss, raw_points(seed, 2 * m, d)) < 1e-6


ENERGY_BUILDERS = {
    "riesz1": lambda n: riesz_energy(n, 1.0),
    "riesz-neg": lambda n: riesz_energy(n, -1.5),
    "log": log_energy,
    "gaussian": lambda n: gaussian_energy(n, 2.0),
    "uniformity": lambda n: uniformity(n, 2.0),
    "frame": frame_potential,
}


@pytest.mark.parametrize("name", sorted(ENERGY_BUILDERS))
@SETTINGS
@given(n=st.integers(2, 7), d=st.integers(2, 5), seed=st.integers(0, 10**6))
def test_energy_gradients(name, n, d, seed):
    assert fd_relative_error(ENERGY_BUILDERS[name](n), raw_points(seed, n, d)) < 1e-6


labels_strategy = st.lists(st.integers(0, 3), min_size=4, max_size=9).filter(
    lambda lab: all(lab.count(c) >= 2 for c in set(lab))
)


@pytest.mark.parametrize("variant", ["out", "in"])
@SETTINGS
@given(labels=labels_strategy, d=st.integers(2, 5), tau=st.floats(0.05, 2.0), seed=st.integers(0, 10**6))
def test_supcon_gradient_and_value(variant, labels, d, tau, seed):
    lab = np.array(labels)
    x = raw_points(seed, lab.size, d)
    loss = supcon(lab, tau, variant)
    assert fd_relative_error(loss, x) < 1e-6
    # independent per-anchor formula (anchors.md §8.1)
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = z @ z.T / tau
    vals = []
    for i in range(lab.size):
        others = [a for a in range(lab.size) if a != i]
        pos = [p for p in others if lab[p] == lab[i]]
        den = logsumexp(s[i, others])
        if variant == "out":
            vals.append(np.mean([den - s[i, p] for p in pos]))
        else:
            vals.append(den - logsumexp(s[i, pos]) + math.log(len(pos)))
    # 1e-12 relative: float64 round-off of the same sums in another order
    assert loss.value(x) == pytest.approx(np.mean(vals), rel=1e-12)


@pytest.mark.parametrize("variant", ["code", "self-excluded"])
@SETTINGS
@given(k=st.integers(2, 3), n=st.integers(2, 3), p=st.integers(2, 3), alpha=st.floats(0, 1),
       tau=st.floats(0.1, 2.0), seed=st.integers(0, 10**6))
def test_supcl_gradient_and_value(variant, k, n, p, alpha, tau, seed):
    layout = Layout.balanced(k, n, p)
    x = raw_points(seed, layout.n_rows, 4)
    loss = supcl(layout, alpha, tau, variant)
    assert fd_relative_error(loss, x) < 1e-6
    # independent per-anchor formula (ssem.md §2.2)
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = z @ z.T / tau
    cls, inst = layout.row_class, layout.row_instance
    vals = []
    for j in range(layout.n_rows):
        den_set = [l for l in range(layout.n_rows) if variant == "code" or l != j]
        lse = logsumexp(s[j, den_set])
        sup = [q for q in range(layout.n_rows) if cls[q] == cls[j] and inst[q] != inst[j]]
        slf = [q for q in range(layout.n_rows) if inst[q] == inst[j] and (variant == "code" or q != j)]
        vals.append((1 - alpha) * np.mean([lse - s[j, q] for q in sup]) + alpha * np.mean([lse - s[j, q] for q in slf]))
    assert loss.value(x) == pytest.approx(np.mean(vals), rel=1e-12)


def test_supcl_self_excluded_equals_supcon_at_alpha_eff():
    """ssem.md §2.6: SupCon L_out is the self-excluded variant at alpha = (p - 1)/(np - 1)."""
    k, n, p = 3, 2, 3
    layout = Layout.balanced(k, n, p)
    x = raw_points(3, layout.n_rows, 5)
    a = supcl(layout, (p - 1) / (n * p - 1), 0.4, "self-excluded").value(x)
    b = supcon(layout.row_class, 0.4).value(x)
    assert a == pytest.approx(b, rel=1e-12)


def test_supcl_pair_reduction_equals_anchor_reduction_when_balanced():
    layout = Layout.balanced(3, 3, 2)
    x = raw_points(4, layout.n_rows, 4)
    a = supcl(layout, 0.3, 0.5, reduction="anchor").value(x)
    b = supcl(layout, 0.3, 0.5, reduction="pair").value(x)
    assert a == pytest.approx(b, rel=1e-12)
    imb = Layout.from_class_sizes([2, 4], views=2)
    y = raw_points(5, imb.n_rows, 4)
    assert supcl(imb, 0.3, 0.5, reduction="anchor").value(y) != pytest.approx(
        supcl(imb, 0.3, 0.5, reduction="pair").value(y), rel=1e-6)


@pytest.mark.parametrize("anchors", [False, True])
@SETTINGS
@given(n_w=st.integers(1, 50), tau=st.floats(0.1, 1.0), seed=st.integers(0, 10**6))
def test_protosupcon_equals_explicit_copies(anchors, n_w, tau, seed):
    """Prototype copies handled as multiplicities equal SupCon on the explicitly enlarged batch."""
    lab = np.array([0, 0, 1, 2, 2, 1, 0])
    protos = etf_prototypes(3, 4)
    x = raw_points(seed, lab.size, 4)
    loss = protosupcon(lab, protos, n_w, tau, anchors)
    assert fd_relative_error(loss, x) < 1e-6
    big_lab = np.concatenate([lab, np.repeat(np.arange(3), n_w)])
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    big = np.vstack([z, np.repeat(protos, n_w, axis=0)])
    s = big @ big.T / tau
    rows = range(big_lab.size) if anchors else range(lab.size)
    vals = []
    for i in rows:
        others = [a for a in range(big_lab.size) if a != i]
        pos = [p for p in others if big_lab[p] == big_lab[i]]
        den = logsumexp(s[i, others])
        vals.append(np.mean([den - s[i, p] for p in pos]))
    assert loss.value(x) == pytest.approx(np.mean(vals), rel=1e-11)


def test_ce_fixed_value_and_gradient():
    lab = np.array([0, 1, 2, 1])
    w = etf_prototypes(3, 3)
    x = raw_points(0, 4, 3)
    loss = ce_fixed(lab, w, 0.2)
    assert fd_relative_error(loss, x) < 1e-6
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    logits = z @ w.T / 0.2
    expected = np.mean([logsumexp(logits[i]) - logits[i, lab[i]] for i in range(4)])
    assert loss.value(x) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("distance", ["cosine", "euclidean", "manhattan"])
def test_clop_term_value_and_gradient(distance):
    lab = np.array([0, 1, -1, 2, 0, 1, -1, 2])  # two views of 4 instances, instance 2 unlabelled
    protos = orthonormal_prototypes(3, 5, seed=1)
    x = raw_points(7, 8, 5)
    term = clop_term(lab, protos, lam=0.7, distance=distance)
    assert fd_relative_error(term, x) < 1e-6
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    rows = np.flatnonzero(lab >= 0)
    delta = {"cosine": lambda u, c: 1 - u @ c, "euclidean": lambda u, c: np.linalg.norm(u - c),
             "manhattan": lambda u, c: np.abs(u - c).sum()}[distance]
    expected = 0.7 * np.mean([delta(z[r], protos[lab[r]]) for r in rows])
    assert term.value(x) == pytest.approx(expected, rel=1e-12)
    combined = with_clop(simclr(4, 0.5), lab, protos, 0.7, distance)
    assert combined.value(x) == pytest.approx(simclr(4, 0.5).value(x) + expected, rel=1e-12)


def test_clop_without_labelled_rows_is_zero():
    term = clop_term(np.full(6, -1), orthonormal_prototypes(2, 3), 1.0, "cosine")
    value, grad = term.value_and_grad(raw_points(1, 6, 3))
    assert value == 0.0 and np.all(grad == 0.0)


# --- closed forms at the aligned simplex (anchors.md §8.2, dhel_kcl.md §3) --------------------

@SETTINGS
@given(m=st.integers(2, 9), extra=st.integers(0, 3), tau=st.floats(0.05, 2.0))
def test_closed_forms_at_aligned_simplex(m, extra, tau):
    pts = regular_simplex(m, max(m - 1, 1) + extra + (1 if m == 2 else 0))
    z = np.vstack([pts, pts])
    c = m / (tau * (m - 1))
    tol = dict(rel=1e-9, abs=1e-12)  # anchors.md §9.6 tolerance
    assert simclr(m, tau).value(z) == pytest.approx(math.log1p((2 * m - 2) * math.exp(-c)), **tol)
    assert dcl(m, tau).value(z) == pytest.approx(math.log(2 * m - 2) - c, **tol)
    assert infonce(m, tau).value(z) == pytest.approx(math.log1p((m - 1) * math.exp(-c)), **tol)
    assert dhel(m, tau).value(z) == pytest.approx(math.log(m - 1) - c, **tol)
    # code form adds the V-view energy: -1/tau + 2 [log(m - 1) - 1/(tau (m - 1))]
    assert dhel(m, tau, "code").value(z) == pytest.approx(-1 / tau + 2 * (math.log(m - 1) - 1 / (tau * (m - 1))), **tol)
    assert uniformity(m, 2.0).value(pts) == pytest.approx(-4.0 * m / (m - 1), **tol)


def test_tiny_temperature_is_finite():
    """REQ-3: log-sum-exp with a max shift keeps tau = 1e-3 finite."""
    x = raw_points(0, 8, 3)
    for loss in (simclr(4, 1e-3), dcl(4, 1e-3), supcon(np.array([0, 0, 1, 1, 2, 2, 3, 3]), 1e-3),
                 supcl(Layout.balanced(2, 2, 2), 0.5, 1e-3)):
        v, g = loss.value_and_grad(x)
        assert np.isfinite(v) and np.all(np.isfinite(g))


def test_normalize_flag_is_neutral_on_unit_input():
    """REQ-4: unit input gives the same value with normalisation on or off."""
    z = random_sphere_points(8, 4, seed=2)
    for loss in (simclr(4, 0.3), uniformity(8, 2.0), supcon(np.array([0, 0, 1, 1, 2, 2, 0, 1]), 0.3)):
        assert loss.value(z, normalize=True) == pytest.approx(loss.value(z, normalize=False), rel=1e-14)


# --- bad input (anchors.md §10, brief) -------------------------------------------------------

@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: simclr(4, 0.0), "tau"),
        (lambda: simclr(4, -1.0), "tau"),
        (lambda: simclr(4, float("nan")), "tau"),
        (lambda: simclr(1, 0.5), "instances"),
        (lambda: supcon(np.array([0, 1, 1]), 0.5), "labels"),
        (lambda: supcl(Layout.balanced(2, 2, 2), 1.5, 0.5), "alpha"),
        (lambda: supcl(Layout.balanced(2, 2, 2), -0.1, 0.5), "alpha"),
        (lambda: supcl(Layout.balanced(2, 1, 2), 0.5, 0.5), "labels"),
        (lambda: supcl(Layout.balanced(2, 2, 1), 0.5, 0.5, "self-excluded"), "views"),
        (lambda: uniformity(1), "n"),
        (lambda: kcl(3, "riesz", 1.0), "t"),
        (lambda: kcl(3, "cauchy"), "kernel"),
        (lambda: orthonormal_prototypes(5, 3), "dim"),
        (lambda: protosupcon(np.array([0, 3]), etf_prototypes(3, 3), 2, 0.5), "labels"),
    ],
)
def test_bad_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "points, match",
    [
        (np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), "zero vector"),
        (np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0]]), "finite"),
        (np.ones((3, 2)), "rows"),
        (np.ones(4), "2-D"),
    ],
)
def test_bad_points_raise_value_error(points, match):
    with pytest.raises(ValueError, match=match):
        simclr(2, 0.5).value(points)


def test_exclude_mode_reports_excluded_anchors():
    loss = supcon(np.array([0, 0, 1, 2, 2]), 0.5, no_positive="exclude")
    assert loss.describe()["excluded_anchors"] == 1
    # the lonely row is still a negative: moving it changes the loss
    x = raw_points(0, 5, 3)
    y = x.copy()
    y[2] = -y[0]
    assert loss.value(x) != pytest.approx(loss.value(y))


def test_prototype_dimension_mismatch():
    loss = protosupcon(np.array([0, 0, 1, 1]), etf_prototypes(2, 4), 3, 0.5)
    with pytest.raises(ValueError, match="dimension"):
        loss.value(raw_points(0, 4, 3))
