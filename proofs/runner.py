"""The runner: check every obligation, print a table (or JSON), exit 0 only when every
obligation has its expected status. ``python -m proofs`` and ``exactbounds prove`` both call
:func:`main`."""

import argparse
import json
import sys
import time

from .args import add_arguments
from .batchnorm import REGISTRY as BATCHNORM
from .rounding import REGISTRY as ROUNDING

OBLIGATIONS = BATCHNORM + ROUNDING
LEAN_NS = "NN.MLTheory.CROWN.Operators.Batchnorm.Theorems."


def select(pattern=None):
    """The registered obligations whose name contains ``pattern`` (all without one)."""
    return [ob for ob in OBLIGATIONS if not pattern or pattern in ob.name]


def run(obligations=None, ops=None):
    """Check the obligations in order; returns their :class:`~proofs.framework.Result`s."""
    return [ob.check(ops) for ob in (OBLIGATIONS if obligations is None else obligations)]


def status_text(r):
    if r.ok:
        return r.status if r.expected in ("proved", "checked") else f"{r.status} (expected)"
    return f"{r.status} (EXPECTED {r.expected.upper()})"


def _cex_text(cex):
    return ", ".join(f"{k}={v}" for k, v in cex.items())


def short_lean(name):
    """The Lean name without the common namespace (the JSON keeps it in full)."""
    return (name or "—").replace(LEAN_NS, "")


def table(results, total):
    rows = [
        (r.name, short_lean(r.lean), str(r.cases), status_text(r), f"{r.seconds:.2f}")
        for r in results
    ]
    head = ("obligation", "Lean name", "cases", "status", "seconds")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    align = ["<", "<", ">", "<", ">"]

    def line(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    out = [line(head), line(["-" * w for w in widths])]
    for r, row in zip(results, rows):
        out.append(line(row))
        if r.counterexample is not None:
            out.append(f"    counterexample: {_cex_text(r.counterexample)}")
            out.append(f"    {r.detail}")
        elif not r.ok and r.detail:
            out.append(f"    {r.detail}")
    if any(r.lean and LEAN_NS in r.lean for r in results):
        out.append(f"(Lean names are in {LEAN_NS.rstrip('.')}.)")
    bad = [r.name for r in results if not r.ok]
    out.append(
        f"{len(results)} obligations, {len(results) - len(bad)} as expected, "
        f"{total:.1f} s" + (f"; NOT as expected: {', '.join(bad)}" if bad else "")
    )
    return "\n".join(out)


def report(results, total, as_json=False, file=None):
    """Print the results; return the exit status (0 only when all are as expected)."""
    ok = all(r.ok for r in results)
    if as_json:
        print(
            json.dumps(
                {
                    "ok": ok,
                    "seconds": round(total, 3),
                    "obligations": [r.as_dict() for r in results],
                },
                indent=1,
            ),
            file=file,
        )
    else:
        print(table(results, total), file=file)
    return 0 if ok else 1


def execute(args):
    obs = select(args.pattern)
    if args.list:
        for ob in obs:
            print(f"{ob.name}\t{ob.lean or '—'}\texpected {ob.expected}")
        return 0
    if not obs:
        print(f"no obligation matches {args.pattern!r}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    results = run(obs)
    return report(results, time.perf_counter() - t0, args.json)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m proofs",
        description="Replay TorchLean's theorem statements symbolically "
        "against exactbounds' operators.",
    )
    add_arguments(p)
    return execute(p.parse_args(argv))
