"""Supervised contrastive losses (anchors.md §8.1, ssem.md §2, prototypes.md §1.3, clop.md §2.2).

All are instances of the log-sum-exp template.  Rows may carry a multiplicity m_r (a prototype
row standing for n_w identical copies), so the column set of anchor r counts m_j copies of row j
and m_r - 1 copies of itself.

- ``supcon`` (Khosla et al. 2020), A(i) = {a != i}, P(i) = {p in A(i), y_p = y_i}:
    L_out(i) = -(1/|P(i)|) sum_{p in P(i)} s_ip/tau + log sum_{a in A(i)} exp(s_ia/tau)
    L_in(i)  = -log[(1/|P(i)|) sum_{p in P(i)} exp(s_ip/tau)] + log sum_{a in A(i)} exp(s_ia/tau)
  ``reduction="mean"`` (toolkit default, mean over anchors) or ``"sum"`` (prototypes.md canonical).
  Anchors without positives raise ValueError (anchors.md REQ-1) unless ``no_positive="exclude"``,
  which drops them as anchors, keeps them as negatives and records how many were excluded.
- ``supcl``: the SSEM mixture (1 - alpha) L_sup + alpha L_self, variants "code" (self in the
  denominator and among the self positives) and "self-excluded" (ssem.md §2.2-2.3).
- ``protosupcon``: SupCon on the batch enlarged by n_w fixed copies of each prototype, with the
  prototype copies as anchors or not (prototypes.md §1.3, [REC]).
- ``ce_fixed``: softmax cross-entropy with the fixed classifier W/tau on unit-norm features,
  -w_{y_i}.z_i/tau + log sum_c exp(w_c.z_i/tau) (prototypes.md §2 T4).
"""

from __future__ import annotations

import numpy as np

from ..layout import Layout
from ..templates import LogSumExpLoss, LseGroup
from ..validation import (
    check_choice,
    check_int,
    check_labels,
    check_points,
    check_positive,
    check_unit_interval,
)
from ._masks import logw_from_counts, logw_from_mask


def _weighted_supcon(
    labels: np.ndarray, mult: np.ndarray, anchor_weight: np.ndarray, tau: float, variant: str,
    reduction: str, no_positive: str, n_free: int, fixed: np.ndarray | None, name: str, params: dict,
) -> LogSumExpLoss:
    variant = check_choice(variant, "variant", ("out", "in"))
    reduction = check_choice(reduction, "reduction", ("mean", "sum"))
    no_positive = check_choice(no_positive, "no_positive", ("raise", "exclude"))
    counts = np.tile(mult.astype(float), (labels.size, 1))
    counts[np.diag_indices(labels.size)] -= 1.0
    pos_counts = counts * (labels[:, None] == labels[None, :])
    n_pos = pos_counts.sum(axis=1)
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
    all_cols = LseGroup(a, logw_from_counts(counts))
    if variant == "out":
        positives = a[:, None] * pos_counts / safe[:, None]
        groups, const = [all_cols], 0.0
    else:
        positives = np.zeros_like(counts)
        groups = [all_cols, LseGroup(-a, logw_from_counts(pos_counts))]
        const = float(np.sum(a * np.log(safe))) / denom
    params = {**params, "variant": variant, "reduction": reduction,
              "excluded_anchors": int(lonely.sum()) if no_positive == "exclude" else 0}
    return LogSumExpLoss(positives, groups, tau, denom, const, n_points=n_free, fixed=fixed,
                         name=name, params=params)


def supcon(labels: object, tau: float, variant: str = "out", reduction: str = "mean",
           no_positive: str = "raise") -> LogSumExpLoss:
    """Khosla et al. SupCon, L_out (``variant="out"``) or L_in (``"in"``), on per-row labels."""
    lab = check_labels(labels)
    if lab.size < 2:
        raise ValueError(f"labels must hold at least 2 rows; got {lab.size}")
    tau = check_positive(tau, "tau")
    ones = np.ones(lab.size)
    return _weighted_supcon(lab, ones, ones, tau, variant, reduction, no_positive, lab.size, None,
                            "supcon" if variant == "out" else "supcon-in", {})


def _unit_rows(rows: object, name: str) -> np.ndarray:
    arr = check_points(rows, name)
    return arr / np.linalg.norm(arr, axis=1, keepdims=True)


def protosupcon(labels: object, prototypes: object, copies: int, tau: float,
                prototypes_as_anchors: bool = False, variant: str = "out",
                reduction: str = "mean", no_positive: str = "raise") -> LogSumExpLoss:
    """SupCon on the batch enlarged by ``copies`` fixed copies of each (unit) prototype row.

    Only a prototype anchor can lack a positive (P-anchor, n_w = 1, its class absent from the
    batch); ``no_positive`` treats it as in :func:`supcon`.
    """
    lab = check_labels(labels)
    protos = _unit_rows(prototypes, "prototypes")
    k = protos.shape[0]
    n_w = check_int(copies, "copies", 1)
    tau = check_positive(tau, "tau")
    if lab.size and (lab.min() < 0 or lab.max() >= k):
        raise ValueError(f"labels must lie in [0, {k - 1}] (one prototype per class); got {lab.min()}..{lab.max()}")
    all_labels = np.concatenate([lab, np.arange(k)])
    mult = np.concatenate([np.ones(lab.size), np.full(k, float(n_w))])
    anchors = np.concatenate([np.ones(lab.size), np.full(k, float(n_w) if prototypes_as_anchors else 0.0)])
    params = {"copies": n_w, "prototypes_as_anchors": bool(prototypes_as_anchors), "classes": k}
    return _weighted_supcon(all_labels, mult, anchors, tau, variant, reduction, no_positive, lab.size, protos,
                            "protosupcon", params)


def ce_fixed(labels: object, classifier: object, tau: float) -> LogSumExpLoss:
    """Cross-entropy with the fixed classifier ``classifier``/tau (rows used as given) on unit features."""
    lab = check_labels(labels)
    w = check_points(classifier, "classifier", allow_zero_rows=True)
    tau = check_positive(tau, "tau")
    k, n = w.shape[0], lab.size
    if n == 0 or lab.min() < 0 or lab.max() >= k:
        raise ValueError(f"labels must be non-empty and lie in [0, {k - 1}] (one classifier row per class)")
    size = n + k
    positives = np.zeros((size, size))
    positives[np.arange(n), n + lab] = 1.0
    mask = np.zeros((size, size), dtype=bool)
    mask[:n, n:] = True
    coef = np.zeros(size)
    coef[:n] = 1.0
    return LogSumExpLoss(positives, [LseGroup(coef, logw_from_mask(mask))], tau, n, n_points=n, fixed=w,
                         name="ce-fixed", params={"classes": k})


def supcl(layout: Layout, alpha: float, tau: float, variant: str = "code", reduction: str = "anchor",
          empty_positive: str = "raise") -> LogSumExpLoss:
    """SSEM mixture (1 - alpha) L_sup + alpha L_self (ssem.md §2.2-2.3), view-major ``layout``.

    ``reduction="anchor"``: L = (1/M) sum_j l_j.  ``reduction="pair"``: each term is one global mean
    over its (anchor, positive) pairs (the authors' CIFAR code; differs only for unbalanced classes).
    ``empty_positive="zero"``: an anchor with no supervised positive contributes 0 to the supervised
    term and still counts in the mean (authors' ImageNet code); the default raises ValueError.
    """
    if not isinstance(layout, Layout):
        raise ValueError("layout must be a solvers.layout.Layout")
    alpha = check_unit_interval(alpha, "alpha")
    tau = check_positive(tau, "tau")
    variant = check_choice(variant, "variant", ("code", "self-excluded"))
    reduction = check_choice(reduction, "reduction", ("anchor", "pair"))
    empty_positive = check_choice(empty_positive, "empty_positive", ("raise", "zero"))
    rows = layout.n_rows
    same_inst = layout.same_instance()
    sup_mask = layout.same_class() & ~same_inst
    self_mask = same_inst.copy()
    den_mask = np.ones((rows, rows), dtype=bool)
    if variant == "self-excluded":
        if layout.views < 2 and alpha > 0:
            raise ValueError("views must be >= 2 for variant='self-excluded' with alpha > 0 (no self positive)")
        np.fill_diagonal(self_mask, False)
        np.fill_diagonal(den_mask, False)
    n_self = self_mask.sum(axis=1).astype(float)
    n_sup = sup_mask.sum(axis=1).astype(float)
    if alpha < 1 and np.any(n_sup == 0) and empty_positive == "raise":
        row = int(np.flatnonzero(n_sup == 0)[0])
        raise ValueError(
            f"labels: row {row} has no supervised positive (its class has one instance); every class needs "
            "at least 2 instances, or pass empty_positive='zero'"
        )
    positives = np.zeros((rows, rows))
    coef = np.zeros(rows)
    parts = [(alpha, self_mask, n_self), (1.0 - alpha, sup_mask, n_sup)]
    for weight, mask, count in parts:
        if weight == 0.0:
            continue
        has = count > 0
        if reduction == "anchor":
            positives += weight * mask / np.where(has, count, 1.0)[:, None]
            coef += weight * has
        else:
            total = count.sum()
            positives += weight * mask / total
            coef += weight * count / total
    denom = float(rows) if reduction == "anchor" else 1.0
    params = {"alpha": alpha, "variant": variant, "reduction": reduction, "views": layout.views,
              "class_sizes": layout.class_sizes.tolist()}
    return LogSumExpLoss(positives, [LseGroup(coef, logw_from_mask(den_mask))], tau, denom, n_points=rows,
                         name="supcl", params=params)
