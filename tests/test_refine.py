"""Refined derivative enclosures (issue 16): every piece's centred-form enclosure and the hull
contain the exact u, u', u'' (exact sympy derivatives, decided by arb at rising precision), the
hull never leaves the single-piece enclosure, the budget and the piece cap hold, a process pool
gives the serial result, and the CLI reports pieces and gaps."""

import json
import subprocess
import sys
import time
from fractions import Fraction

import pytest
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms import centered
from exactbounds.algorithms.refine import refine
from exactbounds.algorithms.taylor import Curve, propagate
from exactbounds.audit.derivatives import ExactDerivatives
from exactbounds.core import Box
from exactbounds.errors import InvalidValueError
from exactbounds.graph import Graph
from exactbounds.numbers import IntervalContext, RationalContext
from exactbounds.operators.activations import Sigmoid, Tanh
from exactbounds.operators.batchnorm import BatchNorm, BatchNormParams
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU
from test_derivatives import inside, q, small, smooth_networks, tanh_bn_net

SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTEXTS = {"exact": lambda: RationalContext(), "interval": lambda: IntervalContext()}
EXAMPLE = "exactbounds/examples/pinn_tanh_bn.json"
unit = st.fractions(min_value=0, max_value=1, max_denominator=97).map(q)


@st.composite
def pinn_networks(draw):
    """1 input; Linear -> Tanh/Sigmoid -> Linear -> Tanh -> BatchNorm (a negative γ) -> Linear,
    widths 2-8."""
    w1, w2 = draw(st.integers(2, 8)), draw(st.integers(2, 8))
    gamma = [draw(small) for _ in range(w2)]
    gamma[draw(st.integers(0, w2 - 1))] = -draw(
        st.fractions(min_value=Fraction(1, 8), max_value=2, max_denominator=8).map(q)
    )
    var = [
        draw(st.fractions(min_value=Fraction(1, 16), max_value=2, max_denominator=16).map(q))
        for _ in range(w2)
    ]
    return Graph.sequential(
        1,
        [
            Linear.from_weights(
                [[draw(small)] for _ in range(w1)], [draw(small) for _ in range(w1)]
            ),
            draw(st.sampled_from([Tanh, Sigmoid]))((w1,)),
            Linear.from_weights(
                [[draw(small) for _ in range(w1)] for _ in range(w2)],
                [draw(small) for _ in range(w2)],
            ),
            Tanh((w2,)),
            BatchNorm(
                BatchNormParams(
                    [draw(small) for _ in range(w2)],
                    var,
                    gamma,
                    [draw(small) for _ in range(w2)],
                    "1/1000",
                )
            ),
            Linear.from_weights([[draw(small) for _ in range(w2)]], [draw(small)]),
        ],
    )


def ends(jet, ctx):
    return {0: jet.value.outer(ctx), 1: jet.d1.outer(ctx), 2: jet.d2.outer(ctx)}


@SETTINGS
@given(g=pinn_networks(), data=st.data(), mode=st.sampled_from(sorted(CONTEXTS)))
def test_refined_enclosures_contain_the_exact_derivatives(g, data, mode):
    a, b = sorted([data.draw(small), data.draw(small)])
    curve = Curve([0], [1], a, b)
    ctx = CONTEXTS[mode]()
    res = refine(g, curve, ctx, 2, budget=None, max_pieces=data.draw(st.integers(2, 12)))
    one = ends(propagate(g, curve, ctx, 2), ctx)
    got = ends(res.jet, ctx)
    ref = ExactDerivatives(g, curve, 2)
    ts = [a, b] + [a + (b - a) * data.draw(unit) for _ in range(3)]
    for k, (lo, hi) in got.items():
        # never wider than the single piece
        assert one[k][0][0] <= lo[0] <= hi[0] <= one[k][1][0]
        # the sampled range lies inside the enclosure
        s_lo, s_hi = res.sampled[k][0][0], res.sampled[k][1][0]
        assert lo[0] <= min(s_lo, s_hi) and max(s_lo, s_hi) <= hi[0]
        for t in ts:
            assert inside(ref, k, 0, [t], lo[0], hi[0]), (k, t, lo, hi)
    assert res.pieces <= 12 and res.stopped in ("target", "pieces", "resolution")


@SETTINGS
@given(g=pinn_networks(), data=st.data())
def test_centred_forms_of_a_piece_contain_the_exact_derivatives(g, data):
    """Each piece's own enclosure (not only the hull) is sound: random sub-intervals, random
    exact points in them."""
    t_c = data.draw(small)
    rho = data.draw(st.fractions(min_value=0, max_value=1, max_denominator=64).map(q))
    got = centered.jets(g, [t_c], [[1]], [1], [rho], 2)
    ref = ExactDerivatives(g, Curve([0], [1], t_c - rho, t_c + rho), 2)
    for t in [t_c - rho, t_c + rho] + [t_c + rho * (2 * data.draw(unit) - 1) for _ in range(3)]:
        for k, (lo, hi) in got.items():
            assert inside(ref, k, 0, [t], lo[0], hi[0]), (k, t, lo, hi)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=smooth_networks(), data=st.data())
def test_refined_partial_derivatives_over_a_box(g, data):
    n = g.input_dim
    lo = [data.draw(small) for _ in range(n)]
    hi = [
        v + data.draw(st.fractions(min_value=0, max_value=1, max_denominator=8).map(q)) for v in lo
    ]
    i = data.draw(st.integers(0, n - 1))
    curve = Curve.wrt(Box(lo, hi), i)
    ctx = RationalContext()
    res = refine(g, curve, ctx, 2, budget=None, max_pieces=6)
    one = ends(propagate(g, curve, ctx, 2), ctx)
    ref = ExactDerivatives(g, curve, 2)
    for _ in range(3):
        x = [a + (b - a) * data.draw(unit) for a, b in zip(lo, hi)]
        for k, (blo, bhi) in ends(res.jet, ctx).items():
            assert one[k][0][0] <= blo[0] and bhi[0] <= one[k][1][0]
            assert inside(ref, k, 0, x, blo[0], bhi[0])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=smooth_networks(), data=st.data(), mode=st.sampled_from(sorted(CONTEXTS)))
def test_refined_derivatives_along_a_direction(g, data, mode):
    n = g.input_dim
    a, b = sorted([data.draw(small), data.draw(small)])
    curve = Curve([data.draw(small) for _ in range(n)], [data.draw(small) for _ in range(n)], a, b)
    ctx = CONTEXTS[mode]()
    res = refine(g, curve, ctx, 2, budget=None, max_pieces=6)
    ref = ExactDerivatives(g, curve, 2)
    for t in [a, b, a + (b - a) * data.draw(unit)]:
        for k, (lo, hi) in ends(res.jet, ctx).items():
            assert inside(ref, k, 0, [t], lo[0], hi[0])


def test_centred_forms_beat_interval_propagation_on_small_pieces():
    """The reason for centered.py: on a piece of width 1/64 the u'' enclosure of the centred
    forms is several times narrower than that of interval propagation."""
    from exactbounds.io.load import load_model

    g = load_model(EXAMPLE).graph
    t, r = fmpq(1, 3), fmpq(1, 128)
    ctx = RationalContext()
    (lo,), (hi,) = propagate(g, Curve([0], [1], t - r, t + r), ctx, 2).d2.outer(ctx)
    (clo,), (chi,) = centered.jets(g, [t], [[1]], [1], [r], 2)[2]
    assert 4 * (chi - clo) < hi - lo


def test_example_reaches_the_target_and_the_seed_rule_stays_available():
    from exactbounds.io.load import load_model

    g = load_model(EXAMPLE).graph
    res = refine(g, Curve([0], [1], -1, 1), RationalContext(), 2, budget=None)
    assert res.stopped == "target" and res.pieces > 1
    assert all(x <= fmpq(21, 20) for v in res.gap.values() for x in v)
    g2 = tanh_bn_net()
    seed = refine(
        g2, Curve([0], [1], -1, 1), RationalContext(), 2, "seed", budget=None, max_pieces=4
    )
    assert seed.jet.d2.outer() == ([0], [0]) and seed.notes


def test_budget_and_piece_cap_hold():
    from exactbounds.io.load import load_model

    g = load_model(EXAMPLE).graph
    curve = Curve([0], [1], -1, 1)
    t0 = time.perf_counter()
    res = refine(g, curve, RationalContext(), 2, budget=fmpq(1, 5), target=1)
    assert res.stopped == "budget" and time.perf_counter() - t0 < 0.2 + 3
    res = refine(g, curve, RationalContext(), 2, budget=None, max_pieces=5, target=1)
    assert res.stopped == "pieces" and res.pieces == 5
    res = refine(g, curve, RationalContext(), 2, budget=0)
    assert res.pieces == 1 and res.stopped in ("budget", "target")


def test_workers_give_the_serial_result():
    from exactbounds.io.load import load_model

    g = load_model(EXAMPLE).graph
    curve = Curve([0], [1], fmpq(-1, 2), 1)
    ctx = RationalContext()
    a = refine(g, curve, ctx, 2, budget=None, max_pieces=10)
    b = refine(g, curve, ctx, 2, budget=None, max_pieces=10, workers=2)
    assert ends(a.jet, ctx) == ends(b.jet, ctx)
    assert (a.pieces, a.gap, a.sampled, a.samples, a.stopped) == (
        b.pieces,
        b.gap,
        b.sampled,
        b.samples,
        b.stopped,
    )


def test_relu_network_order_one_falls_back_to_interval_pieces():
    up = Linear.from_weights([[1], [-1]], [3, -3])  # on t in [-1, 1]: +, -
    g = Graph.sequential(1, [up, ReLU((2,)), Linear.from_weights([[2, 5]], [0])])
    res = refine(g, Curve([0], [1], -1, 1), RationalContext(), 1, budget=None, max_pieces=4)
    assert res.jet.d1.outer() == ([2], [2])
    assert res.jet.value.outer() == ([4], [8])


def test_constant_derivatives_with_an_irrational_scale_stop_at_once():
    """Regression: Linear -> BatchNorm (√2 in the scale) -> Linear has constant u', u'' = 0 and
    boxes only as wide as the square-root enclosure; the sampled range is empty, and refinement
    must stop (not bisect until the budget runs out)."""
    g = Graph.sequential(
        1,
        [
            Linear.from_weights([[1], [-2]], [0, 1]),
            BatchNorm(BatchNormParams([0, 0], [1, 1], [1, -1], [0, 0], 1)),
            Linear.from_weights([[1, 1]], [0]),
        ],
    )
    res = refine(g, Curve([0], [1], -1, 1), RationalContext(), 2, budget=5)
    assert res.stopped == "target" and res.pieces == 1
    (lo,), (hi,) = res.jet.d1.outer()
    assert 0 < lo and lo * lo <= fmpq(9, 2) <= hi * hi  # u' = 3/√2
    assert res.jet.d2.outer() == ([0], [0])


def test_bad_arguments():
    g, c = tanh_bn_net(), Curve([0], [1], 0, 1)
    for kw, name in (
        ({"budget": -1}, "budget"),
        ({"max_pieces": 0}, "pieces"),
        ({"workers": 0}, "workers"),
        ({"target": fmpq(1, 2)}, "target"),
        ({"target": float("nan")}, "target"),
        ({"budget": "soon"}, "budget"),
    ):
        with pytest.raises(InvalidValueError, match=name):
            refine(g, c, RationalContext(), 2, **kw)


def cli(*argv):
    p = subprocess.run(
        [sys.executable, "-m", "exactbounds", "derivatives", EXAMPLE, *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return p.returncode, p.stdout, p.stderr


def test_cli_refines_by_default_and_no_refine_is_the_single_piece(tmp_path):
    rc, out, _ = cli("--wrt", "0", "--json", "--budget", "600")
    assert rc == 0
    d = json.loads(out)
    r = d["refinement"]
    assert r["pieces"] > 1 and r["stopped"] == "target"
    assert all(g <= 1.05 for v in r["gap"].values() for g in v)
    rc, out1, _ = cli("--wrt", "0", "--json", "--no-refine")
    one = json.loads(out1)
    assert "refinement" not in one
    assert cli("--wrt", "0", "--json", "--pieces", "1")[1] == out1
    for key in ("value", "first_derivative", "second_derivative"):
        lo, hi = fmpq(d[key]["lo"][0]), fmpq(d[key]["hi"][0])
        assert fmpq(one[key]["lo"][0]) <= lo <= hi <= fmpq(one[key]["hi"][0])
    assert cli("--wrt", "0", "--json", "--budget", "600", "--workers", "2")[1] == out
    rc, text, _ = cli("--direction", "1", "--mode", "interval", "--pieces", "6")
    assert rc == 0 and "refinement: 6 pieces" in text and "stopped by pieces" in text
    p = tmp_path / "claim.json"
    p.write_text(out)
    c = subprocess.run(
        [
            sys.executable,
            "-m",
            "exactbounds",
            "check",
            EXAMPLE,
            "--method",
            "deriv",
            "--claimed",
            str(p),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert c.returncode == 0
    assert {v["verdict"] for v in json.loads(c.stdout)["verdicts"]} == {"sound"}


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--wrt", "0", "--pieces", "0"], "--pieces"),
        (["--wrt", "0", "--budget", "-1"], "--budget"),
        (["--wrt", "0", "--workers", "0"], "--workers"),
    ],
)
def test_cli_bad_refinement_options(argv, match):
    rc, out, err = cli(*argv)
    assert rc == 2 and err.startswith("exactbounds: error:") and match in err
    assert len(err.strip().splitlines()) == 1
