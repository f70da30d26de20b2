"""Figures of the CLOP paper (spec ``clop.md`` §6.4, §6.2 F2, §4.5).

- ``clop_lr_sweep``: the encoder learning-rate sweep (§6.3-6.4), arms A (NT-Xent) and B
  (+ cosine CLOP): effective rank, mean |cos| and L_final against eta on a log axis, per-seed
  markers and the per-arm median; also writes the CSV of §6.4.  Runs go through the sweep engine
  (experiment ``clop-encoder``) with a resumable store next to the figure, so a second call redraws
  without re-training.
- ``clop_lambda_geometry``: F2, class-mean geometry of SupCon + lam CLOP on free points against
  lam: inter-class cosine (simplex -1/(C-1) -> frame 0), erank of the class means, cosine of the
  class means with the prototypes.
- ``clop_gd_maps``: the threshold maps T1/T2 (§4.5) just below and above the threshold, and the
  iterates' amplitude against eta k with the 2-cycle theta* of :mod:`theory.clop`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from solvers.encoder_experiment import ETA_GRID
from solvers.gd_maps import iterate_map
from solvers.gd_maps_experiments import F2_LAMBDAS, f2_run
from solvers.sweeps import sweep_records
from theory.clop import two_cycle_amplitude

from .registry import figure
from .style import new_figure, plt, save

PAPER = "clop"
CSV_FIELDS = ("arm", "lam", "fraction", "distance", "seed", "eta", "erank", "mean_abs_cos", "final_loss",
              "delta_loss", "mean_norm", "w2_norm", "status")
ARM_STYLE = {"A": ("C3", "A: NT-Xent"), "B": ("C0", "B: NT-Xent + CLOP (cosine, lam = 1)")}


def encoder_rows(out_dir: Path, quick: bool) -> list[dict]:
    """Rows of the §6.4 sweep (arms A, B; seeds 0-3 quick, 0-7 full), resumable store in out_dir."""
    seeds = list(range(4 if quick else 8))
    recs = sweep_records("clop-encoder", {"eta": list(ETA_GRID), "arm": ["A", "B"]}, seeds,
                         store=out_dir / "clop_lr_sweep.jsonl")
    return [r["result"] for r in recs]


def write_csv(rows: list[dict], path: Path) -> Path:
    """The output CSV of clop.md §6.4."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


@figure("clop_lr_sweep", PAPER,
        "Encoder learning-rate sweep (clop.md §6.4): effective rank, mean |cos| and final NT-Xent against eta "
        "(log axis) for NT-Xent alone and with CLOP, per seed and median; collapsed runs sit at log(2B - 1)")
def lr_sweep(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    rows = encoder_rows(out_dir, quick)
    b = 120
    fig, axes = plt.subplots(3, 1, figsize=(4.6, 6.6), sharex=True)
    keys = (("erank", "effective rank (M1)"), ("mean_abs_cos", "mean |cos| (M2)"),
            ("final_loss", r"final NT-Xent $L_{\rm final}$"))
    for arm, (color, label) in ARM_STYLE.items():
        sel = [r for r in rows if r["arm"] == arm]
        for ax, (key, _) in zip(axes, keys, strict=True):
            xs = np.array([r["eta"] for r in sel])
            ys = np.array([r[key] for r in sel], dtype=float)
            jitter = 1.0 + 0.04 * (0.5 if arm == "B" else -0.5)
            ax.plot(xs * jitter, ys, "o", color=color, ms=2.5, alpha=0.45, mec="none")
            med = [np.nanmedian([r[key] for r in sel if r["eta"] == e]) for e in ETA_GRID]
            ax.plot(ETA_GRID, med, "-", color=color, lw=1.4, label=f"{label}, median")
    for level in (1.0, 3.0):
        axes[0].axhline(level, color="0.5", lw=0.7, ls=":")
    axes[2].axhline(math.log(2 * b - 1), color="k", lw=0.8, ls="--", label=r"$\log(2B-1)$ (collapsed value)")
    for ax in axes:
        ax.axvline(2.0, color="0.4", lw=0.8, ls="--")
    axes[0].plot([], [], ls="--", color="0.4",
                 label="eta = 2: reconstructed unit-curvature bound (T1, k = 1);\nreconstruction, not "
                 "expected to match the encoder threshold")
    for ax, (_, ylabel) in zip(axes, keys, strict=True):
        ax.set_ylabel(ylabel)
        ax.set_xscale("log")
    axes[-1].set_xlabel(r"learning rate $\eta$ (plain full-batch GD, 400 steps)")
    handles, labels = axes[0].get_legend_handles_labels()
    h2, l2 = axes[2].get_legend_handles_labels()
    extra = [(h, lab) for h, lab in zip(h2, l2, strict=True) if lab not in labels]
    fig.legend(handles + [h for h, _ in extra], labels + [lab for _, lab in extra], loc="upper center",
               bbox_to_anchor=(0.5, 0.0), fontsize=6.5, frameon=False)
    seeds = sorted({r["seed"] for r in rows})
    axes[0].set_title(f"three noisy lines in R^3, 3-64-3 MLP, B = 120, tau = 0.5, seeds {seeds[0]}-{seeds[-1]}")
    paths = save(fig, out_dir, "clop_lr_sweep", formats)
    return paths + [write_csv(rows, out_dir / "clop_lr_sweep.csv")]


@figure("clop_lambda_geometry", PAPER,
        "SupCon + lam CLOP on free points (clop.md §6.2 F2): class means move from the simplex (cosine "
        "-1/(C-1)) to the orthonormal prototype frame (cosine 0) as lam grows")
def lambda_geometry(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    seeds = (0,) if quick else (0, 1, 2)
    c = 4
    runs = {s: [f2_run(lam, s) for lam in F2_LAMBDAS] for s in seeds}
    fig, axes = new_figure(3, width=2.9, height=2.5)
    panels = (("interclass_cos", "mean inter-class cosine", (-1 / (c - 1), 0.0)),
              ("erank_means", "erank of class means", (c - 1, c)),
              ("proto_cos", "cos(class mean, prototype)", (1.0,)))
    for ax, (key, ylabel, refs) in zip(axes[0], panels, strict=True):
        for s, rs in runs.items():
            ax.plot(F2_LAMBDAS, [r[key] for r in rs], "o-", ms=3, lw=1, label=f"seed {s}")
        for ref in refs:
            ax.axhline(ref, color="0.5", lw=0.7, ls=":")
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlim(0.0, 150.0)
        ax.set_xlabel(r"CLOP weight $\lambda$ (symlog)")
        ax.set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(f"SupCon + lam CLOP on free points: B = 64, C = {c}, d = 16, tau = 0.5, eta = 2, 600 "
                 "renormalised steps; dotted: simplex (-1/(C-1), C-1) and frame (0, C, 1)", fontsize=7)
    fig.tight_layout()
    return save(fig, out_dir, "clop_lambda_geometry", formats)


@figure("clop_gd_maps", PAPER,
        "Renormalised-GD angle maps around the overshoot threshold (clop.md §4.5 T1/T2, reconstruction): "
        "trajectories below and above eta k = 2 (T1) and the amplitude against eta k with the 2-cycle theta*")
def gd_maps(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    steps = 200 if quick else 400
    fig, axes = new_figure(2, width=3.4, height=2.8)
    ax = axes[0, 0]
    for a, color in zip((1.5, 1.9, 1.99, 2.01, 2.1, 2.5), ("C0", "C1", "C2", "C3", "C4", "C5"), strict=True):
        traj = np.abs(iterate_map(0.3, a, steps))
        ax.semilogy(np.arange(steps + 1), np.maximum(traj, 1e-300), color=color, lw=1,
                    label=f"eta k = {a} ({'converges' if a < 2 else '2-cycle'})")
    ax.set(xlabel="step n", ylabel=r"$|\theta_n|$ (T1, fixed target)", ylim=(1e-18, 1))
    ax.legend(fontsize=6)
    ax = axes[0, 1]
    for moving, color, name, top in ((1, "C0", "T1 fixed target", 4.0), (2, "C3", "T2 mutual pair", 2.0)):
        grid = np.linspace(0.05, top, 60 if quick else 160)
        amps = [float(np.abs(iterate_map(0.3, a, 2000, moving)[-2:]).max()) for a in grid]
        ax.plot(grid, amps, "o", color=color, ms=2, label=f"{name}: iterate after 2000 steps")
        fine = np.linspace(2.0 / moving + 1e-4, top, 200)
        ax.plot(fine, [two_cycle_amplitude(a, moving) for a in fine], "-", color=color, lw=0.8,
                label=rf"{name}: $\theta^*$ (theory)")
    ax.set(xlabel=r"$\eta k$", ylabel=r"$|\theta|$ after 2000 steps")
    ax.axvline(2.0, color="0.5", lw=0.7, ls=":")
    ax.axvline(1.0, color="0.5", lw=0.7, ls=":")
    ax.legend(fontsize=6, loc="upper left")
    fig.suptitle("reconstructed threshold maps (the paper's exact statement was not available)", fontsize=8)
    fig.tight_layout()
    return save(fig, out_dir, "clop_gd_maps", formats)
