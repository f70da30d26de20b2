"""Negatives gathered across devices, with gradient (anchors.md REQ-6).

Policy of the torch path: **a loss never gathers by itself.**  It sees exactly the rows it is
given.  To contrast against the negatives of every device, gather first, with gradient:

    gathered = gather_view_major(local, views)            # all ranks' rows, view-major order
    loss_r = tl(gathered, rows=local_anchor_rows(rank, world, m_local, views),
                include_constant=(rank == 0))

Each rank evaluates the row panels of its own anchors against all gathered candidates (the
streamed path's ``rows`` argument), so the per-rank work is 1/world of the batch, and

    sum_r loss_r = L(concatenated batch)                                    (exact)
    sum_r d loss_r / d z_local = dL/dz_local     (gradient through the gathered copies)

With DDP, whose gradient all-reduce *averages* over ranks, multiply ``loss_r`` by ``world`` to
get dL/dtheta.  :func:`all_gather_with_grad` uses ``torch.distributed.nn.functional.all_gather``,
whose backward sums the incoming gradients of every rank's copy (reduce-scatter); the plain
``torch.distributed.all_gather`` returns detached copies, and the gradient then misses every
term in which a local row is a *candidate* of another rank's anchor (the bug reported in
facebookresearch/simsiam #20, open-mmlab/mmselfsup #3 [ISSUE]).  Losses that are not a sum
over anchors (uniformity, outer = "log") are evaluated whole on every rank and divided by world.

:func:`simulate_ranks` reproduces this in one process (a CPU test of REQ-6): shards are leaf
tensors, the "gather" is their concatenation (autograd then plays the reduce-scatter), and
``detached=True`` mimics the gradient-free gather.
"""

from __future__ import annotations

import torch

from ..validation import check_int
from .loss import TorchLoss
from .spec import KernelSpec, SumSpec


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def all_gather_with_grad(local: torch.Tensor) -> torch.Tensor:
    """Rows of every rank concatenated in rank order, differentiable; ``local`` itself when not distributed."""
    _, world = _world()
    if world == 1:
        return local
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(local), dim=0)


def view_major_order(world: int, m_local: int, views: int) -> torch.Tensor:
    """perm with gathered[perm] view-major: rank r's local row v*m + i -> global row v*(world*m) + r*m + i."""
    world = check_int(world, "world", 1)
    m_local = check_int(m_local, "m_local", 1)
    views = check_int(views, "views", 1)
    v = torch.arange(views).repeat_interleave(world * m_local)
    r = torch.arange(world).repeat_interleave(m_local).repeat(views)
    i = torch.arange(m_local).repeat(world * views)
    return r * (views * m_local) + v * m_local + i


def gather_view_major(local: torch.Tensor, views: int, gathered: torch.Tensor | None = None) -> torch.Tensor:
    """All ranks' rows (each rank's batch view-major) as one view-major batch, with gradient."""
    _, world = _world()
    if local.shape[0] % views:
        raise ValueError(f"local rows ({local.shape[0]}) must be a multiple of views ({views})")
    full = all_gather_with_grad(local) if gathered is None else gathered
    world = full.shape[0] // local.shape[0]
    return full[view_major_order(world, local.shape[0] // views, views).to(full.device)]


def local_anchor_rows(rank: int, world: int, m_local: int, views: int, n_fixed: int = 0) -> torch.Tensor:
    """Global rows of rank ``rank``'s anchors in the view-major batch (fixed rows go to rank 0)."""
    rank = check_int(rank, "rank", 0, world - 1)
    base = torch.arange(views)[:, None] * (world * m_local) + rank * m_local + torch.arange(m_local)[None, :]
    rows = base.reshape(-1)
    if rank == 0 and n_fixed:
        rows = torch.cat([rows, world * m_local * views + torch.arange(n_fixed)])
    return rows


def _row_additive(loss: TorchLoss) -> bool:
    spec = loss.spec
    if isinstance(spec, SumSpec):
        return all(_row_additive(TorchLoss(t, loss.device, loss.dtype)) for _, t in spec.terms)
    return not (isinstance(spec, KernelSpec) and spec.outer == "log")


def rank_loss(loss: TorchLoss, gathered: torch.Tensor, rank: int, world: int, m_local: int, views: int,
              block: int = 1024) -> torch.Tensor:
    """The share of rank ``rank``: its anchors against all gathered rows (whole loss / world if not a row sum)."""
    if not _row_additive(loss):
        return loss(gathered, block=block) / world
    n_fixed = (loss.n_total or 0) - (loss.n_points or gathered.shape[0])
    rows = local_anchor_rows(rank, world, m_local, views, n_fixed)
    return loss(gathered, block=block, rows=rows, include_constant=rank == 0)


def simulate_ranks(loss: TorchLoss, shards: list[torch.Tensor], views: int, detached: bool = False,
                   block: int = 1024) -> list[torch.Tensor]:
    """Per-rank losses of a single-process simulation of ``len(shards)`` devices.

    Rank r sees the concatenation of every shard in view-major order; with ``detached=True`` the
    other ranks' shards are detached (a gather without gradient).
    """
    world = len(shards)
    m_local = shards[0].shape[0] // views
    out = []
    for r in range(world):
        parts = [s if (i == r or not detached) else s.detach() for i, s in enumerate(shards)]
        gathered = gather_view_major(shards[r], views, gathered=torch.cat(parts, dim=0))
        out.append(rank_loss(loss, gathered, r, world, m_local, views, block))
    return out
