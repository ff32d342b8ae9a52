"""Dyadic IBP rounds every intermediate box outward to the context's bits: each node's box
contains the exact IBP box, its ends are dyadics of at most ``bits`` bits, the output box
contains the exact IBP output box (so every point's exact value), and ``rounded=False`` (what
CROWN's error terms read) gives the exact IBP boxes unchanged. Numbers stay short on a deep
chain with BatchNorm, where exact IBP sums rationals of unrelated denominators."""

import random

from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.ibp import evaluate, ibp
from exactbounds.core import Box
from exactbounds.graph import Graph
from exactbounds.inputsets import bounding_box
from exactbounds.numbers import RationalContext, make_context
from exactbounds.operators.batchnorm import BatchNorm, BatchNormParams
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU
from tests.test_crown_soundness import cnn, input_set, mlp

EXACT = RationalContext(128)
SET = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def short(v, bits):
    p, q = int(v.p), int(v.q)
    return q & (q - 1) == 0 and abs(p).bit_length() <= bits


def points(S, n, k=6, seed=0):
    lo, hi = bounding_box(S).outer()
    rng = random.Random(seed)
    pts = [lo, hi]
    for _ in range(k):
        pts.append([a + (b - a) * fmpq(rng.randint(0, 16), 16) for a, b in zip(lo, hi)])
    return pts


@SET
@given(st.data(), st.sampled_from([4, 16, 64]))
def test_rounded_boxes_contain_exact_boxes(data, bits):
    g, n = data.draw(st.one_of(mlp(), cnn()))
    S = data.draw(input_set(n))
    ctx = make_context("dyadic", bits=bits)
    exact = RationalContext(bits)  # the same enclosures (square roots, sigmoid) as ctx
    got = ibp(g, S, ctx, intermediate=True)
    ref = ibp(g, S, exact, intermediate=True)
    assert ibp(g, S, ctx, intermediate=True, rounded=False).keys() == ref.keys()
    for name, box in got.items():
        lo, hi = box.outer(ctx)
        rlo, rhi = ref[name].outer(exact)
        assert all(a <= b for a, b in zip(lo, rlo)) and all(a >= b for a, b in zip(hi, rhi))
        if name not in (g.output, g.INPUT):
            assert all(short(v, bits) for v in lo + hi)
    lo, hi = got[g.output].outer(ctx)
    assert ibp(g, S, ctx).outer(ctx) == (lo, hi)
    for x in points(S, n):
        y = [EXACT.lower(v) for v in evaluate(g, x, EXACT)]
        assert all(a <= v <= b for a, v, b in zip(lo, y, hi))
    assert ibp(g, S, ctx, rounded=False).outer(ctx) == ref[g.output].outer(exact)


def test_numbers_stay_short_on_a_deep_batchnorm_chain():
    rng = random.Random(3)
    n, ops = 8, []
    for _ in range(12):
        ops.append(Linear.from_weights([[rng.uniform(-1, 1) for _ in range(n)] for _ in range(n)]))
        ops.append(
            BatchNorm(
                BatchNormParams(
                    [fmpq(rng.randint(-9, 9), 11) for _ in range(n)],
                    [fmpq(rng.randint(1, 9), 3) for _ in range(n)],
                    [fmpq(rng.randint(1, 9), 7) for _ in range(n)],
                    [fmpq(rng.randint(-9, 9), 13) for _ in range(n)],
                    1e-5,
                )
            )
        )
        ops.append(ReLU(n))
    g = Graph.sequential(n, ops)
    S = Box([fmpq(-1, 3)] * n, [fmpq(1, 5)] * n)
    ctx = make_context("dyadic")
    out = ibp(g, S, ctx).outer(ctx)
    assert max(max(int(v.p).bit_length(), int(v.q).bit_length()) for v in out[0] + out[1]) < 400
    for x in points(S, n, 3):
        y = [EXACT.lower(v) for v in evaluate(g, x, EXACT)]
        assert all(a <= v <= b for a, b, v in zip(*out, y))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-(2**200), 2**200),
    st.integers(-150, 250),
    st.sampled_from([2, 3, 8, 53, 64]),
    st.booleans(),
)
def test_round_dyadic_of_dyadics_is_the_nearest_outward(p, s, bits, up):
    """The dyadic fast path of ``round_dyadic``: ``floor``/``ceil`` of ``x·2^k`` over ``2^k``
    with ``k`` such that ``|x|·2^k`` has ``bits`` integer bits (x unchanged when it fits)."""
    from fractions import Fraction
    from math import ceil, floor

    from exactbounds.numbers.dyadic_mode import round_dyadic

    x = Fraction(p, 2**s) if s >= 0 else Fraction(p * 2**-s)
    r = round_dyadic(fmpq(x.numerator, x.denominator), bits, up)
    if x == 0:
        assert r == 0
        return
    e = abs(x.numerator).bit_length() - x.denominator.bit_length()  # 2^e <= |x| < 2^(e+1)
    k = bits - 1 - e
    m = (ceil if up else floor)(x * Fraction(2) ** k)
    assert Fraction(int(r.p), int(r.q)) == m / Fraction(2) ** k
