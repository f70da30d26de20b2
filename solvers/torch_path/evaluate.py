"""Evaluation of a torch spec: dense (autograd) and blockwise (streamed, fused value + gradient).

Both paths take the free unit rows Z (n, d); fixed rows F are appended, Zf = [Z; F], and
S = Zf Zf^T (DESIGN.md).  The gradient with respect to Z is the chain rule of
:class:`solvers.base.GramLoss`, restricted to the free rows::

    dL/dZf = (G + G^T) Zf,    G = dL/dS

**Dense** (:func:`dense_value`): S is materialised and the template formula is written with
torch operations; autograd differentiates it (kernels through
:func:`~solvers.torch_path.kernels.kernel_apply`).  Memory O(N^2).

**Blockwise** (:func:`blockwise_value_and_grad`, wrapped by :class:`StreamedLoss`, a custom
``torch.autograd.Function``): rows are processed in panels R of ``block`` rows against all
(needed) columns C.  For a panel the exact row-wise log-sum-exp is available, so G_RC is final
and the gradient is accumulated in the same pass — value and gradient in ONE pass, no
recomputation, memory O(N * block + N * d)::

    S_RC = Zf_R Zf_C^T
    template 1: lse_g[r] = logsumexp_j (S_rj / tau + B_g[r, j])          (max-shifted, REQ-3)
                G_RC = (1/(D tau)) (-P_RC + sum_g c_g[R] exp(S_RC / tau + B_g - lse_g))
    template 2: G_RC = sum_t scale_t W_t,RC k_t'(S_RC)
                outer="log": a global online softmax (running max m, running sum, gradient
                accumulator rescaled by exp(m_old - m_new) when the max grows, as in
                flash-attention); value c0 + scale (m + log sum), gradient scale * acc / sum
    grad_R += G_RC Zf_C;   grad_C += G_RC^T Zf_R

The forward of :class:`StreamedLoss` computes both and stores the (n, d) gradient; backward
multiplies it by the incoming scalar.  (Double backward is not supported.)  ``rows`` restricts
the anchors (row panels) to a subset: the sum of the values over a partition of the rows is the
full loss (sharded evaluation, anchors.md REQ-6); for outer="log" the loss is not a row sum and
a subset is refused.  Values are accumulated in float64 whatever the working dtype.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .blocks import union_bounds
from .kernels import kernel_apply
from .spec import KernelSpec, LseSpec, ManhattanSpec, Spec, SumSpec


def full_rows(spec: LseSpec | KernelSpec, z: torch.Tensor) -> torch.Tensor:
    """Zf = [Z; F]."""
    if spec.fixed is None:
        return z
    if spec.fixed.shape[1] != z.shape[1]:
        raise ValueError(f"points must have the prototypes' dimension {spec.fixed.shape[1]}; got {z.shape[1]}")
    return torch.cat([z, spec.fixed.to(dtype=z.dtype, device=z.device)], dim=0)


# ----------------------------------------------------------------------------------------------
# dense path (autograd)
# ----------------------------------------------------------------------------------------------
def dense_value(spec: Spec, z: torch.Tensor) -> torch.Tensor:
    """The loss at unit rows ``z`` with the whole similarity matrix (differentiable by autograd)."""
    if isinstance(spec, SumSpec):
        total = z.new_zeros(())
        for w, term in spec.terms:
            total = total + w * dense_value(term, z)
        return total
    if isinstance(spec, ManhattanSpec):
        if spec.rows.numel() == 0:
            return (z * 0.0).sum()
        diff = z[spec.rows] - spec.targets.to(z.dtype)
        return (spec.lam / spec.rows.numel()) * diff.abs().sum()
    zf = full_rows(spec, z)
    sim = zf @ zf.T
    if isinstance(spec, LseSpec):
        logits = sim / spec.tau
        total = z.new_zeros(())
        if spec.positives is not None:
            total = total - (spec.positives.dense() * logits).sum()
        for coef, logw in spec.groups:
            rows = torch.nonzero(coef, as_tuple=True)[0]
            shifted = logits[rows] + logw.dense()[rows]
            total = total + (coef[rows] * torch.logsumexp(shifted, dim=1)).sum()
        return spec.constant + total / spec.denominator
    if isinstance(spec, KernelSpec):
        if spec.outer == "log":
            (term,) = spec.terms
            w = term.weights.dense()
            mask = w != 0
            s_safe = torch.where(mask, sim, torch.zeros_like(sim))
            a = kernel_apply(s_safe, term.kernel, log=True) + torch.log(torch.where(mask, w, torch.ones_like(w)))
            a = torch.where(mask, a, torch.full_like(a, -math.inf))
            return spec.constant + term.scale * torch.logsumexp(a.reshape(-1), dim=0)
        total = z.new_zeros(()) + spec.constant
        for term in spec.terms:
            w = term.weights.dense()
            mask = w != 0
            s_safe = torch.where(mask, sim, torch.zeros_like(sim))
            total = total + term.scale * (w * kernel_apply(s_safe, term.kernel)).sum()
        return total
    raise ValueError(f"spec must be a torch-path spec; got {type(spec).__name__}")


# ----------------------------------------------------------------------------------------------
# blockwise path (one fused pass)
# ----------------------------------------------------------------------------------------------
def _active_rows(support: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    if rows is not None:
        sel = torch.zeros_like(support)
        sel[rows.to(support.device)] = True
        support = support & sel
    return torch.nonzero(support, as_tuple=True)[0]


def _apply_log_weights(x: torch.Tensor, logw, rows: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """x + B (B = -inf outside the support), in place when B is a (weighted) indicator."""
    fac = logw.factored(rows, lo, hi)
    if fac is None:
        return x.add_(logw.block(rows, lo, hi))
    mask, a, b = fac
    if mask is not None:
        x.masked_fill_(mask.logical_not_(), -math.inf)
    if a is not None:
        x.add_(torch.log(a)[:, None])
    if b is not None:
        x.add_(torch.log(b)[None, :])
    return x


def _lse_blockwise(spec: LseSpec, z: torch.Tensor, block: int, rows: torch.Tensor | None,
                   need_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    zf = full_rows(spec, z)
    inv_tau = 1.0 / spec.tau
    acc = torch.zeros((), dtype=torch.float64, device=z.device)
    grad = torch.zeros_like(zf) if need_grad else None
    g_scale = inv_tau / spec.denominator
    mats = ([spec.positives] if spec.positives is not None else []) + [lw for _, lw in spec.groups]
    n_groups = len(spec.groups)
    for chunk in _active_rows(spec.row_support(), rows).split(block):
        lo, hi = union_bounds([m.col_bounds(chunk) for m in mats])
        if lo >= hi:
            continue
        zr, zc = zf[chunk], zf[lo:hi]
        logits = (zr * inv_tau) @ zc.T  # S_RC / tau
        p = None
        if spec.positives is not None:
            p = spec.positives.block(chunk, lo, hi)
            acc = acc - (p * logits).sum(dtype=torch.float64)
        g = None
        for gi, (coef, logw) in enumerate(spec.groups):
            c = coef[chunk]
            act = c != 0
            every = bool(act.all())
            if not every and not bool(act.any()):
                continue
            if every:
                x = logits if gi == n_groups - 1 else logits.clone()
                sub, c_act = chunk, c
            else:
                x, sub, c_act = logits[act], chunk[act], c[act]
            x = _apply_log_weights(x, logw, sub, lo, hi)
            mx = x.amax(dim=1, keepdim=True)
            x.sub_(mx).exp_()  # exp(S/tau + B - max), in place
            ssum = x.sum(dim=1, keepdim=True)
            lse = (mx + torch.log(ssum)).squeeze(1)
            acc = acc + (c_act * lse).sum(dtype=torch.float64)
            if need_grad:
                x.mul_((c_act[:, None] * g_scale) / ssum)  # c_g[r] softmax / (D tau)
                if g is None and every:
                    g = x
                else:
                    if g is None:
                        g = torch.zeros_like(logits)
                    if every:
                        g.add_(x)
                    else:
                        g[act] += x
        if need_grad:
            if g is None:
                g = torch.zeros_like(logits)
            if p is not None:
                g.sub_(p, alpha=g_scale)
            grad[chunk] += g @ zc
            grad[lo:hi] += g.T @ zr
    value = acc / spec.denominator
    return value, None if grad is None else grad[: spec.n_free]


def _kernel_weights(weights, chunk: torch.Tensor, lo: int, hi: int):
    """(excluded, apply, w) for a weight block: ``excluded`` = ~support (None: empty),
    ``apply(v)`` returns W * v in place, ``w`` the float block (None when factored)."""
    fac = weights.factored(chunk, lo, hi)
    if fac is None:
        w = weights.block(chunk, lo, hi)
        return w == 0, (lambda v: v.mul_(w)), w
    mask, a, b = fac
    # the support is mask & (a != 0) & (b != 0): zero weights must not meet an infinite k there
    if a is not None and bool((a == 0).any()):
        mask = (a != 0)[:, None].expand(a.numel(), hi - lo) if mask is None else mask & (a != 0)[:, None]
    if b is not None and bool((b == 0).any()):
        mask = (b != 0)[None, :].expand(chunk.numel(), hi - lo) if mask is None else mask & (b != 0)[None, :]
    excluded = None if mask is None else ~mask

    def apply(v: torch.Tensor) -> torch.Tensor:
        if excluded is not None:
            v.masked_fill_(excluded, 0.0)
        if a is not None:
            v.mul_(a[:, None])
        if b is not None:
            v.mul_(b[None, :])
        return v

    return excluded, apply, None


def _log_weights(weights, chunk: torch.Tensor, lo: int, hi: int, w: torch.Tensor | None,
                 excluded: torch.Tensor | None) -> torch.Tensor | None:
    """log W on the support (the additive term of outer='log'), or None when W is 1 there."""
    if w is not None:
        return torch.log(torch.where(excluded, torch.ones_like(w), w))
    _, a, b = weights.factored(chunk, lo, hi)
    out = None
    if a is not None:
        out = torch.log(a)[:, None]
    if b is not None:
        out = torch.log(b)[None, :] if out is None else out + torch.log(b)[None, :]
    return out


def _kernel_blockwise(spec: KernelSpec, z: torch.Tensor, block: int, rows: torch.Tensor | None,
                      need_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    zf = full_rows(spec, z)
    grad = torch.zeros_like(zf) if need_grad else None
    log_outer = spec.outer == "log"
    if log_outer and rows is not None:
        raise ValueError("rows: a subset of anchors is not defined for outer='log' (the loss is not a row sum)")
    acc = torch.zeros((), dtype=torch.float64, device=z.device)
    run_max = -math.inf
    run_sum = torch.zeros((), dtype=torch.float64, device=z.device)
    n_terms = len(spec.terms)
    for chunk in _active_rows(spec.row_support(), rows).split(block):
        lo, hi = union_bounds([t.weights.col_bounds(chunk) for t in spec.terms])
        if lo >= hi:
            continue
        # columns before / after the end of the row block: past it, index rules need no mask
        cut = min(max(int(chunk.max()) + 1, lo), hi)
        zr = zf[chunk]
        for c_lo, c_hi in ((lo, cut), (cut, hi)):
            if c_lo >= c_hi:
                continue
            zc = zf[c_lo:c_hi]
            sim = zr @ zc.T
            g = None
            for ti, term in enumerate(spec.terms):
                excluded, apply, w = _kernel_weights(term.weights, chunk, c_lo, c_hi)
                s = sim if ti == n_terms - 1 else sim.clone()
                if excluded is not None:
                    s.masked_fill_(excluded, 0.0)  # a safe argument off the support (k(0) is finite)
                if log_outer:
                    a = term.kernel.log_value(s)
                    if excluded is not None:
                        a.masked_fill_(excluded, -math.inf)
                    lw = _log_weights(term.weights, chunk, c_lo, c_hi, w, excluded)
                    if lw is not None:
                        a.add_(lw)
                    blk_max = float(a.max())
                    if blk_max == -math.inf:
                        continue
                    new_max = max(run_max, blk_max)
                    rescale = math.exp(run_max - new_max) if run_max > -math.inf else 0.0
                    e = a.sub_(new_max).exp_()
                    run_sum = run_sum * rescale + e.sum(dtype=torch.float64)
                    run_max = new_max
                    if need_grad:
                        grad.mul_(rescale)
                        g = e.mul_(term.kernel.dlog_ds(s))
                    continue
                if need_grad:
                    v, dv = term.kernel.value_and_deriv(s)
                else:
                    v, dv = term.kernel.value(s), None
                if v.data_ptr() == s.data_ptr():
                    v = v.clone()
                acc = acc + term.scale * apply(v).sum(dtype=torch.float64)
                if need_grad:
                    dv = apply(dv).mul_(term.scale)
                    g = dv if g is None else g.add_(dv)
            if need_grad and g is not None:
                grad[chunk] += g @ zc
                grad[c_lo:c_hi] += g.T @ zr
    if log_outer:
        (term,) = spec.terms
        value = term.scale * (run_max + torch.log(run_sum))
        if need_grad:
            grad = grad * (term.scale / run_sum.to(grad.dtype))
    else:
        value = acc
    return value, None if grad is None else grad[: spec.n_free]


def _manhattan(spec: ManhattanSpec, z: torch.Tensor, rows: torch.Tensor | None,
               need_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    grad = torch.zeros_like(z) if need_grad else None
    value = torch.zeros((), dtype=torch.float64, device=z.device)
    sel, tgt = spec.rows, spec.targets.to(z.dtype)
    if rows is not None and sel.numel():
        keep = torch.isin(sel, rows.to(sel.device))
        sel, tgt = sel[keep], tgt[keep]
    if spec.rows.numel() == 0 or sel.numel() == 0:
        return value, grad
    w = spec.lam / spec.rows.numel()
    diff = z[sel] - tgt
    value = w * diff.abs().sum(dtype=torch.float64)
    if need_grad:
        grad[sel] = w * torch.sign(diff)
    return value, grad


def blockwise_value_and_grad(spec: Spec, z: torch.Tensor, block: int = 1024, rows: torch.Tensor | None = None,
                             include_constant: bool = True,
                             need_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(value as a float64 0-d tensor, dL/dZ or None) in one streamed pass (module docstring)."""
    with torch.no_grad():
        if isinstance(spec, SumSpec):
            value = torch.zeros((), dtype=torch.float64, device=z.device)
            grad = torch.zeros_like(z) if need_grad else None
            for w, term in spec.terms:
                v, g = blockwise_value_and_grad(term, z, block, rows, include_constant, need_grad)
                value = value + w * v
                if need_grad:
                    grad += w * g
            return value, grad
        if isinstance(spec, ManhattanSpec):
            return _manhattan(spec, z, rows, need_grad)
        if isinstance(spec, LseSpec):
            value, grad = _lse_blockwise(spec, z, block, rows, need_grad)
        elif isinstance(spec, KernelSpec):
            value, grad = _kernel_blockwise(spec, z, block, rows, need_grad)
        else:
            raise ValueError(f"spec must be a torch-path spec; got {type(spec).__name__}")
        if include_constant:
            value = value + spec.constant
        return value, grad


class StreamedLoss(torch.autograd.Function):
    """Autograd wrapper of :func:`blockwise_value_and_grad` (gradient computed in the forward)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, spec: Spec, block: int, rows: torch.Tensor | None,  # type: ignore[override]
                include_constant: bool) -> torch.Tensor:
        need = bool(ctx.needs_input_grad[0])
        value, grad = blockwise_value_and_grad(spec, z, block, rows, include_constant, need)
        ctx.save_for_backward(grad if need else None)
        return value.to(z.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return grad_out * grad, None, None, None, None


def as_index(rows: object, n_total: int, device: torch.device) -> torch.Tensor | None:
    """Validate an anchor-row subset (None = all rows) as an int64 tensor on ``device``."""
    if rows is None:
        return None
    idx = torch.as_tensor(np.asarray(rows) if not isinstance(rows, torch.Tensor) else rows,
                          dtype=torch.int64, device=device).reshape(-1)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n_total):
        raise ValueError(f"rows must be row indices in [0, {n_total - 1}]")
    return idx
