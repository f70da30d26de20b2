"""Sweep experiment for the DHEL/KCL robustness maps (dhel_kcl.md §8, F1-F2).

``dhel-kcl-batch``: minimise one two-view batch loss (InfoNCE, SimCLR, DCL one-directional, DHEL
paper form, or KCL with the Gaussian kernel at t = 1/(2 tau) paired as in the figure) over M pairs
in R^dim and measure the optimised configuration with
:func:`solvers.asymptotic_minimise.batch_configuration_metrics` (RankMe effective rank and exact
W1unif of U, alignment, min u.v).  Registered with the sweep engine so that the (M, tau) grids of
the figures resume from the store.
"""

from __future__ import annotations

from typing import Any

from .asymptotic_minimise import batch_configuration_metrics
from .losses import dcl, dhel, infonce, kcl, simclr
from .sweeps import Choice, Float, Int, experiment

FAMILY = ("InfoNCE", "SimCLR", "DCL", "DHEL", "KCL")
#: F1: the KCL Gaussian scale t paired with each temperature of the grid (dhel_kcl.md §8)
KCL_T = {0.05: 8.0, 0.1: 4.0, 0.2: 2.0, 0.5: 1.0, 1.0: 0.5}


def family_loss(name: str, m: int, tau: float):
    """The loss ``name`` on M pairs; KCL uses t = KCL_T[tau] and gamma = 16 (the authors' default)."""
    if name == "KCL":
        if tau not in KCL_T:
            raise ValueError(f"tau must be one of {sorted(KCL_T)} for KCL (paired with t); got {tau!r}")
        return kcl(m, "gaussian", KCL_T[tau], 16.0)
    return {"InfoNCE": lambda: infonce(m, tau), "SimCLR": lambda: simclr(m, tau),
            "DCL": lambda: dcl(m, tau, symmetric=False), "DHEL": lambda: dhel(m, tau, "paper")}[name]()


@experiment(
    "dhel-kcl-batch",
    params=[Choice("loss", FAMILY, "InfoNCE", help="batch loss (DCL one-directional, DHEL paper form, KCL Gaussian)"),
            Int("M", 8, low=2, help="pairs in the batch"),
            Float("tau", 0.5, low=1e-3, help="temperature (KCL: t = KCL_T[tau])"),
            Int("dim", 16, low=2, help="embedding dimension d"),
            Int("max_iter", 300, low=1, help="L-BFGS iterations per start")],
    description="optimised two-view batch configuration (dhel_kcl.md §8 F1-F2): RankMe erank, W1unif, "
                "alignment, min u.v",
)
def dhel_kcl_batch_task(*, loss: str, M: int, tau: float, dim: int, max_iter: int, seed: int) -> dict[str, Any]:
    """One optimised configuration as a JSON-able record (wall time dropped: records are deterministic)."""
    out = batch_configuration_metrics(family_loss(loss, M, tau), M, dim, seed=seed, max_iter=max_iter)
    out.pop("seconds", None)
    return out
