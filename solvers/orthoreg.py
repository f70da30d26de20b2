"""Orthogonality regularisers SO and SRIP on weight matrices, and the spectral facts around them.

Spec: ``shared/spec/orthoreg.md`` (He, Du, Ma, NeurIPS 2024; regularisers of Bansal, Chen, Wang,
NeurIPS 2018).  numpy, float64.  Provenance tags in the docstrings are the spec's (§0).

Conventions (orthoreg.md §1.2, §5):

- **Reshaping** [REIMPL][CODE-B]: a linear weight [d_out, d_in] becomes W = weight^T in
  R^{d_in x d_out}; a conv kernel [c_out, c_in, k_h, k_w] becomes W in R^{(c_in k_h k_w) x c_out}
  (one column per filter), matching features S = X W with samples as rows.  1-D parameters
  (biases, BN/LayerNorm scales) are never regularised and are rejected.
- **Gram** (``gram="small"``, toolkit default) [REIMPL][CODE-B]: for W in R^{m x n},
  G = W^T W (n x n) if m > n (tall), else G = W W^T (m x m); so SO and SRIP depend on the
  singular values only and are invariant to W -> W^T.  ``gram="large"``: always G = W^T W; on a
  wide layer (m < n) it has n - m zero eigenvalues, so min SO = n - m and SRIP >= 1 (§2.3) [DER].
- **SO** (§1.3) [CODE-B]: ||G - I||_F^2 = sum_i (sigma_i^2 - 1)^2 (``squared=False``: the
  unsquared norm of reimplementation R2; gamma values do not transfer between the two).
- **SRIP** (§1.4) [CODE-B][README]: sigma_max(G - I) = max_i |sigma_i^2 - 1|.  ``exact=True``
  (default) uses a symmetric eigendecomposition; ``exact=False`` is the power-iteration estimate
  ||A^m x|| / ||A^{m-1} x|| (m = ``n_iter`` products, A = G - I), a *lower bound* (§2.5) [DER];
  ``variant="bansal_squared"`` returns its square, as Bansal's code does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import metrics
from .base import normalize_rows
from .validation import check_choice, check_finite, check_int, check_points, check_positive

__all__ = [
    "GRAMS",
    "SRIP_VARIANTS",
    "STARTS",
    "INITS",
    "ConvShape",
    "reshape_weight",
    "weight_gradient_from_matrix",
    "gram_matrix",
    "gram_side",
    "so",
    "so_grad",
    "srip",
    "srip_grad",
    "srip_top_eigenpair",
    "power_iteration_ratios",
    "singular_value_forms",
    "regulariser",
    "regulariser_grad",
    "total_regulariser",
    "propagate_covariance",
    "eigenvalue_ratios",
    "poincare_bounds",
    "so_flow_closed_form",
    "so_flow_integrate",
    "resnet18_cifar_conv_shapes",
    "init_moments",
    "init_kernel",
    "init_totals",
    "normalised_spectrum",
    "weight_spectrum",
    "feature_rows",
    "collapse_metrics",
    "R1_GAMMAS",
    "bansal_gamma",
]

GRAMS = ("small", "large")
SRIP_VARIANTS = ("sigma", "bansal_squared")
STARTS = ("uniform", "normal", "ones")
INITS = ("kaiming_fan_out", "default_uniform")


# --------------------------------------------------------------------------------------------
# reshaping and Gram conventions
# --------------------------------------------------------------------------------------------
def reshape_weight(weight: object) -> np.ndarray:
    """The regularised matrix W of a layer weight (orthoreg.md §1.2) [REIMPL][CODE-B].

    - 2-D ``[d_out, d_in]`` (linear): W = weight^T, shape (d_in, d_out);
    - k-D, k >= 3 ``[c_out, c_in, k_1, ...]`` (conv1d/2d/3d): W = weight.reshape(c_out, -1)^T,
      shape (c_in k_1 ..., c_out), one column per filter (C-order flattening of (c_in, k_h, k_w)).

    Biases and normalisation parameters (1-D) are never regularised: ValueError.
    """
    try:
        arr = np.asarray(weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"weight must be a numeric array: {exc}") from None
    if arr.ndim < 2:
        raise ValueError(
            "weight must have at least 2 dimensions ([d_out, d_in] linear or [c_out, c_in, k...] "
            f"conv); 1-D parameters (biases, normalisation) are never regularised; got shape "
            f"{arr.shape}"
        )
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"weight must be non-empty and finite; got shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1).T


def weight_gradient_from_matrix(grad_matrix: np.ndarray, weight_shape: Sequence[int]) -> np.ndarray:
    """Chain rule through :func:`reshape_weight`: d/d(weight) from d/dW (W = weight.reshape(c_out,
    -1)^T, a linear map, so the gradient is reshaped back the same way)."""
    return np.asarray(grad_matrix).T.reshape(tuple(weight_shape))


def _matrix(W: object, name: str = "W") -> np.ndarray:
    return check_points(W, name, allow_zero_rows=True)


def gram_side(shape: tuple[int, int], gram: str = "small") -> str:
    """Which Gram is used for W in R^{m x n}: ``"right"`` (G = W^T W, n x n) or ``"left"``
    (G = W W^T, m x m).  Small Gram: right iff m > n (tall); large Gram: always right (§1.2)."""
    check_choice(gram, "gram", GRAMS)
    m, n = shape
    return "right" if (gram == "large" or m > n) else "left"


def gram_matrix(W: object, gram: str = "small") -> np.ndarray:
    """G = W^T W or W W^T according to ``gram`` and the shape of W (orthoreg.md §1.2)."""
    w = _matrix(W)
    return w.T @ w if gram_side(w.shape, gram) == "right" else w @ w.T


def _gram_minus_identity(w: np.ndarray, gram: str) -> tuple[np.ndarray, str]:
    side = gram_side(w.shape, gram)
    g = w.T @ w if side == "right" else w @ w.T
    g[np.diag_indices_from(g)] -= 1.0
    return g, side


# --------------------------------------------------------------------------------------------
# coefficients (orthoreg.md §1.6)
# --------------------------------------------------------------------------------------------
#: Recommended constant gamma of reimplementation R1 per backbone: (SO, SRIP); None = not given.
#: [REIMPL], not confirmed against the paper; fallbacks SO 1e-6, SRIP 1e-3.
R1_GAMMAS: dict[str, tuple[float, float | None]] = {
    "resnet18": (1e-6, 1e-3),
    "resnet50": (1e-6, 1e-3),
    "wideresnet28_2": (1e-6, 1e-4),
    "vit_tiny": (1e-5, None),
    "vit_small": (1e-5, None),
    "vit_base": (1e-6, None),
}


def bansal_gamma(epoch: float, base: float = 1e-2) -> float:
    """Bansal et al.'s supervised WRN schedule (orthoreg.md §1.6) [CODE-B]: base x {1, 1e-3, 1e-4,
    1e-6, 0} for epoch in (0, 20], (20, 50], (50, 70], (70, 120], > 120 (multipliers relative to
    the base, not cumulative)."""
    e = check_finite(epoch, "epoch")
    base = check_finite(base, "base")
    if e < 0 or base < 0:
        raise ValueError(f"epoch and base must be >= 0; got {epoch!r}, {base!r}")
    for upper, mult in ((20, 1.0), (50, 1e-3), (70, 1e-4), (120, 1e-6)):
        if e <= upper:
            return base * mult
    return 0.0


# --------------------------------------------------------------------------------------------
# SO
# --------------------------------------------------------------------------------------------
def so(W: object, gram: str = "small", squared: bool = True) -> float:
    """Soft orthogonality SO(W) = ||G - I_r||_F^2 = sum_i (sigma_i^2 - 1)^2 (small Gram) (§1.3)
    [CODE-B][REIMPL].  ``squared=False``: ||G - I||_F (R2's variant).  Large Gram on wide W
    adds exactly n - m (§2.3) [DER]."""
    e, _ = _gram_minus_identity(_matrix(W), gram)
    val = float(np.sum(e * e))
    return val if squared else math.sqrt(val)


def so_grad(W: object, gram: str = "small", squared: bool = True) -> np.ndarray:
    """Gradient of :func:`so` with respect to W (orthoreg.md §1.5) [DER]:

        G = W^T W:  4 W (W^T W - I);      G = W W^T:  4 (W W^T - I) W.

    ``squared=False``: the same divided by 2 ||G - I||_F (0 at an exact minimiser, where the
    unsquared norm is not differentiable; 0 is then a subgradient).
    """
    w = _matrix(W)
    e, side = _gram_minus_identity(w, gram)
    g = 4.0 * (w @ e if side == "right" else e @ w)
    if squared:
        return g
    nrm = float(np.linalg.norm(e))
    return g / (2.0 * nrm) if nrm > 0.0 else np.zeros_like(w)


# --------------------------------------------------------------------------------------------
# SRIP
# --------------------------------------------------------------------------------------------
def srip_top_eigenpair(W: object, gram: str = "small") -> tuple[float, np.ndarray, float]:
    """(lambda, v, gap): the eigenvalue of A = G - I with the largest |lambda|, its unit
    eigenvector, and the gap |lambda| - (next largest |eigenvalue|) (0 when not simple; the
    SRIP gradient exists only when the gap is > 0) (orthoreg.md §1.5) [DER]."""
    e, _ = _gram_minus_identity(_matrix(W), gram)
    lam, vec = np.linalg.eigh(e)
    order = np.argsort(-np.abs(lam), kind="stable")
    top = order[0]
    gap = float(abs(lam[top]) - abs(lam[order[1]])) if lam.size > 1 else math.inf
    return float(lam[top]), vec[:, top], gap


def power_iteration_ratios(A: object, x: object, n_iter: int) -> np.ndarray:
    """r_k = ||A^k x|| / ||A^{k-1} x||, k = 1..n_iter, for a square matrix A (orthoreg.md §2.5).

    The iterate is renormalised after each product (the ratios are unchanged).  For symmetric A,
    r_k is non-decreasing in k and bounded by the spectral radius rho(A) [DER].  A zero iterate
    (x in the null space) gives zeros from that point on.
    """
    a = _matrix(A, "A")
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"A must be a square matrix; got shape {a.shape}")
    v = np.asarray(x, dtype=np.float64).ravel()
    if v.shape != (a.shape[0],) or not np.all(np.isfinite(v)) or not np.any(v):
        raise ValueError(f"x must be a finite non-zero vector of length {a.shape[0]}")
    n_iter = check_int(n_iter, "n_iter", minimum=1)
    out = np.zeros(n_iter)
    v = v / np.linalg.norm(v)
    for k in range(n_iter):
        v = a @ v
        nrm = float(np.linalg.norm(v))
        out[k] = nrm
        if nrm == 0.0:
            break
        v = v / nrm
    return out


def _start_vector(size: int, start: str | np.ndarray, seed: int | np.random.Generator | None):
    if not isinstance(start, str):
        v = np.asarray(start, dtype=np.float64).ravel()
        if v.shape != (size,):
            raise ValueError(f"start must be one of {STARTS} or a vector of length {size}")
        return v
    check_choice(start, "start", STARTS)
    if start == "ones":
        return np.ones(size)
    if seed is None:
        raise ValueError("seed must be given (int >= 0 or numpy Generator) for a random start")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(
        check_int(seed, "seed", minimum=0)
    )
    return rng.random(size) if start == "uniform" else rng.standard_normal(size)


def srip(
    W: object,
    gram: str = "small",
    exact: bool = True,
    n_iter: int = 2,
    start: str | np.ndarray = "uniform",
    variant: str = "sigma",
    seed: int | np.random.Generator | None = None,
) -> float:
    """Spectral restricted isometry SRIP(W) = sigma_max(G - I) = max_i |sigma_i^2 - 1| (§1.4)
    [CODE-B][README].

    ``exact=True`` (default; use for metrics): symmetric eigendecomposition of G - I.
    ``exact=False``: power iteration with ``n_iter`` products of A = G - I from a start vector
    (``"uniform"``: iid U[0, 1) as in Bansal's code, ``"normal"``, ``"ones"`` or an explicit
    vector): the estimate r_m = ||A^m x|| / ||A^{m-1} x|| <= SRIP (§2.5) [DER].
    ``variant="bansal_squared"`` returns the square of the value (Bansal's code returns
    ||A (A b / ||A b||)||^2 = r_2^2 for n_iter = 2) [CODE-B].
    """
    check_choice(variant, "variant", SRIP_VARIANTS)
    e, _ = _gram_minus_identity(_matrix(W), gram)
    if exact:
        val = float(np.max(np.abs(np.linalg.eigvalsh(e))))
    else:
        x = _start_vector(e.shape[0], start, seed)
        val = float(power_iteration_ratios(e, x, n_iter)[-1])
    return val * val if variant == "bansal_squared" else val


def srip_grad(W: object, gram: str = "small") -> np.ndarray:
    """Gradient of the exact SRIP (orthoreg.md §1.5) [DER], by Danskin's theorem:

        G = W^T W:  2 s W v v^T;     G = W W^T:  2 s v v^T W,

    v the unit eigenvector of G - I with the largest |eigenvalue| lambda, s = sign(lambda).
    Valid where that |eigenvalue| is simple (see :func:`srip_top_eigenpair`'s gap); elsewhere the
    result is one element of the Clarke subdifferential.  It moves one singular direction.
    """
    w = _matrix(W)
    lam, v, _ = srip_top_eigenpair(w, gram)
    s = 1.0 if lam >= 0.0 else -1.0
    vv = np.outer(v, v)
    return 2.0 * s * (w @ vv if gram_side(w.shape, gram) == "right" else vv @ w)


def singular_value_forms(W: object) -> dict[str, float]:
    """SO and SRIP from the singular values sigma_i of W (small Gram, orthoreg.md §1.3-1.4)
    [CODE-B][DER]: ``so = sum_i (sigma_i^2 - 1)^2``, ``srip = max_i |sigma_i^2 - 1|``."""
    s2 = np.linalg.svd(_matrix(W), compute_uv=False) ** 2
    return {"so": float(np.sum((s2 - 1.0) ** 2)), "srip": float(np.max(np.abs(s2 - 1.0)))}


# --------------------------------------------------------------------------------------------
# layer-level API (original weight layout)
# --------------------------------------------------------------------------------------------
def regulariser(weight: object, kind: str = "so", gram: str = "small", **kwargs) -> float:
    """SO or SRIP of a layer weight in its framework layout (reshaped by :func:`reshape_weight`).

    ``kwargs`` go to :func:`so` (``squared``) or :func:`srip` (``exact``, ``n_iter``, ``start``,
    ``variant``, ``seed``)."""
    check_choice(kind, "kind", ("so", "srip"))
    w = reshape_weight(weight)
    return so(w, gram, **kwargs) if kind == "so" else srip(w, gram, **kwargs)


def regulariser_grad(weight: object, kind: str = "so", gram: str = "small",
                     squared: bool = True) -> np.ndarray:
    """Gradient of :func:`regulariser` (exact SRIP) with respect to the weight in its own layout."""
    check_choice(kind, "kind", ("so", "srip"))
    arr = np.asarray(weight, dtype=np.float64)
    w = reshape_weight(arr)
    g = so_grad(w, gram, squared) if kind == "so" else srip_grad(w, gram)
    return weight_gradient_from_matrix(g, arr.shape)


def total_regulariser(weights: Sequence[object], kind: str = "so", gram: str = "small",
                      **kwargs) -> float:
    """sum_l R(W_l) over the regularised layers (orthoreg.md §1.1: encoder conv/linear weights
    only; biases, normalisation parameters and the projector/predictor are the caller's to
    exclude) [ABS][REIMPL]."""
    if len(weights) == 0:
        raise ValueError("weights must contain at least one layer weight")
    return float(sum(regulariser(w, kind, gram, **kwargs) for w in weights))


# --------------------------------------------------------------------------------------------
# covariance propagation (orthoreg.md §2.1-2.2)
# --------------------------------------------------------------------------------------------
def _covariance(sigma: object, name: str) -> np.ndarray:
    c = check_points(sigma, name, allow_zero_rows=True)
    if c.shape[0] != c.shape[1]:
        raise ValueError(f"{name} must be a square covariance matrix; got shape {c.shape}")
    if not np.allclose(c, c.T, rtol=0.0, atol=1e-12 * max(1.0, float(np.abs(c).max()))):
        raise ValueError(f"{name} must be symmetric")
    return 0.5 * (c + c.T)


def propagate_covariance(sigma_x: object, W: object) -> np.ndarray:
    """Sigma_S = W^T Sigma_X W: covariance of S = X W (rows are samples) (orthoreg.md §2.1)
    [3P] (proof [DER]).  With W^T W = I and Sigma_X = s^2 I this is s^2 I (Prop. 1)."""
    c = _covariance(sigma_x, "sigma_x")
    w = _matrix(W)
    if w.shape[0] != c.shape[0]:
        raise ValueError(f"W must have {c.shape[0]} rows (the input dimension); got {w.shape[0]}")
    out = w.T @ c @ w
    return 0.5 * (out + out.T)


def _eig_desc(c: np.ndarray) -> np.ndarray:
    return np.sort(np.linalg.eigvalsh(c))[::-1]


def eigenvalue_ratios(sigma_x: object, W: object) -> dict[str, object]:
    """Ostrowski ratios theta_i = lambda_i(W^T Sigma_X W) / lambda_i(Sigma_X) (eigenvalues in
    descending order) for square nonsingular W and positive definite Sigma_X, with the bounds
    sigma_min(W)^2 <= theta_i <= sigma_max(W)^2 and delta = SRIP(W) (orthoreg.md §2.2.3) [DER].
    """
    c = _covariance(sigma_x, "sigma_x")
    w = _matrix(W)
    if w.shape != c.shape:
        raise ValueError(f"W must be square of shape {c.shape} (Ostrowski); got {w.shape}")
    lx = _eig_desc(c)
    if lx[-1] <= 0.0:
        raise ValueError("sigma_x must be positive definite (smallest eigenvalue > 0)")
    ls = _eig_desc(propagate_covariance(c, w))
    s = np.linalg.svd(w, compute_uv=False)
    return {"ratios": ls / lx, "lower": float(s[-1] ** 2), "upper": float(s[0] ** 2),
            "delta": srip(w), "so": so(w)}


def poincare_bounds(sigma_x: object, W: object) -> dict[str, np.ndarray]:
    """Poincare separation for W in R^{n x k} with W^T W = I_k (orthoreg.md §2.2.2) [DER]:
    lambda_{i+n-k}(Sigma_X) <= lambda_i(Sigma_S) <= lambda_i(Sigma_X), i = 1..k (descending).
    Returns ``lower``, ``middle`` (= lambda_i(Sigma_S)) and ``upper``; orthonormality of the
    columns is the caller's premise (see :func:`so`)."""
    c = _covariance(sigma_x, "sigma_x")
    w = _matrix(W)
    n, k = w.shape
    if n != c.shape[0] or k > n:
        raise ValueError(f"W must be tall (n x k, k <= n) with n = {c.shape[0]}; got {w.shape}")
    lx = _eig_desc(c)
    ls = _eig_desc(propagate_covariance(c, w))
    return {"lower": lx[n - k:], "middle": ls, "upper": lx[:k]}


# --------------------------------------------------------------------------------------------
# SO gradient flow (orthoreg.md §2.4)
# --------------------------------------------------------------------------------------------
def so_flow_closed_form(W0: object, gamma: float, t: float) -> np.ndarray:
    """W(t) under dW/dt = -gamma grad SO(W), small Gram (orthoreg.md §2.4) [DER]: the singular
    vectors stay fixed and each u = sigma^2 follows u(t) = 1/(1 + (1/u0 - 1) e^{-8 gamma t});
    an exactly zero singular value stays zero."""
    w = _matrix(W0, "W0")
    gamma = check_positive(gamma, "gamma")
    t = check_finite(t, "t")
    if t < 0.0:
        raise ValueError(f"t must be a finite real number >= 0; got {t!r}")
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    u0 = s * s
    ut = np.zeros_like(u0)
    pos = u0 > 0.0
    ut[pos] = 1.0 / (1.0 + (1.0 / u0[pos] - 1.0) * math.exp(-8.0 * gamma * t))
    return (u * np.sqrt(ut)) @ vt


def so_flow_integrate(W0: object, gamma: float, t: float, rtol: float = 1e-11,
                      atol: float = 1e-13) -> np.ndarray:
    """Numerical integration (scipy DOP853) of the matrix ODE dW/dt = -gamma grad SO(W) to time
    ``t`` (orthoreg.md §2.4), to compare with :func:`so_flow_closed_form`."""
    from scipy.integrate import solve_ivp

    w = _matrix(W0, "W0")
    gamma = check_positive(gamma, "gamma")
    t = check_positive(t, "t")
    shape = w.shape

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        return -gamma * so_grad(y.reshape(shape)).ravel()

    sol = solve_ivp(rhs, (0.0, t), w.ravel(), method="DOP853", rtol=rtol, atol=atol)
    if not sol.success:  # pragma: no cover - the flow is smooth and bounded
        raise RuntimeError(f"SO flow integration failed: {sol.message}")
    return sol.y[:, -1].reshape(shape)


# --------------------------------------------------------------------------------------------
# magnitude at initialisation (orthoreg.md §1.7)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvShape:
    """A conv layer [c_out, c_in, k, k]; its regularised matrix is (c_in k^2) x c_out."""

    name: str
    c_out: int
    c_in: int
    k: int

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.c_out, self.c_in, self.k, self.k)

    @property
    def matrix_shape(self) -> tuple[int, int]:
        return (self.c_in * self.k * self.k, self.c_out)


def resnet18_cifar_conv_shapes() -> list[ConvShape]:
    """The 20 bias-free conv layers of the solo-learn CIFAR ResNet-18 (3x3 stride-1 stem, no
    max-pool, fc = identity) (orthoreg.md §1.7) [DER].  Stem (27 x 64) and the three 1x1
    shortcuts are wide."""
    shapes = [ConvShape("stem", 64, 3, 3)]
    shapes += [ConvShape(f"layer1.{i}", 64, 64, 3) for i in range(4)]
    for stage, (c_in, c_out) in enumerate(((64, 128), (128, 256), (256, 512)), start=2):
        shapes.append(ConvShape(f"layer{stage}.0", c_out, c_in, 3))
        shapes += [ConvShape(f"layer{stage}.{i}", c_out, c_out, 3) for i in range(1, 4)]
        shapes.append(ConvShape(f"layer{stage}.shortcut", c_out, c_in, 1))
    return shapes


def init_moments(layer: ConvShape, init: str) -> tuple[float, float]:
    """(s^2, kappa): entry variance and kurtosis factor E w^4 / s^4 of an initialiser
    (orthoreg.md §1.7) [DER]: ``"kaiming_fan_out"`` (normal, ReLU gain): s^2 = 2/(c_out k^2),
    kappa = 3; ``"default_uniform"`` (PyTorch kaiming-uniform, a = sqrt 5): U(-a, a) with
    a = 1/sqrt(c_in k^2), s^2 = a^2/3, kappa = 9/5."""
    check_choice(init, "init", INITS)
    if init == "kaiming_fan_out":
        return 2.0 / (layer.c_out * layer.k**2), 3.0
    a2 = 1.0 / (layer.c_in * layer.k**2)
    return a2 / 3.0, 9.0 / 5.0


def init_kernel(layer: ConvShape, init: str, rng: np.random.Generator) -> np.ndarray:
    """One draw of the kernel [c_out, c_in, k, k] under ``init`` (see :func:`init_moments`)."""
    check_choice(init, "init", INITS)
    s2, _ = init_moments(layer, init)
    if init == "kaiming_fan_out":
        return rng.standard_normal(layer.shape) * math.sqrt(s2)
    a = math.sqrt(3.0 * s2)
    return rng.uniform(-a, a, layer.shape)


def init_totals(init: str, seed: int, layers: Sequence[ConvShape] | None = None) -> dict:
    """Sampled sum_l SO(W_l) and sum_l SRIP(W_l) (exact, small Gram) over ``layers`` (default:
    the CIFAR ResNet-18) for one seed (orthoreg.md §1.7) [DER]; per-layer values included."""
    layers = resnet18_cifar_conv_shapes() if layers is None else list(layers)
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    per_so, per_srip = [], []
    for layer in layers:
        w = reshape_weight(init_kernel(layer, init, rng))
        ev = np.linalg.eigvalsh(gram_matrix(w)) - 1.0
        per_so.append(float(np.sum(ev * ev)))
        per_srip.append(float(np.max(np.abs(ev))))
    return {"init": init, "seed": seed, "so": float(sum(per_so)), "srip": float(sum(per_srip)),
            "so_per_layer": per_so, "srip_per_layer": per_srip,
            "layers": [layer.name for layer in layers]}


# --------------------------------------------------------------------------------------------
# spectra and collapse metrics (orthoreg.md §3, §4.2)
# --------------------------------------------------------------------------------------------
def normalised_spectrum(values: object, by: str = "max") -> np.ndarray:
    """Nonnegative values sorted descending and divided by the largest (``by="max"``, toolkit
    default) or by their sum (``by="sum"``) (orthoreg.md §3.6: the paper's normalisation is
    unknown, so record the choice) [3P].  Floating-point negatives are clipped to 0 (§5.8)."""
    check_choice(by, "by", ("max", "sum"))
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("values must be a non-empty array of finite numbers")
    v = np.sort(np.clip(v, 0.0, None))[::-1]
    den = v[0] if by == "max" else float(v.sum())
    if den == 0.0:
        raise ValueError("values must not be all zero (nothing to normalise by)")
    return v / den


def weight_spectrum(weight: object, by: str = "max") -> np.ndarray:
    """Eigenvalues of the small Gram of the reshaped weight (= sigma_i^2), normalised
    (orthoreg.md §4.2) [REC]."""
    return normalised_spectrum(np.linalg.eigvalsh(gram_matrix(reshape_weight(weight))), by)


def feature_rows(features: object, pooling: str = "positions") -> np.ndarray:
    """Sample rows for the covariance of features (orthoreg.md §3.6) [3P]/[REC]:

    - 2-D (N, C): returned as is;
    - 4-D (N, C, H, W) conv maps: ``"positions"`` (toolkit default) treats every spatial position
      as a sample, giving N H W rows of C channels; ``"gap"`` global-average-pools to (N, C).
    """
    check_choice(pooling, "pooling", ("positions", "gap"))
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim == 2:
        return check_points(arr, "features", allow_zero_rows=True)
    if arr.ndim != 4:
        raise ValueError(f"features must be (N, C) or (N, C, H, W); got shape {arr.shape}")
    if pooling == "gap":
        return arr.mean(axis=(2, 3))
    return arr.transpose(0, 2, 3, 1).reshape(-1, arr.shape[1])


def collapse_metrics(
    Z: object, center: bool = True, l2_normalize: bool = False, ddof: int = 1,
    alpha_ranks: tuple[int, int] | None = None,
) -> dict[str, object]:
    """Dimensional-collapse metrics of embeddings Z (N x d) on one record, every convention
    recorded (orthoreg.md §3, §5.7).  Computed by :mod:`solvers.metrics`:

    - ``spectrum``: covariance eigenvalues (÷(N - ddof), centred iff ``center``) [CODE-DCLR];
    - ``erank_covariance``: Roy-Vetterli on the covariance eigenvalues (toolkit/toy convention);
    - ``erank_singular_centred``: Roy-Vetterli on the singular values of centred Z; PITFALL: it
      is >= ``erank_covariance`` with equality only for a flat spectrum (§3.2) [LIT][DER];
    - ``rankme``: Garrido et al. on the raw uncentred singular values, eps = 1e-7 [LIT];
    - ``rankme_on_covariance``: the same formula fed covariance eigenvalues, as some libraries do
      (§3.3 pitfall, [LIB]): smaller than ``rankme`` for a non-flat spectrum;
    - ``alpha_req``: weighted power-law fit, ranks 6..min(100, d) unless ``alpha_ranks``
      (needs d >= 7; ``None`` otherwise) [LIT][LIB];
    - ``uniformity`` (t = 2, rows L2-normalised) [LIT];
    - ``lambda_min_over_max`` and ``n_above_1e-3`` (count of eigenvalues > 1e-3 lambda_max, §4.3).
    """
    import warnings

    z = check_points(Z, "Z", allow_zero_rows=not l2_normalize)
    lam = metrics.covariance_spectrum(z, center=center, l2_normalize=l2_normalize, ddof=ddof)
    zz = normalize_rows(z)[0] if l2_normalize else z
    out: dict[str, object] = {
        "conventions": {"center": center, "l2_normalize": l2_normalize, "ddof": ddof,
                        "n_samples": int(z.shape[0]), "dim": int(z.shape[1]),
                        "erank": "covariance eigenvalues (Roy-Vetterli)",
                        "rankme": "raw uncentred singular values, eps = 1e-7"},
        "spectrum": lam,
        "erank_covariance": metrics.effective_rank_of_values(lam),
        "erank_singular_centred": metrics.effective_rank(zz, "singular-centred"),
        "rankme": metrics.rankme(zz),
        "rankme_on_covariance": metrics.effective_rank_of_values(
            np.clip(lam, 0.0, None), eps=metrics.RANKME_EPS),
        "lambda_min_over_max": float(lam[-1] / lam[0]) if lam[0] > 0 else 0.0,
        "n_above_1e-3": int(np.count_nonzero(lam > 1e-3 * lam[0])),
    }
    if alpha_ranks is not None or z.shape[1] >= 7:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out["alpha_req"] = metrics.power_law_exponent(lam, alpha_ranks)
    else:
        out["alpha_req"] = None
    if z.shape[0] >= 2 and np.all(np.linalg.norm(z, axis=1) > 0):
        out["uniformity"] = metrics.uniformity(z, t=2.0, normalize=True)
    else:
        out["uniformity"] = None
    return out
