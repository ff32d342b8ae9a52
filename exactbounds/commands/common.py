"""Arguments shared by the subcommands: the one switch for the arithmetic, the budgets, the
help layout (purpose, examples, exit codes) and ranges for every numeric option."""

import argparse

from ..budget import DEFAULT_TIMEOUT, GB, Budget, default_max_memory
from ..errors import ExactBoundsError
from ..io.slopes import load_slopes
from ..numbers import make_context

CONTEXT_ALIASES = {"rational": "exact", "interval": "interval"}
MAX_OPTION_BITS = 65536
"""Largest ``--bits``, ``--max-bits`` and ``--prec``."""
EXIT_CODES = "exit status: 0 success, 2 bad input or a budget exceeded, 130 interrupted"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Description and epilog kept as written; ``(default: X)`` after every option that has a
    default worth showing."""

    def _get_help_string(self, action):
        h = action.help or ""
        if (
            "default" in h
            or action.default is None
            or action.default is False
            or action.default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return h
        return f"{h} (default: %(default)s)" if h else "(default: %(default)s)"


def add_command(sub, name, purpose, examples, exit_codes=EXIT_CODES, details=""):
    """A subcommand parser whose ``--help`` gives the one-line ``purpose``, ``details``, two or
    more ``examples`` and the exit codes."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) + f"\n\n{exit_codes}"
    return sub.add_parser(
        name,
        help=purpose,
        description=purpose + (f"\n\n{details}" if details else ""),
        epilog=epilog,
        formatter_class=HelpFormatter,
    )


def _ranged(conv, kind, lo, hi):
    """An argparse ``type``: a ``kind`` (``conv`` of the text) in ``lo..hi`` (``hi`` None: no
    upper end); NaN is refused."""

    def parse(text):
        try:
            v = conv(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not {kind}") from None
        if v != v or v < lo or (hi is not None and v > hi):
            shown = text if len(text) < 30 else text[:20] + "…"
            fmt = (lambda x: f"{x:g}") if conv is float else str
            raise argparse.ArgumentTypeError(
                f"{shown} is outside {fmt(lo)}..{'' if hi is None else fmt(hi)}"
            )
        return v

    parse.__name__ = kind
    return parse


def int_range(lo, hi):
    """An argparse ``type``: an int in ``lo..hi`` (``hi`` None: no upper end)."""
    return _ranged(int, "an integer", lo, hi)


def float_range(lo, hi):
    """An argparse ``type``: a finite float in ``lo..hi``."""
    return _ranged(float, "a number", lo, hi)


def add_arith(p, modes=("exact", "interval"), default_note="exact"):
    """``--mode`` (and, hidden, its older alias ``--context``), ``--bits``, ``--prec``."""
    p.add_argument(
        "--mode",
        choices=list(modes),
        default=None,
        help=f"arithmetic ({default_note}): exact = rationals"
        + (
            "; dyadic = rationals with every intermediate bound rounded outward to --bits bits"
            if "dyadic" in modes
            else ""
        )
        + "; interval = mpmath intervals at --prec bits"
        + (
            "; fast = float64 balls: IBP encloses the exact result, CROWN and affine give a "
            "sound bound with float lines (escalates to interval when they cannot)"
            if "fast" in modes
            else ""
        ),
    )
    p.add_argument("--context", choices=sorted(CONTEXT_ALIASES), help=argparse.SUPPRESS)
    p.add_argument(
        "--bits",
        type=int_range(2, MAX_OPTION_BITS),
        default=None,
        metavar="N",
        help="exact: relative width 2^-N of square-root enclosures (default 128)"
        + (
            "; dyadic: mantissa bits of the rounded intermediate bounds (default 64)"
            if "dyadic" in modes
            else ""
        ),
    )
    p.add_argument(
        "--prec",
        type=int_range(2, MAX_OPTION_BITS),
        default=113,
        metavar="P",
        help="interval: mpmath precision in bits",
    )


def add_budget(p):
    """``--timeout S`` and ``--max-memory GB``."""
    p.add_argument(
        "--timeout",
        type=float_range(0, 10**7),
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help="stop after S seconds with a message saying what to use instead; 0 = no limit",
    )
    mem = round(default_max_memory() / GB, 1)
    p.add_argument(
        "--max-memory",
        type=float_range(0.05, 10**6),
        metavar="GB",
        default=mem,
        help="memory budget in GB: sizes are checked before large matrices are "
        f"allocated, and the run stops beyond it (default: 3/4 of the RAM, "
        f"here {mem:g})",
    )


def budget_from_args(args, advice=None):
    """The :class:`~exactbounds.budget.Budget` of ``--timeout`` / ``--max-memory``."""
    kw = {} if advice is None else {"advice": advice}
    return Budget(seconds=args.timeout or None, max_memory=int(args.max_memory * GB), **kw)


def add_relaxation_options(p):
    """``--relaxation`` (the profile: whose rules CROWN/affine follow), ``--slopes`` (replayed
    ReLU lower slopes), ``--lower-slope`` (ReLU lower-slope rule of CROWN/affine) and
    ``--intersect-ibp``."""
    p.add_argument(
        "--relaxation",
        choices=["exactbounds", "auto_lirpa"],
        default="exactbounds",
        help="rule set of CROWN, CROWN-IBP and affine: exactbounds' own, or "
        "auto_LiRPA 0.7.1's defaults (sparse intermediate bounds, its ReLU and "
        "Sigmoid/Tanh lines)",
    )
    p.add_argument(
        "--slopes",
        metavar="FILE.json",
        help="replay a tool's ReLU lower slopes (e.g. alpha-CROWN's): {node name: "
        "[slope per neuron]}; each is checked exactly on the exact bounds",
    )
    p.add_argument(
        "--lower-slope",
        choices=["adaptive", "zero", "one"],
        default="adaptive",
        help="CROWN/affine lower slope of unstable ReLUs",
    )
    p.add_argument(
        "--intersect-ibp", action="store_true", help="intersect CROWN/affine bounds with IBP bounds"
    )


def mode_from_args(args, default="exact"):
    if args.mode and args.context and CONTEXT_ALIASES[args.context] != args.mode:
        raise ExactBoundsError(f"--mode {args.mode} contradicts --context {args.context}")
    return args.mode or CONTEXT_ALIASES.get(args.context) or default


def context_from_args(args, default="exact"):
    """The number context that ``--mode``/``--context``, ``--bits``, ``--prec`` select."""
    return make_context(mode_from_args(args, default), bits=args.bits or 128, prec=args.prec)


def slopes_from_args(args):
    """The ``--slopes`` file's ``{node: [slope]}``, or ``None``."""
    if not getattr(args, "slopes", None):
        return None
    return load_slopes(args.slopes)
