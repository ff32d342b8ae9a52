"""``exactbounds bounds`` on the bundled BatchNorm example."""

import json
from fractions import Fraction
from importlib import resources

from exact_ref import F
from exactbounds.cli import main
from exactbounds.numbers import to_exact

EXAMPLE = str(resources.files("exactbounds") / "examples" / "bn.json")


def run_json(capsys, *args):
    assert main(["bounds", EXAMPLE, "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_bounds_json_shape_and_outward_floats(capsys):
    res = run_json(capsys)
    assert res["method"] == "ibp" and res["context"] == "rational"
    o = res["outputs"]
    assert o["status"] == "enclosure"  # √(σ²+ε) is irrational in this example
    for lo, hi, flo, fhi in zip(o["lo"], o["hi"], o["lo_f64"], o["hi_f64"]):
        lo, hi = F(to_exact(lo)), F(to_exact(hi))
        assert lo <= hi
        assert Fraction(flo) <= lo and hi <= Fraction(fhi)


def test_rational_and_interval_contexts_agree(capsys):
    r = run_json(capsys)["outputs"]
    i = run_json(capsys, "--context", "interval", "--prec", "80")
    assert i["context"] == "interval"
    i = i["outputs"]
    for key in ("lo", "hi"):
        for a, b in zip(r[key], i[key]):
            # outer ends of two enclosures of the same exact IBP value: within 2^-60 relative
            a, b = F(to_exact(a)), F(to_exact(b))
            assert abs(a - b) <= abs(a) * Fraction(1, 2**60) + Fraction(1, 2**70)
    assert F(to_exact(i["lo"][0])) <= F(to_exact(r["lo"][0]))  # interval is the wider one here


def test_bounds_text_output(capsys):
    assert main(["bounds", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert "IBP" in out and len(out.splitlines()) >= 2 + 2  # header + one row per output


def test_mode_alias(capsys):
    a = run_json(capsys, "--mode", "interval", "--prec", "64")
    b = run_json(capsys, "--context", "interval", "--prec", "64")
    assert a["outputs"] == b["outputs"]


def test_spec_notes_property_and_polytope(tmp_path, capsys):
    ex = resources.files("exactbounds") / "examples"
    assert (
        main(
            [
                "bounds",
                str(ex / "mlp_bn.onnx"),
                "--spec",
                str(ex / "mlp_bn.vnnlib"),
                "--method",
                "crown",
                "--json",
            ]
        )
        == 0
    )
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert any("property of" in n and ": proved" in n for n in notes)
    net = tmp_path / "net.json"
    net.write_text(
        json.dumps(
            {
                "input_lo": [0, 0],
                "input_hi": [1, 1],
                "layers": [{"type": "linear", "weight": [[1, 1]], "bias": [0]}],
            }
        )
    )
    spec = tmp_path / "p.vnnlib"
    spec.write_text(
        "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
        "(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (>= X_1 0))\n"
        "(assert (<= X_1 1))\n(assert (<= (+ X_0 X_1) 1))\n(assert (>= Y_0 3))\n"
    )
    assert main(["bounds", str(net), "--spec", str(spec), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["outputs"]["hi"] == ["2"]  # bounded over the enclosing box, and it says so
    assert any("polytope" in n for n in res["notes"])
    assert any(": proved" in n for n in res["notes"])  # y <= 2 < 3
