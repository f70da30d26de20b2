"""Shared matplotlib set-up: headless backend, paper-ready defaults, saving in several formats."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams.update({
    "figure.dpi": 150, "savefig.dpi": 300, "savefig.bbox": "tight", "font.size": 9, "axes.titlesize": 9,
    "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "axes.grid": True, "grid.alpha": 0.3, "pdf.fonttype": 42,
})


def new_figure(ncols: int = 1, width: float = 3.4, height: float = 2.6):
    """A figure sized for one column (3.4 in) per panel."""
    return plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)


def save(fig, out_dir: Path, name: str, formats: tuple[str, ...]) -> list[Path]:
    """Save ``fig`` as out_dir/name.<fmt> for every format; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        fig.savefig(path, format=fmt)
        paths.append(path)
    plt.close(fig)
    return paths
