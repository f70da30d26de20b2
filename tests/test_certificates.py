"""Convex Gram relaxations (solvers/certificates*.py) and the ``collapsekit certify`` command.

Expected values come from closed forms of the specs (dhel_kcl.md T1, anchors.md §3.3/§8.2,
prototypes.md T2, ssem.md R2/R5 through theory/ssem.py), never from the code under test.
Tolerances: the relaxation is solved by Clarabel with gap/feasibility tolerance 1e-8, so the
bound agrees with a closed form to ~1e-8; we test at 1e-6 (100x margin, the certificate's
default).  SCS (first-order fallback) is tested at 1e-4.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_checks.cli import main
from solvers.certificates import (
    NonConvexLossError,
    compare,
    points_from_gram,
    relax,
    solve_relaxation,
)
from solvers.configurations import orthogonal_frame, random_sphere_points, regular_simplex
from solvers.layout import Layout
from solvers.losses import (
    clop_term,
    dcl,
    dhel,
    gaussian_energy,
    kcl,
    protosupcon,
    riesz_energy,
    simclr,
    supcl,
    supcon,
    uniformity,
    with_clop,
)

SOLVER_TOL = 1e-6  # Clarabel stops at 1e-8 (gap, feasibility); 100x margin


def t1(name: str, m: int, tau: float) -> float:
    """dhel_kcl.md T1 table."""
    e = math.exp(-m / (tau * (m - 1)))
    return {"simclr": math.log1p(2 * (m - 1) * e), "dcl": math.log(2 * (m - 1)) - m / (tau * (m - 1)),
            "dhel": math.log(m - 1) - m / (tau * (m - 1)),
            "dhel2": 2 * math.log(m - 1) - (m + 1) / (tau * (m - 1))}[name]


# ----------------------------------------------------------------------------------------------
# bounds equal closed forms
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,loss", [("simclr", simclr(3, 0.5)), ("dcl", dcl(3, 0.5)),
                                       ("dhel", dhel(3, 0.5)), ("dhel2", dhel(3, 0.5, "code"))])
def test_infonce_family_bound_is_t1_closed_form_with_rank_m_minus_1(name, loss):
    c = solve_relaxation(loss, dim=2)
    assert c.status == "optimal"
    assert c.lower_bound == pytest.approx(t1(name, 3, 0.5), abs=SOLVER_TOL)
    assert c.rank == 2 and c.tight
    # the factorised points are the aligned simplex: loss there = closed form (upper bound)
    assert c.points_value == pytest.approx(t1(name, 3, 0.5), abs=SOLVER_TOL)
    assert c.points.shape == (6, 2)


def test_bound_below_t1_minimum_beyond_d_plus_1_is_not_tight():
    """dhel_kcl.md T5: for M = 5 > d + 1 = 4 the relaxed value is still the T1 form, rank 4 > 3."""
    c = solve_relaxation(simclr(5, 0.5), dim=3, rank_tol=1e-4)  # DHEL-C14 eigenvalue threshold
    assert c.lower_bound == pytest.approx(t1("simclr", 5, 0.5), abs=SOLVER_TOL)
    assert c.rank == 4 and c.tight is False and c.points is None
    # any configuration in R^3 is an upper bound; a random one is far above: not certified
    val = simclr(5, 0.5).value(random_sphere_points(10, 3, 0))
    compare(c, val)
    assert c.gap > 0.01 and not c.certified


def test_energies_bound_is_simplex_value():
    """anchors.md §3.3: C(N,2) f(2N/(N-1)) for Riesz s = 1, Gaussian t = 2, uniformity t = 2."""
    n = 4
    r2, pairs = 2 * n / (n - 1), n * (n - 1) / 2
    for loss, closed in [(riesz_energy(n, 1.0), pairs * r2 ** -0.5),
                         (gaussian_energy(n, 2.0), pairs * math.exp(-2.0 * r2)),
                         (uniformity(n, 2.0), -2.0 * 2.0 * n / (n - 1))]:
        c = solve_relaxation(loss)
        assert c.lower_bound == pytest.approx(closed, abs=SOLVER_TOL * max(1.0, abs(closed)))
        assert c.rank == n - 1


def test_supcon_graf_bound_and_lin_with_single_positive():
    """anchors.md §8.2: log(m-1 + (C-1) m e^{-C/(tau(C-1))}); L_in = L_out when m = 2 (one positive)."""
    c_cls, m, tau = 3, 2, 0.5
    labels = np.tile(np.arange(c_cls), m)
    closed = math.log(m - 1 + (c_cls - 1) * m * math.exp(-c_cls / (tau * (c_cls - 1))))
    for variant in ("out", "in"):
        c = solve_relaxation(supcon(labels, tau, variant))
        assert c.lower_bound == pytest.approx(closed, abs=SOLVER_TOL)
        assert c.rank == c_cls - 1


def test_kini_doubly_nonnegative_bound_is_the_orthogonal_frame_value():
    """prototypes.md T2: mean_i log(n_{y_i} - 1 + (N - n_{y_i}) e^{-1/tau}); without G >= 0 it is lower."""
    sizes, tau = [3, 2, 2], 0.5
    lab = np.repeat(np.arange(3), sizes)
    ny = np.asarray(sizes, float)[lab]
    closed = float(np.mean(np.log(ny - 1 + (lab.size - ny) * math.exp(-1 / tau))))
    c = solve_relaxation(supcon(lab, tau), nonnegative=True, dim=3)
    assert c.status == "optimal"
    assert c.lower_bound == pytest.approx(closed, abs=SOLVER_TOL)
    assert c.rank == 3
    assert np.min(c.gram) >= -1e-7  # G >= 0 up to the solver's feasibility tolerance (1e-8)
    assert solve_relaxation(supcon(lab, tau)).lower_bound < closed - 0.1


def test_ssem_code_variant_bound_is_l_ssem_at_beta_star():
    ssem = pytest.importorskip("theory.ssem")
    k, n, p, alpha, tau = 2, 3, 2, 0.8, 1.0
    opt = ssem.beta_star(alpha, tau, k, n, p, "code")
    c = solve_relaxation(supcl(Layout.balanced(k, n, p), alpha, tau), dim=int(opt.d_min))
    assert c.lower_bound == pytest.approx(float(opt.L_star), abs=SOLVER_TOL)
    assert c.rank == k * n - 1  # ssem.md §4.3: Kn - 1 for 0 < beta* < 1
    assert c.points_value == pytest.approx(float(opt.L_star), abs=SOLVER_TOL)


def test_fixed_prototype_rows_etf_minimum_and_procrustes_coordinates():
    """prototypes.md T7 P1: h_i = w_{y_i} is optimal; the factorised points are in W's coordinates."""
    k, tau = 3, 0.5
    protos = regular_simplex(k, 2)
    lab = np.repeat(np.arange(k), 2)
    loss = protosupcon(lab, protos, 3, tau)
    c = solve_relaxation(loss, dim=2)
    assert c.lower_bound == pytest.approx(loss.value(protos[lab]), abs=SOLVER_TOL)
    assert c.gram[-k:, -k:] == pytest.approx(protos @ protos.T, abs=1e-7)  # fixed block (feasibility 1e-8)
    # rank K - 1 = 2 <= d: points recovered, and they coincide with their prototypes (collapse onto W)
    assert c.points is not None
    assert np.abs(c.points - protos[lab]).max() < 1e-3  # sqrt of the ~1e-8 Gram error, with margin


def test_points_from_gram_round_trip_with_fixed_rows():
    rng = np.random.default_rng(3)
    z = random_sphere_points(5, 3, 1)
    q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    for n_fixed in (2, 3):
        f = orthogonal_frame(n_fixed, 3) @ q
        zf = np.vstack([z, f])
        x, resid = points_from_gram(zf @ zf.T, 3, 1e-9, f, n_fixed)
        assert resid < 1e-10  # exact Gram: Procrustes reproduces F to round-off
        xf = np.vstack([x, f])
        assert xf @ xf.T == pytest.approx(zf @ zf.T, abs=1e-10)  # same Gram, fixed rows in place
        if n_fixed == 3:  # F spans R^3: no freedom left, the points themselves are recovered
            assert x == pytest.approx(z, abs=1e-10)
    assert points_from_gram(zf @ zf.T, 2, 1e-9)[0] is None  # rank 3 > 2


def test_tied_views_make_kcl_relaxable():
    """dhel_kcl.md T5: relax only the energy with V = U; T3 value -2 + 2 gamma exp(-2tM/(M-1))."""
    m, t, gamma = 4, 2.0, 16.0
    c = solve_relaxation(kcl(m, "gaussian", t, gamma), views=2, tied=True, dim=3)
    assert c.lower_bound == pytest.approx(-2 + 2 * gamma * math.exp(-2 * t * m / (m - 1)), abs=SOLVER_TOL)
    assert c.size["gram_order"] == m


def test_clop_cosine_sum_loss_is_relaxed_with_the_template_value():
    labels = np.array([0, 0, 1, 1, -1, -1])
    protos = orthogonal_frame(2, 3)
    loss = with_clop(supcon(np.array([0, 0, 1, 1, 0, 1]), 0.5), labels, protos, lam=0.5)
    c = solve_relaxation(loss)
    # the numpy template at the optimal G equals the cvxpy objective: one definition, two backends
    assert c.template_value == pytest.approx(c.primal_value, abs=1e-7)


def test_scs_fallback_solver():
    c = solve_relaxation(dcl(3, 0.5), solver="scs")
    assert c.solver == "scs"
    assert c.lower_bound == pytest.approx(t1("dcl", 3, 0.5), abs=1e-4)  # first-order method accuracy


# ----------------------------------------------------------------------------------------------
# refusals and bad input
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss,words", [
    (kcl(3), ("kernel term 0", "alignment", "concave")),
    (supcon(np.repeat(np.arange(2), 3), 0.5, "in"), ("group 1", "L_in", "concave")),
    (clop_term(np.array([0, 1, 0]), orthogonal_frame(2, 3), 1.0, "euclidean"), ("distance-power", "concave")),
    (clop_term(np.array([0, 1, 0]), orthogonal_frame(2, 3), 1.0, "manhattan"), ("not a function of the Gram",)),
    (riesz_energy(4, -3.0), ("riesz", "concave")),
    (-1.0 * simclr(3, 0.5), ("weight -1",)),
])
def test_non_convex_losses_are_refused_naming_the_term(loss, words):
    with pytest.raises(NonConvexLossError) as exc:
        relax(loss)
    for w in words:
        assert w in str(exc.value)


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="solver must be one of"):
        solve_relaxation(simclr(3, 0.5), solver="mosek")
    with pytest.raises(ValueError, match="rank_tol"):
        solve_relaxation(simclr(3, 0.5), rank_tol=0.0)
    with pytest.raises(ValueError, match="views"):
        relax(simclr(3, 0.5), views=4, tied=True)
    with pytest.raises(ValueError, match="prototypes' dimension"):
        solve_relaxation(protosupcon(np.array([0, 0, 1, 1]), orthogonal_frame(2, 3), 1, 0.5), dim=4)
    with pytest.raises(ValueError, match="inner products >= 0"):
        relax(protosupcon(np.array([0, 0, 1, 1]), regular_simplex(2, 2), 1, 0.5), nonnegative=True)


def test_compare_flags_a_configuration_below_the_bound():
    c = solve_relaxation(dcl(3, 0.5))
    compare(c, c.lower_bound - 1e-3)
    assert not c.certified and "below the bound" in c.message
    compare(c, t1("dcl", 3, 0.5))
    assert c.certified


# ----------------------------------------------------------------------------------------------
# hypothesis: the bound never exceeds the loss of any feasible configuration, in any dimension
# ----------------------------------------------------------------------------------------------
CASES = [
    ("simclr", lambda: simclr(3, 0.4), {}),
    ("dhel2", lambda: dhel(4, 0.7, "code"), {}),
    ("dcl", lambda: dcl(3, 0.3), {}),
    ("supcon", lambda: supcon(np.array([0, 0, 1, 1, 1, 2, 2]), 0.5), {}),
    ("supcl-se", lambda: supcl(Layout.balanced(2, 2, 2), 0.3, 0.5, "self-excluded"), {}),
    ("riesz", lambda: riesz_energy(6, 1.0), {}),
    ("uniformity", lambda: uniformity(5, 2.0), {}),
    ("supcon-nonneg", lambda: supcon(np.array([0, 0, 1, 1, 2, 2]), 0.5), {"nonnegative": True}),
    ("kcl-tied", lambda: kcl(3), {"views": 2, "tied": True}),
]


@functools.cache
def _bound(idx: int) -> float:
    _, make, kw = CASES[idx]
    return solve_relaxation(make(), **kw).lower_bound


@settings(max_examples=25, deadline=None)
@given(idx=st.integers(0, len(CASES) - 1), dim=st.integers(1, 9), seed=st.integers(0, 10_000),
       collapse=st.booleans())
def test_bound_never_exceeds_the_loss_of_a_feasible_configuration(idx, dim, seed, collapse):
    name, make, kw = CASES[idx]
    loss = make()
    n = loss.n_points
    rng = np.random.default_rng(seed)
    free = n // kw.get("views", 1) if kw.get("tied") else n
    if collapse:  # near-degenerate configurations: few distinct directions (low rank, close to optima)
        base = rng.standard_normal((min(3, free), dim))
        x = base[rng.integers(0, base.shape[0], free)] + 0.05 * rng.standard_normal((free, dim))
    else:
        x = rng.standard_normal((free, dim))
    if kw.get("nonnegative"):
        x = np.abs(x) + 1e-3
    if kw.get("tied"):
        x = np.tile(x, (kw["views"], 1))
    if name in ("riesz",) and dim == 1:
        return  # points coincide on S^0 for N > 2: energy +inf, trivially above the bound
    value = loss.value(x)
    assert value >= _bound(idx) - SOLVER_TOL


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def _run(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    return code, out


def test_cli_certify_json_keys_and_certificate(capsys):
    code, out = _run(capsys, ["certify", "--loss", "dhel", "--instances", "3", "--dim", "2", "--restarts", "2",
                              "--json"])
    assert code == 0
    payload = json.loads(out.out)
    for key in ("lower_bound", "local_value", "gap", "rank", "certified", "seconds"):
        assert key in payload
    assert payload["certified"] is True and payload["rank"] == 2
    assert payload["lower_bound"] == pytest.approx(t1("dhel", 3, 0.5), abs=SOLVER_TOL)


def test_cli_certify_refusal_exits_2_with_the_term(capsys):
    code, out = _run(capsys, ["certify", "--loss", "kcl", "--instances", "3", "--dim", "2", "--json"])
    assert code == 2
    assert "kernel term 0" in json.loads(out.out)["error"]


def test_cli_certify_supervised_text_and_bad_batch(capsys):
    code, out = _run(capsys, ["certify", "--loss", "supcon", "--class-sizes", "2,2,2", "--dim", "2",
                              "--restarts", "2"])
    assert code == 0 and "CERTIFIED" in out.out
    code, out = _run(capsys, ["certify", "--loss", "supcon", "--instances", "3", "--dim", "2"])
    assert code == 2 and "classes" in out.err
