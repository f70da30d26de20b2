"""Hyperspherical pair energies for the global searches (Thomson, Riesz, log, Gaussian).

:class:`PairEnergy` evaluates E_f(X) = sum_{i<j} f(r_ij^2) (each unordered pair once, the
convention of the Thomson table, anchors.md §1 and §13) on N unit rows with dense N x N array
operations.  It gives the same value and gradient as the library losses
:func:`solvers.losses.riesz_energy`, :func:`~solvers.losses.log_energy` and
:func:`~solvers.losses.gaussian_energy` (same kernels, :mod:`solvers.kernels`), but avoids the
fancy indexing of the general pair template, which makes it several times faster at N >= 100.

    dE/dz_i = sum_{j != i} k'(t_ij) z_j,        t_ij = <z_i, z_j>,  k'(t) = dk/dt

Precision (anchors.md §2.5): r^2 = 2 - 2 t is formed from the Gram matrix in float64 and
clamped at 0 (the :mod:`solvers.kernels` convention).  Its absolute error is about 2e-16, so the
relative error of a pair term is about 2e-16 / r^2: below 1e-14 for every pair of a good
configuration with N <= 200 on S^2 (r^2 >= 0.05), far inside the 1e-8 table tolerance.

:func:`energy_problem` wraps a pair energy as a :class:`solvers.sphere_solver.SphereProblem` and
:func:`search_energy` runs one of the global strategies of :mod:`solvers.sphere_solver`
(multi-start, basin hopping, Riesz warm start) on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .base import SphereLoss
from .kernels import Gaussian, Kernel, Log, Riesz, sq_dist
from .sphere_solver import SphereProblem, SphereResult, solve
from .validation import check_choice, check_int, check_positive

KERNELS = ("riesz", "log", "gaussian")


def make_kernel(kernel: str, s: float | None = None, t: float | None = None) -> Kernel:
    """The pair kernel by name: ``riesz`` (|x-y|^{-s}, s > 0), ``log`` (log 1/|x-y|) or
    ``gaussian`` (exp(-t |x-y|^2), t > 0), as in anchors.md §1."""
    check_choice(kernel, "kernel", KERNELS)
    if kernel == "riesz":
        return Riesz(check_positive(1.0 if s is None else s, "s"))
    if kernel == "gaussian":
        return Gaussian(check_positive(2.0 if t is None else t, "t"))
    return Log()


class PairEnergy(SphereLoss):
    """E_f(Z) = sum_{i<j} k(<z_i, z_j>) over unordered pairs of N unit rows (dense evaluation)."""

    def __init__(self, kernel: Kernel, n: int) -> None:
        self.kernel = kernel
        self.n_points = check_int(n, "n", 2)
        self.name = kernel.name
        self._diag = np.eye(self.n_points, dtype=bool)

    def value_and_grad_unit(self, unit: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy and Euclidean gradient dE/dZ at unit rows (diagonal terms excluded)."""
        sim = unit @ unit.T
        # the diagonal (t = 1, r = 0) is replaced by an antipodal pair (t = -1) before the
        # kernel is applied and zeroed afterwards, so singular kernels never see r = 0 there
        np.copyto(sim, -1.0, where=self._diag)
        val, der = kernel_value_and_deriv(self.kernel, sim)
        val[self._diag] = 0.0
        der[self._diag] = 0.0
        return 0.5 * float(val.sum()), der @ unit

    def describe(self) -> dict:
        return {"name": self.name, "n": self.n_points, "pairs": "i<j", **self.kernel.describe()}


def kernel_value_and_deriv(kernel: Kernel, sim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """k(t) and dk/dt together, sharing one transcendental evaluation for the three energy kernels
    (r^2 = 2 - 2t clamped at 0, as in :mod:`solvers.kernels`):
    Riesz k = r^{-s}, k' = s k / r^2; Gaussian k = e^{-t r^2}, k' = 2t k; log k = -log(r^2)/2, k' = 1/r^2.
    Any other kernel falls back to its own ``value`` and ``deriv``."""
    if isinstance(kernel, Riesz) and kernel.s > 0:
        r2 = sq_dist(sim)
        val = 1.0 / np.sqrt(r2) if kernel.s == 1.0 else r2 ** (-kernel.s / 2.0)
        return val, kernel.s * val / r2
    if isinstance(kernel, Gaussian):
        val = np.exp(-kernel.t * sq_dist(sim))
        return val, 2.0 * kernel.t * val
    if isinstance(kernel, Log):
        r2 = sq_dist(sim)
        return -0.5 * np.log(r2), 1.0 / r2
    return kernel.value(sim), kernel.deriv(sim)


def energy_problem(kernel: str, n: int, dim: int, s: float | None = None,
                   t: float | None = None) -> SphereProblem:
    """N free points on S^{dim-1} under the pair energy ``kernel`` (see :func:`make_kernel`)."""
    return SphereProblem(PairEnergy(make_kernel(kernel, s, t), n), dim)


def warm_exponent(dim: int) -> float:
    """Riesz exponent of the warm stage: the harmonic s = d - 2 (anchors.md §1, §11), or s = 1
    when d - 2 < 1 (d <= 2, where the harmonic exponent is not a Riesz kernel)."""
    return float(max(dim - 2, 1))


def search_energy(kernel: str, n: int, dim: int, *, s: float | None = None, t: float | None = None,
                  strategy: str = "multistart", restarts: int = 10, seed: int = 0,
                  time_limit: float | None = None, progress: Callable[[int, float], None] | None = None,
                  **options) -> SphereResult:
    """Minimise the pair energy of N points on S^{dim-1} with a global strategy.

    ``strategy`` is ``multistart`` (``restarts`` seeded uniform starts), ``basinhopping``
    (``restarts`` perturb-and-polish hops from one start) or ``warm`` (Riesz s = d - 2 first,
    then the target kernel, anchors.md §11).  Extra ``options`` go to
    :func:`solvers.sphere_solver.solve`.
    """
    problem = energy_problem(kernel, n, dim, s, t)
    if strategy == "warm" and "warm_loss" not in options:
        options["warm_loss"] = PairEnergy(Riesz(warm_exponent(dim)), n)
    return solve(problem, strategy=strategy, restarts=restarts, seed=seed, time_limit=time_limit,
                 progress=progress, **options)


def simplex_energy(kernel: str, n: int, s: float | None = None, t: float | None = None) -> float:
    """C(N,2) f(2N/(N-1)): the minimal pair energy for N <= d + 1 (simplex lemma, anchors.md §3.3)."""
    n = check_int(n, "n", 2)
    k = make_kernel(kernel, s, t)
    cos = -1.0 / (n - 1)
    return math.comb(n, 2) * float(k.value(np.array([cos]))[0])
