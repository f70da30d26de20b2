"""Checks of orthoreg.md §6 (ORTHO-C1 .. C21): orthogonality regularisation against dimensional
collapse (He, Du, Ma, NeurIPS 2024; SO/SRIP of Bansal et al. 2018; DirectCLR toys of Jing et al.).

Symbolic parts come from :mod:`theory.orthoreg` (sympy), numeric parts from
:mod:`solvers.orthoreg`, :mod:`solvers.metrics` and :mod:`solvers.orthoreg_experiments`; every
expected value is a closed form of the spec or a sympy result, compared with independent numpy
linear algebra.  The toy checks (C18-C20) train the encoders of §4.3 (numpy engine, 10,000 SGD
steps per run, about 3-5 CPU seconds each); ``quick`` uses fewer seeds, never fewer steps.
"""

from __future__ import annotations

import math

import numpy as np

from solvers import metrics
from solvers import orthoreg as orr
from solvers import orthoreg_experiments as ex
from theory import orthoreg as th

from .registry import Outcome, Skip, check

PAPER = "orthoreg"


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _fd(f, w: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central finite differences (truncation O(h^2), round-off ~ eps/h ~ 1e-10)."""
    g = np.zeros_like(w)
    for idx in np.ndindex(*w.shape):
        e = np.zeros_like(w)
        e[idx] = h
        g[idx] = (f(w + e) - f(w - e)) / (2 * h)
    return g


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||b||, 1): relative with an absolute floor for an exactly zero reference
    (FD round-off ~1e-10 at the O(1) gradient scale of O(1) matrices)."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1.0))


def _shapes(rng: np.random.Generator, count: int, low: int = 1, high: int = 8):
    return [(int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1)))
            for _ in range(count)]


def _orthonormal(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.linalg.qr(rng.standard_normal((n, k)))[0]


def _sym_holds(items) -> dict[str, bool]:
    return {d.name: d.holds for d in items}


# ---------------------------------------------------------------------------------------------
# §1: regularisers
# ---------------------------------------------------------------------------------------------
@check("ORTHO-C1", PAPER, "SO gradient: 4 W (W^T W - I) (tall / large Gram) and 4 (W W^T - I) W "
       "(wide), by finite differences over random shapes and symbolically", "derived", "[DER]",
       "numeric")
def so_gradient(quick: bool) -> Outcome:
    rng = _rng(1)
    worst, at = 0.0, None
    for shape in _shapes(rng, 12 if quick else 40):
        w = rng.standard_normal(shape)
        for gram in orr.GRAMS:
            err = _rel(orr.so_grad(w, gram), _fd(lambda x, g=gram: orr.so(x, g), w))
            if err > worst:
                worst, at = err, {"shape": shape, "gram": gram}
    sym = _sym_holds([th.so_gradient(3, 2, "right"), th.so_gradient(2, 3, "left"),
                      th.so_gradient(2, 3, "right")])
    ok = worst < 1e-6 and all(sym.values())  # spec tolerance rel 1e-6
    return Outcome(expected="rel error < 1e-6; sympy residual 0",
                   measured={"max_rel_fd_error": worst, "worst_case": at, "symbolic": sym},
                   tolerance="rel 1e-6 (central differences, h = 1e-6)", passed=ok)


@check("ORTHO-C2", PAPER, "SRIP gradient at a simple top |eigenvalue|: 2 s W v v^T (G = W^T W), "
       "2 s v v^T W (G = W W^T) (Danskin)", "derived", "[DER]", "numeric")
def srip_gradient(quick: bool) -> Outcome:
    rng = _rng(2)
    worst, at, used = 0.0, None, 0
    for shape in _shapes(rng, 12 if quick else 40):
        w = rng.standard_normal(shape)
        for gram in orr.GRAMS:
            if orr.srip_top_eigenpair(w, gram)[2] < 1e-3:  # needs a simple top |eigenvalue|
                continue
            used += 1
            err = _rel(orr.srip_grad(w, gram), _fd(lambda x, g=gram: orr.srip(x, g), w))
            if err > worst:
                worst, at = err, {"shape": shape, "gram": gram}
    sym = _sym_holds([th.srip_quadratic_gradient(3, 2, "right"),
                      th.srip_quadratic_gradient(2, 3, "left")])
    ok = worst < 1e-5 and used > 0 and all(sym.values())  # spec tolerance rel 1e-5
    return Outcome(expected="rel error < 1e-5", measured={"max_rel_fd_error": worst,
                   "worst_case": at, "cases": used, "symbolic": sym},
                   tolerance="rel 1e-5 (FD step 1e-6 << eigen-gap 1e-3)", passed=ok)


@check("ORTHO-C3", PAPER, "Singular-value forms (small Gram): SO = sum (sigma_i^2 - 1)^2, "
       "SRIP = max |sigma_i^2 - 1|; invariant to W -> W^T", "authors-code", "[CODE-B]/[DER]",
       "numeric")
def singular_value_forms(quick: bool) -> Outcome:
    rng = _rng(3)
    worst = 0.0
    for shape in _shapes(rng, 50 if quick else 200, 1, 12):
        w = rng.standard_normal(shape)
        s2 = np.linalg.svd(w, compute_uv=False) ** 2
        so_sv, srip_sv = float(np.sum((s2 - 1) ** 2)), float(np.max(np.abs(s2 - 1)))
        for val, ref in ((orr.so(w), so_sv), (orr.srip(w), srip_sv), (orr.so(w.T), so_sv),
                         (orr.srip(w.T), srip_sv)):
            worst = max(worst, abs(val - ref) / max(1.0, ref))
    sym = th.singular_value_form().holds
    # 1e-10 (spec): eigh of the Gram vs SVD of W agree to ~1e-13 relative at these sizes
    return Outcome(expected=0.0, measured={"max_scaled_error": worst, "symbolic_rotation": sym},
                   tolerance="1e-10 (relative to max(1, value))", passed=worst <= 1e-10 and sym)


@check("ORTHO-C4", PAPER, "Tall W, small Gram: SO = 0 <=> SRIP = 0 <=> W^T W = I", "derived", "[DER]",
       "numeric")
def tall_minimisers(quick: bool) -> Outcome:
    rng = _rng(4)
    at_min, away = 0.0, math.inf
    for _ in range(40 if quick else 150):
        n = int(rng.integers(2, 10))
        k = int(rng.integers(1, n + 1))
        q = _orthonormal(n, k, rng)
        at_min = max(at_min, orr.so(q), orr.srip(q))
        w = q * rng.uniform(0.5, 1.5, k)  # columns no longer unit: W^T W != I
        dev = float(np.max(np.abs(w.T @ w - np.eye(k))))
        away = min(away, min(orr.so(w), orr.srip(w)) / dev**2)
    # SO = ||G - I||_F^2 and SRIP = ||G - I||_2 vanish together: symbolic sum-of-squares form
    sym = th.singular_value_form().holds
    ok = at_min <= 1e-12 and away > 0 and sym  # spec 1e-12 (Householder QR: ~1e-15)
    return Outcome(expected="0 at orthonormal columns; > 0 elsewhere",
                   measured={"max_at_orthonormal": at_min, "min_value_over_dev2_elsewhere": away,
                             "symbolic": sym}, tolerance=1e-12, passed=ok)


@check("ORTHO-C5", PAPER, "Large-Gram identity on wide W: ||W^T W - I_n||^2 - ||W W^T - I_m||^2 = "
       "n - m; min SO (large Gram) = n - m at Parseval frames", "derived", "[DER]", "symbolic")
def large_gram_identity(quick: bool) -> Outcome:
    sym = _sym_holds([th.gram_convention_identity(m, n) for m, n in ((1, 3), (2, 3), (2, 4), (3, 5))])
    rng = _rng(5)
    worst_id, worst_parseval, min_gap = 0.0, 0.0, math.inf
    for _ in range(50 if quick else 200):
        m = int(rng.integers(1, 8))
        n = m + int(rng.integers(1, 8))
        w = rng.standard_normal((m, n))
        big = orr.so(w, "large")
        worst_id = max(worst_id, abs(big - orr.so(w) - (n - m)) / max(1.0, big))
        min_gap = min(min_gap, big - (n - m))
        frame = _orthonormal(n, m, rng).T
        worst_parseval = max(worst_parseval, abs(orr.so(frame, "large") - (n - m)))
    ok = all(sym.values()) and worst_id <= 1e-10 and worst_parseval <= 1e-10 and min_gap >= 0
    return Outcome(expected="identity exact; Parseval frames give n - m; no W below n - m",
                   measured={"symbolic": sym, "max_identity_error": worst_id,
                             "max_parseval_error": worst_parseval,
                             "min_SO_large_minus_(n-m)_random": min_gap},
                   tolerance="1e-10 (float64 sums of O(100) terms)", passed=ok)


@check("ORTHO-C6", PAPER, "SRIP under the large Gram is degenerate on wide W: SRIP = 1 for every W "
       "with sigma_i^2 in [0, 2] (orthonormal rows, sqrt(1.9) x them)", "derived", "[DER]", "numeric")
def srip_large_gram(quick: bool) -> Outcome:
    rng = _rng(6)
    worst, grad_norm = 0.0, 0.0
    examples = {}
    for i in range(40 if quick else 150):
        m = int(rng.integers(1, 7))
        n = m + int(rng.integers(1, 7))
        rows = _orthonormal(n, m, rng).T
        u, _, vt = np.linalg.svd(rng.standard_normal((m, n)), full_matrices=False)
        rand = (u * np.sqrt(rng.uniform(0.0, 2.0, m))) @ vt
        vals = [orr.srip(rows, "large"), orr.srip(math.sqrt(1.9) * rows, "large"),
                orr.srip(rand, "large")]
        if i == 0:
            examples = {"shape": (m, n), "orthonormal_rows": vals[0], "sqrt1.9_rows": vals[1],
                        "random_sigma2_in_[0,2]": vals[2],
                        "small_gram_sqrt1.9_rows": orr.srip(math.sqrt(1.9) * rows)}
        worst = max(worst, *(abs(v - 1.0) for v in vals))
        # the top |eigenvalue| comes from the null space of W: the (sub)gradient is exactly 0
        grad_norm = max(grad_norm, float(np.linalg.norm(orr.srip_grad(rand, "large"))))
    return Outcome(expected=1.0, measured={"max_abs(SRIP-1)": worst, "example": examples,
                                           "max_norm_srip_grad_large_gram": grad_norm},
                   tolerance=1e-12, passed=worst <= 1e-12 and grad_norm <= 1e-12,
                   detail="Under the large Gram the SRIP (sub)gradient of such W is 0 (v lies in "
                   "the null space of W): SRIP exerts no pull toward orthogonality on wide layers")


@check("ORTHO-C7", PAPER, "Power iteration r_m = ||A^m x||/||A^{m-1} x|| is non-decreasing and "
       "<= rho(A); the 2-step SRIP estimate is a lower bound", "derived", "[DER]", "numeric")
def power_iteration(quick: bool) -> Outcome:
    rng = _rng(7)
    worst_mono, worst_bound = 0.0, 0.0
    for _ in range(100 if quick else 400):
        n = int(rng.integers(2, 12))
        b = rng.standard_normal((n, n))
        a = b + b.T
        rho = float(np.max(np.abs(np.linalg.eigvalsh(a))))
        r = orr.power_iteration_ratios(a, rng.standard_normal(n), 15)
        worst_mono = max(worst_mono, float(np.max(-np.diff(r))) / rho)
        worst_bound = max(worst_bound, float(np.max(r)) / rho - 1.0)
    # the typical size of the under-estimate on an initialised conv layer (576 x 64, Kaiming)
    layer = orr.ConvShape("layer1", 64, 64, 3)
    ratios = []
    for s in range(5 if quick else 20):
        w = orr.reshape_weight(orr.init_kernel(layer, "kaiming_fan_out", _rng(100 + s)))
        ratios.append(orr.srip(w, exact=False, n_iter=2, seed=s) / orr.srip(w))
    sym = th.power_iteration_log_convexity().holds
    ok = worst_mono <= 1e-12 and worst_bound <= 1e-12 and max(ratios) <= 1 + 1e-12 and sym
    return Outcome(expected="monotone, bounded by rho(A), 2-step <= exact",
                   measured={"max_decrease/rho": worst_mono, "max_r/rho-1": worst_bound,
                             "two_step_over_exact_kaiming_576x64": {
                                 "min": min(ratios), "mean": float(np.mean(ratios)),
                                 "max": max(ratios)}, "symbolic_log_convexity": sym},
                   tolerance="1e-12 (Cauchy-Schwarz holds exactly; float64 slack)", passed=ok)


# ---------------------------------------------------------------------------------------------
# §2: covariance propagation
# ---------------------------------------------------------------------------------------------
@check("ORTHO-C8", PAPER, "Prop. 1: W^T W = I and Sigma_X = s^2 I give Sigma_S = s^2 I; for square "
       "orthogonal W the sample deviation is preserved exactly and decays like 1/sqrt(N)",
       "third-party", "[3P] (proof [DER])", "monte-carlo")
def prop1(quick: bool) -> Outcome:
    sym = _sym_holds(th.prop1())
    rng = _rng(8)
    d, s2 = 16, 2.0
    q = _orthonormal(d, d, rng)
    ns = np.unique(np.geomspace(1e3, 2e5, 6 if quick else 10).astype(int))
    reps = 4 if quick else 12
    worst_eq, means = 0.0, []
    for n in ns:
        devs = []
        for _ in range(reps):
            x = rng.standard_normal((n, d)) * math.sqrt(s2)
            dx = np.linalg.norm(np.cov(x.T) - s2 * np.eye(d), 2)
            ds = np.linalg.norm(np.cov((x @ q).T) - s2 * np.eye(d), 2)
            worst_eq = max(worst_eq, abs(dx - ds) / dx)
            devs.append(ds)
        means.append(float(np.mean(devs)))
    slope = float(np.polyfit(np.log(ns), np.log(means), 1)[0])
    ok = all(sym.values()) and worst_eq <= 1e-10 and abs(slope + 0.5) <= 0.1
    return Outcome(expected={"equality": "exact", "slope": -0.5},
                   measured={"symbolic": sym, "max_rel_equality_error": worst_eq,
                             "loglog_slope": slope, "N": ns.tolist(), "mean_deviation": means},
                   tolerance="equality 1e-10; slope -1/2 +- 0.1 (spec)", passed=ok)


def _random_cov(n: int, rng: np.random.Generator) -> np.ndarray:
    b = rng.standard_normal((n, n)) * rng.uniform(0.1, 3.0, n)
    return b @ b.T + 1e-2 * np.eye(n)


@check("ORTHO-C9", PAPER, "Square orthogonal W preserves the covariance spectrum exactly "
       "(OR cannot whiten a non-white input)", "derived", "[DER]", "numeric")
def spectrum_preservation(quick: bool) -> Outcome:
    rng = _rng(9)
    worst = 0.0
    for _ in range(50 if quick else 200):
        n = int(rng.integers(2, 12))
        c = _random_cov(n, rng)
        lam = np.sort(np.linalg.eigvalsh(c))
        ls = np.sort(np.linalg.eigvalsh(orr.propagate_covariance(c, _orthonormal(n, n, rng))))
        worst = max(worst, float(np.max(np.abs(ls - lam))) / lam[-1])
    return Outcome(expected=0.0, measured={"max_rel_eigenvalue_error": worst}, tolerance=1e-12,
                   passed=worst <= 1e-12)  # relative to lambda_max: float64 eigen round-off


@check("ORTHO-C10", PAPER, "Poincare separation for tall orthonormal W: lambda_{i+n-k}(Sigma_X) <= "
       "lambda_i(Sigma_S) <= lambda_i(Sigma_X)", "derived", "[DER]", "numeric")
def poincare(quick: bool) -> Outcome:
    rng = _rng(10)
    worst = -math.inf
    for _ in range(50 if quick else 200):
        n = int(rng.integers(2, 12))
        k = int(rng.integers(1, n + 1))
        c = _random_cov(n, rng)
        b = orr.poincare_bounds(c, _orthonormal(n, k, rng))
        top = float(b["upper"][0])
        worst = max(worst, float(np.max(b["lower"] - b["middle"])) / top,
                    float(np.max(b["middle"] - b["upper"])) / top)
    return Outcome(expected="<= 0 (bounds hold)", measured={"max_violation/lambda_max": worst},
                   tolerance=1e-12, passed=worst <= 1e-12)


@check("ORTHO-C11", PAPER, "Ostrowski: with SRIP(W) = delta < 1 every ratio lambda_i(Sigma_S)/"
       "lambda_i(Sigma_X) lies in [1 - delta, 1 + delta]; delta <= sqrt(SO)", "derived", "[DER]",
       "numeric")
def ostrowski(quick: bool) -> Outcome:
    rng = _rng(11)
    worst, worst_so, tightest = -math.inf, -math.inf, math.inf
    for _ in range(50 if quick else 200):
        n = int(rng.integers(2, 12))
        c = _random_cov(n, rng)
        spread = float(rng.uniform(0.0, 0.95))
        u, _, vt = np.linalg.svd(rng.standard_normal((n, n)))
        w = (u * np.sqrt(1 + rng.uniform(-spread, spread, n))) @ vt
        out = orr.eigenvalue_ratios(c, w)
        d = out["delta"]
        worst = max(worst, float(np.max(out["ratios"])) - (1 + d),
                    (1 - d) - float(np.min(out["ratios"])))
        worst_so = max(worst_so, d - math.sqrt(out["so"]))
        tightest = min(tightest, (1 + d) - float(np.max(out["ratios"])))
    ok = worst <= 1e-12 and worst_so <= 1e-12
    return Outcome(expected="ratios within [1 - delta, 1 + delta]; delta <= sqrt(SO)",
                   measured={"max_band_violation": worst, "max(delta - sqrt(SO))": worst_so,
                             "min_slack_at_top": tightest}, tolerance=1e-12, passed=ok)


@check("ORTHO-C12", PAPER, "SO gradient flow: dsigma/dt = -4 gamma sigma (sigma^2 - 1), u(t) = "
       "1/(1 + (1/u0 - 1) e^{-8 gamma t}); (1e-8, 0.5, 2) all reach 1 by gamma t = 10; sigma = 0 "
       "stays 0", "derived", "[DER]", "symbolic")
def so_flow(quick: bool) -> Outcome:
    sym = _sym_holds(th.so_flow()["derivations"])
    rng = _rng(12)
    u, _, vt = np.linalg.svd(rng.standard_normal((6, 3)), full_matrices=False)
    s0 = np.array([2.0, 0.5, 1e-8])
    w0 = (u * s0) @ vt
    s_end = np.linalg.svd(orr.so_flow_integrate(w0, 1.0, 10.0), compute_uv=False)
    closed_end = np.array(sorted((th.so_flow_sigma(10.0, s, 1.0) for s in s0), reverse=True))
    mid = orr.so_flow_integrate(w0, 0.3, 1.0)  # a mid-flow time: closed form vs integration
    closed_mid = orr.so_flow_closed_form(w0, 0.3, 1.0)
    # an exactly dead filter: a zero column of the reshaped W stays exactly zero
    dead = orr.so_flow_integrate(np.hstack([w0, np.zeros((6, 1))]), 1.0, 10.0)
    # the same zero singular value in a generic basis: round-off (~1e-16) grows like e^{4 gamma t}
    q = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    generic = np.hstack([w0, np.zeros((6, 1))]) @ q
    revived = float(np.linalg.svd(orr.so_flow_integrate(generic, 1.0, 10.0),
                                  compute_uv=False)[-1])
    errs = {"final_singular_values_(2, 0.5, 1e-8)": s_end.tolist(),
            "max|sigma_end - closed form|": float(np.max(np.abs(s_end - closed_end))),
            "max|W_mid integrated - closed form|": float(np.max(np.abs(mid - closed_mid))),
            "singular_vectors_fixed": float(np.max(np.abs(np.abs(
                np.linalg.svd(mid)[0][:, :3].T @ u) - np.eye(3)))),
            "dead_filter_column_max_abs": float(np.max(np.abs(dead[:, 3]))),
            "zero_sigma_generic_basis_at_gamma_t_10": revived}
    ok = (all(sym.values()) and np.allclose(s_end, 1.0, atol=1e-6)
          and errs["max|sigma_end - closed form|"] <= 1e-6
          and errs["max|W_mid integrated - closed form|"] <= 1e-6
          and errs["singular_vectors_fixed"] <= 1e-6
          and errs["dead_filter_column_max_abs"] == 0.0)
    return Outcome(expected="(1e-8, 0.5, 2) -> 1 by gamma t = 10; a dead filter stays 0; closed "
                   "form = integration", measured={"symbolic": sym, **errs},
                   tolerance="1e-6 (spec; DOP853 rtol 1e-11)", passed=ok,
                   detail="sigma = 0 is stationary but unstable (f'(0) = 4 gamma): an exactly zero "
                   "filter (zero column) stays 0, but a zero singular value in a generic basis "
                   "holds float64 round-off ~1e-16 that grows like e^{4 gamma t} and is revived "
                   f"by gamma t = 10 (measured sigma = {revived:.4f}).")


# ---------------------------------------------------------------------------------------------
# §1.7: magnitudes at initialisation
# ---------------------------------------------------------------------------------------------
@check("ORTHO-C13", PAPER, "CIFAR ResNet-18 at init (Kaiming fan_out and PyTorch default): sum SO "
       "within 2% of the expectation formula, sum SRIP within 5% of the MP-edge formula, Kaiming > "
       "default for both", "derived", "[DER]", "monte-carlo")
def init_magnitudes(quick: bool) -> Outcome:
    seeds = range(2 if quick else 5)
    layers = orr.resnet18_cifar_conv_shapes()
    sym = _sym_holds([th.expected_so_moment_check(3, 2), th.expected_so_moment_check(2, 3)])
    measured, ok = {"symbolic_moment_check": sym}, all(sym.values())
    totals = {}
    with ex.single_thread_blas():
        for init in orr.INITS:
            exp_so = sum(th.expected_so(*lay.matrix_shape, *orr.init_moments(lay, init))
                         for lay in layers)
            exp_srip = sum(th.srip_mp_edge(*lay.matrix_shape, orr.init_moments(lay, init)[0])
                           for lay in layers)
            runs = [orr.init_totals(init, s, layers) for s in seeds]
            so_v = np.array([r["so"] for r in runs])
            srip_v = np.array([r["srip"] for r in runs])
            spread = max(float(np.max(np.abs(so_v / so_v.mean() - 1))),
                         float(np.max(np.abs(srip_v / srip_v.mean() - 1))))
            rel_so, rel_srip = so_v.mean() / exp_so - 1, srip_v.mean() / exp_srip - 1
            ok &= abs(rel_so) <= 0.02 and abs(rel_srip) <= 0.05 and spread <= 0.05
            totals[init] = (so_v.mean(), srip_v.mean())
            measured[init] = {"sum_SO": so_v.tolist(), "expected_SO": exp_so,
                              "rel_SO": rel_so, "sum_SRIP": srip_v.tolist(),
                              "MP_SRIP": exp_srip, "rel_SRIP": rel_srip, "seed_spread": spread,
                              "gamma_SO_1e-6_x_sum": 1e-6 * so_v.mean(),
                              "gamma_SRIP_1e-3_x_sum": 1e-3 * srip_v.mean()}
    kaiming_larger = all(totals["kaiming_fan_out"][i] > totals["default_uniform"][i] for i in (0, 1))
    ok &= kaiming_larger
    measured["kaiming_larger_for_both"] = kaiming_larger
    return Outcome(expected="|rel| <= 2% (SO), <= 5% (SRIP); Kaiming > default",
                   measured=measured, tolerance="2% / 5%; seed spread +-5% (spec)", passed=ok,
                   detail=f"{len(list(seeds))} seeds per init; 20 conv kernels of the solo-learn "
                   "CIFAR ResNet-18, small Gram, exact SRIP")


# ---------------------------------------------------------------------------------------------
# §3: metrics
# ---------------------------------------------------------------------------------------------
@check("ORTHO-C14", PAPER, "RankMe sanity: iid Gaussian N = 25,600, d = 64 gives ~63.98; an exactly "
       "rank-8 isotropic matrix gives 8", "literature", "[LIT]/[DER]", "monte-carlo")
def rankme_sanity(quick: bool) -> Outcome:
    rng = _rng(14)
    n, d = 25_600, 64
    z = rng.standard_normal((n, d))
    rm = metrics.rankme(z)
    lib = metrics.effective_rank_of_values(np.linalg.svd(z, compute_uv=False) ** 2, eps=1e-7)
    q = _orthonormal(2000, 8, rng) * 5.0
    z8 = np.hstack([q, np.zeros((2000, d - 8))])
    rm8 = metrics.rankme(z8)
    ok = abs(rm - d) / d <= 1e-3 and abs(rm8 - 8.0) <= 1e-3
    return Outcome(expected={"gaussian": "64 within 0.1% (spec value 63.98)", "rank8": 8.0},
                   measured={"gaussian": rm, "rank8": rm8,
                             "pitfall_sigma2_fed_to_rankme_gaussian": lib},
                   tolerance="0.1% / 1e-3 absolute (eps = 1e-7 adds ~7e-4 at rank 8)", passed=ok,
                   detail="RankMe on raw uncentred singular values (solvers.metrics.rankme); the "
                   "[LIB] pitfall (sigma^2 into the same formula) is shown for comparison")


@check("ORTHO-C15", PAPER, "Uniformity of the uniform sphere: -4 + log[Gamma(d/2) (1/2)^{d/2-1} "
       "I_{d/2-1}(4)] ~ -4 + 8/d; complete collapse gives 0", "derived", "[DER]", "symbolic")
def uniformity_closed_form(quick: bool) -> Outcome:
    sym = _sym_holds([th.uniformity_integral_check(d) for d in (3, 5, 7)])
    rng = _rng(15)
    n = 1500 if quick else 3000
    rows = {}
    worst = 0.0
    for d in (16, 32, 128):
        closed = th.uniformity_uniform_sphere(d)
        mc = metrics.uniformity(rng.standard_normal((n, d)))
        rows[d] = {"closed_form": closed, "monte_carlo": mc, "-4+8/d": -4 + 8 / d}
        worst = max(worst, abs(mc - closed))
    collapsed = metrics.uniformity(np.ones((10, 16)))
    ok = all(sym.values()) and worst <= 0.02 and abs(collapsed) <= 1e-15
    return Outcome(expected="MC within 0.02 of the closed form; collapse 0",
                   measured={"symbolic_integral_d3_5_7": sym, "values": rows,
                             "max_abs_mc_error": worst, "collapsed": collapsed},
                   tolerance=f"0.02 (spec; Monte Carlo, {n} points)", passed=ok)


@check("ORTHO-C16", PAPER, "erank: 1 <= erank <= rank, = rank iff flat, invariant to scale, "
       "transpose and unitary factors; covariance-erank <= centred-singular-value erank (the two "
       "conventions side by side)", "literature", "[LIT]/[DER]", "numeric")
def erank_properties(quick: bool) -> Outcome:
    rng = _rng(16)
    bad = []
    max_gap, min_gap = 0.0, math.inf
    for i in range(40 if quick else 150):
        n, d = int(rng.integers(20, 60)), int(rng.integers(2, 10))
        r = int(rng.integers(1, d + 1))
        z = rng.standard_normal((n, r)) @ rng.standard_normal((r, d)) * rng.uniform(0.1, 5)
        s = np.linalg.svd(z, compute_uv=False)
        er = metrics.effective_rank_of_values(s)
        rank = int(np.sum(s > 1e-10 * s[0]))
        u = _orthonormal(n, n, rng)
        v = _orthonormal(d, d, rng)
        inv = [metrics.effective_rank_of_values(np.linalg.svd(a, compute_uv=False))
               for a in (3.7 * z, z.T, u @ z @ v)]
        if not (1 - 1e-10 <= er <= rank + 1e-10) or max(abs(x - er) for x in inv) > 1e-10 * er:
            bad.append({"case": i, "erank": er, "rank": rank, "invariants": inv})
        cov = metrics.effective_rank(z, "covariance")
        cen = metrics.effective_rank(z, "singular-centred")
        if cov > cen + 1e-10:
            bad.append({"case": i, "covariance": cov, "singular_centred": cen})
        max_gap, min_gap = max(max_gap, cen - cov), min(min_gap, cen - cov)
    flat_dims = [2, 5, 9]
    flat = [metrics.effective_rank_of_values(np.ones(k)) for k in flat_dims]
    flat_ok = all(abs(f - k) <= 1e-10 * k for f, k in zip(flat, flat_dims, strict=True))
    example = orr.collapse_metrics(rng.standard_normal((2000, 8)) * (2.0 ** -np.arange(8)))
    ok = not bad and flat_ok
    return Outcome(expected="all properties; cov-erank <= centred-singular erank",
                   measured={"violations": len(bad), "flat_spectra": flat,
                             "gap_singular_minus_covariance": {"min": min_gap, "max": max_gap},
                             "example_sigma_2^-k": {
                                 "erank_covariance": example["erank_covariance"],
                                 "erank_singular_centred": example["erank_singular_centred"],
                                 "rankme": example["rankme"],
                                 "rankme_on_covariance": example["rankme_on_covariance"]}},
                   tolerance=1e-10, passed=ok, counterexample=bad[:3] or None,
                   detail="PITFALL: the same embeddings give different effective ranks under the "
                   "covariance-eigenvalue and singular-value conventions unless the spectrum is flat")


@check("ORTHO-C17", PAPER, "alpha-ReQ recovers alpha of lambda_k = k^{-alpha} exactly (weighted LS "
       "with weights 1/k, ranks 6..K)", "literature", "[LIT]/[LIB]", "numeric")
def alpha_req(quick: bool) -> Outcome:
    rng = _rng(17)
    worst = 0.0
    for alpha in (0.3, 0.8, 1.0, 1.7, 3.0):
        for k in (16, 64, 150):
            lam = np.arange(1, k + 1, dtype=float) ** -alpha
            got = metrics.power_law_exponent(lam, ranks=(6, min(k, 100)))
            worst = max(worst, abs(got - alpha))
    # through embeddings with exactly that covariance spectrum (centred orthonormal columns)
    n, d, alpha = 500, 32, 1.2
    a = rng.standard_normal((n, d))
    q = np.linalg.qr(a - a.mean(axis=0))[0]
    z = math.sqrt(n - 1) * q * np.arange(1, d + 1) ** (-alpha / 2)
    via_z = metrics.alpha_req(z, ranks=(6, d))
    worst = max(worst, abs(via_z - alpha))
    return Outcome(expected="alpha exactly", measured={"max_abs_error": worst,
                   "alpha_req_of_embeddings(alpha=1.2)": via_z}, tolerance=1e-8,
                   passed=worst <= 1e-8)  # spec 1e-8: exact fit, float64 least squares


# ---------------------------------------------------------------------------------------------
# §4.3: DirectCLR toys with SO
# ---------------------------------------------------------------------------------------------
def _case2_seeds(quick: bool) -> list[int]:
    return [0, 1] if quick else [0, 1, 2, 3]


def _runs(case: int, gammas, seeds) -> dict[tuple[float, int], ex.ToyResult]:
    res = ex.run_sweep(ex.grid(case, gammas, seeds))
    return {(r.config.gamma, r.config.seed): r for r in res}


def _row(r: ex.ToyResult) -> dict:
    return {"erank": r.erank, "n_above_1e-3": r.n_above_1e3,
            "log10_min_over_max": r.log10_min_over_max, "log10_lambda_min": r.log10_lambda_min,
            "final_loss": r.final_loss, "mean_loss_last100": r.mean_loss_last100}


@check("ORTHO-C18", PAPER, "Toy case 2 (two-layer linear encoder, weak augmentation), baseline: "
       "erank < 15 and at least one eigenvalue < 1e-3 lambda_max for every seed", "derived",
       "[CODE-DCLR] setup; outcome [DER]", "training")
def toy_case2_baseline(quick: bool) -> Outcome:
    seeds = _case2_seeds(quick)
    runs = _runs(2, [0.0], seeds)
    rows = {s: _row(runs[(0.0, s)]) for s in seeds}
    bad = {s: r for s, r in rows.items() if not (r["erank"] < 15 and r["n_above_1e-3"] < 16)}
    return Outcome(expected="erank < 15, >= 1 eigenvalue < 1e-3 lambda_max (every seed)",
                   measured=rows, tolerance="thresholds as stated", passed=not bad,
                   verdict="confirmed" if not bad else "refuted", counterexample=bad or None,
                   detail=f"seeds {seeds}; 10,000 SGD steps each; erank on covariance eigenvalues "
                   "of 1000 fresh inputs")


@check("ORTHO-C19", PAPER, "Toy case 2: SO at gamma = 0.01 and 0.1 restores full rank (all 16 "
       "eigenvalues > 1e-3 lambda_max, erank > baseline + 1, every seed); gamma = 0.003 strictly "
       "between; final InfoNCE at 0.01 below baseline on the seed mean", "derived", "[DER]",
       "training")
def toy_case2_so(quick: bool) -> Outcome:
    seeds = _case2_seeds(quick)
    runs = _runs(2, list(ex.CASE2_GAMMAS), seeds)
    bad = []
    for s in seeds:
        base, mid, r01, r1 = (runs[(g, s)] for g in ex.CASE2_GAMMAS)
        for r in (r01, r1):
            if r.n_above_1e3 < 16 or r.erank <= base.erank + 1:
                bad.append({"seed": s, "gamma": r.config.gamma, **_row(r),
                            "baseline_erank": base.erank})
        if not base.erank < mid.erank < r01.erank:
            bad.append({"seed": s, "gamma": 0.003, "erank": mid.erank,
                        "between": (base.erank, r01.erank)})
    loss_base = float(np.mean([runs[(0.0, s)].final_loss for s in seeds]))
    loss_01 = float(np.mean([runs[(0.01, s)].final_loss for s in seeds]))
    if not loss_01 < loss_base:
        bad.append({"mean_final_loss": {"baseline": loss_base, "gamma=0.01": loss_01}})
    table = {f"gamma={g}": {s: _row(runs[(g, s)]) for s in seeds} for g in ex.CASE2_GAMMAS}
    return Outcome(expected="as stated", measured={"mean_final_loss_baseline": loss_base,
                   "mean_final_loss_gamma_0.01": loss_01, "runs": table},
                   tolerance="thresholds as stated", passed=not bad,
                   verdict="confirmed" if not bad else "refuted", counterexample=bad or None,
                   detail=f"seeds {seeds}; final loss = InfoNCE of the last batch, excluding gamma R")


def _case1_claims(rows: dict[float, dict]) -> list[str]:
    """The C20 statements on one set of per-gamma numbers; returns the failed ones."""
    fails = []
    base = rows[0.0]
    for g in (0.01, 0.1):
        if abs(rows[g]["erank"] - base["erank"]) >= 0.1:
            fails.append(f"gamma={g}: |delta erank| = {abs(rows[g]['erank'] - base['erank']):.3f}"
                         " >= 0.1")
        # "loss essentially unchanged": within 5% (last-100-step mean; the change at 0.3 is ~40%)
        if abs(rows[g]["mean_loss_last100"] / base["mean_loss_last100"] - 1) >= 0.05:
            fails.append(f"gamma={g}: last-100 loss changed by >= 5%")
    seq = [0.0, 0.3, 1.0, 3.0]
    for key in ("erank", "log10_min_over_max", "final_loss"):
        vals = [rows[g][key] for g in seq]
        if not all(a < b for a, b in zip(vals, vals[1:], strict=False)):
            fails.append(f"{key} not strictly increasing over gamma in (0, 0.3, 1, 3): "
                         f"{[round(v, 4) for v in vals]}")
    if not all(rows[g]["erank"] < 15 for g in rows):
        fails.append("erank >= 15 at some gamma")
    return fails


@check("ORTHO-C20", PAPER, "Toy case 1 (strong augmentation): gamma <= 0.1 has no effect "
       "(|delta erank| < 0.1, loss unchanged); over gamma in {0.3, 1, 3} erank, lambda_min/lambda_max "
       "and the InfoNCE loss all increase strictly and exceed the baseline; erank < 15 throughout "
       "(on the seed mean; per-seed exceptions reported)", "derived", "[DER]", "training")
def toy_case1_so(quick: bool) -> Outcome:
    seeds = [0] if quick else [0, 1, 2, 3]
    gammas = list(ex.CASE1_GAMMAS)
    runs = _runs(1, gammas, seeds)
    per_seed = {s: {g: _row(runs[(g, s)]) for g in gammas} for s in seeds}
    keys = ("erank", "log10_min_over_max", "final_loss", "mean_loss_last100")
    mean = {g: {k: float(np.mean([per_seed[s][g][k] for s in seeds])) for k in keys}
            for g in gammas}
    fails_mean = _case1_claims(mean)
    exceptions = {s: f for s in seeds if (f := _case1_claims(per_seed[s]))}
    passed = not fails_mean
    return Outcome(
        expected="claims hold on the seed mean (spec grid: seed 0)",
        measured={"seed_mean": mean, "per_seed": per_seed,
                  "per_seed_exceptions": exceptions or None},
        tolerance="strict monotonicity over {baseline, 0.3, 1, 3}; |delta erank| < 0.1; loss "
        "within 5% for gamma <= 0.1", passed=passed,
        verdict="confirmed" if passed else "refuted", counterexample=fails_mean or None,
        detail=f"seeds {seeds}. Per-seed exceptions are real: whether the last noisy direction has "
        "collapsed by step 10,000 varies with the seed (baseline lambda_min/lambda_max between "
        "~1e-4 and ~5e-2), and gamma = 0.1 or 0.3 can tip it either way; the ordering for "
        "gamma in {1, 3} and the loss cost hold for every seed.")


@check("ORTHO-C21", PAPER, "Paper-level: OR improves linear-probe accuracy for most SSL methods on "
       "CIFAR-100, and slows the eigen-decay of weights and hidden features more than VICReg "
       "whitening", "third-party", "[3P]", "training")
def paper_level(quick: bool) -> Outcome:
    raise Skip("not checkable here: needs SSL pretraining at scale (ResNet/ViT on CIFAR-100, "
               "ImageNet); report only. The toy analogue (baseline vs + SO vs + VICReg whitening "
               "spectra) is the figure orthoreg_toy_spectra.")
