"""Vectorised IBP of the mode ``fast`` (``op.ibp_fast`` on float boxes, ``linalg/fast_ibp.py``)
is sound: for every operator of random networks, and every exact box whose ends lie in the
float end-intervals of the input ``FBox``, the exact IBP ends lie in the output ``FBox``; the
vectorised Sigmoid/Tanh ends enclose the arb values at adversarial points (subnormals, overflow
of exp, saturation); convolutions are never made dense; overflow escalates."""

import math

import numpy as np
import pytest
from flint import arb, fmpq
from flint import ctx as flint_ctx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.ibp import ibp, ibp_result
from exactbounds.core import Box
from exactbounds.errors import AmbiguousBranch
from exactbounds.graph import Graph
from exactbounds.linalg.fast_ibp import FBox, add_fbox, affine_fbox, affine_floats, monotone
from exactbounds.numbers import RationalContext, make_context
from exactbounds.operators.activations import Sigmoid, Tanh
from exactbounds.operators.conv import Conv2d
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU
from tests.test_crown_soundness import cnn, input_set, mlp

EXACT = RationalContext(128)
FAST = make_context("fast")
SET = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def Q(f):
    return fmpq(*float(f).as_integer_ratio())


def random_fbox(rng, n, scale):
    """Float end-intervals ``[ll, lh] <= [hl, hh]``, some degenerate (exact ends)."""
    a = rng.standard_normal(n) * scale
    d = [np.where(rng.random(n) < 0.3, 0.0, rng.random(n) * scale * w) for w in (1e-3, 1, 1e-3)]
    ll = a
    lh = ll + d[0]
    hl = lh + d[1]
    hh = hl + d[2]
    return FBox(ll, lh, hl, hh)


def pick(rng, a, b):
    """An exact rational in ``[a, b]`` (floats)."""
    t = fmpq(int(rng.integers(0, 9)), 8)
    return Q(a) + t * (Q(b) - Q(a))


def exact_ends(v):
    return EXACT.lower(v), EXACT.upper(v)


def assert_encloses(op, fboxes, rng, shapes, tries=3):
    """Every exact IBP end of ``op`` on boxes with ends inside ``fboxes`` lies in the output
    FBox (for Sigmoid/Tanh, whose exact ends are 128-bit enclosures: the two intersect)."""
    out = op.ibp_fast(FAST, *fboxes)
    for _ in range(tries):
        boxes = []
        for f, s in zip(fboxes, shapes):
            lo = [pick(rng, a, b) for a, b in zip(f.ll, f.lh)]
            hi = [pick(rng, a, b) for a, b in zip(f.hl, f.hh)]
            boxes.append(Box(lo, hi, s))
        ex = op.ibp(EXACT, *boxes)
        for k, (e_lo, e_hi) in enumerate(zip(ex.lo, ex.hi)):
            a, b = exact_ends(e_lo)
            assert Q(out.ll[k]) <= b and a <= Q(out.lh[k]), (op, k, "lo")
            a, b = exact_ends(e_hi)
            assert Q(out.hl[k]) <= b and a <= Q(out.hh[k]), (op, k, "hi")


def every_op_encloses(g, seed, scale):
    rng = np.random.default_rng(seed)
    shapes = {g.INPUT: (g.input_dim,)}
    for node in g.nodes:
        shapes[node.name] = node.op.out_shape
        ins = [shapes[i] for i in node.inputs]
        fbs = [random_fbox(rng, int(np.prod(s)), scale) for s in ins]
        if node.op.kind in ("sigmoid", "tanh"):
            fbs = [FBox(*(np.clip(v, -40, 40) for v in f)) for f in fbs]  # arb stays quick
        assert_encloses(node.op, fbs, rng, ins)


@SET
@given(st.data(), st.integers(0, 2**32 - 1), st.sampled_from([1e-3, 1.0, 1e3]))
def test_every_mlp_operator_encloses_exact_ibp(data, seed, scale):
    g, _ = data.draw(mlp())
    every_op_encloses(g, seed, scale)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(0, 2**32 - 1))
def test_every_cnn_operator_encloses_exact_ibp(data, seed):
    g, _ = data.draw(cnn())
    every_op_encloses(g, seed, 1.0)


@SET
@given(st.data())
def test_fast_ibp_encloses_exact_ibp_ends(data):
    g, n = data.draw(st.one_of(mlp(), cnn()))
    S = data.draw(input_set(n))
    ex, fa = ibp_result(g, S, EXACT), ibp_result(g, S, FAST)
    smooth = any(node.op.kind in ("sigmoid", "tanh") for node in g.nodes)
    for e, v in zip(ex.output.lo + ex.output.hi, fa.output.lo + fa.output.hi):
        a, b = exact_ends(e)
        if smooth:
            assert FAST.lower(v) <= b and a <= FAST.upper(v)
        else:
            assert FAST.lower(v) <= a and b <= FAST.upper(v)


# -- adversarial affine data ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_affine_wide_magnitudes_cancellation_and_long_sums(seed):
    rng = np.random.default_rng(seed)
    m, n = 3, (10000 if seed == 0 else 40)
    W = rng.standard_normal((m, n)) * 10.0 ** rng.integers(-30, 31, (m, n))
    if seed == 1:  # exact cancellation: the columns come in pairs w, −w
        W[:, 1::2] = -W[:, 0::2]
    if seed == 2:  # subnormal weights and inputs
        W = W * 1e-300
    lin = Linear.from_weights(W.tolist(), (rng.standard_normal(m) * 1e20).tolist())
    f = random_fbox(rng, n, 1e-10 if seed == 2 else 1e10)
    assert_encloses(lin, [f], rng, [(n,)], tries=2)


def test_add_sub_of_two_boxes_round_outward():
    rng = np.random.default_rng(0)
    a, b = random_fbox(rng, 50, 1e16), random_fbox(rng, 50, 1e-16)
    for sign in (1, -1):
        out = add_fbox(a, b, sign)
        for k in range(50):
            lo = Q(a.ll[k]) + sign * Q(b.ll[k] if sign > 0 else b.hh[k])
            hi = Q(a.hh[k]) + sign * Q(b.hh[k] if sign > 0 else b.ll[k])
            assert Q(out.ll[k]) <= lo and hi <= Q(out.hh[k])


# -- sigmoid / tanh enclosures vs arb ------------------------------------------------------------
def adversarial_points():
    tiny = [5e-324, 1e-320, 2.2250738585072014e-308, 1e-300, 1e-200, 1e-20, 1e-8, 1e-3]
    mid = [
        0.5,
        1.0,
        2.0,
        18.0,
        18.5,
        19.0,
        36.7,
        40.0,
        700.0,
        709.0,
        709.78,
        710.0,
        744.0,
        745.2,
        800.0,
        1e10,
        1e300,
        1.7976931348623157e308,
    ]
    pts = [0.0] + tiny + mid
    rng = np.random.default_rng(7)
    pts += list(10.0 ** rng.uniform(-320, 3, 300))
    pts += list(rng.uniform(-50, 50, 300))
    return np.array(sorted({v for p in pts for v in (p, -p)}))


@pytest.mark.parametrize("op", [Sigmoid(), Tanh()])
def test_vectorised_sigmoid_tanh_enclose_arb(op):
    x = adversarial_points()
    f = monotone(
        op._f_vec, FBox(x, x, x, x), float(op.center - op._wmax), float(op.center + op._wmax)
    )
    with flint_ctx.workprec(300):
        for k, v in enumerate(x):
            y = op._w_arb(arb(Q(v))) + arb(op.center)
            # arb's ball must not lie outside [lo, hi]
            assert not (y < arb(Q(f.ll[k]))) and not (y > arb(Q(f.hh[k]))), (v, f.ll[k], f.hh[k])
            assert f.ll[k] <= f.hh[k]
    # and they are narrow where the value is of normal size
    ok = np.abs(x) < 30
    assert np.all((f.hh - f.ll)[ok] <= 1e-11 * np.maximum(np.abs(f.hh[ok]), 1e-300) + 2e-300)


def test_sigmoid_tanh_of_infinite_ends_stay_in_range():
    x = np.array([-math.inf, math.inf])
    for op in (Sigmoid(), Tanh()):
        f = monotone(
            op._f_vec, FBox(x, x, x, x), float(op.center - op._wmax), float(op.center + op._wmax)
        )
        assert np.all(np.isfinite(f.ll)) and np.all(np.isfinite(f.hh))


# -- structure and escalation ------------------------------------------------------------------
def test_fast_conv_ibp_builds_no_dense_matrix():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32).tolist()
    conv = Conv2d(w, [0.5] * 4, (3, 16, 16), 2, 1)
    g = Graph.sequential(3 * 16 * 16, [conv, ReLU(conv.out_shape)])
    x = [fmpq(int(v), 64) for v in rng.integers(-64, 64, 768)]
    S = Box([v - fmpq(1, 128) for v in x], [v + fmpq(1, 128) for v in x])
    fa = ibp(g, S, FAST)
    assert conv._mats is None  # linear_params (the dense map) was never built
    ex = ibp(g, S, EXACT)
    for e, v in zip(ex.lo + ex.hi, fa.lo + fa.hi):
        assert FAST.lower(v) <= e <= FAST.upper(v)


def test_fast_ibp_overflow_raises_ambiguous_branch():
    big = fmpq(2) ** 600
    g = Graph.sequential(
        1, [Linear.from_weights([[big]], [0]), ReLU(1), Linear.from_weights([[big]], [1])]
    )
    with pytest.raises(AmbiguousBranch):
        ibp(g, Box([fmpq(-1)], [fmpq(2)]), FAST)


def test_affine_floats_add_enclosed_radii():
    """An enclosed coefficient (BatchNorm) widens the float radius by its exact radius."""
    from flint import fmpq_mat

    W, Wr = fmpq_mat([[1, 2]]), fmpq_mat([[fmpq(1, 3), 0]])
    (mats, (bm, br)) = affine_floats([W], fmpq_mat([[1]]), [Wr], fmpq_mat([[fmpq(1, 5)]]))
    Wm, Wrad, _ = mats[0]
    assert Q(Wrad[0, 0]) >= fmpq(1, 3) and Q(br[0]) >= fmpq(1, 5)
    f = FBox(*(np.array([v]) for v in (1.0, 1.0, 2.0, 2.0)))
    out = affine_fbox([(mats[0], FBox(*(np.repeat(v, 2) for v in f)))], (bm, br))
    # W' = [1 + 1/3, 2], x in [1, 2]^2, b' = 1 + 1/5: upper end 2·4/3 + 4 + 6/5
    assert Q(out.hh[0]) >= fmpq(8, 3) + 4 + fmpq(6, 5)


@pytest.mark.parametrize("seed", range(3))
def test_affine_rounding_bound_on_point_boxes(seed):
    """Point boxes: only the a-priori bound on the float product's rounding covers the exact
    value (ill-conditioned sums of 2000 terms over 1e-20..1e20)."""
    rng = np.random.default_rng(seed)
    m, n = 4, 2000
    W = rng.standard_normal((m, n)) * 10.0 ** rng.integers(-20, 21, (m, n))
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-20, 21, n)
    lin = Linear.from_weights(W.tolist(), [0] * m)
    out = lin.ibp_fast(FAST, FBox(x, x, x, x))
    Wq = [[Q(v) for v in row] for row in W]
    for i in range(m):
        e = sum((a * Q(b) for a, b in zip(Wq[i], x)), fmpq(0))
        assert Q(out.ll[i]) <= e <= Q(out.lh[i])
        assert Q(out.hl[i]) <= e <= Q(out.hh[i])


# -- the vectorised ReLU relaxation of fast CROWN ------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["adaptive", "zero", "one"]),
    st.sampled_from([1e-300, 1e-8, 1.0, 1e8]),
)
def test_relu_relax_vec_lines_hold_on_the_outer_interval(seed, rule, scale):
    """For float ranges of the bounds (near 0, ties ``u = −l``, stable and unstable) the
    vectorised lines are points (radius 0) and hold on the whole outer interval ``[l1, u2]``,
    hence for any exact bounds inside the ranges: checked exactly at ``l1``, ``u2`` and 0 (the
    lines are affine, ReLU piecewise linear with its kink at 0)."""
    rng = np.random.default_rng(seed)
    n = 40
    c = rng.standard_normal(n) * scale
    c[:8] = 0.0
    w = np.where(rng.random(n) < 0.3, 0.0, rng.random(n) * scale * 1e-6)
    l1, l2 = c - w, c
    u1 = np.where(rng.random(n) < 0.2, -c, c + rng.random(n) * scale)  # some u = −l ties
    u1 = np.maximum(u1, l2)
    u2 = u1 + w
    got = ReLU(n).relax_vec(l1, l2, u1, u2, lower_slope=rule)
    assert all(not f.rad.any() for f in got)
    for i in range(n):
        a, b, c_, d = (Q(f.mid[i]) for f in got)
        lo, hi = Q(l1[i]), Q(u2[i])
        for x in {lo, hi, max(lo, min(hi, fmpq(0)))}:
            assert a * x + b <= max(x, fmpq(0)) <= c_ * x + d, (i, l1[i], u2[i])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from(["exact", "dyadic", "fast"]))
def test_ibp_result_output_does_not_depend_on_intermediate(data, mode):
    """``ibp_result`` converts only the output box unless the nodes are asked for (it used
    to convert every node's box: 0.55 s of cifar_biasfield's 0.56 s fast IBP); the output is
    the same either way."""
    g, n = data.draw(st.one_of(mlp(), cnn()))
    S = data.draw(input_set(n))
    ctx = RationalContext(128) if mode == "exact" else make_context(mode)
    a = ibp_result(g, S, ctx)
    b = ibp_result(g, S, ctx, intermediate=True)
    assert a.nodes == {} and set(b.nodes) == {n.name for n in g.nodes}
    for x, y in zip(a.output.lo + a.output.hi, b.output.lo + b.output.hi):
        assert ctx.lower(x) == ctx.lower(y) and ctx.upper(x) == ctx.upper(y)


def test_input_fbox_is_made_once_per_set_and_read_only():
    """The float box of an input set is kept for the set (the same arrays on a second run,
    read-only so no step can change them); another set, even of equal size, gets its own."""
    from exactbounds.algorithms.ibp import INPUT_FBOX_CACHE, input_fbox

    F = make_context("fast")
    S1 = Box([fmpq(-1, 3), fmpq(0)], [fmpq(1, 3), fmpq(1)])
    f1, shape = input_fbox(F, S1)
    assert input_fbox(F, S1)[0] is f1 and shape == (2,)
    assert all(not a.flags.writeable for a in f1)
    assert f1.ll[0] < -1 / 3 < f1.lh[0] and f1.hl[1] == f1.hh[1] == 1.0
    others = [Box([fmpq(k)] * 2, [fmpq(k + 1)] * 2) for k in range(INPUT_FBOX_CACHE + 1)]
    for k, S in enumerate(others):
        assert input_fbox(F, S)[0].ll[0] == k
    assert input_fbox(F, S1)[0] is not f1  # pushed out of the cache, made again
    assert input_fbox(F, S1)[0].hh[1] == 1.0
