"""``collapsekit check``: run the registered checks and write reports."""

from __future__ import annotations

import argparse
import sys

from ..output import dumps
from ..registry import RunSummary, papers, run_one, select
from ..report import table, write_json, write_markdown


def register(sub, groups) -> None:
    p = sub.add_parser(
        "check", help="run the papers' claims as executable checks",
        description="Run the registered checks, print a table (id, status, verdict, measured vs expected, "
        "provenance, seconds) and exit 1 if any check fails. Refuted claims that the spec expects to be "
        "refuted pass, and are reported with verdict 'refuted' and the counterexample.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--paper", default=None,
                   help="run only this paper's checks (see --list for the names); default: all papers")
    p.add_argument("--id", action="append", dest="ids", metavar="ID",
                   help="run only this check id (repeatable)")
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes and fewer seeds/restarts for the expensive checks")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="write the JSON report to FILE; with no FILE print it on stdout instead of the table")
    p.add_argument("--markdown", default=None, metavar="FILE", help="also write a Markdown report to FILE")
    p.add_argument("--list", action="store_true", help="list papers and check ids without running them")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    json_stdout = args.json == "-"
    chosen = select(args.paper, args.ids)
    if args.list:
        rows = [{"id": c.id, "paper": c.paper, "method": c.method, "provenance": c.provenance,
                 "spec_tag": c.spec_tag, "statement": c.statement} for c in chosen]
        if json_stdout:
            print(dumps({"papers": papers(), "checks": rows}))
        else:
            for r in rows:
                print(f"{r['id']:<14} {r['paper']:<12} {r['method']:<12} {r['provenance']:<15} {r['statement']}")
        return 0
    summary = RunSummary()
    from tqdm import tqdm  # lazy: only a command that runs shows a bar

    bar = tqdm(chosen, desc="checks", unit="check", disable=json_stdout or not sys.stderr.isatty(), file=sys.stderr)
    for chk in bar:
        bar.set_postfix_str(chk.id)
        summary.results.append(run_one(chk, args.quick))
    if json_stdout:
        print(dumps({"counts": summary.counts, "results": [r.as_dict() for r in summary.results]}))
    else:
        print(table(summary))
        if args.json:
            write_json(summary, args.json)
    if args.markdown:
        write_markdown(summary, args.markdown)
    return 0 if summary.ok else 1
