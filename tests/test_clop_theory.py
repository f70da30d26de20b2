"""theory/clop.py: the reconstructed CLOP lemmas and thresholds (clop.md §4), proved with sympy.

Expected values are the spec's closed forms (§4.3-4.6, §8), never outputs of the code under test.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_checks.cli import main
from theory import clop as th

ROOT = Path(__file__).resolve().parents[1]


# -------------------------------------------------------------------------------- lemmas
@pytest.mark.parametrize("dim,form", [(None, "general"), (2, "general"), (3, "linear"), (2, "exp-quadratic")])
def test_lemma_a_orthogonality(dim, form):
    res = th.lemma_a(dim, form)
    assert res.holds and res.residual == "0"
    assert "[REC]" in res.provenance and "[DER]" in res.provenance


@pytest.mark.parametrize("dim,form", [(None, "general"), (2, "general"), (2, "linear")])
def test_lemma_b_norm_growth(dim, form):
    res = th.lemma_b(dim, form)
    assert res.holds and res.residual == "0"


def test_lemma_c_angular_step():
    items = th.lemma_c()
    assert len(items) == 3 and all(i.holds for i in items)


def test_lemma_d_stationarity_and_negative_control():
    assert all(i.holds for i in th.lemma_d(4, 2))
    # the same computation with a point off the line must leave a residual (the test is not vacuous)
    assert not th.lemma_d(4, 2, control=True)[0].holds


def test_lemma_e_clop_breaks_stationarity():
    assert all(i.holds for i in th.lemma_e())


def test_invalid_arguments_name_the_argument():
    with pytest.raises(ValueError, match="form"):
        th.lemma_a(3, "cubic")
    with pytest.raises(ValueError, match="dim"):
        th.lemma_a(7)
    with pytest.raises(ValueError, match="n_points"):
        th.lemma_d(1)


# -------------------------------------------------------------------------------- values at C1/C2
def test_collapsed_ntxent_value_symbolic():
    assert th.collapsed_ntxent_symbolic().holds


@pytest.mark.parametrize("b", [2, 5, 8, 16])
def test_c1_values_of_the_conventions(b):
    v = th.c1_values(b)
    n = 2 * b
    assert v["ntxent"] == pytest.approx(math.log(n - 1), abs=1e-15)
    assert v["supcon_out"] == pytest.approx(math.log(n - 1), abs=1e-15)
    assert v["dcl"] == pytest.approx(math.log(n - 2), abs=1e-15)
    assert v["self_in_denominator"] == pytest.approx(math.log(n), abs=1e-15)
    assert v["cross_view"] == pytest.approx(math.log(b), abs=1e-15)
    assert v["repo_supcon"] == pytest.approx(math.log(b), abs=1e-15)  # no labels: P_a = {a}
    assert v["ntxent_sum"] == pytest.approx(n * math.log(n - 1), rel=1e-15)


def test_b8_worked_example():
    # clop.md §4.4 worked example: B = 8 gives log 15 = 2.70805
    assert th.c1_values(8)["ntxent"] == pytest.approx(2.70805, abs=5e-6)


def test_repo_supcon_with_labels():
    # B = 4, labels (0, 0, 1, -1): |P_a| = 2, 2, 1, 1 -> (1/4)(2 log 2 + 2 log 4)
    got = th.c1_values(4, [0, 0, 1, -1])["repo_supcon"]
    assert got == pytest.approx(0.25 * (2 * math.log(2) + 2 * math.log(4)), abs=1e-15)


def test_c2_all_equal_signs_is_c1():
    # all signs equal is C1: the §4.4 formula must reduce to log(2B - 1) for every tau
    for tau in (0.1, 0.5, 2.0):
        assert th.c2_loss_value([1.0] * 10, tau) == pytest.approx(math.log(9), abs=1e-13)


def test_c2_rejects_bad_signs():
    with pytest.raises(ValueError, match="signs"):
        th.c2_loss_value([1.0, 0.5, 1.0, 1.0], 0.5)
    with pytest.raises(ValueError, match="tau"):
        th.c2_loss_value([1.0, -1.0, 1.0, 1.0], 0.0)


def test_aligned_pairs_monotone():
    res = th.aligned_pairs_monotone()
    assert res["positive"] is True


def test_etf_prototype_facts():
    assert all(i.holds for i in th.etf_prototype_facts())


def test_never_used_fraction():
    assert th.never_used_fraction(100, 0.1, 20) == pytest.approx(0.9**20, rel=1e-15)
    assert th.never_used_fraction(100, 0.1, 200) < 1e-9  # spec §3.3: about 7e-10
    with pytest.raises(ValueError, match="fraction"):
        th.never_used_fraction(100, 0.0, 20)


# -------------------------------------------------------------------------------- threshold maps
@pytest.mark.parametrize("kind,deriv,crit,series", [
    ("fixed", "1 - a", 2.0, "3*theta**3 - theta"),
    ("mutual", "1 - 2*a", 1.0, "theta**3 - theta"),
    ("repel-fixed", "1 - a", 2.0, "3*eps**3 - eps"),
    ("repel-mutual", "1 - 2*a", 1.0, "eps**3 - eps"),
])
def test_threshold_maps_match_spec(kind, deriv, crit, series):
    tm = th.threshold_map(kind)
    assert tm.derivative_at_0 == deriv
    assert tm.critical == crit
    assert tm.series_at_critical.startswith(series)
    assert f"Interval.open(0, {int(crit)})" in tm.stability_condition
    assert "reconstruction" in tm.provenance


def test_raw_norm_threshold():
    assert th.raw_norm_threshold()["eta_max"] == "2*r**2/k"


@settings(max_examples=25, deadline=None)
@given(a=st.floats(2.001, 20.0), moving=st.sampled_from([1, 2]))
def test_two_cycle_amplitude_solves_its_equation(a, moving):
    if moving == 2:
        a = a / 2.0 + 0.0005
    t = th.two_cycle_amplitude(a, moving)
    assert 0.0 < t <= math.pi / 2
    # Brent to xtol 1e-16 on a function with slope O(1): residual at float64 round-off
    assert abs(2 * t - moving * math.atan(a * math.sin(t))) < 1e-13


def test_two_cycle_requires_supercritical_step():
    with pytest.raises(ValueError, match="eta_k"):
        th.two_cycle_amplitude(1.9, 1)
    with pytest.raises(ValueError, match="eta_k"):
        th.two_cycle_amplitude(0.9, 2)


def test_infonce_coefficients():
    res = th.infonce_coefficients(5)
    assert all(v.holds for v in res.values())


def test_clop_cosine_threshold():
    # clop.md §4.6 / CLOP-T6: eta < 4 |S_b| / lam = 256 for |S_b| = 64, lam = 1
    assert th.clop_cosine_threshold(1.0, 64) == 256.0
    assert th.clop_cosine_threshold(2.0, 10, norm=2.0) == 4 * 10 * 4 / 2.0


# -------------------------------------------------------------------------------- lr bound
def test_lr_bound_unit_case_is_two():
    # reviewers' "about 2": unit norm, unit coefficient (tau = 1, one term)
    out = th.lr_bound("infonce", 1.0)
    assert out["eta_max"] == 2.0 and out["reduction"] == "sum"
    assert any("reconstruction" in a for a in out["assumptions"])


def test_lr_bound_mean_reduction_and_norm():
    out = th.lr_bound("infonce", 0.5, batch=8, norm=2.0)
    # k = 1/(N tau) = 1/8, eta_max = 2 r^2 / k = 2 * 4 * 8
    assert out["coefficient_k"] == pytest.approx(1 / 8)
    assert out["eta_max"] == pytest.approx(64.0)
    assert out["at_C1"]["P"] == pytest.approx(1 / 15)
    assert out["at_C1"]["w"] == pytest.approx(1 / 14)


def test_lr_bound_supcon_classes():
    out = th.lr_bound("supcon", 0.5, batch=6, classes=3)
    # N = 12, |P(i)| = 12/3 - 1 = 3, P = 3/11
    assert out["at_C1"]["P"] == pytest.approx(3 / 11)


@pytest.mark.parametrize("kwargs,arg", [
    ({"loss": "dcl", "tau": 1.0}, "loss"),
    ({"loss": "infonce", "tau": 0.0}, "tau"),
    ({"loss": "infonce", "tau": 1.0, "reduction": "mean"}, "batch"),
    ({"loss": "infonce", "tau": 1.0, "batch": 1}, "batch"),
    ({"loss": "infonce", "tau": 1.0, "classes": 2}, "classes"),
    ({"loss": "supcon", "tau": 1.0, "batch": 5, "classes": 3}, "classes"),
    ({"loss": "infonce", "tau": 1.0, "norm": -1.0}, "norm"),
])
def test_lr_bound_errors(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        th.lr_bound(**kwargs)


def test_cli_lr_bound_json(capsys):
    rc = main(["theory", "lr-bound", "--loss", "infonce", "--tau", "0.5", "--batch", "8", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["eta_max"] == pytest.approx(16.0)
    assert isinstance(out["assumptions"], list) and out["assumptions"]
    assert "reconstruction" in out["provenance"]


def test_cli_lr_bound_error_exit_2(capsys):
    rc = main(["theory", "lr-bound", "--loss", "infonce", "--tau", "1", "--reduction", "mean", "--json"])
    assert rc == 2
    assert "batch" in json.loads(capsys.readouterr().out)["error"]


def test_theory_does_not_import_solvers():
    tree = ast.parse((ROOT / "theory" / "clop.py").read_text())
    names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not any(str(m).split(".")[0] in ("solvers", "paper_checks", "figures") for m in names)
