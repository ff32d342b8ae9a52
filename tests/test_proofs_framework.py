"""The proof-obligation framework itself: the real obligations come out as expected, a
deliberately broken operator injected through ``Operators.replace`` is refuted with a rational
counterexample that re-checks, and what sympy cannot decide is ``unknown``, never ``proved``."""

import pytest
import sympy as sp
from flint import fmpq

from exactbounds import RationalContext, to_exact
from exactbounds.core import AffineVec, Box
from exactbounds.errors import InvalidBoxError
from exactbounds.numbers import RInterval, sqrt_enclosure
from proofs import batchnorm as pb
from proofs import rounding as pr
from proofs.exact import exact_sign
from proofs.framework import (
    CHECKED,
    ERROR,
    PROVED,
    REFUTED,
    UNKNOWN,
    Eq,
    Ge,
    Obligation,
    Vars,
    case_substitution,
    default_ops,
    satisfies,
)
from proofs.runner import OBLIGATIONS


def _consts(params, ctx):
    per = params.dim // params.channels
    return [params.channel_consts(ctx)[i // per] for i in range(params.dim)]


# -- deliberately broken copies of the operators (same signatures, same context API) ---------


def ibp_gamma_neg_swapped(params, box, ctx):
    """ibp_batchnorm with the γ < 0 branch swapped: always [BN(lo), BN(hi)]."""
    lo, hi = [], []
    for a, b_, (g, m, b, r) in zip(box.lo, box.hi, _consts(params, ctx)):
        ya = g * (ctx.coerce(a) - m) / r + b
        yb = g * (ctx.coerce(b_) - m) / r + b
        if ctx.sign(g) >= 0:
            lo.append(ya)
            hi.append(yb)
        else:  # deliberate bug: the γ < 0 branch should be [yb, ya]
            lo.append(ya)
            hi.append(yb)
    return Box(lo, hi, box.shape)


def aff_offset_dropped(params, aff, ctx):
    """aff_batchnorm without the offset: c' = scale·c."""
    A, c = [], []
    for row, ci, (g, _m, _b, r) in zip(aff.A, aff.c, _consts(params, ctx)):
        A.append([g * ctx.coerce(a) / r for a in row])
        c.append(g * ctx.coerce(ci) / r)
    return AffineVec(A, c, aff.in_dim)


def compute_scale_squared(params, ctx):
    """compute_scale returning scale²."""
    return [(g / r) * (g / r) for g, _, _, r in params.channel_consts(ctx)]


def deriv_scale_squared(params, dbox, ctx):
    """deriv_batchnorm multiplying by scale² (ends still ordered: scale² >= 0)."""
    lo, hi = [], []
    for a, b_, (g, _, _, r) in zip(dbox.lo, dbox.hi, _consts(params, ctx)):
        s2 = (g / r) * (g / r)
        lo.append(s2 * ctx.coerce(a))
        hi.append(s2 * ctx.coerce(b_))
    return Box(lo, hi, dbox.shape)


def _refuted_and_rechecks(ob, broken, package_passes=True):
    res = ob.check(broken)
    assert res.status == REFUTED, (res.status, res.detail)
    cex = res.counterexample
    assert cex and all(sp.Rational(v).is_Rational for v in cex.values())
    label = res.goal
    assert label and ob.recheck(cex, label, broken)  # the broken code fails there, exactly
    if package_passes:  # and the package's code does not
        assert not ob.recheck(cex, label, default_ops())
    return res, cex


def test_ibp_gamma_negative_branch_swapped_is_refuted():
    broken = default_ops().replace(ibp_batchnorm=ibp_gamma_neg_swapped)
    for ob in (pb.ibp_batchnorm_sound, pb.ibp_batchnorm_returns_box):
        res, cex = _refuted_and_rechecks(ob, broken)
        assert "< 0" in res.detail  # found in a γ < 0 case
        assert any(sp.Rational(cex[f"gamma{c}"]) < 0 for c in range(2) if f"gamma{c}" in cex)


def test_ibp_swapped_counterexample_rechecks_in_rational_context():
    """Independent re-check with the exact rational context: at the counterexample the exact
    BN(x) lies strictly outside [BN(lo), BN(hi)] (what the broken rule returns), and the
    rational context's Box even refuses the broken result as empty."""
    broken = default_ops().replace(ibp_batchnorm=ibp_gamma_neg_swapped)
    cex = pb.ibp_batchnorm_sound.check(broken).counterexample
    v = Vars(cex)
    params, _ = pb.bn_params(default_ops(), v, shape=(2, 2))
    lo, x, hi = ([to_exact(t) for t in row] for row in v.interval("x", params.dim))
    ctx = RationalContext(200)
    ev = default_ops().evaluate_batchnorm
    y_lo, y, y_hi = ev(params, lo, ctx), ev(params, x, ctx), ev(params, hi, ctx)
    assert any(
        ctx.upper(b) < ctx.lower(a) or ctx.lower(b) > ctx.upper(c) for a, b, c in zip(y_lo, y, y_hi)
    )
    with pytest.raises(InvalidBoxError):
        ibp_gamma_neg_swapped(params, Box(lo, hi, params.shape), ctx)


def test_aff_offset_dropped_is_refuted():
    broken = default_ops().replace(aff_batchnorm=aff_offset_dropped)
    _refuted_and_rechecks(pb.aff_batchnorm_sound, broken)


def test_scale_squared_is_refuted():
    broken = default_ops().replace(compute_scale=compute_scale_squared)
    _refuted_and_rechecks(pb.compute_scale_offset_closed_form, broken)
    _refuted_and_rechecks(pb.batchnorm_affine_form, broken)
    broken = default_ops().replace(deriv_batchnorm=deriv_scale_squared)
    _refuted_and_rechecks(pb.deriv_batchnorm_sound, broken)


def test_seed_rule_is_refuted_and_second_deriv_proved():
    res, cex = _refuted_and_rechecks(
        pb.deriv2_batchnorm_propagation, default_ops(), package_passes=False
    )
    g = sp.Rational(cex["gamma0"])
    x2 = sp.Rational(cex["d2xlo0"]) + sp.Rational(cex.get("d2xu0", 0))
    assert g != 0 and x2 != 0  # scale·x'' ≠ 0 = the seed's answer
    assert pb.second_deriv_batchnorm_sound.check().status == PROVED


def test_layer_with_the_seed_deriv2_rule_is_refuted():
    from exactbounds.operators.batchnorm import BatchNorm, deriv2_batchnorm

    class SeedRuleLayer(BatchNorm):
        def deriv2(self, ctx, d2box):
            return deriv2_batchnorm(self.params, d2box, ctx)

    res, _ = _refuted_and_rechecks(
        pb.batchnorm_layer_sound, default_ops().replace(BatchNorm=SeedRuleLayer)
    )
    assert "second_deriv_batchnorm_sound" in res.detail


def test_every_registered_obligation_has_its_expected_status():
    results = [ob.check() for ob in OBLIGATIONS]
    assert all(r.ok for r in results), [(r.name, r.status, r.detail) for r in results if not r.ok]
    by = {r.name: r for r in results}
    for name in (
        "ibp_batchnorm_returns_box",
        "aff_batchnorm_returns_affine",
        "aff_batchnorm_preserves_structure",
        "deriv_batchnorm_returns_box",
        "deriv2_batchnorm_is_zero",
        "ibp_batchnorm_sound",
        "aff_batchnorm_sound",
        "deriv_batchnorm_sound",
        "second_deriv_batchnorm_sound",
        "compute_scale_offset_closed_form",
        "batchnorm_affine_form",
        "batchnorm_layer_sound",
        "ibp_batchnorm_sound_clamp",
    ):
        assert by[name].status == PROVED
    assert by["ibp_batchnorm_sound"].cases == 9  # γ0, γ1 each > 0, = 0, < 0
    assert by["deriv2_batchnorm_propagation"].status == REFUTED
    assert by["sqrt_enclosure_sound"].status == CHECKED and by["sqrt_enclosure_sound"].cases >= 1000


# -- unknown is never proved ------------------------------------------------------------------


def test_identity_sympy_cannot_decide_is_unknown():
    def nested_radical(ops, ctx, v):
        """√(y + 1 + 2√y) = √y + 1 for y >= 0: true, but sympy does not denest it."""
        y = v.nonneg("y")
        return [Eq(sp.sqrt(y + 1 + 2 * sp.sqrt(y)), sp.sqrt(y) + 1, "denest")]

    res = Obligation(nested_radical, samples=40).check()
    assert res.status == UNKNOWN and res.counterexample is None

    def undefined_function(ops, ctx, v):
        """f(x) = f(y) for an undefined f: neither provable nor checkable at points."""
        f = sp.Function("f")
        return [Eq(f(v.real("x")), f(v.real("y")), "f")]

    assert Obligation(undefined_function, samples=40).check().status == UNKNOWN


def test_false_goal_is_refuted_with_rational_point():
    def square_bigger(ops, ctx, v):
        """x² >= x for every real x (false on (0, 1))."""
        x = v.real("x")
        return [Ge(x * x, x, "x² >= x")]

    res = Obligation(square_bigger).check()
    assert res.status == REFUTED
    x = sp.Rational(res.counterexample["x"])
    assert 0 < x < 1


# -- case splits ------------------------------------------------------------------------------


def _branchy(expr_of):
    """An obligation whose 'operator' branches through ctx.sign(expr_of(symbols)) and returns
    |e| as e or -e; the goal |e| >= 0 needs the case fact."""

    def build(ops, ctx, v):
        a, b, p = v.real("a"), v.real("b"), v.pos("p")
        e = expr_of(a, b, p)
        s = ctx.sign(e)
        return [Ge(e if s >= 0 else -e, 0, "|e| >= 0")]

    return Obligation(build)


@pytest.mark.parametrize(
    "expr_of",
    [
        lambda a, b, p: a,  # a symbol
        lambda a, b, p: a * p,  # factor of known sign
        lambda a, b, p: -3 * a / sp.sqrt(p + 1),
        lambda a, b, p: a - b,  # linear: solved for a
        lambda a, b, p: 2 * p * b + a - 7,
    ],
)
def test_case_split_proves_every_branch(expr_of):
    res = _branchy(expr_of).check()
    assert res.status == PROVED and res.cases == 3, res.case_list


def test_case_split_nonlinear_fact_unused_is_unknown_not_proved():
    res = _branchy(lambda a, b, p: a * b - 1).check()
    assert res.status == UNKNOWN


def test_nested_splits_compose_their_substitutions():
    def build(ops, ctx, v):
        """a > b and b > 0 imply a > 0 (needs both facts, the first rewritten by the second)."""
        a, b = v.real("a"), v.real("b")
        if ctx.sign(a - b) > 0 and ctx.sign(b) > 0:
            return [Ge(a, 0, "a > 0")]
        return [Eq(0, 0, "trivial")]

    res = Obligation(build).check()
    assert res.status == PROVED and res.cases == 5, res.case_list
    assert res.hypotheses == ["a real", "b real"]


def test_vacuous_case_of_a_nonnegative_symbol():
    def build(ops, ctx, v):
        d = v.nonneg("d")
        s = ctx.sign(d)  # sympy cannot decide d > 0 vs d = 0
        return [Ge(d if s >= 0 else d - 1, 0, "d >= 0")]

    res = Obligation(build).check()
    assert res.status == PROVED and res.cases == 3
    assert [c["detail"] for c in res.case_list].count("vacuous case") == 1


def test_case_substitution_contradiction_and_shapes():
    d = sp.Symbol("d", real=True, nonnegative=True)
    assert case_substitution(d, -1, {}) is False
    g = sp.Symbol("g", real=True)
    sub = {}
    assert case_substitution(g, -1, sub) and sub[g].is_negative
    sub = {}
    assert case_substitution(g, 0, sub) and sub[g] == 0


def test_operator_crash_is_error():
    def crash(params, box, ctx):
        raise TypeError("boom")

    res = pb.ibp_batchnorm_sound.check(default_ops().replace(ibp_batchnorm=crash))
    assert res.status == ERROR and "boom" in res.detail


def test_replace_rejects_unknown_operator():
    with pytest.raises(KeyError):
        default_ops().replace(ibp_batchnrom=lambda *a: None)


def test_vars_point_mode_checks_assumptions():
    with pytest.raises(ValueError):
        Vars({"eps": "-1"}).pos("eps")
    assert Vars({"x": "3/7"}).real("x") == sp.Rational(3, 7)
    assert satisfies(sp.Symbol("p", positive=True), 1) and not satisfies(
        sp.Symbol("p", positive=True), 0
    )


# -- exact signs ------------------------------------------------------------------------------


def test_exact_sign():
    r2, r3 = sp.sqrt(2), sp.sqrt(3)
    assert exact_sign(r2 * r3 - sp.sqrt(6)) == 0
    assert exact_sign(r2 + r3 - sp.sqrt(5 + 2 * sp.sqrt(6))) == 0
    assert exact_sign(r2 - sp.Rational(141421356237, 10**11)) == 1
    assert exact_sign(r2 - sp.Rational(141421356238, 10**11)) == -1
    # differs from 0 by about 1e-40: floats cannot tell, the refinement does
    assert exact_sign(sp.sqrt(sp.Integer(10) ** 80 + 1) - sp.Integer(10) ** 40) == 1
    assert exact_sign(sp.Max(r2, sp.Rational(3, 2)) - 1) == 1
    assert exact_sign(sp.Function("f")(1)) is None
    assert exact_sign(sp.Symbol("x")) is None


# -- rounding obligations ---------------------------------------------------------------------


def test_broken_sqrt_enclosure_is_refuted():
    def too_narrow(v, bits):
        r = sqrt_enclosure(v, bits)
        return RInterval(r.lo, r.lo) if isinstance(r, RInterval) else r

    res = pr.sqrt_enclosure_sound.check(default_ops().replace(sqrt_enclosure=too_narrow))
    assert res.status == REFUTED
    v = to_exact(res.counterexample["v"])
    lo = too_narrow(v, int(res.counterexample["bits"]))
    lo = lo.hi if isinstance(lo, RInterval) else lo
    assert lo * lo < v  # really misses √v

    def too_wide(v, bits):
        r = sqrt_enclosure(v, bits)
        return RInterval(r.lo, 2 * r.hi) if isinstance(r, RInterval) else r

    res = pr.sqrt_enclosure_sound.check(default_ops().replace(sqrt_enclosure=too_wide))
    assert res.status == REFUTED and "relative width" in res.detail


def test_rounding_sample_is_deterministic_and_varied():
    import random

    a = pr.random_rationals(random.Random(1), 300)
    assert a == pr.random_rationals(random.Random(1), 300)
    assert min(a) == 0 and max(a) > 2**200 and any(0 < v < fmpq(1, 2**200) for v in a)
    assert any(isinstance(sqrt_enclosure(v, 53), fmpq) for v in a[5:])  # exact squares


def test_broken_crown_batchnorm_step_is_refuted():
    """The obligation covers the BatchNorm step CROWN and forward affine call: an enclosure
    that drops the offset, or one whose radius is dropped, is refuted with an input."""
    from exactbounds.operators.batchnorm import BatchNorm

    class NoOffset(BatchNorm):
        def linear_enclosure(self, ctx):
            Ws, b, Wr, br = super().linear_enclosure(ctx)
            return Ws, b * 0, Wr, None if br is None else br * 0

    class NoRadius(BatchNorm):
        def linear_enclosure(self, ctx):
            Ws, b, _, _ = super().linear_enclosure(ctx)
            return Ws, b, None, None

    assert pr.batchnorm_crown_step_sound.check().status == "checked"
    for broken in (NoOffset, NoRadius):
        res = pr.batchnorm_crown_step_sound.check(default_ops().replace(BatchNorm=broken))
        assert res.status == "refuted", broken.__name__
        assert res.counterexample and res.detail
