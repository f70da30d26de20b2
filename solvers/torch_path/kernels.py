"""Torch versions of the pair kernels of :mod:`solvers.kernels` (a mapping, not a second library).

Each kernel class of the numpy path maps to torch functions of the inner product s with the
same formulas (anchors.md §1, through the squared distance x = r^2 = 2 - 2 s clamped at 0):

    value(s) = k(s),   deriv(s) = dk/ds,   log_value(s) = log k(s),   dlog_ds(s) = d log k / ds

The parameters (t, s, c, alpha) are read from the numpy kernel object, so there is exactly one
place where a kernel is parametrised.  ``deriv`` keeps the numpy conventions at the singular
points (e.g. :class:`~solvers.kernels.DistancePower` uses the subgradient 0 at r = 0, clop.md
§2.3), which is why the dense path differentiates kernels through :func:`kernel_apply` (an
autograd function whose backward is ``deriv``) rather than by autograd of ``value``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..kernels import (
    DistancePower,
    Gaussian,
    InverseMultiquadric,
    Kernel,
    Linear,
    Log,
    LogOnePlus,
    Riesz,
    Square,
)

Fn = Callable[[torch.Tensor], torch.Tensor]


def sq_dist(s: torch.Tensor) -> torch.Tensor:
    """Squared chordal distance 2 - 2 s, clamped at 0 (as :func:`solvers.kernels.sq_dist`)."""
    return torch.clamp_min(2.0 - 2.0 * s, 0.0)


@dataclass(frozen=True)
class TorchKernel:
    """value, deriv (dk/ds) and, for exp-type kernels, log_value and dlog_ds on torch tensors."""

    name: str
    value: Fn
    deriv: Fn
    log_value: Fn | None = None
    dlog_ds: Fn | None = None
    both: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None

    def value_and_deriv(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(k(s), dk/ds) sharing the common subexpressions (the streamed path's kernel call)."""
        if self.both is not None:
            return self.both(s)
        return self.value(s), self.deriv(s)


def _gaussian(k: Gaussian) -> TorchKernel:
    t = float(k.t)

    def both(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = torch.exp(-t * sq_dist(s))
        return e, 2.0 * t * e

    return TorchKernel(
        k.name,
        lambda s: torch.exp(-t * sq_dist(s)),
        lambda s: 2.0 * t * torch.exp(-t * sq_dist(s)),
        lambda s: -t * (2.0 - 2.0 * s),
        lambda s: torch.full_like(s, 2.0 * t),
        both,
    )


def _riesz(k: Riesz) -> TorchKernel:
    e = float(k.s)
    sign = math.copysign(1.0, e)
    def both(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = sq_dist(s)
        if e < 0:  # x^{|s|/2}: keep the power form of the derivative at x = 0
            return sign * x ** (-e / 2.0), abs(e) * x ** (-e / 2.0 - 1.0)
        v = x ** (-e / 2.0)
        return v, abs(e) * v / x  # |s| x^{-s/2-1}; inf at x = 0 as in the power form

    return TorchKernel(
        k.name,
        lambda s: sign * sq_dist(s) ** (-e / 2.0),
        lambda s: abs(e) * sq_dist(s) ** (-e / 2.0 - 1.0),
        both=both,
    )


def _log(k: Log) -> TorchKernel:
    def both(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = sq_dist(s)
        return -0.5 * torch.log(x), 1.0 / x

    return TorchKernel(k.name, lambda s: -0.5 * torch.log(sq_dist(s)), lambda s: 1.0 / sq_dist(s), both=both)


def _log_one_plus(k: LogOnePlus) -> TorchKernel:
    t, c = float(k.t), float(k.c)
    return TorchKernel(
        k.name,
        lambda s: -c * torch.log1p(t * sq_dist(s)),
        lambda s: 2.0 * c * t / (1.0 + t * sq_dist(s)),
    )


def _imq(k: InverseMultiquadric) -> TorchKernel:
    c = float(k.c)
    return TorchKernel(
        k.name,
        lambda s: c / torch.sqrt(c * c + sq_dist(s)),
        lambda s: c * (c * c + sq_dist(s)) ** -1.5,
    )


def _distance_power(k: DistancePower) -> TorchKernel:
    a = float(k.alpha)

    def deriv(s: torch.Tensor) -> torch.Tensor:
        x = sq_dist(s)
        if a >= 2.0:  # regular at r = 0, as in the numpy kernel
            return -a * x ** (a / 2.0 - 1.0)
        safe = torch.where(x > 0, x, torch.ones_like(x))
        return torch.where(x > 0, -a * safe ** (a / 2.0 - 1.0), torch.zeros_like(x))

    return TorchKernel(k.name, lambda s: sq_dist(s) ** (a / 2.0), deriv)


def _linear(k: Linear) -> TorchKernel:
    return TorchKernel(k.name, lambda s: s, torch.ones_like)


def _square(k: Square) -> TorchKernel:
    return TorchKernel(k.name, lambda s: s * s, lambda s: 2.0 * s)


#: kernel class of :mod:`solvers.kernels` -> factory of its torch functions
TORCH_KERNELS: dict[type, Callable[[Kernel], TorchKernel]] = {
    Gaussian: _gaussian,
    Riesz: _riesz,
    Log: _log,
    LogOnePlus: _log_one_plus,
    InverseMultiquadric: _imq,
    DistancePower: _distance_power,
    Linear: _linear,
    Square: _square,
}


def torch_kernel(kernel: Kernel) -> TorchKernel:
    """The torch functions of a numpy kernel object (its class or a base class must be mapped)."""
    for cls in type(kernel).__mro__:
        if cls in TORCH_KERNELS:
            return TORCH_KERNELS[cls](kernel)
    raise ValueError(
        f"kernel must be one of {', '.join(c.__name__ for c in TORCH_KERNELS)} for the torch path; "
        f"got {type(kernel).__name__} (add it to solvers.torch_path.kernels.TORCH_KERNELS)"
    )


class _Elementwise(torch.autograd.Function):
    """y = f(s) with the backward f'(s) supplied explicitly (keeps the numpy subgradients)."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, f: Fn, df: Fn) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(s)
        ctx.df = df
        return f(s)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (s,) = ctx.saved_tensors
        return grad_out * ctx.df(s), None, None


def kernel_apply(s: torch.Tensor, kernel: TorchKernel, log: bool = False) -> torch.Tensor:
    """k(s) (or log k(s)) with the gradient dk/ds (or d log k/ds) of the mapping, for autograd."""
    if log:
        if kernel.log_value is None or kernel.dlog_ds is None:
            raise ValueError(f"kernel {kernel.name!r} has no log form (needed for outer='log')")
        return _Elementwise.apply(s, kernel.log_value, kernel.dlog_ds)
    return _Elementwise.apply(s, kernel.value, kernel.deriv)
