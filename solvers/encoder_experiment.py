"""The synthetic shared-encoder experiment of the CLOP spec (clop.md §6.3-6.4, checks E1-E4, L5).

Three noisy lines through the origin in R^3 (40 points each, B = 120, C = 3), a 3-64-3 ReLU MLP
without output bias and without BatchNorm, full-batch plain gradient descent for 400 steps on
NT-Xent (tau = 0.5, mean over 2B anchors), optionally plus lam * CLOP with the standard-basis
prototypes.  Everything is exactly as fixed by spec §6.3 ``[TK]`` so that runs are reproducible
seed by seed; outcomes are ``[DER-NUM]``.

Random stream (one ``numpy.random.default_rng(seed)``, in this order): directions (3 x 3 normal,
rows normalised); per class k: 40 magnitudes U[0.5, 1) (``uniform``), 40 signs from {-1, +1}
(``choice``), a 40 x 3 noise matrix (``normal``); then W1 (64 x 3 normal / sqrt 3) and W2
(3 x 64 normal / 8), b1 = 0; then at every step E1, E2 (120 x 3 normal each) for the views
V1 = -X + 0.1 E1 and V2 = X + 0.1 E2.  A labelled fraction p < 1 picks floor(pB) labelled
source points with a separate generator ``default_rng(seed + 10000)``.

Backends:

- ``"numpy"`` (the reference, spec §6.3): NT-Xent and dL/dU by the matrix gradient of spec §2.2
  (:func:`ntxent_value_and_grad`, equal to :func:`solvers.losses.simclr` to round-off, written
  densely for speed), the CLOP term (direct cosine form, :func:`solvers.losses.clop_term` for the
  other distances), and the backward pass is analytic: dL/dZ = (I - u_hat u_hat^T) dL/dU / r
  row-wise with r = |z| + 1e-12 (the 1e-12 guard used in the forward and backward passes,
  spec §7.3; u_hat = z/|z|, so the raw gradient is exactly orthogonal to z and Lemma B' holds
  to round-off), then through W2, the ReLU mask (H > 0), W1 and b1.  All gradients are
  computed before any update.
- ``"torch"`` (float64 autograd, imported lazily; slower than numpy on CPU): the same
  network with the library's NT-Xent and CLOP converted by the torch path
  (:func:`torch_losses`, :mod:`solvers.torch_path`); a cross-check of the numpy gradients
  (spec: 1e-10 relative).
  Raises :class:`TorchUnavailable` when torch is missing.

Collapse measures (spec §6.1) are computed on the outputs for the clean inputs X:
status ``diverged`` (non-finite), ``collapsed`` (erank <= 1.5 and mean |cos| >= 0.95),
``healthy`` (erank >= min(C, d) - 0.5 = 2.5) or ``partial``; eta_c(seed, arm) is the smallest
grid eta whose run is collapsed (+inf if none).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .gd_maps import collapse_measures
from .losses import clop_term
from .losses.clop import DISTANCES
from .sweeps import Choice, Float, Int, experiment
from .validation import check_choice, check_int, check_positive

__all__ = [
    "ARMS",
    "BACKENDS",
    "ETA_GRID",
    "EncoderConfig",
    "EncoderData",
    "EncoderParams",
    "EncoderResult",
    "TorchUnavailable",
    "collapse_threshold",
    "encoder_gradients",
    "init_params",
    "make_data",
    "run_encoder",
    "sweep",
    "torch_gradients",
    "torch_losses",
]

#: learning-rate grid of clop.md §6.4
ETA_GRID = (0.01, 0.1, 0.3, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0, 30.0, 100.0, 300.0)
#: arms of clop.md §6.4: name -> (lam, labelled fraction p, distance)
ARMS: dict[str, tuple[float, float, str]] = {
    "A": (0.0, 1.0, "cosine"),
    "B": (1.0, 1.0, "cosine"),
    "C": (1.0, 0.1, "cosine"),
    "D-euclidean": (1.0, 1.0, "euclidean"),
    "D-manhattan": (1.0, 1.0, "manhattan"),
}
BACKENDS = ("numpy", "torch")
NORM_GUARD = 1e-12  # r = |z| + 1e-12 (clop.md §6.3, §7.3)
PER_CLASS = 40
CLASSES = 3
DIM = 3


class TorchUnavailable(RuntimeError):
    """torch is not installed (optional extra ``collapsekit[torch]``)."""


# --------------------------------------------------------------------------------------------
# data, parameters, configuration
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncoderData:
    """Clean inputs X (B x 3), labels y (B,), line directions (3 x 3)."""

    x: np.ndarray
    y: np.ndarray
    directions: np.ndarray


@dataclass
class EncoderParams:
    """The MLP z = W2 relu(W1 x + b1): W1 (h x 3), b1 (h,), W2 (3 x h); no output bias."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray

    def copy(self) -> EncoderParams:
        return EncoderParams(self.w1.copy(), self.b1.copy(), self.w2.copy())

    def finite(self) -> bool:
        return bool(np.all(np.isfinite(self.w1)) and np.all(np.isfinite(self.b1))
                    and np.all(np.isfinite(self.w2)))


def make_data(rng: np.random.Generator, per_class: int = PER_CLASS, noise: float = 0.1) -> EncoderData:
    """Three noisy lines through the origin in R^3 (clop.md §6.3 "Data", draw order as stated)."""
    dirs = rng.normal(size=(CLASSES, DIM))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    xs, ys = [], []
    for k in range(CLASSES):
        mags = rng.uniform(0.5, 1.0, size=per_class)
        signs = rng.choice(np.array([-1.0, 1.0]), size=per_class)
        t = mags * signs
        e = rng.normal(size=(per_class, DIM))
        xs.append(t[:, None] * dirs[k][None, :] + noise * e)
        ys.append(np.full(per_class, k))
    return EncoderData(np.vstack(xs), np.concatenate(ys), dirs)


def init_params(rng: np.random.Generator, hidden: int = 64) -> EncoderParams:
    """W1 ~ N(0, 1)/sqrt(3), b1 = 0, W2 ~ N(0, 1)/sqrt(hidden) (clop.md §6.3 "Model")."""
    w1 = rng.normal(size=(hidden, DIM)) / math.sqrt(DIM)
    w2 = rng.normal(size=(DIM, hidden)) / math.sqrt(hidden)
    return EncoderParams(w1, np.zeros(hidden), w2)


@dataclass(frozen=True)
class EncoderConfig:
    """One run.  ``lam = 0`` is arm A (NT-Xent only); ``fraction`` p is the labelled fraction."""

    eta: float
    seed: int = 0
    lam: float = 0.0
    fraction: float = 1.0
    distance: str = "cosine"
    steps: int = 400
    tau: float = 0.5
    hidden: int = 64
    backend: str = "numpy"

    def __post_init__(self) -> None:
        check_positive(self.eta, "eta")
        check_int(self.seed, "seed", 0)
        if not (math.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"lam must be a finite real number >= 0; got {self.lam!r}")
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must lie in (0, 1]; got {self.fraction!r}")
        check_choice(self.distance, "distance", DISTANCES)
        check_int(self.steps, "steps", 1)
        check_positive(self.tau, "tau")
        check_int(self.hidden, "hidden", 1)
        check_choice(self.backend, "backend", BACKENDS)

    @property
    def arm(self) -> str:
        for name, (lam, p, dist) in ARMS.items():
            if (self.lam, self.fraction, self.distance) == (lam, p, dist):
                return name
        return "custom" if self.lam > 0 else "A"


def clop_row_labels(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Per-row CLOP labels [y_lab; y_lab] with -1 for unlabelled source points (clop.md §6.3).

    p = 1: every point labelled.  p < 1: floor(p B) source points chosen without replacement by
    ``default_rng(seed + 10000)`` (a separate stream); both views of a labelled point are labelled.
    """
    b = y.size
    lab = y.copy()
    if fraction < 1.0:
        m = math.floor(fraction * b)
        chosen = np.random.default_rng(seed + 10000).choice(b, size=m, replace=False)
        mask = np.zeros(b, dtype=bool)
        mask[chosen] = True
        lab = np.where(mask, y, -1)
    return np.concatenate([lab, lab])


# --------------------------------------------------------------------------------------------
# numpy reference: forward, library loss, analytic backward
# --------------------------------------------------------------------------------------------
def ntxent_value_and_grad(u: np.ndarray, tau: float, work: np.ndarray | None = None
                          ) -> tuple[float, np.ndarray]:
    """NT-Xent (clop.md §2.1, mean over N = 2B anchors, denominators over a != i) and dL/dU.

    The matrix gradient of spec §2.2: A = row softmax of s/tau over a != i, Pi = positive
    indicator, dL/dU = ((A - Pi) + (A - Pi)^T) U / (N tau).  Written for speed: with
    E_ia = exp((s_ia - 1)/tau) (zero diagonal, symmetric) and t_i = sum_a E_ia,
    (A + A^T) U = D (E U) + E (D U) with D = diag(1/t), and (Pi + Pi^T) U = 2 U[partner] (the
    partner map is an involution), so the only N x N array is E (written into ``work`` when
    given: no allocation per step).  Rows have |u| <= 1, so s/tau <= 1/tau and the log-sum-exp is
    shifted by that bound (every exponent lies in [-2/tau, 0]; finite for tau > 2/745); the
    diagonal is zeroed after the exponential instead of masked with -inf before it (numpy's exp is
    an order of magnitude slower on arrays holding -inf).  The same definition as
    :func:`solvers.losses.simclr`; tests compare the two.
    """
    n = u.shape[0]
    idx = np.arange(n)
    partner = (idx + n // 2) % n
    e = np.matmul(u, u.T, out=work)
    pos = e[idx, partner]
    e -= 1.0
    e *= 1.0 / tau
    np.exp(e, out=e)
    e[idx, idx] = 0.0
    tot = e.sum(axis=1)
    val = float(np.mean(1.0 / tau + np.log(tot) - pos / tau))
    inv = (1.0 / tot)[:, None]
    grad = inv * (e @ u) + e @ (inv * u) - 2.0 * u[partner]
    return val, grad / (n * tau)


def _clop_cosine(u: np.ndarray, rows: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    """lam * mean over labelled rows of (1 - u_r . e_{y_r}) and its gradient -lam/R e_{y_r}
    (clop.md §2.3 with the standard-basis prototypes); equals :func:`solvers.losses.clop_term`."""
    grad = np.zeros_like(u)
    lab = np.flatnonzero(rows >= 0)
    if lab.size == 0:
        return 0.0, grad
    w = lam / lab.size
    grad[lab, rows[lab]] = -w
    return float(w * np.sum(1.0 - u[lab, rows[lab]])), grad


class _ClopTerm:
    """The CLOP part of the encoder loss: direct cosine form, library term otherwise."""

    def __init__(self, rows: np.ndarray, lam: float, distance: str) -> None:
        self.rows, self.lam = rows, lam
        self.lib = None if distance == "cosine" else clop_term(rows, np.eye(CLASSES, DIM), lam=lam,
                                                                distance=distance)

    def value_and_grad_unit(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        if self.lib is not None:
            return self.lib.value_and_grad_unit(u)
        return _clop_cosine(u, self.rows, self.lam)


def _losses(cfg: EncoderConfig, y: np.ndarray):
    if cfg.lam == 0.0:
        return None
    return _ClopTerm(clop_row_labels(y, cfg.fraction, cfg.seed), cfg.lam, cfg.distance)


def forward(params: EncoderParams, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pre-activations A, hidden H = relu(A), raw outputs Z = H W2^T) for rows ``inputs``."""
    a = inputs @ params.w1.T + params.b1
    h = np.maximum(a, 0.0)
    return a, h, h @ params.w2.T


def encoder_gradients(params: EncoderParams, inputs: np.ndarray, tau: float, clop=None,
                      work: np.ndarray | None = None) -> tuple[float, float, EncoderParams]:
    """(base loss, CLOP value, gradients) at ``inputs`` (2B x 3, rows i and i + B positives).

    U = Z / (|Z| + 1e-12); dL/dU from :func:`ntxent_value_and_grad` and the CLOP term;
    dL/dZ = (I - u_hat u_hat^T) dL/dU / r;
    dW2 = dZ^T H; dA = (dZ W2) * [A > 0]; dW1 = dA^T X; db1 = sum_rows dA (clop.md §6.3).
    ``work``: optional (2B, 2B) float64 scratch array for the similarity matrix.
    """
    a, h, z = forward(params, inputs)
    rho = np.linalg.norm(z, axis=1)
    r = rho + NORM_GUARD
    u = z / r[:, None]
    val, g_u = ntxent_value_and_grad(u, tau, work)
    cval = 0.0
    if clop is not None:
        cval, g_c = clop.value_and_grad_unit(u)
        g_u = g_u + g_c
    u_hat = z / np.where(rho > 0, rho, 1.0)[:, None]
    g_z = (g_u - u_hat * np.sum(u_hat * g_u, axis=1, keepdims=True)) / r[:, None]
    g_w2 = g_z.T @ h
    g_a = (g_z @ params.w2) * (a > 0)
    return float(val), float(cval), EncoderParams(g_a.T @ inputs, g_a.sum(axis=0), g_w2)


# --------------------------------------------------------------------------------------------
# torch path (lazy import)
# --------------------------------------------------------------------------------------------
def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TorchUnavailable(
            "torch is not installed: the torch backend of the encoder experiment needs the optional "
            "extra (pip install 'collapsekit[torch]'); the numpy backend is the reference"
        ) from exc
    return torch


def torch_losses(y: np.ndarray, cfg: EncoderConfig):
    """(base, clop or None) as torch losses of the *same* library objects: NT-Xent
    :func:`solvers.losses.simclr` and :func:`solvers.losses.clop_term` (standard-basis
    prototypes), converted by the team's torch path :func:`solvers.torch_path.to_torch` (float64,
    from the loss templates' own matrices)."""
    _torch()
    from .losses import simclr
    from .torch_path import to_torch

    base = to_torch(simclr(y.size, cfg.tau), dtype="float64")
    if cfg.lam == 0.0:
        return base, None
    rows = clop_row_labels(y, cfg.fraction, cfg.seed)
    return base, to_torch(clop_term(rows, np.eye(CLASSES, DIM), lam=cfg.lam, distance=cfg.distance),
                          dtype="float64")


def torch_gradients(params: EncoderParams, inputs: np.ndarray, cfg: EncoderConfig, y: np.ndarray,
                    losses: tuple | None = None) -> tuple[float, float, EncoderParams]:
    """Same as :func:`encoder_gradients` with float64 torch autograd (forward r = |z| + 1e-12;
    losses from :func:`torch_losses` (pass ``losses`` to reuse them across steps), evaluated
    densely on the guarded unit rows).  On a busy CPU, ``torch.set_num_threads(1)`` avoids
    thread oversubscription (measured here: 19 ms per step with one thread, 0.44 s with two)."""
    torch = _torch()
    base_loss, clop_loss = losses if losses is not None else torch_losses(y, cfg)
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
         for k, v in (("w1", params.w1), ("b1", params.b1), ("w2", params.w2))}
    x = torch.as_tensor(inputs, dtype=torch.float64)
    h = torch.relu(x @ t["w1"].T + t["b1"])
    z = h @ t["w2"].T
    u = z / (torch.linalg.vector_norm(z, dim=1, keepdim=True) + NORM_GUARD)
    base = base_loss(u, normalize=False, mode="dense")
    clop = clop_loss(u, normalize=False, mode="dense") if clop_loss is not None else u.sum() * 0.0
    (base + clop).backward()
    g = {k: v.grad.detach().numpy().copy() for k, v in t.items()}
    return float(base.detach()), float(clop.detach()), EncoderParams(g["w1"], g["b1"], g["w2"])


# --------------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------------
@dataclass
class EncoderResult:
    """One run: the CSV row of clop.md §6.4 plus diagnostics.

    ``w2_norms``: |W2|_F after every step (steps + 1 values, Lemma B'); ``groups``: when
    ``record_groups``, per-step max over steps of the relative residuals of Lemma B' for the two
    scale-invariant groups W2 and (W1, b1): |<theta, grad>| / (|theta| |grad|) and
    | |theta+|^2 - |theta|^2 - eta^2 |grad|^2 | / |theta+|^2.
    """

    arm: str
    lam: float
    fraction: float
    distance: str
    seed: int
    eta: float
    backend: str
    erank: float
    mean_abs_cos: float
    mean_cos: float
    final_loss: float
    delta_loss: float
    mean_norm: float
    w2_norm: float
    status: str
    steps_done: int
    w2_norms: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    groups: dict = field(default_factory=dict)

    def row(self) -> dict:
        """The CSV/JSON row (no arrays); ``min_w2_step`` = smallest relative per-step change of
        |W2|_F (Lemma B': >= 0 up to round-off)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("w2_norms", "groups")}
        if self.w2_norms.size > 1:
            w = self.w2_norms
            d["min_w2_step"] = float(np.min(np.diff(w) / w[:-1]))
        d.update(self.groups)
        return d


def classify(erank: float, mean_abs_cos: float, finite: bool = True, dim: int = DIM,
             classes: int = CLASSES) -> str:
    """Run status of clop.md §6.1 [TK]."""
    if not finite:
        return "diverged"
    if erank <= 1.5 and mean_abs_cos >= 0.95:
        return "collapsed"
    if erank >= min(classes, dim) - 0.5:
        return "healthy"
    return "partial"


def _group_residuals(theta: Sequence[np.ndarray], grad: Sequence[np.ndarray], eta: float
                     ) -> tuple[float, float]:
    th = np.concatenate([t.ravel() for t in theta])
    gr = np.concatenate([g.ravel() for g in grad])
    tn, gn = float(np.linalg.norm(th)), float(np.linalg.norm(gr))
    ortho = abs(float(th @ gr)) / (tn * gn) if tn > 0 and gn > 0 else 0.0
    new = th - eta * gr
    ident = abs(float(new @ new) - tn**2 - eta**2 * gn**2) / max(float(new @ new), 1e-300)
    return ortho, ident


def run_encoder(cfg: EncoderConfig, record_groups: bool = False,
                step_hook: Callable[[int, EncoderParams], None] | None = None) -> EncoderResult:
    """Train the §6.3 encoder for ``cfg.steps`` full-batch GD steps and evaluate it (§6.1).

    L_final is the base NT-Xent (CLOP excluded) at the last gradient evaluation, on that step's
    views; delta_loss = L_final - log(2B - 1).  The run stops as ``diverged`` as soon as a
    parameter becomes non-finite.
    """
    rng = np.random.default_rng(cfg.seed)
    data = make_data(rng)
    params = init_params(rng, cfg.hidden)
    b = data.y.size
    clop = _losses(cfg, data.y) if cfg.backend == "numpy" else None
    tlosses = torch_losses(data.y, cfg) if cfg.backend == "torch" else None
    work = np.empty((2 * b, 2 * b))
    w2_norms = [float(np.linalg.norm(params.w2))]
    worst = {"lemma_b2_ortho_w2": 0.0, "lemma_b2_ident_w2": 0.0,
             "lemma_b2_ortho_w1b1": 0.0, "lemma_b2_ident_w1b1": 0.0}
    final_loss = math.nan
    finite = True
    done = 0
    for t in range(cfg.steps):
        e1 = rng.normal(size=data.x.shape)
        e2 = rng.normal(size=data.x.shape)
        inputs = np.vstack([-data.x + 0.1 * e1, data.x + 0.1 * e2])
        if cfg.backend == "numpy":
            final_loss, _, grads = encoder_gradients(params, inputs, cfg.tau, clop, work)
        else:
            final_loss, _, grads = torch_gradients(params, inputs, cfg, data.y, tlosses)
        if record_groups:
            for key, th, gr in (("w2", [params.w2], [grads.w2]),
                                ("w1b1", [params.w1, params.b1], [grads.w1, grads.b1])):
                o, i = _group_residuals(th, gr, cfg.eta)
                worst[f"lemma_b2_ortho_{key}"] = max(worst[f"lemma_b2_ortho_{key}"], o)
                worst[f"lemma_b2_ident_{key}"] = max(worst[f"lemma_b2_ident_{key}"], i)
        params = EncoderParams(params.w1 - cfg.eta * grads.w1, params.b1 - cfg.eta * grads.b1,
                               params.w2 - cfg.eta * grads.w2)
        done = t + 1
        if not (params.finite() and math.isfinite(final_loss)):
            finite = False
            break
        w2_norms.append(float(np.linalg.norm(params.w2)))
        if step_hook is not None:
            step_hook(done, params)
    if finite:
        _, _, z = forward(params, data.x)
        finite = bool(np.all(np.isfinite(z))) and bool(np.all(np.linalg.norm(z, axis=1) > 0))
    if finite:
        meas = collapse_measures(z)
    else:
        meas = {"erank": math.nan, "mean_abs_cos": math.nan, "mean_cos": math.nan, "mean_norm": math.nan}
    status = classify(meas["erank"], meas["mean_abs_cos"], finite)
    return EncoderResult(
        arm=cfg.arm, lam=cfg.lam, fraction=cfg.fraction, distance=cfg.distance, seed=cfg.seed,
        eta=cfg.eta, backend=cfg.backend, erank=meas["erank"], mean_abs_cos=meas["mean_abs_cos"],
        mean_cos=meas["mean_cos"], final_loss=final_loss, delta_loss=final_loss - math.log(2 * b - 1),
        mean_norm=meas["mean_norm"], w2_norm=float(np.linalg.norm(params.w2)), status=status,
        steps_done=done, w2_norms=np.array(w2_norms), groups=worst if record_groups else {},
    )


# --------------------------------------------------------------------------------------------
# sweeps and thresholds
# --------------------------------------------------------------------------------------------
def sweep(arms: Iterable[str] = ("A", "B"), seeds: Iterable[int] = (0, 1, 2, 3),
          etas: Iterable[float] = ETA_GRID, steps: int = 400, backend: str = "numpy",
          progress: Callable[[int, int], None] | None = None) -> list[EncoderResult]:
    """Run every (arm, seed, eta) of the grid (clop.md §6.4); ``progress(done, total)`` optional."""
    arms, seeds, etas = list(arms), list(seeds), list(etas)
    for a in arms:
        check_choice(a, "arm", tuple(ARMS))
    total = len(arms) * len(seeds) * len(etas)
    out: list[EncoderResult] = []
    for a in arms:
        lam, p, dist = ARMS[a]
        for s in seeds:
            for eta in etas:
                cfg = EncoderConfig(eta=eta, seed=s, lam=lam, fraction=p, distance=dist, steps=steps,
                                    backend=backend)
                out.append(run_encoder(cfg))
                if progress is not None:
                    progress(len(out), total)
    return out


def collapse_threshold(results: Iterable[EncoderResult | dict], arm: str, seed: int) -> float:
    """eta_c(seed, arm): the smallest grid eta whose run is collapsed, +inf if none (clop.md §6.1)."""
    etas = []
    for r in results:
        row = r.row() if isinstance(r, EncoderResult) else r
        if row["arm"] == arm and row["seed"] == seed and row["status"] == "collapsed":
            etas.append(float(row["eta"]))
    return min(etas) if etas else math.inf


# --------------------------------------------------------------------------------------------
# sweep registration (``collapsekit sweep clop-encoder``; DESIGN.md "Sweeps")
# --------------------------------------------------------------------------------------------
@experiment(
    "clop-encoder",
    params=[
        Float("eta", low=0.0, low_open=True, help="learning rate of plain full-batch GD (spec grid "
              "0.01 .. 300)"),
        Choice("arm", tuple(ARMS), "A", help="A: NT-Xent only; B: + cosine CLOP lam = 1, p = 1; "
               "C: as B with p = 0.1 (fixed subset); D-euclidean / D-manhattan: as B with that distance"),
        Int("steps", 400, low=1, help="full-batch GD steps (spec: 400)"),
        Float("tau", 0.5, low=0.0, low_open=True, help="NT-Xent temperature (spec: 0.5)"),
    ],
    seeded=True,
    version="1",
    description="CLOP encoder experiment (clop.md §6.3-6.4): three noisy lines in R^3, 3-64-3 MLP, "
    "plain GD on NT-Xent with or without CLOP; erank, mean |cos|, L_final, delta L, mean norm, status",
)
def encoder_task(*, eta: float, arm: str, steps: int, tau: float, seed: int) -> dict:
    """One (arm, seed, eta) run of :func:`run_encoder` as a sweep task (the CSV row of §6.4)."""
    lam, p, dist = ARMS[arm]
    cfg = EncoderConfig(eta=eta, seed=seed, lam=lam, fraction=p, distance=dist, steps=steps, tau=tau)
    row = run_encoder(cfg).row()
    row["arm"] = arm
    return row
