"""Convolutions stay convolutions: exact evaluation and IBP by im2col products (integer or
rational) equal the dense matrix of the map, for every stride, padding, dilation and group
count, dyadic and non-dyadic data."""

from flint import fmpq
from hypothesis import given, settings
from hypothesis import strategies as st

from exactbounds.core import Box
from exactbounds.numbers import make_context
from exactbounds.operators.base import AffineOp
from exactbounds.operators.conv import Conv2d

dy = st.integers(-16, 16).map(lambda k: fmpq(k, 8))
anyq = st.one_of(dy, st.sampled_from([fmpq(1, 3), fmpq(-5, 7)]))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_im2col_equals_the_dense_map(data):
    g = data.draw(st.integers(1, 2))
    cin, cout = g * data.draw(st.integers(1, 2)), g * data.draw(st.integers(1, 2))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    H, W = data.draw(st.integers(kh, 5)), data.draw(st.integers(kw, 5))
    num = anyq if data.draw(st.booleans()) else dy
    w = [
        [[[data.draw(num) for _ in range(kw)] for _ in range(kh)] for _ in range(cin // g)]
        for _ in range(cout)
    ]
    op = Conv2d(
        w,
        [data.draw(num) for _ in range(cout)],
        (cin, H, W),
        stride=data.draw(st.integers(1, 2)),
        padding=data.draw(st.integers(0, 1)),
        dilation=data.draw(st.sampled_from([1, 1, 2])) if min(H, W) >= 2 * max(kh, kw) else 1,
        groups=g,
    )
    n = op.in_dim
    ctx = make_context("exact")
    x = [data.draw(num) for _ in range(n)]
    assert op.evaluate(ctx, x) == AffineOp.evaluate(op, ctx, x)
    lo = [data.draw(num) for _ in range(n)]
    box = Box(lo, [a + abs(data.draw(num)) for a in lo], op.in_shapes[0])
    fast, ref = op.ibp(ctx, box), AffineOp._ibp(op, ctx, (box,), True)
    assert fast.lo == ref.lo and fast.hi == ref.hi and fast.shape == op.out_shape
    d1, d1ref = op.deriv(ctx, box), AffineOp._ibp(op, ctx, (box,), False)
    assert d1.lo == d1ref.lo and d1.hi == d1ref.hi
