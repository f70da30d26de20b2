"""Pair kernels as functions of the inner product s = <x, y> of unit vectors.

Every kernel is written through the squared distance x = r^2 = |x - y|^2 = 2 - 2 s
(anchors.md §1).  Gram-based evaluation clamps x at 0 (anchors.md §2.5, "Cancellation": for
nearly coincident points r^2 loses relative precision; the clamp only matters for points closer
than about 1e-8, where singular kernels are infinite anyway).

``deriv`` returns dk/ds = -2 dk/dx.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import check_finite, check_positive


def sq_dist(s: np.ndarray) -> np.ndarray:
    """Squared chordal distance 2 - 2 s, clamped at 0."""
    return np.maximum(2.0 - 2.0 * s, 0.0)


class Kernel:
    """Base class: ``value(s)``, ``deriv(s)`` = dk/ds; exp-type kernels also give ``log_value``."""

    name = "kernel"

    def value(self, s: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def deriv(self, s: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def log_value(self, s: np.ndarray) -> np.ndarray:
        raise ValueError(f"kernel {self.name!r} has no log form (needed for outer='log')")

    def dlog_ds(self, s: np.ndarray) -> np.ndarray:
        raise ValueError(f"kernel {self.name!r} has no log form (needed for outer='log')")

    def describe(self) -> dict:
        return {"kernel": self.name}


@dataclass
class Gaussian(Kernel):
    """k = exp(-t r^2), t > 0 (Gaussian energy, uniformity, KCL 'gaussian')."""

    t: float

    def __post_init__(self) -> None:
        self.t = check_positive(self.t, "t")
        self.name = "gaussian"

    def value(self, s):
        return np.exp(-self.t * sq_dist(s))

    def deriv(self, s):
        return 2.0 * self.t * np.exp(-self.t * sq_dist(s))

    def log_value(self, s):
        return -self.t * (2.0 - 2.0 * s)

    def dlog_ds(self, s):
        return np.full_like(s, 2.0 * self.t)

    def describe(self):
        return {"kernel": self.name, "t": self.t}


@dataclass
class Riesz(Kernel):
    """k = sign(s_exp) r^{-s_exp}: |x-y|^{-s} for s > 0, and -|x-y|^{|s|} for s < 0.

    The sign makes the energy repulsive for both signs of s (the convention of KCL's
    ``riesz`` kernel with s < 0, dhel_kcl.md §2.2, and of Riesz s-energies, anchors.md §3.1).
    """

    s: float

    def __post_init__(self) -> None:
        self.s = check_finite(self.s, "s")
        if self.s == 0.0:
            raise ValueError("s must be non-zero (use the log kernel for the s -> 0 limit)")
        self.name = "riesz"

    def value(self, s):
        return np.sign(self.s) * sq_dist(s) ** (-self.s / 2.0)

    def deriv(self, s):
        # d/ds sign * x^{-s/2} = sign * (-s/2) x^{-s/2-1} * (-2) = |s| x^{-s/2-1}
        return abs(self.s) * sq_dist(s) ** (-self.s / 2.0 - 1.0)

    def describe(self):
        return {"kernel": self.name, "s": self.s}


class Log(Kernel):
    """k = log(1/|x - y|) = -(1/2) log r^2 (natural log; anchors.md §1)."""

    name = "log"

    def value(self, s):
        return -0.5 * np.log(sq_dist(s))

    def deriv(self, s):
        return 1.0 / sq_dist(s)


@dataclass
class LogOnePlus(Kernel):
    """k = -c log(1 + t r^2) (KCL 'log' kernel: c = 1/2 for the energy, c = 1 for alignment)."""

    t: float
    c: float = 0.5

    def __post_init__(self) -> None:
        self.t = check_positive(self.t, "t")
        self.name = "log"

    def value(self, s):
        return -self.c * np.log1p(self.t * sq_dist(s))

    def deriv(self, s):
        return 2.0 * self.c * self.t / (1.0 + self.t * sq_dist(s))

    def describe(self):
        return {"kernel": self.name, "t": self.t, "c": self.c}


@dataclass
class InverseMultiquadric(Kernel):
    """k = c / sqrt(c^2 + r^2) (KCL 'imq', with c = t in the authors' code)."""

    c: float

    def __post_init__(self) -> None:
        self.c = check_positive(self.c, "t")
        self.name = "imq"

    def value(self, s):
        return self.c / np.sqrt(self.c**2 + sq_dist(s))

    def deriv(self, s):
        # d/dx c (c^2 + x)^{-1/2} = -c/2 (c^2 + x)^{-3/2}; times dx/ds = -2
        return self.c * (self.c**2 + sq_dist(s)) ** -1.5

    def describe(self):
        return {"kernel": self.name, "t": self.c}


@dataclass
class DistancePower(Kernel):
    """k = r^alpha = |x - y|^alpha (Wang-Isola alignment with alpha = 2; CLOP 'euclidean', alpha = 1).

    At r = 0 with alpha < 2 the derivative is singular; the subgradient 0 is used there
    (clop.md §2.3).  For alpha >= 2 the formula is regular at r = 0 and is used as is.
    """

    alpha: float = 2.0

    def __post_init__(self) -> None:
        self.alpha = check_positive(self.alpha, "alpha")
        self.name = "distance-power"

    def value(self, s):
        return sq_dist(s) ** (self.alpha / 2.0)

    def deriv(self, s):
        x = sq_dist(s)
        if self.alpha >= 2.0:  # x^{alpha/2 - 1} is regular at x = 0 (the derivative at r = 0 is -2 for alpha = 2)
            return -self.alpha * x ** (self.alpha / 2.0 - 1.0)
        out = np.zeros_like(x)
        pos = x > 0
        out[pos] = -self.alpha * x[pos] ** (self.alpha / 2.0 - 1.0)
        return out

    def describe(self):
        return {"kernel": self.name, "alpha": self.alpha}


class Linear(Kernel):
    """k = s (cosine similarity itself)."""

    name = "linear"

    def value(self, s):
        return s

    def deriv(self, s):
        return np.ones_like(s)


class Square(Kernel):
    """k = s^2 (frame potential, anchors.md §6)."""

    name = "square"

    def value(self, s):
        return s * s

    def deriv(self, s):
        return 2.0 * s
