"""Sigmoid and Tanh: enclosures, monotone IBP, sound linear relaxations, derivative ranges.

The reference is independent of the code under test: mpmath ``iv`` at 1000 bits with the
textbook formulas (tanh = sinh/cosh via exp, σ = 1/(1+e^−x), f' and f'' from their closed
forms), and every comparison is decided on rigorous intervals, never on floats."""

import pytest
from flint import fmpq
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import ctx_iv

from exactbounds.core import Box
from exactbounds.errors import InvalidBoxError, ShapeError
from exactbounds.numbers import IntervalContext, RationalContext, RInterval, SymbolicContext
from exactbounds.operators.activations import Sigmoid, Tanh

REF = ctx_iv.MPIntervalContext()
REF.prec = 1000
SETTINGS = settings(max_examples=40, deadline=None)


def _iv(q):
    return REF.mpf(int(q.p)) / REF.mpf(int(q.q))


def ref_f(kind, x):
    """(f, f', f'') at x as 1000-bit intervals, from the closed forms."""
    e = REF.exp(x)
    em = REF.exp(-x)
    if kind == "tanh":
        f = (e - em) / (e + em)
        c = (e + em) / 2
        d1 = 1 / (c * c)
        d2 = -2 * f * d1
    else:
        f = 1 / (1 + em)
        d1 = em / ((1 + em) * (1 + em))
        d2 = d1 * (1 - 2 * f)
    return f, d1, d2


def inside(ref, lo, hi):
    """The reference interval lies in the exact [lo, hi] (decided on its ends)."""
    return _iv(lo).a <= ref.a and ref.b <= _iv(hi).b


def outside(ref, lo, hi):
    """The reference interval proves the true value is outside [lo, hi]."""
    return ref.b < _iv(lo).a or ref.a > _iv(hi).b


OPS = [Tanh(), Sigmoid()]
rats = st.fractions(min_value=-12, max_value=12, max_denominator=1000).map(
    lambda f: fmpq(f.numerator, f.denominator)
)


@SETTINGS
@given(op=st.sampled_from(OPS), x=rats)
def test_evaluate_encloses_in_both_contexts(op, x):
    f = ref_f(op.kind, _iv(x))[0]
    (r,) = op.evaluate(RationalContext(), [x])
    if x == 0:  # f(0) = c is rational: exact
        assert r == (0 if op.kind == "tanh" else fmpq(1, 2))
        return
    assert isinstance(r, RInterval) and inside(f, r.lo, r.hi)
    assert r.width < fmpq(1, 2**150)  # far below a float64 ulp
    ictx = IntervalContext(113)
    (v,) = op.evaluate(ictx, [x])
    assert inside(f, ictx.lower(v), ictx.upper(v))
    assert ictx.upper(v) - ictx.lower(v) < fmpq(1, 2**100)


def test_evaluate_symbolic_is_the_exact_expression():
    import sympy

    x = sympy.Symbol("x", real=True)
    ctx = SymbolicContext()
    assert Tanh().evaluate(ctx, [x])[0] == sympy.tanh(x)
    assert sympy.simplify(Sigmoid().evaluate(ctx, [x])[0] - 1 / (1 + sympy.exp(-x))) == 0


@SETTINGS
@given(op=st.sampled_from(OPS), a=rats, b=rats, mode=st.sampled_from(["exact", "interval"]))
def test_ibp_is_monotone_and_sound(op, a, b, mode):
    lo, hi = min(a, b), max(a, b)
    ctx = RationalContext() if mode == "exact" else IntervalContext()
    box = op.ibp(ctx, Box([lo], [hi]).to_ctx(ctx))
    (blo,), (bhi,) = box.outer(ctx)
    for x in (lo, hi, (lo + hi) / 2):
        assert inside(ref_f(op.kind, _iv(x))[0], blo, bhi)


def _line_ok(ref, a, b, x, upper):
    """Decide ``a·x + b >= f(x)`` (upper) or ``<=``; fails loudly if undecided."""
    line = _iv(a) * _iv(x) + _iv(b)
    if upper:
        if line.a >= ref.b:
            return True
        assert line.b < ref.a, "undecided at 1000 bits"
        return False
    if line.b <= ref.a:
        return True
    assert line.a > ref.b, "undecided at 1000 bits"
    return False


@SETTINGS
@given(
    op=st.sampled_from(OPS),
    a=rats,
    b=rats,
    ts=st.lists(
        st.fractions(min_value=0, max_value=1, max_denominator=997), min_size=1, max_size=8
    ),
)
def test_relax_lines_are_sound(op, a, b, ts):
    lo, hi = min(a, b), max(a, b)
    al, bl, au, bu = op.relax_one(lo, hi)
    for t in [0, 1] + ts:
        x = (
            lo + (hi - lo) * fmpq(t.numerator, t.denominator)
            if not isinstance(t, int)
            else lo + (hi - lo) * t
        )
        f = ref_f(op.kind, _iv(x))[0]
        assert _line_ok(f, au, bu, x, True), (lo, hi, x)
        assert _line_ok(f, al, bl, x, False), (lo, hi, x)


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.kind)
@pytest.mark.parametrize("lo,hi", [(-3, -1), (1, 4), (-2, 1), (-1, 3), (-8, 8), (-0.5, 0.25)])
def test_relax_lines_are_tight_crown_lines(op, lo, hi):
    """No fallback to constants on ordinary intervals, and each line touches f: the chord at
    both ends or the tangent at its point, within 1e-13."""
    lo, hi = fmpq(*float(lo).as_integer_ratio()), fmpq(*float(hi).as_integer_ratio())
    al, bl, au, bu = op.relax_one(lo, hi)
    assert al != 0 and au != 0

    def gap(a, b, upper):
        # smallest distance between the line and f over a fine grid
        best = None
        for k in range(401):
            x = lo + (hi - lo) * fmpq(k, 400)
            f = ref_f(op.kind, _iv(x))[0]
            d = (_iv(a) * _iv(x) + _iv(b) - f) if upper else (f - _iv(a) * _iv(x) - _iv(b))
            best = d.b if best is None else min(best, d.b)
        return best

    assert gap(au, bu, True) < 1e-5 and gap(al, bl, False) < 1e-5


def test_relax_contexts_and_modes():
    op = Tanh()
    lo, hi = [fmpq(-1), fmpq(1, 2)], [fmpq(2), fmpq(3, 2)]
    exact = op.relax(RationalContext(), lo, hi)
    assert all(isinstance(v, fmpq) for col in exact for v in col)
    ictx = IntervalContext(160)  # same working precision as RationalContext(128): same lines
    inter = op.relax(ictx, [ictx.const(v) for v in lo], [ictx.const(v) for v in hi])
    for ce, ci in zip(exact, inter):
        for q, v in zip(ce, ci):
            assert ictx.lower(v) <= q <= ictx.upper(v)
    from exactbounds.numbers.dyadic_mode import DyadicContext

    dctx = DyadicContext(32)
    dy = op.relax(dctx, lo, hi)
    for k, (ce, cd) in enumerate(zip(exact, dy)):
        for q, v in zip(ce, cd):
            if k == 1:
                assert v <= q  # lower intercept rounded down
            elif k == 3:
                assert v >= q  # upper intercept rounded up
            else:
                assert v == q
            assert v.q.bit_length() <= 200


@SETTINGS
@given(
    op=st.sampled_from(OPS),
    a=rats,
    b=rats,
    ts=st.lists(
        st.fractions(min_value=0, max_value=1, max_denominator=997), min_size=1, max_size=5
    ),
    mode=st.sampled_from(["exact", "interval"]),
)
def test_derivative_ranges_enclose(op, a, b, ts, mode):
    lo, hi = min(a, b), max(a, b)
    ctx = RationalContext() if mode == "exact" else IntervalContext()
    box = Box([lo], [hi]).to_ctx(ctx)
    (d1lo,), (d1hi,) = op.derivative_range(ctx, box).outer(ctx)
    (d2lo,), (d2hi,) = op.second_derivative_range(ctx, box).outer(ctx)
    for t in ts:
        x = lo + (hi - lo) * fmpq(t.numerator, t.denominator)
        _, d1, d2 = ref_f(op.kind, _iv(x))
        assert inside(d1, d1lo, d1hi) and inside(d2, d2lo, d2hi), (lo, hi, x)


def test_second_derivative_range_reaches_the_critical_values():
    """Across the extremum of tanh'' (at ±atanh(1/√3) ≈ ±0.658) the range includes −4/(3√3)."""
    ctx = RationalContext()
    (lo,), (hi,) = Tanh().second_derivative_range(ctx, Box([fmpq(1, 2)], [fmpq(1)])).outer(ctx)
    crit = -4 / (3 * REF.sqrt(3))
    assert _iv(lo).b <= crit.a and crit.b - _iv(lo).a < 1e-30
    assert hi < 0


def test_bad_inputs():
    op = Tanh((2,), name="act")
    with pytest.raises(ShapeError, match="act"):
        op.evaluate(RationalContext(), [fmpq(1)])
    with pytest.raises(ShapeError):
        op.relax(RationalContext(), [fmpq(0)], [fmpq(1), fmpq(2)])
    with pytest.raises(InvalidBoxError, match="lo = 1 > hi = 0"):
        Sigmoid().relax(RationalContext(), [fmpq(1)], [fmpq(0)])
    with pytest.raises(ShapeError):
        Tanh((0,))
    assert op.in_dim == op.out_dim == 2 and Tanh().in_dim is None


@settings(max_examples=15, deadline=None)
@given(data=st.data(), mode=st.sampled_from(["exact", "interval"]))
def test_crown_through_sigmoid_and_tanh_is_sound(data, mode):
    """The network engineer's CROWN uses ``relax``: its bounds contain the exact outputs at
    random exact points (each output an enclosure decided on its rational ends)."""
    from exactbounds.algorithms.crown import crown
    from exactbounds.algorithms.ibp import evaluate
    from exactbounds.graph import Graph
    from exactbounds.operators.linear import Linear

    w = st.fractions(min_value=-2, max_value=2, max_denominator=8).map(
        lambda f: fmpq(f.numerator, f.denominator)
    )
    n, h = 2, data.draw(st.integers(1, 3))
    acts = [data.draw(st.sampled_from([Tanh, Sigmoid])) for _ in range(2)]
    ops = [
        Linear.from_weights(
            [[data.draw(w) for _ in range(n)] for _ in range(h)], [data.draw(w) for _ in range(h)]
        ),
        acts[0]((h,)),
        Linear.from_weights([[data.draw(w) for _ in range(h)] for _ in range(h)]),
        acts[1]((h,)),
        Linear.from_weights([[data.draw(w) for _ in range(h)]]),
    ]
    g = Graph.sequential(n, ops)
    lo = [data.draw(w) for _ in range(n)]
    hi = [a + abs(data.draw(w)) for a in lo]
    ctx = RationalContext() if mode == "exact" else IntervalContext()
    res = crown(g, Box(lo, hi), ctx)
    (blo,), (bhi,) = res.output.outer(ctx)
    rc = RationalContext()
    for _ in range(4):
        x = [
            a
            + (b - a)
            * data.draw(
                st.fractions(min_value=0, max_value=1, max_denominator=64).map(
                    lambda f: fmpq(f.numerator, f.denominator)
                )
            )
            for a, b in zip(lo, hi)
        ]
        (y,) = evaluate(g, x, rc)
        assert blo <= rc.lower(y) and rc.upper(y) <= bhi


def test_derivative_jets_stay_short():
    """Regression: BatchNorm's square-root enclosures have unrelated denominators; summed by the
    next linear layer they grew to thousands of bits per layer. Jets are rounded outward to
    ``bits + 64``-bit dyadics, so the ends stay short."""
    import numpy as np

    from exactbounds.algorithms.taylor import Curve, propagate
    from exactbounds.graph import Graph
    from exactbounds.operators.batchnorm import BatchNorm, BatchNormParams
    from exactbounds.operators.linear import Linear

    rng = np.random.default_rng(1)
    ops, dim = [], 1
    for _ in range(3):
        ops += [
            Linear.from_weights(rng.normal(size=(16, dim)).astype(np.float32).tolist()),
            Tanh((16,)),
            BatchNorm(
                BatchNormParams(
                    rng.normal(size=16).tolist(),
                    rng.uniform(0.1, 1, size=16).tolist(),
                    rng.normal(size=16).tolist(),
                    rng.normal(size=16).tolist(),
                )
            ),
        ]
        dim = 16
    g = Graph.sequential(1, ops + [Linear.from_weights(rng.normal(size=(1, 16)).tolist())])
    ctx = RationalContext(128)
    jet = propagate(g, Curve([0], [1], -1, 1), ctx, 2)
    for box in (jet.value, jet.d1, jet.d2):
        for v in box.outer(ctx)[0] + box.outer(ctx)[1]:
            assert v.q.bit_length() < 1500 and v.p.bit_length() < 1500
