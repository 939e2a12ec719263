"""Sub-commands of the ``bot`` CLI. Each module has ``register(subparsers)``."""
