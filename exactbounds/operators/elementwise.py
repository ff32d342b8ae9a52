"""Further elementwise operators: ``LeakyRelu`` (α·x for x < 0), ``Sin``/``Cos`` (enclosed with
python-flint ``arb``) and ``Sign`` (−1, 0, 1).

Lines (``relax``, ``ls·x + lb <= f(x) <= us·x + ub`` on ``[l, u]``, computed from the exact
outer ends of the input's bounds, intercepts rounded outward where the context rounds bounds):

* LeakyRelu, α >= 0: stable pieces exact (``x`` or ``α·x``). Across 0 with α <= 1 (convex): the
  chord above, a line through 0 of slope 1 or α below (1 when ``u > −l``, as ReLU's adaptive
  rule); with α > 1 (concave) the same lines swapped (chord below, slope 1 or α above).
* Sin/Cos: the slope ``s`` = f'(m) at the midpoint (a float64, exact once taken) and the
  intercepts from a mean-value enclosure ``f(x) − s·x ∈ g(m) ± max|f' − s|·r`` on 8 pieces (each
  an ``arb`` ball), or the constant lines ``[min f, max f]`` of the ``arb`` enclosure of the whole
  interval when they are narrower. Both are rigorous outer enclosures.
* Sign: monotone step; the constant lines ``sign(l) <= y <= sign(u)``.
"""

import math

import flint
import numpy as np
from flint import arb, fmpq

from ..core import Box
from ..errors import InvalidValueError
from ..linalg.fast import FVec, q_ceil, q_floor
from ..linalg.fast_ibp import FBox
from ..numbers import arb_ends
from .base import Relaxed, as_shape
from .registry import register
from .relu import adaptive_alpha, chord_lines, possible_signs


class _Elementwise(Relaxed):
    def __init__(self, shape, name=None):
        name = name or self.kind
        self.name = name
        s = as_shape(shape, name)
        self.in_shapes, self.out_shape = (s,), s

    def _ends(self, ctx, lo, hi):
        return [(ctx.lower(ctx.coerce(a)), ctx.upper(ctx.coerce(b))) for a, b in zip(lo, hi)]

    def _lines(self, ctx, lines):
        out = ([], [], [], [])
        for al, bl, au, bu in lines:
            if ctx.rounds_bounds:
                bl, bu = ctx.round_bound(bl, False), ctx.round_bound(bu, True)
            for k, v in enumerate((al, bl, au, bu)):
                out[k].append(ctx.const(v))
        return out


ALPHA = fmpq(1, 100)  # the ONNX default 0.01 (the loader passes the float32 value)


@register
class LeakyRelu(_Elementwise):
    """``LeakyRelu(shape, alpha)``: ``y = x`` for ``x >= 0``, ``α·x`` for ``x < 0`` (α >= 0
    exact)."""

    kind = "leakyrelu"

    def __init__(self, shape, alpha=ALPHA, name="leakyrelu"):
        super().__init__(shape, name)
        self.alpha = fmpq(alpha) if not isinstance(alpha, fmpq) else alpha
        if self.alpha < 0:
            raise InvalidValueError(f"{name}.alpha", alpha, "must be >= 0")

    def _value(self, ctx, x):
        s = possible_signs(ctx, x)
        if -1 not in s:
            return x
        if 1 not in s:
            return x * ctx.const(self.alpha)
        a, b = ctx.lower(x), ctx.upper(x)
        vals = [a * self.alpha, b, fmpq(0)]
        return ctx.from_ends(min(vals), max(vals))

    def evaluate(self, ctx, x):
        self.check_inputs([len(x)], "x")
        return [self._value(ctx, ctx.coerce(v)) for v in x]

    def ibp(self, ctx, box):
        """Monotone (α >= 0): ``[f(lo), f(hi)]``."""
        self.check_inputs([box.dim], "input box")
        return Box(
            [self._value(ctx, ctx.coerce(v)) for v in box.lo],
            [self._value(ctx, ctx.coerce(v)) for v in box.hi],
            self.out_shape,
        )

    def relax_one(self, l, u, rule="adaptive"):
        a, one, zero = self.alpha, fmpq(1), fmpq(0)
        if l >= 0:
            return one, zero, one, zero
        if u <= 0:
            return a, zero, a, zero
        chord = (u - a * l) / (u - l)
        cb = a * l - chord * l  # the chord through (l, αl) and (u, u)
        through0 = one if (rule == "one" or rule == "adaptive" and u > -l) else a
        if rule == "zero":
            through0 = a
        if a <= 1:
            return through0, zero, chord, cb
        return chord, cb, through0, zero

    def relax(self, ctx, lo, hi, lower_slope="adaptive", **_):
        self.check_inputs([len(lo)], "lo")
        return self._lines(
            ctx, [self.relax_one(l, u, lower_slope) for l, u in self._ends(ctx, lo, hi)]
        )

    def relax_vec(self, l1, l2, u1, u2, lower_slope="adaptive", **_):
        """The mode ``fast`` for α <= 1 (``None`` otherwise: the per-neuron lines): point
        floats valid on the outer interval ``[l1, u2]``, as ``ReLU.relax_vec``, with α
        rounded up (``a⁺``) in the lines below and down (``a⁻``) in the lines above: stable
        negative ``a⁺·x <= α·x <= a⁻·x``; across 0 the lower line ``x`` or ``a⁺·x`` (both below
        ``max(x, α·x)`` when α <= 1) and the chord of :func:`~.relu.chord_lines`."""
        if self.alpha > 1:
            return None
        a_up, a_dn = q_ceil(self.alpha), q_floor(self.alpha)
        with np.errstate(all="ignore"):
            n = l1.shape[0]
            active = l1 >= 0
            dead = ~active & (u2 <= 0)
            open_ = ~(active | dead)
            s, b = chord_lines(
                np.where(open_, l1, -1.0), np.where(open_, u2, 1.0), a_dn, alpha_lo=a_dn
            )
            one = adaptive_alpha(l1, l2, u1, u2, lower_slope)
            through0 = np.where(one > 0, 1.0, a_up)
            ls = np.where(active, 1.0, np.where(dead, a_up, through0))
            us = np.where(active, 1.0, np.where(dead, a_dn, s))
            ub = np.where(open_, b, 0.0)
            bad = ~(np.isfinite(l1) & np.isfinite(u2))
            inf = np.where(bad, np.inf, 0.0)
            z = np.zeros(n)
            return tuple(FVec(np.where(bad, 0.0, v), inf) for v in (ls, z, us, ub))


PIECES = 8


def _ball(l, u):
    """An ``arb`` ball containing ``[l, u]`` (exact rationals)."""
    return arb(l).union(arb(u)) if l != u else arb(l)


class _Trig(_Elementwise):
    """Sin or Cos, enclosed with ``arb`` at ``ctx.func_prec`` bits."""

    def _f(self, x):
        return x.sin() if self.kind == "sin" else x.cos()

    def _df(self, x):
        return x.cos() if self.kind == "sin" else -x.sin()

    def _ffloat(self, x):
        return math.sin(x) if self.kind == "sin" else math.cos(x)

    def _dfloat(self, x):
        return math.cos(x) if self.kind == "sin" else -math.sin(x)

    def range(self, l, u, prec):
        """Exact ``(lo, hi)`` enclosing ``f`` on ``[l, u]`` (the arb ball of the interval)."""
        with flint.ctx.workprec(prec):
            lo, hi = arb_ends(self._f(_ball(l, u)))
        return max(lo, fmpq(-1)), min(hi, fmpq(1))

    # -- point values in each context ----------------------------------------------------
    def on_exact(self, ctx, x):
        return ctx.from_ends(*self.range(ctx.lower(x), ctx.upper(x), ctx.func_prec))

    def on_interval(self, ctx, x):
        return (ctx.iv.sin if self.kind == "sin" else ctx.iv.cos)(ctx.coerce(x))

    def on_symbolic(self, ctx, x):
        sp = ctx.sympy
        return (sp.sin if self.kind == "sin" else sp.cos)(ctx.coerce(x))

    def evaluate(self, ctx, x):
        self.check_inputs([len(x)], "x")
        return [ctx.apply_function(self, v) for v in x]

    def ibp(self, ctx, box):
        """The arb enclosure of ``f`` over each whole interval (extrema inside included)."""
        self.check_inputs([box.dim], "input box")
        los, his = [], []
        for l, u in self._ends(ctx, box.lo, box.hi):
            a, b = self.range(l, u, ctx.func_prec)
            los.append(ctx.const(ctx.round_bound(a, False)))
            his.append(ctx.const(ctx.round_bound(b, True)))
        return Box(los, his, self.out_shape)

    def relax_one(self, l, u, prec):
        fl, fh = self.range(l, u, prec)
        const = (fmpq(0), fl, fmpq(0), fh)
        if l == u:
            return const
        m = l + (u - l) / 2
        try:
            s = fmpq(*float(self._dfloat(float(m))).as_integer_ratio())
        except (OverflowError, ValueError):
            return const
        # f(x) − s·x on each piece [a, b]: (f − s·x)(c) ± max|f'(ξ) − s|·(b − a)/2
        glo = ghi = None
        with flint.ctx.workprec(prec):
            for k in range(PIECES):
                a, b = l + (u - l) * k / PIECES, l + (u - l) * (k + 1) / PIECES
                c = a + (b - a) / 2
                gc = arb_ends(self._f(arb(c)) - arb(s) * arb(c))
                dlo, dhi = arb_ends(self._df(_ball(a, b)) - arb(s))
                slack = max(abs(dlo), abs(dhi)) * (b - a) / 2
                lo_k, hi_k = gc[0] - slack, gc[1] + slack
                glo = lo_k if glo is None else min(glo, lo_k)
                ghi = hi_k if ghi is None else max(ghi, hi_k)
        if ghi - glo >= fh - fl:
            return const
        return s, glo, s, ghi

    def relax(self, ctx, lo, hi, **_):
        self.check_inputs([len(lo)], "lo")
        return self._lines(
            ctx, [self.relax_one(l, u, ctx.func_prec) for l, u in self._ends(ctx, lo, hi)]
        )


@register
class Sin(_Trig):
    """``Sin(shape)``: ``y = sin x``."""

    kind = "sin"

    def __init__(self, shape, name="sin"):
        super().__init__(shape, name)


@register
class Cos(_Trig):
    """``Cos(shape)``: ``y = cos x``."""

    kind = "cos"

    def __init__(self, shape, name="cos"):
        super().__init__(shape, name)


@register
class Sign(_Elementwise):
    """``Sign(shape)``: ``y = −1, 0, 1`` for ``x < 0, = 0, > 0``."""

    kind = "sign"

    def _value(self, ctx, x):
        s = possible_signs(ctx, x)
        if len(s) == 1:
            return ctx.const(s.pop())
        return ctx.from_ends(fmpq(min(s)), fmpq(max(s)))

    def evaluate(self, ctx, x):
        self.check_inputs([len(x)], "x")
        return [self._value(ctx, ctx.coerce(v)) for v in x]

    @staticmethod
    def _sgn(q):
        return fmpq((q > 0) - (q < 0))

    def ibp(self, ctx, box):
        """Monotone: ``[sign(lo), sign(hi)]`` of the exact outer ends."""
        self.check_inputs([box.dim], "input box")
        ends = self._ends(ctx, box.lo, box.hi)
        return Box(
            [ctx.const(self._sgn(l)) for l, _ in ends],
            [ctx.const(self._sgn(u)) for _, u in ends],
            self.out_shape,
        )

    def ibp_fast(self, ctx, fbox):
        """The same on float boxes (exact: ``sign`` of each end; a ``NaN`` end gives −1 below
        and 1 above)."""
        with np.errstate(invalid="ignore"):
            ll, lh, hl, hh = (np.sign(v) for v in fbox)
        lo, hi = -1.0, 1.0
        return FBox(
            np.nan_to_num(ll, nan=lo),
            np.nan_to_num(lh, nan=hi),
            np.nan_to_num(hl, nan=lo),
            np.nan_to_num(hh, nan=hi),
        )

    def relax_vec(self, l1, l2, u1, u2, **_):
        """The mode ``fast``: the constant lines ``sign(l1) <= y <= sign(u2)`` on the outer
        interval ``[l1, u2]`` (exact floats; a ``NaN`` end gives −1 below and 1 above)."""
        z = np.zeros(l1.shape[0])
        with np.errstate(invalid="ignore"):
            lb = np.nan_to_num(np.sign(l1), nan=-1.0)
            ub = np.nan_to_num(np.sign(u2), nan=1.0)
        return FVec(z, z), FVec(lb, z), FVec(z.copy(), z), FVec(ub, z)

    def relax(self, ctx, lo, hi, **_):
        """The constant lines ``sign(l) <= y <= sign(u)``."""
        self.check_inputs([len(lo)], "lo")
        z = fmpq(0)
        return self._lines(
            ctx, [(z, self._sgn(l), z, self._sgn(u)) for l, u in self._ends(ctx, lo, hi)]
        )
