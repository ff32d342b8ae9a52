"""Fast-mode CROWN and forward affine with point-float relaxation lines (``--mode fast``).

The lines of every relaxed operator are floats made valid on the outer ends of the float
intermediate bounds, so the result is a sound ``bound`` of the network (no longer an enclosure of
exact CROWN). Checked here: the ReLU lines lie below/above ReLU on the whole outer interval in
exact arithmetic (adversarial magnitudes, subnormals, ties); on random networks of every relaxed
operator the fast bounds contain the exact outputs at random points and the set's vertices; on
well-conditioned float networks they are within 1e-6 relative of exact CROWN; a deep ReLU network
(9 layers of 200) stays in the fast mode instead of escalating."""

import random

import flint
import numpy as np
from flint import arb, fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.affine import affine
from exactbounds.algorithms.crown import crown
from exactbounds.algorithms.ibp import evaluate
from exactbounds.algorithms.profiles import Profile
from exactbounds.core import Box
from exactbounds.graph import Graph
from exactbounds.inputsets import sample, vertices
from exactbounds.numbers import RationalContext, arb_ends, make_context
from exactbounds.operators.activations import Sigmoid, Tanh
from exactbounds.operators.elementwise import Cos, LeakyRelu, Sign, Sin
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU
from exactbounds.operators.softmax import Softmax
from tests.test_crown_soundness import check_inside, input_set, mat, num

EXACT = RationalContext(128)
FAST = make_context("fast")


def Q(f):
    return fmpq(*float(f).as_integer_ratio())


# -- the ReLU lines themselves ---------------------------------------------------------------
def magnitude():
    """Floats from subnormals to 1e30, both signs, and 0."""
    return st.one_of(
        st.floats(-1e30, 1e30, allow_nan=False, allow_infinity=False),
        st.sampled_from([0.0, 5e-324, -5e-324, 2.5e-310, -1e-300, 1.0, -1.0, 1e-30, -1e30]),
        st.integers(-8, 8).map(lambda k: k / 4),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(magnitude(), min_size=4, max_size=4), st.sampled_from(["adaptive", "zero", "one"]))
def test_relu_fast_lines_hold_on_the_outer_interval(v, rule):
    """``ls·x + lb <= relu(x) <= us·x + ub`` exactly at ``l1``, ``u2``, 0 and points between
    (the lines are affine and ReLU is piecewise linear with its kink at 0, so these suffice),
    and every line is a point (radius 0)."""
    l1, l2, u1, u2 = sorted(v)
    ls, lb, us, ub = ReLU(1).relax_vec(*(np.array([t]) for t in (l1, l2, u1, u2)), rule)
    for f in (ls, lb, us, ub):
        assert f.rad[0] == 0
    a, b, c, d = (Q(f.mid[0]) for f in (ls, lb, us, ub))
    lo, hi = Q(l1), Q(u2)
    for x in {lo, hi, max(lo, min(hi, fmpq(0)))}:
        r = max(x, fmpq(0))
        assert a * x + b <= r <= c * x + d, (l1, u2, x)
    if l1 < 0 < u2:  # the chord is tight: a few ulps of the ends' magnitude above the exact one
        chord_at_0 = hi * -lo / (hi - lo)
        assert 0 <= d - chord_at_0 <= (hi - lo) * fmpq(1, 2**49) + fmpq(1, 2**1000)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(magnitude(), min_size=4, max_size=4),
    st.sampled_from(["adaptive", "zero", "one"]),
    st.sampled_from([fmpq(1, 100), fmpq(1, 5), fmpq(0), fmpq(1), fmpq(1, 3)]),
)
def test_leakyrelu_fast_lines_hold_on_the_outer_interval(v, rule, alpha):
    """The same for LeakyRelu with α <= 1 (α not a float, e.g. 1/100 or 1/3, included)."""
    l1, l2, u1, u2 = sorted(v)
    got = LeakyRelu(1, alpha).relax_vec(*(np.array([t]) for t in (l1, l2, u1, u2)), rule)
    a, b, c, d = (Q(f.mid[0]) for f in got)
    assert all(f.rad[0] == 0 for f in got)
    lo, hi = Q(l1), Q(u2)
    for x in {lo, hi, max(lo, min(hi, fmpq(0)))}:
        r = max(x, alpha * x)
        assert a * x + b <= r <= c * x + d, (l1, u2, x)


def test_leakyrelu_above_one_keeps_the_per_neuron_lines():
    assert LeakyRelu(1, fmpq(2)).relax_vec(*(np.array([t]) for t in (-1.0, -1.0, 1.0, 1.0))) is None


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(-40, 40, allow_nan=False),
            st.sampled_from([0.0, 5e-324, -1e-300, 1e-8, -1e-8, 700.0, -800.0, 1e30]),
        ),
        min_size=2,
        max_size=2,
    ),
    st.sampled_from([Sigmoid, Tanh]),
    st.integers(0, 2**32 - 1),
)
def test_sshaped_fast_lines_hold_on_the_outer_interval(v, cls, seed):
    """Sigmoid/Tanh vectorised lines are points and hold at exact points of ``[l, u]``: the
    ends, 0, the midpoint and random points, f enclosed by ``arb`` at 200 bits (a line may
    touch f's enclosure: the check is ``line <= upper end`` below, ``>= lower end`` above)."""
    l, u = sorted(v)
    op = cls(1)
    got = op.relax_vec(np.array([l]), np.array([l]), np.array([u]), np.array([u]))
    assert all(f.rad[0] == 0 for f in got)
    a, b, c, d = (Q(f.mid[0]) for f in got)
    lo, hi = Q(l), Q(u)
    rng = random.Random(seed)
    pts = {lo, hi, (lo + hi) / 2, max(lo, min(hi, fmpq(0)))}
    pts |= {lo + (hi - lo) * fmpq(rng.randint(0, 2**20), 2**20) for _ in range(12)}
    for x in pts:
        with flint.ctx.workprec(200):  # relative precision also where σ is tiny
            fx = 1 / (1 + (-arb(x)).exp()) if cls is Sigmoid else arb(x).tanh()
            f_lo, f_hi = arb_ends(fx)
        assert a * x + b <= f_hi and f_lo <= c * x + d, (l, u, x)


def test_sshaped_fast_crown_is_not_looser_than_the_per_neuron_lines():
    """The vectorised lines give fast CROWN within 1e-9 (of the span) of the per-neuron
    ``arb``-checked lines on a 3×12 network."""
    rng = np.random.default_rng(8)
    for act in (Sigmoid, Tanh):
        g = float_net(rng, 5, [12, 12, 12], act)
        S = float_box(rng, 5, 0.3)
        fa = crown(g, S, FAST)
        ex = crown(g, S, EXACT)
        elo, ehi = ex.output.outer(EXACT)
        flo, fhi = fa.output.outer(FAST)
        for a, b, c, d in zip(elo, ehi, flo, fhi):
            tol = (b - a) * fmpq(1, 10**9)
            assert abs(c - a) <= tol and abs(d - b) <= tol


def test_relu_fast_lines_ties_and_degenerate_bounds():
    """``l = 0``, ``u = 0``, ``u = −l`` (adaptive tie: slope 0, as exact CROWN) and ``l = u``."""
    l = np.array([0.0, -1.0, -2.0, 3.0, -0.0])
    u = np.array([1.0, 0.0, 2.0, 3.0, 0.0])
    ls, lb, us, ub = ReLU(5).relax_vec(l, l, u, u)
    assert ls.mid.tolist() == [1.0, 0.0, 0.0, 1.0, 1.0]
    assert us.mid.tolist()[:2] == [1.0, 0.0] and us.mid[2] == 0.5 and ub.mid[2] >= 1.0


def test_relu_fast_lines_non_finite_bounds_are_useless_balls():
    ls, _, us, ub = ReLU(2).relax_vec(
        np.array([-np.inf, -1.0]), np.array([-1.0, -1.0]), np.array([1.0, 1.0]), np.array([1, 2.0])
    )
    assert ls.rad[0] == np.inf and us.rad[1] == 0


# -- random networks of every relaxed operator -----------------------------------------------
def relaxed_op(draw, d):
    kind = draw(
        st.sampled_from(
            ["relu", "leaky", "sigmoid", "tanh", "sin", "cos", "sign", "softmax"],
        )
    )
    if kind == "leaky":
        return LeakyRelu(d, draw(st.sampled_from([fmpq(1, 100), fmpq(1, 5), fmpq(0), fmpq(2)])))
    if kind == "softmax":
        return Softmax(d, [list(range(d))])
    return {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "sin": Sin, "cos": Cos}.get(kind, Sign)(
        d
    )


@st.composite
def relaxed_net(draw):
    n = draw(st.integers(1, 3))
    ops, d = [], n
    for _ in range(draw(st.integers(1, 3))):
        m = draw(st.integers(1, 3))
        ops.append(Linear.from_weights(mat(draw, m, d), [draw(num) for _ in range(m)]))
        ops.append(relaxed_op(draw, m))
        d = m
    ops.append(Linear.from_weights(mat(draw, 2, d), [draw(num) for _ in range(2)]))
    return Graph.sequential(n, ops), n


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_crown_and_affine_are_sound_bounds_on_every_relaxed_operator(data):
    g, n = data.draw(relaxed_net())
    S = data.draw(input_set(n))
    pts = sample(S, random.Random(1), 3) + vertices(S, 8)
    slope = data.draw(st.sampled_from(["adaptive", "zero", "one"]))
    for res in (crown(g, S, FAST, lower_slope=slope), affine(g, S, FAST, lower_slope=slope)):
        check_inside(res, pts, g)
        if res.mode == "fast":
            assert res.status == "bound"
            assert any("not an enclosure of exact CROWN" in t for t in res.notes)


def float_net(rng, n, widths, act):
    ops, d = [], n
    for w in widths:
        W = (rng.standard_normal((w, d)) / np.sqrt(d)).astype(np.float32).astype(float)
        b = (rng.standard_normal(w) * 0.3).astype(np.float32).astype(float)
        ops += [Linear.from_weights(W.tolist(), b.tolist()), act(w)]
        d = w
    W = rng.standard_normal((3, d)).astype(np.float32).astype(float)
    ops.append(Linear.from_weights(W.tolist(), [0.0] * 3))
    return Graph.sequential(n, ops)


def float_box(rng, n, eps):
    x = rng.random(n)
    return Box([Q(v - eps) for v in x], [Q(v + eps) for v in x])


def test_fast_crown_is_close_to_exact_crown_on_well_conditioned_nets():
    """Float weights (no exact ties ``u = −l`` or ``l = 0``): the fast bound lies within 1e-6
    relative (of the output's span) of exact CROWN / forward affine, for ReLU, LeakyRelu,
    Sigmoid and Tanh networks of three hidden layers."""
    rng = np.random.default_rng(2)
    acts = [ReLU, lambda w: LeakyRelu(w, fmpq(1, 8)), Sigmoid, Tanh]
    for act in acts:
        g = float_net(rng, 6, [12, 12, 12], act)
        S = float_box(rng, 6, 0.2)
        for algo in (crown, affine):
            ex, fa = algo(g, S, EXACT), algo(g, S, FAST)
            assert fa.mode == "fast" and fa.status == "bound"
            elo, ehi = ex.output.outer(EXACT)
            flo, fhi = fa.output.outer(FAST)
            for a, b, c, d in zip(elo, ehi, flo, fhi):
                tol = (b - a + abs(a) + abs(b)) * fmpq(1, 10**6)
                assert abs(c - a) <= tol and abs(d - b) <= tol, (algo.__name__, act)


def test_deep_relu_net_stays_fast():
    """9 hidden layers of 200 ReLUs (eran 9×200-like): ball hulls used to widen the enclosure
    ~100× per layer and escalate to the interval mode; point lines keep the fast mode, and the
    bound holds at sample points."""
    rng = np.random.default_rng(9)
    g = float_net(rng, 40, [200] * 9, ReLU)
    S = float_box(rng, 40, 0.02)
    res = crown(g, S, FAST)
    assert res.mode == "fast" and res.status == "bound"
    lo, hi = res.output.outer(FAST)
    assert all(a < b for a, b in zip(lo, hi))
    for x in sample(S, random.Random(3), 2):
        y = evaluate(g, x, EXACT)
        assert all(a <= EXACT.lower(v) and EXACT.upper(v) <= b for a, b, v in zip(lo, hi, y))


def test_a_profiles_own_relaxation_is_used_in_the_fast_mode():
    """Regression: the vectorised ReLU lines used to replace a profile's rule in the fast mode.
    A profile with constant upper lines ``relu(x) <= max(u, 0)`` and zero lower lines gives, in
    the fast mode, the bound it gives in exact arithmetic (not the default profile's)."""

    def const_lines(ctx, lo, hi, **_):
        z = ctx.const(0)
        return (
            [z] * len(lo),
            [z] * len(lo),
            [z] * len(lo),
            [ctx.const(max(ctx.upper(h), 0)) for h in hi],
        )

    class Const(Profile):
        def relaxation(self, run, node):
            return node.op.make_relaxation(run, node, relax=const_lines)

    rng = np.random.default_rng(5)
    g = float_net(rng, 4, [8, 8], ReLU)
    S = float_box(rng, 4, 0.3)
    ex, fa = crown(g, S, EXACT, relaxation=Const()), crown(g, S, FAST, relaxation=Const())
    default = crown(g, S, FAST)
    assert fa.mode == "fast" and fa.status == "bound"
    elo, ehi = ex.output.outer(EXACT)
    flo, fhi = fa.output.outer(FAST)
    dlo, _ = default.output.outer(FAST)
    for a, b, c, d in zip(elo, ehi, flo, fhi):
        assert abs(c - a) <= (abs(a) + 1) * fmpq(1, 10**9) and abs(d - b) <= (abs(b) + 1) * fmpq(
            1, 10**9
        )
    assert any(abs(c - x) > fmpq(1, 10**6) for c, x in zip(flo, dlo))


def test_softmax_of_far_apart_entries_is_tiny_and_quick():
    """Softmax entries far below the others (e^-2000): the enclosure is ``[0, 2^-prec]`` without
    forming exact ends of e^-2000 (which made vit's CROWN spend seconds in conversions)."""
    import time

    from exactbounds.algorithms.ibp import ibp

    g = Graph.sequential(3, [Softmax(3, [[0, 1, 2]])])
    S = Box([fmpq(0), fmpq(2000), fmpq(2000)], [fmpq(1), fmpq(2001), fmpq(2001)])
    t = time.process_time()
    out = ibp(g, S, EXACT)
    assert time.process_time() - t < 5
    assert EXACT.lower(out.lo[0]) == 0
    assert 0 < EXACT.upper(out.hi[0]) <= fmpq(1, 2**EXACT.func_prec)
    assert EXACT.upper(out.hi[1]) <= 1 and EXACT.lower(out.lo[1]) >= fmpq(1, 4)
