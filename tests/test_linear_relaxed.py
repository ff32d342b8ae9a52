"""The ``LinearRelaxed`` interface (operators bounded by two affine maps of several inputs):
CROWN and forward affine through such an operator are sound in every mode. The operator here is
``y = max(x1, x2)`` with the lines ``y >= x_k`` (k the input of larger midpoint) and
``y <= max(hi1, hi2)`` (or ``y = x_k`` where one input dominates)."""

import random

from flint import fmpq, fmpq_mat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.affine import affine
from exactbounds.algorithms.crown import crown
from exactbounds.algorithms.ibp import evaluate
from exactbounds.core import Box
from exactbounds.graph import Graph, Node
from exactbounds.inputsets import sample, vertices
from exactbounds.numbers import make_context
from exactbounds.operators.base import LinearRelaxed, as_shape
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU


class Max2(LinearRelaxed):
    kind = "max2"

    def __init__(self, n):
        s = as_shape(n, "max2")
        self.name, self.in_shapes, self.out_shape = "max2", (s, s), s

    def evaluate(self, ctx, a, b):
        return [x if ctx.sign(x - y) >= 0 else y for x, y in zip(a, b)]

    def ibp(self, ctx, A, B):
        """max is monotone in both inputs: ``[max(lo1, lo2), max(hi1, hi2)]``."""

        def mx(a, b):
            return ctx.from_ends(max(ctx.lower(a), ctx.lower(b)), max(ctx.upper(a), ctx.upper(b)))

        return Box(
            [mx(a, b) for a, b in zip(A.lo, B.lo)],
            [mx(a, b) for a, b in zip(A.hi, B.hi)],
            self.out_shape,
        )

    def relax_linear(self, ctx, ends, **_):
        (l1, h1), (l2, h2) = ends
        n = len(l1)
        LA, LB, UA, UB = (fmpq_mat(n, n) for _ in range(4))
        Lb, Ub = fmpq_mat(n, 1), fmpq_mat(n, 1)
        for i in range(n):
            if l1[i] >= h2[i]:
                LA[i, i] = UA[i, i] = 1
            elif l2[i] >= h1[i]:
                LB[i, i] = UB[i, i] = 1
            else:
                if l1[i] + h1[i] >= l2[i] + h2[i]:
                    LA[i, i] = 1
                else:
                    LB[i, i] = 1
                Ub[i, 0] = max(h1[i], h2[i])
        return [LA, LB], Lb, [UA, UB], Ub


num = st.integers(-8, 8).map(lambda k: fmpq(k, 4))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_crown_and_affine_through_a_linear_relaxation_are_sound(data):
    n, m = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))

    def lin(r, c):
        return Linear.from_weights(
            [[data.draw(num) for _ in range(c)] for _ in range(r)],
            [data.draw(num) for _ in range(r)],
        )

    nodes = [
        Node("a", lin(m, n), [Graph.INPUT]),
        Node("b", lin(m, n), [Graph.INPUT]),
        Node("r", ReLU(m), ["b"]),
        Node("mx", Max2(m), ["a", "r"]),
        Node("out", lin(2, m), ["mx"]),
    ]
    g = Graph(n, nodes)
    lo = [data.draw(num) for _ in range(n)]
    S = Box(lo, [v + data.draw(num) ** 2 for v in lo])
    pts = vertices(S, 16) + sample(S, random.Random(0), 8)
    exact = make_context("exact")
    vals = [evaluate(g, p, exact) for p in pts]
    for mode in ("exact", "dyadic", "interval"):
        ctx = make_context(mode, bits=16 if mode == "dyadic" else None)
        for fn in (crown, affine):
            out = fn(g, S, ctx).output
            lo_, hi_ = out.outer(ctx)
            for v in vals:
                assert all(a <= y <= b for a, y, b in zip(lo_, v, hi_)), (fn.__name__, mode)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_backward_pass_from_some_rows_equals_those_rows_of_the_full_pass(data):
    """The profile hook ``run.compute_bounds(name, rows=...)`` (a backward pass from chosen
    entries, as sparse intermediate-bound rules use) gives exactly those entries."""
    from exactbounds.algorithms.crown import _Crown
    from exactbounds.algorithms.profiles import make_profile

    n, m = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 4))
    W = [[data.draw(num) for _ in range(n)] for _ in range(m)]
    g = Graph.sequential(
        n,
        [
            Linear.from_weights(W, [data.draw(num) for _ in range(m)]),
            ReLU(m),
            Linear.from_weights([[data.draw(num) for _ in range(m)]], [0]),
        ],
    )
    lo = [data.draw(num) for _ in range(n)]
    S = Box(lo, [v + 1 for v in lo])
    rows = data.draw(st.lists(st.integers(0, m - 1), min_size=1, max_size=m, unique=True))
    for mode in ("exact", "interval"):
        ctx = make_context(mode)
        run = _Crown(g, S, ctx, make_profile())
        with run.be.precision():
            flo, fhi = run.compute_bounds("layers[0]", final=True)
            slo, shi = run.compute_bounds("layers[0]", final=True, rows=rows)
        for t, j in enumerate(rows):
            assert run.be.lower(slo[t]) == run.be.lower(flo[j])
            assert run.be.upper(shi[t]) == run.be.upper(fhi[j])
