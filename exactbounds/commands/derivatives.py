"""``exactbounds derivatives MODEL``: enclosures of u, u' and u'' along a curve through the input.

``--direction v`` (with ``--origin x0``, default the centre of the input box, and ``--t-range lo
hi``, default the part of the line inside the input box) differentiates along
``x(t) = x0 + t·v``; ``--wrt i`` gives the partial derivatives ∂/∂x_i over the whole input box.
``--second-derivative-rule seed`` applies the seed's ``deriv2_batchnorm`` (zero box) to
BatchNorm, to reproduce what a tool built on it reports; ``chain`` (default) is sound.
JSON: ``value``, ``first_derivative``, ``second_derivative`` as in ``bounds`` (exact strings,
float64 ends rounded outward, and a status: ``exact``, ``enclosure`` or ``bound``).

Refinement (default; :mod:`~exactbounds.algorithms.refine`): the parameter domain is split
adaptively and the boxes are the hull of the pieces' enclosures, until every enclosure is within
5% of the range of the exactly sampled values or ``--budget S`` seconds (default 10) have passed;
``--pieces N`` caps the pieces, ``--workers N`` bounds them in N processes; ``--no-refine`` (or
``--pieces 1``) gives the single-piece propagation. JSON ``refinement``: ``pieces``, ``stopped``
(``target``, ``budget``, ``pieces``, ``resolution``), ``samples``, ``gap`` (per quantity and
output: enclosure width / sampled range, rounded up to 4 decimals; ``null`` for a zero sampled
range under a non-zero width) and ``sampled`` (the exact inner sampled ranges).
"""

import json

from ..algorithms.curves import make_curve
from ..algorithms.refine import refine
from ..algorithms.taylor import RULES, propagate
from ..budget import estimate_entries
from ..errors import InvalidValueError
from ..io.load import load_model
from ..io.results import derivatives_json
from .common import (
    add_arith,
    add_budget,
    add_command,
    budget_from_args,
    context_from_args,
    float_range,
    int_range,
)


def register(sub):
    p = add_command(
        sub,
        "derivatives",
        "bound the outputs and their first and second derivatives along a curve (Taylor mode)",
        [
            "exactbounds derivatives exactbounds/examples/pinn_tanh_bn.json --wrt 0",
            "exactbounds derivatives net.json --direction 1 -1/2 --t-range -0.1 0.1 --json "
            "> claim.json",
        ],
        details="--direction differentiates along x(t) = x0 + t*v; --wrt i gives the partial "
        "derivatives with respect to input i over the whole input box.",
    )
    p.add_argument("model", help="network file (.json, or .onnx with --spec)")
    p.add_argument("--spec", metavar="FILE.vnnlib", help="input box from a VNN-LIB file")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--direction",
        nargs="+",
        metavar="V",
        help="direction v of the curve x(t) = x0 + t·v (numbers or 'p/q')",
    )
    how.add_argument(
        "--wrt",
        type=int_range(0, None),
        metavar="I",
        help="partial derivatives with respect to input I over the input box",
    )
    p.add_argument(
        "--origin",
        nargs="+",
        metavar="X0",
        help="x0 of the curve (default: the centre of the input box)",
    )
    p.add_argument(
        "--t-range",
        nargs=2,
        metavar=("LO", "HI"),
        help="range of t (default: where the line stays in the input box)",
    )
    p.add_argument(
        "--order", type=int, choices=[1, 2], default=2, help="highest derivative bounded"
    )
    p.add_argument(
        "--second-derivative-rule",
        choices=list(RULES),
        default="chain",
        help="BatchNorm's second derivative: chain (scale·x'', sound) or seed "
        "(deriv2_batchnorm: the zero box)",
    )
    p.add_argument(
        "--no-refine",
        action="store_true",
        help="one piece: plain Taylor-mode propagation over the whole domain",
    )
    p.add_argument(
        "--budget",
        type=float_range(0, 10**6),
        default=10.0,
        metavar="S",
        help="seconds for refinement (default 10)",
    )
    p.add_argument(
        "--pieces",
        type=int_range(1, 10**6),
        metavar="N",
        help="at most N pieces (1: no refinement)",
    )
    p.add_argument(
        "--workers", type=int_range(1, 256), metavar="N", help="bound pieces in N processes"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_arith(p, default_note="default: exact")
    add_budget(p)
    p.set_defaults(func=run)


def curve_from_args(args, input_set):
    """The :class:`Curve` that ``--direction/--origin/--t-range`` or ``--wrt`` describe."""
    if args.wrt is not None and (args.origin or args.t_range):
        raise InvalidValueError(
            "--wrt", args.wrt, "takes no --origin or --t-range (it covers the whole input box)"
        )
    return make_curve(input_set, args.wrt, args.direction, args.origin, args.t_range)


def run(args):
    ctx = context_from_args(args)
    advice = ("use --mode interval or " if ctx.is_exact else "use ") + "a smaller network"
    rule = args.second_derivative_rule
    r = None
    with budget_from_args(args, advice) as budget:
        model = load_model(args.model, spec=args.spec)
        budget.reserve(estimate_entries(model.graph, "deriv"), f"derivatives of {model.source}")
        curve = curve_from_args(args, model.input_set)
        if args.no_refine or args.pieces == 1:
            jet = propagate(model.graph, curve, ctx, args.order, rule)
        else:
            r = refine(
                model.graph,
                curve,
                ctx,
                args.order,
                rule,
                budget=args.budget,
                max_pieces=args.pieces,
                workers=args.workers,
            )
            jet = r.jet
        d = derivatives_json(jet, ctx, curve, args.order, rule, model.source, r)
    if args.json:
        print(json.dumps(d, indent=1))
        return 0
    c = d["curve"]
    if "wrt" in c:
        where = f"partial derivatives d/dx_{c['wrt']} over the input box"
    else:
        where = (
            f"x(t) = x0 + t*v, x0 = [{', '.join(c['origin'])}], "
            f"v = [{', '.join(c['direction'])}], t in [{c['t_range'][0]}, {c['t_range'][1]}]"
        )
    print(f"{model.source}: {where}")
    print(f"order {args.order}, second-derivative rule {args.second_derivative_rule}, {ctx!r}")
    print(f"{'':>4} {'#':>3}  {'lo (f64, down)':>24}  {'hi (f64, up)':>24}  status")
    for key, name in (("value", "u"), ("first_derivative", "u'"), ("second_derivative", "u''")):
        if key not in d:
            continue
        b = d[key]
        for i, (lo, hi) in enumerate(zip(b["lo_f64"], b["hi_f64"])):
            print(f"{name:>4} {i:>3}  {lo:>24.17g}  {hi:>24.17g}  {b['status']}")
    for n in d.get("notes", []):
        print(f"note: {n}")
    if r is not None:
        f = d["refinement"]
        print(
            f"refinement: {f['pieces']} pieces, {f['samples']} sampled points, stopped by "
            f"{f['stopped']}; gap = enclosure width / sampled range (target 1.05):"
        )
        for key, name in (("value", "u"), ("first_derivative", "u'"), ("second_derivative", "u''")):
            if key in f["gap"]:
                print(
                    f"{name:>4}  "
                    + "  ".join("inf" if g is None else f"{g:.4f}" for g in f["gap"][key])
                )
    return 0


__all__ = ["register", "run", "curve_from_args", "derivatives_json"]
