"""Softmax over groups of entries, and the discrete ``ArgMax`` and ``OneHot``.

Softmax: ``y_i = e^{x_i} / Σ_{j ∈ G(i)} e^{x_j} = 1 / (1 + Σ_{j ≠ i} e^{x_j − x_i})``; increasing
in ``x_i`` and decreasing in every other ``x_j``, so its IBP is exact at the corners:
``lo_i = 1/(1 + Σ e^{hi_j − lo_i})``, ``hi_i = 1/(1 + Σ e^{lo_j − hi_i})``, enclosed with
``arb`` and rounded outward. ArgMax: the possible indices are those whose upper bound reaches the
largest lower bound; OneHot of an index box; Equal of two tensors; truncation toward zero (a
Cast to an integer type).

CROWN and forward affine bound each of these by the constant lines of its own IBP on the input
boxes (:class:`IbpRelaxed`: ``0·x + lo <= y <= 0·x + hi``), sound and no tighter than IBP.
"""

import flint
from flint import arb, fmpq, fmpq_mat

from ..core import Box
from ..numbers import arb_ends, make_context
from .base import LinearRelaxed, as_shape
from .registry import register


class IbpRelaxed(LinearRelaxed):
    """The constant lines ``lo <= y <= hi`` of the operator's IBP over the exact input boxes."""

    def relax_linear(self, ctx, ends, **_):
        exact = make_context("exact")
        boxes = [Box(lo, hi) for lo, hi in ends]
        lo, hi = self.ibp(exact, *boxes).outer(exact)
        m = self.out_dim
        zs = [fmpq_mat(m, len(lo_k)) for lo_k, _ in ends]
        return (
            zs,
            fmpq_mat(m, 1, lo),
            [fmpq_mat(m, len(lo_k)) for lo_k, _ in ends],
            fmpq_mat(m, 1, hi),
        )


@register
class Softmax(IbpRelaxed):
    """``Softmax(shape, groups)``: ``groups`` lists of flat indices (each a softmax)."""

    kind = "softmax"

    def __init__(self, shape, groups, name="softmax"):
        self.name = name
        s = as_shape(shape, name)
        self.in_shapes, self.out_shape = (s,), s
        self.groups = [list(g) for g in groups]

    def _enclose(self, ctx, xlo, xhi, lower):
        """Exact ends enclosing ``1/(1 + Σ_{j≠i} e^{x_j − x_i})`` at the corner (lower: ``x_i``
        low, others high)."""
        out = [None] * len(xlo)
        with flint.ctx.workprec(ctx.func_prec):
            for g in self.groups:
                for i in g:
                    xi = arb(xlo[i] if lower else xhi[i])
                    s = arb(1)
                    for j in g:
                        if j != i:
                            s += (arb(xhi[j] if lower else xlo[j]) - xi).exp()
                    # ends below 2^-prec (e^-1000, say) become 0 and 2^-prec: still outward,
                    # and later sums need not carry thousands of bits
                    tiny = fmpq(1, 2**ctx.func_prec)
                    r = 1 / s
                    if r < arb(tiny):  # the whole ball below 2^-prec: no exact ends needed
                        out[i] = (fmpq(0), tiny)
                        continue
                    lo, hi = arb_ends(r)
                    lo = fmpq(0) if lo < tiny else lo
                    hi = tiny if hi < tiny else hi
                    out[i] = (max(lo, fmpq(0)), min(hi, fmpq(1)))
        return out

    def evaluate(self, ctx, x):
        self.check_inputs([len(x)], "x")
        lo = [ctx.lower(ctx.coerce(v)) for v in x]
        hi = [ctx.upper(ctx.coerce(v)) for v in x]
        a, b = self._enclose(ctx, lo, hi, True), self._enclose(ctx, lo, hi, False)
        return [ctx.from_ends(p[0], q[1]) for p, q in zip(a, b)]

    def ibp(self, ctx, box):
        self.check_inputs([box.dim], "input box")
        lo = [ctx.lower(ctx.coerce(v)) for v in box.lo]
        hi = [ctx.upper(ctx.coerce(v)) for v in box.hi]
        a, b = self._enclose(ctx, lo, hi, True), self._enclose(ctx, lo, hi, False)
        return Box(
            [ctx.const(ctx.round_bound(p[0], False)) for p in a],
            [ctx.const(ctx.round_bound(q[1], True)) for q in b],
            self.out_shape,
        )


@register
class ArgMax(IbpRelaxed):
    """``ArgMax(in_shape, groups, last=False)``: output ``r`` is the position (within
    ``groups[r]``) of the largest entry, the first (or last) on ties."""

    kind = "argmax"

    def __init__(self, in_shape, out_shape, groups, last=False, name="argmax"):
        self.name = name
        self.in_shapes, self.out_shape = (as_shape(in_shape, name),), as_shape(out_shape, name)
        self.groups, self.last = [list(g) for g in groups], bool(last)

    def evaluate(self, ctx, x):
        self.check_inputs([len(x)], "x")
        x = [ctx.coerce(v) for v in x]
        out = []
        for g in self.groups:
            if ctx.all_exact([x[j] for j in g]):
                vals = [x[j] for j in g]
                m = max(vals)
                ks = [k for k, v in enumerate(vals) if v == m]
                out.append(ctx.const(ks[-1] if self.last else ks[0]))
            else:
                ks = self._possible(ctx, [x[j] for j in g], [x[j] for j in g])
                out.append(ctx.from_ends(fmpq(min(ks)), fmpq(max(ks))))
        return out

    @staticmethod
    def _possible(ctx, lo, hi):
        lo = [ctx.lower(v) for v in lo]
        hi = [ctx.upper(v) for v in hi]
        m = max(lo)
        return [k for k, h in enumerate(hi) if h >= m]

    def ibp(self, ctx, box):
        """The smallest and largest index that can be the maximum."""
        self.check_inputs([box.dim], "input box")
        lo, hi = [ctx.coerce(v) for v in box.lo], [ctx.coerce(v) for v in box.hi]
        los, his = [], []
        for g in self.groups:
            ks = self._possible(ctx, [lo[j] for j in g], [hi[j] for j in g])
            los.append(ctx.const(min(ks)))
            his.append(ctx.const(max(ks)))
        return Box(los, his, self.out_shape)


@register
class OneHot(IbpRelaxed):
    """``OneHot(in_shape, depth, off, on)``: ``y[i, d] = on`` if ``x_i = d`` (``x_i + depth``
    for a negative index) else ``off``; non-integer inputs are never equal to any ``d``."""

    kind = "onehot"

    def __init__(self, in_shape, depth, off, on, name="onehot"):
        self.name = name
        s = as_shape(in_shape, name)
        self.depth, self.off, self.on = int(depth), fmpq(off), fmpq(on)
        self.in_shapes, self.out_shape = (s,), s + (self.depth,)

    def _row(self, ctx, lo, hi):
        """Possible values at each depth position for an index in ``[lo, hi]``."""
        out = []
        for d in range(self.depth):
            hit = any(lo <= v <= hi for v in (d, d - self.depth))
            miss = not (lo == hi and lo in (d, d - self.depth))
            vals = ([self.on] if hit else []) + ([self.off] if miss else [])
            out.append((min(vals), max(vals)))
        return out

    def evaluate(self, ctx, x):
        self.check_inputs([len(x)], "x")
        out = []
        for v in x:
            v = ctx.coerce(v)
            out += [
                ctx.from_ends(a, b) if a != b else ctx.const(a)
                for a, b in self._row(ctx, ctx.lower(v), ctx.upper(v))
            ]
        return out

    def ibp(self, ctx, box):
        self.check_inputs([box.dim], "input box")
        los, his = [], []
        for a, b in zip(box.lo, box.hi):
            for p, q in self._row(ctx, ctx.lower(ctx.coerce(a)), ctx.upper(ctx.coerce(b))):
                los.append(ctx.const(p))
                his.append(ctx.const(q))
        return Box(los, his, self.out_shape)


@register
class EqualOp(IbpRelaxed):
    """``EqualOp(shape_a, shape_b, out_shape, pairs)``: ``y_i = 1`` where ``a_p = b_q`` for
    ``(p, q) = pairs[i]`` (broadcasting), else 0."""

    kind = "equal"

    def __init__(self, shape_a, shape_b, out_shape, pairs, name="equal"):
        self.name = name
        self.in_shapes = (as_shape(shape_a, name), as_shape(shape_b, name))
        self.out_shape = as_shape(out_shape, name)
        self.pairs = [(int(p), int(q)) for p, q in pairs]

    @staticmethod
    def _range(al, ah, bl, bh):
        if ah < bl or bh < al:
            return fmpq(0), fmpq(0)
        if al == ah == bl == bh:
            return fmpq(1), fmpq(1)
        return fmpq(0), fmpq(1)

    def _all(self, ctx, A, B):
        (al, ah), (bl, bh) = A, B
        return [
            self._range(
                ctx.lower(ctx.coerce(al[p])),
                ctx.upper(ctx.coerce(ah[p])),
                ctx.lower(ctx.coerce(bl[q])),
                ctx.upper(ctx.coerce(bh[q])),
            )
            for p, q in self.pairs
        ]

    def evaluate(self, ctx, a, b):
        self.check_inputs([len(a), len(b)], "x")
        return [
            ctx.const(p) if p == q else ctx.from_ends(p, q)
            for p, q in self._all(ctx, (a, a), (b, b))
        ]

    def ibp(self, ctx, A, B):
        self.check_inputs([A.dim, B.dim], "input box")
        r = self._all(ctx, (A.lo, A.hi), (B.lo, B.hi))
        return Box([ctx.const(p) for p, _ in r], [ctx.const(q) for _, q in r], self.out_shape)


def trunc(q):
    """``q`` rounded toward zero (an exact rational)."""
    p, d = int(q.p), int(q.q)
    return fmpq(p // d if p >= 0 else -((-p) // d))


@register
class Trunc(IbpRelaxed):
    """``Trunc(shape)``: ``y = trunc(x)`` (ONNX Cast of a float tensor to an integer type);
    monotone, so IBP is ``[trunc(lo), trunc(hi)]``."""

    kind = "trunc"

    def __init__(self, shape, name="trunc"):
        self.name = name
        s = as_shape(shape, name)
        self.in_shapes, self.out_shape = (s,), s

    def _value(self, ctx, x):
        a, b = trunc(ctx.lower(x)), trunc(ctx.upper(x))
        return ctx.const(a) if a == b else ctx.from_ends(a, b)

    def evaluate(self, ctx, x):
        self.check_inputs([len(x)], "x")
        return [self._value(ctx, ctx.coerce(v)) for v in x]

    def ibp(self, ctx, box):
        self.check_inputs([box.dim], "input box")
        return Box(
            [ctx.const(trunc(ctx.lower(ctx.coerce(v)))) for v in box.lo],
            [ctx.const(trunc(ctx.upper(ctx.coerce(v)))) for v in box.hi],
            self.out_shape,
        )
