"""The ``collapsekit`` command line.

Subcommands live in :mod:`paper_checks.commands`, one module each, discovered at start-up: a
module exposes ``register(sub, groups)`` where ``sub`` is the top-level subparsers action and
``groups`` maps a group name (``"theory"``) to its subparsers action.  Every subcommand has
``--help`` and ``--json`` (one JSON object on stdout, nothing else).  Invalid input exits with
status 2 and a message naming the argument.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from .output import dumps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collapsekit",
        description="Verify the theory of collapse in contrastive learning: run the papers' checks, "
        "regenerate figures, evaluate and minimise losses, and answer hyperparameter guidelines.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    theory = sub.add_parser("theory", help="closed forms and guidelines derived symbolically (sympy)",
                            description="Closed forms, thresholds and guidelines from theory/.")
    groups = {"theory": theory.add_subparsers(dest="theory_command", required=True, metavar="TOPIC")}
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"paper_checks.commands.{info.name}").register(sub, groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        sys.stderr.close()
        return 0
    except ValueError as exc:
        if getattr(args, "json", False):
            print(dumps({"error": str(exc)}))
        else:
            print(f"collapsekit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
