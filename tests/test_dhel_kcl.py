"""dhel_kcl.md: the simplex closed forms (sympy), the universal optima, decoupling, the CLI commands and
a few fast checks.

Expected values come from the spec's formulas and worked examples typed in here (T1, T3a, §3.2,
anchors.md §5.2), never from the code under test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_checks.cli import main
from paper_checks.registry import run_one, select
from solvers.configurations import cross_polytope, regular_simplex
from solvers.kernels import Gaussian, Riesz
from solvers.losses import dcl, dhel, infonce, kcl, simclr
from solvers.sphere_law import uniform_points
from solvers.universal_optima import (
    UNIVERSAL_OPTIMA,
    build,
    design_strength,
    icosahedron,
    inner_product_profile,
    profile_energy,
    regular_polygon,
)
from theory import simplex_closed_forms as scf

SETTINGS = settings(max_examples=25, deadline=None)
LIB = {"infonce": lambda m, t: infonce(m, t), "simclr": lambda m, t: simclr(m, t),
       "dcl": lambda m, t: dcl(m, t, symmetric=False), "dcl-sym": lambda m, t: dcl(m, t, symmetric=True),
       "dhel": lambda m, t: dhel(m, t, "paper"), "dhel2": lambda m, t: dhel(m, t, "code")}


def t1(name: str, m: int, tau: float) -> float:
    """dhel_kcl.md T1 table (typed in from the spec)."""
    e = math.exp(-m / (tau * (m - 1)))
    return {"infonce": math.log1p((m - 1) * e), "simclr": math.log1p(2 * (m - 1) * e),
            "dcl": math.log(2 * (m - 1)) - m / (tau * (m - 1)), "dcl-sym": math.log(2 * (m - 1)) - m / (tau * (m - 1)),
            "dhel": math.log(m - 1) - m / (tau * (m - 1)),
            "dhel2": 2 * math.log(m - 1) - (m + 1) / (tau * (m - 1))}[name]


def t3a(kernel: str, m: int, t: float, gamma: float) -> float:
    """dhel_kcl.md T3a table, code form (typed in from the spec)."""
    x = 2 * m / (m - 1)
    if kernel == "gaussian":
        return -2 + 2 * gamma * math.exp(-t * x)
    if kernel == "log":
        return -gamma * math.log1p(t * x)
    if kernel == "imq":
        return -2 + 2 * gamma * t / math.sqrt(t * t + x)
    return -2 * gamma * x ** (abs(t) / 2)


# ---------------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------------
def test_worked_example():
    example = {"infonce": 0.189339, "simclr": 0.348472, "dcl": -0.874907, "dhel": -1.568054, "dhel2": -1.136109}
    for name, v in example.items():
        assert scf.value(name, 4, 0.5) == pytest.approx(v, abs=5e-7)  # printed with 6 decimals


def test_derived_gram_entry_and_expressions():
    import sympy as sp

    assert sp.simplify(scf.simplex_gram_entry() + 1 / (scf.M - 1)) == 0
    g = scf.simplex_gram(5)
    assert g.rank() == 4 and all(x == 0 for x in g * sp.ones(5, 1))
    m, tau = scf.M, scf.TAU
    spec = {"infonce": sp.log(1 + (m - 1) * sp.exp(-m / (tau * (m - 1)))),
            "dhel2": 2 * sp.log(m - 1) - (m + 1) / (tau * (m - 1))}
    for name, expr in spec.items():
        assert scf.equal(scf.closed_form(name), expr)


@SETTINGS
@given(m=st.integers(2, 9), extra=st.integers(0, 3), tau=st.floats(0.05, 5.0),
       name=st.sampled_from(sorted(LIB)))
def test_closed_form_equals_loss_on_constructed_simplex(m, extra, tau, name):
    """T1: for any M <= d + 1 and tau, the loss at the aligned constructed simplex is the closed form."""
    d = max(m - 1, 1) + extra
    pts = np.vstack([regular_simplex(m, max(d, 1))] * 2)
    lib = LIB[name](m, tau).value(pts)
    # relative to max(|value|, 1/tau): -1/tau cancels against a log-sum-exp of O(1/tau) terms, so the
    # float64 library value carries an absolute round-off ~ eps/tau (InfoNCE at M = 2, tau = 0.05 is ~1e-17)
    scale = max(abs(lib), 1.0 / tau)
    assert abs(lib - scf.value(scf.LOSSES[scf.LOSSES.index(name)], m, tau)) <= 1e-12 * scale
    assert abs(lib - t1(name, m, tau)) <= 1e-12 * scale


@SETTINGS
@given(m=st.integers(2, 8), kernel=st.sampled_from(["gaussian", "log", "imq", "riesz"]),
       t=st.floats(0.3, 4.0), gamma=st.floats(0.5, 20.0), form=st.sampled_from(["code", "paper"]))
def test_kcl_closed_form_equals_loss_on_constructed_simplex(m, kernel, t, gamma, form):
    tk = -min(t / 2.2, 1.8) if kernel == "riesz" else t          # riesz needs -2 < s < 0
    pts = np.vstack([regular_simplex(m, max(m - 1, 2))] * 2)
    with np.errstate(divide="ignore", invalid="ignore"):  # riesz: the (unused) gradient is infinite at V = U
        lib = kcl(m, kernel, tk, gamma, form).value(pts)
    closed = scf.kcl_value(m, kernel, tk, gamma, form)
    if form == "code":
        assert closed == pytest.approx(t3a(kernel, m, tk, gamma), rel=1e-12)
    # riesz: the library forms the alignment distance as 2 - 2 u.u (a few ulps, not 0) and -x^{|s|/2}
    # turns 4e-16 into (4e-16)^{|s|/2} <= 2e-8 per alignment term (dhel_kcl.md §9.5); others: round-off
    tol = 2 * (4e-16) ** (abs(tk) / 2) + 1e-12 * abs(closed) if kernel == "riesz" else 1e-12 * max(1.0, abs(closed))
    assert abs(lib - closed) <= tol


def test_transitive_values_match_library_on_polytopes():
    for pts in (regular_polygon(5), cross_polytope(3), icosahedron()):
        prof, same = inner_product_profile(pts, decimals=12)
        assert same
        z = np.vstack([pts, pts])
        for name, build_loss in LIB.items():
            th = name if name != "dcl-sym" else "dcl-sym"
            for tau in (0.2, 1.0):
                lib = build_loss(pts.shape[0], tau).value(z)
                assert scf.transitive_value(th, prof, tau) == pytest.approx(lib, rel=1e-12, abs=1e-12 / tau)


def test_lemmas():
    report = scf.lemma_report((3,))
    assert all(report.values()), [k for k, v in report.items() if not v]


def test_closed_form_bad_input():
    with pytest.raises(ValueError, match="loss"):
        scf.value("kcl", 4, 0.5)
    with pytest.raises(ValueError, match="instances"):
        scf.value("dhel", 1, 0.5)
    with pytest.raises(ValueError, match="tau"):
        scf.value("dhel", 4, -1.0)
    with pytest.raises(ValueError, match="t"):
        scf.kcl_value(4, "riesz", 1.0)
    with pytest.raises(ValueError, match="kernel"):
        scf.kcl_closed_form("cosine")


# ---------------------------------------------------------------------------------------------
# decoupling (T2)
# ---------------------------------------------------------------------------------------------
@SETTINGS
@given(m=st.integers(2, 10), d=st.integers(2, 6), tau=st.floats(0.05, 2.0), seed=st.integers(0, 10**6),
       kernel=st.sampled_from(["gaussian", "imq", "log"]))
def test_decoupled_losses_never_prefer_misaligned_views(m, d, tau, seed, kernel):
    """Paper forms: at a fixed U, V = U is optimal (L(U, V) >= L(U, U)).  Code forms (an energy on V
    too): L(U, V) >= min(L(U, U), L(V, V)), so an aligned pair always does at least as well."""
    rng = np.random.default_rng(seed)
    u, v = uniform_points(m, d, rng), uniform_points(m, d, rng)
    t = 1.0 / (2 * tau)
    for loss in (dhel(m, tau, "paper"), kcl(m, kernel, t, 4.0, "paper")):
        # 1e-12: round-off of O(1/tau) terms
        assert loss.value(np.vstack([u, v])) >= loss.value(np.vstack([u, u])) - 1e-12 * (1 + 1 / tau)
    for loss in (dhel(m, tau, "code"), kcl(m, kernel, t, 4.0, "code")):
        best_aligned = min(loss.value(np.vstack([u, u])), loss.value(np.vstack([v, v])))
        assert loss.value(np.vstack([u, v])) >= best_aligned - 1e-12 * (1 + 1 / tau)


def test_code_forms_can_prefer_misaligned_views_at_a_fixed_u():
    """Refutation of the fixed-U reading for the code forms: U collapsed at e1, V the triangle."""
    m, tau = 3, 0.5
    u = np.tile([1.0, 0.0], (m, 1))
    v = regular_polygon(3)
    # hand derivation: L(U,U) = 2 log 2 + 1/tau; L(U,V) = 2 log 2 + 1/(2 tau) (mean u.v = 0)
    assert dhel(m, tau, "code").value(np.vstack([u, u])) == pytest.approx(2 * math.log(2) + 1 / tau, rel=1e-14)
    assert dhel(m, tau, "code").value(np.vstack([u, v])) == pytest.approx(2 * math.log(2) + 1 / (2 * tau), rel=1e-14)
    # KCL code, t = 2, gamma = 16: L(U,U) = 2 gamma - 2 = 30; L(U,V) = -2 (1 + 2e^{-6})/3 + 16 (1 + e^{-6})
    loss = kcl(m, "gaussian", 2.0, 16.0)
    assert loss.value(np.vstack([u, u])) == pytest.approx(30.0, rel=1e-14)
    assert loss.value(np.vstack([u, v])) == pytest.approx(-2 * (1 + 2 * math.exp(-6)) / 3 + 16 * (1 + math.exp(-6)),
                                                          rel=1e-12)


# ---------------------------------------------------------------------------------------------
# universal optima (anchors.md §5)
# ---------------------------------------------------------------------------------------------
SPEC_TABLE = {  # anchors.md §5.2: d, N, inner products x multiplicity, design strength
    "icosahedron": (3, 12, {1 / math.sqrt(5): 5, -1 / math.sqrt(5): 5, -1.0: 1}, 5),
    "600-cell": (4, 120, {(1 + math.sqrt(5)) / 4: 12, -(1 + math.sqrt(5)) / 4: 12, 0.5: 20, -0.5: 20,
                          (math.sqrt(5) - 1) / 4: 12, -(math.sqrt(5) - 1) / 4: 12, 0.0: 30, -1.0: 1}, 11),
    "hemicube": (5, 16, {0.2: 10, -0.6: 5}, 3),
    "schlafli": (6, 27, {0.25: 16, -0.5: 10}, 4),
    "e7star": (7, 56, {1 / 3: 27, -1 / 3: 27, -1.0: 1}, 5),
    "e8": (8, 240, {0.5: 56, 0.0: 126, -0.5: 56, -1.0: 1}, 7),
}


@pytest.mark.parametrize("name", sorted(SPEC_TABLE))
def test_universal_optima_constructions(name):
    d, n, profile, strength = SPEC_TABLE[name]
    pts = build(name)
    assert pts.shape == (n, d)
    assert np.max(np.abs(np.linalg.norm(pts, axis=1) - 1)) <= 1e-15
    prof, same = inner_product_profile(pts)
    assert same
    got = {round(v, 9): c for v, c in prof}
    assert got == {round(v, 9): c for v, c in profile.items()}
    # design strength t, and failure at t + 1 (anchors.md §5.1)
    assert design_strength(pts, max_t=strength + 1) == strength
    # the 3-design identities sum_y <x,y>^k = -1, N/d - 1, -1 for k = 1, 2, 3 (when t >= 3)
    g = pts @ pts.T - np.eye(n)
    if strength >= 3:
        assert np.allclose(g.sum(1), -1) and np.allclose((g**2).sum(1), n / d - 1) and np.allclose((g**3).sum(1), -1)
    assert UNIVERSAL_OPTIMA[name].strength == strength


@pytest.mark.parametrize("name", ["icosahedron", "600-cell", "e8"])
def test_profile_energy_and_criticality(name):
    pts = build(name)
    n = pts.shape[0]
    prof, _ = inner_product_profile(pts, decimals=12)
    iu = np.triu_indices(n, 1)
    r2 = np.maximum(2 - 2 * (pts @ pts.T)[iu], 0)
    for kern in (Gaussian(2.0), Riesz(1.0)):
        direct = float(np.sum(kern.value(1 - r2 / 2)))
        formula = profile_energy(prof, n, lambda x, k=kern: k.value(1 - x / 2))
        assert formula == pytest.approx(direct, rel=1e-12)  # anchors.md §5.4 (i)
        # (ii): a critical point: tangential gradient <= 1e-10 x the Euclidean gradient
        with np.errstate(divide="ignore"):  # the diagonal (r = 0) is dropped next
            w = kern.deriv(pts @ pts.T)
        np.fill_diagonal(w, 0.0)
        grad = w @ pts
        tang = grad - pts * np.sum(grad * pts, axis=1, keepdims=True)
        assert np.linalg.norm(tang) <= 1e-10 * np.linalg.norm(grad)


def test_build_bad_name():
    with pytest.raises(ValueError, match="name"):
        build("dodecahedron")
    with pytest.raises(ValueError, match="profile"):
        profile_energy([(0.0, 2)], 5, np.exp)


# ---------------------------------------------------------------------------------------------
# CLI and fast checks
# ---------------------------------------------------------------------------------------------
def _json(capsys, argv):
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def test_cli_theory_uniform(capsys):
    code, out = _json(capsys, ["theory", "uniform", "--dim", "3", "--tau", "0.5", "--json"])
    assert code == 0
    # asymptotic_uniform_anchors.csv, d = 3 (1e-10 abs, the table's tolerance)
    assert out["infonce_limit"] == pytest.approx(-1.404779807946, abs=1e-10)
    assert out["uniformity_t2"] == pytest.approx(-2.079777060588, abs=1e-10)
    assert out["riesz_s1_mean"] == pytest.approx(1.0, abs=1e-10)
    code, out = _json(capsys, ["theory", "uniform", "--dim", "16", "--instances", "64", "--json"])
    assert code == 0 and set(out["finite_batch"]) == {"infonce", "simclr", "dcl", "dhel", "dhel2"}
    code, out = _json(capsys, ["theory", "uniform", "--dim", "1", "--json"])
    assert code == 2 and "dim" in out["error"]


def test_cli_theory_simplex(capsys):
    code, out = _json(capsys, ["theory", "simplex", "--loss", "simclr", "--instances", "4", "--tau", "0.5", "--json"])
    assert code == 0 and out["value"] == pytest.approx(0.348472, abs=5e-7)
    code, out = _json(capsys, ["theory", "simplex", "--loss", "kcl", "--instances", "5", "--t", "2", "--gamma", "16",
                               "--dim", "3", "--json"])
    assert code == 0 and out["value"] == pytest.approx(-2 + 32 * math.exp(-5.0), rel=1e-12)
    assert out["attained_in_dim"] is False
    code, out = _json(capsys, ["theory", "simplex", "--loss", "dhel", "--instances", "1", "--json"])
    assert code == 2 and "instances" in out["error"]


@pytest.mark.parametrize("cid", ["DHEL-C4", "DHEL-C13", "DHEL-C17", "DHEL-C19", "DHEL-C25", "DHEL-C27", "DHEL-C29"])
def test_fast_checks_pass(cid):
    (chk,) = select("dhel_kcl", [cid])
    res = run_one(chk, quick=True)
    assert res.status == "pass", res.detail
