"""One module per CLI subcommand; each exposes ``register(sub, groups)``."""
