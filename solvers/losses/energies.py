"""Hyperspherical energies and the Wang-Isola metrics as losses (anchors.md §1, §3, §6, §8.1).

Pair energies sum each unordered pair once (anchors.md §1, the convention of the Thomson table):

- ``riesz_energy``   E_s = sum_{i<j} sign(s) |x_i - x_j|^{-s}   (s > 0: Riesz/Thomson; s < 0: -sum r^{|s|})
- ``log_energy``     E_log = sum_{i<j} log(1/|x_i - x_j|)
- ``gaussian_energy`` E_t = sum_{i<j} exp(-t |x_i - x_j|^2)
- ``uniformity``     log[(1/C(N,2)) sum_{i<j} exp(-t |x_i - x_j|^2)]; asymptote -2t (large d), value
                     -2tN/(N-1) at a regular simplex (anchors.md §3.3, REQ-5)
- ``alignment``      mean_i |u_i - v_i|^alpha on the two-view layout (Wang-Isola; alpha = 2)
- ``frame_potential`` FP = sum_{i,j} <x_i, x_j>^2 (anchors.md §6)
"""

from __future__ import annotations

import numpy as np

from ..kernels import DistancePower, Gaussian, Log, Riesz, Square
from ..templates import KernelTerm, PairKernelLoss
from ..validation import check_int, check_positive


def _pairs(n: int, name: str = "n") -> tuple[int, np.ndarray]:
    n = check_int(n, name, 2)
    return n, np.triu(np.ones((n, n)), k=1)


def riesz_energy(n: int, s: float) -> PairKernelLoss:
    """Riesz s-energy over unordered pairs (s != 0)."""
    n, w = _pairs(n)
    k = Riesz(s)
    return PairKernelLoss([KernelTerm(w, k)], n_points=n, name="riesz", params={"n": n, "s": k.s})


def log_energy(n: int) -> PairKernelLoss:
    """Logarithmic energy over unordered pairs."""
    n, w = _pairs(n)
    return PairKernelLoss([KernelTerm(w, Log())], n_points=n, name="log", params={"n": n})


def gaussian_energy(n: int, t: float) -> PairKernelLoss:
    """Gaussian energy sum_{i<j} exp(-t r_ij^2)."""
    n, w = _pairs(n)
    k = Gaussian(t)
    return PairKernelLoss([KernelTerm(w, k)], n_points=n, name="gaussian", params={"n": n, "t": k.t})


def uniformity(n: int, t: float = 2.0) -> PairKernelLoss:
    """Wang-Isola uniformity (log-domain, pairs i < j); fewer than 2 points is an error."""
    n, w = _pairs(n)
    k = Gaussian(t)
    return PairKernelLoss(
        [KernelTerm(w / w.sum(), k)], outer="log", n_points=n, name="uniformity", params={"n": n, "t": k.t}
    )


def alignment(instances: int, alpha: float = 2.0) -> PairKernelLoss:
    """Wang-Isola alignment mean_i |u_i - v_i|^alpha on the two-view layout."""
    m = check_int(instances, "instances", 1)
    alpha = check_positive(alpha, "alpha")
    w = np.zeros((2 * m, 2 * m))
    w[np.arange(m), np.arange(m) + m] = 1.0 / m
    return PairKernelLoss(
        [KernelTerm(w, DistancePower(alpha))], n_points=2 * m, name="alignment",
        params={"instances": m, "alpha": alpha},
    )


def frame_potential(n: int) -> PairKernelLoss:
    """Frame potential sum_{i,j} <x_i, x_j>^2 (diagonal included)."""
    n = check_int(n, "n", 1)
    return PairKernelLoss([KernelTerm(np.ones((n, n)), Square())], n_points=n, name="frame", params={"n": n})
