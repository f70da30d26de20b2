"""Registry of figures: ``@figure(name, paper, description)`` on ``func(out_dir, formats, quick) -> list[Path]``.

Modules of this package are discovered at run time, as for the checks.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NON_FIGURE_MODULES = {"registry", "style"}
FORMATS = ("png", "pdf", "svg")


@dataclass(frozen=True)
class Figure:
    name: str
    paper: str
    description: str
    func: Callable[[Path, tuple[str, ...], bool], list[Path]]


FIGURES: dict[str, Figure] = {}


def figure(name: str, paper: str, description: str):
    def deco(func):
        FIGURES[name] = Figure(name, paper, description, func)
        return func

    return deco


def load_all() -> None:
    import figures

    for info in pkgutil.iter_modules(figures.__path__):
        if info.name not in NON_FIGURE_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"figures.{info.name}")


def select(paper: str | None = None) -> list[Figure]:
    load_all()
    papers = sorted({f.paper for f in FIGURES.values()})
    if paper is not None and paper not in papers:
        raise ValueError(f"paper must be one of {', '.join(papers)}; got {paper!r}")
    return sorted((f for f in FIGURES.values() if paper is None or f.paper == paper), key=lambda f: f.name)
