"""Checks of prototypes.md: Graf's and Kini's SupCon geometry, batch-binding, and Gill et al.'s
prototype-engineered SupCon (SCL+P) with its n_w -> infinity limit.

Spec: ``shared/spec/prototypes.md`` §4 (C1-C13) and §6 (the check table).  Theory:
:mod:`theory.prototypes` (closed forms, sympy proofs, limit series, predicates); numerics:
:mod:`solvers.minibatch` (SupCon / SCL+P on batch families, the limit objectives) and
:mod:`solvers.minibatch_experiments` (multi-start sphere solver, geometry metrics, per-class limit
solver).  Every check keeps the spec's provenance tag in ``spec_tag``; the registry provenance maps
[REC+DER]/[REC] -> reconstruction, [DER] -> derived, [ABS] -> paper-abstract.

Solver accuracy (used by the tolerances below): a converged local solve has Riemannian gradient
<= 1e-10 max(1, |grad_E|) (§3.2 asks gtol 1e-12 on the gradient; values are quadratic in the
position error, so a loss equals its minimum to ~1e-15 relative and cosines to ~1e-8).  At tau = 0.1
the imbalanced SCL+P problems are extremely flat (§5.5): there the solver stops at gradient
~1e-8 and the reported geometry is accurate to ~1e-4 (checked by re-solving from 6 more seeds in
development: Delta_ETF agreed to 5 digits).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import sympy as sp

from solvers.configurations import etf_prototypes, random_sphere_points
from solvers.losses import ce_fixed
from solvers.metrics import gram_distance
from solvers.minibatch import (
    all_subsets,
    batched_loss,
    bind_batches,
    prototype_limit_loss,
    random_partitions,
    stratified_batches,
)
from solvers.minibatch_experiments import (
    SettingResult,
    labels_from_sizes,
    limit_gram,
    limit_minimiser,
    multistart,
    prototype_matrix,
    solve_setting,
)
from solvers.sphere_solver import SphereProblem
from theory import prototypes as tp

from .registry import Outcome, Skip, check

PAPER = "prototypes"
IMBALANCED = (10, 10, 2, 2)
BALANCED = (5, 5, 5, 5)


# ----------------------------------------------------------------------------------------------
# shared runs (cached: C2's run is C6's n_w = 0 point, and so on)
# ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _run(sizes: tuple[int, ...], dim: int, tau: float, prototypes: str | None = None, copies: int = 0,
         anchors: bool = False, nonnegative: bool = False, batches: str | None = None, restarts: int = 3,
         seed: int = 0, collapsed: bool = False, max_iter: int = 20000, polish_steps: int = 30) -> SettingResult:
    return solve_setting(list(sizes), dim, tau, prototypes=prototypes if copies else None, copies=copies,
                         anchors=anchors, nonnegative=nonnegative, batches=batches, restarts=restarts, seed=seed,
                         collapsed=collapsed, max_iter=max_iter, polish_steps=polish_steps)


def _g(r: SettingResult, key: str) -> float:
    return float(r.geometry[key])


def _conv(anchors: bool) -> str:
    return "P-anchor" if anchors else "P-passive"


def _round(x: Any, digits: int = 6) -> Any:
    if isinstance(x, float):
        return float(f"{x:.{digits}g}")
    if isinstance(x, dict):
        return {k: _round(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v, digits) for v in x]
    return x


# ----------------------------------------------------------------------------------------------
# T1 (Graf)
# ----------------------------------------------------------------------------------------------
@check("PROTO-C1a", PAPER, "Graf (T1): the balanced full-batch SupCon minimum (K = 4, n = 5, d = 8, tau = 0.1, sum "
       "over anchors) is N log(n - 1 + (N - n) e^{-K/((K-1) tau)}) = 20 log(4 + 15 e^{-40/3}), attained at "
       "class collapse onto a regular simplex", "reconstruction", "[REC+DER]", "numeric")
def c1a_graf_minimum(quick: bool) -> Outcome:
    expected = tp.graf_full_batch_minimum(4, 5, 0.1)
    r = _run(BALANCED, 8, 0.1, restarts=2 if quick else 4)
    err = abs(r.value - expected)
    geo_ok = _g(r, "delta_etf") < 1e-5 and _g(r, "nc1") < 1e-10 and abs(_g(r, "mean_norm_min") - 1) < 1e-8
    # abs 1e-9 (spec table): the converged value is accurate to ~1e-14 (quadratic in the position error)
    return Outcome(expected=expected, measured=r.value, tolerance="abs 1e-9", passed=err <= 1e-9 and geo_ok,
                   detail=f"|error| = {err:.2e}; Delta_ETF = {_g(r, 'delta_etf'):.2e}, NC1 = {_g(r, 'nc1'):.2e}, "
                   f"min ||mu_c|| = {_g(r, 'mean_norm_min'):.12f}; {r.hits}/{r.restarts} restarts hit the best value")


@check("PROTO-C1b", PAPER, "Graf (T1) geometry: for K <= d + 1 classes and any n, balanced full-batch SupCon "
       "minimisers collapse (NC1 < 1e-10, ||mu_c|| = 1) onto a regular simplex (cos(mu_c, mu_c') = -1/(K-1), "
       "Delta_ETF < 1e-5) and reach Graf's minimum", "reconstruction", "[REC+DER]", "numeric")
def c1b_graf_geometry(quick: bool) -> Outcome:
    dims = (4,) if quick else (4, 6)
    ns = (2,) if quick else (2, 3)
    taus = (0.5,) if quick else (0.1, 0.5)
    rows, bad = [], []
    for d, k in [(dim, k) for dim in dims for k in range(2, dim + 2)]:
        for n in ns:
            for tau in taus:
                r = _run((n,) * k, d, tau, restarts=2)
                cos = np.array(r.geometry["cosines"])
                row = {"d": d, "K": k, "n": n, "tau": tau, "cos_err": float(np.max(np.abs(cos + 1 / (k - 1)))),
                       "nc1": _g(r, "nc1"), "delta_etf": _g(r, "delta_etf"),
                       "norm_err": abs(_g(r, "mean_norm_min") - 1),
                       "value_err": abs(r.value - tp.graf_full_batch_minimum(k, n, tau))}
                rows.append(row)
                # 1e-4 on cosines (spec), NC1 1e-10, Delta 1e-5 (spec); norms and values: solver precision
                if not (row["cos_err"] < 1e-4 and row["nc1"] < 1e-10 and row["delta_etf"] < 1e-5
                        and row["norm_err"] < 1e-8 and row["value_err"] < 1e-9 * max(1.0, r.value)):
                    bad.append(row)
    worst = {key: max(r[key] for r in rows) for key in ("cos_err", "nc1", "delta_etf", "norm_err", "value_err")}
    return Outcome(expected="cos = -1/(K-1) (1e-4), NC1 < 1e-10, Delta_ETF < 1e-5, ||mu|| = 1, value = Graf",
                   measured=_round(worst), tolerance="1e-4 cos; 1e-10 NC1; 1e-5 Delta; 1e-8 norm; 1e-9 rel value",
                   passed=not bad, detail=f"d in {dims}, K = 2..d + 1, n in {ns}, tau in {taus}: {len(rows)} solves",
                   counterexample=bad or None)


@check("PROTO-C1c", PAPER, "Graf's per-anchor bound as a symbolic inequality chain (lse shift, Jensen per block, the "
       "budget |sum z|^2 >= 0, convexity of log(a + b e^x)); its equality case gives the closed form",
       "reconstruction", "[REC]", "symbolic")
def c1c_graf_symbolic(quick: bool) -> Outcome:
    steps = tp.graf_proof()
    failed = [s.as_dict() for s in steps if not s.holds]
    return Outcome(expected="every step holds (residual 0)", measured={s.name: s.residual for s in steps},
                   tolerance="exact", passed=not failed, detail="; ".join(f"{s.name}: {s.statement}" for s in steps),
                   counterexample=failed or None)


@check("PROTO-C1d", PAPER, "Graf (T1), any batch size: summed over all b-subsets of a balanced data set the SupCon "
       "minimum equals Graf's combinatorial bound (also = the loss at the simplex); under imbalance the simplex value "
       "is not a lower bound (the unconstrained minimum lies below it)", "reconstruction", "[REC+DER]", "numeric")
def c1d_graf_all_batches(quick: bool) -> Outcome:
    k, n, b, tau, d = 3, 2, 4, 0.5, 4
    labels = labels_from_sizes([n] * k)
    fam = all_subsets(labels.size, b)
    bound = tp.graf_all_batches_minimum(k, n, b, tau)
    enumerated = tp.simplex_value(fam, labels, tau)
    res = multistart(SphereProblem(batched_loss(labels, fam, tau), d), 2 if quick else 4, 0)
    # 1e-9 relative: converged value (quadratic in position error) and float64 sums of 15 batches
    ok = abs(res.fun - bound) <= 1e-9 * bound and abs(enumerated - bound) <= 1e-12 * bound
    imb = _run(IMBALANCED, 8, 0.1)
    simplex = tp.simplex_value([np.arange(24)], labels_from_sizes(IMBALANCED), 0.1)
    below = simplex - imb.value
    applies = tp.graf_bound_applies([np.arange(24)], labels_from_sizes(IMBALANCED))
    ok = ok and below > 1e-7 and not applies  # 1e-7: 100x the solver's value accuracy at this size
    return Outcome(expected={"all-subsets minimum": bound, "imbalanced: simplex value - minimum": "> 0"},
                   measured={"all-subsets minimum": res.fun, "enumerated simplex value": enumerated,
                             "imbalanced: simplex value - minimum": below},
                   tolerance="1e-9 rel; > 1e-7", passed=ok,
                   detail=f"K = {k}, n = {n}, b = {b} ({len(fam)} batches), tau = {tau}, d = {d}; "
                   f"imbalanced n = {list(IMBALANCED)}, tau = 0.1: simplex value {simplex:.10f} > minimum "
                   f"{imb.value:.10f}, so Graf's bound does not extend to imbalance (§5.8); graf_bound_applies = "
                   f"{applies}")


# ----------------------------------------------------------------------------------------------
# T2, T3 (Kini)
# ----------------------------------------------------------------------------------------------
@check("PROTO-C2", PAPER, "Without a sign constraint imbalance breaks the ETF (n = [10, 10, 2, 2], tau = 0.1, d = 8): "
       "collapse (NC1 < 1e-10) but Delta_ETF > 1e-2 and the minority-minority cosine exceeds every other pair's",
       "derived", "[DER]", "numeric")
def c2_imbalance(quick: bool) -> Outcome:
    seeds = (0,) if quick else (0, 1, 2)
    rows, bad = [], []
    for seed in seeds:
        r = _run(IMBALANCED, 8, 0.1, seed=seed)
        cos = np.array(r.geometry["cosines"])  # pairs (0,1), (0,2), (0,3), (1,2), (1,3), (2,3)
        row = {"seed": seed, "nc1": _g(r, "nc1"), "delta_etf": _g(r, "delta_etf"), "cosines": cos.round(6).tolist(),
               "minority_margin": float(cos[-1] - cos[:-1].max())}
        rows.append(row)
        if not (row["nc1"] < 1e-10 and row["delta_etf"] > 1e-2 and row["minority_margin"] > 0):
            bad.append(row)
    return Outcome(expected="NC1 < 1e-10; Delta_ETF > 1e-2; cos(mu_3, mu_4) > all others",
                   measured={"delta_etf": rows[0]["delta_etf"], "cosines": rows[0]["cosines"]},
                   tolerance="strict inequalities", passed=not bad,
                   detail=f"seeds {list(seeds)}: " + "; ".join(
                       f"Delta_ETF {x['delta_etf']:.6f}, NC1 {x['nc1']:.1e}, minority margin {x['minority_margin']:.4f}"
                       for x in rows) + " (-1/(K-1) = -0.3333; the reference values of the spec's independent test set "
                   "were not available here)", counterexample=bad or None)


@check("PROTO-C3", PAPER, "Kini (T2): UFM+ full batch reaches sum_i log(n_{y_i} - 1 + (N - n_{y_i}) e^{-1/tau}) "
       "with an exact orthogonal frame (Delta_OF < 1e-8), for balanced and imbalanced class sizes", "reconstruction",
       "[REC+DER]", "numeric")
def c3_kini_full(quick: bool) -> Outcome:
    cases = [IMBALANCED] if quick else [IMBALANCED, BALANCED, (7, 3, 2)]
    rows, bad = [], []
    for sizes in cases:
        r = _run(sizes, 8, 0.1, nonnegative=True, restarts=2)
        expected = tp.kini_minimum(None, labels_from_sizes(sizes), 0.1)
        row = {"sizes": list(sizes), "value_err": abs(r.value - expected), "delta_of": _g(r, "delta_of"),
               "expected": expected}
        rows.append(row)
        # abs 1e-9 (spec); Delta_OF 1e-8 (spec)
        if not (row["value_err"] <= 1e-9 and row["delta_of"] < 1e-8):
            bad.append(row)
    return Outcome(expected={str(x["sizes"]): x["expected"] for x in rows},
                   measured={str(x["sizes"]): {"value_err": x["value_err"], "delta_of": x["delta_of"]} for x in rows},
                   tolerance="abs 1e-9 on loss; Delta_OF < 1e-8", passed=not bad, counterexample=bad or None,
                   detail="UFM+ (z = u*u/|u*u|), tau = 0.1, d = 8, sum over anchors")


@check("PROTO-C3s", PAPER, "Kini's per-anchor bound l_i >= log(|P| + |N| e^{-1/tau}) under non-negativity (Jensen "
       "proof), with equality iff positives equal h_i and negatives are orthogonal", "derived", "[DER]", "symbolic")
def c3s_kini_symbolic(quick: bool) -> Outcome:
    steps = tp.kini_proof()
    failed = [s.as_dict() for s in steps if not s.holds]
    return Outcome(expected="every step holds (residual 0)", measured={s.name: s.residual for s in steps},
                   tolerance="exact", passed=not failed, detail="; ".join(f"{s.name}: {s.statement}" for s in steps),
                   counterexample=failed or None)


def _c4_families() -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    labels = labels_from_sizes([4, 4, 4])
    unbound = stratified_batches(labels, 2)
    return labels, unbound, bind_batches(unbound, labels)


def _c4_runs(quick: bool) -> dict[str, list[SettingResult]]:
    labels, unbound, bound = _c4_families()
    seeds = range(4 if quick else 6)
    out = {}
    for name, fam in (("unbound", unbound), ("bound", bound)):
        out[name] = [solve_setting([4, 4, 4], 6, 0.1, nonnegative=True, batches=[b.tolist() for b in fam],
                                   restarts=1, seed=s) for s in seeds]
    return out


@functools.lru_cache(maxsize=2)
def _c4_cached(quick: bool) -> dict[str, list[SettingResult]]:
    return _c4_runs(quick)


@check("PROTO-C4a", PAPER, "Kini (T3): the UFM+ mini-batch minimum equals sum_B sum_i log(n_{B,y_i} - 1 + (|B| - "
       "n_{B,y_i}) e^{-1/tau}) for the unbound and the bound batch family (K = 3, 4 per class, d = 6, tau = 0.1)",
       "reconstruction", "[REC+DER]", "numeric")
def c4a_minibatch_minimum(quick: bool) -> Outcome:
    labels, unbound, bound = _c4_families()
    runs = _c4_cached(quick)
    expected = {"unbound": tp.kini_minimum(unbound, labels, 0.1), "bound": tp.kini_minimum(bound, labels, 0.1)}
    errs = {k: max(abs(r.value - expected[k]) for r in v) for k, v in runs.items()}
    # abs 1e-8 (spec table)
    return Outcome(expected=expected, measured=errs, tolerance="abs 1e-8 (every seed)",
                   passed=all(e <= 1e-8 for e in errs.values()),
                   detail=f"unbound {[b.tolist() for b in unbound]}; bound {[b.tolist() for b in bound]}; "
                   f"{len(runs['bound'])} seeds each")


@check("PROTO-C4b", PAPER, "Kini (T3): without batch-binding the UFM+ geometry is not unique: over >= 4 seeds "
       "Delta_OF, ||mu_c|| and NC1 vary, Delta_OF > 1e-2 for some seed, ||mu_c|| < 1 and NC1 > 0", "reconstruction",
       "[REC+DER]", "numeric")
def c4b_nonunique(quick: bool) -> Outcome:
    runs = _c4_cached(quick)["unbound"]
    d_of = [_g(r, "delta_of") for r in runs]
    norms = [_g(r, "mean_norm_min") for r in runs]
    nc = [_g(r, "nc1") for r in runs]
    # "varying": spread of Delta_OF across seeds above the solver precision (1e-6) by far
    ok = max(d_of) > 1e-2 and min(norms) < 1 - 1e-3 and max(nc) > 1e-3 and (max(d_of) - min(d_of)) > 1e-3
    return Outcome(expected="Delta_OF > 1e-2 (some seed), varying; ||mu_c|| < 1; NC1 > 0",
                   measured={"delta_of": _round(d_of, 4), "min_norm": _round(norms, 4), "nc1": _round(nc, 3)},
                   tolerance="Delta_OF > 1e-2 for >= 1 seed; spread > 1e-3", passed=ok,
                   detail="per seed; the class-c examples {0, 1} and {2, 3} never share a batch, so each pair "
                   "sits on its own non-negative direction at no cost (T3 (a) fails)")


@check("PROTO-C4c", PAPER, "Kini (T3): with batch-binding (example 0 of every class added to every batch) every seed "
       "gives the orthogonal frame: Delta_OF < 1e-8 and ||mu_c|| = 1", "reconstruction", "[REC+DER]", "numeric")
def c4c_unique(quick: bool) -> Outcome:
    runs = _c4_cached(quick)["bound"]
    d_of = [_g(r, "delta_of") for r in runs]
    norm_err = [abs(_g(r, "mean_norm_min") - 1) for r in runs]
    return Outcome(expected="Delta_OF < 1e-8, ||mu_c|| = 1 for every seed", measured={"delta_of": d_of},
                   tolerance="1e-8", passed=max(d_of) < 1e-8 and max(norm_err) < 1e-8,
                   detail=f"{len(runs)} seeds; max | ||mu_c|| - 1 | = {max(norm_err):.1e}")


@check("PROTO-C4d", PAPER, "Kini's uniqueness condition as a predicate on a batching: true iff (a) every within-class "
       "co-occurrence graph is connected and (b) every class pair is related (shares a batch where one of them has a "
       "positive)", "reconstruction", "[REC]", "numeric")
def c4d_predicate(quick: bool) -> Outcome:
    labels, unbound, bound = _c4_families()
    lab6 = labels_from_sizes([2, 2, 2])
    # expected answers read off the definitions by hand (not from the code under test)
    cases = [
        ("C4 unbound", unbound, labels, False, "(a) fails: {0,1} and {2,3} of each class never meet"),
        ("C4 bound", bound, labels, True, "example 0 joins both halves; all pairs co-occur with positives"),
        ("full batch", [np.arange(12)], labels, True, "one batch holds everything"),
        ("pairs only", [[0, 1, 2, 3], [2, 3, 4, 5], [0, 1, 4, 5]], lab6, True, "each class pair meets once"),
        ("singletons", [[0, 2], [1, 3], [0, 1, 2, 3], [4, 5]], lab6, False,
         "(b) fails for (0, 2) and (1, 2): class 2 only meets itself"),
        ("no positive", [[0, 2, 4], [1, 3, 5], [0, 1], [2, 3], [4, 5]], lab6, False,
         "(b): pairs share batches only with one member of each class (no positive)"),
        ("bound random", bind_batches(random_partitions(12, 3, 2, seed=1), labels), labels, True,
         "binding makes every class graph a star and relates all pairs"),
    ]
    rows, bad = [], []
    for name, fam, lab, expected, why in cases:
        rep = tp.binding_report([np.asarray(b) for b in fam], lab)
        rows.append({"family": name, "expected": expected, "measured": rep.unique, "unrelated": rep.unrelated})
        if rep.unique != expected:
            bad.append({"family": name, "why": why, **rep.as_dict()})
    return Outcome(expected={r["family"]: r["expected"] for r in rows},
                   measured={r["family"]: r["measured"] for r in rows}, tolerance="exact", passed=not bad,
                   counterexample=bad or None, detail="; ".join(f"{c[0]}: {c[4]}" for c in cases))


# ----------------------------------------------------------------------------------------------
# prototypes (T7, T4-T6)
# ----------------------------------------------------------------------------------------------
@check("PROTO-C5", PAPER, "P1: with balanced classes, ETF prototypes are reproduced exactly under both anchor "
       "conventions for any n_w >= 1: mu_c = w_c (1e-4) and Delta_ETF < 1e-5", "derived", "[DER]", "numeric")
def c5_etf_prototypes(quick: bool) -> Outcome:
    copies = (1, 100) if quick else (1, 5, 100)
    taus = (0.5,) if quick else (0.1, 0.5)
    sizes_list = (BALANCED,) if quick else (BALANCED, (3, 3, 3, 3))
    rows, bad = [], []
    for sizes in sizes_list:
        for tau in taus:
            for anchors in (False, True):
                for nw in copies:
                    r = _run(sizes, 8, tau, "etf", nw, anchors, restarts=2)
                    row = {"n": sizes[0], "tau": tau, "conv": _conv(anchors), "n_w": nw,
                           "max_mu_w": _g(r, "max_mean_to_prototype"), "delta_etf": _g(r, "delta_etf")}
                    rows.append(row)
                    if not (row["max_mu_w"] < 1e-4 and row["delta_etf"] < 1e-5):
                        bad.append(row)
    return Outcome(expected="max_c ||mu_c - w_c|| < 1e-4; Delta_ETF < 1e-5",
                   measured={"max_mu_w": max(r["max_mu_w"] for r in rows),
                             "delta_etf": max(r["delta_etf"] for r in rows)},
                   tolerance="1e-4; 1e-5 (spec)", passed=not bad, counterexample=bad or None,
                   detail=f"K = 4, n in {[x[0] for x in sizes_list]}, d = 8, tau in {taus}, n_w in {copies}, both "
                   f"conventions ({len(rows)} solves)")


def _c6_copies(quick: bool) -> tuple[int, ...]:
    return (0, 1, 10, 200) if quick else (0, 1, 2, 5, 10, 50, 200)


@check("PROTO-C6", PAPER, "P3: imbalanced (n = [10, 10, 2, 2], tau = 0.1, d = 8) with ETF prototypes, Delta_ETF is "
       "non-increasing in n_w (1e-3 slack) and tends to 0 under both conventions, P-anchor < P-passive for n_w >= 1, "
       "and n_w = 0 is C2's value", "derived", "[DER]", "numeric")
def c6_delta_vs_copies(quick: bool) -> Outcome:
    copies = _c6_copies(quick)
    seeds = (0,) if quick else (0, 1)
    table: dict[str, dict[int, float]] = {}
    nc: dict[str, dict[int, float]] = {}
    seed_diff = 0.0
    for anchors in (False, True):
        key = _conv(anchors)
        table[key], nc[key] = {}, {}
        for nw in copies:
            runs = [_run(IMBALANCED, 8, 0.1, "etf", nw, anchors, seed=s) for s in seeds]
            best = min(runs, key=lambda r: r.value)
            table[key][nw], nc[key][nw] = _g(best, "delta_etf"), _g(best, "nc1")
            seed_diff = max(seed_diff, max(abs(_g(r, "delta_etf") - table[key][nw]) for r in runs))
    c2 = _g(_run(IMBALANCED, 8, 0.1), "delta_etf")
    problems = []
    for key, seq in table.items():
        vals = [seq[n] for n in copies]
        if any(b > a + 1e-3 for a, b in zip(vals, vals[1:], strict=False)):  # 1e-3 slack (spec)
            problems.append(f"{key} not non-increasing: {vals}")
        if not vals[-1] < 0.2 * vals[0]:  # "tends to 0": the last value is < 1/5 of the n_w = 0 value
            problems.append(f"{key} does not fall toward 0: {vals}")
        if abs(seq[0] - c2) > 1e-12:
            problems.append(f"{key} n_w = 0 differs from C2")
    for nw in copies[1:]:
        if not table["P-anchor"][nw] < table["P-passive"][nw]:
            problems.append(f"P-anchor >= P-passive at n_w = {nw}")
    if seed_diff > 1e-3:  # the tau = 0.1 geometry is accurate to ~1e-4 (module docstring)
        problems.append(f"seeds disagree on Delta_ETF by {seed_diff:.2e}")
    return Outcome(expected="non-increasing, -> 0; P-anchor < P-passive for n_w >= 1; n_w = 0 = C2",
                   measured=_round(table, 5), tolerance="1e-3 slack; strict", passed=not problems,
                   counterexample=problems or None,
                   detail=f"Delta_ETF (uncentred means) per n_w, best of seeds {list(seeds)} (max difference across "
                   f"seeds {seed_diff:.1e}); NC1 per n_w: " + str(_round(nc, 2))
                   + "; reference values of the spec's independent test set were not available (factor-2 "
                   "comparison not run)")


def _min_hessian_eigenvalue(result: SettingResult, tau: float, anchors: bool, h: float = 1e-5) -> float:
    """Smallest eigenvalue of the Riemannian Hessian of the full SCL+P objective at a configuration,
    by central differences of the Riemannian gradient along an orthonormal tangent basis (d - 1
    directions per row).  Used at the collapsed stationary point; FD error ~h^2 |D^3 L| ~ 1e-9."""
    z = result.points
    loss = batched_loss(result.labels, None, tau, result.prototypes, result.settings["copies"], anchors)

    def rgrad(pts: np.ndarray) -> np.ndarray:
        _, g = loss.value_and_grad_unit(pts)
        return g - pts * np.sum(pts * g, axis=1, keepdims=True)

    basis = []
    for i in range(z.shape[0]):
        q, _ = np.linalg.qr(np.column_stack([z[i], np.eye(z.shape[1])]))
        basis += [(i, q[:, j]) for j in range(1, z.shape[1])]
    hess = np.zeros((len(basis), len(basis)))
    for a, (i, v) in enumerate(basis):
        plus, minus = z.copy(), z.copy()
        plus[i] = (z[i] + h * v) / np.linalg.norm(z[i] + h * v)
        minus[i] = (z[i] - h * v) / np.linalg.norm(z[i] - h * v)
        dg = (rgrad(plus) - rgrad(minus)) / (2 * h)
        hess[:, a] = [dg[j] @ u for j, u in basis]
    return float(np.linalg.eigvalsh((hess + hess.T) / 2)[0])


@check("PROTO-N1", PAPER, "Toolkit finding: with imbalance and ETF prototypes at tau = 0.1 the minimiser is NOT "
       "class-collapsed (the collapsed configuration is a saddle: the unconstrained minimum lies below the best "
       "collapsed one and NC1 > 0), while at tau >= 0.2 collapse holds", "derived", "[DER]", "numeric")
def n1_no_collapse(quick: bool) -> Outcome:
    rows = []
    for tau in (0.1, 0.5):
        for anchors in (False, True):
            full = _run(IMBALANCED, 8, tau, "etf", 1, anchors)
            coll = _run(IMBALANCED, 8, tau, "etf", 1, anchors, collapsed=True)
            rows.append({"tau": tau, "conv": _conv(anchors), "collapsed_minus_full": coll.value - full.value,
                         "nc1": _g(full, "nc1"), "delta_etf_full": _g(full, "delta_etf"),
                         "delta_etf_collapsed": _g(coll, "delta_etf"),
                         "min_hessian_eig_collapsed": _min_hessian_eigenvalue(coll, tau, anchors)})
    # 1e-7: 100x the value accuracy of the collapsed solve (converged, |L| ~ 50, 1e-15 relative) and of the
    # unconstrained one (gradient ~1e-8 on a flat valley: value error <~ 1e-9); 1e-10 for "equal"
    low = [r for r in rows if r["tau"] == 0.1]
    high = [r for r in rows if r["tau"] == 0.5]
    # Hessian: negative beyond its FD error (~1e-9, plus ~1e-8 from the collapsed point's own gradient)
    # at tau = 0.1; at tau = 0.5 only the rotational zero modes (|eig| < 1e-6) may sit at 0
    ok = all(r["collapsed_minus_full"] > 1e-7 and r["nc1"] > 1e-8 and r["min_hessian_eig_collapsed"] < -1e-6
             for r in low)
    ok = ok and all(abs(r["collapsed_minus_full"]) < 1e-10 and r["nc1"] < 1e-10
                    and r["min_hessian_eig_collapsed"] > -1e-6 for r in high)
    return Outcome(expected="tau = 0.1: collapsed - unconstrained > 1e-7, NC1 > 0, Hessian at the collapsed point "
                   "indefinite; tau = 0.5: equal values, NC1 < 1e-10, no negative curvature",
                   measured=_round(rows, 4), tolerance="1e-7 / 1e-10 on values; 1e-6 on eigenvalues", passed=ok,
                   counterexample=low if ok else None,
                   detail="n_w = 1, n = [10, 10, 2, 2], d = 8; min_hessian_eig_collapsed: smallest eigenvalue of the "
                   "Riemannian Hessian of the full objective at the best collapsed configuration (a stationary point "
                   "by symmetry). Consequence: at tau = 0.1 Delta_ETF of the true minimiser is about twice that of "
                   "the collapsed ansatz")


@check("PROTO-C7", PAPER, "P2: UFM+ with non-negative OF prototypes w_c = e_c reproduces the OF exactly (Delta_OF < "
       "1e-8) for all n_w >= 1, balanced and imbalanced sizes, both conventions", "derived", "[DER]", "numeric")
def c7_of_nonneg(quick: bool) -> Outcome:
    copies = (1, 1000) if quick else (1, 10, 1000)
    sizes_list = [IMBALANCED] if quick else [BALANCED, IMBALANCED]
    rows, bad = [], []
    for sizes in sizes_list:
        for anchors in (False, True):
            for nw in copies:
                r = _run(sizes, 8, 0.1, "of", nw, anchors, nonnegative=True, restarts=1)
                row = {"sizes": list(sizes), "conv": _conv(anchors), "n_w": nw, "delta_of": _g(r, "delta_of"),
                       "max_mu_w": _g(r, "max_mean_to_prototype")}
                rows.append(row)
                if not row["delta_of"] < 1e-8:  # 1e-8 (spec)
                    bad.append(row)
    return Outcome(expected="Delta_OF < 1e-8", measured=max(r["delta_of"] for r in rows), tolerance="1e-8",
                   passed=not bad, counterexample=bad or None,
                   detail=f"tau = 0.1, d = 8, n_w in {copies}: {len(rows)} UFM+ solves; max ||mu_c - w_c|| = "
                   f"{max(r['max_mu_w'] for r in rows):.1e}")


def _offdiag_cos(r: SettingResult) -> np.ndarray:
    return np.array(r.geometry["cosines"])


@check("PROTO-C8a", PAPER, "OF prototypes without a sign constraint tend to an ETF, not an identity Gram (P-passive, "
       "balanced, n_w = 1000, tau in {0.5, 1}): cosines -> -1/3, Delta_ETF < 1e-3, Delta_OF -> Delta(ETF, OF) = "
       "0.5176. The naive reading 'OF prototypes give an OF' is refuted", "derived", "[DER]", "numeric")
def c8a_of_to_etf(quick: bool) -> Outcome:
    rows = []
    delta_const = float(tp.delta_etf_of(4))
    for tau in (0.5, 1.0):
        r = _run(BALANCED, 8, tau, "of", 1000, False)
        cos = _offdiag_cos(r)
        rows.append({"tau": tau, "cos_err": float(np.max(np.abs(cos + 1 / 3))), "delta_etf": _g(r, "delta_etf"),
                     "delta_of": _g(r, "delta_of"), "gram": np.round(np.array(r.geometry["gram"]), 4).tolist()})
    # 1e-3 (spec): the O(b/n_w) = 20/1000 gap to the limit moves cosines by ~1e-5 at tau >= 0.5
    ok = all(x["cos_err"] < 1e-3 and x["delta_etf"] < 1e-3 and abs(x["delta_of"] - delta_const) < 1e-3 for x in rows)
    stall = _run(BALANCED, 8, 0.1, "of", 1000, False, restarts=1)
    limit = limit_gram(prototype_matrix("of", 4, 8), 0.1, anchors=False, restarts=2)
    return Outcome(expected={"cos": -1 / 3, "Delta_OF": delta_const, "identity Gram (naive reading)": "refuted"},
                   measured=_round(rows, 6), tolerance="1e-3", passed=ok, verdict="refuted",
                   counterexample={"naive claim": "OF prototypes -> G_M = I",
                                   "measured G_M (tau = 0.5)": rows[0]["gram"], "Delta_OF": rows[0]["delta_of"]},
                   detail=f"pitfall §5.5: at tau = 0.1 the full solve stops at cosine "
                   f"{float(np.mean(_offdiag_cos(stall))):.4f} (gradient {stall.grad_norm:.1e}) while the per-class "
                   f"limit solver gives {float(limit[0, 1]):.6f} (-1/3)")


@check("PROTO-C8b", PAPER, "OF prototypes under P-anchor (balanced, n_w = 1000) give an intermediate geometry: the "
       "off-diagonal cosine equals T6's 1-D prediction g(tau) within 2e-3 for tau in {0.1, 0.5, 1}, -1/3 < g < 0, "
       "and g increases toward 0 as tau decreases", "derived", "[DER]", "numeric")
def c8b_of_anchor(quick: bool) -> Outcome:
    taus = (0.1, 0.5, 1.0)
    rows, bad = [], []
    w = prototype_matrix("of", 4, 8)
    for tau in taus:
        pred = tp.of_anchor_limit(4, tau)
        r = _run(BALANCED, 8, tau, "of", 1000, True)
        cos = float(np.mean(_offdiag_cos(r)))
        spread = float(np.ptp(_offdiag_cos(r)))
        lim = limit_gram(w, tau, anchors=True, restarts=2)[0, 1]
        row = {"tau": tau, "g_T6": pred.gram, "cos_full": cos, "cos_limit_solver": float(lim),
               "delta_of": _g(r, "delta_of"), "spread": spread}
        rows.append(row)
        # 2e-3 (spec) full vs T6; 1e-6 limit solver vs T6 (both minimise the same F^anc, gtol 1e-12)
        if not (abs(cos - pred.gram) < 2e-3 and abs(lim - pred.gram) < 1e-6 and -1 / 3 < pred.gram < 0):
            bad.append(row)
    gs = [x["g_T6"] for x in rows]
    if not all(a > b for a, b in zip(gs, gs[1:], strict=False)):
        bad.append({"g not increasing as tau decreases": gs})
    return Outcome(expected={x["tau"]: x["g_T6"] for x in rows}, measured={x["tau"]: x["cos_full"] for x in rows},
                   tolerance="2e-3 full vs T6; 1e-6 limit solver vs T6", passed=not bad, counterexample=bad or None,
                   detail="; ".join(f"tau {x['tau']}: g = {x['g_T6']:.6f}, full {x['cos_full']:.6f}, limit solver "
                                    f"{x['cos_limit_solver']:.6f}, Delta_OF {x['delta_of']:.4f}" for x in rows))


@check("PROTO-C9", PAPER, "T5: the CE-fixed minimiser for OF prototypes is sqrt((K-1)/K) w_y - (1/sqrt(K(K-1))) "
       "sum_{c != y} w_c (unit norm, Gram -1/(K-1), cos(h, w_y) = sqrt((K-1)/K), minimum log(1 + (K-1) "
       "e^{-sqrt(K/(K-1))/tau})); for ETF prototypes h = w_y; for non-negative OF h = w_y", "derived", "[DER]",
       "symbolic")
def c9_ce_fixed(quick: bool) -> Outcome:
    k = tp.K_
    of = tp.ce_fixed_equiangular(k, 0)
    etf = tp.ce_fixed_equiangular(k, -1 / (k - 1))
    alpha, beta = of["coefficients"]
    sym = {
        "OF unit norm": sp.simplify(alpha**2 + (k - 1) * beta**2 - 1),
        "OF coefficients": sp.simplify(alpha - sp.sqrt((k - 1) / k)) + sp.simplify(beta + 1 / sp.sqrt(k * (k - 1))),
        "OF Gram": sp.simplify(of["gram"] + 1 / (k - 1)),
        "OF cos(h, w_y)": sp.simplify(of["cos_prototype"] - sp.sqrt((k - 1) / k)),
        "OF minimum": sp.simplify(of["margin"] + sp.sqrt(k / (k - 1))),
        "OF Jensen tight": of["tight"],
        "ETF h = w_y": sp.simplify(etf["cos_prototype"] - 1),
        "ETF minimum": sp.simplify(etf["margin"] + k / (k - 1)),
    }
    # K = m + 1 with m > 0 tells sympy that K - 1 > 0 (sqrt(K/(K-1)) = sqrt(K)/sqrt(K-1))
    m = sp.Symbol("m", positive=True)
    sym = {name: sp.simplify(sp.sympify(v).subs(k, m + 1)) for name, v in sym.items()}
    sym_ok = all(v == 0 for v in sym.values())
    at4 = {"gram": float(of["gram"].subs(k, 4)), "cos": float(of["cos_prototype"].subs(k, 4))}
    num_ok = abs(at4["gram"] + 1 / 3) < 1e-12 and abs(at4["cos"] - math.sqrt(3) / 2) < 1e-12
    # per-class numeric minimisation (tau >= 0.5; tolerance 1e-6, spec)
    rows = []
    for kind, protos, nonneg in (("of", prototype_matrix("of", 4, 8), False), ("etf", etf_prototypes(4, 8), False),
                                 ("of-nonneg", prototype_matrix("of", 4, 8), True)):
        for tau in ((0.5,) if quick else (0.5, 1.0)):
            h, val, _ = limit_minimiser(protos, 0, tau, anchors=False, nonnegative=nonneg, restarts=2)
            expected = tp.ce_fixed_minimum(kind, 4, tau)
            cand = tp.ce_fixed_candidate(protos @ protos.T, 0) if kind != "of-nonneg" else None
            target = protos[0] if cand is None else cand["coefficients"] @ protos
            rows.append({"kind": kind, "tau": tau, "value_err": abs(val - expected) / expected,
                         "h_err": float(np.linalg.norm(h - target))})
    num_ok = num_ok and all(r["value_err"] < 1e-6 and r["h_err"] < 1e-6 for r in rows)
    return Outcome(expected="symbolic residuals 0; K = 4: Gram -1/3, cos 0.8660; numeric = closed form",
                   measured={"residuals": {k_: str(v) for k_, v in sym.items()}, "K=4": _round(at4),
                             "numeric": _round(rows, 3)},
                   tolerance="exact; 1e-6 rel (numeric)", passed=sym_ok and num_ok,
                   detail="symbolic in K for equiangular prototypes (Gram off-diagonal g = 0: OF, -1/(K-1): ETF); "
                   "numeric: per-class minimisation of F^CE_y on S^7 (UFM) or its non-negative part (UFM+)")


@check("PROTO-C10", PAPER, "T4: as n_w -> infinity, L_SCL+P(H) - L_SCL+P(H') -> [L_CEfix (+ E under P-anchor)](H) - "
       "[same](H') at rate 1/n_w: n_w |gap| bounded, relative gap < 1% at n_w = 5000 (K = 4, tau = 0.2; first pair "
       "of the protocol, the relative gap being pair-dependent), fitted exponent -1, and n_w gap -> the derived "
       "first-order coefficient", "derived", "[DER]", "numeric")
def c10_limit_rate(quick: bool) -> Outcome:
    labels = labels_from_sizes([3, 3, 2, 2])
    tau = 0.2
    fit_nw = (1000, 2000, 5000, 10000, 20000)
    rows, bad = [], []
    geometries = ("etf", "of") if quick else ("etf", "of", "random")
    for geo in geometries:
        w = prototype_matrix(geo, 4, 8, seed=5)
        for anchors in (False, True):
            for pair in ((1, 2),) if quick else ((1, 2), (3, 4)):
                h, h2 = random_sphere_points(10, 8, pair[0]), random_sphere_points(10, 8, pair[1])
                lim = tp.limit_objective(h, labels, w, tau, anchors) - tp.limit_objective(h2, labels, w, tau, anchors)
                c1 = tp.first_order_gap(h, labels, w, tau, anchors) - tp.first_order_gap(h2, labels, w, tau, anchors)
                gaps = {}
                for nw in sorted({500, 1000, 5000, *fit_nw}):
                    loss = batched_loss(labels, None, tau, w, nw, anchors)
                    gaps[nw] = (loss.value(h) - loss.value(h2)) - lim
                slope = float(np.polyfit(np.log(fit_nw), np.log([abs(gaps[n]) for n in fit_nw]), 1)[0])
                scaled = [nw * abs(gaps[nw]) for nw in (500, 1000, 5000)]
                row = {"W": geo, "conv": _conv(anchors), "pair": pair, "rel_gap_5000": abs(gaps[5000]) / abs(lim),
                       "nw_gap": _round(scaled, 5), "slope": slope, "c1": c1,
                       "coef_err_20000": abs(20000 * gaps[20000] - c1) / abs(c1)}
                rows.append(row)
                # bounded: n_w |gap| varies by < 10% over 500..5000 (next order O(1/n_w) relative, ~2% here);
                # slope within 0.03 of -1 (relative curvature ~ c2/(c1 n_w) < 1% over the fit window);
                # coefficient within 1% at n_w = 20000 (remainder O(1/n_w))
                # the relative gap is pair-dependent (it scales as 1/|Delta L_lim|): asserted on the
                # protocol's first pair (1, 2), reported for the others
                if not ((row["rel_gap_5000"] < 0.01 or pair != (1, 2)) and max(scaled) / min(scaled) < 1.1
                        and abs(slope + 1) < 0.03 and row["coef_err_20000"] < 0.01):
                    bad.append(row)
    big = [{"W": r["W"], "conv": r["conv"], "pair": r["pair"], "rel_gap_5000": r["rel_gap_5000"]}
           for r in rows if r["rel_gap_5000"] >= 0.01]
    return Outcome(expected="rel gap < 1% at 5000 (pair (1, 2)); n_w gap bounded; slope -1; n_w gap -> c1",
                   measured={"rel gap at 5000": [round(r["rel_gap_5000"], 5) for r in rows],
                             "slopes": [round(r["slope"], 4) for r in rows],
                             "max coef err": max(r["coef_err_20000"] for r in rows)},
                   tolerance="1%; ratio < 1.1; |slope + 1| < 0.03; 1%", passed=not bad, counterexample=bad or None,
                   detail=f"n = [3, 3, 2, 2], d = 8, tau = {tau}, sum over anchors; fit over n_w in {fit_nw}; "
                   f"pairs with a relative gap >= 1% at n_w = 5000 (small |Delta L_lim|, the absolute gap still "
                   f"~ c1/n_w): {_round(big, 3) or 'none'}; "
                   + "; ".join(f"{r['W']} {r['conv']} {r['pair']}: slope {r['slope']:.4f}, n_w gap {r['nw_gap']}, "
                               f"c1 {r['c1']:.4f}" for r in rows))


def _block_cos(g: np.ndarray) -> tuple[float, float]:
    d = np.sqrt(np.diag(g))
    c = g / np.outer(d, d)
    return float((c[0, 1] + c[2, 3]) / 2), float(np.mean([c[0, 2], c[0, 3], c[1, 2], c[1, 3]]))


def _delta(g: np.ndarray, gw: np.ndarray) -> float:
    return gram_distance(g, gw)


@check("PROTO-C11", PAPER, "Block prototypes (within-block cosine 0.6, across 0) are only partly reproduced: "
       "within-block cosine (i) UFM+ P-anchor > (ii) UFM P-anchor > 0 > (iii) CE-fixed limit tau = 0.5 > tau = 0.1, "
       "(i) < 0.6; across-block ~0 in (i), (ii) and clearly negative in (iii); Delta(G_M, G_W) (i) < (ii) < (iii)",
       "derived", "[DER]", "numeric")
def c11_block(quick: bool) -> Outcome:
    w = prototype_matrix("block", 4, 8)
    gw = w @ w.T
    arms: dict[str, dict[str, float]] = {}
    agree = {}
    for name, nonneg in (("i", True), ("ii", False)):
        r = _run(BALANCED, 8, 0.1, "block", 100, True, nonnegative=nonneg, restarts=1 if quick else 2)
        g = np.array(r.geometry["gram"])
        within, across = _block_cos(g)
        lim = limit_gram(w, 0.1, anchors=True, nonnegative=nonneg, restarts=2)
        agree[name] = float(np.max(np.abs(g / np.outer(np.sqrt(np.diag(g)), np.sqrt(np.diag(g))) - lim)))
        arms[name] = {"within": within, "across": across, "delta_w": _delta(g, gw)}
    for tau in (0.5, 0.1):
        lim = limit_gram(w, tau, anchors=False, restarts=2)
        within, across = _block_cos(lim)
        arms[f"iii tau={tau}"] = {"within": within, "across": across, "delta_w": _delta(lim, gw)}
    if not quick:
        full = _run(BALANCED, 8, 0.5, "block", 1000, False)
        g = np.array(full.geometry["gram"])
        agree["iii tau=0.5 (n_w = 1000)"] = float(np.max(np.abs(
            g / np.outer(np.sqrt(np.diag(g)), np.sqrt(np.diag(g))) - limit_gram(w, 0.5, anchors=False, restarts=2))))
    a = arms
    order = (a["i"]["within"] > a["ii"]["within"] > 0 > a["iii tau=0.5"]["within"] > a["iii tau=0.1"]["within"]
             and a["i"]["within"] < 0.6)
    # across-block: |.| < 1e-2 counts as ~0 (arm ii: -3e-3 from the finite n_w), "clearly negative" < -0.1
    across = (abs(a["i"]["across"]) < 1e-8 and abs(a["ii"]["across"]) < 1e-2
              and a["iii tau=0.5"]["across"] < -0.1 and a["iii tau=0.1"]["across"] < -0.1)
    deltas = (a["i"]["delta_w"] < a["ii"]["delta_w"] < min(a["iii tau=0.5"]["delta_w"], a["iii tau=0.1"]["delta_w"])
              and a["iii tau=0.5"]["delta_w"] > 0.5)
    close = all(v < 5e-3 for v in agree.values())  # 5e-3 (spec): finite n_w vs limit
    return Outcome(expected="orderings of §4 C11; full vs limit within 5e-3", measured=_round(arms, 4),
                   tolerance="strict orderings; 5e-3", passed=order and across and deltas and close,
                   counterexample=None if order and across and deltas and close else {"agree": agree},
                   detail="n = 5 per class, d = 8, n_w = 100; max |cosine(full) - cosine(limit)| = "
                   f"{_round(agree, 3)}; "
                   "conclusion: alignment with arbitrary prototypes needs the prototype-anchor term and a small tau; "
                   "the pure CE limit works against it (within-block cosine inverted)")


C12_SIZES = (20, 20, 4, 4)


def _c12(b: int, nw: int, seed: int) -> SettingResult:
    # b = 48 is the full batch (the union of 5 partitions of 48 into one batch repeats it 5 times: same
    # minimisers); the degenerate mini-batch problems (T3: non-isolated minima) are solved with a capped
    # Newton polish, the geometry they report is stable to ~1e-4 (development runs with 3 restarts)
    batches = "full" if b >= sum(C12_SIZES) else f"random:{b}x5"
    return _run(C12_SIZES, 8, 0.1, "etf", nw, True, batches=batches, restarts=1, seed=seed, max_iter=3000,
                polish_steps=2)


@check("PROTO-C12", PAPER, "Prototypes act like batch-binding (n = [20, 20, 4, 4], ETF, P-anchor, tau = 0.1, union "
       "of 5 random partitions into batches of b): at b = 8, n_w = 0 the geometry is far from an ETF and uncollapsed; "
       "Delta_ETF falls monotonically in n_w at b in {8, 48}; one copy cuts it by a large factor at b = 8; for "
       "n_w >= 4 b = 8 beats b = 48", "derived", "[DER]", "numeric")
def c12_minibatch(quick: bool) -> Outcome:
    copies = (0, 1, 4, 16) if quick else (0, 1, 4, 16, 64)
    seeds = (0,) if quick else (0, 1, 2)
    problems, tables, factors, nc1_small = [], {}, {}, {}
    for seed in seeds:
        tab = {b: {nw: _c12(b, nw, seed) for nw in copies} for b in (8, 48)}
        d = {b: {nw: _g(r, "delta_etf") for nw, r in row.items()} for b, row in tab.items()}
        tables[seed] = {b: _round(v, 4) for b, v in d.items()}
        small, full = d[8], d[48]
        # spec tolerance "ordering strict": Delta_ETF(b = 8) > Delta_ETF(b = 48) at n_w = 0, and "NC1 clearly
        # > 0": NC1 > 1e-3 (every collapsed run here has NC1 < 1e-5); the factors are reported
        nc1_small[seed] = _g(tab[8][0], "nc1")
        if not (small[0] > full[0] and nc1_small[seed] > 1e-3):
            problems.append(f"seed {seed}: b = 8, n_w = 0 not farther from the ETF than b = 48, or collapsed")
        for b in (8, 48):
            vals = [d[b][nw] for nw in copies]
            if any(y >= x for x, y in zip(vals, vals[1:], strict=False)):
                problems.append(f"seed {seed}: b = {b} not decreasing: {vals}")
        factors[seed] = {"b=8 vs b=48 at n_w=0": small[0] / full[0], "one copy at b=8": small[0] / small[1]}
        if not small[1] < small[0]:  # strict (spec); the factor is reported
            problems.append(f"seed {seed}: one copy does not reduce Delta at b = 8")
        for nw in copies:
            if nw >= 4 and not small[nw] < full[nw]:
                problems.append(f"seed {seed}: n_w = {nw}: b = 8 not below b = 48")
    return Outcome(expected="see statement", measured={"delta_etf": tables, "factors": _round(factors, 3)},
                   tolerance="strict orderings (spec)", passed=not problems, counterexample=problems or None,
                   detail=f"Delta_ETF by seed, b, n_w (n_w in {copies}); NC1 at b = 8, n_w = 0 by seed: "
                   f"{_round(nc1_small, 3)}. The b = 8, n_w = 0 minimiser is not unique (T3 fails for random "
                   "partitions), so its Delta_ETF depends on the batch family and the start: 'much larger' "
                   "ranges over the factors shown")


@check("PROTO-C12r", PAPER, "The ratio n_w K / b as the controlling quantity of mini-batch SCL+P: at equal n_w K / b "
       "the b in {8, 16, 24, 48} runs agree within 25% for n_w K / b in {2, 8} (Delta falls 1.5x or more between "
       "them), but NOT at n_w K / b = 0.5, where b = 8 (n_w = 1) is 3x worse: the ratio alone does not control "
       "small n_w",
       "derived", "[DER]", "numeric")
def c12r_ratio(quick: bool) -> Outcome:
    table: dict[float, dict[int, float]] = {}
    for ratio in (0.5, 2.0, 8.0):
        table[ratio] = {}
        for b in ((8, 48) if quick else (8, 16, 24, 48)):
            nw = int(ratio * b / 4)
            table[ratio][b] = _g(_c12(b, nw, 0), "delta_etf")
    spread = {r: max(v.values()) / min(v.values()) for r, v in table.items()}
    controlled = spread[2.0] < 1.25 and spread[8.0] < 1.25  # 25%: the spread across b at a fixed ratio
    falls = min(table[2.0].values()) > 1.5 * max(table[8.0].values())
    small_fails = spread[0.5] > 3.0
    return Outcome(expected="spread < 1.25 at ratios 2, 8; > 3 at ratio 0.5", measured=_round(spread, 4),
                   tolerance="25% / 3x", passed=controlled and falls and small_fails,
                   verdict="refuted" if small_fails else "confirmed",
                   counterexample={"ratio 0.5": _round(table[0.5], 4)} if small_fails else None,
                   detail=f"Delta_ETF by ratio and b: {_round(table, 4)}; the spec's 'controlling quantity' holds only "
                   "from n_w K / b ~ 2 on")


@check("PROTO-C13a", PAPER, "Delta(ETF, OF) = sqrt(2 - 2 sqrt((K-1)/K)) (K = 4: 0.5176), derived from the Gram "
       "matrices and equal to the metric's value", "derived", "[DER]", "symbolic")
def c13a_delta_constant(quick: bool) -> Outcome:
    k = tp.K_
    formula = sp.sqrt(2 - 2 * sp.sqrt((k - 1) / k))
    exact = [sp.simplify(tp.delta_etf_of(kk) - formula.subs(k, kk)) for kk in range(2, 21)]
    numeric = max(abs(gram_distance(np.eye(kk) - 1 / kk, np.eye(kk)) - float(formula.subs(k, kk)))
                  for kk in range(2, 21))
    val4 = float(tp.delta_etf_of(4))
    # exact for K = 2..20; 1e-12 metric vs formula (float64); 1e-4 on the quoted 0.5176
    ok = all(e == 0 for e in exact) and numeric < 1e-12 and abs(val4 - 0.5176) < 1e-4
    return Outcome(expected=0.5176, measured=val4, tolerance="exact; 1e-12; 1e-4", passed=ok,
                   detail=f"sympy difference = 0 for K = 2..20; max |gram_distance - formula| = {numeric:.1e}; "
                   f"Delta^2 = {sp.simplify(tp.delta_etf_of() ** 2)}")


@check("PROTO-C13b", PAPER, "ETF CE-fixed per-sample minimum at K = 10, tau = 0.1: log(1 + (K-1) e^{-K/((K-1) tau)}) "
       "against direct minimisation", "derived", "[DER]", "numeric")
def c13b_etf_ce_minimum(quick: bool) -> Outcome:
    k, tau = 10, 0.1
    expected = tp.ce_fixed_minimum("etf", k, tau)
    symbolic = float(tp.ce_fixed_equiangular(k, sp.Rational(-1, k - 1), sp.Rational(1, 10))["minimum"])
    h, val, _ = limit_minimiser(etf_prototypes(k, k), 0, tau, restarts=2)
    rel = abs(val - expected) / expected
    # rel 1e-6 (spec); the value ~1.3e-4 is computed as lse - s_y with ~1e-15 absolute error
    return Outcome(expected=expected, measured=val, tolerance="rel 1e-6",
                   passed=rel < 1e-6 and abs(symbolic - expected) < 1e-15,
                   detail=f"relative error {rel:.1e}; symbolic (T5) {symbolic:.12e}; |h - w_y| = "
                   f"{float(np.linalg.norm(h - etf_prototypes(k, k)[0])):.1e}")


@check("PROTO-C14", PAPER, "SCL(+P) analytic gradient (batched, stacked or summed, both conventions, UFM and UFM+ "
       "parametrisations, limit objectives) matches central finite differences", "derived", "[DER]", "numeric")
def c14_gradient(quick: bool) -> Outcome:
    rng = np.random.default_rng(14)
    worst, cases = 0.0, 0
    for trial in range(4 if quick else 10):
        sizes = [int(s) for s in rng.integers(2, 5, size=int(rng.integers(2, 5)))]
        k, d = len(sizes), int(rng.integers(len(sizes), 7))
        labels = labels_from_sizes(sizes)
        # batches of >= K + 1 rows always repeat a label (pigeonhole), so no batch family is empty
        fam = random_partitions(labels.size, int(rng.integers(k + 1, labels.size + 1)), 2, seed=trial)
        w = prototype_matrix(("etf", "of", "random")[trial % 3] if k > 1 else "of", k, d, seed=trial)
        nw = int(rng.integers(0, 4))
        anchors, nonneg, stacked = bool(trial % 2), bool((trial // 2) % 2), bool((trial // 4) % 2)
        losses = [batched_loss(labels, fam, 0.3, w, nw, anchors, stacked=stacked)]
        if trial % 3 == 0:
            losses.append(prototype_limit_loss(labels, w, 0.3, anchors))
        for loss in losses:
            prob = SphereProblem(loss, d, nonnegative=nonneg)
            u = np.abs(rng.standard_normal(labels.size * d)) + 0.1
            _, g = prob.value_and_grad_params(u)
            fd = np.zeros_like(u)
            h = 1e-6
            for i in range(u.size):
                e = np.zeros_like(u)
                e[i] = h
                fd[i] = (prob.value_and_grad_params(u + e)[0] - prob.value_and_grad_params(u - e)[0]) / (2 * h)
            worst = max(worst, float(np.linalg.norm(g - fd) / np.linalg.norm(g)))
            cases += 1
    # rel 1e-6 (spec): central differences with h = 1e-6 have truncation ~1e-12 and round-off ~1e-10 relative
    return Outcome(expected=0.0, measured=worst, tolerance="rel 1e-6", passed=worst < 1e-6,
                   detail=f"{cases} random cases (sizes, d, batchings, n_w in 0..3, conventions, UFM/UFM+)")


@check("PROTO-C15", PAPER, "T4 expansion in 1/n_w: a sample anchor's term is log n_w + F^CE_y + O(1/n_w), n_w "
       "prototype copies (P-anchor) contribute E(H) + O(1/n_w), with the first-order coefficients derived by sympy",
       "derived", "[DER]", "symbolic")
def c15_series(quick: bool) -> Outcome:
    steps = tp.limit_steps()
    failed = [s.as_dict() for s in steps if not s.holds]
    ser = tp.limit_series()
    return Outcome(expected="every identity holds", measured={s.name: s.residual for s in steps}, tolerance="exact",
                   passed=not failed, counterexample=failed or None,
                   detail=f"sample first-order coefficient {ser['sample_first']}; prototype {ser['proto_first']}")


@check("PROTO-C16", PAPER, "Deep-network alignment with prototypes (Gill et al., empirical): training a small encoder "
       "with SCL+P, Delta(G_M, G_W) decreases as n_w grows (qualitative, reported only)", "paper-abstract", "[ABS]",
       "training")
def c16_encoder(quick: bool) -> Outcome:
    try:
        from solvers.minibatch_experiments import train_encoder
    except ImportError as exc:  # pragma: no cover - optional torch path
        raise Skip(f"encoder training unavailable: {exc}") from None
    try:
        rows = [train_encoder(nw, steps=150 if quick else 400, seed=0) for nw in (0, 4, 32)]
    except ImportError as exc:  # pragma: no cover
        raise Skip(f"torch is not installed: {exc}") from None
    deltas = [r["delta_w"] for r in rows]
    claim = all(a > b for a, b in zip(deltas, deltas[1:], strict=False))
    return Outcome(expected="Delta_W decreasing in n_w (reported only)",
                   measured={r["copies"]: r["delta_w"] for r in rows},
                   tolerance="none (report)", passed=True, verdict="confirmed" if claim else "refuted",
                   detail="; ".join(f"n_w {r['copies']}: Delta_W {r['delta_w']:.4f}, NC1 {r['nc1']:.3g}" for r in rows)
                   + f"; setting: {rows[0]['setting']}")


@check("PROTO-C17", PAPER, "Graf's CE companion bound log(1 + (K-1) exp(-rho_Z r_W K/(K-1))) with equality at the "
       "aligned simplex: closed form at the simplex, and no fixed classifier of norm <= r_W goes below it",
       "reconstruction", "[REC]", "numeric")
def c17_ce_bound(quick: bool) -> Outcome:
    rows, bad = [], []
    for k, rho_z, r_w in ((4, 2.0, 1.5), (3, 1.0, 1.0), (6, 5.0, 2.0)):
        bound = tp.graf_ce_bound(k, rho_z, r_w)
        w = r_w * etf_prototypes(k, k)
        labels = np.arange(k)
        at_simplex = ce_fixed(labels, w, 1 / rho_z).value(etf_prototypes(k, k))
        # random classifiers of norm <= r_W: the feature-minimised CE stays above the bound
        worst = math.inf
        for s in range(2 if quick else 4):
            wr = random_sphere_points(k, k, 100 + s) * r_w * np.random.default_rng(s).uniform(0.5, 1.0, (k, 1))
            res = multistart(SphereProblem(ce_fixed(labels, wr, 1 / rho_z), k), 2, s, gtol=1e-12)
            worst = min(worst, res.fun - bound)
        rows.append({"K": k, "rho_Z r_W": rho_z * r_w, "simplex_err": abs(at_simplex - bound), "margin_random": worst})
        # 1e-8 (spec) at the simplex; random classifiers must not undercut the bound beyond round-off (1e-12)
        if not (abs(at_simplex - bound) < 1e-8 and worst > -1e-12):
            bad.append(rows[-1])
    return Outcome(expected="equality at the aligned simplex; >= bound otherwise", measured=_round(rows, 4),
                   tolerance="1e-8", passed=not bad, counterexample=bad or None,
                   detail="ce_fixed(W/tau) on unit features with rho_Z = 1/tau and rows of W of norm r_W")
