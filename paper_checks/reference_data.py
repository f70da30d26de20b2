"""Load the reference tables of ``shared/data`` (anchors.md §15).

The folder is found from $COLLAPSEKIT_DATA, else ``<repo>/../shared/data`` (the layout of a
checkout next to ``shared/``), else ``<repo>/shared/data``.
"""

from __future__ import annotations

import csv
import os
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    candidates = []
    if os.environ.get("COLLAPSEKIT_DATA"):
        candidates.append(Path(os.environ["COLLAPSEKIT_DATA"]))
    candidates += [REPO.parent / "shared" / "data", REPO / "shared" / "data"]
    for c in candidates:
        if (c / "thomson_energies.csv").exists():
            return c
    raise FileNotFoundError(
        "reference tables not found: set COLLAPSEKIT_DATA to the shared/data folder (looked in "
        + ", ".join(str(c) for c in candidates) + ")"
    )


@cache
def read_table(name: str) -> tuple[dict[str, str], ...]:
    """Rows of ``shared/data/<name>`` as dicts of strings ('#' lines are comments)."""
    path = data_dir() / name
    with path.open() as fh:
        lines = [ln for ln in fh if not ln.startswith("#") and ln.strip()]
    return tuple(csv.DictReader(lines))


def thomson_table() -> dict[int, float]:
    """Best-known Thomson energies U(N), N = 2..100 (sum over unordered pairs)."""
    return {int(r["N"]): float(r["energy"]) for r in read_table("thomson_energies.csv")}


def contrastive_reference() -> list[dict]:
    """Rows of contrastive_loss_reference_values.csv with numeric fields parsed."""
    out = []
    for r in read_table("contrastive_loss_reference_values.csv"):
        out.append({
            "loss": r["loss"], "n": int(r["n_or_C"]), "m": int(r["m"]), "d": int(r["d"]),
            "tau": float(r["tau_or_t"]), "closed_form": float(r["closed_form"]),
            "lib_pml": float(r["lib_pml"]) if r["lib_pml"] else None,
            "lib_lightly": float(r["lib_lightly"]) if r["lib_lightly"] else None,
        })
    return out
