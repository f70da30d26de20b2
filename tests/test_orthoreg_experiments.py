"""The toy experiments of orthoreg.md §4.3: InfoNCE and regularisers in numpy (hand gradients) and
torch (autograd) against the loss library, the two engines against each other, and the
configuration rules.  The full 10,000-step outcomes are the checks ORTHO-C18..C20
(``collapsekit check --paper orthoreg``); here runs are short."""

from __future__ import annotations

import math

import numpy as np
import pytest

from solvers import orthoreg as orr
from solvers import orthoreg_experiments as ex
from solvers.losses import infonce

needs_torch = pytest.mark.skipif(not ex.torch_available(), reason="torch extra not installed")


def library_infonce(z1: np.ndarray, z2: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
    """The library's InfoNCE on the *unnormalised* similarity matrix of [z1; z2] and dL/dZ by the
    shared chain rule dL/dZ = (G + G^T) Z (DESIGN.md)."""
    z = np.vstack([z1, z2])
    val, g = infonce(z1.shape[0], tau).value_and_grad_gram(z @ z.T)
    return val, (g + g.T) @ z


def batch(seed: int, b: int = 12, d: int = 5, scale: float = 3.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((b, d)) * scale, rng.standard_normal((b, d)) * scale


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_numpy_infonce_matches_library(seed, tau):
    z1, z2 = batch(seed)
    val, g1, g2 = ex.infonce_numpy(z1, z2, tau)
    ref, gref = library_infonce(z1, z2, tau)
    # 1e-10: two float64 log-sum-exp evaluations of logits up to ~1e3 (relative 1e-12 each)
    assert abs(val - ref) <= 1e-10 * max(1.0, abs(ref))
    assert np.max(np.abs(np.vstack([g1, g2]) - gref)) <= 1e-10 * max(1.0, np.abs(gref).max())


@needs_torch
@pytest.mark.parametrize("seed", range(4))
def test_torch_infonce_matches_library(seed):
    import torch

    z1, z2 = batch(seed)
    t1 = torch.tensor(z1, dtype=torch.float64, requires_grad=True)
    t2 = torch.tensor(z2, dtype=torch.float64, requires_grad=True)
    loss = ex.infonce_torch(t1, t2, 0.1)
    loss.backward()
    ref, gref = library_infonce(z1, z2, 0.1)
    assert abs(float(loss.detach()) - ref) <= 1e-10 * max(1.0, abs(ref))  # float64 round-off (see above)
    got = np.vstack([t1.grad.numpy(), t2.grad.numpy()])
    assert np.max(np.abs(got - gref)) <= 1e-10 * max(1.0, np.abs(gref).max())


@needs_torch
def test_torch_infonce_matches_the_shared_torch_path():
    """The minimal training loss equals the toolkit's general torch path (solvers/torch_path) on
    unnormalised rows, dense and blockwise (the engine keeps the minimal one: ~3x faster a step)."""
    import torch

    torch_path = pytest.importorskip("solvers.torch_path")
    z1, z2 = batch(5, b=16)
    z = torch.tensor(np.vstack([z1, z2]), dtype=torch.float64)
    mine = float(ex.infonce_torch(z[:16], z[16:], 0.1).detach())
    shared = torch_path.to_torch(infonce(16, 0.1), dtype="float64")
    for mode in ("dense", "blockwise"):
        ref = float(shared(z, normalize=False, mode=mode, block=7))
        assert abs(mine - ref) <= 1e-10 * max(1.0, abs(ref))  # float64 round-off


def test_numpy_infonce_survives_large_logits():
    z1, z2 = batch(0, scale=40.0)  # logits ~ 1e4 / tau: exp would overflow without the shift
    val, g1, _ = ex.infonce_numpy(z1, z2, 0.1)
    assert math.isfinite(val) and np.all(np.isfinite(g1))


@needs_torch
@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 2, 3, 3), (3, 8, 1, 1)])
@pytest.mark.parametrize("gram", ["small", "large"])
def test_torch_regularisers_match_numpy(shape, gram):
    import torch

    w = np.random.default_rng(sum(shape)).standard_normal(shape) * 0.4
    for kind, fn in (("so", ex.so_torch), ("srip", ex.srip_torch)):
        t = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        val = fn(t, gram)
        val.backward()
        ref = orr.regulariser(w, kind, gram)
        assert abs(float(val.detach()) - ref) <= 1e-12 * max(1.0, ref)  # float64 round-off
        _, _, gap = orr.srip_top_eigenpair(orr.reshape_weight(w), gram)
        if kind == "so" or gap > 1e-6:  # the SRIP gradient needs a simple top |eigenvalue|
            gref = orr.regulariser_grad(w, kind, gram)
            assert np.max(np.abs(t.grad.numpy() - gref)) <= 1e-10 * max(1.0, np.abs(gref).max())


def test_vicreg_gradients_match_finite_differences():
    z = np.random.default_rng(0).standard_normal((10, 4)) * np.array([0.3, 2.0, 0.8, 0.1])
    z[:, 3] += 0.5 * z[:, 0]  # correlated columns: non-zero covariance term
    _, _, gv, gc = ex.vicreg_varcov_numpy(z)
    h = 1e-6
    for k, g in ((0, gv), (1, gc)):
        num = np.zeros_like(z)
        for idx in np.ndindex(*z.shape):
            e = np.zeros_like(z)
            e[idx] = h
            num[idx] = (ex.vicreg_varcov_numpy(z + e)[k] - ex.vicreg_varcov_numpy(z - e)[k]) / (2 * h)
        # central differences: truncation O(h^2), round-off ~1e-10; no std crosses 1 within h
        assert np.max(np.abs(g - num)) <= 1e-7 * max(1.0, np.abs(num).max())


CONFIGS = [
    dict(case=2),
    dict(case=2, gamma=0.05),
    dict(case=2, gamma=0.5, regulariser="srip"),
    dict(case=2, var_coef=1.0, cov_coef=1.0),
    dict(case=1, gamma=0.3),
    dict(case=1, var_coef=1.0, cov_coef=0.5),
]


@needs_torch
@pytest.mark.parametrize("kw", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_engines_agree(kw):
    """Hand-written numpy gradients and torch autograd follow the same trajectory (same draws)."""
    a = ex.run_toy(ex.ToyConfig(steps=150, **kw), use_cache=False)
    b = ex.run_toy(ex.ToyConfig(steps=150, engine="torch", **kw), use_cache=False)
    # 1e-9 relative: 150 SGD steps amplify float64 round-off differences (measured ~1e-15)
    assert np.max(np.abs(a.spectrum - b.spectrum)) <= 1e-9 * a.spectrum[0]
    assert np.max(np.abs(a.loss_trace - b.loss_trace)) <= 1e-9 * max(1.0, np.abs(a.loss_trace).max())
    assert abs(a.final_regulariser - b.final_regulariser) <= 1e-9 * max(1.0, a.final_regulariser)


def test_case2_initialisation_and_reproducibility():
    cfg = ex.ToyConfig(case=2, steps=1)
    r_init = ex._streams(0)[0]
    weights, bias = ex._init_params(cfg, r_init)
    assert bias is None
    for w in weights:  # singular values exp(-0.35 k), k = 0..15 (orthoreg.md §4.3)
        s = np.linalg.svd(w, compute_uv=False)
        assert np.allclose(s, np.exp(-0.35 * np.arange(16)), rtol=1e-12)
    a = ex.run_toy(ex.ToyConfig(case=2, steps=50, seed=7), use_cache=False)
    b = ex.run_toy(ex.ToyConfig(case=2, steps=50, seed=7), use_cache=False)
    assert np.array_equal(a.spectrum, b.spectrum) and a.final_loss == b.final_loss
    # evaluation inputs do not depend on the number of steps: same input spectrum
    c = ex.run_toy(ex.ToyConfig(case=2, steps=60, seed=7), use_cache=False)
    assert np.array_equal(a.input_spectrum, c.input_spectrum)


def test_case1_initialisation_and_noise():
    cfg = ex.ToyConfig(case=1, steps=1)
    (w,), b = ex._init_params(cfg, ex._streams(0)[0])
    assert np.max(np.abs(w)) <= 0.25 and np.max(np.abs(b)) <= 0.25  # U(-1/4, 1/4)
    scale = ex._noise_scale(cfg)
    assert np.array_equal(scale, np.r_[np.zeros(8), np.full(8, 1.5)])
    assert cfg.lr == 1e-3 and ex.ToyConfig(case=2).lr == 0.01


def test_result_fields_and_summary():
    r = ex.run_toy(ex.ToyConfig(case=2, steps=100, gamma=0.01), use_cache=False)
    lam = r.spectrum
    p = lam / lam.sum()
    p = p[p > 0]
    assert r.erank == pytest.approx(math.exp(-np.sum(p * np.log(p))), rel=1e-12)
    assert r.n_above_1e3 == int(np.sum(lam > 1e-3 * lam[0]))
    assert r.log10_min_over_max == pytest.approx(math.log10(lam[-1] / lam[0]), rel=1e-12)
    assert len(r.weight_spectra) == 2 and r.hidden_spectrum is not None
    assert r.alignment.shape == (16, 16)
    s = r.summary()
    assert s["case"] == 2 and len(s["spectrum"]) == 16 and s["gamma"] == 0.01


def test_sweep_is_memoised_and_ordered():
    ex.clear_cache()
    cfgs = ex.grid(2, [0.0, 0.01], [0, 1], steps=20)
    assert [(c.gamma, c.seed) for c in cfgs] == [(0.0, 0), (0.0, 1), (0.01, 0), (0.01, 1)]
    seen = []
    first = ex.run_sweep(cfgs, progress=seen.append)
    assert len(seen) == 4
    again = ex.run_sweep(cfgs, progress=seen.append)
    assert len(seen) == 4 and all(a is b for a, b in zip(first, again, strict=True))
    ex.clear_cache()


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(case=3), "case"),
        (dict(case=2, gamma=-1.0), "gamma"),
        (dict(case=2, regulariser="l2"), "regulariser"),
        (dict(case=2, engine="jax"), "engine"),
        (dict(case=2, steps=0), "steps"),
        (dict(case=2, batch=20000), "batch"),
        (dict(case=2, lr=0.0), "lr"),
        (dict(case=1, dim=15), "dim"),
        (dict(case=2, var_coef=-1.0), "var_coef"),
    ],
)
def test_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        ex.ToyConfig(**kw)
