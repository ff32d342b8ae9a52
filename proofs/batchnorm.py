"""BatchNorm obligations: TorchLean's four theorems on ``NN.MLTheory.CROWN.Operators.Batchnorm``
and the soundness theorems an oracle needs, each run on the package's own operators.

The seed's theorems are type-level in Lean (``∃ lo hi, ibpBatchnorm params xB = {lo, hi}``: the
result *is* a Box of ``params.dim`` entries). Replayed here they state that content (the
shapes) and the property an oracle relies on (``lo <= hi`` for a valid input box).

Symbols: per channel ``gamma_c`` (real), ``mu_c`` (real), ``beta_c`` (real), ``var_c >= 0``;
``eps > 0``. A box is ``hi = lo + d`` (``d >= 0``); a point of it ``x = lo + u``,
``hi = x + w`` (``u, w >= 0``). The closed form ``γ(x−μ)/√(σ²+ε) + β`` written below is the
theorem statement's, not a copy of the operator.
"""

import sympy

from .framework import PROVED, REFUTED, Eq, Ge, Holds, obligation

NS = "NN.MLTheory.CROWN.Operators.Batchnorm.Theorems."
REGISTRY = []


def _ob(lean=None, expected=PROVED):
    return obligation(lean=lean, expected=expected, registry=REGISTRY)


def bn_params(ops, v, channels=2, shape=None, variance="strict"):
    """Symbolic ``BatchNormParams`` and the symbols ``(gamma, mu, beta, var, eps)``."""
    g, m, b = v.reals("gamma", channels), v.reals("mu", channels), v.reals("beta", channels)
    var = (
        [v.nonneg(f"var{c}") for c in range(channels)]
        if variance == "strict"
        else v.reals("var", channels)
    )
    eps = v.pos("eps")
    params = ops.BatchNormParams(m, var, g, b, eps, shape=shape, variance=variance)
    return params, (g, m, b, var, eps)


def closed_form(x, g, m, b, var, eps):
    """The seed's ``y = γ(x − μ)/√(σ² + ε) + β``."""
    return g * (x - m) / sympy.sqrt(var + eps) + b


def _aff_cases(ops, ctx, v, shapes, in_dims):
    """``(params, aff, aff_batchnorm(params, aff), where)`` for symbolic affine forms of every
    input size in ``in_dims`` into a BatchNorm of every layout in ``shapes``."""
    for shape in shapes:
        params, _ = bn_params(ops, v, channels=shape[0], shape=shape)
        for n in in_dims:
            A = [[v.real(f"A{i}_{j}") for j in range(n)] for i in range(params.dim)]
            aff = ops.AffineVec(A, v.reals("c", params.dim))
            yield params, aff, ops.aff_batchnorm(params, aff, ctx), {"inDim": n, "shape": shape}


def _box_goals(out, ops, dim, shape):
    goals = [
        Holds(
            isinstance(out, ops.Box) and out.dim == dim and out.shape == shape,
            "result is a Box of params.dim entries",
            {"dim": dim, "shape": shape},
        )
    ]
    goals += [Ge(out.hi[i], out.lo[i], f"lo[{i}] <= hi[{i}]") for i in range(dim)]
    return goals


# -- the seed's theorems ---------------------------------------------------------------------


@_ob(lean=NS + "ibp_batchnorm_returns_box")
def ibp_batchnorm_returns_box(ops, ctx, v):
    """theorem ibp_batchnorm_returns_box (params : BatchNormParams α)
        (xB : Box α (.dim params.dim .scalar)) :
        ∃ lo hi, ibpBatchnorm params xB = { lo := lo, hi := hi }
    Replayed: for xB with lo <= hi, the result is a Box of params.dim entries with lo <= hi."""
    params, _ = bn_params(ops, v)
    lo, _, hi = v.interval("x", params.dim, point=False)
    out = ops.ibp_batchnorm(params, ops.Box(lo, hi), ctx)
    return _box_goals(out, ops, params.dim, params.shape)


@_ob(lean=NS + "aff_batchnorm_returns_affine")
def aff_batchnorm_returns_affine(ops, ctx, v):
    """theorem aff_batchnorm_returns_affine {inDim} (params) (aff : AffineVec α inDim params.dim) :
        ∃ A' c', (affBatchnorm params aff).A = A' ∧ (affBatchnorm params aff).c = c'
    with A' : Tensor (dim × inDim), c' : Tensor dim. Replayed for inDim = 1, 2, 3 and
    shapes (1,), (2,), (2, 2): A' has params.dim rows of inDim entries, c' params.dim."""
    goals = []
    for params, _, out, w in _aff_cases(ops, ctx, v, ((1,), (2,), (2, 2)), (1, 2, 3)):
        goals.append(Holds(isinstance(out, ops.AffineVec), f"AffineVec {w}", w))
        goals.append(
            Holds(
                len(out.A) == params.dim and all(len(r) == w["inDim"] for r in out.A),
                f"A' shape {w}",
                w,
            )
        )
        goals.append(Holds(len(out.c) == params.dim, f"c' length {w}", w))
    return goals


@_ob(lean=NS + "aff_batchnorm_returns_affine (its docstring)")
def aff_batchnorm_preserves_structure(ops, ctx, v):
    """/-- BatchNorm affine transformation preserves structure. -/
    affBatchnorm : AffineVec α inDim params.dim → AffineVec α inDim params.dim
    Replayed: in_dim and out_dim of the result equal those of the input form, and every entry
    of A' and c' is an element of the context (a sympy expression)."""
    goals = []
    for params, aff, out, w in _aff_cases(ops, ctx, v, ((1,), (3,), (2, 3)), (1, 2)):
        n = w["inDim"]
        goals.append(Holds(out.in_dim == aff.in_dim == n, f"in_dim {w}", w))
        goals.append(Holds(out.out_dim == aff.out_dim == params.dim, f"out_dim {w}", w))
        goals.append(
            Holds(
                all(isinstance(a, sympy.Basic) for r in out.A for a in r)
                and all(isinstance(a, sympy.Basic) for a in out.c),
                f"entries in the context {w}",
                w,
            )
        )
    return goals


@_ob(lean=NS + "deriv_batchnorm_returns_box")
def deriv_batchnorm_returns_box(ops, ctx, v):
    """theorem deriv_batchnorm_returns_box (params) (dB : Box α (.dim params.dim .scalar)) :
        ∃ lo hi, derivBatchnorm params dB = { lo := lo, hi := hi }
    Replayed: for dB with lo <= hi, the result is a Box of params.dim entries with lo <= hi."""
    params, _ = bn_params(ops, v)
    lo, _, hi = v.interval("dx", params.dim, point=False)
    out = ops.deriv_batchnorm(params, ops.Box(lo, hi), ctx)
    return _box_goals(out, ops, params.dim, params.shape)


@_ob(lean=NS + "deriv2_batchnorm_is_zero")
def deriv2_batchnorm_is_zero(ops, ctx, v):
    """theorem deriv2_batchnorm_is_zero (params) (d2B : Box α (.dim params.dim .scalar)) :
        let result := deriv2Batchnorm params d2B; result.lo = result.hi
    Replayed with the docstring's content: result.lo = result.hi = 0 for every d2B."""
    params, _ = bn_params(ops, v)
    lo, _, hi = v.interval("d2x", params.dim, point=False)
    out = ops.deriv2_batchnorm(params, ops.Box(lo, hi), ctx)
    goals = [Holds(out.dim == params.dim, "result has params.dim entries", {"dim": params.dim})]
    for i in range(params.dim):
        goals += [Eq(out.lo[i], out.hi[i], f"lo[{i}] = hi[{i}]"), Eq(out.lo[i], 0, f"lo[{i}] = 0")]
    return goals


# -- soundness -------------------------------------------------------------------------------


def _ibp_sound(ops, ctx, v, variance):
    params, _ = bn_params(ops, v, shape=(2, 2), variance=variance)
    lo, x, hi = v.interval("x", params.dim)
    y = ops.evaluate_batchnorm(params, x, ctx)
    out = ops.ibp_batchnorm(params, ops.Box(lo, hi, params.shape), ctx)
    goals = []
    for i in range(params.dim):
        goals += [
            Ge(y[i], out.lo[i], f"lo[{i}] <= BN(x)[{i}]"),
            Ge(out.hi[i], y[i], f"BN(x)[{i}] <= hi[{i}]"),
        ]
    return goals


@_ob()
def ibp_batchnorm_sound(ops, ctx, v):
    """∀ x ∈ xB, evaluate_batchnorm params x ∈ ibpBatchnorm params xB
    (shape (2, 2): two channels, two entries each; lo <= x <= hi)."""
    return _ibp_sound(ops, ctx, v, "strict")


@_ob()
def ibp_batchnorm_sound_clamp(ops, ctx, v):
    """∀ x ∈ xB, evaluate_batchnorm params x ∈ ibpBatchnorm params xB
    with variance="clamp" (σ² any real, the layer uses max(σ², 0)); shape (2, 2)."""
    return _ibp_sound(ops, ctx, v, "clamp")


@_ob()
def aff_batchnorm_sound(ops, ctx, v):
    """∀ A c x, (affBatchnorm params ⟨A, c⟩).eval x = BN(A·x + c)
    (A symbolic 2×3, c and x symbolic; BN = evaluate_batchnorm)."""
    params, _ = bn_params(ops, v)
    A = [[v.real(f"A{i}_{j}") for j in range(3)] for i in range(params.dim)]
    c, x = v.reals("c", params.dim), v.reals("x", 3)
    prev = ops.AffineVec(A, c)
    out = ops.aff_batchnorm(params, prev, ctx)
    lhs = out.evaluate(x, ctx)
    rhs = ops.evaluate_batchnorm(params, prev.evaluate(x, ctx), ctx)
    goals = [Holds(out.in_dim == 3 and out.out_dim == params.dim, "shape", {"inDim": 3})]
    goals += [Eq(lhs[i], rhs[i], f"aff(x)[{i}] = BN(A·x+c)[{i}]") for i in range(params.dim)]
    return goals


def _curve_derivative(ops, ctx, v, params, order):
    """d^order/dt^order BN(x(t)) by sympy's chain rule on evaluate_batchnorm, with the
    derivatives of the curve x(t) replaced by the point of the given box (``lo, p, hi``)."""
    t = sympy.Symbol("t", real=True)
    curve = [sympy.Function(f"x{i}")(t) for i in range(params.dim)]
    ys = ops.evaluate_batchnorm(params, curve, ctx)
    lo, p, hi = v.interval("d2x" if order == 2 else "dx", params.dim)
    out = []
    for i, y in enumerate(ys):
        e = sympy.diff(y, t, order)
        for k in range(order, 0, -1):
            e = e.subs(
                sympy.Derivative(curve[i], (t, k)), p[i] if k == order else v.real(f"x{i}_d{k}")
            )
        out.append(e.subs(curve[i], v.real(f"x{i}_t")))
    return lo, out, hi


def _encloses(out, vals, what):
    goals = []
    for i, d in enumerate(vals):
        goals += [
            Ge(d, out.lo[i], f"lo[{i}] <= {what}[{i}]"),
            Ge(out.hi[i], d, f"{what}[{i}] <= hi[{i}]"),
        ]
    return goals


@_ob()
def deriv_batchnorm_sound(ops, ctx, v):
    """∀ curve x(t) with x'(t) ∈ dB, d/dt BN(x(t)) ∈ derivBatchnorm params dB
    (the chain rule is sympy's, applied to evaluate_batchnorm)."""
    params, _ = bn_params(ops, v)
    lo, d, hi = _curve_derivative(ops, ctx, v, params, 1)
    out = ops.deriv_batchnorm(params, ops.Box(lo, hi), ctx)
    return _encloses(out, d, "d/dt BN(x(t))")


@_ob()
def second_deriv_batchnorm_sound(ops, ctx, v):
    """∀ curve x(t) with x''(t) ∈ d2B, d²/dt² BN(x(t)) ∈ second_deriv_batchnorm params d2B
    (the propagation rule the package uses for second derivatives)."""
    params, _ = bn_params(ops, v)
    lo, d2, hi = _curve_derivative(ops, ctx, v, params, 2)
    out = ops.second_deriv_batchnorm(params, ops.Box(lo, hi), ctx)
    return _encloses(out, d2, "d²/dt² BN(x(t))")


@_ob(lean=NS + "deriv2_batchnorm_is_zero (as a rule)", expected=REFUTED)
def deriv2_batchnorm_propagation(ops, ctx, v):
    """∀ curve x(t) with x''(t) ∈ d2B, d²/dt² BN(x(t)) ∈ deriv2Batchnorm params d2B
    EXPECTED TO BE REFUTED: d²/dt² BN(x(t)) = scale·x''(t) is not in [0, 0] when x'' ≠ 0 and
    γ ≠ 0. BN's own second derivative is 0; a propagation rule must apply the chain rule,
    which is why second_deriv_batchnorm exists."""
    params, _ = bn_params(ops, v)
    lo, d2, hi = _curve_derivative(ops, ctx, v, params, 2)
    out = ops.deriv2_batchnorm(params, ops.Box(lo, hi), ctx)
    return _encloses(out, d2, "d²/dt² BN(x(t))")


@_ob()
def compute_scale_offset_closed_form(ops, ctx, v):
    """computeScale params = γ / √(σ² + ε) and computeOffset params = β − γ·μ / √(σ² + ε)
    (per channel; the seed's closed forms)."""
    params, (g, m, b, var, eps) = bn_params(ops, v)
    scale, offset = ops.compute_scale(params, ctx), ops.compute_offset(params, ctx)
    goals = [Holds(len(scale) == len(offset) == params.channels, "one per channel", {})]
    for c in range(params.channels):
        r = sympy.sqrt(var[c] + eps)
        goals += [
            Eq(scale[c], g[c] / r, f"scale[{c}] = γ/√(σ²+ε)"),
            Eq(offset[c], b[c] - g[c] * m[c] / r, f"offset[{c}] = β − γμ/√(σ²+ε)"),
        ]
    return goals


@_ob()
def batchnorm_affine_form(ops, ctx, v):
    """∀ x, scale·x + offset = γ(x − μ)/√(σ² + ε) + β = evaluate_batchnorm params x
    (per entry; shape (2, 2), so entry i uses channel i // 2)."""
    params, (g, m, b, var, eps) = bn_params(ops, v, shape=(2, 2))
    x = v.reals("x", params.dim)
    scale, offset = ops.compute_scale(params, ctx), ops.compute_offset(params, ctx)
    y = ops.evaluate_batchnorm(params, x, ctx)
    goals = []
    for i in range(params.dim):
        c = i // 2
        spec = closed_form(x[i], g[c], m[c], b[c], var[c], eps)
        goals += [
            Eq(scale[c] * x[i] + offset[c], spec, f"scale·x+offset[{i}] = closed form"),
            Eq(y[i], spec, f"evaluate_batchnorm[{i}] = closed form"),
        ]
    return goals


def layer_ops(ops):
    """``ops`` with the BatchNorm functions routed through the graph operator's verbs
    (``ops.BatchNorm(params).evaluate/ibp/aff/deriv/deriv2``), which the network algorithms
    call."""
    return ops.replace(
        evaluate_batchnorm=lambda p, x, ctx: ops.BatchNorm(p).evaluate(ctx, x),
        ibp_batchnorm=lambda p, box, ctx: ops.BatchNorm(p).ibp(ctx, box),
        aff_batchnorm=lambda p, aff, ctx: ops.BatchNorm(p).aff(ctx, aff),
        deriv_batchnorm=lambda p, box, ctx: ops.BatchNorm(p).deriv(ctx, box),
        second_deriv_batchnorm=lambda p, box, ctx: ops.BatchNorm(p).deriv2(ctx, box),
    )


@_ob()
def batchnorm_layer_sound(ops, ctx, v):
    """The graph operator BatchNorm(params), as the network algorithms use it: its verbs
    evaluate, ibp, aff, deriv and deriv2 satisfy ibp_batchnorm_sound, aff_batchnorm_sound,
    deriv_batchnorm_sound and second_deriv_batchnorm_sound (deriv2 is the chain rule, not the
    seed's zero box)."""
    lops = layer_ops(ops)
    goals = []
    for ob in (
        ibp_batchnorm_sound,
        aff_batchnorm_sound,
        deriv_batchnorm_sound,
        second_deriv_batchnorm_sound,
    ):
        for g in ob.build(lops, ctx, v):
            g.label = f"{ob.name}: {g.label}"
            goals.append(g)
    return goals
