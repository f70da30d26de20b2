"""The user-facing torch loss: normalisation, shape checks, dense or blockwise evaluation.

:class:`TorchLoss` mirrors :class:`solvers.base.SphereLoss` on torch tensors: rows are mapped
to the sphere, z_i = x_i / |x_i| (anchors.md REQ-4: explicit, default on; a zero row raises
ValueError), and the loss is evaluated either densely (autograd through the whole S, memory
O(N^2)) or blockwise (one streamed pass, memory O(N * block), :mod:`.evaluate`).  The result is
a 0-d tensor that autograd differentiates with respect to the raw points in both modes.

Build one from a numpy loss object (:func:`to_torch`, the template's own matrices) or from the
library's batch structures without any N x N array (:func:`structured_torch_loss`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..base import SphereLoss
from ..layout import Layout
from ..validation import check_choice, check_int
from .evaluate import StreamedLoss, as_index, blockwise_value_and_grad, dense_value
from .spec import KernelSpec, LseSpec, Spec, SumSpec, spec_from_loss

MODES = ("blockwise", "dense")
DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device; 'cuda' without a GPU raises ValueError."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but torch reports no CUDA device; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda'; got {device!r}")
    return dev


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """'float64' / 'float32' (or the torch dtype itself)."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be float64 or float32; got {dtype}")
        return dtype
    return DTYPES[check_choice(dtype, "dtype", tuple(DTYPES))]


def normalize_rows_torch(points: torch.Tensor) -> torch.Tensor:
    """z_i = x_i / |x_i|; zero, NaN or inf rows raise ValueError (REQ-4)."""
    if not bool(torch.isfinite(points).all()):
        bad = int(torch.nonzero(~torch.isfinite(points))[0, 0])
        raise ValueError(f"points must be finite (no NaN or inf); row {bad} is not")
    norms = torch.linalg.vector_norm(points, dim=1)
    if bool((norms == 0).any()):
        bad = int(torch.nonzero(norms == 0)[0, 0])
        raise ValueError(
            f"points row {bad} is the zero vector; rows must have norm > 0 to be normalised onto the sphere"
        )
    return points / norms[:, None]


class TorchLoss:
    """A library loss on torch tensors (float32/float64, CPU/CUDA), differentiable by autograd."""

    def __init__(self, spec: Spec, device: torch.device, dtype: torch.dtype) -> None:
        self.spec = spec
        self.device = device
        self.dtype = dtype

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def n_points(self) -> int | None:
        return self.spec.n_free

    @property
    def n_total(self) -> int | None:
        """Free rows plus fixed rows (the size of S)."""
        spec = self.spec
        return spec.n_total if isinstance(spec, (LseSpec, KernelSpec)) else spec.n_free

    def describe(self) -> dict:
        return dict(self.spec.params) if self.spec.params else {"name": self.name}

    def _points(self, points: object) -> torch.Tensor:
        x = points if isinstance(points, torch.Tensor) else torch.as_tensor(np.asarray(points, dtype=float))
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(
                f"points must be a 2-D array of shape (N, d) with points as rows; got shape {tuple(x.shape)}"
            )
        if self.n_points is not None and x.shape[0] != self.n_points:
            raise ValueError(f"points must have {self.n_points} rows for this {self.name} loss; got {x.shape[0]}")
        if x.dtype != self.dtype or x.device != self.device:
            x = x.to(device=self.device, dtype=self.dtype)
        return x

    def __call__(self, points: object, normalize: bool = True, mode: str = "blockwise", block: int = 1024,
                 rows: object = None, include_constant: bool = True) -> torch.Tensor:
        """The loss as a 0-d tensor (differentiable with respect to ``points`` when it requires grad).

        ``mode`` "blockwise" (memory O(N * block)) or "dense" (O(N^2)); ``rows`` restricts the
        anchors (blockwise only, see :mod:`.evaluate`); ``include_constant`` adds c0 (set it on
        exactly one shard of a partition).
        """
        mode = check_choice(mode, "mode", MODES)
        block = check_int(block, "block", 1)
        x = self._points(points)
        z = normalize_rows_torch(x) if normalize else x
        if mode == "dense":
            if rows is not None or not include_constant:
                raise ValueError("rows/include_constant: anchor subsets need mode='blockwise'")
            return dense_value(self.spec, z)
        idx = as_index(rows, self.n_total or z.shape[0], self.device)
        return StreamedLoss.apply(z, self.spec, block, idx, include_constant)

    def value_and_grad(self, points: object, normalize: bool = True, mode: str = "blockwise",
                       block: int = 1024) -> tuple[float, torch.Tensor]:
        """(value, dL/d points) — the gradient through the normalisation, as in SphereLoss."""
        x = self._points(points).detach().clone().requires_grad_(True)
        val = self(x, normalize=normalize, mode=mode, block=block)
        (grad,) = torch.autograd.grad(val, x)
        return float(val.detach()), grad

    def value(self, points: object, normalize: bool = True, mode: str = "blockwise", block: int = 1024) -> float:
        """Loss value only (the blockwise path then skips the gradient work)."""
        x = self._points(points)
        z = normalize_rows_torch(x) if normalize else x
        if mode == "dense":
            with torch.no_grad():
                return float(dense_value(self.spec, z))
        v, _ = blockwise_value_and_grad(self.spec, z, check_int(block, "block", 1), need_grad=False)
        return float(v)


def to_torch(loss: SphereLoss, device: str | torch.device = "cpu",
             dtype: str | torch.dtype = torch.float64) -> TorchLoss:
    """The torch version of a numpy loss object, from its template matrices (:func:`spec_from_loss`)."""
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    return TorchLoss(spec_from_loss(loss, dev, dt), dev, dt)


def structured_torch_loss(name: str, layout: Layout, dim: int, opts=None, clop_labels: np.ndarray | None = None,
                          device: str | torch.device = "cpu",
                          dtype: str | torch.dtype = torch.float64) -> TorchLoss:
    """The loss ``name`` of :func:`solvers.loss_registry.build_loss` with rule-generated blocks (no N x N array)."""
    from .structured import structured_spec

    dev, dt = resolve_device(device), resolve_dtype(dtype)
    return TorchLoss(structured_spec(name, layout, dim, opts, clop_labels, dev, dt), dev, dt)


@dataclass
class TorchEvaluation:
    """Result of :func:`evaluate_torch` (value, gradient with respect to the raw points, timing)."""

    value: float
    grad: np.ndarray
    grad_norm: float
    seconds: float
    device: str
    dtype: str
    mode: str
    block: int

    def summary(self) -> dict:
        return {"value": self.value, "grad_norm": self.grad_norm, "seconds": self.seconds, "device": self.device,
                "dtype": self.dtype, "mode": self.mode, "block": self.block}


def evaluate_torch(loss: SphereLoss | TorchLoss, points: object, device: str | torch.device = "cpu",
                   dtype: str | torch.dtype = "float64", block: int = 1024,
                   mode: str = "blockwise") -> TorchEvaluation:
    """Value and gradient (raw points, normalisation included) of ``loss`` with the torch path.

    ``loss`` is a numpy loss object (converted with :func:`to_torch`) or a :class:`TorchLoss`
    (e.g. from :func:`structured_torch_loss` for large N).  This is what ``collapsekit loss
    --backend torch`` calls.
    """
    tl = loss if isinstance(loss, TorchLoss) else to_torch(loss, device, dtype)
    start = time.perf_counter()
    val, grad = tl.value_and_grad(points, mode=mode, block=block)
    if tl.device.type == "cuda":
        torch.cuda.synchronize(tl.device)
    seconds = time.perf_counter() - start
    g = grad.detach().to("cpu", torch.float64).numpy()
    return TorchEvaluation(val, g, float(np.linalg.norm(g)), seconds, str(tl.device),
                           str(tl.dtype).replace("torch.", ""), mode, int(block))


__all__ = ["TorchLoss", "to_torch", "structured_torch_loss", "evaluate_torch", "SumSpec"]
