"""``collapsekit solve``: minimise a loss over point configurations on the sphere.

Builds the batch layout (classes x instances x views, or M two-view instances for the
self-supervised losses, or N points for the energies), the loss (:mod:`solvers.loss_registry`),
and runs :func:`solvers.sphere_solver.solve`; reports the minimum with the collapse metrics of
:mod:`solvers.metrics`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from solvers.layout import Layout
from solvers.loss_registry import ENERGIES, SELF_SUPERVISED, build_loss
from solvers.validation import check_int

from ..loss_options import add_loss_arguments, options_from_args
from ..output import dumps, to_jsonable

if TYPE_CHECKING:
    from solvers.sphere_solver import SphereProblem, SphereResult

ERANK_CONVENTION = "covariance"
# = solvers.sphere_solver.STRATEGIES, written out so that building the parser does not import
# scipy.optimize (equality asserted in tests/test_cli_startup.py)
STRATEGIES = ("multistart", "basinhopping", "warm")


def register(sub, groups) -> None:
    p = sub.add_parser(
        "solve", help="minimise a loss over unit-norm point configurations (multi-start L-BFGS)",
        description="Minimise a loss of the library directly over the points (float64, analytic gradients, "
        "L-BFGS on the normalised parametrisation polished until the Riemannian gradient norm is <= gtol * "
        "max(1, |Euclidean gradient|)). Supervised losses: --classes K with --per-class n, or --class-sizes "
        "n1,n2,..., and --views p (rows view-major). Self-supervised losses: --instances M (two views). "
        "Energies (riesz, log, gaussian, uniformity, frame): --instances N points. Reports the loss (mean "
        "over anchors), within/between/total variance, class-mean cosines, the effective rank "
        f"({ERANK_CONVENTION} convention), the smallest cosine between views of one instance, and how many "
        "restarts reached the best value.",
    )
    add_loss_arguments(p)
    g = p.add_argument_group("batch", "layout of the batch")
    g.add_argument("--classes", type=int, default=None,
                   help="supervised: number of classes K >= 1 (no default; required with --per-class)")
    g.add_argument("--per-class", type=int, default=None,
                   help="supervised: instances per class n >= 1, balanced (no default)")
    g.add_argument("--class-sizes", default=None, metavar="n1,n2,...",
                   help="supervised: instances per class, comma separated, each >= 1 (imbalanced); "
                   "replaces --per-class (no default)")
    g.add_argument("--views", type=int, default=None,
                   help="views per instance p >= 1 for supervised losses (default 1; self-supervised losses "
                   "always use 2)")
    g.add_argument("--instances", type=int, default=None,
                   help="self-supervised losses: M >= 1 two-view instances; energies: N >= 2 points (no default)")
    g.add_argument("--dim", type=int, required=True,
                   help="ambient dimension d >= 1, points on S^{d-1} (required, no default)")
    g.add_argument("--batches", default=None, metavar="full|random:b[xR][:bind]|FILE.json",
                   help="supcon, supcon-in, protosupcon (one view): minimise the sum over a family of mini-batches "
                   "of the loss summed over anchors with a positive, prototypes appended to every batch "
                   "(prototypes.md §1.1, §1.3). 'random:b' = one seeded (--seed) random partition of the rows into "
                   "batches of b >= 1, 'random:bxR' = the union of R >= 1 partitions, ':bind' adds the first example "
                   "of each class to every batch (Kini's batch-binding), 'full' = one batch, FILE.json = a list of "
                   "row-index lists (or {\"batches\": [...]}); rows are class-major (default: off, the loss as "
                   "registered, mean over anchors, one full batch)")
    _add_solver_arguments(p)
    p.add_argument("--nonnegative", action="store_true",
                   help="entry-wise non-negative features (UFM+ / ReLU model; z = u*u/|u*u|); default off")
    p.add_argument("--tied-views", action="store_true",
                   help="all views of an instance share one free point (default: views are free)")
    p.add_argument("--save", default=None, metavar="FILE.npz",
                   help="save points, free points, labels and the summary to FILE.npz (default: not saved)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object instead of text, no progress bar (default: text)")
    p.set_defaults(func=run)


def _add_solver_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("solver", "global strategy and tolerances")
    g.add_argument("--restarts", type=int, default=10,
                   help="local solves >= 1: random starts (multistart, warm) or hops (basinhopping); default 10")
    g.add_argument("--seed", type=int, default=0,
                   help="seed >= 0 of the numpy Generator (also seeds random prototypes); default 0")
    g.add_argument("--strategy", choices=STRATEGIES, default="multistart",
                   help="multistart (seeded uniform starts), basinhopping (perturb a subset of points and "
                   "polish, keep if better) or warm (Riesz s = d-2 first, s = 1 if d <= 2, then the target); "
                   "default multistart")
    g.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="start no new local solve after this many seconds (> 0; default: no limit)")
    g.add_argument("--gtol", type=float, default=1e-10,
                   help="relative tolerance > 0 on the Riemannian gradient norm (default 1e-10)")


# ----------------------------------------------------------------------------------------------
# layout
# ----------------------------------------------------------------------------------------------
@dataclass
class Batch:
    """The layout the loss is built on, the per-row labels for the metrics, and the free rows."""

    layout: Layout
    labels: np.ndarray | None
    classes: int
    views: int
    clop_labels: np.ndarray | None = None
    kind: str = "supervised"


def _class_sizes(args: argparse.Namespace) -> list[int]:
    if args.class_sizes is not None:
        if args.per_class is not None:
            raise ValueError("class-sizes and per-class are exclusive: give one of them")
        try:
            sizes = [int(s) for s in args.class_sizes.split(",")]
        except ValueError:
            raise ValueError(f"class-sizes must be comma-separated integers >= 1; got {args.class_sizes!r}") from None
        if args.classes is not None and args.classes != len(sizes):
            raise ValueError(f"classes ({args.classes}) must equal the number of class sizes ({len(sizes)})")
        return sizes
    if args.classes is None or args.per_class is None:
        raise ValueError(f"the supervised loss {args.loss!r} needs --classes K with --per-class n, or --class-sizes")
    k = check_int(args.classes, "classes", 1)
    return [check_int(args.per_class, "per-class", 1)] * k


def build_batch(args: argparse.Namespace) -> Batch:
    """Layout and labels from the batch options (see the command's description)."""
    if args.loss in ENERGIES:
        n = check_int(args.instances if args.instances is not None else 0, "instances", 2)
        return Batch(Layout.instances(n, 1), None, 1, 1, kind="energy")
    if args.loss in SELF_SUPERVISED:
        if args.views not in (None, 2):
            raise ValueError(f"views must be 2 for the self-supervised loss {args.loss!r}; got {args.views}")
        if args.instances is None:
            raise ValueError(f"the self-supervised loss {args.loss!r} needs --instances M")
        m = check_int(args.instances, "instances", 1)
        lay = Layout.instances(m, 2)
        return Batch(lay, lay.row_instance, m, 2, kind="self-supervised")
    clop_ssl = args.loss == "clop" and args.base in SELF_SUPERVISED
    views = check_int(args.views if args.views is not None else (2 if clop_ssl else 1), "views", 1)
    sup = Layout.from_class_sizes(_class_sizes(args), views)
    classes = len(sup.class_sizes)
    if clop_ssl:
        if views != 2:
            raise ValueError(f"views must be 2 for clop with the self-supervised base {args.base!r}; got {views}")
        return Batch(Layout.instances(sup.n_instances, 2), sup.row_class, classes, 2, sup.row_class)
    return Batch(sup, sup.row_class, classes, views)


# ----------------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------------
def min_view_cosine(points: np.ndarray, views: int) -> float | None:
    """Smallest cosine between two views of one instance (rows view-major); None for one view."""
    if views < 2:
        return None
    blocks = points.reshape(views, -1, points.shape[1])
    cos = np.einsum("vmd,wmd->vwm", blocks, blocks)
    iu = np.triu_indices(views, 1)
    return float(np.min(cos[iu[0], iu[1]]))


def collapse_metrics(points: np.ndarray, labels: np.ndarray | None, views: int) -> dict:
    """within/between/total variance (size weights, T = W + B), class-mean cosines, effective rank."""
    from solvers.metrics import class_mean_cosines, effective_rank, variances  # lazy: scipy.linalg/spatial

    out: dict = {"min_view_cosine": min_view_cosine(points, views)}
    lab = np.arange(points.shape[0]) if labels is None else labels
    w, b, t = variances(points, lab)
    out.update(within_var=w, between_var=b, total_var=t)
    out["class_mean_cosines"] = None
    if labels is not None:
        try:
            out["class_mean_cosines"] = class_mean_cosines(points, labels).tolist()
        except ValueError as exc:  # one class, or a class mean at the origin: report, do not fail
            out["class_mean_cosines_note"] = str(exc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-zero spectrum -> 0 (full collapse)
        out["effective_rank"] = effective_rank(points, convention=ERANK_CONVENTION)
    out["effective_rank_convention"] = ERANK_CONVENTION
    return out


def prototype_metrics(points: np.ndarray, labels: np.ndarray, prototypes: np.ndarray | None) -> dict:
    """Delta_ETF, Delta_OF (uncentred class means), Delta_W (to the prototypes' Gram) and NC1
    (Kini's convention), prototypes.md §1.4; ``None`` where undefined (a zero class mean)."""
    from solvers.metrics import class_mean_gram_distance, nc1  # lazy: scipy

    out: dict = {"delta_etf": None, "delta_of": None, "delta_w": None, "nc1": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            out["delta_etf"] = class_mean_gram_distance(points, labels, "etf")
            out["delta_of"] = class_mean_gram_distance(points, labels, "of")
            if prototypes is not None:
                w = prototypes / np.linalg.norm(prototypes, axis=1, keepdims=True)
                out["delta_w"] = class_mean_gram_distance(points, labels, w @ w.T)
            out["nc1"] = nc1(points, labels)
        except ValueError as exc:
            out["prototype_metrics_note"] = str(exc)
    return out


def minibatch_loss(args: argparse.Namespace, batch: Batch, loss) -> tuple:
    """The --batches objective (solvers.minibatch.batched_loss) and a JSON summary of the family."""
    from solvers.minibatch import batched_loss, batches_from_spec  # lazy: scipy.sparse
    from theory.prototypes import binding_report  # lazy: sympy

    if args.loss not in ("supcon", "supcon-in", "protosupcon"):
        raise ValueError(f"batches applies to supcon, supcon-in and protosupcon; got loss {args.loss!r}")
    if batch.views != 1:
        raise ValueError(f"batches needs views = 1 (one row per example); got views = {batch.views}")
    fam = batches_from_spec(args.batches, batch.labels, args.seed)
    protos = loss.fixed if args.loss == "protosupcon" else None
    copies = args.prototype_copies if args.loss == "protosupcon" else 0
    variant = "in" if args.loss == "supcon-in" else "out"
    out = batched_loss(batch.labels, fam, args.tau, protos, copies, args.prototypes_as_anchors, variant)
    rep = binding_report(fam, batch.labels)
    summary = {"spec": args.batches, "batches": len(fam), "batch_sizes": sorted({int(b.size) for b in fam}),
               "empty_batches": out.describe().get("empty_batches", 0),
               "reduction": "sum over batches of the loss summed over anchors with a positive",
               "binding_condition": rep.unique, "unrelated_class_pairs": [list(p) for p in rep.unrelated],
               "within_class_connected": rep.within_connected}
    return out, summary


# ----------------------------------------------------------------------------------------------
# running
# ----------------------------------------------------------------------------------------------
def progress_bar(total: int, enabled: bool, desc: str):
    """A tqdm bar on stderr (only on a terminal and when enabled) and its progress callback."""
    from tqdm import tqdm  # lazy: only a command that runs shows a bar

    bar = tqdm(total=total, desc=desc, unit="restart", file=sys.stderr,
               disable=not (enabled and sys.stderr.isatty()))

    def update(done: int, best: float) -> None:
        bar.update(done - bar.n)
        bar.set_postfix_str(f"best {best:.12g}")

    return bar, update


def run_solver(problem: SphereProblem, args: argparse.Namespace, desc: str, **extra) -> SphereResult:
    from solvers.sphere_solver import solve  # lazy: scipy.optimize

    bar, update = progress_bar(args.restarts, not args.json, desc)
    try:
        return solve(problem, strategy=args.strategy, restarts=args.restarts, seed=args.seed,
                     time_limit=args.time_limit, gtol=args.gtol, progress=update, **extra)
    finally:
        bar.close()


def save_npz(path: str, result: SphereResult, payload: dict, labels: np.ndarray | None = None) -> None:
    """points, free_points, all_values, labels (if any) and the JSON summary as ``meta``."""
    arrays = {"points": result.points, "free_points": result.free_points,
              "all_values": np.asarray(result.all_values)}
    if labels is not None:
        arrays["labels"] = labels
    meta = {k: v for k, v in payload.items() if k != "points"}
    np.savez(path, meta=np.array(json.dumps(to_jsonable(meta))), **arrays)


def run(args: argparse.Namespace) -> int:
    from solvers.sphere_solver import SphereProblem  # lazy: scipy.optimize

    start = time.perf_counter()
    check_int(args.dim, "dim", 1)
    batch = build_batch(args)
    opts = options_from_args(args, batch.classes, args.dim)
    loss = build_loss(args.loss, batch.layout, args.dim, opts, clop_labels=batch.clop_labels)
    protos = loss.fixed if args.loss in ("protosupcon", "ce-fixed") else None
    minibatch = None
    if args.batches is not None:
        loss, minibatch = minibatch_loss(args, batch, loss)
    problem = SphereProblem(loss, args.dim, batch.views, args.tied_views, args.nonnegative)
    result = run_solver(problem, args, args.loss)
    payload = {
        "loss": result.fun, "loss_name": args.loss, "definition": loss.describe(),
        "grad_norm": result.grad_norm, "grad_tol": result.grad_tol,
        **collapse_metrics(result.points, batch.labels, batch.views),
        "restarts": result.restarts, "hits": result.hits, "hit_tol": result.hit_tol,
        "all_values": result.all_values, "strategy": result.strategy, "success": result.success,
        "message": result.message, "nit": result.nit, "nfev": result.nfev,
        "n_rows": problem.n_rows, "n_free": problem.n_free, "dim": args.dim, "views": batch.views,
        "kind": batch.kind, "class_sizes": batch.layout.class_sizes.tolist() if batch.kind == "supervised" else None,
        "tied_views": args.tied_views, "nonnegative": args.nonnegative, "seed": args.seed,
        "solver_seconds": result.seconds,
    }
    if minibatch is not None:
        payload["minibatch"] = minibatch
    if batch.kind == "supervised" and batch.classes >= 2:
        payload.update(prototype_metrics(result.points, batch.labels, protos))
    payload["seconds"] = time.perf_counter() - start
    if args.save:
        save_npz(args.save, result, payload, batch.labels)
    print(dumps(payload) if args.json else summary_text(payload))
    return 0


def _minibatch_text(m: dict) -> str:
    state = "holds" if m["binding_condition"] else "fails"
    return (f"  mini-batches ({m['spec']}): {m['batches']} batches of sizes {m['batch_sizes']}; Kini's uniqueness "
            f"condition {state}")


def _fmt(v: float | None, spec: str = ".4g") -> str:
    return "n/a" if v is None else format(v, spec)


def summary_text(p: dict) -> str:
    """A short human summary of a solve payload."""
    cos = p["class_mean_cosines"]
    cos_txt = "n/a" if not cos else f"min {min(cos):.6g}, max {max(cos):.6g}"
    state = "converged" if p["success"] else "NOT converged"
    return "\n".join([
        f"{p['loss_name']} on {p['n_rows']} rows in R^{p['dim']} ({p['kind']}, views {p['views']}"
        f"{', tied' if p['tied_views'] else ''}{', non-negative' if p['nonnegative'] else ''}): "
        f"loss = {p['loss']:.12g}",
        f"  gradient norm {p['grad_norm']:.3g} ({state}); {p['hits']}/{p['restarts']} restarts reached the "
        f"best value [{p['strategy']}, {p['seconds']:.2f} s]",
        f"  variance within {p['within_var']:.3g}, between {p['between_var']:.6g}, total {p['total_var']:.6g}",
        f"  class-mean cosines: {cos_txt}; effective rank {p['effective_rank']:.4f} "
        f"({p['effective_rank_convention']}); min view cosine {_fmt(p['min_view_cosine'], '.6g')}",
        *([f"  Delta_ETF {_fmt(p['delta_etf'], '.6g')}, Delta_OF {_fmt(p['delta_of'], '.6g')}, "
           f"Delta_W {_fmt(p['delta_w'], '.6g')}, NC1 {_fmt(p['nc1'], '.3g')}"] if "delta_etf" in p else []),
        *([_minibatch_text(p["minibatch"])] if p.get("minibatch") else []),
    ])
