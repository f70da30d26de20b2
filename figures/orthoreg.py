"""Figures of the orthogonality-regularisation paper at toy scale (spec ``orthoreg.md`` §4.2-4.3).

- ``orthoreg_toy_spectra``: the toy analogue of the paper's Fig. 2 on DirectCLR case 2 (two-layer
  linear encoder, weak augmentation, seed 0): normalised eigenvalue spectra (log scale, divided by
  the largest) of the two weight matrices (small Gram), of the hidden features h = W1 x and of the
  embeddings z = W2 W1 x, for the baseline, + SO (gamma = 0.01) and + a representation-whitening
  term (VICReg variance and covariance on the output, coefficients 1 and 1).
- ``orthoreg_erank_vs_gamma``: effective rank (covariance eigenvalues) against gamma for case 2
  (SO and SRIP) and case 1 (SO), per-seed markers and the seed mean, the baseline as a dashed
  line; and the final InfoNCE loss (excluding gamma R) against gamma, i.e. the cost of OR.

Runs go through the sweep engine (experiment ``orthoreg-toy`` of
:mod:`solvers.orthoreg_experiments`) with a resumable JSON-lines store next to the figures, so a
second call redraws without re-training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from solvers import orthoreg_experiments as ex
from solvers.sweeps import sweep_records

from .registry import figure
from .style import new_figure, save

PAPER = "orthoreg"
STORE = "orthoreg_toy.jsonl"
SPECTRA_ARMS = (  # (label, colour, grid)
    ("baseline", "C3", {"gamma": [0.0]}),
    ("+ SO ($\\gamma$ = 0.01)", "C0", {"gamma": [0.01]}),
    ("+ VICReg var/cov on z", "C2", {"gamma": [0.0], "var_coef": [1.0], "cov_coef": [1.0]}),
)
SRIP_GAMMAS = (0.01, 0.1, 1.0)


def _records(out_dir: Path, grid: dict, seeds: list[int]) -> list[dict]:
    recs = sweep_records("orthoreg-toy", grid, seeds, store=out_dir / STORE)
    return [r["result"] for r in recs]


def _norm(values) -> np.ndarray:
    v = np.clip(np.asarray(values, dtype=float), 0.0, None)
    v = np.sort(v)[::-1]
    return v / v[0]


@figure("orthoreg_toy_spectra", PAPER,
        "DirectCLR case 2 (seed 0): normalised eigenvalue spectra (log scale) of W1, W2 (small "
        "Gram), the hidden features and the embeddings for baseline, + SO and + VICReg whitening")
def toy_spectra(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    fig, axes = new_figure(4, width=2.6, height=2.5)
    k = np.arange(1, 17)
    for label, colour, grid in SPECTRA_ARMS:
        (rec,) = _records(out_dir, {"case": [2], **grid}, [0])
        panels = (rec["weight_spectra"][0], rec["weight_spectra"][1], rec["hidden_spectrum"],
                  rec["spectrum"])
        for ax, values in zip(axes[0], panels, strict=True):
            ax.plot(k, _norm(values), "o-", ms=2.5, lw=1, color=colour,
                    label=f"{label} (erank {rec['erank']:.1f})" if ax is axes[0, 3] else label)
    (base,) = _records(out_dir, {"case": [2], "gamma": [0.0]}, [0])
    for ax in axes[0, 2:]:
        ax.plot(k, _norm(base["input_spectrum"]), ":", color="0.5", lw=1, label="input x")
    titles = ("weights $W_1$ (eig of Gram)", "weights $W_2$ (eig of Gram)",
              "hidden $h = W_1 x$ (cov)", "embedding $z = W_2 W_1 x$ (cov)")
    for ax, title in zip(axes[0], titles, strict=True):
        ax.set(yscale="log", xlabel="rank k", title=title)
    axes[0, 0].set_ylabel(r"$\lambda_k / \lambda_1$")
    fig.subplots_adjust(wspace=0.35)
    axes[0, 0].legend(loc="lower left")
    axes[0, 3].legend(loc="lower left", fontsize=6)
    return save(fig, out_dir, "orthoreg_toy_spectra", formats)


def _by_gamma(recs: list[dict], key: str) -> dict[float, list[float]]:
    out: dict[float, list[float]] = {}
    for r in recs:
        out.setdefault(float(r["gamma"]), []).append(float(r[key]))
    return out


def _plot_vs_gamma(ax, recs: list[dict], key: str, colour: str, label: str, marker: str) -> None:
    by = _by_gamma(recs, key)
    gs = sorted(g for g in by if g > 0)
    if 0.0 in by:
        ax.axhline(float(np.mean(by[0.0])), color=colour, ls="--", lw=0.8)
    for g in gs:
        ax.plot([g] * len(by[g]), by[g], marker, color=colour, ms=3, alpha=0.5)
    ax.plot(gs, [float(np.mean(by[g])) for g in gs], "-", color=colour, lw=1.2, label=label)


@figure("orthoreg_erank_vs_gamma", PAPER,
        "Effective rank (covariance eigenvalues) and final InfoNCE against gamma: DirectCLR case 2 "
        "(SO, SRIP) and case 1 (SO); per-seed markers, seed mean (line), baseline (dashed)")
def erank_vs_gamma(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    seeds = [0] if quick else [0, 1, 2, 3]
    c2_so = _records(out_dir, {"case": [2], "gamma": list(ex.CASE2_GAMMAS)}, seeds)
    c2_srip = _records(out_dir, {"case": [2], "gamma": list(SRIP_GAMMAS),
                                 "regulariser": ["srip"]}, seeds)
    c1 = _records(out_dir, {"case": [1], "gamma": list(ex.CASE1_GAMMAS)}, seeds)
    fig, axes = new_figure(3, width=3.0, height=2.6)
    a, b, c = axes[0]
    _plot_vs_gamma(a, c2_so, "erank", "C0", "SO", "o")
    _plot_vs_gamma(a, c2_srip, "erank", "C1", "SRIP (exact)", "s")
    a.axhline(16, color="0.6", lw=0.6)
    a.set(xscale="log", xlabel=r"$\gamma$", ylabel="effective rank (cov)",
          title="case 2: two-layer linear, weak aug.")
    a.legend(title="dashed: baseline", loc="lower right")
    _plot_vs_gamma(b, c1, "erank", "C0", "SO", "o")
    b.set(xscale="log", xlabel=r"$\gamma$", ylabel="effective rank (cov)",
          title="case 1: linear, strong aug.")
    b.legend(title="dashed: baseline", loc="upper left")
    _plot_vs_gamma(c, c2_so, "final_loss", "C0", "case 2, SO", "o")
    _plot_vs_gamma(c, c1, "final_loss", "C3", "case 1, SO", "^")
    c.set(xscale="log", yscale="log", xlabel=r"$\gamma$",
          ylabel=r"final InfoNCE (excl. $\gamma R$)", title="loss cost of OR")
    c.legend(title="dashed: baseline", loc="upper left")
    fig.subplots_adjust(wspace=0.45)
    fig.suptitle(f"seeds {seeds}; 10,000 SGD steps per run", fontsize=8, y=1.04)
    return save(fig, out_dir, "orthoreg_erank_vs_gamma", formats)
