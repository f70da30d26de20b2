"""Input validation shared by the theory modules (theory must not import solvers.validation).

Every invalid input raises ValueError naming the argument and the valid range, with the wording of
:mod:`solvers.validation`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence


def integer(value: object, name: str, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum]; integral numbers of any type, not bools."""
    rng = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
    msg = f"{name} must be an integer {rng}; got {value!r}"
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise ValueError(msg)
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        v = int(value)
    else:
        raise ValueError(msg)
    if v < minimum or (maximum is not None and v > maximum):
        raise ValueError(msg)
    return v


def real(value: object, name: str) -> float:
    """``value`` as a finite float (bools rejected)."""
    msg = f"{name} must be a finite real number; got {value!r}"
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise ValueError(msg)
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(msg) from None
    if not math.isfinite(v):
        raise ValueError(msg)
    return v


def positive(value: object, name: str) -> float:
    """``value`` as a finite float > 0 (a temperature, a kernel scale)."""
    try:
        v = real(value, name)
    except ValueError:
        raise ValueError(f"{name} must be a finite real number > 0; got {value!r}") from None
    if v <= 0.0:
        raise ValueError(f"{name} must be a finite real number > 0; got {value!r}")
    return v


def nonnegative(value: object, name: str) -> float:
    """``value`` as a finite float >= 0."""
    v = real(value, name)
    if v < 0.0:
        raise ValueError(f"{name} must be a finite real number >= 0; got {value!r}")
    return v


def unit_interval(value: object, name: str) -> float:
    """``value`` as a float in [0, 1] (e.g. the SSEM weight alpha)."""
    try:
        v = real(value, name)
    except ValueError:
        raise ValueError(f"{name} must lie in [0, 1]; got {value!r}") from None
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {value!r}")
    return v


def choice(value: object, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return str(value)
