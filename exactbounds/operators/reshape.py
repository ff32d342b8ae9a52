"""Shape-only operators: ``Identity``, ``Flatten`` and ``Reshape`` (row-major, as ONNX and
numpy). Values pass through unchanged; only the recorded shape changes."""

from math import prod

from ..errors import ShapeError
from .base import PassThrough, as_shape
from .registry import register


@register
class Identity(PassThrough):
    """``y = x``; ``Identity(shape)``."""

    kind = "identity"

    def __init__(self, shape, name="identity"):
        self.name = name
        s = as_shape(shape, name)
        self.in_shapes, self.out_shape = (s,), s


@register
class Reshape(PassThrough):
    """``Reshape(in_shape, out_shape)``: same entries in row-major order; one ``-1`` in
    ``out_shape`` is inferred."""

    kind = "reshape"

    def __init__(self, in_shape, out_shape, name="reshape"):
        self.name = name
        s = as_shape(in_shape, name)
        o = [int(d) for d in (out_shape if isinstance(out_shape, (list, tuple)) else [out_shape])]
        if o.count(-1) > 1:
            raise ShapeError(f"{name}: out_shape {o} has more than one -1")
        if -1 in o:
            rest = prod(d for d in o if d != -1)
            if rest <= 0 or prod(s) % rest:
                raise ShapeError(f"{name}: cannot infer -1 in {o} from {prod(s)} entries")
            o[o.index(-1)] = prod(s) // rest
        o = as_shape(o, name)
        if prod(o) != prod(s):
            raise ShapeError(f"{name}: cannot reshape {s} ({prod(s)} entries) to {o}")
        self.in_shapes, self.out_shape = (s,), o


@register
class Flatten(Reshape):
    """``Flatten(in_shape)``: ``(d0, d1, ...) -> (d0·d1·...,)``."""

    kind = "flatten"

    def __init__(self, in_shape, name="flatten"):
        super().__init__(in_shape, [-1], name)
