"""Kernel contrastive loss, KCL (dhel_kcl.md §2.2), on the two-view layout.

Code form [CODE] (pakoromilas/DHEL-KCL; defaults kernel="gaussian", t = 2, gamma = 16)::

    L = -2 mean_i psi_A(|u_i - v_i|^2) + gamma [ mean_{i<j} psi_E(|u_i-u_j|^2) + mean_{i<j} psi_E(|v_i-v_j|^2) ]

Paper form [RECON] (one kernel psi = the code's psi_E)::

    L = -(1/M) sum_i psi(|u_i - v_i|^2) + gamma / (M(M-1)) sum_{i != j} psi(|u_i - u_j|^2)

Kernels (x = r^2): gaussian exp(-t x); log psi_E = -(1/2) log(1 + t x), psi_A = -log(1 + t x);
imq c / sqrt(c^2 + x) with c = t; riesz with s = t < 0: -x^{|s|/2}.  Riesz with s > 0 makes the
alignment term infinite at perfect alignment (ill-posed, dhel_kcl.md §9) and is refused.
"""

from __future__ import annotations

import numpy as np

from ..kernels import Gaussian, InverseMultiquadric, Kernel, LogOnePlus, Riesz
from ..templates import KernelTerm, PairKernelLoss
from ..validation import check_choice, check_finite, check_int, check_positive

KCL_KERNELS = ("gaussian", "log", "imq", "riesz")


def kcl_kernels(kernel: str, t: float) -> tuple[Kernel, Kernel]:
    """(psi_E, psi_A) for a kernel name of the authors' code."""
    kernel = check_choice(kernel, "kernel", KCL_KERNELS)
    if kernel == "gaussian":
        k = Gaussian(t)
        return k, k
    if kernel == "log":
        t = check_positive(t, "t")
        return LogOnePlus(t, 0.5), LogOnePlus(t, 1.0)
    if kernel == "imq":
        k = InverseMultiquadric(t)
        return k, k
    t = check_finite(t, "t")
    if t >= 0:
        raise ValueError(
            f"t must be < 0 for the KCL riesz kernel (s = t; s > 0 makes the alignment term infinite); got {t}"
        )
    k = Riesz(t)
    return k, k


def kcl(instances: int, kernel: str = "gaussian", t: float = 2.0, gamma: float = 16.0,
        form: str = "code") -> PairKernelLoss:
    """KCL in the code or paper form (see module docstring)."""
    m = check_int(instances, "instances", 2)
    gamma = check_positive(gamma, "gamma")
    form = check_choice(form, "form", ("code", "paper"))
    psi_e, psi_a = kcl_kernels(kernel, t)
    n = 2 * m
    align = np.zeros((n, n))
    align[np.arange(m), np.arange(m) + m] = 1.0 / m
    energy = np.zeros((n, n))
    iu = np.triu_indices(m, k=1)
    if form == "code":
        energy[iu] = 1.0 / len(iu[0])
        energy[iu[0] + m, iu[1] + m] = 1.0 / len(iu[0])
        terms = [KernelTerm(align, psi_a, -2.0), KernelTerm(energy, psi_e, gamma)]
    else:
        # (1/(M(M-1))) sum_{i != j} = (2/(M(M-1))) sum_{i<j} by symmetry of the kernel
        energy[iu] = 2.0 / (m * (m - 1))
        terms = [KernelTerm(align, psi_e, -1.0), KernelTerm(energy, psi_e, gamma)]
    return PairKernelLoss(
        terms, n_points=n, name="kcl",
        params={"instances": m, "kernel": kernel, "t": float(t), "gamma": gamma, "form": form},
    )
