"""``collapsekit figures``: regenerate the papers' figures at small scale."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..output import dumps

# = figures.registry.FORMATS, written out so that building the parser imports no figures module
# (equality asserted in tests/test_cli_startup.py)
FORMATS = ("png", "pdf", "svg")


def register(sub, groups) -> None:
    p = sub.add_parser(
        "figures", help="regenerate the papers' figures (small scale, matplotlib)",
        description="Regenerate figures into --out, one file per figure and format.",
    )
    p.add_argument("--paper", default=None, help="only this paper's figures (default: all)")
    p.add_argument("--out", default="figures_out", help="output folder (default figures_out)")
    p.add_argument("--format", default="png,pdf",
                   help=f"comma-separated formats among {', '.join(FORMATS)} (default png,pdf)")
    p.add_argument("--quick", action="store_true", help="coarser grids and fewer seeds")
    p.add_argument("--list", action="store_true", help="list the figures without drawing them")
    p.add_argument("--json", action="store_true", help="print one JSON object listing the files written")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from figures.registry import select  # lazy: discovers the figure modules (matplotlib)

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"format must be a comma-separated list of {', '.join(FORMATS)}; got {args.format!r}")
    figs = select(args.paper)
    if args.list:
        rows = [{"name": f.name, "paper": f.paper, "description": f.description} for f in figs]
        print(dumps({"figures": rows}) if args.json else "\n".join(f"{r['name']:<40} {r['description']}" for r in rows))
        return 0
    out = Path(args.out)
    written = []
    from tqdm import tqdm  # lazy: only a command that runs shows a bar

    for fig in tqdm(figs, desc="figures", disable=args.json or not sys.stderr.isatty(), file=sys.stderr):
        start = time.perf_counter()
        paths = fig.func(out, formats, args.quick)
        written.append({"name": fig.name, "paper": fig.paper, "files": [str(p) for p in paths],
                        "seconds": round(time.perf_counter() - start, 3)})
    if args.json:
        print(dumps({"out": str(out), "figures": written}))
    else:
        for w in written:
            print(f"{w['name']}: {', '.join(w['files'])} ({w['seconds']:.1f} s)")
    return 0
