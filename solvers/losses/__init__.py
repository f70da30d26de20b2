"""The loss library: every loss of the specs as a :class:`solvers.base.SphereLoss`.

Self-supervised losses use the view-major two-view layout (rows 0..M-1 = view 1 = U,
rows M..2M-1 = view 2 = V); supervised losses take per-row labels or a :class:`Layout`.
"""

from .clop import clop_term, with_clop
from .contrastive import dcl, dhel, infonce, simclr
from .energies import alignment, frame_potential, gaussian_energy, log_energy, riesz_energy, uniformity
from .kcl import kcl
from .supervised import ce_fixed, protosupcon, supcl, supcon

__all__ = [
    "alignment",
    "ce_fixed",
    "clop_term",
    "dcl",
    "dhel",
    "frame_potential",
    "gaussian_energy",
    "infonce",
    "kcl",
    "log_energy",
    "protosupcon",
    "riesz_energy",
    "simclr",
    "supcl",
    "supcon",
    "uniformity",
    "with_clop",
]
