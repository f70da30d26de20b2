"""CLI start-up stays light: building the parser imports no heavy library (issue 4).

``paper_checks/cli.py`` imports every module of ``paper_checks/commands/`` to build the parser, so
those modules import sympy, cvxpy, matplotlib, torch, scipy.optimize, ``theory.*``, the solvers
that need scipy.optimize and the figure modules only inside the functions that run a command.
The argparse ``choices`` they need at parser-build time are literal tuples in the command
modules; the tests below assert that each equals its source constant.  No timing assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paper_checks.cli import build_parser
from paper_checks.commands import certify, energy, solve, theory_lr_bound, theory_simplex, theory_ssem, theory_uniform
from paper_checks.commands import figures as figures_cmd

ROOT = Path(__file__).resolve().parents[1]

# modules that must not be imported by ``import paper_checks.cli; build_parser()``
FORBIDDEN_TOP = ("sympy", "cvxpy", "matplotlib", "torch", "theory", "figures")
FORBIDDEN_EXACT = (
    "scipy.optimize",
    "solvers.sphere_solver",
    "solvers.energy_search",
    "solvers.certificates",
    "solvers.sweeps",
    "solvers.torch_path",
)

_PROBE = (
    "import json, sys\n"
    "import paper_checks.cli\n"
    "paper_checks.cli.build_parser()\n"
    "print(json.dumps(sorted(sys.modules)))\n"
)


def _fresh_modules(code: str) -> list[str]:
    """sys.modules (sorted names) after running ``code`` in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in FORBIDDEN_TOP
            or any(m == f or m.startswith(f + ".") for f in FORBIDDEN_EXACT)]


def test_build_parser_imports_no_heavy_module() -> None:
    modules = _fresh_modules(_PROBE)
    assert "paper_checks.commands.theory_ssem" in modules  # the probe did discover the commands
    assert _heavy(modules) == []


def test_help_of_a_subcommand_imports_no_heavy_module() -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "import paper_checks.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        paper_checks.cli.main(['theory', 'ssem', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    assert _heavy(_fresh_modules(code)) == []


# ----------------------------------------------------------------------------------------------
# literal choices == their source constants (and the parser really uses them)
# ----------------------------------------------------------------------------------------------
def _subparser(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def _choices(parser: argparse.ArgumentParser, option: str) -> tuple:
    action = next(a for a in parser._actions if option in a.option_strings)
    return tuple(action.choices)


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser()


def test_strategies_match_sphere_solver(parser) -> None:
    from solvers.sphere_solver import STRATEGIES

    assert solve.STRATEGIES == STRATEGIES
    assert certify.STRATEGIES == STRATEGIES
    for cmd in ("solve", "energy", "certify"):
        assert _choices(_subparser(parser, cmd), "--strategy") == STRATEGIES


def test_certify_solvers_match_certificates(parser) -> None:
    from solvers.certificates import SOLVERS

    assert certify.SOLVERS == SOLVERS
    assert _choices(_subparser(parser, "certify"), "--solver") == SOLVERS


def test_energy_kernels_match_energy_search(parser) -> None:
    from solvers.energy_search import KERNELS

    assert energy.KERNELS == KERNELS
    assert _choices(_subparser(parser, "energy"), "--kernel") == KERNELS


def test_figure_formats_match_registry() -> None:
    from figures.registry import FORMATS

    assert figures_cmd.FORMATS == FORMATS


def test_lr_bound_choices_match_theory_clop(parser) -> None:
    from theory.clop import LR_LOSSES, REDUCTIONS

    assert theory_lr_bound.LR_LOSSES == LR_LOSSES
    assert theory_lr_bound.REDUCTIONS == REDUCTIONS
    sub = _subparser(parser, "theory", "lr-bound")
    assert _choices(sub, "--loss") == LR_LOSSES and _choices(sub, "--reduction") == REDUCTIONS


def test_simplex_choices_match_closed_forms(parser) -> None:
    from theory import simplex_closed_forms as scf

    assert theory_simplex.NAMES == scf.LOSSES + ("kcl",)
    assert theory_simplex.KCL_KERNELS == scf.KCL_KERNELS
    sub = _subparser(parser, "theory", "simplex")
    assert _choices(sub, "--loss") == scf.LOSSES + ("kcl",) and _choices(sub, "--kernel") == scf.KCL_KERNELS


def test_uniform_kernels_match_asymptotics(parser) -> None:
    from theory import asymptotics

    assert theory_uniform.KCL_KERNELS == asymptotics.KCL_KERNELS
    assert _choices(_subparser(parser, "theory", "uniform"), "--kernel") == asymptotics.KCL_KERNELS


def test_ssem_variants_match_theory_ssem(parser) -> None:
    from theory import ssem

    canonical = tuple(dict.fromkeys(ssem.VARIANTS.values()))  # canonical names, in order
    assert theory_ssem.VARIANTS == canonical
    assert _choices(_subparser(parser, "theory", "ssem"), "--variant") == canonical
