"""``exactbounds check MODEL --claimed CLAIM.json``: audit a fast tool's claimed bounds.

Per output and side: ``sound`` (the claim contains the method's exact bound), ``inside_exact``
(tighter than the exact bound, no witness found) or ``unsound`` (an exact witness input whose
exact output lies strictly outside the claim). ``--simulate float32|float64`` audits what a
naive round-to-nearest implementation of the method computes instead of a claim file.
Exit status: 0 all sound, 1 anything unsound or inside_exact, 2 bad input.

``--mode fast`` (the default on a model above ``LARGE_MODEL`` affine coefficients) runs the fast
tier first (:mod:`exactbounds.audit.fast_tier`): a side whose claim contains the method's fast
sound bound is ``sound`` without exact work; only the other sides are audited exactly, in the
method's default mode. The verdicts stay exact.
"""

import datetime
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

from .. import __version__
from ..algorithms.profiles import make_profile
from ..audit.bounds import check_model
from ..audit.claims import load_claim, load_intermediate_claims
from ..audit.derivatives import audit_derivative_claims
from ..audit.floatsim import simulate
from ..audit.methods import AUDITED
from ..audit.report import html_report, table
from ..audit.verdicts import exit_status
from ..budget import Progress, estimate_entries, reserve
from ..errors import ExactBoundsError, InvalidValueError
from ..io.json_net import read_json
from ..io.load import load_model
from .bounds import LARGE_MODEL, model_size
from .common import (
    MAX_OPTION_BITS,
    add_arith,
    add_budget,
    add_command,
    add_relaxation_options,
    budget_from_args,
    int_range,
    mode_from_args,
    slopes_from_args,
)


def register(sub):
    p = add_command(
        sub,
        "check",
        "audit a tool's claimed bounds: sound, inside_exact or unsound (with an exact witness)",
        [
            "exactbounds check net.json --claimed claim.json --method crown --dtype float32",
            "exactbounds check exactbounds/examples/mlp_bn.onnx --spec "
            "exactbounds/examples/mlp_bn.vnnlib --method crown --simulate float32 --report r.html",
        ],
        exit_codes="exit status: 0 every side sound, 1 anything unsound or inside_exact, 2 bad "
        "input or a budget exceeded, 130 interrupted",
        details="A claim is needed: --claimed, --simulate or --intermediate-claims. With --spec "
        "the VNN-LIB output property is checked too.",
    )
    p.add_argument("model", help="network file (.json, or .onnx with --spec)")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--claimed",
        metavar="CLAIM.json",
        help="claimed bounds: {'lo': [...], 'hi': [...]}, optionally keyed by "
        "method and then by dtype",
    )
    src.add_argument(
        "--simulate",
        choices=["float32", "float64"],
        help="audit the method run in plain round-to-nearest floats instead",
    )
    p.add_argument(
        "--spec",
        metavar="FILE.vnnlib",
        help="input set from a VNN-LIB file; its output property is checked too",
    )
    p.add_argument(
        "--method",
        choices=[*AUDITED, "deriv"],
        default="ibp",
        help="the method whose claims are audited (deriv: the JSON of 'exactbounds derivatives')",
    )
    p.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default=None,
        help="the claim's float type for ulps (default: from the claim, else float64)",
    )
    p.add_argument(
        "--intermediate-claims",
        metavar="FILE.json",
        help="claims on intermediate nodes: {node name: {'lo': ..., 'hi': ...}}",
    )
    p.add_argument(
        "--budget",
        type=int_range(0, MAX_BUDGET),
        default=400,
        metavar="N",
        help="exact evaluations for the local search",
    )
    p.add_argument(
        "--random",
        type=int_range(0, MAX_RANDOM),
        default=8,
        dest="n_random",
        metavar="N",
        help="random exact points tried before the local search",
    )
    p.add_argument(
        "--seed",
        type=int_range(0, 2**64),
        default=0,
        metavar="S",
        help="seed of the random candidates",
    )
    p.add_argument(
        "--all",
        action="store_true",
        dest="find_all",
        help="run every candidate instead of stopping at the first witness per side",
    )
    p.add_argument(
        "--max-bits",
        type=int_range(2, MAX_OPTION_BITS),
        default=4096,
        metavar="N",
        help="largest square-root precision when refining an enclosure",
    )
    add_relaxation_options(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--report", metavar="FILE.html", help="write a self-contained HTML report")
    add_arith(
        p,
        modes=("exact", "dyadic", "interval", "fast"),
        default_note="default: exact for ibp, dyadic for crown; fast = the fast tier first "
        f"(also the default above {LARGE_MODEL} affine coefficients): sides whose claim "
        "contains the fast sound bound are sound without exact work, the others are audited "
        "in the default mode",
    )
    add_budget(p)
    p.set_defaults(func=run)


MAX_BUDGET = 1_000_000
MAX_RANDOM = 100_000


def _report_path(path):
    """Refuse an empty or unwritable ``--report`` before any work is done."""
    if path is None:
        return None
    p = Path(path)
    if not path.strip() or p.is_dir():
        raise InvalidValueError("--report", path, "expected a file name, e.g. report.html")
    parent = p.parent if str(p.parent) else Path(".")
    if (
        not parent.is_dir()
        or not os.access(parent, os.W_OK)
        or (p.exists() and not os.access(p, os.W_OK))
    ):
        raise InvalidValueError(
            "--report", path, "cannot write there (missing folder or no permission)"
        )
    return p


def _load(args):
    model = load_model(args.model, spec=args.spec)
    reserve(
        estimate_entries(model.graph, args.method),
        f"{args.method} on {model.source}",
        "use --method ibp or a smaller network"
        if args.method != "ibp"
        else "use a smaller network",
    )
    return model


def audit_from_args(args, progress=None):
    """Run the audit that ``args`` describe; returns an ``AuditResult``. ``progress`` (a
    :class:`~exactbounds.budget.Progress`) is ticked once per exact evaluation."""
    if args.bits is not None and args.max_bits < args.bits:
        raise InvalidValueError("--max-bits", args.max_bits, f"must be >= --bits {args.bits}")
    if args.method == "deriv":
        return _deriv(args)
    mode = mode_from_args(args, None)
    slopes = slopes_from_args(args)
    make_profile(
        args.relaxation,
        slopes,
        lower_slope=args.lower_slope,  # bad options: exit 2
        intersect_ibp=args.intersect_ibp,
    )
    model = _load(args)
    fast_first = mode is None and model_size(model.graph) > LARGE_MODEL  # as --mode fast
    claims = []
    if args.simulate:
        claims.append(
            simulate(
                model.graph,
                model.input_set,
                args.method,
                args.simulate,
                lower_slope=args.lower_slope,
            )
        )
    elif args.claimed:
        claims.append(load_claim(args.claimed, args.method, args.dtype))
    if args.intermediate_claims:
        claims += list(
            load_intermediate_claims(args.intermediate_claims, args.method, args.dtype).values()
        )
    if not claims:
        raise ExactBoundsError(
            "check: nothing to check: give the claim to audit with "
            "--claimed CLAIM.json, --simulate float32|float64 or "
            "--intermediate-claims FILE.json"
        )
    result = check_model(
        model,
        claims,
        args.method,
        mode=mode,
        bits=args.bits,
        prec=args.prec,
        lower_slope=args.lower_slope,
        intersect_ibp=args.intersect_ibp,
        budget=args.budget,
        n_random=args.n_random,
        seed=args.seed,
        find_all=args.find_all,
        max_bits=args.max_bits,
        on_eval=progress,
        relaxation=args.relaxation,
        slopes=slopes,
        fast_first=fast_first,
    )
    if args.simulate:
        result.info["simulate"] = args.simulate
    return result


def _deriv(args):
    if args.simulate or not args.claimed:
        raise ExactBoundsError(
            "check --method deriv: give --claimed FILE.json (the JSON of "
            "'exactbounds derivatives --json' or the same shape)"
        )
    model = _load(args)
    return audit_derivative_claims(
        model.graph,
        model.input_set,
        read_json(args.claimed),
        source=args.claimed,
        dtype=args.dtype,
        bits=args.bits,
        max_bits=args.max_bits,
        budget=args.budget,
        seed=args.seed,
        find_all=args.find_all,
        n_random=args.n_random,
    )


def _provenance(args):
    """Command line, version, date and SHA-256 of every input file, for the report."""
    files = {
        k: getattr(args, a)
        for k, a in (
            ("model", "model"),
            ("spec", "spec"),
            ("claim", "claimed"),
            ("intermediate claims", "intermediate_claims"),
        )
        if getattr(args, a, None)
    }
    sums = {}
    for k, f in files.items():
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        sums[k] = (f, h.hexdigest())
    return {
        "command": "exactbounds " + shlex.join(sys.argv[1:]),
        "version": __version__,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "files": sums,
    }


def run(args):
    report = _report_path(args.report)
    advice = (
        "use a smaller --budget or --random, --mode dyadic or --mode interval, or a smaller network"
    )
    with (
        budget_from_args(args, advice) as budget,
        Progress(
            budget,
            desc="check: exact bounds of the method",
            unit="",
            eval_stage="check: witness search",
        ) as progress,
    ):
        result = audit_from_args(args, progress)
    status = exit_status(result.verdicts)
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        how = f"--simulate {args.simulate}" if args.simulate else (args.claimed or "")
        print(table(result, f"{args.model}: {result.method} claims from {how}"))
    sys.stdout.flush()
    if report is not None:
        page = html_report(
            result, title=f"exactbounds check {Path(args.model).name}", provenance=_provenance(args)
        )
        try:
            report.write_text(page, encoding="utf-8")
        except OSError as e:
            raise ExactBoundsError(f"--report {args.report}: cannot write: {e.strerror}") from None
    return status
