"""Inference-time BatchNorm (TorchLean ``NN.MLTheory.CROWN.Operators.Batchnorm``).

``y = γ(x−μ)/√(σ²+ε) + β = scale·x + offset`` per channel, with
``scale = γ/√(σ²+ε)`` and ``offset = β − γμ/√(σ²+ε)``.

Every function takes a number context ``ctx`` (default: ``RationalContext()``). The square root
is enclosed once per channel (``r``) and every output is computed as ``γ(x−μ)/r + β``, so an
enclosure is as narrow as the rounding of ``r`` allows. Sign branches are taken on γ, which is
exact data, so they never depend on how ``r`` was rounded.

Layouts: a feature vector ``(C,)``, or ``(C, *spatial)`` normalised per channel as
BatchNorm2d/3d do; boxes and affine forms are over the flattened (row-major) tensor.
"""

from math import prod

from flint import fmpq_mat

from ..core import AffineVec, Box
from ..errors import InvalidModelError, ShapeError, shown
from ..linalg.fast_ibp import diag_fbox, diag_floats
from ..linalg.structured import DiagPart, LinearMap
from ..numbers import DEFAULT_CONTEXT, RationalContext, to_exact
from .base import AffineOp
from .jets import JetStep
from .registry import register


def _is_symbolic(v):
    try:
        import sympy
    except ImportError:  # pragma: no cover
        return False
    return isinstance(v, sympy.Basic) and not v.is_Number


def _scalar(v, label):
    return v if _is_symbolic(v) else to_exact(v, label)


def _clamp(v):
    if _is_symbolic(v):
        import sympy

        return sympy.Max(v, 0)
    return v if v >= 0 else v * 0


class BatchNormParams:
    """Frozen inference statistics (Lean ``BatchNormParams``): ``running_mean`` μ,
    ``running_var`` σ², ``gamma`` γ, ``beta`` β (one per channel) and ``eps`` ε.

    ``variance="strict"`` (default) needs σ² >= 0 and σ² + ε > 0 as the seed's formula does;
    ``variance="clamp"`` uses max(σ², 0) as TorchLean's newer version does. ε >= 0: ε = 0 is
    accepted (PyTorch and ONNX allow it) wherever the formula has a value, σ² + ε > 0. Numbers enter
    exactly; sympy expressions are kept as they are (for ``SymbolicContext``).
    ``shape`` is ``(C,)`` (default) or ``(C, *spatial)``; ``dim`` is the flattened size."""

    def __init__(
        self,
        running_mean,
        running_var,
        gamma,
        beta,
        eps=1e-5,
        *,
        shape=None,
        variance="strict",
        name="batchnorm",
    ):
        if variance not in ("strict", "clamp"):
            raise InvalidModelError(
                f"{name}.variance = {shown(variance)}: expected 'strict' or 'clamp'"
            )
        fields = {
            "running_mean": running_mean,
            "running_var": running_var,
            "gamma": gamma,
            "beta": beta,
        }
        vals = {}
        for key, seq in fields.items():
            try:
                seq = list(seq)
            except TypeError:
                raise ShapeError(f"{name}.{key}: expected a list, got {shown(seq)}") from None
            vals[key] = [_scalar(v, f"{name}.{key}[{i}]") for i, v in enumerate(seq)]
        C = len(vals["running_mean"])
        for key, seq in vals.items():
            if len(seq) != C:
                raise ShapeError(f"{name}.{key} has length {len(seq)}, running_mean has {C}")
        if C == 0:
            raise ShapeError(f"{name}: no channels")
        eps = _scalar(eps, f"{name}.eps")
        if not _is_symbolic(eps) and eps < 0:
            raise InvalidModelError(f"{name}.eps = {eps}: must be >= 0")
        var = vals["running_var"]
        if variance == "clamp":
            var = [_clamp(v) for v in var]
        for i, v in enumerate(var):
            if _is_symbolic(v) or _is_symbolic(eps):
                continue
            if v < 0:
                raise InvalidModelError(
                    f"{name}.running_var[{i}] = {v}: negative variance "
                    "(variance='strict'; variance='clamp' uses max(σ², 0))"
                )
            if v + eps == 0:
                raise InvalidModelError(f"{name}.running_var[{i}] + eps = 0: division by zero")
        shape = (C,) if shape is None else tuple(int(d) for d in shape)
        if not shape or shape[0] != C:
            raise ShapeError(f"{name}: shape {shape} does not start with the {C} channels")
        self.running_mean, self.running_var = tuple(vals["running_mean"]), tuple(var)
        self.gamma, self.beta = tuple(vals["gamma"]), tuple(vals["beta"])
        self.eps, self.shape, self.variance, self.name = eps, shape, variance, name
        self._cache = {}

    @property
    def channels(self):
        return len(self.gamma)

    @property
    def dim(self):
        """Flattened size ``C · prod(spatial)`` (Lean ``params.dim`` for ``(C,)``)."""
        return prod(self.shape)

    def with_shape(self, shape):
        """The same statistics applied to a ``(C, *spatial)`` tensor."""
        return BatchNormParams(
            self.running_mean,
            self.running_var,
            self.gamma,
            self.beta,
            self.eps,
            shape=shape,
            variance=self.variance,
            name=self.name,
        )

    def channel_consts(self, ctx):
        """Per channel ``(γ, μ, β, r)`` in ``ctx``, with ``r ⊇ √(σ²+ε)`` enclosed once."""
        got = self._cache.get(id(ctx))
        if got is None or got[0] is not ctx:
            eps = ctx.const(self.eps)
            consts = [
                (ctx.const(g), ctx.const(m), ctx.const(b), ctx.sqrt(ctx.const(v) + eps))
                for g, m, b, v in zip(self.gamma, self.running_mean, self.beta, self.running_var)
            ]
            got = self._cache[id(ctx)] = (ctx, consts)
        return got[1]

    def channel_of(self, i):
        return i // (self.dim // self.channels)

    def __repr__(self):
        return (
            f"BatchNormParams(C={self.channels}, shape={self.shape}, eps={self.eps}, "
            f"variance={self.variance!r})"
        )


def _check_dim(params, n, what):
    if n != params.dim:
        raise ShapeError(f"{params.name}: {what} has {n} entries, the layer has {params.dim}")


def _per_entry(params, ctx, signed=True):
    """(channel consts, sign of γ) for every flattened entry; the sign is ``None`` (and not
    asked of the context) when ``signed`` is false."""
    consts = params.channel_consts(ctx)
    signs = [ctx.sign(g) if signed else None for g in params.gamma]
    per = params.dim // params.channels
    return [(consts[c], signs[c]) for c in range(params.channels) for _ in range(per)]


def compute_scale(params, ctx=DEFAULT_CONTEXT):
    """``scale = γ / √(σ² + ε)`` per channel (Lean ``computeScale``)."""
    return [g / r for g, _, _, r in params.channel_consts(ctx)]


def compute_offset(params, ctx=DEFAULT_CONTEXT):
    """``offset = β − γ·μ / √(σ² + ε)`` per channel (Lean ``computeOffset``)."""
    return [b - g * m / r for g, m, b, r in params.channel_consts(ctx)]


def evaluate_batchnorm(params, x, ctx=DEFAULT_CONTEXT):
    """``BN(x)_i = γ(x_i − μ)/√(σ²+ε) + β`` at the point ``x`` (flattened); exact in the symbolic
    context, an enclosure of the exact value where the rational/interval √ is irrational."""
    x = list(x)
    _check_dim(params, len(x), "x")
    return [
        g * (ctx.coerce(v) - m) / r + b
        for v, ((g, m, b, r), _) in zip(x, _per_entry(params, ctx, False))
    ]


def ibp_batchnorm(params, box, ctx=DEFAULT_CONTEXT):
    """Interval bounds (Lean ``ibpBatchnorm``): BN is affine, so per entry
    ``scale >= 0``: ``[BN(lo), BN(hi)]``; ``scale < 0``: ``[BN(hi), BN(lo)]``;
    sign(scale) = sign(γ). Each end is ``γ(x−μ)/r + β`` with one enclosure ``r`` of the square
    root."""
    _check_dim(params, box.dim, "the input box")
    lo, hi = [], []
    for a, b_, ((g, m, b, r), s) in zip(box.lo, box.hi, _per_entry(params, ctx)):
        ya = g * (ctx.coerce(a) - m) / r + b
        yb = g * (ctx.coerce(b_) - m) / r + b
        lo.append(ya if s >= 0 else yb)
        hi.append(yb if s >= 0 else ya)
    return Box(lo, hi, box.shape)


def aff_batchnorm(params, aff, ctx=DEFAULT_CONTEXT):
    """Affine composition (Lean ``affBatchnorm``): for ``prev = A·x + c``,
    ``BN ∘ prev = diag(scale)·A·x + (scale·c + offset)``; computed as ``γ·A_ij/r`` and
    ``γ(c_i − μ)/r + β``."""
    _check_dim(params, aff.out_dim, "the affine form's output")
    A, c = [], []
    for row, ci, ((g, m, b, r), _) in zip(aff.A, aff.c, _per_entry(params, ctx, False)):
        A.append([g * ctx.coerce(a) / r for a in row])
        c.append(g * (ctx.coerce(ci) - m) / r + b)
    return AffineVec(A, c, aff.in_dim)


def _scale_box(params, box, ctx):
    lo, hi = [], []
    for a, b_, ((g, _, _, r), s) in zip(box.lo, box.hi, _per_entry(params, ctx)):
        ya, yb = g * ctx.coerce(a) / r, g * ctx.coerce(b_) / r
        lo.append(ya if s >= 0 else yb)
        hi.append(yb if s >= 0 else ya)
    return Box(lo, hi, box.shape)


def deriv_batchnorm(params, dbox, ctx=DEFAULT_CONTEXT):
    """Derivative bounds (Lean ``derivBatchnorm``): d BN/dx = scale, so a box ``[dlo, dhi]`` of
    input derivatives maps to ``scale·[dlo, dhi]`` (ends swapped when γ < 0)."""
    _check_dim(params, dbox.dim, "the derivative box")
    return _scale_box(params, dbox, ctx)


def deriv2_batchnorm(params, d2box, ctx=DEFAULT_CONTEXT):
    """The seed's rule (Lean ``deriv2Batchnorm``): BN is affine, so its own second derivative is
    the zero box, lo = hi = 0, whatever ``d2box`` is.

    Not a sound propagation rule along a curve: d²/dt² BN(x(t)) = scale·x''(t), which is not 0
    when x'' ≠ 0. Use :func:`second_deriv_batchnorm` to propagate second derivatives."""
    _check_dim(params, d2box.dim, "the second-derivative box")
    zero = ctx.const(0)
    return Box([zero] * d2box.dim, [zero] * d2box.dim, d2box.shape)


def second_deriv_batchnorm(params, d2box, ctx=DEFAULT_CONTEXT):
    """Chain-rule propagation of a second derivative: d²/dt² BN(x(t)) = scale·x''(t), so a box of
    x'' maps to ``scale·[lo, hi]`` (ends swapped when γ < 0). TorchLean's later version of the file
    made the same change; :func:`deriv2_batchnorm` is the seed's zero rule."""
    _check_dim(params, d2box.dim, "the second-derivative box")
    return _scale_box(params, d2box, ctx)


@register
class BatchNorm(AffineOp):
    """Graph operator wrapping :class:`BatchNormParams`: an affine operator whose verbs are the
    seed's functions. 1d over features (``shape=(C,)``) or 2d over channels
    (``BatchNormParams(..., shape=(C, H, W))``); input and output shape ``params.shape``.

    Its coefficients ``scale``, ``offset`` are irrational where √(σ²+ε) is:
    :meth:`linear_enclosure` gives exact ``(Ws, b, Wrad, brad)`` with the true
    ``scale ∈ W ± Wrad`` and ``offset ∈ b ± brad`` (radii ``None`` when √(σ²+ε) is rational),
    which CROWN and forward affine use with an error term. Taylor mode with ``rule="seed"``
    applies the seed's ``deriv2_batchnorm`` (the zero box) instead of the chain rule."""

    kind = "batchnorm"

    def __init__(self, params):
        self.params = params
        self.name = params.name
        self._enc = {}

    @property
    def in_shapes(self):
        return (self.params.shape,)

    @property
    def out_shape(self):
        return self.params.shape

    def linear_params(self):
        """The midpoints of the coefficient enclosure at 128 bits (the exact coefficients are
        irrational in general: algorithms use :meth:`linear_enclosure`)."""
        Ws, b, _, _ = self._enclosure(128)
        return Ws, b

    def linear_enclosure(self, ctx):
        """Exact diagonal ``W`` (midpoints of ``scale``), column ``b`` (midpoints of ``offset``)
        and their radii; square roots enclosed at the context's precision (128 bits if none)."""
        return self._enclosure(ctx.precision or 128)

    def _diagonal(self, bits):
        """``(w, wr, b, br)`` lists: the midpoints and radii of the diagonal ``scale`` and of
        ``offset`` per entry, square roots enclosed at ``bits`` bits (built once)."""
        key = ("diag", bits)
        if key not in self._enc:
            rc = RationalContext(bits)
            per = self.params.dim // self.params.channels
            w, wr, b, br = [], [], [], []
            for g, m, be, r in self.params.channel_consts(rc):
                sc, of = g / r, be - g * m / r
                lo, hi = rc.lower(sc), rc.upper(sc)
                w += [(lo + hi) / 2] * per
                wr += [(hi - lo) / 2] * per
                lo, hi = rc.lower(of), rc.upper(of)
                b += [(lo + hi) / 2] * per
                br += [(hi - lo) / 2] * per
            self._enc[key] = (w, wr, b, br)
        return self._enc[key]

    def _enclosure(self, bits):
        if bits not in self._enc:
            w, wr, b, br = self._diagonal(bits)
            n = self.params.dim
            W, Wr = fmpq_mat(n, n), fmpq_mat(n, n)
            for k in range(n):
                W[k, k], Wr[k, k] = w[k], wr[k]
            exact = all(v == 0 for v in br) and all(v == 0 for v in wr)
            self._enc[bits] = (
                [W],
                fmpq_mat(n, 1, b),
                None if exact else [Wr],
                None if exact else fmpq_mat(n, 1, br),
            )
        return self._enc[bits]

    def linear_map(self):
        """The diagonal ``scale`` as a structured map (no dense ``n × n`` matrix): the 128-bit
        enclosure of :meth:`linear_enclosure` as midpoints ``w`` with radii ``wr`` and the bias
        ``b ± br`` (radii ``None`` when √(σ²+ε) is rational)."""
        if getattr(self, "_lin", None) is None:
            w, wr, b, br = self._diagonal(128)
            n = self.params.dim
            rad = wr if any(v != 0 for v in wr) else None
            b_rad = fmpq_mat(n, 1, br) if any(v != 0 for v in br) else None
            self._lin = LinearMap([DiagPart(n, w, rad=rad)], fmpq_mat(n, 1, b), b_rad)
        return self._lin

    def _note_enclosed(self, run):
        """The mode fast takes the structured enclosed diagonal: say so (the other modes say
        it where they add their error term)."""
        lin = self.linear_map()
        enclosed = lin.b_rad is not None or lin.parts[0].rad is not None
        if enclosed and run.ctx.backend_kind == "fast":
            run.rounded = True
            run.note(
                "BatchNorm coefficients enclosed (irrational square root): ball coefficients "
                "in the structured step"
            )

    def crown_step(self, run, node, LL, LU):
        self._note_enclosed(run)
        return super().crown_step(run, node, LL, LU)

    def forward_step(self, run, node, forms):
        self._note_enclosed(run)
        return super().forward_step(run, node, forms)

    def evaluate(self, ctx, x):
        return evaluate_batchnorm(self.params, x, ctx)

    def ibp(self, ctx, box):
        return ibp_batchnorm(self.params, box, ctx)

    def aff(self, ctx, aff):
        return aff_batchnorm(self.params, aff, ctx)

    def ibp_fast(self, ctx, fbox):
        """IBP on a float box: the diagonal map with the enclosed coefficients of
        :meth:`linear_enclosure` (radii added), never the dense matrix."""
        cache = self.__dict__.setdefault("_fast_diag", {})
        if ctx.precision not in cache:
            w, wr, b, br = self._diagonal(ctx.precision or 128)
            exact = all(v == 0 for v in br) and all(v == 0 for v in wr)
            cache[ctx.precision] = diag_floats(w, b, None if exact else wr, None if exact else br)
        fm, fr, off = cache[ctx.precision]
        return diag_fbox(fm, fr, off, fbox)

    def deriv(self, ctx, dbox):
        return deriv_batchnorm(self.params, dbox, ctx)

    def deriv2(self, ctx, d2box):
        return second_deriv_batchnorm(self.params, d2box, ctx)

    def jet_step(self, ctx, node, jets, order, rule):
        if order >= 2 and rule == "seed":
            j = jets[0]
            return JetStep(
                self.deriv(ctx, j.d1),
                deriv2_batchnorm(self.params, j.d2, ctx),
                notes=[f"{node.name}: seed rule deriv2_batchnorm (zero box)"],
            )
        return super().jet_step(ctx, node, jets, order, rule)
