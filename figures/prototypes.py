"""Figures of prototypes.md (Gill et al.'s prototype-engineered SupCon, with Graf's and Kini's results).

Every grid runs through the sweep engine (:mod:`solvers.sweeps`): the experiments ``proto-geometry``,
``proto-limit`` and ``proto-preset`` of :mod:`solvers.minibatch_experiments`, stored under
``OUT_DIR/sweeps/*.jsonl``, so a second call redraws from the store without solving again.

- ``prototypes_delta_vs_copies``: Delta(G_M, G_W) against n_w for ETF, OF and block prototypes under
  P-passive and P-anchor (class sizes [10, 10, 2, 2], tau = 0.5, d = 8), with the n_w = 0 value and
  the n_w -> infinity limit (per-class limit minimisers, T4) as horizontal lines.
- ``prototypes_gram_heatmaps``: the learnt class-mean Gram G_M (cosines) next to the prototype Gram
  G_W for the settings of §4 C6, C7, C8, C11.
- ``prototypes_minibatch``: Delta_ETF against n_w K / b for mini-batches of b in {8, 16, 24, 48}
  (union of 5 random partitions; b = 48 is the full batch), ETF prototypes, P-anchor, tau = 0.1,
  class sizes [20, 20, 4, 4] (§4 C12).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from solvers import minibatch_experiments as mx  # noqa: F401  (registers the proto-* sweeps)
from solvers.metrics import gram_distance
from solvers.sweeps import sweep_records

from .registry import figure
from .style import new_figure, plt, save

PAPER = "prototypes"
WORKERS = 2


def _records(out_dir: Path, name: str, grid: dict, seeds=(0,)) -> list[dict]:
    return sweep_records(name, grid, list(seeds), store=out_dir / "sweeps" / f"{name}.jsonl", workers=WORKERS)


def _cosines(g: np.ndarray) -> np.ndarray:
    d = np.sqrt(np.diag(g))
    return g / np.outer(d, d)


GEOMETRIES = {"etf": "simplex ETF", "of": "orthogonal frame", "block": "block (0.6 / 0)"}


@figure("prototypes_delta_vs_copies", PAPER, "Delta(G_M, G_W) against the number of prototype copies n_w for ETF, OF "
        "and block prototypes, P-passive and P-anchor, with the n_w -> infinity limit (prototypes.md T4, §4 C6-C11)")
def delta_vs_copies(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    geos = ("etf", "of") if quick else ("etf", "of", "block")
    copies = [1, 10, 100] if quick else [1, 2, 5, 10, 50, 200, 1000]
    tau, sizes = 0.5, "10-10-2-2"
    recs = _records(out_dir, "proto-geometry", {"sizes": [sizes], "tau": [tau], "prototypes": list(geos),
                                                "copies": [0, *copies], "anchors": [False, True],
                                                "restarts": [2]})
    limits = _records(out_dir, "proto-limit", {"prototypes": list(geos), "tau": [tau], "anchors": [False, True]})
    floor = 1e-7  # Delta values below this (exact alignment) are drawn on the floor of the log axis
    fig, axes = new_figure(len(geos), width=3.2, height=2.7)
    fig.subplots_adjust(wspace=0.45)
    for ax, geo in zip(axes[0], geos, strict=True):
        w = mx.prototype_matrix(geo, 4, 8)
        gw = w @ w.T
        base = [r for r in recs if r["params"]["prototypes"] == geo and r["params"]["copies"] == 0][0]
        ax.axhline(max(gram_distance(np.array(base["result"]["gram"]), gw), floor), color="0.5", ls="--", lw=1,
                   label="no prototypes")
        notes, shown = [], [max(gram_distance(np.array(base["result"]["gram"]), gw), floor)]
        for anchors, color in ((False, "C0"), (True, "C3")):
            pts = sorted((r["params"]["copies"], max(gram_distance(np.array(r["result"]["gram"]), gw), floor))
                         for r in recs if r["params"]["prototypes"] == geo and r["params"]["anchors"] == anchors
                         and r["params"]["copies"] > 0)
            label = "P-anchor" if anchors else "P-passive"
            ax.plot(*zip(*pts, strict=True), "o-", color=color, ms=3, label=label)
            shown += [y for _, y in pts]
            lim = [r for r in limits if r["params"]["prototypes"] == geo and r["params"]["anchors"] == anchors][0]
            val = lim["result"]["delta_w"]
            ax.axhline(max(val, floor), color=color, ls=":", lw=1, label=f"{label}, n_w -> inf (T4)")
            notes.append(f"{label} limit {val:.2g}")
            shown.append(max(val, floor))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(min(shown) / 3, 2.0)
        ax.set_xlabel("prototype copies n_w")
        ax.set_ylabel("Delta(G_M, G_W)")
        ax.set_title(f"{GEOMETRIES[geo]} prototypes", fontsize=8)
        ax.text(0.03, 0.03, "; ".join(notes), transform=ax.transAxes, fontsize=5)
    axes[0][0].legend(loc="center left", fontsize=5)
    shown_sizes = sizes.replace("-", ", ")
    fig.suptitle(f"SCL+P, UFM, n = [{shown_sizes}], tau = {tau}, d = 8 (values < {floor:g} drawn at {floor:g})",
                 fontsize=8, y=1.04)
    return save(fig, out_dir, "prototypes_delta_vs_copies", formats)


HEATMAP_TITLES = {
    "etf-imbalanced-anchor": "ETF, n=[10,10,2,2], P-anchor, n_w=10, tau=0.1",
    "of-passive": "OF, P-passive, n_w=1000, tau=0.5",
    "of-anchor": "OF, P-anchor, n_w=1000, tau=0.1",
    "of-nonneg": "OF, UFM+, P-anchor, n_w=10, tau=0.1",
    "block-nonneg-anchor": "block, UFM+, P-anchor, n_w=100, tau=0.1",
    "block-anchor": "block, UFM, P-anchor, n_w=100, tau=0.1",
    "block-passive": "block, P-passive, n_w=1000, tau=0.5",
}


@figure("prototypes_gram_heatmaps", PAPER, "Heat-maps of the learnt class-mean Gram (cosines) next to the prototype "
        "Gram for ETF, OF (UFM and UFM+) and block prototypes (prototypes.md §4 C6-C8, C11)")
def gram_heatmaps(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    settings = (["etf-imbalanced-anchor", "of-passive", "of-nonneg", "block-anchor"] if quick
                else list(HEATMAP_TITLES))
    recs = _records(out_dir, "proto-preset", {"setting": settings})
    by = {r["params"]["setting"]: r["result"] for r in recs}
    rows = len(settings)
    fig, axes = plt.subplots(rows, 2, figsize=(4.6, 2.1 * rows), squeeze=False)
    fig.subplots_adjust(hspace=0.55, wspace=0.25)
    im = None
    for i, name in enumerate(settings):
        gm = _cosines(np.array(by[name]["gram"]))
        gw = np.array(by[name]["gram_w"])
        for j, mat in enumerate((gw, gm)):
            ax = axes[i][j]
            im = ax.imshow(mat, vmin=-1, vmax=1, cmap="RdBu_r")
            k = mat.shape[0]
            for a in range(k):
                for b in range(k):
                    ax.text(b, a, f"{mat[a, b]:.2f}", ha="center", va="center", fontsize=5)
            ax.set_xticks(range(k))
            ax.set_yticks(range(k))
            ax.tick_params(labelsize=5)
            ax.grid(False)
        axes[i][0].set_title(f"prototypes G_W\n{HEATMAP_TITLES[name]}", fontsize=5)
        axes[i][1].set_title(f"learnt G_M (cosines)\nDelta(G_M, G_W) = {by[name]['delta_w']:.3f}", fontsize=5)
        axes[i][0].set_ylabel("class", fontsize=6)
    for j in range(2):
        axes[-1][j].set_xlabel("class", fontsize=6)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.4, pad=0.08, label="cosine")
    return save(fig, out_dir, "prototypes_gram_heatmaps", formats)


@figure("prototypes_minibatch", PAPER, "Delta_ETF against n_w K / b for mini-batches (ETF prototypes, P-anchor, "
        "tau = 0.1, n = [20, 20, 4, 4], union of 5 random partitions; prototypes.md §4 C12)")
def minibatch(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    sizes_b = {8: "random:8x5", 16: "random:16x5", 48: "full"} if quick else {
        8: "random:8x5", 16: "random:16x5", 24: "random:24x5", 48: "full"}
    copies = [0, 1, 4, 16, 64] if quick else [0, 1, 2, 4, 8, 16, 32, 64]
    seeds = (0,) if quick else (0, 1)
    recs = _records(out_dir, "proto-geometry", {
        "sizes": ["20-20-4-4"], "tau": [0.1], "prototypes": ["etf"], "copies": copies, "anchors": [True],
        "batches": list(sizes_b.values()), "restarts": [1], "max_iter": [3000], "polish_steps": [2]}, seeds)
    fig, axes = new_figure(2, width=3.3, height=2.7)
    ax, ax0 = axes[0]
    for (b, spec), color in zip(sizes_b.items(), ("C0", "C1", "C2", "C3"), strict=False):
        mine = [r for r in recs if r["params"]["batches"] == spec]
        label = f"b = {b}" + (" (full batch)" if spec == "full" else "")
        xs, ys = [], []
        for nw in copies[1:]:
            vals = [r["result"]["delta_etf"] for r in mine if r["params"]["copies"] == nw]
            xs.append(nw * 4 / b)
            ys.append(float(np.mean(vals)))
        ax.plot(xs, ys, "o-", color=color, ms=3, label=label)
        zero = [r["result"]["delta_etf"] for r in mine if r["params"]["copies"] == 0]
        ax0.bar(str(b), float(np.mean(zero)), color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n_w K / b")
    ax.set_ylabel("Delta_ETF")
    ax.set_title(f"with prototypes (mean of {len(seeds)} seed(s))")
    ax.legend(fontsize=6)
    ax0.set_yscale("log")
    ax0.set_xlabel("batch size b")
    ax0.set_ylabel("Delta_ETF")
    ax0.set_title("without prototypes (n_w = 0)")
    return save(fig, out_dir, "prototypes_minibatch", formats)
