"""The public API (``exactbounds.load/bounds/check/derivatives``): sound results on drawn
networks, lists and numpy arrays as inputs, agreement with the CLI's ``--json`` (the real entry
point, in a subprocess), and short reprs."""

import json
import random
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exactbounds as eb
from exact_ref import F
from exactbounds.algorithms.ibp import evaluate
from exactbounds.audit import SOUND, UNSOUND
from exactbounds.audit.derivatives import ExactDerivatives
from exactbounds.errors import ExactBoundsError, InvalidValueError
from exactbounds.io.results import result_json
from exactbounds.numbers import RationalContext, f64_down, f64_up
from exactbounds.tables import MAX_ROWS

EX = Path(__file__).resolve().parent.parent / "exactbounds" / "examples"
CTX = RationalContext()
SETTINGS = dict(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def cli_json(*argv):
    """``python -m exactbounds ARGV --json`` as parsed JSON, and its exit status."""
    p = subprocess.run(
        [sys.executable, "-m", "exactbounds", *map(str, argv), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.stderr == "" or "Traceback" not in p.stderr, p.stderr
    return json.loads(p.stdout), p.returncode


def assert_short(text, max_lines=MAX_ROWS + 6):
    lines = text.splitlines()
    assert len(lines) <= max_lines, text
    assert all(len(line) <= 120 for line in lines), text
    # no long exact fractions: a float64 in %.17g shows at most 20 digits in a row (0.000ddd)
    assert not re.search(r"\d{21}", text), text


@st.composite
def relu_nets(draw, activation="relu"):
    """A small network ``linear -> act -> linear`` over a box, as a JSON document."""
    n, h, m = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    q = st.integers(-8, 8).map(lambda k: f"{k}/4")
    lo = [draw(st.integers(-4, 3)) for _ in range(n)]
    hi = [a + draw(st.integers(0, 4)) for a in lo]  # degenerate widths included
    return {
        "input_lo": [f"{a}/4" for a in lo],
        "input_hi": [f"{b}/4" for b in hi],
        "layers": [
            {
                "type": "linear",
                "weight": [[draw(q) for _ in range(n)] for _ in range(h)],
                "bias": [draw(q) for _ in range(h)],
            },
            {"type": activation},
            {
                "type": "linear",
                "weight": [[draw(q) for _ in range(h)] for _ in range(m)],
                "bias": [draw(q) for _ in range(m)],
            },
        ],
    }


def points(model, rng, n=6):
    lo, hi = model.input_set.outer()
    pts = [list(lo), list(hi)]
    pts += [[a + (b - a) * fmpq(rng.randrange(65), 64) for a, b in zip(lo, hi)] for _ in range(n)]
    return pts


def write(tmp_path, doc, name="net.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


# ----------------------------------------------------------------------------- bounds


@settings(**SETTINGS)
@given(
    net=relu_nets(),
    method=st.sampled_from(["ibp", "crown", "affine"]),
    mode=st.sampled_from([None, "exact", "interval"]),
    seed=st.integers(0, 99),
)
def test_bounds_contain_the_exact_value_at_points_of_the_box(tmp_path, net, method, mode, seed):
    model = eb.load(write(tmp_path, net))
    res = eb.bounds(model, method=method, mode=mode)
    lo, hi = res.output.outer(res.ctx)
    for x in points(model, random.Random(seed)):
        for y, a, b in zip(evaluate(model.graph, x, CTX), lo, hi):
            assert a <= y <= b


def test_bounds_by_path_and_by_model_agree_and_modes_default_per_method():
    m = eb.load(EX / "bn.json")
    assert eb.bounds(m).ctx.mode == "exact"
    assert eb.bounds(m, "crown").ctx.mode == "dyadic" and eb.bounds(m, "crown").ctx.bits == 64
    assert eb.bounds(m, "affine", bits=80).ctx.bits == 80
    a, b = eb.bounds(m, "crown"), eb.bounds(str(EX / "bn.json"), "crown")
    assert a.output.outer(a.ctx) == b.output.outer(b.ctx)


def test_bounds_agree_with_the_cli_json():
    onnx = pytest.importorskip("onnx")  # noqa: F841 - the example is an ONNX file
    model = eb.load(EX / "mlp_bn.onnx", spec=EX / "mlp_bn.vnnlib")
    res = eb.bounds(model, "crown", intermediate=True)
    cli, rc = cli_json(
        "bounds",
        EX / "mlp_bn.onnx",
        "--spec",
        EX / "mlp_bn.vnnlib",
        "--method",
        "crown",
        "--intermediate",
    )
    assert rc == 0
    assert json.loads(json.dumps(result_json(res, intermediate=True))) == cli
    assert any("proved" in n for n in res.notes)


def test_bounds_rejects_unknown_methods_and_models():
    with pytest.raises(InvalidValueError, match="method"):
        eb.bounds(eb.load(EX / "bn.json"), method="zonotope")
    with pytest.raises(InvalidValueError, match="model"):
        eb.bounds(42)
    with pytest.raises(InvalidValueError, match="relaxation"):
        eb.bounds(eb.load(EX / "bn.json"), method="crown", relaxation="nope")


# ----------------------------------------------------------------------------- check


def outward(res):
    lo, hi = res.output.outer(res.ctx)
    return [f64_down(v) for v in lo], [f64_up(v) for v in hi]


@settings(**SETTINGS)
@given(
    net=relu_nets(),
    method=st.sampled_from(["ibp", "crown"]),
    seed=st.integers(0, 99),
    form=st.sampled_from(["dict", "pair", "numpy", "numpy_dict"]),
)
def test_check_of_sound_claims_and_of_claims_past_an_exact_value(tmp_path, net, method, seed, form):
    """The method's own bounds, rounded outward to float64, are sound in every input form;
    a lower claim above every output value is unsound, with a witness inside the box whose
    exact output lies below it."""
    model = eb.load(write(tmp_path, net))
    lo, hi = outward(eb.bounds(model, method))

    def claim(lo, hi):
        if form == "dict":
            return {"lo": lo, "hi": hi}
        if form == "pair":
            return (lo, hi)
        if form == "numpy":
            return (np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64))
        return {"lo": np.array(lo), "hi": np.array(hi)}

    res = eb.check(model, claim(lo, hi), method=method, budget=20, n_random=2)
    assert [v.verdict for v in res.verdicts] == [SOUND] * (2 * len(lo))
    x = points(model, random.Random(seed))[2]
    y = evaluate(model.graph, x, CTX)
    bad_lo = [max(f64_up(v), h) + 1 for v, h in zip(y, hi)]  # above every output value
    res = eb.check(model, claim(bad_lo, hi), method=method, budget=40, n_random=4)
    for v in res.verdicts:
        assert v.verdict == (UNSOUND if v.side == "lo" else SOUND)
        if v.side == "lo":
            w = evaluate(model.graph, v.witness.x, CTX)[v.output]
            assert model.input_set.contains(v.witness.x) and F(w) < F(v.claimed)


def test_check_takes_float32_arrays_as_float32_claims_and_paths(tmp_path):
    model = eb.load(EX / "bn.json")
    lo, hi = outward(eb.bounds(model))
    res = eb.check(model, (np.array(lo, dtype=np.float32), np.array(hi, dtype=np.float32)))
    assert res.dtype == "float32"
    p = write(tmp_path, {"lo": lo, "hi": hi}, "claim.json")
    assert [v.verdict for v in eb.check(model, p).verdicts] == [SOUND] * 4
    with pytest.raises(InvalidValueError, match="claimed"):
        eb.check(model, 3.5)
    with pytest.raises(ExactBoundsError):
        eb.check(model, {"lo": [0]})  # one entry for two outputs


def test_check_agrees_with_the_cli_json(tmp_path):
    model = eb.load(EX / "bn.json")
    lo, hi = outward(eb.bounds(model))
    claim = {"lo": [lo[0] + 1, lo[1]], "hi": [hi[0], hi[1] - 1]}
    path = write(tmp_path, claim, "claim.json")
    res = eb.check(model, claim, budget=50)
    cli, rc = cli_json("check", EX / "bn.json", "--claimed", path, "--budget", "50")
    assert rc == 1
    assert json.loads(json.dumps(res.to_json())) == cli


# ----------------------------------------------------------------------------- derivatives


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(net=relu_nets("tanh"), data=st.data())
def test_derivatives_contain_the_exact_derivatives(tmp_path, net, data):
    model = eb.load(write(tmp_path, net))
    n = model.graph.input_dim
    kind = data.draw(st.sampled_from(["wrt", "list", "numpy"]))
    if kind == "wrt":
        d = eb.derivatives(model, wrt=np.int64(data.draw(st.integers(0, n - 1))))
    else:
        v = [data.draw(st.integers(-3, 3)) or 1 for _ in range(n)]
        lo, hi = model.input_set.outer()
        mid = [float(F((a + b) / 2)) for a, b in zip(lo, hi)]
        if kind == "numpy":
            v, mid = np.array(v, dtype=np.float64), np.array(mid)
        d = eb.derivatives(model, direction=v, origin=mid, t_range=(0, 0.125))
    ref = ExactDerivatives(model.graph, d.curve, 2)
    plo, phi = ref.param_box()
    for k in range(3):
        p = [a + (b - a) * fmpq(k, 2) for a, b in zip(plo, phi)]
        for order, box in ((0, d.value), (1, d.d1), (2, d.d2)):
            blo, bhi = box.outer(d.ctx)
            for j in range(ref.out_dim):
                elo, ehi = ref.enclose(order, j, p)
                assert blo[j] <= ehi and elo <= bhi[j]


def test_derivatives_agree_with_the_cli_json_and_feed_check():
    path = EX / "pinn_tanh_bn.json"
    d = eb.derivatives(path, wrt=0, rule="seed")
    cli, rc = cli_json("derivatives", path, "--wrt", "0", "--second-derivative-rule", "seed")
    assert rc == 0 and json.loads(json.dumps(d.to_json())) == cli
    res = eb.check(path, d.to_json(), method="deriv", budget=10)
    assert {(v.node, v.verdict) for v in res.verdicts if v.side == "lo"} >= {("u''", UNSOUND)}
    with pytest.raises(InvalidValueError, match="wrt"):
        eb.derivatives(path, wrt=0, origin=[0])
    with pytest.raises(InvalidValueError, match="direction"):
        eb.derivatives(path)


# ----------------------------------------------------------------------------- reprs


def test_the_readme_api_block_runs_and_prints_short_lines(capsys, monkeypatch):
    text = (EX.parent.parent / "README.md").read_text()
    block = text.split("## The API in ten lines")[1].split("```python")[1].split("```")[0]
    assert len(block.strip().splitlines()) <= 11
    monkeypatch.chdir(EX.parent.parent)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "BoundsResult: crown" in out and "AuditResult: crown" in out and "u''" in out
    assert_short(out, 60)


def test_reprs_are_short_tables(tmp_path):
    rng = random.Random(1)
    wide = {
        "input_lo": [0, 0],
        "input_hi": [1, "1/3"],
        "layers": [
            {
                "type": "linear",
                "weight": [
                    [f"{rng.randint(-9, 9)}/7", f"{rng.randint(-9, 9)}/3"] for _ in range(50)
                ],
                "bias": [f"1/{k + 3}" for k in range(50)],
            },
            {"type": "tanh"},
        ],
    }
    model = eb.load(write(tmp_path, wide))
    res = eb.bounds(model, intermediate=True)
    for text in (repr(res), str(res)):
        assert_short(text)
        assert f"... {50 - MAX_ROWS} more rows" in text
    assert_short(repr(model), 1)
    lo, hi = outward(res)
    audit = eb.check(model, ([v + 0.01 for v in lo], hi), budget=10, n_random=2)
    assert_short(repr(audit)) and "AuditResult" in repr(audit)
    d = eb.derivatives(model, direction=[1, 1])
    assert_short(repr(d), 3 + MAX_ROWS + 1)
    # the exact values stay available, and the float64 columns are rounded outward
    exact_lo, exact_hi = res.output.outer(res.ctx)
    assert all(F(a) >= Fraction(f) for a, f in zip(exact_lo, lo))
    assert all(F(b) <= Fraction(f) for b, f in zip(exact_hi, hi))
    assert isinstance(audit.verdicts[0].claimed, fmpq)
    bad = next(v for v in audit.verdicts if v.witness is not None)
    assert_short(repr(bad), 1) and assert_short(repr(bad.witness), 1)
