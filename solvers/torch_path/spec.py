"""Torch-side descriptions of the two templates, read from the numpy loss objects.

A spec holds the numbers of a template (tau, denominator D, constant c0, fixed rows F, group
coefficients c_g, kernel scales) as tensors on one device and dtype, and its N x N matrices as
:class:`~solvers.torch_path.blocks.BlockMatrix` sources:

- :class:`LseSpec` — template 1 (``solvers.templates.LogSumExpLoss``)::

      L(S) = c0 + (1/D) [ - sum_ij P_ij S_ij / tau + sum_g sum_r c_g[r] log sum_j exp(S_rj / tau + B_g[r, j]) ]

- :class:`KernelSpec` — template 2 (``solvers.templates.PairKernelLoss``)::

      L(S) = c0 + sum_t scale_t sum_ij W_t,ij k_t(S_ij)          (outer = "none")
      L(S) = c0 + scale log sum_ij W_ij exp(log k(S_ij))         (outer = "log")

- :class:`SumSpec` — ``solvers.base.SumLoss``; :class:`ManhattanSpec` — the CLOP Manhattan term
  (``solvers.losses.clop.ClopManhattan``, not a function of S).

:func:`spec_from_loss` consumes the numpy objects' public attributes (DESIGN.md: "their matrices
are public attributes, so other backends can consume the same definition"); nothing is re-derived.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..base import SphereLoss, SumLoss
from ..losses.clop import ClopManhattan
from ..templates import LogSumExpLoss, PairKernelLoss
from .blocks import BlockMatrix, DenseMatrix
from .kernels import TorchKernel, torch_kernel


@dataclass
class LseSpec:
    """Template 1 on torch (see module docstring)."""

    n_free: int
    tau: float
    denominator: float
    constant: float
    fixed: torch.Tensor | None
    positives: BlockMatrix | None
    groups: list[tuple[torch.Tensor, BlockMatrix]]
    name: str = "lse"
    params: dict = field(default_factory=dict)

    @property
    def n_total(self) -> int:
        return self.n_free + (0 if self.fixed is None else int(self.fixed.shape[0]))

    def row_support(self) -> torch.Tensor:
        sup = torch.zeros(self.n_total, dtype=torch.bool, device=self.groups[0][0].device)
        if self.positives is not None:
            sup |= self.positives.row_support()
        for coef, _ in self.groups:
            sup |= coef != 0
        return sup


@dataclass
class KernelTermSpec:
    """scale * sum_ij W_ij k(S_ij)."""

    kernel: TorchKernel
    scale: float
    weights: BlockMatrix


@dataclass
class KernelSpec:
    """Template 2 on torch (see module docstring)."""

    n_free: int
    terms: list[KernelTermSpec]
    outer: str
    constant: float
    fixed: torch.Tensor | None
    name: str = "kernel"
    params: dict = field(default_factory=dict)

    @property
    def n_total(self) -> int:
        return self.n_free + (0 if self.fixed is None else int(self.fixed.shape[0]))

    def row_support(self) -> torch.Tensor:
        sup = self.terms[0].weights.row_support().clone()
        for t in self.terms[1:]:
            sup |= t.weights.row_support()
        return sup


@dataclass
class ManhattanSpec:
    """lam * mean over labelled rows r of |z_r - c_{y_r}|_1 (clop.md §2.3)."""

    n_free: int | None
    rows: torch.Tensor
    targets: torch.Tensor
    lam: float
    name: str = "clop-manhattan"
    params: dict = field(default_factory=dict)


@dataclass
class SumSpec:
    """sum_k w_k L_k on the same points."""

    terms: list[tuple[float, object]]
    n_free: int | None
    name: str = "sum"
    params: dict = field(default_factory=dict)


Spec = LseSpec | KernelSpec | ManhattanSpec | SumSpec


def _fixed(fixed: np.ndarray | None, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
    return None if fixed is None else torch.as_tensor(np.asarray(fixed), dtype=dtype, device=device)


def spec_from_loss(loss: SphereLoss, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float64) -> Spec:
    """The torch spec of a numpy loss object (its template matrices moved to ``device``)."""
    device = torch.device(device)
    if isinstance(loss, LogSumExpLoss):
        pos = loss.positives
        return LseSpec(
            n_free=int(loss.n_points if loss.n_points is not None else pos.shape[0] - _n_fixed(loss)),
            tau=float(loss.tau), denominator=float(loss.denominator), constant=float(loss.constant),
            fixed=_fixed(loss.fixed, device, dtype),
            positives=DenseMatrix(pos, 0.0, device, dtype) if np.any(pos != 0) else None,
            groups=[(torch.as_tensor(g.coef, dtype=dtype, device=device), DenseMatrix(g.logw, -np.inf, device, dtype))
                    for g in loss.groups],
            name=loss.name, params=loss.describe(),
        )
    if isinstance(loss, PairKernelLoss):
        n = loss.terms[0].weights.shape[0]
        return KernelSpec(
            n_free=int(loss.n_points if loss.n_points is not None else n - _n_fixed(loss)),
            terms=[KernelTermSpec(torch_kernel(t.kernel), float(t.scale), DenseMatrix(t.weights, 0.0, device, dtype))
                   for t in loss.terms],
            outer=loss.outer, constant=float(loss.constant), fixed=_fixed(loss.fixed, device, dtype),
            name=loss.name, params=loss.describe(),
        )
    if isinstance(loss, SumLoss):
        return SumSpec([(float(w), spec_from_loss(t, device, dtype)) for w, t in loss.terms], loss.n_points,
                       name=loss.name, params=loss.describe())
    if isinstance(loss, ClopManhattan):
        return ManhattanSpec(
            loss.n_points, torch.as_tensor(loss.rows, dtype=torch.int64, device=device),
            torch.as_tensor(np.asarray(loss.targets, float), dtype=dtype, device=device),
            float(loss.lam), name=loss.name, params=loss.describe(),
        )
    raise ValueError(
        "loss must be a LogSumExpLoss, PairKernelLoss, SumLoss or ClopManhattan for the torch path; "
        f"got {type(loss).__name__}"
    )


def _n_fixed(loss) -> int:
    return 0 if loss.fixed is None else int(np.asarray(loss.fixed).shape[0])


def materialize(spec: Spec) -> Spec:
    """The same spec with every block source replaced by its dense matrix (the dense template on the
    device: O(N^2) memory, built once, e.g. for benchmarking the dense path without rebuilding rules)."""
    from dataclasses import replace

    if isinstance(spec, SumSpec):
        return replace(spec, terms=[(w, materialize(t)) for w, t in spec.terms])
    if isinstance(spec, ManhattanSpec):
        return spec

    def dense(m: BlockMatrix) -> DenseMatrix:
        if isinstance(m, DenseMatrix):
            return m
        values = m.dense()
        return DenseMatrix(values, m.empty, values.device, values.dtype)

    if isinstance(spec, LseSpec):
        return replace(spec, positives=None if spec.positives is None else dense(spec.positives),
                       groups=[(c, dense(lw)) for c, lw in spec.groups])
    return replace(spec, terms=[replace(t, weights=dense(t.weights)) for t in spec.terms])
