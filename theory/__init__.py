"""Symbolic layer of collapsekit: sympy derivations of closed forms and thresholds."""
