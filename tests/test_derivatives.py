"""Derivative bounds through networks (issue 7): the Taylor-mode enclosures contain the exact
derivatives, computed by differentiating the network's exact sympy expression; the seed's
BatchNorm rule misses u'' and the derivative audit finds an exact witness t.

Containment is decided by :meth:`ExactDerivatives.outside` (arb balls at rising precision, or
exact rationals), never by floats."""

import json

import pytest
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.taylor import Curve, propagate
from exactbounds.audit.claims import Claim
from exactbounds.audit.derivatives import ExactDerivatives, UndecidedError, audit_derivatives
from exactbounds.cli import main
from exactbounds.core import Box
from exactbounds.errors import (
    AmbiguousBranch,
    InvalidValueError,
    ShapeError,
    UnsupportedOperatorError,
)
from exactbounds.graph import Graph
from exactbounds.numbers import IntervalContext, RationalContext, to_exact
from exactbounds.operators.activations import Sigmoid, Tanh
from exactbounds.operators.batchnorm import BatchNorm, BatchNormParams
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTEXTS = {"exact": lambda: RationalContext(), "interval": lambda: IntervalContext()}


def inside(ref, order, j, p, lo, hi):
    """The exact derivative lies in [lo, hi] (decided exactly / rigorously)."""
    for side, c in (("lo", lo), ("hi", hi)):
        try:
            out, _ = ref.outside(order, j, p, side, c, 128, 4096)
        except UndecidedError:
            v = ref.value(order, j, p)
            out = not (isinstance(v, fmpq) and v == c)
        if out:
            return False
    return True


def q(draw_frac):
    return fmpq(draw_frac.numerator, draw_frac.denominator)


small = st.fractions(min_value=-2, max_value=2, max_denominator=16).map(q)


@st.composite
def smooth_networks(draw):
    """Random Linear / BatchNorm / Tanh / Sigmoid chains with 1-2 inputs and widths 1-3."""
    n_in = draw(st.integers(1, 2))
    ops, dim = [], n_in
    for k in range(draw(st.integers(1, 2))):
        m = draw(st.integers(1, 3))
        W = [[draw(small) for _ in range(dim)] for _ in range(m)]
        ops.append(Linear.from_weights(W, [draw(small) for _ in range(m)], name=f"lin{k}"))
        ops.append(draw(st.sampled_from([Tanh, Sigmoid]))((m,), name=f"act{k}"))
        if draw(st.booleans()):
            var = [
                draw(st.fractions(min_value=0, max_value=2, max_denominator=8).map(q))
                for _ in range(m)
            ]
            ops.append(
                BatchNorm(
                    BatchNormParams(
                        [draw(small) for _ in range(m)],
                        var,
                        [draw(small) for _ in range(m)],
                        [draw(small) for _ in range(m)],
                        "1/100",
                        name=f"bn{k}",
                    )
                )
            )
        dim = m
    W = [[draw(small) for _ in range(dim)]]
    ops.append(Linear.from_weights(W, [draw(small)], name="out"))
    return Graph.sequential(n_in, ops)


@SETTINGS
@given(g=smooth_networks(), data=st.data(), mode=st.sampled_from(sorted(CONTEXTS)))
def test_exact_derivatives_lie_in_the_enclosures(g, data, mode):
    n = g.input_dim
    origin = [data.draw(small) for _ in range(n)]
    direction = [data.draw(small) for _ in range(n)]
    a, b = sorted([data.draw(small), data.draw(small)])
    curve = Curve(origin, direction, a, b)
    ctx = CONTEXTS[mode]()
    jet = propagate(g, curve, ctx, 2, "chain")
    ref = ExactDerivatives(g, curve, 2)
    ts = [a, b, (a + b) / 2] + [
        a + (b - a) * data.draw(st.fractions(min_value=0, max_value=1, max_denominator=97).map(q))
        for _ in range(2)
    ]
    boxes = {0: jet.value.outer(ctx), 1: jet.d1.outer(ctx), 2: jet.d2.outer(ctx)}
    for t in ts:
        for k, (lo, hi) in boxes.items():
            for j in range(len(lo)):
                assert inside(ref, k, j, [t], lo[j], hi[j]), (k, j, t, lo[j], hi[j])


@SETTINGS
@given(g=smooth_networks(), data=st.data())
def test_partial_derivatives_over_the_box(g, data):
    n = g.input_dim
    lo = [data.draw(small) for _ in range(n)]
    hi = [
        v + data.draw(st.fractions(min_value=0, max_value=1, max_denominator=8).map(q)) for v in lo
    ]
    i = data.draw(st.integers(0, n - 1))
    curve = Curve.wrt(Box(lo, hi), i)
    ctx = RationalContext()
    jet = propagate(g, curve, ctx, 2)
    ref = ExactDerivatives(g, curve, 2)
    for _ in range(3):
        x = [
            a
            + (b - a) * data.draw(st.fractions(min_value=0, max_value=1, max_denominator=31).map(q))
            for a, b in zip(lo, hi)
        ]
        for k, box in ((1, jet.d1), (2, jet.d2)):
            blo, bhi = box.outer(ctx)
            assert inside(ref, k, 0, x, blo[0], bhi[0])


def tanh_bn_net():
    """Linear -> Tanh -> BatchNorm -> Linear, one input."""
    return Graph.sequential(
        1,
        [
            Linear.from_weights([[fmpq(3, 2)], [-2], [fmpq(1, 2)]], [fmpq(1, 10), fmpq(1, 5), 0]),
            Tanh((3,)),
            BatchNorm(
                BatchNormParams(
                    [fmpq(1, 10), 0, fmpq(1, 5)],
                    [fmpq(1, 2), 2, 1],
                    [2, fmpq(-3, 2), 1],
                    [0, fmpq(1, 10), fmpq(1, 5)],
                    1e-5,
                )
            ),
            Linear.from_weights([[1, 1, -1]], [0]),
        ],
    )


@pytest.mark.parametrize("mode", sorted(CONTEXTS))
def test_seed_rule_misses_and_chain_rule_contains(mode):
    g, curve = tanh_bn_net(), Curve([0], [1], -1, 1)
    ctx = CONTEXTS[mode]()
    ref = ExactDerivatives(g, curve, 2)
    seed = propagate(g, curve, ctx, 2, "seed")
    chain = propagate(g, curve, ctx, 2, "chain")
    (slo,), (shi,) = seed.d2.outer(ctx)
    assert slo == shi == 0  # the zero box of deriv2_batchnorm, then a linear layer
    (clo,), (chi,) = chain.d2.outer(ctx)
    ts = [fmpq(k, 8) for k in range(-8, 9)]
    missed = [t for t in ts if not inside(ref, 2, 0, [t], slo, shi)]
    assert missed  # u''(t) != 0 somewhere
    assert all(inside(ref, 2, 0, [t], clo, chi) for t in ts)
    # u' is the same under both rules and contains the exact u'
    assert seed.d1.outer(ctx) == chain.d1.outer(ctx)
    assert all(inside(ref, 1, 0, [t], *(v[0] for v in chain.d1.outer(ctx))) for t in ts)


def _claims(jet, ctx, dtype="float64"):
    return {1: Claim(*jet.d1.outer(ctx), dtype), 2: Claim(*jet.d2.outer(ctx), dtype)}


def test_audit_finds_the_seed_witness_and_passes_the_chain_rule():
    g, curve = tanh_bn_net(), Curve([0], [1], -1, 1)
    ctx = RationalContext()
    res = audit_derivatives(g, curve, _claims(propagate(g, curve, ctx, 2, "seed"), ctx))
    bad = [v for v in res.verdicts if v.verdict == "unsound"]
    assert bad and all(v.node == "u''" for v in bad)
    ref = ExactDerivatives(g, curve, 2)
    for v in bad:  # re-check each witness independently
        (t,) = v.witness.x
        assert -1 <= t <= 1
        lo, hi = ref.enclose(2, 0, [t], 512)
        assert (hi < 0) if v.side == "lo" else (lo > 0)
    res = audit_derivatives(g, curve, _claims(propagate(g, curve, ctx, 2, "chain"), ctx))
    assert all(v.verdict == "sound" for v in res.verdicts)


def test_audit_inside_exact_and_planted_claims():
    """A claim shrunk inside the exact range by a margin is unsound with a witness; a claim
    inside the Taylor bound but still containing the true range is inside_exact."""
    g, curve = tanh_bn_net(), Curve([0], [1], -1, 1)
    ref = ExactDerivatives(g, curve, 1)
    f = ref.float_fn(1, 0)
    vals = [float(f(k / 200)) for k in range(-200, 201)]
    lo, hi = min(vals), max(vals)
    res = audit_derivatives(
        g, curve, {1: Claim([to_exact(lo) + fmpq(1, 10)], [to_exact(hi) - fmpq(1, 10)])}
    )
    assert [v.verdict for v in res.verdicts] == ["unsound", "unsound"]
    res = audit_derivatives(
        g, curve, {1: Claim([to_exact(lo) - fmpq(1, 10)], [to_exact(hi) + fmpq(1, 10)])}
    )
    assert {v.verdict for v in res.verdicts} <= {"inside_exact", "sound"}


def test_relu_rules():
    up = Linear.from_weights([[1], [-1]], [3, -3])  # on t in [-1, 1]: +, -
    g = Graph.sequential(1, [up, ReLU((2,)), Linear.from_weights([[2, 5]], [0])])
    curve = Curve([0], [1], -1, 1)
    jet = propagate(g, curve, RationalContext(), 1)
    assert jet.d1.outer() == ([2], [2])  # 2·1 + 5·0
    with pytest.raises(UnsupportedOperatorError, match="ReLU is not twice differentiable"):
        propagate(g, curve, RationalContext(), 2)
    g2 = Graph.sequential(1, [Linear.from_weights([[1]], [0]), ReLU((1,))])
    with pytest.raises(AmbiguousBranch, match="ReLU pre-activation"):
        propagate(g2, curve, RationalContext(), 1)


def test_bad_inputs():
    g = tanh_bn_net()
    with pytest.raises(InvalidValueError, match="t_range"):
        Curve([0], [1], 1, -1)
    with pytest.raises(ShapeError):
        propagate(g, Curve([0, 0], [1, 0], 0, 1), RationalContext())
    with pytest.raises(InvalidValueError, match="order"):
        propagate(g, Curve([0], [1], 0, 1), RationalContext(), order=3)
    with pytest.raises(InvalidValueError, match="second_derivative_rule"):
        propagate(g, Curve([0], [1], 0, 1), RationalContext(), rule="zero")
    with pytest.raises(InvalidValueError, match="wrt"):
        Curve.wrt(Box([0], [1]), 1)
    with pytest.raises(InvalidValueError, match="zero vector"):
        Curve.through_box(Box([0], [1]), [0])
    with pytest.raises(InvalidValueError, match="origin"):
        Curve.through_box(Box([0, 0], [1, 1]), [1, 0], origin=[0, 5])


def test_curve_through_box_is_exact():
    c = Curve.through_box(Box([0, -1], [2, 1]), [1, "1/2"])
    assert (c.origin, c.t_lo, c.t_hi) == ([1, 0], -1, 1)
    c = Curve.through_box(Box([0, -1], [2, 1]), [0, 3])
    assert (c.t_lo, c.t_hi) == (fmpq(-1, 3), fmpq(1, 3))


EXAMPLE = "exactbounds/examples/pinn_tanh_bn.json"


def test_cli_derivatives_and_check(tmp_path, capsys):
    assert main(["derivatives", EXAMPLE, "--wrt", "0", "--json"]) == 0
    chain = json.loads(capsys.readouterr().out)
    assert chain["curve"] == {"wrt": 0} and chain["second_derivative"]["status"] == "bound"
    assert float(chain["second_derivative"]["lo_f64"][0]) < 0
    assert main(["derivatives", EXAMPLE, "--direction", "1", "--mode", "interval"]) == 0
    text = capsys.readouterr().out
    assert "u''" in text and "IntervalContext" in text
    assert (
        main(["derivatives", EXAMPLE, "--wrt", "0", "--json", "--second-derivative-rule", "seed"])
        == 0
    )
    seed = json.loads(capsys.readouterr().out)
    assert seed["second_derivative"]["lo"] == ["0"] and seed["notes"]
    for name, d, status in (("chain", chain, 0), ("seed", seed, 1)):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(d))
        assert (
            main(["check", EXAMPLE, "--method", "deriv", "--claimed", str(p), "--json"]) == status
        )
        out = json.loads(capsys.readouterr().out)
        if name == "seed":
            w = [v for v in out["verdicts"] if v["verdict"] == "unsound"]
            assert w and all(v["node"] == "u''" for v in w)
            t = fmpq(*map(int, (w[0]["witness"]["x"][0] + "/1").split("/")[:2]))
            assert -1 <= t <= 1


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--wrt", "3"], "wrt"),
        (["--direction", "1", "2"], "direction has 2 entries"),
        (["--direction", "1", "--t-range", "1", "0"], "t_range"),
        (["--direction", "nan"], "direction"),
        (["--wrt", "0", "--t-range", "0", "1"], "--wrt"),
    ],
)
def test_cli_bad_inputs(argv, match, capsys):
    assert main(["derivatives", EXAMPLE] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("exactbounds: error:") and match in err


def test_exact_reference_at_a_point_where_a_ball_contains_zero():
    """Regression (hypothesis found it): u = −tanh(tanh(t − 2/3)) at t = 2/3, where
    ``tanh(t − 2/3)`` is a ball around 0: its square went through python-flint's ``arb ** 2``
    (NaN for such a ball) and the enclosure was read at 53 bits outside the working precision,
    so the reference could decide nothing. Both enclosures now contain the exact values
    (u(2/3) = 0, u'(2/3) = −1) and are narrow."""
    from flint import arb

    from exactbounds.audit.derivatives import _arb_int_pow

    assert (_arb_int_pow(arb(0, 1e-10), 2)).is_finite()
    assert _arb_int_pow(arb(-3), 3) == -27 and _arb_int_pow(arb(2), -2) == arb(fmpq(1, 4))
    g = Graph.sequential(
        1,
        [
            Linear.from_weights([[1]], ["-2/3"]),
            Tanh((1,)),
            Tanh((1,)),
            Linear.from_weights([[-1]], [0]),
        ],
    )
    curve = Curve([0], [1], 0, 1)
    ref = ExactDerivatives(g, curve, 2)
    for order, exact in ((0, fmpq(0)), (1, fmpq(-1))):
        lo, hi = ref.enclose(order, 0, [fmpq(2, 3)], 128)
        assert lo <= exact <= hi and hi - lo < fmpq(1, 2**100)
    lo, hi = ref.enclose(0, 0, [fmpq(0)], 256)
    assert hi - lo < fmpq(1, 2**200)  # read at the working precision, not at 53 bits
