"""Supervised-contrastive geometry with and without prototypes: bounds, limits and minimisers.

Spec: ``shared/spec/prototypes.md`` (Gill, Vakilian, Thrampoulidis, arXiv 2310.00893; Kini et al.,
arXiv 2306.07960; Graf et al., ICML 2021).  Every public result carries its provenance tag (§0).

- **Graf (T1) [REC+DER]**: :func:`graf_anchor_minimum`, :func:`graf_full_batch_minimum`,
  :func:`graf_all_batches_minimum` (the sum over all b-subsets, counted combinatorially),
  :func:`simplex_value` (the loss at class collapse onto a regular simplex for *any* batching; the
  minimum whenever :func:`graf_bound_applies`), :func:`graf_proof` (the inequality chain in sympy,
  check PROTO-C1c), :func:`graf_ce_bound` (the companion CE bound [REC], PROTO-C17).
- **Kini (T2, T3) [REC+DER]**: :func:`kini_anchor_minimum`, :func:`kini_minimum` (any batching),
  :func:`kini_proof` (the per-anchor Jensen proof, PROTO-C3s), :func:`binding_report` /
  :func:`is_binding` (the uniqueness / batch-binding predicate of T3 [REC], PROTO-C4d).
- **The n_w -> infinity limit (T4) [DER]**: :func:`limit_series` derives, with sympy series in
  x = 1/n_w, the limit of a sample anchor's and a prototype anchor's term and their first-order
  corrections (PROTO-C15); :func:`ce_fixed_value`, :func:`anchor_term_value`,
  :func:`limit_objective`, :func:`scl_constant` and :func:`first_order_gap` evaluate them on a
  configuration (numpy, lambdified from the series), so that
  L_SCL+P(H) = scl_constant + limit_objective(H) + first_order_gap(H)/n_w + O(1/n_w^2).
- **CE-fixed minimisers (T5) [DER]**: :func:`ce_fixed_equiangular` (symbolic: prototypes with
  constant off-diagonal Gram g, covering the ETF, g = -1/(K-1), and the OF, g = 0),
  :func:`ce_fixed_candidate` (the Jensen candidate h ∝ w_y - w̄ and its tightness for any G_W),
  :func:`ce_fixed_minimum` (closed forms for etf / of / of-nonneg).
- **P-anchor OF limit (T6) [DER]**: :func:`of_anchor_limit` (the 1-D reduction and its minimiser).
- **Constants (§1.4) [DER]**: :func:`delta_etf_of`.

This module does not import :mod:`solvers` (DESIGN.md layering); ``paper_checks.prototypes``
compares its predictions with direct minimisation.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import sympy as sp
from scipy.optimize import minimize_scalar

from . import _validation as chk

__all__ = [
    "PROVENANCE",
    "SymbolicStep",
    "graf_anchor_minimum",
    "graf_full_batch_minimum",
    "graf_all_batches_minimum",
    "simplex_value",
    "graf_bound_applies",
    "graf_proof",
    "graf_ce_bound",
    "kini_anchor_minimum",
    "kini_minimum",
    "kini_proof",
    "BindingReport",
    "binding_report",
    "is_binding",
    "limit_series",
    "limit_steps",
    "ce_fixed_value",
    "anchor_term_value",
    "limit_objective",
    "scl_constant",
    "first_order_gap",
    "ce_fixed_equiangular",
    "ce_fixed_candidate",
    "ce_fixed_minimum",
    "ce_fixed_minimiser",
    "of_anchor_limit",
    "delta_etf_of",
]

PROVENANCE = {
    "graf": "T1 [REC+DER]",
    "graf-proof": "T1 proof sketch [REC]",
    "graf-ce": "T1 companion CE bound [REC]",
    "kini": "T2/T3 [REC+DER]",
    "kini-proof": "T2 proof [DER]",
    "binding": "T3 uniqueness condition [REC]",
    "limit": "T4 [DER]",
    "ce-fixed": "T5 [DER]",
    "of-anchor": "T6 [DER]",
    "delta": "§1.4 [DER]",
}

K_, N_, n_, TAU, RHO = sp.symbols("K N n tau rho", positive=True)
X = sp.symbols("x", positive=True)  # x = 1/n_w


# ----------------------------------------------------------------------------------------------
# validation (theory does not import solvers.validation)
# ----------------------------------------------------------------------------------------------
def _labels(labels: object) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0:
        raise ValueError("labels must be a non-empty 1-D array of integers >= 0")
    return arr.astype(np.int64)


def _family(batches: Iterable[Sequence[int]], n: int) -> list[np.ndarray]:
    out = []
    for j, b in enumerate(batches):
        arr = np.asarray(list(b), dtype=np.int64)
        if arr.ndim != 1 or arr.size == 0 or arr.min() < 0 or arr.max() >= n:
            raise ValueError(f"batches[{j}] must be a non-empty list of indices in [0, {n - 1}]")
        if np.unique(arr).size != arr.size:
            raise ValueError(f"batches[{j}] repeats an index; a batch is a set of rows")
        out.append(arr)
    if not out:
        raise ValueError("batches must hold at least one batch")
    return out


def _log1p_exp_form(a: float, b: float, exponent: float) -> float:
    """log(a + b e^{exponent}) without overflow (a > 0 or b > 0)."""
    if b == 0.0:
        return math.log(a)
    if a == 0.0:
        return math.log(b) + exponent
    la, lb = math.log(a), math.log(b) + exponent
    hi = max(la, lb)
    return hi + math.log(math.exp(la - hi) + math.exp(lb - hi))


@dataclass(frozen=True)
class SymbolicStep:
    """One step of a derivation: ``residual`` is what sympy leaves of (left - right), ``"0"`` when
    the identity is proved; for an inequality ``holds`` records the sign argument."""

    name: str
    statement: str
    residual: str
    holds: bool
    provenance: str

    def as_dict(self) -> dict:
        return asdict(self)


def _step(name: str, statement: str, expr: sp.Expr, provenance: str, holds: bool | None = None) -> SymbolicStep:
    res = sp.simplify(expr)
    ok = bool(res == 0) if holds is None else bool(holds)
    return SymbolicStep(name, statement, str(res), ok, provenance)


# ----------------------------------------------------------------------------------------------
# Graf (T1)
# ----------------------------------------------------------------------------------------------
def graf_anchor_expr(same: sp.Expr = n_, batch: sp.Expr = N_, classes: sp.Expr = K_, tau: sp.Expr = TAU) -> sp.Expr:
    """Per-anchor minimum log(n_{B,y} - 1 + (b - n_{B,y}) exp(-K/((K-1) tau))) (T1, sympy)."""
    return sp.log(same - 1 + (batch - same) * sp.exp(-classes / ((classes - 1) * tau)))


def graf_anchor_minimum(same: int, batch_size: int, classes: int, tau: float) -> float:
    """log(n_{B,y} - 1 + (b - n_{B,y}) e^{-K/((K-1) tau)}): an anchor's term at class collapse onto
    a regular simplex with n_{B,y} = ``same`` members of its class in a batch of ``batch_size``
    (T1 temperature form [REC+DER]).  Requires same >= 2 (the anchor has a positive)."""
    s = chk.integer(same, "same", 2)
    b = chk.integer(batch_size, "batch_size", s)
    k = chk.integer(classes, "classes", 2)
    t = chk.positive(tau, "tau")
    return _log1p_exp_form(s - 1.0, float(b - s), -k / ((k - 1) * t))


def graf_full_batch_minimum(classes: int, per_class: int, tau: float) -> float:
    """N log(n - 1 + (N - n) exp(-K/((K-1) tau))), N = K n: Graf's minimum of the balanced full-batch
    SupCon loss summed over anchors (T1 [REC+DER]; §4 C1)."""
    k = chk.integer(classes, "classes", 2)
    n = chk.integer(per_class, "per_class", 2)
    return k * n * graf_anchor_minimum(n, k * n, k, tau)


def graf_all_batches_minimum(classes: int, per_class: int, batch_size: int, tau: float) -> float:
    """Graf's bound summed over *all* C(N, b) batches of size b (T1 [REC+DER]), counted exactly:
    a class-c member count m occurs in C(n, m) C(N - n, b - m) batches, so the sum is
    K sum_{m >= 2} C(n, m) C(N - n, b - m) m log(m - 1 + (b - m) e^{-K/((K-1) tau)})."""
    k = chk.integer(classes, "classes", 2)
    n = chk.integer(per_class, "per_class", 1)
    big = k * n
    b = chk.integer(batch_size, "batch_size", 1)
    if b > big:
        raise ValueError(f"batch_size must be <= N = {big}; got {b}")
    total = 0.0
    for m in range(2, min(n, b) + 1):
        count = math.comb(n, m) * math.comb(big - n, b - m)
        if count:
            total += count * m * graf_anchor_minimum(m, b, k, tau)
    return k * total


def simplex_value(batches: Iterable[Sequence[int]], labels: object, tau: float, classes: int | None = None) -> float:
    """The summed SupCon loss at class collapse onto a regular simplex, for any batching:
    sum_B sum_{i in B, n_{B,y_i} >= 2} log(n_{B,y_i} - 1 + (|B| - n_{B,y_i}) e^{-K/((K-1) tau)}).

    Each anchor sees its n_{B,y} - 1 positives at inner product 1 and its negatives at -1/(K-1),
    so its term is -1/tau + log((n-1) e^{1/tau} + (|B|-n) e^{-1/((K-1) tau)}), the same number.
    It equals Graf's lower bound (hence the minimum) when :func:`graf_bound_applies`; otherwise it
    is only the value of one candidate (T1 scope, §5.8)."""
    lab = _labels(labels)
    k = int(lab.max()) + 1 if classes is None else chk.integer(classes, "classes", int(lab.max()) + 1)
    total = 0.0
    for b in _family(batches, lab.size):
        cnt = np.bincount(lab[b], minlength=k)
        for c in range(k):
            if cnt[c] >= 2:
                total += cnt[c] * graf_anchor_minimum(int(cnt[c]), int(b.size), k, tau)
    return total


def graf_bound_applies(batches: Iterable[Sequence[int]], labels: object, classes: int | None = None) -> bool:
    """True when Graf's bound is a valid lower bound on the batching: every batch holds the same
    number (>= 1) of members of every one of the K classes (then step 3 of the proof applies batch
    by batch; the full batch of a balanced data set is the main case).  The family of *all*
    b-subsets of a balanced data set is also covered by T1 but not by this per-batch test: use
    :func:`graf_all_batches_minimum` for it."""
    lab = _labels(labels)
    k = int(lab.max()) + 1 if classes is None else int(classes)
    for b in _family(batches, lab.size):
        cnt = np.bincount(lab[b], minlength=k)
        if cnt.min() < 1 or cnt.min() != cnt.max():
            return False
    return True


def graf_proof() -> list[SymbolicStep]:
    """The inequality chain of T1's proof sketch, each step checked by sympy (PROTO-C1c [REC]).

    Radius form: v_a = z_i.z_a with |z| = rho; the temperature form is rho^2 = 1/tau.
    """
    prov = PROVENANCE["graf-proof"]
    steps: list[SymbolicStep] = []
    # step 1: -mean_P v + lse(v) = lse(v - vbar_P)  (exact; shown with |P| = 2, |A| = 4)
    v = sp.symbols("v1:5", real=True)
    vbar = (v[0] + v[1]) / 2
    lhs = -vbar + sp.log(sum(sp.exp(t) for t in v))
    rhs = sp.log(sum(sp.exp(t - vbar) for t in v))
    steps.append(_step("lse-shift", "-(1/|P|) sum_P v_p + log sum_A e^{v_a} = log sum_A e^{v_a - vbar_P}",
                       sp.expand_log(sp.exp(lhs - rhs), force=True) - 1, prov))
    # step 2: e^y >= 1 + y (so sum_P e^{v_p - vbar_P} >= |P|, and a block's sum >= |block| e^{mean})
    y = sp.symbols("y", real=True)
    f = sp.exp(y) - 1 - y
    convex = sp.simplify(sp.diff(f, y, 2)) == sp.exp(y)
    steps.append(_step("jensen-blocks", "e^y - 1 - y >= 0 (f(0) = f'(0) = 0, f'' = e^y > 0): "
                       "sum_P e^{v_p - vbar_P} >= |P| and sum_N e^{v_a - vbar_P} >= |N| e^{vbar_N - vbar_P}",
                       f.subs(y, 0) + sp.diff(f, y).subs(y, 0), prov, holds=convex and f.subs(y, 0) == 0))
    # step 3a: sum_i sum_{a != i} z_i.z_a = |sum z|^2 - N rho^2 (shown with 3 points in R^2)
    zs = [sp.Matrix(sp.symbols(f"z{i}_1:3", real=True)) for i in range(3)]
    total = zs[0] + zs[1] + zs[2]
    pair = sum((zs[i].T * zs[j])[0] for i in range(3) for j in range(3) if i != j)
    steps.append(_step("budget", "S_same + S_diff = |sum_i z_i|^2 - sum_i |z_i|^2 >= -N rho^2",
                       sp.expand(pair - ((total.T * total)[0] - sum((z.T * z)[0] for z in zs))), prov))
    # step 3b: worst case of S_diff/(N-n) - S_same/(n-1) given S_same <= N(n-1) rho^2
    s_same = N_ * (n_ - 1) * RHO**2
    worst = (-N_ * RHO**2 - s_same) / (N_ - n_) - s_same / (n_ - 1)
    steps.append(_step("budget-worst-case", "sum_i (vbar_N - vbar_P) >= -N^2 rho^2/(N - n)",
                       worst + N_**2 * RHO**2 / (N_ - n_), prov))
    steps.append(_step("balanced", "with N = K n: -N^2 rho^2/(N - n) = -N rho^2 K/(K - 1)",
                       (-N_**2 * RHO**2 / (N_ - n_)).subs(N_, K_ * n_) + K_ * n_ * RHO**2 * K_ / (K_ - 1), prov))
    # step 4: x -> log(a + b e^x) is convex (a, b > 0)
    a, b, x = sp.symbols("a b x", positive=True)
    second = sp.simplify(sp.diff(sp.log(a + b * sp.exp(x)), x, 2) - a * b * sp.exp(x) / (a + b * sp.exp(x)) ** 2)
    steps.append(_step("outer-jensen", "d^2/dx^2 log(a + b e^x) = a b e^x/(a + b e^x)^2 > 0", second, prov))
    # step 5: equality case (collapse onto the simplex) gives the closed form, temperature form
    at_simplex = -1 / TAU + sp.log((n_ - 1) * sp.exp(1 / TAU) + (N_ - n_) * sp.exp(-1 / ((K_ - 1) * TAU)))
    steps.append(_step("equality-value", "at collapse onto the simplex each anchor's term is "
                       "log(n - 1 + (N - n) e^{-K/((K-1) tau)})",
                       sp.exp(at_simplex - graf_anchor_expr()) - 1, prov))
    steps.append(_step("equality-bound", "the bound log(|P| + |N| e^{vbar_N - vbar_P}) at vbar_N - vbar_P = "
                       "-rho^2 K/(K-1), rho^2 = 1/tau, is the same closed form",
                       sp.log(n_ - 1 + (N_ - n_) * sp.exp(-RHO**2 * K_ / (K_ - 1))).subs(RHO, 1 / sp.sqrt(TAU))
                       - graf_anchor_expr(), prov))
    return steps


def graf_ce_bound(classes: int, rho_z: float, r_w: float) -> float:
    """log(1 + (K-1) exp(-rho_Z r_W K/(K-1))): Graf's lower bound on CE with features on the
    rho_Z-sphere and class weights of norm <= r_W (T1 companion [REC]); equality at an aligned
    simplex.  With the fixed classifier W/tau on unit features: rho_Z r_W = 1/tau (T5)."""
    k = chk.integer(classes, "classes", 2)
    return _log1p_exp_form(1.0, k - 1.0, -chk.positive(rho_z, "rho_z") * chk.positive(r_w, "r_w") * k / (k - 1))


# ----------------------------------------------------------------------------------------------
# Kini (T2, T3)
# ----------------------------------------------------------------------------------------------
def kini_anchor_minimum(same: int, batch_size: int, tau: float) -> float:
    """log(n_{B,y} - 1 + (b - n_{B,y}) e^{-1/tau}): the per-anchor minimum under non-negativity
    (T2 proof [DER]), attained iff all positives equal h_i and all negatives are orthogonal to it."""
    s = chk.integer(same, "same", 2)
    b = chk.integer(batch_size, "batch_size", s)
    return _log1p_exp_form(s - 1.0, float(b - s), -1.0 / chk.positive(tau, "tau"))


def kini_minimum(batches: Iterable[Sequence[int]] | None, labels: object, tau: float) -> float:
    """T3 [REC+DER]: L_min(𝔅) = sum_B sum_{i in B, n_{B,y_i} >= 2} log(n_{B,y_i} - 1 + (|B| - n_{B,y_i})
    e^{-1/tau}) - the UFM+ minimum for any batch family (``None``: the full batch, T2)."""
    lab = _labels(labels)
    fam = [np.arange(lab.size)] if batches is None else _family(batches, lab.size)
    k = int(lab.max()) + 1
    total = 0.0
    for b in fam:
        cnt = np.bincount(lab[b], minlength=k)
        for c in range(k):
            if cnt[c] >= 2:
                total += cnt[c] * kini_anchor_minimum(int(cnt[c]), int(b.size), tau)
    return total


def kini_proof() -> list[SymbolicStep]:
    """T2's per-anchor proof in sympy (PROTO-C3s [DER]): with v_a = h_i.h_a/tau, v_a >= 0 for negatives
    (non-negativity) and v_p <= 1/tau for positives (unit norm),
    l_i = log sum_A e^{v_a - vbar_P} >= log(|P| + |N| e^{0 - 1/tau}), with equality iff every
    positive equals h_i (Jensen tight and vbar_P = 1/tau) and every negative is orthogonal (v_a = 0)."""
    prov = PROVENANCE["kini-proof"]
    p, q = sp.symbols("P Nn", positive=True)
    steps: list[SymbolicStep] = []
    bound = sp.log(p + q * sp.exp(-1 / TAU))
    # monotonicity of the lower bound in each negative v_a and in vbar_P
    va, vbar = sp.symbols("v_a vbar_P", real=True)
    g = sp.log(p + (q - 1) * sp.exp(-vbar) + sp.exp(va - vbar))
    steps.append(_step("monotone-negatives", "the bound log(|P| + sum_N e^{v_a - vbar_P}) increases in v_a "
                       "(so v_a >= 0 gives the minimum at v_a = 0)", sp.diff(g, va)
                       - sp.exp(va - vbar) / (p + (q - 1) * sp.exp(-vbar) + sp.exp(va - vbar)), prov))
    steps.append(_step("monotone-positives", "and decreases in vbar_P (so vbar_P <= 1/tau gives it at 1/tau)",
                       sp.diff(g.subs(va, 0), vbar) + q * sp.exp(-vbar) / (p + q * sp.exp(-vbar)), prov))
    steps.append(_step("bound", "at v_a = 0, vbar_P = 1/tau: log(|P| + |N| e^{-1/tau})",
                       g.subs({va: 0, vbar: 1 / TAU}) - bound, prov))
    at_of = -1 / TAU + sp.log(p * sp.exp(1 / TAU) + q)
    steps.append(_step("equality-value", "at an orthogonal frame with collapse the anchor's term equals the bound",
                       sp.exp(at_of - bound) - 1, prov))
    return steps


@dataclass
class BindingReport:
    """T3's uniqueness condition on a batch family [REC].

    ``components[c]``: connected components (lists of example indices) of class c's within-class
    co-occurrence graph; ``unrelated``: class pairs (c, c') that never share a batch in which one of
    the two has a positive; ``unique`` = every within-class graph connected and no unrelated pair.
    """

    components: dict[int, list[list[int]]] = field(default_factory=dict)
    unrelated: list[tuple[int, int]] = field(default_factory=list)
    within_connected: bool = True
    all_related: bool = True
    unique: bool = True
    provenance: str = PROVENANCE["binding"]

    def as_dict(self) -> dict:
        return {"components": {str(k): v for k, v in self.components.items()},
                "unrelated": [list(p) for p in self.unrelated], "within_connected": self.within_connected,
                "all_related": self.all_related, "unique": self.unique, "provenance": self.provenance}


def binding_report(batches: Iterable[Sequence[int]], labels: object) -> BindingReport:
    """Evaluate T3's condition: (a) for every class c, the graph on its examples with an edge when two
    share a batch is connected; (b) every pair of classes c != c' is related: some batch holds an
    example of each and at least one of them has a positive there (n_{B,c} >= 2 or n_{B,c'} >= 2).
    The OF Gram is then the unique UFM+ minimiser (§2 T3 [REC])."""
    lab = _labels(labels)
    fam = _family(batches, lab.size)
    k = int(lab.max()) + 1
    parent = list(range(lab.size))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    related = np.zeros((k, k), dtype=bool)
    for b in fam:
        cnt = np.bincount(lab[b], minlength=k)
        for c in range(k):
            members = b[lab[b] == c]
            for j in members[1:]:
                ri, rj = find(int(members[0])), find(int(j))
                if ri != rj:
                    parent[rj] = ri
        present = np.flatnonzero(cnt > 0)
        for c, c2 in itertools.combinations(present, 2):
            if cnt[c] >= 2 or cnt[c2] >= 2:
                related[c, c2] = related[c2, c] = True
    comps: dict[int, list[list[int]]] = {}
    for c in range(k):
        groups: dict[int, list[int]] = {}
        for i in np.flatnonzero(lab == c):
            groups.setdefault(find(int(i)), []).append(int(i))
        comps[c] = sorted(groups.values())
    unrelated = [(c, c2) for c, c2 in itertools.combinations(range(k), 2) if not related[c, c2]]
    within = all(len(v) <= 1 for v in comps.values())
    return BindingReport(comps, unrelated, within, not unrelated, within and not unrelated)


def is_binding(batches: Iterable[Sequence[int]], labels: object) -> bool:
    """True iff :func:`binding_report` finds T3's uniqueness condition satisfied [REC]."""
    return binding_report(batches, labels).unique


# ----------------------------------------------------------------------------------------------
# the n_w -> infinity limit (T4)
# ----------------------------------------------------------------------------------------------
@functools.cache
def limit_series() -> dict:
    """Series in x = 1/n_w of one sample anchor's and one prototype anchor's term (T4 [DER]).

    Sample anchor (label y, m = n_{S,y} - 1 other class members): with u = w_y.h/tau,
    P_S = sum_{same-class p != i} h_p.h/tau, Z_W = sum_c e^{w_c.h/tau}, Z_S = sum_{a != i} e^{h_a.h/tau},
    l = -(n_w u + P_S)/(n_w + m) + log(n_w Z_W + Z_S); minus log n_w minus F^CE_y = -u + log Z_W:
    ``sample_limit`` = 0 and ``sample_first`` = coefficient of x.

    Prototype anchor (one copy of w_c, m = n_{S,c}): with R = sum_{i in c} w_c.h_i/tau,
    Q = sum_i e^{w_c.h_i/tau}, A = A_c, E = e^{1/tau}: the H-dependent part of n_w copies,
    n_w [ -R/(n_w - 1 + m) + log(1 + Q/(n_w A - E)) ], tends to ``proto_limit`` = -R + Q/A with
    first-order coefficient ``proto_first``.
    """
    u, ps, zw, zs, m, r, q, a, e = sp.symbols("u P_S Z_W Z_S m R Q A E", positive=True)
    nw = 1 / X
    sample = -(nw * u + ps) / (nw + m) + sp.log(nw * zw + zs) - sp.log(nw) - (-u + sp.log(zw))
    sample_ser = sp.series(sp.expand_log(sample, force=True), X, 0, 2).removeO()
    proto = nw * (-r / (nw - 1 + m) + sp.log(1 + q / (nw * a - e)))
    proto_ser = sp.series(proto, X, 0, 2).removeO()
    out = {
        "symbols": (u, ps, zw, zs, m, r, q, a, e),
        "sample_limit": sp.simplify(sample_ser.subs(X, 0)),
        "sample_first": sp.simplify(sample_ser.coeff(X, 1)),
        "proto_limit": sp.simplify(proto_ser.subs(X, 0)),
        "proto_first": sp.simplify(proto_ser.coeff(X, 1)),
    }
    out["sample_first_fn"] = sp.lambdify((u, ps, zw, zs, m), out["sample_first"], "numpy")
    out["proto_first_fn"] = sp.lambdify((r, q, a, e, m), out["proto_first"], "numpy")
    return out


def limit_steps() -> list[SymbolicStep]:
    """The T4 expansion as checked identities (PROTO-C15 [DER]): the limits and first-order
    coefficients of :func:`limit_series` against their closed forms, and the degree-0 homogeneity
    that lets :func:`first_order_gap` work with ratios."""
    prov = PROVENANCE["limit"]
    ser = limit_series()
    u, ps, zw, zs, m, r, q, a, e = ser["symbols"]
    lam = sp.symbols("lambda", positive=True)
    return [
        _step("sample-limit", "l_i - log n_w - F^CE_y(h_i) -> 0", ser["sample_limit"], prov),
        _step("sample-first", "first-order coefficient m u - P_S + Z_S/Z_W",
              ser["sample_first"] - (m * u - ps + zs / zw), prov),
        _step("proto-limit", "n_w copies of a prototype anchor -> -R + Q/A (the term E(H))",
              ser["proto_limit"] - (-r + q / a), prov),
        _step("proto-first", "first-order coefficient R (m - 1) + Q E/A^2 - Q^2/(2 A^2)",
              ser["proto_first"] - (r * (m - 1) + q * e / a**2 - q**2 / (2 * a**2)), prov),
        _step("homogeneous", "coefficients unchanged under (Z_S, Z_W) -> lambda (Z_S, Z_W) and "
              "(Q, A, E) -> lambda (Q, A, E)",
              (ser["sample_first"].subs({zs: lam * zs, zw: lam * zw}) - ser["sample_first"])
              + (ser["proto_first"].subs({q: lam * q, a: lam * a, e: lam * e}, simultaneous=True)
                 - ser["proto_first"]), prov),
    ]


def _lse(a: np.ndarray, axis: int = -1) -> np.ndarray:
    mx = np.max(a, axis=axis, keepdims=True)
    return (mx + np.log(np.sum(np.exp(a - mx), axis=axis, keepdims=True))).squeeze(axis)


def _config(h: object, labels: object, w: object, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    hh = np.asarray(h, dtype=np.float64)
    ww = np.asarray(w, dtype=np.float64)
    lab = _labels(labels)
    if hh.ndim != 2 or ww.ndim != 2 or hh.shape[1] != ww.shape[1] or hh.shape[0] != lab.size:
        raise ValueError("h must be (N, d) with one label per row and prototypes (K, d) of the same d")
    if lab.max() >= ww.shape[0]:
        raise ValueError(f"labels must lie in [0, {ww.shape[0] - 1}] (one prototype per class)")
    hh = hh / np.linalg.norm(hh, axis=1, keepdims=True)
    ww = ww / np.linalg.norm(ww, axis=1, keepdims=True)
    return hh, lab, ww, chk.positive(tau, "tau")


def ce_fixed_value(h: object, labels: object, prototypes: object, tau: float) -> float:
    """L_CEfix(H; W) = sum_i F^CE_{y_i}(h_i), F^CE_y(h) = log sum_c exp((w_c - w_y).h/tau) (T4 [DER])."""
    hh, lab, ww, t = _config(h, labels, prototypes, tau)
    s = hh @ ww.T / t
    return float(np.sum(_lse(s) - s[np.arange(lab.size), lab]))


def _log_a(ww: np.ndarray, t: float) -> np.ndarray:
    return _lse(ww @ ww.T / t)


def anchor_term_value(h: object, labels: object, prototypes: object, tau: float) -> float:
    """E(H) = sum_i [-w_{y_i}.h_i/tau + sum_c exp(w_c.h_i/tau)/A_c], A_c = sum_c' e^{w_c.w_c'/tau} (T4 [DER])."""
    hh, lab, ww, t = _config(h, labels, prototypes, tau)
    s = hh @ ww.T / t
    return float(np.sum(-s[np.arange(lab.size), lab]) + np.sum(np.exp(s - _log_a(ww, t)[None, :])))


def limit_objective(h: object, labels: object, prototypes: object, tau: float, anchors: bool) -> float:
    """L_CEfix (P-passive) or L_CEfix + E (P-anchor): the n_w -> infinity limit up to a constant (T4)."""
    val = ce_fixed_value(h, labels, prototypes, tau)
    return val + anchor_term_value(h, labels, prototypes, tau) if anchors else val


def scl_constant(copies: int, labels: object, prototypes: object, tau: float, anchors: bool) -> float:
    """The H-independent part of the full-batch SCL+P loss (sum over anchors) at n_w = ``copies``:
    N log n_w, plus for P-anchor sum_c n_w [ -(n_w - 1)/(tau (n_w - 1 + n_c)) + log(n_w A_c - e^{1/tau}) ]
    (T4 [DER]), so that L_SCL+P(H) - scl_constant -> limit_objective(H)."""
    nw = chk.integer(copies, "copies", 1)
    lab = _labels(labels)
    ww = np.asarray(prototypes, dtype=np.float64)
    ww = ww / np.linalg.norm(ww, axis=1, keepdims=True)
    t = chk.positive(tau, "tau")
    total = lab.size * math.log(nw)
    if anchors:
        if nw < 2:
            raise ValueError("copies must be >= 2 under P-anchor (a lone copy of an absent class has no positive)")
        log_a = _log_a(ww, t)
        counts = np.bincount(lab, minlength=ww.shape[0])
        for c in range(ww.shape[0]):
            # log(n_w A_c - e^{1/tau}) = log n_w + log A_c + log(1 - e^{1/tau - log A_c}/n_w)
            term = math.log(nw) + log_a[c] + math.log1p(-math.exp(1.0 / t - log_a[c]) / nw)
            total += nw * (-(nw - 1) / (t * (nw - 1 + counts[c])) + term)
    return float(total)


def first_order_gap(h: object, labels: object, prototypes: object, tau: float, anchors: bool) -> float:
    """c1(H) with L_SCL+P(H) - scl_constant - limit_objective(H) = c1(H)/n_w + O(1/n_w^2): the sum of the
    lambdified first-order coefficients of :func:`limit_series` over sample (and prototype) anchors."""
    hh, lab, ww, t = _config(h, labels, prototypes, tau)
    ser = limit_series()
    s = hh @ ww.T / t
    g = hh @ hh.T / t
    n = lab.size
    same = lab[:, None] == lab[None, :]
    np.fill_diagonal(same, False)
    u = s[np.arange(n), lab]
    p_s = np.sum(np.where(same, g, 0.0), axis=1)
    m = same.sum(axis=1).astype(float)
    off = ~np.eye(n, dtype=bool)
    # Z_S/Z_W in log space
    log_zs = np.array([_lse(g[i, off[i]]) if n > 1 else -np.inf for i in range(n)])
    ratio = np.exp(log_zs - _lse(s))
    # the coefficients are homogeneous of degree 0 in (Z_S, Z_W) and in (Q, A, E) (limit_steps), so
    # they are evaluated at Z_W = 1 and A = 1 with the ratios computed in log space
    total = float(np.sum(ser["sample_first_fn"](u, p_s, 1.0, ratio, m)))
    if anchors:
        log_a = _log_a(ww, t)
        counts = np.bincount(lab, minlength=ww.shape[0]).astype(float)
        for c in range(ww.shape[0]):
            r = float(np.sum(s[lab == c, c]))
            q_over_a = float(np.sum(np.exp(s[:, c] - log_a[c])))
            e_over_a = math.exp(1.0 / t - log_a[c])
            total += float(ser["proto_first_fn"](r, q_over_a, 1.0, e_over_a, counts[c]))
    return total


# ----------------------------------------------------------------------------------------------
# CE-fixed minimisers (T5) and the P-anchor OF limit (T6)
# ----------------------------------------------------------------------------------------------
def ce_fixed_equiangular(classes: int | sp.Expr = K_, g: sp.Expr | float = 0, tau: sp.Expr | float = TAU) -> dict:
    """The CE-fixed minimiser for prototypes with unit norm and constant off-diagonal Gram g (T5 [DER]).

    Jensen: sum_{c != y} (w_c - w_y).h = K (wbar - w_y).h, so
    F^CE_y(h) >= log(1 + (K-1) e^{K (wbar - w_y).h/((K-1) tau)}), minimised at h ∝ w_y - wbar;
    tight because (w_c - w_y).h is the same for every c != y.  Returns sympy expressions:
    ``norm2`` = |w_y - wbar|^2, ``margin`` = (w_c - w_y).h*, ``gram`` = h*_y.h*_y',
    ``cos_prototype`` = h*.w_y, ``minimum`` = log(1 + (K-1) e^{margin/tau}), ``coefficients``
    (alpha, beta) of h* = alpha w_y + beta sum_{c != y} w_c, and ``tight`` (the gap between the
    minimum and the Jensen bound at h*, 0 when tight).
    """
    k, gg, t = sp.sympify(classes), sp.sympify(g), sp.sympify(tau)
    # inner products with w_y - wbar
    with_y = 1 - (1 + (k - 1) * gg) / k           # (w_y - wbar).w_y
    with_c = gg - (1 + (k - 1) * gg) / k          # (w_y - wbar).w_c, c != y
    with_bar = (with_y + (k - 1) * with_c) / k    # (w_y - wbar).wbar
    norm2 = sp.simplify(with_y - with_bar)
    norm = sp.sqrt(norm2)
    margin = sp.simplify((with_c - with_y) / norm)
    gram = sp.simplify((with_c - with_bar) / norm2)
    minimum = sp.log(1 + (k - 1) * sp.exp(margin / t))
    jensen = sp.log(1 + (k - 1) * sp.exp(k * (-norm) / ((k - 1) * t)))
    alpha = sp.simplify((1 - 1 / k) / norm)
    beta = sp.simplify((-1 / k) / norm)
    return {"norm2": norm2, "margin": margin, "gram": gram, "cos_prototype": sp.simplify(with_y / norm),
            "minimum": minimum, "coefficients": (alpha, beta), "tight": sp.simplify(minimum - jensen),
            "provenance": PROVENANCE["ce-fixed"]}


def ce_fixed_candidate(gram_w: object, label: int) -> dict:
    """Jensen candidate of T5 for any prototype Gram G_W: h ∝ w_y - wbar, written as h = sum_c a_c w_c.

    Returns ``coefficients`` a, ``margins`` (w_c - w_y).h for c != y and ``tight`` (their spread:
    Jensen is tight, so the candidate is the minimiser, iff it is 0).  [DER]"""
    gw = np.asarray(gram_w, dtype=np.float64)
    if gw.ndim != 2 or gw.shape[0] != gw.shape[1]:
        raise ValueError("gram_w must be a square (K, K) matrix")
    k = gw.shape[0]
    y = chk.integer(label, "label", 0)
    if y >= k:
        raise ValueError(f"label must lie in [0, {k - 1}]; got {label}")
    a = -np.full(k, 1.0 / k)
    a[y] += 1.0
    norm2 = float(a @ gw @ a)
    if norm2 <= 0.0:
        raise ValueError("gram_w: w_y - wbar is zero, the candidate direction is undefined")
    a = a / math.sqrt(norm2)
    proj = gw @ a
    margins = np.delete(proj - proj[y], y)
    return {"coefficients": a, "margins": margins, "tight": float(np.ptp(margins)),
            "provenance": PROVENANCE["ce-fixed"]}


def ce_fixed_minimum(kind: str, classes: int, tau: float) -> float:
    """Per-sample minimum of F^CE_y (T5 [DER]): ``etf`` log(1 + (K-1) e^{-K/((K-1) tau)}); ``of``
    log(1 + (K-1) e^{-sqrt(K/(K-1))/tau}); ``of-nonneg`` (h >= 0) log(1 + (K-1) e^{-1/tau})."""
    k = chk.integer(classes, "classes", 2)
    t = chk.positive(tau, "tau")
    margins = {"etf": k / (k - 1), "of": math.sqrt(k / (k - 1)), "of-nonneg": 1.0}
    if kind not in margins:
        raise ValueError(f"kind must be one of {', '.join(margins)}; got {kind!r}")
    return _log1p_exp_form(1.0, k - 1.0, -margins[kind] / t)


def ce_fixed_minimiser(kind: str, classes: int, label: int) -> np.ndarray:
    """Coefficients a of the per-class CE-fixed minimiser h*_y = sum_c a_c w_c (T5 [DER]): ``etf``
    a = e_y (h* = w_y); ``of`` a = sqrt((K-1)/K) e_y - (1/sqrt(K(K-1))) (1 - e_y) (the centred
    direction, a simplex ETF across classes); ``of-nonneg`` (UFM+, w_c = e_c) a = e_y."""
    k = chk.integer(classes, "classes", 2)
    y = chk.integer(label, "label", 0)
    if y >= k:
        raise ValueError(f"label must lie in [0, {k - 1}]; got {label}")
    if kind not in ("etf", "of", "of-nonneg"):
        raise ValueError(f"kind must be one of etf, of, of-nonneg; got {kind!r}")
    a = np.zeros(k)
    if kind == "of":
        a[:] = -1.0 / math.sqrt(k * (k - 1))
        a[y] = math.sqrt((k - 1) / k)
    else:
        a[y] = 1.0
    return a


@dataclass(frozen=True)
class OfAnchorLimit:
    """T6 1-D reduction: h* = a w_y + b sum_{c != y} w_c with a = cos t, b = sin t/sqrt(K-1)."""

    classes: int
    tau: float
    t: float
    a: float
    b: float
    gram: float
    value: float
    provenance: str = PROVENANCE["of-anchor"]


def of_anchor_objective(t: sp.Expr | float, classes: int | sp.Expr = K_, tau: sp.Expr | float = TAU) -> sp.Expr:
    """F^anc_y(h(t)) for OF prototypes (T6): log(1 + (K-1) e^{(b-a)/tau}) - a/tau + (e^{a/tau} + (K-1) e^{b/tau})/A,
    A = e^{1/tau} + K - 1, a = cos t, b = sin t/sqrt(K-1) (sympy)."""
    k, tt = sp.sympify(classes), sp.sympify(tau)
    a, b = sp.cos(t), sp.sin(t) / sp.sqrt(k - 1)
    big_a = sp.exp(1 / tt) + k - 1
    return sp.log(1 + (k - 1) * sp.exp((b - a) / tt)) - a / tt + (sp.exp(a / tt) + (k - 1) * sp.exp(b / tt)) / big_a


def of_anchor_limit(classes: int, tau: float, grid: int = 2001) -> OfAnchorLimit:
    """Minimise T6's 1-D objective over t in (-pi, pi] (grid, then bounded Brent refinement, float64 with
    log-space exponentials) and return the predicted off-diagonal Gram g = 2ab + (K-2) b^2 [DER]."""
    k = chk.integer(classes, "classes", 2)
    tt = chk.positive(tau, "tau")
    log_a = _log1p_exp_form(k - 1.0, 1.0, 1.0 / tt)  # log(e^{1/tau} + K - 1)

    def f(t: float) -> float:
        a, b = math.cos(t), math.sin(t) / math.sqrt(k - 1)
        ce = _log1p_exp_form(1.0, k - 1.0, (b - a) / tt)
        push = math.exp(a / tt - log_a) + (k - 1) * math.exp(b / tt - log_a)
        return ce - a / tt + push

    ts = np.linspace(-math.pi, math.pi, grid)
    vals = np.array([f(t) for t in ts])
    i = int(np.argmin(vals))
    step = ts[1] - ts[0]
    res = minimize_scalar(f, bounds=(ts[i] - step, ts[i] + step), method="bounded",
                          options={"xatol": 1e-13, "maxiter": 500})
    t = float(res.x)
    a, b = math.cos(t), math.sin(t) / math.sqrt(k - 1)
    return OfAnchorLimit(k, tt, t, a, b, 2 * a * b + (k - 2) * b * b, float(res.fun))


# ----------------------------------------------------------------------------------------------
# constants
# ----------------------------------------------------------------------------------------------
def delta_etf_of(classes: int | sp.Expr = K_) -> sp.Expr:
    """Delta(ETF, OF) derived from the Gram matrices (§1.4 [DER]): ||I||_F = sqrt(K),
    ||I - 11^T/K||_F = sqrt(K - 1), <I, I - 11^T/K> = K - 1, so
    Delta^2 = 2 - 2 (K-1)/sqrt(K (K-1)) = 2 - 2 sqrt((K-1)/K).  Returns the sympy expression
    (evaluated exactly for an integer K)."""
    k = sp.sympify(classes)
    inner = k - 1
    return sp.sqrt(2 - 2 * inner / (sp.sqrt(k) * sp.sqrt(k - 1)))
