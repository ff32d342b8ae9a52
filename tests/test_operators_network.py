"""The network operators: Conv2d and AveragePool against direct reference formulas, IBP and
forward-affine soundness of every operator, ReLU relaxations, shapes and bad inputs."""

import random

import pytest
from flint import fmpq
from hypothesis import given, settings
from hypothesis import strategies as st

from exactbounds.core import AffineVec, Box
from exactbounds.errors import InvalidModelError, InvalidValueError, ShapeError
from exactbounds.numbers import IntervalContext, RationalContext, make_context
from exactbounds.operators.arithmetic import Add, Scale, Sub
from exactbounds.operators.conv import Conv2d
from exactbounds.operators.linear import Linear
from exactbounds.operators.pool import AveragePool
from exactbounds.operators.relu import ReLU
from exactbounds.operators.reshape import Flatten, Identity, Reshape

SET = settings(max_examples=30, deadline=None)
EX = RationalContext()
num = st.integers(-6, 6).map(lambda k: fmpq(k, 4))


def conv_reference(x, w, b, C, H, W, s, p, d, g):
    """Direct loops over the output (independent of the operator's matrix)."""
    cout, cg, kh, kw = len(w), len(w[0]), len(w[0][0]), len(w[0][0][0])
    ho = (H + 2 * p - d * (kh - 1) - 1) // s + 1
    wo = (W + 2 * p - d * (kw - 1) - 1) // s + 1
    X = lambda c, i, j: x[(c * H + i) * W + j] if 0 <= i < H and 0 <= j < W else 0  # noqa
    out = []
    for o in range(cout):
        grp = o // (cout // g)
        for i in range(ho):
            for j in range(wo):
                acc = fmpq(b[o])
                for c in range(cg):
                    for a in range(kh):
                        for e in range(kw):
                            acc += w[o][c][a][e] * X(
                                grp * cg + c, i * s - p + a * d, j * s - p + e * d
                            )
                out.append(acc)
    return out, (cout, ho, wo)


@st.composite
def conv_case(draw):
    C = draw(st.sampled_from([1, 2, 4]))
    g = draw(st.sampled_from([d for d in (1, 2, 4) if C % d == 0]))
    cout = g * draw(st.integers(1, 2))
    H, W = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s, p, d = draw(st.integers(1, 2)), draw(st.integers(0, 2)), draw(st.integers(1, 2))
    if H + 2 * p - d * (kh - 1) - 1 < 0 or W + 2 * p - d * (kw - 1) - 1 < 0:
        d, p = 1, max(kh, kw)
    w = [
        [[[draw(num) for _ in range(kw)] for _ in range(kh)] for _ in range(C // g)]
        for _ in range(cout)
    ]
    b = [draw(num) for _ in range(cout)]
    return C, H, W, w, b, s, p, d, g


@SET
@given(conv_case(), st.data())
def test_conv2d_matches_direct_formula_and_ibp_is_sound(case, data):
    C, H, W, w, b, s, p, d, g = case
    op = Conv2d(w, b, (C, H, W), stride=s, padding=p, dilation=d, groups=g)
    x = [data.draw(num) for _ in range(C * H * W)]
    ref, shape = conv_reference(x, w, b, C, H, W, s, p, d, g)
    assert op.out_shape == shape
    assert op.evaluate(EX, x) == ref
    iv = IntervalContext(53)
    assert all(iv.lower(a) <= r <= iv.upper(a) for a, r in zip(op.evaluate(iv, x), ref))
    box = Box([v - fmpq(1, 2) for v in x], [v + fmpq(1, 2) for v in x], (C, H, W))
    out = op.ibp(EX, box)
    y = [v + fmpq(random.Random(k).choice([-1, 1]), 2) for k, v in enumerate(x)]
    assert all(lo <= v <= hi for lo, v, hi in zip(out.lo, op.evaluate(EX, y), out.hi))
    aff = op.aff(
        EX,
        AffineVec(
            [[1 if i == j else 0 for j in range(len(x))] for i in range(len(x))], [0] * len(x)
        ),
    )
    assert aff.evaluate(y) == op.evaluate(EX, y)
    dbox = op.deriv(EX, box)
    assert all(h - lo == oh - ol for lo, h, ol, oh in zip(dbox.lo, dbox.hi, out.lo, out.hi))


def test_conv2d_onnx_pads_and_pair_arguments():
    w = [[[[1, 2], [3, 4]]]]
    a = Conv2d(w, None, (1, 3, 3), stride=(1, 2), padding=[1, 0, 0, 1])
    assert a.out_shape == (1, 3, 2)
    x = [fmpq(k) for k in range(9)]
    # output (0, 0): window rows -1..0, cols 0..1: only row 0 counts: 3·x[0] + 4·x[1]
    assert a.evaluate(EX, x)[0] == 4


@SET
@given(
    st.integers(1, 2),
    st.integers(2, 4),
    st.integers(2, 4),
    st.integers(1, 2),
    st.integers(1, 2),
    st.integers(0, 1),
    st.booleans(),
    st.data(),
)
def test_avgpool_matches_direct_formula(C, H, W, k, s, p, cip, data):
    if k > H + 2 * p or k > W + 2 * p or p >= k:
        p = 0
    op = AveragePool((C, H, W), k, s, p, cip)
    x = [data.draw(num) for _ in range(C * H * W)]
    y = op.evaluate(EX, x)
    _, ho, wo = op.out_shape
    for c in range(C):
        for i in range(ho):
            for j in range(wo):
                cells = [
                    (a, e)
                    for a in range(i * s - p, i * s - p + k)
                    for e in range(j * s - p, j * s - p + k)
                    if 0 <= a < H and 0 <= e < W
                ]
                n = k * k if cip else len(cells)
                want = sum((x[(c * H + a) * W + e] for a, e in cells), fmpq(0)) / n
                assert y[(c * ho + i) * wo + j] == want


@SET
@given(st.integers(1, 4), st.data())
def test_elementwise_affine_ops_and_reshapes(n, data):
    x1 = [data.draw(num) for _ in range(n)]
    x2 = [data.draw(num) for _ in range(n)]
    c = [data.draw(num) for _ in range(n)]
    assert Add(n).evaluate(EX, x1, x2) == [a + b for a, b in zip(x1, x2)]
    assert Sub(n).evaluate(EX, x1, x2) == [a - b for a, b in zip(x1, x2)]
    assert Sub(n, constant=c).evaluate(EX, x1) == [a - b for a, b in zip(x1, c)]
    assert Add(n, constant=c).evaluate(EX, x1) == [a + b for a, b in zip(x1, c)]
    assert Scale(n, c, x2).evaluate(EX, x1) == [a * b + e for a, b, e in zip(c, x1, x2)]
    b1 = Box([v - 1 for v in x1], [v + 1 for v in x1])
    b2 = Box([v - fmpq(1, 2) for v in x2], [v for v in x2])
    out = Sub(n).ibp(EX, b1, b2)
    assert out.lo == [a - 1 - b for a, b in zip(x1, x2)]
    assert out.hi == [a + 1 - b + fmpq(1, 2) for a, b in zip(x1, x2)]
    for op in (Identity(n), Flatten((1, n)), Reshape((n,), (n, 1))):
        assert op.evaluate(EX, x1) == x1 and op.ibp(EX, b1).lo == b1.lo


@SET
@given(num, num, st.sampled_from(["adaptive", "zero", "one"]), st.data())
def test_relu_relaxation_sound_in_every_mode(a, b, rule, data):
    lo, hi = min(a, b), max(a, b)
    pts = [lo, hi, (lo + hi) / 2, lo + (hi - lo) * fmpq(data.draw(st.integers(0, 16)), 16)]
    for mode in ("exact", "dyadic", "interval"):
        ctx = make_context(mode, bits=8, prec=53)
        ls, lb, us, ub = ReLU(1).relax(ctx, [ctx.const(lo)], [ctx.const(hi)], lower_slope=rule)
        for x in pts:
            r = max(x, fmpq(0))
            low = ls[0] * ctx.const(x) + lb[0]
            up = us[0] * ctx.const(x) + ub[0]
            assert ctx.lower(low) <= r <= ctx.upper(up)
        if mode == "dyadic":  # dyadic slopes: denominators powers of two
            assert all(int(v.q) & (int(v.q) - 1) == 0 for v in (us[0], ub[0]))
        if lo < 0 < hi and mode == "exact":
            assert us[0] == hi / (hi - lo) and ub[0] == -hi * lo / (hi - lo)
            want = {"zero": 0, "one": 1, "adaptive": 1 if hi > -lo else 0}[rule]
            assert ls[0] == want and lb[0] == 0
        if lo >= 0:
            assert (ls[0], lb[0], us[0], ub[0]) == (1, 0, 1, 0)
        elif hi <= 0:
            assert (ls[0], lb[0], us[0], ub[0]) == (0, 0, 0, 0)


def test_relu_interval_evaluation_straddling_zero_encloses():
    iv = IntervalContext(53)
    y = ReLU(1).evaluate(iv, [iv.iv.mpf([-1, 2])])[0]
    assert iv.lower(y) == 0 and iv.upper(y) == 2


def test_bad_operator_arguments_raise_our_errors():
    with pytest.raises(InvalidModelError, match="groups"):
        Conv2d([[[[1]]]], None, (3, 2, 2), groups=2)
    with pytest.raises(ShapeError, match="in_shape"):
        Conv2d([[[[1]]]], None, (1, 2))
    with pytest.raises(ShapeError, match="does not fit"):
        Conv2d([[[[1, 1, 1]]]], None, (1, 2, 2))
    with pytest.raises(InvalidValueError, match="weight"):
        Conv2d([[[[float("nan")]]]], None, (1, 1, 1))
    with pytest.raises(ShapeError, match="reshape"):
        Reshape((6,), (4, 2))
    with pytest.raises(ShapeError, match="-1"):
        Reshape((6,), (-1, -1))
    with pytest.raises(ShapeError, match="constant"):
        Sub(3, constant=[1, 2])
    with pytest.raises(InvalidValueError, match="lower_slope"):
        ReLU(1).relax(EX, [fmpq(-1)], [fmpq(1)], lower_slope="best")
    with pytest.raises(ShapeError):
        Linear.from_weights([[1, 2]]).evaluate(EX, [1])
    with pytest.raises(ShapeError):
        Add(2).evaluate(EX, [1, 2])
    with pytest.raises(InvalidModelError, match="kernel"):
        AveragePool((1, 2, 2), 0)
    with pytest.raises(InvalidModelError, match="padding"):  # regression: empty window
        AveragePool((1, 2, 2), 1, 1, 1)
