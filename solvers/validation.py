"""Input validation shared by every public function.

Every invalid input raises :class:`ValueError` with a message that names the argument and the
valid range (DESIGN.md, "Conventions"; anchors.md REQ-1, REQ-3, REQ-4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def check_points(points: object, name: str = "points", *, allow_zero_rows: bool = False) -> np.ndarray:
    """Return ``points`` as a float64 (N, d) array; reject NaN/inf, wrong rank and zero rows."""
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric (N, d) array: {exc}") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (N, d) with points as rows; got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise ValueError(f"{name} must be finite (no NaN or inf); row {bad} is not")
    if not allow_zero_rows:
        norms = np.linalg.norm(arr, axis=1)
        if np.any(norms == 0.0):
            bad = int(np.flatnonzero(norms == 0.0)[0])
            raise ValueError(
                f"{name} row {bad} is the zero vector; rows must have norm > 0 to be normalised onto the sphere"
            )
    return arr


def check_positive(value: object, name: str, *, allow_inf: bool = False) -> float:
    """Return ``value`` as a float that is finite and > 0 (e.g. a temperature ``tau``)."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number > 0; got {value!r}") from None
    if math.isnan(v) or v <= 0.0 or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be a finite real number > 0; got {value!r}")
    return v


def check_finite(value: object, name: str) -> float:
    """Return ``value`` as a finite float."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite real number; got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    return v


def check_unit_interval(value: object, name: str) -> float:
    """Return ``value`` as a float in [0, 1] (e.g. the SSEM mixing weight ``alpha``)."""
    v = check_finite(value, name)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {value!r}")
    return v


def check_int(value: object, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an int in [minimum, maximum]; integral floats are accepted."""
    rng = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer {rng}; got {value!r}")
    if isinstance(value, (int, np.integer)):
        v = int(value)
    elif isinstance(value, (float, np.floating)) and float(value).is_integer():
        v = int(value)
    else:
        raise ValueError(f"{name} must be an integer {rng}; got {value!r}")
    if v < minimum or (maximum is not None and v > maximum):
        raise ValueError(f"{name} must be an integer {rng}; got {value!r}")
    return v


def check_choice(value: str, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_labels(labels: object, n: int | None = None, name: str = "labels") -> np.ndarray:
    """Return integer labels as a 1-D int64 array of length ``n`` (if given)."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integer labels; got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integers; got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have one entry per point ({n}); got {arr.shape[0]}")
    return arr


def check_class_sizes(sizes: object, name: str = "class_sizes", minimum: int = 1) -> list[int]:
    """Return a list of per-class sizes, each an integer >= ``minimum``; at least two classes."""
    try:
        seq = [check_int(s, f"{name}[{i}]", minimum) for i, s in enumerate(sizes)]  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be a sequence of integers >= {minimum}; got {sizes!r}") from None
    if len(seq) < 1:
        raise ValueError(f"{name} must name at least one class")
    return seq
