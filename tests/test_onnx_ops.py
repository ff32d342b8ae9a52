"""The ONNX forms of the VNN-COMP families (issue 12): shape arithmetic folded at load time, index
maps, reductions, general matrix products, ConvTranspose, MaxPool, LeakyRelu, Sin/Cos, Sign,
Softmax, products of two tensors, ArgMax/OneHot. Each model is built with ``onnx.helper``; exact
evaluation agrees with onnxruntime, and IBP, CROWN and forward affine bounds (exact, dyadic and
interval) contain the exact value at drawn points of the box (vertices and random points)."""

import gzip
import random
import subprocess
import sys

import numpy as np
import pytest
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from exactbounds.algorithms.affine import affine  # noqa: E402
from exactbounds.algorithms.crown import crown  # noqa: E402
from exactbounds.algorithms.ibp import evaluate, ibp  # noqa: E402
from exactbounds.core import Box  # noqa: E402
from exactbounds.inputsets import sample, vertices  # noqa: E402
from exactbounds.io.load import load_model  # noqa: E402
from exactbounds.io.onnx_loader import build_graph, parse_onnx  # noqa: E402
from exactbounds.numbers import make_context  # noqa: E402
from test_onnx import assert_agrees, ends, init, model, q  # noqa: E402

RNG = np.random.default_rng(1)
N = helper.make_node


def w(*shape, scale=1.0):
    return (RNG.normal(0, scale, shape)).astype(np.float32)


def ints(name, vals):
    return numpy_helper.from_array(np.asarray(vals, dtype=np.int64), name)


def _nhwc():
    return (
        [
            N("Transpose", ["input"], ["t"], perm=[0, 3, 1, 2]),
            N("Conv", ["t", "W"], ["c"], name="conv"),
            N("Relu", ["c"], ["r"]),
            N("Flatten", ["r"], ["f"]),
            N("Gemm", ["f", "G"], ["output"], transB=1),
        ],
        [init("W", w(3, 2, 2, 2)), init("G", w(2, 27))],
        [1, 4, 4, 2],
        13,
    )


def _shape_arith(opset):
    unsq = (
        N("Unsqueeze", ["b"], ["bu"], axes=[0])
        if opset < 13
        else N("Unsqueeze", ["b", "ax0"], ["bu"])
    )
    return (
        [
            N("Relu", ["input"], ["r"]),
            N("Shape", ["r"], ["s"]),
            N("Gather", ["s", "zero"], ["b"], axis=0),
            unsq,
            N("Concat", ["bu", "minus1"], ["shp"], axis=0),
            N("Cast", ["shp"], ["shpf"], to=TensorProto.FLOAT),
            N("Cast", ["shpf"], ["shpi"], to=TensorProto.INT64),
            N(
                "ConstantOfShape",
                ["shape2"],
                ["ones"],
                value=numpy_helper.from_array(np.array([1], dtype=np.int64)),
            ),
            N("Equal", ["ones", "ones"], ["eq"]),
            N("Reshape", ["r", "shpi"], ["f"]),
            N("Neg", ["f"], ["nf"]),
            N("MatMul", ["nf", "M"], ["output"]),
        ],
        [
            ints("zero", 0),
            ints("minus1", [-1]),
            ints("ax0", [0]),
            ints("shape2", [2]),
            init("M", w(18, 3)),
        ],
        [1, 2, 3, 3],
        opset,
    )


def _slice_concat(opset):
    if opset < 10:
        s1 = N("Slice", ["h"], ["a"], starts=[0], ends=[4], axes=[1])
        s2 = N("Slice", ["h"], ["b"], starts=[4], ends=[100], axes=[1])
        ini = []
    else:
        s1 = N("Slice", ["h", "st", "en", "ax"], ["a"])
        s2 = N("Slice", ["h", "st2", "en2", "ax", "stp"], ["b"])
        ini = [
            ints("st", [0]),
            ints("en", [4]),
            ints("ax", [1]),
            ints("st2", [-1]),
            ints("en2", [-100]),
            ints("stp", [-2]),
        ]
    return (
        [
            N("MatMul", ["input", "W"], ["h"]),
            s1,
            s2,
            N("Relu", ["a"], ["ra"]),
            N("Concat", ["ra", "b", "c"], ["cat"], axis=1),
            N("MatMul", ["cat", "V"], ["output"]),
        ],
        ini + [init("W", w(3, 8)), init("c", w(1, 2)), init("V", w(10, 2))],
        [1, 3],
        opset,
    )


CASES = {
    "nhwc_transpose_conv": _nhwc,
    "shape_arith_opset11": lambda: _shape_arith(11),
    "shape_arith_opset13": lambda: _shape_arith(13),
    "slice_concat_opset9": lambda: _slice_concat(9),
    "slice_concat_opset13": lambda: _slice_concat(13),
    "gather_const_indices": lambda: (
        [N("Gather", ["input", "idx"], ["g"], axis=1), N("Relu", ["g"], ["output"])],
        [ints("idx", [[4, 0], [2, -1]])],
        [1, 5],
        13,
    ),
    "pad_constant_and_edge": lambda: (
        [
            N("Pad", ["input", "pads", "pv"], ["p"]),
            N("Pad", ["p", "pads2"], ["p2"], mode="edge"),
            N("Conv", ["p2", "W"], ["output"]),
        ],
        [
            ints("pads", [0, 0, 1, 0, 0, 0, 0, 1]),
            init("pv", 0.5),
            ints("pads2", [0, 0, 0, 1, 0, 0, 1, 0]),
            init("W", w(2, 2, 2, 2)),
        ],
        [1, 2, 3, 3],
        13,
    ),
    "pad_opset2_attrs": lambda: (
        [N("Pad", ["input"], ["output"], pads=[0, 1, 0, 2], value=-1.5)],
        [],
        [1, 3],
        2,
    ),
    "squeeze_unsqueeze_opset11": lambda: (
        [
            N("Unsqueeze", ["input"], ["u"], axes=[2]),
            N("Squeeze", ["u"], ["s"], axes=[2]),
            N("Squeeze", ["s"], ["output"], axes=[0]),
        ],
        [],
        [1, 4],
        11,
    ),
    "squeeze_unsqueeze_opset13_and_dropout": lambda: (
        [
            N("Unsqueeze", ["input", "a"], ["u"]),
            N("Dropout", ["u"], ["d"]),
            N("Identity", ["d"], ["i"]),
            N("Squeeze", ["i", "a"], ["output"]),
        ],
        [ints("a", [-1])],
        [1, 4],
        13,
    ),
    "reduce_sum_mean": lambda: (
        [
            N("ReduceSum", ["input", "ax"], ["s"], keepdims=1),
            N("ReduceMean", ["input"], ["m"], axes=[2], keepdims=0),
            N("Flatten", ["s"], ["sf"]),
            N("Concat", ["sf", "m"], ["output"], axis=1),
        ],
        [ints("ax", [2])],
        [1, 2, 3],
        13,
    ),
    "tokens_matmul_both_sides": lambda: (
        [
            N("MatMul", ["input", "W"], ["h"]),
            N("Relu", ["h"], ["r"]),
            N("MatMul", ["P", "r"], ["p"]),
            N("Add", ["p", "c"], ["output"]),
        ],
        [init("W", w(4, 3)), init("P", w(2, 3)), init("c", w(2, 3))],
        [3, 4],
        13,
    ),
    "gemm_variable_second": lambda: (
        [N("Gemm", ["A", "input", "C"], ["output"], transB=1, alpha=0.5, beta=2.0)],
        [init("A", w(2, 3)), init("C", w(2, 4))],
        [4, 3],
        13,
    ),
    "convtranspose_stride_pads": lambda: (
        [
            N(
                "ConvTranspose",
                ["input", "W", "b"],
                ["c"],
                strides=[2, 2],
                pads=[1, 0, 0, 1],
                output_padding=[1, 0],
            ),
            N("Relu", ["c"], ["output"]),
        ],
        [init("W", w(2, 3, 3, 2)), init("b", w(3))],
        [1, 2, 3, 2],
        13,
    ),
    "convtranspose_group_dilation_outshape": lambda: (
        [
            N(
                "ConvTranspose",
                ["input", "W"],
                ["output"],
                group=2,
                dilations=[1, 2],
                output_shape=[2, 4],
            )
        ],
        [init("W", w(2, 1, 2, 2))],
        [1, 2, 2, 3],
        13,
    ),
    "maxpool": lambda: (
        [
            N("Conv", ["input", "W"], ["c"], pads=[1, 1, 1, 1]),
            N("MaxPool", ["c"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
            N("MaxPool", ["m"], ["output"], kernel_shape=[2, 2], pads=[1, 0, 0, 1], ceil_mode=1),
        ],
        [init("W", w(2, 1, 2, 2))],
        [1, 1, 4, 5],
        13,
    ),
    "leakyrelu_small_and_large_alpha": lambda: (
        [
            N("Gemm", ["input", "W"], ["h"], transB=1),
            N("LeakyRelu", ["h"], ["a"], alpha=0.1),
            N("LeakyRelu", ["a"], ["output"], alpha=2.5),
        ],
        [init("W", w(3, 2))],
        [1, 2],
        13,
    ),
    "sin_cos": lambda: (
        [
            N("Gemm", ["input", "W"], ["h"], transB=1),
            N("Sin", ["h"], ["s"]),
            N("Cos", ["h"], ["c"]),
            N("Sub", ["s", "c"], ["output"]),
        ],
        [init("W", w(3, 2, scale=3.0))],
        [1, 2],
        13,
    ),
    "sign": lambda: (
        [N("Gemm", ["input", "W"], ["h"], transB=1), N("Sign", ["h"], ["output"])],
        [init("W", w(3, 2))],
        [1, 2],
        13,
    ),
    "softmax_opset13": lambda: (
        [N("MatMul", ["input", "W"], ["h"]), N("Softmax", ["h"], ["output"], axis=-1)],
        [init("W", w(3, 3))],
        [1, 2, 3],
        13,
    ),
    "softmax_opset11_flatten": lambda: (
        [N("Softmax", ["input"], ["output"], axis=1)],
        [],
        [1, 2, 3],
        11,
    ),
    "matmul_two_variables_and_mul": lambda: (
        [
            N("MatMul", ["input", "W"], ["q"]),
            N("Transpose", ["q"], ["kt"], perm=[1, 0]),
            N("MatMul", ["q", "kt"], ["att"]),
            N("Mul", ["att", "att"], ["output"]),
        ],
        [init("W", w(3, 2))],
        [2, 3],
        13,
    ),
    "argmax_onehot": lambda: (
        [
            N("ArgMax", ["input"], ["am"], axis=1, keepdims=0),
            N("OneHot", ["am", "depth", "vals"], ["oh"]),
            N("Cast", ["am"], ["amf"], to=TensorProto.FLOAT),
            N("Flatten", ["oh"], ["ohf"]),
            N("Unsqueeze", ["amf", "a1"], ["amu"]),
            N("Concat", ["ohf", "amu"], ["output"], axis=1),
        ],
        [init("depth", 4.0), init("vals", [-1.0, 2.0]), ints("a1", [1])],
        [1, 4],
        13,
    ),
    "cast_int_equal_reducesum": lambda: (
        [
            N("Mul", ["input", "three"], ["m"]),
            N("Cast", ["m"], ["a"], to=TensorProto.INT64),
            N("Relu", ["m"], ["r"]),
            N("Cast", ["r"], ["b"], to=TensorProto.INT64),
            N("Equal", ["a", "b"], ["e"]),
            N("Cast", ["e"], ["ef"], to=TensorProto.FLOAT),
            N("ReduceSum", ["ef"], ["s"], keepdims=0),
            N("Unsqueeze", ["s", "a0"], ["s1"]),
            N("Cast", ["a"], ["af"], to=TensorProto.FLOAT),
            N("Flatten", ["af"], ["aff"], axis=0),
            N("Unsqueeze", ["s1", "a0"], ["s2"]),
            N("Concat", ["aff", "s2"], ["output"], axis=1),
        ],
        [init("three", 3.0), ints("a0", [0])],
        [1, 2, 3],
        13,
    ),
    "constant_subnetwork": lambda: (
        [
            N("MatMul", ["c1", "c2"], ["cm"]),
            N("Add", ["cm", "cb"], ["ca"]),
            N("Relu", ["ca"], ["cr"]),
            N("Sin", ["cr"], ["cs"]),
            N("Gemm", ["input", "W"], ["h"], transB=1),
            N("Sub", ["h", "cs"], ["output"]),
        ],
        [init("c1", w(1, 3)), init("c2", w(3, 2)), init("cb", w(2)), init("W", w(2, 2))],
        [1, 2],
        13,
    ),
    "pow_broadcast_add": lambda: (
        [
            N("Pow", ["input", "two"], ["p"]),
            N("ReduceSum", ["input", "ax"], ["s"], keepdims=1),
            N("Relu", ["s"], ["r"]),
            N("Add", ["p", "r"], ["a"]),
            N("Sub", ["r", "a"], ["output"]),
        ],
        [init("two", 2.0), ints("ax", [2])],
        [1, 2, 3],
        13,
    ),
}


def build(case):
    nodes, inits, shape, opset = CASES[case]()
    m = model(nodes, inits, shape, opset=opset, ir=7 if opset < 9 else 8)
    return m, shape


@pytest.mark.parametrize("case", sorted(CASES))
def test_exact_evaluation_agrees_with_onnxruntime(case):
    m, shape = build(case)
    g, _ = build_graph(parse_onnx(m))
    for seed in range(3):
        x = np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32)
        assert_agrees(g, m, x, ulps=max(8, 2 * len(g)))


def _contained(vals, lo, hi):
    for v, a, b in zip(vals, lo, hi):
        va, vb = ends(v)
        if not (a <= vb and va <= b):  # the true value lies in [va, vb]
            return False
    return True


@pytest.mark.parametrize("case", sorted(CASES))
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 2**16), radius=st.sampled_from([fmpq(0), fmpq(1, 64), fmpq(1, 2)]))
def test_bounds_contain_exact_values(case, seed, radius):
    m, shape = build(case)
    g, _ = build_graph(parse_onnx(m))
    x = np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32)
    xs = [q(v) for v in x.ravel()]
    S = Box([v - radius for v in xs], [v + radius for v in xs])
    exact = make_context("exact")
    pts = vertices(S, 8) + sample(S, random.Random(seed), 6)
    vals = [evaluate(g, p, exact) for p in pts]
    for mode in ("exact", "dyadic", "interval"):
        ctx = make_context(mode, bits=32 if mode == "dyadic" else None)
        lo, hi = ibp(g, S, ctx).outer(ctx)
        assert all(_contained(v, lo, hi) for v in vals), ("ibp", mode)
        for fn in (crown, affine):
            lo, hi = fn(g, S, ctx).output.outer(ctx)
            assert all(_contained(v, lo, hi) for v in vals), (fn.__name__, mode)


def test_shape_arithmetic_leaves_no_operator():
    """Shape → Gather → Unsqueeze → Concat → Cast → Reshape is folded: only the Relu, the
    Reshape, Neg and the MatMul remain (Neg folded into the matrix)."""
    g, _ = build_graph(parse_onnx(build("shape_arith_opset13")[0]))
    kinds = [n.op.kind for n in g.nodes]
    assert kinds[0] == "relu" and "indexmap" not in kinds and len(kinds) <= 3, kinds


def test_gz_files_are_read_directly(tmp_path):
    m, _ = build("gather_const_indices")
    p = tmp_path / "m.onnx.gz"
    p.write_bytes(gzip.compress(m.SerializeToString()))
    spec = tmp_path / "s.vnnlib.gz"
    text = "".join(f"(declare-const X_{i} Real)\n" for i in range(5))
    text += "".join(f"(declare-const Y_{i} Real)\n" for i in range(4))
    text += "".join(f"(assert (>= X_{i} -1))\n(assert (<= X_{i} {i}))\n" for i in range(5))
    text += "(assert (<= Y_0 -1))\n"
    spec.write_bytes(gzip.compress(text.encode()))
    mdl = load_model(p, spec)
    lo, hi = ibp(mdl.graph, mdl.input_set).outer()
    assert lo == [0] * 4 and hi == [4, 0, 2, 4]  # X_4, X_0, X_2, X_{-1} = X_4


def test_cli_names_node_and_op_of_unsupported_forms(tmp_path):
    bad = model([N("Gather", ["input", "input"], ["output"], name="gath9", axis=1)], [], [1, 3])
    p = tmp_path / "bad.onnx"
    p.write_bytes(bad.SerializeToString())
    spec = tmp_path / "s.vnnlib"
    spec.write_text(
        "".join(
            f"(declare-const X_{i} Real)\n(assert (>= X_{i} 0))\n(assert (<= X_{i} 1))\n"
            for i in range(3)
        )
    )
    r = subprocess.run(
        [sys.executable, "-m", "exactbounds", "bounds", str(p), "--spec", str(spec)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert "gath9" in r.stderr and "Gather" in r.stderr
    bad = model([N("Pow", ["input", "e"], ["output"], name="pow3")], [init("e", 3.0)], [1, 3])
    p.write_bytes(bad.SerializeToString())
    r = subprocess.run(
        [sys.executable, "-m", "exactbounds", "bounds", str(p), "--spec", str(spec)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "pow3" in r.stderr and "Pow" in r.stderr and "exponent" in r.stderr


# ----------------------------------------------------------------------------- relaxations

from flint import fmpq_mat  # noqa: E402

from exactbounds.operators.bilinear import Bilinear  # noqa: E402
from exactbounds.operators.elementwise import Cos, LeakyRelu, Sign, Sin  # noqa: E402
from exactbounds.operators.maxpool import MaxPool  # noqa: E402

num = st.integers(-64, 64).map(lambda k: fmpq(k, 8))


@settings(max_examples=60, deadline=None)
@given(
    op=st.sampled_from(
        [
            LeakyRelu(1, fmpq(1, 10)),
            LeakyRelu(1, fmpq(5, 2)),
            LeakyRelu(1, 0),
            LeakyRelu(1, 1),
            Sin(1),
            Cos(1),
            Sign(1),
        ]
    ),
    a=num,
    d=st.integers(0, 80).map(lambda k: fmpq(k, 8)),
    rule=st.sampled_from(["adaptive", "zero", "one"]),
    mode=st.sampled_from(["exact", "dyadic", "interval"]),
)
def test_elementwise_lines_enclose_the_function(op, a, d, rule, mode):
    """``ls·x + lb <= f(x) <= us·x + ub`` at 17 points of ``[l, u]`` (ends included)."""
    ctx = make_context(mode, bits=16 if mode == "dyadic" else None)
    l, u = a, a + d
    ls, lb, us, ub = op.relax(ctx, [ctx.const(l)], [ctx.const(u)], lower_slope=rule)
    exact = make_context("exact")
    for k in range(17):
        x = l + d * k / 16
        fl, fh = ends(op.evaluate(exact, [x])[0])
        # in the interval context the coefficients are enclosures of valid lines
        low = ctx.lower(ls[0] * ctx.const(x) + lb[0])
        high = ctx.upper(us[0] * ctx.const(x) + ub[0])
        assert low <= fh and fl <= high, (op, l, u, x)
    blo, bhi = op.ibp(exact, Box([l], [u])).outer()
    for k in range(17):
        fl, fh = ends(op.evaluate(exact, [l + d * k / 16])[0])
        assert blo[0] <= fh and fl <= bhi[0]


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_multi_input_relaxations_enclose_the_function(data):
    """MaxPool (stable and unstable windows) and products: the planes at random points."""
    kind = data.draw(st.sampled_from(["maxpool", "matmul"]))
    if kind == "maxpool":
        op = MaxPool((1, 3, 3), (2, 2), (1, 1))
    else:
        op = Bilinear(
            (2, 2),
            (2, 2),
            (2, 2),
            [[(2 * i, j), (2 * i + 1, 2 + j)] for i in range(2) for j in range(2)],
        )
    ends_ = []
    for s in op.in_shapes:
        n = int(np.prod(s))
        lo = [data.draw(num) for _ in range(n)]
        ends_.append((lo, [v + data.draw(num) ** 2 / 8 for v in lo]))
    LW, Lb, UW, Ub = op.relax_linear(make_context("exact"), ends_)
    rnd = random.Random(data.draw(st.integers(0, 99)))
    exact = make_context("exact")
    for _ in range(20):
        xs = [
            [a + (b - a) * fmpq(rnd.randint(0, 8), 8) for a, b in zip(lo, hi)] for lo, hi in ends_
        ]
        y = op.evaluate(exact, *xs)
        low, high = Lb, Ub
        for W1, W2, x in zip(LW, UW, xs):
            col = fmpq_mat(len(x), 1, x)
            low, high = low + W1 * col, high + W2 * col
        assert all(a <= v <= b for a, v, b in zip(low.entries(), y, high.entries()))
