"""The structured forward affine step of the mode fast (``linalg/fast_forward.py``) and fast
CROWN's forward intermediate bounds (``crown.FORWARD_MIN_NODE``): the fast forms enclose the
exact dense forms; fast CROWN with the rule forced on holds the exact outputs."""

import random

import numpy as np
import pytest
from flint import fmpq, fmpq_mat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms import crown as crown_mod
from exactbounds.algorithms.affine import affine
from exactbounds.algorithms.crown import crown
from exactbounds.algorithms.ibp import evaluate
from exactbounds.graph import Graph
from exactbounds.inputsets import LpBall, sample, vertices
from exactbounds.linalg import split_q
from exactbounds.linalg.backends import as_q
from exactbounds.linalg.fast import FastBackend
from exactbounds.linalg.fast_forward import lin_forward
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU
from test_structured_crown import (
    EXACT,
    FAST,
    cnn,
    conv_op,
    diag_op,
    index_op,
    pool_op,
    q,
    sparse_op,
)

SET = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rand_mat(draw, r, c):
    vals = st.one_of(
        st.integers(-40, 40).map(lambda k: fmpq(k, 8)),
        st.sampled_from([fmpq(1, 3), fmpq(-2, 9), fmpq(2) ** -70, fmpq(3) * fmpq(2) ** 40]),
    )
    return fmpq_mat(r, c, [draw(vals) for _ in range(r * c)])


def dense_forward(Ws, b, forms):
    """``L' = Σ W⁺L + W⁻U``, ``l' = Σ W⁺l + W⁻u + b`` (``U'`` likewise), exactly."""
    m, n = Ws[0].nrows(), forms[0][0].ncols()
    L, l, U, u = fmpq_mat(m, n), b, fmpq_mat(m, n), b
    for W, (iL, il, iU, iu) in zip(Ws, forms):
        P, N = split_q(as_q(W))
        L, l = L + P * iL + N * iU, l + P * il + N * iu
        U, u = U + P * iU + N * iL, u + P * iu + N * il
    return L, l, U, u


def inside(ball, exact, scale):
    """Every exact entry in its ball; the balls at most ``1e-9·scale`` wide (``scale`` bounds
    ``|W|·|X|``: a cancellation leaves a radius relative to it)."""
    lo, hi = ball.ends()
    for (i, j), v in np.ndenumerate(lo):
        assert q(v) <= exact[i, j] <= q(hi[i, j]), (i, j)
        assert hi[i, j] - v <= 1e-9 * scale, (i, j)


def max_abs(mats):
    return max((abs(float(v)) for M in mats for v in as_q(M).entries()), default=0.0)


@SET
@given(st.data())
def test_structured_forward_step_holds_the_dense_forms(data):
    """Convolutions, pools, index maps, add/sub/scale, sparse matrices: the fast structured
    forms (two different forms per input, or one) hold the exact dense forms, tightly."""
    op = data.draw(st.one_of(conv_op(), pool_op(), index_op(), diag_op(), sparse_op()))
    lin = op.linear_map()
    Ws, b = op.linear_params()
    n = data.draw(st.integers(1, 3))
    same = data.draw(st.booleans())
    forms = []
    for W in Ws:
        k = as_q(W).ncols()
        L, l = rand_mat(data.draw, k, n), rand_mat(data.draw, k, 1)
        U, u = (L, l) if same else (rand_mat(data.draw, k, n), rand_mat(data.draw, k, 1))
        forms.append((L, l, U, u))
    ref = dense_forward(Ws, as_q(b), forms)
    be = FastBackend()
    fforms = [tuple(be.mat(M) for M in f) for f in forms]
    if same:
        fforms = [(L, l, L, l) for L, l, _, _ in fforms]
    got = lin_forward(be, lin, fforms, n)
    assert got is not None
    scale = 1 + 64 * max_abs(Ws) * max_abs([M for f in forms for M in f]) + max_abs([b])
    for ball, exact in zip(got, ref):
        inside(ball, exact, scale)


def points(S):
    return sample(S, random.Random(0), 4) + vertices(S, 4)


def holds(g, S, res):
    for x in points(S):
        y = evaluate(g, x, EXACT)
        for v, lo, hi in zip(y, res.output.lo, res.output.hi):
            assert res.ctx.lower(lo) <= v <= res.ctx.upper(hi)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_crown_forward_intermediate_holds_exact_outputs(data):
    """Fast CROWN with forward intermediate bounds on every node read by ReLUs (the rule forced
    on; backward passes from the rows they leave unstable) holds the exact outputs at random
    points and vertices; it says so, and its status is ``bound``."""
    g = data.draw(cnn())
    x0 = [fmpq(data.draw(st.integers(-4, 4)), 4) for _ in range(16)]
    S = LpBall(x0, fmpq(1, 8), "inf")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(crown_mod, "FORWARD_MIN_NODE", 0)
        mp.setattr(crown_mod, "SPARSE_MIN", 1)
        res = crown(g, S, FAST)
    assert res.status == "bound"
    assert any("forward affine" in t for t in res.notes)
    holds(g, S, res)
    holds(g, S, affine(g, S, FAST))


def test_forward_rule_only_in_fast_mode_and_small_inputs(monkeypatch):
    """The rule: mode fast, input of at most ``FORWARD_MAX_INPUT`` entries, node larger than
    ``FORWARD_MIN_NODE`` and read only by ReLUs; the exact mode never takes it. (The first
    layer takes IBP, the exact range of one affine map over a box; the rule acts on the
    second.)"""
    monkeypatch.setattr(crown_mod, "FORWARD_MIN_NODE", 0)
    monkeypatch.setattr(crown_mod, "SPARSE_MIN", 1)
    net = Graph.sequential(
        2,
        [
            Linear.from_weights([[1, -1], [2, 1]], [0, 0]),
            ReLU((2,)),
            Linear.from_weights([[1, -1], [2, 1]], [0, 0]),
            ReLU((2,)),
            Linear.from_weights([[1, 1]], [0]),
        ],
    )
    S = LpBall([fmpq(0), fmpq(0)], fmpq(1), "inf")
    assert not any("forward affine" in t for t in crown(net, S, EXACT).notes)
    assert any("forward affine" in t for t in crown(net, S, FAST).notes)
    monkeypatch.setattr(crown_mod, "FORWARD_MAX_INPUT", 1)
    assert not any("forward affine" in t for t in crown(net, S, FAST).notes)
