"""Exact point configurations used as predicted minimisers and prototypes (anchors.md §5.3).

All constructions return float64 unit rows.
"""

from __future__ import annotations

import numpy as np

from .validation import check_int


def regular_simplex(n: int, dim: int | None = None) -> np.ndarray:
    """n unit vectors with pairwise inner product -1/(n-1), in R^dim (dim >= n-1, default n-1).

    Recipe 1 of anchors.md §5.3: e_i - (1/n) 1 in R^n, expressed in an orthonormal basis of 1^perp
    (SVD of the centred matrix), normalised, zero-padded.
    """
    n = check_int(n, "n", 2)
    dim = n - 1 if dim is None else check_int(dim, "dim", 1)
    if dim < n - 1:
        raise ValueError(f"dim must be >= n - 1 = {n - 1} for a regular simplex of {n} points; got {dim}")
    centred = np.eye(n) - 1.0 / n
    _, _, vt = np.linalg.svd(centred)
    pts = centred @ vt[: n - 1].T
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    return np.hstack([pts, np.zeros((n, dim - (n - 1)))])


def orthonormal_prototypes(classes: int, dim: int, seed: int = 0) -> np.ndarray:
    """C orthonormal rows in R^d from the thin SVD of a C x d Gaussian matrix (clop.md §3.1, [CODE]).

    Raises ValueError when C > d (the thin SVD would return only d rows).
    """
    c = check_int(classes, "classes", 1)
    d = check_int(dim, "dim", 1)
    if c > d:
        raise ValueError(f"dim must be >= classes for orthonormal prototypes (C = {c}); got dim = {d}")
    g = np.random.default_rng(seed).standard_normal((c, d))
    _, _, vt = np.linalg.svd(g, full_matrices=False)
    return vt


def etf_prototypes(classes: int, dim: int) -> np.ndarray:
    """Simplex-ETF prototypes: K unit rows with Gram (K/(K-1))(I - 11^T/K) (prototypes.md §1.3)."""
    return regular_simplex(check_int(classes, "classes", 2), dim)


def orthogonal_frame(classes: int, dim: int) -> np.ndarray:
    """The non-negative orthogonal frame w_c = e_c (prototypes.md §1.3)."""
    c = check_int(classes, "classes", 1)
    d = check_int(dim, "dim", 1)
    if c > d:
        raise ValueError(f"dim must be >= classes for an orthogonal frame (K = {c}); got dim = {d}")
    return np.eye(c, d)


def cross_polytope(dim: int) -> np.ndarray:
    """The 2d points +-e_i (anchors.md §5.3 recipe 2)."""
    d = check_int(dim, "dim", 1)
    return np.vstack([np.eye(d), -np.eye(d)])


def random_sphere_points(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """n iid uniform points on S^{dim-1}: normalised standard Gaussians (seeded numpy Generator)."""
    n = check_int(n, "n", 1)
    d = check_int(dim, "dim", 1)
    g = np.random.default_rng(seed).standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def aligned_views(points: np.ndarray, views: int = 2) -> np.ndarray:
    """Stack ``views`` identical copies of ``points`` in the view-major layout."""
    return np.vstack([points] * check_int(views, "views", 1))
