"""The CLOP prototype term (clop.md §2.3, [CODE] manhbeo/CLOP ``CLOPLoss.py``).

    L_CLOP = lam * mean over labelled rows r of delta(z_r, c_{y_r})      (0 when no row is labelled)

which equals (lam/|S_b|) sum_n (1/p) sum_v delta(u_n^(v), c_{y_n}) for p views per labelled
instance.  delta: "cosine" 1 - u.c; "euclidean" |u - c|_2 (not squared; subgradient 0 at u = c);
"manhattan" |u - c|_1 (sign(0) = 0).  Label -1 means unlabelled.  Prototype rows are used as given
(orthonormal from :func:`solvers.configurations.orthonormal_prototypes`, or the code's "ETF"
variant with norm sqrt(1 - 1/d)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..base import SphereLoss, SumLoss
from ..kernels import DistancePower, Linear
from ..templates import KernelTerm, PairKernelLoss
from ..validation import check_choice, check_labels, check_points, check_positive

DISTANCES = ("cosine", "euclidean", "manhattan")


@dataclass
class ClopManhattan(SphereLoss):
    """lam * mean_r |z_r - c_{y_r}|_1 over labelled rows (not a function of the Gram matrix)."""

    rows: np.ndarray
    targets: np.ndarray
    lam: float
    n_points: int | None = None
    name: str = "clop-manhattan"
    params: dict = field(default_factory=dict)

    def value_and_grad_unit(self, unit):
        grad = np.zeros_like(unit)
        if self.rows.size == 0:
            return 0.0, grad
        diff = unit[self.rows] - self.targets
        w = self.lam / self.rows.size
        grad[self.rows] = w * np.sign(diff)
        return float(w * np.abs(diff).sum()), grad

    def describe(self):
        return {"name": self.name, **self.params}


def clop_term(labels: object, prototypes: object, lam: float = 1.0, distance: str = "cosine") -> SphereLoss:
    """The CLOP term on per-row ``labels`` (-1 = unlabelled) with fixed ``prototypes`` rows."""
    lab = check_labels(labels)
    protos = check_points(prototypes, "prototypes")
    lam = check_positive(lam, "lam")
    distance = check_choice(distance, "distance", DISTANCES)
    k = protos.shape[0]
    if lab.size and (lab.min() < -1 or lab.max() >= k):
        raise ValueError(f"labels must lie in [-1, {k - 1}] (-1 = unlabelled, one prototype per class)")
    rows = np.flatnonzero(lab >= 0)
    n = lab.size
    params = {"lam": lam, "distance": distance, "labelled_rows": int(rows.size), "classes": k}
    if distance == "euclidean" and not np.allclose(np.linalg.norm(protos, axis=1), 1.0, atol=1e-12):
        raise ValueError("prototypes must have unit rows for distance='euclidean' (|u - c|^2 = 2 - 2 u.c)")
    if distance == "manhattan":
        return ClopManhattan(rows, protos[lab[rows]], lam, n_points=n, params=params)
    w = np.zeros((n + k, n + k))
    if rows.size:
        w[rows, n + lab[rows]] = 1.0 / rows.size
    if distance == "cosine":
        term, const = KernelTerm(w, Linear(), -lam), lam if rows.size else 0.0
    else:
        term, const = KernelTerm(w, DistancePower(1.0), lam), 0.0
    return PairKernelLoss([term], constant=const, n_points=n, fixed=protos, name=f"clop-{distance}", params=params)


def with_clop(base: SphereLoss, labels: object, prototypes: object, lam: float = 1.0,
              distance: str = "cosine") -> SumLoss:
    """L_base + L_CLOP (lam lives inside the CLOP term, as in the authors' code)."""
    return SumLoss([(1.0, base), (1.0, clop_term(labels, prototypes, lam, distance))], name=f"clop+{base.name}")
