"""ONNX data-movement operators on numpy arrays, shared by constant folding and index maps.

:func:`move` applies Transpose, Slice, Gather, Concat, Pad, Squeeze, Unsqueeze, Reshape,
Flatten, Expand, Identity/Dropout to arrays: the exact constants (``fmpq`` object arrays or
``int64``) when every input is constant, or the arrays of entry ids of
:class:`~exactbounds.operators.indexmap.IndexMap` when some input is computed (the same
operation on ids gives the index map). Parameters come from attributes (older opsets) or from
constant inputs (newer opsets); :func:`fold` evaluates the remaining shape arithmetic on
constants (Shape, Cast, ConstantOfShape, Equal, Neg, + − × ÷, Range, Where, ...), exactly.
"""

from fractions import Fraction
from math import isqrt

import numpy as np
from flint import fmpq

from ..errors import InvalidModelError, MalformedFileError, ShapeError, UnsupportedOperatorError

MOVES = (
    "Transpose",
    "Slice",
    "Gather",
    "Concat",
    "Pad",
    "Squeeze",
    "Unsqueeze",
    "Reshape",
    "Flatten",
    "Expand",
    "Identity",
    "Dropout",
    "Tile",
)
FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
INT_TYPES = (2, 3, 4, 5, 6, 7, 9, 12, 13)  # the integer types and BOOL


def _axis(a, rank, where):
    a = int(a)
    if a < 0:
        a += rank
    if not 0 <= a < rank:
        raise ShapeError(f"{where}: axis {a} out of range for rank {rank}")
    return a


def _ints(arr):
    return [int(v) for v in np.asarray(arr).ravel().tolist()]


class Params:
    """Integer parameters of a node: an attribute (older opsets) or a constant input."""

    def __init__(self, node, const):
        self.node, self.const = node, const

    def get(self, attr, index, default=None):
        n = self.node
        if attr in n.attrs:
            return _ints(n.attrs[attr])
        if index is not None and len(n.inputs) > index and n.inputs[index]:
            c = self.const(n.inputs[index])
            if c is None:
                raise UnsupportedOperatorError(
                    f"{n.where()}: input {index} ({attr}) must be a constant"
                )
            return _ints(c)
        return default


def slice_indices(dim, start, end, step, where):
    """ONNX Slice semantics on one axis: the selected indices (clamped as the spec says)."""
    if step == 0:
        raise InvalidModelError(f"{where}: slice step 0")
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return list(range(start, end, step))


def reshape_target(node, shape, target):
    allowzero = int(node.attrs.get("allowzero", 0))
    size = int(np.prod(shape)) if len(shape) else 1
    out = []
    for k, d in enumerate(target):
        if d == 0 and not allowzero:
            if k >= len(shape):
                raise ShapeError(
                    f"{node.where()}: shape entry {k} is 0 (copy) but the input "
                    f"{tuple(shape)} has no dimension {k}"
                )
            d = shape[k]
        out.append(int(d))
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise ShapeError(f"{node.where()}: invalid target shape {target}")
    if -1 in out:
        rest = int(np.prod([d for d in out if d != -1])) if len(out) > 1 else 1
        if rest == 0 or size % rest:
            raise ShapeError(f"{node.where()}: cannot reshape {tuple(shape)} to {target}")
        out[out.index(-1)] = size // rest
    if int(np.prod(out)) != size:
        raise ShapeError(
            f"{node.where()}: cannot reshape {tuple(shape)} ({size} entries) to {tuple(out)}"
        )
    return tuple(out)


def move(node, arrays, const, opset, pad_value=None):
    """The data-movement ``node`` applied to ``arrays`` (one per data input; for Concat all of
    them). ``const(name)`` reads constant inputs (parameters); ``pad_value(v)`` turns Pad's
    constant value into an array entry (an id for index maps)."""
    t, w = node.op_type, node.where()
    P = Params(node, const)
    x = arrays[0]
    r = x.ndim
    if t in ("Identity", "Dropout"):
        return x
    if t == "Transpose":
        perm = P.get("perm", None, list(range(r))[::-1])
        if sorted(perm) != list(range(r)):
            raise ShapeError(f"{w}: perm {perm} for rank {r}")
        return np.transpose(x, perm)
    if t == "Slice":
        if opset < 10 and "starts" in node.attrs:
            starts, ends = _ints(node.attrs["starts"]), _ints(node.attrs["ends"])
            axes = _ints(node.attrs.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts, ends = P.get("starts", 1), P.get("ends", 2)
            if starts is None or ends is None:
                raise MalformedFileError(f"{w}: Slice without starts/ends")
            axes = P.get("axes", 3, list(range(len(starts))))
            steps = P.get("steps", 4, [1] * len(starts))
        out = x
        for s, e, a, st in zip(starts, ends, axes, steps):
            a = _axis(a, r, w)
            out = np.take(out, slice_indices(x.shape[a], s, e, st, w), axis=a)
        return out
    if t == "Gather":
        idx = const(node.inputs[1])
        if idx is None:
            raise UnsupportedOperatorError(f"{w}: the indices must be a constant")
        a = _axis(node.attrs.get("axis", 0), r, w)
        idx = np.asarray(idx).astype(np.int64)
        if np.any(idx < -x.shape[a]) or np.any(idx >= x.shape[a]):
            raise ShapeError(f"{w}: an index is out of range for dimension {x.shape[a]}")
        return np.take(x, np.where(idx < 0, idx + x.shape[a], idx), axis=a)
    if t == "Concat":
        a = _axis(node.attrs.get("axis", 0), r, w)
        try:
            return np.concatenate(arrays, axis=a)
        except ValueError:
            raise ShapeError(
                f"{w}: shapes {[tuple(v.shape) for v in arrays]} do not concatenate on axis {a}"
            ) from None
    if t == "Squeeze":
        axes = P.get("axes", 1)
        axes = (
            [i for i, d in enumerate(x.shape) if d == 1]
            if axes is None
            else [_axis(a, r, w) for a in axes]
        )
        if any(x.shape[a] != 1 for a in axes):
            raise ShapeError(f"{w}: cannot squeeze axes {axes} of shape {tuple(x.shape)}")
        return np.squeeze(x, axis=tuple(axes))
    if t == "Unsqueeze":
        axes = P.get("axes", 1)
        if axes is None:
            raise MalformedFileError(f"{w}: Unsqueeze without axes")
        n = r + len(axes)
        axes = sorted(_axis(a, n, w) for a in axes)
        out = x
        for a in axes:
            out = np.expand_dims(out, a)
        return out
    if t == "Reshape":
        target = P.get("shape", 1)
        if target is None:
            raise MalformedFileError(f"{w}: Reshape without a target shape")
        return x.reshape(reshape_target(node, x.shape, target))
    if t == "Flatten":
        a = int(node.attrs.get("axis", 1))
        a = a + r if a < 0 else a
        if not 0 <= a <= r:
            raise ShapeError(f"{w}: axis {a} out of range for rank {r}")
        return x.reshape((int(np.prod(x.shape[:a])), int(np.prod(x.shape[a:]))))
    if t == "Expand":
        shape = P.get("shape", 1)
        try:
            full = np.broadcast_shapes(x.shape, tuple(shape))
        except ValueError:
            raise ShapeError(f"{w}: shape {tuple(x.shape)} does not expand to {shape}") from None
        return np.broadcast_to(x, full).copy()
    if t == "Tile":
        reps = P.get("repeats", 1)
        return np.tile(x, reps)
    if t == "Pad":
        pads = P.get("pads", 1)
        if pads is None:
            raise MalformedFileError(f"{w}: Pad without pads")
        axes = P.get("axes", 3, list(range(r)))
        axes = [_axis(a, r, w) for a in axes]
        if len(pads) != 2 * len(axes):
            raise ShapeError(f"{w}: pads {pads} for {len(axes)} axes")
        if any(p < 0 for p in pads):
            raise UnsupportedOperatorError(f"{w}: negative pads {pads} are not supported")
        width = [(0, 0)] * r
        for k, a in enumerate(axes):
            width[a] = (pads[k], pads[k + len(axes)])
        mode = node.attrs.get("mode", "constant")
        if mode == "constant":
            if "value" in node.attrs:
                v = fmpq(*float(node.attrs["value"]).as_integer_ratio())
            elif len(node.inputs) > 2 and node.inputs[2]:
                c = const(node.inputs[2])
                if c is None:
                    raise UnsupportedOperatorError(f"{w}: the pad value must be a constant")
                v = np.asarray(c).ravel().tolist()[0]
            else:
                v = fmpq(0)
            fill = pad_value(v) if pad_value else v
            out = np.empty(tuple(d + a + b for d, (a, b) in zip(x.shape, width)), dtype=x.dtype)
            out[...] = fill
            out[tuple(slice(a, a + d) for d, (a, _) in zip(x.shape, width))] = x
            return out
        if mode in ("edge", "reflect"):
            return np.pad(x, width, mode=mode)
        raise UnsupportedOperatorError(f"{w}: Pad mode {mode!r} is not supported")
    raise UnsupportedOperatorError(f"{w}: {t} is not a data-movement operator")


def _to_fmpq(a):
    a = np.asarray(a)
    if a.dtype == object:
        return a
    out = np.empty(a.shape, dtype=object)
    out.ravel()[:] = [fmpq(int(v)) for v in a.ravel().tolist()] if a.size else []
    return out


def _trunc(v):
    """``v`` (an ``fmpq`` or int) rounded toward zero, as an int."""
    if isinstance(v, fmpq):
        p, q = int(v.p), int(v.q)
        return p // q if p >= 0 else -((-p) // q)
    return int(v)


def _binary(t, a, b, w):
    ints = a.dtype != object and b.dtype != object
    if not ints:
        a, b = _to_fmpq(a), _to_fmpq(b)
    if t == "Div" and any(v == 0 for v in np.asarray(b).ravel().tolist()):
        raise InvalidModelError(f"{w}: division by a zero constant")
    try:
        if t == "Add":
            return a + b
        if t == "Sub":
            return a - b
        if t == "Mul":
            return a * b
        if t == "Div":
            if ints:  # ONNX integer division truncates
                q = np.abs(a) // np.abs(b)
                return np.where((a < 0) != (b < 0), -q, q)
            return a / b
        if t == "Equal":
            return (a == b).astype(np.int64)
        if t == "Less":
            return (a < b).astype(np.int64)
        if t == "Greater":
            return (a > b).astype(np.int64)
        if t == "Max":
            return np.where(a >= b, a, b)
        if t == "Min":
            return np.where(a <= b, a, b)
    except ValueError:
        raise ShapeError(
            f"{w}: constants of shapes {a.shape} and {b.shape} do not broadcast"
        ) from None
    raise UnsupportedOperatorError(f"{w}: {t} of constants is not supported")


FOLDS = MOVES + (
    "Shape",
    "Size",
    "Cast",
    "ConstantOfShape",
    "Equal",
    "Less",
    "Greater",
    "Neg",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Range",
    "Where",
    "Not",
    "Max",
    "Min",
    "Abs",
    "Sqrt",
    "Pow",
    "Floor",
    "Ceil",
    "MatMul",
)


def cast(node, a, to):
    """ONNX Cast of a constant: to a float type, the exact value rounded to that type (float32
    via the correctly rounded double); to an integer type, truncated toward zero."""
    w = node.where()
    if to in INT_TYPES:
        if a.dtype != object:
            return a.astype(np.int64) if to != 9 else (a != 0).astype(np.int64)
        return np.array(
            [_trunc(v) if to != 9 else int(v != 0) for v in a.ravel().tolist()], dtype=np.int64
        ).reshape(a.shape)
    if to in FLOAT_TYPES:
        if a.dtype != object:
            return _to_fmpq(a)
        dt = {1: np.float32, 10: np.float16, 11: np.float64, 16: np.float32}[to]
        out = np.empty(a.shape, dtype=object)
        vals = []
        for v in a.ravel().tolist():
            f = float(Fraction(int(v.p), int(v.q)))  # correctly rounded to a double
            g = float(dt(f))
            if (
                fmpq(*g.as_integer_ratio()) != v
                and dt != np.float64
                and fmpq(*f.as_integer_ratio()) != v
            ):
                raise UnsupportedOperatorError(
                    f"{w}: Cast of {v} (not a double) to a narrower float would round twice"
                )
            vals.append(fmpq(*g.as_integer_ratio()))
        out.ravel()[:] = vals
        return out
    raise UnsupportedOperatorError(f"{w}: Cast to element type {to} is not supported")


def fold(node, ins, const, opset, shape_of=None):
    """Exact value of a node whose inputs ``ins`` (arrays, ``None`` for an omitted input) are
    constant; Shape/Size also accept a computed input (``shape_of(name)`` gives its shape)."""
    t, w = node.op_type, node.where()
    if t in MOVES:
        data = [a for a in ins if a is not None] if t == "Concat" else [ins[0]]
        return move(node, data, const, opset)
    if t in ("Shape", "Size"):
        shape = tuple(ins[0].shape) if ins[0] is not None else tuple(shape_of(node.inputs[0]))
        if t == "Size":
            return np.array(int(np.prod(shape)), dtype=np.int64)
        r = len(shape)
        s, e = int(node.attrs.get("start", 0)), int(node.attrs.get("end", r))
        s, e = (s + r if s < 0 else s), (e + r if e < 0 else e)
        return np.array(shape[max(0, min(s, r)) : max(0, min(e, r))], dtype=np.int64)
    if t == "Cast":
        return cast(node, ins[0], int(node.attrs.get("to", 1)))
    if t == "ConstantOfShape":
        shape = _ints(ins[0])
        v = node.attrs.get("value")
        v = np.zeros(1, dtype=np.float32) if v is None else np.asarray(v)
        fill = (
            int(v.ravel()[0])
            if v.dtype.kind in "iub"
            else fmpq(*float(v.ravel()[0]).as_integer_ratio())
        )
        out = np.empty(tuple(shape), dtype=object if isinstance(fill, fmpq) else np.int64)
        out[...] = fill
        return out
    if t == "Neg":
        return -ins[0]
    if t == "Abs":
        return np.where(ins[0] < 0, -ins[0], ins[0])
    if t == "Not":
        return (ins[0] == 0).astype(np.int64)
    if t in ("Floor", "Ceil"):
        a = ins[0]
        if a.dtype != object:
            return a
        vals = [v.floor() if t == "Floor" else v.ceil() for v in a.ravel().tolist()]
        return _to_fmpq(np.array([int(v) for v in vals], dtype=np.int64).reshape(a.shape))
    if t == "Where":
        c, a, b = ins
        if a.dtype == object or b.dtype == object:
            a, b = _to_fmpq(a), _to_fmpq(b)
        return np.where(c != 0, a, b)
    if t == "Range":
        s, lim, d = (np.asarray(v).ravel().tolist()[0] for v in ins)
        if d == 0:
            raise InvalidModelError(f"{w}: Range with delta 0")
        n = max(
            int(-(-(lim - s) // d))
            if not isinstance(s - lim, fmpq)
            else int(((lim - s) / d).ceil()),
            0,
        )
        vals = [s + k * d for k in range(n)]
        return (
            _to_fmpq(np.array(vals, dtype=object))
            if any(isinstance(v, fmpq) for v in vals)
            else np.array(vals, dtype=np.int64)
        )
    if t == "Pow":
        a, b = ins
        if b.dtype == object and any(v.q != 1 for v in b.ravel().tolist()):
            raise UnsupportedOperatorError(f"{w}: Pow of constants with a non-integer exponent")
        e = np.vectorize(lambda v: int(v))(b) if b.dtype == object else b
        return _to_fmpq(a) ** e if a.dtype == object or np.any(e < 0) else a**e
    if t == "Sqrt":
        out = []
        for v in _to_fmpq(ins[0]).ravel().tolist():
            p, q = int(v.p), int(v.q)
            if p < 0 or isqrt(p) ** 2 != p or isqrt(q) ** 2 != q:
                raise UnsupportedOperatorError(f"{w}: Sqrt of the constant {v} is irrational")
            out.append(fmpq(isqrt(p), isqrt(q)))
        return np.array(out, dtype=object).reshape(ins[0].shape)
    if t == "MatMul":
        a, b = ins
        if a.dtype != object or b.dtype != object:
            a, b = _to_fmpq(a), _to_fmpq(b)
        try:
            return np.matmul(a, b)
        except ValueError:
            raise ShapeError(
                f"{w}: MatMul of constants of shapes {a.shape} and {b.shape}"
            ) from None
    if t in ("Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater", "Max", "Min"):
        if len(ins) != 2:
            if t in ("Max", "Min") and ins:
                out = ins[0]
                for b in ins[1:]:
                    out = _binary(t, out, b, w)
                return out
            raise MalformedFileError(f"{w} takes 2 inputs")
        return _binary(t, ins[0], ins[1], w)
    raise UnsupportedOperatorError(f"{w}: {t} cannot be folded")
