"""CLOP numerics: GD maps, free-point iterations, collapse measures, the encoder experiment.

Expected values are closed forms of clop.md (§4.4-4.6, §6.1), the library's own definitions of
the same loss (simclr, supcon, clop_term) or theory.clop - never outputs of the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.configurations import orthonormal_prototypes, random_sphere_points, regular_simplex
from solvers.encoder_experiment import (
    ARMS,
    EncoderConfig,
    EncoderParams,
    classify,
    clop_row_labels,
    collapse_threshold,
    encoder_gradients,
    encoder_task,
    init_params,
    make_data,
    ntxent_value_and_grad,
    run_encoder,
)
from solvers.encoder_experiment import _ClopTerm as ClopTerm
from solvers.encoder_experiment import _losses as encoder_losses
from solvers.gd_maps import (
    angle,
    collapse_measures,
    erank,
    gradient_descent,
    infonce_term_forces,
    iterate_map,
    map_step,
    mean_abs_cos,
    pair_run,
)
from solvers.gd_maps_experiments import free_point_stream, t6_run
from solvers.losses import clop_term, simclr, supcon
from theory.clop import two_cycle_amplitude

SETTINGS = settings(max_examples=20, deadline=None)


def _c1(n: int, d: int, seed: int) -> np.ndarray:
    return np.tile(random_sphere_points(1, d, seed), (n, 1))


# -------------------------------------------------------------------------------- angle maps
@pytest.mark.parametrize("a", [0.5, 1.0, 1.5, 1.9])
def test_t1_below_threshold_converges(a):
    # linear factor |1 - a| <= 0.9 per step: 0.9^2000 underflows; spec tolerance 1e-9
    assert abs(iterate_map(0.3, a, 2000)[-1]) < 1e-9


@pytest.mark.parametrize("a", [2.1, 2.5, 3.0, 5.0])
def test_t1_above_threshold_two_cycle(a):
    traj = np.abs(iterate_map(1e-3, a, 2000))
    star = two_cycle_amplitude(a, 1)
    # the 2-cycle attracts geometrically; spec tolerance 1e-9
    assert abs(traj[-1] - star) < 1e-9 and abs(traj[-2] - star) < 1e-9


@pytest.mark.parametrize("a,converges", [(0.5, True), (0.99, True), (1.01, False), (1.5, False)])
def test_t2_mutual_pair(a, converges):
    end = np.abs(iterate_map(0.3, a, 2000, moving=2))[-1]
    if converges:
        assert end < 1e-9
    else:
        assert abs(end - two_cycle_amplitude(a, 2)) < 1e-9


def test_euclidean_map_sign_zero_and_bounds():
    assert map_step(0.0, 0.5, distance="euclidean") == 0.0
    a = 0.5
    traj = iterate_map(1.0, a, 3000, distance="euclidean")
    big = np.maximum(np.abs(traj[:-1]), np.abs(traj[1:]))
    # clop.md §4.6: never converges; exact inequality up to round-off (1e-12)
    assert np.all(big >= 0.5 * np.arctan(a * np.cos(traj[:-1] / 2)) - 1e-12)


def test_map_validation():
    with pytest.raises(ValueError, match="eta_k"):
        map_step(0.1, 0.0)
    with pytest.raises(ValueError, match="moving"):
        map_step(0.1, 1.0, moving=3)
    with pytest.raises(ValueError, match="distance"):
        map_step(0.1, 1.0, distance="cosh")


# -------------------------------------------------------------------------------- vector GD
@pytest.mark.parametrize("kind,a,moving", [("fixed", 1.5, 1), ("fixed", 2.5, 1), ("mutual", 0.75, 2),
                                           ("mutual", 1.3, 2)])
def test_vector_gd_agrees_with_angle_map(kind, a, moving):
    run = pair_run(kind, 0.3, a, 1.0, 150)
    ref = np.abs(iterate_map(0.3, a, 150, moving))
    # same rotation computed as vectors vs scalars: float64 round-off accumulated, ~1e-14
    assert np.max(np.abs(run.angles - ref)) < 1e-10


def test_repulsion_near_antipode():
    eps0 = 0.2
    for a, settles in ((1.5, True), (2.5, False)):
        run = pair_run("repel-fixed", math.pi - eps0, a, 1.0, 300)
        eps = math.pi - run.angles
        assert np.max(np.abs(eps - np.abs(iterate_map(eps0, a, 300)))) < 1e-9
        assert (eps[-1] < 1e-9) == settles


def test_raw_norm_threshold_t4():
    above = pair_run("fixed", 0.1, 3.0, 1.0, 400, r0=1.0, mode="free")
    assert above.angles[1] > above.angles[0]            # eta k / r^2 = 3 > 2: first step overshoots
    assert above.angles[-1] < 1e-9
    assert above.norms[-1, 0] ** 2 >= 3.0 / 2           # r_inf^2 >= eta k / 2 (clop.md §4.5 T4)


def test_free_mode_norms_never_decrease():
    y, _, x = free_point_stream(0, batch=8, classes=2, dim=4)
    loss = supcon(np.concatenate([y, y]), 0.5)
    res = gradient_descent(loss, x, 5.0, 50, mode="free", record_norms=True)
    # Lemma B: |x+|^2 = |x|^2 + eta^2 |g|^2; only round-off of |x| (~1e-16) can go below
    assert res.min_rel_norm_change >= -1e-12
    assert np.all(np.diff(res.norms, axis=0) >= -1e-12 * res.norms[:-1])


def test_renorm_mode_keeps_unit_rows():
    x = random_sphere_points(8, 3, 1) * 3.0
    res = gradient_descent(simclr(4, 0.5), x, 2.0, 20)
    assert np.allclose(np.linalg.norm(res.points, axis=1), 1.0, atol=1e-15)


def test_gradient_descent_validation():
    with pytest.raises(ValueError, match="mode"):
        gradient_descent(simclr(2, 0.5), random_sphere_points(4, 3, 0), 1.0, 1, mode="adam")
    with pytest.raises(ValueError, match="eta"):
        gradient_descent(simclr(2, 0.5), random_sphere_points(4, 3, 0), -1.0, 1)


def test_t6_pure_clop_threshold():
    # clop.md §8 CLOP-T6: eta 250 converges, eta 260 oscillates with the T1 amplitude (k = 1/128)
    below = t6_run(250.0, steps=2000)
    assert below["theta_last"].max() < 1e-9
    above = t6_run(260.0, steps=2000)
    star = two_cycle_amplitude(260.0 / 128, 1)
    assert np.max(np.abs(above["theta_last"] - star)) < 1e-9


# -------------------------------------------------------------------------------- measures
def test_collapse_measure_reference_values():
    c1 = _c1(10, 4, 2)
    c2 = np.vstack([c1[:5], -c1[5:]])
    frame = np.vstack([orthonormal_prototypes(3, 5, seed=4)] * 4)
    simplex = np.vstack([regular_simplex(4, 5)] * 3)
    # exact configurations: singular values to round-off (1e-12)
    assert erank(c1) == pytest.approx(1.0, abs=1e-12)
    assert erank(c2) == pytest.approx(1.0, abs=1e-12)
    assert erank(frame) == pytest.approx(3.0, abs=1e-12)
    assert erank(simplex) == pytest.approx(3.0, abs=1e-12)
    assert mean_abs_cos(c2)[0] == pytest.approx(1.0, abs=1e-12)
    # 5 + and 5 - signs: 20 same-sign pairs (cos 1), 25 opposite (cos -1) out of 45
    assert mean_abs_cos(c2)[1] == pytest.approx((20 - 25) / 45, abs=1e-12)
    m = collapse_measures(c2)
    assert m["total_variance"] == pytest.approx(1.0, abs=1e-12)   # balanced signs: misses C2
    assert collapse_measures(c1)["total_variance"] == pytest.approx(0.0, abs=1e-12)


def test_class_geometry_of_prototype_frame():
    protos = orthonormal_prototypes(3, 6, seed=0)
    pts = np.vstack([protos] * 4)
    labels = np.tile(np.arange(3), 4)
    m = collapse_measures(pts, labels, protos)
    assert m["interclass_cos"] == pytest.approx(0.0, abs=1e-12)
    assert m["erank_means"] == pytest.approx(3.0, abs=1e-12)
    assert m["proto_cos"] == pytest.approx(1.0, abs=1e-12)


def test_angle_is_accurate_for_tiny_angles():
    c = np.array([1.0, 0.0, 0.0])
    u = np.array([math.cos(1e-10), math.sin(1e-10), 0.0])
    assert angle(u, c) == pytest.approx(1e-10, rel=1e-6)


# -------------------------------------------------------------------------------- stationarity
@SETTINGS
@given(seed=st.integers(0, 10_000), b=st.integers(2, 10), tau=st.sampled_from([0.1, 0.5, 1.0]))
def test_collapsed_configurations_are_stationary(seed, b, tau):
    rng = np.random.default_rng(seed)
    c1 = _c1(2 * b, 5, seed)
    c2 = rng.choice([-1.0, 1.0], size=(2 * b, 1)) * c1
    labels = rng.integers(0, 3, size=b)
    for loss in (simclr(b, tau), supcon(np.concatenate([labels, labels]), tau)):
        for pts in (c1, c2):
            # Lemma D; clop.md §7.13: round-off level, tolerance 1e-12
            assert np.abs(loss.riemannian_grad(pts)[1]).max() <= 1e-12


@SETTINGS
@given(seed=st.integers(0, 10_000))
def test_c1_is_not_a_local_minimum(seed):
    b, d, tau = 6, 4, 0.5
    rng = np.random.default_rng(seed)
    ustar = random_sphere_points(1, d, seed)[0]
    pts = ustar + 1e-3 * rng.normal(size=(b, d))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    loss = simclr(b, tau)
    # clop.md §4.4: on the aligned-pair set C1 is the maximum; decrease is O(1e-6) >> 1e-12
    assert loss.value(np.vstack([pts, pts])) < loss.value(np.tile(ustar, (2 * b, 1))) - 1e-12


def test_per_term_forces_sum_to_the_matrix_gradient():
    u = random_sphere_points(12, 4, 5)
    forces = infonce_term_forces(u, 0.3)
    val, g = simclr(6, 0.3).value_and_grad_unit(u)
    assert forces.value == pytest.approx(val, abs=1e-13)
    assert np.abs(forces.grad - g).max() < 1e-12
    c1 = infonce_term_forces(_c1(12, 4, 0), 0.3)
    assert np.allclose(c1.positive_prob, 1 / 11, atol=1e-15)


# -------------------------------------------------------------------------------- encoder
@SETTINGS
@given(seed=st.integers(0, 10_000), b=st.integers(2, 40), tau=st.sampled_from([0.05, 0.2, 0.5, 1.0]))
def test_encoder_ntxent_equals_library_simclr(seed, b, tau):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(2 * b, 3))
    u = z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)
    v, g = ntxent_value_and_grad(u, tau)
    ref_v, ref_g = simclr(b, tau).value_and_grad_unit(u)
    # the same sums in a different order: float64 round-off relative to the value / gradient scale
    assert abs(v - ref_v) <= 1e-12 * max(1.0, abs(ref_v))
    assert np.abs(g - ref_g).max() <= 1e-12 * max(1.0, np.abs(ref_g).max())


def test_encoder_clop_equals_library_term():
    rng = np.random.default_rng(3)
    u = random_sphere_points(20, 3, 3)
    rows = rng.integers(-1, 3, size=10)
    rows = np.concatenate([rows, rows])
    for dist in ("cosine", "euclidean", "manhattan"):
        mine = ClopTerm(rows, 0.7, dist)
        ref = clop_term(rows, np.eye(3), lam=0.7, distance=dist)
        v, g = mine.value_and_grad_unit(u)
        rv, rg = ref.value_and_grad_unit(u)
        assert abs(v - rv) < 1e-13 and np.abs(g - rg).max() < 1e-13


def _loss_at(params: EncoderParams, inputs: np.ndarray, cfg: EncoderConfig, y: np.ndarray) -> float:
    v, c, _ = encoder_gradients(params, inputs, cfg.tau, encoder_losses(cfg, y))
    return v + c


def test_encoder_gradient_matches_finite_differences():
    cfg = EncoderConfig(eta=1.0, seed=2, lam=1.0)
    rng = np.random.default_rng(2)
    data = make_data(rng)
    params = init_params(rng)
    inputs = np.vstack([-data.x + 0.1 * rng.normal(size=data.x.shape), data.x + 0.1 * rng.normal(size=data.x.shape)])
    _, _, g = encoder_gradients(params, inputs, cfg.tau, encoder_losses(cfg, data.y))
    h = 1e-6
    for name, idx in (("w2", (1, 5)), ("w1", (7, 2)), ("b1", (3,)), ("w2", (0, 63))):
        plus, minus = params.copy(), params.copy()
        getattr(plus, name)[idx] += h
        getattr(minus, name)[idx] -= h
        fd = (_loss_at(plus, inputs, cfg, data.y) - _loss_at(minus, inputs, cfg, data.y)) / (2 * h)
        an = getattr(g, name)[idx]
        # central differences: truncation O(h^2) plus cancellation 1e-16/1e-6; ReLU kinks are
        # measure-zero at these random points
        assert abs(fd - an) <= 1e-7 * max(1.0, abs(an)) + 1e-9


def test_torch_losses_equal_numpy_losses():
    torch = pytest.importorskip("torch")
    from solvers.encoder_experiment import torch_losses

    y = np.repeat(np.arange(3), 40)
    u = random_sphere_points(240, 3, 7)
    for lam, dist in ((0.0, "cosine"), (1.0, "cosine"), (0.5, "manhattan")):
        cfg = EncoderConfig(eta=1.0, lam=lam, distance=dist, tau=0.2)
        base, clop = torch_losses(y, cfg)
        got = float(base(torch.tensor(u), normalize=False, mode="dense"))
        # the encoder's torch NT-Xent is the library definition: float64 round-off (brief: 1e-10)
        assert abs(got - simclr(120, 0.2).value(u)) < 1e-10
        if lam > 0:
            ref = clop_term(np.concatenate([y, y]), np.eye(3), lam=lam, distance=dist).value(u)
            assert abs(float(clop(torch.tensor(u), normalize=False, mode="dense")) - ref) < 1e-10


def test_torch_gradients_equal_numpy_reference():
    pytest.importorskip("torch")
    from solvers.encoder_experiment import torch_gradients

    for lam, dist, p in ((0.0, "cosine", 1.0), (1.0, "cosine", 1.0), (1.0, "euclidean", 0.5)):
        cfg = EncoderConfig(eta=3.0, seed=4, lam=lam, distance=dist, fraction=p)
        rng = np.random.default_rng(4)
        data = make_data(rng)
        params = init_params(rng)
        inputs = np.vstack([-data.x + 0.1 * rng.normal(size=data.x.shape), data.x])
        v, c, g = encoder_gradients(params, inputs, cfg.tau, encoder_losses(cfg, data.y))
        vt, ct, gt = torch_gradients(params, inputs, cfg, data.y)
        # the library evaluates |u - c| through the Gram form sqrt(2 - 2 u.c), torch directly:
        # cancellation costs ~1e-12 relative; 1e-10 as the spec's cross-check tolerance
        assert abs(v - vt) < 1e-10 and abs(c - ct) < 1e-10
        for a, b in ((g.w1, gt.w1), (g.b1, gt.b1), (g.w2, gt.w2)):
            # spec §6.3: 1e-10 relative (the 1e-12 norm guard enters the two backward passes
            # at O(1e-12) differently)
            assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()


def test_encoder_data_and_init_follow_the_spec():
    rng = np.random.default_rng(0)
    data = make_data(rng)
    assert data.x.shape == (120, 3) and np.array_equal(np.bincount(data.y), [40, 40, 40])
    assert np.allclose(np.linalg.norm(data.directions, axis=1), 1.0)
    # |t| < 1 plus 0.1-noise: within about the unit ball (6 sigma of the noise)
    assert np.linalg.norm(data.x, axis=1).max() < 1.0 + 0.6
    params = init_params(rng)
    assert params.w1.shape == (64, 3) and params.w2.shape == (3, 64) and not params.b1.any()


def test_clop_labels_fraction_semantics():
    y = np.repeat(np.arange(3), 40)
    rows = clop_row_labels(y, 0.1, seed=5)
    assert np.array_equal(rows[:120], rows[120:])            # both views share the label
    assert int(np.sum(rows[:120] >= 0)) == math.floor(0.1 * 120)
    assert np.array_equal(rows[:120][rows[:120] >= 0], y[rows[:120] >= 0])
    assert np.array_equal(clop_row_labels(y, 1.0, 5), np.concatenate([y, y]))


def test_lemma_b_prime_groups_and_determinism():
    cfg = EncoderConfig(eta=3.0, seed=1, lam=1.0, steps=15)
    a = run_encoder(cfg, record_groups=True)
    b = run_encoder(cfg)
    # Lemma B': exact up to float64 round-off of ~200-term inner products (spec: 1e-12)
    assert max(a.groups.values()) <= 1e-12
    assert np.all(np.diff(a.w2_norms) >= -1e-12 * a.w2_norms[:-1])
    assert a.final_loss == b.final_loss and a.erank == b.erank


def test_status_and_threshold_rules():
    assert classify(1.2, 0.99) == "collapsed"
    assert classify(1.2, 0.5) == "partial"
    assert classify(2.6, 0.3) == "healthy"
    assert classify(math.nan, math.nan, finite=False) == "diverged"
    rows = [{"arm": "A", "seed": 0, "eta": e, "status": s}
            for e, s in ((0.1, "healthy"), (1.0, "partial"), (2.0, "collapsed"), (3.0, "collapsed"))]
    assert collapse_threshold(rows, "A", 0) == 2.0
    assert collapse_threshold(rows, "B", 0) == math.inf


def test_encoder_config_validation():
    with pytest.raises(ValueError, match="eta"):
        EncoderConfig(eta=0.0)
    with pytest.raises(ValueError, match="fraction"):
        EncoderConfig(eta=1.0, fraction=0.0)
    with pytest.raises(ValueError, match="distance"):
        EncoderConfig(eta=1.0, distance="cos")
    with pytest.raises(ValueError, match="backend"):
        EncoderConfig(eta=1.0, backend="jax")


def test_sweep_task_row():
    row = encoder_task(eta=0.1, arm="B", steps=3, tau=0.5, seed=0)
    assert set(ARMS) >= {row["arm"]} and row["lam"] == 1.0 and row["steps_done"] == 3
    assert row["delta_loss"] == pytest.approx(row["final_loss"] - math.log(239), abs=1e-12)


def test_missing_torch_gives_a_clear_skip(monkeypatch):
    import sys

    from paper_checks.registry import REGISTRY, load_all, run_one
    from solvers.encoder_experiment import TorchUnavailable, torch_losses

    load_all()  # other papers' modules may probe torch at import; load them first
    monkeypatch.setitem(sys.modules, "torch", None)  # "import torch" now raises ImportError
    with pytest.raises(TorchUnavailable, match="torch is not installed"):
        torch_losses(np.arange(4), EncoderConfig(eta=1.0))
    res = run_one(REGISTRY["CLOP-E0"], quick=True)
    assert res.status == "skip" and "torch is not installed" in res.detail
