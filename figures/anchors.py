"""Figures for the external anchors: closed forms at the aligned simplex against temperature."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from solvers.configurations import regular_simplex
from solvers.losses import dcl, simclr

from .registry import figure
from .style import new_figure, save


@figure("anchors_simplex_closed_forms", "anchors",
        "NT-Xent and DCL at the aligned regular simplex against tau: closed forms (lines, anchors.md §8.2) "
        "and the loss library evaluated on constructed simplices (markers)")
def simplex_closed_forms(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    taus = np.geomspace(0.05, 2.0, 60)
    marks = np.geomspace(0.05, 2.0, 8 if quick else 14)
    fig, axes = new_figure(2)
    for n, color in zip((2, 4, 8, 16), ("C0", "C1", "C2", "C3"), strict=True):
        pts = np.vstack([regular_simplex(n, max(n - 1, 2))] * 2)
        nt = [math.log1p((2 * n - 2) * math.exp(-n / (t * (n - 1)))) for t in taus]
        dc = [math.log(2 * n - 2) - n / (t * (n - 1)) for t in taus]
        axes[0, 0].plot(taus, nt, color=color, label=f"n = {n}")
        axes[0, 1].plot(taus, dc, color=color, label=f"n = {n}")
        axes[0, 0].plot(marks, [simclr(n, t).value(pts) for t in marks], "o", color=color, ms=3)
        axes[0, 1].plot(marks, [dcl(n, t).value(pts) for t in marks], "o", color=color, ms=3)
    axes[0, 0].set(xscale="log", yscale="log", xlabel=r"temperature $\tau$", ylabel="NT-Xent at simplex")
    axes[0, 1].set(xscale="log", xlabel=r"temperature $\tau$", ylabel="DCL at simplex")
    axes[0, 0].legend()
    fig.tight_layout()
    return save(fig, out_dir, "anchors_simplex_closed_forms", formats)
