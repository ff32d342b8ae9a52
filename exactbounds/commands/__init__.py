"""CLI subcommands, one module each. A module defines ``register(subparsers)``, which adds its
parser and sets ``func`` to a function ``run(args) -> exit status``. ``exactbounds.cli`` lists
the modules in ``COMMANDS``."""
