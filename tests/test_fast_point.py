"""Point functionals in fast CROWN (``exactbounds/linalg/fast_point.py``): a product's rounding
radius, kept as terms, is settled into the bias as ``e >= rad·m``. Checked in exact rational
arithmetic: for every row, ``Σ_j |(Λ·W)_ij − fl_ij|·m_j <= e_i`` for dense and structured
products, sums and elementwise lines, on adversarial data (magnitudes 1e-30..1e30, subnormals,
cancellation, 10^4-term rows); a radius read instead of settled still encloses the exact
product; whole fast CROWN runs hold the exact network values."""

import random

import numpy as np
import pytest
from flint import fmpq, fmpq_mat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.crown import crown
from exactbounds.algorithms.ibp import evaluate
from exactbounds.core import Box
from exactbounds.graph import Graph
from exactbounds.inputsets import sample, vertices
from exactbounds.linalg import backend_for
from exactbounds.linalg.backends import as_q
from exactbounds.linalg.fast import Ball, FVec, mat_ball
from exactbounds.linalg.fast_point import LazyBall, PointFastBackend
from exactbounds.numbers import RationalContext, make_context
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU
from tests.test_structured_crown import conv_op, diag_op, index_op, pool_op, sparse_op

EXACT = RationalContext(128)
FAST = make_context("fast")
SET = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def Q(f):
    return fmpq(*float(f).as_integer_ratio())


def q_of(a):
    return [[Q(v) for v in row] for row in a]


def assert_settled(mid, e, exact_rows, m):
    """``Σ_j |exact_ij − mid_ij|·m_j <= e_i`` exactly, for every row ``i``."""
    mq = [Q(v) for v in m.ravel()]
    for i, row in enumerate(exact_rows):
        err = sum(abs(x - Q(mid[i, j])) * mq[j] for j, x in enumerate(row))
        assert err <= Q(e[i, 0]), (i, float(err), e[i, 0])


def assert_rad_encloses(B, exact_rows):
    lo, hi = B.ends()
    for i, row in enumerate(exact_rows):
        for j, x in enumerate(row):
            assert Q(lo[i, j]) <= x <= Q(hi[i, j]), (i, j)


def adversarial(rng, shape, spread):
    """Floats of magnitudes ``10^±spread`` (and some subnormals and exact zeros)."""
    a = rng.standard_normal(shape) * 10.0 ** rng.uniform(-spread, spread, shape)
    a[rng.random(shape) < 0.1] = 0.0
    a[rng.random(shape) < 0.05] = 5e-324 * rng.integers(1, 100)
    return a


def dense_exact(L, W):
    Lq, Wq = q_of(L), q_of(W)
    return [
        [sum(Lq[i][k] * Wq[k][j] for k in range(len(Wq))) for j in range(W.shape[1])]
        for i in range(L.shape[0])
    ]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("spread", [0, 30])
def test_dense_product_settles_its_rounding(seed, spread):
    rng = np.random.default_rng(seed)
    r, k, c = 3, 25, 6
    L, W = adversarial(rng, (r, k), spread), adversarial(rng, (k, c), spread)
    if seed % 2:  # cancellation: a row and its negative, shifted by one ulp
        L[1] = -np.nextafter(L[0], np.inf)
    m = np.abs(adversarial(rng, (c, 1), spread))
    be = PointFastBackend()
    got = be.mul(Ball(L), Ball(W))
    assert isinstance(got, LazyBall)
    exact = dense_exact(L, W)
    pt, e = be.settle(got, lambda: m)
    assert pt.rad is None and np.array_equal(pt.mid, got.mid)
    assert_settled(got.mid, e.rad, exact, m)
    again = be.mul(Ball(L), Ball(W))  # read instead of settled: the ball rule
    assert_rad_encloses(again, exact)


def test_ten_thousand_term_rows():
    rng = np.random.default_rng(7)
    L = rng.standard_normal((2, 10_000)) * 1e8
    W = rng.standard_normal((10_000, 2)) * 1e-8
    W[:, 1] = -W[:, 0] * (1 + 2.0**-40)  # heavy cancellation in the second column
    m = np.array([[3.0], [1e10]])
    be = PointFastBackend()
    got = be.mul(Ball(L), Ball(W))
    pt, e = be.settle(got, lambda: m)
    assert_settled(got.mid, e.rad, dense_exact(L, W), m)


def test_weights_with_a_radius_settle_both_parts():
    """``W`` not a float matrix (``1/3``): its radius enters ``e`` as ``|Λ|·Wr·m``."""
    rng = np.random.default_rng(3)
    Wq = fmpq_mat(4, 3, [fmpq(int(v), 3) for v in rng.integers(-9, 9, 12)])
    W = mat_ball(Wq)
    assert W.rad is not None
    L = rng.standard_normal((2, 4))
    m = np.array([[1.0], [2.0], [0.5]])
    be = PointFastBackend()
    got = be.mul(Ball(L), W)
    exact = [[sum(Q(L[i, k]) * Wq[k, j] for k in range(4)) for j in range(3)] for i in range(2)]
    pt, e = be.settle(got, lambda: m)
    assert_settled(got.mid, e.rad, exact, m)


@SET
@given(st.data())
def test_structured_products_settle_their_rounding(data):
    op = data.draw(st.one_of(conv_op(), pool_op(), index_op(), diag_op(), sparse_op()))
    lin = op.linear_map()
    Ws, _ = op.linear_params()
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    be = PointFastBackend()
    L = adversarial(rng, (2, op.out_dim), data.draw(st.sampled_from([0, 20])))
    for part, W in zip(lin.parts, Ws):
        if part is None:
            continue
        Wq = as_q(W)
        exact = [
            [sum(Q(L[i, o]) * Wq[o, j] for o in range(op.out_dim)) for j in range(Wq.ncols())]
            for i in range(2)
        ]
        got = be.lin_rmul(Ball(L), part)
        m = np.abs(rng.standard_normal((Wq.ncols(), 1))) * 10.0 ** rng.uniform(-5, 5)
        pt, e = be.settle(got, lambda m=m: m)
        if e is None:  # exact (a copy): the midpoint is the product
            assert_rad_encloses(got, exact)
            assert got.rad is None
            continue
        assert_settled(got.mid, e.rad, exact, m)
        assert_rad_encloses(be.lin_rmul(Ball(L), part), exact)


@pytest.mark.parametrize("seed", range(4))
def test_sums_and_lines_settle_their_rounding(seed):
    rng = np.random.default_rng(seed)
    r, k, c = 3, 8, 5
    be = PointFastBackend()
    L1, L2, W = adversarial(rng, (r, k), 10), adversarial(rng, (r, k), 10), rng.random((k, c))
    W1 = be.mul(Ball(L1), Ball(W))  # lazy
    total = be.add(W1, Ball(L2 @ W), c)  # lazy + point
    exact = dense_exact(L1, W)
    exact = [[x + Q(y) for x, y in zip(row, yr)] for row, yr in zip(exact, L2 @ W)]
    m = np.abs(rng.standard_normal((c, 1)))
    pt, e = be.settle(total, lambda: m)
    assert_settled(total.mid, e.rad, exact, m)
    # elementwise lines: Λ·diag(slope) with the slope chosen by the sign of Λ
    lam = adversarial(rng, (r, c), 10)
    sl, su = rng.random(c), rng.random(c) + 1
    sl[0] = su[0]  # a column whose two lines agree (a stable neuron)
    zero = np.zeros(c)
    ib = rng.random(c)
    ib[1] = 0.0  # and one without intercept
    rel = (FVec(sl, zero), FVec(-ib, zero), FVec(su, zero), FVec(ib, zero))
    for upper in (False, True):
        got, bias = be.relax_backward(Ball(lam), c, rel, upper)
        pos_s, neg_s = (su, sl) if upper else (sl, su)
        exact = [
            [Q(v) * Q(pos_s[j] if v >= 0 else neg_s[j]) for j, v in enumerate(row)] for row in lam
        ]
        pt, e = be.settle(got, lambda: m)
        assert_settled(got.mid, e.rad, exact, m)
        pos_b, neg_b = (ib, -ib) if upper else (-ib, ib)
        want = [
            sum(Q(v) * Q(pos_b[j] if v >= 0 else neg_b[j]) for j, v in enumerate(row))
            for row in lam
        ]
        lo, hi = bias.ends()
        for i, w in enumerate(want):
            assert Q(lo[i, 0]) <= w <= Q(hi[i, 0])


def test_no_settling_without_a_finite_bound():
    """``m`` not finite: the radius stays (formed when read) and still encloses."""
    rng = np.random.default_rng(1)
    L, W = rng.standard_normal((2, 6)), rng.standard_normal((6, 3))
    be = PointFastBackend()
    got = be.mul(Ball(L), Ball(W))
    same, e = be.settle(got, lambda: np.array([[1.0], [np.inf], [1.0]]))
    assert e is None and same is got
    assert got.rad is not None
    assert_rad_encloses(got, dense_exact(L, W))


def test_the_fast_mode_uses_point_functionals():
    assert isinstance(backend_for(FAST), PointFastBackend)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**16), st.sampled_from([1.0, 1e-12, 1e12]))
def test_fast_crown_holds_the_network_on_scaled_layers(seed, scale):
    """Layers scaled by 1e±12 (alternately): the settled rounding terms keep fast CROWN sound
    (exact outputs at random points and the vertices lie in the bounds) and within 1e-9
    relative of exact CROWN."""
    rng = np.random.default_rng(seed)
    n, d, ops = 4, 4, []
    for k in range(3):
        s = scale if k % 2 == 0 else 1 / scale
        W = (rng.standard_normal((6, d)) * s).astype(np.float32)
        b = (rng.standard_normal(6) * s).astype(np.float32)
        ops += [Linear.from_weights(W.tolist(), b.tolist()), ReLU(6)]
        d = 6
    ops.append(Linear.from_weights(rng.standard_normal((2, d)).tolist(), [0.0, 0.5]))
    g = Graph.sequential(n, ops)
    S = Box([fmpq(-1, 4)] * n, [fmpq(1, 2)] * n)
    fa, ex = crown(g, S, FAST), crown(g, S, EXACT)
    lo = [FAST.lower(v) for v in fa.output.lo]
    hi = [FAST.upper(v) for v in fa.output.hi]
    for x in sample(S, random.Random(seed), 5) + vertices(S, 16):
        for j, y in enumerate(evaluate(g, x, EXACT)):
            assert lo[j] <= y <= hi[j]
    for a, b in zip(lo + hi, ex.output.lo + ex.output.hi):
        assert abs(a - b) <= abs(b) * fmpq(1, 10**9) + fmpq(1, 10**30)


@pytest.mark.parametrize("den", [1, 3])
def test_sign_split_in_floats_encloses_the_exact_split(den):
    """``split`` (forward affine's ``W⁺``, ``W⁻``) works on the float ball of ``W`` when
    every sign is decided (float weights: exact), from the exact entries otherwise."""
    from exactbounds.linalg.backends import split_q

    rng = np.random.default_rng(den)
    vals = [fmpq(int(v), den) for v in rng.integers(-20, 20, 30)]
    vals[0] = fmpq(0)
    W = fmpq_mat(5, 6, vals)
    P, N = PointFastBackend().split(W)
    Pq, Nq = split_q(W)
    rows = lambda M: [[M[i, j] for j in range(6)] for i in range(5)]  # noqa: E731
    assert_rad_encloses(P, rows(Pq))
    assert_rad_encloses(N, rows(Nq))
    if den == 1:
        assert P.rad is None and N.rad is None


def test_fast_batchnorm_error_term_uses_fast_ibp(monkeypatch):
    """A BatchNorm with an irrational √(σ²+ε) (midpoint coefficients plus an error term
    ``|x|max·rad``): in the mode fast ``|x|max`` comes from fast IBP, never from exact IBP of the
    whole network (49.8 s -> 3.1 s on VNN-COMP's vit), and the bound still holds the network."""
    from exactbounds.algorithms import crown as crown_mod
    from exactbounds.operators.batchnorm import BatchNorm, BatchNormParams

    def no_exact_ibp(self):
        raise AssertionError("exact IBP in the mode fast")

    monkeypatch.setattr(crown_mod._Run, "ibp_boxes", no_exact_ibp)
    bn = BatchNorm(
        BatchNormParams(
            [fmpq(3, 2), fmpq(-1, 3), fmpq(0)],
            [fmpq(2), fmpq(1, 5), fmpq(3)],
            [fmpq(1, 7), fmpq(5, 4), fmpq(-2)],
            [fmpq(1, 2), fmpq(1), fmpq(-1, 9)],
            fmpq(1, 10),
        )
    )
    W = [[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]]
    g = Graph.sequential(2, [Linear.from_weights(W, [0.0, 0.1, -0.2]), ReLU(3), bn])
    S = Box([fmpq(-1), fmpq(0)], [fmpq(1, 2), fmpq(2)])
    res = crown(g, S, FAST)
    assert res.mode == "fast"
    assert any("BatchNorm coefficients enclosed" in t for t in res.notes)
    lo = [FAST.lower(v) for v in res.output.lo]
    hi = [FAST.upper(v) for v in res.output.hi]
    for x in sample(S, random.Random(3), 6) + vertices(S, 8):
        for j, y in enumerate(evaluate(g, x, EXACT)):
            assert EXACT.lower(y) >= lo[j] and EXACT.upper(y) <= hi[j]
