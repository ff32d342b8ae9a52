"""Command line: ``exactbounds COMMAND ...``; the subcommands live in ``exactbounds.commands``.

Nothing reaches the user as a traceback. Any :class:`~exactbounds.errors.ExactBoundsError` (bad
input, a budget exceeded) and any usage error becomes one line on stderr and exit status 2;
Ctrl-C exits 130; output cut short by a closed pipe (``| head``) exits quietly; a
``MemoryError`` or ``RecursionError`` is one line saying so; anything else is one line asking
for a bug report with the command line, and exit status 2.
"""

import argparse
import importlib
import os
import shlex
import sys

from . import __version__
from .blas import single_thread_blas
from .errors import ExactBoundsError

COMMANDS = ["bounds", "check", "prove", "derivatives", "replay", "verify", "suite"]


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, ``exactbounds: error: ...`` like
    every other error, then exit status 2."""

    def error(self, message):
        self.exit(2, f"exactbounds: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser():
    p = Parser(
        prog="exactbounds",
        description="Exact reference bounds for neural networks: IBP, CROWN and "
        "derivative bounds in exact arithmetic, and an audit of the bounds "
        "that fast tools claim.",
        epilog="run 'exactbounds COMMAND --help' for a command's options and examples",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"exactbounds {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"exactbounds.commands.{name}").register(sub)
    return p


MAX_MESSAGE = 1000
"""Longest error line printed (cut in the middle beyond)."""


def _say(text):
    line = " ".join(str(text).split())
    if len(line) > MAX_MESSAGE:
        line = f"{line[: MAX_MESSAGE - 200]} … {line[-150:]}"
    try:
        print(f"exactbounds: {line}", file=sys.stderr)
    except (OSError, ValueError):  # pragma: no cover - stderr itself is gone
        pass


def _quiet_stdout():
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush is
    silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover
        pass


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    single_thread_blas()  # unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS say otherwise
    try:
        args = build_parser().parse_args(argv)
        status = args.func(args)
        sys.stdout.flush()
        return status
    except ExactBoundsError as e:
        _say(f"error: {e}")
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 141
    except MemoryError:
        _say(
            "error: out of memory: use --mode fast, --mode dyadic or --mode interval, a smaller "
            "network, or a smaller --max-memory to be stopped earlier with a message"
        )
    except RecursionError:
        _say("error: the input is nested too deeply")
    except Exception as e:  # noqa: BLE001 - the last resort: never a traceback
        _say(
            f"internal error ({type(e).__name__}: {str(e)[:200]}); this is a bug, please "
            f"report it with the command: exactbounds {shlex.join(argv)[:500]}"
        )
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
