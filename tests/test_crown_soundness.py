"""Soundness of IBP, CROWN and forward affine over random small networks of every operator and
every input-set kind, in every mode: the exact value of the network at random exact points and
at the vertices of the input set lies inside the bounds, and the final linear bounds hold at
those points. Interval results enclose the exact algorithm's result; dyadic results bracket it
where the theory says so (one hidden layer, fixed lower slope)."""

import random

import pytest
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.affine import affine
from exactbounds.algorithms.crown import crown
from exactbounds.algorithms.ibp import evaluate, ibp, ibp_result
from exactbounds.core import Box
from exactbounds.errors import InvalidValueError, ShapeError, UnsupportedOperatorError
from exactbounds.graph import Graph, Node
from exactbounds.inputsets import LpBall, sample, vertices
from exactbounds.numbers import IntervalContext, RationalContext, make_context
from exactbounds.operators.arithmetic import Add, Scale, Sub
from exactbounds.operators.batchnorm import BatchNorm, BatchNormParams
from exactbounds.operators.conv import Conv2d
from exactbounds.operators.linear import Linear
from exactbounds.operators.pool import AveragePool
from exactbounds.operators.relu import ReLU
from exactbounds.operators.reshape import Flatten, Identity, Reshape

try:
    from exactbounds.operators.activations import Sigmoid, Tanh

    SMOOTH = [Sigmoid, Tanh]
except ImportError:  # pragma: no cover - the activations module comes from another issue
    SMOOTH = []

SET = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXACT = RationalContext(128)
num = st.one_of(
    st.integers(-6, 6).map(lambda k: fmpq(k, 4)),
    st.sampled_from([fmpq(1, 3), fmpq(-2, 7), fmpq(5, 6)]),
)


def mat(draw, r, c):
    return [[draw(num) for _ in range(c)] for _ in range(r)]


@st.composite
def mlp(draw):
    """A DAG over a flat input: Linear, ReLU, BatchNorm, residual Add/Sub, Scale, Sub const,
    Identity, Sigmoid/Tanh."""
    n = draw(st.integers(1, 3))
    nodes, prev, dim, k = [], Graph.INPUT, n, 0
    same_dim = {n: [Graph.INPUT]}
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(
                ["linear", "linear", "relu", "bn", "res", "scale", "subc", "id"]
                + (["smooth"] if SMOOTH else [])
            )
        )
        name = f"n{k}"
        k += 1
        if kind == "linear":
            m = draw(st.integers(1, 3))
            op = Linear.from_weights(mat(draw, m, dim), [draw(num) for _ in range(m)])
            ins = [prev]
        elif kind == "relu":
            op, ins = ReLU(dim), [prev]
        elif kind == "smooth":
            op, ins = draw(st.sampled_from(SMOOTH))(dim), [prev]
        elif kind == "bn":
            op = BatchNorm(
                BatchNormParams(
                    [draw(num) for _ in range(dim)],
                    [draw(st.sampled_from([0, 1, fmpq(1, 4), 2])) for _ in range(dim)],
                    [draw(num) for _ in range(dim)],
                    [draw(num) for _ in range(dim)],
                    draw(st.sampled_from([fmpq(1, 4), 1e-5])),
                )
            )
            ins = [prev]
        elif kind == "res":
            other = draw(st.sampled_from(same_dim[dim]))
            cls = draw(st.sampled_from([Add, Sub]))
            op, ins = cls(dim), [prev, other]
        elif kind == "scale":
            op = Scale(dim, [draw(num) for _ in range(dim)], [draw(num) for _ in range(dim)])
            ins = [prev]
        elif kind == "subc":
            op, ins = Sub(dim, constant=[draw(num) for _ in range(dim)]), [prev]
        else:
            op, ins = Identity(dim), [prev]
        nodes.append(Node(name, op, ins))
        prev, dim = name, op.out_dim
        same_dim.setdefault(dim, []).append(name)
    return Graph(n, nodes), n


@st.composite
def cnn(draw):
    """Conv2d (stride, padding, dilation, groups) -> ReLU -> AveragePool/BN2d -> Flatten ->
    Linear, or Reshape of a flat input."""
    C = draw(st.sampled_from([1, 2]))
    H, W = draw(st.integers(2, 4)), draw(st.integers(2, 4))
    groups = draw(st.sampled_from([1, C]))
    cout = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    dil = draw(st.integers(1, 2))
    if (H + 2 * pad - dil * (kh - 1) - 1) < 0 or (W + 2 * pad - dil * (kw - 1) - 1) < 0:
        dil = 1
    weight = [
        [[[draw(num) for _ in range(kw)] for _ in range(kh)] for _ in range(C // groups)]
        for _ in range(cout)
    ]
    ops = [Reshape((C * H * W,), (C, H, W))]
    conv = Conv2d(weight, [draw(num) for _ in range(cout)], (C, H, W), stride, pad, dil, groups)
    ops += [conv, ReLU(conv.out_shape)]
    _, ho, wo = conv.out_shape
    if draw(st.booleans()) and ho >= 2 and wo >= 2:
        ops.append(AveragePool(conv.out_shape, 2, 1, draw(st.integers(0, 1)), draw(st.booleans())))
    else:
        ops.append(
            BatchNorm(
                BatchNormParams(
                    [draw(num) for _ in range(cout)],
                    [1] * cout,
                    [draw(num) for _ in range(cout)],
                    [draw(num) for _ in range(cout)],
                    fmpq(1, 4),
                    shape=conv.out_shape,
                )
            )
        )
    ops.append(Flatten(ops[-1].out_shape))
    d = ops[-1].out_dim
    ops.append(Linear.from_weights(mat(draw, 2, d), [0, 1]))
    return Graph.sequential(C * H * W, ops), C * H * W


@st.composite
def input_set(draw, n):
    kind = draw(st.sampled_from(["box", "inf", "1", "2"]))
    center = [draw(num) for _ in range(n)]
    if kind == "box":
        rad = [fmpq(draw(st.integers(0, 4)), 4) for _ in range(n)]
        return Box([c - r for c, r in zip(center, rad)], [c + r for c, r in zip(center, rad)])
    return LpBall(center, fmpq(draw(st.integers(0, 4)), 4), kind)


def exact_ends(v):
    return EXACT.lower(v), EXACT.upper(v)


def check_inside(res, pts, g):
    ctx = res.ctx
    lo, hi = res.output.outer(ctx)
    for x in pts:
        y = evaluate(g, x, EXACT)
        for i, v in enumerate(y):
            # f(x) lies in its exact-ends enclosure [a, b] (128-bit square roots, exp): a bound
            # is violated exactly when the whole enclosure lies outside it.
            a, b = exact_ends(v)
            assert lo[i] <= b and a <= hi[i], (res.method, res.mode, i, x)
        if res.lA is None:
            continue
        for i, v in enumerate(y):
            a, b = exact_ends(v)
            low = sum(
                (ctx.coerce(w) * ctx.coerce(t) for w, t in zip(res.lA[i], x)), ctx.coerce(res.lb[i])
            )
            up = sum(
                (ctx.coerce(w) * ctx.coerce(t) for w, t in zip(res.uA[i], x)), ctx.coerce(res.ub[i])
            )
            assert ctx.lower(low) <= b and a <= ctx.upper(up), (res.method, res.mode, i)


MODES = [("exact", 128), ("dyadic", 16), ("dyadic", 64), ("interval", 53)]


def run_all(g, S):
    pts = sample(S, random.Random(0), 4) + vertices(S, 16)
    for mode, bits in MODES:
        ctx = make_context(mode, bits=bits, prec=bits)
        results = [ibp_result(g, S, ctx)]
        for slope in ("adaptive", "zero", "one"):
            results.append(crown(g, S, ctx, lower_slope=slope, intermediate=True))
        results.append(affine(g, S, ctx))
        results.append(crown(g, S, ctx, intersect_ibp=True))
        for res in results:
            assert res.mode == mode
            assert res.status in ("exact", "enclosure", "bound")
            check_inside(res, pts, g)


@SET
@given(st.data())
def test_mlp_dags_sound_in_every_mode(data):
    g, n = data.draw(mlp())
    run_all(g, data.draw(input_set(n)))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_cnns_sound_in_every_mode(data):
    g, n = data.draw(cnn())
    run_all(g, data.draw(input_set(n)))


@st.composite
def relu_net(draw, depth):
    n = draw(st.integers(1, 3))
    ops, d = [], n
    for _ in range(depth):
        m = draw(st.integers(1, 3))
        ops.append(Linear.from_weights(mat(draw, m, d), [draw(num) for _ in range(m)]))
        ops.append(ReLU(m))
        d = m
    ops.append(Linear.from_weights(mat(draw, 2, d), [draw(num) for _ in range(2)]))
    return Graph.sequential(n, ops), n


@SET
@given(st.data())
def test_interval_encloses_exact_crown_and_affine(data):
    g, n = data.draw(relu_net(data.draw(st.integers(1, 3))))
    S = data.draw(input_set(n))
    slope = data.draw(st.sampled_from(["adaptive", "zero", "one"]))
    for algo in (crown, affine):
        ex = algo(g, S, EXACT, lower_slope=slope)
        iv = algo(g, S, IntervalContext(60), lower_slope=slope)
        l2 = isinstance(S, LpBall) and S.norm == "2"
        assert ex.status == ("bound" if l2 else "exact")
        for e, v in zip(ex.output.lo + ex.output.hi, iv.output.lo + iv.output.hi):
            a, b = exact_ends(e)
            assert iv.ctx.lower(v) <= a and b <= iv.ctx.upper(v)
    exi = ibp(g, S, EXACT)
    ictx = IntervalContext(60)
    ivi = ibp(g, S, ictx)
    for e, v in zip(exi.lo + exi.hi, ivi.lo + ivi.hi):
        assert ictx.lower(v) <= e <= ictx.upper(v)


@SET
@given(st.data())
def test_dyadic_brackets_exact_on_one_hidden_layer(data):
    """One hidden layer, fixed lower slope: the rounded-outward intermediate bounds give lines
    that are pointwise looser on the true range, so the dyadic bounds contain the exact ones."""
    g, n = data.draw(relu_net(1))
    S = data.draw(input_set(n))
    slope = data.draw(st.sampled_from(["zero", "one"]))
    ex = crown(g, S, EXACT, lower_slope=slope)
    for bits in (4, 16, 64):
        dy = crown(g, S, make_context("dyadic", bits=bits), lower_slope=slope)
        assert dy.status == "bound"
        assert all(d <= e for d, e in zip(dy.output.lo, ex.output.lo))
        assert all(d >= e for d, e in zip(dy.output.hi, ex.output.hi))


def test_exact_crown_by_hand():
    """x ∈ [-1, 1]²; h = relu([[1, 2], [-1, 1]] x); y = h0 − h1. Neuron 0: l=-3, u=3 (α=0,
    chord 1/2·z + 3/2); neuron 1: l=-2, u=2 (α=0, chord 1/2·z + 1)."""
    g = Graph.sequential(
        2, [Linear.from_weights([[1, 2], [-1, 1]]), ReLU(2), Linear.from_weights([[1, -1]])]
    )
    r = crown(g, Box.from_values([-1, -1], [1, 1]), EXACT, intermediate=True)
    assert r.status == "exact" and r.mode == "exact"
    assert r.lA == [[fmpq(1, 2), fmpq(-1, 2)]] and r.lb == [-1]
    assert r.uA == [[fmpq(1, 2), 1]] and r.ub == [fmpq(3, 2)]
    assert r.output.lo == [-2] and r.output.hi == [3]
    assert r.nodes["layers[0]"].lo == [-3, -2]
    one = crown(g, Box.from_values([-1, -1], [1, 1]), EXACT, lower_slope="one")
    # h0 >= z0, h1 <= z1/2 + 1, so y >= 3/2·x1 + 3/2·x2 - 1; y <= 3/2·x1 + 3/2
    assert one.output.lo == [-4] and one.output.hi == [3]
    aff = affine(g, Box.from_values([-1, -1], [1, 1]), EXACT)
    assert aff.output.lo == [-2] and aff.output.hi == [3]


def test_ambiguous_interval_branch_takes_hull_not_a_guess():
    """u = -l exactly at the first layer: the adaptive slope is 0 in exact arithmetic. The
    interval mode either decides it (exact zero ball) or encloses both choices."""
    g = Graph.sequential(
        1, [Linear.from_weights([[fmpq(1, 3)]]), ReLU(1), Linear.from_weights([[1]])]
    )
    S = Box.from_values([-1], [1])
    ex = crown(g, S, EXACT)
    iv = crown(g, S, IntervalContext(30))
    assert iv.ctx.lower(iv.output.lo[0]) <= ex.output.lo[0] <= iv.ctx.upper(iv.output.lo[0])


def test_bad_arguments_raise_our_errors():
    g = Graph.sequential(2, [Linear.from_weights([[1, 2]])])
    with pytest.raises(InvalidValueError, match="lower_slope"):
        crown(g, Box.from_values([0, 0], [1, 1]), EXACT, lower_slope="half")
    with pytest.raises(ShapeError):
        crown(g, Box.from_values([0], [1]), EXACT)
    with pytest.raises(InvalidValueError, match="mode"):
        make_context("float")

    from exactbounds.operators.base import Op

    class Odd(Op):  # an operator with no CROWN step
        kind = "odd"
        in_shapes, out_shape = ((1,),), (1,)

        def evaluate(self, ctx, x):
            return x

        def ibp(self, ctx, b):
            return b

    g2 = Graph(1, [Node("odd", Odd(), [Graph.INPUT])])
    with pytest.raises(UnsupportedOperatorError, match="odd"):
        crown(g2, Box.from_values([0], [1]), EXACT)
