"""Every library loss as a rule-generated template: blocks from per-row label arrays, no N x N array.

The numpy builders (:mod:`solvers.losses`) materialise the template matrices P, B_g and W as
N x N arrays, which is impossible at N = 65,536.  This module writes the *same* matrices in the
compressed form of :class:`~solvers.torch_path.blocks.RuleMatrix`: a short sum of factors
a[i] b[j] [rel(i, j)] over the row keys

    index     global row number (free rows 0..n-1, then fixed rows)
    instance  instance id (row_instance of the Layout; fixed row k: -(k + 1), unique)
    cls       class label (row_class; fixed row k: k, the prototype's class; CLOP: -1 = unlabelled)
    view      view id (row_view; fixed rows: -1)
    kind      0 = free row, 1 = fixed row (prototype / classifier row)

Each encoding below restates the construction of the matching numpy builder (same module
names, same validation, same scalars tau, D, c0, coefficients), and
``tests/test_torch_path.py`` materialises every one at small N and checks it entry by entry
against the numpy template (same P, B_g, c_g, W, scales and constants), so the rules cannot
drift from the definitions.  Sources: anchors.md §8.1, dhel_kcl.md §2.1-2.2, ssem.md §2,
prototypes.md §1.3, clop.md §2.3; the builders' docstrings carry the provenance tags.
"""

from __future__ import annotations

import numpy as np
import torch

from ..configurations import orthonormal_prototypes
from ..kernels import DistancePower, Gaussian, Linear, Log, Riesz, Square
from ..layout import Layout
from ..loss_registry import LOSS_NAMES, SELF_SUPERVISED, LossOptions
from ..losses.clop import DISTANCES, clop_term
from ..losses.kcl import kcl_kernels
from ..validation import (
    check_choice,
    check_int,
    check_labels,
    check_points,
    check_positive,
    check_unit_interval,
)
from .blocks import Factor, Rel, RuleMatrix
from .kernels import torch_kernel
from .spec import KernelSpec, KernelTermSpec, LseSpec, Spec, SumSpec, spec_from_loss

SAME_ROW = Rel(same=("index",))
PARTNER = Rel(same=("instance",), diff=("index",))  # the other view of the row's instance (2 views)
UPPER = Rel(less=("index",))  # pairs i < j


def row_keys(instance: np.ndarray, cls: np.ndarray, view: np.ndarray, fixed_classes: np.ndarray | None = None) -> dict:
    """The key arrays of free rows (given) followed by fixed rows (one per entry of fixed_classes)."""
    k = 0 if fixed_classes is None else int(len(fixed_classes))
    n = int(len(instance))
    return {
        "index": np.arange(n + k),
        "instance": np.concatenate([instance, -1 - np.arange(k)]),
        "cls": np.concatenate([cls, np.asarray(fixed_classes if k else [], dtype=np.int64)]),
        "view": np.concatenate([view, -np.ones(k, dtype=np.int64)]),
        "kind": np.concatenate([np.zeros(n, dtype=np.int64), np.ones(k, dtype=np.int64)]),
    }


class _Builder:
    """Holds device/dtype and turns factor lists into RuleMatrix sources and specs."""

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.device, self.dtype = device, dtype

    def t(self, arr: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(arr, dtype=float), dtype=self.dtype, device=self.device)

    def mat(self, keys: dict, factors: list[Factor], log: bool = False) -> RuleMatrix:
        return RuleMatrix(keys, factors, self.device, self.dtype, log=log)

    def lse(self, keys, n_free, tau, denom, positives, groups, name, params, constant=0.0, fixed=None) -> LseSpec:
        return LseSpec(
            n_free=n_free, tau=tau, denominator=float(denom), constant=float(constant),
            fixed=None if fixed is None else self.t(fixed),
            positives=None if positives is None else self.mat(keys, positives),
            groups=[(self.t(c), self.mat(keys, f, log=True)) for c, f in groups], name=name, params=params,
        )

    def kernel(self, keys, n_free, terms, name, params, outer="none", constant=0.0, fixed=None) -> KernelSpec:
        return KernelSpec(
            n_free=n_free,
            terms=[KernelTermSpec(torch_kernel(k), float(scale), self.mat(keys, f)) for k, scale, f in terms],
            outer=outer, constant=float(constant), fixed=None if fixed is None else self.t(fixed),
            name=name, params=params,
        )


def _two_view_keys(m: int) -> dict:
    lay = Layout.instances(m, 2)
    return row_keys(lay.row_instance, lay.row_class, lay.row_view)


# ----------------------------------------------------------------------------------------------
# contrastive.py (anchors.md §8.1, dhel_kcl.md §2.1)
# ----------------------------------------------------------------------------------------------
def _ssl(b: _Builder, name: str, m: int, opts: LossOptions) -> LseSpec:
    m = check_int(m, "instances", 2)
    tau = check_positive(opts.tau, "tau")
    keys = _two_view_keys(m)
    u = (keys["view"] == 0).astype(float)
    v = (keys["view"] == 1).astype(float)
    ones = np.ones(2 * m)
    if name == "infonce":
        return b.lse(keys, 2 * m, tau, m, [Factor(PARTNER, row=u)], [(u, [Factor(Rel(), row=u, col=v)])],
                     "infonce", {"name": "infonce", "tau": tau, "instances": m})
    if name == "simclr":
        return b.lse(keys, 2 * m, tau, 2 * m, [Factor(PARTNER)], [(ones, [Factor(Rel(diff=("index",)))])],
                     "simclr", {"name": "simclr", "tau": tau, "instances": m})
    if name == "dcl":
        a = ones if opts.dcl_symmetric else u
        return b.lse(keys, 2 * m, tau, a.sum(), [Factor(PARTNER, row=a)], [(a, [Factor(Rel(diff=("instance",)))])],
                     "dcl", {"name": "dcl", "tau": tau, "instances": m, "symmetric": bool(opts.dcl_symmetric)})
    form = "paper" if name == "dhel" else "code"
    coef = u if form == "paper" else ones
    return b.lse(keys, 2 * m, tau, m, [Factor(PARTNER, row=u)],
                 [(coef, [Factor(Rel(same=("view",), diff=("index",)))])],
                 name, {"name": name, "tau": tau, "instances": m, "form": form})


# ----------------------------------------------------------------------------------------------
# supervised.py (anchors.md §8.1, prototypes.md §1.3, ssem.md §2)
# ----------------------------------------------------------------------------------------------
def _weighted_supcon(b: _Builder, keys: dict, labels: np.ndarray, mult: np.ndarray, anchor_weight: np.ndarray,
                     tau: float, variant: str, reduction: str, no_positive: str, n_free: int,
                     fixed: np.ndarray | None, name: str, params: dict) -> LseSpec:
    """Mirror of ``solvers.losses.supervised._weighted_supcon`` with counts written as rules.

    counts(i, j) = m_j - [i = j];  pos_counts(i, j) = counts(i, j) [y_i = y_j];
    n_pos(i) = M_{y_i} - 1 with M_c the total multiplicity of class c.
    """
    variant = check_choice(variant, "variant", ("out", "in"))
    reduction = check_choice(reduction, "reduction", ("mean", "sum"))
    no_positive = check_choice(no_positive, "no_positive", ("raise", "exclude"))
    class_mult = np.bincount(labels, weights=mult.astype(float))
    n_pos = class_mult[labels] - 1.0
    a = anchor_weight.astype(float).copy()
    lonely = (a > 0) & (n_pos == 0)
    if np.any(lonely):
        if no_positive == "raise":
            row = int(np.flatnonzero(lonely)[0])
            raise ValueError(
                f"labels: anchor row {row} (label {labels[row]}) has no positive; every label must occur "
                "at least twice (or pass no_positive='exclude' to drop such anchors)"
            )
        a[lonely] = 0.0
    if not np.any(a > 0):
        raise ValueError("labels: no anchor has a positive, so the loss is undefined (need a repeated label)")
    denom = float(a.sum()) if reduction == "mean" else 1.0
    safe = np.where(n_pos > 0, n_pos, 1.0)
    if np.all(mult == 1.0):  # plain rows: m_j - [i = j] is the indicator of j != i (one factor each)
        counts = [Factor(Rel(diff=("index",)))]
        pos_counts = [Factor(Rel(same=("cls",), diff=("index",)))]
        pos_rule = [Factor(Rel(same=("cls",), diff=("index",)), row=a / safe)]
    else:
        counts = [Factor(Rel(), col=mult), Factor(SAME_ROW, row=-np.ones(labels.size))]
        pos_counts = [Factor(Rel(same=("cls",)), col=mult), Factor(SAME_ROW, row=-np.ones(labels.size))]
        pos_rule = [Factor(Rel(same=("cls",)), row=a / safe, col=mult), Factor(SAME_ROW, row=-(a / safe))]
    if variant == "out":
        positives = pos_rule
        groups, const = [(a, counts)], 0.0
    else:
        positives = None
        groups = [(a, counts), (-a, pos_counts)]
        const = float(np.sum(a * np.log(safe))) / denom
    params = {"name": name, "tau": tau, **params, "variant": variant, "reduction": reduction,
              "excluded_anchors": int(lonely.sum()) if no_positive == "exclude" else 0}
    return b.lse(keys, n_free, tau, denom, positives, groups, name, params, constant=const, fixed=fixed)


def _supcon(b: _Builder, labels: object, tau: float, variant: str = "out", reduction: str = "mean",
            no_positive: str = "raise") -> LseSpec:
    lab = check_labels(labels)
    if lab.size < 2:
        raise ValueError(f"labels must hold at least 2 rows; got {lab.size}")
    tau = check_positive(tau, "tau")
    n = lab.size
    keys = row_keys(np.arange(n), lab, np.zeros(n, dtype=np.int64))
    ones = np.ones(n)
    return _weighted_supcon(b, keys, lab, ones, ones, tau, variant, reduction, no_positive, n, None,
                            "supcon" if variant == "out" else "supcon-in", {})


def _protosupcon(b: _Builder, labels: object, prototypes: object, copies: int, tau: float,
                 prototypes_as_anchors: bool = False) -> LseSpec:
    lab = check_labels(labels)
    protos = check_points(prototypes, "prototypes")
    protos = protos / np.linalg.norm(protos, axis=1, keepdims=True)
    k = protos.shape[0]
    n_w = check_int(copies, "copies", 1)
    tau = check_positive(tau, "tau")
    if lab.size and (lab.min() < 0 or lab.max() >= k):
        raise ValueError(f"labels must lie in [0, {k - 1}] (one prototype per class); got {lab.min()}..{lab.max()}")
    n = lab.size
    all_labels = np.concatenate([lab, np.arange(k)])
    mult = np.concatenate([np.ones(n), np.full(k, float(n_w))])
    anchors = np.concatenate([np.ones(n), np.full(k, float(n_w) if prototypes_as_anchors else 0.0)])
    keys = row_keys(np.arange(n), lab, np.zeros(n, dtype=np.int64), np.arange(k))
    params = {"copies": n_w, "prototypes_as_anchors": bool(prototypes_as_anchors), "classes": k}
    return _weighted_supcon(b, keys, all_labels, mult, anchors, tau, "out", "mean", "raise", n, protos,
                            "protosupcon", params)


def _ce_fixed(b: _Builder, labels: object, classifier: object, tau: float) -> LseSpec:
    lab = check_labels(labels)
    w = check_points(classifier, "classifier", allow_zero_rows=True)
    tau = check_positive(tau, "tau")
    k, n = w.shape[0], lab.size
    if n == 0 or lab.min() < 0 or lab.max() >= k:
        raise ValueError(f"labels must be non-empty and lie in [0, {k - 1}] (one classifier row per class)")
    keys = row_keys(np.arange(n), lab, np.zeros(n, dtype=np.int64), np.arange(k))
    free = (keys["kind"] == 0).astype(float)
    fixed = (keys["kind"] == 1).astype(float)
    return b.lse(keys, n, tau, n, [Factor(Rel(same=("cls",)), row=free, col=fixed)],
                 [(free, [Factor(Rel(), row=free, col=fixed)])], "ce-fixed",
                 {"name": "ce-fixed", "tau": tau, "classes": k}, fixed=w)


def _supcl(b: _Builder, layout: Layout, alpha: float, tau: float, variant: str = "code",
           reduction: str = "anchor", empty_positive: str = "raise") -> LseSpec:
    alpha = check_unit_interval(alpha, "alpha")
    tau = check_positive(tau, "tau")
    variant = check_choice(variant, "variant", ("code", "self-excluded"))
    reduction = check_choice(reduction, "reduction", ("anchor", "pair"))
    empty_positive = check_choice(empty_positive, "empty_positive", ("raise", "zero"))
    rows = layout.n_rows
    keys = row_keys(layout.row_instance, layout.row_class, layout.row_view)
    self_rel = Rel(same=("instance",))
    den = [Factor(Rel())]
    if variant == "self-excluded":
        if layout.views < 2 and alpha > 0:
            raise ValueError("views must be >= 2 for variant='self-excluded' with alpha > 0 (no self positive)")
        self_rel = Rel(same=("instance",), diff=("index",))
        den = [Factor(Rel(diff=("index",)))]
    sup_rel = Rel(same=("cls",), diff=("instance",))
    n_self = np.full(rows, float(layout.views - (variant == "self-excluded")))
    n_sup = np.bincount(layout.row_class)[layout.row_class].astype(float) - layout.views
    if alpha < 1 and np.any(n_sup == 0) and empty_positive == "raise":
        row = int(np.flatnonzero(n_sup == 0)[0])
        raise ValueError(
            f"labels: row {row} has no supervised positive (its class has one instance); every class needs "
            "at least 2 instances, or pass empty_positive='zero'"
        )
    positives: list[Factor] = []
    coef = np.zeros(rows)
    for weight, rel, count in ((alpha, self_rel, n_self), (1.0 - alpha, sup_rel, n_sup)):
        if weight == 0.0:
            continue
        has = count > 0
        if reduction == "anchor":
            positives.append(Factor(rel, row=weight / np.where(has, count, 1.0)))
            coef += weight * has
        else:
            total = count.sum()
            positives.append(Factor(rel, row=np.full(rows, weight / total)))
            coef += weight * count / total
    denom = float(rows) if reduction == "anchor" else 1.0
    params = {"name": "supcl", "tau": tau, "alpha": alpha, "variant": variant, "reduction": reduction,
              "views": layout.views, "class_sizes": layout.class_sizes.tolist()}
    return b.lse(keys, rows, tau, denom, positives, [(coef, den)], "supcl", params)


# ----------------------------------------------------------------------------------------------
# energies.py and kcl.py (anchors.md §1, §3, §6; dhel_kcl.md §2.2)
# ----------------------------------------------------------------------------------------------
def _energy(b: _Builder, name: str, n: int, opts: LossOptions) -> KernelSpec:
    n = check_int(n, "n", 2 if name != "frame" else 1)
    keys = row_keys(np.arange(n), np.arange(n), np.zeros(n, dtype=np.int64))
    if name == "frame":
        return b.kernel(keys, n, [(Square(), 1.0, [Factor(Rel())])], "frame", {"name": "frame", "n": n})
    if name == "riesz":
        k = Riesz(opts.s)
        return b.kernel(keys, n, [(k, 1.0, [Factor(UPPER)])], "riesz", {"name": "riesz", "n": n, "s": k.s})
    if name == "log":
        return b.kernel(keys, n, [(Log(), 1.0, [Factor(UPPER)])], "log", {"name": "log", "n": n})
    k = Gaussian(opts.t)
    if name == "gaussian":
        return b.kernel(keys, n, [(k, 1.0, [Factor(UPPER)])], "gaussian", {"name": "gaussian", "n": n, "t": k.t})
    pairs = float(n * (n - 1) // 2)
    return b.kernel(keys, n, [(k, 1.0, [Factor(UPPER, row=np.full(n, 1.0 / pairs))])], "uniformity",
                    {"name": "uniformity", "n": n, "t": k.t}, outer="log")


def _alignment(b: _Builder, m: int, alpha: float = 2.0) -> KernelSpec:
    m = check_int(m, "instances", 1)
    alpha = check_positive(alpha, "alpha")
    keys = _two_view_keys(m)
    u = (keys["view"] == 0).astype(float)
    v = (keys["view"] == 1).astype(float)
    return b.kernel(keys, 2 * m, [(DistancePower(alpha), 1.0, [Factor(Rel(same=("instance",)), row=u / m, col=v)])],
                    "alignment", {"name": "alignment", "instances": m, "alpha": alpha})


def _kcl(b: _Builder, m: int, kernel: str, t: float, gamma: float, form: str) -> KernelSpec:
    m = check_int(m, "instances", 2)
    gamma = check_positive(gamma, "gamma")
    form = check_choice(form, "form", ("code", "paper"))
    psi_e, psi_a = kcl_kernels(kernel, t)
    keys = _two_view_keys(m)
    u = (keys["view"] == 0).astype(float)
    v = (keys["view"] == 1).astype(float)
    align = [Factor(Rel(same=("instance",)), row=u / m, col=v)]
    if form == "code":
        n_pairs = m * (m - 1) // 2
        energy = [Factor(Rel(same=("view",), less=("index",)), row=np.full(2 * m, 1.0 / n_pairs))]
        terms = [(psi_a, -2.0, align), (psi_e, gamma, energy)]
    else:
        energy = [Factor(UPPER, row=u * (2.0 / (m * (m - 1))), col=u)]
        terms = [(psi_e, -1.0, align), (psi_e, gamma, energy)]
    return b.kernel(keys, 2 * m, terms, "kcl",
                    {"name": "kcl", "instances": m, "kernel": kernel, "t": float(t), "gamma": gamma, "form": form})


# ----------------------------------------------------------------------------------------------
# clop.py (clop.md §2.3)
# ----------------------------------------------------------------------------------------------
def _clop_term(b: _Builder, labels: object, prototypes: object, lam: float, distance: str) -> Spec:
    lab = check_labels(labels)
    protos = check_points(prototypes, "prototypes")
    lam = check_positive(lam, "lam")
    distance = check_choice(distance, "distance", DISTANCES)
    if distance == "manhattan":  # not a Gram loss; the numpy object holds no N x N array
        return spec_from_loss(clop_term(lab, protos, lam, distance), b.device, b.dtype)
    k = protos.shape[0]
    if lab.size and (lab.min() < -1 or lab.max() >= k):
        raise ValueError(f"labels must lie in [-1, {k - 1}] (-1 = unlabelled, one prototype per class)")
    if distance == "euclidean" and not np.allclose(np.linalg.norm(protos, axis=1), 1.0, atol=1e-12):
        raise ValueError("prototypes must have unit rows for distance='euclidean' (|u - c|^2 = 2 - 2 u.c)")
    n = lab.size
    rows = np.flatnonzero(lab >= 0)
    keys = row_keys(np.arange(n), lab, np.zeros(n, dtype=np.int64), np.arange(k))
    labelled = np.concatenate([(lab >= 0).astype(float) / max(rows.size, 1), np.zeros(k)])
    fixed_col = (keys["kind"] == 1).astype(float)
    w = [Factor(Rel(same=("cls",)), row=labelled, col=fixed_col)]
    params = {"name": f"clop-{distance}", "lam": lam, "distance": distance, "labelled_rows": int(rows.size),
              "classes": k}
    if distance == "cosine":
        kern, scale, const = Linear(), -lam, (lam if rows.size else 0.0)
    else:
        kern, scale, const = DistancePower(1.0), lam, 0.0
    return b.kernel(keys, n, [(kern, scale, w)], f"clop-{distance}", params, constant=const, fixed=protos)


# ----------------------------------------------------------------------------------------------
# the registry (mirror of solvers.loss_registry.build_loss)
# ----------------------------------------------------------------------------------------------
def structured_spec(name: str, layout: Layout, dim: int, opts: LossOptions | None = None,
                    clop_labels: np.ndarray | None = None, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float64) -> Spec:
    """The rule-generated spec of the loss that ``build_loss(name, layout, dim, opts)`` returns."""
    opts = opts or LossOptions()
    b = _Builder(torch.device(device), dtype)
    if name not in LOSS_NAMES:
        raise ValueError(f"loss must be one of {', '.join(LOSS_NAMES)}; got {name!r}")
    if not isinstance(layout, Layout):
        raise ValueError("layout must be a solvers.layout.Layout")
    if name in SELF_SUPERVISED and layout.views != 2:
        raise ValueError(f"views must be 2 for the self-supervised loss {name!r} (rows: U then V); got {layout.views}")
    m = layout.n_instances
    labels = layout.row_class
    if name in ("infonce", "simclr", "dcl", "dhel", "dhel2"):
        return _ssl(b, name, m, opts)
    if name == "kcl":
        return _kcl(b, m, opts.kernel, opts.t, opts.gamma, opts.kcl_form)
    if name == "alignment":
        return _alignment(b, m)
    if name in ("supcon", "supcon-in"):
        return _supcon(b, labels, opts.tau, "out" if name == "supcon" else "in")
    if name == "supcl":
        return _supcl(b, layout, opts.alpha, opts.tau, opts.variant)
    if name in ("riesz", "log", "gaussian", "uniformity", "frame"):
        return _energy(b, name, layout.n_rows, opts)
    protos = opts.prototypes
    if protos is None:
        protos = orthonormal_prototypes(int(layout.instance_class.max()) + 1, dim, opts.seed)
    if name == "protosupcon":
        return _protosupcon(b, labels, protos, opts.prototype_copies, opts.tau, opts.prototypes_as_anchors)
    if name == "ce-fixed":
        return _ce_fixed(b, labels, protos, opts.tau)
    if opts.base == "clop" or opts.base not in LOSS_NAMES:
        raise ValueError(f"base must be a loss name other than 'clop'; got {opts.base!r}")
    base_layout = Layout.instances(m, 2) if opts.base in SELF_SUPERVISED else layout
    base = structured_spec(opts.base, base_layout, dim, opts, None, device, dtype)
    lab = labels if clop_labels is None else clop_labels
    term = _clop_term(b, lab, protos, opts.lam, opts.distance)
    terms = [(1.0, base), (1.0, term)]
    return SumSpec(terms, base.n_free, name=f"clop+{base.name}",
                   params={"name": f"clop+{base.name}", "terms": [{"weight": w, **t.params} for w, t in terms]})

