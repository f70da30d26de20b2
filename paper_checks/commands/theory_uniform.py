"""``collapsekit theory uniform``: asymptotic values at the uniform measure sigma_d (dhel_kcl.md T6-T8, §7.2).

Every number comes from :mod:`theory.asymptotics` (closed forms in 0F1 / Bessel functions with the
numerically robust fallback chain of anchors.md §7.1).
"""

from __future__ import annotations

import argparse
import math

from ..output import dumps

# = theory.asymptotics.KCL_KERNELS, written out so that building the parser does not import sympy
# (equality asserted in tests/test_cli_startup.py)
KCL_KERNELS = ("gaussian", "log", "imq", "riesz")


def register(sub, groups) -> None:
    p = groups["theory"].add_parser(
        "uniform", help="asymptotic (infinite-batch) values at the uniform measure on S^{d-1}",
        description="Closed-form values at the uniform measure sigma_d on S^{d-1}: the InfoNCE-family limit "
        "A(d, tau) = -1/tau + log 0F1(; d/2; 1/(4 tau^2)) (InfoNCE, SimCLR, DCL, DHEL paper form, after their "
        "log-normalisers), the DHEL code-form limit, Wang-Isola uniformity -2t + log 0F1(; d/2; t^2), the KCL "
        "expected loss (independent of the batch size), the Riesz s = 1 continuum energy and E|s| under p_d "
        "(dhel_kcl.md T6-T8, §7.2; anchors.md §7). With --instances M, also each loss's log-normaliser and the "
        "delta-method finite-M expectation (T7).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--dim", type=int, required=True, help="ambient dimension d >= 2 (points on S^{d-1})")
    p.add_argument("--tau", type=float, default=0.5, help="temperature tau > 0")
    p.add_argument("--t", type=float, default=2.0,
                   help="Wang-Isola scale t > 0 (uniformity_t2 always uses t = 2) and KCL kernel parameter "
                   "(gaussian/log: t > 0; imq: c = t > 0; riesz: s = t with -2 < t < 0)")
    p.add_argument("--gamma", type=float, default=16.0, help="KCL energy weight gamma > 0")
    p.add_argument("--kernel", choices=KCL_KERNELS, default="gaussian", help="KCL kernel")
    p.add_argument("--kcl-form", choices=("code", "paper"), default="code", help="KCL normalisation")
    p.add_argument("--instances", type=int, default=None,
                   help="batch size M >= 2: add the log-normalisers and delta-method expectations (T7)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def compute(args: argparse.Namespace) -> dict:
    from theory import asymptotics as asy  # lazy: sympy

    d, tau, t = args.dim, args.tau, args.t
    if not isinstance(d, int) or d < 2:
        raise ValueError(f"dim must be an integer >= 2; got {d!r}")
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a finite real number > 0; got {tau!r}")
    if not (math.isfinite(t) and (t > 0 or args.kernel == "riesz")):
        raise ValueError(f"t must be a finite real number > 0; got {t!r}")
    unif_t = asy.uniformity_uniform(d, t) if t > 0 else None
    out = {
        "dim": d, "tau": tau, "t": t,
        "log_mgf": asy.log_mgf(1.0 / tau, d),
        "log_mgf_route": asy.log_mgf_route(1.0 / tau, d),
        "infonce_limit": asy.limit_A(d, tau),
        "dhel_code_limit": asy.limit_A_code(d, tau),
        "uniformity_t2": asy.uniformity_uniform(d, 2.0),
        "uniformity_t": unif_t,
        "uniformity_large_d": asy.uniformity_large_d(d, t) if t > 0 else None,
        "kcl_expected_loss": asy.kcl_expected_loss(d, args.kernel, t, args.gamma, args.kcl_form),
        "kcl": {"kernel": args.kernel, "t": t, "gamma": args.gamma, "form": args.kcl_form},
        "riesz_s1_mean": asy.riesz_continuum(1.0, d) if d > 2 else None,
        "mean_abs_similarity": asy.mean_abs_similarity(d),
        "provenance": {"infonce_limit": asy.PROV["limit"], "uniformity": asy.PROV["uniformity"],
                       "kcl_expected_loss": asy.PROV["kcl"], "riesz_s1_mean": asy.PROV["riesz"],
                       "log_mgf": asy.PROV["mgf"]},
    }
    if args.instances is not None:
        m = args.instances
        if not isinstance(m, int) or m < 2:
            raise ValueError(f"instances must be an integer >= 2; got {m!r}")
        out["instances"] = m
        out["finite_batch"] = {
            loss: {"normaliser": asy.log_normaliser(loss, m), "limit": asy.asymptotic_limit(loss, d, tau),
                   "delta_method": asy.delta_method(loss, d, tau, m)}
            for loss in asy.INFONCE_FAMILY
        }
        out["provenance"]["finite_batch"] = asy.PROV["delta"]
    return out


def run(args: argparse.Namespace) -> int:
    out = compute(args)
    if args.json:
        print(dumps(out))
        return 0
    print(f"uniform measure on S^{out['dim'] - 1} (d = {out['dim']}), tau = {out['tau']}, t = {out['t']}")
    print(f"  InfoNCE-family limit A(d, tau)      = {out['infonce_limit']:.12g}")
    print(f"  DHEL code-form limit A_code(d, tau) = {out['dhel_code_limit']:.12g}")
    print(f"  Wang-Isola uniformity (t = 2)       = {out['uniformity_t2']:.12g}")
    if out["uniformity_t"] is not None and out["t"] != 2.0:
        print(f"  Wang-Isola uniformity (t = {out['t']:g})".ljust(39) + f"= {out['uniformity_t']:.12g}")
    k = out["kcl"]
    print(f"  KCL expected loss ({k['kernel']}, {k['form']} form, t = {k['t']}, gamma = {k['gamma']}) = "
          f"{out['kcl_expected_loss']:.12g}")
    if out["riesz_s1_mean"] is not None:
        print(f"  Riesz s = 1 continuum energy E|x-y|^-1 = {out['riesz_s1_mean']:.12g}")
    print(f"  E|s| under p_d = {out['mean_abs_similarity']:.12g}")
    for loss, row in out.get("finite_batch", {}).items():
        print(f"  M = {out['instances']}, {loss}: normaliser {row['normaliser']:.6g}, "
              f"E[L] - normaliser ~ {row['delta_method']:.6g} (limit {row['limit']:.6g})")
    return 0

