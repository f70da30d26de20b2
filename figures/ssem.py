"""Figures of the SSEM paper at small scale (spec ``ssem.md`` §7.4; the paper's own figures were
not available, so these illustrate the derived results, provenance ``[REC] [DER+NUM]``).

- ``ssem_W_vs_alpha`` (F1): W* and B* against alpha for (K, n) = (2, 3) and (4, 5) at several
  tau: theory curves (1-D root of :mod:`theory.ssem`), direct-minimisation markers (one per seed)
  and vertical lines at alpha*(tau).
- ``ssem_phase_diagram`` (F2): heatmap of W*(alpha, tau) for K = 4, n = 5 with the collapse
  boundary alpha*(tau) (= tau_max(alpha)) from theory, and the solver's collapsed (W < 1e-3) and
  non-collapsed points on a coarse grid.
- ``ssem_alpha_star`` (F3): alpha*(tau) for several (K, n), both variants, with the small-tau
  limits 1/n and (p-1)/(np-1).
- ``ssem_self_excluded_regimes`` (F4): the self-excluded regime diagram in the (tau, alpha) plane:
  alpha_split(tau), alpha*_se(tau) and alpha_eff (SupCon), K = 3, n = 4, p = 2.
- ``ssem_W_vs_tau`` (F5): W* against tau at fixed alpha (K = 4, n = 5): exact, the small-tau
  asymptote of R8, tau_max, and solver markers, showing that W* is not monotone in tau.

Solver points come from the sweep engine (experiment ``ssem-minimise`` of
:mod:`solvers.ssem_minimise`, protocol of spec §8.7) with a resumable JSON-lines store next to
the figures (``ssem_minimise.jsonl``), so a second call redraws without re-solving.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from solvers import ssem_minimise  # noqa: F401  (registers the ssem-minimise experiment)
from solvers.sweeps import sweep_records
from theory import ssem

from .registry import figure
from .style import new_figure, save

PAPER = "ssem"
STORE = "ssem_minimise.jsonl"
COLLAPSE_W = 1e-3  # spec §10 (SSEM-C5): "collapsed" means W < 1e-3 at the minimiser
TAU_COLOURS = {0.1: "C0", 0.5: "C1", 1.0: "C2"}


def _solver(out_dir: Path, grid: dict, seeds: list[int]) -> list[dict]:
    """Direct minimisations through the sweep engine (resumable store in ``out_dir``)."""
    return [r["result"] for r in sweep_records("ssem-minimise", grid, seeds, store=out_dir / STORE)]


def _W(alpha: float, tau: float, K: int, n: int, p: int = 2, variant: str = "code") -> float:
    return ssem.beta_star(float(alpha), float(tau), K, n, p, variant).W_star


@figure("ssem_W_vs_alpha", PAPER,
        "F1: W* and B* against alpha for (K, n) = (2, 3), (4, 5) at tau = 0.1, 0.5, 1: theory curves, "
        "direct-minimisation markers (one per seed), vertical lines at alpha*(tau)")
def w_vs_alpha(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    seeds = [0] if quick else [0, 1, 2]
    points = [0.0, 0.3, 0.6, 0.9] if quick else [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    alphas = np.linspace(0.0, 1.0, 401)
    fig, axes = new_figure(2, width=3.6, height=2.9)
    for ax, (K, n) in zip(axes[0], ((2, 3), (4, 5)), strict=True):
        recs = _solver(out_dir, {"K": [K], "n": [n], "p": [2], "tau": list(TAU_COLOURS), "alpha": points}, seeds)
        for tau, colour in TAU_COLOURS.items():
            W = np.array([_W(a, tau, K, n) for a in alphas])
            ax.plot(alphas, W, "-", color=colour, lw=1.2, label=rf"$W^*$, $\tau$ = {tau}")
            ax.plot(alphas, 1 - W, "--", color=colour, lw=0.9, label=rf"$B^*$, $\tau$ = {tau}")
            ax.axvline(float(ssem.alpha_star(K, n, tau)), color=colour, ls=":", lw=0.8)
            mine = [r for r in recs if r["tau"] == tau]
            ax.plot([r["alpha"] for r in mine], [r["W"] for r in mine], "o", color=colour, ms=3.5, mfc="none")
            ax.plot([r["alpha"] for r in mine], [r["B"] for r in mine], "s", color=colour, ms=3, mfc="none")
        ax.plot([], [], "ko", mfc="none", ms=3.5, label="solver W")
        ax.plot([], [], "ks", mfc="none", ms=3, label="solver B")
        ax.plot([], [], "k:", lw=0.8, label=r"$\alpha^*(\tau)$")
        ax.set(xlabel=r"$\alpha$ (weight of the self-supervised term)", ylabel="variance share",
               title=f"K = {K}, n = {n}, p = 2 (code variant)", xlim=(0, 1), ylim=(-0.02, 1.02))
    handles, labels = axes[0, 1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=5, fontsize=7, frameon=False)
    fig.suptitle(f"theory: lines; direct minimisation (d = Kn + 2, seeds {seeds}): markers", fontsize=8, y=1.04)
    return save(fig, out_dir, "ssem_W_vs_alpha", formats)


@figure("ssem_phase_diagram", PAPER,
        "F2: heatmap of W*(alpha, tau) for K = 4, n = 5 with the collapse boundary alpha*(tau) from theory and "
        "the solver's collapsed / non-collapsed points")
def phase_diagram(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    K, n = 4, 5
    alphas = np.linspace(0.0, 1.0, 101 if quick else 201)
    taus = np.geomspace(0.02, 3.0, 80 if quick else 160)
    W = np.array([[_W(a, t, K, n) for a in alphas] for t in taus])
    fig, axes = new_figure(1, width=4.4, height=3.4)
    ax = axes[0, 0]
    mesh = ax.pcolormesh(alphas, taus, W, shading="auto", cmap="viridis", vmin=0.0)
    fig.colorbar(mesh, ax=ax, label=r"$W^*$ (within-class variance at the optimum)")
    fine = np.geomspace(0.02, 3.0, 400)
    ax.plot([float(ssem.alpha_star(K, n, t)) for t in fine], fine, "w-", lw=1.5,
            label=r"collapse boundary $\alpha^*(\tau)$ (theory)")
    ax.axvline(1 / n, color="w", ls=":", lw=1, label=r"$\alpha = 1/n$ (small-$\tau$ limit)")
    pa = [0.1, 0.3, 0.5, 0.7, 0.9] if quick else [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    pt = [0.1, 0.5, 1.0, 2.0] if quick else [0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
    recs = _solver(out_dir, {"K": [K], "n": [n], "p": [2], "tau": pt, "alpha": pa}, [0])
    col = [r for r in recs if r["W"] < COLLAPSE_W]
    non = [r for r in recs if r["W"] >= COLLAPSE_W]
    ax.plot([r["alpha"] for r in col], [r["tau"] for r in col], "rx", ms=5, mew=1.3, ls="none",
            label=f"solver: collapsed (W < {COLLAPSE_W:g})")
    ax.plot([r["alpha"] for r in non], [r["tau"] for r in non], "o", color="w", mec="k", ms=4.5, ls="none",
            label="solver: not collapsed")
    ax.set(yscale="log", xlabel=r"$\alpha$", ylabel=r"temperature $\tau$", xlim=(0, 1), ylim=(0.02, 3.0),
           title=f"K = {K}, n = {n}, p = 2, code variant (seed 0, d = Kn + 2)")
    ax.grid(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=6, frameon=False)
    return save(fig, out_dir, "ssem_phase_diagram", formats)


@figure("ssem_alpha_star", PAPER,
        "F3: the collapse threshold alpha*(tau) for several (K, n), both variants (p = 2), with the small-tau "
        "limits 1/n and (p-1)/(np-1)")
def alpha_star_curves(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    taus = np.geomspace(0.01, 10.0, 300)
    fig, axes = new_figure(2, width=3.5, height=2.8)
    for ax, variant in zip(axes[0], ("code", "self-excluded"), strict=True):
        for i, (K, n) in enumerate(((2, 3), (4, 5), (10, 50), (100, 5))):
            a = [float(ssem.alpha_star(K, n, t, variant, 2)) for t in taus]
            lim = 1 / n if variant == "code" else (2 - 1) / (2 * n - 1)
            ax.plot(taus, a, "-", color=f"C{i}", lw=1.2, label=f"K = {K}, n = {n}")
            ax.axhline(lim, color=f"C{i}", ls=":", lw=0.8)
        ax.set(xscale="log", xlabel=r"temperature $\tau$", ylabel=r"collapse threshold $\alpha^*$",
               ylim=(0, 1.02), title=f"{variant} variant, p = 2 (dotted: "
               + ("1/n)" if variant == "code" else "(p-1)/(np-1))"))
    axes[0, 0].legend(loc="upper left", fontsize=7, title=r"collapse iff $\alpha \leq \alpha^*$")
    return save(fig, out_dir, "ssem_alpha_star", formats)


@figure("ssem_self_excluded_regimes", PAPER,
        "F4: self-excluded regimes (K = 3, n = 4, p = 2): alpha_split(tau), alpha*_se(tau) and the SupCon point "
        "alpha_eff = 1/7 in the (tau, alpha) plane")
def self_excluded_regimes(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    K, n, p = 3, 4, 2
    taus = np.geomspace(0.02, 5.0, 300)
    a_star = np.array([float(ssem.alpha_star(K, n, t, "self-excluded", p)) for t in taus])
    a_split = np.array([float(ssem.alpha_split(K, n, p, t)) for t in taus])
    a_eff = float(ssem.alpha_eff_supcon(n, p))
    fig, axes = new_figure(1, width=4.2, height=3.2)
    ax = axes[0, 0]
    ax.fill_between(taus, a_star, 1.0, color="C2", alpha=0.15, label="SSEM, $0 < W^* < 1$")
    ax.fill_between(taus, np.maximum(a_split, 0.0), a_star, color="C3", alpha=0.25, label="class collapse")
    ax.fill_between(taus, 0.0, np.maximum(a_split, 0.0), color="C0", alpha=0.2, label="view-split (not an SSEM)")
    ax.plot(taus, a_star, "C3-", lw=1.2, label=r"$\alpha^*_{se}(\tau)$")
    ax.plot(taus, a_split, "C0-", lw=1.2, label=r"$\alpha_{split}(\tau)$")
    ax.axhline(a_eff, color="k", ls="--", lw=0.9, label=r"SupCon: $\alpha_{eff} = (p-1)/(np-1)$")
    ax.set(xscale="log", xlabel=r"temperature $\tau$", ylabel=r"$\alpha$", ylim=(0, 1), xlim=(taus[0], taus[-1]),
           title=f"self-excluded variant, K = {K}, n = {n}, p = {p} (R10)")
    ax.legend(loc="upper left", fontsize=6)
    return save(fig, out_dir, "ssem_self_excluded_regimes", formats)


@figure("ssem_W_vs_tau", PAPER,
        "F5: W* against tau at fixed alpha (K = 4, n = 5): exact, the small-tau asymptote (R8), tau_max and solver "
        "markers; W* rises from 0, peaks and returns to exact collapse at tau_max")
def w_vs_tau(out_dir: Path, formats: tuple[str, ...], quick: bool) -> list[Path]:
    K, n = 4, 5
    fixed = (0.5, 0.8)
    taus = np.linspace(0.002, 3.0, 600)
    pt = [0.05, 0.2, 0.5, 1.0, 1.5] if quick else [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.3, 1.6, 2.0]
    recs = _solver(out_dir, {"K": [K], "n": [n], "p": [2], "tau": pt, "alpha": list(fixed)}, [0])
    fig, axes = new_figure(1, width=4.2, height=3.0)
    ax = axes[0, 0]
    for i, alpha in enumerate(fixed):
        colour = f"C{i}"
        W = np.array([_W(alpha, t, K, n) for t in taus])
        asym = np.array([float(ssem.W_small_tau(alpha, t, n)) for t in taus])
        tmax = float(ssem.tau_max(alpha, K, n))
        ax.plot(taus, W, "-", color=colour, lw=1.3, label=rf"$W^*$ exact, $\alpha$ = {alpha}")
        small = taus <= 0.3  # the asymptote is a small-tau statement; beyond it overshoots
        ax.plot(taus[small], asym[small], "--", color=colour, lw=0.9, label=r"small-$\tau$ asymptote (R8)")
        ax.axvline(tmax, color=colour, ls=":", lw=0.9, label=rf"$\tau_{{max}}({alpha})$ = {tmax:.3f}")
        mine = [r for r in recs if r["alpha"] == alpha]
        ax.plot([r["tau"] for r in mine], [r["W"] for r in mine], "o", color=colour, mfc="none", ms=4,
                label="direct minimisation" if i == 0 else None)
    ax.set(xlabel=r"temperature $\tau$", ylabel=r"$W^*$ (within-class variance)", xlim=(0, 3.0), ylim=(-0.02, 0.75),
           title=f"K = {K}, n = {n}, p = 2, code variant: not monotone in $\\tau$")
    ax.legend(loc="upper right", fontsize=6)
    return save(fig, out_dir, "ssem_W_vs_tau", formats)
