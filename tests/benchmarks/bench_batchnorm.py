"""Seconds for ibp_batchnorm and aff_batchnorm on a BatchNorm of 4096 channels with float32
statistics, in each number context. Prints a table; not a test.

    python tests/benchmarks/bench_batchnorm.py [--channels 4096] [--in-dim 256] [--aff-rows 256]

The affine form fed to aff_batchnorm has ``--aff-rows`` BN channels × ``--in-dim`` inputs
(256×256 by default; a 4096×256 form is ``--aff-rows 4096``)."""

import argparse
import time

import numpy as np

from exactbounds import (
    AffineVec,
    BatchNormParams,
    Box,
    IntervalContext,
    RationalContext,
    SymbolicContext,
    aff_batchnorm,
    ibp_batchnorm,
)


def timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bn_params(rng, C):
    def f(a):
        return [np.float32(v) for v in a]

    return BatchNormParams(
        f(rng.normal(size=C)),
        f(rng.uniform(0.01, 4, size=C)),
        f(rng.normal(size=C)),
        f(rng.normal(size=C)),
        np.float32(1e-5),
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=4096)
    ap.add_argument("--in-dim", type=int, default=256)
    ap.add_argument("--aff-rows", type=int, default=256)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    C = args.channels
    bn_params(rng, C)  # unused draw, kept so the benchmark's data stay the same
    x = rng.normal(size=C).astype(np.float32)
    box = Box.from_values([np.float32(v - 0.01) for v in x], [np.float32(v + 0.01) for v in x])
    Pa = bn_params(rng, args.aff_rows)
    A = rng.normal(size=(args.aff_rows, args.in_dim)).astype(np.float32)
    aff = AffineVec(
        [[np.float32(v) for v in r] for r in A],
        [np.float32(v) for v in rng.normal(size=args.aff_rows)],
    )
    from exactbounds.numbers import to_exact

    aff = AffineVec([[to_exact(v) for v in r] for r in aff.A], [to_exact(v) for v in aff.c])
    ctxs = [
        ("rational bits=128", RationalContext(128)),
        ("rational bits=53", RationalContext(53)),
        ("interval prec=53", IntervalContext(53)),
        ("interval prec=113", IntervalContext(113)),
    ]
    print(
        f"BatchNorm of {C} channels (float32 statistics); affine form "
        f"{args.aff_rows}x{args.in_dim}; best of 3"
    )
    print(f"{'context':<22}{'ibp_batchnorm s':>18}{'aff_batchnorm s':>18}")
    for name, ctx in ctxs:
        # fresh parameters each time so the per-channel sqrt enclosures are part of the figure
        ti = timed(lambda ctx=ctx: ibp_batchnorm(bn_params(np.random.default_rng(0), C), box, ctx))
        ta = timed(lambda ctx=ctx: aff_batchnorm(Pa, aff, ctx), repeat=1)
        print(f"{name:<22}{ti:>18.4f}{ta:>18.4f}")
    ctx = SymbolicContext()
    small = 64
    Ps = bn_params(rng, small)
    bs = Box.from_values([0] * small, [1] * small)
    print(f"{'symbolic (64 ch)':<22}{timed(lambda: ibp_batchnorm(Ps, bs, ctx), 1):>18.4f}{'-':>18}")
    t = time.perf_counter()
    bn_params(np.random.default_rng(0), C)
    print(f"(parameter conversion alone, {C} channels: {time.perf_counter() - t:.4f} s)")


if __name__ == "__main__":
    main()
