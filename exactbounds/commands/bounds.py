"""``exactbounds bounds MODEL [--spec FILE.vnnlib] [--method ibp|crown|affine]
[--mode exact|dyadic|interval|fast] [--bits N] [--json] [--intermediate]``: bound a network's
outputs over its input set (the model's, or the spec's box).

Default mode: ``exact`` for IBP, ``dyadic`` (64 bits) for CROWN and affine; on a large model
(affine coefficients > ``LARGE_MODEL`` entries) ``fast`` (float64 balls enclosing the exact
result of the same algorithm), which a note says. ``--context rational|interval`` is the older
name of ``--mode``. A progress bar over the nodes goes to
stderr when stderr is a terminal."""
import json
import sys
from math import prod

from ..algorithms.crown import run_with_escalation
from ..algorithms.methods import METHODS, method_context, run_method
from ..io.load import load_model, spec_notes
from ..io.results import result_json
from ..operators.base import AffineOp
from .common import add_arith, add_relaxation_options, mode_from_args

LARGE_MODEL = 100_000
"""Entries of the (dense) affine coefficient matrices above which ``bounds`` defaults to the
``fast`` mode."""


def register(sub):
    b = sub.add_parser("bounds", help="bound a network's outputs over its input set")
    b.add_argument("model", help="network file (JSON, or ONNX with --spec)")
    b.add_argument("--spec", help="VNN-LIB property: its input box replaces the model's")
    b.add_argument("--method", choices=list(METHODS), default="ibp")
    add_relaxation_options(b)
    b.add_argument("--intermediate", action="store_true", help="also report every node's bounds")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    add_arith(b, modes=("exact", "dyadic", "interval", "fast"))
    b.set_defaults(func=run, bits=None)


def _progress(total):
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, file=sys.stderr, desc="bounds", unit="node", leave=False)


def compute(model, method, ctx, lower_slope="adaptive", intersect_ibp=False,
            intermediate=False, progress=None):
    """The ``BoundsResult`` of ``method`` on ``model`` in ``ctx`` (``algorithms.methods``);
    in the fast mode an ``AmbiguousBranch`` (a float overflow) restarts the run in
    ``ctx.refined()``."""
    def go(c):
        return run_method(method, model.graph, model.input_set, c, lower_slope=lower_slope,
                          intersect_ibp=intersect_ibp, intermediate=intermediate,
                          progress=progress)
    return run_with_escalation(go, ctx) if ctx.backend_kind == "fast" else go(ctx)


def model_size(graph):
    """Entries of the dense coefficient matrices of the graph's affine operators."""
    return sum(node.op.out_dim * sum(prod(s) for s in node.op.in_shapes)
               for node in graph if isinstance(node.op, AffineOp))


def run(args):
    model = load_model(args.model, spec=args.spec)
    mode = mode_from_args(args, None)
    picked = None
    if mode is None:
        size = model_size(model.graph)
        if size > LARGE_MODEL:
            mode = "fast"
            picked = (f"large model ({size} affine coefficients > {LARGE_MODEL}): fast mode "
                      "(float64 balls enclosing the exact result of the same algorithm); "
                      "--mode exact or dyadic for exact arithmetic")
        else:
            mode = METHODS[args.method].default_mode
    ctx = method_context(args.method, mode, args.bits, args.prec)
    bar = _progress(len(model.graph))
    try:
        res = compute(model, args.method, ctx, args.lower_slope, args.intersect_ibp,
                      args.intermediate, bar)
    finally:
        if bar is not None:
            bar.close()
    result = result_json(res, args.intermediate)
    if picked:
        result.setdefault("notes", []).insert(0, picked)
    if model.spec is not None:
        lo, hi = res.output.outer(res.ctx)
        result.setdefault("notes", []).extend(spec_notes(model.spec, lo, hi))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    o = result["outputs"]
    print(f"{model.source}: {args.method.upper()}, {res.ctx!r}, outputs {o['status']}")
    print(f"{'#':>4}  {'lo (f64, down)':>24}  {'hi (f64, up)':>24}  exact lo .. hi")
    for i, (a, b, fa, fb) in enumerate(zip(o["lo"], o["hi"], o["lo_f64"], o["hi_f64"])):
        print(f"{i:>4}  {fa:>24.17g}  {fb:>24.17g}  {a} .. {b}")
    for note in result.get("notes", []):
        print(f"note: {note}")
    if args.intermediate:
        for name, box in result["nodes"].items():
            print(f"{name}: " + ", ".join(f"[{a:.6g}, {b:.6g}]"
                                          for a, b in zip(box["lo_f64"], box["hi_f64"])))
    return 0
