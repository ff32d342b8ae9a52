"""Input sets: membership, samples, vertices and concretisation of affine forms (exact for
boxes, L∞ and L1 balls; outward for L2)."""

import random

import pytest
from flint import fmpq
from hypothesis import given, settings
from hypothesis import strategies as st

from exactbounds.core import Box
from exactbounds.errors import InvalidBoxError, InvalidValueError, ShapeError
from exactbounds.inputsets import (
    LpBall,
    bounding_box,
    concretize,
    contains,
    corner,
    minimizer,
    sample,
    sample_mixed,
    vertices,
)

SET = settings(max_examples=40, deadline=None)
small = st.integers(-8, 8).map(lambda k: fmpq(k, 4))


@st.composite
def input_set(draw, n=None):
    n = n or draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["box", "inf", "1", "2"]))
    center = [draw(small) for _ in range(n)]
    if kind == "box":
        rad = [draw(st.integers(0, 6).map(lambda k: fmpq(k, 3))) for _ in range(n)]
        return Box([c - r for c, r in zip(center, rad)], [c + r for c, r in zip(center, rad)])
    return LpBall(center, draw(st.integers(0, 6).map(lambda k: fmpq(k, 3))), kind)


def value(row, c, x):
    return c + sum((a * v for a, v in zip(row, x)), fmpq(0))


@SET
@given(input_set(), st.data())
def test_samples_vertices_inside_and_concretisation_sound(S, data):
    n = S.dim
    m = data.draw(st.integers(1, 3))
    A = [[data.draw(small) for _ in range(n)] for _ in range(m)]
    c = [data.draw(small) for _ in range(m)]
    lo, hi = concretize(S, A, c)
    pts = sample(S, random.Random(1), 6) + vertices(S, 16)
    box = bounding_box(S)
    for x in pts:
        assert contains(S, x) and box.contains(x)
        for i in range(m):
            assert lo[i] <= value(A[i], c[i], x) <= hi[i]
    if isinstance(S, Box) or S.norm in ("inf", "1"):
        # exact: the extremes of a linear form are attained at a vertex
        for i in range(m):
            vals = [value(A[i], c[i], x) for x in vertices(S, 64)]
            assert min(vals) == lo[i] and max(vals) == hi[i]
    else:
        # L2: the bound is within the sqrt rounding of the exact extreme
        for i in range(m):
            nrm2 = sum((a * a for a in A[i]), fmpq(0))
            d = hi[i] - value(A[i], c[i], S.center)
            assert d * d >= S.radius**2 * nrm2
            assert d * d <= S.radius**2 * nrm2 * (1 + fmpq(1, 2**100)) + fmpq(1, 2**200)


def test_membership_is_exact():
    b = LpBall([0, 0], fmpq(1), "2")
    assert b.contains([fmpq(3, 5), fmpq(4, 5)])
    assert not b.contains([fmpq(3, 5), fmpq(4, 5) + fmpq(1, 10**30)])
    l1 = LpBall([0, 0], 1, "1")
    assert l1.contains([fmpq(1, 2), fmpq(-1, 2)]) and not l1.contains([fmpq(1, 2), fmpq(51, 100)])
    assert corner(LpBall([1, 2], 1, "inf"), [1, -1]) == [2, 1]
    assert corner(Box.from_values([0, 0], [1, 2]), [-1, 1]) == [0, 2]


def test_bounding_box_of_every_ball_is_center_pm_radius():
    for norm in ("inf", "1", "2"):
        b = LpBall(["0.5", 1], "1/3", norm).bounding_box()
        assert b.lo == [fmpq(1, 6), fmpq(2, 3)] and b.hi == [fmpq(5, 6), fmpq(4, 3)]


def test_bad_input_sets_raise_our_errors():
    with pytest.raises(InvalidBoxError, match="radius"):
        LpBall([0], -1)
    with pytest.raises(InvalidValueError, match="norm"):
        LpBall([0], 1, "3")
    with pytest.raises(InvalidValueError, match="center"):
        LpBall([float("nan")], 1)
    with pytest.raises(ShapeError):
        concretize(LpBall([0, 0], 1), [[1, 2, 3]], [0])


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 4),
    seed=st.integers(0, 10**6),
    norm=st.sampled_from(["box", "inf", "1", "2"]),
    data=st.data(),
)
def test_minimizer_and_sample_mixed_stay_in_the_set(n, seed, norm, data):
    """``minimizer`` attains the minimum of ``a·x`` over a box / L∞ / L1 ball (compared with
    every vertex) and lies inside an L2 ball below the centre's value; ``sample_mixed`` points
    lie in the set, a box's even-numbered ones are vertices, and the same seed draws the same
    points."""
    q = st.integers(-12, 12).map(lambda k: fmpq(k, 4))
    c = [data.draw(q) for _ in range(n)]
    r = fmpq(data.draw(st.integers(0, 8)), 4)
    S = Box([v - r for v in c], [v + r for v in c]) if norm == "box" else LpBall(c, r, norm)
    a = [data.draw(q) for _ in range(n)]
    x = minimizer(S, a)
    assert contains(S, x)
    val = sum((u * v for u, v in zip(a, x)), fmpq(0))
    if norm == "2":
        assert val <= sum((u * v for u, v in zip(a, c)), fmpq(0))
    else:
        assert all(val <= sum((u * v for u, v in zip(a, p)), fmpq(0)) for p in vertices(S, 64))
    pts = sample_mixed(S, random.Random(seed), 5)
    assert pts == sample_mixed(S, random.Random(seed), 5)
    assert all(contains(S, p) for p in pts)
    if norm == "box":
        assert all(all(v in (lo, hi) for v, lo, hi in zip(p, S.lo, S.hi)) for p in pts[::2])
