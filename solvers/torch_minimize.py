"""Large-N minimisation on the product of spheres with the torch path (blockwise value + gradient).

For energies and losses whose N is beyond the dense numpy path (N in the thousands to tens of
thousands; each evaluation is O(N^2 d) flops and O(N * block) memory, anchors.md §12), this
module minimises a :class:`~solvers.torch_path.TorchLoss` over N unit rows.  Two methods:

- ``"lbfgs"``: ``torch.optim.LBFGS`` (strong-Wolfe line search) on the normalised
  parametrisation z_i = y_i / |y_i|, the same parametrisation as the numpy solver
  (:mod:`solvers.sphere_solver`); the objective normalises inside, so the iterates need no
  retraction (anchors.md REQ-8, first option);
- ``"rgd"``: Riemannian gradient descent, step z <- (z - a g) / |z - a g| row-wise (retraction
  after every step, REQ-8 second option), with g the Riemannian gradient (I - z z^T) dL/dz,
  Barzilai-Borwein step sizes and Armijo backtracking.

Stopping rule (as :func:`solvers.sphere_solver.local_solve`): Riemannian gradient norm
|grad_R L|_F <= gtol * max(1, |grad_E L|_F).  The returned points are renormalised, so
max_i ||z_i| - 1| <= 1e-15 in float64.  This is a local method: global strategies (restarts,
Riesz warm starts, anchors.md §11) belong to :mod:`solvers.sphere_solver`; at large N one
typically runs a single local descent from a seeded uniform start.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .base import SphereLoss
from .torch_path import TorchLoss, normalize_rows_torch, to_torch
from .validation import check_choice, check_int, check_points, check_positive

METHODS = ("lbfgs", "rgd")


@dataclass
class TorchSolveResult:
    """Outcome of :func:`minimize_torch` (fields as :class:`solvers.sphere_solver.LocalResult`)."""

    points: np.ndarray
    fun: float
    grad_norm: float
    grad_tol: float
    nit: int
    nfev: int
    success: bool
    message: str
    seconds: float
    method: str
    device: str
    dtype: str
    history: list[float] = field(default_factory=list)

    @property
    def x(self) -> np.ndarray:
        """scipy-style alias of ``points``."""
        return self.points

    def summary(self) -> dict:
        return {"fun": self.fun, "grad_norm": self.grad_norm, "grad_tol": self.grad_tol, "nit": self.nit,
                "nfev": self.nfev, "success": self.success, "message": self.message, "seconds": self.seconds,
                "method": self.method, "device": self.device, "dtype": self.dtype}


def stationarity(loss: TorchLoss, z: torch.Tensor, block: int) -> tuple[float, torch.Tensor, float]:
    """(L, Riemannian gradient (I - z z^T) dL/dz, |dL/dz|_F) at unit rows z."""
    val, g = loss.value_and_grad(z, normalize=False, block=block)
    rg = g - z * (z * g).sum(dim=1, keepdim=True)
    return val, rg, float(torch.linalg.vector_norm(g))


def minimize_torch(loss: SphereLoss | TorchLoss, start: object, *, method: str = "lbfgs", max_iter: int = 500,
                   gtol: float = 1e-8, block: int = 1024, device: str = "cpu", dtype: str = "float64",
                   history_size: int = 20, callback: Callable[[int, float], None] | None = None) -> TorchSolveResult:
    """Minimise ``loss`` over unit rows from ``start`` (an (N, d) array; rows are normalised).

    ``loss`` is a numpy loss object (converted with :func:`~solvers.torch_path.to_torch`) or a
    :class:`~solvers.torch_path.TorchLoss` (e.g. :func:`~solvers.torch_path.structured_torch_loss`
    for large N).  ``callback(iteration, value)`` is called after every outer iteration.
    """
    method = check_choice(method, "method", METHODS)
    max_iter = check_int(max_iter, "max_iter", 1)
    gtol = check_positive(gtol, "gtol")
    block = check_int(block, "block", 1)
    history_size = check_int(history_size, "history_size", 1)
    tl = loss if isinstance(loss, TorchLoss) else to_torch(loss, device, dtype)
    x0 = start if isinstance(start, torch.Tensor) else torch.as_tensor(check_points(start, "start"))
    z = normalize_rows_torch(x0.to(device=tl.device, dtype=tl.dtype)).detach()
    t0 = time.perf_counter()
    if method == "lbfgs":
        z, nit, nfev, hist = _lbfgs(tl, z, max_iter, gtol, block, history_size, callback)
    else:
        z, nit, nfev, hist = _rgd(tl, z, max_iter, gtol, block, callback)
    z = normalize_rows_torch(z.detach())
    val, rg, enorm = stationarity(tl, z, block)
    gnorm = float(torch.linalg.vector_norm(rg))
    tol = gtol * max(1.0, enorm)
    ok = gnorm <= tol
    if tl.device.type == "cuda":
        torch.cuda.synchronize(tl.device)
    msg = (f"{'converged' if ok else 'not converged'}: Riemannian gradient norm {gnorm:.3g} "
           f"{'<=' if ok else '>'} {tol:.3g} after {nit} iterations")
    return TorchSolveResult(z.cpu().to(torch.float64).numpy(), val, gnorm, tol, nit, nfev + 1, ok, msg,
                            time.perf_counter() - t0, method, str(tl.device), str(tl.dtype).replace("torch.", ""),
                            hist)


def _lbfgs(tl: TorchLoss, z: torch.Tensor, max_iter: int, gtol: float, block: int, history_size: int,
           callback, rounds: int = 5) -> tuple[torch.Tensor, int, int, list[float]]:
    """torch L-BFGS rounds (fresh curvature memory each round) while the value still decreases.

    A round ends at ``max_iter``, at max|dL/dy| <= gtol, or when the strong-Wolfe search can no
    longer decrease the value (near a minimum the decrease per step falls below the float64
    resolution of the value, about 1e-16 |L|, as in :func:`solvers.sphere_solver.local_solve`).
    """
    y = z.clone().requires_grad_(True)
    nfev = nit = 0
    hist: list[float] = []

    def closure() -> torch.Tensor:
        nonlocal nfev
        opt.zero_grad()
        val = tl(y, block=block)
        val.backward()
        nfev += 1
        hist.append(float(val.detach()))
        if callback is not None:
            callback(nfev, hist[-1])
        return val

    best = math.inf
    for _ in range(rounds):
        left = max_iter - nit
        if left <= 0:
            break
        opt = torch.optim.LBFGS([y], lr=1.0, max_iter=left, max_eval=3 * left, history_size=history_size,
                                tolerance_grad=gtol, tolerance_change=0.0, line_search_fn="strong_wolfe")
        opt.step(closure)
        nit += int(opt.state[y].get("n_iter", 0))
        with torch.no_grad():
            y.copy_(normalize_rows_torch(y))
        val, rg, enorm = stationarity(tl, y.detach(), block)
        nfev += 1
        if float(torch.linalg.vector_norm(rg)) <= gtol * max(1.0, enorm) or not val < best:
            break
        best = val
    return y.detach(), nit, nfev, hist


def _rgd(tl: TorchLoss, z: torch.Tensor, max_iter: int, gtol: float, block: int,
         callback) -> tuple[torch.Tensor, int, int, list[float]]:
    val, rg, enorm = stationarity(tl, z, block)
    nfev = 1
    step = 1.0 / max(float(torch.linalg.vector_norm(rg)), 1e-300)
    hist: list[float] = []
    nit = 0
    for nit in range(1, max_iter + 1):
        gsq = float((rg * rg).sum())
        if math.sqrt(gsq) <= gtol * max(1.0, enorm):
            nit -= 1
            break
        while True:  # Armijo backtracking on the retraction
            cand = normalize_rows_torch(z - step * rg)
            new_val = tl.value(cand, normalize=False, block=block)
            nfev += 1
            if new_val <= val - 1e-4 * step * gsq or step < 1e-20:
                break
            step *= 0.5
        if step < 1e-20:
            break
        new_val, new_rg, enorm = stationarity(tl, cand, block)
        nfev += 1
        s_vec, y_vec = cand - z, new_rg - rg
        sy = float((s_vec * y_vec).sum())
        step = float((s_vec * s_vec).sum()) / sy if sy > 0 else step * 2.0  # BB1 step
        z, val, rg = cand, new_val, new_rg
        hist.append(val)
        if callback is not None:
            callback(nit, val)
    return z, nit, nfev, hist
