"""``--slopes``: replaying a tool's ReLU lower slopes, each checked exactly on the exact
intermediate bounds (an invalid one is named with the exact point where it fails)."""

import json
import random
import subprocess
import sys

import pytest
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.crown import crown
from exactbounds.algorithms.ibp import evaluate
from exactbounds.algorithms.profiles import make_profile
from exactbounds.errors import InvalidValueError, MalformedFileError
from exactbounds.inputsets import sample, vertices
from exactbounds.io.json_net import load_json_network
from exactbounds.io.slopes import parse_slopes
from exactbounds.numbers import make_context

NET = {
    "input_lo": [-1, -1],
    "input_hi": [1, 1],
    "layers": [
        {"type": "linear", "weight": [[1, 1], [1, -1], [2, 0.5]], "bias": [0, 0.5, 3]},
        {"type": "relu"},
        {"type": "linear", "weight": [[1, -1, 1], [-1, 2, 0.5]], "bias": [0, 0]},
    ],
}


def test_replaying_the_adaptive_choice_changes_nothing():
    m = load_json_network(NET)
    ctx = make_context("exact")
    base = crown(m.graph, m.input_set, ctx, intermediate=True)
    lo, hi = base.nodes["layers[0]"].outer()
    alphas = [fmpq(1) if h > -l else fmpq(0) for l, h in zip(lo, hi)]
    prof = make_profile("exactbounds", {"layers[1]": alphas})
    again = crown(m.graph, m.input_set, ctx, relaxation=prof)
    assert again.output.outer() == base.output.outer()
    assert any("lower slopes replayed" in n for n in again.notes)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(0, 8).map(lambda k: fmpq(k, 8)), min_size=3, max_size=3),
    st.sampled_from(["exactbounds", "auto_lirpa"]),
)
def test_any_valid_slopes_give_sound_bounds(alphas, relaxation):
    m = load_json_network(NET)
    exact = make_context("exact")
    pts = vertices(m.input_set, 8) + sample(m.input_set, random.Random(0), 8)
    for mode in ("exact", "dyadic"):
        ctx = make_context(mode)
        out = crown(
            m.graph, m.input_set, ctx, relaxation=make_profile(relaxation, {"layers[1]": alphas})
        ).output
        lo, hi = out.outer(ctx)
        for p in pts:
            y = evaluate(m.graph, p, exact)
            assert all(a <= v <= b for a, v, b in zip(lo, y, hi))


@pytest.mark.parametrize("alpha,point", [(fmpq(3, 2), "at x = 2,"), (fmpq(-1, 4), "at x = -2,")])
def test_an_invalid_slope_is_named_with_its_exact_point(alpha, point):
    m = load_json_network(NET)
    prof = make_profile("exactbounds", {"layers[1]": [alpha, None, None]})
    with pytest.raises(InvalidValueError, match=r"slopes\['layers\[1\]'\]\[0\]") as e:
        crown(m.graph, m.input_set, make_context("exact"), relaxation=prof)
    assert point in str(e.value) and "relu(x)" in str(e.value)


def test_slopes_file_errors():
    with pytest.raises(MalformedFileError):
        parse_slopes([1, 2])
    with pytest.raises(MalformedFileError):
        parse_slopes({"layers[1]": {"upper": [1]}})
    with pytest.raises(InvalidValueError, match=r"\[1\]"):
        parse_slopes({"layers[1]": [0.5, "nan?"]})
    assert parse_slopes({"a": {"lower": [[0.5], [None]]}}) == {"a": [fmpq(1, 2), None]}


def test_cli_slopes(tmp_path):
    net, slopes, bad = tmp_path / "n.json", tmp_path / "s.json", tmp_path / "b.json"
    net.write_text(json.dumps(NET))
    slopes.write_text(json.dumps({"layers[1]": [0.5, 0.25, 1]}))
    bad.write_text(json.dumps({"layers[1]": [2, 0, 0]}))

    def cli(*argv):
        return subprocess.run(
            [sys.executable, "-m", "exactbounds", *map(str, argv)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    p = cli("bounds", net, "--method", "crown", "--slopes", slopes, "--json")
    assert p.returncode == 0, p.stderr
    assert any("lower slopes replayed" in n for n in json.loads(p.stdout)["notes"])
    p = cli("bounds", net, "--method", "crown", "--slopes", bad)
    assert p.returncode == 2 and "not a lower line of ReLU" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
