"""``exactbounds replay MODEL --spec SPEC CEX``: replay a VNN-COMP counterexample exactly.

Verdict ``confirmed`` (an exact input inside the set whose exact output violates the property),
``float_artifact`` (a violation only under float32 evaluation or only through the 1e-4 input
tolerance) or ``refuted``. Exit status 0 confirmed, 1 otherwise, 2 bad input.
"""

import json
import sys


def register(sub):
    p = sub.add_parser(
        "replay",
        help="replay a VNN-COMP counterexample in exact arithmetic: "
        "confirmed, float_artifact or refuted",
    )
    p.add_argument("model", help="network file (.onnx or .json)")
    p.add_argument("--spec", required=True, metavar="FILE.vnnlib", help="the VNN-LIB property")
    p.add_argument("cex", help="counterexample file ((X_0 v) ... (Y_0 v) ...), plain or .gz")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _row(name, v):
    return f"  {name:<38} {v}"


def run(args):
    from ..audit.replay import exit_code, replay
    from ..io.load import load_model
    from ..vnncomp.files import load_counterexample

    model = load_model(args.model, spec=args.spec)
    cex = load_counterexample(args.cex)
    res = replay(model, cex.x, cex.y)
    if args.json:
        print(json.dumps(res.to_json(), indent=1))
    else:
        d = res.to_json()
        print(f"{args.cex}: {res.verdict}" + (f" (witness: {res.witness})" if res.witness else ""))
        for name, key in (
            ("X inside the input set (exact)", "x_inside"),
            ("X cast to float32 inside", "x_float32_inside"),
            ("X inside with the 1e-4 tolerance", "x_within_tolerance"),
            ("exact output violates (at X)", "violated_exact"),
            ("exact output violates (at float32 X)", "violated_exact_at_float32_x"),
            ("float32 evaluation violates", "violated_float32_evaluation"),
            ("exact margin at X (> 0: violated)", "margin_exact"),
            ("exact margin at float32 X", "margin_exact_at_float32_x"),
            ("float32 evaluation margin", "margin_float32_evaluation"),
            ("max |Y_file - exact output|", "y_file_distance"),
        ):
            print(_row(name, d[key]))
        for n in res.notes:
            print(f"  note: {n}")
    sys.stdout.flush()
    return exit_code(res)
