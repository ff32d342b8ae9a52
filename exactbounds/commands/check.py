"""``exactbounds check MODEL --claimed CLAIM.json``: audit a fast tool's claimed bounds.

Per output and side: ``sound`` (the claim contains the method's exact bound), ``inside_exact``
(tighter than the exact bound, no witness found) or ``unsound`` (an exact witness input whose
exact output lies strictly outside the claim). ``--simulate float32|float64`` audits what a
naive round-to-nearest implementation of the method computes instead of a claim file.
Exit status: 0 all sound, 1 anything unsound or inside_exact, 2 bad input.
"""
import json
import sys
from pathlib import Path

from ..audit.bounds import check_model
from ..audit.claims import load_claim, load_intermediate_claims
from ..audit.derivatives import audit_derivative_claims
from ..audit.floatsim import simulate
from ..audit.methods import AUDITED
from ..audit.report import html_report, table
from ..audit.verdicts import AuditResult, exit_status
from ..errors import ExactBoundsError, InvalidValueError
from ..io.json_net import read_json
from ..io.load import load_model
from .common import add_arith, add_relaxation_options, mode_from_args


def register(sub):
    p = sub.add_parser("check", help="audit claimed bounds: sound, inside_exact or unsound "
                                     "(with an exact witness)")
    p.add_argument("model", help="network file (.json, or .onnx with --spec)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--claimed", metavar="CLAIM.json",
                     help="claimed bounds: {'lo': [...], 'hi': [...]}, optionally keyed by "
                          "method and then by dtype")
    src.add_argument("--simulate", choices=["float32", "float64"],
                     help="audit the method run in plain round-to-nearest floats instead")
    p.add_argument("--spec", metavar="FILE.vnnlib",
                   help="input set from a VNN-LIB file; its output property is checked too")
    p.add_argument("--method", choices=[*AUDITED, "deriv"], default="ibp")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="the claim's float type for ulps (default: from the claim, else float64)")
    p.add_argument("--intermediate-claims", metavar="FILE.json",
                   help="claims on intermediate nodes: {node name: {'lo': ..., 'hi': ...}}")
    p.add_argument("--budget", type=int, default=400,
                   help="exact evaluations for the local search (default 400)")
    p.add_argument("--random", type=int, default=8, dest="n_random",
                   help="random exact points tried before the local search (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random candidates")
    p.add_argument("--all", action="store_true", dest="find_all",
                   help="run every candidate instead of stopping at the first witness per side")
    p.add_argument("--max-bits", type=int, default=4096,
                   help="largest square-root precision when refining an enclosure")
    add_relaxation_options(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--report", metavar="FILE.html", help="write a self-contained HTML report")
    add_arith(p, modes=("exact", "dyadic", "interval"))
    p.set_defaults(func=run, bits=None)


def _nonneg(name, v):
    if v < 0:
        raise InvalidValueError(name, v, "must be >= 0")
    return v


def _load(args):
    return load_model(args.model, spec=args.spec)


def audit_from_args(args):
    """Run the audit that ``args`` describe; returns an ``AuditResult``."""
    for name in ("budget", "n_random"):
        _nonneg(f"--{name.replace('n_', '')}", getattr(args, name))
    if args.bits is not None and (args.bits < 2 or args.max_bits < args.bits):
        raise InvalidValueError("--max-bits", args.max_bits, f"must be >= --bits {args.bits}")
    if args.method == "deriv":
        return _deriv(args)
    mode = mode_from_args(args, None)
    model = _load(args)
    claims = []
    if args.simulate:
        claims.append(simulate(model.graph, model.input_set, args.method, args.simulate,
                               lower_slope=args.lower_slope))
    elif args.claimed:
        claims.append(load_claim(args.claimed, args.method, args.dtype))
    if args.intermediate_claims:
        claims += list(load_intermediate_claims(args.intermediate_claims, args.method,
                                                args.dtype).values())
    if not claims and getattr(model, "spec", None) is None:
        raise ExactBoundsError("check: give --claimed CLAIM.json, --simulate float32|float64, "
                               "--intermediate-claims or --spec")
    result = check_model(model, claims, args.method, mode=mode, bits=args.bits, prec=args.prec,
                         lower_slope=args.lower_slope, intersect_ibp=args.intersect_ibp,
                         budget=args.budget, n_random=args.n_random, seed=args.seed,
                         find_all=args.find_all, max_bits=args.max_bits)
    if args.simulate:
        result.info["simulate"] = args.simulate
    return result


def _deriv(args):
    if args.simulate or not args.claimed:
        raise ExactBoundsError("check --method deriv: give --claimed FILE.json (the JSON of "
                               "'exactbounds derivatives --json' or the same shape)")
    model = _load(args)
    return audit_derivative_claims(model.graph, model.input_set, read_json(args.claimed),
                                   source=args.claimed, dtype=args.dtype, bits=args.bits,
                                   max_bits=args.max_bits, budget=args.budget, seed=args.seed,
                                   find_all=args.find_all, n_random=args.n_random)


def run(args):
    result = audit_from_args(args)
    if args.report:
        page = html_report(result, title=f"exactbounds check {Path(args.model).name}")
        try:
            Path(args.report).write_text(page)
        except OSError as e:
            raise ExactBoundsError(f"--report {args.report}: cannot write: {e.strerror}") from None
    status = exit_status(result.verdicts)
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        how = f"--simulate {args.simulate}" if args.simulate else (args.claimed or "")
        print(table(result, f"{args.model}: {result.method} claims from {how}".rstrip()))
    sys.stdout.flush()
    return status
