"""Benchmark (issue 13): synthetic models of the sizes of the VNN-COMP instances in the issue's
table (random float32 weights, no downloads), every tier, time and peak memory, beside the same
algorithm in plain numpy float64 (no rounding control) run in the same process.

    .venv/bin/python tests/benchmarks/bench_scale.py [--models mnist,eran9,...] [--tiers ...]
        [--repeat N] [--timeout S]

Models: ``mnist`` 784-256-256-10 ReLU; ``eran9`` 784-9×200-10 ReLU; ``sig6`` 784-6×200-10
Sigmoid; ``cifar_kw`` (oval21 cifar_base_kw: Conv 3→8 4×4/2, Conv 8→16 4×4/2, FC 1024→100→10);
``resnet`` (resnet_2b-like: Conv 3→8 3×3/2, two residual blocks, FC 1024→100→10);
``sri_resnet``, ``metaroom``, ``biasfield`` (the architectures of sri_resnet_a, metaroom 4cnn and
cifar_bias_field, see their builders). Input: L∞
ball of radius 2/255 around a random image. Tiers: ``ibp:exact``, ``ibp:dyadic``, ``ibp:fast``,
``ibp:interval``, ``crown:fast``, ``crown:dyadic``, ``crown:interval``, ``np:ibp``, ``np:crown``.

Each tier runs in a forked child (so peak memory is its own): the time is the minimum over
``--repeat`` runs after one warm-up run (wall clock and CPU time; "vs np" divides CPU
times; "first" is the warm-up, which includes building the
exact or float weight matrices); memory is the child's peak RSS growth (``ru_maxrss``) over
the parent's RSS at the fork. A tier slower than ``--timeout`` seconds is stopped and reported
as such. The machine is shared: figures are noisy, the load average is printed.

``crown:fast`` is a sound bound with float relaxation lines valid on the outer ends of the
float intermediate bounds (ReLU vectorised; Sigmoid lines per neuron, ``arb``-checked);
``np:crown`` is the same algorithm in plain float64 (ReLU chord and adaptive slope, Sigmoid
tangent/chord lines as ``Sigmoid.relax_one`` chooses them), with no rounding control.
"""

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread, as auto_LiRPA's figures
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", ".."))

from exactbounds.algorithms.crown import crown  # noqa: E402
from exactbounds.algorithms.ibp import ibp  # noqa: E402
from exactbounds.graph import Graph, Node  # noqa: E402
from exactbounds.inputsets import LpBall  # noqa: E402
from exactbounds.numbers import make_context  # noqa: E402
from exactbounds.operators.activations import Sigmoid  # noqa: E402
from exactbounds.operators.arithmetic import Add  # noqa: E402
from exactbounds.operators.base import AffineOp, PassThrough  # noqa: E402
from exactbounds.operators.conv import Conv2d  # noqa: E402
from exactbounds.operators.linear import Linear, LinearParams  # noqa: E402
from exactbounds.operators.relu import ReLU  # noqa: E402
from exactbounds.operators.reshape import Flatten, Reshape  # noqa: E402

EPS = 2 / 255


# -- models ----------------------------------------------------------------------------------
class Builder:
    """Sequential/residual graph builder with float32 random weights ~ N(0, 1/fan_in)."""

    def __init__(self, in_shape, seed=0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.k = [], 0
        self.in_dim = int(np.prod(in_shape))
        self.shape = tuple(in_shape)
        self.last = Graph.INPUT
        if len(in_shape) > 1:
            self.add(Reshape((self.in_dim,), self.shape))

    def add(self, op, inputs=None):
        name = f"{op.kind}{self.k}"
        self.k += 1
        self.nodes.append(Node(name, op, inputs or [self.last]))
        self.last = name
        self.shape = op.out_shape
        return name

    def conv(self, cout, k, stride, pad, frm=None, shape=None):
        shape = shape or self.shape
        cin = shape[0]
        w = (self.rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        b = (0.1 * self.rng.standard_normal(cout)).astype(np.float32)
        return self.add(Conv2d(w.tolist(), b.tolist(), shape, stride, pad), [frm or self.last])

    def fc(self, m):
        if len(self.shape) > 1:
            self.add(Flatten(self.shape))
        n = int(np.prod(self.shape))
        W = (self.rng.standard_normal((m, n)) / np.sqrt(n)).astype(np.float32)
        b = (0.1 * self.rng.standard_normal(m)).astype(np.float32)
        return self.add(Linear(LinearParams(W.tolist(), b.tolist(), name=f"fc{self.k}")))

    def act(self, cls=ReLU):
        return self.add(cls(self.shape))

    def graph(self):
        return Graph(self.in_dim, self.nodes)


def mlp(sizes, act=ReLU):
    b = Builder((sizes[0],))
    for k, m in enumerate(sizes[1:]):
        b.fc(m)
        if k < len(sizes) - 2:
            b.act(act)
    return b.graph()


def two_conv(in_shape, hidden, out):
    """Conv 3→8 4×4/2, Conv 8→16 4×4/2 (ReLUs), then FC → ``hidden`` → ReLU → ``out``."""
    b = Builder(in_shape)
    b.conv(8, 4, 2, 1)
    b.act()
    b.conv(16, 4, 2, 1)
    b.act()
    b.fc(hidden)
    b.act()
    b.fc(out)
    return b.graph()


def cifar_kw():
    """oval21 cifar_base_kw: ``two_conv`` on 3×32×32, FC 1024→100→10."""
    return two_conv((3, 32, 32), 100, 10)


def resnet():
    b = Builder((3, 32, 32))
    b.conv(8, 3, 2, 1)
    x = b.act()
    b.conv(8, 3, 1, 1)
    b.act()
    y = b.conv(8, 3, 1, 1)
    b.add(Add(b.shape), [y, x])
    x = b.act()
    s = b.shape
    b.conv(16, 3, 2, 1)
    b.act()
    y = b.conv(16, 3, 1, 1)
    sk = b.conv(16, 1, 2, 0, frm=x, shape=s)
    b.add(Add(b.shape), [y, sk])
    b.act()
    b.fc(100)
    b.act()
    b.fc(10)
    return b.graph()


def sri_resnet():
    """sri_resnet_a: Conv 3→16 3×3/2, three residual blocks (16→32→64→128, a 1×1/2 conv on the
    skip path), FC 512→100→10."""
    b = Builder((3, 32, 32))
    b.conv(16, 3, 2, 1)
    x = b.act()
    for c in (32, 64, 128):
        s = b.shape
        sk = b.conv(c, 1, 2, 0, frm=x, shape=s)
        b.conv(c, 3, 2, 1, frm=x, shape=s)
        b.act()
        y = b.conv(c, 3, 1, 1)
        b.add(Add(b.shape), [sk, y])
        x = b.act()
    b.fc(100)
    b.act()
    b.fc(10)
    return b.graph()


def metaroom():
    """metaroom 4cnn: Conv 3→8 4×4/2 and 8→16 4×4/2 on a 3×32×56 input, FC 1792→256→20."""
    return two_conv((3, 32, 56), 256, 20)


def biasfield():
    """cifar_biasfield: Gemm 16→3072 (the bias field), then eight convolutions (16, 32, 32, 64,
    64, 128, 128 channels; stride 2 every other) and a 4×4 conv to 10 outputs."""
    b = Builder((16,))
    b.fc(3072)
    b.add(Reshape((3072,), (3, 32, 32)))
    for c, s in ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1)):
        b.conv(c, 3, s, 1)
        b.act()
    b.conv(10, 4, 1, 0)
    b.add(Flatten(b.shape))
    return b.graph()


MODELS = {
    "mnist": lambda: mlp([784, 256, 256, 10]),
    "eran9": lambda: mlp([784] + [200] * 9 + [10]),
    "sig6": lambda: mlp([784] + [200] * 6 + [10], Sigmoid),
    "cifar_kw": cifar_kw,
    "resnet": resnet,
    "sri_resnet": sri_resnet,
    "metaroom": metaroom,
    "biasfield": biasfield,
}


# -- the numpy float64 reference (same algorithms, no rounding control) ----------------------
# Affine nodes with a structured map (convolutions, index maps, Add, pooling) use the same
# structured operations on plain floats; dense ones their float matrices. CROWN follows the
# driver: intermediate bounds only for the rows IBP leaves unstable (nodes of at least
# ``SPARSE_MIN`` entries read only by ReLUs), backward passes in row chunks.
def np_params(g):
    """Float coefficients of every affine node (built once, outside the timing):
    ``("lin", [(part, K, |K|)], b)`` or ``("dense", [W], b)``."""
    from exactbounds.linalg.fast import q_mat_ball
    from exactbounds.linalg.structured import ChainPart

    def kern(part):
        if isinstance(part, ChainPart):
            return [kern(p) for p in part.parts]
        K = part.float_kernel(q_mat_ball)[0]
        A = None if K is None else ([np.abs(k) for k in K] if isinstance(K, list) else np.abs(K))
        return K, A

    out = {}
    for node in g.nodes:
        op = node.op
        if not isinstance(op, AffineOp):
            continue
        lin = op.linear_map()
        if lin is not None:
            out[node.name] = ("lin", [(p, kern(p)) for p in lin.parts], _f64(lin.b).ravel())
        else:
            Ws, b = op.linear_params()
            out[node.name] = ("dense", [np.array(_f64(W)) for W in Ws], np.array(_f64(b)).ravel())
    return out


def _f64(M):
    from exactbounds.linalg.fast import q_mat_ball

    return q_mat_ball(M)[0]


def _back(part, K, X):
    """``X·W`` on floats (a chain applies its parts in order)."""
    from exactbounds.linalg.structured import ChainPart

    if isinstance(part, ChainPart):
        for p, k in zip(part.parts, K):
            X = _back(p, k, X)
        return X
    return part.back(X, K[0])


def _fwd(part, K, x, absolute=False):
    """``W·x`` (``|W|·x``) for a vector ``x`` on floats."""
    from exactbounds.linalg.structured import ChainPart

    if isinstance(part, ChainPart):
        for p, k in reversed(list(zip(part.parts, K))):
            x = _fwd(p, k, x, absolute)
        return x
    got = part.fwd(x[None, :], K[1] if absolute else K[0])[0]
    return np.abs(got) if absolute and K[0] is None else got


def np_ibp(g, P, lo, hi, every=False, known=None):
    """IBP; ``known``: bounds of some nodes that replace theirs (as the driver's reference
    starts from the bounds stored so far)."""
    vals = {Graph.INPUT: (lo, hi)}
    for node in g.nodes:
        ins = [vals[i] for i in node.inputs]
        op = node.op
        if known and node.name in known:
            vals[node.name] = known[node.name]
        elif node.name in P:
            kind, Ws, b = P[node.name]
            m, r = b.copy(), np.zeros_like(b)
            for W, (l, h) in zip(Ws, ins):
                c, d = (l + h) / 2, (h - l) / 2
                if kind == "lin":
                    m, r = m + _fwd(*W, c), r + _fwd(*W, d, True)
                else:
                    m, r = m + W @ c, r + np.abs(W) @ d
            vals[node.name] = (m - r, m + r)
        elif isinstance(op, ReLU):
            vals[node.name] = (np.maximum(ins[0][0], 0), np.maximum(ins[0][1], 0))
        elif isinstance(op, Sigmoid):
            s = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
            vals[node.name] = (s(ins[0][0]), s(ins[0][1]))
        elif isinstance(op, PassThrough):
            vals[node.name] = ins[0]
        else:
            raise NotImplementedError(op.kind)
    return vals if every else vals[g.output]


def _np_relax(l, u):
    act, dead = l >= 0, u <= 0
    unst = ~act & ~dead
    d = np.where(unst, u - l, 1.0)
    us = np.where(unst, u / d, np.where(act, 1.0, 0.0))
    ub = np.where(unst, -us * l, 0.0)
    ls = np.where(act, 1.0, np.where(unst, (u > -l).astype(float), 0.0))
    return ls, np.zeros_like(l), us, ub


def _sig(x):
    return 0.5 * (1 + np.tanh(x / 2))


def _np_sig_upper(l, u):
    """The upper line of σ on ``[l, u]`` as ``Sigmoid.relax_one`` chooses it (chord on the
    convex side, tangent at the midpoint on the concave side, across 0 the tangent through
    ``(l, σ(l))`` found by bisection, or the chord when that tangent point lies beyond u)."""
    fl, fu = _sig(l), _sig(u)
    d = np.where(u > l, u - l, 1.0)
    cs = np.where(u > l, (fu - fl) / d, 0.0)
    cb = np.maximum(fl - cs * l, fu - cs * u)
    m = (l + u) / 2
    fm = _sig(m)
    ts = fm * (1 - fm)
    tb = fm - ts * m

    def gap(t):
        ft = _sig(t)
        return ft + ft * (1 - ft) * (l - t) - fl

    a, b = np.zeros_like(u), np.maximum(u, 0.0)
    for _ in range(60):
        c = (a + b) / 2
        pos = gap(c) > 0
        a, b = np.where(pos, a, c), np.where(pos, c, b)
    fd = _sig(b)
    xs = fd * (1 - fd)
    xb = np.maximum(fd - xs * b, fl - xs * l)
    cross_chord = gap(np.maximum(u, 0.0)) <= 0
    s = np.where(u <= 0, cs, np.where(l >= 0, ts, np.where(cross_chord, cs, xs)))
    b_ = np.where(u <= 0, cb, np.where(l >= 0, tb, np.where(cross_chord, cb, xb)))
    return s, b_


def _np_sig_relax(l, u):
    us, ub = _np_sig_upper(l, u)
    ls, lb = _np_sig_upper(-u, -l)  # the upper line of the reflection σ(x) = 1 − σ(−x)
    return ls, 1 - lb, us, ub


def np_crown(g, P, lo, hi):
    """CROWN over the graph (ReLU/Sigmoid and affine/pass-through nodes), as the driver does
    it."""
    from exactbounds.algorithms.crown import CHUNK_ENTRIES, SPARSE_MIN

    order = {n.name: k for k, n in enumerate(g.nodes)}
    dims = {n.name: n.op.out_dim for n in g.nodes}
    widest = max(list(dims.values()) + [g.input_dim])
    rel, mid, rad = {}, (lo + hi) / 2, (hi - lo) / 2
    stored = {}

    def backward(target, rows):
        m = len(rows)
        start = np.zeros((m, dims[target]))
        start[np.arange(m), rows] = 1.0
        lam = {target: (start, start)}
        bL, bU = np.zeros(m), np.zeros(m)
        for node in reversed(g.nodes[: order[target] + 1]):
            if node.name not in lam:
                continue
            LL, LU = lam.pop(node.name)
            if node.name in P:
                kind, Ws, b = P[node.name]
                bL, bU = bL + LL @ b, bU + LU @ b
                if kind == "lin":
                    news = [(_back(*W, LL), _back(*W, LU)) for W in Ws]
                else:
                    news = [(LL @ W, LU @ W) for W in Ws]
            elif node.op.needs_bounds:
                ls, lb, us, ub = rel[node.name]
                Pl, Nl = np.maximum(LL, 0), np.minimum(LL, 0)
                Pu, Nu = np.maximum(LU, 0), np.minimum(LU, 0)
                bL, bU = bL + Pl @ lb + Nl @ ub, bU + Pu @ ub + Nu @ lb
                news = [(Pl * ls + Nl * us, Pu * us + Nu * ls)]
            else:
                news = [(LL, LU)]
            for inp, (a, c) in zip(node.inputs, news):
                if inp in lam:
                    lam[inp] = (lam[inp][0] + a, lam[inp][1] + c)
                else:
                    lam[inp] = (a, c)
        LA, UA = lam[Graph.INPUT]
        return LA @ mid - np.abs(LA) @ rad + bL, UA @ mid + np.abs(UA) @ rad + bU

    def bounds(name):
        l, u = np_ibp(g, P, lo, hi, every=True, known=stored)[name]
        l, u = l.copy(), u.copy()
        readers = [n for n in g.nodes if name in n.inputs]
        sparse = dims[name] >= SPARSE_MIN and all(isinstance(n.op, ReLU) for n in readers)
        rows = np.nonzero((l < 0) & (u > 0))[0] if sparse else np.arange(dims[name])
        size = max(1, CHUNK_ENTRIES // widest)
        for k in range(0, len(rows), size):
            part = rows[k : k + size]
            l[part], u[part] = backward(name, part)
        return l, u

    for node in g.nodes:
        if node.op.needs_bounds:
            relax = _np_sig_relax if isinstance(node.op, Sigmoid) else _np_relax
            stored[node.inputs[0]] = bounds(node.inputs[0])
            rel[node.name] = relax(*stored[node.inputs[0]])
    return backward(g.output, np.arange(dims[g.output]))


# -- timing in a child process ---------------------------------------------------------------
def _rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _child(fn, repeat, q):
    try:
        base = _rss_kb()
        t = time.perf_counter()
        out = fn()
        first = time.perf_counter() - t
        best, cpu = first, None
        for _ in range(repeat):
            t, c = time.perf_counter(), time.process_time()
            out = fn()
            c = time.process_time() - c
            best = min(best, time.perf_counter() - t)
            cpu = c if cpu is None else min(cpu, c)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        q.put((first, best, max(peak - base, 0) / 1024, out, best if cpu is None else cpu))
    except Exception as e:  # report, do not hang the parent
        q.put(("error", f"{type(e).__name__}: {e}"))


def measure(fn, repeat, timeout):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, repeat, q))
    p.start()
    try:
        got = q.get(timeout=timeout)
    except Exception:
        got = ("timeout", f"> {timeout} s")
    p.join(1)
    if p.is_alive():
        p.kill()
        p.join()
    return got


def width_of(out):
    lo, hi = out
    return float(np.max(np.asarray(hi) - np.asarray(lo)))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument(
        "--tiers",
        default="np:ibp,np:crown,ibp:fast,crown:fast,ibp:exact,"
        "ibp:dyadic,ibp:interval,crown:dyadic,crown:interval",
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args(argv)
    load0 = os.getloadavg()
    rows = []
    for name in a.models.split(","):
        g = MODELS[name]()
        rng = np.random.default_rng(1)
        x0 = rng.random(g.input_dim).astype(np.float32).astype(np.float64)
        S = LpBall(x0.tolist(), EPS, "inf")
        lo64, hi64 = x0 - EPS, x0 + EPS
        P = np_params(g)
        for tier in a.tiers.split(","):
            method, mode = tier.split(":")
            if method == "np":
                fn = (
                    (lambda g=g, P=P, lo=lo64, hi=hi64: np_ibp(g, P, lo, hi))
                    if mode == "ibp"
                    else (lambda g=g, P=P, lo=lo64, hi=hi64: np_crown(g, P, lo, hi))
                )
            else:
                ctx = make_context(mode, bits=64 if mode == "dyadic" else None)

                def fn(method=method, ctx=ctx, g=g, S=S):
                    box = ibp(g, S, ctx) if method == "ibp" else crown(g, S, ctx).output
                    lo, hi = box.outer(ctx)
                    return [float(v) for v in lo], [float(v) for v in hi]

            got = measure(fn, a.repeat, a.timeout)
            if got[0] in ("error", "timeout"):
                rows.append((name, tier, None, None, None, got[1], None))
            else:
                first, best, mem, out, cpu = got
                rows.append((name, tier, first, best, mem, f"{width_of(out):.3g}", cpu))
            r = rows[-1]
            print(
                f"  {name:>9} {tier:>15} "
                + (
                    f"first {r[2]:8.3f} s  min {r[3]:8.4f} s  cpu {r[6]:8.4f} s  "
                    f"mem {r[4]:7.1f} MB  width {r[5]}"
                    if r[2] is not None
                    else r[5]
                ),
                flush=True,
            )
    print(
        "\nload average (1, 5, 15 min): before "
        + " ".join(f"{v:.2f}" for v in load0)
        + ", after "
        + " ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    print(
        f"{'model':>9} {'tier':>15} {'first s':>9} {'min s':>9} {'min cpu':>9} {'MB':>7} "
        f"{'vs np':>7} {'width':>10}"
    )
    ref = {
        (r[0], r[1].split(":")[0] if not r[1].startswith("np") else r[1].split(":")[1]): r[6]
        for r in rows
        if r[1].startswith("np") and r[6] is not None
    }
    for name, tier, first, best, mem, w, cpu in rows:
        meth = tier.split(":")[1] if tier.startswith("np") else tier.split(":")[0]
        base = ref.get((name, meth))
        ratio = f"{cpu / base:7.1f}" if cpu is not None and base else "      -"
        if first is None:
            print(f"{name:>9} {tier:>15} {'':>9} {'':>9} {'':>9} {'':>7} {ratio} {w:>10}")
        else:
            print(
                f"{name:>9} {tier:>15} {first:9.3f} {best:9.4f} {cpu:9.4f} {mem:7.1f} {ratio} "
                f"{w:>10}"
            )


if __name__ == "__main__":
    main()
