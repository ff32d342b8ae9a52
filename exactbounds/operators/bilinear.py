"""Products of two computed tensors: ``y_i = Σ_{(p, q) ∈ T_i} a_p·b_q`` (``MatMul`` of two
variable tensors, elementwise ``Mul`` with broadcasting).

IBP: the interval product of each term (the four corner products), summed. Relaxation: per term
the McCormick planes on ``[la, ua] × [lb, ub]``: ``a·b >= la·b + lb·a − la·lb`` and
``a·b <= ua·b + lb·a − ua·lb`` (valid on the whole box, exact rationals).
"""

from flint import fmpq, fmpq_mat

from ..core import Box
from .base import LinearRelaxed, as_shape
from .registry import register


@register
class Bilinear(LinearRelaxed):
    """``Bilinear(shape_a, shape_b, out_shape, terms)``: ``terms[i]`` the list of ``(p, q)``
    with ``y_i = Σ a_p·b_q`` (flat indices)."""

    kind = "bilinear"

    def __init__(self, shape_a, shape_b, out_shape, terms, name="bilinear"):
        self.name = name
        self.in_shapes = (as_shape(shape_a, name), as_shape(shape_b, name))
        self.out_shape = as_shape(out_shape, name)
        self.terms = [list(t) for t in terms]

    def evaluate(self, ctx, a, b):
        self.check_inputs([len(a), len(b)], "x")
        a, b = [ctx.coerce(v) for v in a], [ctx.coerce(v) for v in b]
        out = []
        for t in self.terms:
            acc = ctx.const(0)
            for p, q in t:
                acc = acc + a[p] * b[q]
            out.append(acc)
        return out

    def _ends(self, ctx, box):
        return (
            [ctx.lower(ctx.coerce(v)) for v in box.lo],
            [ctx.upper(ctx.coerce(v)) for v in box.hi],
        )

    def ibp(self, ctx, A, B):
        """Σ of the exact interval products ``[min, max]`` of the four corners."""
        self.check_inputs([A.dim, B.dim], "input box")
        (la, ua), (lb, ub) = self._ends(ctx, A), self._ends(ctx, B)
        los, his = [], []
        for t in self.terms:
            lo = hi = fmpq(0)
            for p, q in t:
                c = (la[p] * lb[q], la[p] * ub[q], ua[p] * lb[q], ua[p] * ub[q])
                lo, hi = lo + min(c), hi + max(c)
            los.append(ctx.const(ctx.round_bound(lo, False)))  # outward where bounds round
            his.append(ctx.const(ctx.round_bound(hi, True)))
        return Box(los, his, self.out_shape)

    def relax_linear(self, ctx, ends, **_):
        (la, ua), (lb, ub) = ends
        m = self.out_dim
        na, nb = len(la), len(lb)
        LA, LB, UA, UB = fmpq_mat(m, na), fmpq_mat(m, nb), fmpq_mat(m, na), fmpq_mat(m, nb)
        Lb, Ub = fmpq_mat(m, 1), fmpq_mat(m, 1)
        for i, t in enumerate(self.terms):
            for p, q in t:
                # lower: la·b + lb·a − la·lb ; upper: ua·b + lb·a − ua·lb
                LB[i, q] += la[p]
                LA[i, p] += lb[q]
                Lb[i, 0] -= la[p] * lb[q]
                UB[i, q] += ua[p]
                UA[i, p] += lb[q]
                Ub[i, 0] -= ua[p] * lb[q]
        return [LA, LB], Lb, [UA, UB], Ub
