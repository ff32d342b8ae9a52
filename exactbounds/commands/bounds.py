"""``exactbounds bounds MODEL [--spec FILE.vnnlib] [--method ibp|crown|crown-ibp|affine]
[--relaxation exactbounds|auto_lirpa] [--slopes FILE.json] [--mode exact|dyadic|interval|fast]
[--bits N] [--json] [--exact] [--intermediate]``: bound a network's outputs over its input set
(the model's, or the spec's box).

Default mode: ``exact`` for IBP, ``dyadic`` (64 bits) for CROWN and affine; on a large model
(affine coefficients > ``LARGE_MODEL`` entries) ``fast`` (float64 balls: an enclosure of the
exact IBP result; for CROWN and affine a sound bound with float relaxation lines), which a note
says. ``--context rational|interval`` is the older
name of ``--mode`` (accepted, not listed). The table gives the float64 ends rounded outward and
a short exact form of each end (:func:`short_exact`); ``--exact`` prints the full rationals, and
``--json`` is always complete. A progress bar over the nodes goes to stderr when stderr is a
terminal; ``--timeout``/``--max-memory`` bound the run (``exactbounds.budget``)."""

import json
from math import prod

from ..algorithms.crown import run_with_escalation
from ..algorithms.methods import METHODS, method_context, run_method
from ..algorithms.profiles import make_profile
from ..budget import Progress, estimate_entries
from ..io.load import load_model, region_models, regions_notes, spec_notes
from ..io.results import result_json
from ..numbers import f64_down, f64_up, rational_str
from ..operators.base import AffineOp
from .common import (
    add_arith,
    add_budget,
    add_command,
    add_relaxation_options,
    budget_from_args,
    mode_from_args,
    slopes_from_args,
)

LARGE_MODEL = 100_000
"""Entries of the (dense) affine coefficient matrices above which ``bounds`` defaults to the
``fast`` mode."""
SHORT = 24
"""Longest exact string printed whole in the table."""


def register(sub):
    b = add_command(
        sub,
        "bounds",
        "bound a network's outputs over its input set",
        [
            "exactbounds bounds exactbounds/examples/bn.json",
            "exactbounds bounds exactbounds/examples/mlp_bn.onnx --spec "
            "exactbounds/examples/mlp_bn.vnnlib --method crown --json > bounds.json",
        ],
        details="The table shows float64 ends rounded outward (lo down, hi up) and a short "
        "exact form of each end; --exact prints the full rationals, --json everything.",
    )
    b.add_argument("model", help="network file (.json, or .onnx with --spec)")
    b.add_argument(
        "--spec", metavar="FILE.vnnlib", help="VNN-LIB property: its input box replaces the model's"
    )
    b.add_argument(
        "--method",
        choices=list(METHODS),
        default="ibp",
        help="ibp = interval bound propagation, crown = backward linear bounds, "
        "affine = forward linear bounds",
    )
    add_relaxation_options(b)
    b.add_argument("--intermediate", action="store_true", help="also report every node's bounds")
    b.add_argument("--json", action="store_true", help="print the complete result as JSON")
    b.add_argument(
        "--exact",
        action="store_true",
        help="print the full exact rationals instead of their short form",
    )
    add_arith(
        b,
        modes=("exact", "dyadic", "interval", "fast"),
        default_note=f"default: exact for ibp, dyadic for crown and affine, fast above "
        f"{LARGE_MODEL} affine coefficients",
    )
    add_budget(b)
    b.set_defaults(func=run)


def short_exact(s, width=SHORT):
    """A short form of the exact string ``s`` (``"p/q"`` or ``"p"``): ``s`` itself when it has at
    most ``width`` characters, else the leading digits of ``p`` and ``q`` with ``…`` and their bit
    lengths, and ``2^k`` for a denominator that is a power of two."""
    if len(s) <= width:
        return s
    p, _, q = s.partition("/")

    def part(t, den=False):
        n = abs(int(t))
        if den and n > 1 and n & (n - 1) == 0:
            return f"2^{n.bit_length() - 1}"
        return t if len(t) <= 10 else f"{t[:6]}…[{n.bit_length()}b]"

    return part(p) + (f"/{part(q, True)}" if q else "")


def compute(
    model,
    method,
    ctx,
    lower_slope="adaptive",
    intersect_ibp=False,
    intermediate=False,
    progress=None,
    relaxation="exactbounds",
    slopes=None,
):
    """The ``BoundsResult`` of ``method`` on ``model`` in ``ctx`` (``algorithms.methods``) under
    the profile ``relaxation`` (with replayed ReLU lower ``slopes``, ``{node: [slope]}``); in
    the fast mode an ``AmbiguousBranch`` (a float overflow) restarts the run in
    ``ctx.refined()``."""
    opts = dict(
        lower_slope=lower_slope,
        intersect_ibp=intersect_ibp,
        intermediate=intermediate,
        progress=progress,
    )
    if method != "ibp":
        opts["relaxation"] = make_profile(
            relaxation,
            slopes,
            lower_slope=lower_slope,
            intersect_ibp=intersect_ibp,
            intermediate="ibp" if method == "crown-ibp" else "crown",
        )

    def go(c):
        return run_method(method, model.graph, model.input_set, c, **opts)

    return run_with_escalation(go, ctx) if ctx.backend_kind == "fast" else go(ctx)


def model_size(graph):
    """Entries of the dense coefficient matrices of the graph's affine operators."""
    return sum(
        node.op.out_dim * sum(prod(s) for s in node.op.in_shapes)
        for node in graph
        if isinstance(node.op, AffineOp)
    )


def _advice(args, mode=None):
    """What to use instead when a budget runs out (``mode``: the run's mode, when known)."""
    mode = mode or mode_from_args(args, None)
    if mode in (None, "exact"):
        head = "use --mode fast (float64, rigorous), --mode dyadic or --mode interval, "
    elif mode != "fast" and args.method != "ibp":
        head = "use --mode fast (float64, rigorous), "
    else:
        head = "use "
    return head + ("--method ibp, " if args.method != "ibp" else "") + "or a smaller network"


def _pick_mode(args, model):
    """``(mode, note)``: the mode asked for, or on a large model ``fast`` with a note saying
    so, or the method's default."""
    mode = mode_from_args(args, None)
    if mode is not None:
        return mode, None
    size = model_size(model.graph)
    if size > LARGE_MODEL:
        return "fast", (
            f"large model ({size} affine coefficients > {LARGE_MODEL}): fast mode "
            "(float64 balls: an enclosure of the exact IBP result, a sound bound for "
            "CROWN and affine); "
            "--mode exact or dyadic for exact arithmetic"
        )
    return METHODS[args.method].default_mode, None


def _bounds(args, model, budget):
    """``(BoundsResult, its JSON)`` in the mode that ``args`` ask for (see the module
    docstring), with a progress bar over the nodes that also checks ``budget``."""
    mode, picked = _pick_mode(args, model)
    ctx = method_context(args.method, mode, args.bits, args.prec)
    with Progress(budget, total=len(model.graph), desc="bounds") as bar:
        res = compute(
            model,
            args.method,
            ctx,
            args.lower_slope,
            args.intersect_ibp,
            args.intermediate,
            bar,
            args.relaxation,
            slopes_from_args(args),
        )
    result = result_json(res, args.intermediate)
    if args.relaxation != "exactbounds" and args.method != "ibp":
        result["relaxation"] = args.relaxation
    if picked:
        result.setdefault("notes", []).insert(0, picked)
    return res, result


def run(args):
    with budget_from_args(args, _advice(args)) as budget:
        model = load_model(args.model, spec=args.spec)
        mode = _pick_mode(args, model)[0]
        budget.advice = _advice(args, mode)
        if mode != "fast":  # exact matrices; the fast mode's functionals come in row chunks
            budget.reserve(
                estimate_entries(model.graph, args.method),
                f"{args.method} in the mode {mode} on {model.source}",
                budget.advice,
            )
        if model.spec is not None and model.spec.multi_region:
            return _run_regions(args, model, budget)
        res, result = _bounds(args, model, budget)
    if model.spec is not None:
        lo, hi = res.output.outer(res.ctx)
        result.setdefault("notes", []).extend(spec_notes(model.spec, lo, hi))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    o = result["outputs"]
    how = "" if "relaxation" not in result else f", relaxation {args.relaxation}"
    print(f"{model.source}: {args.method.upper()}, {res.ctx!r}{how}, outputs {o['status']}")
    _print_outputs(args, o, result.get("notes", []))
    if args.intermediate:
        for name, box in result["nodes"].items():
            print(
                f"{name}: "
                + ", ".join(f"[{a:.6g}, {b:.6g}]" for a, b in zip(box["lo_f64"], box["hi_f64"]))
            )
    return 0


def _run_regions(args, model, budget):
    """Bounds over a spec whose input set is a union of boxes: each region bounded on its own
    and the property judged on each (proved only when proved on every region); the outputs
    printed overall are the hull of the regions' bounds."""
    spec = model.spec
    regions, los, his = [], [], []
    for r, sub in region_models(model):
        res, result = _bounds(args, sub, budget)
        lo, hi = res.output.outer(res.ctx)
        proved = None if spec.output.trivial else spec.output.proved_by_box(lo, hi)
        regions.append(dict(result, region=r, property_proved=proved))
        los.append(lo)
        his.append(hi)
    lo = [min(v) for v in zip(*los)]
    hi = [max(v) for v in zip(*his)]
    status = (
        regions[0]["status"]
        if all(g["status"] == regions[0]["status"] for g in regions)
        else "bound"
    )
    outputs = {
        "lo": [rational_str(v) for v in lo],
        "hi": [rational_str(v) for v in hi],
        "lo_f64": [f64_down(v) for v in lo],
        "hi_f64": [f64_up(v) for v in hi],
        "status": status,
    }
    verdicts = [g["property_proved"] for g in regions]
    notes = regions_notes(spec, verdicts)
    overall = {
        k: regions[0][k]
        for k in regions[0]
        if k not in ("outputs", "notes", "nodes", "region", "property_proved")
    }
    overall.update(status=status, outputs=outputs, notes=notes)
    overall["property_proved"] = None if spec.output.trivial else all(verdicts)
    overall["regions"] = regions
    if args.json:
        print(json.dumps(overall, indent=1))
        return 0
    ctx = res.ctx
    how = "" if "relaxation" not in overall else f", relaxation {args.relaxation}"
    for g in regions:
        b = spec.input_regions[g["region"]]
        print(f"region {g['region']}: input {_box_text(b)}")
        _print_outputs(args, g["outputs"], g.get("notes", []))
        if g["property_proved"] is not None:
            print(
                f"property on region {g['region']}: "
                + ("proved" if g["property_proved"] else "not proved")
            )
    print(
        f"{model.source}: {args.method.upper()}, {ctx!r}{how}, outputs {status} "
        f"(hull of {len(regions)} regions)"
    )
    _print_outputs(args, outputs, notes)
    return 0


def _box_text(box):
    """``[lo, hi] x ...`` in float64 ends rounded outward."""
    return " x ".join(f"[{f64_down(a):.6g}, {f64_up(b):.6g}]" for a, b in zip(box.lo, box.hi))


def _print_outputs(args, o, notes):
    """The table of output bounds ``o`` (a ``box_json``) and the notes."""
    if args.exact:
        print(f"{'#':>4}  {'lo (f64, down)':>24}  {'hi (f64, up)':>24}  exact lo .. hi")
    else:
        print(f"{'#':>4}  {'lo (f64, down)':>24}  {'hi (f64, up)':>24}  {'exact lo':>28}  exact hi")
    for i, (a, b, fa, fb) in enumerate(zip(o["lo"], o["hi"], o["lo_f64"], o["hi_f64"])):
        ends = f"{a} .. {b}" if args.exact else f"{short_exact(a):>28}  {short_exact(b)}"
        print(f"{i:>4}  {fa:>24.17g}  {fb:>24.17g}  {ends}")
    for note in notes:
        print(f"note: {note}")
