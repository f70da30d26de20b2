"""Supervised-contrastive objectives on a family of mini-batches, with or without prototypes.

Spec: ``shared/spec/prototypes.md`` §1.1 (SupCon on a batch family), §1.3 (SCL+P), §2 T3 (Kini's
mini-batch objective and batch-binding), T4 (the n_w -> infinity limit) and §4 C4, C12.

**Objective** (§1.1, canonical *sum over anchors* convention, [REC]).  For points Z (N rows, one
label each) and a family 𝔅 of index subsets ("batches") of [N]:

    L(Z) = sum_{B in 𝔅} L_B(Z_B),

where L_B is SupCon L_out on the rows of B, summed over the anchors that have a positive
(``supcon(..., reduction="sum", no_positive="exclude")``), or - with prototypes - SupCon on B
enlarged by ``copies`` = n_w fixed copies of every prototype w_c (``protosupcon``, §1.3 [REC]),
with the prototype copies anchors or not (P-anchor / P-passive).  The per-batch losses are the
library's own; :class:`RowSubset` restricts one of them to the rows of its batch and
:class:`~solvers.base.SumLoss` adds them, so value and gradient come from the shared templates.
A batch in which no anchor has a positive contributes 0 (it is dropped and counted).

**Limit** (§2 T4 [DER]).  As n_w -> infinity, L_B(H) - const(n_w) tends to

    sum_{i in B} F^CE_{y_i}(h_i)                  (P-passive)
    sum_{i in B} F^CE_{y_i}(h_i) + E_B(H)         (P-anchor)

with F^CE_y(h) = log sum_c exp((w_c - w_y).h/tau) (cross-entropy with the fixed classifier
W/tau) and E_B(H) = sum_{i in B} [-w_{y_i}.h_i/tau + sum_c exp(w_c.h_i/tau)/A_c],
A_c = sum_c' exp(w_c.w_c'/tau).  :func:`prototype_limit_loss` builds this limit objective from
``ce_fixed`` and a pair-kernel term (a linear pull and a Gaussian-kernel push, since
exp(s/tau) = e^{1/tau} exp(-|x - y|^2/(2 tau)) on the sphere).

**Batchings.**  :func:`full_batch`, :func:`random_partitions` (the union of R independent
uniformly random partitions into batches of size b, §4 C12), :func:`stratified_batches` (batch j
holds the j-th chunk of every class, §4 C4), :func:`bind_batches` (add one example per class to
every batch, as a set union: Kini's batch-binding, §2 T3 [CODE-K]), :func:`all_subsets` (every
b-subset: Graf's setting, T1), and :func:`load_batches` / :func:`batches_from_spec` (a JSON file
or ``random:b[xR][:bind]``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

from .base import SphereLoss, SumLoss
from .kernels import Gaussian, Linear
from .losses import ce_fixed, protosupcon, supcon
from .templates import KernelTerm, LogSumExpLoss, PairKernelLoss
from .validation import check_choice, check_int, check_labels, check_points, check_positive

__all__ = [
    "RowSubset",
    "StackedBatchLoss",
    "BatchedLoss",
    "Batching",
    "batched_loss",
    "batch_loss",
    "prototype_limit_loss",
    "prototype_anchor_term",
    "full_batch",
    "random_partitions",
    "stratified_batches",
    "bind_batches",
    "all_subsets",
    "check_batches",
    "batches_from_spec",
    "load_batches",
    "save_batches",
]

Batching = list[np.ndarray]


# ----------------------------------------------------------------------------------------------
# the row-selection wrapper
# ----------------------------------------------------------------------------------------------
@dataclass
class RowSubset(SphereLoss):
    """``loss`` evaluated on the rows ``rows`` of an ``n_points``-row configuration.

    value(Z) = loss(Z[rows]); dL/dZ is the loss gradient scattered back onto ``rows`` (summed over
    repeated indices, so a row listed twice counts twice) and 0 elsewhere.
    """

    loss: SphereLoss
    rows: np.ndarray
    n_points: int | None = None
    name: str = "row-subset"

    def __post_init__(self) -> None:
        self.rows = np.asarray(self.rows, dtype=np.int64)
        if self.rows.ndim != 1 or self.rows.size == 0:
            raise ValueError("rows must be a non-empty 1-D array of row indices")
        n = check_int(self.n_points, "n_points", 1)
        if self.rows.min() < 0 or self.rows.max() >= n:
            raise ValueError(f"rows must lie in [0, {n - 1}]; got {self.rows.min()}..{self.rows.max()}")
        if self.loss.n_points is not None and self.loss.n_points != self.rows.size:
            raise ValueError(f"loss expects {self.loss.n_points} rows but rows selects {self.rows.size}")

    def value_and_grad_unit(self, unit: np.ndarray) -> tuple[float, np.ndarray]:
        val, g = self.loss.value_and_grad_unit(unit[self.rows])
        grad = np.zeros_like(unit)
        np.add.at(grad, self.rows, g)
        return float(val), grad

    def describe(self) -> dict:
        return {"name": self.name, "rows": int(self.rows.size), "loss": self.loss.describe()}


# ----------------------------------------------------------------------------------------------
# batchings
# ----------------------------------------------------------------------------------------------
def check_batches(batches: Iterable[Sequence[int]], n: int, name: str = "batches") -> Batching:
    """Validate a batch family: non-empty integer index arrays in [0, n), no repeat inside a batch."""
    out: Batching = []
    for j, b in enumerate(batches):
        arr = np.asarray(list(b) if not isinstance(b, np.ndarray) else b)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name}[{j}] must be a non-empty list of row indices")
        if not np.issubdtype(arr.dtype, np.integer):
            if np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            else:
                raise ValueError(f"{name}[{j}] must hold integer row indices; got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.min() < 0 or arr.max() >= n:
            raise ValueError(f"{name}[{j}] indices must lie in [0, {n - 1}]; got {arr.min()}..{arr.max()}")
        if np.unique(arr).size != arr.size:
            raise ValueError(f"{name}[{j}] repeats an index; a batch is a set of rows")
        out.append(arr)
    if not out:
        raise ValueError(f"{name} must hold at least one batch")
    return out


def full_batch(n: int) -> Batching:
    """The one-batch family {[n]} (§1.2 "full batch")."""
    return [np.arange(check_int(n, "n", 1))]


def random_partitions(n: int, batch_size: int, repeats: int = 1, seed: int = 0) -> Batching:
    """Union of ``repeats`` independent uniformly random partitions of [n] into consecutive
    batches of ``batch_size`` rows (the last batch of a partition is smaller when batch_size does
    not divide n).  Partition r uses ``numpy.random.default_rng([seed, r])`` (§4 C12)."""
    n = check_int(n, "n", 1)
    b = check_int(batch_size, "batch_size", 1, n)
    repeats = check_int(repeats, "repeats", 1)
    seed = check_int(seed, "seed", 0)
    out: Batching = []
    for r in range(repeats):
        perm = np.random.default_rng([seed, r]).permutation(n)
        out.extend(np.sort(perm[i : i + b]) for i in range(0, n, b))
    return out


def _class_rows(labels: np.ndarray) -> dict[int, np.ndarray]:
    return {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}


def stratified_batches(labels: object, per_class: int) -> Batching:
    """Batch j holds the j-th chunk of ``per_class`` consecutive examples of every class (in row
    order; classes with fewer chunks are absent from the later batches).  §4 C4 "unbound" family:
    4 examples per class and per_class = 2 give B1 = examples {0, 1}, B2 = {2, 3} of every class."""
    lab = check_labels(labels)
    m = check_int(per_class, "per_class", 1)
    rows = _class_rows(lab)
    chunks = max(math.ceil(r.size / m) for r in rows.values())
    return [np.sort(np.concatenate([r[j * m : (j + 1) * m] for r in rows.values()])) for j in range(chunks)]


def bind_batches(batches: Iterable[Sequence[int]], labels: object, examples: Sequence[int] | None = None) -> Batching:
    """Kini's batch-binding (§2 T3 [CODE-K] ``--repeated_examples``): add the binding examples
    (default: the first example of each class) to every batch, as a set union (§4 C4)."""
    lab = check_labels(labels)
    fam = check_batches(batches, lab.size)
    if examples is None:
        ex = np.array([r[0] for r in _class_rows(lab).values()], dtype=np.int64)
    else:
        ex = check_batches([examples], lab.size, "examples")[0]
    return [np.union1d(b, ex) for b in fam]


def all_subsets(n: int, batch_size: int, limit: int = 20000) -> Batching:
    """Every ``batch_size``-subset of [n] (Graf's family, T1); ValueError beyond ``limit`` batches."""
    n = check_int(n, "n", 1)
    b = check_int(batch_size, "batch_size", 1, n)
    if math.comb(n, b) > limit:
        raise ValueError(f"batch_size: C({n}, {b}) = {math.comb(n, b)} batches exceeds limit = {limit}")
    return [np.array(c, dtype=np.int64) for c in itertools.combinations(range(n), b)]


_SPEC = re.compile(r"^random:(\d+)(?:x(\d+))?(:bind)?$")


def batches_from_spec(spec: str, labels: object, seed: int = 0) -> Batching:
    """``full``, ``random:b`` (one random partition into batches of b), ``random:bxR`` (union of R
    partitions), optionally followed by ``:bind`` (batch-binding), or a JSON file (see
    :func:`load_batches`)."""
    lab = check_labels(labels)
    if spec == "full":
        return full_batch(lab.size)
    m = _SPEC.match(spec)
    if m:
        fam = random_partitions(lab.size, int(m.group(1)), int(m.group(2) or 1), seed)
        return bind_batches(fam, lab) if m.group(3) else fam
    if spec.startswith("random"):
        raise ValueError(f"batches must be 'full', 'random:b[xR][:bind]' (b, R >= 1) or a JSON file; got {spec!r}")
    return load_batches(spec, lab.size)


def load_batches(path: str | Path, n: int) -> Batching:
    """Read a batch family from JSON: a list of index lists, or {"batches": [[...], ...]}."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"batches must be 'full', 'random:b[xR][:bind]' or an existing JSON file; got {str(p)!r}")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"batches file {str(p)!r} is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("batches")
    if not isinstance(data, list):
        raise ValueError("batches file must hold a list of index lists or {'batches': [...]}")
    return check_batches(data, n)


def save_batches(batches: Iterable[Sequence[int]], path: str | Path) -> Path:
    """Write a batch family as {"batches": [[...], ...]} (readable by :func:`load_batches`)."""
    p = Path(path)
    p.write_text(json.dumps({"batches": [[int(i) for i in b] for b in batches]}))
    return p


# ----------------------------------------------------------------------------------------------
# the objective
# ----------------------------------------------------------------------------------------------
def _unit_prototypes(prototypes: object) -> np.ndarray:
    w = check_points(prototypes, "prototypes")
    return w / np.linalg.norm(w, axis=1, keepdims=True)


def batch_loss(labels: object, tau: float, prototypes: object | None = None, copies: int = 0,
               prototypes_as_anchors: bool = False, variant: str = "out") -> LogSumExpLoss | None:
    """SupCon (``copies = 0``) or SCL+P on one batch with per-row ``labels``, summed over the
    anchors that have a positive; None when no anchor has one (the batch contributes 0).

    With prototypes: ``protosupcon(..., reduction="sum", no_positive="exclude")``: under P-anchor
    with n_w = 1 and a class absent from the batch, that prototype copy has no positive and is
    dropped as an anchor (kept as a negative), the canonical convention of §5.2.
    """
    lab = check_labels(labels)
    tau = check_positive(tau, "tau")
    n_w = check_int(copies, "copies", 0)
    if n_w == 0:
        if np.all(np.unique(lab, return_counts=True)[1] < 2):
            return None
        return supcon(lab, tau, variant=variant, reduction="sum", no_positive="exclude")
    return protosupcon(lab, _unit_prototypes(prototypes), n_w, tau, prototypes_as_anchors=prototypes_as_anchors,
                       variant=variant, reduction="sum", no_positive="exclude")


@dataclass
class StackedBatchLoss(SphereLoss):
    """The same sum over batches, evaluated in one vectorised pass (a second backend of the template).

    Every batch loss is a :class:`~solvers.templates.LogSumExpLoss`; their public matrices
    (positives P, group coefficients and log-weights, denominator, constant, fixed rows) are padded
    to a common size m and stacked, the similarities of all batches are computed at once,
    S_B = Zf_B Zf_B^T with Zf_B = [Z_B; W], and the gradient is scattered back onto the free rows:

        L = sum_B c0_B + (1/D_B) [ -sum P_B * S_B/tau + sum_g sum_r c_gB[r] lse_r(S_B/tau + logw_gB) ]

    Padding slots have P = 0, c = 0 and log-weight -inf, so they contribute nothing.  The value
    equals the :class:`SumLoss` of :class:`RowSubset` terms up to float64 summation order.
    """

    gather: np.ndarray
    free: np.ndarray
    positives: np.ndarray
    coefs: np.ndarray
    logws: np.ndarray
    scale: np.ndarray
    constant: float
    tau: float
    fixed: np.ndarray | None
    n_points: int | None = None
    params: dict = field(default_factory=dict)
    name: str = "batched"

    @classmethod
    def from_terms(cls, terms: list[tuple[LogSumExpLoss, np.ndarray]], n: int, params: dict) -> StackedBatchLoss:
        """Stack ``(batch loss, batch rows)`` pairs; all losses share tau, group count and fixed rows."""
        losses = [t for t, _ in terms]
        tau = losses[0].tau
        fixed = losses[0].fixed
        n_groups = len(losses[0].groups)
        for t in losses:
            same_fixed = (t.fixed is None and fixed is None) or (
                t.fixed is not None and fixed is not None and np.array_equal(t.fixed, fixed))
            if t.tau != tau or len(t.groups) != n_groups or not same_fixed:
                raise ValueError("batches: stacked evaluation needs one tau, one group count and one prototype set")
        k = 0 if fixed is None else fixed.shape[0]
        m = max(rows.size + k for _, rows in terms)
        nb = len(terms)
        gather = np.zeros((nb, m), dtype=np.int64)
        free = np.zeros((nb, m), dtype=bool)
        pos = np.zeros((nb, m, m))
        coefs = np.zeros((n_groups, nb, m))
        logws = np.full((n_groups, nb, m, m), -np.inf)
        scale = np.zeros(nb)
        const = 0.0
        for j, (t, rows) in enumerate(terms):
            size = rows.size + k
            gather[j, : rows.size] = rows
            gather[j, rows.size : size] = n + np.arange(k)
            free[j, : rows.size] = True
            pos[j, :size, :size] = t.positives
            for g, grp in enumerate(t.groups):
                coefs[g, j, :size] = grp.coef
                logws[g, j, :size, :size] = grp.logw
            scale[j] = 1.0 / t.denominator
            const += t.constant
        return cls(gather, free, pos, coefs, logws, scale, const, tau, fixed, n_points=n, params=params)

    def __post_init__(self) -> None:
        # rows without a coefficient get finite log-weights (0) so that no masking is needed in the
        # hot loop: their log-sum-exp is finite and multiplied by 0
        for g in range(self.coefs.shape[0]):
            idle = self.coefs[g] == 0.0
            self.logws[g][idle] = 0.0
        nb, m = self.gather.shape
        slots = np.flatnonzero(self.free.ravel())
        self._scatter = csr_matrix((np.ones(slots.size), (self.gather.ravel()[slots], slots)),
                                   shape=(int(self.n_points), nb * m))  # type: ignore[arg-type]

    def value_and_grad_unit(self, unit: np.ndarray) -> tuple[float, np.ndarray]:
        zf = unit if self.fixed is None else np.vstack([unit, self.fixed])
        zb = zf[self.gather]  # (nb, m, d)
        logits = np.matmul(zb, np.transpose(zb, (0, 2, 1))) / self.tau
        total = -np.einsum("bij,bij->b", self.positives, logits)
        g_sim = -self.positives
        for coef, logw in zip(self.coefs, self.logws, strict=True):
            shifted = logits + logw
            row_max = np.max(shifted, axis=2, keepdims=True)
            expd = np.exp(shifted - row_max)
            sums = np.sum(expd, axis=2, keepdims=True)
            lse = row_max[:, :, 0] + np.log(sums[:, :, 0])
            total = total + np.sum(coef * lse, axis=1)
            g_sim = g_sim + (coef / sums[:, :, 0])[:, :, None] * expd
        value = self.constant + float(np.dot(self.scale, total))
        g_sim = g_sim * (self.scale / self.tau)[:, None, None]
        g_rows = np.matmul(g_sim + np.transpose(g_sim, (0, 2, 1)), zb)
        grad = self._scatter @ g_rows.reshape(-1, unit.shape[1])
        return value, np.asarray(grad)

    def describe(self) -> dict:
        return {"name": self.name, **self.params}


@dataclass
class BatchedLoss(SumLoss):
    """Sum over batches of a per-batch loss (a :class:`SumLoss` of :class:`RowSubset` terms)."""

    params: dict = field(default_factory=dict)
    name: str = "batched"

    def describe(self) -> dict:
        return {"name": self.name, **self.params}


def batched_loss(labels: object, batches: Iterable[Sequence[int]] | None, tau: float,
                 prototypes: object | None = None, copies: int = 0, prototypes_as_anchors: bool = False,
                 variant: str = "out", stacked: bool | None = None) -> BatchedLoss | StackedBatchLoss:
    """L(Z) = sum_{B in batches} L_B(Z_B) (module docstring); ``batches=None`` is the full batch.

    ``copies`` = n_w >= 0 prototype copies per class appended to every batch (0: plain SupCon;
    ``prototypes`` then unused).  Every term sums over anchors with a positive (§5.2).
    ``stacked=True`` evaluates all batches in one vectorised pass (:class:`StackedBatchLoss`);
    ``stacked=False`` returns the plain :class:`SumLoss` of :class:`RowSubset` terms (same value
    and gradient; 5-10x slower for tens of small batches, faster for one batch).  Default (None):
    stacked when there is more than one batch.
    """
    lab = check_labels(labels)
    n = lab.size
    if n < 2:
        raise ValueError(f"labels must hold at least 2 rows; got {n}")
    fam = full_batch(n) if batches is None else check_batches(batches, n)
    n_w = check_int(copies, "copies", 0)
    if n_w > 0 and prototypes is None:
        raise ValueError("prototypes must be given when copies >= 1")
    variant = check_choice(variant, "variant", ("out", "in"))
    built: list[tuple[LogSumExpLoss, np.ndarray]] = []
    empty = 0
    for b in fam:
        loss = batch_loss(lab[b], tau, prototypes, n_w, prototypes_as_anchors, variant)
        if loss is None:
            empty += 1
            continue
        built.append((loss, b))
    if not built:
        raise ValueError("batches: no batch has an anchor with a positive, so the objective is identically 0")
    params = {"tau": float(tau), "batches": len(fam), "empty_batches": empty, "copies": n_w,
              "prototypes_as_anchors": bool(prototypes_as_anchors) if n_w else None, "variant": variant,
              "reduction": "sum over anchors with a positive, summed over batches",
              "batch_sizes": sorted({int(b.size) for b in fam})}
    if stacked is None:
        stacked = len(built) > 1
    if stacked:
        return StackedBatchLoss.from_terms(built, n, params)
    out = BatchedLoss([(1.0, RowSubset(loss, b, n)) for loss, b in built], params=params)
    out.n_points = n
    return out


# ----------------------------------------------------------------------------------------------
# the n_w -> infinity limit (T4)
# ----------------------------------------------------------------------------------------------
def prototype_anchor_term(labels: object, prototypes: object, tau: float) -> PairKernelLoss:
    """E(H) = sum_i [ -w_{y_i}.h_i/tau + sum_c exp(w_c.h_i/tau)/A_c ], A_c = sum_c' e^{w_c.w_c'/tau}
    (T4 [DER]): a linear pull toward the own prototype plus an exponential push from all of them.
    Written as a pair-kernel loss with the prototypes as fixed rows: exp(s/tau) =
    e^{1/tau} Gaussian_{t = 1/(2 tau)}(s)."""
    lab = check_labels(labels)
    w = _unit_prototypes(prototypes)
    tau = check_positive(tau, "tau")
    k, n = w.shape[0], lab.size
    if n == 0 or lab.min() < 0 or lab.max() >= k:
        raise ValueError(f"labels must be non-empty and lie in [0, {k - 1}] (one prototype per class)")
    gw = w @ w.T
    # log A_c with a max shift (§5.6): A_c = e^{1/tau} sum_c' e^{(G_cc' - 1)/tau}
    log_a = 1.0 / tau + np.log(np.sum(np.exp((gw - 1.0) / tau), axis=1))
    size = n + k
    pull = np.zeros((size, size))
    pull[np.arange(n), n + lab] = -1.0 / tau
    push = np.zeros((size, size))
    push[:n, n:] = np.exp(1.0 / tau - log_a)[None, :]
    terms = [KernelTerm(pull, Linear()), KernelTerm(push, Gaussian(1.0 / (2.0 * tau)))]
    return PairKernelLoss(terms, n_points=n, fixed=w, name="prototype-anchor-term",
                          params={"tau": tau, "classes": k})


def prototype_limit_loss(labels: object, prototypes: object, tau: float,
                         prototypes_as_anchors: bool = False) -> SumLoss:
    """The n_w -> infinity limit of the full-batch SCL+P objective up to its constant (T4 [DER]):
    sum_i F^CE_{y_i}(h_i) (P-passive) plus E(H) (P-anchor).  Per sample it decouples, so with a
    single label it is the per-class limit objective F_y of T4."""
    lab = check_labels(labels)
    w = _unit_prototypes(prototypes)
    ce = ce_fixed(lab, w, tau)  # mean over samples: scale by n for the sum
    terms: list[tuple[float, SphereLoss]] = [(float(lab.size), ce)]
    if prototypes_as_anchors:
        terms.append((1.0, prototype_anchor_term(lab, w, tau)))
    out = SumLoss(terms, name="protosupcon-limit-" + ("anchor" if prototypes_as_anchors else "passive"))
    return out
