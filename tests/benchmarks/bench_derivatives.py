"""Seconds for order-2 derivative propagation (Taylor mode) through a 1-64-64-64-1 Tanh network
with BatchNorm after every hidden Tanh, float32 weights, along x(t) = t for t in [-1, 1], in each
context and for both second-derivative rules. Also prints the order-1 time and the width of the
u'' enclosure. Prints a table; not a test.

Then refinement (issue 16), rational context, chain rule: the gap (enclosure width / range of the
exactly sampled values; the sampled range of the refined run is the reference for both columns)
of u, u', u'' before (one piece) and after refinement, with the time; for the bundled PINN
example, ``--pinns`` random PINN-style networks (1 input; Linear -> Tanh/Sigmoid -> Linear ->
Tanh -> BatchNorm with a negative γ -> Linear; widths 6-16) and the 1-W-...-W-1 network, whose
gap is also reported at 10, 60 and ``--long`` seconds of one run.

    python tests/benchmarks/bench_derivatives.py [--width 64] [--depth 3] [--repeat 3]
        [--pinns 5] [--budget 30] [--long 300] [--target 1.05] [--workers N] [--skip-single]
"""

import argparse
import time
from pathlib import Path

import numpy as np
from flint import fmpq

from exactbounds.algorithms.refine import refine
from exactbounds.algorithms.taylor import Curve, propagate
from exactbounds.graph import Graph
from exactbounds.numbers import IntervalContext, RationalContext
from exactbounds.operators.activations import Sigmoid, Tanh
from exactbounds.operators.batchnorm import BatchNorm, BatchNormParams
from exactbounds.operators.linear import Linear


def network(rng, width, depth):
    def f(a):
        return [[np.float32(v) for v in r] for r in a]

    def g(a):
        return [np.float32(v) for v in a]

    ops, dim = [], 1
    for k in range(depth):
        W = rng.normal(scale=1 / np.sqrt(dim), size=(width, dim))
        ops.append(Linear.from_weights(f(W), g(rng.normal(scale=0.1, size=width)), name=f"lin{k}"))
        ops.append(Tanh((width,), name=f"tanh{k}"))
        ops.append(
            BatchNorm(
                BatchNormParams(
                    g(rng.normal(scale=0.1, size=width)),
                    g(rng.uniform(0.05, 1.0, size=width)),
                    g(rng.normal(size=width)),
                    g(rng.normal(scale=0.1, size=width)),
                    np.float32(1e-5),
                    name=f"bn{k}",
                )
            )
        )
        dim = width
    ops.append(
        Linear.from_weights(
            f(rng.normal(scale=1 / np.sqrt(dim), size=(1, dim))), [np.float32(0)], name="out"
        )
    )
    return Graph.sequential(1, ops)


def timed(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def pinn(rng):
    """A PINN-style network as in issue 16, float32 weights, widths 6-16."""

    def f(a):
        return [[np.float32(v) for v in r] for r in a]

    def g(a):
        return [np.float32(v) for v in a]

    w1, w2 = (int(v) for v in rng.integers(6, 17, size=2))
    gamma = rng.normal(size=w2)
    gamma[0] = -abs(gamma[0])
    act = Tanh if rng.random() < 0.5 else Sigmoid
    return (
        act.kind,
        w1,
        w2,
        Graph.sequential(
            1,
            [
                Linear.from_weights(f(rng.normal(size=(w1, 1))), g(rng.normal(scale=0.3, size=w1))),
                act((w1,)),
                Linear.from_weights(
                    f(rng.normal(scale=1 / np.sqrt(w1), size=(w2, w1))),
                    g(rng.normal(scale=0.1, size=w2)),
                ),
                Tanh((w2,)),
                BatchNorm(
                    BatchNormParams(
                        g(rng.normal(scale=0.1, size=w2)),
                        g(rng.uniform(0.1, 1.5, size=w2)),
                        g(gamma),
                        g(rng.normal(scale=0.2, size=w2)),
                        np.float32(1e-5),
                    )
                ),
                Linear.from_weights(f(rng.normal(scale=1 / np.sqrt(w2), size=(1, w2))), g([0.0])),
            ],
        ),
    )


def _worst(gaps):
    vals = [x for v in gaps.values() for x in v]
    return float("inf") if any(x is None for x in vals) else float(max(vals))


def _fmt(gaps):
    return " ".join(
        "inf" if x is None else f"{float(x):7.3f}" for k in sorted(gaps) for x in gaps[k]
    )


def refinement_row(label, g, budget, target, workers, marks=()):
    """Before/after gaps of u, u', u'' and seconds; the worst gap at the times in ``marks``."""
    ctx = RationalContext()
    curve = Curve([0], [1], -1, 1)
    t0 = time.perf_counter()
    one = propagate(g, curve, ctx, 2)
    t_one = time.perf_counter() - t0
    r = refine(g, curve, ctx, 2, budget=budget, target=target, workers=workers)
    before = {}
    for k, box in ((0, one.value), (1, one.d1), (2, one.d2)):
        (lo,), (hi,) = box.outer(ctx)
        (a,), (b,) = r.sampled[k]
        before[k] = [(hi - lo) / (b - a) if b > a else None]
    first = {}
    for th in (1.25, 1.05):
        hit = [h[0] for h in r.history if _worst(h[2]) <= th]
        first[th] = f"{hit[0]:6.1f}" if hit else "     -"
    print(
        f"{label:<34} {_fmt(before)}  {t_one:6.2f}s | {_fmt(r.gap)}  {r.seconds:6.1f}s "
        f"{r.pieces:5d} {r.stopped:<10} {first[1.25]} {first[1.05]}"
    )
    for m in marks:
        upto = [h for h in r.history if h[0] <= m]
        if upto:
            h = upto[-1]
            print(
                f"{'':<34}   at {m:>4.0f} s: worst gap {_worst(h[2]):.3f} "
                f"({_fmt(h[2])}), {h[1]} pieces"
            )
    return r


def refinement(args):
    target = fmpq(round(args.target * 10000), 10000)
    print(
        f"\nrefinement (rational context, chain rule, x(t) = t on [-1, 1]); gaps u u' u'' "
        f"= enclosure width / sampled range; target {args.target}, budget {args.budget} s, "
        f"workers {args.workers or 1}"
    )
    print(
        f"{'network':<34} {'before: u u2 u3 gaps':>23}  {'time':>7} | "
        f"{'after: u u2 u3 gaps':>23}  {'time':>7} {'pcs':>5} {'stopped':<10} "
        f"{'<=1.25':>6} {'<=1.05':>6} (s)"
    )
    from exactbounds.io.load import load_model

    ex = load_model(
        str(Path(__file__).resolve().parents[2] / "exactbounds" / "examples" / "pinn_tanh_bn.json")
    ).graph
    refinement_row("pinn_tanh_bn.json (1-8-8-1)", ex, args.budget, target, args.workers)
    rng = np.random.default_rng(1)
    for i in range(args.pinns):
        kind, w1, w2, g = pinn(rng)
        refinement_row(f"pinn #{i} {kind} 1-{w1}-{w2}-1", g, args.budget, target, args.workers)
    big = network(np.random.default_rng(0), args.width, args.depth)
    marks = sorted({m for m in (10, 60, args.long) if m <= args.long})
    refinement_row(
        f"1-{'-'.join([str(args.width)] * args.depth)}-1 Tanh+BN",
        big,
        args.long,
        target,
        args.workers,
        marks,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pinns", type=int, default=5)
    ap.add_argument("--budget", type=float, default=30.0)
    ap.add_argument("--long", type=float, default=300.0)
    ap.add_argument("--target", type=float, default=1.05)
    ap.add_argument("--workers", type=int)
    ap.add_argument("--skip-single", action="store_true", help="only the refinement table")
    args = ap.parse_args()
    if not args.skip_single:
        single(args)
    refinement(args)


def single(args):
    g = network(np.random.default_rng(0), args.width, args.depth)
    curve = Curve([0], [1], -1, 1)
    print(
        f"1-{'-'.join([str(args.width)] * args.depth)}-1 Tanh+BN network, x(t) = t, "
        f"t in [-1, 1]; best of {args.repeat}"
    )
    print(f"{'context':<28} {'rule':<6} {'order 2 (s)':>12} {'order 1 (s)':>12}  u'' enclosure")
    for ctx in (RationalContext(128), IntervalContext(113), IntervalContext(53)):
        for rule in ("chain", "seed"):
            t2, jet = timed(
                lambda ctx=ctx, rule=rule: propagate(g, curve, ctx, 2, rule), args.repeat
            )
            t1, _ = timed(lambda ctx=ctx, rule=rule: propagate(g, curve, ctx, 1, rule), args.repeat)
            (lo,), (hi,) = jet.d2.outer(ctx)
            print(
                f"{ctx!r:<28} {rule:<6} {t2:>12.4f} {t1:>12.4f}  [{float(lo):.6g}, {float(hi):.6g}]"
            )


if __name__ == "__main__":
    main()
