"""ONNX import: exact initializers, every supported op, agreement of exact evaluation with
onnxruntime (bundled examples and hypothesis-drawn models), loader errors, IBP soundness."""

import importlib.util
import random
from math import prod
from pathlib import Path

import numpy as np
import pytest
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optional import requires

onnx = requires("onnx")
ort = requires("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from exactbounds.algorithms.ibp import evaluate, run_graph  # noqa: E402
from exactbounds.core import Box  # noqa: E402
from exactbounds.errors import (  # noqa: E402
    InvalidModelError,
    InvalidValueError,
    MalformedFileError,
    ShapeError,
    UnsupportedOperatorError,
)
from exactbounds.io.json_net import Model  # noqa: E402
from exactbounds.io.load import load_model  # noqa: E402
from exactbounds.io.onnx_loader import build_graph, load_onnx, parse_onnx  # noqa: E402
from exactbounds.numbers import RationalContext, RInterval, to_exact  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "exactbounds" / "examples"
CTX = RationalContext()
ULPS = 8  # tolerance: ULPS float32 ulps of the largest magnitude in the computation


# ----------------------------------------------------------------------------- helpers


def init(name, arr, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(arr, dtype=dtype), name)


OUT_SHAPE = ["batch", "n"]  # onnx.checker needs a shape on graph outputs; its size is free


def model(nodes, inits, in_shape, opset=13, ir=8, inits_as_inputs=False, out="output"):
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)]
    if inits_as_inputs:
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    g = helper.make_graph(
        nodes,
        "t",
        inputs,
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, OUT_SHAPE)],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m


def save(tmp_path, m, name="m.onnx"):
    p = tmp_path / name
    p.write_bytes(m.SerializeToString())
    return p


def q(v):
    return fmpq(*float(v).as_integer_ratio())


def ends(v):
    return (v.lo, v.hi) if isinstance(v, RInterval) else (v, v)


def exact_outputs(graph, x):
    """Every node's exact value (enclosures where BN has a square root) at the float32 ``x``."""
    return run_graph(graph, [q(v) for v in np.ravel(x)], "evaluate", CTX, keep=True)


def assert_agrees(graph, onnx_model, x, ulps=ULPS):
    """onnxruntime's float32 output is within ``ulps`` ulps (of the largest magnitude any value
    takes along the way) of the exact value; returns the largest distance in those ulps."""
    sess = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    y = sess.run(None, {name: np.asarray(x, dtype=np.float32)})[0].ravel()
    vals = exact_outputs(graph, x)
    mag = max(max(abs(a), abs(b)) for vs in vals.values() for v in vs for a, b in [ends(v)])
    unit = q(np.spacing(np.float32(float(mag)))) if mag else q(np.spacing(np.float32(0)))
    out = vals[graph.output]
    assert len(out) == y.size
    worst = fmpq(0)
    for v, f in zip(out, y):
        lo, hi = ends(v)
        d = max(fmpq(0), lo - q(f), q(f) - hi)
        worst = max(worst, d / unit)
        assert d <= ulps * unit, f"exact {float(lo)} vs onnxruntime {f}: {float(d / unit)} ulps"
    return worst


def load_script():
    spec = importlib.util.spec_from_file_location(
        "make_onnx_examples", EXAMPLES / "make_onnx_examples.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------- bundled examples

BUNDLED = [("mlp_bn", (1, 6)), ("cnn_bn", (1, 1, 6, 6))]


def test_bundled_examples_are_what_the_script_generates():
    files = load_script().build_all()
    assert sorted(files) == ["cnn_bn.onnx", "cnn_bn.vnnlib", "mlp_bn.onnx", "mlp_bn.vnnlib"]
    for name, data in files.items():
        disk = (
            (EXAMPLES / name).read_bytes()
            if isinstance(data, bytes)
            else (EXAMPLES / name).read_text()
        )
        assert disk == data, f"{name} differs from make_onnx_examples.py's output"


def test_bundled_examples_contain_the_promised_ops():
    ops = {
        name: {n.op_type for n in onnx.load(str(EXAMPLES / f"{name}.onnx")).graph.node}
        for name, _ in BUNDLED
    }
    assert {"BatchNormalization", "Gemm", "MatMul", "Add", "Sub", "Div", "Relu"} <= ops["mlp_bn"]
    assert {"Conv", "BatchNormalization", "Relu", "Flatten", "Gemm"} <= ops["cnn_bn"]


@pytest.mark.parametrize("name, shape", BUNDLED)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_bundled_examples_agree_with_onnxruntime(name, shape, seed):
    m = onnx.load(str(EXAMPLES / f"{name}.onnx"))
    graph = load_onnx(EXAMPLES / f"{name}.onnx").graph
    x = np.random.default_rng(seed).uniform(-2, 2, shape).astype(np.float32)
    assert_agrees(graph, m, x)


def _sound_points(box, rng, n=10):
    """Random corners and random grid points of ``box`` (exact)."""
    pts = [[a if rng.random() < 0.5 else b for a, b in zip(box.lo, box.hi)] for _ in range(n)]
    pts += [
        [a + (b - a) * fmpq(rng.randrange(1025), 1024) for a, b in zip(box.lo, box.hi)]
        for _ in range(n)
    ]
    return pts


@pytest.mark.parametrize("method", ["ibp", "crown", "affine"])
@pytest.mark.parametrize("name, shape", BUNDLED)
def test_bundled_examples_bounds_are_sound_over_their_spec(name, shape, method):
    from exactbounds.commands.bounds import compute
    from exactbounds.numbers import make_context

    mdl = load_model(EXAMPLES / f"{name}.onnx", EXAMPLES / f"{name}.vnnlib")
    assert mdl.spec is not None and not mdl.spec.relaxed
    box = mdl.input_set
    ctx = CTX if method == "ibp" else make_context("dyadic", bits=64)
    res = compute(mdl, method, ctx)
    lo, hi = res.output.outer(res.ctx)
    proved = mdl.spec.output.proved_by_box(lo, hi)
    for x in _sound_points(box, random.Random(0)):
        y = evaluate(mdl.graph, x, CTX)
        for v, a, b in zip(y, lo, hi):
            va, vb = ends(v)
            assert a <= va and vb <= b
        if proved:  # no point of the box may then satisfy the counterexample formula
            assert mdl.spec.evaluate(y) is False


# ----------------------------------------------------------------------------- exact data


def test_initializers_are_exact_float32_and_float64():
    nodes = [
        helper.make_node(
            "Gemm", ["input", "W", "b"], ["output"], name="fc", transB=1, alpha=0.1, beta=0.3
        )
    ]
    m = model(
        nodes,
        [init("W", [[0.1, -0.7], [1e-30, 3.0]]), init("b", [0.2, 1 / 3], dtype=np.float64)],
        [1, 2],
    )
    og = parse_onnx(m)
    assert og.consts["W"][0, 0] == q(np.float32(0.1)) != fmpq(1, 10)
    assert og.consts["W"][1, 0] == q(np.float32(1e-30))
    assert og.consts["b"][1] == q(1 / 3)
    graph, _ = build_graph(og)
    lin = graph.nodes[0].op.params
    a32 = q(np.float32(0.1))  # the float32 attribute, exactly
    assert lin.weight[0][0] == a32 * q(np.float32(0.1))
    assert lin.bias[0] == q(np.float32(0.3)) * q(0.2)


def test_constant_nodes_and_float_attributes():
    nodes = [
        helper.make_node(
            "Constant",
            [],
            ["c"],
            name="cst",
            value=numpy_helper.from_array(np.float32([0.5, -0.25])),
        ),
        helper.make_node("Constant", [], ["s"], name="cst2", value_float=3.0),
        helper.make_node("Sub", ["input", "c"], ["x0"], name="sub"),
        helper.make_node("Mul", ["x0", "s"], ["output"], name="mul"),
    ]
    m = model(nodes, [], [1, 2])
    g, _ = build_graph(parse_onnx(m))
    assert evaluate(g, [fmpq(1), fmpq(0)], CTX) == [fmpq(3, 2), fmpq(3, 4)]
    assert_agrees(g, m, np.float32([[0.3, -1.7]]))


# ----------------------------------------------------------------------------- op coverage


def check(m, x, tmp_path=None):
    g, _ = build_graph(parse_onnx(m))
    assert_agrees(g, m, np.asarray(x, dtype=np.float32))
    return g


def test_opset9_initializers_among_inputs_and_flatten_of_1_1_1_5(tmp_path):
    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Flatten", ["input"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "W", "b"], ["h"], name="fc", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "W2", "b2"], ["output"], name="fc2", transB=1),
    ]
    inits = [
        init("W", rng.normal(size=(4, 5))),
        init("b", rng.normal(size=4)),
        init("W2", rng.normal(size=(2, 4))),
        init("b2", rng.normal(size=2)),
    ]
    m = model(nodes, inits, [1, 1, 1, 5], opset=9, ir=3, inits_as_inputs=True)
    assert len(m.graph.input) == 5
    mdl = load_model(save(tmp_path, m), None) if False else load_onnx(save(tmp_path, m))
    assert mdl.graph.input_dim == 5 and mdl.input_set is None
    assert_agrees(mdl.graph, m, rng.normal(size=(1, 1, 1, 5)))
    with pytest.raises(InvalidModelError, match="no input set"):
        load_model(save(tmp_path, m))


def test_input_1_n_1_with_flatten_and_matmul_add_fold():
    rng = np.random.default_rng(4)
    nodes = [
        helper.make_node("Flatten", ["input"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "W"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "b"], ["output"], name="add"),
    ]
    m = model(nodes, [init("W", rng.normal(size=(7, 3))), init("b", rng.normal(size=3))], [1, 7, 1])
    g = check(m, rng.normal(size=(1, 7, 1)))
    assert [n.op.kind for n in g.nodes] == ["reshape", "linear"]  # Add folded into the bias


def test_gemm_transa_transb_alpha_beta():
    rng = np.random.default_rng(5)
    for ta, tb, alpha, beta in [
        (0, 0, 1.0, 1.0),
        (0, 1, 0.5, -2.0),
        (1, 0, 0.1, 0.3),
        (1, 1, -1.25, 0.0),
    ]:
        B = rng.normal(size=(3, 4) if tb else (4, 3))
        nodes = [
            helper.make_node(
                "Gemm",
                ["input", "B", "C"],
                ["output"],
                name="g",
                transA=ta,
                transB=tb,
                alpha=alpha,
                beta=beta,
            )
        ]
        m = model(
            nodes, [init("B", B), init("C", rng.normal(size=(1, 3)))], [4, 1] if ta else [1, 4]
        )
        check(m, rng.normal(size=(4, 1) if ta else (1, 4)))
    nodes = [helper.make_node("Gemm", ["input", "B"], ["output"], name="nobias", transB=1)]
    check(model(nodes, [init("B", rng.normal(size=(2, 4)))], [1, 4]), rng.normal(size=(1, 4)))


def test_matmul_with_weight_on_the_left():
    rng = np.random.default_rng(6)
    nodes = [helper.make_node("MatMul", ["W", "input"], ["output"], name="wx")]
    check(model(nodes, [init("W", rng.normal(size=(3, 5)))], [1, 5, 1]), rng.normal(size=(1, 5, 1)))


def test_normalisation_sub_div_mul_and_reversed_sub():
    rng = np.random.default_rng(7)
    nodes = [
        helper.make_node("Sub", ["input", "mean"], ["a"], name="sub"),
        helper.make_node("Div", ["a", "std"], ["b"], name="div"),
        helper.make_node("Mul", ["k", "b"], ["c"], name="mul"),
        helper.make_node("Sub", ["one", "c"], ["d"], name="rsub"),
        helper.make_node("Add", ["d", "e"], ["output"], name="add"),
    ]
    inits = [
        init("mean", rng.normal(size=(1, 3, 1, 1))),
        init("std", [0.3]),
        init("k", rng.normal(size=(2, 1))),
        init("one", [1.0]),
        init("e", [0.1, 0.2]),
    ]
    g = check(model(nodes, inits, [1, 3, 2, 2]), rng.normal(size=(1, 3, 2, 2)))
    # the chain of maps by constants is composed exactly into one Scale (then the output Add)
    assert [n.op.kind for n in g.nodes] == ["scale", "add"]
    # ... and folded exactly into a following linear layer
    nodes[-1] = helper.make_node("Add", ["d", "e"], ["h"], name="add")
    nodes += [
        helper.make_node("Flatten", ["h"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "W"], ["output"], name="fc", transB=1),
    ]
    g = check(
        model(nodes, inits + [init("W", rng.normal(size=(3, 12)))], [1, 3, 2, 2]),
        rng.normal(size=(1, 3, 2, 2)),
    )
    assert [(n.name, n.op.kind) for n in g.nodes] == [("fc", "linear")]
    # a map whose result is also read elsewhere stays a node
    nodes.append(helper.make_node("Relu", ["h"], ["unused"], name="other_reader"))
    g, _ = build_graph(
        parse_onnx(model(nodes, inits + [init("W", rng.normal(size=(3, 12)))], [1, 3, 2, 2]))
    )
    assert [n.op.kind for n in g.nodes] == ["scale", "add", "reshape", "linear", "relu"]
    nodes = [helper.make_node("Div", ["input", "z"], ["output"], name="div0")]
    with pytest.raises(InvalidModelError, match="div0.*divisor\\[1\\] = 0"):
        build_graph(parse_onnx(model(nodes, [init("z", [1.0, 0.0])], [1, 2])))


@pytest.mark.parametrize(
    "attrs, in_shape, w_shape",
    [
        ({}, [1, 2, 5, 5], (3, 2, 3, 3)),
        ({"pads": [1, 0, 2, 1], "strides": [2, 1]}, [1, 2, 5, 6], (4, 2, 3, 2)),
        ({"dilations": [2, 2], "pads": [2, 2, 2, 2]}, [1, 1, 6, 6], (2, 1, 3, 3)),
        ({"group": 2, "pads": [1, 1, 1, 1]}, [1, 4, 4, 4], (6, 2, 3, 3)),
        ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, [1, 1, 5, 5], (2, 1, 2, 2)),
        ({"auto_pad": "SAME_LOWER"}, [1, 1, 4, 4], (1, 1, 2, 2)),
        ({"auto_pad": "VALID", "strides": [2, 2]}, [1, 1, 5, 5], (1, 1, 3, 3)),
        ({"pads": [1, 2], "strides": [2]}, [1, 2, 7], (3, 2, 3)),  # Conv1d
    ],
)
def test_conv_attributes(attrs, in_shape, w_shape):
    rng = np.random.default_rng(8)
    nodes = [helper.make_node("Conv", ["input", "W", "B"], ["output"], name="conv", **attrs)]
    m = model(
        nodes,
        [init("W", rng.normal(size=w_shape)), init("B", rng.normal(size=w_shape[0]))],
        in_shape,
    )
    check(m, rng.normal(size=in_shape))


def test_batchnorm_epsilon_is_the_exact_float32_attribute():
    rng = np.random.default_rng(9)
    nodes = [
        helper.make_node(
            "BatchNormalization", ["input", "s", "b", "m", "v"], ["output"], name="bn", epsilon=0.1
        )
    ]
    inits = [init(k, rng.uniform(0.5, 2, 3)) for k in ("s", "b", "m", "v")]
    m = model(nodes, inits, [1, 3, 2, 2])
    g = check(m, rng.normal(size=(1, 3, 2, 2)))
    p = g.nodes[0].op.params
    assert p.eps == q(np.float32(0.1)) and p.shape == (3, 2, 2)
    nodes[0] = helper.make_node(
        "BatchNormalization", ["input", "s", "b", "m", "v"], ["output"], name="bn1d"
    )
    check(model(nodes, inits, [1, 3]), rng.normal(size=(1, 3)))


def test_activations_residual_reshape_identity_and_pooling():
    rng = np.random.default_rng(10)
    nodes = [
        helper.make_node("Conv", ["input", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Add", ["r", "input"], ["res"], name="residual"),
        helper.make_node("Sub", ["res", "c"], ["d"], name="diff"),
        helper.make_node(
            "AveragePool",
            ["d"],
            ["p"],
            name="pool",
            kernel_shape=[2, 2],
            strides=[2, 2],
            pads=[1, 1, 0, 0],
        ),
        helper.make_node(
            "AveragePool",
            ["p"],
            ["p2"],
            name="pool_inc",
            kernel_shape=[2, 2],
            pads=[1, 1, 1, 1],
            count_include_pad=1,
        ),
        helper.make_node("Identity", ["p2"], ["i"], name="id"),
        helper.make_node("Reshape", ["i", "shape"], ["f"], name="reshape"),
        helper.make_node("Sigmoid", ["f"], ["s"], name="sig"),
        helper.make_node("Tanh", ["s"], ["t"], name="tanh"),
        helper.make_node("MatMul", ["t", "W2"], ["output"], name="fc"),
    ]
    inits = [
        init("W", rng.normal(size=(2, 2, 3, 3))),
        numpy_helper.from_array(np.int64([0, -1]), "shape"),
        init("W2", rng.normal(size=(2 * 4 * 4, 3))),
    ]
    m = model(nodes, inits, [1, 2, 5, 5])
    g = check(m, rng.normal(size=(1, 2, 5, 5)))
    kinds = [n.op.kind for n in g.nodes]
    assert kinds == [
        "conv2d",
        "relu",
        "add",
        "sub",
        "avgpool",
        "avgpool",
        "identity",
        "reshape",
        "sigmoid",
        "tanh",
        "linear",
    ]
    assert [n.name for n in g.nodes][:3] == ["conv", "relu", "residual"]
    assert g.nodes[2].inputs == ["relu", "input"]


def test_constant_subgraphs_are_folded_exactly():
    """Weights computed from constants (W = reshape(A)·(1/3) + B, a mean minus a Constant)
    are evaluated exactly at load time, not in float32."""
    rng = np.random.default_rng(15)
    A, B = rng.normal(size=(6,)), rng.normal(size=(2, 3))
    nodes = [
        helper.make_node("Constant", [], ["three"], name="c3", value_float=3.0),
        helper.make_node("Reshape", ["A", "shape"], ["A2"], name="rs"),
        helper.make_node("Div", ["A2", "three"], ["A3"], name="div"),
        helper.make_node("Add", ["A3", "B"], ["W"], name="addw"),
        helper.make_node("Identity", ["W"], ["Wi"], name="idw"),
        helper.make_node("MatMul", ["input", "Wi"], ["output"], name="mm"),
    ]
    inits = [init("A", A), init("B", B), numpy_helper.from_array(np.int64([2, -1]), "shape")]
    m = model(nodes, inits, [1, 2])
    g = check(m, rng.normal(size=(1, 2)))
    assert [n.name for n in g.nodes] == ["mm"]
    W = g.nodes[0].op.params.weight  # out × in = (A/3 + B)ᵀ, exactly
    a32, b32 = A.astype(np.float32).reshape(2, 3), B.astype(np.float32)
    assert W == [[q(a32[i, j]) / 3 + q(b32[i, j]) for i in range(2)] for j in range(3)]
    bad = [
        helper.make_node("Div", ["A", "Z"], ["Q"], name="dz"),
        helper.make_node("Add", ["input", "Q"], ["output"], name="add"),
    ]
    with pytest.raises(InvalidModelError, match="dz.*zero"):
        build_graph(parse_onnx(model(bad, [init("A", [1.0]), init("Z", [0.0])], [1, 1])))


def test_global_average_pool_and_flatten_axis():
    rng = np.random.default_rng(11)
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["output"], name="flat", axis=-3),
    ]
    check(model(nodes, [], [1, 3, 4, 5]), rng.normal(size=(1, 3, 4, 5)))


# ----------------------------------------------------------------------------- hypothesis models


def _draw_model(data, rng):
    """A random small model of supported ops; returns (model, input shape)."""
    nodes, inits, k = [], [], [0]

    def name(p):
        k[0] += 1
        return f"{p}{k[0]}"

    def const(arr):
        n = name("w")
        inits.append(init(n, arr))
        return n

    def node(op, ins, **attrs):
        out = name("t")
        nodes.append(helper.make_node(op, ins, [out], name=name(op.lower()), **attrs))
        return out

    image = data.draw(st.booleans(), label="image")
    if image:
        C, H, W = data.draw(st.tuples(st.integers(1, 3), st.integers(3, 6), st.integers(3, 6)))
        in_shape = [1, C, H, W]
        x = "input"
        for _ in range(data.draw(st.integers(1, 3), label="conv blocks")):
            kind = data.draw(st.sampled_from(["conv", "bn", "relu", "pool", "res", "norm"]))
            if kind == "conv":
                g = data.draw(st.sampled_from([d for d in (1, 2, 3) if C % d == 0]))
                co = g * data.draw(st.integers(1, 2))
                kh, kw = data.draw(st.integers(1, min(3, H))), data.draw(st.integers(1, min(3, W)))
                s, p = data.draw(st.integers(1, 2)), data.draw(st.integers(0, 1))
                x = node(
                    "Conv",
                    [
                        x,
                        const(rng.normal(0, 0.7, (co, C // g, kh, kw))),
                        const(rng.normal(0, 0.2, co)),
                    ],
                    pads=[p] * 4,
                    strides=[s, s],
                    group=g,
                )
                C, H, W = co, (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
            elif kind == "bn":
                x = node(
                    "BatchNormalization",
                    [x]
                    + [
                        const(a)
                        for a in (
                            rng.uniform(-1.5, 1.5, C),
                            rng.normal(0, 0.2, C),
                            rng.normal(0, 0.3, C),
                            rng.uniform(0.1, 2, C),
                        )
                    ],
                    epsilon=float(rng.choice([1e-5, 1e-3, 0.1])),
                )
            elif kind == "relu":
                x = node("Relu", [x])
            elif kind == "pool" and H >= 2 and W >= 2:
                x = node("AveragePool", [x], kernel_shape=[2, 2], strides=[1, 1])
                H, W = H - 1, W - 1
            elif kind == "res":
                y = node(
                    "Relu",
                    [node("Conv", [x, const(rng.normal(0, 0.5, (C, C, 3, 3)))], pads=[1, 1, 1, 1])],
                )
                x = node("Add", [x, y])
            else:
                x = node(
                    "Div",
                    [
                        node("Sub", [x, const(rng.normal(0, 0.3, (1, C, 1, 1)))]),
                        const(rng.uniform(0.5, 2, (1, C, 1, 1))),
                    ],
                )
        x = node("Flatten", [x])
        n = C * H * W
    else:
        n = data.draw(st.integers(1, 6), label="inputs")
        in_shape, x = [1, n], "input"
    for _ in range(data.draw(st.integers(1, 4), label="dense layers")):
        kind = data.draw(
            st.sampled_from(["gemm", "matmul", "bn", "relu", "sigmoid", "tanh", "norm", "res"])
        )
        if kind == "gemm":
            m = data.draw(st.integers(1, 6))
            tb = data.draw(st.integers(0, 1))
            x = node(
                "Gemm",
                [
                    x,
                    const(rng.normal(0, 0.6, (m, n) if tb else (n, m))),
                    const(rng.normal(0, 0.2, m)),
                ],
                transB=tb,
                alpha=float(np.float32(rng.uniform(0.5, 1.5))),
                beta=float(np.float32(rng.uniform(-1, 1))),
            )
            n = m
        elif kind == "matmul":
            m = data.draw(st.integers(1, 6))
            x = node(
                "Add",
                [
                    node("MatMul", [x, const(rng.normal(0, 0.6, (n, m)))]),
                    const(rng.normal(0, 0.2, m)),
                ],
            )
            n = m
        elif kind == "bn":
            x = node(
                "BatchNormalization",
                [x]
                + [
                    const(a)
                    for a in (
                        rng.uniform(-1.5, 1.5, n),
                        rng.normal(0, 0.2, n),
                        rng.normal(0, 0.3, n),
                        rng.uniform(0.1, 2, n),
                    )
                ],
            )
        elif kind in ("relu", "sigmoid", "tanh"):
            x = node(kind.capitalize(), [x])
        elif kind == "norm":
            x = node(
                "Mul",
                [node("Sub", [x, const(rng.normal(0, 0.3, n))]), const(rng.uniform(-2, 2, (1, n)))],
            )
        else:
            y = node("Tanh", [node("Gemm", [x, const(rng.normal(0, 0.5, (n, n)))], transB=1)])
            x = node("Sub", [x, y])
    nodes.append(helper.make_node("Identity", [x], ["output"], name="out"))
    return model(nodes, inits, in_shape), in_shape


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(0, 2**32 - 1))
def test_random_models_agree_with_onnxruntime_and_ibp_is_sound(data, seed):
    rng = np.random.default_rng(seed)
    m, in_shape = _draw_model(data, rng)
    g, out_shape = build_graph(parse_onnx(m))
    x = rng.normal(0, 1, in_shape).astype(np.float32)
    # float32 rounding accumulates along the graph: allow 2 ulps (of the largest magnitude)
    # per node, at least ULPS (measured over 400 drawn models: at most 1.14 per node)
    assert_agrees(g, m, x, ulps=max(ULPS, 2 * len(g)))
    # every method's bounds over a small box around x contain the exact value at x and at a
    # corner: IBP exact, CROWN and forward affine in the dyadic and interval modes
    from exactbounds.commands.bounds import compute
    from exactbounds.numbers import make_context

    r = fmpq(1, 64)
    xs = [q(v) for v in x.ravel()]
    box = Box([v - r for v in xs], [v + r for v in xs])
    corner = [v - r if k % 2 else v + r for k, v in enumerate(xs)]
    ys = [evaluate(g, pt, CTX) for pt in (xs, corner)]
    method, mode = data.draw(
        st.sampled_from(
            [("ibp", "exact"), ("crown", "dyadic"), ("affine", "dyadic"), ("crown", "interval")]
        )
    )
    res = compute(Model(g, box), method, CTX if mode == "exact" else make_context(mode, bits=64))
    lo, hi = res.output.outer(res.ctx)
    assert len(lo) == prod(out_shape)
    for y in ys:
        for v, a, b in zip(y, lo, hi):
            va, vb = ends(v)
            assert a <= va and vb <= b, (method, mode)


# ----------------------------------------------------------------------------- errors


def test_unsupported_op_names_op_and_node():
    nodes = [helper.make_node("Erf", ["input"], ["output"], name="erf7")]
    with pytest.raises(UnsupportedOperatorError, match="Erf node 'erf7'.*'Erf' is not"):
        build_graph(parse_onnx(model(nodes, [], [1, 1, 4, 4])))
    nodes = [helper.make_node("Div", ["input", "input"], ["output"], name="square")]
    with pytest.raises(UnsupportedOperatorError, match="Div node 'square'.*not linear"):
        build_graph(parse_onnx(model(nodes, [], [1, 3])))
    nodes = [helper.make_node("Relu", ["input"], ["output"], name="r", domain="com.microsoft")]
    with pytest.raises(UnsupportedOperatorError, match="domain 'com.microsoft'"):
        parse_onnx(model(nodes, [], [1, 3]))


@pytest.mark.parametrize("data", [b"", b"\x00\x01garbage\xff" * 10, b"not onnx at all"])
def test_malformed_files(tmp_path, data):
    p = tmp_path / "bad.onnx"
    p.write_bytes(data)
    with pytest.raises(MalformedFileError, match="bad.onnx"):
        load_onnx(p)


def test_truncated_file_and_missing_file(tmp_path):
    good = (EXAMPLES / "mlp_bn.onnx").read_bytes()
    p = tmp_path / "trunc.onnx"
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(MalformedFileError):
        load_onnx(p)
    with pytest.raises(MalformedFileError, match="cannot read"):
        load_onnx(tmp_path / "missing.onnx")


def _bad_tensor(kind):
    t = onnx.TensorProto()
    t.name, t.data_type = "W", TensorProto.FLOAT
    t.dims.extend([2, 3])
    if kind == "size":
        t.float_data.extend([1.0, 2.0])  # 2 values for a 2x3 tensor: ValueError
    elif kind == "raw":
        t.raw_data = b"abc"  # not a whole number of floats: ValueError
    elif kind == "dtype":
        t.data_type = 999  # no such data type: KeyError
    else:
        t.data_location = TensorProto.EXTERNAL  # external file missing: ValidationError
        e = t.external_data.add()
        e.key, e.value = "location", "missing.bin"
    return t


@pytest.mark.parametrize("kind", ["size", "raw", "dtype", "external"])
def test_malformed_initializer_is_a_malformed_file_error(kind):
    """Each way onnx fails to read a tensor (ValueError, KeyError, the checker's
    ValidationError) becomes one MalformedFileError naming the initializer, not a traceback."""
    m = model(
        [helper.make_node("Gemm", ["input", "W"], ["output"], transB=1)],
        [_bad_tensor(kind)],
        [1, 3],
    )
    with pytest.raises(MalformedFileError, match="initializer 'W'"):
        parse_onnx(m)


@pytest.mark.parametrize("kind", ["reference", "tensor"])
def test_malformed_attribute_is_a_malformed_file_error(kind):
    """A reference attribute outside a function (helper's ValueError) and a Constant whose tensor
    value cannot be read (numpy_helper's ValueError, formerly a traceback) name the attribute."""
    if kind == "reference":
        node = helper.make_node("Relu", ["input"], ["output"], name="r")
        a = node.attribute.add()
        a.name, a.type, a.ref_attr_name = "alpha", onnx.AttributeProto.FLOAT, "outer"
        nodes = [node]
    else:
        node = helper.make_node("Constant", [], ["c"], name="k", value=_bad_tensor("size"))
        nodes = [node, helper.make_node("Add", ["input", "c"], ["output"], name="a")]
    with pytest.raises(MalformedFileError, match="attribute '(alpha|value)'"):
        build_graph(parse_onnx(model(nodes, [], [1, 3])))


def test_external_data_is_read_exactly(tmp_path):
    rng = np.random.default_rng(13)
    W = rng.normal(size=(3, 4)).astype(np.float32)
    m = model(
        [helper.make_node("Gemm", ["input", "W"], ["output"], name="fc", transB=1)],
        [init("W", W)],
        [1, 4],
    )
    onnx.save_model(
        m,
        str(tmp_path / "ext.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="ext.data",
        size_threshold=0,
    )
    assert (tmp_path / "ext.data").exists()
    g = load_onnx(tmp_path / "ext.onnx").graph
    assert g.nodes[0].op.params.weight[2] == [q(v) for v in W[2]]
    (tmp_path / "ext.data").unlink()
    with pytest.raises(MalformedFileError, match="ext.onnx"):
        load_onnx(tmp_path / "ext.onnx")


def test_structural_errors():
    rng = np.random.default_rng(12)
    gemm = [helper.make_node("Gemm", ["input", "W"], ["output"], name="fc", transB=1)]
    with pytest.raises(ShapeError, match="fc.*input A has shape \\(1, 4\\), expected \\(1, 3\\)"):
        build_graph(parse_onnx(model(gemm, [init("W", rng.normal(size=(2, 3)))], [1, 4])))
    # a first operand with several rows is a matrix product (one row per input row)
    g, shape = build_graph(parse_onnx(model(gemm, [init("W", rng.normal(size=(2, 4)))], [2, 4])))
    assert shape == (2, 2) and g.dims[g.output] == 4
    conv = [helper.make_node("Conv", ["input", "W"], ["output"], name="cv")]
    with pytest.raises(ShapeError, match="cv"):
        build_graph(
            parse_onnx(model(conv, [init("W", rng.normal(size=(2, 3, 3, 3)))], [1, 2, 4, 4]))
        )
    res = [
        helper.make_node("Gemm", ["input", "W"], ["h"], name="fc", transB=1),
        helper.make_node("Add", ["h", "input"], ["output"], name="res"),
    ]
    with pytest.raises(ShapeError, match="res.*same shape"):
        build_graph(parse_onnx(model(res, [init("W", rng.normal(size=(2, 4)))], [1, 4])))
    order = [
        helper.make_node("Relu", ["h"], ["output"], name="late"),
        helper.make_node("Relu", ["input"], ["h"], name="early"),
    ]
    with pytest.raises(MalformedFileError, match="topological"):
        parse_onnx(model(order, [], [1, 4]))
    nan = [helper.make_node("Add", ["input", "c"], ["output"], name="a")]
    with pytest.raises(InvalidValueError, match="c\\[1\\]"):
        parse_onnx(model(nan, [init("c", [1.0, np.nan])], [1, 2]))
    bad_reshape = [helper.make_node("Reshape", ["input", "s"], ["output"], name="rs")]
    with pytest.raises(ShapeError, match="rs"):
        build_graph(
            parse_onnx(model(bad_reshape, [numpy_helper.from_array(np.int64([5]), "s")], [1, 4]))
        )


def test_two_real_inputs_is_an_error():
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["output"], name="add")],
        "t",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, [1, 2]) for k in "ab"],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, OUT_SHAPE)],
    )
    with pytest.raises(UnsupportedOperatorError, match="exactly one graph input"):
        parse_onnx(helper.make_model(g))


def test_load_model_onnx_with_spec_checks_sizes(tmp_path):
    sp = tmp_path / "p.vnnlib"
    sp.write_text(
        "(declare-const X_0 Real) (declare-const Y_0 Real)(assert (<= X_0 1)) (assert (>= X_0 0))"
    )
    with pytest.raises(ShapeError, match="declares 1 inputs"):
        load_model(EXAMPLES / "mlp_bn.onnx", sp)


def test_vnncomp_style_model_and_spec_through_the_cli(tmp_path, capsys):
    """An opset-8 export (initializers among the inputs, input [1, 1, 1, 5], normalisation
    Sub/Div, Flatten, MatMul+Add) with a VNN-LIB spec in declare-fun / (* -1.0 X) style."""
    import json

    from exactbounds.cli import main

    rng = np.random.default_rng(14)
    nodes = [
        helper.make_node("Sub", ["input", "mean"], ["a"], name="sub"),
        helper.make_node("Div", ["a", "range"], ["b"], name="div"),
        helper.make_node("Flatten", ["b"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "W0"], ["m0"], name="mm0"),
        helper.make_node("Add", ["m0", "b0"], ["h0"], name="add0"),
        helper.make_node("Relu", ["h0"], ["r0"], name="relu0"),
        helper.make_node("MatMul", ["r0", "W1"], ["m1"], name="mm1"),
        helper.make_node("Add", ["m1", "b1"], ["output"], name="add1"),
    ]
    inits = [
        init("mean", rng.normal(size=(1, 1, 1, 5))),
        init("range", rng.uniform(1, 3, 5)),
        init("W0", rng.normal(size=(5, 8))),
        init("b0", rng.normal(size=8)),
        init("W1", rng.normal(size=(8, 5))),
        init("b1", rng.normal(size=5)),
    ]
    m = model(nodes, inits, [1, 1, 1, 5], opset=8, ir=3, inits_as_inputs=True)
    net = save(tmp_path, m, "acas_like.onnx")
    lines = [f"(declare-fun X_{i} () Real)" for i in range(5)]
    lines += [f"(declare-fun Y_{j} () Real)" for j in range(5)]
    for i in range(5):
        lines += [f"(assert (<= X_{i} 0.{i + 1}))", f"(assert (<= (* -1.0 X_{i}) 0.05))"]
    lines += ["(assert (or (and (<= Y_0 Y_1) (<= Y_0 Y_2)) (and (>= Y_3 1000.5))))"]
    spec = tmp_path / "prop.vnnlib"
    spec.write_text("\n".join(lines))
    mdl = load_model(net, spec)
    assert mdl.input_set.lo[0] == fmpq(-1, 20) and mdl.input_set.hi[4] == fmpq(1, 2)
    assert [n.op.kind for n in mdl.graph] == ["linear", "relu", "linear"]  # all folded
    assert_agrees(mdl.graph, m, rng.uniform(-0.05, 0.1, (1, 1, 1, 5)))
    for method in ("ibp", "crown"):
        assert main(["bounds", str(net), "--spec", str(spec), "--method", method, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)["outputs"]
        lo, hi = [to_exact(v) for v in out["lo"]], [to_exact(v) for v in out["hi"]]
        for x in _sound_points(mdl.input_set, random.Random(1), 5):
            y = evaluate(mdl.graph, x, CTX)
            assert all(a <= v <= b for v, a, b in zip(y, lo, hi))
