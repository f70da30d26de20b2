"""InfoNCE-family losses on M positive pairs, two-view layout (dhel_kcl.md §2.1, anchors.md §8.1).

Rows 0..M-1 are U (view 1), rows M..2M-1 are V (view 2); row a's positive is p(a) = a + M mod 2M.
All are means over anchors.  Per anchor (s = cosine similarity, tau = temperature):

- ``infonce`` (one direction, CPC form)  -u_i.v_i/tau + log sum_j exp(u_i.v_j/tau)             [RECON]
- ``simclr`` (NT-Xent, 2M anchors)       -s_{a,p(a)}/tau + log sum_{b != a} exp(s_ab/tau)       [RECON]
- ``dcl`` (positive removed)             -s_{a,p(a)}/tau + log sum_{b not in {a,p(a)}} exp(s_ab/tau)
  ``symmetric=True`` (default, 2M anchors as in anchors.md §8.1 and lightly's DCLLoss) or
  ``symmetric=False`` (U anchors only, Yeh et al. one-directional form)                       [RECON]
- ``dhel`` ``form="paper"``              -u_i.v_i/tau + log sum_{j != i} exp(u_i.u_j/tau)       [RECON]
  ``form="code"`` (dhel2)                  ... + log sum_{j != i} exp(v_i.v_j/tau)             [CODE]
"""

from __future__ import annotations

import numpy as np

from ..templates import LogSumExpLoss, LseGroup
from ..validation import check_choice, check_int, check_positive
from ._masks import logw_from_mask, partner


def _setup(instances: int, tau: float) -> tuple[int, float, np.ndarray]:
    m = check_int(instances, "instances", 2)
    return m, check_positive(tau, "tau"), partner(m)


def _positive_matrix(m: int, anchors: np.ndarray) -> np.ndarray:
    p = np.zeros((2 * m, 2 * m))
    p[anchors, partner(m)[anchors]] = 1.0
    return p


def infonce(instances: int, tau: float) -> LogSumExpLoss:
    """One-directional InfoNCE: anchors U, candidates all of V (positive in the denominator)."""
    m, tau, _ = _setup(instances, tau)
    n = 2 * m
    anchors = np.arange(m)
    mask = np.zeros((n, n), dtype=bool)
    mask[:m, m:] = True
    coef = np.zeros(n)
    coef[anchors] = 1.0
    return LogSumExpLoss(
        _positive_matrix(m, anchors), [LseGroup(coef, logw_from_mask(mask))], tau, m,
        n_points=n, name="infonce", params={"instances": m},
    )


def simclr(instances: int, tau: float) -> LogSumExpLoss:
    """SimCLR / NT-Xent: 2M anchors, denominator all b != a (positive included)."""
    m, tau, _ = _setup(instances, tau)
    n = 2 * m
    mask = ~np.eye(n, dtype=bool)
    return LogSumExpLoss(
        _positive_matrix(m, np.arange(n)), [LseGroup(np.ones(n), logw_from_mask(mask))], tau, n,
        n_points=n, name="simclr", params={"instances": m},
    )


def dcl(instances: int, tau: float, symmetric: bool = True) -> LogSumExpLoss:
    """Decoupled contrastive loss: NT-Xent with the positive removed from the denominator."""
    m, tau, part = _setup(instances, tau)
    n = 2 * m
    mask = ~np.eye(n, dtype=bool)
    mask[np.arange(n), part] = False
    anchors = np.arange(n) if symmetric else np.arange(m)
    coef = np.zeros(n)
    coef[anchors] = 1.0
    return LogSumExpLoss(
        _positive_matrix(m, anchors), [LseGroup(coef, logw_from_mask(mask))], tau, anchors.size,
        n_points=n, name="dcl", params={"instances": m, "symmetric": bool(symmetric)},
    )


def dhel(instances: int, tau: float, form: str = "paper") -> LogSumExpLoss:
    """Decoupled hyperspherical energy loss; ``form`` is "paper" (U energy only) or "code" (+ V energy)."""
    m, tau, _ = _setup(instances, tau)
    form = check_choice(form, "form", ("paper", "code"))
    n = 2 * m
    same_view = np.zeros((n, n), dtype=bool)
    same_view[:m, :m] = True
    same_view[m:, m:] = True
    np.fill_diagonal(same_view, False)
    coef = np.zeros(n)
    coef[:m] = 1.0
    if form == "code":
        coef[m:] = 1.0  # row M+i carries anchor i's second group (V energy)
    return LogSumExpLoss(
        _positive_matrix(m, np.arange(m)), [LseGroup(coef, logw_from_mask(same_view))], tau, m,
        n_points=n, name="dhel" if form == "paper" else "dhel2", params={"instances": m, "form": form},
    )
