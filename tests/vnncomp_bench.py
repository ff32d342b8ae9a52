"""The bundled VNN-COMP-style benchmark folder the suite tests build: random networks (ONNX made
with onnx.helper, and JSON), VNN-LIB specs, and a tool's per-instance result files with
planted counterexamples of every verdict kind (one valid only in float32).

``build_benchmark(folder, seed)`` writes ``instances.csv``, the models and specs, and
``results/`` (one ``{onnx stem}_{vnnlib stem}.txt`` per instance); returns ``EXPECTED``: the
verdict the suite must give each instance with ``--results``.

The shift network ``y = x + 2^-25`` on ``x in [0, 1]``: at ``x = 1`` the exact output is
``1 + 2^-25 > 1`` while float32 rounds it to ``1.0``, so "Y_0 <= 1" is violated only in float32.
"""

import json
from pathlib import Path

import numpy as np

from exactbounds.algorithms.ibp import evaluate
from exactbounds.io.load import load_model

SHIFT = 2.0**-25
EXPECTED = {
    "relu_safe": ("unsat", "confirmed"),
    "relu_unsafe": ("sat", "confirmed"),
    "shift_le1": ("sat", "float_artifact"),  # valid only in float32
    "shift_tol": ("sat", "float_artifact"),  # valid only through the 1e-4 tolerance
    "relu_safe2": ("sat", "refuted"),
    "shift_ge2": ("unknown", "noted"),
    "relu_unsafe2": ("unsat", "refuted"),
    "shift_eq": ("unsat", "unconfirmed"),  # '=' on a non-dyadic point: never decided
}
WITHOUT_RESULTS = {
    "relu_safe": "proved",
    "relu_unsafe": "violated",
    "shift_le1": "violated",
    "shift_tol": "violated",
    "relu_safe2": "proved",
    "shift_ge2": "proved",
    "relu_unsafe2": "violated",
    "shift_eq": "unknown",
}


def relu_onnx(path, seed=0, sizes=(3, 8, 8, 2)):
    """A random float32 Gemm/Relu network written with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], [], "input"
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        W = (rng.standard_normal((b, a)) / np.sqrt(a)).astype(np.float32)
        c = (0.1 * rng.standard_normal(b)).astype(np.float32)
        inits += [numpy_helper.from_array(W, f"W{k}"), numpy_helper.from_array(c, f"b{k}")]
        out = "output" if k == len(sizes) - 2 else f"h{k}"
        nodes.append(
            helper.make_node(
                "Gemm",
                [prev, f"W{k}", f"b{k}"],
                [out if k == len(sizes) - 2 else f"g{k}"],
                transB=1,
            )
        )
        if k < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [f"g{k}"], [out]))
        prev = out
    g = helper.make_graph(
        nodes,
        "relu",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, sizes[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, sizes[-1]])],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    Path(path).write_bytes(m.SerializeToString())


def shift_json(path):
    """``y_0 = x_0 + 2^-25`` as a JSON network."""
    Path(path).write_text(
        json.dumps(
            {
                "input_lo": [0],
                "input_hi": [1],
                "layers": [{"type": "linear", "weight": [[1]], "bias": ["0x1p-25"]}],
            }
        )
    )


def dec(v):
    """The exact decimal of a float (every float has one)."""
    from decimal import Decimal

    return format(Decimal(float(v)), "f")


def vnnlib(path, lo, hi, n_out, output):
    lines = [f"(declare-const X_{i} Real)" for i in range(len(lo))]
    lines += [f"(declare-const Y_{i} Real)" for i in range(n_out)]
    for i, (a, b) in enumerate(zip(lo, hi)):
        lines += [f"(assert (>= X_{i} {a}))", f"(assert (<= X_{i} {b}))"]
    lines.append(f"(assert {output})")
    Path(path).write_text("\n".join(lines) + "\n")


def cex_text(x, y):
    return (
        "sat\n("
        + "\n".join(
            [f"(X_{i} {v})" for i, v in enumerate(x)] + [f"(Y_{i} {v})" for i, v in enumerate(y)]
        )
        + ")\n"
    )


def build_benchmark(folder, seed=0):
    d = Path(folder)
    (d / "results").mkdir(parents=True, exist_ok=True)
    relu_onnx(d / "net_relu.onnx", seed)
    shift_json(d / "net_shift.json")
    centre = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    cx = [dec(v) for v in centre]
    r = 0.01
    lo, hi = [dec(v - r) for v in centre], [dec(v + r) for v in centre]
    vnnlib(d / "probe.vnnlib", lo, hi, 2, "(<= Y_0 0)")
    m = load_model(d / "net_relu.onnx", spec=d / "probe.vnnlib")
    y0 = float(evaluate(m.graph, [v for v in m.input_set.lo])[0])  # near the centre
    yc = [float(v) for v in evaluate(m.graph, [float(v) for v in centre])]
    (d / "probe.vnnlib").unlink()
    specs = {
        "relu_safe": ("net_relu.onnx", lo, hi, 2, f"(<= Y_0 {dec(y0 - 2.0)})"),
        "relu_unsafe": ("net_relu.onnx", lo, hi, 2, f"(<= Y_0 {dec(yc[0] + 1e-3)})"),
        "shift_le1": ("net_shift.json", ["0"], ["1"], 1, "(<= Y_0 1)"),
        "shift_tol": ("net_shift.json", ["0.5"], ["1"], 1, f"(<= Y_0 {dec(0.5 + SHIFT)})"),
        "relu_safe2": ("net_relu.onnx", lo, hi, 2, f"(<= Y_0 {dec(y0 - 1.5)})"),
        "shift_ge2": ("net_shift.json", ["0"], ["1"], 1, "(>= Y_0 2)"),
        "relu_unsafe2": ("net_relu.onnx", lo, hi, 2, f"(>= Y_0 {dec(yc[0] - 1e-3)})"),
        "shift_eq": ("net_shift.json", ["0"], ["1"], 1, "(= Y_0 0.3333333)"),
    }
    rows = []
    for name, (net, a, b, n_out, out) in specs.items():
        vnnlib(d / f"{name}.vnnlib", a, b, n_out, out)
        rows.append(f"{net},{name}.vnnlib,{12 if name == 'shift_eq' else 60}")
    (d / "instances.csv").write_text("\n".join(rows) + "\n")
    res = {
        "relu_safe": "unsat\n",
        "relu_unsafe": cex_text(cx, [dec(v) for v in yc]),
        "shift_le1": cex_text(["1.0"], ["1.0"]),
        "shift_tol": cex_text(["0.49995"], [dec(0.49995 + SHIFT)]),
        "relu_safe2": cex_text(cx, [dec(v) for v in yc]),
        "shift_ge2": "unknown\n",
        "relu_unsafe2": "unsat\n",
        "shift_eq": "unsat\n",
    }
    for name, text in res.items():
        net = specs[name][0].rsplit(".", 1)[0]
        (d / "results" / f"{net}_{name}.txt").write_text(text)
    return EXPECTED
