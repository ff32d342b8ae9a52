"""Benchmark of the audit (``exactbounds check --simulate float32``) on random float32 ReLU
networks with an L∞ ball of radius 0.01 around a random point: seconds for the float simulation,
the exact reference run, the witness search, and the verdict counts.

    .venv/bin/python tests/benchmarks/bench_audit.py [--quick] [--budget N]
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from exactbounds.audit.bounds import audit_bounds  # noqa: E402
from exactbounds.audit.floatsim import simulate  # noqa: E402
from exactbounds.graph import Graph  # noqa: E402
from exactbounds.inputsets import LpBall  # noqa: E402
from exactbounds.operators.linear import Linear, LinearParams  # noqa: E402
from exactbounds.operators.relu import ReLU  # noqa: E402


def random_graph(sizes, seed=0):
    rng = np.random.default_rng(seed)
    ops = []
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        W = (rng.standard_normal((b, a)) / np.sqrt(a)).astype(np.float32)
        bias = (0.1 * rng.standard_normal(b)).astype(np.float32)
        ops.append(Linear(LinearParams(W.tolist(), bias.tolist(), name=f"fc{k}")))
        if k < len(sizes) - 2:
            ops.append(ReLU(b, name=f"relu{k}"))
    x0 = rng.random(sizes[0]).astype(np.float32)
    return Graph.sequential(sizes[0], ops), LpBall(x0.tolist(), "0.01", "inf")


def run(name, sizes, method, dtype, budget):
    g, ball = random_graph(sizes)
    t0 = time.perf_counter()
    claim = simulate(g, ball, method, dtype)
    t1 = time.perf_counter()
    res = audit_bounds(g, ball, [claim], method, budget=budget, n_random=8)
    t2 = time.perf_counter()
    c = {k: sum(v.verdict == k for v in res.verdicts) for k in ("unsound", "inside_exact", "sound")}
    print(
        f"{name:<22} {method:<6} {dtype:<8} simulate {t1 - t0:7.3f} s   audit {t2 - t1:7.3f} s"
        f"   ({res.evaluations} exact evaluations)   {c}",
        flush=True,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 784-256-256-256-10 network")
    ap.add_argument("--budget", type=int, default=100)
    args = ap.parse_args()
    nets = [("5-50x6-5", [5] + [50] * 6 + [5])]
    if not args.quick:
        nets.append(("784-256-256-256-10", [784, 256, 256, 256, 10]))
    for name, sizes in nets:
        for method in ("ibp", "crown"):
            for dtype in ("float32", "float64"):
                run(name, sizes, method, dtype, args.budget)


if __name__ == "__main__":
    main()
