"""``collapsekit theory lr-bound``: the reconstructed learning-rate bound of the CLOP analysis.

clop.md §4.5 (T1/T4/T5): eta_max = 2 r^2 / k with k the largest attraction coefficient of one
anchor term, k = c / tau (c = 1 for a sum over anchors, 1/(2B) for the toolkit's mean).  This is
a reconstruction ``[REC]``: the paper's exact statement was not available.
"""

from __future__ import annotations

import argparse

from ..output import dumps

# = theory.clop.LR_LOSSES and theory.clop.REDUCTIONS, written out so that building the parser does
# not import sympy (equality asserted in tests/test_cli_startup.py)
LR_LOSSES = ("infonce", "supcon")
REDUCTIONS = ("sum", "mean")


def _real(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a real number; got {text!r}") from None
    return v


def register(sub, groups) -> None:
    p = groups["theory"].add_parser(
        "lr-bound", help="reconstructed learning-rate bound eta_max = 2 r^2 / k (CLOP, clop.md §4.5)",
        description="Reconstructed overshoot bound of plain gradient descent on a cosine-only contrastive "
        "loss (clop.md §4.5 T1/T4/T5): one anchor term pulls its point with coefficient k = c (1 - P_i)/tau "
        "<= c/tau, and renormalised GD on k (1 - cos theta) converges iff eta k / r^2 < 2, so "
        "eta_max = 2 r^2 / k. RECONSTRUCTION [REC]: the paper's exact statement was not available. The "
        "output lists every assumption; the bound is per embedding step and is not the empirical "
        "threshold of a shared encoder (clop.md §7.11).",
    )
    p.add_argument("--loss", required=True, choices=LR_LOSSES,
                   help="infonce (NT-Xent) or supcon (L_out; same bound: total pull (1 - P_i)/tau)")
    p.add_argument("--tau", type=_real, required=True, help="temperature, > 0")
    p.add_argument("--batch", type=int, default=None,
                   help="batch size B >= 2 (N = 2B anchors); needed for --reduction mean; also gives the "
                   "coefficients at the collapsed configuration C1 (default: none, per-term bound)")
    p.add_argument("--norm", type=_real, default=1.0,
                   help="raw embedding norm r > 0 (effective step eta / r^2, Lemma C); default 1")
    p.add_argument("--reduction", choices=REDUCTIONS, default=None,
                   help="sum over anchors (v1 form, batch-independent) or mean over 2B anchors (toolkit "
                   "convention, divides every force by 2B); default: mean when --batch is given, else sum")
    p.add_argument("--classes", type=int, default=None,
                   help="supcon only: number of balanced classes C (2B/C rows each), for the C1 coefficient "
                   "P = (2B/C - 1)/(2B - 1); default none")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from theory.clop import lr_bound  # lazy: sympy

    out = lr_bound(args.loss, args.tau, args.batch, args.norm, args.reduction, args.classes)
    if args.json:
        print(dumps(out))
        return 0
    print(f"eta_max = {out['eta_max']:.6g}  ({out['formula']}; k = {out['coefficient_k']:.6g})")
    print(f"mutual-pair bound (T2): {out['bounds']['mutual_pair_T2']:.6g}")
    if "at_C1" in out:
        c1 = out["at_C1"]
        print(f"at C1: P = {c1['P']:.6g}, pull k = {c1['pull_k']:.6g}, eta_max = {c1['eta_max']:.6g}")
    print("assumptions:")
    for a in out["assumptions"]:
        print(f"  - {a}")
    print(f"provenance: {out['provenance']}")
    return 0
