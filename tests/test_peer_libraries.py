"""The torch path against the peer libraries (anchors.md §9 protocol), test-only dependencies.

- pytorch-metric-learning (PML) 2.9.0: NTXentLoss and SupConLoss(reducer=MeanReducer()) agree
  with ours on the conventions they share; the tests below also pin, with closed forms, where
  they differ (several positives per label, anchors without positives, the AvgNonZeroReducer
  pitfall ANCH-L7, input normalisation).
- lightly 1.6.0: skipped here (``lightly.loss`` imports torchvision, whose wheel would replace
  the CPU torch build with torch 2.15.0 + CUDA).  When it is installed the protocol runs; in any
  case the library values *recorded* in shared/data/contrastive_loss_reference_values.csv
  (columns lib_pml, lib_lightly) are checked against the torch path.
- HobbitLong/SupContrast is not a package (no release to install); not run.

Tolerance (anchors.md §9 item 6): |a - b| <= 1e-12 + 1e-9 |b| in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from paper_checks.reference_data import contrastive_reference  # noqa: E402
from solvers.configurations import regular_simplex  # noqa: E402
from solvers.layout import Layout  # noqa: E402
from solvers.loss_registry import LossOptions  # noqa: E402
from solvers.losses import supcon  # noqa: E402
from solvers.torch_path import structured_torch_loss, to_torch  # noqa: E402

SETTINGS = settings(max_examples=15, deadline=None)


def close(a: float, b: float) -> bool:
    """anchors.md §9.6: the absolute term covers losses near 0, where -log(ratio ~ 1) loses digits."""
    return abs(a - b) <= 1e-12 + 1e-9 * abs(b)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops on a shared 2-core machine; results do not depend on it
    yield
    torch.set_num_threads(before)


def ours(name: str, layout: Layout, x: torch.Tensor, tau: float, **opts) -> tuple[float, torch.Tensor]:
    tl = structured_torch_loss(name, layout, x.shape[1], LossOptions(tau=tau, **opts))
    return tl.value_and_grad(x, block=5)


def _grad(fn, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    y = x.detach().clone().requires_grad_(True)
    v = fn(y)
    (g,) = torch.autograd.grad(v, y)
    return float(v.detach()), g


labels_with_pairs = st.lists(st.integers(0, 3), min_size=4, max_size=10).filter(
    lambda lab: all(lab.count(c) >= 2 for c in set(lab)) and len(set(lab)) >= 2)


# ----------------------------------------------------------------------------------------------
# pytorch-metric-learning
# ----------------------------------------------------------------------------------------------
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")


@SETTINGS
@given(n=st.integers(2, 8), d=st.integers(2, 6), tau=st.floats(0.05, 1.0), seed=st.integers(0, 10**6))
def test_ntxent_matches_pml(n, d, tau, seed):
    """Protocol 1: [z1; z2] with labels (0..n-1, 0..n-1) = our SimCLR (value and gradient)."""
    x = torch.tensor(np.random.default_rng(seed).standard_normal((2 * n, d)) * 2.0)
    labels = torch.arange(n).repeat(2)
    pv, pg = _grad(lambda y: pml_losses.NTXentLoss(temperature=tau)(y, labels), x)
    v, g = ours("simclr", Layout.instances(n, 2), x, tau)
    assert close(v, pv)
    assert float((g - pg).abs().max()) <= 1e-12 + 1e-9 * float(pg.abs().max())


@SETTINGS
@given(labels=labels_with_pairs, d=st.integers(2, 6), tau=st.floats(0.05, 1.0), seed=st.integers(0, 10**6))
def test_supcon_mean_reducer_matches_pml(labels, d, tau, seed):
    """Protocol 3: SupCon L_out = PML SupConLoss with MeanReducer when every anchor has a positive."""
    lab = np.array(labels)
    x = torch.tensor(np.random.default_rng(seed).standard_normal((lab.size, d)))
    fn = pml_losses.SupConLoss(temperature=tau, reducer=pml_reducers.MeanReducer())
    pv, pg = _grad(lambda y: fn(y, torch.tensor(lab)), x)
    v, g = ours("supcon", Layout(lab, 1), x, tau)
    assert close(v, pv)
    assert float((g - pg).abs().max()) <= 1e-12 + 1e-9 * float(pg.abs().max())


def test_pml_mean_reducer_counts_lonely_anchors_as_zero():
    """Difference: an anchor without positives.  Ours raises (REQ-1) or, opted in, excludes it;
    PML's MeanReducer averages it in as 0, i.e. PML = ours_exclude * (anchors with positives) / N."""
    lab = np.array([0, 0, 1, 1, 1, 2, 3])  # labels 2 and 3 occur once
    x = torch.tensor(np.random.default_rng(3).standard_normal((lab.size, 5)))
    with pytest.raises(ValueError, match="labels: anchor row 5"):
        structured_torch_loss("supcon", Layout(lab, 1), 5, LossOptions(tau=0.2))
    excl = to_torch(supcon(lab, 0.2, no_positive="exclude")).value(x)
    pml = float(pml_losses.SupConLoss(temperature=0.2, reducer=pml_reducers.MeanReducer())(x, torch.tensor(lab)))
    assert close(pml, excl * 5 / 7)
    assert not close(pml, excl)


def test_pml_supcon_without_negatives_returns_zero():
    """Difference: a one-class batch has positives but no negatives.  PML returns 0 (its loss
    needs a negative); L_out is still defined: with m = 4 collapsed samples every anchor has
    -1/tau + log(3 e^{1/tau}) = log 3 (derived), which ours returns."""
    lab = np.zeros(4, dtype=int)
    x = torch.tensor(np.repeat(regular_simplex(2, 3)[:1], 4, axis=0))
    pml = float(pml_losses.SupConLoss(temperature=0.5, reducer=pml_reducers.MeanReducer())(x, torch.tensor(lab)))
    assert pml == 0.0
    mine = structured_torch_loss("supcon", Layout(lab, 1), 3, LossOptions(tau=0.5)).value(x)
    assert mine == pytest.approx(math.log(3.0), rel=1e-14)


@pytest.mark.parametrize("dtype,tau", [(torch.float32, 0.05), (torch.float64, 0.01)])
def test_avg_nonzero_reducer_pitfall(dtype, tau):
    """ANCH-L7: at the collapsed optimum per-anchor losses underflow to 0 and PML's default
    AvgNonZeroReducer averages only the rest (anchors.md §9: 0.6931 returned for 0.5671).

    Configuration: C = 4 class means at a regular simplex in R^3 (inner products -1/3), class
    sizes (3, 3, 3, 2), samples collapsed.  Derived per-anchor L_out with eps = exp(-4/(3 tau)):
    size-3 class log(2 + 8 eps), size-2 class log(1 + 9 eps); true mean (9 log(2 + 8 eps) + 2 log(1 + 9 eps)) / 11.
    """
    sizes = [3, 3, 3, 2]
    lab = np.repeat(np.arange(4), sizes)
    x = torch.tensor(np.repeat(regular_simplex(4, 3), sizes, axis=0), dtype=dtype)
    eps = math.exp(-4.0 / (3.0 * tau))
    true_mean = (9 * math.log(2 + 8 * eps) + 2 * math.log1p(9 * eps)) / 11
    nonzero_mean = math.log(2 + 8 * eps)
    default = float(pml_losses.SupConLoss(temperature=tau)(x, torch.tensor(lab)))
    meanred = float(pml_losses.SupConLoss(temperature=tau, reducer=pml_reducers.MeanReducer())(x, torch.tensor(lab)))
    mine = structured_torch_loss("supcon", Layout(lab, 1), 3, LossOptions(tau=tau),
                                 dtype="float32" if dtype == torch.float32 else "float64").value(x)
    # float32: eps32 * 1/tau = 1.2e-7 * 20 = 2.4e-6 absolute error of each logit-scale term
    tol = dict(rel=1e-5, abs=1e-5) if dtype == torch.float32 else dict(rel=1e-12, abs=1e-12)
    assert default == pytest.approx(nonzero_mean, **tol)  # the pitfall: 0.6931...
    assert default > true_mean + 0.1
    assert meanred == pytest.approx(true_mean, **tol)  # MeanReducer gives the true mean
    assert mine == pytest.approx(true_mean, **tol)  # ours: mean over all anchors


def test_pml_ntxent_with_several_positives_is_per_pair():
    """Difference: PML NTXent with m > 2 samples per label is one term per ordered positive pair
    whose denominator holds that positive and the anchor's negatives (anchors.md §9), not SupCon."""
    lab = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    rng = np.random.default_rng(8)
    x = rng.standard_normal((lab.size, 4))
    tau = 0.3
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = z @ z.T / tau
    terms = []
    for a in range(lab.size):
        neg = s[a, lab != lab[a]]
        for p in np.flatnonzero(lab == lab[a]):
            if p != a:
                terms.append(-s[a, p] + np.logaddexp(s[a, p], np.logaddexp.reduce(neg)))
    per_pair = float(np.mean(terms))
    pml = float(pml_losses.NTXentLoss(temperature=tau)(torch.tensor(x), torch.tensor(lab)))
    sup = structured_torch_loss("supcon", Layout(lab, 1), 4, LossOptions(tau=tau)).value(x)
    assert close(pml, per_pair)
    assert abs(pml - sup) > 1e-2  # a different loss: the other positives leave the denominator
    # with exactly two samples per label the two coincide (one positive per anchor)
    two = np.array([0, 1, 2, 0, 1, 2])
    y = x[:6]
    assert close(float(pml_losses.NTXentLoss(temperature=tau)(torch.tensor(y), torch.tensor(two))),
                 structured_torch_loss("supcon", Layout(two, 1), 4, LossOptions(tau=tau)).value(y))


def test_pml_normalises_like_our_default():
    """PML normalises its input (cosine similarity); ours does so unless normalize=False (REQ-4)."""
    x = torch.tensor(np.random.default_rng(4).standard_normal((8, 5)) * 3.0)
    labels = torch.arange(4).repeat(2)
    pml = float(pml_losses.NTXentLoss(temperature=0.5)(x, labels))
    tl = structured_torch_loss("simclr", Layout.instances(4, 2), 5, LossOptions(tau=0.5))
    assert close(tl.value(x), pml)
    assert not close(tl.value(x, normalize=False), pml)


# ----------------------------------------------------------------------------------------------
# recorded library values (shared/data) and lightly
# ----------------------------------------------------------------------------------------------
def _reference_case(row: dict) -> tuple[str, Layout, np.ndarray, LossOptions]:
    n, m, d, tau = row["n"], row["m"], row["d"], row["tau"]
    if row["loss"] in ("ntxent", "dcl"):
        pts = regular_simplex(n, d)
        return ("simclr" if row["loss"] == "ntxent" else "dcl"), Layout.instances(n, 2), np.vstack([pts, pts]), \
            LossOptions(tau=tau)
    if row["loss"] == "supcon_out":
        return "supcon", Layout.balanced(n, m, 1), np.repeat(regular_simplex(n, d), m, axis=0), LossOptions(tau=tau)
    return "uniformity", Layout.instances(n, 1), regular_simplex(n, d), LossOptions(t=tau)


REFERENCE = contrastive_reference()


@pytest.mark.parametrize("row", REFERENCE, ids=lambda r: f"{r['loss']}-n{r['n']}-m{r['m']}-d{r['d']}-{r['tau']}")
def test_recorded_library_values(row):
    """Our torch value at the predicted minimiser equals the closed form and the recorded PML /
    lightly outputs of the data file (lightly 1.6.0 and PML 2.9.0 were run by the table's authors)."""
    name, layout, pts, opts = _reference_case(row)
    for mode in ("dense", "blockwise"):
        v = structured_torch_loss(name, layout, pts.shape[1], opts).value(pts, mode=mode, block=3)
        assert close(v, row["closed_form"]), (mode, v)
        for lib in ("lib_pml", "lib_lightly"):
            if row[lib] is not None:
                assert close(v, row[lib]), (lib, v, row[lib])


LIGHTLY_REASON = ("lightly 1.6.0 imports torchvision in lightly.loss; installing torchvision would pull torch "
                  "2.15.0 + CUDA wheels over the CPU torch 2.13.0 build, so lightly is not installed here")


@pytest.fixture(scope="module")
def lightly_loss():
    return pytest.importorskip("lightly.loss", reason=LIGHTLY_REASON)


@SETTINGS
@given(n=st.integers(2, 8), d=st.integers(2, 6), tau=st.floats(0.05, 1.0), seed=st.integers(0, 10**6))
def test_lightly_ntxent_and_dcl(lightly_loss, n, d, tau, seed):
    """Protocol 2: NTXentLoss(memory_bank_size=0)(z1, z2) = SimCLR; DCLLoss(z1, z2) = symmetric DCL."""
    x = torch.tensor(np.random.default_rng(seed).standard_normal((2 * n, d)))
    z1, z2 = x[:n], x[n:]
    nt = float(lightly_loss.NTXentLoss(temperature=tau, memory_bank_size=0)(z1, z2))
    dc = float(lightly_loss.DCLLoss(temperature=tau)(z1, z2))
    assert close(ours("simclr", Layout.instances(n, 2), x, tau)[0], nt)
    assert close(ours("dcl", Layout.instances(n, 2), x, tau)[0], dc)


def test_lightly_hypersphere_uniformity(lightly_loss):
    """Protocol 4: HypersphereLoss(t) with two identical views is the uniformity term (pairs i < j)."""
    hypersphere = pytest.importorskip("lightly.loss.hypersphere_loss")  # not re-exported by lightly.loss
    x = torch.tensor(np.random.default_rng(5).standard_normal((9, 4)))
    val = float(hypersphere.HypersphereLoss(t=2.0)(x, x))
    tl = structured_torch_loss("uniformity", Layout.instances(9, 1), 4, LossOptions(t=2.0))
    assert close(tl.value(x), val)
