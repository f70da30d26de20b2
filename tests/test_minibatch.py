"""SupCon / SCL+P on batch families (solvers.minibatch) and the setting solver
(solvers.minibatch_experiments).

Reference values come from an explicit loop implementation of prototypes.md §1.1/§1.3 written here
(enlarged batch with genuine prototype copies, sum over anchors with a positive), from closed forms
of the spec (Graf T1, Kini T2/T3, T5) and from the definitions of the batchings (§4 C4, C12) -
never from the code under test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.configurations import etf_prototypes, orthogonal_frame, random_sphere_points
from solvers.minibatch import (
    RowSubset,
    StackedBatchLoss,
    all_subsets,
    batch_loss,
    batched_loss,
    batches_from_spec,
    bind_batches,
    check_batches,
    full_batch,
    load_batches,
    prototype_anchor_term,
    prototype_limit_loss,
    random_partitions,
    save_batches,
    stratified_batches,
)
from solvers.minibatch_experiments import (
    block_prototypes,
    geometry,
    labels_from_sizes,
    limit_minimiser,
    multistart,
    prototype_matrix,
    solve_setting,
)
from solvers.sphere_solver import SphereProblem

# float64 round-off of sums of O(10-1000) log-sum-exp terms of size O(1/tau)
VALUE_RTOL = 1e-11


def reference_scl(z: np.ndarray, labels: np.ndarray, tau: float, w: np.ndarray | None = None, copies: int = 0,
                  anchors: bool = False) -> float:
    """SupCon L_out on the enlarged batch [z; copies x w], summed over anchors with a positive (loops)."""
    rows = [z[i] for i in range(len(labels))]
    labs = list(labels)
    is_proto = [False] * len(labels)
    if copies:
        for _ in range(copies):
            for c in range(w.shape[0]):
                rows.append(w[c] / np.linalg.norm(w[c]))
                labs.append(c)
                is_proto.append(True)
    zz = np.array([r / np.linalg.norm(r) for r in rows])
    total = 0.0
    for i in range(len(labs)):
        if is_proto[i] and not anchors:
            continue
        others = [a for a in range(len(labs)) if a != i]
        pos = [p for p in others if labs[p] == labs[i]]
        if not pos:
            continue
        s = np.array([zz[i] @ zz[a] / tau for a in others])
        lse = s.max() + math.log(np.sum(np.exp(s - s.max())))
        total += -np.mean([zz[i] @ zz[p] / tau for p in pos]) + lse
    return total


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    return random_sphere_points(n, d, seed)


# ----------------------------------------------------------------------------------------------
# the objective against the explicit reference
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("copies,anchors", [(0, False), (1, False), (1, True), (3, False), (3, True)])
def test_full_batch_matches_explicit_enlarged_batch(copies, anchors):
    labels = labels_from_sizes([3, 2, 4])
    w = etf_prototypes(3, 5)
    z = unit_rows(labels.size, 5, 1)
    val = batched_loss(labels, None, 0.4, w, copies, anchors).value(z)
    ref = reference_scl(z, labels, 0.4, w, copies, anchors)
    assert val == pytest.approx(ref, rel=VALUE_RTOL)


@pytest.mark.parametrize("stacked", [True, False])
@pytest.mark.parametrize("copies,anchors", [(0, False), (1, True), (2, True), (2, False)])
def test_batch_family_is_the_sum_of_batch_losses(stacked, copies, anchors):
    labels = labels_from_sizes([4, 4, 2])
    w = orthogonal_frame(3, 6)
    fam = random_partitions(labels.size, 3, repeats=2, seed=4)
    z = unit_rows(labels.size, 6, 2)
    val = batched_loss(labels, fam, 0.25, w, copies, anchors, stacked=stacked).value(z)
    ref = sum(reference_scl(z[b], labels[b], 0.25, w, copies, anchors) for b in fam)
    assert val == pytest.approx(ref, rel=VALUE_RTOL)


def test_absent_class_prototype_anchor_is_dropped():
    # P-anchor, n_w = 1, class 2 absent from the batch: its lone prototype copy has no positive and is
    # dropped as an anchor (kept as a negative), §5.2
    labels = np.array([0, 0, 1, 1])
    w = etf_prototypes(3, 4)
    z = unit_rows(4, 4, 3)
    loss = batch_loss(labels, 0.5, w, 1, True)
    assert loss.value(z) == pytest.approx(reference_scl(z, labels, 0.5, w, 1, True), rel=VALUE_RTOL)


def test_stacked_and_summed_agree_on_values_and_gradients():
    labels = labels_from_sizes([5, 3, 3, 2])
    w = etf_prototypes(4, 6)
    fam = bind_batches(random_partitions(labels.size, 4, 3, seed=0), labels)
    z = unit_rows(labels.size, 6, 5)
    for variant in ("out", "in"):
        a = batched_loss(labels, fam, 0.2, w, 2, True, variant=variant, stacked=True)
        b = batched_loss(labels, fam, 0.2, w, 2, True, variant=variant, stacked=False)
        assert isinstance(a, StackedBatchLoss)
        va, ga = a.value_and_grad(z)
        vb, gb = b.value_and_grad(z)
        assert va == pytest.approx(vb, rel=VALUE_RTOL)
        np.testing.assert_allclose(ga, gb, rtol=0, atol=1e-11 * np.abs(gb).max())


def test_collapsed_simplex_value_is_graf_closed_form():
    # T1: at class collapse onto a simplex every anchor's term is log(n-1 + (N-n) e^{-K/((K-1) tau)})
    k, n, tau = 4, 5, 0.1
    labels = labels_from_sizes([n] * k)
    z = etf_prototypes(k, 8)[labels]
    expected = k * n * math.log(n - 1 + (k * n - n) * math.exp(-k / ((k - 1) * tau)))
    assert batched_loss(labels, None, tau).value(z) == pytest.approx(expected, rel=1e-13)


def test_collapsed_of_value_is_kini_closed_form_on_a_batching():
    # T3: the OF attains sum_B sum_i log(n_{B,y} - 1 + (|B| - n_{B,y}) e^{-1/tau}) on any family
    labels = labels_from_sizes([4, 4, 4])
    fam = stratified_batches(labels, 2)
    z = orthogonal_frame(3, 6)[labels]
    expected = sum(6 * math.log(1 + 4 * math.exp(-1 / 0.1)) for _ in fam)  # each batch: 6 anchors, n_B = 2
    assert batched_loss(labels, fam, 0.1).value(z) == pytest.approx(expected, rel=1e-13)


def test_row_subset_gathers_and_scatters():
    labels = np.array([0, 1, 0, 1])
    base = batch_loss(labels, 0.5)
    wrapped = RowSubset(base, np.array([2, 0, 1, 2]), 3)  # row 2 used twice
    x = unit_rows(3, 3, 7)
    z = x[[2, 0, 1, 2]]
    v, g = wrapped.value_and_grad_unit(x)
    vb, gb = base.value_and_grad_unit(z)
    assert v == pytest.approx(vb, rel=1e-15)
    np.testing.assert_allclose(g[2], gb[0] + gb[3], atol=1e-14)
    np.testing.assert_allclose(g[0], gb[1], atol=1e-14)


# ----------------------------------------------------------------------------------------------
# the n_w -> infinity limit objective
# ----------------------------------------------------------------------------------------------
def test_limit_loss_matches_explicit_formula():
    labels = np.array([0, 1, 2, 2, 1])
    w = random_sphere_points(3, 4, 9)
    h = unit_rows(5, 4, 10)
    tau = 0.3
    s = h @ w.T / tau
    ce = sum(np.log(np.sum(np.exp(s[i] - s[i, labels[i]]))) for i in range(5))
    a = np.exp(w @ w.T / tau).sum(axis=1)
    e = sum(-s[i, labels[i]] + np.sum(np.exp(s[i]) / a) for i in range(5))
    assert prototype_limit_loss(labels, w, tau, False).value(h) == pytest.approx(ce, rel=1e-13)
    assert prototype_limit_loss(labels, w, tau, True).value(h) == pytest.approx(ce + e, rel=1e-13)
    assert prototype_anchor_term(labels, w, tau).value(h) == pytest.approx(e, rel=1e-13)


def test_loss_differences_approach_the_limit_at_rate_one_over_nw():
    # T4: [L(H) - L(H')] - [L_lim(H) - L_lim(H')] = O(1/n_w); doubling n_w halves the gap
    labels = labels_from_sizes([2, 3, 2])
    w = etf_prototypes(3, 5)
    h, h2 = unit_rows(7, 5, 1), unit_rows(7, 5, 2)
    for anchors in (False, True):
        lim = prototype_limit_loss(labels, w, 0.2, anchors)
        dl = lim.value(h) - lim.value(h2)
        gaps = []
        for nw in (2000, 4000):
            loss = batched_loss(labels, None, 0.2, w, nw, anchors)
            gaps.append(loss.value(h) - loss.value(h2) - dl)
        # ratio 2 up to the O(1/n_w) relative next-order term (b/n_w ~ 3e-3, times a constant < 10)
        assert gaps[0] / gaps[1] == pytest.approx(2.0, rel=0.02)


def test_limit_minimiser_of_prototypes_is_the_centred_direction():
    # T5 case 2: h* = sqrt((K-1)/K) w_y - (1/sqrt(K(K-1))) sum_{c != y} w_c; value log(1 + (K-1) e^{-sqrt(K/(K-1))/tau})
    k, tau = 4, 0.5
    w = orthogonal_frame(k, 6)
    h, val, ok = limit_minimiser(w, 1, tau, restarts=2)
    target = math.sqrt((k - 1) / k) * w[1] - (w.sum(axis=0) - w[1]) / math.sqrt(k * (k - 1))
    # converged at gtol 1e-12: position error ~1e-10
    np.testing.assert_allclose(h, target, atol=1e-8)
    assert val == pytest.approx(math.log(1 + (k - 1) * math.exp(-math.sqrt(k / (k - 1)) / tau)), rel=1e-10)
    assert ok


# ----------------------------------------------------------------------------------------------
# gradients (finite differences)
# ----------------------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), copies=st.integers(0, 3), anchors=st.booleans(), nonneg=st.booleans(),
       stacked=st.booleans())
def test_gradient_matches_central_differences(seed, copies, anchors, nonneg, stacked):
    rng = np.random.default_rng(seed)
    sizes = [int(x) for x in rng.integers(2, 4, size=int(rng.integers(2, 4)))]
    labels = labels_from_sizes(sizes)
    k, d = len(sizes), int(rng.integers(len(sizes), 6))
    w = orthogonal_frame(k, d)
    fam = random_partitions(labels.size, int(rng.integers(k + 1, labels.size + 1)), 2, seed=seed)
    prob = SphereProblem(batched_loss(labels, fam, 0.3, w, copies, anchors, stacked=stacked), d, nonnegative=nonneg)
    u = np.abs(rng.standard_normal(labels.size * d)) + 0.1
    _, g = prob.value_and_grad_params(u)
    fd = np.empty_like(u)
    for i in range(u.size):
        e = np.zeros_like(u)
        e[i] = 1e-6
        fd[i] = (prob.value_and_grad_params(u + e)[0] - prob.value_and_grad_params(u - e)[0]) / 2e-6
    # central differences, h = 1e-6: truncation ~1e-12, round-off ~1e-10 relative to |L| ~ 10
    assert np.linalg.norm(g - fd) <= 1e-6 * np.linalg.norm(g)


# ----------------------------------------------------------------------------------------------
# batchings
# ----------------------------------------------------------------------------------------------
def test_random_partitions_cover_every_row_once_per_partition():
    fam = random_partitions(10, 4, repeats=3, seed=1)
    assert len(fam) == 3 * 3  # ceil(10 / 4) batches per partition
    for r in range(3):
        rows = np.concatenate(fam[3 * r : 3 * r + 3])
        assert sorted(rows.tolist()) == list(range(10))
    assert [b.tolist() for b in fam] == [b.tolist() for b in random_partitions(10, 4, 3, seed=1)]


def test_stratified_and_bound_families_are_the_spec_c4_families():
    labels = labels_from_sizes([4, 4, 4])  # example j of class c is row 4c + j
    unbound = stratified_batches(labels, 2)
    assert [b.tolist() for b in unbound] == [[0, 1, 4, 5, 8, 9], [2, 3, 6, 7, 10, 11]]
    bound = bind_batches(unbound, labels)
    assert [b.tolist() for b in bound] == [[0, 1, 4, 5, 8, 9], [0, 2, 3, 4, 6, 7, 8, 10, 11]]


def test_all_subsets_and_full_batch():
    assert len(all_subsets(6, 4)) == math.comb(6, 4)
    assert full_batch(5)[0].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="batch_size"):
        all_subsets(40, 20)


def test_batches_from_spec_and_json_round_trip(tmp_path):
    labels = labels_from_sizes([3, 3])
    assert len(batches_from_spec("random:2x3", labels, seed=0)) == 3 * 3
    bound = batches_from_spec("random:2:bind", labels, seed=0)
    assert all({0, 3} <= set(b.tolist()) for b in bound)
    path = save_batches([[0, 1], [2, 3, 4]], tmp_path / "b.json")
    assert [b.tolist() for b in load_batches(path, 6)] == [[0, 1], [2, 3, 4]]
    assert json.loads(path.read_text()) == {"batches": [[0, 1], [2, 3, 4]]}


@pytest.mark.parametrize("bad,match", [
    ([[0, 7]], "indices must lie"), ([[]], "non-empty"), ([[0, 0, 1]], "repeats"), ([], "at least one batch"),
])
def test_bad_batches_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        check_batches(bad, 6)


def test_bad_inputs_raise():
    labels = labels_from_sizes([2, 2])
    with pytest.raises(ValueError, match="prototypes"):
        batched_loss(labels, None, 0.5, None, 2)
    with pytest.raises(ValueError, match="tau"):
        batched_loss(labels, None, -1.0)
    with pytest.raises(ValueError, match="no batch"):
        batched_loss(labels, [[0, 2], [1, 3]], 0.5)
    with pytest.raises(ValueError, match="batches must be"):
        batches_from_spec("random:x", labels)
    with pytest.raises(ValueError, match="labels must lie"):
        batched_loss(np.array([0, 0, 5, 5]), None, 0.5, etf_prototypes(2, 3), 1)


# ----------------------------------------------------------------------------------------------
# geometry and the setting solver
# ----------------------------------------------------------------------------------------------
def test_geometry_of_exact_configurations():
    labels = labels_from_sizes([3, 3, 3, 3])
    etf = etf_prototypes(4, 6)
    g = geometry(etf[labels], labels, etf)
    assert g["delta_etf"] < 1e-12 and g["delta_w"] < 1e-12 and g["nc1"] < 1e-20
    assert g["delta_of"] == pytest.approx(math.sqrt(2 - 2 * math.sqrt(3 / 4)), abs=1e-12)  # §1.4, K = 4
    of = orthogonal_frame(4, 6)
    assert geometry(of[labels], labels)["delta_of"] < 1e-12


def test_block_prototypes_gram():
    w = block_prototypes(4, 8)
    g = w @ w.T
    np.testing.assert_allclose(g, [[1, .6, 0, 0], [.6, 1, 0, 0], [0, 0, 1, .6], [0, 0, .6, 1]], atol=1e-15)
    assert np.all(w >= 0)
    with pytest.raises(ValueError, match="even"):
        block_prototypes(3, 8)
    assert prototype_matrix("none", 4, 8) is None


def test_solve_setting_reaches_graf_minimum_and_collapsed_ansatz_agrees():
    tau = 0.5
    r = solve_setting([3, 3, 3], 4, tau, restarts=2)
    expected = 9 * math.log(2 + 6 * math.exp(-3 / (2 * tau)))  # T1, K = 3, n = 3
    assert r.value == pytest.approx(expected, rel=1e-12)
    assert r.geometry["delta_etf"] < 1e-6 and r.geometry["nc1"] < 1e-12
    c = solve_setting([3, 3, 3], 4, tau, restarts=2, collapsed=True)
    assert c.value == pytest.approx(expected, rel=1e-12)


def test_multistart_is_deterministic():
    prob = SphereProblem(batched_loss(labels_from_sizes([2, 2]), None, 0.5), 3)
    a, b = multistart(prob, 2, 3), multistart(prob, 2, 3)
    assert a.all_values == b.all_values
