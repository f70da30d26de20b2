"""``collapsekit certify``: a certified lower bound from the Gram relaxation, against a local solve.

The relaxation (:mod:`solvers.certificates`) minimises the loss over {G psd, diag G = 1} (plus fixed
prototype blocks, plus G >= 0 with --nonnegative); its value bounds the loss from below in every
dimension.  The local solver (:mod:`solvers.sphere_solver`) gives the best configuration it finds
in R^d; when the two agree to the tolerance, that configuration is a certified global minimiser.
"""

from __future__ import annotations

import argparse
import sys
import time

from solvers.layout import Layout
from solvers.loss_registry import ENERGIES, SELF_SUPERVISED, build_loss
from solvers.validation import check_class_sizes, check_int

from ..loss_options import add_loss_arguments, options_from_args
from ..output import dumps
from .solve import STRATEGIES

# = solvers.certificates.SOLVERS, written out so that --help does not import cvxpy
# (equality asserted in tests/test_cli_startup.py)
SOLVERS = ("auto", "clarabel", "scs")

VIEWS_TWO = SELF_SUPERVISED + ("supcl",)


def register(sub, groups) -> None:
    p = sub.add_parser(
        "certify", help="certify a global minimum with the convex Gram relaxation (cvxpy)",
        description="Minimise the loss over Gram matrices {G psd, diag G = 1} (a lower bound in every "
        "dimension; exact when the optimal G has rank <= d), run the local sphere solver in R^d, and "
        "report the gap. certified = the local value is within atol + rtol |value| of the bound. Losses "
        "that are not convex in G (SupCon L_in, KCL's alignment term, CLOP's euclidean/manhattan "
        "distances) are refused with the name of the non-convex term (exit 2).",
    )
    add_loss_arguments(p)
    g = p.add_argument_group("batch", "which rows: --classes K --per-class n (or --class-sizes), or --instances M")
    g.add_argument("--classes", type=int, default=None, help="number of classes K >= 1 (supervised losses)")
    g.add_argument("--per-class", type=int, default=None, help="instances per class n >= 1 (balanced)")
    g.add_argument("--class-sizes", default=None, metavar="n1,n2,...",
                   help="instances per class, comma separated (imbalanced; replaces --classes/--per-class)")
    g.add_argument("--instances", type=int, default=None,
                   help="instances M >= 2 (self-supervised losses: 2M rows; energies: M x views points)")
    g.add_argument("--views", type=int, default=None,
                   help="views p >= 1 per instance, rows view-major (default 2 for self-supervised losses and "
                   "supcl, 1 otherwise; self-supervised losses need 2)")
    s = p.add_argument_group("solvers")
    s.add_argument("--dim", type=int, required=True, help="embedding dimension d >= 1 of the local solve")
    s.add_argument("--restarts", type=int, default=10, help="local solver: seeded restarts >= 1 (default 10)")
    s.add_argument("--seed", type=int, default=0, help="local solver seed >= 0 (default 0)")
    s.add_argument("--strategy", choices=STRATEGIES, default="multistart",
                   help="local solver strategy (default multistart)")
    s.add_argument("--tied", action="store_true",
                   help="tie the views of each instance (one point per instance, in both the relaxation and "
                   "the local solve); e.g. KCL via dhel_kcl.md T2")
    s.add_argument("--nonnegative", action="store_true",
                   help="non-negative features (UFM+): G >= 0 entrywise in the relaxation, points >= 0 locally")
    s.add_argument("--solver", choices=SOLVERS, default="auto",
                   help="conic solver: clarabel, scs, or auto = clarabel then scs as fallback (default auto)")
    s.add_argument("--rank-tol", type=float, default=1e-5,
                   help="eigenvalues of G above this count towards its rank, > 0 (default 1e-5)")
    s.add_argument("--atol", type=float, default=1e-6,
                   help="certificate tolerance, absolute part, >= 0 (default 1e-6: solver accuracy ~1e-8)")
    s.add_argument("--rtol", type=float, default=1e-6, help="certificate tolerance, relative part, >= 0 (default 1e-6)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def batch_layout(args: argparse.Namespace) -> tuple[Layout, int, dict]:
    """(layout, number of classes for prototype construction, description) from the batch options."""
    name = args.loss
    base_ss = name == "clop" and args.base in SELF_SUPERVISED
    default_views = 2 if (name in VIEWS_TWO or base_ss) else 1
    views = check_int(args.views if args.views is not None else default_views, "views", 1)
    supervised_args = args.classes is not None or args.per_class is not None or args.class_sizes is not None
    if name in SELF_SUPERVISED or name in ENERGIES:
        if args.instances is None or supervised_args:
            raise ValueError(f"instances must be given (--instances M >= 2) for {name!r}, without --classes/"
                             "--per-class/--class-sizes")
        m = check_int(args.instances, "instances", 2 if name in SELF_SUPERVISED else 1)
        lay = Layout.instances(m, views)
        desc = {"instances": m, "views": views, "rows": lay.n_rows}
        return lay, m, desc
    if args.instances is not None:
        raise ValueError(f"instances is for self-supervised losses and energies; {name!r} needs --classes K "
                         "--per-class n or --class-sizes")
    if args.class_sizes is not None:
        if args.classes is not None or args.per_class is not None:
            raise ValueError("class-sizes replaces --classes/--per-class; give one or the other")
        try:
            sizes = [int(x) for x in str(args.class_sizes).split(",")]
        except ValueError:
            raise ValueError(f"class-sizes must be comma-separated integers >= 1; got {args.class_sizes!r}") from None
        sizes = check_class_sizes(sizes)
        lay = Layout.from_class_sizes(sizes, views)
    else:
        if args.classes is None or args.per_class is None:
            raise ValueError(f"classes and per-class must be given (--classes K --per-class n) for {name!r}")
        lay = Layout.balanced(check_int(args.classes, "classes", 1), check_int(args.per_class, "per_class", 1),
                              views)
    sizes = lay.class_sizes.tolist()
    return lay, len(sizes), {"class_sizes": sizes, "views": views, "rows": lay.n_rows}


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    dim = check_int(args.dim, "dim", 1)
    restarts = check_int(args.restarts, "restarts", 1)
    seed = check_int(args.seed, "seed", 0)
    for tol_name in ("atol", "rtol"):
        if not getattr(args, tol_name) >= 0:
            raise ValueError(f"{tol_name} must be a real number >= 0; got {getattr(args, tol_name)!r}")
    layout, classes, desc = batch_layout(args)
    opts = options_from_args(args, classes, dim)
    loss = build_loss(args.loss, layout, dim, opts)
    from tqdm import tqdm  # lazy: only a command that runs shows a bar

    bar = tqdm(total=restarts, desc="local solves", unit="start", file=sys.stderr,
               disable=args.json or not sys.stderr.isatty())

    def progress(done: int, best: float) -> None:
        bar.update(done - bar.n)
        bar.set_postfix_str(f"best {best:.10g}")

    try:
        from solvers.certificates import certify  # lazy: cvxpy costs ~1 s to import at CLI start-up

        cert = certify(loss, dim, views=layout.views, tied=args.tied, nonnegative=args.nonnegative,
                       restarts=restarts, seed=seed, strategy=args.strategy, solver=args.solver,
                       rank_tol=args.rank_tol, atol=args.atol, rtol=args.rtol,
                       local_options={"progress": progress})
    finally:
        bar.close()
    payload = {
        "loss": args.loss, "definition": loss.describe(), "batch": desc, "dim": dim, "tied": args.tied,
        "nonnegative": args.nonnegative, "lower_bound": cert.lower_bound, "local_value": cert.local_value,
        "points_value": cert.points_value, "upper_bound": cert.upper_bound, "gap": cert.gap,
        "rank": cert.rank, "tight": cert.tight, "certified": cert.certified, "status": cert.status,
        "solver": cert.solver, "duality_gap": cert.duality_gap, "atol": cert.atol, "rtol": cert.rtol,
        "top_eigenvalues": cert.eigenvalues[: min(dim + 2, cert.eigenvalues.size)],
        "relaxation_seconds": cert.seconds, "local_seconds": cert.local.get("seconds"),
        "restarts": cert.local.get("restarts"), "hits": cert.local.get("hits"), "size": cert.size,
        "message": cert.message, "seconds": time.perf_counter() - start,
    }
    if args.tied:
        payload["note"] = ("certificate of the tied problem (the views of an instance share one point); for DHEL "
                           "and KCL it is the global minimum of the untied loss too (dhel_kcl.md T2)")
    if args.json:
        print(dumps(payload))
        return 0
    verdict = "CERTIFIED global minimum" if cert.certified else "not certified"
    print(f"{args.loss} ({desc}) in R^{dim}: {verdict}")
    print(f"  lower bound (relaxation) {cert.lower_bound:.12g}  [{cert.solver}, {cert.status}, "
          f"duality gap {cert.duality_gap:.2g}]")
    print(f"  local value              {cert.local_value:.12g}  ({cert.local.get('hits')}/"
          f"{cert.local.get('restarts')} restarts at the best value)")
    if cert.points_value is not None:
        print(f"  value at factorised G    {cert.points_value:.12g}  (points in R^{dim} from the optimal G)")
    print(f"  gap {cert.gap:.3g}; rank of optimal G = {cert.rank} ({'<=' if cert.tight else '>'} d = {dim}); "
          f"{payload['seconds']:.2f} s")
    if "note" in payload:
        print(f"  note: {payload['note']}")
    return 0
