"""Mathematical properties of the BatchNorm operator in every number context."""

from fractions import Fraction

import pytest
import sympy as sp
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exact_ref import F, bn_exact, inside, scale_times
from exactbounds import (
    AffineVec,
    BatchNormParams,
    Box,
    IntervalContext,
    RationalContext,
    SymbolicContext,
    aff_batchnorm,
    compute_offset,
    compute_scale,
    deriv2_batchnorm,
    deriv_batchnorm,
    evaluate_batchnorm,
    ibp_batchnorm,
    second_deriv_batchnorm,
)
from exactbounds.errors import InvalidModelError
from exactbounds.numbers import RInterval

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

small = st.fractions(min_value=-8, max_value=8, max_denominator=64)
f32 = st.floats(min_value=-50, max_value=50, width=32, allow_nan=False, allow_infinity=False)
value = st.one_of(small, f32.map(Fraction))
gamma_st = st.one_of(
    small.filter(lambda g: g > 0), small.filter(lambda g: g < 0), st.just(Fraction(0))
)
var_st = st.one_of(
    st.fractions(min_value=0, max_value=9, max_denominator=16),
    st.sampled_from([Fraction(0), Fraction(3), Fraction(8), Fraction(1, 4)]),
)
eps_st = st.one_of(
    st.sampled_from([Fraction(1), Fraction(1, 100000), Fraction(1e-5)]),
    st.fractions(min_value=Fraction(1, 1000), max_value=2, max_denominator=1000).filter(
        lambda e: e > 0
    ),
)
contexts = st.one_of(
    st.sampled_from([8, 53, 128]).map(RationalContext),
    st.sampled_from([24, 53, 113]).map(IntervalContext),
)


@st.composite
def bn_case(draw, max_c=4):
    C = draw(st.integers(1, max_c))
    g = [draw(gamma_st) for _ in range(C)]
    m = [draw(value) for _ in range(C)]
    v = [draw(var_st) for _ in range(C)]
    b = [draw(value) for _ in range(C)]
    eps = draw(eps_st)
    lo, hi = [], []
    for _ in range(C):
        a, c = draw(value), draw(value)
        if draw(st.booleans()):
            c = a  # degenerate box / ties
        lo.append(min(a, c))
        hi.append(max(a, c))
    ts = [draw(st.fractions(min_value=0, max_value=1, max_denominator=97)) for _ in range(C)]
    x = [l + t * (h - l) for l, h, t in zip(lo, hi, ts)]
    return dict(g=g, m=m, v=v, b=b, eps=eps, lo=lo, hi=hi, x=x)


def params_of(case, **kw):
    return BatchNormParams(case["m"], case["v"], case["g"], case["b"], case["eps"], **kw)


def ends(ctx, v):
    return F(ctx.lower(v)), F(ctx.upper(v))


@SETTINGS
@given(bn_case(), contexts)
def test_ibp_contains_exact_value_at_points_and_corners(case, ctx):
    P = params_of(case)
    out = ibp_batchnorm(P, Box.from_values(case["lo"], case["hi"]), ctx)
    for i in range(P.dim):
        lo, hi = ctx.lower(out.lo[i]), ctx.upper(out.hi[i])
        assert F(lo) <= F(hi)
        for x in (case["lo"][i], case["hi"][i], case["x"][i]):
            y = bn_exact(case["g"][i], case["m"][i], case["v"][i], case["b"][i], case["eps"], x)
            assert inside(y, F(lo), F(hi)), (i, x, y, lo, hi)


@SETTINGS
@given(bn_case(), contexts, st.sampled_from(["strict", "clamp"]))
def test_eps_zero_accepted_where_the_variance_is_positive(case, ctx, variance):
    """ε = 0 (PyTorch/ONNX allow it): accepted when σ² + ε > 0 for every channel, and IBP
    still encloses the exact value; refused with a zero variance (no value)."""
    case = dict(case, eps=Fraction(0))
    if any(v == 0 for v in case["v"]):
        with pytest.raises(InvalidModelError, match=r"\+ eps = 0"):
            params_of(case, variance=variance)
        return
    P = params_of(case, variance=variance)
    out = ibp_batchnorm(P, Box.from_values(case["lo"], case["hi"]), ctx)
    for i in range(P.dim):
        for x in (case["lo"][i], case["hi"][i], case["x"][i]):
            y = bn_exact(case["g"][i], case["m"][i], case["v"][i], case["b"][i], 0, x)
            assert inside(y, F(ctx.lower(out.lo[i])), F(ctx.upper(out.hi[i])))


def test_eps_zero_with_clamped_negative_variance_is_refused():
    with pytest.raises(InvalidModelError, match=r"running_var\[0\] \+ eps = 0"):
        BatchNormParams([0], [-1], [1], [0], 0, variance="clamp")


@SETTINGS
@given(bn_case(), contexts)
def test_evaluate_encloses_exact_value(case, ctx):
    P = params_of(case)
    ys = evaluate_batchnorm(P, case["x"], ctx)
    for i, y in enumerate(ys):
        ref = bn_exact(
            case["g"][i], case["m"][i], case["v"][i], case["b"][i], case["eps"], case["x"][i]
        )
        assert inside(ref, *ends(ctx, y))


@SETTINGS
@given(bn_case(), st.sampled_from([8, 32, 128]))
def test_rational_ibp_is_tight(case, bits):
    """Each end is γ(x−μ)/r + β with one enclosure r: relative width about 2^-bits."""
    ctx = RationalContext(bits)
    P = params_of(case)
    out = ibp_batchnorm(P, Box.from_values(case["lo"], case["hi"]), ctx)
    for i in range(P.dim):
        w = F(case["v"][i]) + F(case["eps"])
        xs = (case["lo"][i], case["hi"][i])[:: 1 if case["g"][i] >= 0 else -1]
        for end, x in zip((out.lo[i], out.hi[i]), xs):
            lo, hi = ends(ctx, end)
            core = abs(F(case["g"][i]) * (F(x) - F(case["m"][i])))
            assert hi - lo <= core / (0.99 * float(w) ** 0.5) * Fraction(2) ** (2 - bits)


def test_exact_when_square_root_is_rational():
    P = BatchNormParams(["1/2", 0], [3, "5/4"], [2, -3], [1, 0], 1)  # √4 = 2, √(9/4) = 3/2
    ctx = RationalContext()
    out = ibp_batchnorm(P, Box.from_values([0, -1], [1, 1]), ctx)
    assert all(isinstance(v, fmpq) for v in out.lo + out.hi)
    assert out.lo == [fmpq(1, 2), fmpq(-2)] and out.hi == [fmpq(3, 2), fmpq(2)]
    assert compute_scale(P, ctx) == [fmpq(1), fmpq(-2)]
    assert compute_offset(P, ctx) == [fmpq(1, 2), fmpq(0)]


@SETTINGS
@given(bn_case(max_c=3), contexts, st.integers(1, 3), st.data())
def test_aff_batchnorm_equals_bn_of_the_affine_form(case, ctx, n, data):
    P = params_of(case)
    C = P.dim
    A = [[data.draw(small) for _ in range(n)] for _ in range(C)]
    c = [data.draw(small) for _ in range(C)]
    x = [data.draw(small) for _ in range(n)]
    aff = aff_batchnorm(P, AffineVec(A, c), ctx)
    assert (aff.out_dim, aff.in_dim) == (C, n)
    got = aff.evaluate(x, ctx)
    for i in range(C):
        pre = sum((A[i][j] * x[j] for j in range(n)), c[i])
        ref = bn_exact(case["g"][i], case["m"][i], case["v"][i], case["b"][i], case["eps"], pre)
        assert inside(ref, *ends(ctx, got[i]))


@SETTINGS
@given(bn_case(), contexts, st.data())
def test_deriv_and_second_deriv_enclose_chain_rule(case, ctx, data):
    """d/dt BN(x(t)) = scale·x'(t), d²/dt² BN(x(t)) = scale·x''(t): for x' (x'') anywhere in the
    given box, the propagated box contains scale·x' (scale·x'')."""
    P = params_of(case)
    box = Box.from_values(case["lo"], case["hi"])
    for rule in (deriv_batchnorm, second_deriv_batchnorm):
        out = rule(P, box, ctx)
        for i in range(P.dim):
            d = data.draw(st.sampled_from([case["lo"][i], case["hi"][i], case["x"][i]]))
            ref = scale_times(case["g"][i], case["v"][i], case["eps"], d)
            assert inside(ref, F(ctx.lower(out.lo[i])), F(ctx.upper(out.hi[i])))


def test_seed_second_derivative_rule_misses_curvature():
    """Along x(t) = t², d²/dt² BN(x(t)) = 2·scale ≠ 0: the seed's deriv2 box [0, 0] misses it,
    second_deriv_batchnorm contains it. The curve's value comes from the operator itself."""
    t = sp.Symbol("t", real=True)
    P = BatchNormParams([0], [1], [3], [0], 1)  # scale = 3/√2
    sym = SymbolicContext()
    u = evaluate_batchnorm(P, [t**2], sym)[0]
    u2 = sp.diff(u, t, 2)
    assert sp.simplify(u2 - 6 / sp.sqrt(2)) == 0
    d2 = Box.from_values([2], [2])  # x''(t) = 2 exactly
    ctx = RationalContext()
    seed = deriv2_batchnorm(P, d2, ctx)
    assert seed.lo == seed.hi == [0]
    assert not inside(scale_times(3, 1, 1, 2), F(seed.lo[0]), F(seed.hi[0]))
    chain = second_deriv_batchnorm(P, d2, ctx)
    assert inside(scale_times(3, 1, 1, 2), F(ctx.lower(chain.lo[0])), F(ctx.upper(chain.hi[0])))


@settings(max_examples=15, deadline=None)
@given(bn_case(max_c=2))
def test_symbolic_context_matches_closed_forms(case):
    P = params_of(case)
    ctx = SymbolicContext()
    X = sp.symbols("x0:2", real=True)[: P.dim]
    ys = evaluate_batchnorm(P, list(X), ctx)
    sc, off = compute_scale(P, ctx), compute_offset(P, ctx)
    for i, y in enumerate(ys):
        g, m, v, b = (sp.Rational(str(case[k][i])) for k in "gmvb")
        w = v + sp.Rational(str(case["eps"]))
        assert sp.simplify(y - (g * (X[i] - m) / sp.sqrt(w) + b)) == 0
        assert sp.simplify(sc[i] * X[i] + off[i] - y) == 0
    box = ibp_batchnorm(P, Box.from_values(case["lo"], case["hi"]), ctx)
    for i in range(P.dim):
        assert (box.hi[i] - box.lo[i]).is_nonnegative
        for x in (case["lo"][i], case["hi"][i], case["x"][i]):
            y = ys[i].subs(X[i], sp.Rational(str(x)))  # the exact value, exact sqrt
            assert (y - box.lo[i]).is_nonnegative and (box.hi[i] - y).is_nonnegative


def test_symbolic_affine_composition_2x3():
    A = sp.Matrix(2, 3, lambda i, j: sp.Symbol(f"a{i}{j}", real=True))
    c = sp.symbols("c0:2", real=True)
    x = sp.symbols("x0:3", real=True)
    g = sp.symbols("g0:2", real=True)
    m = sp.symbols("m0:2", real=True)
    b = sp.symbols("b0:2", real=True)
    v = sp.symbols("v0:2", nonnegative=True)
    e = sp.Symbol("e", positive=True)
    P = BatchNormParams(m, v, g, b, e)
    ctx = SymbolicContext()
    aff = aff_batchnorm(P, AffineVec(A.tolist(), c), ctx)
    got = aff.evaluate(x, ctx)
    for i in range(2):
        pre = sum(A[i, j] * x[j] for j in range(3)) + c[i]
        assert sp.simplify(got[i] - (g[i] * (pre - m[i]) / sp.sqrt(v[i] + e) + b[i])) == 0


def test_gamma_sign_cases_and_zero():
    P = BatchNormParams([0, 0, 0], [0, 0, 0], [2, -2, 0], [1, 1, 1], 1)
    out = ibp_batchnorm(P, Box.from_values([-1, -1, -1], [3, 3, 3]))
    assert out.lo == [-1, -5, 1] and out.hi == [7, 3, 1]
    d = deriv_batchnorm(P, Box.from_values([-1, -1, -1], [3, 3, 3]))
    assert d.lo == [-2, -6, 0] and d.hi == [6, 2, 0]


def test_symbolic_gamma_of_unknown_sign_needs_case_split():
    from exactbounds.errors import NeedsCaseSplit

    g = sp.Symbol("g", real=True)
    P = BatchNormParams([0], [1], [g], [0], 1)
    with pytest.raises(NeedsCaseSplit) as e:
        ibp_batchnorm(P, Box([0], [1]), SymbolicContext())
    assert e.value.expr == g
    pos = ibp_batchnorm(P, Box([0], [1]), SymbolicContext({g: 1}))
    neg = ibp_batchnorm(P, Box([0], [1]), SymbolicContext({g: -1}))
    assert pos.lo == neg.hi and pos.hi == neg.lo


def test_channel_layout_c_h_w():
    """(C, H, W): every entry of channel c uses channel c's statistics."""
    base = BatchNormParams([1, -1], [3, 0], [2, -1], [0, "1/2"], 1)
    P = base.with_shape((2, 2, 3))
    assert P.dim == 12
    lo = [Fraction(k, 3) - 1 for k in range(12)]
    hi = [v + Fraction(1, 2) for v in lo]
    out = ibp_batchnorm(P, Box.from_values(lo, hi, shape=(2, 2, 3)))
    assert out.shape == (2, 2, 3)
    for k in range(12):
        c = k // 6
        one = ibp_batchnorm(
            base,
            Box.from_values(
                [lo[k] if i == c else 0 for i in range(2)],
                [hi[k] if i == c else 0 for i in range(2)],
            ),
        )
        assert (out.lo[k], out.hi[k]) == (one.lo[c], one.hi[c])


def test_variance_clamp_uses_max_zero():
    P = BatchNormParams([0], ["-0.5"], [1], [0], "0.25", variance="clamp")
    assert P.running_var == (0,)
    assert ibp_batchnorm(P, Box.from_values([1], [1])).lo == [2]  # 1/√(0 + 1/4)


def test_interval_context_brackets_rational_result():
    P = BatchNormParams([0.1, 2], [0.3, 7], [1.5, -0.25], [0, 1], 1e-5)
    box = Box.from_values([-1, 0], [1, 2])
    r = ibp_batchnorm(P, box, RationalContext(200))
    i = ibp_batchnorm(P, box, IntervalContext(53))
    ctx_i, ctx_r = IntervalContext(53), RationalContext()
    assert sum(isinstance(a, RInterval) for a in r.lo + r.hi) == 3  # x = μ gives exactly β
    for a, b in zip(r.lo + r.hi, i.lo + i.hi):
        # both enclose the same exact real, so they intersect
        assert ctx_r.lower(a) <= ctx_i.upper(b) and ctx_i.lower(b) <= ctx_r.upper(a)
