"""The ``auto_lirpa`` profile's rules (``algorithms/profile_auto_lirpa.py``): each rule against
its definition, every line checked to be a valid relaxation, auto_LiRPA's own Sigmoid/Tanh lines
(``tests/peers/data/sshaped_relax.json``, written by its peer script), and soundness of whole
runs under the profile in every mode."""

import json
import random
from pathlib import Path

import pytest
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms import profile_auto_lirpa as lirpa
from exactbounds.algorithms.affine import affine
from exactbounds.algorithms.crown import _Crown, crown
from exactbounds.algorithms.ibp import evaluate, ibp
from exactbounds.algorithms.profiles import AutoLirpaProfile, ibp_from_stored, make_profile
from exactbounds.core import Box
from exactbounds.errors import InvalidValueError
from exactbounds.graph import Graph
from exactbounds.inputsets import sample, vertices
from exactbounds.numbers import make_context, to_exact
from exactbounds.operators.activations import Sigmoid, Tanh
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU

DELTA = lirpa.RELU_DELTA
RELAX_DATA = Path(__file__).resolve().parent / "peers" / "data" / "sshaped_relax.json"

# rationals at the scale of the 1e-8 clamp and at ordinary scales
tiny = st.integers(-40, 40).map(lambda k: fmpq(k, 2**31))
num = st.one_of(st.integers(-64, 64).map(lambda k: fmpq(k, 16)), tiny)


def relu(x):
    return max(x, fmpq(0))


@given(num, num)
def test_relu_lines_follow_rule_r7_and_are_valid(a, b):
    l, u = min(a, b), max(a, b)
    ls, lb, us, ub = lirpa.relu_lines(l, u)
    lr = min(l, fmpq(0))
    ur = max(u, fmpq(0), lr + DELTA)
    assert us == ur / (ur - lr) and ub == -us * lr
    assert ls == (1 if ur > -lr else 0) and lb == 0
    # line − relu is concave (relu is convex): the ends of [l, u] decide validity
    for x in (l, u, l + (u - l) / 3):
        assert ls * x + lb <= relu(x) <= us * x + ub
    if l >= 0:
        assert (ls, lb, us, ub) == (1, 0, 1, 0)
    if u <= 0 and l <= -DELTA:
        assert (ls, lb, us, ub) == (0, 0, 0, 0)
    if -DELTA < l <= u <= 0:  # the 1e-8 clamp: a loose nonzero upper line
        assert us == (l + DELTA) / DELTA


@given(num, num)
def test_relu_lines_rounded_up_stay_valid_and_forward_lines_mask_stable_neurons(a, b):
    l, u = min(a, b), max(a, b)
    ctx = make_context("dyadic", bits=8)
    ls, lb, us, ub = lirpa.relu_lines(l, u, lambda q: ctx.round_bound(q, True))
    for x in (l, u):
        assert ls * x + lb <= relu(x) <= us * x + ub
    fl = lirpa.relu_lines_forward(l, u)
    if l >= 0 or u <= 0:
        assert fl == ((1, 0, 1, 0) if l >= 0 else (0, 0, 0, 0))
    else:
        assert fl == lirpa.relu_lines(l, u)


def test_relu_lower_slope_tie_is_zero():
    """``u > −l`` strictly (``upper_d > 0.5``): a symmetric interval takes slope 0."""
    assert lirpa.relu_lines(fmpq(-1), fmpq(1))[0] == 0
    assert lirpa.relu_lines(fmpq(-1), fmpq(1) + fmpq(1, 2**60))[0] == 1


@pytest.mark.parametrize(
    "n,k,plan",
    [
        (10, 0, "reference"),
        (10, 1, "sparse"),
        (10, 9, "sparse"),
        (10, 10, "full"),
        (20, 18, "sparse"),
        (20, 19, "full"),
        (1, 1, "full"),
    ],
)
def test_sparse_plan_threshold_is_ninety_percent(n, k, plan):
    lo = [fmpq(-1)] * k + [fmpq(0)] * (n - k)  # lo = 0 is stable (not < 0)
    hi = [fmpq(1)] * n
    got, unstable = lirpa.sparse_plan(lo, hi)
    assert got == plan and unstable == list(range(k))


def test_tangent_tables_are_on_their_sides_and_index_rule():
    for kind in ("sigmoid", "tanh"):
        t_l, t_u = lirpa.tangent_tables(kind)
        assert len(t_l) == len(t_u) == 50005
        assert (t_l <= 0).all() and (t_u >= 0).all()
        assert (t_l[1:] < 0).all() and abs(t_l[0]) < 1e-20
    assert lirpa.table_index(0.0) == 1 and lirpa.table_index(-3.0) == 1
    assert lirpa.table_index(0.015) == 2 and lirpa.table_index(0.02) == 3
    t_l, _ = lirpa.tangent_tables("sigmoid")
    assert lirpa.table_point(t_l, 600, -7) == (-7, False)


def _valid(op, l, u, al, bl, au, bu, prec=200):
    for x in (l, u, (l + u) / 2, l + (u - l) / 7):
        w_lo, w_hi = op.w_point(x, prec)
        assert al * x + bl <= w_lo + op.center and w_hi + op.center <= au * x + bu


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([Sigmoid(), Tanh()]), num, num)
def test_sshaped_lines_are_valid(op, a, b):
    l, u = min(a, b), max(a, b)
    al, bl, au, bu, notes = lirpa.sshaped_lines(op, l, u, 160)
    _valid(op, l, u, al, bl, au, bu)
    assert set(notes) == {"table", "tie", "replaced"}


def test_auto_lirpa_chord_clamp_line_is_invalid_and_replaced():
    """On ``[−1e-9, 1e-9]`` auto_LiRPA's upper chord of tanh uses the slope
    ``(f(u) − f(l))/1e-8 ≈ 0.2`` from ``(l, f(l))``, which lies below tanh at u: the profile
    reports the line and uses exactbounds' own."""
    op = Tanh()
    l, u = to_exact(-1e-9), to_exact(1e-9)
    lower, upper, _ = lirpa.sshaped_choice(op, l, u, 160)
    assert upper == ("chord", None)
    s, b = lirpa._chord_line(op, l, u, 160, True)
    assert not op.check_line(l, u, s, b, True)
    al, bl, au, bu, notes = lirpa.sshaped_lines(op, l, u, 160)
    assert notes["replaced"] >= 1
    _valid(op, l, u, al, bl, au, bu)


def test_sshaped_lines_match_auto_lirpas_own_lines():
    data = json.loads(RELAX_DATA.read_text())
    L = [to_exact(v) for v in data["l"]]
    U = [to_exact(v) for v in data["u"]]
    for op in (Sigmoid(), Tanh()):
        ref = data[op.kind]
        for i, (l, u) in enumerate(zip(L, U)):
            al, bl, au, bu, notes = lirpa.sshaped_lines(op, l, u, 160)
            assert notes["replaced"] == 0
            for a, b, k in ((al, bl, "l"), (au, bu, "u")):
                ra, rb = to_exact(ref[k + "w"][i]), to_exact(ref[k + "b"][i])
                gap = max(abs((a - ra) * x + (b - rb)) for x in (l, u))
                assert gap <= fmpq(1, 10**9) * (1 + abs(rb)), (op.kind, i, k)


def _net(data, n, widths, act):
    ops = []
    d = n
    for w in widths:
        ops += [
            Linear.from_weights(
                [[data.draw(num) for _ in range(d)] for _ in range(w)],
                [data.draw(num) for _ in range(w)],
            ),
            act(w),
        ]
        d = w
    ops.append(Linear.from_weights([[data.draw(num) for _ in range(d)] for _ in range(2)], [0, 0]))
    return Graph.sequential(n, ops)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_auto_lirpa_profile_runs_are_sound(data):
    act = data.draw(st.sampled_from([ReLU, Sigmoid, Tanh]))
    n = data.draw(st.integers(1, 3))
    g = _net(
        data, n, [data.draw(st.integers(1, 4)) for _ in range(data.draw(st.integers(1, 2)))], act
    )
    lo = [data.draw(num) for _ in range(n)]
    S = Box(lo, [v + data.draw(num) ** 2 for v in lo])
    pts = vertices(S, 8) + sample(S, random.Random(1), 6)
    vals = [evaluate(g, p, make_context("exact")) for p in pts]
    exact = make_context("exact")
    for mode in ("exact", "dyadic", "interval"):
        ctx = make_context(mode, bits=16 if mode == "dyadic" else None)
        for inter in ("crown", "ibp"):
            out = crown(g, S, ctx, relaxation=make_profile("auto_lirpa", intermediate=inter))
            lo_, hi_ = out.output.outer(ctx)
            for v in vals:
                for a, y, b in zip(lo_, v, hi_):
                    ylo, yhi = exact.lower(y), exact.upper(y)
                    assert a <= ylo and yhi <= b, (mode, inter)
        out = affine(g, S, ctx, relaxation="auto_lirpa").output
        lo_, hi_ = out.outer(ctx)
        for v in vals:
            assert all(
                a <= exact.lower(y) and exact.upper(y) <= b for a, y, b in zip(lo_, v, hi_)
            ), mode


def test_ibp_from_stored_with_nothing_stored_is_ibp():
    W = [[fmpq(1), fmpq(-2)], [fmpq(3, 2), fmpq(1)]]
    g = Graph.sequential(
        2, [Linear.from_weights(W, [0, 1]), ReLU(2), Linear.from_weights(W, [1, 0])]
    )
    S = Box([fmpq(-1), fmpq(0)], [fmpq(1), fmpq(1, 2)])
    run = _Crown(g, S, make_context("exact"), AutoLirpaProfile())
    exact = ibp(g, S, make_context("exact"), intermediate=True)
    for name in ("layers[0]", "layers[2]"):
        assert ibp_from_stored(run, name) == tuple(exact[name].outer())


def test_auto_lirpa_profile_fixes_its_options():
    with pytest.raises(InvalidValueError, match="lower_slope"):
        make_profile("auto_lirpa", lower_slope="zero")
    with pytest.raises(InvalidValueError, match="intersect_ibp"):
        make_profile("auto_lirpa", intersect_ibp=True)
    with pytest.raises(InvalidValueError, match="relaxation"):
        make_profile("eran")
    assert make_profile("auto_lirpa").describe()["relaxation"] == "auto_lirpa"
