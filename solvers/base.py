"""Loss objects on the sphere and the one shared chain rule.

A :class:`SphereLoss` is evaluated on raw points X (rows).  Unless ``normalize=False`` the rows
are mapped to the sphere first, z_i = x_i / |x_i| (anchors.md REQ-4: explicit normalisation,
default on), and the gradient with respect to the raw points is

    dL/dx_i = (I - z_i z_i^T) dL/dz_i / |x_i|                      (dhel_kcl.md §2.4)

which is also the Riemannian gradient on the sphere when |x_i| = 1.

A :class:`GramLoss` depends on Z only through the similarity matrix S = Zf Zf^T of the free
rows Z stacked on optional fixed unit rows F (prototypes), Zf = [Z; F].  It supplies
``value_and_grad_gram(S) -> (L, dL/dS)`` and inherits

    dL/dZ = ((dL/dS) + (dL/dS)^T) Zf   restricted to the free rows      (DESIGN.md)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from .validation import check_points


def normalize_rows(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (Z, norms) with Z = X / |X| row-wise; X must have no zero rows."""
    norms = np.linalg.norm(points, axis=1)
    return points / norms[:, None], norms


def tangent_project(unit: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Project each row of ``grad`` onto the tangent space at the matching unit row: (I - z z^T) g."""
    return grad - unit * np.sum(unit * grad, axis=1, keepdims=True)


class SphereLoss(ABC):
    """A scalar objective of N points on S^{d-1}, with its analytic gradient.

    Subclasses implement :meth:`value_and_grad_unit` on unit rows.  ``n_points`` is the number of
    free rows the loss expects (``None`` when any number is accepted).
    """

    name: str = "loss"
    n_points: int | None = None

    @abstractmethod
    def value_and_grad_unit(self, unit: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss value and Euclidean gradient dL/dZ at unit rows Z (shape (N, d))."""

    def describe(self) -> dict:
        """Parameters that define this loss (for reports and JSON output)."""
        return {"name": self.name}

    # -- public API ---------------------------------------------------------------------
    def _prepare(self, points: object, normalize: bool) -> tuple[np.ndarray, np.ndarray]:
        x = check_points(points, "points")
        if self.n_points is not None and x.shape[0] != self.n_points:
            raise ValueError(
                f"points must have {self.n_points} rows for this {self.name} loss; got {x.shape[0]}"
            )
        if normalize:
            return normalize_rows(x)
        return x, np.ones(x.shape[0])

    def value(self, points: object, normalize: bool = True) -> float:
        """Loss value at ``points`` (rows; normalised onto the sphere unless ``normalize=False``)."""
        unit, _ = self._prepare(points, normalize)
        return float(self.value_and_grad_unit(unit)[0])

    def value_and_grad(self, points: object, normalize: bool = True) -> tuple[float, np.ndarray]:
        """Loss value and gradient with respect to the raw ``points`` (normalisation included).

        With ``normalize=False`` the rows are used as given and the plain Euclidean gradient
        dL/dZ is returned.
        """
        unit, norms = self._prepare(points, normalize)
        val, g_unit = self.value_and_grad_unit(unit)
        if not normalize:
            return float(val), g_unit
        return float(val), tangent_project(unit, g_unit) / norms[:, None]

    def riemannian_grad(self, unit: np.ndarray) -> tuple[float, np.ndarray]:
        """Value and Riemannian gradient on the product of spheres at unit rows ``unit``."""
        val, g = self.value_and_grad_unit(unit)
        return float(val), tangent_project(unit, g)

    def __add__(self, other: SphereLoss) -> SumLoss:
        return SumLoss([(1.0, self), (1.0, other)])

    def __rmul__(self, weight: float) -> SumLoss:
        return SumLoss([(float(weight), self)])


class GramLoss(SphereLoss):
    """A loss of the similarity matrix S = Zf Zf^T, Zf = [Z; F] with fixed unit rows F."""

    fixed: np.ndarray | None = None

    @abstractmethod
    def value_and_grad_gram(self, sim: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss value and dL/dS for the full (N + n_fixed) x (N + n_fixed) similarity matrix."""

    def full_points(self, unit: np.ndarray) -> np.ndarray:
        """Stack the free unit rows on the fixed rows (if any)."""
        if self.fixed is None:
            return unit
        if self.fixed.shape[1] != unit.shape[1]:
            raise ValueError(
                f"points must have the prototypes' dimension {self.fixed.shape[1]}; got {unit.shape[1]}"
            )
        return np.vstack([unit, self.fixed])

    def value_and_grad_unit(self, unit: np.ndarray) -> tuple[float, np.ndarray]:
        zf = self.full_points(unit)
        sim = zf @ zf.T
        val, g_sim = self.value_and_grad_gram(sim)
        g_full = (g_sim + g_sim.T) @ zf
        return val, g_full[: unit.shape[0]]


@dataclass
class SumLoss(SphereLoss):
    """Weighted sum of losses on the same points: L = sum_k w_k L_k."""

    terms: list[tuple[float, SphereLoss]] = field(default_factory=list)
    name: str = "sum"

    def __post_init__(self) -> None:
        sizes = {t.n_points for _, t in self.terms if t.n_points is not None}
        if len(sizes) > 1:
            raise ValueError(f"terms of a sum must expect the same number of points; got {sorted(sizes)}")
        self.n_points = sizes.pop() if sizes else None

    def value_and_grad_unit(self, unit: np.ndarray) -> tuple[float, np.ndarray]:
        total = 0.0
        grad = np.zeros_like(unit)
        for w, term in self.terms:
            v, g = term.value_and_grad_unit(unit)
            total += w * v
            grad += w * g
        return total, grad

    def describe(self) -> dict:
        return {"name": self.name, "terms": [{"weight": w, **t.describe()} for w, t in self.terms]}

    def __add__(self, other: SphereLoss) -> SumLoss:
        extra = other.terms if isinstance(other, SumLoss) else [(1.0, other)]
        return SumLoss(self.terms + extra, name=self.name)
