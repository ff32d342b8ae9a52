"""Softmax over groups of entries, and the discrete ``ArgMax`` and ``OneHot``.

Softmax: ``y_i = e^{x_i} / Σ_{j ∈ G(i)} e^{x_j} = 1 / (1 + Σ_{j ≠ i} e^{x_j − x_i})``; increasing
in ``x_i`` and decreasing in every other ``x_j``, so its IBP is exact at the corners:
``lo_i = 1/(1 + Σ e^{hi_j − lo_i})``, ``hi_i = 1/(1 + Σ e^{lo_j − hi_i})``, enclosed with
``arb`` and rounded outward. No linear relaxation (CROWN names the node). ArgMax: the possible
indices are those whose upper bound reaches the largest lower bound; OneHot of an index box.
"""
import flint
from flint import arb, fmpq

from ..core import Box
from ..numbers import arb_ends
from .base import Op, as_shape


class Softmax(Op):
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
                    lo, hi = arb_ends(1 / s)
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
        return Box([ctx.const(p[0]) for p in a], [ctx.const(q[1]) for q in b], self.out_shape)


class ArgMax(Op):
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


class OneHot(Op):
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
            out += [ctx.from_ends(a, b) if a != b else ctx.const(a)
                    for a, b in self._row(ctx, ctx.lower(v), ctx.upper(v))]
        return out

    def ibp(self, ctx, box):
        self.check_inputs([box.dim], "input box")
        los, his = [], []
        for a, b in zip(box.lo, box.hi):
            for p, q in self._row(ctx, ctx.lower(ctx.coerce(a)), ctx.upper(ctx.coerce(b))):
                los.append(ctx.const(p))
                his.append(ctx.const(q))
        return Box(los, his, self.out_shape)
