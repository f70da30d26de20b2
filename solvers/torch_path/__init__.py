"""The thin torch path: every library loss on torch tensors, dense or blockwise (DESIGN.md).

- :func:`to_torch` — a numpy loss object (``LogSumExpLoss``, ``PairKernelLoss``, ``SumLoss``,
  ``ClopManhattan``) as a :class:`TorchLoss`, from its own template matrices;
- :func:`structured_torch_loss` — the same losses from rule-generated blocks (per-row label
  arrays), with no N x N array anywhere: memory O(N * block) for N = 65,536;
- :func:`evaluate_torch` — value and gradient for the ``collapsekit loss --backend torch`` CLI;
- :mod:`.distributed` — gathering shards with gradient (anchors.md REQ-6).

torch is an optional dependency (``pip install collapsekit[torch]``); the numpy path never
imports this package.
"""

from .evaluate import StreamedLoss, blockwise_value_and_grad, dense_value
from .kernels import TORCH_KERNELS, TorchKernel, torch_kernel
from .loss import (
    TorchEvaluation,
    TorchLoss,
    evaluate_torch,
    normalize_rows_torch,
    resolve_device,
    resolve_dtype,
    structured_torch_loss,
    to_torch,
)
from .spec import spec_from_loss

__all__ = [
    "TORCH_KERNELS",
    "StreamedLoss",
    "TorchEvaluation",
    "TorchKernel",
    "TorchLoss",
    "blockwise_value_and_grad",
    "dense_value",
    "evaluate_torch",
    "normalize_rows_torch",
    "resolve_device",
    "resolve_dtype",
    "spec_from_loss",
    "structured_torch_loss",
    "to_torch",
    "torch_kernel",
]
