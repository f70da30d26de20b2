"""The DirectCLR toy tasks with orthogonality regularisation (orthoreg.md §4.3, §4.2).

Two settings, both with InfoNCE on *unnormalised* embeddings (tau = 0.1, one direction), plain
SGD (no momentum, no weight decay), 10,000 steps of 128 distinct indices from 10,000 fixed
training points x ~ N(0, I_16), two views x + xi^(1), x + xi^(2)  [CODE-DCLR] setup:

- **case 2** (implicit-regularisation collapse, mechanism M2): z = W2 W1 x, two bias-free 16x16
  layers, each initialised as U diag(exp(-0.35 k)) V^T from the SVD of a U[0, 1) matrix;
  xi ~ N(0, 0.001^2 I); lr 0.01.
- **case 1** (strong-augmentation collapse, M1): z = W x + b, PyTorch default init
  U(-1/4, 1/4); xi = 0 on coordinates 1-8 and N(0, 1.5^2) on 9-16; lr 1e-3.

Arms: + gamma sum_l R(W_l) with R = SO (default) or exact SRIP on the weight matrices only
(never the bias), in the reshaping convention of :mod:`solvers.orthoreg`; optionally a
representation-whitening term (VICReg variance/covariance on the output of both views, §4.2).

Evaluation (§4.3): 1000 fresh N(0, I) inputs without augmentation; unbiased covariance of z;
erank on the covariance eigenvalues; count of eigenvalues > 1e-3 lambda_max; log10 lambda_min and
log10(lambda_min/lambda_max); "final batch loss" = the InfoNCE term of the last training batch,
excluding gamma R (also the mean of the last 100 steps, labelled as such; §5.9).

Two engines give the same trajectory (the tests hold them to round-off over hundreds of steps):
``"numpy"`` (default; hand-written float64 gradients, about 0.3 ms a step) and ``"torch"``
(autograd, float64, CPU; torch imported lazily, ``Skip``-able by callers when absent).  Random
streams come from ``numpy.random.SeedSequence(seed).spawn(4)`` (init, data, batches and noise,
evaluation inputs), so both engines see identical draws and the evaluation inputs do not depend
on the number of steps.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .orthoreg import collapse_metrics, regulariser, regulariser_grad, weight_spectrum
from .sweeps import Choice, Float, Int, experiment
from .validation import check_choice, check_finite, check_int, check_positive

__all__ = [
    "CASES",
    "ENGINES",
    "ToyConfig",
    "ToyResult",
    "run_toy",
    "run_sweep",
    "clear_cache",
    "infonce_numpy",
    "infonce_torch",
    "so_torch",
    "srip_torch",
    "vicreg_varcov_numpy",
    "vicreg_varcov_torch",
    "torch_available",
    "single_thread_blas",
    "CASE2_GAMMAS",
    "CASE1_GAMMAS",
]

CASES = (1, 2)
ENGINES = ("numpy", "torch")
REGULARISERS = ("so", "srip")
CASE2_GAMMAS = (0.0, 0.003, 0.01, 0.1)  # orthoreg.md §4.3 case 2 grid
CASE1_GAMMAS = (0.0, 0.01, 0.1, 0.3, 1.0, 3.0)  # orthoreg.md §4.3 case 1 grid
VICREG_EPS = 1e-4  # VICReg's std epsilon (Bardes et al. 2022 code)

_DEFAULTS = {2: {"lr": 0.01, "noise": 0.001}, 1: {"lr": 1e-3, "noise": 1.5}}


def torch_available() -> bool:
    """True iff torch can be imported (the ``torch`` extra)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class ToyConfig:
    """One training run of a toy task (orthoreg.md §4.3).  ``lr``/``noise`` default per case
    (case 2: 0.01 / 0.001 on all coordinates; case 1: 1e-3 / 1.5 on coordinates 9-16).
    ``var_coef``/``cov_coef`` weight the VICReg variance/covariance terms on the output
    (0: off).  Hashable: results are memoised per configuration in this process."""

    case: int
    gamma: float = 0.0
    regulariser: str = "so"
    seed: int = 0
    steps: int = 10_000
    lr: float | None = None
    noise: float | None = None
    var_coef: float = 0.0
    cov_coef: float = 0.0
    engine: str = "numpy"
    n_train: int = 10_000
    batch: int = 128
    dim: int = 16
    tau: float = 0.1
    n_eval: int = 1000

    def __post_init__(self) -> None:
        if self.case not in CASES:
            raise ValueError(f"case must be 1 or 2; got {self.case!r}")
        gamma = check_finite(self.gamma, "gamma")
        if gamma < 0:
            raise ValueError(f"gamma must be a finite real number >= 0; got {self.gamma!r}")
        check_choice(self.regulariser, "regulariser", REGULARISERS)
        check_choice(self.engine, "engine", ENGINES)
        check_int(self.seed, "seed", minimum=0)
        check_int(self.steps, "steps", minimum=1)
        check_int(self.dim, "dim", minimum=2)
        n_train = check_int(self.n_train, "n_train", minimum=2)
        check_int(self.batch, "batch", minimum=2, maximum=n_train)
        check_int(self.n_eval, "n_eval", minimum=self.dim + 1)
        check_positive(self.tau, "tau")
        for name in ("var_coef", "cov_coef"):
            v = check_finite(getattr(self, name), name)
            if v < 0:
                raise ValueError(f"{name} must be a finite real number >= 0; got {v!r}")
        if self.case == 1 and self.dim % 2:
            raise ValueError(f"dim must be even for case 1 (noisy second half); got {self.dim}")
        d = _DEFAULTS[self.case]
        object.__setattr__(self, "gamma", float(gamma))
        object.__setattr__(self, "lr", float(check_positive(d["lr"] if self.lr is None else
                                                            self.lr, "lr")))
        noise = d["noise"] if self.noise is None else check_finite(self.noise, "noise")
        if noise < 0:
            raise ValueError(f"noise must be a finite real number >= 0; got {self.noise!r}")
        object.__setattr__(self, "noise", float(noise))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class ToyResult:
    """Outcome of one run (orthoreg.md §4.3 evaluation, §4.2 spectra)."""

    config: ToyConfig
    spectrum: np.ndarray
    erank: float
    erank_singular_centred: float
    rankme: float
    n_above_1e3: int
    log10_lambda_min: float
    log10_min_over_max: float
    final_loss: float
    mean_loss_last100: float
    final_regulariser: float
    weight_spectra: list[np.ndarray]
    hidden_spectrum: np.ndarray | None
    input_spectrum: np.ndarray
    alignment: np.ndarray | None
    loss_trace: np.ndarray
    seconds: float
    cpu_seconds: float
    metrics: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Scalars and the spectrum, JSON-friendly."""
        return {
            **{k: v for k, v in self.config.as_dict().items()},
            "erank": self.erank, "erank_singular_centred": self.erank_singular_centred,
            "rankme": self.rankme, "n_above_1e-3": self.n_above_1e3,
            "log10_lambda_min": self.log10_lambda_min,
            "log10_min_over_max": self.log10_min_over_max, "final_loss": self.final_loss,
            "mean_loss_last100": self.mean_loss_last100,
            "final_regulariser": self.final_regulariser, "spectrum": self.spectrum.tolist(),
            "input_spectrum": self.input_spectrum.tolist(),
            "hidden_spectrum": None if self.hidden_spectrum is None
            else self.hidden_spectrum.tolist(),
            "weight_spectra": [w.tolist() for w in self.weight_spectra],
            "seconds": self.seconds, "cpu_seconds": self.cpu_seconds,
        }


# --------------------------------------------------------------------------------------------
# losses (numpy, hand-written gradients)
# --------------------------------------------------------------------------------------------
def infonce_numpy(z1: np.ndarray, z2: np.ndarray, tau: float) -> tuple[float, np.ndarray, np.ndarray]:
    """One-directional InfoNCE on unnormalised embeddings and its gradients (orthoreg.md §4.3):

        l_ij = z1_i . z2_j / tau,   L = mean_i [ -l_ii + log sum_j exp(l_ij) ]
        dL/dz1 = P z2 / tau,  dL/dz2 = P^T z1 / tau,  P = (softmax_rows(l) - I) / B

    Max-shifted log-sum-exp (§5.9).  Equals ``solvers.losses.infonce(B, tau)`` evaluated on the
    similarity matrix of [z1; z2] (the tests hold it to 1e-10)."""
    b = z1.shape[0]
    logits = (z1 @ z2.T) / tau
    mx = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - mx)
    s = e.sum(axis=1, keepdims=True)
    loss = float(np.mean(mx[:, 0] + np.log(s[:, 0]) - np.diag(logits)))
    p = e / s
    p[np.diag_indices(b)] -= 1.0
    p /= b * tau
    return loss, p @ z2, p.T @ z1


def vicreg_varcov_numpy(z: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """VICReg variance and covariance terms of one branch and their gradients (§4.2 arm):

        v = mean_j relu(1 - sqrt(Var_j + eps)),  c = sum_{i != j} C_ij^2 / d,
        C = Zc^T Zc / (B - 1),  Var_j = C_jj,  eps = 1e-4
        dv/dZ = -[s_j < 1] Zc_bj / (d (B - 1) s_j),   dc/dZ = 4 Zc C_off / (d (B - 1))
    """
    b, d = z.shape
    zc = z - z.mean(axis=0)
    cov = zc.T @ zc / (b - 1)
    std = np.sqrt(np.diag(cov) + VICREG_EPS)
    active = std < 1.0
    var_term = float(np.mean(np.where(active, 1.0 - std, 0.0)))
    g_var = -(zc * (active / std)) / (d * (b - 1))
    off = cov.copy()
    np.fill_diagonal(off, 0.0)
    cov_term = float(np.sum(off * off) / d)
    g_cov = 4.0 * zc @ off / (d * (b - 1))
    return var_term, cov_term, g_var, g_cov


# --------------------------------------------------------------------------------------------
# losses (torch, autograd)
# --------------------------------------------------------------------------------------------
def infonce_torch(z1, z2, tau: float):
    """Torch InfoNCE, same definition as :func:`infonce_numpy` (torch.logsumexp is max-shifted)."""
    import torch

    logits = (z1 @ z2.T) / tau
    return (torch.logsumexp(logits, dim=1) - torch.diagonal(logits)).mean()


def _torch_matrix(weight):
    """reshape_weight in torch: [d_out, d_in] -> W^T; [c_out, c_in, ...] -> reshape(c_out, -1)^T."""
    return weight.reshape(weight.shape[0], -1).T


def _torch_gram_minus_identity(weight, gram: str):
    import torch

    w = _torch_matrix(weight)
    m, n = w.shape
    right = gram == "large" or m > n
    g = w.T @ w if right else w @ w.T
    return g - torch.eye(g.shape[0], dtype=g.dtype, device=g.device)


def so_torch(weight, gram: str = "small"):
    """SO of a torch weight in its framework layout (same conventions as ``solvers.orthoreg.so``)."""
    check_choice(gram, "gram", ("small", "large"))
    e = _torch_gram_minus_identity(weight, gram)
    return (e * e).sum()


def srip_torch(weight, gram: str = "small"):
    """Exact SRIP (largest |eigenvalue| of G - I by ``torch.linalg.eigvalsh``) of a torch weight;
    autograd gives the Danskin gradient where the top |eigenvalue| is simple."""
    import torch

    check_choice(gram, "gram", ("small", "large"))
    return torch.linalg.eigvalsh(_torch_gram_minus_identity(weight, gram)).abs().max()


def vicreg_varcov_torch(z):
    """Torch version of :func:`vicreg_varcov_numpy` (value pair only)."""
    import torch

    b, d = z.shape
    zc = z - z.mean(dim=0)
    cov = zc.T @ zc / (b - 1)
    std = torch.sqrt(torch.diagonal(cov) + VICREG_EPS)
    var_term = torch.relu(1.0 - std).mean()
    off = cov - torch.diag(torch.diagonal(cov))
    return var_term, (off * off).sum() / d


# --------------------------------------------------------------------------------------------
# set-up shared by both engines
# --------------------------------------------------------------------------------------------
def _streams(seed: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]


def _init_params(cfg: ToyConfig, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray | None]:
    d = cfg.dim
    if cfg.case == 2:
        weights = []
        for _ in range(2):
            u, _s, vt = np.linalg.svd(rng.random((d, d)))
            weights.append((u * np.exp(-0.35 * np.arange(d))) @ vt)
        return weights, None
    a = 1.0 / math.sqrt(d)  # PyTorch nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    w = rng.uniform(-a, a, (d, d))
    b = rng.uniform(-a, a, d)
    return [w], b


def _noise_scale(cfg: ToyConfig) -> np.ndarray:
    if cfg.case == 2:
        return np.full(cfg.dim, cfg.noise)
    half = cfg.dim // 2
    return np.concatenate([np.zeros(half), np.full(cfg.dim - half, cfg.noise)])


def _batches(cfg: ToyConfig, x: np.ndarray, rng: np.random.Generator):
    scale = _noise_scale(cfg)
    for _ in range(cfg.steps):
        idx = rng.choice(cfg.n_train, cfg.batch, replace=False)
        xi = rng.standard_normal((2, cfg.batch, cfg.dim)) * scale
        xb = x[idx]
        yield xb + xi[0], xb + xi[1]


# --------------------------------------------------------------------------------------------
# engines
# --------------------------------------------------------------------------------------------
def _train_numpy(cfg: ToyConfig, weights: list[np.ndarray], bias: np.ndarray | None,
                 batches) -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray]:
    losses = np.empty(cfg.steps)
    whiten = cfg.var_coef > 0 or cfg.cov_coef > 0
    for step, (x1, x2) in enumerate(batches):
        if cfg.case == 2:
            w1, w2 = weights
            h1, h2 = x1 @ w1.T, x2 @ w1.T
            z1, z2 = h1 @ w2.T, h2 @ w2.T
        else:
            (w,) = weights
            z1, z2 = x1 @ w.T + bias, x2 @ w.T + bias
        loss, g1, g2 = infonce_numpy(z1, z2, cfg.tau)
        losses[step] = loss
        if whiten:
            for z, g in ((z1, g1), (z2, g2)):
                _v, _c, gv, gc = vicreg_varcov_numpy(z)
                g += cfg.var_coef * gv + cfg.cov_coef * gc
        if cfg.case == 2:
            grads = [(g1 @ w2).T @ x1 + (g2 @ w2).T @ x2, g1.T @ h1 + g2.T @ h2]
        else:
            grads = [g1.T @ x1 + g2.T @ x2]
            bias -= cfg.lr * (g1.sum(axis=0) + g2.sum(axis=0))
        for w, g in zip(weights, grads, strict=True):
            if cfg.gamma > 0:
                g += cfg.gamma * regulariser_grad(w, cfg.regulariser)
            w -= cfg.lr * g
    return weights, bias, losses


def _train_torch(cfg: ToyConfig, weights: list[np.ndarray], bias: np.ndarray | None,
                 batches) -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray]:
    import torch

    dt = torch.float64
    ws = [torch.tensor(w, dtype=dt, requires_grad=True) for w in weights]
    b = None if bias is None else torch.tensor(bias, dtype=dt, requires_grad=True)
    params = ws + ([] if b is None else [b])
    reg_fn = so_torch if cfg.regulariser == "so" else srip_torch
    whiten = cfg.var_coef > 0 or cfg.cov_coef > 0
    losses = np.empty(cfg.steps)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 128 x 16 operations: threading only adds overhead
    try:
        for step, (x1n, x2n) in enumerate(batches):
            x1, x2 = torch.from_numpy(x1n), torch.from_numpy(x2n)
            if cfg.case == 2:
                z1, z2 = x1 @ ws[0].T @ ws[1].T, x2 @ ws[0].T @ ws[1].T
            else:
                z1, z2 = x1 @ ws[0].T + b, x2 @ ws[0].T + b
            loss = infonce_torch(z1, z2, cfg.tau)
            total = loss
            if whiten:
                for z in (z1, z2):
                    v, c = vicreg_varcov_torch(z)
                    total = total + cfg.var_coef * v + cfg.cov_coef * c
            if cfg.gamma > 0:
                total = total + cfg.gamma * sum(reg_fn(w) for w in ws)
            for p in params:
                p.grad = None
            total.backward()
            with torch.no_grad():
                for p in params:
                    p -= cfg.lr * p.grad
            losses[step] = float(loss.detach())
    finally:
        torch.set_num_threads(threads)
    out_w = [w.detach().numpy().copy() for w in ws]
    return out_w, None if b is None else b.detach().numpy().copy(), losses


def _alignment(w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """|V2^T U1|: right singular vectors of W2 against left singular vectors of W1 (§4.3 extra)."""
    u1 = np.linalg.svd(w1)[0]
    v2 = np.linalg.svd(w2)[2].T
    return np.abs(v2.T @ u1)


def _evaluate(cfg: ToyConfig, weights: list[np.ndarray], bias: np.ndarray | None,
              losses: np.ndarray, rng: np.random.Generator,
              seconds: tuple[float, float]) -> ToyResult:
    x = rng.standard_normal((cfg.n_eval, cfg.dim))
    if cfg.case == 2:
        h = x @ weights[0].T
        z = h @ weights[1].T
        hidden = collapse_metrics(h)["spectrum"]
        align = _alignment(*weights)
    else:
        z = x @ weights[0].T + bias
        hidden, align = None, None
    met = collapse_metrics(z)
    lam = met["spectrum"]
    floor = np.finfo(np.float64).tiny  # log10 of an exactly-zero eigenvalue: report the floor
    reg = float(sum(regulariser(w, cfg.regulariser) for w in weights))
    return ToyResult(
        config=cfg, spectrum=lam, erank=float(met["erank_covariance"]),
        erank_singular_centred=float(met["erank_singular_centred"]), rankme=float(met["rankme"]),
        n_above_1e3=int(met["n_above_1e-3"]),
        log10_lambda_min=math.log10(max(float(lam[-1]), floor)),
        log10_min_over_max=math.log10(max(float(lam[-1] / lam[0]), floor)),
        final_loss=float(losses[-1]), mean_loss_last100=float(np.mean(losses[-100:])),
        final_regulariser=reg, weight_spectra=[weight_spectrum(w) for w in weights],
        hidden_spectrum=hidden, input_spectrum=collapse_metrics(x)["spectrum"], alignment=align,
        loss_trace=losses[:: max(1, cfg.steps // 200)].copy(), seconds=seconds[0],
        cpu_seconds=seconds[1],
        metrics={k: v for k, v in met.items() if k != "spectrum"},
    )


_CACHE: dict[ToyConfig, ToyResult] = {}


def single_thread_blas():
    """Limit BLAS/LAPACK to one thread while training (16 x 16 and 128 x 16 products: a
    multi-threaded OpenBLAS only adds contention; measured 200x slower SVDs of 1000 x 16 on a
    loaded 2-core machine).  Uses threadpoolctl when installed, else does nothing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def clear_cache() -> None:
    """Forget the memoised runs of this process."""
    _CACHE.clear()


def run_toy(config: ToyConfig, use_cache: bool = True) -> ToyResult:
    """Train one toy encoder and evaluate it (orthoreg.md §4.3).  Results are memoised per
    configuration in this process (``use_cache=False`` recomputes).  The torch engine raises
    ImportError without torch (callers turn it into a Skip)."""
    if not isinstance(config, ToyConfig):
        raise ValueError(f"config must be a ToyConfig; got {type(config).__name__}")
    if use_cache and config in _CACHE:
        return _CACHE[config]
    if config.engine == "torch" and not torch_available():
        raise ImportError("the torch engine needs torch (pip install 'collapsekit[torch]')")
    with single_thread_blas():
        r_init, r_data, r_train, r_eval = _streams(config.seed)
        weights, bias = _init_params(config, r_init)
        x = r_data.standard_normal((config.n_train, config.dim))
        start, cpu = time.perf_counter(), time.process_time()
        train = _train_numpy if config.engine == "numpy" else _train_torch
        weights, bias, losses = train(config, weights, bias, _batches(config, x, r_train))
        seconds = (time.perf_counter() - start, time.process_time() - cpu)
        result = _evaluate(config, weights, bias, losses, r_eval, seconds)
    if use_cache:
        _CACHE[config] = result
    return result


def run_sweep(configs: Iterable[ToyConfig], executor: concurrent.futures.Executor | None = None,
              progress: Callable[[ToyResult], None] | None = None) -> list[ToyResult]:
    """Run many configurations (DESIGN.md "Sweeps"): serially in this process (memoised), or on
    any ``concurrent.futures.Executor`` (a process pool, a Dask client's executor).  Results come
    back in input order; ``progress`` is called once per finished run."""
    configs = list(configs)
    todo = [c for c in configs if c not in _CACHE]
    if executor is None:
        for c in todo:
            res = run_toy(c)
            if progress:
                progress(res)
    else:
        for c, res in zip(todo, executor.map(_run_uncached, todo), strict=True):
            _CACHE[c] = res
            if progress:
                progress(res)
    return [_CACHE[c] for c in configs]


def _run_uncached(config: ToyConfig) -> ToyResult:
    return run_toy(config, use_cache=False)


def grid(case: int, gammas: Sequence[float], seeds: Sequence[int], **kwargs) -> list[ToyConfig]:
    """ToyConfig for every (gamma, seed) pair, gamma-major."""
    return [ToyConfig(case=case, gamma=g, seed=s, **kwargs) for g in gammas for s in seeds]


# --------------------------------------------------------------------------------------------
# sweep registration (``collapsekit sweep orthoreg-toy --module solvers.orthoreg_experiments``)
# --------------------------------------------------------------------------------------------
@experiment(
    "orthoreg-toy",
    params=[
        Int("case", 2, low=1, high=2, help="2: two-layer linear encoder, weak augmentation (M2); "
            "1: one linear layer + bias, strong augmentation on coordinates 9-16 (M1)"),
        Float("gamma", 0.0, low=0.0, help="coefficient of sum_l R(W_l) (spec grids: case 2 "
              "0, 0.003, 0.01, 0.1; case 1 0, 0.01, 0.1, 0.3, 1, 3)"),
        Choice("regulariser", REGULARISERS, "so", help="so (squared Frobenius) or exact srip"),
        Int("steps", 10_000, low=1, help="SGD steps (spec: 10,000)"),
        Float("var_coef", 0.0, low=0.0, help="VICReg variance term on the output (0: off)"),
        Float("cov_coef", 0.0, low=0.0, help="VICReg covariance term on the output (0: off)"),
        Choice("engine", ENGINES, "numpy", help="numpy (hand gradients) or torch (autograd)"),
    ],
    seeded=True,
    version="1",
    description="DirectCLR toy task with orthogonality regularisation (orthoreg.md §4.3): erank, "
    "eigenvalue counts and ratios, final InfoNCE (excl. gamma R), covariance spectrum",
)
def toy_task(*, case: int, gamma: float, regulariser: str, steps: int, var_coef: float,
             cov_coef: float, engine: str, seed: int) -> dict:
    """One run of :func:`run_toy` as a sweep task (its :meth:`ToyResult.summary`)."""
    cfg = ToyConfig(case=case, gamma=gamma, regulariser=regulariser, steps=steps, seed=seed,
                    var_coef=var_coef, cov_coef=cov_coef, engine=engine)
    return run_toy(cfg, use_cache=False).summary()


__all__ += ["grid", "toy_task"]
