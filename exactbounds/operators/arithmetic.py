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

from ..errors import ShapeError
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
        self.constant = None if constant is None else _vector(constant, n,
                                                               f"{self.name}.constant")
        self.in_shapes = (s,) if constant is not None else (s, s)
        self.out_shape = s

    def linear_params(self):
        n = self.out_dim
        eye = _diag([1] * n)
        if self.constant is None:
            return [eye, eye * self.sign2], fmpq_mat(n, 1)
        return [eye], fmpq_mat(n, 1, [self.sign2 * c for c in self.constant])


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

    def linear_params(self):
        return [_diag(self.factor)], fmpq_mat(len(self.offset), 1, self.offset)
