"""``collapsekit theory simplex``: closed-form loss values at the aligned regular simplex (dhel_kcl.md T1, T3a).

The value is the sympy derivation of :mod:`theory.simplex_closed_forms` (from the simplex Gram,
inner product -1/(M-1)), evaluated with mpmath.
"""

from __future__ import annotations

import argparse

from ..output import dumps

# = theory.simplex_closed_forms.LOSSES + ("kcl",) and theory.simplex_closed_forms.KCL_KERNELS,
# written out so that building the parser does not import sympy (tests/test_cli_startup.py)
NAMES = ("infonce", "infonce-sym", "simclr", "dcl", "dcl-sym", "dhel", "dhel2", "kcl")
KCL_KERNELS = ("gaussian", "log", "imq", "riesz")


def register(sub, groups) -> None:
    p = groups["theory"].add_parser(
        "simplex", help="closed-form loss value at the aligned regular simplex (T1, T3a)",
        description="Value of an InfoNCE-family loss or of KCL at the aligned regular simplex (V = U, "
        "u_i.u_j = -1/(M-1)), derived with sympy from the simplex Gram (dhel_kcl.md T1, T3a). For M <= d + 1 "
        "this is the global minimum in R^d; for M > d + 1 the simplex does not exist in R^d and the value is "
        "the Gram-relaxation lower bound (T5). Losses: infonce (one direction), infonce-sym, simclr, dcl (one "
        "direction), dcl-sym (2M anchors), dhel (paper form), dhel2 (code form), kcl (--kernel, --t, --gamma, "
        "--kcl-form).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--loss", required=True, choices=NAMES, metavar="NAME", help=f"one of {', '.join(NAMES)}")
    p.add_argument("--instances", type=int, required=True, help="batch size M >= 2 (positive pairs)")
    p.add_argument("--tau", type=float, default=0.5, help="temperature tau > 0 (InfoNCE family)")
    p.add_argument("--kernel", choices=KCL_KERNELS, default="gaussian", help="kcl: kernel")
    p.add_argument("--t", type=float, default=2.0,
                   help="kcl: kernel parameter (gaussian/log t > 0, imq c = t > 0, riesz s = t < 0)")
    p.add_argument("--gamma", type=float, default=16.0, help="kcl: energy weight gamma > 0")
    p.add_argument("--kcl-form", choices=("code", "paper"), default="code", help="kcl: normalisation")
    p.add_argument("--dim", type=int, default=None,
                   help="optional ambient dimension d >= 1: reports whether the simplex exists in R^d (M <= d + 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def compute(args: argparse.Namespace) -> dict:
    from theory import simplex_closed_forms as scf  # lazy: sympy

    m = args.instances
    if args.loss == "kcl":
        value = scf.kcl_value(m, args.kernel, args.t, args.gamma, args.kcl_form)
        expr = scf.kcl_closed_form(args.kernel, args.kcl_form)
        params = {"kernel": args.kernel, "t": args.t, "gamma": args.gamma, "form": args.kcl_form}
    else:
        value = scf.value(args.loss, m, args.tau)
        expr = scf.closed_form(args.loss)
        params = {"tau": args.tau}
    out = {"loss": args.loss, "instances": m, **params, "value": value, "expression": str(expr),
           "gram_entry": str(scf.simplex_gram_entry()), "min_dim": m - 1,
           "provenance": scf.PROVENANCE[args.loss]}
    if args.dim is not None:
        if not isinstance(args.dim, int) or args.dim < 1:
            raise ValueError(f"dim must be an integer >= 1; got {args.dim!r}")
        out["dim"] = args.dim
        out["attained_in_dim"] = m <= args.dim + 1
    return out


def run(args: argparse.Namespace) -> int:
    out = compute(args)
    if args.json:
        print(dumps(out))
        return 0
    print(f"{out['loss']} at the aligned regular simplex, M = {out['instances']}: {out['value']:.12g}")
    print(f"  closed form: {out['expression']}   [{out['provenance']}]")
    print(f"  exists in R^d for d >= {out['min_dim']}" + (
        "" if "dim" not in out else f"; in R^{out['dim']}: {'yes' if out['attained_in_dim'] else 'no (lower bound)'}"))
    return 0
