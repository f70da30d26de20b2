"""The collapsekit CLI end to end: check, figures, loss (subprocess-free, through main())."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from paper_checks.cli import build_parser, main
from solvers.configurations import regular_simplex


def run_json(capsys, argv: list[str]) -> tuple[int, dict]:
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert "usage" in capsys.readouterr().out


def test_check_anchors_passes_and_writes_reports(capsys, tmp_path):
    md = tmp_path / "report.md"
    code, payload = run_json(capsys, ["check", "--paper", "anchors", "--json", "-", "--markdown", str(md)])
    assert code == 0
    assert payload["counts"]["fail"] == 0 and payload["counts"]["pass"] >= 5
    assert all(r["provenance"] and r["spec_tag"] for r in payload["results"])
    assert "ANCH-L1" in md.read_text()


def test_check_unknown_paper_is_a_clear_error(capsys):
    assert main(["check", "--paper", "nonexistent"]) == 2
    assert "paper must be one of" in capsys.readouterr().err


def test_loss_command_matches_closed_form(capsys, tmp_path):
    n, tau = 4, 0.5
    pts = np.vstack([regular_simplex(n, 3)] * 2)
    np.save(tmp_path / "p.npy", pts)
    code, payload = run_json(capsys, ["loss", "--loss", "simclr", "--tau", str(tau), "--points",
                                      str(tmp_path / "p.npy"), "--json"])
    assert code == 0
    expected = math.log1p((2 * n - 2) * math.exp(-n / (tau * (n - 1))))  # anchors.md §8.2
    assert payload["value"] == pytest.approx(expected, rel=1e-12)
    # the aligned simplex is a critical point: Riemannian gradient ~ round-off
    assert payload["grad_norm"] < 1e-12


def test_loss_command_supervised_needs_labels(capsys, tmp_path):
    np.save(tmp_path / "p.npy", np.random.default_rng(0).standard_normal((6, 3)))
    code, payload = run_json(capsys, ["loss", "--loss", "supcon", "--points", str(tmp_path / "p.npy"), "--json"])
    assert code == 2 and "labels" in payload["error"]


def test_loss_command_rejects_bad_tau(capsys, tmp_path):
    np.save(tmp_path / "p.npy", np.random.default_rng(0).standard_normal((6, 3)))
    code, payload = run_json(capsys, ["loss", "--loss", "dcl", "--tau", "-1", "--points",
                                      str(tmp_path / "p.npy"), "--json"])
    assert code == 2 and "tau" in payload["error"]


def test_figures_command_writes_files(capsys, tmp_path):
    code, payload = run_json(capsys, ["figures", "--paper", "anchors", "--out", str(tmp_path), "--format", "png",
                                      "--quick", "--json"])
    assert code == 0
    files = [f for fig in payload["figures"] for f in fig["files"]]
    assert files and all((tmp_path / f.split("/")[-1]).stat().st_size > 1000 for f in files)


def test_loss_command_torch_backend_equals_numpy(capsys, tmp_path):
    """The torch path (blockwise, float64) gives the numpy reference value to round-off."""
    pytest.importorskip("torch")
    pts = np.random.default_rng(3).standard_normal((12, 5))
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    np.save(tmp_path / "p.npy", pts)
    np.save(tmp_path / "l.npy", labels)
    base = ["loss", "--loss", "supcon", "--tau", "0.3", "--points", str(tmp_path / "p.npy"),
            "--labels", str(tmp_path / "l.npy"), "--json"]
    _, ref = run_json(capsys, base)
    code, tor = run_json(capsys, base + ["--backend", "torch", "--block", "5"])
    assert code == 0 and tor["torch"]["mode"] == "blockwise"
    # 1e-10: the cross-check tolerance of the torch path (float64, different summation order)
    assert tor["value"] == pytest.approx(ref["value"], rel=1e-10)
    assert tor["grad_norm"] == pytest.approx(ref["grad_norm"], rel=1e-10)


def test_solve_with_minibatches(capsys):
    """`solve --batches`: the objective is the sum over batches of SupCon summed over anchors.

    With the single full batch it is N times the closed form of anchors.md §8.2 at the collapsed
    simplex, Kini's binding condition holds, and the classes collapse (prototypes.md T1/T3)."""
    code, payload = run_json(capsys, ["solve", "--loss", "supcon", "--class-sizes", "3,3", "--dim", "3",
                                      "--tau", "0.5", "--batches", "full", "--restarts", "2", "--json"])
    assert code == 0
    # N = 6 anchors, C = 2 classes of m = 3: 6 log(m - 1 + (C - 1) m e^{-C/(tau (C - 1))})
    expected = 6 * math.log(2 + 3 * math.exp(-4.0))
    # optimiser stopping rule: Riemannian gradient < 1e-10, so the value is exact to ~1e-12
    assert payload["loss"] == pytest.approx(expected, rel=1e-10)
    assert payload["minibatch"]["binding_condition"] is True
    assert payload["within_var"] < 1e-12
    # pairs of one sample per class have no positive: such batches are reported as empty
    code, payload = run_json(capsys, ["solve", "--loss", "supcon", "--class-sizes", "3,3", "--dim", "3",
                                      "--tau", "0.5", "--batches", "random:2x3", "--restarts", "2", "--json"])
    assert code == 0 and payload["minibatch"]["batches"] == 9
