"""Checks of dhel_kcl.md (Koromilas et al., ICML 2024: DHEL and KCL), ids of spec §10.

Each check compares the loss library / sphere solver / metrics (``solvers``) with the closed
forms derived in ``theory`` (:mod:`theory.simplex_closed_forms`, :mod:`theory.asymptotics`) or with
the spec's formulas and reference table; tolerances are the spec's (§10), each justified where it
is used.  Variants are named in every statement (§9.1): "DCL" is the one-directional form of
Yeh et al. unless "DCL-sym" (2M anchors, the library default) is written.

Not here: DHEL-C14 (the Gram relaxation, T5) is covered by DHEL-CERT-1..3 in
:mod:`paper_checks.certificates` (same paper, so ``collapsekit check --paper dhel_kcl`` runs them).
DHEL-C30/C31 are soft (reported, not gating): the toolkit has no encoder training for this paper,
so the robustness and dimension claims are measured on configurations optimised directly by the
sphere solver over the (M, tau) grid (the issue's reading of F1/F2), see
:func:`solvers.asymptotic_minimise.batch_configuration_metrics`.
DHEL-A1 (not in §10) is the issue's "minimise the asymptotic objective directly" claim.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import stats
from scipy.integrate import quad
from scipy.special import logsumexp

from solvers.asymptotic_minimise import batch_configuration_metrics, convergence_study, fit_rate
from solvers.configurations import cross_polytope, random_sphere_points, regular_simplex
from solvers.kernels import Gaussian, Riesz
from solvers.losses import dcl, dhel, infonce, kcl, simclr
from solvers.losses.kcl import kcl_kernels
from solvers.metrics import (
    alignment,
    cross_polytope_deviation,
    matrix_rank,
    rankme,
    simplex_deviation,
    uniformity,
    w1_uniformity,
)
from solvers.sphere_law import pdf as law_pdf
from solvers.sphere_law import sample as law_sample
from solvers.sphere_law import uniform_points
from solvers.sphere_solver import SphereProblem, minimize_loss, solve
from solvers.templates import KernelTerm, PairKernelLoss
from solvers.universal_optima import (
    UNIVERSAL_OPTIMA,
    inner_product_profile,
    profile_mean_kernel,
    regular_polygon,
)
from theory import asymptotics as asy
from theory import simplex_closed_forms as scf

from .reference_data import read_table
from .registry import Outcome, check

PAPER = "dhel_kcl"

# check name -> (library builder, theory closed-form name); "dcl" is one-directional (§9.2)
FAMILY: dict[str, tuple[Callable[[int, float], object], str]] = {
    "infonce": (lambda m, tau: infonce(m, tau), "infonce"),
    "simclr": (lambda m, tau: simclr(m, tau), "simclr"),
    "dcl": (lambda m, tau: dcl(m, tau, symmetric=False), "dcl"),
    "dcl-sym": (lambda m, tau: dcl(m, tau, symmetric=True), "dcl-sym"),
    "dhel": (lambda m, tau: dhel(m, tau, "paper"), "dhel"),
    "dhel2": (lambda m, tau: dhel(m, tau, "code"), "dhel2"),
}
FIVE = ("infonce", "simclr", "dcl", "dhel", "dhel2")  # the five losses of C10 / T4


def _fmt(rows: list[dict], keys: tuple[str, ...], limit: int = 40) -> str:
    def f(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    out = "; ".join(", ".join(f"{k}={f(r[k])}" for k in keys if k in r) for r in rows[:limit])
    return out + (f"; ... ({len(rows) - limit} more)" if len(rows) > limit else "")


def _aligned(u: np.ndarray) -> np.ndarray:
    return np.vstack([u, u])


def _sorted_gram(u: np.ndarray) -> np.ndarray:
    g = u @ u.T
    return np.sort(g[np.triu_indices(u.shape[0], 1)])


def _pair_mean_loss(n: int, kernel) -> PairKernelLoss:
    """mean_{i<j} kernel(s_ij) over n points (the kernel energy of dhel_kcl.md §3.2)."""
    w = np.triu(np.ones((n, n)), 1)
    return PairKernelLoss([KernelTerm(w / w.sum(), kernel)], n_points=n, name="pair-mean")


def _near_aligned_starts(m: int, d: int, count: int, seed: int, noise: float = 1e-3) -> list[np.ndarray]:
    """V = U + small noise starts (the remedy of §9.8), seeded."""
    out = []
    for r in range(count):
        rng = np.random.default_rng([seed, 7, r])
        u = uniform_points(m, d, rng)
        out.append(np.vstack([u, u + noise * rng.standard_normal(u.shape)]))
    return out


# ==============================================================================================
# C1-C5: definitions, gradients, invariances, closed forms, lemmas
# ==============================================================================================
def _per_anchor(name: str, u: np.ndarray, v: np.ndarray, tau: float) -> float:
    """The per-anchor formulas of §2.1, written out directly (independent of the templates)."""
    m = u.shape[0]
    uv, uu, vv = u @ v.T / tau, u @ u.T / tau, v @ v.T / tau
    terms = []
    for i in range(m):
        oth = [j for j in range(m) if j != i]
        if name == "infonce":
            terms.append(-uv[i, i] + logsumexp(uv[i]))
        elif name == "simclr":
            terms.append(-uv[i, i] + logsumexp(np.concatenate([uv[i], uu[i, oth]])))
            terms.append(-uv[i, i] + logsumexp(np.concatenate([uv[:, i], vv[i, oth]])))
        elif name in ("dcl", "dcl-sym"):
            terms.append(-uv[i, i] + logsumexp(np.concatenate([uv[i, oth], uu[i, oth]])))
            if name == "dcl-sym":
                terms.append(-uv[i, i] + logsumexp(np.concatenate([uv[oth, i], vv[i, oth]])))
        elif name == "dhel":
            terms.append(-uv[i, i] + logsumexp(uu[i, oth]))
        else:  # dhel2: -log(pos / (den_u den_v)) [CODE]
            terms.append(-uv[i, i] + logsumexp(uu[i, oth]) + logsumexp(vv[i, oth]))
    return float(np.mean(terms))


def _kcl_direct(u: np.ndarray, v: np.ndarray, kernel: str, t: float, gamma: float, form: str) -> float:
    """§2.2 with |u - w|^2 computed directly (not as 2 - 2 u.w) and the kernel table of the code."""
    psi = {"gaussian": (lambda x: np.exp(-t * x), lambda x: np.exp(-t * x)),
           "log": (lambda x: -0.5 * np.log1p(t * x), lambda x: -np.log1p(t * x)),
           "imq": (lambda x: t / np.sqrt(t * t + x), lambda x: t / np.sqrt(t * t + x)),
           "riesz": (lambda x: -(x ** (abs(t) / 2)), lambda x: -(x ** (abs(t) / 2)))}[kernel]
    psi_e, psi_a = psi
    m = u.shape[0]
    iu = np.triu_indices(m, 1)
    du = np.sum((u[:, None] - u[None]) ** 2, axis=2)[iu]
    dv = np.sum((v[:, None] - v[None]) ** 2, axis=2)[iu]
    al = np.sum((u - v) ** 2, axis=1)
    if form == "code":
        return float(-2 * psi_a(al).mean() + gamma * (psi_e(du).mean() + psi_e(dv).mean()))
    return float(-psi_e(al).mean() + gamma * psi_e(du).mean())


@check("DHEL-C1", PAPER, "The generic engine (log-sum-exp / pair-kernel templates) equals the per-anchor formulas "
       "of §2.1/§2.2 for every variant (InfoNCE, SimCLR, DCL both directions, DHEL paper/code, KCL code/paper "
       "with gaussian/log/imq/riesz); numpy equals the torch path (float64 1e-12, float32 1e-5)",
       "authors-code", "[CODE] (code forms), [RECON] (paper forms)", "numeric")
def c1_engine(quick: bool) -> Outcome:
    rng = np.random.default_rng(11)
    batches = 6 if quick else 50
    worst, worst_case = 0.0, None
    cases = []
    for b in range(batches):
        m, d, tau = int(rng.integers(2, 13)), int(rng.integers(2, 11)), float(rng.choice([0.1, 0.3, 0.5, 1.0]))
        z = rng.standard_normal((2 * m, d)) * rng.uniform(0.5, 2.0, (2 * m, 1))  # raw (unnormalised) rows
        zn = z / np.linalg.norm(z, axis=1, keepdims=True)
        u, v = zn[:m], zn[m:]
        for name, (build, _) in FAMILY.items():
            cases.append((build(m, tau), _per_anchor(name, u, v, tau), z, f"{name} M={m} d={d} tau={tau}"))
        kernel, t = [("gaussian", 2.0), ("log", 1.0), ("imq", 1.5), ("riesz", -1.0)][b % 4]
        for form in ("code", "paper"):
            cases.append((kcl(m, kernel, t, 16.0, form), _kcl_direct(u, v, kernel, t, 16.0, form), z,
                          f"kcl {kernel} {form} M={m}"))
    for loss, direct, z, label in cases:
        err = abs(loss.value(z) - direct) / max(1.0, abs(direct))
        if err > worst:
            worst, worst_case = err, label
    torch_note, t64, t32 = "torch path not importable", None, None
    try:
        from solvers.torch_path import to_torch
    except ImportError as exc:  # optional dependency (pip install collapsekit[torch])
        torch_note = f"torch path skipped: {exc}"
        to_torch = None
    if to_torch is not None:
        t64 = t32 = 0.0
        for loss, _, z, _label in cases[:: 8 if quick else 4]:
            ref = loss.value(z)
            t64 = max(t64, abs(to_torch(loss, "cpu", "float64").value(z) - ref) / max(1.0, abs(ref)))
            t32 = max(t32, abs(to_torch(loss, "cpu", "float32").value(z) - ref) / max(1.0, abs(ref)))
        torch_note = f"torch float64 max rel diff {t64:.2g}, float32 {t32:.2g}"
    # 1e-12: float64 round-off of sums of O(2M) log-sum-exp terms of O(1/tau) values (tau >= 0.1)
    ok = worst <= 1e-12 and (t64 is None or (t64 <= 1e-12 and t32 <= 1e-5))
    return Outcome(expected="engine = per-anchor formulas; numpy = torch", measured={"engine": worst, "torch64": t64,
                   "torch32": t32}, tolerance="1e-12 rel (float64); 1e-5 rel (float32 torch)", passed=ok,
                   detail=f"{len(cases)} (loss, batch) pairs over {batches} random batches M in [2,12], d in [2,10]; "
                   f"worst engine case {worst_case}; {torch_note}",
                   counterexample=None if ok else worst_case)


@check("DHEL-C2", PAPER, "Analytic gradients (through the normalisation) agree with central finite differences "
       "(h = 1e-6) and the projected gradient is tangent (g_i . u_i = 0)", "derived", "[DER]", "numeric")
def c2_gradients(quick: bool) -> Outcome:
    rng = np.random.default_rng(12)
    worst_fd, worst_tan, rows = 0.0, 0.0, []
    losses = [FAMILY[n][0](4, 0.5) for n in FAMILY] + [kcl(4, "gaussian", 2.0, 16.0), kcl(4, "imq", 1.0, 4.0, "paper"),
                                                        kcl(4, "log", 1.0, 4.0)]
    for loss in losses[:: 2 if quick else 1]:
        x = rng.standard_normal((8, 3))
        _, g = loss.value_and_grad(x)
        fd = np.zeros_like(x)
        h = 1e-6
        for idx in np.ndindex(*x.shape):
            xp, xm = x.copy(), x.copy()
            xp[idx] += h
            xm[idx] -= h
            fd[idx] = (loss.value(xp) - loss.value(xm)) / (2 * h)
        rel = float(np.linalg.norm(fd - g) / np.linalg.norm(g))
        z = x / np.linalg.norm(x, axis=1, keepdims=True)
        _, rg = loss.riemannian_grad(z)
        tan = float(np.max(np.abs(np.sum(rg * z, axis=1))))
        worst_fd, worst_tan = max(worst_fd, rel), max(worst_tan, tan)
        rows.append({"loss": loss.name, "fd_rel": rel, "tangent": tan})
    # 1e-6: central differences with h = 1e-6 carry O(h^2) truncation and O(eps/h) ~ 1e-10 round-off
    # per entry relative to O(1) gradients; 1e-12 abs: round-off of the projection of O(1) vectors
    ok = worst_fd <= 1e-6 and worst_tan <= 1e-12
    return Outcome(expected="fd agreement; tangent", measured={"fd_rel": worst_fd, "tangent": worst_tan},
                   tolerance="1e-6 rel; 1e-12 abs", passed=ok, detail=_fmt(rows, ("loss", "fd_rel", "tangent")))


@check("DHEL-C3", PAPER, "Every loss is invariant to a positive rescaling of the rows of Z (losses normalise "
       "internally)", "authors-code", "[CODE]", "numeric")
def c3_rescaling(quick: bool) -> Outcome:
    rng = np.random.default_rng(13)
    worst = 0.0
    for build, _ in FAMILY.values():
        for m, d in [(3, 2), (6, 4)]:
            loss = build(m, 0.3)
            z = rng.standard_normal((2 * m, d))
            scaled = z * rng.uniform(0.01, 100.0, (2 * m, 1))
            worst = max(worst, abs(loss.value(z) - loss.value(scaled)) / abs(loss.value(z)))
    for kernel, t in [("gaussian", 2.0), ("imq", 1.0), ("log", 1.0), ("riesz", -1.0)]:
        z = rng.standard_normal((10, 4))
        loss = kcl(5, kernel, t, 16.0)
        worst = max(worst, abs(loss.value(z) - loss.value(z * rng.uniform(0.01, 100.0, (10, 1)))) / abs(loss.value(z)))
    # 1e-12: normalising x and c x gives unit rows equal to within a few ulps
    return Outcome(expected=0.0, measured=worst, tolerance="1e-12 rel", passed=worst <= 1e-12)


@check("DHEL-C4", PAPER, "Aligned-simplex values equal the T1 closed forms (derived with sympy from the simplex "
       "Gram) for M <= d + 1, and the worked example M = 4, tau = 0.5: InfoNCE 0.189339, SimCLR 0.348472, "
       "DCL -0.874907, DHEL paper -1.568054, DHEL code -1.136109", "reconstruction", "[RECON; DER]", "numeric")
def c4_simplex_values(quick: bool) -> Outcome:
    worst, rows = 0.0, []
    for m in (2, 3, 4, 6, 9):
        for d in (m - 1 if m > 2 else 2, m + 2):
            pts = _aligned(regular_simplex(m, d))
            for tau in (0.1, 0.5, 2.0):
                for name, (build, th) in FAMILY.items():
                    lib, cf = build(m, tau).value(pts), scf.value(th, m, tau)
                    # relative to the size of the terms that cancel (-1/tau against a log-sum-exp of
                    # O(1/tau)): a tiny value such as InfoNCE at M = 2, tau = 0.1 (2e-9) carries an
                    # absolute round-off of eps/tau, not eps times the value
                    err = abs(lib - cf) / max(abs(cf), 1.0 / tau)
                    if err > worst:
                        worst = err
                        rows = [{"loss": name, "M": m, "d": d, "tau": tau, "library": lib, "closed": cf}]
    example = {"infonce": 0.189339, "simclr": 0.348472, "dcl": -0.874907, "dhel": -1.568054, "dhel2": -1.136109}
    ex_err = max(abs(scf.value(FAMILY[k][1], 4, 0.5) - v) for k, v in example.items())
    # 1e-12 rel: float64 evaluation of the same value on constructed points (round-off of log-sum-exp);
    # 5e-7 abs: the worked example is printed with 6 decimals
    ok = worst <= 1e-12 and ex_err <= 5e-7
    return Outcome(expected="library = T1 closed form; worked example", measured={"max_rel": worst, "example": ex_err},
                   tolerance="1e-12 rel to max(|value|, 1/tau) (formula); 5e-7 abs (worked example)", passed=ok,
                   detail="M in {2,3,4,6,9}, d in {M-1, M+2}, tau in {0.1, 0.5, 2}, six variants; worst: "
                   + _fmt(rows, ("loss", "M", "d", "tau", "library", "closed")))


@check("DHEL-C5", PAPER, "Lemmas L1-L4, the mean-exponent expressions, the simplex Gram facts (PSD, rank M-1, "
       "zero row sums) hold symbolically, and each T1 lower bound simplifies to its closed form",
       "reconstruction", "[RECON]", "symbolic")
def c5_lemmas(quick: bool) -> Outcome:
    report = scf.lemma_report((3,) if quick else (3, 4))
    failed = [k for k, v in report.items() if not v]
    return Outcome(expected="all identities exact", measured=f"{len(report) - len(failed)}/{len(report)} proved",
                   tolerance="exact (sympy)", passed=not failed, detail="; ".join(report),
                   counterexample=failed or None)


# ==============================================================================================
# C6-C15: numerical minimisation
# ==============================================================================================
def _config_ok(u: np.ndarray, v: np.ndarray, m: int) -> dict:
    """§9.6 configuration tests: off-diagonal Gram within 1e-3 of -1/(M-1), |sum u| < 1e-2, u.v > 1 - 1e-4."""
    return {"simplex_dev": simplex_deviation(u) if m > 1 else 0.0, "centroid": float(np.linalg.norm(u.sum(0))),
            "min_uv": float(np.min(np.sum(u * v, axis=1)))}


@check("DHEL-C6", PAPER, "For M <= d + 1 every InfoNCE-family minimiser found by the solver (>= 6 seeds) is the "
       "aligned simplex with the T1 closed-form value (InfoNCE, SimCLR, DCL both directions, DHEL paper/code)",
       "reconstruction", "[RECON; DER]", "numeric")
def c6_numeric_minima(quick: bool) -> Outcome:
    # every M in 2..6 and every d in {3, 5, 8} occurs (§10 C6), M <= d + 1
    grid = [(3, 4), (5, 6)] if quick else [(3, 4), (5, 2), (5, 3), (5, 5), (8, 6)]
    taus = (0.1, 0.5) if quick else (0.1, 0.5, 1.0)
    names = ("infonce", "simclr", "dcl", "dhel2") if quick else tuple(FAMILY)
    restarts = 3 if quick else 6
    rows, bad, worst = [], [], 0.0
    for d, m in grid:
        for tau in taus:
            for name in names:
                build, th = FAMILY[name]
                res = minimize_loss(build(m, tau), d, views=2, restarts=restarts, seed=d * 100 + m)
                u, v = res.points[:m], res.points[m:]
                cf = scf.value(th, m, tau)
                cfg = _config_ok(u, v, m)
                err = abs(res.fun - cf)
                row = {"loss": name, "d": d, "M": m, "tau": tau, "err": err, "hits": res.hits, **cfg}
                if tau >= 0.5:
                    good = err <= 1e-8 * abs(cf)  # value test (§10 C6)
                    worst = max(worst, err / abs(cf))
                elif name in ("infonce", "simclr"):  # flat landscape: configuration test (§9.6)
                    good = cfg["simplex_dev"] <= 1e-3 and cfg["centroid"] < 1e-2 and cfg["min_uv"] > 1 - 1e-4
                else:
                    good = err <= 1e-12 * max(1.0, abs(cf)) * 10  # DCL/DHEL reach 1e-12 abs (§9.6); 10 ulps of |L|~12
                good &= cfg["min_uv"] > 1 - 1e-4 and cfg["simplex_dev"] <= 1e-3
                rows.append(row)
                if not good:
                    bad.append(row)
    return Outcome(expected="aligned simplex at the T1 value", measured={"max_rel_err_tau>=0.5": worst,
                   "failures": len(bad)}, tolerance="1e-8 rel (tau >= 0.5); tau = 0.1: DCL/DHEL 1e-11 abs, "
                   "InfoNCE/SimCLR Gram +-1e-3, |sum u| < 1e-2, u.v > 1 - 1e-4", passed=not bad,
                   detail=f"{len(rows)} minimisations, {restarts} seeds each; " + _fmt(
                       sorted(rows, key=lambda r: -r["err"])[:8], ("loss", "d", "M", "tau", "err", "min_uv", "hits")),
                   counterexample=bad or None)


@check("DHEL-C7", PAPER, "Decoupling (T2): the best minimisers of DHEL (paper and code forms) and KCL (code form, "
       "gaussian t = 2, gamma = 16) have V = U, for M up to 12 including M > d + 1, d = 2..5",
       "paper-abstract", "[ABS; DER]", "numeric")
def c7_decoupling(quick: bool) -> Outcome:
    grid = [(2, 4), (3, 8)] if quick else [(d, m) for d in (2, 3, 4, 5) for m in (3, 6, 9, 12)]
    rows, bad = [], []
    for d, m in grid:
        losses = (("dhel", dhel(m, 0.3)), ("dhel2", dhel(m, 0.3, "code")), ("kcl", kcl(m, "gaussian", 2.0, 16.0)))
        for name, loss in losses:
            starts = _near_aligned_starts(m, d, 1, d * 31 + m)
            res = minimize_loss(loss, d, views=2, restarts=3 if quick else 4, seed=d * 17 + m, starts=starts)
            u, v = res.points[:m], res.points[m:]
            min_uv = float(np.min(np.sum(u * v, axis=1)))
            row = {"loss": name, "d": d, "M": m, "min_uv": min_uv, "value": res.fun}
            rows.append(row)
            if min_uv < 1 - 1e-6:  # §10 C7 tolerance (6 decimals of the spec's confirmation)
                bad.append(row)
    worst = min(r["min_uv"] for r in rows)
    return Outcome(expected="min_i u_i.v_i = 1", measured=worst, tolerance=">= 1 - 1e-6", passed=not bad,
                   detail=f"{len(rows)} problems (random starts + one V = U + noise start); lowest: "
                   + _fmt(sorted(rows, key=lambda r: r["min_uv"])[:6], ("loss", "d", "M", "min_uv")),
                   counterexample=bad or None)


KCL_C8 = [("gaussian", 2.0, 16.0), ("gaussian", 1.0, 1.0), ("gaussian", 0.5, 4.0), ("log", 1.0, 4.0),
          ("imq", 1.0, 4.0), ("riesz", -1.0, 1.0), ("riesz", -1.5, 1.0)]


@check("DHEL-C8", PAPER, "KCL minima (code form, from V = U starts) equal the T3a aligned-simplex closed forms for "
       "gaussian (t, gamma) in {(2,16), (1,1), (0.5,4)}, log, imq and riesz (s = -1, -1.5), M = 2..6",
       "reconstruction", "[RECON; DER]", "numeric")
def c8_kcl_closed_forms(quick: bool) -> Outcome:
    cases = KCL_C8[::2] if quick else KCL_C8
    sizes = (3, 5) if quick else (2, 3, 4, 5, 6)
    rows, worst, lib_gap = [], 0.0, 0.0
    for kernel, t, gamma in cases:
        for m in sizes:
            d = max(m - 1, 2)
            loss = kcl(m, kernel, t, gamma)
            if kernel == "riesz":
                # cusp -r^{|s|} at alignment (§9.10; its gradient is infinite at r = 0): T2 route of §9.8,
                # minimise the energy over U alone, set V = U and evaluate the full loss there
                energy = minimize_loss(_pair_mean_loss(m, Riesz(t)), d, restarts=3, seed=m)
                value = 2.0 * gamma * energy.fun  # -2 psi_A(0) = 0 for riesz; both views carry the energy
                with np.errstate(divide="ignore", invalid="ignore"):  # the unused gradient is infinite at V = U
                    lib_gap = max(lib_gap, abs(loss.value(_aligned(energy.points)) - value))
            else:
                value = minimize_loss(loss, d, views=2, restarts=3, seed=m, starts=_near_aligned_starts(m, d, 3, m)).fun
            cf = scf.kcl_value(m, kernel, t, gamma)
            err = abs(value - cf) / abs(cf)
            worst = max(worst, err)
            rows.append({"kernel": kernel, "t": t, "gamma": gamma, "M": m, "value": value, "closed": cf, "rel": err})
    # 1e-9 rel (§10 C8): optimiser stopping rule (gtol 1e-10) on smooth O(1)-conditioned problems
    bad = [r for r in rows if r["rel"] > 1e-9]
    return Outcome(expected="T3a closed form", measured=worst, tolerance="1e-9 rel", passed=not bad,
                   detail=_fmt(sorted(rows, key=lambda r: -r["rel"])[:8], ("kernel", "t", "gamma", "M", "rel"))
                   + f"; riesz: the library's KCL evaluated at the exactly aligned pair differs by {lib_gap:.2g}: "
                   "its alignment distance is formed as 2 - 2 u.u (~1e-16, not 0) and -x^{|s|/2} turns that into "
                   "~1e-8 (the cancellation pitfall of §9.5)", counterexample=bad or None)


def _universal_cases(quick: bool) -> list[tuple[str, int, np.ndarray]]:
    out = [("pentagon", 2, regular_polygon(5)), ("hexagon", 2, regular_polygon(6)),
           ("octahedron", 3, cross_polytope(3)), ("icosahedron", 3, UNIVERSAL_OPTIMA["icosahedron"].builder()),
           ("cross-polytope-4", 4, cross_polytope(4)), ("cross-polytope-5", 5, cross_polytope(5))]
    return [out[0], out[2], out[3]] if quick else out


@check("DHEL-C9", PAPER, "Kernel-energy minima at universal sizes equal the §3.2 formulas of the universal optima "
       "(Gaussian t in {0.5, 2, 8}: pentagon, hexagon, octahedron, icosahedron, cross-polytopes d = 4, 5; "
       "octahedron under the KCL log, imq and riesz(-1) kernels); no run goes below the construction",
       "literature", "[LIT; DER]", "numeric")
def c9_universal_energies(quick: bool) -> Outcome:
    rows, bad = [], []
    kernels = [(f"gaussian t={t}", Gaussian(t)) for t in ((2.0,) if quick else (0.5, 2.0, 8.0))]
    jobs = [(name, d, pts, kn, k) for name, d, pts in _universal_cases(quick) for kn, k in kernels]
    octa = cross_polytope(3)
    if not quick:
        jobs += [("octahedron", 3, octa, f"kcl-{kn}", kcl_kernels(kn, t)[0]) for kn, t in
                 (("log", 1.0), ("imq", 1.0), ("riesz", -1.0))]
    for name, d, pts, kn, kernel in jobs:
        n = pts.shape[0]
        prof, same = inner_product_profile(pts, decimals=12)
        formula = profile_mean_kernel(prof, lambda x, k=kernel: k.value(1.0 - x / 2.0))
        res = minimize_loss(_pair_mean_loss(n, kernel), d, restarts=3 if quick else 6, seed=n * 7 + d)
        err = abs(res.fun - formula)
        # §10 C9: 1e-8 rel, or 1e-12 abs when the value is < 1e-4 (round-off of tiny sums)
        tol = 1e-12 if abs(formula) < 1e-4 else 1e-8 * abs(formula)
        below = res.fun < formula - max(1e-9 * abs(formula), 1e-14)  # anchors.md §5.4 (iii)
        row = {"config": name, "kernel": kn, "value": res.fun, "formula": formula, "err": err, "hits": res.hits,
               "transitive": same}
        rows.append(row)
        if err > tol or below or not same:
            bad.append(row)
    return Outcome(expected="solver minimum = universal-optimum energy", measured=max(r["err"] for r in rows),
                   tolerance="1e-8 rel (1e-12 abs below 1e-4); never below by > 1e-9 rel", passed=not bad,
                   detail=_fmt(rows, ("config", "kernel", "err", "hits")), counterexample=bad or None,
                   verdict="confirmed" if not bad else "refuted")


@check("DHEL-C10", PAPER, "At universal sizes (pentagon, hexagon, octahedron, icosahedron, 8-point cross-polytope) "
       "the InfoNCE family (InfoNCE, SimCLR, DCL one-directional, DHEL paper/code) reaches the aligned polytope "
       "with the §3.2 values, tau in {0.1, 0.2, 0.5, 1}", "derived", "[NUM]", "numeric")
def c10_family_universal(quick: bool) -> Outcome:
    cases = _universal_cases(quick)
    if not quick:
        cases = [c for c in cases if c[0] != "cross-polytope-5"]
    taus = (0.5,) if quick else (0.1, 0.2, 0.5, 1.0)
    names = ("infonce", "dhel") if quick else FIVE
    rows, bad = [], []
    for cname, d, pts in cases:
        m = pts.shape[0]
        prof, _ = inner_product_profile(pts, decimals=12)
        ref_gram = _sorted_gram(pts)
        for tau in taus:
            for name in names:
                build, th = FAMILY[name]
                formula = scf.transitive_value(th, prof, tau)
                res = minimize_loss(build(m, tau), d, views=2, restarts=3 if quick else 6, seed=m * 13 + d)
                escalated = False
                if res.fun > formula + 1e-6 * abs(formula):  # stuck above the polytope: more seeds (§9.7)
                    more = minimize_loss(build(m, tau), d, views=2, restarts=24, seed=m * 13 + d + 1)
                    res, escalated = (more if more.fun < res.fun else res), True
                u, v = res.points[:m], res.points[m:]
                rel = abs(res.fun - formula) / abs(formula)
                gram_dev = float(np.max(np.abs(_sorted_gram(u) - ref_gram)))
                min_uv = float(np.min(np.sum(u * v, axis=1)))
                if tau >= 0.5:  # §10 C10 tolerances: optimiser precision on the value
                    good = rel <= 1e-8
                elif tau >= 0.2:
                    good = rel <= 1e-6
                else:  # tau = 0.1: flat landscape, configuration test
                    good = True
                good &= gram_dev <= 1e-3 and min_uv > 1 - 1e-4
                below = res.fun < formula - 1e-9 * abs(formula)  # a lower value would refute T4's observation
                good &= not below
                row = {"config": cname, "loss": name, "tau": tau, "rel": rel, "gram_dev": gram_dev, "min_uv": min_uv,
                       "hits": res.hits, "restarts": res.restarts, "escalated": escalated}
                rows.append(row)
                if not good:
                    bad.append(row)
    esc = [f"{r['config']}/{r['loss']}/tau={r['tau']} ({r['hits']}/{r['restarts']} hits)" for r in rows
           if r["escalated"]]
    return Outcome(expected="aligned polytope at the §3.2 value", measured=f"{len(rows) - len(bad)}/{len(rows)}",
                   tolerance="1e-8 rel (tau >= 0.5), 1e-6 rel (tau = 0.2); Gram +-1e-3, u.v > 1 - 1e-4",
                   passed=not bad, detail=f"escalated to 24 more seeds (the first 6 stuck above the polytope): "
                   f"{esc or 'none'}; worst: " + _fmt(sorted(rows, key=lambda r: -r["gram_dev"])[:6],
                                                      ("config", "loss", "tau", "rel", "gram_dev", "min_uv", "hits")),
                   counterexample=bad or None)


@check("DHEL-C11", PAPER, "Negative control M = 5, d = 3 (T4): the unconditional reading 'the InfoNCE family has "
       "the same minimisers' is refuted: at tau = 0.1 InfoNCE/SimCLR sit aligned at the Gaussian-sum optimum, "
       "DHEL aligned at a different (E_tau-optimal) configuration, DCL (one-directional) is not aligned and beats "
       "the aligned E_tau optimum; at tau = 0.15 the DCL gap persists; at tau = 0.2 all coincide",
       "derived", "[NUM]", "numeric")
def c11_negative_control(quick: bool) -> Outcome:
    m, d = 5, 3
    seeds = 10 if quick else 30  # §9.7: 30 seeds for negative controls (quick mode: 10)
    taus = (0.1,) if quick else (0.1, 0.15, 0.2)
    out, ok_all = {}, True
    for tau in taus:
        best = {}
        names = ("dcl", "dhel") if 0.1 < tau < 0.2 else ("infonce", "simclr", "dcl", "dcl-sym", "dhel")
        for name in names:
            res = minimize_loss(FAMILY[name][0](m, tau), d, views=2, restarts=seeds, seed=int(1000 * tau))
            best[name] = res
        e_opt = minimize_loss(dhel(m, tau), d, views=2, tied=True, restarts=seeds, seed=5).free_points
        dcl_at_e = dcl(m, tau, symmetric=False).value(_aligned(e_opt))
        gap = dcl_at_e - best["dcl"].fun

        def dist(a: np.ndarray, b: np.ndarray) -> float:
            return float(np.max(np.abs(_sorted_gram(a) - _sorted_gram(b))))

        u = {k: r.points[:m] for k, r in best.items()}
        minuv = {k: float(np.min(np.sum(r.points[:m] * r.points[m:], axis=1))) for k, r in best.items()}
        info = {"dcl_gap": gap, "min_uv": minuv, "dhel_to_etau": dist(u["dhel"], e_opt)}
        if "infonce" in best:
            g_opt = minimize_loss(_pair_mean_loss(m, Gaussian(1.0 / (2 * tau))), d, restarts=seeds, seed=6).points
            info.update({"infonce_to_gauss": dist(u["infonce"], g_opt), "simclr_to_gauss": dist(u["simclr"], g_opt),
                         "etau_to_gauss": dist(e_opt, g_opt),
                         "dcl_sym_gap": dcl(m, tau).value(_aligned(e_opt)) - best["dcl-sym"].fun})
        aligned = {k: v > 1 - 1e-6 for k, v in minuv.items()}
        if tau <= 0.1:
            ok = (aligned["infonce"] and aligned["simclr"] and aligned["dhel"] and not aligned["dcl"]
                  and gap > 1e-4 and info["infonce_to_gauss"] < 1e-2 and info["dhel_to_etau"] < 1e-2
                  and info["etau_to_gauss"] > 1e-2)
        elif tau < 0.2:
            ok = gap > 1e-4 and not aligned["dcl"]
        else:  # all coincide on the aligned triangular bipyramid (poles +-e3, equatorial triangle)
            tbp = np.vstack([np.eye(3)[2], -np.eye(3)[2], np.column_stack([regular_polygon(3), np.zeros(3)])])
            info["to_bipyramid"] = max(dist(u[k], tbp) for k in u)
            ok = all(aligned.values()) and info["to_bipyramid"] < 1e-2 and abs(gap) < 1e-8
        info["as_expected"] = bool(ok)
        ok_all &= ok
        out[f"tau={tau}"] = info
    t01 = out["tau=0.1"]
    return Outcome(expected="DCL gap > 1e-4 at tau <= 0.15, configurations differ by > 1e-2; all coincide at 0.2",
                   measured={k: {"dcl_gap": v["dcl_gap"], "dcl_min_uv": v["min_uv"]["dcl"]} for k, v in out.items()},
                   tolerance="gap > 1e-4 (optimiser precision 1e-9); Gram distance > 1e-2", passed=ok_all,
                   verdict="refuted",
                   detail=f"{seeds} seeds per loss (tau = 0.15: DCL and DHEL only). DCL-sym (2M anchors) behaves "
                   "differently: its optimum is aligned "
                   f"at the E_tau optimum (gap {t01['dcl_sym_gap']:.2g} at tau = 0.1, min u.v "
                   f"{t01['min_uv']['dcl-sym']:.12f}), so the DCL counterexample needs the one-directional form. "
                   f"Full record: {out}",
                   counterexample={"M": m, "d": d, "tau": 0.1, "dcl_one_direction_gap": t01["dcl_gap"],
                                   "dcl_min_uv": t01["min_uv"]["dcl"], "dhel_vs_infonce_gram": t01["etau_to_gauss"]})


@check("DHEL-C12", PAPER, "Riesz regimes (T3c), M = 6, d = 3, energy mean_{i<j} -r^a: a = 1 octahedron; a = 2 "
       "any centred configuration at -2M/(M-1); a in {3, 4} two antipodal triples at -2^a 9/15 (collapse)",
       "literature", "[LIT; DER]", "numeric")
def c12_riesz_regimes(quick: bool) -> Outcome:
    m, d = 6, 3
    rows, bad = [], []
    for a in ((1, 3) if quick else (1, 2, 3, 4)):
        res = minimize_loss(_pair_mean_loss(m, Riesz(-float(a))), d, restarts=3 if quick else 6, seed=a)
        z = res.points
        if a == 1:
            expected, shape = -(4 * math.sqrt(2) + 2) / 5, cross_polytope_deviation(z)
        elif a == 2:
            expected, shape = -2 * m / (m - 1), float(np.linalg.norm(z.sum(0)))
        else:
            expected = -(2.0**a) * 9 / 15
            g = z @ z.T
            shape = float(np.max(np.minimum(np.abs(g - 1), np.abs(g + 1))))  # entries in {1, -1}
        rel = abs(res.fun - expected) / abs(expected)
        row = {"a": a, "value": res.fun, "expected": expected, "rel": rel, "shape_dev": shape}
        rows.append(row)
        # 1e-8 rel (§10 C12); shape: 1e-4 (configuration resolved to sqrt of the value tolerance)
        if rel > 1e-8 or shape > 1e-4:
            bad.append(row)
    return Outcome(expected="T3c values and shapes", measured=max(r["rel"] for r in rows), tolerance="1e-8 rel",
                   passed=not bad, detail=_fmt(rows, ("a", "value", "expected", "rel", "shape_dev")),
                   counterexample=bad or None)


@check("DHEL-C13", PAPER, "The ill-posed kernel is rejected: KCL with kernel='riesz' and t > 0 raises ValueError "
       "(alignment term infinite at perfect alignment)", "authors-code", "[CODE; DER]", "numeric")
def c13_ill_posed(quick: bool) -> Outcome:
    msgs = []
    for f in (lambda: kcl(4, "riesz", 1.0), lambda: scf.kcl_value(4, "riesz", 1.0),
              lambda: asy.kcl_expected_loss(8, "riesz", 1.0)):
        try:
            f()
            msgs.append(None)
        except ValueError as exc:
            msgs.append(str(exc))
    ok = all(m is not None and "t" in m for m in msgs)
    return Outcome(expected="ValueError naming t", measured=msgs, tolerance="-", passed=ok)


def _hits(values: list[float], target: float, rtol: float) -> int:
    return sum(abs(v - target) <= rtol * abs(target) for v in values)


@check("DHEL-C15", PAPER, "KCL initialisation (§9.8), t = 2, gamma = 16: from V = U starts every seed reaches the "
       "aligned polytope (pentagon d = 2, icosahedron d = 3); random starts often stop at permuted local minima "
       "(hit rate recorded)", "derived", "[NUM]", "numeric")
def c15_kcl_init(quick: bool) -> Outcome:
    seeds = 6 if quick else 20
    rows, ok = [], True
    configs = (("pentagon", 2, regular_polygon(5)), ("icosahedron", 3, UNIVERSAL_OPTIMA["icosahedron"].builder()))
    for cname, d, pts in configs:
        m = pts.shape[0]
        prof, _ = inner_product_profile(pts, decimals=12)
        closed = -2.0 + 2.0 * 16.0 * profile_mean_kernel(prof, lambda r2: np.exp(-2.0 * r2))  # §3.2, KCL code
        problem = SphereProblem(kcl(m, "gaussian", 2.0, 16.0), d)
        rand = solve(problem, restarts=seeds, seed=m)
        near = solve(problem, restarts=seeds, seed=m, starts=_near_aligned_starts(m, d, seeds, m))
        # 1e-8 rel (§10 C15): the hit criterion of a converged L-BFGS run
        row = {"config": cname, "closed": closed, "random_hits": _hits(rand.all_values, closed, 1e-8),
               "aligned_hits": _hits(near.all_values, closed, 1e-8), "seeds": seeds, "random_best": rand.fun}
        rows.append(row)
        ok &= row["aligned_hits"] == seeds
    rate = {r["config"]: f"{r['random_hits']}/{seeds}" for r in rows}
    return Outcome(expected="V = U starts: all seeds; random: < 100%", measured={"random_hit_rate": rate,
                   "aligned_hits": {r["config"]: r["aligned_hits"] for r in rows}}, tolerance="1e-8 rel",
                   passed=ok, detail=_fmt(rows, ("config", "random_hits", "aligned_hits", "seeds")),
                   counterexample=None if ok else rows)


# ==============================================================================================
# C16-C21: special functions, limits, finite-M Monte Carlo
# ==============================================================================================
@check("DHEL-C16", PAPER, "m_d(kappa) = E e^{kappa s}: the 0F1 form equals the Bessel form and the Gauss-Jacobi "
       "quadrature against p_d (d in {2, 3, 16, 128, 1024}, kappa in [0.1, 20]); d = 3 elementary form "
       "sinh(kappa)/kappa; the moment and series identities hold symbolically", "literature", "[LIT; DER]",
       "numeric")
def c16_mgf(quick: bool) -> Outcome:
    worst = {"bessel_vs_0f1": 0.0, "quadrature": 0.0, "elementary_d3": 0.0, "mpmath": 0.0}
    for d in (2, 3, 16, 128, 1024):
        for kappa in np.geomspace(0.1, 20.0, 6 if quick else 12):
            lm = asy.log_mgf(kappa, d)
            b, h = asy.log_mgf_bessel(kappa, d), asy.log_mgf_hyp0f1(kappa, d)
            if not (math.isnan(b) or math.isnan(h)):
                worst["bessel_vs_0f1"] = max(worst["bessel_vs_0f1"], abs(math.expm1(b - h)))
            worst["quadrature"] = max(worst["quadrature"], abs(math.expm1(lm - asy.log_mgf_quadrature(kappa, d))))
            worst["mpmath"] = max(worst["mpmath"], abs(math.expm1(lm - asy.log_mgf_mpmath(kappa, d))))
            if d == 3:
                worst["elementary_d3"] = max(worst["elementary_d3"], abs(math.expm1(lm - asy.log_mgf_d3(kappa))))
    sym = {"moment": asy.symbolic_moment() == 1, "series": asy.mgf_series_identity() == 1,
           "d3": str(asy.symbolic_mgf_d3()) == "sinh(kappa)/kappa"}
    # 1e-10 rel on m_d (§10 C16): the hyp0f1 route at d = 1024 is accurate to ~3e-13 only
    ok = max(worst.values()) <= 1e-10 and all(sym.values())
    return Outcome(expected="all routes agree", measured=worst, tolerance="1e-10 rel on m_d", passed=ok,
                   detail=f"symbolic: {sym}; routes used: d=1024 -> {asy.log_mgf_route(20.0, 1024)}, "
                   f"d=3, kappa=1000 -> {asy.log_mgf_route(1000.0, 3)}")


@check("DHEL-C17", PAPER, "Asymptotic optimal values: A(d, tau) = -1/tau + log 0F1(; d/2; 1/(4 tau^2)), "
       "A_code = -1/tau + 2 log 0F1; worked example A(3, 0.5) = -1.404780; unif_t(sigma_d) = A(d, 1/(2t)); "
       "the reference table asymptotic_uniform_anchors.csv (uniformity, InfoNCE excess, Riesz I_1)",
       "literature", "[LIT; DER]", "numeric")
def c17_limits(quick: bool) -> Outcome:
    worked = abs(asy.limit_A(3, 0.5) - (-1.404780))
    ident, quadr = 0.0, 0.0
    for d in (2, 3, 8, 16, 128):
        for tau in (0.1, 0.25, 0.5, 1.0):
            a = asy.limit_A(d, tau)
            ident = max(ident, abs(asy.limit_A_code(d, tau) - (2 * a + 1 / tau)),
                        abs(asy.uniformity_uniform(d, 1 / (2 * tau)) - a))
            quadr = max(quadr, abs(a - (-1 / tau + asy.log_mgf_quadrature(1 / tau, d))))
    table, worst_table = read_table("asymptotic_uniform_anchors.csv"), 0.0
    for row in table:
        d = int(row["d"])
        vals = {"uniformity_t1": asy.uniformity_uniform(d, 1.0), "uniformity_t2": asy.uniformity_uniform(d, 2.0),
                "riesz_s1_mean": asy.riesz_continuum(1.0, d)}
        for tau in ("0.05", "0.1", "0.2", "0.5", "1.0"):
            vals[f"infonce_excess_tau{tau}"] = asy.limit_A(d, float(tau))
        for key, v in vals.items():
            worst_table = max(worst_table, abs(v - float(row[key])))
    # 5e-7: the worked example has 6 decimals; 1e-9: identities in float64; 1e-10 abs: the table's stated
    # tolerance (12 decimals)
    ok = worked <= 5e-7 and ident <= 1e-9 and quadr <= 1e-9 and worst_table <= 1e-10
    return Outcome(expected="formulas, worked example and table", measured={"worked": worked, "identity": ident,
                   "quadrature": quadr, "table": worst_table}, tolerance="5e-7 (example); 1e-9 (identity); "
                   "1e-10 abs (table)", passed=ok, detail=f"{len(table)} table rows (d = 3, 4, 8)")


def _uniform_batches(count: int, m: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` independent batches of m iid uniform points on S^{d-1}, shape (count, m, d)."""
    g = rng.standard_normal((count, m, d))
    return g / np.linalg.norm(g, axis=2, keepdims=True)


def _batched_gaussian_pair_means(u: np.ndarray, t: float) -> np.ndarray:
    """mean_{i<j} exp(-t |u_i - u_j|^2) for each batch of ``u`` (count, m, d), in chunks of batches."""
    count, m, _ = u.shape
    iu = np.triu_indices(m, 1)
    out = np.empty(count)
    step = max(1, (1 << 22) // (m * m))
    for a in range(0, count, step):
        g = np.einsum("bid,bjd->bij", u[a:a + step], u[a:a + step])[:, iu[0], iu[1]]
        out[a:a + step] = np.exp(-t * np.maximum(2.0 - 2.0 * g, 0.0)).mean(axis=1)
    return out


def _aligned_batch_values(u: np.ndarray, tau: float) -> dict[str, float]:
    """The §3.1 aligned forms (V = U) of the InfoNCE family minus their normalisers, from one Gram."""
    m = u.shape[0]
    s = u @ u.T / tau
    np.fill_diagonal(s, -np.inf)
    lse = logsumexp(s, axis=1)                                    # log sum_{j != i} e^{s_ij/tau}
    with_pos = np.logaddexp(lse, 1.0 / tau)                        # + e^{1/tau} (the positive)
    two = np.logaddexp(lse + math.log(2.0), 1.0 / tau)             # SimCLR: positive + 2 sums
    return {"dhel": -1 / tau + float(lse.mean()) - math.log(m - 1),
            "dcl": -1 / tau + float(lse.mean()) + math.log(2) - math.log(2 * (m - 1)),
            "infonce": -1 / tau + float(with_pos.mean()) - math.log(m),
            "simclr": -1 / tau + float(two.mean()) - math.log(2 * m),
            "dhel2": -1 / tau + 2 * float(lse.mean()) - 2 * math.log(m - 1)}


def _reduction_samples(m: int, d: int, tau: float, reps: int, seed: int) -> dict[str, np.ndarray]:
    """The exact 1-D reductions of T7: s_1..s_{M-1} iid p_d, Sig = sum_j e^{s_j/tau} (log domain)."""
    rng = np.random.default_rng(seed)
    s = law_sample(reps * (m - 1), d, rng).reshape(reps, m - 1) / tau
    log_sig = logsumexp(s, axis=1)
    return {"dhel": -1 / tau + log_sig - math.log(m - 1), "dcl": -1 / tau + log_sig - math.log(m - 1),
            "infonce": -1 / tau + np.logaddexp(log_sig, 1 / tau) - math.log(m),
            "simclr": -1 / tau + np.logaddexp(log_sig + math.log(2), 1 / tau) - math.log(2 * m),
            "dhel2": -1 / tau + 2 * (log_sig - math.log(m - 1))}


def _finite_m_study(quick: bool) -> dict:
    """Shared Monte Carlo of C18 and C21 (d = 16, tau = 0.5), cached per mode."""
    key = bool(quick)
    if key in _FINITE_M_CACHE:
        return _FINITE_M_CACHE[key]
    d, tau = 16, 0.5
    sizes = (4, 16, 64) if quick else (4, 16, 64, 256)
    batches = 120 if quick else 300   # §10 C18: >= 300 full batches per M
    reps = 20000 if quick else 40000
    rng = np.random.default_rng(18)
    out: dict = {"d": d, "tau": tau, "sizes": sizes, "batches": batches, "reps": reps, "rows": {}}
    check_err = 0.0
    for m in sizes:
        vals = {k: [] for k in FAMILY if k != "dcl-sym"}
        for b, u in enumerate(_uniform_batches(batches, m, d, rng)):
            v = _aligned_batch_values(u, tau)
            for k in vals:
                vals[k].append(v[k])
            if b < 2:  # the aligned forms equal the library losses on the same batch
                z = _aligned(u)
                for k, (build, _) in FAMILY.items():
                    if k in vals:
                        norm = asy.log_normaliser(k, m)
                        check_err = max(check_err, abs(build(m, tau).value(z) - norm - v[k]))
        red = _reduction_samples(m, d, tau, reps, 1000 + m)
        out["rows"][m] = {k: {"full_mean": float(np.mean(vals[k])),
                              "full_se": float(np.std(vals[k], ddof=1) / math.sqrt(batches)),
                              "red_mean": float(red[k].mean()), "red_se": float(red[k].std(ddof=1) / math.sqrt(reps)),
                              "delta": asy.delta_method(k, d, tau, m)} for k in vals}
    out["library_vs_aligned_form"] = check_err
    _FINITE_M_CACHE[key] = out
    return out


_FINITE_M_CACHE: dict = {}


@check("DHEL-C18", PAPER, "Finite-M convergence (T7), d = 16, tau = 0.5, aligned iid uniform batches: full batches "
       "and the 1-D reduction agree; DHEL and DCL lie below A(d, tau) and are nondecreasing in M; the "
       "delta-method formulas hold; at M = 256 DHEL/DCL are within 0.01 of A(16, 0.5)", "derived", "[DER]",
       "monte-carlo")
def c18_finite_m(quick: bool) -> Outcome:
    st = _finite_m_study(quick)
    a = asy.limit_A(st["d"], st["tau"])
    agree, below, mono, delta, notes = True, True, True, 0.0, []
    prev = {}
    for m, row in st["rows"].items():
        for k in ("infonce", "simclr", "dcl", "dhel"):
            r = row[k]
            se = math.hypot(r["full_se"], r["red_se"])
            if abs(r["full_mean"] - r["red_mean"]) > 3 * se:  # 3 standard errors (§10 C18)
                agree = False
                notes.append(f"M={m} {k}: full {r['full_mean']:.5f} vs reduction {r['red_mean']:.5f}")
            if k != "dhel2":
                delta = max(delta, abs(r["red_mean"] - r["delta"]) - 3 * r["red_se"])
            if k in ("dhel", "dcl"):
                below &= r["red_mean"] <= a + 3 * r["red_se"]
                if k in prev:
                    mono &= r["red_mean"] >= prev[k][0] - 3 * math.hypot(r["red_se"], prev[k][1])
                prev[k] = (r["red_mean"], r["red_se"])
    last = st["rows"][max(st["sizes"])]
    near = max(abs(last[k]["red_mean"] - a) for k in ("dhel", "dcl"))
    # delta method: 2e-3 beyond 3 SE (§10 C18); the aligned forms equal the library to 1e-10 (round-off)
    ok = agree and below and mono and delta <= 2e-3 and st["library_vs_aligned_form"] <= 1e-10
    if not quick:
        ok &= near <= 0.01
    measured = {m: {k: round(r[k]["red_mean"] - a, 6) for k in ("infonce", "simclr", "dhel")}
                for m, r in st["rows"].items()}
    return Outcome(expected=f"A(16, 0.5) = {a:.6f}; agreement, sign, monotonicity, delta method",
                   measured={"mean - A by M": measured, "delta_excess": delta,
                             f"|DHEL - A| at M={max(st['sizes'])}": near},
                   tolerance="3 SE; delta method 2e-3; 0.01 at M = 256", passed=ok,
                   detail=f"{st['batches']} full batches and {st['reps']} reductions per M; library vs aligned form "
                   f"{st['library_vs_aligned_form']:.2g}; " + "; ".join(notes))


@check("DHEL-C19", PAPER, "DCL - log 2(M-1) = DHEL(paper) - log(M-1) on every aligned configuration (both DCL "
       "directions)", "derived", "[DER]", "numeric")
def c19_dcl_dhel(quick: bool) -> Outcome:
    worst = 0.0
    for seed in range(10 if quick else 40):
        rng = np.random.default_rng(seed)
        m, d, tau = int(rng.integers(2, 12)), int(rng.integers(2, 9)), float(rng.uniform(0.1, 2.0))
        z = _aligned(uniform_points(m, d, rng))
        h = dhel(m, tau).value(z) - math.log(m - 1)
        for sym in (False, True):
            worst = max(worst, abs(dcl(m, tau, sym).value(z) - math.log(2 * (m - 1)) - h))
    # 1e-12: float64 round-off of two log-sum-exp means of O(1/tau) terms
    return Outcome(expected=0.0, measured=worst, tolerance=1e-12, passed=worst <= 1e-12)


@check("DHEL-C20", PAPER, "KCL batch-size independence (T8): code form, gaussian t = 2, gamma = 16, d = 16, aligned "
       "uniform batches: every mean over >= 2000 batches is within 3 SE of -2 + 2 gamma e^{-2t} 0F1(; d/2; t^2) "
       "for M in {4, 16, 64, 256}, with no significant slope in log M", "paper-abstract", "[ABS; RECON; DER]",
       "monte-carlo")
def c20_kcl_flat(quick: bool) -> Outcome:
    d, t, gamma = 16, 2.0, 16.0
    expected = asy.kcl_expected_loss(d, "gaussian", t, gamma, "code")
    sizes = (4, 16, 64) if quick else (4, 16, 64, 256)
    batches = 500 if quick else 2000
    rng = np.random.default_rng(20)
    rows, ok, lib_err = [], True, 0.0
    for m in sizes:
        u = _uniform_batches(batches, m, d, rng)
        vals = -2.0 + 2.0 * gamma * _batched_gaussian_pair_means(u, t)   # §3.1 KCL code form at V = U
        for b in range(2):  # the aligned form equals the library loss on the same batches
            lib_err = max(lib_err, abs(kcl(m, "gaussian", t, gamma).value(_aligned(u[b])) - vals[b]))
        mean, se = float(vals.mean()), float(vals.std(ddof=1) / math.sqrt(batches))
        rows.append({"M": m, "mean": mean, "se": se, "z": (mean - expected) / se})
        ok &= abs(mean - expected) <= 3 * se  # 3 standard errors (§10 C20)
    x = np.log([r["M"] for r in rows])
    y = np.array([r["mean"] for r in rows])
    w = 1.0 / np.array([r["se"] for r in rows]) ** 2
    xm = np.sum(w * x) / w.sum()
    slope = float(np.sum(w * (x - xm) * (y - np.sum(w * y) / w.sum())) / np.sum(w * (x - xm) ** 2))
    slope_se = float(1.0 / math.sqrt(np.sum(w * (x - xm) ** 2)))
    ok &= abs(slope) <= 3 * slope_se and lib_err <= 1e-10  # slope not significant at 3 SE
    return Outcome(expected=expected, measured={"means": [r["mean"] for r in rows], "slope_logM": slope,
                   "slope_se": slope_se}, tolerance="3 SE per M; slope within 3 SE of 0", passed=ok,
                   detail=f"{batches} batches per M; library vs aligned form {lib_err:.2g}; "
                   + _fmt(rows, ("M", "mean", "se", "z")))


@check("DHEL-C21", PAPER, "DHEL code-form limit (T7): E[L] - 2 log(M-1) = A_code(d, tau) - v/((M-1) m^2) "
       "(twice the DHEL delta-method bias), approaching A_code from below (d = 16, tau = 0.5)", "derived", "[DER]",
       "monte-carlo")
def c21_dhel_code_limit(quick: bool) -> Outcome:
    st = _finite_m_study(quick)
    a_code = asy.limit_A_code(st["d"], st["tau"])
    rows, ok = [], True
    for m, row in st["rows"].items():
        r = row["dhel2"]
        se = math.hypot(r["full_se"], r["red_se"])
        dev = abs(r["red_mean"] - r["delta"])
        rows.append({"M": m, "mean-A_code": r["red_mean"] - a_code, "delta-A_code": r["delta"] - a_code, "dev": dev,
                     "full-red": r["full_mean"] - r["red_mean"]})
        # 3 SE + 2e-3 (§10 C21); below the limit within 3 SE
        ok &= dev <= 3 * r["red_se"] + 2e-3 and r["red_mean"] <= a_code + 3 * r["red_se"]
        ok &= abs(r["full_mean"] - r["red_mean"]) <= 3 * se
    return Outcome(expected=f"A_code(16, 0.5) = {a_code:.6f} minus v/((M-1) m^2)", measured=rows,
                   tolerance="3 SE + 2e-3", passed=ok, detail=_fmt(rows, ("M", "mean-A_code", "delta-A_code", "dev")))


# ==============================================================================================
# C22-C29: T9, the similarity law and the metrics
# ==============================================================================================
@check("DHEL-C22", PAPER, "Gegenbauer coefficients (T9) of e^{kappa s} and of psi(2 - 2s) for imq, log and riesz "
       "(s = -1, -1.5) are positive for n = 1..20; the Gaussian ones match the Bessel formula",
       "literature", "[LIT]", "numeric")
def c22_gegenbauer(quick: bool) -> Outcome:
    ns = range(1, 21, 3) if quick else range(1, 21)
    dims = (3, 8) if quick else (3, 8, 16)
    worst_rel, min_coef, neg = 0.0, math.inf, []
    for d in dims:
        for t in (0.5, 2.0):
            for n in ns:
                quadv = asy.gegenbauer_coefficient(n, d, "gaussian", t)
                closed = math.exp(-2 * t) * asy.gegenbauer_coefficient_gaussian(n, 2 * t, d)
                worst_rel = max(worst_rel, abs(quadv - closed) / closed)
        for kernel, p in (("imq", 1.0), ("log", 1.0), ("riesz", -1.0), ("riesz", -1.5)):
            for n in ns:
                c = asy.gegenbauer_coefficient(n, d, kernel, p)
                min_coef = min(min_coef, c)
                if not c > 0:
                    neg.append((kernel, p, d, n, c))
    # 1e-8 rel (§10 C22): Gauss-Jacobi on a positive smooth integrand is accurate to ~1e-14
    ok = worst_rel <= 1e-8 and not neg
    return Outcome(expected="all > 0; Gaussian = Bessel formula", measured={"gaussian_rel": worst_rel,
                   "smallest_coefficient": min_coef}, tolerance="1e-8 rel", passed=ok,
                   detail=f"d in {dims}; Rodrigues form: the integrand f^(n) (1-s^2)^(n+lam-1/2) is positive for "
                   "completely monotone psi", counterexample=neg or None)


def _law_integral(d: int, power: int, upper: float) -> float:
    """int_{-1}^{sin(upper)} s^power p_d(s) ds by the substitution s = sin(theta), which turns the endpoint
    singularity (1 - s^2)^{(d-3)/2} into the smooth cos^{d-2}(theta) (quadrature route of C23)."""
    def integrand(th: float) -> float:
        return math.sin(th) ** power * float(asy.similarity_pdf(math.sin(th), d)) * math.cos(th)

    return quad(integrand, -math.pi / 2, upper, limit=200, epsabs=1e-14, epsrel=1e-13)[0]


@check("DHEL-C23", PAPER, "Similarity law p_d: mass 1, mean 0, variance 1/d (quadrature); CDF = incomplete beta; "
       "the Beta sampler passes a KS test; the authors' density with parameter k is p_{k+1}; the theory and "
       "solver implementations of p_d agree", "derived", "[DER; CODE]", "numeric")
def c23_law(quick: bool) -> Outcome:
    worst_q, worst_cdf, pvals, parity = 0.0, 0.0, {}, 0.0
    for d in (2, 3, 16, 128):
        for power, target in ((0, 1.0), (1, 0.0), (2, 1.0 / d)):
            worst_q = max(worst_q, abs(_law_integral(d, power, math.pi / 2) - target))
        for x in (-0.7, -0.1, 0.0, 0.3, 0.9):
            worst_cdf = max(worst_cdf, abs(_law_integral(d, 0, math.asin(x)) - float(asy.similarity_cdf(x, d))))
        xs = law_sample(5000 if quick else 20000, d, np.random.default_rng(d))
        pvals[d] = float(stats.kstest(xs, lambda s, d=d: asy.similarity_cdf(s, d)).pvalue)
        grid = np.linspace(-0.999, 0.999, 201)
        parity = max(parity, float(np.max(np.abs(asy.similarity_pdf(grid, d) - law_pdf(grid, d)))))
    k = 127
    grid = np.linspace(-0.99, 0.99, 401)
    authors = (math.exp(math.lgamma((k + 1) / 2) - math.lgamma(k / 2)) / math.sqrt(math.pi)
               * (1 - grid**2) ** ((k - 2) / 2))
    authors_err = float(np.max(np.abs(authors - asy.similarity_pdf(grid, k + 1))))
    # 1e-10 (Q), KS p > 0.01, 1e-12 parity (§10 C23)
    ok = worst_q <= 1e-10 and worst_cdf <= 1e-10 and min(pvals.values()) > 0.01 and authors_err <= 1e-12
    ok &= parity <= 1e-12
    return Outcome(expected="law identities", measured={"quadrature": worst_q, "cdf": worst_cdf, "ks_p": pvals,
                   "authors_k127": authors_err, "theory_vs_solvers": parity},
                   tolerance="1e-10 (Q); KS p > 0.01; 1e-12 (parity)", passed=ok)


def _subsphere_points(n: int, k: int, d: int, seed: int) -> np.ndarray:
    """n uniform points of the great subsphere S^{k-1} in the first k coordinates of R^d (§6)."""
    x = np.zeros((n, d))
    x[:, :k] = uniform_points(n, k, np.random.default_rng([seed, k]))
    return x


@check("DHEL-C24", PAPER, "Exact W1unif equals the sampled (scipy) estimate with 2e6 reference samples "
       "(d in {3, 16, 128}); for n = 2000 points on a k-subsphere of R^128, W1unif ~ W1(p_k, p_d) and is "
       "monotone in k", "derived", "[DER]", "numeric")
def c24_w1(quick: bool) -> Outcome:
    n_ref = 200_000 if quick else 2_000_000
    n_pts = 400 if quick else 600
    diffs = {}
    for d in (3, 16, 128):
        z = uniform_points(n_pts, d, np.random.default_rng(d))
        sims = (z @ z.T)[np.triu_indices(n_pts, 1)]
        ref = law_sample(n_ref, d, np.random.default_rng(100 + d))
        diffs[d] = abs(w1_uniformity(z) - stats.wasserstein_distance(sims, ref))
    n = 800 if quick else 2000
    ks = (4, 16, 64, 128)
    rows = []
    for k in ks:
        emp = w1_uniformity(_subsphere_points(n, k, 128, 24), d=128)
        rows.append({"k": k, "W1unif": emp, "W1(p_k,p_d)": asy.w1_between_laws(k, 128) if k < 128 else 0.0})
    dev = max(abs(r["W1unif"] - r["W1(p_k,p_d)"]) for r in rows)
    mono = all(a["W1unif"] > b["W1unif"] for a, b in zip(rows, rows[1:], strict=False))
    # 1e-3: Monte Carlo error of the sampled estimate with 2e6 references (~1/sqrt(n_ref)); 0.005: finite-n
    # deviation of the empirical similarity law from p_k at n = 2000 (quick mode n = 800: 0.01)
    tol_w1 = 3e-3 if quick else 1e-3
    tol_col = 0.01 if quick else 0.005
    ok = max(diffs.values()) <= tol_w1 and dev <= tol_col and mono
    return Outcome(expected="exact ~ sampled; W1unif ~ W1(p_k, p_d), monotone", measured={"exact_vs_sampled": diffs,
                   "collapse_dev": dev}, tolerance=f"{tol_w1}; {tol_col}", passed=ok,
                   detail=_fmt(rows, ("k", "W1unif", "W1(p_k,p_d)")))


@check("DHEL-C25", PAPER, "The Gaussian approximation sqrt(2/pi)|k^-1/2 - d^-1/2| of W1(p_k, p_d) underestimates it: "
       "ratio approx/exact in [0.95, 1] for k >= 8, d = 128 (about 0.87 at k = 2); the exact formula equals "
       "the quadrature of |F_k - F_d|", "derived", "[DER]", "numeric")
def c25_gauss_approx(quick: bool) -> Outcome:
    d, rows, quad_err = 128, [], 0.0
    for k in (2, 4, 8, 16, 32, 64):
        exact = asy.w1_between_laws(k, d)
        q = sum(quad(lambda s, k=k: abs(float(asy.similarity_cdf(s, k)) - float(asy.similarity_cdf(s, d))),
                     a, b, limit=200)[0] for a, b in ((-1, 0), (0, 1)))
        quad_err = max(quad_err, abs(q - exact))
        rows.append({"k": k, "exact": exact, "ratio": asy.w1_gaussian_approx(k, d) / exact})
    ok = all(0.95 <= r["ratio"] <= 1.0 for r in rows if r["k"] >= 8) and quad_err <= 1e-9
    return Outcome(expected="ratio in [0.95, 1] for k >= 8", measured={r["k"]: r["ratio"] for r in rows},
                   tolerance="[0.95, 1]; quadrature 1e-9", passed=ok,
                   detail=f"exact vs quadrature {quad_err:.2g}; " + _fmt(rows, ("k", "exact", "ratio")))


@check("DHEL-C26", PAPER, "Wang-Isola references: exactly -2tM/(M-1) at a simplex; -2t + log 0F1(; d/2; t^2) at "
       "sigma_d (Monte Carlo, n = 2000); the large-d expansion -2t + 2t^2/d errs by at most 4t^4/d^3 (d >= 64); "
       "the limit is -4 at t = 2", "literature", "[LIT; DER]", "monte-carlo")
def c26_wang_isola(quick: bool) -> Outcome:
    t = 2.0
    simplex_err = max(abs(uniformity(regular_simplex(m, m + 1), t) - asy.uniformity_simplex(m, t))
                      for m in (2, 3, 5, 10))
    n, reps = (1000, 4) if quick else (2000, 6)
    mc = {}
    for d in (3, 16, 128):
        pair_means = []
        for r in range(reps):
            z = uniform_points(n, d, np.random.default_rng([26, d, r]))
            r2 = np.maximum(2 - 2 * (z @ z.T)[np.triu_indices(n, 1)], 0.0)
            pair_means.append(float(np.exp(-t * r2).mean()))
        # compare the pair mean, not its log (anchors.md §7.2: the log is biased by O(1/n))
        mean, se = float(np.mean(pair_means)), float(np.std(pair_means, ddof=1) / math.sqrt(reps))
        mc[d] = (mean - math.exp(asy.uniformity_uniform(d, t))) / se
    exp_err = {d: (abs(asy.uniformity_uniform(d, t) - asy.uniformity_large_d(d, t)), 4 * t**4 / d**3)
               for d in (64, 128, 256, 1024)}
    limit = asy.uniformity_uniform(10**6, t)
    ok = simplex_err <= 1e-12 and all(abs(z) <= 3 for z in mc.values())
    ok &= all(e <= b for e, b in exp_err.values()) and abs(limit + 4) <= 1e-5
    return Outcome(expected="simplex exact; MC within 3 SE; expansion bound; limit -4",
                   measured={"simplex": simplex_err, "mc_z": mc, "expansion": exp_err, "d=1e6": limit},
                   tolerance="1e-12; 3 SE; 4t^4/d^3", passed=ok,
                   detail=f"Monte Carlo: {reps} batches of n = {n} points; z = (mean pair kernel - exp(unif)) / SE")


@check("DHEL-C27", PAPER, "Saturation of Wang-Isola relative to W1 (t = 2, k = d/2): the ratio (W1 gap)/(Wang-Isola "
       "gap) increases with d in {32, 128, 512}, approaching sqrt(2/pi)(sqrt2 - 1) sqrt(d)/(2t^2)",
       "authors-code", "[CODE] (claim); [DER] (formula)", "numeric")
def c27_saturation(quick: bool) -> Outcome:
    rows = []
    for d in (32, 128, 512, 2048):
        s = asy.wang_isola_saturation(d, d // 2, 2.0)
        rows.append({"d": d, "ratio": s["ratio"], "asymptote": s["asymptote"],
                     "ratio/asym": s["ratio"] / s["asymptote"]})
    main = [r for r in rows if r["d"] <= 512]
    mono = all(a["ratio"] < b["ratio"] for a, b in zip(main, main[1:], strict=False))
    conv = [abs(1 - r["ratio/asym"]) for r in rows]
    ok = mono and all(a >= b for a, b in zip(conv, conv[1:], strict=False))
    return Outcome(expected="increasing; -> asymptote", measured={r["d"]: r["ratio"] for r in rows},
                   tolerance="monotone", passed=ok, detail=_fmt(rows, ("d", "ratio", "asymptote", "ratio/asym")))


@check("DHEL-C28", PAPER, "Effective rank (RankMe, uncentred, eps = 1e-7) and rank: simplex M - 1; cross-polytope d; "
       "k-subsphere (N = 1e4, d = 128) erank in [0.99k, k] and rank k; uniform N = 1e4, d = 128: erank in "
       "[0.99d, d]. The k-subsphere upper bound is refuted for k << d: RankMe's eps adds mass to the d - k zero "
       "singular values and lifts erank above k (eps = 0 restores the range)", "authors-code", "[CODE; DER]",
       "numeric")
def c28_erank(quick: bool) -> Outcome:
    simplex = max(abs(rankme(regular_simplex(m, m + 2)) - (m - 1)) for m in (3, 5, 10))
    cross = max(abs(rankme(cross_polytope(d)) - d) for d in (3, 8))
    n = 5000 if quick else 10_000
    rows = []
    for k in ((8, 128) if quick else (8, 32, 128)):
        z = _subsphere_points(n, k, 128, 28)
        rows.append({"k": k, "erank": rankme(z), "erank_eps0": rankme(z, eps=0.0), "rank": matrix_rank(z)})
    # 1e-3 (simplex: RankMe's eps = 1e-7 shifts it by < 1e-5) and 1e-6 (cross-polytope, flat spectrum)
    confirmed = simplex <= 1e-3 and cross <= 1e-6 and all(r["rank"] == r["k"] for r in rows)
    confirmed &= all(0.99 * r["k"] <= r["erank_eps0"] <= r["k"] for r in rows)
    uniform = rows[-1]["erank"]
    confirmed &= 0.99 * 128 <= uniform <= 128
    above = [r for r in rows if r["erank"] > r["k"]]
    # eps's effect: p_i -> (p_i + eps)/(1 + d eps) raises the entropy by at most d eps (1 + log(1/eps)), so
    # 0 <= erank(eps) - erank(0) <= erank(0) d eps (1 + log(1/eps)) (first order; ~1.75e-3 at k = 8)
    eps, d_amb = 1e-7, 128
    explained = all(0.0 <= r["erank"] - r["erank_eps0"] <= r["erank_eps0"] * d_amb * eps * (1 - math.log(eps))
                    for r in rows)
    ok = confirmed and explained
    return Outcome(expected="M-1; d; [0.99k, k]", measured={"simplex": simplex, "cross": cross,
                   "subsphere": {r["k"]: r["erank"] for r in rows}}, tolerance="1e-3; 1e-6; [0.99k, k]",
                   passed=ok, verdict="refuted" if above else "confirmed",
                   detail=f"N = {n}; " + _fmt(rows, ("k", "erank", "erank_eps0", "rank"))
                   + "; every other part confirmed", counterexample=above or None)


@check("DHEL-C29", PAPER, "Alignment metric: 0 at V = U and equal to 2 - 2 mean u.v for alpha = 2",
       "authors-code", "[CODE]", "numeric")
def c29_alignment(quick: bool) -> Outcome:
    u, v = random_sphere_points(20, 5, 1), random_sphere_points(20, 5, 2)
    err = max(alignment(u, u), abs(alignment(u, v) - (2 - 2 * float(np.mean(np.sum(u * v, 1))))))
    return Outcome(expected=0.0, measured=err, tolerance=1e-12, passed=err <= 1e-12)  # float64 round-off


# ==============================================================================================
# C30-C31 (soft) and A1 (asymptotic minimisation)
# ==============================================================================================
def robustness_grid(quick: bool, dim: int = 16) -> list[dict]:
    """Optimised-configuration metrics over the (M, tau) grid (F1's grid, reduced) for each loss."""
    sizes = (8, 32)
    taus = (0.1, 0.5) if quick else (0.1, 0.2, 0.5)
    ts = (0.5, 2.0) if quick else (0.5, 2.0, 8.0)
    rows = []
    for m in sizes:
        for i, tau in enumerate(taus):
            for name in ("infonce", "simclr", "dcl", "dhel"):
                r = batch_configuration_metrics(FAMILY[name][0](m, tau), m, dim, seed=m, max_iter=300)
                rows.append({"loss": name, "M": m, "param": tau, **r})
            if i < len(ts):
                r = batch_configuration_metrics(kcl(m, "gaussian", ts[i], 16.0), m, dim, seed=m, max_iter=300)
                rows.append({"loss": "kcl", "M": m, "param": ts[i], **r})
    return rows


@check("DHEL-C30", PAPER, "Robustness (F1, soft, not gating): across the (M, tau) grid the spread of erank and "
       "W1unif of the optimised configuration is smaller for DHEL/KCL than for InfoNCE/SimCLR (measured on "
       "configurations optimised directly, d = 16)", "paper-abstract", "[ABS] (claim); toolkit protocol",
       "numeric")
def c30_robustness(quick: bool) -> Outcome:
    rows = robustness_grid(quick)
    spread = {}
    for name in ("infonce", "simclr", "dcl", "dhel", "kcl"):
        sub = [r for r in rows if r["loss"] == name]
        spread[name] = {"erank": max(r["erank"] for r in sub) - min(r["erank"] for r in sub),
                        "w1": max(r["w1"] for r in sub) - min(r["w1"] for r in sub)}
    claim = all(spread[a]["w1"] <= min(spread["infonce"]["w1"], spread["simclr"]["w1"]) for a in ("dhel", "kcl"))
    w1s = [v["w1"] for v in spread.values()]
    rel = (max(w1s) - min(w1s)) / max(w1s)
    return Outcome(expected="DHEL/KCL spread <= InfoNCE/SimCLR spread (reported only)", measured=spread,
                   tolerance="soft", passed=True, verdict="confirmed" if claim else "refuted",
                   detail=f"soft check on optimised configurations, not trained encoders: the W1 spreads of the five "
                   f"losses differ by {rel:.2g} (relative), i.e. at their optima the losses give the same geometry "
                   "(simplex for M <= d + 1, near-uniform beyond), so this protocol cannot show a robustness "
                   "difference; the paper's claim concerns training dynamics. " + _fmt(
                       rows, ("loss", "M", "param", "erank", "w1", "min_uv"), limit=60))


@check("DHEL-C31", PAPER, "Less dimensionality collapse (F2, soft, not gating): at M = 64 (quick: 32; spec: 128) "
       "the erank of the optimised DHEL/KCL configuration is >= SimCLR's at most d in {8, 16, 32}", "paper-abstract",
       "[ABS] (claim); toolkit protocol", "numeric")
def c31_erank_dim(quick: bool) -> Outcome:
    m = 32 if quick else 64
    rows = []
    for d in ((4, 8) if quick else (8, 16, 32)):
        for name, loss in (("simclr", simclr(m, 0.2)), ("dhel", dhel(m, 0.2)), ("kcl", kcl(m, "gaussian", 2.0, 16.0))):
            r = batch_configuration_metrics(loss, m, d, seed=d, max_iter=200)
            rows.append({"loss": name, "d": d, "erank": r["erank"]})
    by = {(r["loss"], r["d"]): r["erank"] for r in rows}
    ds = sorted({r["d"] for r in rows})
    wins = sum(by[("dhel", d)] >= by[("simclr", d)] - 1e-6 and by[("kcl", d)] >= by[("simclr", d)] - 1e-6 for d in ds)
    return Outcome(expected="DHEL/KCL erank >= SimCLR at most d (reported only)", measured=by, tolerance="soft",
                   passed=True, verdict="confirmed" if wins > len(ds) / 2 else "refuted",
                   detail=f"tau = 0.2, KCL t = 2, gamma = 16; held at {wins}/{len(ds)} dimensions; "
                   + _fmt(rows, ("loss", "d", "erank")))


@check("DHEL-A1", PAPER, "Minimising the asymptotic objectives directly over N points (uniformity t = 2, KCL energy "
       "t = 1 gamma = 16, DHEL energy tau = 0.5; d = 3): the value approaches the closed-form asymptote as "
       "N^-1, above the diagonal-exclusion bound log(I - (1 - I)/(N-1)); W1unif (N-1) -> 1; erank -> d",
       "derived", "[DER] (T6, T8, T9; toolkit's diagonal-exclusion law)", "numeric")
def a1_asymptotic(quick: bool) -> Outcome:
    d = 3
    ns = (50, 100) if quick else (50, 100, 200)
    jobs = [("uniformity", {"t": 2.0}), ("dhel", {"tau": 0.5})]
    if not quick:
        jobs.insert(1, ("kcl", {"t": 1.0, "gamma": 16.0}))
    rows, ok, rates = [], True, {}
    for kind, kw in jobs:
        pred = {n: asy.finite_n_minimum(kind, n, d, **kw) for n in ns}
        asym = pred[ns[0]]["asymptote"]
        study = convergence_study(kind, ns, d, asymptote=asym, max_iter=60, **kw)
        pred_rate = fit_rate(list(ns), [abs(pred[n]["predicted"] - asym) for n in ns])["exponent"]
        rates[kind] = {"value_gap": round(study["rates"]["value_gap"]["exponent"], 4), "predicted": round(pred_rate, 4),
                       "w1": round(study["rates"]["w1"]["exponent"], 4)}
        for r in study["rows"]:
            p = pred[r["n"]]
            row = {"kind": kind, "N": r["n"], "(N-1)gap": r["gap"] * (r["n"] - 1),
                   "(N-1)pred": (p["predicted"] - asym) * (r["n"] - 1), "above_pred": r["value"] - p["predicted"],
                   "(N-1)W1": r["w1"] * (r["n"] - 1), "d-erank": r["erank_gap"], "d-erank_start": r["erank_gap_start"]}
            rows.append(row)
            # uniformity/kcl: the prediction is a rigorous lower bound (-1e-12: round-off slack); the measured
            # 1/N coefficient within 2% of the predicted one (the minimiser's full-kernel mean exceeds I by
            # o(1/N): 0.04% at N = 400); d - erank <= 1e-6 (60 L-BFGS iterations leave the second moment
            # off (N/d) I by ~1e-4; random starts: ~1e-2)
            if p["lower_bound"]:
                ok &= row["above_pred"] >= -1e-12
            ok &= abs(row["(N-1)gap"] / row["(N-1)pred"] - 1) <= 0.02 and row["d-erank"] <= 1e-6
        last = rows[-1]
        # W1 (N-1) -> 1: within 5% at the largest N (the full law matches p_d in its low-degree moments only);
        # the fitted exponents of the value gap agree with the predicted curve's to 0.02
        ok &= abs(last["(N-1)W1"] - 1) <= 0.05 and rates[kind]["w1"] <= -0.9
        ok &= abs(rates[kind]["value_gap"] - pred_rate) <= 0.02
    return Outcome(expected="gap = predicted 1/(N-1) law (rate ~ N^-1); (N-1) W1 -> 1; erank -> d",
                   measured=rates, tolerance="2% (1/N coefficient); 0.02 (exponent); 5% (W1); 1e-6 (erank)",
                   passed=ok, detail=_fmt(rows, ("kind", "N", "(N-1)gap", "(N-1)pred", "above_pred", "(N-1)W1",
                                                 "d-erank", "d-erank_start")))
