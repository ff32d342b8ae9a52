"""VNN-COMP audit figures on a real benchmark folder (not committed; e.g. ACAS Xu of
github.com/stanleybak/vnncomp2021, benchmarks/acasxu):

    python tests/benchmarks/bench_vnncomp_suite.py BENCH_DIR [--results CSV_OR_DIR]
        [--limit 50] [--workers 1,2] [--timeout 60] [--budget S]
        [--replay CEX_DIR] [--verify NET.onnx PROP.vnnlib ... --verify-budget 600]

Prints: ``replay`` time per counterexample file in CEX_DIR (min of 3, after start-up) and the
verdict counts; ``verify`` time and region counts per (network, property) pair; the wall time
of ``suite`` over the first ``--limit`` instances with each worker count and the speed-up.
Timings on a shared machine are noisy: the suite is run once per worker count, and the summed
CPU time of the instances (each task's own clock) and the load average are printed beside the
wall time.
"""

import argparse
import collections
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from exactbounds.algorithms.bab import verify
from exactbounds.audit.replay import float_screen, replay
from exactbounds.io.load import load_model
from exactbounds.vnncomp.files import load_counterexample, read_instances, stem
from exactbounds.vnncomp.runner import run_suite


def bench_replay(bench, cex_dir):
    """Replay every ``*.counterexample[.gz]`` under ``cex_dir`` whose name is
    ``{onnx stem}_{vnnlib stem}``, matched against the benchmark's instances."""
    insts = {i.key: i for i in read_instances(bench)}
    counts, times = collections.Counter(), []
    for f in sorted(Path(cex_dir).rglob("*.counterexample*")):
        inst = insts.get(stem(stem(f)))
        if inst is None:
            continue
        m = load_model(inst.onnx, spec=inst.vnnlib)
        c = load_counterexample(f)
        best = None
        for _ in range(3):
            t = time.perf_counter()
            r = replay(m, c.x, c.y)
            best = min(best or 1e9, time.perf_counter() - t)
        times.append(best)
        counts[(f.parent.name, r.verdict)] += 1
    if times:
        times.sort()
        print(
            f"replay: {len(times)} counterexamples, seconds per replay min "
            f"{times[0]:.3f} median {times[len(times) // 2]:.3f} max {times[-1]:.3f}"
        )
        for (tool, verdict), n in sorted(counts.items()):
            print(f"  {tool:<20} {verdict:<15} {n}")


def bench_verify(pairs, budget):
    for net, prop in pairs:
        m = load_model(net, spec=prop)
        r = verify(
            m.graph,
            m.input_set,
            m.spec.output,
            budget=budget,
            constraints=tuple(m.spec.input_constraints),
            screen=float_screen(m.graph),
        )
        print(
            f"verify {Path(net).name} {Path(prop).name}: {r.status} in {r.seconds:.1f} s, "
            f"{r.regions} regions ({r.closed} closed, {r.open} open, depth {r.depth}), "
            f"{r.cpu_seconds:.1f} s cpu",
            flush=True,
        )


def bench_suite(bench, results, limit, workers, timeout, budget):
    rows = list(
        csv.reader(
            open(Path(bench) / "instances.csv")
            if (Path(bench) / "instances.csv").exists()
            else open(next(Path(bench).glob("*instances.csv")))
        )
    )[:limit]
    base = Path(bench).resolve()
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "bench"
        sub.mkdir()
        with open(sub / "instances.csv", "w") as f:
            for r in rows:
                f.write(f"{base / r[0].strip()},{base / r[1].strip()},{r[2].strip()}\n")
        for w in workers:
            t = time.perf_counter()
            doc = run_suite(
                sub,
                Path(tmp) / f"out{w}",
                results=results,
                workers=w,
                timeout=timeout,
                budget=budget,
            )
            walls[w] = time.perf_counter() - t
            cpu = sum(
                json.loads(f.read_text()).get("cpu_seconds") or 0.0
                for f in (Path(tmp) / f"out{w}" / "instances").glob("*.json")
            )
            print(
                f"suite: {len(rows)} instances, {w} worker(s): {walls[w]:.1f} s wall, "
                f"{cpu:.1f} s cpu summed over the instances (load after: "
                f"{os.getloadavg()[0]:.1f}), verdicts {doc['counts']}",
                flush=True,
            )
    if 1 in walls:
        for w, s in walls.items():
            if w != 1:
                print(f"speed-up {w} workers vs 1: {walls[1] / s:.2f}x")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("bench")
    p.add_argument("--results")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--timeout", type=float, default=None)
    p.add_argument("--budget", type=float, default=None)
    p.add_argument("--replay", metavar="CEX_DIR")
    p.add_argument("--verify", nargs="+", metavar="FILE")
    p.add_argument("--verify-budget", type=float, default=600)
    p.add_argument("--no-suite", action="store_true")
    a = p.parse_args(argv)
    if a.replay:
        bench_replay(a.bench, a.replay)
    if a.verify:
        bench_verify(list(zip(a.verify[::2], a.verify[1::2])), a.verify_budget)
    if not a.no_suite:
        bench_suite(
            a.bench, a.results, a.limit, [int(w) for w in a.workers.split(",")], a.timeout, a.budget
        )


if __name__ == "__main__":
    sys.exit(main())
