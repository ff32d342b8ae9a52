"""``exactbounds verify MODEL --spec SPEC [--budget S]``: decide a VNN-LIB property by branch
and bound on the input set (``algorithms.bab``): ``proved``, ``violated`` (with an exact
counterexample that ``replay`` confirms) or ``unknown`` at the budget.
Exit status 0 proved, 1 violated or unknown, 2 bad input.
"""

import json
import sys
from pathlib import Path

from ..errors import ExactBoundsError, InvalidValueError


def register(sub):
    p = sub.add_parser(
        "verify",
        help="decide a VNN-LIB property exactly by branch and bound: proved, violated or unknown",
    )
    p.add_argument("model", help="network file (.onnx or .json)")
    p.add_argument("--spec", required=True, metavar="FILE.vnnlib", help="the VNN-LIB property")
    p.add_argument(
        "--budget", type=float, default=60.0, help="seconds before answering unknown (default 60)"
    )
    p.add_argument(
        "--max-regions", type=int, default=None, help="stop after bounding this many regions"
    )
    p.add_argument(
        "--heuristic",
        choices=["auto", "influence", "widest", "closest"],
        default="auto",
        help="which coordinate to bisect: influence = largest "
        "sum |lA|*width over the open comparisons (auto), widest = relative width, "
        "closest = influence on the comparison nearest to refutation",
    )
    p.add_argument(
        "--split",
        choices=["auto", "input", "relu"],
        default="auto",
        help="what to branch on: input = bisect the input box, relu = fix ReLU signs "
        "(fast tier), auto = relu when more than 16 inputs vary",
    )
    p.add_argument(
        "--counterexample",
        metavar="FILE",
        help="write a found counterexample in VNN-COMP format (for replay)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args):
    from ..algorithms.bab import PROVED, verify
    from ..audit.replay import float_screen
    from ..io.load import load_model
    from ..vnncomp.task import counterexample_text, verify_json

    if not args.budget > 0:
        raise InvalidValueError("--budget", args.budget, "must be > 0 seconds")
    if args.max_regions is not None and args.max_regions < 1:
        raise InvalidValueError("--max-regions", args.max_regions, "must be >= 1")
    model = load_model(args.model, spec=args.spec)
    spec = model.spec
    res = verify(
        model.graph,
        model.input_set,
        spec.output,
        budget=args.budget,
        constraints=tuple(spec.input_constraints),
        max_regions=args.max_regions,
        screen=float_screen(model.graph),
        heuristic=args.heuristic,
        split=args.split,
    )
    if args.counterexample and res.x is not None:
        try:
            Path(args.counterexample).write_text(counterexample_text(res.x, res.y))
        except OSError as e:
            raise ExactBoundsError(
                f"--counterexample {args.counterexample}: cannot write: {e.strerror}"
            ) from None
    if args.json:
        d = verify_json(res)
        d["seconds"] = round(res.seconds, 3)
        d["cpu_seconds"] = round(res.cpu_seconds, 3)
        print(json.dumps(d, indent=1))
    else:
        print(
            f"{args.model} {args.spec}: {res.status} ({res.regions} regions bounded, "
            f"{res.closed} closed, {res.open} open, depth {res.depth}, "
            f"{res.evaluations} exact evaluations, {res.seconds:.1f} s wall, "
            f"{res.cpu_seconds:.1f} s cpu, {res.bound})"
        )
        if res.x is not None:
            print("  counterexample x = [" + ", ".join(f"{float(v):.17g}" for v in res.x) + "]")
        for n in res.notes:
            print(f"  note: {n}")
    sys.stdout.flush()
    return 0 if res.status == PROVED else 1
