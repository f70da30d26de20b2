"""Figures for dhel_kcl.md §8 (small synthetic versions, F1-F6) and the asymptotic minimisation.

Every figure writes its raw numbers next to the plot (``<name>.json``).  F1/F2 use configurations
optimised directly by the sphere solver over the (M, tau) grid (the issue's reading: "effective
rank and Wasserstein uniformity of the optimised configuration"), not trained encoders.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from matplotlib.ticker import NullFormatter
from scipy.special import logsumexp

from solvers.asymptotic_minimise import convergence_study, minimise_asymptotic
from solvers.dhel_kcl_experiments import FAMILY as BATCH_FAMILY
from solvers.dhel_kcl_experiments import KCL_T
from solvers.losses import dcl, dhel, infonce, simclr
from solvers.metrics import rankme, uniformity, w1_uniformity
from solvers.sphere_law import sample as law_sample
from solvers.sphere_law import uniform_points
from solvers.sphere_solver import minimize_loss
from solvers.sweeps import sweep_records
from theory import asymptotics as asy
from theory import simplex_closed_forms as scf

from .registry import figure
from .style import new_figure, save

PAPER = "dhel_kcl"


def _raw(out_dir: Path, name: str, payload: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    return path


@figure("dhel_kcl_robustness", PAPER,
        "F1: effective rank and W1 uniformity of configurations optimised over batch size M x temperature tau "
        "(KCL: t) for InfoNCE, SimCLR, DCL, DHEL and KCL, d = 16 (heatmaps)")
def robustness(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    d = 16
    sizes = (8, 32) if quick else (8, 32, 64)
    taus = (0.1, 0.5) if quick else (0.05, 0.1, 0.2, 0.5, 1.0)
    names = list(BATCH_FAMILY)
    grid = {n: {"erank": np.zeros((len(sizes), len(taus))), "w1": np.zeros((len(sizes), len(taus)))} for n in names}
    recs = sweep_records("dhel-kcl-batch", {"loss": names, "M": list(sizes), "tau": list(taus), "dim": [d]}, [0],
                         store=out_dir / "dhel_kcl_robustness.jsonl")
    for rec in recs:
        p, r = rec["params"], rec["result"]
        i, j = sizes.index(p["M"]), taus.index(p["tau"])
        grid[p["loss"]]["erank"][i, j], grid[p["loss"]]["w1"][i, j] = r["erank"], r["w1"]
    fig, axes = new_figure(len(names), width=2.3, height=2.1)
    fig2, axes2 = new_figure(len(names), width=2.3, height=2.1)
    for k, name in enumerate(names):
        for ax, key, cmap in ((axes[0, k], "erank", "viridis"), (axes2[0, k], "w1", "magma")):
            im = ax.imshow(grid[name][key], cmap=cmap, aspect="auto", origin="lower")
            ax.set_xticks(range(len(taus)), [f"{KCL_T[t]:g}" if name == "KCL" else f"{t:g}" for t in taus])
            ax.set_yticks(range(len(sizes)), [str(m) for m in sizes])
            ax.set(xlabel="t" if name == "KCL" else r"$\tau$", ylabel="M" if k == 0 else None,
                   title=f"{name}: {'erank' if key == 'erank' else 'W1unif'}")
            ax.grid(False)
            fig.colorbar(im, ax=ax, fraction=0.046) if key == "erank" else fig2.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig2.tight_layout()
    raw = _raw(out_dir, "dhel_kcl_robustness", {
        "dim": d, "sizes": sizes, "taus": taus, "kcl_t": [KCL_T[t] for t in taus],
        "grid": {n: {k: v.tolist() for k, v in g.items()} for n, g in grid.items()},
        "spread": {n: {k: float(v.max() - v.min()) for k, v in g.items()} for n, g in grid.items()}})
    return save(fig, out_dir, "dhel_kcl_robustness_erank", formats) + \
        save(fig2, out_dir, "dhel_kcl_robustness_w1", formats) + [raw]


@figure("dhel_kcl_erank_vs_dim", PAPER,
        "F2: effective rank (RankMe) of the optimised configuration against the embedding dimension at fixed M")
def erank_vs_dim(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    m = 32 if quick else 64
    dims = (4, 8, 16) if quick else (4, 8, 16, 32, 64)
    rows = {name: [0.0] * len(dims) for name in ("SimCLR", "DCL", "DHEL", "KCL")}
    # tau = 0.2 pairs with the KCL scale t = KCL_T[0.2] = 2
    recs = sweep_records("dhel-kcl-batch", {"loss": list(rows), "M": [m], "tau": [0.2], "dim": list(dims)}, [0],
                         store=out_dir / "dhel_kcl_erank_vs_dim.jsonl")
    for rec in recs:
        rows[rec["params"]["loss"]][dims.index(rec["params"]["dim"])] = rec["result"]["erank"]
    fig, axes = new_figure(1)
    ax = axes[0, 0]
    for name, vals in rows.items():
        ax.plot(dims, vals, "o-", label=name, ms=3)
    ax.plot(dims, [min(d, m - 1) for d in dims], "k--", lw=0.8, label="min(d, M - 1)")
    ax.set(xscale="log", yscale="log", xlabel="embedding dimension d", ylabel="erank (RankMe)",
           title=rf"M = {m}, $\tau$ = 0.2, KCL t = 2")
    ax.legend()
    raw = _raw(out_dir, "dhel_kcl_erank_vs_dim", {"instances": m, "dims": dims, "erank": rows})
    return save(fig, out_dir, "dhel_kcl_erank_vs_dim", formats) + [raw]


@figure("dhel_kcl_collapse_metrics", PAPER,
        "F3: W1 uniformity, Wang-Isola uniformity and effective rank of samples on a k-dimensional great subsphere "
        "of R^128 (markers) against the continuum curves W1(p_k, p_d), -2t + log 0F1(; k/2; t^2) and k")
def collapse_metrics(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    d, t = 128, 2.0
    ks = (4, 16, 64, 128) if quick else (4, 8, 16, 32, 64, 128)
    n, n_rank = (500, 3000) if quick else (2000, 10_000)
    rng = np.random.default_rng(3)
    emp = {"w1": [], "wang_isola": [], "erank": []}
    for k in ks:
        x = np.zeros((n_rank, d))
        x[:, :k] = uniform_points(n_rank, k, rng)
        emp["w1"].append(w1_uniformity(x[:n], d=d))
        emp["wang_isola"].append(uniformity(x[:n], t))
        emp["erank"].append(rankme(x))
    kk = np.unique(np.geomspace(2, d, 40).astype(int))
    curves = {"k": kk.tolist(), "w1": [asy.w1_between_laws(k, d) if k < d else 0.0 for k in kk],
              "w1_gauss": [asy.w1_gaussian_approx(k, d) for k in kk],
              "wang_isola": [asy.uniformity_uniform(int(k), t) for k in kk]}
    fig, axes = new_figure(3, width=2.6)
    axes[0, 0].plot(kk, curves["w1"], "-", label=r"$W_1(p_k, p_d)$")
    axes[0, 0].plot(kk, curves["w1_gauss"], ":", label="Gaussian approx.")
    axes[0, 0].plot(ks, emp["w1"], "o", ms=3, label=f"n = {n}")
    axes[0, 0].set(xscale="log", xlabel="subsphere dimension k", ylabel="W1unif")
    axes[0, 1].plot(kk, curves["wang_isola"], "-", label=r"$-2t + \log {}_0F_1(;k/2;t^2)$")
    axes[0, 1].plot(ks, emp["wang_isola"], "o", ms=3, label=f"n = {n}")
    axes[0, 1].axhline(-2 * t, color="k", lw=0.6, ls="--", label="-2t")
    axes[0, 1].set(xscale="log", xlabel="subsphere dimension k", ylabel="Wang-Isola (t = 2)")
    axes[0, 2].plot(kk, kk, "-", label="k")
    axes[0, 2].plot(ks, emp["erank"], "o", ms=3, label=f"N = {n_rank}")
    axes[0, 2].set(xscale="log", yscale="log", xlabel="subsphere dimension k", ylabel="erank (RankMe)")
    for ax in axes[0]:
        ax.legend()
    fig.tight_layout()
    raw = _raw(out_dir, "dhel_kcl_collapse_metrics", {"d": d, "t": t, "ks": ks, "n": n, "n_rank": n_rank,
                                                      "empirical": emp, "curves": curves})
    return save(fig, out_dir, "dhel_kcl_collapse_metrics", formats) + [raw]


@figure("dhel_kcl_similarity_histogram", PAPER,
        "F4: pairwise similarities of optimised configurations (asymptotic uniformity minimiser, DHEL batch optimum) "
        "against the density p_d, d = 8")
def similarity_histogram(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    d = 8
    n = 200 if quick else 600
    m = 64 if quick else 128
    result = minimise_asymptotic("uniformity", n, d, max_iter=60, keep_points=True)
    pts = result.points
    res = minimize_loss(dhel(m, 0.3), d, views=2, restarts=1, seed=0, max_iter=300)
    u = res.points[:m]
    fig, axes = new_figure(2)
    s = np.linspace(-1, 1, 400)
    out = {}
    for ax, (label, z) in zip(axes[0], ((f"uniformity minimiser, N = {n}", pts), (f"DHEL optimum, M = {m}", u)),
                              strict=True):
        sims = (z @ z.T)[np.triu_indices(z.shape[0], 1)]
        ax.hist(sims, bins=40, density=True, alpha=0.6, label=label)
        ax.plot(s, asy.similarity_pdf(s, d), "k-", lw=1, label=r"$p_d$")
        ax.set(xlabel="cosine similarity", ylabel="density", title=f"W1unif = {w1_uniformity(z):.2e}")
        ax.legend()
        out[label] = {"w1": w1_uniformity(z), "hist": np.histogram(sims, bins=40, range=(-1, 1))[0].tolist()}
    fig.tight_layout()
    raw = _raw(out_dir, "dhel_kcl_similarity_histogram", {"d": d, "summary": result.summary(), "configs": out})
    return save(fig, out_dir, "dhel_kcl_similarity_histogram", formats) + [raw]


@figure("dhel_kcl_finite_m", PAPER,
        "F5: normalised batch expectations of InfoNCE, SimCLR, DCL/DHEL (1-D reduction, Monte Carlo) against M at "
        "d = 16, tau = 0.5, with the limit A(d, tau), the delta-method curves, and KCL's flat expected loss")
def finite_m(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    d, tau, t, gamma = 16, 0.5, 2.0, 16.0
    sizes = (4, 16, 64, 256) if quick else (4, 8, 16, 32, 64, 128, 256, 512, 1024)
    reps = 3000 if quick else 20000
    rng = np.random.default_rng(5)
    mc = {k: [] for k in ("infonce", "simclr", "dhel")}
    kcl_mc, kcl_se = [], []
    for m in sizes:
        s = law_sample(reps * (m - 1), d, rng).reshape(reps, m - 1) / tau
        ls = logsumexp(s, axis=1)
        mc["dhel"].append(float(np.mean(-1 / tau + ls - math.log(m - 1))))
        mc["infonce"].append(float(np.mean(-1 / tau + np.logaddexp(ls, 1 / tau) - math.log(m))))
        mc["simclr"].append(float(np.mean(-1 / tau + np.logaddexp(ls + math.log(2), 1 / tau) - math.log(2 * m))))
        if m <= 256:  # KCL code form at V = U: -2 + 2 gamma mean_{i<j} exp(-t r^2), one batch at a time
            iu = np.triu_indices(m, 1)
            vals = []
            for _ in range(200 if quick else 500):
                u = uniform_points(m, d, rng)
                vals.append(-2 + 2 * gamma * float(np.exp(-t * np.maximum(2 - 2 * (u @ u.T)[iu], 0)).mean()))
            kcl_mc.append(float(np.mean(vals)))
            kcl_se.append(float(np.std(vals, ddof=1) / math.sqrt(len(vals))))
    mm = np.geomspace(sizes[0], sizes[-1], 60).astype(int)
    a = asy.limit_A(d, tau)
    fig, axes = new_figure(2)
    ax = axes[0, 0]
    for (key, label), color in zip((("infonce", "InfoNCE"), ("simclr", "SimCLR"), ("dhel", "DHEL = DCL")),
                                   ("C0", "C1", "C2"), strict=True):
        ax.plot(sizes, mc[key], "o", color=color, ms=3, label=f"{label} (MC)")
        ax.plot(mm, [asy.delta_method(key, d, tau, int(m)) for m in mm], "-", color=color, lw=0.8)
    ax.axhline(a, color="k", ls="--", lw=0.8, label=f"A(16, 0.5) = {a:.4f}")
    ax.set(xscale="log", xlabel="batch size M", ylabel="E[L] - log-normaliser")
    ax.legend()
    kcl_val = asy.kcl_expected_loss(d, "gaussian", t, gamma, "code")
    ks = [m for m in sizes if m <= 256]
    axes[0, 1].errorbar(ks, kcl_mc, yerr=[3 * e for e in kcl_se], fmt="o", ms=3, capsize=2,
                        label="KCL (MC, aligned uniform, 3 SE)")
    axes[0, 1].axhline(kcl_val, color="k", ls="--", lw=0.8, label=f"T8 value {kcl_val:.4f}")
    axes[0, 1].set(xscale="log", xlabel="batch size M", ylabel="E[KCL] (code form)",
                   ylim=(kcl_val - 0.05, kcl_val + 0.05), title=r"KCL: t = 2, $\gamma$ = 16 (flat in M)")
    axes[0, 1].legend()
    fig.tight_layout()
    raw = _raw(out_dir, "dhel_kcl_finite_m", {"d": d, "tau": tau, "sizes": sizes, "reps": reps, "mc": mc,
                                              "limit": a, "kcl_mc": kcl_mc, "kcl_se": kcl_se,
                                              "kcl_expected": kcl_val})
    return save(fig, out_dir, "dhel_kcl_finite_m", formats) + [raw]


@figure("dhel_kcl_closed_form_minimum", PAPER,
        "F6: T1 closed-form minima against M (lines, sympy) with numerical minima of the sphere solver (markers), "
        "tau = 0.5, d = M - 1")
def closed_form_minimum(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    tau = 0.5
    marks = (2, 4, 6) if quick else (2, 3, 4, 5, 6, 8, 10)
    ms = np.arange(2, 13)
    names = {"infonce": infonce, "simclr": simclr, "dcl": lambda m, t: dcl(m, t, False), "dhel": dhel,
             "dhel2": lambda m, t: dhel(m, t, "code")}
    fig, axes = new_figure(1, width=4.0)
    ax = axes[0, 0]
    raw = {"tau": tau, "closed": {}, "numeric": {}}
    for (name, build), color in zip(names.items(), ("C0", "C1", "C2", "C3", "C4"), strict=True):
        closed = [scf.value(name, int(m), tau) for m in ms]
        num = [minimize_loss(build(m, tau), max(m - 1, 2), views=2, restarts=2, seed=m).fun for m in marks]
        ax.plot(ms, closed, "-", color=color, lw=1, label=name)
        ax.plot(marks, num, "o", color=color, ms=3)
        raw["closed"][name], raw["numeric"][name] = closed, num
    ax.set(xlabel="batch size M", ylabel="minimum loss (aligned simplex)", title=r"$\tau$ = 0.5; markers: solver")
    ax.legend(ncol=2)
    path = _raw(out_dir, "dhel_kcl_closed_form_minimum", {**raw, "marks": marks, "M": ms.tolist()})
    return save(fig, out_dir, "dhel_kcl_closed_form_minimum", formats) + [path]


@figure("dhel_kcl_asymptotic_convergence", PAPER,
        "Direct minimisation of the asymptotic objectives over N points (d = 3): W1 to p_d, gap to the closed-form "
        "asymptote and d - erank against N, with the diagonal-exclusion predictions")
def asymptotic_convergence(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    d = 3
    ns = (50, 100, 200) if quick else (50, 100, 200, 400, 800)
    jobs = {"uniformity": {"t": 2.0}, "kcl": {"t": 1.0, "gamma": 16.0}, "dhel": {"tau": 0.5}}
    if quick:
        jobs.pop("kcl")
    fig, axes = new_figure(3, width=3.0)
    raw = {}
    for (kind, kw), color in zip(jobs.items(), ("C0", "C1", "C2"), strict=False):
        asym = asy.finite_n_minimum(kind, ns[0], d, **kw)["asymptote"]
        st = convergence_study(kind, ns, d, asymptote=asym, max_iter=60, **kw)
        rows = st["rows"]
        pred = [abs(asy.finite_n_minimum(kind, n, d, **kw)["predicted"] - asym) for n in ns]
        axes[0, 0].plot(ns, [r["w1"] for r in rows], "o-", color=color, ms=3, label=f"{kind} minimiser")
        axes[0, 1].plot(ns, [abs(r["gap"]) for r in rows], "o", color=color, ms=3, label=kind)
        axes[0, 1].plot(ns, pred, "-", color=color, lw=0.8)
        axes[0, 2].plot(ns, [max(r["erank_gap_start"], 1e-16) for r in rows], "s--", color=color, ms=3,
                        label=f"{kind}: start")
        axes[0, 2].plot(ns, [max(r["erank_gap"], 1e-16) for r in rows], "o-", color=color, ms=3,
                        label=f"{kind}: minimiser")
        raw[kind] = {"rows": rows, "rates": st["rates"], "predicted_gap": pred, "params": kw}
    axes[0, 0].plot(ns, [r["w1_start"] for r in raw["uniformity"]["rows"]], "k:", lw=0.8, label="iid uniform start")
    axes[0, 0].plot(ns, [1 / (n - 1) for n in ns], "k--", lw=0.8, label="1/(N-1)")
    axes[0, 0].set(xscale="log", yscale="log", xlabel="N points", ylabel="W1unif (to p_3)")
    axes[0, 1].set(xscale="log", yscale="log", xlabel="N points", ylabel="|value - asymptote|")
    axes[0, 2].set(xscale="log", yscale="log", xlabel="N points", ylabel="d - erank")
    for ax in axes[0]:
        ax.legend(fontsize=6)
        ax.xaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    path = _raw(out_dir, "dhel_kcl_asymptotic_convergence", {"d": d, "ns": ns, "objectives": raw})
    return save(fig, out_dir, "dhel_kcl_asymptotic_convergence", formats) + [path]
