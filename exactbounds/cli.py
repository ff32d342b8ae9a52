"""Command line: ``exactbounds bounds MODEL``.

Any :class:`~exactbounds.errors.ExactBoundsError` becomes one line on stderr and exit status 2.
"""
import argparse
import json
import sys

from . import __version__
from .algorithms.ibp import ibp
from .errors import ExactBoundsError
from .io.json_net import load_json_network
from .io.results import box_json
from .numbers import make_context

CONTEXT_ALIASES = {"rational": "exact", "interval": "interval"}


def _add_arith(p):
    p.add_argument("--mode", choices=["exact", "interval"], default=None,
                   help="arithmetic: exact rationals, or mpmath intervals (default: exact)")
    p.add_argument("--context", choices=sorted(CONTEXT_ALIASES),
                   help="older name of --mode: rational = exact, interval = interval")
    p.add_argument("--bits", type=int, default=128,
                   help="relative width 2^-bits of square-root enclosures (exact mode)")
    p.add_argument("--prec", type=int, default=113, help="mpmath precision in bits (interval)")


def _context(args):
    if args.mode and args.context and CONTEXT_ALIASES[args.context] != args.mode:
        raise ExactBoundsError(f"--mode {args.mode} contradicts --context {args.context}")
    mode = args.mode or CONTEXT_ALIASES.get(args.context) or "exact"
    return make_context(mode, bits=args.bits, prec=args.prec)


def cmd_bounds(args):
    ctx = _context(args)
    model = load_json_network(args.model)
    out = ibp(model.graph, model.input_set, ctx)
    result = {"method": "ibp", "context": ctx.name, "mode": ctx.mode, "outputs": box_json(out, ctx)}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    o = result["outputs"]
    print(f"{model.source}: IBP, {ctx!r}, outputs {o['status']}")
    print(f"{'#':>4}  {'lo (f64, down)':>24}  {'hi (f64, up)':>24}  exact lo .. hi")
    for i, (a, b, fa, fb) in enumerate(zip(o["lo"], o["hi"], o["lo_f64"], o["hi_f64"])):
        print(f"{i:>4}  {fa:>24.17g}  {fb:>24.17g}  {a} .. {b}")
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="exactbounds",
                                description="Exact reference bounds for neural networks.")
    p.add_argument("--version", action="version", version=f"exactbounds {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bounds", help="bound a network's outputs over its input set")
    b.add_argument("model", help="network file (JSON)")
    b.add_argument("--method", choices=["ibp"], default="ibp")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_arith(b)
    b.set_defaults(func=cmd_bounds)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ExactBoundsError as e:
        print(f"exactbounds: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
