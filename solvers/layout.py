"""Batch layout: which row is which (class, instance, view).

Rows are **view-major**: row = v * n_instances + i for view v of instance i, so with 2 views the
first half holds U (view 1) and the second half V (view 2), as in the DHEL/KCL and CLOP code
(dhel_kcl.md §1, clop.md §1).  Masks are always built from these explicit label arrays, never
from assumed strides (ssem.md §8.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import check_class_sizes, check_int, check_labels


@dataclass(frozen=True)
class Layout:
    """``instance_class[i]`` is the class of instance i; every instance has ``views`` rows."""

    instance_class: np.ndarray
    views: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "instance_class", check_labels(self.instance_class, name="labels"))
        object.__setattr__(self, "views", check_int(self.views, "views", 1))

    # -- constructors ------------------------------------------------------------------
    @classmethod
    def balanced(cls, classes: int, per_class: int, views: int = 1) -> Layout:
        """K classes x n instances per class x p views."""
        k = check_int(classes, "classes", 1)
        n = check_int(per_class, "per_class", 1)
        return cls(np.repeat(np.arange(k), n), views)

    @classmethod
    def from_class_sizes(cls, sizes: list[int], views: int = 1) -> Layout:
        """Instances per class given class by class (imbalanced allowed)."""
        sizes = check_class_sizes(sizes)
        return cls(np.repeat(np.arange(len(sizes)), sizes), views)

    @classmethod
    def instances(cls, m: int, views: int = 2) -> Layout:
        """Self-supervised batch: M instances, each its own class."""
        m = check_int(m, "instances", 1)
        return cls(np.arange(m), views)

    @classmethod
    def from_row_labels(cls, labels: object, views: int = 1) -> Layout:
        """Rebuild a layout from per-row class labels in view-major order."""
        lab = check_labels(labels)
        views = check_int(views, "views", 1)
        if lab.size % views:
            raise ValueError(f"the number of rows ({lab.size}) must be a multiple of views ({views})")
        per_view = lab.reshape(views, -1)
        if np.any(per_view != per_view[0]):
            raise ValueError("labels must agree across views (rows are view-major: row = view * M + instance)")
        return cls(per_view[0], views)

    # -- derived arrays ----------------------------------------------------------------
    @property
    def n_instances(self) -> int:
        return int(self.instance_class.size)

    @property
    def n_rows(self) -> int:
        return self.n_instances * self.views

    @property
    def row_class(self) -> np.ndarray:
        return np.tile(self.instance_class, self.views)

    @property
    def row_instance(self) -> np.ndarray:
        return np.tile(np.arange(self.n_instances), self.views)

    @property
    def row_view(self) -> np.ndarray:
        return np.repeat(np.arange(self.views), self.n_instances)

    @property
    def class_sizes(self) -> np.ndarray:
        """Instances per class, indexed by class label 0..max."""
        return np.bincount(self.instance_class)

    def same_class(self) -> np.ndarray:
        c = self.row_class
        return c[:, None] == c[None, :]

    def same_instance(self) -> np.ndarray:
        i = self.row_instance
        return i[:, None] == i[None, :]
