"""Lazily blocked N x N matrices: the template's P, log-weights B_g and kernel weights W.

The two templates of DESIGN.md (``LogSumExpLoss``, ``PairKernelLoss``) are defined by N x N
matrices.  The torch path never asks for a whole matrix when it streams: it asks for the block
of rows ``rows`` (an index tensor) and the contiguous columns ``[lo, hi)``.  Two sources answer:

- :class:`DenseMatrix` holds the template's own numpy matrix (converted once to the device) and
  slices it.  This is the *same* definition as the numpy path, for any N whose template fits
  in memory.
- :class:`RuleMatrix` generates the block from per-row label arrays ("keys": ``index``,
  ``instance``, ``cls``, ``view``, ``kind``) as a sum of factors

      M_ij = sum_f  a_f[i] * b_f[j] * [rel_f(i, j)]

  where ``rel_f`` is a conjunction of equalities, inequalities and orderings of keys (e.g.
  "same instance and different row" is the positive of NT-Xent).  Memory is O(block * N), so
  N = 65,536 needs no N x N array.  :mod:`solvers.torch_path.structured` writes every library
  loss in this form; a test materialises it at small N and checks it against the numpy template.
  With ``log=True`` the matrix holds counts and the block returned is log(count) (-inf where the
  count is 0), exactly :func:`solvers.losses._masks.logw_from_counts`.

Both report which rows can hold non-empty entries (``row_support``) and, for a row block, a
column range outside which every entry is empty (``col_bounds``): energies over pairs i < j then
skip the lower triangle and prototype columns are read alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

Factored = tuple["torch.Tensor | None", "torch.Tensor | None", "torch.Tensor | None"]


class BlockMatrix(ABC):
    """An n x n matrix read block by block; ``empty`` is the value of an absent entry."""

    n: int
    empty: float

    @abstractmethod
    def block(self, rows: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """Entries (rows, lo:hi) as a (len(rows), hi - lo) tensor."""

    @abstractmethod
    def row_support(self) -> torch.Tensor:
        """Boolean (n,): rows that may hold a non-empty entry."""

    @abstractmethod
    def col_bounds(self, rows: torch.Tensor) -> tuple[int, int]:
        """A column range [lo, hi) holding every non-empty entry of ``rows`` (lo >= hi: none)."""

    def factored(self, rows: torch.Tensor, lo: int, hi: int) -> Factored | None:
        """(mask, a, b) with block = a[:, None] * b[None, :] * mask (None entries = all ones/True),
        when the matrix has that one-factor form (a plain or weighted indicator); else None.

        For a log matrix the form describes the counts: block = log(a b) on mask, -inf elsewhere.
        The streamed evaluators use it to apply masks in place instead of building float blocks.
        """
        return None

    def dense(self) -> torch.Tensor:
        """The whole matrix (only for the dense path and tests)."""
        rows = torch.arange(self.n, device=self.device)
        return self.block(rows, 0, self.n)

    device: torch.device


class DenseMatrix(BlockMatrix):
    """A materialised matrix (the numpy template's own), sliced on request."""

    def __init__(self, values: np.ndarray | torch.Tensor, empty: float, device: torch.device,
                 dtype: torch.dtype) -> None:
        if isinstance(values, torch.Tensor):
            self.values = values.to(device=device, dtype=dtype)
        else:
            self.values = torch.as_tensor(np.asarray(values), dtype=dtype, device=device)
        self.n = int(self.values.shape[0])
        self.empty = float(empty)
        self.device = self.values.device
        support = torch.isfinite(self.values) if empty == -np.inf else self.values != empty
        has = support.any(dim=1)
        idx = torch.arange(self.n, device=device)
        big = torch.full_like(idx, self.n)
        first = torch.where(support, idx[None, :], big[None, :]).amin(dim=1)
        last = torch.where(support, idx[None, :], torch.full_like(big, -1)[None, :]).amax(dim=1)
        self._has, self._first, self._last = has, first, last
        unit = 0.0 if empty == -np.inf else 1.0
        self._indicator = bool(torch.all(self.values[support] == unit))

    def factored(self, rows: torch.Tensor, lo: int, hi: int) -> Factored | None:
        if not self._indicator:
            return None
        vals = self.values[rows, lo:hi]
        return (torch.isfinite(vals) if self.empty == -np.inf else vals != 0), None, None

    def block(self, rows: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        return self.values[rows, lo:hi]

    def row_support(self) -> torch.Tensor:
        return self._has

    def col_bounds(self, rows: torch.Tensor) -> tuple[int, int]:
        sel = rows[self._has[rows]]
        if sel.numel() == 0:
            return 0, 0
        return int(self._first[sel].min()), int(self._last[sel].max()) + 1

    def dense(self) -> torch.Tensor:
        return self.values


@dataclass(frozen=True)
class Rel:
    """[key_i == key_j for same] and [key_i != key_j for diff] and [key_i < key_j for less]."""

    same: tuple[str, ...] = ()
    diff: tuple[str, ...] = ()
    less: tuple[str, ...] = ()

    def trivially_true(self, rows: torch.Tensor, lo: int, hi: int) -> bool:
        """True when the block needs no mask: only row-index relations, all satisfied off the rows."""
        if self.same or any(k != "index" for k in self.diff + self.less):
            return False
        r_lo, r_hi = int(rows.min()), int(rows.max()) + 1
        if self.less and lo < r_hi:
            return False
        return not (self.diff and lo < r_hi and hi > r_lo)

    def mask(self, keys: dict[str, torch.Tensor], rows: torch.Tensor, lo: int, hi: int) -> torch.Tensor | None:
        """The boolean block, or None when every entry is True."""
        if rows.numel() == 0 or self.trivially_true(rows, lo, hi):
            return None
        out = None
        for names, op in ((self.same, torch.eq), (self.diff, torch.ne), (self.less, torch.lt)):
            for name in names:
                k = keys[name]
                m = op(k[rows][:, None], k[lo:hi][None, :])
                out = m if out is None else out & m
        return out


@dataclass
class Factor:
    """a[i] * b[j] * [rel(i, j)]; ``row``/``col`` are (n,) arrays or None (all ones)."""

    rel: Rel
    row: np.ndarray | None = None
    col: np.ndarray | None = None


class RuleMatrix(BlockMatrix):
    """A matrix generated from row keys by :class:`Factor` rules (see module docstring)."""

    def __init__(self, keys: dict[str, np.ndarray], factors: list[Factor], device: torch.device,
                 dtype: torch.dtype, log: bool = False) -> None:
        if not factors:
            raise ValueError("factors must hold at least one rule")
        self.keys = {k: torch.as_tensor(np.asarray(v), dtype=torch.int64, device=device) for k, v in keys.items()}
        self.n = int(next(iter(self.keys.values())).shape[0])
        self.device = torch.device(device)
        self.dtype = dtype
        self.log = bool(log)
        self.empty = -np.inf if log else 0.0
        self.rules = []
        support = torch.zeros(self.n, dtype=torch.bool, device=device)
        for f in factors:
            row = None if f.row is None else torch.as_tensor(np.asarray(f.row, float), dtype=dtype, device=device)
            col = None if f.col is None else torch.as_tensor(np.asarray(f.col, float), dtype=dtype, device=device)
            if col is None:
                c_lo, c_hi = 0, self.n
            else:
                nz = np.flatnonzero(np.asarray(f.col) != 0)
                c_lo, c_hi = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 0)
            support |= torch.ones_like(support) if row is None else row != 0
            self.rules.append((f.rel, row, col, c_lo, c_hi))
        self._support = support

    def block(self, rows: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        out = None
        for rel, row, col, _, _ in self.rules:
            m = rel.mask(self.keys, rows, lo, hi)
            if m is None:
                val = torch.ones((rows.numel(), hi - lo), dtype=self.dtype, device=self.device)
            else:
                val = m.to(self.dtype)
            if row is not None:
                val.mul_(row[rows][:, None])
            if col is not None:
                val.mul_(col[lo:hi][None, :])
            out = val if out is None else out.add_(val)
        if self.log:  # counts are sums of integers times weights >= 0 by construction: log(0) = -inf
            out = out.clamp_min_(0.0).log_()
        return out

    def row_support(self) -> torch.Tensor:
        return self._support

    def factored(self, rows: torch.Tensor, lo: int, hi: int) -> Factored | None:
        if len(self.rules) != 1:
            return None
        rel, row, col, _, _ = self.rules[0]
        return (rel.mask(self.keys, rows, lo, hi), None if row is None else row[rows],
                None if col is None else col[lo:hi])

    def col_bounds(self, rows: torch.Tensor) -> tuple[int, int]:
        if rows.numel() == 0:
            return 0, 0
        r_lo, r_hi = int(rows.min()), int(rows.max()) + 1
        lo, hi = self.n, 0
        for rel, _, _, c_lo, c_hi in self.rules:
            if "index" in rel.less:
                c_lo = max(c_lo, r_lo + 1)
            if "index" in rel.same:
                c_lo, c_hi = max(c_lo, r_lo), min(c_hi, r_hi)
            if c_lo < c_hi:
                lo, hi = min(lo, c_lo), max(hi, c_hi)
        return (lo, hi) if lo < hi else (0, 0)


def union_bounds(bounds: list[tuple[int, int]]) -> tuple[int, int]:
    """Smallest range containing every non-empty range of ``bounds`` ((0, 0) when all are empty)."""
    live = [b for b in bounds if b[0] < b[1]]
    if not live:
        return 0, 0
    return min(b[0] for b in live), max(b[1] for b in live)
