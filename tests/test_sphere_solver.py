"""The sphere solver: local polish, global strategies, structure (tied views, non-negativity,
fixed prototypes), determinism and input validation.

Expected values come only from closed forms of the specs (anchors.md §3.3, §5.2-5.4, §8.2;
prototypes.md T2) and never from earlier runs of this solver.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.configurations import etf_prototypes
from solvers.energy_search import PairEnergy, energy_problem, make_kernel, search_energy, simplex_energy
from solvers.layout import Layout
from solvers.loss_registry import LossOptions, build_loss
from solvers.losses import gaussian_energy, log_energy, protosupcon, riesz_energy, simclr, supcon
from solvers.metrics import class_mean_cosines, class_means, variances
from solvers.sphere_solver import SphereProblem, local_solve, minimize_loss, perturb, solve

# A converged configuration has Riemannian gradient <= 1e-10 * max(1, |grad_E|); positions are
# then accurate to about gradient / smallest non-zero Hessian eigenvalue, so cosines are compared
# at 1e-6 (anchors.md §14 R5 uses 1e-6 on t_ij) and values at 1e-10 relative (energies are
# quadratic in the position error, anchors.md §2.5).
COS_TOL = 1e-6
VALUE_RTOL = 1e-10
UNIT_TOL = 1e-12  # anchors.md REQ-8


def unit_error(points: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.norm(points, axis=1) - 1.0)))


def off_diagonal(points: np.ndarray) -> np.ndarray:
    g = points @ points.T
    return g[~np.eye(g.shape[0], dtype=bool)]


# ---------------------------------------------------------------------------------------------
# energies
# ---------------------------------------------------------------------------------------------
@settings(max_examples=6, deadline=None)
@given(n=st.integers(2, 6), extra=st.integers(0, 2), kernel=st.sampled_from(["riesz", "log", "gaussian"]),
       param=st.sampled_from([0.5, 1.0, 2.0]))
def test_simplex_lemma_minimiser_is_the_simplex(n, extra, kernel, param):
    """anchors.md §3.3: for N <= d + 1 the minimum is C(N,2) f(2N/(N-1)), all t_ij = -1/(N-1)."""
    dim = n - 1 + extra
    dim = max(dim, 2)
    s = param if kernel == "riesz" else None
    t = param if kernel == "gaussian" else None
    res = search_energy(kernel, n, dim, s=s, t=t, restarts=2, seed=n)
    expected = math.comb(n, 2) * float(make_kernel(kernel, s, t).value(np.array([-1.0 / (n - 1)]))[0])
    assert expected == pytest.approx(simplex_energy(kernel, n, s, t), rel=1e-15)
    assert res.fun == pytest.approx(expected, rel=VALUE_RTOL, abs=1e-12)
    assert np.allclose(off_diagonal(res.points), -1.0 / (n - 1), atol=COS_TOL)
    assert res.success and unit_error(res.points) <= UNIT_TOL


@pytest.mark.parametrize("kernel,param", [("riesz", 1.0), ("riesz", 3.0), ("log", None), ("gaussian", 2.0)])
def test_pair_energy_equals_library_loss(kernel, param):
    """The dense PairEnergy is the library's pair energy (same value and gradient, 1e-12 rel)."""
    n, dim = 9, 4
    z = np.random.default_rng(3).standard_normal((n, dim))
    lib = {"riesz": lambda: riesz_energy(n, param), "log": lambda: log_energy(n),
           "gaussian": lambda: gaussian_energy(n, param)}[kernel]()
    mine = PairEnergy(make_kernel(kernel, s=param if kernel == "riesz" else None,
                                  t=param if kernel == "gaussian" else None), n)
    v1, g1 = lib.value_and_grad(z)
    v2, g2 = mine.value_and_grad(z)
    assert v2 == pytest.approx(v1, rel=1e-12)
    np.testing.assert_allclose(g2, g1, rtol=1e-10, atol=1e-12)


def test_warm_strategy_finds_cross_polytope_under_gaussian():
    """The cross-polytope (8 points in R^4) is universally optimal (anchors.md §5.2); its Gaussian
    energy from the inner-product distribution (0 x (2d-2), -1 x 1) is (N/2)[(2d-2) e^{-2t} + e^{-4t}]
    (anchors.md §5.4)."""
    d, t = 4, 2.0
    n = 2 * d
    expected = n / 2 * ((2 * d - 2) * math.exp(-2 * t) + math.exp(-4 * t))
    res = search_energy("gaussian", n, d, t=t, strategy="warm", restarts=2, seed=1)
    assert res.strategy == "warm" and len(res.warm_values) == 2
    assert res.fun == pytest.approx(expected, rel=1e-9)  # anchors.md §14 U6/U7: 1e-9 rel
    cos = np.sort(off_diagonal(res.points))
    assert np.allclose(cos[:n], -1.0, atol=COS_TOL) and np.allclose(cos[n:], 0.0, atol=COS_TOL)


def test_basinhopping_reaches_the_icosahedron():
    """Thomson N = 12 (icosahedron, proven, anchors.md §2.2): closed form to the 1e-8 table rule."""
    expected = 6 * (5 * (2 - 2 / math.sqrt(5)) ** -0.5 + 5 * (2 + 2 / math.sqrt(5)) ** -0.5 + 0.5)
    res = search_energy("riesz", 12, 3, strategy="basinhopping", restarts=3, seed=2)
    assert res.strategy == "basinhopping" and res.restarts == 3
    assert abs(res.fun - expected) <= 1e-8
    assert res.all_values[0] >= res.fun  # monotone: the best never gets worse


def test_perturb_moves_a_fraction_and_stays_on_the_sphere():
    z = energy_problem("riesz", 20, 3).random_start(np.random.default_rng(0))
    moved = perturb(z, np.random.default_rng(1), fraction=0.1, step=0.5)
    changed = np.any(np.abs(moved - z) > 0, axis=1)
    assert changed.sum() == 2 and unit_error(moved) <= UNIT_TOL


# ---------------------------------------------------------------------------------------------
# contrastive losses and structure
# ---------------------------------------------------------------------------------------------
def test_supcon_minimiser_is_the_collapsed_simplex():
    """anchors.md §8.2: SupCon L_out minimum log(m - 1 + (C - 1) m e^{-C/(tau (C-1))})."""
    c, m, tau = 3, 4, 0.5
    lay = Layout.balanced(c, m)
    res = minimize_loss(supcon(lay.row_class, tau), 4, restarts=2, seed=0)
    expected = math.log(m - 1 + (c - 1) * m * math.exp(-c / (tau * (c - 1))))
    assert res.fun == pytest.approx(expected, rel=VALUE_RTOL)
    w, b, t = variances(res.points, lay.row_class)
    assert w <= 1e-12 and b == pytest.approx(1.0, abs=1e-9)
    assert np.allclose(class_mean_cosines(res.points, lay.row_class), -1 / (c - 1), atol=COS_TOL)


@pytest.mark.parametrize("tied", [False, True])
def test_simclr_tied_and_free_views_reach_the_closed_form(tied):
    """anchors.md §8.2: NT-Xent minimum log(1 + (2n - 2) e^{-n/(tau(n-1))}), views coincide."""
    n, tau = 4, 0.5
    loss = simclr(n, tau)
    res = minimize_loss(loss, 3, views=2, tied=tied, restarts=2, seed=5)
    expected = math.log(1 + (2 * n - 2) * math.exp(-n / (tau * (n - 1))))
    assert res.fun == pytest.approx(expected, rel=VALUE_RTOL)
    assert res.points.shape == (2 * n, 3)
    assert res.free_points.shape == ((n, 3) if tied else (2 * n, 3))
    u, v = res.points[:n], res.points[n:]
    assert np.min(np.sum(u * v, axis=1)) >= 1 - COS_TOL
    if tied:
        assert np.array_equal(u, v)


def _ufm_plus_minimum(sizes: list[int], tau: float) -> float:
    """prototypes.md T2, as a mean over anchors: mean_i log(n_{y_i} - 1 + (N - n_{y_i}) e^{-1/tau})."""
    n = np.repeat(sizes, sizes).astype(float)
    total = float(sum(sizes))
    return float(np.mean(np.log(n - 1 + (total - n) * math.exp(-1 / tau))))


@pytest.mark.parametrize("sizes", [[5, 5, 5, 5], [10, 10, 2, 2]])
def test_nonnegative_supcon_gives_an_orthogonal_frame(sizes):
    """prototypes.md T2 (Kini): UFM+ SupCon collapses to an orthogonal frame for any class sizes."""
    tau, dim = 0.1, 8
    lay = Layout.from_class_sizes(sizes)
    res = minimize_loss(supcon(lay.row_class, tau), dim, nonnegative=True, restarts=2, seed=0)
    assert res.success
    assert res.fun == pytest.approx(_ufm_plus_minimum(sizes, tau), rel=VALUE_RTOL)
    assert np.min(res.points) >= 0.0
    assert variances(res.points, lay.row_class)[0] <= 1e-12
    # prototypes.md C3: Delta_OF < 1e-8; the means are unit and mutually orthogonal
    means = class_means(res.points, lay.row_class)
    np.testing.assert_allclose(means @ means.T, np.eye(len(sizes)), atol=1e-8)


def test_unconstrained_imbalanced_supcon_is_not_an_orthogonal_frame():
    """Control (prototypes.md T2 remark, C2): without the sign constraint, n = [10, 10, 2, 2] still
    collapses, but the means are no orthogonal frame and the minority-minority cosine is strictly
    larger than every other pair's."""
    lay = Layout.from_class_sizes([10, 10, 2, 2])
    res = minimize_loss(supcon(lay.row_class, 0.1), 8, restarts=1, seed=0)
    assert variances(res.points, lay.row_class)[0] <= 1e-12
    cos = class_mean_cosines(res.points, lay.row_class)  # pairs 01 02 03 12 13 23
    assert np.max(np.abs(cos)) > 1e-2
    assert cos[-1] > np.max(cos[:-1])


def test_fixed_prototypes_are_not_optimised():
    """protosupcon with ETF prototypes (prototypes.md P1, C5): class means align with them."""
    k, n, dim = 4, 3, 5
    lay = Layout.balanced(k, n)
    protos = etf_prototypes(k, dim)
    loss = protosupcon(lay.row_class, protos, copies=2, tau=0.5)
    res = minimize_loss(loss, dim, restarts=1, seed=0)
    assert res.points.shape == (k * n, dim)
    means = class_means(res.points, lay.row_class)
    assert np.max(np.linalg.norm(means - protos, axis=1)) < 1e-4  # prototypes.md C5 tolerance


# ---------------------------------------------------------------------------------------------
# gradients, determinism, unit norms
# ---------------------------------------------------------------------------------------------
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 1000), tied=st.booleans(), nonneg=st.booleans())
def test_parameter_gradient_matches_finite_differences(seed, tied, nonneg):
    """Chain rule through ties, squaring and normalisation: central differences, rel 1e-6."""
    lay = Layout.balanced(2, 2, views=2)
    loss = build_loss("supcon", lay, 3, LossOptions(tau=0.7))
    prob = SphereProblem(loss, 3, views=2, tied=tied, nonnegative=nonneg)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.2, 1.0, size=prob.n_free * 3) * rng.choice([-1, 1], size=prob.n_free * 3)
    _, g = prob.value_and_grad_params(x)
    h = 1e-6
    fd = np.array([(prob.value_and_grad_params(x + h * e)[0] - prob.value_and_grad_params(x - h * e)[0]) / (2 * h)
                   for e in np.eye(x.size)])
    # central-difference error O(h^2 |f'''|) + O(eps |f| / h) ~ 1e-10 on O(1) gradients
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_same_seed_same_result_and_prefix_property():
    prob = energy_problem("riesz", 10, 3)
    a = solve(prob, restarts=3, seed=11)
    b = solve(prob, restarts=3, seed=11)
    c = solve(prob, restarts=2, seed=11)
    assert np.array_equal(a.points, b.points) and a.all_values == b.all_values
    assert c.all_values == a.all_values[:2]  # restart r depends only on (seed, r)
    d = solve(prob, restarts=1, seed=12)
    assert not np.array_equal(d.free_points, c.free_points) or d.all_values != c.all_values[:1]


@pytest.mark.parametrize("strategy", ["multistart", "basinhopping", "warm"])
def test_output_rows_are_unit(strategy):
    res = search_energy("log", 7, 3, strategy=strategy, restarts=2, seed=4)
    assert unit_error(res.points) <= UNIT_TOL
    assert res.hits >= 1 and res.restarts == 2 and len(res.all_values) == 2
    assert res.fun == min(res.all_values) and res.seconds >= 0.0


def test_time_limit_stops_after_the_first_local_solve():
    res = solve(energy_problem("riesz", 6, 3), restarts=5, seed=0, time_limit=1e-9)
    assert res.restarts == 1 and "time limit" in res.message


def test_target_stops_the_search_once_reached():
    """Regular tetrahedron (anchors.md §2.2): U(4) = 3 sqrt(6) / 2; every start reaches it."""
    res = solve(energy_problem("riesz", 4, 3), restarts=5, seed=0, target=1.5 * math.sqrt(6) + 1e-8)
    assert res.restarts == 1 and "target" in res.message


def test_local_solve_from_a_stationary_start():
    """The octahedron is a critical point (anchors.md §5.4 ii): the polish leaves it unchanged."""
    octa = np.vstack([np.eye(3), -np.eye(3)])
    res = local_solve(energy_problem("riesz", 6, 3), octa)
    assert res.success and res.nit == 0
    assert res.fun == pytest.approx(1.5 + 6 * math.sqrt(2), rel=1e-14)  # anchors.md §2.2


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"restarts": 0}, "restarts"),
    ({"seed": -1}, "seed"),
    ({"strategy": "anneal"}, "strategy"),
    ({"time_limit": 0.0}, "time_limit"),
    ({"hop_fraction": 1.5}, "hop_fraction"),
    ({"hop_step": -1.0}, "hop_step"),
    ({"gtol": 0.0}, "gtol"),
    ({"hit_atol": -1.0}, "hit_atol"),
    ({"starts": [np.ones((3, 3))]}, "start"),
    ({"target": float("nan")}, "target"),
    ({"blas_threads": 0}, "blas_threads"),
])
def test_solve_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve(energy_problem("riesz", 4, 3), **kwargs)


def test_problem_rejects_bad_structure():
    with pytest.raises(ValueError, match="views"):
        SphereProblem(simclr(3, 0.5), 3, views=4, tied=True)
    with pytest.raises(ValueError, match="dim"):
        SphereProblem(simclr(3, 0.5), 0)
    with pytest.raises(ValueError, match="prototypes"):
        SphereProblem(protosupcon(np.array([0, 0, 1, 1]), etf_prototypes(2, 3), 1, 0.5), 4)
    with pytest.raises(ValueError, match="non-negative"):
        solve(SphereProblem(riesz_energy(3, 1.0), 3, nonnegative=True), starts=[-np.eye(3)])
    with pytest.raises(ValueError, match="kernel"):
        energy_problem("coulomb", 4, 3)
