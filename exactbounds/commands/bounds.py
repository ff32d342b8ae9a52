"""``exactbounds bounds MODEL``: bound a network's outputs over its input set."""
import json

from ..algorithms.ibp import ibp
from ..io.json_net import load_json_network
from ..io.results import box_json
from .common import add_arith, context_from_args


def register(sub):
    b = sub.add_parser("bounds", help="bound a network's outputs over its input set")
    b.add_argument("model", help="network file (JSON)")
    b.add_argument("--method", choices=["ibp"], default="ibp")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    add_arith(b)
    b.set_defaults(func=run)


def run(args):
    ctx = context_from_args(args)
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
