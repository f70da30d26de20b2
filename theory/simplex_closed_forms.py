"""Closed forms of the InfoNCE family and KCL at the aligned regular simplex, derived with sympy.

Spec: ``shared/spec/dhel_kcl.md`` §2 (loss definitions), §3 (aligned forms), T1 (InfoNCE-family
minimisers for M <= d + 1), T3a (KCL at the simplex), DHEL-C4 and DHEL-C5; ``anchors.md`` §5.3
recipe 1 (the simplex) and §8.

Nothing below is typed in as a closed form.  The derivation runs at call time:

1. The simplex Gram entry is derived from recipe 1 (anchors.md §5.3): the centred vectors
   e_i - (1/M) 1 have inner products -1/M and squared norms 1 - 1/M, so the normalised Gram is
   G = (M/(M-1)) I - (1/(M-1)) J with off-diagonal entry g = -1/(M-1).
2. At the aligned simplex (V = U) the 2M x 2M Gram of Z = [U; V] has, seen from any row a, four
   classes of columns: a itself (entry 1), its partner p(a) (1), the M - 1 other rows of its view
   (g) and the M - 1 other rows of the other view (g).
3. Each loss is written in the engine form of §2.1 (anchors, positive partner, log-sum-exp groups
   over column classes); every anchor sees the same multiset, so the mean over anchors is the
   value of one anchor: -G_{a,p(a)}/tau + sum_groups log sum_{class} count * e^{G_class/tau}.
4. KCL (§2.2): the squared distance x = 2 - 2g between distinct points and the kernels psi_E,
   psi_A written in sympy; code form -2 psi_A(0) + 2 gamma psi_E(x), paper -psi(0) + gamma psi(x).

The symbolic lemmas of T1's proof (L1, L2, the mean-exponent expressions, the lower bounds and
their simplification to the closed forms, the simplex Gram facts) are verified by
:func:`lemma_report` (check DHEL-C5).  Numerical values are evaluated with mpmath at 30 digits, so
tiny tau (e^{1/tau} beyond float64) is safe.

This module does not import :mod:`solvers` (DESIGN.md layering).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import mpmath
import sympy as sp

from . import _validation as chk

__all__ = [
    "LOSSES",
    "KCL_KERNELS",
    "PROVENANCE",
    "M",
    "TAU",
    "simplex_gram_entry",
    "simplex_gram",
    "closed_form",
    "kcl_closed_form",
    "value",
    "kcl_value",
    "transitive_value",
    "equal",
    "lemma_report",
]

M, TAU = sp.symbols("M tau", positive=True)
T, GAMMA = sp.symbols("t gamma", positive=True)
S_RIESZ = sp.symbols("s", negative=True)  # the riesz exponent s = t < 0 of the KCL code
PROVENANCE = {
    "infonce": "T1 [RECON; DER]", "infonce-sym": "T1 [RECON; DER]", "simclr": "T1 [RECON; DER]",
    "dcl": "T1 [RECON; DER]", "dcl-sym": "T1 [RECON; DER]", "dhel": "T1 [RECON; DER]",
    "dhel2": "T1 [CODE] (form); [RECON; DER] (value)", "kcl": "T3a [RECON; DER]",
}
LOSSES = ("infonce", "infonce-sym", "simclr", "dcl", "dcl-sym", "dhel", "dhel2")
KCL_KERNELS = ("gaussian", "log", "imq", "riesz")

# column classes seen from an anchor row a (step 2 of the module docstring)
SELF, PARTNER, SAME_VIEW, OTHER_VIEW = "self", "partner", "same-view", "other-view"


@dataclass(frozen=True)
class EngineForm:
    """A loss in the engine form of dhel_kcl.md §2.1, by column classes.

    ``groups``: one tuple of column classes per log-sum-exp group of an anchor (every group's
    row is the anchor or its partner; at alignment both see the same classes).
    """

    groups: tuple[tuple[str, ...], ...]
    description: str


ENGINE: dict[str, EngineForm] = {
    # anchors U, candidates all of V (positive included)
    "infonce": EngineForm(((PARTNER, OTHER_VIEW),), "anchors U; group (i, V rows)"),
    "infonce-sym": EngineForm(((PARTNER, OTHER_VIEW),), "all 2M anchors; group (a, rows of the other view)"),
    # 2M anchors, all rows except a (2M - 1 candidates)
    "simclr": EngineForm(((PARTNER, SAME_VIEW, OTHER_VIEW),), "2M anchors; group (a, all rows except a)"),
    # positive removed: 2M - 2 negatives
    "dcl": EngineForm(((SAME_VIEW, OTHER_VIEW),), "anchors U; group (i, all rows except i and M+i)"),
    "dcl-sym": EngineForm(((SAME_VIEW, OTHER_VIEW),), "2M anchors; group (a, all rows except a, p(a))"),
    # M - 1 same-view negatives
    "dhel": EngineForm(((SAME_VIEW,),), "anchors U; group (i, U rows except i)"),
    # two groups: (i, U \ i) and (M + i, V \ (M + i))
    "dhel2": EngineForm(((SAME_VIEW,), (SAME_VIEW,)), "anchors U; groups (i, U \\ i) and (M+i, V \\ (M+i))"),
}


def _check_loss(loss: object) -> str:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)} (or use kcl_closed_form); got {loss!r}")
    return str(loss)


@functools.cache
def simplex_gram_entry() -> sp.Expr:
    """g = -1/(M - 1), derived from recipe 1: <e_i - 1/M, e_j - 1/M> / |e_i - 1/M|^2 for i != j."""
    inner = 0 - 2 / M + M / M**2          # e_i.e_j - (1/M)(e_i.1 + e_j.1) + (1/M^2) 1.1
    norm2 = 1 - 2 / M + M / M**2
    return sp.simplify(inner / norm2)


def simplex_gram(m: int) -> sp.Matrix:
    """The exact M x M simplex Gram (M/(M-1)) I - (1/(M-1)) J, built from recipe 1 coordinates."""
    if isinstance(m, bool) or not isinstance(m, int) or m < 2:
        raise ValueError(f"m must be an integer >= 2; got {m!r}")
    vecs = sp.eye(m) - sp.ones(m, m) / m
    gram = vecs * vecs.T
    d = sp.diag(*[1 / sp.sqrt(gram[i, i]) for i in range(m)])
    return sp.simplify(d * gram * d)


def _class_entries() -> dict[str, tuple[sp.Expr, sp.Expr]]:
    """(Gram entry, count) of each column class at the aligned simplex (module docstring step 2)."""
    g = simplex_gram_entry()
    return {SELF: (sp.Integer(1), sp.Integer(1)), PARTNER: (sp.Integer(1), sp.Integer(1)),
            SAME_VIEW: (g, M - 1), OTHER_VIEW: (g, M - 1)}


@functools.cache
def closed_form(loss: str) -> sp.Expr:
    """The derived value of ``loss`` at the aligned regular simplex, a sympy expression in M, tau.

    Equals (T1 table): InfoNCE log(1 + (M-1) e^{-M/(tau(M-1))}); SimCLR log(1 + 2(M-1) e^{-M/(tau(M-1))});
    DCL log(2(M-1)) - M/(tau(M-1)); DHEL paper log(M-1) - M/(tau(M-1)); DHEL code
    2 log(M-1) - (M+1)/(tau(M-1)).  Valid for 2 <= M <= d + 1 (the simplex exists in R^d).
    """
    form = ENGINE[_check_loss(loss)]
    entries = _class_entries()
    pos_entry = entries[PARTNER][0]
    linear = -pos_entry / TAU
    logs = sp.Integer(0)
    for group in form.groups:
        # max-shift each log-sum-exp by the group's largest entry (1 if the partner is in it,
        # else g): log sum c e^{x/tau} = x_max/tau + log sum c e^{(x - x_max)/tau}
        shift = pos_entry if PARTNER in group or SELF in group else entries[group[0]][0]
        linear += shift / TAU
        inner = sum(entries[c][1] * sp.exp(sp.simplify((entries[c][0] - shift) / TAU)) for c in group)
        logs += sp.log(inner)
    return sp.simplify(linear) + sp.expand_log(logs, force=True)


def equal(a: sp.Expr, b: sp.Expr) -> bool:
    """Symbolic equality of two closed forms: a - b simplifies to 0, or e^{a - b} simplifies to 1
    (the second catches log-sum forms that differ by a max shift)."""
    diff = sp.simplify(sp.expand_log(a - b, force=True))
    if diff == 0:
        return True
    return sp.simplify(sp.powsimp(sp.expand(sp.exp(diff)), force=True) - 1) == 0


def _kcl_kernels(kernel: str) -> tuple[sp.Lambda, sp.Lambda]:
    """(psi_E, psi_A) of the authors' code as sympy Lambdas of x = r^2 (dhel_kcl.md §2.2)."""
    x = sp.symbols("x", nonnegative=True)
    if kernel == "gaussian":
        k = sp.Lambda(x, sp.exp(-T * x))
        return k, k
    if kernel == "log":
        return sp.Lambda(x, -sp.log(1 + T * x) / 2), sp.Lambda(x, -sp.log(1 + T * x))
    if kernel == "imq":
        k = sp.Lambda(x, T / sp.sqrt(T**2 + x))
        return k, k
    if kernel == "riesz":  # s = t < 0: -x^{|s|/2} = -x^{-s/2}
        k = sp.Lambda(x, -(x ** (-S_RIESZ / 2)))
        return k, k
    raise ValueError(f"kernel must be one of {', '.join(KCL_KERNELS)}; got {kernel!r}")


@functools.cache
def kcl_closed_form(kernel: str = "gaussian", form: str = "code") -> sp.Expr:
    """KCL at the aligned simplex (T3a), a sympy expression in M, t, gamma.

    x = 2 - 2g = 2M/(M-1) between distinct points; alignment distance 0.  Code form
    -2 psi_A(0) + gamma (mean_{i<j} psi_E over U + over V) = -2 psi_A(0) + 2 gamma psi_E(x);
    paper form -psi(0) + gamma psi(x) with psi = psi_E.  For riesz the parameter is the symbol
    ``s`` (negative), the KCL code's t.
    """
    if form not in ("code", "paper"):
        raise ValueError(f"form must be 'code' or 'paper'; got {form!r}")
    psi_e, psi_a = _kcl_kernels(kernel)
    x = sp.simplify(2 - 2 * simplex_gram_entry())
    if form == "code":
        return sp.simplify(-2 * psi_a(sp.Integer(0)) + GAMMA * (psi_e(x) + psi_e(x)))
    return sp.simplify(-psi_e(sp.Integer(0)) + GAMMA * psi_e(x))


@functools.cache
def _numeric(loss: str):
    return sp.lambdify((M, TAU), closed_form(loss), modules="mpmath")


@functools.cache
def _numeric_kcl(kernel: str, form: str):
    param = S_RIESZ if kernel == "riesz" else T
    return sp.lambdify((M, param, GAMMA), kcl_closed_form(kernel, form), modules="mpmath")


def _instances(m: object) -> int:
    return chk.integer(m, "instances", 2)


def value(loss: str, instances: int, tau: float) -> float:
    """Float value of :func:`closed_form` (mpmath, 30 digits, so tau down to 1e-6 is safe)."""
    f = _numeric(_check_loss(loss))
    m = _instances(instances)
    tau = chk.positive(tau, "tau")
    with mpmath.workdps(30):
        return float(f(mpmath.mpf(m), mpmath.mpf(tau)))


def kcl_value(instances: int, kernel: str = "gaussian", t: float = 2.0, gamma: float = 16.0,
              form: str = "code") -> float:
    """Float value of :func:`kcl_closed_form`.  Riesz needs t = s < 0 (t > 0 is ill-posed, §9.10)."""
    m = _instances(instances)
    gamma = chk.positive(gamma, "gamma")
    if kernel == "riesz":
        t = float(t)
        if not (math.isfinite(t) and t < 0):
            raise ValueError(f"t must be < 0 for the KCL riesz kernel (s = t > 0 is ill-posed); got {t}")
    else:
        t = chk.positive(t, "t")
    f = _numeric_kcl(kernel, form)
    with mpmath.workdps(30):
        return float(f(mpmath.mpf(m), mpmath.mpf(t), mpmath.mpf(gamma)))


def transitive_value(loss: str, profile: list[tuple[float, int]], tau: float) -> float:
    """Value of ``loss`` at an aligned distance-transitive configuration (dhel_kcl.md §3.2).

    Every point sees the inner products t_k with multiplicity m_k (sum m_k = M - 1), e.g. a
    regular polygon or a universal optimum.  Same engine form as :func:`closed_form`, with the
    same-view and other-view classes replaced by the profile: per anchor
    -1/tau + sum_groups log sum_{class} count e^{entry/tau}, evaluated with mpmath (30 digits).
    For the simplex profile [(-1/(M-1), M-1)] it equals :func:`value`.
    """
    form = ENGINE[_check_loss(loss)]
    tau = chk.positive(tau, "tau")
    prof = [(mpmath.mpf(float(t)), int(m)) for t, m in profile]
    if not prof or any(m < 1 for _, m in prof):
        raise ValueError("profile must be a non-empty list of (inner product, multiplicity >= 1)")
    with mpmath.workdps(30):
        one = mpmath.mpf(1)
        classes = {SELF: [(one, 1)], PARTNER: [(one, 1)], SAME_VIEW: prof, OTHER_VIEW: prof}
        total = -one / tau
        for group in form.groups:
            total += mpmath.log(mpmath.fsum(m * mpmath.exp(t / tau) for c in group for t, m in classes[c]))
        return float(total)


# --------------------------------------------------------------------------------------------
# DHEL-C5: the lemmas of T1's proof, symbolically
# --------------------------------------------------------------------------------------------
def _gram_symbols(m: int) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    """Generic inner products of unit vectors u_1..u_m, v_1..v_m (symbolic vectors via their Gram):
    uu[i, i] = vv[i, i] = 1, uu, vv symmetric, uv[i, j] = u_i . v_j free."""
    uu = sp.Matrix(m, m, lambda i, j: 1 if i == j else sp.Symbol(f"uu_{min(i, j)}{max(i, j)}"))
    vv = sp.Matrix(m, m, lambda i, j: 1 if i == j else sp.Symbol(f"vv_{min(i, j)}{max(i, j)}"))
    uv = sp.Matrix(m, m, lambda i, j: sp.Symbol(f"uv_{i}{j}"))
    return uu, vv, uv


def _lemmas_for(m: int) -> dict[str, bool]:
    uu, vv, uv = _gram_symbols(m)
    su2 = sum(uu)                      # ||S_u||^2 = sum_ij u_i.u_j
    sv2 = sum(vv)
    susv = sum(uv)                     # S_u . S_v
    a = uv.trace()                     # sum_i u_i . v_i
    idx = range(m)
    out: dict[str, bool] = {}
    # L1: sum_{i != j} u_i.u_j = ||S_u||^2 - M
    l1 = sum(uu[i, j] for i in idx for j in idx if i != j) - (su2 - m)
    out["L1"] = sp.expand(l1) == 0
    # L2: M a - S_u.S_v = (1/2) sum_{i,j} (u_i - u_j).(v_i - v_j)
    rhs = sp.Rational(1, 2) * sum(uv[i, i] - uv[i, j] - uv[j, i] + uv[j, j] for i in idx for j in idx)
    out["L2"] = sp.expand(m * a - susv - rhs) == 0
    # mean exponents of the Jensen step (L3), as in T1's proof sketch
    tau = TAU
    info = sum((uv[i, j] - uv[i, i]) / tau for i in idx for j in idx if j != i) / (m * (m - 1))
    out["InfoNCE mean exponent"] = sp.simplify(info - (susv - m * a) / (tau * m * (m - 1))) == 0
    exps = []
    for i in idx:  # SimCLR: anchors u_i and v_i, 2M - 2 non-positive candidates each
        exps += [(uv[i, j] - uv[i, i]) / tau for j in idx if j != i]
        exps += [(uu[i, j] - uv[i, i]) / tau for j in idx if j != i]
        exps += [(uv[j, i] - uv[i, i]) / tau for j in idx if j != i]
        exps += [(vv[i, j] - uv[i, i]) / tau for j in idx if j != i]
    simclr_mean = sum(exps) / (2 * m * (2 * m - 2))
    s_sum2 = su2 + sv2 + 2 * susv     # ||S_u + S_v||^2
    out["SimCLR mean exponent"] = sp.simplify(
        simclr_mean - (s_sum2 - 2 * m - (4 * m - 2) * a) / (4 * tau * m * (m - 1))) == 0
    dcl_mean = sum(
        (sum(uv[i, j] for j in idx if j != i) + sum(uu[i, j] for j in idx if j != i)) / (2 * (m - 1))
        - uv[i, i] for i in idx) / (m * tau)
    out["DCL mean exponent"] = sp.simplify(
        dcl_mean - (susv + su2 - m - (2 * m - 1) * a) / (2 * tau * m * (m - 1))) == 0
    dhel_mean = sum(sum(uu[i, j] for j in idx if j != i) / (m - 1) for i in idx) / (m * tau)
    out["DHEL mean exponent"] = sp.simplify(dhel_mean - (su2 - m) / (tau * m * (m - 1))) == 0
    # simplex Gram facts (exact rationals): PSD, rank M - 1, zero row sums
    g = simplex_gram(m)
    eig = g.eigenvals()
    out["simplex Gram PSD"] = all(sp.nsimplify(e) >= 0 for e in eig)
    out["simplex Gram rank M-1"] = g.rank() == m - 1
    out["simplex Gram zero row sums"] = all(sp.simplify(x) == 0 for x in g * sp.ones(m, 1))
    out["simplex Gram entry -1/(M-1)"] = all(
        sp.simplify(g[i, j] + sp.Rational(1, m - 1)) == 0 for i in idx for j in idx if i != j)
    return out


def _lower_bounds() -> dict[str, sp.Expr]:
    """Lower bounds of T1's proof with the extremal values (S_u = S_v = 0, a = M) substituted."""
    h = lambda n, x: sp.log(1 + n * sp.exp(x))  # noqa: E731  (L4: convex increasing)
    info_x = (0 - M * M) / (TAU * M * (M - 1))  # S_u.S_v - M a >= -M^2 (L2)
    simclr_x = (0 - 2 * M - (4 * M - 2) * M) / (4 * TAU * M * (M - 1))
    # DCL bracket S_u.S_v + ||S_u||^2 - M - M a - (M-1) a >= -M^2 + 0 - M - (M-1) M = -2 M^2 (L2, a <= M)
    dcl_b = sp.log(2 * (M - 1)) + (-M * M + 0 - M - (M - 1) * M) / (2 * TAU * M * (M - 1))
    dhel_b = -M / (TAU * M) + sp.log(M - 1) + (0 - M) / (TAU * M * (M - 1))
    return {"infonce": h(M - 1, info_x), "simclr": h(2 * M - 2, simclr_x), "dcl": dcl_b, "dhel": dhel_b,
            "dhel2": 2 * dhel_b + 1 / TAU}


@functools.cache
def lemma_report(sizes: tuple[int, ...] = (3, 4)) -> dict[str, bool]:
    """Every identity of DHEL-C5, True when sympy proves it exactly.

    - L1, L2 and the mean-exponent expressions for generic unit vectors with M in ``sizes``;
    - L3 equality case (LSE = log|C| + mean iff all equal) and L4 (h_n'' > 0) for symbolic n, x;
    - the simplex Gram facts for M in ``sizes``;
    - each lower bound equals the derived closed form for symbolic M and tau.
    """
    out: dict[str, bool] = {}
    for m in sizes:
        for key, ok in _lemmas_for(m).items():
            out[f"{key} (M={m})"] = bool(ok)
    n, x, c = sp.symbols("n x c", positive=True)
    k = sp.symbols("k", integer=True, positive=True)
    out["L3 equality at equal exponents"] = sp.simplify(sp.log(k * sp.exp(c)) - (sp.log(k) + c)) == 0
    h2 = sp.diff(sp.log(1 + n * sp.exp(x)), x, 2)
    out["L4 h_n convex"] = sp.simplify(h2 - n * sp.exp(x) / (1 + n * sp.exp(x)) ** 2) == 0
    out["L4 h_n increasing"] = sp.simplify(sp.diff(sp.log(1 + n * sp.exp(x)), x)).is_positive is True
    for loss, bound in _lower_bounds().items():
        out[f"bound = closed form ({loss})"] = equal(bound, closed_form(loss))
    return out
