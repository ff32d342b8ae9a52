"""Arguments shared by the subcommands: the one switch for the arithmetic."""
from ..errors import ExactBoundsError
from ..numbers import make_context

CONTEXT_ALIASES = {"rational": "exact", "interval": "interval"}


def add_arith(p, modes=("exact", "interval")):
    """``--mode`` (and its older alias ``--context``), ``--bits``, ``--prec``."""
    p.add_argument("--mode", choices=list(modes), default=None,
                   help="arithmetic: exact = rationals; dyadic = rationals with every "
                        "intermediate bound rounded outward to --bits bits; interval = mpmath "
                        "intervals at --prec bits; fast = float64 balls that enclose the "
                        "exact result (escalates to interval when they cannot)")
    p.add_argument("--context", choices=sorted(CONTEXT_ALIASES),
                   help="older name of --mode: rational = exact, interval = interval")
    p.add_argument("--bits", type=int, default=128,
                   help="exact: relative width 2^-bits of square-root enclosures; dyadic: "
                        "mantissa bits of the rounded intermediate bounds")
    p.add_argument("--prec", type=int, default=113, help="mpmath precision in bits (interval)")


def add_relaxation_options(p):
    """``--lower-slope`` (ReLU lower-slope rule of CROWN/affine) and ``--intersect-ibp``."""
    p.add_argument("--lower-slope", choices=["adaptive", "zero", "one"], default="adaptive",
                   help="CROWN/affine lower slope of unstable ReLUs (default adaptive)")
    p.add_argument("--intersect-ibp", action="store_true",
                   help="intersect CROWN/affine bounds with IBP bounds")


def mode_from_args(args, default="exact"):
    if args.mode and args.context and CONTEXT_ALIASES[args.context] != args.mode:
        raise ExactBoundsError(f"--mode {args.mode} contradicts --context {args.context}")
    return args.mode or CONTEXT_ALIASES.get(args.context) or default


def context_from_args(args, default="exact"):
    """The number context that ``--mode``/``--context``, ``--bits``, ``--prec`` select."""
    return make_context(mode_from_args(args, default), bits=args.bits, prec=args.prec)
