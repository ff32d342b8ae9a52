"""Seconds for order-2 derivative propagation (Taylor mode) through a 1-64-64-64-1 Tanh network
with BatchNorm after every hidden Tanh, float32 weights, along x(t) = t for t in [-1, 1], in each
context and for both second-derivative rules. Also prints the order-1 time and the width of the
u'' enclosure. Prints a table; not a test.

    python tests/benchmarks/bench_derivatives.py [--width 64] [--depth 3] [--repeat 3]
"""
import argparse
import time

import numpy as np

from exactbounds.algorithms.taylor import Curve, propagate
from exactbounds.graph import Graph
from exactbounds.numbers import IntervalContext, RationalContext
from exactbounds.operators.activations import Tanh
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
        ops.append(Linear.from_weights(f(W), g(rng.normal(scale=0.1, size=width)),
                                       name=f"lin{k}"))
        ops.append(Tanh((width,), name=f"tanh{k}"))
        ops.append(BatchNorm(BatchNormParams(
            g(rng.normal(scale=0.1, size=width)), g(rng.uniform(0.05, 1.0, size=width)),
            g(rng.normal(size=width)), g(rng.normal(scale=0.1, size=width)), np.float32(1e-5),
            name=f"bn{k}")))
        dim = width
    ops.append(Linear.from_weights(f(rng.normal(scale=1 / np.sqrt(dim), size=(1, dim))),
                                   [np.float32(0)], name="out"))
    return Graph.sequential(1, ops)


def timed(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    g = network(np.random.default_rng(0), args.width, args.depth)
    curve = Curve([0], [1], -1, 1)
    print(f"1-{'-'.join([str(args.width)] * args.depth)}-1 Tanh+BN network, x(t) = t, "
          f"t in [-1, 1]; best of {args.repeat}")
    print(f"{'context':<28} {'rule':<6} {'order 2 (s)':>12} {'order 1 (s)':>12}  u'' enclosure")
    for ctx in (RationalContext(128), IntervalContext(113), IntervalContext(53)):
        for rule in ("chain", "seed"):
            t2, jet = timed(lambda ctx=ctx, rule=rule: propagate(g, curve, ctx, 2, rule),
                            args.repeat)
            t1, _ = timed(lambda ctx=ctx, rule=rule: propagate(g, curve, ctx, 1, rule),
                          args.repeat)
            (lo,), (hi,) = jet.d2.outer(ctx)
            print(f"{ctx!r:<28} {rule:<6} {t2:>12.4f} {t1:>12.4f}  "
                  f"[{float(lo):.6g}, {float(hi):.6g}]")


if __name__ == "__main__":
    main()
