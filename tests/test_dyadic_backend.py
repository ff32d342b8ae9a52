"""The integer-backed exact backend (``ZBackend``, ``DyMat``) against the plain ``fmpq_mat``
reference (``QBackend``): on random networks of every operator, every input-set kind, the exact
and dyadic modes and every lower-slope rule, CROWN and forward affine give *identical* results
(output bounds, final linear forms, per-node bounds, status); ``DyMat`` arithmetic equals
``fmpq_mat`` arithmetic entry for entry."""

import numpy as np
import pytest
from flint import fmpq, fmpq_mat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exactbounds.algorithms.crown as crown_mod
from exactbounds.algorithms.affine import affine
from exactbounds.algorithms.crown import crown
from exactbounds.graph import Graph
from exactbounds.inputsets import LpBall
from exactbounds.linalg import DyMat, QBackend, ZBackend, backend_for, dyadic_parts
from exactbounds.numbers import make_context
from exactbounds.operators.linear import Linear, LinearParams
from exactbounds.operators.relu import ReLU
from test_crown_soundness import cnn, input_set, mlp

SET = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODES = [("exact", 128), ("dyadic", 16), ("dyadic", 64)]


def reference(fn):
    """``fn()`` computed with the entry-by-entry ``fmpq_mat`` backend."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(crown_mod, "backend_for", lambda ctx: QBackend())
        return fn()


def same(a, b):
    assert a.output.lo == b.output.lo and a.output.hi == b.output.hi
    assert (a.lA, a.lb, a.uA, a.ub) == (b.lA, b.lb, b.uA, b.ub)
    assert a.status == b.status and a.mode == b.mode
    assert a.nodes.keys() == b.nodes.keys()
    for k in a.nodes:
        assert a.nodes[k].lo == b.nodes[k].lo and a.nodes[k].hi == b.nodes[k].hi, k


def compare(g, S, slopes=("adaptive", "zero", "one")):
    for mode, bits in MODES:
        ctx = make_context(mode, bits=bits)
        for slope in slopes:
            for algo in (crown, affine):
                new = algo(g, S, ctx, lower_slope=slope, intermediate=True)
                old = reference(
                    lambda algo=algo, ctx=ctx, slope=slope: algo(
                        g, S, ctx, lower_slope=slope, intermediate=True
                    )
                )
                same(new, old)


def test_rational_contexts_use_the_integer_backend():
    assert isinstance(backend_for(make_context("exact")), ZBackend)
    assert isinstance(backend_for(make_context("dyadic", bits=64)), ZBackend)


@SET
@given(st.data())
def test_fast_backend_equals_reference_on_random_dags(data):
    g, n = data.draw(mlp())
    compare(g, data.draw(input_set(n)))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_backend_equals_reference_on_random_cnns(data):
    g, n = data.draw(cnn())
    compare(g, data.draw(input_set(n)), slopes=("adaptive",))


def float_net(seed, sizes):
    """A ReLU network with float32 weights of spread magnitudes (many unstable neurons)."""
    rng = np.random.default_rng(seed)
    ops = []
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        W = (rng.standard_normal((b, a)) * 2.0 ** rng.integers(-12, 3, (b, a))).astype(np.float32)
        W[rng.random((b, a)) < 0.1] = 0
        bias = (0.1 * rng.standard_normal(b)).astype(np.float32)
        ops.append(Linear(LinearParams(W.tolist(), bias.tolist(), name=f"fc{k}")))
        if k < len(sizes) - 2:
            ops.append(ReLU(b, name=f"relu{k}"))
    x0 = rng.random(sizes[0]).astype(np.float32)
    return Graph.sequential(sizes[0], ops), x0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("norm", ["inf", "1", "2"])
def test_fast_backend_equals_reference_on_float32_relu_nets(seed, norm):
    g, x0 = float_net(seed, [4, 12, 12, 12, 3])
    radius = [0.25, 0.1, fmpq(1, 3), 0.5][seed]  # 1/3: a non-dyadic radius (fmpq fallback)
    compare(g, LpBall(x0.tolist(), radius, norm))


dy = st.one_of(
    st.integers(-40, 40).map(fmpq),
    st.tuples(st.integers(-(2**70), 2**70), st.integers(-80, 20)).map(
        lambda t: fmpq(t[0]) * fmpq(2) ** t[1]
    ),
)
any_q = st.one_of(dy, st.tuples(st.integers(-9, 9), st.integers(1, 9)).map(lambda t: fmpq(*t)))


@st.composite
def qmat(draw, r, c, elems=dy):
    return fmpq_mat(r, c, [draw(elems) for _ in range(r * c)])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_dymat_arithmetic_equals_fmpq_mat(data):
    r, k, c = (data.draw(st.integers(1, 4)) for _ in range(3))
    A, B, B2 = data.draw(qmat(r, k)), data.draw(qmat(k, c)), data.draw(qmat(r, k))
    dA, dB, dB2 = DyMat.from_q(A), DyMat.from_q(B), DyMat.from_q(B2)
    assert dA.to_q() == A and dA == A and list(dA.entries()) == A.entries()
    assert (dA * dB).to_q() == A * B
    assert (dA + dB2).to_q() == A + B2 and (dA - dB2).to_q() == A - B2
    assert (-dA).to_q() == -A
    s = data.draw(any_q)
    assert (dA * s) == A * s and (s * dA) == A * s
    assert dA * B == A * B and A * dB == A * B and dA + B2 == A + B2 and B2 - dA == B2 - A
    assert DyMat.from_entries(r, k, A.entries()) == A
    assert dA[r - 1, k - 1] == A[r - 1, k - 1]
    es = dA.entries()
    assert es[1:3] == A.entries()[1:3] and len(es) == r * k
    be = ZBackend()
    assert be.abs(dA).to_q() == QBackend().abs(A)
    assert be.abs_rowsum(dA).to_q() == QBackend().abs_rowsum(A)
    v = [data.draw(any_q) for _ in range(k)]
    assert be.abs_dot(dA, v) == QBackend().abs_dot(A, v)


def test_non_dyadic_entries_stay_rational():
    Q = fmpq_mat(1, 2, [fmpq(1, 3), 1])
    assert DyMat.from_q(Q) is None and DyMat.from_entries(1, 2, Q.entries()) is None
    assert isinstance(ZBackend().mat(Q), fmpq_mat) and ZBackend().mat(Q) == Q
    assert dyadic_parts(fmpq(3, 8)) == (3, -3) and dyadic_parts(fmpq(1, 6)) is None
    assert dyadic_parts(5) == (5, 0) and dyadic_parts(0.5) is None and dyadic_parts(True) is None
    assert ZBackend().dyadic_diag([fmpq(1, 3)]) is None
    assert ZBackend().diag([fmpq(1, 3)]) == fmpq_mat(1, 1, [fmpq(1, 3)])


floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_float_weights_convert_exactly_in_one_step(data):
    r, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    W = np.array([[data.draw(floats) for _ in range(c)] for _ in range(r)])
    if data.draw(st.booleans()):
        with np.errstate(over="ignore"):
            W = W.astype(np.float32)
    if not np.isfinite(W).all():
        return
    ref = [[fmpq(*float(v).as_integer_ratio()) for v in row] for row in W.tolist()]
    for src in (W, W.tolist()):
        p = LinearParams(src, [0.5] * r)
        assert p._dy  # the vectorised path was taken
        assert p.weight == ref and (p.in_dim, p.out_dim) == (c, r)
        assert p.mats()[0] == fmpq_mat(ref)
        assert p.mats()[1] == fmpq_mat([[abs(v) for v in row] for row in ref])


def test_bad_float_weights_still_name_the_entry():
    from exactbounds.errors import InvalidValueError, ShapeError

    W = np.ones((2, 3))
    W[1, 2] = np.nan
    with pytest.raises(InvalidValueError, match=r"weight\[1\]\[2\]"):
        LinearParams(W)
    with pytest.raises(InvalidValueError, match=r"weight\[0\]\[1\]"):
        LinearParams([[1.0, float("inf")]])
    with pytest.raises(ShapeError, match=r"weight\[1\]"):
        LinearParams([[1.0, 2.0], [1.0]])
    with pytest.raises(ShapeError, match="bias"):
        LinearParams(np.ones((2, 2)), [1.0])


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_linear_ibp_fast_path_equals_generic_ibp(data):
    from exactbounds.core import Box
    from exactbounds.operators.base import AffineOp

    r, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    W = [[data.draw(floats.filter(lambda v: abs(v) < 1e30)) for _ in range(c)] for _ in range(r)]
    b = [data.draw(any_q) for _ in range(r)]
    lo = [data.draw(any_q) for _ in range(c)]
    hi = [v + abs(data.draw(any_q)) for v in lo]
    op = Linear(LinearParams(W, b))
    ctx = make_context("exact")
    box = Box(lo, hi)
    fast, ref = op.ibp(ctx, box), AffineOp.ibp(op, ctx, box)
    assert fast.lo == ref.lo and fast.hi == ref.hi


def test_fast_backend_equals_reference_when_dead_columns_meet_other_paths():
    """Stably inactive ReLU columns are left out of ``Λ`` (``_Cols``); a ``Λ`` like that must
    expand correctly where it meets a ReLU directly, a residual sum, a BatchNorm error term and
    the network input."""
    from exactbounds.graph import Node
    from exactbounds.operators.arithmetic import Add
    from exactbounds.operators.batchnorm import BatchNorm, BatchNormParams

    rng = np.random.default_rng(7)
    n, h = 3, 6
    W0 = rng.standard_normal((h, n)).astype(np.float32)
    b0 = np.array([-9, 9, 0.1, -0.2, -9, 0.3], dtype=np.float32)  # dead, active, unstable
    W1 = rng.standard_normal((h, h)).astype(np.float32)
    W2 = rng.standard_normal((2, h)).astype(np.float32)
    nodes = [
        Node("r_in", ReLU(n), [Graph.INPUT]),  # ReLU on the input
        Node("fc0", Linear(LinearParams(W0, b0.tolist())), ["r_in"]),
        Node("r0", ReLU(h), ["fc0"]),
        Node("rr", ReLU(h), ["r0"]),  # ReLU after ReLU
        Node("fc1", Linear(LinearParams(W1, [-0.5] * h)), ["rr"]),
        Node("res", Add(h), ["fc1", "r0"]),  # residual sum
        Node(
            "bn", BatchNorm(BatchNormParams([0.1] * h, [1] * h, [1.5] * h, [0.25] * h, 1)), ["res"]
        ),  # sqrt(2): error term
        Node("r1", ReLU(h), ["bn"]),
        Node("fc2", Linear(LinearParams(W2, [0.0, 1.0])), ["r1"]),
    ]
    g = Graph(n, nodes)
    for center in ([0.2, -0.3, 0.5], [-1.0, -1.0, -1.0]):
        compare(g, LpBall(center, 0.5, "inf"), slopes=("adaptive", "zero"))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_relax_backward_integer_path_equals_entrywise_rule(data):
    """Random lines, including flat ones with different intercepts (slopes 0 on both sides,
    a column left out of ``Λ'`` but not of the bias) and non-dyadic ones (fallback)."""
    m, n = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    elems = st.one_of(st.just(fmpq(0)), dy, any_q)
    lam = data.draw(qmat(m, n))
    rel = tuple([data.draw(elems) for _ in range(n)] for _ in range(4))
    for upper in (False, True):
        ref_A, ref_b = QBackend().relax_backward(lam, n, rel, upper)
        for compact in (False, True):
            Z = ZBackend()
            A, b = Z.relax_backward(DyMat.from_q(lam), n, rel, upper, compact)
            assert Z.full(A) == ref_A and b == ref_b


def test_every_neuron_dead_leaves_an_empty_column_set():
    """All ReLU columns left out (k = 0): products with empty integer matrices, same results,
    and the value is the exact one (the network is constant on the set)."""
    g = Graph.sequential(
        2,
        [
            Linear.from_weights([[1.0, 0.5], [0.25, 1.0]], [-10.0, -10.0]),
            ReLU(2),
            Linear.from_weights([[1.0, 2.0]], [0.5]),
            ReLU(1),
            Linear.from_weights([[3.0]], [1.0]),
        ],
    )
    S = LpBall([0.0, 0.0], 0.5, "inf")
    compare(g, S)
    r = crown(g, S, make_context("dyadic", bits=64))
    assert r.output.lo == r.output.hi == [fmpq(5, 2)] and r.lA == [[0, 0]]
