"""``exactbounds.testing``: ``assert_sound`` and the hypothesis strategies, used as a verifier
author would (claims from a "tool": here exactbounds' own CROWN, a float simulation, and
deliberately wrong claims)."""

from fractions import Fraction

import pytest
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.crown import crown
from exactbounds.algorithms.ibp import evaluate
from exactbounds.errors import InvalidValueError
from exactbounds.io.json_net import load_json_network
from exactbounds.numbers import f64_down, f64_up, make_context, to_exact
from exactbounds.testing import UnsoundClaim, as_model, assert_sound
from exactbounds.testing.strategies import boxes, networks, points

SLOW = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=12, **SLOW)
@given(st.data())
def test_points_lie_in_the_box_and_networks_load(data):
    net = data.draw(networks(batchnorm=True, residual=True))
    model = load_json_network(net)
    x = data.draw(points(net))
    assert model.input_set.contains([to_exact(v) for v in x])
    lo, hi = data.draw(boxes(3, "float64"))
    assert all(a <= b for a, b in zip(lo, hi))


@settings(max_examples=10, **SLOW)
@given(st.data())
def test_assert_sound_accepts_the_oracles_own_bounds_and_refutes_a_shrunk_claim(data):
    net = data.draw(networks(activations=("relu", "tanh")))
    model = load_json_network(net)
    res = crown(model.graph, model.input_set, make_context("dyadic"), relaxation="auto_lirpa")
    lo, hi = res.output.outer()
    assert_sound(
        net,
        None,
        [f64_down(v) for v in lo],
        [f64_up(v) for v in hi],
        method="crown",
        relaxation="auto_lirpa",
        budget=20,
    )
    # a claim above the exact output at a point of the set is refuted with a witness
    x = data.draw(points(net))
    y = evaluate(model.graph, [to_exact(v) for v in x], make_context("exact"))
    exact = make_context("exact")
    i = data.draw(st.integers(0, len(y) - 1))
    claim_lo = [None] * len(y)
    claim_lo[i] = exact.upper(y[i]) + fmpq(1, 2**10)
    with pytest.raises(UnsoundClaim) as e:
        assert_sound(net, None, claim_lo, None, method="ibp", budget=200, n_random=16)
    bad = e.value.verdicts
    assert bad and bad[0].verdict == "unsound" and bad[0].witness is not None
    w = bad[0].witness
    yw = evaluate(model.graph, w.x, exact)[i]
    assert exact.upper(yw) < claim_lo[i]  # the witness is an exact counterexample
    assert "exact output at x" in str(e.value)


def test_same_algorithm_flags_a_claim_tighter_than_rounding_explains():
    net = {
        "input_lo": [-1.0, -1.0],
        "input_hi": [1.0, 1.0],
        "layers": [
            {"type": "linear", "weight": [[1.0, -1.0], [0.5, 2.0]], "bias": [0.0, 1.0]},
            {"type": "relu"},
            {"type": "linear", "weight": [[1.0, 1.0]], "bias": [0.0]},
        ],
    }
    model = load_json_network(net)
    lo, hi = crown(model.graph, model.input_set, make_context("exact")).output.outer()
    # a claim inside the exact CROWN bound but still sound (the true range is smaller)
    tight = [float(hi[0]) - 0.25]
    res = assert_sound(net, None, None, tight, method="crown")
    assert res.verdicts[0].verdict == "inside_exact" and res.verdicts[0].rounding == "beyond"
    with pytest.raises(UnsoundClaim, match="beyond rounding"):
        assert_sound(net, None, None, tight, method="crown", same_algorithm=True)


def test_as_model_takes_an_input_set_and_needs_one():
    net = {
        "input_lo": [0.0],
        "input_hi": [1.0],
        "layers": [{"type": "linear", "weight": [[2.0]], "bias": [0.0]}],
    }
    m = as_model(net, ([Fraction(1, 2)], [Fraction(3, 4)]))
    assert m.input_set.outer() == ([fmpq(1, 2)], [fmpq(3, 4)])
    assert_sound(m, None, [1.0], [1.5], method="ibp")
    with pytest.raises(UnsoundClaim):
        assert_sound(m, None, [1.25], None, method="ibp")
    from exactbounds.io.json_net import Model

    with pytest.raises(InvalidValueError, match="input_set"):
        as_model(Model(m.graph, None))
