"""Figure regeneration at small scale, one module per paper; see :mod:`figures.registry`."""
