"""Structured CROWN steps (``exactbounds/linalg/structured.py``): for convolutions (stride,
padding, dilation, groups), ConvTranspose, average pooling, index maps (Transpose, Slice, Concat,
Pad, Gather with repeated indices), Add/Sub/Scale and sparse matrices, the exact backends give
exactly ``Λ·W`` of the dense matrix, and the fast backend's balls contain it; whole CROWN runs
on small CNNs and ResNets give the same result with and without the structured steps (exact),
and the fast runs hold the network's exact outputs at random points."""

import random

import numpy as np
import pytest
from flint import fmpq, fmpq_mat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms import crown as crown_mod
from exactbounds.algorithms.crown import crown
from exactbounds.algorithms.ibp import evaluate
from exactbounds.graph import Graph, Node
from exactbounds.inputsets import LpBall, sample, vertices
from exactbounds.io.onnx_ops import conv_transpose_as_conv
from exactbounds.linalg import QBackend, ZBackend, structured
from exactbounds.linalg.backends import as_q
from exactbounds.linalg.fast import FastBackend
from exactbounds.numbers import RationalContext, make_context
from exactbounds.operators.arithmetic import Add, Scale, Sub
from exactbounds.operators.base import AffineOp
from exactbounds.operators.conv import Conv2d
from exactbounds.operators.indexmap import IndexMap, ids_for
from exactbounds.operators.linear import Linear
from exactbounds.operators.matrix import MatrixOp
from exactbounds.operators.pool import AveragePool
from exactbounds.operators.relu import ReLU
from exactbounds.operators.reshape import Flatten, Reshape

SET = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXACT = RationalContext(128)
FAST = make_context("fast")
weight = st.one_of(
    st.integers(-8, 8).map(lambda k: fmpq(k, 4)),
    st.sampled_from([fmpq(1, 3), fmpq(-5, 7)]),
)


@pytest.fixture(autouse=True)
def structured_everywhere(monkeypatch):
    """The exact backends take the structured product even for small convolutions."""
    monkeypatch.setattr(structured, "EXACT_DENSE_LIMIT", 0)


def q(v):
    return fmpq(*float(v).as_integer_ratio())


@st.composite
def conv_op(draw):
    G = draw(st.sampled_from([1, 1, 2]))
    C, cout = G * draw(st.integers(1, 2)), G * draw(st.integers(1, 2))
    k = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2))
    H, W = draw(st.integers(d * (k - 1) + 1, 6)), draw(st.integers(d * (k - 1) + 1, 6))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    w = [
        [[[draw(weight) for _ in range(k)] for _ in range(k)] for _ in range(C // G)]
        for _ in range(cout)
    ]
    return Conv2d(w, [draw(weight) for _ in range(cout)], (C, H, W), s, pads, d, G)


@st.composite
def pool_op(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pads = [draw(st.integers(0, k[i % 2] - 1)) for i in range(4)]
    shape = (draw(st.integers(1, 2)), draw(st.integers(k[0], 6)), draw(st.integers(k[1], 6)))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    return AveragePool(shape, k, s, pads, draw(st.booleans()))


@st.composite
def index_op(draw):
    """Transpose, Slice, Pad (constants), Concat of two inputs and a constant, Gather with
    repeated indices: the maps of ``io/onnx_ops.py``, built from entry ids with numpy."""
    a, b = ids_for([(2, 3, 2), (2, 3, 2)])
    kind = draw(st.sampled_from(["transpose", "slice", "pad", "concat", "gather"]))
    consts = [fmpq(7, 3)]
    if kind == "transpose":
        return IndexMap([(2, 3, 2)], (2, 2, 3), a.transpose(2, 0, 1).ravel())
    if kind == "slice":
        return IndexMap([(2, 3, 2)], (2, 2, 1), a[:, 1:, ::2].ravel())
    if kind == "pad":
        out = np.pad(a, ((0, 0), (1, 0), (0, 1)), constant_values=-1)
        return IndexMap([(2, 3, 2)], out.shape, out.ravel(), consts)
    if kind == "concat":
        out = np.concatenate([a, b, np.full((2, 3, 2), -1)], axis=1)
        return IndexMap([(2, 3, 2), (2, 3, 2)], out.shape, out.ravel(), consts)
    idx = draw(st.lists(st.integers(0, 2), min_size=1, max_size=5))
    out = np.take(a, idx, axis=1)
    return IndexMap([(2, 3, 2)], out.shape, out.ravel())


@st.composite
def diag_op(draw):
    n = draw(st.integers(1, 5))
    kind = draw(st.sampled_from(["add", "sub", "scale", "addc"]))
    if kind == "add":
        return Add((n,))
    if kind == "sub":
        return Sub((n,))
    if kind == "addc":
        return Add((n,), [draw(weight) for _ in range(n)])
    return Scale((n,), [draw(weight) for _ in range(n)], [draw(weight) for _ in range(n)])


@st.composite
def sparse_op(draw):
    r, c = draw(st.integers(1, 4)), draw(st.integers(12, 20))
    M = fmpq_mat(r, c)
    for i in range(r):
        for j in draw(st.lists(st.integers(0, c - 1), max_size=1)):
            M[i, j] = draw(weight)
    return MatrixOp([(c,)], (r,), [M], kind="reduce")


def functional(draw, m, n, dyadic):
    vals = st.integers(-40, 40).map(lambda k: fmpq(k, 8))
    if not dyadic:
        vals = st.one_of(vals, st.sampled_from([fmpq(1, 3), fmpq(-2, 9)]))
    return fmpq_mat(m, n, [draw(vals) for _ in range(m * n)])


def check_parts(op, lam):
    """Every backend's structured ``Λ·W_k`` against the dense product."""
    lin = op.linear_map()
    assert lin is not None
    Ws, b = op.linear_params()
    assert as_q(lin.b) == as_q(b)
    fb = FastBackend()
    for part, W in zip(lin.parts, Ws):
        dense = lam * as_q(W)
        for be in (QBackend(), ZBackend()):
            assert as_q(be.lin_rmul(be.mat(lam), part)) == dense
        got = fb.lin_rmul(fb.mat(lam), part)
        lo, hi = got.ends()
        for (i, j), v in np.ndenumerate(lo):
            assert q(v) <= dense[i, j] <= q(hi[i, j]), (i, j)


@SET
@given(st.data())
def test_structured_steps_equal_the_dense_product(data):
    op = data.draw(st.one_of(conv_op(), pool_op(), index_op(), diag_op(), sparse_op()))
    m = data.draw(st.integers(1, 3))
    lam = functional(data.draw, m, op.out_dim, data.draw(st.booleans()))
    check_parts(op, lam)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_conv_transpose_structured(data):
    """ONNX ConvTranspose = a spreading index map, then a convolution: both structured."""
    C, G = 2, data.draw(st.sampled_from([1, 2]))
    k = data.draw(st.integers(1, 3))
    W = np.array(
        [
            [[[data.draw(weight) for _ in range(k)] for _ in range(k)] for _ in range(2)]
            for _ in range(C)
        ],
        dtype=object,
    )
    s = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    spread, conv = conv_transpose_as_conv(
        W, None, (C, 3, 2), s, (0, 0, 0, 0), (1, 1), G, (0, 0), "ct"
    )
    for op in (spread, conv):
        check_parts(op, functional(data.draw, 2, op.out_dim, True))


def test_gather_with_repeats_rounds_soundly():
    """A column read twice sums two entries: in the fast backend a rounded sum, enclosed."""
    a = ids_for([(3,)])[0]
    op = IndexMap([(3,)], (4,), a[[0, 0, 2, 0]])
    lam = fmpq_mat(1, 4, [fmpq(1), fmpq(2) ** -60, fmpq(1, 3), fmpq(2) ** -60])
    check_parts(op, lam)


# -- whole CROWN runs ------------------------------------------------------------------------
@st.composite
def cnn(draw):
    """Reshape, Conv (stride/padding/dilation/groups), ReLU, AvgPool, a residual Add of two conv
    paths, Transpose/Pad index maps, Flatten, Linear."""
    rng = random.Random(draw(st.integers(0, 10**6)))

    def w(*shape):
        if len(shape) == 1:
            return [fmpq(rng.randint(-8, 8), 8) for _ in range(shape[0])]
        return [w(*shape[1:]) for _ in range(shape[0])]

    nodes = [Node("r", Reshape((16,), (1, 4, 4)), [Graph.INPUT])]
    nodes.append(Node("c1", Conv2d(w(2, 1, 3, 3), w(2), (1, 4, 4), 1, 1), ["r"]))
    nodes.append(Node("a1", ReLU((2, 4, 4)), ["c1"]))
    nodes.append(Node("c2", Conv2d(w(2, 1, 2, 2), w(2), (2, 4, 4), 1, (0, 0, 1, 1), 1, 2), ["a1"]))
    nodes.append(Node("c3", Conv2d(w(2, 2, 3, 3), w(2), (2, 4, 4), 1, 2, 2), ["a1"]))
    nodes.append(Node("s", Add((2, 4, 4)), ["c2", "c3"]))
    nodes.append(Node("a2", ReLU((2, 4, 4)), ["s"]))
    ids = ids_for([(2, 4, 4)])[0]
    tr = np.pad(ids.transpose(0, 2, 1), ((0, 0), (1, 0), (0, 0)), constant_values=-1)
    nodes.append(Node("t", IndexMap([(2, 4, 4)], tr.shape, tr.ravel(), [fmpq(1, 2)]), ["a2"]))
    nodes.append(Node("p", AveragePool(tr.shape, 2, 1, (1, 0, 0, 1)), ["t"]))
    nodes.append(Node("f", Flatten(nodes[-1].op.out_shape), ["p"]))
    n = nodes[-1].op.out_dim
    nodes.append(Node("l", Linear.from_weights(w(3, n), w(3)), ["f"]))
    return Graph(16, nodes)


def dense_only(monkeypatch):
    monkeypatch.setattr(AffineOp, "linear_map", lambda self: None)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_crown_structured_equals_dense_exact(data):
    g = data.draw(cnn())
    x0 = [fmpq(data.draw(st.integers(-4, 4)), 4) for _ in range(16)]
    S = LpBall(x0, fmpq(1, 8), "inf")
    got = crown(g, S, EXACT)
    with pytest.MonkeyPatch.context() as mp:
        dense_only(mp)
        ref = crown(g, S, EXACT)
    assert got.output.lo == ref.output.lo and got.output.hi == ref.output.hi
    assert got.lA == ref.lA and got.ub == ref.ub


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_crown_holds_exact_outputs(data):
    """Fast CROWN (with the sparse, chunked passes forced on: every node, chunks of 3 rows)
    holds the exact outputs at random points and vertices of the input set."""
    g = data.draw(cnn())
    x0 = [fmpq(data.draw(st.integers(-4, 4)), 4) for _ in range(16)]
    S = LpBall(x0, fmpq(1, 8), "inf")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(crown_mod, "SPARSE_MIN", 1)
        mp.setattr(crown_mod, "CHUNK_ENTRIES", 3 * 64)
        res = crown(g, S, FAST)
    pts = sample(S, random.Random(0), 4) + vertices(S, 4)
    for x in pts:
        y = evaluate(g, x, EXACT)
        for v, lo, hi in zip(y, res.output.lo, res.output.hi):
            assert res.ctx.lower(lo) <= v <= res.ctx.upper(hi)


def test_sparse_rows_keep_ibp_for_stable_neurons(monkeypatch):
    """With every neuron stable under IBP no backward pass starts from the node, and the result
    says that the fast run used IBP there (a sound bound). (The first layer takes IBP by the
    first-affine rule; the sparse rule acts on the second.)"""
    monkeypatch.setattr(crown_mod, "SPARSE_MIN", 1)
    g = Graph.sequential(
        2,
        [
            Linear.from_weights([[1, 0], [0, 1]], [5, -5]),
            ReLU(2),
            Linear.from_weights([[1, 1], [0, 1]], [0, 0]),
            ReLU(2),
            Linear.from_weights([[1, 1]], [0]),
        ],
    )
    S = LpBall([fmpq(0), fmpq(0)], fmpq(1), "inf")
    res = crown(g, S, FAST)
    assert res.status == "bound"
    assert any("IBP leaves unstable" in n for n in res.notes)
    lo, hi = res.output.lo[0], res.output.hi[0]
    assert res.ctx.lower(lo) <= 4 and res.ctx.upper(hi) >= 6


# -- budgets ---------------------------------------------------------------------------------
def _cli(*args):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "exactbounds.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _long_net(tmp_path, depth=8, n=120):
    """A ReLU network whose dyadic CROWN takes many seconds (the 0/1 patterns keep it busy)."""
    import json

    layers = []
    for _ in range(depth):
        w = [[(i * 7 + j * 3) % 11 - 5 for j in range(n)] for i in range(n)]
        layers += [{"type": "linear", "weight": w}, {"type": "relu"}]
    p = tmp_path / "long.json"
    p.write_text(json.dumps({"input_lo": [0] * n, "input_hi": ["1/3"] * n, "layers": layers}))
    return str(p)


def _big_conv_onnx(tmp_path):
    """Conv 3→8 (3×3, padding 1) on a 3×32×32 input, ReLU, Flatten, Gemm to 2 outputs: its
    dense convolution matrix has 25 million entries."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal((2, 8192)).astype(np.float32) / 90, "F"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("Gemm", ["f", "F"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        inits,
    )
    path = tmp_path / "big.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    spec = tmp_path / "big.vnnlib"
    lines = [f"(declare-const X_{i} Real)" for i in range(3072)] + [
        "(declare-const Y_0 Real)",
        "(declare-const Y_1 Real)",
    ]
    for i in range(3072):
        lines += [f"(assert (>= X_{i} 0.5))", f"(assert (<= X_{i} 0.51))"]
    lines.append("(assert (>= Y_0 Y_1))")
    spec.write_text("\n".join(lines))
    return str(path), str(spec)


def test_dyadic_crown_over_the_memory_budget_says_use_fast(tmp_path):
    """Dyadic CROWN on a model whose exact matrices exceed --max-memory stops before it starts:
    one line, exit 2, naming --mode fast; the fast mode runs it within the same budget."""
    net, spec = _big_conv_onnx(tmp_path)
    args = ["bounds", net, "--spec", spec, "--method", "crown", "--max-memory", "1"]
    p = _cli(*args, "--mode", "dyadic")
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "--mode fast" in lines[0] and "--max-memory" in lines[0]
    p = _cli(*args, "--mode", "fast", "--json")
    assert p.returncode == 0, p.stderr


def test_dyadic_crown_over_the_time_budget_says_use_fast(tmp_path):
    """A dyadic CROWN run over --timeout stops with one line, exit 2, naming --mode fast."""
    p = _cli(
        "bounds", _long_net(tmp_path), "--method", "crown", "--mode", "dyadic", "--timeout", "1"
    )
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "--mode fast" in lines[0] and "Traceback" not in p.stderr


def test_fast_zeros_stay_exact_and_tiny_products_are_enclosed():
    """A zero row of Λ maps to an exactly zero row (radius 0: its signs stay decided); entries
    whose products underflow (2^-1000 times 2^-100) are still enclosed."""
    w = [[[[fmpq(1, 2**100), fmpq(3, 4)], [fmpq(-1, 8), fmpq(5, 2)]]] for _ in range(2)]
    op = Conv2d(w, None, (1, 4, 4), 1, 1)
    n = op.out_dim
    check_parts(op, fmpq_mat(2, n, [fmpq(k - 3, 2**1000) for k in range(n)] + [1] * n))
    w[0][0][0][0] = w[1][0][0][0] = fmpq(1, 16)
    op = Conv2d(w, None, (1, 4, 4), 1, 1)
    lam = fmpq_mat(2, n, [0] * n + [fmpq(k - 3, 7) for k in range(n)])
    check_parts(op, lam)
    fb = FastBackend()
    got = fb.lin_rmul(fb.mat(lam), op.linear_map().parts[0])
    assert not got.mid[0].any() and (got.rad is None or not got.rad[0].any())


@SET
@given(st.data())
def test_fast_ibp_of_pooling_and_index_maps_encloses_exact_ibp(data):
    """``ibp_fast`` of AveragePool and index maps: each exact IBP end lies in its float
    interval."""
    from exactbounds.core import Box
    from exactbounds.linalg.fast_ibp import fbox_from_box

    op = data.draw(st.one_of(pool_op(), index_op()))
    boxes = []
    for s in op.in_shapes:
        n = int(np.prod(s))
        lo = [data.draw(weight) for _ in range(n)]
        boxes.append(Box(lo, [v + data.draw(weight) ** 2 for v in lo], s))
    ex = op.ibp(EXACT, *boxes)
    f = op.ibp_fast(FAST, *(fbox_from_box(FAST, b) for b in boxes))
    for k in range(op.out_dim):
        assert q(f.ll[k]) <= ex.lo[k] <= q(f.lh[k]) and q(f.hl[k]) <= ex.hi[k] <= q(f.hh[k])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_maxpool_selections_equal_the_dense_lines(data):
    """CROWN through MaxPool with its lines as selections gives exactly the result of the dense
    lines (exact mode), and the fast mode holds the exact outputs at random points."""
    from exactbounds.operators.base import LinearRelaxed
    from exactbounds.operators.maxpool import MaxPool

    rng = random.Random(data.draw(st.integers(0, 10**6)))
    w = [[[[fmpq(rng.randint(-8, 8), 8) for _ in range(2)] for _ in range(2)]] for _ in range(2)]
    k = data.draw(st.integers(2, 3))
    pool = MaxPool((2, 5, 5), (k, k), (data.draw(st.integers(1, 2)),) * 2, (0, 0, 1, 1))
    fc = Linear.from_weights(
        [[fmpq(rng.randint(-8, 8), 8) for _ in range(pool.out_dim)] for _ in range(2)], [0, 1]
    )
    g = Graph(
        16,
        [
            Node("r", Reshape((16,), (1, 4, 4)), [Graph.INPUT]),
            Node("c", Conv2d(w, [fmpq(1, 8), fmpq(-1, 4)], (1, 4, 4), 1, 1), ["r"]),
            Node("m", pool, ["c"]),
            Node("f", Flatten(pool.out_shape), ["m"]),
            Node("l", fc, ["f"]),
        ],
    )
    x0 = [fmpq(data.draw(st.integers(-4, 4)), 4) for _ in range(16)]
    S = LpBall(x0, fmpq(data.draw(st.integers(1, 4)), 8), "inf")
    got = crown(g, S, EXACT)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MaxPool, "make_relaxation", LinearRelaxed.make_relaxation)
        mp.setattr(MaxPool, "crown_step", LinearRelaxed.crown_step)
        ref = crown(g, S, EXACT)
    assert got.output.lo == ref.output.lo and got.output.hi == ref.output.hi
    res = crown(g, S, FAST)
    for x in sample(S, random.Random(0), 4) + vertices(S, 4):
        for v, lo, hi in zip(evaluate(g, x, EXACT), res.output.lo, res.output.hi):
            assert res.ctx.lower(lo) <= v <= res.ctx.upper(hi)


def test_float_balls_of_wide_range_columns():
    """Regression: a column whose entries span 2^-1074 to 2^1000 shares one power of two; the
    huge integer numerators overflowed float64 and the ball became 0 ± inf (a MaxPool's upper
    constants made CROWN escalate). Each entry is now enclosed, the normal ones tightly."""
    from exactbounds.linalg.fast import q_mat_ball

    floats = [1.36, 5e-324, 0.0, -2.5e300, 1e-310, 3.0]
    M = fmpq_mat(len(floats), 1, [q(v) for v in floats])
    mid, rad = q_mat_ball(M)
    rad = np.zeros_like(mid) if rad is None else rad
    for k, v in enumerate(floats):
        assert q(np.nextafter(mid[k, 0] - rad[k, 0], -np.inf)) <= q(v)
        assert q(v) <= q(np.nextafter(mid[k, 0] + rad[k, 0], np.inf))
        assert rad[k, 0] <= abs(v) * 2.0**-50 + 2.0**-1070
