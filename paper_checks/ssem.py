"""Checks of the SSEM paper (Lee, Oh, Lee, Sohn, AISTATS 2025, arXiv 2503.08203): spec ``ssem.md`` §10.

The paper's body was not available (spec §0): most results are the toolkit's reconstruction
(``[REC]``), derived in :mod:`theory.ssem` (sympy, 1-D Brent root for beta*) and confirmed here by
direct minimisation of the SupCL loss over free unit points (:mod:`solvers.ssem_minimise`, the
protocol of spec §8.7: d a little above d_min, >= 3 seeded starts, L-BFGS to a relative Riemannian
gradient norm of 1e-12 with a Newton polish, temperature continuation from tau = 0.5 below 0.5).
Every check reports the spec's own tag in ``spec_tag`` and the (K, n, p, d, seed) it used in its
detail; an optimisation with seed s uses the starts ``numpy.random.default_rng([s, r])``,
r = 0..restarts-1.

Shared tolerances (spec §10): "W tol" 2e-3 at tau >= 0.5 and 5e-3 below (the optimiser's stopping
rule meets an exponentially flat landscape at small tau, §8.7); "loss tol" L_opt - L_pred in
[-1e-7, 1e-5] (below -1e-7 the prediction would not be the global minimum: the check fails).

SSEM-C19 (the SDP relaxation is tight) is implemented by the certificate module as SSEM-CERT-1..3
(:mod:`paper_checks.certificates`); SSEM-C26 (transfer accuracy after encoder training) is
outside the toolkit's small-scale scope and reports ``skip``.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable

import numpy as np
import sympy as sp

from solvers.configurations import random_sphere_points
from solvers.layout import Layout
from solvers.losses import supcl, supcon
from solvers.metrics import variances
from solvers.ssem_minimise import SSEMMinimum, minimise_ssem, ssem_coordinates, ssem_geometry
from theory import ssem

from .registry import Outcome, Skip, check

PAPER = "ssem"
REC = "[REC] [DER+NUM]"
LOSS_LO, LOSS_HI = -1e-7, 1e-5  # spec §10 "loss tol"
LOSS_TOL = "L_opt - L_pred in [-1e-7, 1e-5] (spec §10)"
W_TOL = "2e-3 at tau >= 0.5, 5e-3 below (spec §10)"
#: round-off of O(1) float64 quantities (a few dozen operations): the spec's 1e-12
EXACT = 1e-12


def _w_tol(tau: float) -> float:
    """Spec §10 "W tol": the optimiser's stopping rule at an exponentially flat landscape (tau < 0.5)."""
    return 2e-3 if tau >= 0.5 else 5e-3


def _loss_ok(diff: float) -> bool:
    return LOSS_LO <= diff <= LOSS_HI


@functools.cache
def _opt(K: int, n: int, p: int, alpha: float, tau: float, variant: str = "code", dim: int | None = None,
         restarts: int = 3, seed: int = 0) -> SSEMMinimum:
    """Direct minimisation (cached: several checks share the grids of SSEM-C6)."""
    return minimise_ssem(K, n, p, alpha, tau, variant, dim=dim, restarts=restarts, seed=seed)


def _pred(alpha: float, tau: float, K: int, n: int, p: int = 2, variant: str = "code") -> ssem.SSEMOptimum:
    with warnings.catch_warnings():  # the R10 side-condition warning: the regime is compared instead
        warnings.simplefilter("ignore", RuntimeWarning)
        return ssem.beta_star(alpha, tau, K, n, p, variant)


def _agree(res: SSEMMinimum, pred: ssem.SSEMOptimum) -> dict:
    """Loss and W of a minimiser against the prediction, with the pass flags of spec §10."""
    dL = res.fun - float(pred.L_star)
    dW = res.W - float(pred.W_star)
    return {"K": res.K, "n": res.n, "p": res.p, "d": res.dim, "alpha": round(res.alpha, 6), "tau": res.tau,
            "variant": res.variant, "seed": res.seed, "W_opt": res.W, "W_pred": float(pred.W_star), "dW": dW,
            "dL": dL, "hits": f"{res.hits}/{res.restarts}", "loss_ok": _loss_ok(dL),
            "W_ok": abs(dW) <= _w_tol(res.tau)}


def _short(rows: Iterable[dict], keys: tuple[str, ...]) -> str:
    def fmt(v: object) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return "; ".join("(" + ", ".join(f"{k}={fmt(r[k])}" for k in keys if k in r) + ")" for r in rows)


def _seeds_note(seed: int, restarts: int) -> str:
    return f"seed {seed}, {restarts} starts rng([{seed}, r]), r < {restarts}"


# ----------------------------------------------------------------------------------------------
# symbolic helpers: exponentials of the SSEM similarities as atoms (exact rewriting)
# ----------------------------------------------------------------------------------------------
_SY = ssem.derivation("code").symbols
_b, _a, _t, _K, _n, _p, _u = (_SY[k] for k in ("beta", "alpha", "tau", "K", "n", "p", "u"))
_A0, _A1, _A2 = sp.symbols("A0 A1 A2", positive=True)
_S1 = (_n * _b - 1) / (_n - 1)  # spec §4.2
_S2 = -_b / (_K - 1)
_C0 = {"code": _p, "self-excluded": _p - 1}  # spec §1


def _atomize(expr: sp.Expr) -> sp.Expr:
    """exp(s_i/tau) -> A_i and exp((s_i - 1)/tau) -> A_i/A0 (exact; any other exponential raises)."""
    table = [(1 / _t, _A0), (_S1 / _t, _A1), (_S2 / _t, _A2), ((_S1 - 1) / _t, _A1 / _A0),
             ((_S2 - 1) / _t, _A2 / _A0)]

    def repl(arg: sp.Expr) -> sp.Expr:
        for cand, sym in table:
            if sp.cancel(arg - cand) == 0:
                return sym
        raise ArithmeticError(f"unexpected exponential exp({arg})")

    return expr.replace(sp.exp, repl)


def _is_zero(expr: sp.Expr) -> bool:
    """Exact test: the numerator over a common denominator expands to 0."""
    return sp.expand(sp.numer(sp.together(expr))) == 0


def _spec_D(variant: str) -> sp.Expr:
    """R2: D = c0 e^{1/tau} + (n-1) p e^{s1/tau} + (K-1) n p e^{s2/tau}, atomized."""
    return _C0[variant] * _A0 + (_n - 1) * _p * _A1 + (_K - 1) * _n * _p * _A2


def _one_signed(expr: sp.Expr, subs: dict, gens: tuple[sp.Symbol, ...]) -> bool:
    """Sufficient test that ``expr`` has no zero and one sign: after ``subs`` (to positive
    symbols) its numerator and its denominator are polynomials whose coefficients each share one
    sign.  The sign itself is then fixed by evaluating at any one point."""
    num, den = sp.fraction(sp.factor(sp.cancel(expr.subs(subs))))
    for poly in (sp.expand(num), sp.expand(den)):
        if len({sp.sign(c) for c in sp.Poly(poly, *gens).coeffs()}) != 1:
            return False
    return True


# ==============================================================================================
# symbolic and formula checks
# ==============================================================================================
@check("SSEM-C1", PAPER, "The full SupCL loss (section 2) at explicit SSEM coordinates equals the restricted "
       "loss L_SSEM(beta) of R2, both variants", "reconstruction", REC, "numeric")
def loss_restricted(quick: bool) -> Outcome:
    rng = np.random.default_rng(101)
    cases = [(2, 3, 2), (3, 4, 2), (3, 3, 3), (4, 2, 2)] if quick else \
        [(2, 3, 2), (3, 4, 2), (3, 3, 3), (4, 2, 2), (4, 5, 2), (2, 2, 4), (5, 3, 3)]
    worst, rows = 0.0, []
    for K, n, p in cases:
        for variant in ("code", "self-excluded"):
            for beta in (0.0, 1.0, *rng.uniform(0, 1, 3)):
                tau, alpha = float(rng.uniform(0.1, 2.0)), float(rng.uniform(0, 1))
                z = ssem_coordinates(K, n, p, float(beta), dim=K * n + 1)
                full = supcl(Layout.balanced(K, n, p), alpha, tau, variant=variant).value(z)
                red = float(ssem.loss_ssem(float(beta), alpha, tau, K, n, p, variant))
                err = abs(full - red)
                if err > worst:
                    worst = err
                rows.append(err)
    # 1e-12: float64 round-off of two evaluations of an O(1) log-sum-exp (spec §10)
    return Outcome(expected=0.0, measured=worst, tolerance=EXACT, passed=worst <= EXACT,
                   detail=f"max |L_full - L_SSEM(beta)| over {len(rows)} cases: (K, n, p) in {cases}, both "
                   "variants, beta in {0, 1, 3 uniform}, tau ~ U(0.1, 2), alpha ~ U(0, 1) (rng seed 101); "
                   "coordinates of spec §4.1 in d = Kn + 1")


@check("SSEM-C2", PAPER, "Stationarity formula R4: dL_SSEM/dbeta = (n/tau)[p(e^{s1/tau} - e^{s2/tau})/D - "
       "(1-alpha)/(n-1)], for c0 = p (code) and c0 = p - 1 (self-excluded)", "reconstruction", REC, "symbolic")
def stationarity_symbolic(quick: bool) -> Outcome:
    res = {}
    for variant in ("code", "self-excluded"):
        d = ssem.derivation(variant)
        D = _spec_D(variant)
        R4 = _n / _t * (_p * (_A1 - _A2) / D - (1 - _a) / (_n - 1))
        res[variant] = _is_zero(_atomize(sp.diff(d.L, _b)) - R4)
    ok = all(res.values())
    return Outcome(expected="diff(L, beta) - R4 == 0 for both c0", measured=res, tolerance="exact", passed=ok,
                   detail="L is theory.ssem's sympy derivation of the section-2 loss on the SSEM; R4 typed from "
                   "the spec; exponentials rewritten as atoms, numerator expanded to 0",
                   counterexample=None if ok else res)


@check("SSEM-C3", PAPER, "Threshold R5: L'(1) = 0 solved for alpha gives alpha*_code = (r + Kn - 1)/(n(r + K - 1)) "
       "and 1 - alpha*_se = (n-1)p(r-1)/((np-1)r + (K-1)np), r = exp(K/((K-1)tau))", "reconstruction", REC,
       "symbolic")
def threshold_symbolic(quick: bool) -> Outcome:
    r = 1 / _u
    closed = {"code": (r + _K * _n - 1) / (_n * (r + _K - 1)),
              "self-excluded": 1 - (_n - 1) * _p * (r - 1) / ((_n * _p - 1) * r + (_K - 1) * _n * _p)}
    res = {}
    for variant, form in closed.items():
        d = ssem.derivation(variant)
        res[variant] = _is_zero(d.alpha_star_u - form)
    res["code independent of p"] = not ssem.derivation("code").alpha_star_u.has(_p)
    ok = all(res.values())
    return Outcome(expected="derived alpha* == spec closed forms; code form free of p", measured=res,
                   tolerance="exact", passed=ok, detail="theory.ssem solves L'(beta = 1) = 0 for alpha (u = 1/r)",
                   counterexample=None if ok else res)


@check("SSEM-C4", PAPER, "Worked example (the authors' synthetic default): alpha*_code(K=2, n=3, tau=1) = 0.4923",
       "reconstruction", f"{REC} (authors' synthetic default)", "numeric")
def worked_example(quick: bool) -> Outcome:
    val = float(ssem.alpha_star(2, 3, 1.0))
    return Outcome(expected=0.4923, measured=val, tolerance=5e-5, passed=abs(val - 0.4923) <= 5e-5,
                   detail="spec §5.5 (4-decimal value; more precisely 0.492271)")


@check("SSEM-C24", PAPER, "L' vanishes at the full ETF for alpha = 1: L'(beta = (K-1)/(Kn-1); alpha = 1) = 0, "
       "both variants", "reconstruction", REC, "symbolic")
def etf_stationary(quick: bool) -> Outcome:
    res = {}
    for variant in ("code", "self-excluded"):
        e = ssem.derivation(variant).dL.subs({_a: 1, _b: (_K - 1) / (_K * _n - 1)})
        # s1 = s2 = -1/(Kn-1) there: both shifted exponentials are the same number
        e = e.replace(sp.exp, lambda x: _A1 if sp.cancel(x + _K * _n / ((_K * _n - 1) * _t)) == 0 else sp.exp(x))
        res[variant] = _is_zero(e)
    ok = all(res.values())
    return Outcome(expected="0 (exact)", measured=res, tolerance="exact", passed=ok,
                   detail="theory.ssem's derived L'(beta), substituted and simplified")


@check("SSEM-C23", PAPER, "R9 step 6: for the reduced code-variant objective G(abar, bbar), "
       "(d/dabar + d/dbbar) G = -K/((K-1) tau) w3, with w3 the softmax weight of the other-class group",
       "derived", "[DER+NUM]", "symbolic")
def sum_of_partials(quick: bool) -> Outcome:
    a, b = sp.symbols("abar bbar", real=True)
    c = -(a + (_n - 1) * b) / ((_K - 1) * _n)  # R9 step 5: cbar at its bound (mu = 0)
    e1, e2, e3 = sp.exp(a / _t), sp.exp(b / _t), sp.exp(c / _t)
    D = _p * e1 + (_n - 1) * _p * e2 + (_K - 1) * _n * _p * e3
    G = sp.log(D) - ((1 - _a) * b + _a * a) / _t  # R9 step 3
    w3 = (_K - 1) * _n * _p * e3 / D
    lhs = sp.diff(G, a) + sp.diff(G, b)
    ok = sp.simplify(lhs + _K / ((_K - 1) * _t) * w3) == 0
    return Outcome(expected="(G_a + G_b) + K/((K-1) tau) w3 == 0", measured=bool(ok), tolerance="exact",
                   passed=bool(ok), detail="G built here from R9 steps 3-5 (spec §5.9)")


@check("SSEM-C20", PAPER, "R3: L_SSEM is strictly convex on [0, 1] (L'' > 0) and its derivative changes sign "
       "exactly once if alpha > alpha*, never otherwise", "reconstruction", REC, "symbolic")
def convexity(quick: bool) -> Outcome:
    sym = {}
    for variant in ("code", "self-excluded"):
        d = ssem.derivation(variant)
        D = _spec_D(variant)
        pis = [_C0[variant] * _A0 / D, (_n - 1) * _p * _A1 / D, (_K - 1) * _n * _p * _A2 / D]
        sig = [sp.Integer(0), _n / ((_n - 1) * _t), -1 / ((_K - 1) * _t)]  # slopes d(s_i/tau)/dbeta
        var = sum(pis[i] * pis[j] * (sig[i] - sig[j]) ** 2 for i in range(3) for j in range(3)) / 2
        sym[variant] = _is_zero(_atomize(d.d2L) - var)
    # L'' is a variance of the slopes under positive weights; the slopes 1 and 2 differ: strictly > 0
    slopes_differ = _is_zero(sig[1] - sig[2] - (_K * _n - 1) / ((_K - 1) * (_n - 1) * _t))
    grid = np.linspace(0.0, 1.0, 201)
    cases = [(2, 3, 2), (4, 5, 2), (3, 4, 3)] if quick else [(2, 3, 2), (4, 5, 2), (3, 4, 3), (10, 50, 2), (100, 5, 2)]
    taus, alphas = (0.05, 0.1, 0.5, 1.0, 3.0), (0.0, 0.2, 0.5, 0.8, 0.95, 1.0)
    min_d2, bad, fd_err = math.inf, [], 0.0
    for variant in ("code", "self-excluded"):
        num = ssem.numeric_functions(variant)
        d2 = sp.lambdify((_b, _a, _t, _K, _n, _p), ssem.derivation(variant).d2L, "numpy")
        for K, n, p in cases:
            for tau in taus:
                for alpha in alphas:
                    vals = np.asarray(d2(grid, alpha, tau, K, n, p), dtype=float) * np.ones_like(grid)
                    min_d2 = min(min_d2, float(vals.min()))
                    g = np.array([num.dL_w(1.0 - b, alpha, tau, K, n, p) for b in grid])
                    sg = np.sign(g)
                    sg = sg[sg != 0]  # a grid point can hit the root exactly (alpha = 1: beta = (K-1)/(Kn-1))
                    changes = int(np.sum(np.diff(sg) != 0))
                    want = 1 if alpha > float(ssem.alpha_star(K, n, tau, variant, p)) else 0
                    if changes != want or not np.all(vals > 0):
                        bad.append({"variant": variant, "K": K, "n": n, "p": p, "tau": tau, "alpha": alpha,
                                    "sign_changes": changes, "expected": want, "min L''": float(vals.min())})
                    if tau >= 0.5:  # central second differences of L_SSEM against L''
                        mid = grid[1:-1]
                        L = np.asarray(ssem.loss_ssem(grid, alpha, tau, K, n, p, variant))
                        fd = (L[2:] - 2 * L[1:-1] + L[:-2]) / (grid[1] - grid[0]) ** 2
                        ex = np.asarray(d2(mid, alpha, tau, K, n, p), dtype=float)
                        fd_err = max(fd_err, float(np.max(np.abs(fd - ex) / np.maximum(1.0, np.abs(ex)))))
    ok = all(sym.values()) and slopes_differ and not bad and fd_err <= 1e-3
    return Outcome(expected="L'' == (1/2) sum pi_i pi_j (sigma_i - sigma_j)^2 > 0; sign changes 1 iff alpha > alpha*",
                   measured={"symbolic": sym, "min L'' on grid": min_d2, "finite-difference rel. error": fd_err},
                   tolerance="exact (symbolic); L'' > 0 on every grid point; 2nd differences (step 0.005) "
                   "within 1e-3 relative (truncation error h^2 L''''/12 at tau >= 0.5)",
                   passed=ok, detail=f"grid of 201 beta in [0, 1]; (K, n, p) in {cases}; tau in {taus}; "
                   f"alpha in {alphas}; both variants; the second derivative is positive by the variance form "
                   "(weights > 0, slopes n/((n-1)tau) != -1/((K-1)tau))",
                   counterexample=bad[:5] or None)


@check("SSEM-C10", PAPER, "R4: W* is non-decreasing in alpha, strictly increasing where it is > 0 (code variant)",
       "reconstruction", REC, "numeric")
def monotone_alpha(quick: bool) -> Outcome:
    cases = [(2, 3, 0.1), (4, 5, 0.5), (3, 4, 1.0)] if quick else \
        [(2, 3, 0.1), (2, 3, 1.0), (4, 5, 0.1), (4, 5, 0.5), (3, 4, 1.0), (10, 50, 0.1), (100, 5, 0.1), (4, 5, 2.0)]
    alphas = np.linspace(0.0, 1.0, 201 if quick else 801)
    worst_drop, bad = 0.0, []
    note_se = []
    for K, n, tau in cases:
        W = np.array([_pred(float(a), tau, K, n).W_star for a in alphas])
        dW = np.diff(W)
        worst_drop = min(worst_drop, float(dW.min()))
        if np.any(dW < -EXACT) or np.any((W[1:] > 0) & (dW <= 0)):
            i = int(np.argmin(dW))
            bad.append({"K": K, "n": n, "tau": tau, "alpha": float(alphas[i]), "dW": float(dW[i])})
        # the self-excluded variant's global W* (not claimed): the view-split regime breaks monotonicity
        Wse = np.array([_pred(float(a), tau, K, n, 2, "self-excluded").W_star for a in alphas])
        if np.any(np.diff(Wse) < -EXACT):
            note_se.append((K, n, tau))
    ok = not bad
    return Outcome(expected="W*(alpha) non-decreasing; strictly increasing where W* > 0", measured=worst_drop,
                   tolerance=f"{EXACT} (float64 round-off of the Brent root)", passed=ok,
                   detail=f"theory 1-D solver on {alphas.size} alphas in [0, 1], (K, n, tau) in {cases}; "
                   "measured = the most negative step. Not part of the claim: the self-excluded variant's global "
                   f"W* (R10) decreases in alpha across the view-split -> collapse boundary for {note_se} "
                   "(p = 2), while 1 - beta* (the SSEM branch) stays monotone.",
                   counterexample=bad or None)


@check("SSEM-C11", PAPER, "R8: W* is not monotone in tau (K=4, n=5, alpha=0.8): W* -> 0 as tau -> 0, an interior "
       "maximum, and W* = 0 exactly for tau >= tau_max(0.8)", "reconstruction", REC, "numeric")
def non_monotone_tau(quick: bool) -> Outcome:
    K, n, alpha = 4, 5, 0.8
    taus = np.linspace(0.005, 3.0, 300 if quick else 1200)
    W = np.array([_pred(alpha, float(t), K, n).W_star for t in taus])
    tmax = float(ssem.tau_max(alpha, K, n))
    small = [(t, _pred(alpha, t, K, n).W_star) for t in (1e-2, 1e-3, 1e-4, 1e-5)]
    to_zero = all(small[i + 1][1] < small[i][1] for i in range(3)) and small[-1][1] < 1e-4
    i = int(np.argmax(W))
    interior = 0 < i < taus.size - 1 and W[i] > W[0] and W[i] > W[-1]
    above = W[taus >= tmax]
    zeros = bool(np.all(above == 0.0)) and above.size > 0
    below = W[taus < tmax]
    positive = bool(np.all(below > 0))
    ok = to_zero and interior and zeros and positive
    return Outcome(expected="W*(tau) -> 0, interior maximum, W* = 0 on [tau_max, 3]",
                   measured={"argmax tau": float(taus[i]), "max W*": float(W[i]), "tau_max": tmax,
                             "W*(1e-5)": small[-1][1], "max W* above tau_max": float(above.max(initial=0.0))},
                   tolerance="qualitative; zeros exact (<= 1e-12)", passed=ok,
                   detail=f"theory 1-D solver on {taus.size} tau in [0.005, 3] and tau in 1e-2..1e-5; "
                   f"W* at small tau: {[(t, round(w, 8)) for t, w in small]}")


@check("SSEM-C12", PAPER, "R6: tau_max(0.5; K=4, n=5) = 0.6546; alpha*(tau_max(alpha)) = alpha; "
       "W*(0.999 tau_max) > 0 and W*(1.001 tau_max) = 0, both variants", "reconstruction", REC, "numeric")
def tau_bound(quick: bool) -> Outcome:
    ex = float(ssem.tau_max(0.5, 4, 5))
    worst, bad = 0.0, []
    for variant in ("code", "self-excluded"):
        for K, n, p in ((4, 5, 2), (3, 4, 3), (2, 3, 2)):
            for alpha in (0.5, 0.8, 0.9):
                tm = float(ssem.tau_max(alpha, K, n, variant, p))
                back = float(ssem.alpha_star(K, n, tm, variant, p))
                worst = max(worst, abs(back - alpha))
                w_in = _pred(alpha, 0.999 * tm, K, n, p, variant).W_star
                w_out = _pred(alpha, 1.001 * tm, K, n, p, variant).W_star
                if abs(back - alpha) > 1e-10 or not w_in > 0 or w_out != 0.0:
                    bad.append({"variant": variant, "K": K, "n": n, "p": p, "alpha": alpha, "tau_max": tm,
                                "alpha*(tau_max)": back, "W(0.999)": w_in, "W(1.001)": w_out})
    ok = abs(ex - 0.6546) <= 5e-5 and not bad
    return Outcome(expected={"tau_max(0.5; 4, 5)": 0.6546, "|alpha*(tau_max) - alpha|": 0.0},
                   measured={"tau_max(0.5; 4, 5)": ex, "|alpha*(tau_max) - alpha|": worst},
                   tolerance="5e-5 (4-decimal example); 1e-10 (consistency: Brent-free closed forms in float64)",
                   passed=ok, detail="(K, n, p) in {(4,5,2), (3,4,3), (2,3,2)}, alpha in {0.5, 0.8, 0.9}, both "
                   "variants", counterexample=bad or None)


@check("SSEM-C14", PAPER, "R8: the small-tau asymptote W*_asym = (n-1)/n tau ln(alpha(n-1)/(1-alpha)) (code; "
       "p/(p-1) inside the log when self-excluded) is within 1e-4 of W* and its relative error shrinks as tau -> 0",
       "reconstruction", REC, "numeric")
def small_tau(quick: bool) -> Outcome:
    K, n, p = 4, 5, 2
    worst, bad, rows = 0.0, [], []
    for variant in ("code", "self-excluded"):
        for alpha in (0.5, 0.8, 0.9):
            rels = []
            for tau in (0.1, 0.05, 0.01):
                o = _pred(alpha, tau, K, n, p, variant)
                asym = float(ssem.W_small_tau(alpha, tau, n, variant, p))
                # the spec's closed form typed here
                arg = alpha * (n - 1) / (1 - alpha) * (p / (p - 1) if variant == "self-excluded" else 1.0)
                typed = (n - 1) / n * tau * math.log(arg)
                err = abs(o.W_star - asym)
                worst = max(worst, err)
                rels.append(err / o.W_star)
                if abs(asym - typed) > EXACT or err > 1e-4:
                    bad.append({"variant": variant, "alpha": alpha, "tau": tau, "W*": o.W_star, "asym": asym,
                                "typed": typed})
            rows.append({"variant": variant, "alpha": alpha, "rel err tau=0.1,0.05,0.01": rels})
            if not rels[0] > rels[1] > rels[2]:
                bad.append({"variant": variant, "alpha": alpha, "relative errors": rels})
    return Outcome(expected="|W* - W*_asym| <= 1e-4, relative error decreasing", measured=worst, tolerance=1e-4,
                   passed=not bad, detail=f"K=4, n=5, p=2; {rows}", counterexample=bad or None)


@check("SSEM-C15", PAPER, "Section 2.6: the self-excluded loss at alpha_eff = (p-1)/(np-1) equals SupCon L_out "
       "(Khosla et al.) on every configuration", "derived", "[DER+NUM]", "monte-carlo")
def supcon_equivalence(quick: bool) -> Outcome:
    cases = [(2, 3, 2), (3, 4, 2), (3, 2, 3), (4, 3, 4), (2, 5, 2)]
    draws = 5 if quick else 20
    worst = 0.0
    for K, n, p in cases:
        lay = Layout.balanced(K, n, p)
        a_eff = float(ssem.alpha_eff_supcon(n, p))
        for i in range(draws):
            tau = 0.1 + 0.4 * i / draws
            z = random_sphere_points(lay.n_rows, 5, seed=1000 + i)
            mix = supcl(lay, a_eff, tau, variant="self-excluded").value(z)
            sc = supcon(lay.row_class, tau).value(z)
            worst = max(worst, abs(mix - sc))
    # 1e-12: float64 round-off of two O(1) log-sum-exp evaluations with different weight matrices
    return Outcome(expected=0.0, measured=worst, tolerance=EXACT, passed=worst <= EXACT,
                   detail=f"max |L_se(alpha_eff) - L_out| over {draws} uniform configurations in R^5 (seeds 1000+i) "
                   f"per (K, n, p) in {cases}; tau in [0.1, 0.5)")


@check("SSEM-C21", PAPER, "R1 / P4: for unit vectors T = 1 - |mu|^2 <= 1 and T = W + B (size weights); an SSEM has "
       "W = 1 - beta, B = beta, T = 1 (the largest total variance)", "third-party",
       "[SUM] (claim P4) + [REC] [DER+NUM]", "monte-carlo")
def variance_identities(quick: bool) -> Outcome:
    worst_id, max_T, worst_ssem = 0.0, -math.inf, 0.0
    draws = 20 if quick else 100
    for i in range(draws):
        rng = np.random.default_rng([21, i])
        K = int(rng.integers(2, 6))
        sizes = rng.integers(1, 6, size=K)  # unbalanced classes too
        labels = np.repeat(np.arange(K), sizes)
        z = random_sphere_points(labels.size, int(rng.integers(2, 8)), seed=2100 + i)
        W, B, T = variances(z, labels)
        mu = z.mean(axis=0)
        worst_id = max(worst_id, abs(T - (W + B)), abs(T - (1 - mu @ mu)))
        max_T = max(max_T, T)
    for K, n, p in ((2, 3, 2), (3, 4, 2), (4, 5, 3)):
        for beta in (0.0, 0.3, 0.7, 1.0):
            g = ssem_geometry(ssem_coordinates(K, n, p, beta), Layout.balanced(K, n, p))
            worst_ssem = max(worst_ssem, abs(g.W - (1 - beta)), abs(g.B - beta), abs(g.T - 1))
    ok = worst_id <= EXACT and max_T <= 1 + EXACT and worst_ssem <= EXACT
    return Outcome(expected="T = W + B = 1 - |mu|^2 <= 1; SSEM: W = 1 - beta, B = beta, T = 1",
                   measured={"max identity error": worst_id, "max T": max_T, "max SSEM error": worst_ssem},
                   tolerance=f"{EXACT} (float64 round-off)", passed=ok,
                   detail=f"{draws} random configurations (K in 2..5, unbalanced class sizes 1..5, d in 2..7, "
                   "seeds 2100+i); SSEM coordinates of §4.1 for (K, n, p) in {(2,3,2), (3,4,2), (4,5,3)}, "
                   "beta in {0, 0.3, 0.7, 1}")


@check("SSEM-C25", PAPER, "Section 6.2: CIFAR-10 with B = 500 maps to (K, n) = (10, 50) and CIFAR-100 to (100, 5); "
       "the per-batch collapse threshold alpha*(K, n, tau = 0.1) (code variant) and which swept alpha lie above it",
       "reconstruction", "[CODE] (setup) + [REC] (prediction)", "numeric")
def batch_guideline(quick: bool) -> Outcome:
    swept = (0.0, 0.2, 0.5, 0.8, 1.0)
    out, ok = {}, True
    for name, C, want in (("CIFAR-10", 10, (10, 50)), ("CIFAR-100", 100, (100, 5))):
        m = ssem.batch_to_Kn(500, C)
        K, n = m["K"], m["n"]
        ok &= (K, n) == want
        a = float(ssem.alpha_star(K, n, 0.1))
        u = math.exp(-K / ((K - 1) * 0.1))
        typed = (1 + (K * n - 1) * u) / (n * (1 + (K - 1) * u))  # R5, u form (spec §5.5)
        ok &= abs(a - typed) <= EXACT
        out[name] = {"K": K, "n": n, "alpha*": a, "1/n": 1 / n, "alpha above alpha* (no collapse)":
                     [x for x in swept if x > a]}
    return Outcome(expected={"CIFAR-10": (10, 50), "CIFAR-100": (100, 5)}, measured=out,
                   tolerance="mapping exact; alpha* equals the typed R5 formula to 1e-12", passed=ok,
                   detail="swept alpha {0, 0.2, 0.5, 0.8, 1} (the authors' ImageNet sweep; README example 0.5), "
                   "tau = 0.1, p = 2. A per-batch prediction for free points at the optimum: not verifiable "
                   "without encoder training (spec §8.11)")


@check("SSEM-C26", PAPER, "P5: transfer (linear probe) accuracy peaks at an intermediate alpha, i.e. at a moderate "
       "within-class variance", "paper-abstract", "[ABS]/[SUM]", "training")
def transfer_peak(quick: bool) -> Outcome:
    raise Skip("needs encoder training on CIFAR/ImageNet and linear probes on 11 downstream sets (spec §7.2, "
               "SSEM-C26 'optional, out of small-scale scope'); not run by the toolkit")


@check("SSEM-C27", PAPER, "Section 2.4: the analytic gradient of the SupCL loss (both variants) equals central "
       "finite differences", "derived", "[DER+NUM]", "numeric")
def gradient_fd(quick: bool) -> Outcome:
    worst, n_cases = 0.0, 0
    for seed, (K, n, p, d) in enumerate([(2, 3, 2, 4), (3, 2, 3, 5), (2, 2, 2, 3)]):
        lay = Layout.balanced(K, n, p)
        for variant in ("code", "self-excluded"):
            for alpha, tau in ((0.0, 0.5), (0.3, 0.2), (1.0, 1.0)):
                loss = supcl(lay, alpha, tau, variant=variant)
                x = np.random.default_rng([27, seed]).standard_normal((lay.n_rows, d))
                _, g = loss.value_and_grad(x)
                h = 1e-6
                fd = np.zeros_like(x)
                for idx in np.ndindex(*x.shape):
                    e = np.zeros_like(x)
                    e[idx] = h
                    fd[idx] = (loss.value(x + e) - loss.value(x - e)) / (2 * h)
                worst = max(worst, float(np.linalg.norm(fd - g) / np.linalg.norm(g)))
                n_cases += 1
    # 1e-6 (spec §2.4): central differences with h = 1e-6 carry ~h^2 truncation + eps/h round-off
    return Outcome(expected=0.0, measured=worst, tolerance=1e-6, passed=worst <= 1e-6,
                   detail=f"relative error |FD - grad| / |grad| over {n_cases} cases (raw Gaussian points, seeds "
                   "rng([27, i]); alpha, tau in {(0, 0.5), (0.3, 0.2), (1, 1)}; both variants)")


# ==============================================================================================
# direct minimisation (spec §8.7 protocol)
# ==============================================================================================
C6_CONFIGS = ((2, 3, 2, 8), (3, 4, 2, 16), (4, 5, 2, 24), (3, 3, 3, 12))
C6_TAUS = (0.1, 0.2, 0.5, 1.0)
C6_ALPHAS = (0.0, 0.2, 0.5, 0.8, 1.0)


def _c6_grid(quick: bool) -> list[tuple[int, int, int, int, float, float]]:
    if quick:
        return [(K, n, p, d, t, a) for (K, n, p, d) in (C6_CONFIGS[0], C6_CONFIGS[3]) for t in (0.1, 1.0)
                for a in (0.0, 0.5, 1.0)]
    return [(K, n, p, d, t, a) for (K, n, p, d) in C6_CONFIGS for t in C6_TAUS for a in C6_ALPHAS]


@check("SSEM-C6", PAPER, "P2: every minimiser of the code-variant SupCL loss found by direct optimisation is an "
       "SSEM: views aligned, constant same-class and cross-class cosines, total variance 1, loss and W as predicted",
       "paper-abstract", "[ABS] (claim P2) + [REC] [DER+NUM]", "numeric")
def minimisers_are_ssem(quick: bool) -> Outcome:
    rows, bad = [], []
    worst = {"1 - view_alignment": 0.0, "same-class std": 0.0, "cross-class std": 0.0, "|T - 1|": 0.0,
             "|dW|": 0.0, "dL max": -math.inf, "dL min": math.inf}
    for K, n, p, d, tau, alpha in _c6_grid(quick):
        res = _opt(K, n, p, alpha, tau, dim=d)
        row = _agree(res, _pred(alpha, tau, K, n, p))
        strict = tau >= 0.5
        lim_align, lim_same, lim_cross = (1e-6, 1e-6, 1e-6) if strict else (1e-4, 1e-4, 5e-2)
        row.update(align=1 - res.view_alignment, same_std=res.same_class_cos_std, cross_std=res.cross_class_cos_std,
                   T=res.T)
        good = (row["align"] <= lim_align and row["same_std"] < lim_same and row["cross_std"] < lim_cross
                and abs(res.T - 1) <= 1e-3 and row["loss_ok"] and row["W_ok"])
        worst["1 - view_alignment"] = max(worst["1 - view_alignment"], row["align"])
        worst["same-class std"] = max(worst["same-class std"], row["same_std"])
        worst["cross-class std"] = max(worst["cross-class std"], row["cross_std"])
        worst["|T - 1|"] = max(worst["|T - 1|"], abs(res.T - 1))
        worst["|dW|"] = max(worst["|dW|"], abs(row["dW"]))
        worst["dL max"] = max(worst["dL max"], row["dL"])
        worst["dL min"] = min(worst["dL min"], row["dL"])
        rows.append(row)
        if not good:
            bad.append(row)
    configs = sorted({(r["K"], r["n"], r["p"], r["d"]) for r in rows})
    return Outcome(expected="SSEM structure; L, W as predicted", measured=worst,
                   tolerance="tau >= 0.5: 1 - min same-instance cos <= 1e-6, same-/cross-class std < 1e-6; tau < 0.5: "
                   "1e-4, 1e-4, 5e-2 (flat direction, §8.7); |T - 1| <= 1e-3; " + f"{LOSS_TOL}; W tol {W_TOL}",
                   passed=not bad,
                   detail=f"{len(rows)} minimisations, (K, n, p, d) in {configs}, tau in "
                   f"{sorted({r['tau'] for r in rows})}, alpha in {sorted({r['alpha'] for r in rows})}; "
                   f"{_seeds_note(0, 3)}; temperature continuation below 0.5",
                   counterexample=bad or None)


@check("SSEM-C7", PAPER, "Pure supervised (alpha = 0, code variant) collapses: W < 1e-4 at the minimiser",
       "reconstruction", REC, "numeric")
def supervised_collapses(quick: bool) -> Outcome:
    rows = []
    for K, n, p, d, tau, alpha in _c6_grid(quick):
        if alpha == 0.0:
            res = _opt(K, n, p, alpha, tau, dim=d)
            rows.append({"K": K, "n": n, "p": p, "d": d, "tau": tau, "W": res.W})
    worst = max(r["W"] for r in rows)
    return Outcome(expected="W < 1e-4", measured=worst, tolerance=1e-4, passed=worst < 1e-4,
                   detail=f"the alpha = 0 runs of SSEM-C6 ({len(rows)}): " + _short(rows, ("K", "n", "p", "tau", "W"))
                   + f"; {_seeds_note(0, 3)}")


@check("SSEM-C8", PAPER, "Pure self-supervised (alpha = 1) gives the full ETF: W* = K(n-1)/(Kn-1) = 0.8000, 0.8182, "
       "0.8421 for (2,3), (3,4), (4,5), independent of tau, both variants", "reconstruction", REC, "numeric")
def pure_self_supervised(quick: bool) -> Outcome:
    spec_vals = {(2, 3): 0.8000, (3, 4): 0.8182, (4, 5): 0.8421}
    worst_solver, worst_spec, bad = 0.0, 0.0, []
    for (K, n), val in spec_vals.items():
        closed = K * (n - 1) / (K * n - 1)
        worst_spec = max(worst_spec, abs(closed - val))
        for variant in ("code", "self-excluded"):
            for tau in (0.01, 0.1, 0.5, 1.0, 5.0):
                w = _pred(1.0, tau, K, n, 2, variant).W_star
                worst_solver = max(worst_solver, abs(w - closed))
    opt_rows = []
    code_runs = [(K, n, p, d, t) for K, n, p, d, t, a in _c6_grid(quick) if a == 1.0]
    for K, n, p, d, tau in code_runs:
        res = _opt(K, n, p, 1.0, tau, dim=d)
        opt_rows.append({"variant": "code", "K": K, "n": n, "p": p, "tau": tau, "W": res.W,
                         "dW": res.W - K * (n - 1) / (K * n - 1)})
    se_runs = [(2, 3, 2, 0.5), (2, 3, 2, 0.1)] if quick else [(2, 3, 2, 0.5), (2, 3, 2, 0.1), (3, 4, 2, 0.5),
                                                               (3, 4, 2, 1.0)]
    for K, n, p, tau in se_runs:
        res = _opt(K, n, p, 1.0, tau, "self-excluded", seed=8)
        opt_rows.append({"variant": "self-excluded", "K": K, "n": n, "p": p, "tau": tau, "W": res.W,
                         "dW": res.W - K * (n - 1) / (K * n - 1)})
    for r in opt_rows:
        if abs(r["dW"]) > _w_tol(r["tau"]):
            bad.append(r)
    ok = worst_solver <= 1e-10 and worst_spec <= 5e-5 and not bad
    return Outcome(expected={"(2,3)": 0.8, "(3,4)": 0.8182, "(4,5)": 0.8421},
                   measured={"solver max error": worst_solver, "spec 4-decimal check": worst_spec,
                             "opt max |dW|": max(abs(r["dW"]) for r in opt_rows)},
                   tolerance=f"solver 1e-10 (Brent xtol 1e-15); spec values 5e-5 (4 decimals); opt W tol {W_TOL}",
                   passed=ok, detail="solver: tau in {0.01, 0.1, 0.5, 1, 5}, p = 2, both variants; opt: alpha = 1 "
                   f"runs of SSEM-C6 ({_seeds_note(0, 3)}) and self-excluded runs (seed 8): "
                   + _short(opt_rows, ("variant", "K", "n", "p", "tau", "dW")),
                   counterexample=bad or None)


@check("SSEM-C5", PAPER, "R5 threshold behaviour (code variant): the minimiser collapses at alpha* - 0.03 "
       "(W < 1e-3) and is the interior SSEM W = 1 - beta*(alpha* + 0.03) > 0 at alpha* + 0.03; alpha* is the same "
       "for p = 2 and 3", "reconstruction", REC, "numeric")
def threshold_behaviour(quick: bool) -> Outcome:
    if quick:
        cases = [(2, 3, 0.1), (2, 3, 1.0), (3, 3, 0.5)]
    else:
        cases = [(K, n, t) for K, n in ((2, 3), (3, 4), (4, 5)) for t in (0.1, 0.5, 1.0)] + [(3, 3, 0.2), (3, 3, 0.5)]
    rows, bad, p_diff = [], [], 0.0
    for K, n, tau in cases:
        a2 = float(ssem.alpha_star(K, n, tau, "code", 2))
        a3 = float(ssem.alpha_star(K, n, tau, "code", 3))
        p_diff = max(p_diff, abs(a2 - a3))
        for p in (2, 3):
            below = _opt(K, n, p, a2 - 0.03, tau, seed=1)
            above = _opt(K, n, p, a2 + 0.03, tau, seed=1)
            r = _agree(above, _pred(a2 + 0.03, tau, K, n, p))
            r.update(alpha_star=a2, W_below=below.W,
                     dL_below=below.fun - float(_pred(a2 - 0.03, tau, K, n, p).L_star))
            good = (below.W < 1e-3 and _loss_ok(r["dL_below"]) and r["loss_ok"] and r["W_ok"]
                    and r["W_pred"] > 0)
            rows.append(r)
            if not good:
                bad.append(r)
    ok = not bad and p_diff == 0.0
    return Outcome(expected="W(alpha* - 0.03) < 1e-3; W(alpha* + 0.03) = 1 - beta* > 0; alpha*(p=2) == alpha*(p=3)",
                   measured={"max W below": max(r["W_below"] for r in rows),
                             "max |dW| above": max(abs(r["dW"]) for r in rows),
                             "|alpha*(p=2) - alpha*(p=3)|": p_diff},
                   tolerance=f"1e-3 below; W tol {W_TOL}; {LOSS_TOL}", passed=ok,
                   detail=f"(K, n, tau) in {cases}, p in {{2, 3}}, d = Kn + 2; {_seeds_note(1, 3)}; "
                   + _short(rows, ("K", "n", "p", "tau", "alpha_star", "W_below", "W_opt", "W_pred")),
                   counterexample=bad or None)


@check("SSEM-C9", PAPER, "W* grid (K=4, n=5): every entry with alpha <= 1/n is exactly 0; direct minimisation "
       "agrees with the 1-D solver at alpha in {0.5, 0.8}, tau in {0.1, 0.5, 1}", "reconstruction", REC, "numeric")
def w_grid(quick: bool) -> Outcome:
    K, n, p = 4, 5, 2
    alphas = (0.1, 0.2, 0.3, 0.5, 0.8, 0.9)
    taus = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 2.0)
    grid = {f"alpha={a}": [round(_pred(a, t, K, n, p).W_star, 4) for t in taus] for a in alphas}
    zero_ok = all(_pred(a, t, K, n, p).W_star == 0.0 for a in alphas if a <= 1 / n for t in taus)
    pairs = [(0.8, 0.1), (0.5, 1.0)] if quick else [(a, t) for a in (0.5, 0.8) for t in (0.1, 0.5, 1.0)]
    rows = [_agree(_opt(K, n, p, a, t, dim=24), _pred(a, t, K, n, p)) for a, t in pairs]
    bad = [r for r in rows if not (r["loss_ok"] and r["W_ok"])]
    ok = zero_ok and not bad
    measured = {f"W* grid (tau = {taus})": grid, "opt max |dW|": max(abs(r["dW"]) for r in rows),
                "opt dL range": [min(r["dL"] for r in rows), max(r["dL"] for r in rows)]}
    return Outcome(expected="W* = 0 for alpha <= 0.2; opt W = solver W", measured=measured,
                   tolerance=f"zeros exact; W tol {W_TOL}; {LOSS_TOL}", passed=ok,
                   detail=f"solver grid computed now (no stored table); opt d = 24, {_seeds_note(0, 3)}: "
                   + _short(rows, ("alpha", "tau", "W_opt", "W_pred", "dL")),
                   counterexample=bad or ([] if zero_ok else ["nonzero W* at alpha <= 1/n"]) or None)


@check("SSEM-C13", PAPER, "Dimension requirement (R9 step 8): below d = Kn - 1 the optimum is not an SSEM and the "
       "loss is strictly higher: L(3) > L(6) > L(11) = L_SSEM(beta*) for K=3, n=4, p=2, tau=0.5, alpha=0.8",
       "reconstruction", REC, "numeric")
def dimension_requirement(quick: bool) -> Outcome:
    K, n, p, tau, alpha = 3, 4, 2, 0.5, 0.8
    restarts = 4 if quick else 8
    pred = _pred(alpha, tau, K, n, p)
    res = {d: _opt(K, n, p, alpha, tau, dim=d, restarts=restarts, seed=2) for d in (3, 6, 11)}
    L = {d: r.fun for d, r in res.items()}
    gaps = (L[3] - L[6], L[6] - L[11])
    d11 = L[11] - float(pred.L_star)
    w11 = res[11].W - float(pred.W_star)
    ok = gaps[0] > 1e-3 and gaps[1] > 1e-3 and _loss_ok(d11) and abs(w11) <= _w_tol(tau)
    return Outcome(expected="L(3) > L(6) > L(11) = L_SSEM(beta*), gaps > 1e-3, W(11) = 1 - beta*",
                   measured={"L(3)": L[3], "L(6)": L[6], "L(11)": L[11], "L_SSEM(beta*)": float(pred.L_star),
                             "gaps": gaps, "W(11) - (1 - beta*)": w11,
                             "hits (3, 6, 11)": [res[d].hits for d in (3, 6, 11)]},
                   tolerance=f"gaps > 1e-3; {LOSS_TOL} at d = 11; W tol {W_TOL}", passed=ok,
                   detail=f"{_seeds_note(2, restarts)} per dimension (spec: >= 4 seeds); the certificate check "
                   "SSEM-CERT-3 bounds the same problem from below")


@check("SSEM-C16", PAPER, "R7: standard SupCon collapses. The self-excluded loss at alpha_eff = 1/7 (K=3, n=4, p=2) "
       "is minimised by class collapse (W < 1e-3), and alpha_split < alpha_eff < alpha*_se for every tau > 0",
       "reconstruction", REC, "numeric")
def supcon_collapses(quick: bool) -> Outcome:
    K, n, p = 3, 4, 2
    a_eff = float(ssem.alpha_eff_supcon(n, p))
    taus = (0.5,) if quick else (0.1, 0.5, 1.0)
    runs = {t: _opt(K, n, p, a_eff, t, "self-excluded", seed=3) for t in taus}
    Ws = {t: r.W for t, r in runs.items()}
    d = ssem.derivation("self-excluded")
    k, m, q, x = sp.symbols("k m q x", positive=True)
    subs = {_K: 2 + k, _n: 2 + m, _p: 2 + q, _u: 1 / (1 + x)}  # K, n, p >= 2; 0 < u < 1 <=> tau > 0
    ineq = {"alpha*_se - alpha_eff one-signed": _one_signed(d.alpha_star_u - d.alpha_eff, subs, (k, m, q, x)),
            "alpha_eff - alpha_split one-signed": _one_signed(d.alpha_eff - d.alpha_split_u, subs, (k, m, q, x))}
    # sign at one point fixes the common sign of the one-signed rational functions
    at = {_K: 3, _n: 4, _p: 2, _u: sp.Rational(1, 3)}
    ineq["positive at (3, 4, 2, u = 1/3)"] = bool((d.alpha_star_u - d.alpha_eff).subs(at) > 0 and
                                                  (d.alpha_eff - d.alpha_split_u).subs(at) > 0)
    ok = all(w < 1e-3 for w in Ws.values()) and all(ineq.values()) and abs(a_eff - 1 / 7) <= EXACT
    return Outcome(expected="W < 1e-3; inequalities hold for all K, n, p >= 2, tau > 0",
                   measured={"W": Ws, **ineq, "alpha_eff": a_eff}, tolerance="W < 1e-3; symbolic exact",
                   passed=ok, detail=f"opt self-excluded, d = {runs[taus[0]].dim}, {_seeds_note(3, 3)}; inequality: "
                   "K = 2+k, n = 2+m, p = 2+q, u = 1/(1+x), numerator and denominator one-signed polynomials")


@check("SSEM-C17", PAPER, "Self-excluded threshold (K=4, n=5, p=2): above alpha*_se the minimiser is the SSEM with "
       "W = 1 - beta*; below it matches regime(): collapse if alpha >= alpha_split, view-split otherwise",
       "reconstruction", REC, "numeric")
def self_excluded_threshold(quick: bool) -> Outcome:
    K, n, p = 4, 5, 2
    taus = (0.5,) if quick else (0.1, 0.5, 1.0)
    rows, bad = [], []
    for tau in taus:
        a_star = float(ssem.alpha_star(K, n, tau, "self-excluded", p))
        for alpha in (a_star + 0.03, a_star - 0.03):
            pred = _pred(alpha, tau, K, n, p, "self-excluded")
            res = _opt(K, n, p, alpha, tau, "self-excluded", seed=4)
            r = _agree(res, pred)
            r.update(regime=pred.regime, align=res.view_alignment, abar=pred.abar)
            good = r["loss_ok"] and r["W_ok"]
            if pred.regime == "ssem-interior":
                good &= 1 - res.view_alignment <= (1e-6 if tau >= 0.5 else 1e-4)
            elif pred.regime == "collapse":
                good &= res.W < 1e-3
            else:  # view-split: views not aligned, as the reduced problem says
                good &= abs(res.view_alignment - float(pred.abar)) <= 1e-4 and res.view_alignment < 1 - 1e-3
            rows.append(r)
            if not good:
                bad.append(r)
    return Outcome(expected="interior SSEM above alpha*_se; regime() below", measured=_short(
        rows, ("tau", "alpha", "regime", "W_opt", "W_pred", "dL")), tolerance=f"{LOSS_TOL}; W tol {W_TOL}",
        passed=not bad, detail=f"d = {rows[0]['d']}, {_seeds_note(4, 3)}; below alpha*_se the "
        "prediction is regime() with W from the reduced 2-D problem (R10) in the view-split case",
        counterexample=bad or None)


#: The instance-mean spread is the square root of the instance-level Gram eigenvalue
#: 1 + (p-1) abar - p bbar, which is 0 at the view-split optimum (an active PSD constraint, R10):
#: an error of 1e-6 in the Gram entries allows a spread of 1e-3.  Measured at tau = 0.1, K=3, n=4:
#: 1.9e-4 with the loss within 1e-11 of the reduced minimum.
SPREAD_TOL = 1e-3


@check("SSEM-C18", PAPER, "R10: the self-excluded minimum equals the reduced 2-D convex minimum; the minimiser is an "
       "SSEM iff alpha >= alpha_split, and in the view-split regime views are not aligned while instance means "
       "within a class coincide", "derived", "[DER+NUM] [DER+SDP]", "numeric")
def self_excluded_regimes(quick: bool) -> Outcome:
    if quick:
        configs = [(2, 3, 2, 0.1), (3, 4, 2, 0.5)]
        alphas = (0.0, 0.1, 0.2, 0.5)
    else:
        configs = [(2, 3, 2, 0.1), (3, 4, 2, 0.1), (4, 5, 2, 0.1), (2, 3, 2, 0.5), (3, 4, 2, 0.5)]
        alphas = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
    rows, bad = [], []
    for K, n, p, tau in configs:
        split = float(ssem.alpha_split(K, n, p, tau))
        for alpha in alphas:
            red = ssem.reduced_self_excluded_minimum(alpha, tau, K, n, p)
            res = _opt(K, n, p, alpha, tau, "self-excluded", seed=5)
            dL = res.fun - float(red["L"])
            aligned = 1 - res.view_alignment <= 1e-4
            row = {"K": K, "n": n, "p": p, "tau": tau, "alpha": alpha, "alpha_split": split, "dL": dL,
                   "align": res.view_alignment, "abar": float(red["abar"]), "inst_spread": res.instance_mean_spread}
            good = abs(dL) <= 1e-6 and aligned == (alpha >= split)
            if alpha < split:
                good &= abs(res.view_alignment - float(red["abar"])) <= 1e-4 and res.instance_mean_spread <= SPREAD_TOL
            rows.append(row)
            if not good:
                bad.append(row)
    # grid test of regime(): view-split iff the reduced minimum has abar < 1
    grid_bad = []
    for K, n, p, tau in configs:
        for alpha in np.linspace(0.0, 0.6, 61):
            red = ssem.reduced_self_excluded_minimum(float(alpha), tau, K, n, p)
            reg = str(ssem.regime(float(alpha), tau, K, n, p, "self-excluded"))
            if (reg == "view-split") != (float(red["abar"]) < 1.0):
                grid_bad.append({"K": K, "n": n, "p": p, "tau": tau, "alpha": float(alpha), "regime": reg,
                                 "abar": float(red["abar"])})
    ok = not bad and not grid_bad
    return Outcome(expected="|L_opt - L_reduced| <= 1e-6; SSEM iff alpha >= alpha_split; classification exact",
                   measured={"max |dL|": max(abs(r["dL"]) for r in rows), "grid mismatches": len(grid_bad),
                             "max view-split instance-mean spread": max(
                                 [r["inst_spread"] for r in rows if r["alpha"] < r["alpha_split"]], default=0.0)},
                   tolerance="1e-6 loss (spec); alignment: 1 - min same-instance cos <= 1e-4 counts as aligned; "
                   "view-split: min same-instance cos = abar to 1e-4 and instance-mean spread <= 1e-3 (square root "
                   "of a zero eigenvalue, see SPREAD_TOL)",
                   passed=ok, detail=f"(K, n, p, tau) in {configs}, alpha in {alphas}, d = max(Kn - 1, Kn(p-1) + K - 1)"
                   f" + 3, {_seeds_note(5, 3)}; regime grid: 61 alpha in [0, 0.6] per configuration; "
                   + _short(rows, ("K", "n", "tau", "alpha", "alpha_split", "align", "abar", "dL")),
                   counterexample=(bad + grid_bad) or None)


def _torch_adam_W(seeds: list[int]) -> list[float] | None:
    """The authors' synthetic protocol (spec §7.1): free points initialised from the Gaussian data
    (class c mean c * 1, identity covariance, p views drawn independently) in R^5, Adam lr 0.5,
    1000 steps, normalised in the forward pass; W of the normalised result.  None without torch.

    The loss is the library's SupCL template (``solvers.losses.supcl``: positive weights P, the
    denominator log-weights, row coefficients) written as three torch operations, float64."""
    try:
        import torch
    except ImportError:
        return None
    K, n, p, d = 2, 3, 2, 5
    lay = Layout.balanced(K, n, p)
    tmpl = supcl(lay, 0.5, 1.0)
    (grp,) = tmpl.groups
    parts = (torch.tensor(tmpl.positives), torch.tensor(grp.logw), torch.tensor(grp.coef),
             tmpl.tau, tmpl.denominator, tmpl.constant)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: thread hand-offs cost more than they save
    try:
        return [_adam_run(parts, lay, d, s) for s in seeds]
    finally:
        torch.set_num_threads(threads)


def _adam_run(parts: tuple, lay: Layout, d: int, s: int) -> float:
    """One Adam run from the Gaussian-data start rng([22, s]); W of the normalised end point."""
    import torch

    P, logw, coef, tau, denom, const = parts
    rng = np.random.default_rng([22, s])
    x0 = lay.row_class[:, None] * np.ones((1, d)) + rng.standard_normal((lay.n_rows, d))
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.5)
    for _ in range(1000):
        opt.zero_grad()
        z = x / x.norm(dim=1, keepdim=True)
        logits = z @ z.T / tau
        loss = (coef @ torch.logsumexp(logits + logw, dim=1) - (P * logits).sum()) / denom + const
        loss.backward()
        opt.step()
    return variances(x.detach().numpy(), lay.row_class)[0]


@check("SSEM-C22", PAPER, "The authors' synthetic defaults (K=2, n=3, p=2, d=5, alpha=0.5, tau=1): W = 0.0134, "
       "B = 0.9866 (just above alpha* = 0.4923: barely non-collapsed)", "reconstruction",
       "[CODE] (setup) + [REC] [DER+NUM]", "numeric")
def synthetic_defaults(quick: bool) -> Outcome:
    pred = _pred(0.5, 1.0, 2, 3, 2)
    res = _opt(2, 3, 2, 0.5, 1.0, dim=5, restarts=4, seed=6)
    seeds = [0] if quick else [0, 1, 2]
    adam = _torch_adam_W(seeds)
    ok = abs(pred.W_star - 0.0134) <= 5e-5 and abs(pred.B_star - 0.9866) <= 5e-5 and abs(res.W - 0.0134) <= 2e-3
    adam_note = "torch not installed: Adam run skipped"
    if adam is not None:
        ok &= all(abs(w - 0.0134) <= 1e-2 for w in adam)
        adam_note = f"torch Adam (lr 0.5, 1000 steps, Gaussian-data starts rng([22, s]), s in {seeds}): W = {adam}"
    return Outcome(expected={"W": 0.0134, "B": 0.9866},
                   measured={"solver W": pred.W_star, "solver B": pred.B_star, "opt W (d=5)": res.W,
                             "Adam W": adam},
                   tolerance="solver 5e-5 (4 decimals); opt 2e-3; torch/Adam 1e-2 (not confirmed with the authors' "
                   "run)",
                   passed=ok, detail=f"opt at d = 5 = d_min, {_seeds_note(6, 4)}; {adam_note}")
