"""Command line: ``exactbounds COMMAND ...``; the subcommands live in ``exactbounds.commands``.

Any :class:`~exactbounds.errors.ExactBoundsError` becomes one line on stderr and exit status 2.
"""
import argparse
import importlib
import sys

from . import __version__
from .errors import ExactBoundsError

COMMANDS = ["bounds", "check", "prove", "derivatives", "replay", "verify", "suite"]


def build_parser():
    p = argparse.ArgumentParser(prog="exactbounds",
                                description="Exact reference bounds for neural networks.")
    p.add_argument("--version", action="version", version=f"exactbounds {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"exactbounds.commands.{name}").register(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ExactBoundsError as e:
        print(f"exactbounds: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
