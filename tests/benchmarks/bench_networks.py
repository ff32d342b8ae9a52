"""Benchmark: IBP, CROWN and forward affine on random float32 ReLU networks, in the exact,
dyadic and interval modes, beside a plain numpy float64 implementation of the same algorithm
run in the same process. L∞ ball of radius 0.01 around a random point in [0, 1]^n.

    .venv/bin/python tests/benchmarks/bench_networks.py [--quick] [--big-only] [--skip-slow]
        [--repeat N]

Every figure is the minimum over ``N`` runs (default 3; IBP 5), "prep" is building the graph from
the float32 weights (as nested lists of floats, as the JSON loader gives them) plus the first
exact IBP (which builds the exact weight matrices); the load average is printed alongside.

Goals (issue 5): exact IBP on 784-256-256-256-10 < 0.1 s; CROWN (dyadic, 64 bits) on the 6×50
network < 0.5 s and on 784-256-256-256-10 < 10 s.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from np_reference import np_crown, np_ibp  # noqa: E402

from exactbounds.algorithms.affine import affine  # noqa: E402
from exactbounds.algorithms.crown import crown  # noqa: E402
from exactbounds.algorithms.ibp import ibp  # noqa: E402
from exactbounds.graph import Graph  # noqa: E402
from exactbounds.inputsets import LpBall  # noqa: E402
from exactbounds.numbers import make_context  # noqa: E402
from exactbounds.operators.linear import Linear, LinearParams  # noqa: E402
from exactbounds.operators.relu import ReLU  # noqa: E402


def random_net(sizes, seed=0):
    """float32 weights ~ N(0, 1/fan_in), biases ~ N(0, 0.01), as numpy arrays."""
    rng = np.random.default_rng(seed)
    Ws = [
        (rng.standard_normal((b, a)) / np.sqrt(a)).astype(np.float32)
        for a, b in zip(sizes, sizes[1:])
    ]
    bs = [(0.1 * rng.standard_normal(b)).astype(np.float32) for b in sizes[1:]]
    x0 = rng.random(sizes[0]).astype(np.float32)
    return Ws, bs, x0


def to_graph(Ws, bs):
    ops = []
    for k, (W, b) in enumerate(zip(Ws, bs)):
        ops.append(Linear(LinearParams(W.tolist(), b.tolist(), name=f"fc{k}")))
        if k < len(Ws) - 1:
            ops.append(ReLU(W.shape[0], name=f"relu{k}"))
    return Graph.sequential(Ws[0].shape[1], ops)


def timed(fn, repeat=1):
    best = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    return best, out


def width(box, ctx):
    lo, hi = box.outer(ctx)
    return max(float(b - a) for a, b in zip(lo, hi))


def bench(name, sizes, rows, skip_slow, eps=0.01, repeat=3):
    Ws, bs, x0 = random_net(sizes)
    g = to_graph(Ws, bs)
    S = LpBall(x0.tolist(), eps, "inf")
    W64, b64 = [w.astype(np.float64) for w in Ws], [b.astype(np.float64) for b in bs]
    lo64, hi64 = x0.astype(np.float64) - eps, x0.astype(np.float64) + eps
    t_np_ibp, (l1, h1) = timed(lambda: np_ibp(W64, b64, lo64, hi64), max(5, repeat))
    t_np_crown, (l2, h2) = timed(lambda: np_crown(W64, b64, lo64, hi64), repeat)
    rows.append((name, "ibp", "numpy f64", t_np_ibp, float(np.max(h1 - l1))))
    rows.append((name, "crown", "numpy f64", t_np_crown, float(np.max(h2 - l2))))
    # model preparation (graph from float lists, exact weight matrices, |W|), shared by every
    # method: timed apart, on a fresh graph each time
    t_prep, _ = timed(lambda: ibp(to_graph(Ws, bs), S, make_context("exact")), repeat)
    rows.append((name, "prep", "graph+matrices", t_prep, float("nan")))
    ibp(g, S, make_context("exact"))
    plan = [
        ("ibp", "exact", 128),
        ("ibp", "interval", 113),
        ("crown", "dyadic", 64),
        ("affine", "dyadic", 64),
        ("crown", "interval", 113),
    ]
    if not skip_slow:
        plan.append(("crown", "exact", 128))
    for method, mode, bits in plan:
        ctx = make_context(mode, bits=bits, prec=bits)
        if method == "ibp":
            fn = lambda ctx=ctx: ibp(g, S, ctx)  # noqa: E731
        else:
            algo = crown if method == "crown" else affine
            fn = lambda algo=algo, ctx=ctx: algo(g, S, ctx).output  # noqa: E731
        slow = (
            method != "ibp"
            and name.startswith("784")
            and not (method == "crown" and mode == "dyadic")
        )
        t, box = timed(fn, max(5, repeat) if method == "ibp" else 1 if slow else repeat)
        rows.append((name, method, f"{mode}({bits})", t, width(box, ctx)))
        print(f"  {name:>22} {method:>6} {mode + f'({bits})':>14} {t:9.3f} s", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small networks only")
    ap.add_argument("--big-only", action="store_true")
    ap.add_argument(
        "--skip-slow",
        action="store_true",
        help="skip exact CROWN (denominators blow up beyond a few layers)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (minimum is shown)")
    a = ap.parse_args(argv)
    nets = []
    if not a.big_only:
        nets += [("5x6-5", [5, 6, 6, 6, 6, 6, 5]), ("6x50", [5] + [50] * 6 + [5])]
    if not a.quick:
        nets.append(("784-256-256-256-10", [784, 256, 256, 256, 10]))
    rows = []
    load0 = os.getloadavg()
    for name, sizes in nets:
        bench(name, sizes, rows, a.skip_slow or name.startswith("784"), repeat=a.repeat)
    print()
    print(
        "load average (1, 5, 15 min): before "
        + " ".join(f"{v:.2f}" for v in load0)
        + ", after "
        + " ".join(f"{v:.2f}" for v in os.getloadavg())
        + f"; min of {a.repeat} runs (IBP {max(5, a.repeat)}; big affine/interval CROWN 1)"
    )
    print(f"{'network':>22} {'method':>6} {'mode':>14} {'seconds':>9} {'max width':>12}")
    for name, method, mode, t, w in rows:
        print(f"{name:>22} {method:>6} {mode:>14} {t:9.4f} {w:12.5g}")


if __name__ == "__main__":
    main()
