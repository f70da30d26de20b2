"""Numeric layer of collapsekit: losses with analytic gradients, metrics, sphere solvers.

Every loss is written once as a function of the similarity matrix S = Z Z^T of the
L2-normalised rows (DESIGN.md, "The central abstraction"); gradients with respect to the
raw points follow from one shared chain rule (:mod:`solvers.base`).
"""
