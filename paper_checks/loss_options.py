"""The loss options shared by every subcommand that takes ``--loss`` (loss, solve, certify, ...)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from solvers.configurations import etf_prototypes, orthogonal_frame, orthonormal_prototypes
from solvers.loss_registry import LOSS_HELP, LOSS_NAMES, LossOptions


def add_loss_arguments(p: argparse.ArgumentParser) -> None:
    """Add --loss and every loss option, each with its default and valid range."""
    g = p.add_argument_group("loss", "which loss and its parameters")
    names = "; ".join(f"{n}: {h}" for n, h in LOSS_HELP.items())
    g.add_argument("--loss", required=True, choices=LOSS_NAMES, metavar="NAME", help=f"the loss. {names}")
    g.add_argument("--tau", type=float, default=0.5, help="temperature, > 0 (default 0.5)")
    g.add_argument("--alpha", type=float, default=0.5,
                   help="supcl: weight of the self-supervised term, in [0, 1] (default 0.5)")
    g.add_argument("--variant", choices=("code", "self-excluded"), default="code",
                   help="supcl: self pair counted in denominator and positives ('code', the authors' "
                   "synthetic/CIFAR code) or excluded (default code)")
    g.add_argument("--kernel", choices=("gaussian", "log", "imq", "riesz"), default="gaussian",
                   help="kcl: kernel (default gaussian; riesz needs --t < 0)")
    g.add_argument("--t", type=float, default=2.0,
                   help="kcl kernel parameter / gaussian and uniformity scale t > 0 (default 2)")
    g.add_argument("--gamma", type=float, default=16.0, help="kcl: weight of the energy term, > 0 (default 16)")
    g.add_argument("--kcl-form", choices=("paper", "code"), default="code",
                   help="kcl: normalisation of the authors' code or of the paper reconstruction (default code)")
    g.add_argument("--s", type=float, default=1.0, help="riesz: exponent s != 0 (default 1, Thomson)")
    g.add_argument("--base", default="simclr", choices=[n for n in LOSS_NAMES if n != "clop"],
                   help="clop: the base loss the CLOP term is added to (default simclr)")
    g.add_argument("--lam", type=float, default=1.0, help="clop: weight lambda of the CLOP term, > 0 (default 1)")
    g.add_argument("--distance", choices=("cosine", "euclidean", "manhattan"), default="cosine",
                   help="clop: distance to the prototype (default cosine)")
    g.add_argument("--dcl-one-direction", action="store_true",
                   help="dcl: anchors from view 1 only (default: both views, 2M anchors)")
    g.add_argument("--prototypes", default=None, metavar="etf|orthogonal|random|FILE.npy",
                   help="protosupcon/ce-fixed/clop: prototype rows: 'etf' (simplex ETF), 'orthogonal' (e_c), "
                   "'random' (orthonormal, SVD of a seeded Gaussian, the CLOP construction) or a K x d .npy file "
                   "(default random)")
    g.add_argument("--prototype-copies", type=int, default=1,
                   help="protosupcon: copies n_w >= 1 of each prototype in every batch (default 1)")
    g.add_argument("--prototypes-as-anchors", action="store_true",
                   help="protosupcon: prototype copies are anchors too (P-anchor); default P-passive")


def load_prototypes(spec: str | None, classes: int, dim: int, seed: int) -> np.ndarray | None:
    """Resolve the --prototypes value into a K x d array (None: the loss's default)."""
    if spec is None:
        return None
    if spec == "etf":
        return etf_prototypes(classes, dim)
    if spec == "orthogonal":
        return orthogonal_frame(classes, dim)
    if spec == "random":
        return orthonormal_prototypes(classes, dim, seed)
    path = Path(spec)
    if not path.exists():
        raise ValueError(f"prototypes must be etf, orthogonal, random or an existing .npy file; got {spec!r}")
    arr = np.load(path)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"prototypes file must hold a (K, {dim}) array; got shape {arr.shape}")
    return arr


def options_from_args(args: argparse.Namespace, classes: int, dim: int) -> LossOptions:
    return LossOptions(
        tau=args.tau, alpha=args.alpha, variant=args.variant, kernel=args.kernel, t=args.t, gamma=args.gamma,
        kcl_form=args.kcl_form, s=args.s, base=args.base, lam=args.lam, distance=args.distance,
        prototypes=load_prototypes(args.prototypes, classes, dim, getattr(args, "seed", 0) or 0),
        prototype_copies=args.prototype_copies, prototypes_as_anchors=args.prototypes_as_anchors,
        dcl_symmetric=not args.dcl_one_direction, seed=getattr(args, "seed", 0) or 0,
    )
