"""``collapsekit solve`` and ``collapsekit energy`` end to end (through main(), no subprocess).

Expected values: the Thomson table (shared/data/thomson_energies.csv, rule |E - U(N)| <= 1e-8,
anchors.md §2.3) and the closed forms of anchors.md §8.2 and prototypes.md T2.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from paper_checks.cli import build_parser, main
from paper_checks.reference_data import thomson_table

THOMSON_TOL = 1e-8  # anchors.md §2.3: covers the 5e-10 rounding and the float64 error
COS_TOL = 1e-6  # converged to gradient 1e-10: positions to ~1e-10/lambda_min (anchors.md §2.5)


def run_json(capsys, argv: list[str]) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------------------------------------
# energy
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [5, 12, 17, 24, 30])
def test_energy_reproduces_the_thomson_table(capsys, n):
    """anchors.md §2.6: for N <= 30 (not 16, 22) essentially every random start succeeds, so 8
    seeded restarts are ample (the spec allows up to 20)."""
    code, out = run_json(capsys, ["energy", "--kernel", "riesz", "--s", "1", "--n", str(n), "--dim", "3",
                                  "--restarts", "8", "--seed", "0"])
    table = thomson_table()[n]
    assert code == 0
    assert table - THOMSON_TOL <= out["energy"] <= table + THOMSON_TOL
    assert out["reference_table"] == "thomson_energies.csv" and out["matches_reference"]
    assert out["restarts"] == 8 and 1 <= out["hits"] <= 8 and out["seconds"] >= 0
    pts = np.asarray(out["points"])
    assert pts.shape == (n, 3) and np.max(np.abs(np.linalg.norm(pts, axis=1) - 1)) <= 1e-12


def test_energy_simplex_reference_and_text_output(capsys):
    code = main(["energy", "--kernel", "gaussian", "--t", "1.5", "--n", "4", "--dim", "5", "--restarts", "2"])
    text = capsys.readouterr().out
    assert code == 0 and "simplex value" in text and "energy of 4 points" in text
    code, out = run_json(capsys, ["energy", "--kernel", "gaussian", "--t", "1.5", "--n", "4", "--dim", "5",
                                  "--restarts", "2"])
    # anchors.md §3.3: C(N,2) exp(-2tN/(N-1)) for the Gaussian kernel
    assert out["energy"] == pytest.approx(6 * math.exp(-2 * 1.5 * 4 / 3), rel=1e-10)


def test_energy_save_and_determinism(capsys, tmp_path):
    path = tmp_path / "e.npz"
    argv = ["energy", "--n", "9", "--restarts", "3", "--seed", "7", "--strategy", "basinhopping"]
    _, a = run_json(capsys, [*argv, "--save", str(path)])
    _, b = run_json(capsys, argv)
    assert a["all_values"] == b["all_values"] and a["points"] == b["points"]
    data = np.load(path)
    assert np.array_equal(data["points"], np.asarray(a["points"]))
    assert json.loads(str(data["meta"]))["strategy"] == "basinhopping"


@pytest.mark.parametrize("argv,match", [
    (["--n", "1"], "n must"),
    (["--n", "5", "--dim", "1"], "dim must"),
    (["--n", "5", "--kernel", "gaussian", "--s", "2"], "s applies only"),
    (["--n", "5", "--kernel", "riesz", "--s", "-1"], "s must"),
    (["--n", "5", "--restarts", "0"], "restarts must"),
    (["--n", "5", "--time-limit", "-2"], "time_limit must"),
    (["--n", "5", "--strategy", "basinhopping", "--hop-fraction", "2"], "hop_fraction must"),
])
def test_energy_invalid_input_exits_2(capsys, argv, match):
    code, out = run_json(capsys, ["energy", *argv])
    assert code == 2 and match in out["error"]


# ---------------------------------------------------------------------------------------------
# solve
# ---------------------------------------------------------------------------------------------
def test_solve_supcon_gives_the_class_collapsed_simplex(capsys):
    """anchors.md §8.2: SupCon L_out minimum log(m - 1 + (C - 1) m e^{-C/(tau(C-1))}), m = 5, C = 4,
    class means at a regular simplex (cosines -1/(C-1) = -1/3), within-class variance 0."""
    code, out = run_json(capsys, ["solve", "--loss", "supcon", "--classes", "4", "--per-class", "5", "--dim", "8",
                                  "--tau", "0.5", "--restarts", "3"])
    m, c, tau = 5, 4, 0.5
    expected = math.log(m - 1 + (c - 1) * m * math.exp(-c / (tau * (c - 1))))
    assert code == 0 and out["success"]
    assert out["loss"] == pytest.approx(expected, rel=1e-10)
    assert out["within_var"] <= 1e-12 and out["total_var"] == pytest.approx(1.0, abs=1e-9)
    assert len(out["class_mean_cosines"]) == 6
    assert np.allclose(out["class_mean_cosines"], -1 / 3, atol=COS_TOL)
    assert out["effective_rank"] == pytest.approx(3.0, abs=1e-6)  # simplex of 4 means spans R^3
    assert out["min_view_cosine"] is None and out["grad_norm"] <= out["grad_tol"]
    for key in ("between_var", "restarts", "hits", "seconds", "strategy", "message"):
        assert key in out


def test_solve_nonnegative_imbalanced_supcon_is_an_orthogonal_frame(capsys, tmp_path):
    """prototypes.md T2 / C3 (Kini, UFM+): n = [10, 10, 2, 2], tau = 0.1, d = 8."""
    path = tmp_path / "ufm.npz"
    code, out = run_json(capsys, ["solve", "--loss", "supcon", "--class-sizes", "10,10,2,2", "--dim", "8",
                                  "--tau", "0.1", "--nonnegative", "--restarts", "1", "--save", str(path)])
    sizes = np.repeat([10, 10, 2, 2], [10, 10, 2, 2]).astype(float)
    expected = np.mean(np.log(sizes - 1 + (24 - sizes) * math.exp(-10.0)))
    assert code == 0 and out["nonnegative"] and out["class_sizes"] == [10, 10, 2, 2]
    assert out["loss"] == pytest.approx(expected, rel=1e-10)
    assert np.allclose(out["class_mean_cosines"], 0.0, atol=1e-8)  # prototypes.md C3: Delta_OF < 1e-8
    data = np.load(path)
    assert data["points"].shape == (24, 8) and np.min(data["points"]) >= 0
    assert np.array_equal(data["labels"], np.repeat([0, 1, 2, 3], [10, 10, 2, 2]))


def test_solve_simclr_with_tied_views(capsys):
    """anchors.md §8.2 NT-Xent: log(1 + (2n - 2) e^{-n/(tau(n-1))}); tied views coincide."""
    code, out = run_json(capsys, ["solve", "--loss", "simclr", "--instances", "4", "--dim", "3", "--tau", "0.5",
                                  "--tied-views", "--restarts", "2"])
    assert code == 0 and out["views"] == 2 and out["n_free"] == 4 and out["n_rows"] == 8
    assert out["loss"] == pytest.approx(math.log(1 + 6 * math.exp(-4 / 1.5)), rel=1e-10)
    assert out["min_view_cosine"] == pytest.approx(1.0, abs=1e-12)


def test_solve_text_mode_and_determinism(capsys):
    argv = ["solve", "--loss", "dcl", "--instances", "3", "--dim", "3", "--restarts", "2", "--seed", "3"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "dcl on 6 rows in R^3" in text and "restarts reached the best value" in text
    _, a = run_json(capsys, argv)
    _, b = run_json(capsys, argv)
    assert a["all_values"] == b["all_values"] and a["loss"] == b["loss"]


def test_solve_with_prototypes(capsys):
    code, out = run_json(capsys, ["solve", "--loss", "protosupcon", "--classes", "3", "--per-class", "2",
                                  "--dim", "4", "--prototypes", "etf", "--prototype-copies", "2", "--restarts", "1"])
    # prototypes.md P1: with ETF prototypes the class means align with the simplex (-1/(K-1))
    assert code == 0 and out["n_rows"] == 6
    assert np.allclose(out["class_mean_cosines"], -0.5, atol=1e-4)


@pytest.mark.parametrize("argv,match", [
    (["--loss", "supcon", "--dim", "4"], "needs --classes"),
    (["--loss", "supcon", "--class-sizes", "3,a", "--dim", "4"], "class-sizes must"),
    (["--loss", "supcon", "--class-sizes", "3,3", "--per-class", "2", "--dim", "4"], "exclusive"),
    (["--loss", "supcon", "--classes", "3", "--class-sizes", "3,3", "--dim", "4"], "classes (3) must"),
    (["--loss", "supcon", "--classes", "2", "--per-class", "0", "--dim", "4"], "per-class must"),
    (["--loss", "supcon", "--classes", "2", "--per-class", "2", "--dim", "0"], "dim must"),
    (["--loss", "supcon", "--classes", "2", "--per-class", "2", "--dim", "3", "--tau", "0"], "tau must"),
    (["--loss", "simclr", "--dim", "3"], "needs --instances"),
    (["--loss", "simclr", "--instances", "3", "--views", "3", "--dim", "3"], "views must be 2"),
    (["--loss", "riesz", "--instances", "1", "--dim", "3"], "instances must"),
    (["--loss", "supcon", "--classes", "2", "--per-class", "3", "--views", "2", "--tied-views", "--dim", "3",
      "--restarts", "0"], "restarts must"),
])
def test_solve_invalid_input_exits_2(capsys, argv, match):
    code, out = run_json(capsys, ["solve", *argv])
    assert code == 2 and match in out["error"]


@pytest.mark.parametrize("command", ["solve", "energy"])
def test_every_option_documents_its_default(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    for action in sub._actions:
        if action.dest == "help" or action.required:
            continue
        assert "default" in (action.help or ""), f"{command} {action.option_strings} help lacks its default"
