"""Benchmark: IBP and CROWN over VNN-COMP instances (a benchmark folder's ``instances.csv``).

    .venv/bin/python tests/benchmarks/bench_vnncomp.py DIR... [--limit N] [--timeout S]
        [--mode dyadic] [--crown-mode fast] [--no-crown] [--points K]

One line per instance, printed as it finishes: load time, IBP time, CROWN time (or the one-line
reason it did not run), peak memory (the child process's max RSS), whether the property is
proved by the IBP / CROWN output box (and the mode CROWN ended in when it escalated), and how
many of ``K`` random points of the input box have
their onnxruntime (float32) outputs inside the IBP bounds (to 1e-4 relative: float32 rounding).
Each instance runs in its own subprocess with a wall-clock budget (``--timeout``, default 300 s);
``.onnx.gz`` and ``.vnnlib.gz`` are read directly. The machine is shared: timings are noisy.
"""

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread, as auto_LiRPA's figures
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, ROOT)


def _find(d, rel):
    p = os.path.join(d, rel)
    if os.path.exists(p):
        return p
    if os.path.exists(p + ".gz"):
        return p + ".gz"
    if p.endswith(".gz") and os.path.exists(p[:-3]):
        return p[:-3]
    return p


def _ort_points(onnx_path, model, k, lo, hi):
    """How many of ``k`` random points of the input box have onnxruntime outputs inside
    ``[lo, hi]`` (to 1e-4 relative), as ``"inside/k"``; ``""`` without onnxruntime."""
    try:
        import gzip

        import numpy as np
        import onnxruntime as ort
    except ImportError:
        return ""
    data = (
        gzip.open(onnx_path).read() if onnx_path.endswith(".gz") else open(onnx_path, "rb").read()
    )
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    S = model.input_set
    a = np.array([float(v) for v in S.lo])
    b = np.array([float(v) for v in S.hi])
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
    dtype = np.float64 if inp.type == "tensor(double)" else np.float32
    rng = np.random.default_rng(0)
    lo, hi = np.array([float(v) for v in lo]), np.array([float(v) for v in hi])
    good = 0
    for _ in range(k):
        x = (a + (b - a) * rng.random(a.size)).astype(dtype).reshape(shape)
        y = sess.run(None, {inp.name: x})[0].astype(np.float64).ravel()
        tol = 1e-4 * (1 + np.abs(y))
        good += bool(np.all(y >= lo - tol) and np.all(y <= hi + tol))
    return f"{good}/{k}"


def _emit(out):
    r = dict(out, mem_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    print(json.dumps(r), flush=True)


def one(onnx_path, vnnlib_path, mode, do_crown, points, crown_mode=None):
    """Run one instance in this process; returns a dict (printed as JSON by the child)."""
    from exactbounds.algorithms.crown import crown
    from exactbounds.algorithms.ibp import ibp
    from exactbounds.errors import ExactBoundsError
    from exactbounds.io.load import load_model
    from exactbounds.numbers import make_context

    out = {}
    t = time.perf_counter()
    try:
        model = load_model(onnx_path, vnnlib_path)
    except ExactBoundsError as e:
        out["load"] = f"error: {e}"
        return out
    out["load"] = round(time.perf_counter() - t, 2)
    g = model.graph
    out["nodes"] = len(g.nodes)
    out["inputs"] = g.input_dim
    ctx = make_context(mode)
    prop = model.spec.output
    t = time.perf_counter()
    try:
        box = ibp(g, model.input_set, ctx)
        out["ibp"] = round(time.perf_counter() - t, 2)
        lo, hi = box.outer(ctx)
        out["ibp_proved"] = (not prop.trivial) and bool(prop.proved_by_box(lo, hi))
        if points:
            out["ort_in_ibp"] = _ort_points(onnx_path, model, points, lo, hi)
    except ExactBoundsError as e:
        out["ibp"] = f"error: {e}"
    _emit(out)  # the IBP figures survive a CROWN that runs out of time
    if do_crown:
        t = time.perf_counter()
        try:
            cctx = make_context(crown_mode) if crown_mode else ctx
            res = crown(g, model.input_set, cctx)
            out["crown"] = round(time.perf_counter() - t, 2)
            if res.mode != cctx.mode:
                out["crown_mode"] = res.mode  # escalated (AmbiguousBranch)
            lo, hi = res.output.outer(res.ctx)
            out["crown_proved"] = (not prop.trivial) and bool(prop.proved_by_box(lo, hi))
        except ExactBoundsError as e:
            out["crown"] = f"error: {e}"
    return out


def instances(d, limit):
    with open(os.path.join(d, "instances.csv")) as f:
        rows = [r for r in csv.reader(f) if r and len(r) >= 2]
    return [(_find(d, r[0].strip()), _find(d, r[1].strip())) for r in rows[:limit]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--limit", type=int, default=1, help="instances per folder (default 1)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--mode", default="dyadic")
    ap.add_argument("--crown-mode", default=None, help="CROWN's mode (default: --mode)")
    ap.add_argument("--no-crown", action="store_true")
    ap.add_argument("--points", type=int, default=3)
    ap.add_argument("--one", nargs=2, metavar=("ONNX", "VNNLIB"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        _emit(one(*a.one, a.mode, not a.no_crown, a.points, a.crown_mode))
        return 0
    print(
        f"{'family':28} {'load s':>7} {'nodes':>5} {'IBP s':>7} {'CROWN s':>8} {'MB':>6} "
        f"proved(IBP/CROWN)  ort-in-IBP  note"
    )
    for d in a.dirs:
        fam = os.path.basename(os.path.normpath(d))
        for onnx_path, vnn in instances(d, a.limit):
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--one",
                onnx_path,
                vnn,
                "--mode",
                a.mode,
                "--points",
                str(a.points),
            ]
            cmd += ["--no-crown"] if a.no_crown else []
            cmd += ["--crown-mode", a.crown_mode] if a.crown_mode else []
            t = time.perf_counter()
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
                last = (p.stdout.strip().splitlines() or [""])[-1]
                r = (
                    json.loads(last)
                    if last.startswith("{")
                    else {"load": "crash: " + (p.stderr.strip().splitlines() or ["?"])[-1][:150]}
                )
            except subprocess.TimeoutExpired as e:
                part = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
                lines = [v for v in part.splitlines() if v.startswith("{")]
                r = json.loads(lines[-1]) if lines else {}
                what = "crown" if "ibp" in r else ("ibp" if "load" in r else "load")
                r[what] = f"timeout after {a.timeout:.0f} s"
            note = "; ".join(
                str(r[k]) for k in ("load", "ibp", "crown") if isinstance(r.get(k), str)
            )[:200] + (f" (CROWN escalated to {r['crown_mode']})" if "crown_mode" in r else "")

            def f(k, r=r):
                v = r.get(k)
                return f"{v:.2f}" if isinstance(v, (int, float)) else "-"

            proved = f"{r.get('ibp_proved', '-')}/{r.get('crown_proved', '-')}"
            print(
                f"{fam:28} {f('load'):>7} {r.get('nodes', '-'):>5} {f('ibp'):>7} "
                f"{f('crown'):>8} {r.get('mem_mb', '-'):>6} {proved:17}  "
                f"{r.get('ort_in_ibp', '-'):10}  {note}  "
                f"[{time.perf_counter() - t:.0f} s wall]",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
