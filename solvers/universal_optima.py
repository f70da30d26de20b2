"""Universally optimal configurations (Cohn-Kumar) and their inner-product profiles.

Spec: ``shared/spec/anchors.md`` §5 (definitions §5.1, table §5.2, construction recipes §5.3,
energies by formula §5.4) and ``shared/spec/dhel_kcl.md`` §3.2 / T3b (universal optima minimise
every completely monotone energy, hence the Gaussian energy, KCL's energy and Wang-Isola
uniformity).  Provenance of the table: [LIT+NUM: Cohn-Kumar 2007, Table 1].

Constructions (float64 unit rows; exact up to the final normalisation):

- ``regular_polygon(n)``      n points on S^1 (d = 2);
- ``icosahedron()``           12 points in R^3, cyclic permutations of (0, +-1, +-phi) (recipe 3);
- ``six_hundred_cell()``      120 points in R^4, the binary icosahedral group (recipe 4);
- ``hemicube()``              16 points in R^5, (+-1)^5/sqrt5 with an even number of minus signs (recipe 5);
- ``e8_roots()``              240 points in R^8 (recipe 6);
- ``e7_star()``               56 points in R^7 (recipe 7);
- ``schlafli()``              27 points in R^6 (recipe 8);
- the simplex and the cross-polytope come from :mod:`solvers.configurations`.

Tools: :func:`inner_product_profile` (the multiset of inner products seen from each point, and
whether it is the same from every point), :func:`design_strength` (criterion (b) of §5.1: power
sums sum_{x,y} <x,y>^k = N^2 mu_k(d), with the failure at t + 1 reported),
:func:`profile_energy` (the §5.4 formula E_f = (N/2) sum_j m_j f(2 - 2 t_j) over unordered pairs).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .configurations import cross_polytope, regular_simplex
from .validation import check_int, check_points

__all__ = [
    "PHI",
    "UniversalOptimum",
    "UNIVERSAL_OPTIMA",
    "regular_polygon",
    "icosahedron",
    "six_hundred_cell",
    "hemicube",
    "e8_roots",
    "e7_star",
    "schlafli",
    "build",
    "inner_product_profile",
    "is_distance_transitive",
    "design_strength",
    "power_sum_moment",
    "profile_energy",
    "profile_mean_kernel",
]

PHI = (1.0 + math.sqrt(5.0)) / 2.0


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def regular_polygon(n: int) -> np.ndarray:
    """n points (cos 2 pi k/n, sin 2 pi k/n) on S^1 (dhel_kcl.md §3.2)."""
    n = check_int(n, "n", 2)
    ang = 2.0 * math.pi * np.arange(n) / n
    return np.column_stack([np.cos(ang), np.sin(ang)])


def icosahedron() -> np.ndarray:
    """Cyclic permutations of (0, +-1, +-phi) / sqrt(1 + phi^2) (anchors.md §5.3 recipe 3)."""
    pts = []
    for a in (-1.0, 1.0):
        for b in (-PHI, PHI):
            base = (0.0, a, b)
            for shift in range(3):
                pts.append(base[shift:] + base[:shift])
    return _unit(np.array(pts))


def _even_permutations(n: int) -> list[tuple[int, ...]]:
    out = []
    for perm in itertools.permutations(range(n)):
        inversions = sum(perm[i] > perm[j] for i in range(n) for j in range(i + 1, n))
        if inversions % 2 == 0:
            out.append(perm)
    return out


def six_hundred_cell() -> np.ndarray:
    """The 120 unit quaternions of the binary icosahedral group (anchors.md §5.3 recipe 4):
    8 points +-e_i, 16 points (+-1/2)^4, and 96 = 12 even permutations x 8 sign choices of
    (phi/2, 1/2, 1/(2 phi), 0)."""
    pts: list[np.ndarray] = []
    eye = np.eye(4)
    pts += [eye[i] * s for i in range(4) for s in (1.0, -1.0)]
    pts += [np.array(signs) / 2.0 for signs in itertools.product((-1.0, 1.0), repeat=4)]
    base = np.array([PHI / 2.0, 0.5, 1.0 / (2.0 * PHI), 0.0])
    for perm in _even_permutations(4):
        for signs in itertools.product((-1.0, 1.0), repeat=3):
            v = base * np.array(list(signs) + [1.0])
            pts.append(v[list(perm)])
    return _unit(np.array(pts))


def hemicube() -> np.ndarray:
    """(+-1, ..., +-1)/sqrt5 in R^5 with an even number of minus signs (recipe 5), 16 points."""
    rows = [s for s in itertools.product((-1.0, 1.0), repeat=5) if sum(x < 0 for x in s) % 2 == 0]
    return _unit(np.array(rows))


def _e8_raw() -> np.ndarray:
    """The 240 E8 roots with norm sqrt2 (not normalised)."""
    rows = []
    for i, j in itertools.combinations(range(8), 2):
        for si, sj in itertools.product((-1.0, 1.0), repeat=2):
            v = np.zeros(8)
            v[i], v[j] = si, sj
            rows.append(v)
    for signs in itertools.product((-0.5, 0.5), repeat=8):
        if sum(s < 0 for s in signs) % 2 == 0:
            rows.append(np.array(signs))
    return np.array(rows)


def e8_roots() -> np.ndarray:
    """The 240 E8 roots divided by sqrt2 (anchors.md §5.3 recipe 6)."""
    return _unit(_e8_raw())


def _project_complement(rows: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Coordinates of ``rows`` in an orthonormal basis of span(fixed)^perp (SVD), normalised."""
    q, _ = np.linalg.qr(fixed.T, mode="complete")
    basis = q[:, fixed.shape[0]:]          # orthonormal complement, columns
    return _unit(rows @ basis)


def e7_star() -> np.ndarray:
    """E7*: the 56 E8 roots r with <r, alpha> = 1, alpha = (1, 1, 0, ..., 0), projected to alpha^perp
    and normalised (recipe 7); inner products 1/3, -1/3, -1."""
    raw = _e8_raw()
    alpha = np.array([1.0, 1.0, 0, 0, 0, 0, 0, 0])
    sel = raw[np.isclose(raw @ alpha, 1.0)]
    return _project_complement(sel - alpha / 2.0, alpha[None, :])


def schlafli() -> np.ndarray:
    """Schlafli (E6) 27 points: E8 roots r with <r, alpha> = 1 and <r, beta> = 0, alpha = (1,1,0,..),
    beta = (0,-1,1,0,..), projected onto span(alpha, beta)^perp and normalised (recipe 8)."""
    raw = _e8_raw()
    alpha = np.array([1.0, 1.0, 0, 0, 0, 0, 0, 0])
    beta = np.array([0.0, -1.0, 1.0, 0, 0, 0, 0, 0])
    sel = raw[np.isclose(raw @ alpha, 1.0) & np.isclose(raw @ beta, 0.0)]
    return _project_complement(sel, np.vstack([alpha, beta]))


@dataclass(frozen=True)
class UniversalOptimum:
    """One row of anchors.md §5.2: dimension, size, builder, the inner products seen from one point
    (value, multiplicity; sorted by value descending), design strength, sharpness."""

    name: str
    dim: int
    n: int
    builder: Callable[[], np.ndarray]
    profile: tuple[tuple[float, int], ...]
    strength: int
    sharp: bool


_S5 = 1.0 / math.sqrt(5.0)

#: the §5.2 table (the simplex, cross-polytope and polygons are families; see :func:`build`)
UNIVERSAL_OPTIMA: dict[str, UniversalOptimum] = {
    "octahedron": UniversalOptimum("octahedron", 3, 6, lambda: cross_polytope(3),
                                   ((0.0, 4), (-1.0, 1)), 3, True),
    "icosahedron": UniversalOptimum("icosahedron", 3, 12, icosahedron,
                                    ((_S5, 5), (-_S5, 5), (-1.0, 1)), 5, True),
    "600-cell": UniversalOptimum(
        "600-cell", 4, 120, six_hundred_cell,
        (((1 + math.sqrt(5)) / 4, 12), (0.5, 20), ((math.sqrt(5) - 1) / 4, 12), (0.0, 30),
         (-(math.sqrt(5) - 1) / 4, 12), (-0.5, 20), (-(1 + math.sqrt(5)) / 4, 12), (-1.0, 1)), 11, False),
    "hemicube": UniversalOptimum("hemicube", 5, 16, hemicube, ((0.2, 10), (-0.6, 5)), 3, True),
    "schlafli": UniversalOptimum("schlafli", 6, 27, schlafli, ((0.25, 16), (-0.5, 10)), 4, True),
    "e7star": UniversalOptimum("e7star", 7, 56, e7_star, ((1 / 3, 27), (-1 / 3, 27), (-1.0, 1)), 5, True),
    "e8": UniversalOptimum("e8", 8, 240, e8_roots, ((0.5, 56), (0.0, 126), (-0.5, 56), (-1.0, 1)), 7, True),
}


def build(name: str, dim: int | None = None, n: int | None = None) -> np.ndarray:
    """A configuration by name: a key of :data:`UNIVERSAL_OPTIMA`, or the families "simplex"
    (n <= dim + 1 points in R^dim), "cross-polytope" (2 dim points), "polygon" (n points, d = 2)."""
    if name in UNIVERSAL_OPTIMA:
        return UNIVERSAL_OPTIMA[name].builder()
    if name == "simplex":
        n = check_int(n, "n", 2)
        return regular_simplex(n, n - 1 if dim is None else dim)
    if name == "cross-polytope":
        return cross_polytope(check_int(dim, "dim", 1))
    if name == "polygon":
        return regular_polygon(check_int(n, "n", 2))
    names = ", ".join([*UNIVERSAL_OPTIMA, "simplex", "cross-polytope", "polygon"])
    raise ValueError(f"name must be one of {names}; got {name!r}")


def inner_product_profile(points: object, decimals: int = 9) -> tuple[list[tuple[float, int]], bool]:
    """The inner products seen from point 0 (excluding itself), rounded to ``decimals``, with their
    multiplicities, sorted by value descending; and whether every point sees the same multiset."""
    x = check_points(points, "points")
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    g = np.round(z @ z.T, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    n = g.shape[0]
    rows = [tuple(sorted(np.delete(g[i], i))) for i in range(n)]
    same = all(r == rows[0] for r in rows)
    vals, counts = np.unique(np.delete(g[0], 0), return_counts=True)
    order = np.argsort(-vals)
    return [(float(vals[i]), int(counts[i])) for i in order], same


def is_distance_transitive(points: object, decimals: int = 9) -> bool:
    """True when every point sees the same multiset of inner products (dhel_kcl.md §3.2)."""
    return inner_product_profile(points, decimals)[1]


def power_sum_moment(k: int, d: int) -> float:
    """mu_k(d) = E u^k for the uniform inner product: 0 for odd k, (1/2)_{k/2}/(d/2)_{k/2} for even k."""
    k = check_int(k, "k", 0)
    d = check_int(d, "d", 1)
    if k % 2:
        return 0.0
    j = k // 2
    return math.exp(math.lgamma(0.5 + j) - math.lgamma(0.5) - math.lgamma(d / 2.0 + j) + math.lgamma(d / 2.0))


def design_strength(points: object, max_t: int = 12, tol: float = 1e-9) -> int:
    """Largest t <= max_t such that sum_{x,y} <x,y>^k = N^2 mu_k(d) for every k = 1..t, by criterion
    (b) of anchors.md §5.1 (relative tolerance ``tol`` on N^2, i.e. |mean - mu_k| <= tol)."""
    x = check_points(points, "points")
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    g = z @ z.T
    d = z.shape[1]
    gk = np.ones_like(g)
    for k in range(1, check_int(max_t, "max_t", 1) + 1):
        gk = gk * g
        if abs(float(gk.mean()) - power_sum_moment(k, d)) > tol:
            return k - 1
    return max_t


def profile_energy(profile: object, n: int, f: Callable[[np.ndarray], np.ndarray]) -> float:
    """E_f(C) = (N/2) sum_j m_j f(2 - 2 t_j) over unordered pairs, for a configuration whose every
    point sees ``profile`` = [(t_j, m_j)] (anchors.md §5.4, dhel_kcl.md §3.2)."""
    n = check_int(n, "n", 2)
    t = np.array([p[0] for p in profile], dtype=np.float64)  # type: ignore[union-attr]
    m = np.array([p[1] for p in profile], dtype=np.float64)  # type: ignore[union-attr]
    if int(m.sum()) != n - 1:
        raise ValueError(f"profile multiplicities must sum to n - 1 = {n - 1}; got {int(m.sum())}")
    return 0.5 * n * float(np.sum(m * f(2.0 - 2.0 * t)))


def profile_mean_kernel(profile: object, f: Callable[[np.ndarray], np.ndarray]) -> float:
    """mean_{i<j} f(r_ij^2) = (1/(N-1)) sum_j m_j f(2 - 2 t_j) (dhel_kcl.md §3.2 "kernel energy")."""
    t = np.array([p[0] for p in profile], dtype=np.float64)  # type: ignore[union-attr]
    m = np.array([p[1] for p in profile], dtype=np.float64)  # type: ignore[union-attr]
    return float(np.sum(m * f(2.0 - 2.0 * t)) / m.sum())
