"""``collapsekit loss``: evaluate a loss and its gradient on given points."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from solvers.layout import Layout
from solvers.loss_registry import ENERGIES, SELF_SUPERVISED, build_loss
from solvers.validation import check_labels, check_points

from ..loss_options import add_loss_arguments, options_from_args
from ..output import dumps


def register(sub, groups) -> None:
    p = sub.add_parser(
        "loss", help="evaluate a loss and its gradient norm on points from a .npy file",
        description="Evaluate a loss of the library (float64, rows L2-normalised inside the loss) and the "
        "norm of its gradient with respect to the raw points. Self-supervised losses read the rows as "
        "U (first half) then V (second half); supervised losses need --labels (one integer per row, "
        "view-major when --views > 1); clop reads --labels with -1 for unlabelled rows.",
    )
    add_loss_arguments(p)
    p.add_argument("--points", required=True, metavar="FILE.npy", help="(N, d) array of points, one per row")
    p.add_argument("--labels", default=None, metavar="FILE.npy", help="(N,) integer class labels, one per row")
    p.add_argument("--views", type=int, default=1,
                   help="views per instance for supervised losses (rows view-major: row = view * M + "
                   "instance); default 1")
    p.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                   help="numpy (float64 reference) or torch (the torch path: --device, --dtype, --block, --mode; "
                   "needs the optional dependency torch) (default numpy)")
    p.add_argument("--device", default="cpu", help="torch backend: cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="torch backend: floating-point type (default float64)")
    p.add_argument("--block", type=int, default=1024,
                   help="torch backend: rows per panel of the blockwise evaluation, >= 1 (default 1024)")
    p.add_argument("--mode", choices=("blockwise", "dense"), default="blockwise",
                   help="torch backend: blockwise (streamed, memory O(N * block)) or dense (O(N^2)) "
                   "(default blockwise)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def _load(path: str, what: str) -> np.ndarray:
    if not Path(path).exists():
        raise ValueError(f"{what} file {path!r} does not exist")
    return np.load(path)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    pts = check_points(_load(args.points, "points"), "points")
    n, dim = pts.shape
    clop_labels = None
    if args.loss in SELF_SUPERVISED or (args.loss == "clop" and args.base in SELF_SUPERVISED):
        if n % 2:
            raise ValueError(f"points must have an even number of rows (U then V) for {args.loss}; got {n}")
        layout = Layout.instances(n // 2, 2)
        if args.loss == "clop":
            if args.labels is None:
                raise ValueError("labels are required for clop (-1 marks unlabelled rows)")
            clop_labels = check_labels(_load(args.labels, "labels"), n)
            classes = int(clop_labels.max()) + 1
        else:
            classes = n // 2
    elif args.loss in ENERGIES:
        layout, classes = Layout.instances(n, 1), 1
    else:
        if args.labels is None:
            raise ValueError(f"labels are required for the supervised loss {args.loss!r} (--labels FILE.npy)")
        labels = check_labels(_load(args.labels, "labels"), n)
        layout = Layout.from_row_labels(labels, args.views)
        classes = int(labels.max()) + 1
    opts = options_from_args(args, classes, dim)
    torch_info = None
    if args.backend == "torch":
        try:
            from solvers.torch_path import evaluate_torch, structured_torch_loss
        except ModuleNotFoundError as exc:
            raise ValueError(f"backend 'torch' needs the optional dependency torch ({exc}); "
                             "pip install 'collapsekit[torch]' or use --backend numpy") from None
        tloss = structured_torch_loss(args.loss, layout, dim, opts, clop_labels=clop_labels,
                                      device=args.device, dtype=args.dtype)
        res = evaluate_torch(tloss, pts, block=args.block, mode=args.mode)
        value, grad, definition, torch_info = res.value, res.grad, tloss.describe(), res.summary()
    else:
        loss = build_loss(args.loss, layout, dim, opts, clop_labels=clop_labels)
        value, grad = loss.value_and_grad(pts)
        definition = loss.describe()
    payload = {
        "loss": args.loss, "value": value, "grad_norm": float(np.linalg.norm(grad)), "n_points": n, "dim": dim,
        "backend": args.backend, "definition": definition, "seconds": time.perf_counter() - start,
    }
    if torch_info is not None:
        payload["torch"] = torch_info
    if args.json:
        print(dumps(payload))
    else:
        where = ""
        if torch_info is not None:
            where = f", torch {torch_info['device']} {torch_info['dtype']} {torch_info['mode']}"
        print(f"{args.loss}: value = {value:.12g}, |grad| = {payload['grad_norm']:.6g} ({n} points in R^{dim}{where})")
    return 0
