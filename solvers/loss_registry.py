"""Build any loss of the library by name (the names shared by every ``--loss`` option).

``LossOptions`` holds every loss option with its default; :func:`build_loss` turns a name, the
options and a batch :class:`~solvers.layout.Layout` into a :class:`~solvers.base.SphereLoss`.
Self-supervised losses use the two-view layout (``Layout.instances(M)``); supervised losses use the
layout's classes; energies use its rows as the N points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import SphereLoss
from .configurations import orthonormal_prototypes
from .layout import Layout
from .losses import (
    alignment,
    ce_fixed,
    dcl,
    dhel,
    frame_potential,
    gaussian_energy,
    infonce,
    kcl,
    log_energy,
    protosupcon,
    riesz_energy,
    simclr,
    supcl,
    supcon,
    uniformity,
    with_clop,
)

SELF_SUPERVISED = ("infonce", "simclr", "dcl", "dhel", "dhel2", "kcl", "alignment")
SUPERVISED = ("supcon", "supcon-in", "supcl", "protosupcon", "ce-fixed")
ENERGIES = ("riesz", "log", "gaussian", "uniformity", "frame")
LOSS_NAMES = SELF_SUPERVISED + SUPERVISED + ("clop",) + ENERGIES
NEEDS_PROTOTYPES = ("protosupcon", "ce-fixed", "clop")

LOSS_HELP = {
    "infonce": "one-directional InfoNCE on M pairs (anchors U, candidates V)",
    "simclr": "SimCLR / NT-Xent, 2M anchors, positive in the denominator",
    "dcl": "decoupled contrastive loss (positive removed from the denominator)",
    "dhel": "DHEL, paper form (anchor-view energy only)",
    "dhel2": "DHEL, two-view (code) form",
    "kcl": "kernel contrastive loss (--kernel, --t, --gamma, --kcl-form)",
    "alignment": "Wang-Isola alignment mean |u - v|^alpha",
    "supcon": "SupCon L_out (Khosla et al.)",
    "supcon-in": "SupCon L_in",
    "supcl": "SSEM mixture (1 - alpha) L_sup + alpha L_self (--alpha, --variant)",
    "protosupcon": "SupCon with n_w fixed prototype copies per class in every batch",
    "ce-fixed": "cross-entropy with the fixed classifier W / tau on unit features",
    "clop": "base loss + lambda * CLOP prototype term (--base, --lam, --distance)",
    "riesz": "Riesz s-energy sum_{i<j} |x_i - x_j|^{-s} (--s)",
    "log": "log energy sum_{i<j} log 1/|x_i - x_j|",
    "gaussian": "Gaussian energy sum_{i<j} exp(-t |x_i - x_j|^2) (--t)",
    "uniformity": "Wang-Isola uniformity log mean_{i<j} exp(-t |x_i - x_j|^2) (--t)",
    "frame": "frame potential sum_{i,j} <x_i, x_j>^2",
}


@dataclass
class LossOptions:
    """Every loss option, with the defaults of the CLI."""

    tau: float = 0.5
    alpha: float = 0.5
    variant: str = "code"
    kernel: str = "gaussian"
    t: float = 2.0
    gamma: float = 16.0
    kcl_form: str = "code"
    s: float = 1.0
    base: str = "simclr"
    lam: float = 1.0
    distance: str = "cosine"
    prototypes: np.ndarray | None = None
    prototype_copies: int = 1
    prototypes_as_anchors: bool = False
    dcl_symmetric: bool = True
    seed: int = 0


def default_prototypes(name: str, layout: Layout, dim: int, opts: LossOptions) -> np.ndarray:
    """Orthonormal prototypes (SVD of a Gaussian, clop.md §3.1) when none are given."""
    classes = int(layout.instance_class.max()) + 1
    return orthonormal_prototypes(classes, dim, opts.seed)


def build_loss(name: str, layout: Layout, dim: int, opts: LossOptions | None = None,
               clop_labels: np.ndarray | None = None) -> SphereLoss:
    """The loss ``name`` on the batch ``layout`` of points in R^dim."""
    opts = opts or LossOptions()
    if name not in LOSS_NAMES:
        raise ValueError(f"loss must be one of {', '.join(LOSS_NAMES)}; got {name!r}")
    if name in SELF_SUPERVISED and layout.views != 2:
        raise ValueError(f"views must be 2 for the self-supervised loss {name!r} (rows: U then V); got {layout.views}")
    m = layout.n_instances
    labels = layout.row_class
    if name == "infonce":
        return infonce(m, opts.tau)
    if name == "simclr":
        return simclr(m, opts.tau)
    if name == "dcl":
        return dcl(m, opts.tau, opts.dcl_symmetric)
    if name in ("dhel", "dhel2"):
        return dhel(m, opts.tau, "paper" if name == "dhel" else "code")
    if name == "kcl":
        return kcl(m, opts.kernel, opts.t, opts.gamma, opts.kcl_form)
    if name == "alignment":
        return alignment(m)
    if name in ("supcon", "supcon-in"):
        return supcon(labels, opts.tau, "out" if name == "supcon" else "in")
    if name == "supcl":
        return supcl(layout, opts.alpha, opts.tau, opts.variant)
    if name == "riesz":
        return riesz_energy(layout.n_rows, opts.s)
    if name == "log":
        return log_energy(layout.n_rows)
    if name == "gaussian":
        return gaussian_energy(layout.n_rows, opts.t)
    if name == "uniformity":
        return uniformity(layout.n_rows, opts.t)
    if name == "frame":
        return frame_potential(layout.n_rows)
    protos = opts.prototypes if opts.prototypes is not None else default_prototypes(name, layout, dim, opts)
    if name == "protosupcon":
        return protosupcon(labels, protos, opts.prototype_copies, opts.tau, opts.prototypes_as_anchors)
    if name == "ce-fixed":
        return ce_fixed(labels, protos, opts.tau)
    # clop: base loss on the same layout plus the prototype term on (possibly partial) labels
    if opts.base in ("clop",) or opts.base not in LOSS_NAMES:
        raise ValueError(f"base must be a loss name other than 'clop'; got {opts.base!r}")
    base_layout = Layout.instances(m, 2) if opts.base in SELF_SUPERVISED else layout
    base = build_loss(opts.base, base_layout, dim, opts)
    lab = labels if clop_labels is None else clop_labels
    return with_clop(base, lab, protos, opts.lam, opts.distance)
