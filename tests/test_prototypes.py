"""theory.prototypes (Graf T1, Kini T2/T3, the batch-binding predicate, the n_w -> infinity limit T4,
the CE-fixed minimisers T5, the P-anchor OF limit T6, Delta(ETF, OF)) and the prototypes checks.

Expected values are typed in from prototypes.md (closed forms, worked examples) or computed by
independent means here (enumeration with itertools, the library's loss at an exact configuration,
dense grids); never from the function under test.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sympy as sp

from solvers.configurations import etf_prototypes, orthogonal_frame, random_sphere_points
from solvers.losses import ce_fixed, supcon
from solvers.minibatch import batched_loss
from theory import prototypes as tp

K = tp.K_


def labels_of(sizes):
    return np.repeat(np.arange(len(sizes)), sizes)


# ----------------------------------------------------------------------------------------------
# Graf (T1)
# ----------------------------------------------------------------------------------------------
def test_graf_full_batch_worked_example():
    # §4 C1: 20 log(4 + 15 e^{-40/3})
    assert tp.graf_full_batch_minimum(4, 5, 0.1) == pytest.approx(20 * math.log(4 + 15 * math.exp(-40 / 3)), rel=1e-15)


def test_graf_all_batches_matches_enumeration():
    k, n, b, tau = 3, 3, 4, 0.7
    labels = labels_of([n] * k)
    total = 0.0
    for batch in itertools.combinations(range(k * n), b):
        cnt = np.bincount(labels[list(batch)], minlength=k)
        total += sum(m * math.log(m - 1 + (b - m) * math.exp(-k / ((k - 1) * tau))) for m in cnt if m >= 2)
    assert tp.graf_all_batches_minimum(k, n, b, tau) == pytest.approx(total, rel=1e-13)


def test_simplex_value_is_the_loss_at_the_collapsed_simplex():
    labels = labels_of([3, 2, 4])
    fam = [np.array([0, 1, 3, 5, 6]), np.array([2, 4, 7, 8]), np.arange(9)]
    z = etf_prototypes(3, 4)[labels]
    expected = sum(supcon(labels[b], 0.3, reduction="sum", no_positive="exclude").value(z[b]) for b in fam)
    assert tp.simplex_value(fam, labels, 0.3) == pytest.approx(expected, rel=1e-13)


def test_graf_bound_applies_only_to_balanced_batches():
    labels = labels_of([2, 2, 2])
    assert tp.graf_bound_applies([np.arange(6)], labels)
    assert tp.graf_bound_applies([[0, 2, 4], [1, 3, 5]], labels)
    assert not tp.graf_bound_applies([[0, 1, 2], [3, 4, 5]], labels)
    assert not tp.graf_bound_applies([np.arange(6)], labels_of([3, 2, 1]))


def test_graf_ce_bound_is_attained_at_the_aligned_simplex():
    # with W = r_W * simplex and tau = 1/rho_Z, CE-fixed at the simplex equals the bound
    k, rho, r = 5, 3.0, 0.7
    val = ce_fixed(np.arange(k), r * etf_prototypes(k, k), 1 / rho).value(etf_prototypes(k, k))
    assert tp.graf_ce_bound(k, rho, r) == pytest.approx(val, rel=1e-13)
    assert tp.graf_ce_bound(k, rho, r) == pytest.approx(math.log(1 + (k - 1) * math.exp(-rho * r * k / (k - 1))))


@pytest.mark.parametrize("steps", [tp.graf_proof, tp.kini_proof, tp.limit_steps])
def test_symbolic_chains_hold(steps):
    out = steps()
    assert out and all(s.holds and s.residual == "0" for s in out), [s.as_dict() for s in out if not s.holds]


# ----------------------------------------------------------------------------------------------
# Kini (T2, T3) and the binding predicate
# ----------------------------------------------------------------------------------------------
def test_kini_minimum_is_the_loss_at_the_orthogonal_frame():
    labels = labels_of([5, 2, 3])
    fam = [np.array([0, 1, 5, 6, 7]), np.array([2, 3, 4, 8, 9]), np.arange(10)]
    z = orthogonal_frame(3, 4)[labels]
    assert tp.kini_minimum(fam, labels, 0.2) == pytest.approx(batched_loss(labels, fam, 0.2).value(z), rel=1e-13)
    # full batch, §4 C3: sum_i log(n_{y_i} - 1 + (N - n_{y_i}) e^{-1/tau})
    sizes = [10, 10, 2, 2]
    expected = sum(n * math.log(n - 1 + (24 - n) * math.exp(-10)) for n in sizes)
    assert tp.kini_minimum(None, labels_of(sizes), 0.1) == pytest.approx(expected, rel=1e-15)


def test_binding_predicate_on_the_c4_families():
    labels = labels_of([4, 4, 4])
    unbound = [[0, 1, 4, 5, 8, 9], [2, 3, 6, 7, 10, 11]]
    bound = [[0, 1, 4, 5, 8, 9], [0, 2, 3, 4, 6, 7, 8, 10, 11]]
    rep = tp.binding_report(unbound, labels)
    assert not rep.unique and not rep.within_connected and rep.all_related
    assert rep.components[0] == [[0, 1], [2, 3]]
    assert tp.is_binding(bound, labels)


def test_binding_relation_needs_a_positive():
    labels = labels_of([2, 2])
    # classes meet only in batches where each has one member: no anchor term ties them
    fam = [[0, 2], [1, 3], [0, 1], [2, 3]]
    rep = tp.binding_report(fam, labels)
    assert rep.within_connected and rep.unrelated == [(0, 1)] and not rep.unique
    assert tp.is_binding(fam + [[0, 1, 2]], labels)


# ----------------------------------------------------------------------------------------------
# T4: series and the numeric limit
# ----------------------------------------------------------------------------------------------
def test_limit_series_coefficients():
    ser = tp.limit_series()
    u, ps, zw, zs, m, r, q, a, e = ser["symbols"]
    assert sp.simplify(ser["sample_limit"]) == 0
    assert sp.simplify(ser["sample_first"] - (m * u - ps + zs / zw)) == 0
    assert sp.simplify(ser["proto_limit"] - (q / a - r)) == 0
    assert sp.simplify(ser["proto_first"] - (r * (m - 1) + q * e / a**2 - q**2 / (2 * a**2))) == 0


@pytest.mark.parametrize("anchors", [False, True])
def test_expansion_predicts_the_loss_to_second_order(anchors):
    labels = labels_of([3, 2, 2])
    w = random_sphere_points(3, 5, 11)
    h = random_sphere_points(7, 5, 12)
    errs = []
    for nw in (1000, 2000):
        full = batched_loss(labels, None, 0.25, w, nw, anchors).value(h)
        pred = (tp.scl_constant(nw, labels, w, 0.25, anchors) + tp.limit_objective(h, labels, w, 0.25, anchors)
                + tp.first_order_gap(h, labels, w, 0.25, anchors) / nw)
        errs.append(full - pred)
    # the remainder is O(1/n_w^2): doubling n_w divides it by ~4 (next order ~ b/n_w relative)
    assert errs[0] / errs[1] == pytest.approx(4.0, rel=0.05)


def test_limit_values_match_explicit_formulas():
    labels = np.array([0, 2, 1])
    w = random_sphere_points(3, 4, 3)
    h = random_sphere_points(3, 4, 4)
    s = h @ w.T / 0.5
    ce = sum(math.log(sum(math.exp(s[i, c] - s[i, labels[i]]) for c in range(3))) for i in range(3))
    a = np.exp(w @ w.T / 0.5).sum(axis=1)
    e = sum(-s[i, labels[i]] + sum(math.exp(s[i, c]) / a[c] for c in range(3)) for i in range(3))
    assert tp.ce_fixed_value(h, labels, w, 0.5) == pytest.approx(ce, rel=1e-13)
    assert tp.anchor_term_value(h, labels, w, 0.5) == pytest.approx(e, rel=1e-13)


# ----------------------------------------------------------------------------------------------
# T5, T6, constants
# ----------------------------------------------------------------------------------------------
def test_ce_fixed_equiangular_closed_forms():
    m = sp.Symbol("m", positive=True)  # K = m + 1 > 1
    of = tp.ce_fixed_equiangular(K, 0)
    alpha, beta = of["coefficients"]
    expected = {  # T5 case 2
        "gram": -1 / (K - 1), "cos_prototype": sp.sqrt((K - 1) / K), "margin": -sp.sqrt(K / (K - 1)),
    }
    for key, val in expected.items():
        assert sp.simplify((of[key] - val).subs(K, m + 1)) == 0, key
    assert sp.simplify((alpha - sp.sqrt((K - 1) / K)).subs(K, m + 1)) == 0
    assert sp.simplify((beta + 1 / sp.sqrt(K * (K - 1))).subs(K, m + 1)) == 0
    etf = tp.ce_fixed_equiangular(K, -1 / (K - 1))
    assert sp.simplify(etf["cos_prototype"] - 1) == 0  # T5 case 1: h* = w_y
    assert sp.simplify(etf["margin"] + K / (K - 1)) == 0
    # §4 C9 numbers at K = 4
    assert float(of["gram"].subs(K, 4)) == pytest.approx(-0.3333, abs=5e-5)
    assert float(of["cos_prototype"].subs(K, 4)) == pytest.approx(0.8660, abs=5e-5)


def test_ce_fixed_candidate_tightness():
    c = tp.ce_fixed_candidate(np.eye(4), 0)
    np.testing.assert_allclose(c["coefficients"], [math.sqrt(3 / 4)] + [-1 / math.sqrt(12)] * 3, atol=1e-15)
    assert c["tight"] < 1e-15
    block = np.array([[1, .6, 0, 0], [.6, 1, 0, 0], [0, 0, 1, .6], [0, 0, .6, 1]])
    assert tp.ce_fixed_candidate(block, 0)["tight"] > 0.1  # Jensen not tight: T5 case 4


def test_ce_fixed_minimum_closed_forms():
    assert tp.ce_fixed_minimum("etf", 10, 0.1) == pytest.approx(math.log(1 + 9 * math.exp(-10 / 0.9)), rel=1e-14)
    assert tp.ce_fixed_minimum("of", 4, 0.5) == pytest.approx(math.log(1 + 3 * math.exp(-math.sqrt(4 / 3) / 0.5)))
    assert tp.ce_fixed_minimum("of-nonneg", 4, 0.5) == pytest.approx(math.log(1 + 3 * math.exp(-2.0)))
    with pytest.raises(ValueError, match="kind"):
        tp.ce_fixed_minimum("block", 4, 0.5)


def test_ce_fixed_minimiser_coefficients():
    # T5: OF -> sqrt((K-1)/K) w_y - (1/sqrt(K(K-1))) sum_{c != y} w_c; ETF and non-negative OF -> w_y
    a = tp.ce_fixed_minimiser("of", 4, 2)
    np.testing.assert_allclose(a, [-1 / math.sqrt(12)] * 2 + [math.sqrt(3 / 4)] + [-1 / math.sqrt(12)], atol=1e-15)
    g = np.array([tp.ce_fixed_minimiser("of", 4, y) for y in range(4)])
    np.testing.assert_allclose(g @ g.T, (4 / 3) * (np.eye(4) - 1 / 4), atol=1e-15)  # simplex ETF Gram
    np.testing.assert_array_equal(tp.ce_fixed_minimiser("etf", 3, 1), [0, 1, 0])
    np.testing.assert_array_equal(tp.ce_fixed_minimiser("of-nonneg", 3, 0), [1, 0, 0])


def test_of_anchor_limit_against_a_dense_grid():
    taus = (1.0, 0.5, 0.1)
    gs = []
    for tau in taus:
        res = tp.of_anchor_limit(4, tau)
        f = sp.lambdify(sp.Symbol("t"), tp.of_anchor_objective(sp.Symbol("t"), 4, tau), "numpy")
        grid = np.linspace(-np.pi, np.pi, 200_001)
        assert res.value <= float(np.min(f(grid))) + 1e-12  # the refined minimum is at least as low as the grid's
        assert res.value == pytest.approx(float(f(res.t)), rel=1e-12)
        assert res.b < 0 and -1 / 3 < res.gram < 0  # T6
        gs.append(res.gram)
    assert gs[0] < gs[1] < gs[2]  # g increases toward 0 as tau decreases (T6, §4 C8)


def test_delta_etf_of():
    assert float(tp.delta_etf_of(4)) == pytest.approx(0.5176, abs=5e-5)  # §1.4 worked example
    for k in range(2, 12):
        assert float(tp.delta_etf_of(k)) == pytest.approx(math.sqrt(2 - 2 * math.sqrt((k - 1) / k)), rel=1e-14)


@pytest.mark.parametrize("call,match", [
    (lambda: tp.graf_anchor_minimum(1, 5, 3, 0.1), "same"),
    (lambda: tp.graf_anchor_minimum(2, 5, 3, 0.0), "tau"),
    (lambda: tp.kini_minimum([[0, 9]], np.array([0, 0, 1]), 0.1), "batches"),
    (lambda: tp.binding_report([[0, 0]], np.array([0, 1])), "repeats"),
    (lambda: tp.ce_fixed_candidate(np.eye(3), 3), "label"),
    (lambda: tp.scl_constant(1, np.array([0, 1]), np.eye(2), 0.5, True), "copies"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_theory_does_not_import_solvers():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(tp))
    names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not any(x.split(".")[0] in ("solvers", "paper_checks", "figures") for x in names)


# ----------------------------------------------------------------------------------------------
# the checks
# ----------------------------------------------------------------------------------------------
SPEC_IDS = ["PROTO-C1a", "PROTO-C1b", "PROTO-C1c", "PROTO-C2", "PROTO-C3", "PROTO-C3s", "PROTO-C4a", "PROTO-C4b",
            "PROTO-C4c", "PROTO-C4d", "PROTO-C5", "PROTO-C6", "PROTO-C7", "PROTO-C8a", "PROTO-C8b", "PROTO-C9",
            "PROTO-C10", "PROTO-C11", "PROTO-C12", "PROTO-C13a", "PROTO-C13b", "PROTO-C14", "PROTO-C15",
            "PROTO-C16", "PROTO-C17"]
SPEC_TAGS = {"PROTO-C1a": "[REC+DER]", "PROTO-C1c": "[REC]", "PROTO-C2": "[DER]", "PROTO-C3s": "[DER]",
             "PROTO-C4d": "[REC]", "PROTO-C16": "[ABS]", "PROTO-C17": "[REC]"}


def test_every_spec_check_is_registered_with_its_tag():
    from paper_checks.registry import select

    chosen = {c.id: c for c in select("prototypes")}
    assert set(SPEC_IDS) <= set(chosen)
    for cid, tag in SPEC_TAGS.items():
        assert chosen[cid].spec_tag == tag
    prov = {"[REC+DER]": "reconstruction", "[REC]": "reconstruction", "[DER]": "derived", "[ABS]": "paper-abstract"}
    for cid in SPEC_IDS:
        assert chosen[cid].provenance == prov[chosen[cid].spec_tag], cid


@pytest.mark.parametrize("cid", ["PROTO-C1c", "PROTO-C4d", "PROTO-C13a", "PROTO-C15", "PROTO-C8a"])
def test_cheap_checks_pass(cid):
    from paper_checks.registry import run_one, select

    res = run_one(select("prototypes", [cid])[0], quick=True)
    assert res.status == "pass", res.detail
    if cid == "PROTO-C8a":
        assert res.verdict == "refuted" and res.counterexample  # the naive 'identity Gram' reading
