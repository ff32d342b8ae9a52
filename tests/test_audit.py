"""The audit: ulps, claims, verdicts and exact witnesses (issue 6).

Every witness is re-checked here with arithmetic independent of the package
(``tests/exact_ref.py``: ``a + b·√w`` compared with rationals by squaring, and Fractions)."""

import itertools
import random
from fractions import Fraction

import numpy as np
import pytest
from flint import fmpq
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from exact_ref import F, bn_exact
from exactbounds.audit import INSIDE_EXACT, SOUND, UNSOUND, Verdict, shift_ulps, ulp, ulps_between
from exactbounds.audit.bounds import audit_bounds
from exactbounds.audit.claims import Claim, parse_claim
from exactbounds.audit.floatsim import simulate
from exactbounds.audit.methods import exact_method_bounds
from exactbounds.audit.verdicts import lower_end, upper_end
from exactbounds.core import Box
from exactbounds.errors import InvalidValueError, MalformedFileError, ShapeError
from exactbounds.graph import Graph
from exactbounds.numbers import FloatContext
from exactbounds.numbers.floatctx import round_nearest
from exactbounds.operators.batchnorm import BatchNorm, BatchNormParams
from exactbounds.operators.linear import Linear, LinearParams

SETTINGS = dict(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

f32 = st.floats(-4, 4, width=32, allow_subnormal=False)
small = st.fractions(-3, 3, max_denominator=16)


def Q(x):
    return fmpq(*Fraction(x).as_integer_ratio()) if not isinstance(x, fmpq) else x


# ----------------------------------------------------------------------------- ulps


@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
@settings(max_examples=60, deadline=None)
def test_ulp_is_float_spacing(x):
    assume(abs(x) < float(np.finfo(np.float32).max))  # numpy's spacing at the top is inf
    q = Q(float(x))
    assert ulp(q, "float32") == Q(float(np.spacing(np.abs(np.float32(x)))))
    assert ulp(q, "float64") == Q(float(np.spacing(np.abs(np.float64(x)))))


@given(st.floats(-1e30, 1e30, allow_nan=False), st.integers(-5, 5))
@settings(max_examples=60, deadline=None)
def test_shift_by_k_ulps_is_k_ulps_and_k_float_steps(x, k):
    q = Q(x)
    assert ulps_between(q, shift_ulps(q, k, "float64"), "float64") == abs(k)
    if abs(x) >= 2.0**-1000 and k > 0:  # within a binade one ulp is one float step
        y = float(x)
        for _ in range(k):
            y = np.nextafter(y, np.inf)
        if abs(y) < 2 ** (int(np.floor(np.log2(abs(x)))) + 1) and x > 0:
            assert Q(float(y)) == shift_ulps(q, k, "float64")


def test_ulp_at_zero_and_bad_dtype():
    assert ulp(0, "float32") == fmpq(1, 2**149)
    assert ulp(0, "float64") == fmpq(1, 2**1074)
    with pytest.raises(InvalidValueError, match="dtype"):
        ulp(1, "float16")


# ----------------------------------------------------------------------------- claims


def test_claim_shapes_and_selection():
    c = parse_claim({"lo": [1, "0x1p-3", None], "hi": ["1/3", 2, "0.1"]})
    assert c.lo == [1, fmpq(1, 8), None] and c.hi == [fmpq(1, 3), 2, fmpq(1, 10)]
    assert c.dtype == "float64"
    data = {
        "ibp": {"float32": {"lo": [1], "hi": [2]}},
        "crown": {"lo": [0], "hi": [3], "dtype": "float32"},
    }
    c = parse_claim(data, "ibp", "float32")
    assert (c.lo, c.hi, c.dtype) == ([1], [2], "float32")
    c = parse_claim(data, "crown")
    assert (c.lo, c.hi, c.dtype) == ([0], [3], "float32")
    assert parse_claim({"outputs": {"lo": [[1, 2]], "hi": [[3, 4]]}}).hi == [3, 4]
    assert parse_claim({"lo": [0.1], "hi": [0.1]}).lo == [Q(0.1)]  # the exact double


@pytest.mark.parametrize(
    "data, method, dtype, err, match",
    [
        ({"lo": [1, "x"], "hi": [2, 3]}, None, None, InvalidValueError, r"claim\.lo\[1\]"),
        ({"ibp": {"lo": [1]}, "crown": {"lo": [1]}}, None, None, InvalidValueError, "choose one"),
        ({"ibp": {"lo": [1]}}, "crown", None, InvalidValueError, "no claim for it"),
        ({"lo": [1], "hi": [1, 2]}, None, None, ShapeError, "lo has 1"),
        ({"lo": [1], "hi": [2], "dtype": "float32"}, None, "float64", InvalidValueError, "dtype"),
        ({"low": [1]}, None, None, MalformedFileError, "'lo'"),
        ({"lo": [float("nan")]}, None, None, InvalidValueError, "not finite"),
    ],
)
def test_bad_claims_name_the_offender(data, method, dtype, err, match):
    with pytest.raises(err, match=match):
        parse_claim(data, method, dtype)


# ----------------------------------------------------------------------------- networks


def bn_net(mean, var, gamma, beta, eps, lo, hi):
    p = BatchNormParams(mean, var, gamma, beta, eps)
    return Graph.sequential(len(mean), [BatchNorm(p)]), Box.from_values(lo, hi)


def lin_net(W, b, lo, hi):
    return Graph.sequential(len(W[0]), [Linear(LinearParams(W, b))]), Box.from_values(lo, hi)


@st.composite
def bn_case(draw):
    n = draw(st.integers(1, 4))
    mean = draw(st.lists(f32, min_size=n, max_size=n))
    var = draw(st.lists(st.floats(0, 4, width=32), min_size=n, max_size=n))
    gamma = draw(st.lists(f32, min_size=n, max_size=n))
    gamma[0] = -abs(gamma[0]) - 0.5  # at least one γ < 0 channel
    beta = draw(st.lists(f32, min_size=n, max_size=n))
    lo = draw(st.lists(f32, min_size=n, max_size=n))
    w = draw(st.lists(st.floats(0, 2, width=32), min_size=n, max_size=n))
    hi = [float(np.float32(a) + np.float32(d)) for a, d in zip(lo, w)]
    return (mean, var, gamma, beta, 1e-5, lo, hi)


@st.composite
def lin_case(draw):
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    W = [draw(st.lists(f32, min_size=n, max_size=n)) for _ in range(m)]
    b = draw(st.lists(f32, min_size=m, max_size=m))
    lo = draw(st.lists(f32, min_size=n, max_size=n))
    w = draw(st.lists(st.floats(0, 2, width=32), min_size=n, max_size=n))
    hi = [float(np.float32(a) + np.float32(d)) for a, d in zip(lo, w)]
    return W, b, lo, hi


def ref_value(case, kind, x, i):
    """Independent exact value of output ``i`` at ``x``: a Surd for BN, a Fraction for Linear."""
    if kind == "bn":
        mean, var, gamma, beta, eps = case[:5]
        return bn_exact(gamma[i], mean[i], var[i], beta[i], eps, F(x[i]))
    W, b = case[:2]
    return F(b[i]) + sum(F(w) * F(v) for w, v in zip(W[i], x))


def cmp(v, q):
    """sign(v - q) for a Surd or a Fraction v and a rational q, exactly."""
    if isinstance(v, Fraction):
        return (v > F(q)) - (v < F(q))
    return v.cmp(q)


def planted(exact, k, dtype="float32"):
    """Claims ``k`` ulps of ``dtype`` inward (k > 0) or outward (k < 0) of the exact bounds
    (measured from the exact ends of their enclosures)."""
    lo = [shift_ulps(lower_end(v), k, dtype) for v in exact.lo]
    hi = [shift_ulps(upper_end(v), -k, dtype) for v in exact.hi]
    return Claim(lo, hi, dtype)


def net_of(kind, case):
    return bn_net(*case) if kind == "bn" else lin_net(*case)


def check_witness(v, case, kind, box):
    w = v.witness
    assert box.contains(w.x)  # inside the input set
    y = ref_value(case, kind, w.x, v.output)
    s = cmp(y, v.claimed)
    assert s == (-1 if v.side == "lo" else 1)  # strictly outside, exactly
    assert lower_end(w.y) <= v.claimed or upper_end(w.y) >= v.claimed
    assert w.distance > 0 and w.ulps > 0


@pytest.mark.parametrize("kind, strategy", [("bn", bn_case()), ("linear", lin_case())])
def test_planted_claims_one_ulp_inward_are_unsound_and_outward_sound(kind, strategy):
    @given(strategy)
    @settings(**SETTINGS)
    def run(case):
        g, box = net_of(kind, case)
        exact = exact_method_bounds(g, box, "ibp")
        inward = audit_bounds(g, box, [planted(exact, 1)], "ibp", budget=0, n_random=0)
        assert [v.verdict for v in inward.verdicts] == [UNSOUND] * (2 * len(exact.lo))
        for v in inward.verdicts:
            check_witness(v, case, kind, box)
            # the sign-pattern corner attains the exact extreme: at most the planted step
            # (one ulp at the exact end; two ulps at the claim across a power of two)
            end = lower_end(v.exact) if v.side == "lo" else upper_end(v.exact)
            assert v.witness.source == "corner" and v.witness.distance <= ulp(end, "float32")
            assert 0 < v.witness.ulps <= 2
        outward = audit_bounds(g, box, [planted(exact, -1)], "ibp")
        assert all(v.verdict == SOUND and v.witness is None for v in outward.verdicts)
        for v in outward.verdicts:
            end = lower_end(v.exact) if v.side == "lo" else upper_end(v.exact)
            assert 0 < v.distance <= ulp(end, "float32") and 0 < v.ulps <= 2
        assert outward.evaluations == 0  # nothing to search when every side is sound

    run()


def test_negative_gamma_channel_swaps_the_witness_corner():
    g, box = bn_net([0, 0], [1, 1], [-2, 3], [0, 0], "1/1000", [-1, -1], [2, 2])
    exact = exact_method_bounds(g, box, "ibp")
    res = audit_bounds(g, box, [planted(exact, 1)], "ibp", budget=0, n_random=0)
    xs = {(v.output, v.side): v.witness.x[v.output] for v in res.verdicts}
    # γ < 0: the lowest output is at the highest input and vice versa
    assert xs == {(0, "lo"): 2, (0, "hi"): -1, (1, "lo"): -1, (1, "hi"): 2}


def test_enclosure_refinement_decides_claims_within_2_pow_minus_200():
    """A claim closer to the irrational exact bound than the first enclosure's width: the
    method is re-run with more bits; the witness enclosure is refined too."""
    case = ([0], [1], [1], [0], 1, [0], [1])  # BN(x) = x/√2 on [0, 1]: hi = 1/√2
    g, box = net_of("bn", case)
    hi = exact_method_bounds(g, box, "ibp", bits=600).hi[0]
    assert hi.hi - hi.lo < fmpq(1, 2**500)
    for delta, want in ((fmpq(1, 2**200), SOUND), (-fmpq(1, 2**200), UNSOUND)):
        c = (hi.lo + hi.hi) / 2 + delta  # within 2^-200 of 1/√2
        res = audit_bounds(g, box, [Claim([None], [c], "float64")], "ibp", budget=0)
        (v,) = res.verdicts
        assert v.verdict == want and res.info["bits"] > 128
        if want == UNSOUND:
            check_witness(v, case, "bn", box)


# ----------------------------------------------------------------------------- inside_exact


@st.composite
def deep_affine(draw):
    n = draw(st.integers(2, 3))
    ops = []
    for k in range(draw(st.integers(3, 5))):
        if k % 2 == 0:
            W = [[draw(st.sampled_from([-1, 1, 2, "1/2"])) for _ in range(n)] for _ in range(n)]
            ops.append(Linear(LinearParams(W, [draw(small) for _ in range(n)])))
        else:
            ops.append(
                BatchNorm(
                    BatchNormParams(
                        [draw(small) for _ in range(n)],
                        [draw(st.sampled_from([1, 2, "1/4", 3])) for _ in range(n)],
                        [draw(st.sampled_from([-1, 1, "3/2", -2])) for _ in range(n)],
                        [draw(small) for _ in range(n)],
                        "1/100",
                    )
                )
            )
    lo = [draw(small) for _ in range(n)]
    hi = [a + draw(st.fractions(0, 2, max_denominator=8)) for a in lo]
    return Graph.sequential(n, ops), Box.from_values(lo, hi)


@given(deep_affine())
@settings(**SETTINGS)
def test_claims_between_the_true_extreme_and_the_ibp_bound_are_inside_exact(net):
    """The network is affine, so its true minimum over the box is attained at a corner (all
    corners evaluated exactly here). A claim strictly between the IBP bound and the true minimum
    is tighter than IBP yet valid: ``inside_exact``, never ``unsound``."""
    from exactbounds.algorithms.ibp import evaluate
    from exactbounds.numbers import RationalContext

    g, box = net
    exact = exact_method_bounds(g, box, "ibp")
    corners = [
        evaluate(g, list(x), RationalContext(128)) for x in itertools.product(*zip(box.lo, box.hi))
    ]
    i = 0
    true_lo = min(lower_end(y[i]) for y in corners)
    ibp_lo = upper_end(exact.lo[i])
    assume(ibp_lo < true_lo)
    c = (ibp_lo + true_lo) / 2
    n = len(exact.lo)
    res = audit_bounds(
        g, box, [Claim([c] + [None] * (n - 1), [None] * n, "float64")], "ibp", budget=60, n_random=4
    )
    (v,) = res.verdicts
    assert v.verdict == INSIDE_EXACT and v.witness is None
    assert v.ulps > 0 and lower_end(v.slack) < 0


def test_inside_exact_on_a_deep_hadamard_network():
    """x ↦ H(H(H(H x))) = 4x with H = [[1, 1], [1, -1]]: IBP gives [-16, 16] per output on
    [-1, 1]², the truth is [-4, 4]. Claims -10 (valid) are inside_exact; -3 is unsound."""
    H = [[1, 1], [1, -1]]
    g = Graph.sequential(2, [Linear(LinearParams(H)) for _ in range(4)])
    box = Box.from_values([-1, -1], [1, 1])
    res = audit_bounds(g, box, [Claim([-10, -3], [10, 3], "float32")], "ibp", budget=100)
    got = [(v.output, v.side, v.verdict) for v in res.verdicts]
    assert got == [
        (0, "lo", INSIDE_EXACT),
        (0, "hi", INSIDE_EXACT),
        (1, "lo", UNSOUND),
        (1, "hi", UNSOUND),
    ]
    for v in res.verdicts[2:]:
        x = [F(t) for t in v.witness.x]
        y1 = 4 * x[1]
        assert (y1 < -3) if v.side == "lo" else (y1 > 3)


# ----------------------------------------------------------------------------- intermediate


def test_intermediate_claims_get_witnesses_at_their_node():
    W = [[1, -2], ["1/2", 3]]
    g = Graph.sequential(
        2,
        [
            Linear(LinearParams(W, [0, 1])),
            BatchNorm(BatchNormParams([0, 0], [1, 3], [1, -1], [0, 0], "1/8")),
        ],
    )
    box = Box.from_values([0, -1], [1, 1])
    inner = exact_method_bounds(g, box, "ibp", intermediate=True)["layers[0]"]
    c = planted(inner, 1)
    c.node = "layers[0]"
    res = audit_bounds(g, box, [c], "ibp", budget=0, n_random=0)
    assert all(v.verdict == UNSOUND and v.node == "layers[0]" for v in res.verdicts)
    for v in res.verdicts:
        y = sum(F(w) * F(x) for w, x in zip(W[v.output], v.witness.x)) + (0, 1)[v.output]
        assert (y < F(v.claimed)) if v.side == "lo" else (y > F(v.claimed))
    with pytest.raises(ShapeError, match="no node named 'nope'"):
        audit_bounds(g, box, [Claim([0], [1], node="nope")], "ibp")


# ----------------------------------------------------------------------------- float simulation


@given(st.floats(-1e38, 1e38, allow_nan=False))
@settings(max_examples=60, deadline=None)
def test_round_nearest_matches_numpy(x):
    assert round_nearest(Q(x), "float32") == np.float32(x)
    assert round_nearest(Q(x), "float64") == x


def test_round_nearest_has_no_double_rounding():
    tie = fmpq(1) + fmpq(1, 2**24)  # halfway: ties to even -> 1
    assert round_nearest(tie, "float32") == np.float32(1)
    above = tie + fmpq(1, 2**80)  # float64 would round this to the tie
    assert round_nearest(above, "float32") == np.float32(1 + 2**-23)


def random_single_layer(rng, kind):
    n = rng.randint(1, 5)
    r32 = lambda a, b: float(np.float32(rng.uniform(a, b)))  # noqa: E731
    lo = [r32(-2, 2) for _ in range(n)]
    hi = [float(np.float32(a) + np.float32(rng.uniform(0, 2))) for a in lo]
    if kind == "bn":
        gamma = [r32(-3, 3) for _ in range(n)]
        gamma[0] = -abs(gamma[0])
        case = (
            [r32(-1, 1) for _ in range(n)],
            [r32(0, 3) for _ in range(n)],
            gamma,
            [r32(-1, 1) for _ in range(n)],
            1e-5,
            lo,
            hi,
        )
    else:
        m = rng.randint(1, 4)
        case = (
            [[r32(-2, 2) for _ in range(n)] for _ in range(m)],
            [r32(-1, 1) for _ in range(m)],
            lo,
            hi,
        )
    return case


SIM_COUNTS = {}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_simulate_finds_a_witness_for_every_unsound_side_and_nothing_else(dtype):
    """20 random single-layer networks (10 BN with a γ < 0 channel, 10 Linear): the naive float
    IBP claim is audited; a side is unsound exactly when the claim lies strictly inside the exact
    bound (the exact extreme for one affine layer), and every such side gets a witness."""
    rng = random.Random(6)
    counts = {"sides": 0, "inside": 0, UNSOUND: 0, SOUND: 0, INSIDE_EXACT: 0}
    for k in range(20):
        kind = "bn" if k % 2 == 0 else "linear"
        case = random_single_layer(rng, kind)
        g, box = net_of(kind, case)
        claim = simulate(g, box, "ibp", dtype)
        exact = exact_method_bounds(g, box, "ibp", bits=256)
        res = audit_bounds(g, box, [claim], "ibp", budget=0, n_random=0)
        for v in res.verdicts:
            ex = (exact.lo if v.side == "lo" else exact.hi)[v.output]
            inside = upper_end(ex) < v.claimed if v.side == "lo" else lower_end(ex) > v.claimed
            assert not (lower_end(ex) < v.claimed < upper_end(ex))
            counts["sides"] += 1
            counts["inside"] += inside
            counts[v.verdict] += 1
            assert (v.verdict == UNSOUND) == inside, (k, v)
            assert v.verdict != INSIDE_EXACT
            if inside:
                check_witness(v, case, kind, box)
    SIM_COUNTS[dtype] = counts
    print(f"\n--simulate {dtype} on 20 single-layer networks: {counts}")
    assert counts[UNSOUND] == counts["inside"]


def test_float_context_runs_ibp_in_float32():
    g, box = lin_net([[0.1, 0.2, 0.3]], [0.0], [0, 0, 0], [1, 1, 1])
    out = simulate(g, box, "ibp", "float32")
    s = np.float32(0.1) + np.float32(0.2)
    assert out.hi == [Q(float(np.float32(s + np.float32(0.3))))] and out.lo == [0]
    ctx = FloatContext("float32")
    assert ctx.sign(ctx.const("-1/3")) == -1 and isinstance(ctx.sqrt(2), np.float32)


# ----------------------------------------------------------------------------- verdict shape


def test_verdict_decide_and_json():
    v = Verdict.decide(3, "hi", fmpq(1), fmpq(3, 2), dtype="float32")
    assert v.verdict == INSIDE_EXACT and v.ulps == fmpq(1, 2) / fmpq(1, 2**23)
    d = v.to_json()
    assert {"output", "side", "verdict", "claimed", "exact", "ulps", "witness"} <= set(d)
    assert d["claimed"] == "1" and d["exact"] == "3/2" and d["witness"] is None
    with pytest.raises(ValueError, match="witness"):
        Verdict(0, "lo", UNSOUND, fmpq(0), fmpq(0), fmpq(0), fmpq(0), fmpq(0))
