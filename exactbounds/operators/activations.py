"""Smooth S-shaped activations: ``Sigmoid`` σ(x) = 1/(1+e^(−x)) and ``Tanh``.

Both are increasing, point-symmetric about ``(0, c)`` (c = f(0): 1/2 for σ, 0 for tanh), convex
on x <= 0 and concave on x >= 0. Write ``w = f(x) − c`` (so w = tanh x, or σ(x) − 1/2) and
``A = f'(0)`` (1 for tanh, 1/4 for σ); then exactly

    f'(x) = A − w²,        f''(x) = 2w³ − 2A·w = 2w(w² − A).

So ranges of f' and f'' over ``[lo, hi]`` are ranges of polynomials over the range of ``w``,
which is ``[w(lo), w(hi)]`` by monotonicity. Only ``w`` at the two ends is irrational: it is
enclosed outward (python-flint ``arb`` at ``bits + 32`` bits in the rational context, mpmath
``iv.exp`` at ``prec`` in the interval context; both are rigorous ball/interval arithmetic), and
everything after that is exact rational arithmetic; the critical points of f'' (w² = A/3) are
decided by exact comparisons of squares.

Verbs (context first, elementwise, shape-agnostic over flat lists):
``evaluate`` (an enclosure of f at each point; exact sympy in the symbolic context), ``ibp``
(monotone), ``relax`` (sound linear lower/upper lines as in CROWN / auto_LiRPA for S-shaped
functions, every line checked over ``[lo, hi]`` by a rigorous Taylor-form bound with bisection,
falling back to the constant lines ``f(lo)``/``f(hi)``), ``derivative_range`` /
``second_derivative_range`` (outward enclosures of f', f'' over a value box).

In the mode ``fast`` (``relax_vec``) the same line choices are made in float64 on the outer ends
of the float bounds, and each intercept is made valid rigorously: on the convex part the line
lies above f at both ends; on the concave part ``f(x) <= f(t) + f'(t)·(x − t)`` at the tangent
point t, with f, f' enclosed (numpy widened by a proven error bound) and every step rounded
outward. The lines are point floats; a CROWN result through them is a sound ``bound``.
"""

import math
from abc import abstractmethod
from math import prod

import flint
import numpy as np
from flint import arb, fmpq

from ..core import Box
from ..errors import InvalidBoxError, ShapeError
from ..linalg.fast import FVec, down, up
from ..linalg.fast_ibp import func_lower, func_upper, monotone, sigmoid_float
from ..numbers import RInterval, interval, mpf_to_exact, round_out, sqrt_enclosure, to_exact
from ..numbers import arb_ends as arb_exact_ends
from ..numbers.contexts import DEFAULT_FUNC_PREC as DEFAULT_PREC
from .base import Relaxed, as_shape
from .jets import JetStep, elems, square, to_box
from .registry import register

TANGENT_SLACK = fmpq(1, 2**48)  # slope slack of tangent lines, so the check has a margin

__all__ = ["Sigmoid", "Tanh", "arb_exact_ends", "round_out", "DEFAULT_PREC"]


def _prec_of(ctx):
    return ctx.func_prec


def _ends(ctx, x):
    """Exact outer ends of one element of ``ctx`` (or of a plain number / RInterval)."""
    if isinstance(x, RInterval):
        return x.lo, x.hi
    if isinstance(x, fmpq):
        return x, x
    if hasattr(x, "_mpi_"):
        return mpf_to_exact(x._mpi_[0]), mpf_to_exact(x._mpi_[1])
    q = to_exact(x)
    return q, q


def _sq_range(lo, hi):
    """Exact range of v² over ``[lo, hi]``."""
    if lo >= 0:
        return lo * lo, hi * hi
    if hi <= 0:
        return hi * hi, lo * lo
    return fmpq(0), max(lo * lo, hi * hi)


class _SShaped(Relaxed):
    """Shared code of Sigmoid and Tanh; subclasses give ``kind``, ``center`` c = f(0),
    ``slope0`` A = f'(0) and the enclosures of ``w = f − c`` in arb / mpmath iv / sympy."""

    kind = "abstract"
    center = fmpq(0)
    slope0 = fmpq(1)

    exact_relax = False
    """``relax`` returns sound lines with float64 slopes, not the irrational exact-arithmetic
    tangents and chords: a CROWN result through these operators is a ``bound``."""

    def __init__(self, shape=None, name=None):
        """``shape`` as for ``ReLU(shape)`` (a graph needs it); ``None`` makes a size-agnostic
        operator for direct use on flat lists (boxes keep their own shape)."""
        self.name = name or self.kind
        if shape is None:
            self.in_shapes = self.out_shape = None
        else:
            s = as_shape(shape, self.name)
            self.in_shapes, self.out_shape = (s,), s
        # c* = √(A/3): f'' has its minimum at w = c* and its maximum at w = −c*.
        self._crit = sqrt_enclosure(self.slope0 / 3, 128).hi

    @property
    def in_dim(self):
        return None if self.in_shapes is None else prod(self.in_shapes[0])

    @property
    def out_dim(self):
        return self.in_dim

    @property
    def arity(self):
        return 1

    def _check(self, n, what):
        if self.in_shapes is not None:
            self.check_inputs([n], what)

    def _shape(self, box):
        return box.shape if self.out_shape is None else self.out_shape

    # -- enclosures of w = f(x) − c at exact points ---------------------------------------
    @abstractmethod
    def _w_arb(self, x):
        """An ``arb`` enclosure of ``w(x) = f(x) − c``."""

    @abstractmethod
    def _w_iv(self, iv, x):
        """An mpmath ``iv`` enclosure of ``w(x)`` in the interval context ``iv``."""

    @abstractmethod
    def _sym(self, sp, x):
        """The exact sympy expression of ``f(x)``."""

    @property
    def _wmax(self):
        """``|w| < wmax`` (1/2 for σ, 1 for tanh): enclosures are clipped to it."""
        return 2 * self.slope0 if self.center else self.slope0

    def w_point(self, q, prec=DEFAULT_PREC, iv=None):
        """Exact rational ``(lo, hi)`` with ``lo <= f(q) − c <= hi`` for an exact rational q;
        through mpmath ``iv`` when given (the interval context), else arb at ``prec`` bits.
        w is odd, and negative q use ``w(q) = −w(−q)``, so reflected lines stay consistent."""
        q = to_exact(q)
        if q < 0:
            lo, hi = self.w_point(-q, prec, iv)
            return -hi, -lo
        if iv is not None:
            r = self._w_iv(iv, iv.mpf(int(q.p)) / iv.mpf(int(q.q)))
            lo, hi = mpf_to_exact(r._mpi_[0]), mpf_to_exact(r._mpi_[1])
        else:
            with flint.ctx.workprec(prec):
                lo, hi = arb_exact_ends(self._w_arb(arb(q)))
        m = self._wmax
        return max(lo, -m), min(hi, m)

    def w_range(self, lo, hi, prec=DEFAULT_PREC, iv=None):
        """Exact ``(W_lo, W_hi)`` enclosing ``{f(x) − c : lo <= x <= hi}`` (f is increasing)."""
        return self.w_point(lo, prec, iv)[0], self.w_point(hi, prec, iv)[1]

    def _value_range(self, ctx, x):
        """Exact ``(lo, hi)`` enclosing ``f`` over the element ``x`` of ``ctx``."""
        lo, hi = _ends(ctx, x)
        a, b = self.w_range(lo, hi, _prec_of(ctx), ctx.iv)
        return a + self.center, b + self.center

    # -- f', f'' over a range, from the range of w -----------------------------------------
    def d1_from_w(self, wlo, whi):
        """Exact range of f' = A − w² for w in ``[wlo, whi]`` (clipped at 0: f' > 0)."""
        s_lo, s_hi = _sq_range(wlo, whi)
        return max(self.slope0 - s_hi, fmpq(0)), self.slope0 - s_lo

    def d2_from_w(self, wlo, whi):
        """Range of f'' = 2w(w² − A) for w in ``[wlo, whi]``: the ends' exact values and, where
        a critical point ±√(A/3) may lie in the range, the enclosed critical values ∓4A/3·√(A/3)."""
        A = self.slope0

        def p(w):
            return 2 * w * (w * w - A)

        vals = [p(wlo), p(whi)]
        third = A / 3
        # +√(A/3) in [wlo, whi]  <=>  (wlo <= 0 or wlo² <= A/3) and whi >= 0 and whi² >= A/3
        if (wlo <= 0 or wlo * wlo <= third) and whi >= 0 and whi * whi >= third:
            vals.append(-4 * A / 3 * self._crit)
        if (whi >= 0 or whi * whi <= third) and wlo <= 0 and wlo * wlo >= third:
            vals.append(4 * A / 3 * self._crit)
        return min(vals), max(vals)

    def d_ranges(self, lo, hi, prec=DEFAULT_PREC, iv=None):
        """Exact outward ``((f'_lo, f'_hi), (f''_lo, f''_hi))`` over ``[lo, hi]``."""
        wlo, whi = self.w_range(lo, hi, prec, iv)
        return self.d1_from_w(wlo, whi), self.d2_from_w(wlo, whi)

    def _range_box(self, ctx, box, which):
        lo, hi = box.outer(ctx)
        self._check(len(lo), "the value box")
        iv = ctx.iv
        out_lo, out_hi = [], []
        prec = _prec_of(ctx)
        for a, b in zip(lo, hi):
            r = round_out(*self.d_ranges(a, b, prec, iv)[which], prec)
            out_lo.append(ctx.const(r[0]))  # exact, or an iv enclosing the exact end
            out_hi.append(ctx.const(r[1]))
        return Box(out_lo, out_hi, self._shape(box))

    def derivative_range(self, ctx, box):
        """Box enclosing ``f'(x)`` for every x in ``box`` (outward; ends rounded outward to
        dyadics of the context's working precision)."""
        return self._range_box(ctx, box, 0)

    def second_derivative_range(self, ctx, box):
        """Box enclosing ``f''(x)`` for every x in ``box`` (outward)."""
        return self._range_box(ctx, box, 1)

    # -- verbs ------------------------------------------------------------------------------
    def _evaluate_one(self, ctx, x):
        return ctx.apply_function(self, x)

    # the context picks one of these (``Context.apply_function``)
    def on_symbolic(self, ctx, x):
        """The exact sympy expression."""
        return self._sym(ctx.sympy, ctx.coerce(x))

    def on_interval(self, ctx, x):
        """An mpmath ``iv`` enclosure."""
        return self._w_iv(ctx.iv, ctx.coerce(x)) + ctx.const(self.center)

    def on_exact(self, ctx, x):
        """An ``RInterval`` with rational ends (arb at the context's precision)."""
        return interval(*self._value_range(ctx, x))

    def evaluate(self, ctx, x):
        """``f`` at each entry of the point ``x``: exact sympy in the symbolic context, else an
        enclosure (``RInterval`` with rational ends / mpmath ``iv``)."""
        x = list(x)
        self._check(len(x), "x")
        return [self._evaluate_one(ctx, v) for v in x]

    def ibp(self, ctx, box):
        """f is increasing: ``[f(lo), f(hi)]`` per entry, each end an enclosure."""
        self._check(box.dim, "the input box")
        return Box(
            [self._evaluate_one(ctx, v) for v in box.lo],
            [self._evaluate_one(ctx, v) for v in box.hi],
            self._shape(box),
        )

    def ibp_fast(self, ctx, fbox):
        """The same on float boxes: numpy's ``f`` at each end widened by a proven error bound
        (:func:`~exactbounds.linalg.fast_ibp.monotone`), clipped to the range ``c ± wmax``."""
        c, m = float(self.center), float(self._wmax)
        return monotone(self._f_vec, fbox, c - m, c + m)

    def relax(self, ctx, lo, hi, **_):
        """Sound linear bounds ``ls·x + lb <= f(x) <= us·x + ub`` on ``[lo, hi]``: returns the
        lists ``(ls, lb, us, ub)`` (elements of ``ctx``; exact rationals in the rational
        contexts, intercepts rounded outward in ``dyadic`` mode), one entry per neuron.
        See :meth:`relax_one` for the lines."""
        lo, hi = list(lo), list(hi)
        if len(lo) != len(hi):
            raise ShapeError(f"{self.name}.relax: {len(lo)} lower ends, {len(hi)} upper ends")
        self._check(len(lo), "lo")
        out = ([], [], [], [])
        for a, b in zip(lo, hi):
            al, bl, au, bu = self.relax_one(_ends(ctx, a)[0], _ends(ctx, b)[1], _prec_of(ctx))
            if ctx.rounds_bounds:
                bl, bu = ctx.round_bound(bl, False), ctx.round_bound(bu, True)
            for k, v in enumerate((al, bl, au, bu)):
                out[k].append(ctx.const(v))
        return out

    def relax_vec(self, l1, l2, u1, u2, **_):
        """The mode ``fast``: point-float lines valid on the outer interval ``[l1, u2]``. The
        slopes follow :meth:`relax_one`'s choices in floats (:meth:`_float_upper`); every
        intercept is then made valid rigorously by :meth:`_upper_intercept` (directed rounding,
        ``f`` enclosed by :func:`~exactbounds.linalg.fast_ibp.func_upper`); the lower line is
        the upper line of the reflection ``f(x) = 2c − f(−x)``, its intercept rounded down."""
        with np.errstate(all="ignore"):
            l, u = l1, u2
            bad = ~(np.isfinite(l) & np.isfinite(u))
            l, u = np.where(bad, -1.0, l), np.where(bad, 1.0, u)
            us, ub = self._upper_vec(l, u)
            ls, lb = self._upper_vec(-u, -l)
            lb = down(2 * float(self.center) - lb)
            inf = np.where(bad, np.inf, 0.0)
            return tuple(FVec(np.where(bad, 0.0, v), inf) for v in (ls, lb, us, ub))

    def _f_hi(self, x):
        return np.minimum(func_upper(self._f_vec, x), float(self.center + self._wmax))

    def _d1_vec(self, x):
        w = self._f_vec(x) - float(self.center)
        return float(self.slope0) - w * w

    def _float_upper(self, l, u):
        """Float slopes ``s`` and tangent points ``t`` of :meth:`_upper_line`: the chord on
        the convex side (``u <= 0``), the tangent at the midpoint on the concave side
        (``l >= 0``), across 0 the tangent through ``(l, f(l))`` (bisection) or, when that
        tangent point lies beyond ``u``, the chord (``t = u``)."""
        f = self._f_vec
        fl, fu = f(l), f(u)
        chord = np.where(u > l, (fu - fl) / np.where(u > l, u - l, 1.0), 0.0)
        m = l * 0.5 + u * 0.5

        def gap(d):
            return f(d) + self._d1_vec(d) * (l - d) - fl

        a, b = np.zeros_like(u), np.maximum(u, 0.0)
        for _ in range(60):
            c = a * 0.5 + b * 0.5
            pos = gap(c) > 0
            a, b = np.where(pos, a, c), np.where(pos, c, b)
        use_chord = gap(np.maximum(u, 0.0)) <= 0
        s = np.where(
            u <= 0,
            chord,
            np.where(l >= 0, self._d1_vec(m), np.where(use_chord, chord, self._d1_vec(b))),
        )
        t = np.where(l >= 0, m, np.where(use_chord, u, b))
        return np.where(np.isfinite(s), s, 0.0), t

    def _upper_vec(self, l, u):
        s, t = self._float_upper(l, u)
        b = self._upper_intercept(l, u, s, t)
        ok = np.isfinite(b)
        return np.where(ok, s, 0.0), np.where(ok, b, self._f_hi(u))

    def _upper_intercept(self, l, u, s, t):
        """Floats ``b`` with ``f(x) <= s·x + b`` on ``[l, u]`` for any slopes ``s``. On the
        convex part ``[l, min(u, 0)]`` the line is above f at both ends; on the concave part
        ``[p, u]`` (``p = max(l, 0)``) concavity gives ``f(x) <= f(t) + f'(t)·(x − t)`` for the
        point ``t`` (clipped into it), so ``b >= f(t) − s·t + max (f'(t) − s)·(x − t)`` over the
        corners of the enclosures of ``f'(t)`` and ``x − t``. Every step rounded outward."""
        c, A = float(self.center), float(self.slope0)
        fh = self._f_hi

        def term(x):  # >= f(x) − s·x
            return up(fh(x) - down(s * x))

        q = np.minimum(u, 0.0)
        b_cx = np.where(l < 0, np.maximum(term(l), term(q)), -np.inf)
        p = np.maximum(l, 0.0)
        t = np.clip(t, p, u)
        wl = down(func_lower(self._f_vec, t) - c)
        wh = up(fh(t) - c)
        aw = np.maximum(np.abs(wl), np.abs(wh))
        iw = np.where((wl > 0) | (wh < 0), np.minimum(np.abs(wl), np.abs(wh)), 0.0)
        d1lo = np.maximum(down(A - up(aw * aw)), 0.0)
        d1hi = up(A - down(iw * iw))
        e_lo, e_hi = down(d1lo - s), up(d1hi - s)
        x_lo, x_hi = down(p - t), up(u - t)
        emax = np.maximum(
            np.maximum(up(e_lo * x_lo), up(e_lo * x_hi)),
            np.maximum(up(e_hi * x_lo), up(e_hi * x_hi)),
        )
        b_cc = np.where(u > 0, up(term(t) + emax), -np.inf)
        b = np.maximum(b_cx, b_cc)
        return np.where(np.isnan(b), np.inf, b)

    def relax_one(self, l, u, prec=DEFAULT_PREC):
        """Exact rationals ``(a_l, b_l, a_u, b_u)`` with ``a_l·x + b_l <= f(x) <= a_u·x + b_u``
        for x in ``[l, u]``. The upper line: the chord on the convex side (u <= 0), the tangent
        at the midpoint on the concave side (l >= 0), and across 0 the tangent through
        ``(l, f(l))`` (or the chord when that tangent point lies beyond u), as in CROWN; the
        lower line is the upper line of the reflected function (f(x) = 2c − f(−x)). Slopes are
        float64 values. Each line is checked by :meth:`check_line`; a line that fails is
        replaced by the constant ``f(u)`` (upper) or ``f(l)`` (lower), sound as f increases."""
        l, u = to_exact(l), to_exact(u)
        if l > u:
            raise InvalidBoxError(f"{self.name}.relax: lo = {l} > hi = {u} (empty interval)")
        lines = []
        for upper in (True, False):
            try:
                if upper:
                    a, b = self._upper_line(l, u, prec)
                else:  # the upper line of f on [−u, −l], reflected: f(x) = 2c − f(−x)
                    a, b = self._upper_line(-u, -l, prec)
                    b = 2 * self.center - b
                ok = self.check_line(l, u, a, b, upper, prec)
            except (OverflowError, ValueError, ZeroDivisionError):  # float estimates overflow
                ok = False
            if not ok:
                wl, wh = self.w_point(u if upper else l, prec)
                a, b = fmpq(0), (wh if upper else wl) + self.center
            lines.append((a, b))
        (au, bu), (al, bl) = lines
        return al, bl, au, bu

    # -- relaxation internals ----------------------------------------------------------------
    def _f_float(self, x):
        return float(self.center) + self._w_float(x)

    def _d1_float(self, x):
        w = self._w_float(x)
        return float(self.slope0) - w * w

    def _upper_line(self, l, u, prec):
        """An upper line (slope, intercept) of f on ``[l, u]`` (sound by construction)."""
        if l == u:
            return fmpq(0), self.w_point(u, prec)[1] + self.center
        fl = self.w_point(l, prec)[1] + self.center
        fu = self.w_point(u, prec)[1] + self.center
        if u <= 0:
            return self._chord(l, u, fl, fu)
        if l >= 0:
            return self._tangent(l + (u - l) / 2, l, u, prec)
        d = self._tangent_point_from(float(l), float(u))
        if d is None:
            return self._chord(l, u, fl, fu)
        s, b = self._tangent(d, l, u, prec)
        return s, max(b, fl - s * l)  # also above (l, f(l)): concave g on [l, 0], see module

    def _chord(self, l, u, fl, fu):
        """A line above both ``(l, fl)`` and ``(u, fu)`` with a float64 slope ≈ the chord's."""
        s = to_exact(float((fu - fl) / (u - l)))
        return s, max(fl - s * l, fu - s * u)

    def _tangent(self, d, l, u, prec):
        """Upper line from the tangent at a point ``d >= 0`` (f concave there): slope
        ``s`` ≈ f'(d) (a float64), intercept raised by ``|s − f'(d)|·max|x − d|``."""
        d = to_exact(d)
        s = to_exact(self._d1_float(float(d)))
        wl, wh = self.w_point(d, prec)
        g_lo, g_hi = self.d1_from_w(wl, wh)
        err = max(abs(s - g_lo), abs(s - g_hi)) + TANGENT_SLACK
        return s, wh + self.center - s * d + err * max(abs(l - d), abs(u - d))

    def _tangent_point_from(self, l, u):
        """The point ``d`` in ``[0, u]`` whose tangent passes through ``(l, f(l))``, by float
        bisection; ``None`` when it lies beyond ``u`` (then the chord is an upper line)."""
        fl = self._f_float(l)

        def gap(d):  # tangent at d evaluated at l, minus f(l): >= 0 once d is far enough
            return self._f_float(d) + self._d1_float(d) * (l - d) - fl

        if gap(u) <= 0:
            return None
        a, b = 0.0, u
        for _ in range(80):
            m = (a + b) / 2
            if gap(m) > 0:
                b = m
            else:
                a = m
        return b

    def _g_lo(self, x, a, b, upper, prec):
        """Exact lower bound of ``g(x)``: ``line − f`` (upper) or ``f − line`` at the point x."""
        wl, wh = self.w_point(x, prec)
        line = a * x + b
        return line - (wh + self.center) if upper else (wl + self.center) - line

    def _float_argmin(self, x0, x1, a, upper):
        """Float estimate of the minimiser of the convex ``g`` on ``[x0, x1]``: the zero of
        the increasing ``g' = ±(a − f')``, by bisection; an end when g' keeps one sign."""
        sgn = 1.0 if upper else -1.0
        af = float(a)

        def gp(x):
            return sgn * (af - self._d1_float(x))

        lo, hi = float(x0), float(x1)
        if gp(lo) >= 0:
            return x0
        if gp(hi) <= 0:
            return x1
        for _ in range(200):
            m = (lo + hi) / 2
            if m in (lo, hi):
                break
            if gp(m) > 0:
                hi = m
            else:
                lo = m
        return max(to_exact(x0), min(to_exact(x1), to_exact(hi)))

    def check_line(self, lo, hi, a, b, upper, prec=DEFAULT_PREC):
        """Rigorously check ``f(x) <= a·x + b`` (``upper``) or ``f(x) >= a·x + b`` on ``[lo, hi]``.

        Split at 0 into pieces on which the enclosure of f'' has one sign (f convex or
        concave there; checked, not assumed). Where ``g = ±(line − f)`` is concave its minimum
        is at an end, so ``g(x0), g(x1) >= 0`` suffice. Where g is convex,
        ``g(x) >= g(p) + g'(p)(x − p)`` for every x and any p, so the minimum of that line over
        the piece, ``g(p) + min(0, g'(p)(x0 − p), g'(p)(x1 − p))``, must be >= 0; p is a float
        estimate of the minimiser.
        Every quantity is an outward enclosure from exact rationals."""
        lo, hi = to_exact(lo), to_exact(hi)
        pieces = []
        if lo < 0:
            pieces.append((lo, min(hi, fmpq(0))))
        if hi > 0 or not pieces:
            pieces.append((max(lo, fmpq(0)), hi))
        for x0, x1 in pieces:
            d2lo, d2hi = self.d2_from_w(*self.w_range(x0, x1, prec))
            if d2hi <= 0:
                g_convex = upper
            elif d2lo >= 0:
                g_convex = not upper
            else:
                return False
            if not g_convex:
                if self._g_lo(x0, a, b, upper, prec) < 0 or self._g_lo(x1, a, b, upper, prec) < 0:
                    return False
                continue
            try:
                p = self._float_argmin(x0, x1, a, upper)
            except (OverflowError, ValueError):
                p = x0 + (x1 - x0) / 2
            d1lo, d1hi = self.d1_from_w(*self.w_point(p, prec))
            gp_lo, gp_hi = (a - d1hi, a - d1lo) if upper else (d1lo - a, d1hi - a)
            drop = min(fmpq(0), -(p - x0) * gp_hi, (x1 - p) * gp_lo)
            if self._g_lo(p, a, b, upper, prec) + drop < 0:
                return False
        return True

    def jet_step(self, ctx, node, jets, order, rule):
        """``u' = f'(x)·d'`` and ``u'' = f''(x)·d'² + f'(x)·d''`` over the value box ``x``, with
        f', f'' enclosed outward (a ``bound``)."""
        j = jets[0]
        x = j.value
        F1 = elems(ctx, self.derivative_range(ctx, x))
        D1 = elems(ctx, j.d1)
        d1 = [f * d for f, d in zip(F1, D1)]
        d2 = None
        if order >= 2:
            F2 = elems(ctx, self.second_derivative_range(ctx, x))
            D2 = elems(ctx, j.d2)
            d2 = to_box(
                ctx,
                [f2 * square(ctx, d) + f1 * dd for f2, d, f1, dd in zip(F2, D1, F1, D2)],
                x.shape,
            )
        return JetStep(to_box(ctx, d1, x.shape), d2, rounded=True)

    def __repr__(self):
        return f"{type(self).__name__}({self.out_shape}, name={self.name!r})"


@register
class Sigmoid(_SShaped):
    """σ(x) = 1/(1 + e^(−x)) (ONNX ``Sigmoid``); c = 1/2, A = σ'(0) = 1/4."""

    kind = "sigmoid"
    center = fmpq(1, 2)
    slope0 = fmpq(1, 4)

    def _w_arb(self, x):
        return 1 / (1 + (-x).exp()) - arb(fmpq(1, 2))

    def _w_iv(self, iv, x):
        return 1 / (1 + iv.exp(-x)) - iv.mpf(1) / 2

    def _w_float(self, x):
        if x >= 0:
            return 1 / (1 + math.exp(-x)) - 0.5
        e = math.exp(x)
        return e / (1 + e) - 0.5

    def _sym(self, sp, x):
        return 1 / (1 + sp.exp(-x))

    _f_vec = staticmethod(sigmoid_float)


@register
class Tanh(_SShaped):
    """tanh(x) (ONNX ``Tanh``); c = 0, A = tanh'(0) = 1. In mpmath ``iv`` (no ``tanh``) it is
    ``1 − 2/(e^(2x) + 1)``: increasing with a single occurrence of x, so the interval is sharp."""

    kind = "tanh"
    center = fmpq(0)
    slope0 = fmpq(1)

    def _w_arb(self, x):
        return x.tanh()

    def _w_iv(self, iv, x):
        return 1 - 2 / (iv.exp(2 * x) + 1)

    def _w_float(self, x):
        return math.tanh(x)

    def _sym(self, sp, x):
        return sp.tanh(x)

    _f_vec = staticmethod(np.tanh)
