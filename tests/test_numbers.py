"""Exact conversion, outward rounding, square-root enclosures and rational intervals."""

import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from flint import fmpq
from hypothesis import given, settings
from hypothesis import strategies as st

from exact_ref import F
from exactbounds.errors import AmbiguousBranch, InvalidValueError
from exactbounds.numbers import (
    IntervalContext,
    RationalContext,
    RInterval,
    SymbolicContext,
    f64_down,
    f64_up,
    rational_str,
    sqrt_enclosure,
    to_exact,
)

finite = st.floats(allow_nan=False, allow_infinity=False)
rationals = st.fractions(max_denominator=10**12).filter(lambda q: abs(q) < 10**300)


@given(finite)
def test_float_enters_as_its_exact_double(x):
    assert F(to_exact(x)) == Fraction(x)


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_numpy_float32_enters_exactly(x):
    assert F(to_exact(np.float32(x))) == Fraction(float(np.float32(x)))


def test_numpy_float16_and_longdouble_exact():
    assert to_exact(np.float16(0.1)) == fmpq(819, 8192)
    assert F(to_exact(np.float64(0.1))) == Fraction(0.1)


@pytest.mark.parametrize(
    "text,value",
    [
        ("3/7", Fraction(3, 7)),
        ("-0.125", Fraction(-1, 8)),
        ("0.1", Fraction(1, 10)),
        ("1e-5", Fraction(1, 100000)),
        ("-2.5E2", Fraction(-250)),
        ("0x1.8p-3", Fraction(3, 16)),
        ("-0x.8p1", Fraction(-1)),
        (" 6 / -4 ", Fraction(-3, 2)),
        ("42", Fraction(42)),
    ],
)
def test_strings_are_exact(text, value):
    assert F(to_exact(text)) == value


def test_decimal_string_is_not_the_double():
    assert to_exact("0.1") != to_exact(0.1)


def test_other_exact_types():
    assert to_exact(Fraction(2, 6)) == fmpq(1, 3)
    assert to_exact(sp.Rational(-5, 10)) == fmpq(-1, 2)
    assert F(to_exact(sp.Float(0.1))) == Fraction(0.1)
    assert to_exact(np.int64(7)) == 7


@pytest.mark.parametrize(
    "bad",
    [
        math.nan,
        math.inf,
        -math.inf,
        np.float32("nan"),
        "nan",
        "inf",
        "1/0",
        "abc",
        True,
        sp.sqrt(2),
        None,
        [1],
    ],
)
def test_bad_numbers_raise(bad):
    with pytest.raises(InvalidValueError):
        to_exact(bad, "p[3]")


def test_error_names_parameter():
    with pytest.raises(InvalidValueError, match=r"gamma\[2\] = nan"):
        to_exact(math.nan, "gamma[2]")


@given(rationals)
def test_rational_str_round_trips(q):
    assert F(to_exact(rational_str(to_exact(q)))) == q


@given(rationals)
def test_f64_outward(q):
    lo, hi = f64_down(to_exact(q)), f64_up(to_exact(q))
    assert Fraction(lo) <= q <= Fraction(hi)
    assert hi == lo or math.nextafter(lo, math.inf) == hi  # the two neighbours
    if Fraction(float(q)) == q:
        assert lo == hi == float(q)


def test_f64_outward_beyond_range():
    big = fmpq(2) ** 1100
    assert f64_up(big) == math.inf and f64_down(big) == 1.7976931348623157e308
    assert f64_down(-big) == -math.inf


@settings(max_examples=300)
@given(
    st.fractions(min_value=0, max_denominator=10**30).filter(lambda q: q < 10**40),
    st.sampled_from([2, 8, 53, 128, 300]),
)
def test_sqrt_enclosure(q, bits):
    r = sqrt_enclosure(to_exact(q), bits)
    if isinstance(r, RInterval):
        lo, hi = F(r.lo), F(r.hi)
        assert 0 <= lo and lo * lo <= q <= hi * hi and lo * lo < q < hi * hi
        assert hi - lo <= lo * Fraction(1, 2**bits)
    else:
        assert F(r) ** 2 == q


def test_sqrt_exact_squares():
    assert sqrt_enclosure(fmpq(9, 49), 10) == fmpq(3, 7)
    assert sqrt_enclosure(fmpq(0), 10) == 0
    with pytest.raises(ValueError):
        sqrt_enclosure(fmpq(-1), 10)


@given(
    rationals,
    rationals,
    rationals,
    rationals,
    st.fractions(0, 1),
    st.fractions(0, 1),
    st.sampled_from("+-*/"),
)
def test_rinterval_arithmetic_contains_pointwise_results(a, b, c, d, s, t, op):
    x = RInterval(min(a, b), max(a, b))
    y = RInterval(min(c, d), max(c, d))
    px = F(x.lo) + s * (F(x.hi) - F(x.lo))
    py = F(y.lo) + t * (F(y.hi) - F(y.lo))
    if op == "/":
        if y.lo <= 0 <= y.hi:
            with pytest.raises((AmbiguousBranch, ZeroDivisionError)):
                x / y
            return
    z = {"+": x + y, "-": x - y, "*": x * y, "/": x / y if op == "/" else None}[op]
    ref = {"+": px + py, "-": px - py, "*": px * py, "/": px / py if op == "/" else None}[op]
    ctx = RationalContext()
    assert F(ctx.lower(z)) <= ref <= F(ctx.upper(z))


def test_rational_context_sign():
    ctx = RationalContext()
    assert ctx.sign(fmpq(-1, 3)) == -1 and ctx.sign(fmpq(0)) == 0
    assert ctx.sign(RInterval(1, 2)) == 1 and ctx.sign(RInterval(-2, -1)) == -1
    with pytest.raises(AmbiguousBranch):
        ctx.sign(RInterval(-1, 1))


@given(rationals, st.sampled_from([8, 53, 200]))
def test_interval_context_encloses_constants(q, prec):
    ctx = IntervalContext(prec)
    x = ctx.const(to_exact(q))
    assert F(ctx.lower(x)) <= q <= F(ctx.upper(x))
    assert (ctx.status(x) == "exact") == (ctx.lower(x) == ctx.upper(x))


def test_interval_contexts_do_not_share_precision():
    a, b = IntervalContext(20), IntervalContext(200)
    assert a.iv.prec == 20 and b.iv.prec == 200
    wa = F(a.upper(a.sqrt(2))) - F(a.lower(a.sqrt(2)))
    wb = F(b.upper(b.sqrt(2))) - F(b.lower(b.sqrt(2)))
    assert wb < wa * Fraction(1, 2**150)


def test_interval_sign_undecided_raises():
    ctx = IntervalContext(53)
    x = ctx.const(1) - ctx.const("1/3") * 3  # an enclosure of 0 that straddles it
    if ctx.lower(x) < 0 < ctx.upper(x):
        with pytest.raises(AmbiguousBranch):
            ctx.sign(x)
    assert ctx.sign(fmpq(-5)) == -1


def test_symbolic_context_sign_and_assumptions():
    from exactbounds.errors import NeedsCaseSplit

    ctx = SymbolicContext()
    p = sp.Symbol("p", positive=True)
    r = sp.Symbol("r", real=True)
    assert ctx.sign(p + 1) == 1 and ctx.sign(-p) == -1 and ctx.sign(p - p) == 0
    assert ctx.sqrt(4) == 2 and ctx.sqrt(2) == sp.sqrt(2)
    with pytest.raises(NeedsCaseSplit):
        ctx.sign(r)
    assert SymbolicContext({r: -1}).sign(-r) == 1


def test_dyadic_function_is_not_shadowed_by_the_dyadic_mode_module():
    """Regression: the dyadic-mode module was once named ``numbers/dyadic.py``; importing it
    rebound ``exactbounds.numbers.dyadic`` (the function) to the module."""
    import exactbounds.numbers.dyadic_mode  # noqa: F401
    from exactbounds.numbers import dyadic

    assert callable(dyadic) and dyadic(3, -2) == fmpq(3, 4)


def test_interval_of_a_finer_context_is_read_outward():
    """Regression: an interval of a 113-bit context read by a 53-bit one (``coerce``, hence
    ``lower``/``upper``) was rounded to nearest at mpmath's global precision, so reading a
    result with a coarser context (e.g. the fast one after an escalation) lost its ends."""
    from flint import fmpq

    from exactbounds.numbers import IntervalContext, make_context

    fine, coarse = IntervalContext(113), IntervalContext(53)
    q = fmpq(1, 16) + fmpq(1, 2**66)
    x = fine.const(q)
    for ctx in (coarse, make_context("fast")):
        assert ctx.lower(x) <= q <= ctx.upper(x)
        assert ctx.upper(x) > fmpq(1, 16)
