"""Generate the bundled ONNX examples and their VNN-LIB specs (deterministic seeds)::

    python exactbounds/examples/make_onnx_examples.py [OUTDIR]

writes ``mlp_bn.onnx`` (input normalisation Sub/Div, Gemm, BatchNormalization, Relu,
MatMul+Add, Relu, Gemm with alpha/beta) and ``cnn_bn.onnx`` (Conv, BatchNormalization, Relu,
strided Conv, BatchNormalization, Relu, Flatten, Gemm), each with a ``.vnnlib`` spec: an L∞ box of
decimal radius around a centre point, and the property "the output at the centre's label stays
the largest" written, as VNN-LIB does, as the counterexample ``or`` of ``Y_j >= Y_label``.

The weights are float32 drawn from ``numpy.random.default_rng(seed)``; the label comes from
``onnx.reference.ReferenceEvaluator`` at the centre. The tests regenerate the files and compare.
"""

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 8


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def _model(nodes, inits, in_shape, out_shape, name):
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(
        graph, producer_name="exactbounds-examples", opset_imports=[helper.make_opsetid("", OPSET)]
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _bn_stats(rng, c):
    """BatchNormalization scale, bias, running mean, running variance (positive), float32."""
    return (
        rng.uniform(0.5, 1.5, c) * rng.choice([-1, 1], c),
        rng.normal(0, 0.2, c),
        rng.normal(0, 0.3, c),
        rng.uniform(0.2, 2.0, c),
    )


def _bn_node(prefix, x, y, rng, c, eps):
    names = [f"{prefix}.{k}" for k in ("scale", "bias", "mean", "var")]
    inits = [_init(n, a) for n, a in zip(names, _bn_stats(rng, c))]
    return helper.make_node("BatchNormalization", [x] + names, [y], name=prefix, epsilon=eps), inits


def mlp_bn(seed=0):
    """6 → normalise → Gemm 16 → BN → Relu → MatMul+Add 12 → Relu → Gemm 3."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    inits += [
        _init("norm.mean", rng.uniform(-0.2, 0.2, (1, 6))),
        _init("norm.std", rng.uniform(0.5, 2.0, (1, 6))),
    ]
    nodes += [
        helper.make_node("Sub", ["input", "norm.mean"], ["x0"], name="norm_sub"),
        helper.make_node("Div", ["x0", "norm.std"], ["x1"], name="norm_div"),
    ]
    inits += [
        _init("fc1.weight", rng.normal(0, 0.5, (16, 6))),
        _init("fc1.bias", rng.normal(0, 0.1, 16)),
    ]
    nodes.append(
        helper.make_node("Gemm", ["x1", "fc1.weight", "fc1.bias"], ["h1"], name="fc1", transB=1)
    )
    bn, bi = _bn_node("bn1", "h1", "h1n", rng, 16, 1e-5)
    nodes += [bn, helper.make_node("Relu", ["h1n"], ["r1"], name="relu1")]
    inits += bi
    inits += [
        _init("fc2.weight", rng.normal(0, 0.4, (16, 12))),  # in × out: x @ W
        _init("fc2.bias", rng.normal(0, 0.1, 12)),
    ]
    nodes += [
        helper.make_node("MatMul", ["r1", "fc2.weight"], ["h2"], name="fc2_matmul"),
        helper.make_node("Add", ["h2", "fc2.bias"], ["h2b"], name="fc2_add"),
        helper.make_node("Relu", ["h2b"], ["r2"], name="relu2"),
    ]
    inits += [
        _init("fc3.weight", rng.normal(0, 0.5, (12, 3))),
        _init("fc3.bias", rng.normal(0, 0.1, 3)),
    ]
    nodes.append(
        helper.make_node(
            "Gemm", ["r2", "fc3.weight", "fc3.bias"], ["output"], name="fc3", alpha=0.75, beta=1.5
        )
    )
    return _model(nodes, inits, [1, 6], [1, 3], "mlp_bn")


def cnn_bn(seed=1):
    """1×6×6 → Conv 3×3 pad 1 (4 ch) → BN → Relu → Conv 3×3 stride 2 pad 1 (4 ch, 2 groups)
    → BN → Relu → Flatten → Gemm 3."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    inits += [
        _init("conv1.weight", rng.normal(0, 0.5, (4, 1, 3, 3))),
        _init("conv1.bias", rng.normal(0, 0.1, 4)),
    ]
    nodes.append(
        helper.make_node(
            "Conv",
            ["input", "conv1.weight", "conv1.bias"],
            ["c1"],
            name="conv1",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
        )
    )
    bn, bi = _bn_node("bn1", "c1", "c1n", rng, 4, 1e-3)
    nodes += [bn, helper.make_node("Relu", ["c1n"], ["r1"], name="relu1")]
    inits += bi
    inits += [
        _init("conv2.weight", rng.normal(0, 0.5, (4, 2, 3, 3))),
        _init("conv2.bias", rng.normal(0, 0.1, 4)),
    ]
    nodes.append(
        helper.make_node(
            "Conv",
            ["r1", "conv2.weight", "conv2.bias"],
            ["c2"],
            name="conv2",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            strides=[2, 2],
            group=2,
        )
    )
    bn, bi = _bn_node("bn2", "c2", "c2n", rng, 4, 1e-5)
    nodes += [
        bn,
        helper.make_node("Relu", ["c2n"], ["r2"], name="relu2"),
        helper.make_node("Flatten", ["r2"], ["f"], name="flatten"),
    ]
    inits += bi
    inits += [
        _init("fc.weight", rng.normal(0, 0.3, (3, 36))),
        _init("fc.bias", rng.normal(0, 0.1, 3)),
    ]
    nodes.append(
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["output"], name="fc", transB=1)
    )
    return _model(nodes, inits, [1, 1, 6, 6], [1, 3], "cnn_bn")


def _dec(v):
    return f"{v:.6f}"


def robustness_vnnlib(model, centre, radius, comment):
    """An L∞ box of ``radius`` (a decimal string) around ``centre`` (rounded to 6 decimals),
    and the counterexample ``or_j (Y_j >= Y_label)`` for the label the model gives the centre."""
    from onnx.reference import ReferenceEvaluator

    centre = np.round(np.asarray(centre, dtype=np.float64).ravel(), 6)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    y = ReferenceEvaluator(model).run(None, {"input": centre.astype(np.float32).reshape(shape)})
    y = np.asarray(y[0]).ravel()
    label = int(np.argmax(y))
    lines = [
        f"; {comment}",
        f"; L-infinity ball of radius {radius}; the label at the centre is {label}",
        "",
    ]
    lines += [f"(declare-const X_{i} Real)" for i in range(centre.size)] + [""]
    lines += [f"(declare-const Y_{j} Real)" for j in range(y.size)] + [""]
    for i, c in enumerate(centre):
        lo, hi = _dec(c - float(radius)), _dec(c + float(radius))
        lines.append(f"(assert (<= X_{i} {hi}))")
        # both spellings of a lower bound that VNN-COMP files use
        lines.append(
            f"(assert (<= (* -1.0 X_{i}) {_dec(-float(lo))}))"
            if i % 2
            else f"(assert (>= X_{i} {lo}))"
        )
    lines += ["", "; counterexample: some other output is at least the label's", "(assert (or"]
    lines += [f"    (and (>= Y_{j} Y_{label}))" for j in range(y.size) if j != label]
    lines += ["))", ""]
    return "\n".join(lines)


def build_all():
    """``{file name: bytes or text}`` of every bundled example."""
    out = {}
    mlp = mlp_bn()
    out["mlp_bn.onnx"] = mlp.SerializeToString()
    out["mlp_bn.vnnlib"] = robustness_vnnlib(
        mlp,
        np.random.default_rng(10).uniform(-1, 1, 6),
        "0.02",
        "mlp_bn.onnx: local robustness at a random point (make_onnx_examples.py)",
    )
    cnn = cnn_bn()
    out["cnn_bn.onnx"] = cnn.SerializeToString()
    out["cnn_bn.vnnlib"] = robustness_vnnlib(
        cnn,
        np.random.default_rng(11).uniform(0, 1, 36),
        "0.01",
        "cnn_bn.onnx: local robustness at a random image (make_onnx_examples.py)",
    )
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    outdir = Path(argv[0]) if argv else Path(__file__).resolve().parent
    outdir.mkdir(parents=True, exist_ok=True)
    for name, data in build_all().items():
        path = outdir / name
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
