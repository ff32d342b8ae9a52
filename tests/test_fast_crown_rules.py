"""Fast CROWN on the VNN-COMP families that timed out (issue 13): BatchNorm as a structured
enclosed diagonal (cgan), Sign's vectorised lines, IBP and sparse rule (traffic signs), and the
IBP rules where CROWN cannot be tighter (the first affine layer of a box, entrywise maps of
relaxed operators). Every result must contain the exact network's values at points of the
input set; where the algorithm is the same, fast CROWN agrees with dyadic CROWN."""

import random

import numpy as np
import pytest
from flint import fmpq, fmpq_mat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms import crown as crown_mod
from exactbounds.algorithms.crown import _Crown, crown
from exactbounds.algorithms.profiles import make_profile
from exactbounds.core import Box
from exactbounds.graph import Graph, Node
from exactbounds.inputsets import LpBall, sample, vertices
from exactbounds.linalg.fast import Ball, FastBackend, q_mat_ball
from exactbounds.linalg.fast_ibp import FBox
from exactbounds.linalg.structured import DiagPart, LinearMap, exact_cheap
from exactbounds.numbers import RationalContext, make_context
from exactbounds.operators.arithmetic import Add
from exactbounds.operators.batchnorm import BatchNorm, BatchNormParams
from exactbounds.operators.conv import Conv2d
from exactbounds.operators.elementwise import Sign
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU
from exactbounds.operators.reshape import Reshape
from tests.test_crown_soundness import check_inside

EXACT = RationalContext(128)
FAST = make_context("fast")
DYADIC = make_context("dyadic")
small = st.integers(-8, 8).map(lambda k: fmpq(k, 4))


def Q(f):
    return fmpq(*float(f).as_integer_ratio())


def points(S):
    return sample(S, random.Random(0), 4) + vertices(S, 8)


def close(a, b, rel):
    """The output boxes of two runs agree within ``rel`` of their span."""
    alo, ahi = a.output.outer(a.ctx)
    blo, bhi = b.output.outer(b.ctx)
    for p, q, r, s in zip(alo, ahi, blo, bhi):
        tol = (abs(p) + abs(q) + abs(r) + abs(s) + 1) * rel
        assert abs(p - r) <= tol and abs(q - s) <= tol, (p, q, r, s)


# -- BatchNorm as an enclosed diagonal --------------------------------------------------------
def bn(draw, shape):
    C = shape[0]
    return BatchNorm(
        BatchNormParams(
            [draw(small.filter(lambda v: v != 0)) for _ in range(C)],
            [draw(st.sampled_from([2, 3, fmpq(1, 3), 5])) for _ in range(C)],  # irrational √
            [draw(small.filter(lambda v: v != 0)) for _ in range(C)],
            [draw(small) for _ in range(C)],
            draw(st.sampled_from([0, fmpq(4, 5)])),
            shape=shape,
        )
    )


@st.composite
def conv_bn_net(draw):
    """Reshape to (1, 3, 3), Conv 1→2 (2×2), BatchNorm2d (irrational scales and offsets), ReLU,
    Linear 8→2."""
    w = [[[[draw(small) for _ in range(2)] for _ in range(2)]] for _ in range(2)]
    norm = bn(draw, (2, 2, 2))
    lin = Linear.from_weights([[draw(small) for _ in range(8)] for _ in range(2)], [0, 1])
    nodes = [
        Node("r", Reshape((9,), (1, 3, 3)), [Graph.INPUT]),
        Node("c", Conv2d(w, [draw(small) for _ in range(2)], (1, 3, 3)), ["r"]),
        Node("b", norm, ["c"]),
        Node("a", ReLU((2, 2, 2)), ["b"]),
        Node("f", Reshape((2, 2, 2), (8,)), ["a"]),
        Node("l", lin, ["f"]),
    ]
    return Graph(9, nodes)


def test_batchnorm_linear_map_encloses_its_coefficients():
    """The structured BatchNorm: the fast kernel ball holds the exact (128-bit enclosed)
    ``scale``, the bias radius is the offset's; exact backends keep the dense step."""
    p = BatchNormParams([1, -2], [2, 3], [fmpq(3, 2), -1], [0, fmpq(1, 8)], 0)
    op = BatchNorm(p)
    lin = op.linear_map()
    (part,) = lin.parts
    assert isinstance(part, DiagPart) and part.rad is not None and lin.b_rad is not None
    assert not exact_cheap(part)
    w, wr, b, br = op._diagonal(128)
    Km, Kr = part.float_kernel(q_mat_ball)
    for k in range(2):
        for end in (w[k] - wr[k], w[k] + wr[k]):
            assert Q(Km[k]) - Q(Kr[k]) <= end <= Q(Km[k]) + Q(Kr[k])
        assert lin.b_rad[k, 0] == br[k] and lin.b[k, 0] == b[k]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_crown_through_structured_batchnorm_is_sound_and_close(data):
    """Fast CROWN (and the forward rule, when drawn) through the structured BatchNorm never
    takes the dense coefficients, contains the exact outputs and agrees with dyadic CROWN."""
    g = data.draw(conv_bn_net())
    x0 = [fmpq(data.draw(st.integers(-4, 4)), 4) for _ in range(9)]
    S = LpBall(x0, fmpq(data.draw(st.integers(0, 4)), 8), "inf")

    orig = _Crown.affine_coeffs

    def dense(self, node):
        fast = self.ctx.backend_kind == "fast"  # an escalated run is dense, as before
        assert node.name != "b" or not fast, "dense coefficients of the BatchNorm"
        return orig(self, node)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_Crown, "affine_coeffs", dense)
        if data.draw(st.booleans()):
            mp.setattr(crown_mod, "FORWARD_MIN_NODE", 0)
        res = crown(g, S, FAST)
    check_inside(res, points(S), g)
    close(res, crown(g, S, DYADIC), fmpq(1, 10**5))


def test_enclosed_bias_is_charged_to_both_sides():
    """A LinearMap with a bias radius: ``lin_crown`` subtracts ``|Λ|·b_rad`` from the lower
    functional's bias and adds it to the upper one's."""
    b, e = fmpq(1, 3), fmpq(1, 2)
    lin = LinearMap([DiagPart(1)], fmpq_mat(1, 1, [b]), fmpq_mat(1, 1, [e]))
    lam = Ball(np.array([[2.0], [-3.0]]))
    newL, newU, cL, cU = FastBackend().lin_crown(lin, lam, lam, 1)
    lo = [Q(v) for v in sum(cL[1:], cL[0]).ends()[0].ravel()]
    hi = [Q(v) for v in sum(cU[1:], cU[0]).ends()[1].ravel()]
    for k, c in enumerate((2, -3)):
        assert lo[k] <= c * b - abs(c) * e and hi[k] >= c * b + abs(c) * e


# -- Sign ------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(-1e30, 1e30, allow_nan=False),
            st.sampled_from([0.0, -0.0, 5e-324, -5e-324, np.inf, -np.inf]),
        ),
        min_size=4,
        max_size=4,
    )
)
def test_sign_fast_lines_and_ibp_hold(v):
    """The vectorised lines are points with ``sign(l1) <= sign(x) <= sign(u2)`` on
    ``[l1, u2]`` (0 and the ends included), and ``ibp_fast`` encloses the sign of each end."""
    l1, l2, u1, u2 = sorted(v)
    op = Sign(1)
    ls, lb, us, ub = op.relax_vec(*(np.array([t]) for t in (l1, l2, u1, u2)))
    assert ls.mid[0] == us.mid[0] == 0 and not lb.rad.any() and not ub.rad.any()
    xs = [t for t in (l1, u2, 0.0) if l1 <= t <= u2 and np.isfinite(t)]
    for x in xs:
        s = np.sign(x)
        assert lb.mid[0] <= s <= ub.mid[0]
    f = op.ibp_fast(FAST, FBox(*(np.array([t]) for t in (l1, l2, u1, u2))))
    assert f.ll[0] <= np.sign(l1) and np.sign(l2) <= f.lh[0]
    assert f.hl[0] <= np.sign(u1) and np.sign(u2) <= f.hh[0]
    nan = op.ibp_fast(FAST, FBox(*(np.array([np.nan]) for _ in range(4))))
    assert nan.ll[0] == -1 and nan.hh[0] == 1


@st.composite
def sign_net(draw):
    """Linear → Sign → Add c → Sign → Linear → Sign → Linear (the quantised sign network's
    pattern: ``sign(sign(x) + c)``)."""
    n = draw(st.integers(1, 3))
    m = draw(st.integers(1, 3))
    c = draw(st.sampled_from([fmpq(1, 100), fmpq(-1, 100), fmpq(0), fmpq(3, 2)]))
    ops = [
        Linear.from_weights([[draw(small) for _ in range(n)] for _ in range(m)], [0] * m),
        Sign(m),
        Add(m, [c] * m),
        Sign(m),
        Linear.from_weights([[draw(small) for _ in range(m)] for _ in range(2)], [0, 0]),
        Sign(2),
        Linear.from_weights([[draw(small) for _ in range(2)] for _ in range(2)], [0, 0]),
    ]
    return Graph.sequential(n, ops), n


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_crown_on_sign_networks_is_sound_and_not_looser(data):
    """Sign networks (boxes with ends at 0 included): fast CROWN, with the IBP rules and the
    sparse rule forced on every node, contains the exact outputs and is not looser than the
    fast run without those rules (Sign's lines are constants: IBP of ``sign`` on the stored
    bounds is what CROWN gets at best)."""
    g, n = data.draw(sign_net())
    lo = [fmpq(data.draw(st.integers(-4, 4)), 4) for _ in range(n)]
    S = Box(lo, [a + fmpq(data.draw(st.integers(0, 4)), 4) for a in lo])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(crown_mod, "SPARSE_MIN", 1)
        res = crown(g, S, FAST)
    check_inside(res, points(S), g)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_Crown, "ibp_rule", lambda self, name: False)
        mp.setattr(crown_mod, "SIGN_RELAXED", {"relu": False})
        ref = crown(g, S, FAST)
    check_inside(ref, points(S), g)
    flo, fhi = res.output.outer(res.ctx)
    dlo, dhi = ref.output.outer(ref.ctx)
    for a, b, c, d in zip(flo, fhi, dlo, dhi):
        tol = (abs(c) + abs(d) + 1) * fmpq(1, 10**9)
        assert a >= c - tol and b <= d + tol


def test_sign_sparse_rule_keeps_an_end_at_zero_open(monkeypatch):
    """A pre-activation of Sign whose IBP lower (upper) end is exactly 0 is not stable
    (``sign(0) = 0``): its row gets a backward pass; with ReLU readers it would not."""
    monkeypatch.setattr(crown_mod, "SPARSE_MIN", 1)
    lo, hi = np.array([0.0, 1.0, -2.0, -1.0]), np.array([1.0, 2.0, 0.0, 1.0])
    monkeypatch.setattr(_Crown, "ibp_from_stored", lambda self, name: FBox(lo, lo, hi, hi))
    S = Box([fmpq(0)] * 4, [fmpq(1)] * 4)
    for act, expect in ((Sign, [0, 2, 3]), (ReLU, [3])):
        g = Graph.sequential(4, [Linear.from_weights([[1, 0, 0, 0]] * 4, [0] * 4), act(4)])
        run = _Crown(g, S, FAST, make_profile())
        assert run.unstable_rows(g.nodes[0].name)[0] == expect


# -- the IBP rules ---------------------------------------------------------------------------
def rule(g, S, name, bounds=()):
    run = _Crown(g, S, FAST, make_profile())
    for b in bounds:
        run.node_bounds(b)
    return run.ibp_rule(name)


def test_ibp_rule_fires_only_where_crown_cannot_be_tighter():
    box = Box([fmpq(0)] * 4, [fmpq(1)] * 4)
    w = [[1, -1, 0, 2], [0, 1, 1, -1], [1, 1, 1, 1], [2, 0, -1, 1]]
    g = Graph(
        4,
        [
            Node("r", Reshape((4,), (1, 2, 2)), [Graph.INPUT]),
            Node("c", Conv2d([[[[1, -1], [2, 1]]]], [0], (1, 2, 2)), ["r"]),
            Node("f", Reshape((1, 1, 1), (1,)), ["c"]),
            Node("l", Linear.from_weights(w, [0] * 4), [Graph.INPUT]),
            Node("l2", Linear.from_weights(w, [0] * 4), ["l"]),
            Node("a", ReLU(4), ["l"]),
            Node("s", Add(4, [fmpq(1, 3)] * 4), ["a"]),
            Node("l3", Linear.from_weights(w, [0] * 4), ["a"]),
            Node("o", Add(4), ["s", "l3"]),
        ],
    )
    assert rule(g, box, "f")  # one conv of the box, between entrywise maps
    assert rule(g, box, "l")
    assert not rule(g, box, "l2")  # two affine maps: IBP is looser than CROWN
    assert not rule(g, LpBall([fmpq(0)] * 4, fmpq(1), "2"), "l")  # not a box
    assert rule(g, box, "s", ["l"])  # an entrywise map of ReLU with stored input bounds
    assert not rule(g, box, "l3", ["l"])  # ReLU's lines are not constant
    assert not rule(g, box, "o", ["l"])  # two inputs
    assert not _Crown(g, box, DYADIC, make_profile()).ibp_rule("l")  # fast mode only


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_first_layer_ibp_equals_crown(data):
    """The first affine layer's IBP is its exact range over the box: the fast intermediate
    bounds (IBP) agree with dyadic CROWN's (backward passes) within float rounding."""
    n, m = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    W = [[data.draw(small) for _ in range(n)] for _ in range(m)]
    g = Graph.sequential(n, [Linear.from_weights(W, [data.draw(small) for _ in range(m)]), ReLU(m)])
    lo = [data.draw(small) for _ in range(n)]
    S = Box(lo, [a + fmpq(data.draw(st.integers(0, 4)), 4) for a in lo])
    name = g.nodes[0].name
    fa = crown(g, S, FAST, intermediate=True).nodes[name]
    dy = crown(g, S, DYADIC, intermediate=True).nodes[name]
    for a, b, c, d in zip(*fa.outer(FAST), *dy.outer(DYADIC)):
        tol = (abs(c) + abs(d) + 1) * fmpq(1, 10**12)
        assert abs(a - c) <= tol and abs(b - d) <= tol
    check_inside(crown(g, S, FAST), points(S), g)


def test_batchnorm_enclosed_diag_kernel_in_dense_form_matches():
    """``DiagPart.back`` with the midpoints equals the dense diagonal product (the exact path
    raises for an enclosed diagonal)."""
    part = DiagPart(3, [fmpq(1, 3), fmpq(2), fmpq(-1, 7)], rad=[fmpq(1, 10**30)] * 3)
    with pytest.raises(ValueError):
        part.exact_kernel()
    X = np.arange(6.0).reshape(2, 3)
    K = np.array([1 / 3, 2.0, -1 / 7])
    assert np.array_equal(part.back(X, K), X * K)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_conv_back_equals_the_dense_product(data):
    """``ConvPart.back`` (one product per kernel offset) is ``X·W`` with the dense matrix of the
    convolution, exactly on integers."""
    C = data.draw(st.sampled_from([1, 2, 4]))
    G = data.draw(st.sampled_from([1, 2])) if C % 2 == 0 else 1
    cout = G * data.draw(st.integers(1, 2))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    w = [
        [
            [[data.draw(st.integers(-3, 3)) for _ in range(kw)] for _ in range(kh)]
            for _ in range(C // G)
        ]
        for _ in range(cout)
    ]
    s, p = data.draw(st.integers(1, 2)), data.draw(st.integers(0, 1))
    op = Conv2d(w, None, (C, 4, 5), s, p, 1, G)
    part = op.linear_map().parts[0]
    (W,), _ = op.linear_params()
    Wq = W.to_q() if hasattr(W, "to_q") else W
    dense = np.array([[int(Wq[i, j]) for j in range(Wq.ncols())] for i in range(Wq.nrows())])
    X = np.array([[data.draw(st.integers(-4, 4)) for _ in range(op.out_dim)] for _ in range(2)])
    K = [
        np.array(
            [[int(v) for v in row] for row in (k.to_q() if hasattr(k, "to_q") else k).tolist()]
        )
        for k in op._kernels(False)
    ]
    assert np.array_equal(part.back(X, K), X @ dense)
