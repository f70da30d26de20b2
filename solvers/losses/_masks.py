"""Small helpers that turn index sets into the template's matrices."""

from __future__ import annotations

import numpy as np

NEG_INF = -np.inf


def logw_from_mask(mask: np.ndarray) -> np.ndarray:
    """0 where ``mask`` is True, -inf elsewhere (log-weights of a plain column subset)."""
    out = np.full(mask.shape, NEG_INF)
    out[mask] = 0.0
    return out


def logw_from_counts(counts: np.ndarray) -> np.ndarray:
    """log(count) where count > 0, -inf elsewhere (a column standing for several copies)."""
    out = np.full(counts.shape, NEG_INF)
    pos = counts > 0
    out[pos] = np.log(counts[pos])
    return out


def partner(m: int) -> np.ndarray:
    """Index of the other view of each row in the two-view layout: p(a) = a + M mod 2M."""
    return (np.arange(2 * m) + m) % (2 * m)
