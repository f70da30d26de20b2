"""The experiments registry: a sweep NAME -> a task function with declared parameters.

An *experiment* is an importable top-level function of keyword parameters that returns a
JSON-able mapping (one task = one call).  It is registered with the :func:`experiment`
decorator, which declares every parameter with its type and valid range, so that a grid is
checked *before* any task starts (DESIGN.md, "Sweeps"):

    from solvers.sweeps import Float, Int, experiment

    @experiment("my-sweep", params=[Int("n", 8, low=2), Float("tau", 0.5, low=0, low_open=True)],
                seeded=True, description="what one task computes")
    def my_task(*, n: int, tau: float, seed: int) -> dict:
        ...
        return {"value": ...}

Rules (checked at registration): the function lives at module level of an importable module
(not ``__main__``), so that a process pool or a Dask worker can import it by name; it accepts
every declared parameter as a keyword (plus ``seed`` when ``seeded``).  ``version`` is part of
every task key: bump it when the function's output changes, and old records stop being reused.

Discovery (:func:`load_experiments`): the built-in experiments of
:mod:`solvers.sweeps.experiments`, every other module of the :mod:`solvers.sweeps` package, the
modules listed in :data:`EXPERIMENT_MODULES`, modules exposed through the ``collapsekit.experiments``
entry-point group (third-party packages), and any module passed explicitly (``--module`` of
``collapsekit sweep``).  A module that fails to import is recorded in :data:`IMPORT_ERRORS` and
named when an unknown experiment is requested.
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Extra modules (dotted paths) whose ``@experiment`` functions ``collapsekit sweep`` should see
#: (the papers' own experiments).  Modules inside ``solvers/sweeps/`` need no entry here (they
#: are discovered); a module listed here that fails to import is reported, not fatal.
EXPERIMENT_MODULES: tuple[str, ...] = (
    "solvers.dhel_kcl_experiments",  # dhel-kcl-batch: the robustness maps (dhel_kcl.md §8)
    "solvers.encoder_experiment",  # clop-encoder: the CLOP encoder learning-rate runs (clop.md §6.4)
    "solvers.minibatch_experiments",  # proto-geometry, proto-limit (prototypes.md §4)
    "solvers.orthoreg_experiments",  # orthoreg-toy
    "solvers.ssem_minimise",  # ssem-minimise: direct minimisation of the SupCL loss (ssem.md)
)

#: Package modules that hold no experiments.
_INFRASTRUCTURE = {"registry", "grid", "store", "engine", "experiments"}

#: module name -> "ExceptionType: message" for modules that failed to import during discovery.
IMPORT_ERRORS: dict[str, str] = {}

_MISSING = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


# ----------------------------------------------------------------------------------------------
# parameter declarations
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One declared parameter: ``kind`` in {int, float, str, bool}, optional default and range.

    ``low``/``high`` bound numbers (closed unless ``low_open``/``high_open``); ``choices`` lists
    the allowed values.  A parameter without a default must be given in every grid.
    """

    name: str
    kind: type
    default: Any = _MISSING
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in (int, float, str, bool):
            raise ValueError(f"kind of parameter {self.name!r} must be int, float, str or bool")
        if self.default is not _MISSING:
            object.__setattr__(self, "default", self.coerce(self.default))

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def describe_range(self) -> str:
        """The valid values in words, e.g. ``a float in (0, inf)`` or ``one of code, self-excluded``."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.kind is bool:
            return "a boolean (true/false)"
        if self.kind is str:
            return "a string"
        lo = "-inf" if self.low is None else _fmt(self.low)
        hi = "inf" if self.high is None else _fmt(self.high)
        left = "(" if self.low is None or self.low_open else "["
        right = ")" if self.high is None or self.high_open else "]"
        word = "an integer" if self.kind is int else "a finite float"
        return f"{word} in {left}{lo}, {hi}{right}"

    def _refuse(self, value: object) -> ValueError:
        return ValueError(f"parameter {self.name!r} must be {self.describe_range()}; got {value!r}")

    def coerce(self, value: object) -> Any:
        """Check a Python value against the declaration and return it in canonical type.

        ints are accepted for float parameters (1 -> 1.0) and integral floats for int
        parameters (3.0 -> 3); bools are never numbers; strings are never parsed here.
        """
        kind = self.kind
        if kind is bool:
            if not _is_bool(value):
                raise self._refuse(value)
            v: Any = bool(value)
        elif kind is str:
            if not isinstance(value, str):
                raise self._refuse(value)
            v = value
        else:
            if _is_bool(value):
                raise self._refuse(value)
            if not isinstance(value, numbers.Real):
                raise self._refuse(value)
            f = float(value)
            if not math.isfinite(f):
                raise self._refuse(value)
            if kind is int:
                if not isinstance(value, numbers.Integral) and not f.is_integer():
                    raise self._refuse(value)
                v = int(value) if isinstance(value, numbers.Integral) else int(f)
            else:
                v = f + 0.0  # -0.0 -> 0.0: one canonical key
            if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
                raise self._refuse(value)
            if self.high is not None and (v > self.high or (self.high_open and v == self.high)):
                raise self._refuse(value)
        if self.choices is not None and v not in self.choices:
            raise self._refuse(value)
        return v

    def parse(self, text: str) -> Any:
        """Parse one command-line value (``--grid name=TEXT``) and check it."""
        text = text.strip()
        if self.kind is bool:
            low = text.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise self._refuse(text)
        if self.kind is str:
            return self.coerce(text)
        try:
            num: float | int = int(text) if self.kind is int else float(text)
        except ValueError:
            try:
                num = float(text)  # "3.0" for an int parameter; coerce rejects "3.5"
            except ValueError:
                raise self._refuse(text) from None
        return self.coerce(num)


def _is_bool(value: object) -> bool:
    """Python or numpy booleans (numpy 1 names the type ``bool_``, numpy 2 ``bool``)."""
    t = type(value)
    return isinstance(value, bool) or (t.__module__ == "numpy" and t.__name__ in ("bool", "bool_"))


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def Int(name: str, default: Any = _MISSING, *, low: int | None = None, high: int | None = None,
        choices: Sequence[int] | None = None, help: str = "") -> Param:
    """An integer parameter in [low, high]."""
    return Param(name, int, default, low, high, choices=None if choices is None else tuple(choices),
                 help=help)


def Float(name: str, default: Any = _MISSING, *, low: float | None = None, high: float | None = None,
          low_open: bool = False, high_open: bool = False, help: str = "") -> Param:
    """A finite float parameter in [low, high] (open ends with ``low_open``/``high_open``)."""
    return Param(name, float, default, low, high, low_open, high_open, help=help)


def Choice(name: str, choices: Sequence[str], default: Any = _MISSING, *, help: str = "") -> Param:
    """A string parameter restricted to ``choices``."""
    return Param(name, str, default, choices=tuple(choices), help=help)


def Bool(name: str, default: Any = _MISSING, *, help: str = "") -> Param:
    """A boolean parameter (command line: true/false, yes/no, 1/0)."""
    return Param(name, bool, default, help=help)


# ----------------------------------------------------------------------------------------------
# experiments
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Experiment:
    """A registered sweep: name, task function, declared parameters and metadata.

    ``seeded``: the function takes ``seed`` (a non-negative int) and every grid point is run
    once per seed.  ``batch``: at most this many tasks are sent to a worker in one submission
    (raise it for tasks that take microseconds, so that process start-up and pickling do not
    dominate).  ``validate(params)``: optional cross-parameter check of one task, called for every
    task before any starts; it raises ValueError naming the parameter.
    """

    name: str
    func: Callable[..., Mapping[str, Any]]
    params: tuple[Param, ...]
    seeded: bool = True
    version: str = "1"
    description: str = ""
    batch: int = 1
    validate: Callable[[dict[str, Any]], None] | None = None
    module: str = field(default="")

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ValueError(self.unknown_message(name))

    def unknown_message(self, name: str) -> str:
        allowed = ", ".join(self.param_names) or "(none)"
        extra = " (seeds are given with --seeds / seeds=, not in the grid)" if name == "seed" else ""
        return (f"unknown parameter {name!r} for experiment {self.name!r}{extra}; "
                f"its parameters are: {allowed}")

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: parameters with type, default and range."""
        return {
            "name": self.name, "description": self.description, "seeded": self.seeded,
            "version": self.version, "function": f"{self.module}.{self.func.__qualname__}",
            "params": [{"name": p.name, "type": p.kind.__name__, "required": p.required,
                        "default": None if p.required else p.default, "range": p.describe_range(),
                        "help": p.help} for p in self.params],
        }


EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str, *, params: Iterable[Param] = (), seeded: bool = True, version: str = "1",
               description: str = "", batch: int = 1,
               validate: Callable[[dict[str, Any]], None] | None = None) -> Callable:
    """Decorator: register ``func`` as the sweep ``name`` (see the module docstring)."""
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"name must be a non-empty string without spaces; got {name!r}")
    plist = tuple(params)
    names = [p.name for p in plist]
    if len(set(names)) != len(names):
        raise ValueError(f"params of experiment {name!r} repeat a name: {names}")
    if "seed" in names:
        raise ValueError(f"params of experiment {name!r} must not declare 'seed'; use seeded=True")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1; got {batch!r}")

    def deco(func: Callable[..., Mapping[str, Any]]) -> Callable[..., Mapping[str, Any]]:
        module = getattr(func, "__module__", None) or ""
        qual = getattr(func, "__qualname__", "")
        if module == "__main__" or "<locals>" in qual or "." in qual or not inspect.isfunction(func):
            raise ValueError(
                f"experiment {name!r}: the task function must be a top-level function of an importable "
                f"module (workers import it by name); got {module}.{qual}"
            )
        sig = inspect.signature(func)
        has_var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        needed = names + (["seed"] if seeded else [])
        missing = [n for n in needed if n not in sig.parameters and not has_var_kw]
        if missing:
            raise ValueError(f"experiment {name!r}: {qual} does not accept the parameters {missing}")
        old = EXPERIMENTS.get(name)
        if old is not None and (old.module, old.func.__qualname__) != (module, qual):
            raise ValueError(f"experiment {name!r} is already registered by {old.module}.{old.func.__qualname__}")
        EXPERIMENTS[name] = Experiment(name, func, plist, seeded, str(version), description, batch,
                                       validate, module)
        return func

    return deco


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - an optional module must not break discovery
        IMPORT_ERRORS[module] = f"{type(exc).__name__}: {exc}"


def load_experiments(extra_modules: Iterable[str] = ()) -> dict[str, Experiment]:
    """Import every experiment module (see the module docstring) and return the registry."""
    from . import experiments as _builtin  # noqa: F401  (registers the built-in experiments)

    package = importlib.import_module(__package__ or "solvers.sweeps")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _INFRASTRUCTURE and not info.name.startswith("_"):
            _import(f"{package.__name__}.{info.name}")
    for mod in (*EXPERIMENT_MODULES, *extra_modules):
        _import(mod)
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group="collapsekit.experiments"):
            _import(ep.value.split(":")[0])
    except Exception as exc:  # noqa: BLE001 - broken metadata must not break discovery
        IMPORT_ERRORS["entry-points collapsekit.experiments"] = f"{type(exc).__name__}: {exc}"
    return EXPERIMENTS


def get_experiment(name: str, extra_modules: Iterable[str] = ()) -> Experiment:
    """The experiment ``name`` (after discovery); ValueError listing the known names otherwise."""
    if name not in EXPERIMENTS:
        load_experiments(extra_modules)
    if name not in EXPERIMENTS:
        known = ", ".join(sorted(EXPERIMENTS)) or "(none)"
        msg = f"experiment must be one of {known}; got {name!r}"
        if IMPORT_ERRORS:
            msg += "; modules that failed to import: " + "; ".join(
                f"{m} ({e})" for m, e in sorted(IMPORT_ERRORS.items()))
        raise ValueError(msg)
    return EXPERIMENTS[name]
