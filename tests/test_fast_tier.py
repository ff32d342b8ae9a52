"""The ``fast`` mode (float64 balls with a-priori rounding-error bounds) is sound: on random
networks of every operator its IBP, CROWN and forward-affine results contain the true values,
and, where the exact run is exact, each exact end lies inside the fast enclosure of that end;
the ball kernels (matrix product, sums, elementwise products, the relaxation step, conversions)
enclose the exact rational results on adversarial data: cancellation, magnitudes 1e-30..1e30,
subnormals, overflow, 10^4-term dot products."""

import math
import random

import numpy as np
import pytest
from flint import fmpq, fmpq_mat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.affine import affine
from exactbounds.algorithms.crown import crown
from exactbounds.algorithms.ibp import ibp_result
from exactbounds.core import Box
from exactbounds.errors import AmbiguousBranch
from exactbounds.graph import Graph
from exactbounds.inputsets import sample, vertices
from exactbounds.linalg import QBackend, backend_for
from exactbounds.linalg.dymat import DyMat
from exactbounds.linalg.fast import (
    Ball,
    FastBackend,
    ball_add,
    ball_emul,
    ball_matmul,
    q_ball,
    q_ceil,
    q_floor,
    q_mat_ball,
)
from exactbounds.numbers import FastContext, IntervalContext, RationalContext, make_context
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU
from tests.test_crown_soundness import check_inside, cnn, input_set, mlp

EXACT = RationalContext(128)
FAST = make_context("fast")


def Q(f):
    """The exact rational value of a float."""
    return fmpq(*float(f).as_integer_ratio())


def inside(exact, mid, rad):
    """``|exact − mid| <= rad`` in exact arithmetic (``rad`` may be inf)."""
    if rad is not None and math.isinf(rad):
        return True
    return abs(exact - Q(mid)) <= (Q(rad) if rad is not None else 0)


def assert_ball_contains(B, exact_mat):
    r, c = B.shape
    for i in range(r):
        for j in range(c):
            rad = None if B.rad is None else float(B.rad[i, j])
            assert inside(exact_mat[i, j], float(B.mid[i, j]), rad), (i, j)


def to_q(a):
    return fmpq_mat(a.shape[0], a.shape[1], [Q(v) for v in a.ravel()])


# -- the algorithms on random networks -------------------------------------------------------
def run_fast_vs_exact(g, S):
    """Soundness always (the exact outputs at random points and the set's vertices lie in the
    bounds and satisfy the final linear bounds). Fast IBP, and CROWN/affine through networks
    with no relaxation, are enclosures of the exact run: each exact end lies inside the fast
    enclosure of that end. Through a relaxation the fast lines are floats valid on the outer
    ends of the float intermediate bounds: the result is a sound ``bound`` (status and note)."""
    pts = sample(S, random.Random(0), 3) + vertices(S, 8)
    relaxed = any(node.op.needs_bounds for node in g.nodes)
    smooth = any(node.op.kind in ("sigmoid", "tanh") for node in g.nodes)
    calls = [(ibp_result, {})] + [(crown, {"lower_slope": s}) for s in ("adaptive", "zero", "one")]
    calls += [(affine, {}), (crown, {"intersect_ibp": True})]
    for algo, kw in calls:
        fa = algo(g, S, FAST, **kw)
        assert fa.mode in ("fast", "interval")  # interval: escalated after AmbiguousBranch
        check_inside(fa, pts, g)
        if algo is not ibp_result and relaxed and fa.mode == "fast":
            assert fa.status == "bound" and any("fast mode" in t for t in fa.notes)
        if fa.status != "enclosure" or smooth:
            continue  # Sigmoid/Tanh lines (escalated to interval) are not one exact number
        ex = algo(g, S, EXACT, **kw)
        if ex.status != "exact":
            continue  # square roots / transcendentals: the exact run rounded on its way
        c = fa.ctx
        for e, v in zip(ex.output.lo + ex.output.hi, fa.output.lo + fa.output.hi):
            assert c.lower(v) <= e <= c.upper(v), (algo.__name__, kw, e, v)


SET = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SET
@given(st.data())
def test_fast_is_sound_on_mlp_dags(data):
    g, n = data.draw(mlp())
    run_fast_vs_exact(g, data.draw(input_set(n)))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_is_sound_on_cnns(data):
    g, n = data.draw(cnn())
    run_fast_vs_exact(g, data.draw(input_set(n)))


def test_fast_context_and_backend_answer_for_themselves():
    c = make_context("fast")
    assert isinstance(c, FastContext) and c.backend_kind == "fast" and not c.is_exact
    assert isinstance(backend_for(c), FastBackend)
    assert c.result_status(False) == "enclosure"
    assert isinstance(c.refined(), IntervalContext) and c.refined().precision == 113


def test_overflow_escalates_to_the_interval_mode():
    """Weights 2^600 twice overflow float64: the ball becomes 0 ± inf, its ends raise
    ``AmbiguousBranch`` and CROWN restarts in ``IntervalContext(113)``, still sound."""
    big = fmpq(2) ** 600
    g = Graph.sequential(
        1, [Linear.from_weights([[big]], [0]), ReLU(1), Linear.from_weights([[big]], [1])]
    )
    S = Box([fmpq(-1)], [fmpq(2)])
    res = crown(g, S, FAST)
    assert res.mode == "interval"
    ex = crown(g, S, EXACT)
    for e, v in zip(ex.output.lo + ex.output.hi, res.output.lo + res.output.hi):
        assert res.ctx.lower(v) <= e <= res.ctx.upper(v)


# -- the kernels against exact rational arithmetic -------------------------------------------
def log_uniform(rng, shape, lo=-30, hi=30):
    mag = 10.0 ** rng.uniform(lo, hi, size=shape)
    return mag * rng.choice([-1.0, 1.0], size=shape)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_rad", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_encloses_exact_product_wide_magnitudes(seed, with_rad):
    rng = np.random.default_rng(seed)
    A, B = log_uniform(rng, (4, 7)), log_uniform(rng, (7, 3))
    Ar = np.abs(log_uniform(rng, (4, 7))) * 1e-3 if with_rad[0] else None
    Br = np.abs(log_uniform(rng, (7, 3))) * 1e-3 if with_rad[1] else None
    mid, rad = ball_matmul(A, Ar, B, Br)
    # every corner member (mid ± rad) of the inputs: its exact product lies in the ball
    for _ in range(3):
        sa = rng.choice([-1.0, 0.0, 1.0], size=A.shape)
        sb = rng.choice([-1.0, 0.0, 1.0], size=B.shape)
        Aq = to_q(A) + (
            fmpq_mat(4, 7, [Q(s) * Q(r) for s, r in zip(sa.ravel(), Ar.ravel())])
            if Ar is not None
            else fmpq_mat(4, 7)
        )
        Bq = to_q(B) + (
            fmpq_mat(7, 3, [Q(s) * Q(r) for s, r in zip(sb.ravel(), Br.ravel())])
            if Br is not None
            else fmpq_mat(7, 3)
        )
        assert_ball_contains(Ball(mid, rad), Aq * Bq)


def test_matmul_catastrophic_cancellation():
    """Rows ``x`` and ``−x`` with a tiny term: the float sum is 0 or garbage, the ball holds the
    exact value."""
    rng = np.random.default_rng(7)
    x = log_uniform(rng, (1, 50), 0, 20)
    a = np.hstack([x, -x, [[1e-10]]])
    b = np.ones((101, 1))
    b[100, 0] = 3.0
    mid, rad = ball_matmul(a, None, b, None)
    assert_ball_contains(Ball(mid, rad), to_q(a) * to_q(b))
    assert rad[0, 0] < 1e8  # γ_n·|a|·|b| ~ 1e20·100·1e-16


def test_matmul_subnormals_and_underflow():
    """Products of 1e-200 by 1e-200 underflow to 0 and subnormals add up: the 2n·η term holds
    them."""
    eta = 5e-324
    a = np.array([[1e-200, 3 * eta, -7 * eta, 2.5e-310, 1e-170]])
    b = np.array([[1e-200], [0.5], [0.25], [3e-15], [1e-160]])
    mid, rad = ball_matmul(a, None, b, None)
    assert_ball_contains(Ball(mid, rad), to_q(a) * to_q(b))
    mid, rad = ball_emul(a, None, b.T, None)
    assert_ball_contains(
        Ball(mid, rad), fmpq_mat(1, 5, [Q(p) * Q(q) for p, q in zip(a.ravel(), b.ravel())])
    )


def test_matmul_ten_thousand_terms():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 10000)) * 1e5
    b = rng.standard_normal((10000, 1))
    mid, rad = ball_matmul(a, None, b, None)
    assert_ball_contains(Ball(mid, rad), to_q(a) * to_q(b))
    ar = np.full(a.shape, 1e-6)
    mid, rad = ball_matmul(a, ar, b, None)
    exact = (to_q(a) + to_q(ar)) * to_q(b)  # the member a + ar
    assert_ball_contains(Ball(mid, rad), exact)


def test_overflow_gives_an_infinite_radius_never_nan():
    a = np.array([[1e300, 1e300]])
    b = np.array([[1e300], [-1e300]])
    mid, rad = ball_matmul(a, None, b, None)
    assert np.isfinite(mid).all() and rad[0, 0] == math.inf
    mid, rad = ball_add(np.array([[1.7e308]]), None, np.array([[1.7e308]]), None)
    assert mid[0, 0] == 0 and rad[0, 0] == math.inf
    with pytest.raises(AmbiguousBranch):
        FastBackend().to_ctx(FAST, Ball(mid, rad))


@given(
    st.lists(
        st.tuples(st.integers(-(2**70), 2**70), st.integers(1, 2**70)), min_size=1, max_size=12
    )
)
@settings(max_examples=60, deadline=None)
def test_exact_matrices_convert_with_a_sound_radius(pq):
    Qm = fmpq_mat(1, len(pq), [fmpq(p, q) for p, q in pq])
    mid, rad = q_mat_ball(Qm)
    assert_ball_contains(Ball(mid, rad), Qm)
    D = DyMat.from_entries(1, 3, [fmpq(1, 2**1080), fmpq(3 * 2**60 + 1, 2**3), fmpq(-5)])
    mid, rad = q_mat_ball(D)
    assert_ball_contains(Ball(mid, rad), D.to_q())
    for p, q in pq:
        v = fmpq(p, q)
        assert Q(q_floor(v)) <= v <= Q(q_ceil(v))
        m, r = q_ball(v)
        assert inside(v, m, r)


def test_huge_and_tiny_exact_entries():
    Qm = fmpq_mat(
        1, 4, [fmpq(2) ** 2000, -fmpq(1, 3) / fmpq(2) ** 1070, fmpq(1, 3), fmpq(2) ** -1074]
    )
    mid, rad = q_mat_ball(Qm)
    assert rad[0, 0] == math.inf
    assert_ball_contains(Ball(mid, rad), Qm)
    assert q_floor(-(fmpq(2) ** 2000)) == -math.inf and q_ceil(fmpq(2) ** 2000) == math.inf


def rel_lists(rng, n):
    """Exact random lines (as the relaxation returns them)."""

    def v():
        return fmpq(int(rng.integers(-40, 40)), int(rng.integers(1, 9)))

    ls = [v() for _ in range(n)]
    us = [v() if rng.random() < 0.6 else l for l in ls]
    lb = [v() for _ in range(n)]
    ub = [v() if rng.random() < 0.6 else b for b in lb]
    return ls, lb, us, ub


@pytest.mark.parametrize("seed", range(6))
def test_relax_backward_encloses_the_exact_step(seed):
    """Λ with decided, exactly-zero and undecided (0 ∈ ball) entries: the exact step on the
    centre Λ (a member of the ball) lies in the ball result, for both bound sides."""
    rng = np.random.default_rng(seed)
    m, n = 3, 6
    mid = np.round(rng.standard_normal((m, n)) * 4) / 4
    mid[0, 0] = 0.0
    rad = np.where(rng.random((m, n)) < 0.3, 0.5, 0.0)
    rel = rel_lists(rng, n)
    fb, qb = FastBackend(), QBackend()
    frel = tuple([fb.from_ctx(EXACT, v) for v in vs] for vs in rel)
    for upper in (False, True):
        got, bias = fb.relax_backward(Ball(mid, rad), n, frel, upper)
        # every member sampled at the corners of the undecided entries
        for _ in range(4):
            s = rng.choice([-1.0, 0.0, 1.0], size=mid.shape)
            lam = to_q(mid) + fmpq_mat(m, n, [Q(a) * Q(b) for a, b in zip(s.ravel(), rad.ravel())])
            want, wbias = qb.relax_backward(lam, n, rel, upper)
            assert_ball_contains(got, want)
            assert_ball_contains(bias, wbias)


@pytest.mark.parametrize("seed", range(4))
def test_pick_rows_and_linear_step_enclose_exact(seed):
    rng = np.random.default_rng(seed)
    r, n = 5, 4
    A = np.round(rng.standard_normal((r, n)) * 8) / 8
    B = np.round(rng.standard_normal((r, n)) * 8) / 8
    s = [fmpq(int(k), 3) for k in rng.integers(-3, 4, size=r)]
    fb, qb = FastBackend(), QBackend()
    got = fb.pick_rows(Ball(A), Ball(B), [fb.from_ctx(EXACT, v) for v in s], n)
    assert_ball_contains(got, qb.pick_rows(to_q(A), to_q(B), s, n))
    # undecided slopes (balls around 0): hull of both rows
    sb = [Ball(np.array([[0.0]]), np.array([[0.25]]))] * r
    got = fb.pick_rows(Ball(A), Ball(B), sb, n)
    for val in (fmpq(-1, 4), fmpq(0), fmpq(1, 4)):
        assert_ball_contains(got, qb.pick_rows(to_q(A), to_q(B), [val] * r, n))


def test_fast_result_is_narrow():
    """On a float-weight ReLU network fast CROWN's outer ends lie within ~1e-12 relative of
    exact CROWN's (a box that is not centred at 0 and nonzero biases). They need not enclose
    it: the backward pass carries point functionals (``linalg/fast_point.py``), a sound bound
    of the network, not of the exact algorithm's numbers."""
    rng = np.random.default_rng(0)
    n, ops, d = 8, [], 8
    for _ in range(3):
        W = rng.standard_normal((16, d)).astype(np.float32)
        b = rng.standard_normal(16).astype(np.float32)
        ops += [
            Linear.from_weights([[float(v) for v in row] for row in W], [float(v) for v in b]),
            ReLU(16),
        ]
        d = 16
    ops.append(Linear.from_weights([[float(v) for v in rng.standard_normal(d)]], [0.0]))
    g = Graph.sequential(n, ops)
    S = Box([fmpq(-1, 10)] * n, [fmpq(3, 10)] * n)
    ex, fa = crown(g, S, EXACT), crown(g, S, FAST)
    for k, (e, v) in enumerate(zip(ex.output.lo + ex.output.hi, fa.output.lo + fa.output.hi)):
        lo, hi = FAST.lower(v), FAST.upper(v)
        outer = hi if k >= len(ex.output.lo) else lo
        assert abs(outer - e) <= abs(e) * fmpq(1, 10**11) + fmpq(1, 10**12)
        assert hi - lo <= abs(e) * fmpq(1, 10**10) + fmpq(1, 10**12)


def test_accept_escalates_a_wide_result():
    """A result whose ends are enclosed less tightly than 2^-10 of its span is refused."""
    from exactbounds.algorithms.result import BoundsResult

    iv = FAST.iv
    ok = Box([iv.mpf([0, 2**-40])], [iv.mpf([1, 1 + 2**-40])])
    wide = Box([iv.mpf([0, 0.01])], [iv.mpf([1, 1])])
    for box, good in ((ok, True), (wide, False)):
        res = BoundsResult("crown", "fast", FAST, box, "enclosure")
        if good:
            assert FAST.accept(res) is res
        else:
            with pytest.raises(AmbiguousBranch):
                FAST.accept(res)


def _cli(*args):
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "exactbounds", *args], capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


def to_fmpq(s):
    p, _, q = s.partition("/")
    return fmpq(int(p), int(q or 1))


def test_bounds_picks_fast_on_a_large_model_and_says_so(tmp_path):
    import json

    rng = random.Random(5)
    n, h = 260, 400  # 104 000 + 800 affine coefficients > LARGE_MODEL
    # random (float) weights: no exact ties u = −l or l = 0, which the balls cannot decide
    net = tmp_path / "big.json"
    net.write_text(
        json.dumps(
            {
                "input_lo": [0] * n,
                "input_hi": [0.25] * n,
                "layers": [
                    {
                        "type": "linear",
                        "weight": [[rng.gauss(0, 0.1) for _ in range(n)] for _ in range(h)],
                        "bias": [rng.gauss(0, 0.3) for _ in range(h)],
                    },
                    {"type": "relu"},
                    {
                        "type": "linear",
                        "weight": [[rng.gauss(0, 0.1) for _ in range(h)] for _ in range(2)],
                        "bias": [0, 1],
                    },
                ],
            }
        )
    )
    fast = json.loads(_cli("bounds", str(net), "--json"))  # IBP, no --mode
    assert fast["mode"] == "fast" and fast["outputs"]["status"] == "enclosure"
    assert any("large model" in t and "fast mode" in t for t in fast["notes"])
    # the fast enclosure's outer ends bracket the exact IBP bounds, within 1e-9
    ex = json.loads(_cli("bounds", str(net), "--mode", "exact", "--json"))
    assert ex["mode"] == "exact" and not any("large model" in t for t in ex.get("notes", []))
    for key, side in (("lo", -1), ("hi", 1)):
        for f, e in zip(fast["outputs"][key], ex["outputs"][key]):
            f, e = to_fmpq(f), to_fmpq(e)
            assert (f <= e) if side < 0 else (f >= e)
            assert abs(f - e) <= (abs(e) + 1) * fmpq(1, 10**9)
    text = _cli("bounds", str(net), "--method", "crown")
    assert "CROWN, FastContext()" in text and "note: large model" in text
