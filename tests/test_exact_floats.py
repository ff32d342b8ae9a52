"""Float arrays convert to exact integer-backed matrices in one vectorised step: every entry of
``float_mantissas``, ``DyMat.from_floats`` (built lazily, and its float-tier view) and
``exact_floats`` equals ``Fraction(x)``, for float16/32/64 arrays with subnormals, ±0 and the
extreme exponents; the ONNX loader keeps float weights unconverted until read."""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from exactbounds.linalg.dymat import DyMat, exact_floats, float_mantissas
from exactbounds.linalg.fast import q_mat_ball
from optional import requires

SPECIAL = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.5, 0.1]


def fr(q):
    return Fraction(int(q.p), int(q.q))


def _cast(v, dtype):
    with np.errstate(over="ignore"):  # 1e308 is inf in float16/32 (then filtered out)
        return np.array([v]).astype(dtype)[0]


def floats_of(dtype):
    """Any finite value of ``dtype`` (drawn from its bit patterns, so subnormals and extreme
    exponents are as likely as ordinary numbers) or one of the special values."""
    info = np.iinfo({2: np.uint16, 4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize])
    bits = st.integers(0, int(info.max)).map(
        lambda b: np.array([b], dtype=info.dtype).view(dtype)[0]
    )
    special = st.sampled_from(SPECIAL).map(lambda v: _cast(v, dtype))
    return st.one_of(bits, special).filter(np.isfinite)


@st.composite
def arrays(draw):
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    r, c = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    vals = draw(st.lists(floats_of(dtype), min_size=r * c, max_size=r * c))
    return np.array(vals, dtype=dtype).reshape(r, c)


@settings(max_examples=150, deadline=None)
@given(arrays())
def test_vectorised_conversion_equals_fraction_entry_by_entry(a):
    ref = [Fraction(float(v)) for v in a.ravel().tolist()]  # float16/32 -> float64 is exact
    N, e = float_mantissas(a)
    assert [Fraction(int(n)) * Fraction(2) ** e for n in N.ravel().tolist()] == ref
    assert [fr(q) for q in exact_floats(a).ravel()] == ref
    D = DyMat.from_floats(a)
    assert D._M is None and (D.nrows(), D.ncols()) == a.shape  # nothing built yet
    mid, rad = q_mat_ball(D)  # the float tier reads the exact floats, radius 0
    assert [Fraction(float(v)) for v in mid.ravel()] == ref and not rad.any()
    assert [fr(q) for q in D.to_q().entries()] == ref
    assert [fr(q) for q in D.abs().to_q().entries()] == [abs(v) for v in ref]
    # a DyMat built from the integers has the same value; arithmetic agrees with fmpq_mat
    assert D == DyMat(D.M, D.e) and (D + D).to_q() == D.to_q() * 2
    assert [fr(q) for q in D.entry_list()] == ref


def test_mixed_magnitudes_take_the_big_integer_path():
    a = np.array([[1e300, -5e-324], [0.0, -0.0]])
    N, e = float_mantissas(a)
    assert N.dtype == object and e == -1074
    assert [fr(q) for q in DyMat.from_floats(a).to_q().entries()] == [
        Fraction(v) for v in a.ravel().tolist()
    ]
    assert float_mantissas(np.zeros((2, 2), dtype=np.float32))[1] == 0


def test_onnx_float_weights_stay_floats_until_read():
    onnx = requires("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from exactbounds.io.onnx_loader import build_graph, parse_onnx

    W = np.array([[0.1, 5e-45, -0.0], [3.0e38, 1.0, 2.0]], dtype=np.float32)
    m = helper.make_model(
        helper.make_graph(
            [helper.make_node("MatMul", ["x", "W"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
            [numpy_helper.from_array(W, "W")],
        ),
        opset_imports=[helper.make_opsetid("", 13)],
    )
    onnx.checker.check_model(m)
    og = parse_onnx(m)
    assert og.consts.floats("W") is not None  # not converted at parse time
    g, _ = build_graph(og)
    (lin,) = [n.op for n in g.nodes]
    assert lin.params._dy._M is None  # the Linear holds the floats, integers built on use
    want = [[Fraction(float(v)) for v in row] for row in W.T.tolist()]
    assert [[fr(q) for q in row] for row in lin.params.weight] == want
    assert [fr(q) for q in og.consts["W"].ravel()] == [Fraction(float(v)) for v in W.ravel()]


def test_every_integer_matrix_path_is_exact():
    """The integer matrix of ``DyMat.from_floats`` on its three paths (sparse: nonzeros set one
    by one; dense within 62 bits; dense with the commonest shift group as one matrix and the
    outliers set one by one) equals ``Fraction`` entry by entry."""
    rng = np.random.default_rng(1)
    dense = rng.normal(size=(30, 20))
    wide = dense * np.ldexp(1.0, rng.integers(-60, 60, size=dense.shape))
    wide[3, 4], wide[5, 6] = 5e-324, -1e300
    sparse = np.zeros((40, 30))
    sparse[rng.integers(0, 40, 50), rng.integers(0, 30, 50)] = rng.normal(size=50) * 1e-200
    sparse[0, 0] = 1e250
    with np.errstate(over="ignore"):
        sparse32 = np.where(sparse == 1e250, 1e30, sparse * 1e160).astype(np.float32)
    for a in (dense, dense.astype(np.float32), wide, sparse, sparse32):
        D = DyMat.from_floats(a)
        assert [fr(q) for q in D.to_q().entries()] == [Fraction(float(v)) for v in a.ravel()]
        assert [fr(q) for q in D.abs().to_q().entries()] == [
            abs(Fraction(float(v))) for v in a.ravel()
        ]
