"""``exactbounds bounds`` on networks: JSON layers of every kind, Lp-ball inputs, methods and
modes, --intermediate, the --context alias, bad files."""

import json
from importlib import resources

import pytest
from flint import fmpq

from exactbounds.algorithms.ibp import evaluate
from exactbounds.cli import main
from exactbounds.errors import InvalidModelError, ShapeError, UnsupportedOperatorError
from exactbounds.inputsets import LpBall, sample, vertices
from exactbounds.io.json_net import load_json_network
from exactbounds.numbers import RationalContext, to_exact

NET = {
    "input": {"norm": "1", "center": [0, "1/2", 0, "-1/4"], "radius": "1/4"},
    "input_shape": [1, 2, 2],
    "layers": [
        {
            "type": "conv2d",
            "weight": [[[[1, -1], [0, 2]]], [[[0.5, 0], ["1/3", 1]]]],
            "bias": [0, "0.1"],
            "padding": [0, 0, 1, 1],
        },
        {"type": "batchnorm", "mean": [0, 1], "var": [1, 3], "gamma": [1, -2], "beta": [0, 1]},
        {"type": "relu", "name": "act"},
        {"type": "avgpool", "kernel": 2, "stride": 1, "padding": 1},
        {"type": "flatten"},
        {"type": "linear", "weight": [[1] * 18, [(-1) ** k for k in range(18)]], "bias": [0, 1]},
        {"type": "scale", "factor": [2, "1/2"], "offset": 1},
        {"type": "sub", "constant": "0.5"},
        {"type": "relu"},
        {"type": "identity"},
        {"type": "add", "from": 5},
        {"type": "reshape", "shape": [2, 1]},
        {"type": "flatten"},
    ],
}


def write(tmp_path, data, name="net.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return str(p)


def test_every_layer_type_loads_and_every_method_mode_is_sound(tmp_path, capsys):
    path = write(tmp_path, NET)
    m = load_json_network(path)
    assert isinstance(m.input_set, LpBall) and m.input_set.norm == "1"
    assert m.graph.node("layers[10]").inputs == ["layers[9]", "layers[5]"]
    ex = RationalContext()
    pts = sample(m.input_set, None, 4) + vertices(m.input_set)
    ys = [evaluate(m.graph, x, ex) for x in pts]
    for method in ("ibp", "crown", "affine"):
        for mode in ("exact", "dyadic", "interval"):
            assert (
                main(
                    ["bounds", path, "--method", method, "--mode", mode, "--json", "--intermediate"]
                )
                == 0
            )
            res = json.loads(capsys.readouterr().out)
            assert res["method"] == method and res["mode"] == mode
            assert res["status"] in ("exact", "enclosure", "bound")
            assert "layers[1]" in res["nodes"]  # the pre-activation of "act"
            lo = [to_exact(v) for v in res["outputs"]["lo"]]
            hi = [to_exact(v) for v in res["outputs"]["hi"]]
            for y in ys:
                for i, v in enumerate(y):
                    assert lo[i] <= ex.upper(v) and ex.lower(v) <= hi[i]
    assert main(["bounds", path, "--method", "crown"]) == 0
    text = capsys.readouterr().out
    assert "CROWN" in text and "DyadicContext(bits=64)" in text


def test_context_alias_and_bits(tmp_path, capsys):
    path = write(
        tmp_path,
        {
            "input_lo": [-1, -1],
            "input_hi": [1, 1],
            "layers": [
                {"type": "linear", "weight": [[1, 2], [-1, 1]]},
                {"type": "relu"},
                {"type": "linear", "weight": [[1, -1]]},
            ],
        },
    )
    assert main(["bounds", path, "--method", "crown", "--context", "rational", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["mode"] == "exact" and res["status"] == "exact"
    assert res["outputs"]["lo"] == ["-2"] and res["outputs"]["hi"] == ["3"]
    assert main(["bounds", path, "--method", "crown", "--bits", "8", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["mode"] == "dyadic" and res["bits"] == 8 and res["status"] == "bound"
    assert main(["bounds", path, "--method", "crown", "--lower-slope", "one", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"]["lo"] == ["-4"]


@pytest.mark.parametrize(
    "layers, err, words",
    [
        ([{"type": "softmax"}], UnsupportedOperatorError, "softmax"),
        ([{"type": "add", "from": 3}], InvalidModelError, "from"),
        ([{"type": "add", "from": "nowhere"}], InvalidModelError, "nowhere"),
        ([{"type": "linear", "weight": [[1, 2, 3]]}], ShapeError, "layers[0]"),
        ([{"type": "conv2d", "weight": [[[[1]]]]}], ShapeError, "in_shape"),
        ([{"type": "reshape", "shape": [3]}], ShapeError, "reshape"),
    ],
)
def test_bad_networks_raise_errors_naming_the_layer(layers, err, words):
    with pytest.raises(err, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_json_network({"input_lo": [0, 0], "input_hi": [1, 1], "layers": layers})


def test_bad_input_ball_and_cli_exit_status(tmp_path, capsys):
    bad = write(
        tmp_path,
        {"input": {"norm": "inf", "center": [0], "radius": -1}, "layers": [{"type": "relu"}]},
    )
    assert main(["bounds", bad, "--method", "crown"]) == 2
    assert "radius" in capsys.readouterr().err
    bad = write(
        tmp_path, {"input": {"norm": "7", "center": [0], "radius": 1}, "layers": [{"type": "relu"}]}
    )
    assert main(["bounds", bad]) == 2
    assert "norm" in capsys.readouterr().err


@pytest.mark.requires("onnx")
def test_bundled_onnx_examples_with_spec(capsys):
    ex = resources.files("exactbounds") / "examples"
    for name in ("mlp_bn", "cnn_bn"):
        onnx_path, spec = ex / f"{name}.onnx", ex / f"{name}.vnnlib"
        assert onnx_path.is_file() and spec.is_file(), "bundled ONNX example missing"
        outs = {}
        for method in ("ibp", "crown"):
            assert (
                main(["bounds", str(onnx_path), "--spec", str(spec), "--method", method, "--json"])
                == 0
            )
            outs[method] = json.loads(capsys.readouterr().out)["outputs"]
        # both are sound, so they overlap; on these models CROWN is the tighter one
        for k in range(len(outs["ibp"]["lo"])):
            assert to_exact(outs["crown"]["lo"][k]) <= to_exact(outs["ibp"]["hi"][k])
            assert to_exact(outs["ibp"]["lo"][k]) <= to_exact(outs["crown"]["hi"][k])


def test_residual_add_uses_the_named_operand():
    m = load_json_network(
        {
            "input_lo": [1, 2],
            "input_hi": [1, 2],
            "layers": [
                {"type": "linear", "weight": [[2, 0], [0, 3]], "name": "fc"},
                {"type": "relu"},
                {"type": "add", "from": "input"},
                {"type": "sub", "from": "fc"},
            ],
        }
    )
    assert evaluate(m.graph, [1, 2], RationalContext()) == [fmpq(1), fmpq(2)]
