"""Branch and bound's fast tier (``algorithms.bab_float``): rigorous float64 CROWN over many
boxes at once. Its lower bounds must hold for the *exact* network at every point of each box
(parameters that are not floats included), stay close to exact CROWN, and respect ReLU splits;
``verify`` on it must never prove a property that an exact point violates."""

import itertools

import numpy as np
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.bab import PROVED, VIOLATED, crown_bounds, spec_graph, verify
from exactbounds.algorithms.bab_float import ReluChain
from exactbounds.algorithms.ibp import evaluate
from exactbounds.core import Box
from exactbounds.graph import Graph
from exactbounds.io.vnnlib import parse_vnnlib
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU

# weights: quarters (floats) and thirds/fifths (not floats: rounded, error charged)
Q = st.builds(fmpq, st.integers(-12, 12), st.sampled_from([1, 3, 4, 5]))


@st.composite
def chains(draw, n_in=2):
    widths = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 3)))] + [2]
    ops, prev = [], n_in
    for k, w in enumerate(widths):
        W = [[draw(Q) for _ in range(prev)] for _ in range(w)]
        ops.append(Linear.from_weights(W, [draw(Q) for _ in range(w)]))
        if k < len(widths) - 1:
            ops.append(ReLU(w))
        prev = w
    return Graph.sequential(n_in, ops)


@st.composite
def boxes(draw, n=2):
    lo = [draw(st.integers(-8, 8)) / 8 for _ in range(n)]
    return lo, [a + draw(st.integers(0, 8)) / 8 for a in lo]  # widths 0 allowed


def _points(lo, hi):
    """Corners and a grid of the box, exact."""
    axes = [
        [
            fmpq(*a.as_integer_ratio()) + (fmpq(*(b - a).as_integer_ratio()) * k) / 4
            for k in range(5)
        ]
        for a, b in zip(lo, hi)
    ]
    return [list(p) for p in itertools.product(*axes)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains(), st.lists(boxes(), min_size=1, max_size=3), st.integers(-3, 3), st.integers(-3, 3))
def test_lower_bounds_hold_exactly_and_match_exact_crown(g, bx, a, b):
    ch = ReluChain.from_graph(g)
    assert ch is not None
    C = np.array([[a, b], [1.0, 0.0], [-1.0, 0.0]])
    lo = np.array([x[0] for x in bx])
    hi = np.array([x[1] for x in bx])
    beta, Lx, empty, _ = ch.lower_bounds(lo, hi, C)
    assert not empty.any() and Lx.shape == (len(bx), 3, 2)
    comps = [(((0, fmpq(a)), (1, fmpq(b))),), (((0, fmpq(1)),),), (((0, fmpq(-1)),),)]
    for r, (l, h) in enumerate(bx):
        for x in _points(l, h):
            y = evaluate(g, x)
            for i, row in enumerate(C):
                v = fmpq(int(row[0])) * y[0] + fmpq(int(row[1])) * y[1]
                assert fmpq(*float(beta[r, i]).as_integer_ratio()) <= v
        # as tight as exact CROWN up to float rounding
        box = Box(
            [fmpq(*v.as_integer_ratio()) for v in l], [fmpq(*v.as_integer_ratio()) for v in h]
        )

        class _C:
            def __init__(self, c):
                self.coeffs = c

        sg = spec_graph(g, [_C(c[0]) for c in comps])
        ex = crown_bounds(sg, box)
        for i in range(3):
            e = float(ex.lo[i])
            assert beta[r, i] <= e + 1e-9 * (1 + abs(e))
            assert beta[r, i] >= e - 1e-6 * (1 + abs(e))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains(), boxes(), st.integers(0, 3), st.sampled_from([-1, 1]))
def test_relu_split_bounds_hold_on_their_part(g, bx, j, sign):
    """With the first ReLU input ``z_j`` forced to ``sign``: the bounds hold at every grid
    point where the exact ``z_j`` has that sign; an 'empty' region has no such point."""
    ch = ReluChain.from_graph(g)
    if len(ch.layers) < 2:
        return
    n1 = ch.layers[0][0].shape[0]
    j = j % n1
    split = np.zeros((1, n1), dtype=np.int8)
    split[0, j] = sign
    splits = [split] + [None] * (len(ch.layers) - 2)
    C = np.array([[1.0, 0.0], [0.0, -1.0]])
    beta, _, empty, _ = ch.lower_bounds(np.array([bx[0]]), np.array([bx[1]]), C, splits=splits)
    first = Graph.sequential(2, [g.nodes[0].op])
    for x in _points(*bx):
        z = evaluate(first, x)[j]
        if (z >= 0) if sign > 0 else (z <= 0):
            assert not empty[0]
            y = evaluate(g, x)
            assert fmpq(*float(beta[0, 0]).as_integer_ratio()) <= y[0]
            assert fmpq(*float(beta[0, 1]).as_integer_ratio()) <= -y[1]


def test_rounded_weights_cannot_prove_an_exact_violation():
    """Regression for soundness: ``y = 49·relu(x/49) = x`` with 1/49 rounded in float64, so a
    float evaluation gives ``y(1) < 1``; the property ``y >= 1`` is violated exactly at x = 1,
    and verify must find that point, not prove the property."""
    g = Graph.sequential(
        1,
        [Linear.from_weights([[fmpq(1, 49)]], [0]), ReLU(1), Linear.from_weights([[49]], [0])],
    )
    ch = ReluChain.from_graph(g)
    assert ch.layers[0][1][0, 0] > 0  # the rounding error of 1/49 is charged
    assert float(ch.forward(np.array([[1.0]]))[0, 0]) < 1.0
    spec = parse_vnnlib(
        "(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= 0 X_0 1))(assert (>= Y_0 1))"
    )
    r = verify(g, spec.input_box, spec.output, budget=20)
    assert r.status == VIOLATED and r.x == [fmpq(1)] and evaluate(g, r.x)[0] == 1
    assert r.bound.startswith("crown float64")
    spec2 = parse_vnnlib(
        "(declare-const X_0 Real)(declare-const Y_0 Real)"
        "(assert (<= 0 X_0 1))(assert (>= Y_0 1.0000001))"
    )
    assert verify(g, spec2.input_box, spec2.output, budget=20).status == PROVED


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains(), st.integers(-12, 12), st.sampled_from(["influence", "widest"]))
def test_batched_verify_agrees_with_the_exact_tier(g, k, heuristic):
    """The batched float tier and the exact-dyadic tier (``bound_fn``) reach no contradictory
    decisions; a counterexample is exact and inside the box."""
    spec = parse_vnnlib(
        "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)"
        "(declare-const Y_1 Real)(assert (<= -1 X_0 1))(assert (<= -1 X_1 0.5))"
        f"(assert (or (>= (- Y_0 Y_1) {k / 4}) (<= Y_1 {-k / 2})))"
    )
    box = spec.input_box
    fast = verify(g, box, spec.output, budget=20, max_regions=3000, heuristic=heuristic)
    slow = verify(
        g, box, spec.output, budget=20, max_regions=300, heuristic=heuristic, bound_fn=crown_bounds
    )
    assert fast.bound.startswith("crown float64")
    assert {fast.status, slow.status} != {PROVED, VIOLATED}
    if fast.status == VIOLATED:
        assert box.contains(fast.x) and spec.output.evaluate(evaluate(g, fast.x))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains(), st.integers(-12, 12))
def test_relu_splitting_agrees_with_the_exact_tier(g, k):
    """Branching on ReLU signs reaches no decision that contradicts the exact tier; its
    counterexamples are exact points of the box."""
    spec = parse_vnnlib(
        "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)"
        "(declare-const Y_1 Real)(assert (<= -1 X_0 1))(assert (<= -1 X_1 0.5))"
        f"(assert (or (>= (- Y_0 Y_1) {k / 4}) (<= Y_1 {-k / 2})))"
    )
    box = spec.input_box
    fast = verify(g, box, spec.output, budget=20, max_regions=500, split="relu")
    slow = verify(g, box, spec.output, budget=20, max_regions=300, bound_fn=crown_bounds)
    assert fast.bound == "crown float64 rigorous, ReLU splits"
    assert {fast.status, slow.status} != {PROVED, VIOLATED}
    if fast.status == VIOLATED:
        assert box.contains(fast.x) and spec.output.evaluate(evaluate(g, fast.x))


def test_relu_splitting_with_multipliers_proves_what_needs_a_split():
    """``y = relu(x) − x/2`` on [-1, 1] (true minimum 0 at x = 0): CROWN alone gives
    ``y >= −1/2``; splitting the ReLU's sign, each side's constraint (``x >= 0`` or ``x <= 0``)
    enters the bound through its multiplier, and ``y <= −1/4`` is refuted on both."""
    g = Graph.sequential(
        1,
        [Linear.from_weights([[1], [1]], [0, 0]), ReLU(2), Linear.from_weights([[1, -0.5]], [0])],
    )
    spec = parse_vnnlib(
        "(declare-const X_0 Real)(declare-const Y_0 Real)"
        "(assert (<= -1 X_0 1))(assert (<= Y_0 -0.25))"
    )
    root = verify(g, spec.input_box, spec.output, budget=20, split="relu", max_regions=1)
    assert root.status == "unknown"
    r = verify(g, spec.input_box, spec.output, budget=20, split="relu")
    assert r.status == PROVED and r.regions <= 7
