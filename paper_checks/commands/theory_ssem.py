"""``collapsekit theory ssem``: the class-collapse guideline of the SSEM paper (ssem.md R5, R6, §6).

For a batch of K classes x n instances x p views at temperature tau: the collapse threshold
alpha* (R5), and with ``--alpha`` the temperature bound tau_max(alpha) (R6), the optimum beta*
(1-D root, §6.1), W* = 1 - beta*, B* = beta*, whether the classes collapse (W* = 0), the regime
(in the self-excluded "view-split" regime of R10 W* and B* come from the reduced 2-D problem and
``beta_star`` is only the SSEM branch's minimiser, spec §6.1)
and the minimum embedding dimension Kn - 1 under which the theory holds (R9, §8.10).  The batch
may be given as ``--classes K --per-class n``, as a balanced training batch ``--batch-size B
--classes K`` (n = B/K, §6.2) or in the authors' notation ``--m M --N N`` (K = m, n = N/m).

Every number comes from :mod:`theory.ssem` (imported lazily, so ``--help`` stays instant) and
carries its provenance string.  These are predictions for free points at the global optimum of
one balanced batch; a trained encoder need not reach it (§8.11).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..output import dumps

VARIANTS = ("code", "self-excluded")


def register(sub, groups) -> None:
    p = groups["theory"].add_parser(
        "ssem", help="class-collapse guideline of SupCL: alpha*, tau_max, W*, B* (SSEM paper, R5/R6)",
        description="Will supervised contrastive learning mixed with a self-supervised term (weight alpha, "
        "temperature tau) collapse the classes of a batch? Prints the collapse threshold alpha* (collapse iff "
        "alpha <= alpha*, ssem.md R5) and, with --alpha, tau_max(alpha) (collapse avoided iff tau < tau_max, "
        "R6), the optimal between-class share beta* (1-D root, section 6.1), W* = 1 - beta* (within-class "
        "variance), B* = beta*, whether the classes collapse (W* = 0), the regime and the minimum embedding "
        "dimension Kn - 1 the theory assumes. Give the batch as --classes K --per-class n, as a balanced "
        "batch --batch-size B --classes K (n = B/K), or in the authors' notation --m M --N N (n = N/m). "
        "Provenance: [REC] [DER+NUM] (the paper's own theorem text was not available).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--classes", "-K", type=int, default=None, metavar="K",
                   help="classes in the batch, K >= 2 (with --per-class or --batch-size)")
    p.add_argument("--per-class", "-n", type=int, default=None, metavar="N_PER_CLASS",
                   help="instances per class, n >= 2")
    p.add_argument("--batch-size", "-B", type=int, default=None, metavar="B",
                   help="instances in a class-balanced batch (before augmentation), B >= 4; n = B/K must be an "
                   "integer >= 2")
    p.add_argument("--m", type=int, default=None, help="authors' notation: number of classes m >= 2 (K = m)")
    p.add_argument("--N", type=int, default=None,
                   help="authors' notation: total instances N, a multiple of m with N/m >= 2 (n = N/m)")
    p.add_argument("--views", "-p", type=int, default=2, metavar="P",
                   help="views (augmentations) per instance, p >= 1 (p >= 2 for the self-excluded variant)")
    p.add_argument("--tau", type=float, required=True, help="temperature tau > 0 (required)")
    p.add_argument("--alpha", type=float, default=None,
                   help="weight of the self-supervised term, alpha in [0, 1] (omit to get only alpha*)")
    p.add_argument("--variant", choices=VARIANTS, default="code",
                   help="code: self pair counted (authors' CIFAR/synthetic code); self-excluded: self pair dropped "
                   "(authors' ImageNet code)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def _batch(args: argparse.Namespace) -> tuple[int, int, dict[str, Any]]:
    """(K, n, input record) from exactly one of --per-class, --batch-size, --m/--N."""
    given = [name for name, v in (("--per-class", args.per_class), ("--batch-size", args.batch_size),
                                  ("--N", args.N)) if v is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of --per-class N_PER_CLASS, --batch-size B (each with --classes K) or "
                         f"--N N (with --m M); got {', '.join(given) or 'none'}")
    if args.N is not None:
        if args.m is None:
            raise ValueError("--N needs --m (the authors' number of classes, m >= 2)")
        if args.classes is not None and args.classes != args.m:
            raise ValueError(f"--classes ({args.classes}) and --m ({args.m}) disagree; give one of them")
        if args.m < 2:
            raise ValueError(f"--m must be an integer >= 2; got {args.m}")
        if args.N % args.m or args.N // args.m < 2:
            raise ValueError(f"--N must be a multiple of --m with N/m >= 2; got --m {args.m}, --N {args.N}")
        return args.m, args.N // args.m, {"mode": "paper", "m": args.m, "N": args.N}
    if args.m is not None:
        raise ValueError("--m goes with --N (authors' notation); use --classes with --per-class or --batch-size")
    if args.classes is None:
        raise ValueError(f"{given[0]} needs --classes K (an integer >= 2)")
    K = args.classes
    if K < 2:
        raise ValueError(f"--classes must be an integer >= 2; got {K}")
    if args.per_class is not None:
        if args.per_class < 2:
            raise ValueError(f"--per-class must be an integer >= 2 (n = 1 leaves no supervised positive); "
                             f"got {args.per_class}")
        return K, args.per_class, {"mode": "per-class"}
    B = args.batch_size
    if B < 1:
        raise ValueError(f"--batch-size must be a positive integer; got {B}")
    if B % K:
        raise ValueError(f"--batch-size ({B}) must be divisible by --classes ({K}) for a class-balanced batch "
                         f"(n = B/K instances per class); {B} = {B // K} x {K} + {B % K}")
    if B // K < 2:
        raise ValueError(f"--batch-size / --classes must be >= 2 instances per class (n = 1 leaves no supervised "
                         f"positive); got {B}/{K} = {B // K}")
    return K, B // K, {"mode": "batch", "batch_size": B}


def _check_args(args: argparse.Namespace) -> None:
    if not (math.isfinite(args.tau) and args.tau > 0):
        raise ValueError(f"--tau must be a finite real number > 0; got {args.tau!r}")
    if args.alpha is not None and not (0.0 <= args.alpha <= 1.0):
        raise ValueError(f"--alpha must lie in [0, 1]; got {args.alpha!r}")
    low = 2 if args.variant == "self-excluded" else 1
    if args.views < low:
        raise ValueError(f"--views must be an integer >= {low} for --variant {args.variant}; got {args.views}")


def compute(args: argparse.Namespace) -> dict[str, Any]:
    """The guideline as one JSON-able dict (see the module docstring)."""
    _check_args(args)
    K, n, source = _batch(args)
    from theory import ssem  # lazy: sympy is imported only when a guideline is computed

    p, tau, variant = args.views, args.tau, args.variant
    if source["mode"] == "batch":  # the library's mapping, for its provenance and its own checks
        source.update(ssem.batch_to_Kn(source["batch_size"], K))
        source.pop("p", None)
    elif source["mode"] == "paper":
        source.update(ssem.Kn_from_paper(args.m, args.N))
    pp = p if variant == "self-excluded" else None
    a_star = ssem.alpha_star(K, n, tau, variant, pp)
    limit = 1 / n if variant == "code" else (p - 1) / (n * p - 1)
    prov: dict[str, str] = {"alpha_star": a_star.provenance, "batch": source.pop("provenance", "input")}
    d_req = ssem.d_min(K, n)
    prov["min_dim"] = d_req.provenance
    out: dict[str, Any] = {
        "K": K, "n": n, "p": p, "tau": tau, "alpha": args.alpha, "variant": variant, "input": source,
        "alpha_star": float(a_star), "alpha_star_limit_small_tau": limit,
        "tau_max": None, "beta_star": None, "within_var": None, "between_var": None, "total_var": None,
        "collapse": None, "regime": None, "min_dim": int(d_req), "min_dim_at_optimum": None,
        "W_small_tau": None, "L_star": None,
    }
    if variant == "self-excluded":
        out["alpha_split"] = float(ssem.alpha_split(K, n, p, tau))
        out["alpha_eff_supcon"] = float(ssem.alpha_eff_supcon(n, p))
        prov["alpha_split"] = ssem.alpha_split(K, n, p, tau).provenance
        prov["alpha_eff_supcon"] = ssem.alpha_eff_supcon(n, p).provenance
    if args.alpha is None:
        out["guideline"] = (f"classes collapse at the optimum iff alpha <= alpha* = {float(a_star):.6g}; "
                            "pass --alpha for beta*, W*, B* and tau_max")
        out["provenance"] = prov
        return out
    alpha = args.alpha
    opt = ssem.beta_star(alpha, tau, K, n, p, variant)
    t_max = ssem.tau_max(alpha, K, n, variant, pp)
    collapse = opt.W_star == 0.0
    out.update(tau_max=float(t_max), beta_star=opt.beta_star, within_var=opt.W_star, between_var=opt.B_star,
               total_var=opt.T_star, collapse=bool(collapse), regime=opt.regime, min_dim_at_optimum=opt.d_min,
               W_small_tau=opt.W_small_tau, L_star=opt.L_star)
    prov.update(tau_max=t_max.provenance, beta_star=opt.provenance, within_var=opt.provenance,
                between_var=opt.provenance, collapse=opt.provenance, regime=opt.provenance,
                W_small_tau=ssem.W_small_tau(alpha, tau, n, variant, pp).provenance,
                min_dim_at_optimum=prov["min_dim"])
    if collapse:
        fix = (f", or lower tau below tau_max(alpha) = {float(t_max):.6g}" if t_max > 0 else
               f" (no temperature helps: alpha <= {limit:.6g}, the small-tau limit of alpha*)")
        out["guideline"] = (f"classes COLLAPSE at the optimum (alpha = {alpha:g} <= alpha* = {float(a_star):.6g}); "
                            f"to avoid it raise alpha above alpha*{fix}")
    elif opt.regime == "view-split":
        out["guideline"] = (f"no class collapse, but alpha = {alpha:g} < alpha_split = {out['alpha_split']:.6g}: "
                            "views of one instance are not aligned (view-split regime, not an SSEM)")
    else:
        out["guideline"] = (f"classes do NOT collapse (alpha = {alpha:g} > alpha* = {float(a_star):.6g}); "
                            f"within-class share W* = {opt.W_star:.6g}")
    out["provenance"] = prov
    return out


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return "inf" if math.isinf(x) else f"{x:.6g}"
    return str(x)


def run(args: argparse.Namespace) -> int:
    out = compute(args)
    if args.json:
        print(dumps(out))
        return 0
    prov = out["provenance"]
    src = out["input"]
    how = {"per-class": "", "batch": f" (balanced batch B = {src.get('batch_size')} over K classes, n = B/K)",
           "paper": f" (authors' notation m = {src.get('m')}, N = {src.get('N')})"}[src["mode"]]
    lines = [f"SSEM guideline, {out['variant']} variant: K = {out['K']} classes, n = {out['n']} per class{how}, "
             f"p = {out['p']} views, tau = {_fmt(out['tau'])}",
             f"  alpha* (collapse iff alpha <= alpha*)   {_fmt(out['alpha_star'])}   [{prov['alpha_star']}]",
             f"  alpha* as tau -> 0                       {_fmt(out['alpha_star_limit_small_tau'])}"]
    if "alpha_split" in out:
        lines.append(f"  alpha_split (view-split below)          {_fmt(out['alpha_split'])}   [{prov['alpha_split']}]")
        lines.append(f"  alpha_eff (standard SupCon)             {_fmt(out['alpha_eff_supcon'])}   "
                     f"[{prov['alpha_eff_supcon']}]")
    if out["alpha"] is not None:
        lines += [
            f"  alpha                                    {_fmt(out['alpha'])}",
            f"  tau_max(alpha) (no collapse iff tau <)   {_fmt(out['tau_max'])}   [{prov['tau_max']}]",
            f"  beta* (minimiser of L_SSEM(beta))        {_fmt(out['beta_star'])}   [{prov['beta_star']}]",
            f"  W* (within-class variance)               {_fmt(out['within_var'])}",
            f"  B* (between-class variance)              {_fmt(out['between_var'])}",
            f"  W* small-tau asymptote (R8)              {_fmt(out['W_small_tau'])}",
            f"  classes collapse                         {'yes' if out['collapse'] else 'no'}  "
            f"(regime: {out['regime']})",
            f"  rank of the optimum                      {out['min_dim_at_optimum']}",
        ]
    lines.append(f"  minimum embedding dimension K n - 1      {out['min_dim']}   [{prov['min_dim']}]")
    lines.append(f"  => {out['guideline']}")
    print("\n".join(lines))
    return 0
