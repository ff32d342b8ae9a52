"""Bad input gets our documented exception naming the parameter, and the CLI exits 2 with one
line and no traceback."""

import copy
import json
import math
import subprocess
import sys

import pytest

from exactbounds import AffineVec, BatchNormParams, Box, aff_batchnorm, ibp_batchnorm
from exactbounds.cli import main
from exactbounds.errors import (
    ExactBoundsError,
    InvalidBoxError,
    InvalidModelError,
    InvalidValueError,
    MalformedFileError,
    ShapeError,
    UnsupportedOperatorError,
)

GOOD = dict(running_mean=[0, 1], running_var=[1, 2], gamma=[1, -1], beta=[0, 0], eps=1e-5)


def bn(**over):
    kw = copy.deepcopy(GOOD)
    kw.update(over)
    return BatchNormParams(**kw)


@pytest.mark.parametrize("field", ["running_mean", "running_var", "gamma", "beta"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_parameters(field, bad):
    vals = copy.deepcopy(GOOD[field])
    vals[1] = bad
    snapshot = copy.deepcopy(vals)
    with pytest.raises(InvalidValueError, match=rf"{field}\[1\] = (nan|inf|-inf)"):
        bn(**{field: vals})
    assert repr(vals) == repr(snapshot)  # the input is left as it was


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_eps(bad):
    with pytest.raises(InvalidValueError, match=r"eps = "):
        bn(eps=bad)


def test_negative_variance_strict_and_clamp():
    with pytest.raises(InvalidModelError, match=r"running_var\[1\] = -1/4: negative variance"):
        bn(running_var=[1, "-0.25"])
    assert bn(running_var=[1, "-0.25"], variance="clamp").running_var[1] == 0


@pytest.mark.parametrize("eps", [-1e-5, "-1/3", -5e-324])
def test_eps_negative(eps):
    with pytest.raises(InvalidModelError, match=r"eps = .*must be >= 0"):
        bn(eps=eps)


def test_variance_plus_eps_zero():
    with pytest.raises(InvalidModelError, match=r"running_var\[0\] \+ eps = 0"):
        bn(running_var=[0, 1], eps=0)


def test_unknown_variance_policy():
    with pytest.raises(InvalidModelError, match="variance"):
        bn(variance="loose")


def test_length_mismatch():
    with pytest.raises(ShapeError, match=r"gamma has length 3, running_mean has 2"):
        bn(gamma=[1, 2, 3])


def test_layout_shape_mismatch():
    with pytest.raises(ShapeError, match="does not start with the 2 channels"):
        bn(shape=(3, 4))


def test_empty_box():
    with pytest.raises(InvalidBoxError, match=r"lo\[1\] = 2 > hi\[1\] = 1"):
        Box.from_values([0, 2], [1, 1])


def test_box_and_layer_sizes_must_match():
    with pytest.raises(ShapeError, match="3 entries, the layer has 2"):
        ibp_batchnorm(bn(), Box.from_values([0, 0, 0], [1, 1, 1]))
    with pytest.raises(ShapeError):
        aff_batchnorm(bn(), AffineVec([[1]], [0]))
    with pytest.raises(ShapeError, match=r"row A\[1\]"):
        AffineVec([[1, 2], [3]], [0, 0])


def test_all_errors_share_the_base():
    for cls in (
        InvalidValueError,
        InvalidModelError,
        ShapeError,
        UnsupportedOperatorError,
        InvalidBoxError,
        MalformedFileError,
    ):
        assert issubclass(cls, ExactBoundsError)


NET = {
    "input_lo": [0, 0],
    "input_hi": [1, 1],
    "layers": [
        {
            "type": "batchnorm",
            "mean": [0, 0],
            "var": [1, 1],
            "gamma": [1, 1],
            "beta": [0, 0],
            "eps": 1e-5,
        },
        {"type": "linear", "weight": [[1, 1]], "bias": [0]},
    ],
}


def mutate(path, *keys_value):
    net = copy.deepcopy(NET)
    *keys, value = keys_value
    tgt = net
    for k in keys[:-1]:
        tgt = tgt[k]
    tgt[keys[-1]] = value
    return net


CASES = [
    ("nan gamma", ("layers", 0, "gamma", [1, "nan"]), r"layers\[0\]\.gamma\[1\]"),
    ("negative var", ("layers", 0, "var", [1, -2]), r"layers\[0\]\.running_var\[1\] = -2"),
    ("eps negative", ("layers", 0, "eps", -1e-5), r"layers\[0\]\.eps = .* must be >= 0"),
    ("unknown type", ("layers", 1, "type", "softmax"), r"layers\[1\]\.type = 'softmax'"),
    ("lo > hi", ("input_lo", [0, 2]), r"lo\[1\] = 2 > hi\[1\] = 1"),
    ("shape", ("layers", 1, "weight", [[1, 1, 1]]), r"layers\[1\] \(linear\) takes 3 inputs"),
    ("bad number", ("input_hi", [1, "one"]), r"input\.hi\[1\] = 'one'"),
]


@pytest.mark.parametrize("name,change,pattern", CASES, ids=[c[0] for c in CASES])
def test_cli_bad_model_exit_2_one_line(tmp_path, capsys, name, change, pattern):
    f = tmp_path / "net.json"
    f.write_text(json.dumps(mutate(None, *change)))
    before = f.read_text()
    assert main(["bounds", str(f)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("exactbounds: error: ")
    assert __import__("re").search(pattern, err), err
    assert f.read_text() == before


def test_cli_malformed_json(tmp_path, capsys):
    f = tmp_path / "net.json"
    f.write_text('{"layers": [1, 2,]}')
    assert main(["bounds", str(f)]) == 2
    err = capsys.readouterr().err
    assert "malformed JSON at line 1" in err and err.count("\n") == 1


def test_cli_missing_file(tmp_path, capsys):
    assert main(["bounds", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_subprocess_prints_no_traceback(tmp_path):
    f = tmp_path / "net.json"
    f.write_text(json.dumps(mutate(None, "layers", 0, "var", [1, -2])))
    r = subprocess.run(
        [sys.executable, "-m", "exactbounds", "bounds", str(f)], capture_output=True, text=True
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0
