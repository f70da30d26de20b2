"""Checks of the external reference problems (anchors.md): closed forms of the contrastive losses
at the aligned simplex, library identities, and the Thomson table's proven rows.

Each check evaluates the loss library on an exactly constructed configuration and compares with
the closed form of the spec or the reference table; tolerances are those of anchors.md §13.
"""

from __future__ import annotations

import math

import numpy as np

from solvers.configurations import cross_polytope, random_sphere_points, regular_simplex
from solvers.losses import dcl, kcl, riesz_energy, simclr, supcon, uniformity
from solvers.universal_optima import icosahedron

from .reference_data import contrastive_reference, thomson_table
from .registry import Outcome, check

PAPER = "anchors"


def _close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    """anchors.md §9.6: |a - b| <= 1e-12 + 1e-9 |b| (the absolute term for values near 0)."""
    return abs(a - b) <= abs_ + rel * abs(b)


def _simplex_batch(n: int, d: int, copies: int) -> np.ndarray:
    """n simplex vertices in R^d, each repeated ``copies`` times, view-major."""
    return np.vstack([regular_simplex(n, d)] * copies)


def _evaluate_row(row: dict) -> float:
    n, m, d, tau = row["n"], row["m"], row["d"], row["tau"]
    if row["loss"] == "ntxent":
        return simclr(n, tau).value(_simplex_batch(n, d, 2))
    if row["loss"] == "dcl":
        return dcl(n, tau).value(_simplex_batch(n, d, 2))
    if row["loss"] == "uniformity":
        return uniformity(n, tau).value(regular_simplex(n, d))
    labels = np.tile(np.arange(n), m)
    return supcon(labels, tau).value(_simplex_batch(n, d, m))


@check("ANCH-L1", PAPER, "NT-Xent, DCL, SupCon L_out and uniformity at the aligned regular simplex equal "
       "the closed forms of the reference table (72 rows)", "derived", "[DER+NUM]", "numeric")
def closed_forms_table(quick: bool) -> Outcome:
    rows = contrastive_reference()
    worst, worst_row = 0.0, None
    for row in rows:
        val = _evaluate_row(row)
        err = abs(val - row["closed_form"]) / (1e-12 + 1e-9 * abs(row["closed_form"]))
        if err > worst:
            worst, worst_row = err, {**row, "value": val}
    return Outcome(expected="scaled error <= 1", measured=worst,
                   tolerance="1e-12 + 1e-9 rel (anchors.md §9.6)", passed=worst <= 1.0,
                   detail=f"max over {len(rows)} rows of |value - closed form| / (1e-12 + 1e-9 |closed form|)",
                   counterexample=worst_row if worst > 1.0 else None)


@check("ANCH-L5", PAPER, "SupCon with m = 2 samples per class equals NT-Xent with n = C instances "
       "(any configuration)", "derived", "[DER+NUM]", "numeric")
def supcon_m2_is_ntxent(quick: bool) -> Outcome:
    worst = 0.0
    for seed, (c, d, tau) in enumerate([(3, 4, 0.5), (5, 3, 0.1), (8, 6, 0.2), (2, 2, 1.0)]):
        pts = random_sphere_points(2 * c, d, seed)
        a = supcon(np.tile(np.arange(c), 2), tau).value(pts)
        b = simclr(c, tau).value(pts)
        worst = max(worst, abs(a - b) / abs(b))
    # float64 round-off of two log-sum-exp evaluations of the same terms in a different order
    return Outcome(expected=0.0, measured=worst, tolerance=1e-12, passed=worst <= 1e-12)


@check("ANCH-L4", PAPER, "SupCon L_in <= L_out for every configuration, with equality when all positives "
       "are equally similar", "derived", "[DER+NUM]", "numeric")
def lin_le_lout(quick: bool) -> Outcome:
    gaps = []
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    for seed in range(20):
        pts = random_sphere_points(labels.size, 4, seed)
        gaps.append(supcon(labels, 0.3, "out").value(pts) - supcon(labels, 0.3, "in").value(pts))
    # equality case: classes collapsed onto a simplex (all positives identical)
    collapsed = regular_simplex(3, 4)[labels]
    eq = supcon(labels, 0.3, "out").value(collapsed) - supcon(labels, 0.3, "in").value(collapsed)
    ok = min(gaps) >= -1e-12 and abs(eq) <= 1e-12  # 1e-12: float64 round-off of O(1) values
    return Outcome(expected="gap >= 0; = 0 at collapse", measured=min(gaps), tolerance=1e-12, passed=ok,
                   detail=f"min L_out - L_in over 20 random configurations = {min(gaps):.3g}; "
                   f"at class collapse = {eq:.3g}")


@check("ANCH-KCL1", PAPER, "KCL (Gaussian kernel, code convention) at the aligned simplex equals "
       "-2 + 2 gamma exp(-2 t n / (n - 1)) (convention of the authors' code)", "derived", "[DER]", "numeric")
def kcl_closed_form(quick: bool) -> Outcome:
    worst = 0.0
    for n, t, gamma in [(2, 2.0, 16.0), (4, 2.0, 16.0), (8, 0.5, 1.0), (5, 1.0, 4.0)]:
        val = kcl(n, "gaussian", t, gamma, "code").value(_simplex_batch(n, n - 1 if n > 2 else 2, 2))
        expected = -2.0 + 2.0 * gamma * math.exp(-2.0 * t * n / (n - 1))
        worst = max(worst, abs(val - expected) / (1e-12 + 1e-9 * abs(expected)))
    return Outcome(expected="scaled error <= 1", measured=worst, tolerance="1e-12 + 1e-9 rel", passed=worst <= 1.0,
                   detail="max over (n, t, gamma) of |value - closed form| / (1e-12 + 1e-9 |closed form|)")


@check("ANCH-T1", PAPER, "Coulomb energies of the proven Thomson configurations (N = 2, 3, 4, 6, 12) equal "
       "the closed forms and the table rows", "literature", "[LIT+NUM]", "numeric")
def thomson_closed_forms(quick: bool) -> Outcome:
    table = thomson_table()
    closed = {
        2: 0.5, 3: math.sqrt(3), 4: 3 * math.sqrt(6) / 2, 6: 1.5 + 6 * math.sqrt(2),
        12: 6 * (5 * (2 - 2 / math.sqrt(5)) ** -0.5 + 5 * (2 + 2 / math.sqrt(5)) ** -0.5 + 0.5),
    }
    configs = {2: regular_simplex(2, 3), 3: regular_simplex(3, 3), 4: regular_simplex(4, 3),
               6: cross_polytope(3), 12: icosahedron()}
    errs = {}
    for n, pts in configs.items():
        e = riesz_energy(n, 1.0).value(pts)
        errs[n] = max(abs(e - closed[n]), abs(e - table[n]))
    worst = max(errs.values())
    # 1e-9: the table's 9-decimal rounding (anchors.md §2.2)
    return Outcome(expected=0.0, measured=worst, tolerance=1e-9, passed=worst <= 1e-9,
                   detail="max(|E - closed form|, |E - table|) per N: "
                   + ", ".join(f"{k}: {v:.2g}" for k, v in errs.items()))
