"""Elementwise affine arithmetic: ``Add`` and ``Sub`` of two tensors (residual connections)
or of a tensor and a constant, and ``Scale`` (multiplication by exact constants: ONNX ``Mul``
and ``Div`` by constants, e.g. input normalisation).

``Add(shape)``: ``y = x1 + x2``; ``Add(shape, constant=c)``: ``y = x + c``.
``Sub(shape)``: ``y = x1 − x2``; ``Sub(shape, constant=c)``: ``y = x − c``.
``Scale(shape, factor, offset=None)``: ``y = factor ⊙ x + offset``.
Constants are a scalar or a flat list of the tensor's size (broadcast beforehand); they enter
exactly. All are :class:`~exactbounds.operators.base.AffineOp` (diagonal matrices).
"""

from math import prod

from flint import fmpq_mat

from ..core import Box
from ..errors import ShapeError
from ..linalg.fast_ibp import add_fbox, diag_fbox, diag_floats
from ..linalg.structured import DiagPart, LinearMap
from ..numbers import to_exact
from .base import AffineOp, as_shape
from .registry import register


def _vector(v, n, what):
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        flat = []
        stack = [v]
        while stack:  # row-major flattening of nested lists
            t = stack.pop()
            if isinstance(t, (list, tuple)):
                stack.extend(reversed(t))
            else:
                flat.append(t)
        if len(flat) == 1:
            flat = flat * n
        if len(flat) != n:
            raise ShapeError(f"{what} has {len(flat)} entries, the tensor has {n}")
        return [to_exact(x, f"{what}[{i}]") for i, x in enumerate(flat)]
    return [to_exact(v, what)] * n


def _diag(vals):
    n = len(vals)
    M = fmpq_mat(n, n)
    for i, v in enumerate(vals):
        M[i, i] = v
    return M


class _Elementwise(AffineOp):
    sign2 = 1

    def __init__(self, shape, constant=None, name=None):
        self.name = name or self.kind
        s = as_shape(shape, self.name)
        n = prod(s)
        self.constant = None if constant is None else _vector(constant, n, f"{self.name}.constant")
        self.in_shapes = (s,) if constant is not None else (s, s)
        self.out_shape = s

    # evaluation and IBP entry by entry (the same values as the diagonal matrices, without
    # building an n×n matrix for a large tensor)
    def evaluate(self, ctx, *xs):
        self.check_inputs([len(x) for x in xs], "x")
        a = [ctx.coerce(v) for v in xs[0]]
        if self.constant is None:
            b = [ctx.coerce(v) for v in xs[1]]
            return (
                [u + v for u, v in zip(a, b)] if self.sign2 > 0 else [u - v for u, v in zip(a, b)]
            )
        return [u + ctx.const(self.sign2 * c) for u, c in zip(a, self.constant)]

    def ibp(self, ctx, *boxes):
        """``[lo1 + lo2, hi1 + hi2]`` (Add), ``[lo1 − hi2, hi1 − lo2]`` (Sub), ``± c``."""
        self.check_inputs([b.dim for b in boxes], "input box")
        if self.constant is not None:
            return Box(
                self.evaluate(ctx, boxes[0].lo), self.evaluate(ctx, boxes[0].hi), self.out_shape
            )
        A, B = boxes
        if self.sign2 > 0:
            return Box(
                self.evaluate(ctx, A.lo, B.lo), self.evaluate(ctx, A.hi, B.hi), self.out_shape
            )
        return Box(self.evaluate(ctx, A.lo, B.hi), self.evaluate(ctx, A.hi, B.lo), self.out_shape)

    def linear_params(self):
        n = self.out_dim
        eye = _diag([1] * n)
        if self.constant is None:
            return [eye, eye * self.sign2], fmpq_mat(n, 1)
        return [eye], fmpq_mat(n, 1, [self.sign2 * c for c in self.constant])

    def linear_map(self):
        """``±`` identities (CROWN passes the functional on; no dense identity)."""
        if getattr(self, "_lin", None) is None:
            n = self.out_dim
            if self.constant is None:
                parts = [DiagPart(n), DiagPart(n, sign=self.sign2)]
                b = fmpq_mat(n, 1)
            else:
                parts = [DiagPart(n)]
                b = fmpq_mat(n, 1, [self.sign2 * c for c in self.constant])
            self._lin = LinearMap(parts, b)
        return self._lin

    def ibp_fast(self, ctx, *fboxes):
        """On float boxes: ends added (subtracted) with one outward step each; a constant as a
        diagonal map (no dense identity)."""
        if self.constant is None:
            return add_fbox(*fboxes, self.sign2)
        return _diag_fast(
            self, [1] * self.out_dim, [self.sign2 * c for c in self.constant], fboxes[0]
        )


def _diag_fast(op, factor, offset, fbox):
    """IBP of ``factor ⊙ x + offset`` on a float box, the float vectors built once per op."""
    got = op.__dict__.get("_fast_diag")
    if got is None:
        got = op.__dict__["_fast_diag"] = diag_floats(factor, offset)
    fm, fr, off = got
    return diag_fbox(fm, fr, off, fbox)


@register
class Add(_Elementwise):
    """``x1 + x2`` (two inputs of the same shape), or ``x + constant``."""

    kind = "add"


@register
class Sub(_Elementwise):
    """``x1 − x2`` (two inputs of the same shape), or ``x − constant``."""

    kind = "sub"
    sign2 = -1


@register
class Scale(AffineOp):
    """``factor ⊙ x + offset`` with exact constant vectors (or scalars)."""

    kind = "scale"

    def __init__(self, shape, factor, offset=None, name="scale"):
        self.name = name
        s = as_shape(shape, name)
        n = prod(s)
        self.factor = _vector(factor, n, f"{name}.factor")
        self.offset = _vector(0 if offset is None else offset, n, f"{name}.offset")
        self.in_shapes, self.out_shape = (s,), s

    def evaluate(self, ctx, x):
        self.check_inputs([len(x)], "x")
        return [
            ctx.const(f) * ctx.coerce(v) + ctx.const(o)
            for f, v, o in zip(self.factor, x, self.offset)
        ]

    def ibp(self, ctx, box):
        """``f·lo + o`` and ``f·hi + o``, swapped where ``f < 0`` (entry by entry)."""
        self.check_inputs([box.dim], "input box")
        lo, hi = [], []
        for f, a, b, o in zip(self.factor, box.lo, box.hi, self.offset):
            fc, oc = ctx.const(f), ctx.const(o)
            u, v = fc * ctx.coerce(a) + oc, fc * ctx.coerce(b) + oc
            lo.append(u if f >= 0 else v)
            hi.append(v if f >= 0 else u)
        return Box(lo, hi, self.out_shape)

    def linear_params(self):
        return [_diag(self.factor)], fmpq_mat(len(self.offset), 1, self.offset)

    def linear_map(self):
        """A diagonal (no dense matrix)."""
        if getattr(self, "_lin", None) is None:
            n = self.out_dim
            self._lin = LinearMap([DiagPart(n, self.factor)], fmpq_mat(n, 1, self.offset))
        return self._lin

    def ibp_fast(self, ctx, fbox):
        """On a float box: a diagonal map (no dense matrix)."""
        return _diag_fast(self, self.factor, self.offset, fbox)
