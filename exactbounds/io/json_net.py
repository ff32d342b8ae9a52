"""The JSON network format shared with other tools (see ``../shared/DESIGN.md``)::

    {"input_lo": [...], "input_hi": [...],              # or "input": {...}, see below
     "input_shape": [C, H, W],                          # optional, default [n]
     "layers": [{"type": "linear", "weight": [[...]], "bias": [...]},     # weight is [out][in]
                {"type": "relu"},
                {"type": "batchnorm", "mean": [...], "var": [...], "gamma": [...],
                 "beta": [...], "eps": 1e-5}]}

Numbers are JSON numbers (the exact double they denote) or strings (``"3/7"``, ``"-0.1"`` as the
exact decimal, ``"0x1.8p-3"``).

Input set: ``input_lo``/``input_hi`` (a box), or ``"input": {"norm": "inf"|"1"|"2",
"center": [...], "radius": r}`` (an :class:`~exactbounds.inputsets.LpBall`).

Layers run in order, each on the previous layer's output (the current tensor shape is tracked):

=============  ====================================================================
``type``       fields
=============  ====================================================================
linear         ``weight`` [out][in], ``bias`` (optional); input flattened
relu           (none); also ``sigmoid``, ``tanh``, ``identity``
batchnorm      ``mean``, ``var``, ``gamma``, ``beta``, ``eps`` (1e-5), ``variance``
               (``strict``/``clamp``); per channel of a (C, ...) tensor, else per feature
conv2d         ``weight`` [Cout][Cin/groups][kh][kw], ``bias``, ``stride``, ``padding`` (int,
               [ph, pw] or [top, left, bottom, right]), ``dilation``, ``groups``
avgpool        ``kernel``, ``stride`` (default kernel), ``padding``, ``count_include_pad``
flatten        (none); ``reshape``: ``shape`` (one -1 allowed)
add, sub       residual: ``"from"`` names the other operand, a layer index (int), a layer
               ``name``, or ``"input"``: ``add`` gives current + other, ``sub`` current − other;
               or ``"constant"`` (scalar or flat list): current ± constant
scale          ``factor``, ``offset`` (scalars or flat lists): factor ⊙ current + offset
=============  ====================================================================
Any layer may carry a ``"name"``; the default is ``layers[k]``.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from math import prod
from pathlib import Path

from ..core import Box
from ..errors import (
    ExactBoundsError,
    InvalidModelError,
    MalformedFileError,
    ShapeError,
    UnsupportedOperatorError,
    shown,
)
from ..graph import Graph, Node
from ..inputsets import LpBall
from ..operators import activations
from ..operators.arithmetic import Add, Scale, Sub
from ..operators.batchnorm import BatchNorm, BatchNormParams
from ..operators.conv import Conv2d
from ..operators.linear import Linear, LinearParams
from ..operators.pool import AveragePool
from ..operators.relu import ReLU
from ..operators.reshape import Flatten, Identity, Reshape
from .files import read_json

MAX_DIM = 100_000_000
"""Largest number of entries of a tensor shape read from a file."""


@dataclass
class Model:
    """A loaded network and its input set (a ``Box`` or an ``LpBall``); ``spec`` is the VNN-LIB
    spec (``io.vnnlib.VnnlibSpec``) whose box replaced the input set, if any: ``spec.output`` is
    the output property, ``spec.relaxed`` says the box encloses a polytope."""

    graph: Graph
    input_set: object
    source: str = "<dict>"
    spec: object = None

    def __repr__(self):
        g, s = self.graph, self.input_set
        kind = f"L{s.norm} ball" if hasattr(s, "norm") else "box"
        spec = f", spec {Path(str(self.spec.source)).name}" if self.spec is not None else ""
        return (
            f"Model({Path(str(self.source)).name}: {g.input_dim} inputs, "
            f"{g.dims[g.output]} outputs, {len(g)} nodes, input set a {kind}{spec})"
        )


@contextmanager
def _wrong_types(where):
    """Turn a TypeError/ValueError/... raised while building from JSON values of the wrong type
    or shape (a ragged list, a dict where a number belongs) into ``InvalidModelError``."""
    try:
        yield
    except ExactBoundsError:
        raise
    except (TypeError, ValueError, AttributeError, IndexError, KeyError) as e:
        raise InvalidModelError(
            f"{where}: a field has the wrong type or shape "
            f"({type(e).__name__}: {shown(str(e), 100)})"
        ) from None


def _need(layer, key, where):
    if key not in layer:
        raise InvalidModelError(f"{where}: missing {key!r}")
    return layer[key]


def _list(value, where):
    """``value`` when it is a non-empty JSON list, else ``InvalidModelError``."""
    if not isinstance(value, list) or not value:
        raise InvalidModelError(f"{where} = {shown(value)}: expected a non-empty list")
    return value


def _shape(value, where):
    """A tensor shape from JSON: a list of positive integers."""
    if (
        not isinstance(value, list)
        or not value
        or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_DIM for d in value
        )
    ):
        raise InvalidModelError(
            f"{where} = {shown(value)}: expected a list of positive integers "
            f"(each at most {MAX_DIM})"
        )
    if prod(value) > MAX_DIM:
        raise InvalidModelError(f"{where} = {value}: {prod(value)} entries, more than {MAX_DIM}")
    return value


def _batchnorm(layer, where, shape):
    mean = _need(layer, "mean", where)
    shape = layer.get("shape") or (
        shape if len(shape) > 1 and isinstance(mean, list) and shape[0] == len(mean) else None
    )
    params = BatchNormParams(
        mean,
        _need(layer, "var", where),
        _need(layer, "gamma", where),
        _need(layer, "beta", where),
        layer.get("eps", 1e-5),
        shape=shape,
        variance=layer.get("variance", "strict"),
        name=where,
    )
    return BatchNorm(params)


def _linear(layer, where, shape):
    w = _list(_need(layer, "weight", where), f"{where}.weight")
    _list(w[0], f"{where}.weight[0]")
    return Linear(LinearParams(w, layer.get("bias"), name=where))


def _activation(cls_name):
    def build(layer, where, shape):
        if cls_name == "ReLU":
            return ReLU(shape, name=where)
        if cls_name == "Identity":
            return Identity(shape, name=where)
        try:
            cls = getattr(activations, cls_name)
        except AttributeError:
            raise UnsupportedOperatorError(f"{where}: {cls_name} is not available") from None
        return cls(shape, name=where)

    return build


def _conv2d(layer, where, shape):
    return Conv2d(
        _need(layer, "weight", where),
        layer.get("bias"),
        shape,
        stride=layer.get("stride", 1),
        padding=layer.get("padding", 0),
        dilation=layer.get("dilation", 1),
        groups=layer.get("groups", 1),
        name=where,
    )


def _avgpool(layer, where, shape):
    return AveragePool(
        shape,
        _need(layer, "kernel", where),
        layer.get("stride"),
        layer.get("padding", 0),
        layer.get("count_include_pad", False),
        name=where,
    )


def _flatten(layer, where, shape):
    return Flatten(shape, name=where)


def _reshape(layer, where, shape):
    return Reshape(shape, _need(layer, "shape", where), name=where)


def _arith(cls):
    def build(layer, where, shape):
        if "constant" in layer:
            return cls(shape, constant=layer["constant"], name=where)
        _need(layer, "from", where)
        return cls(shape, name=where)

    return build


def _scale(layer, where, shape):
    return Scale(shape, _need(layer, "factor", where), layer.get("offset"), name=where)


LAYER_TYPES = {
    "batchnorm": _batchnorm,
    "linear": _linear,
    "relu": _activation("ReLU"),
    "sigmoid": _activation("Sigmoid"),
    "tanh": _activation("Tanh"),
    "identity": _activation("Identity"),
    "conv2d": _conv2d,
    "avgpool": _avgpool,
    "flatten": _flatten,
    "reshape": _reshape,
    "add": _arith(Add),
    "sub": _arith(Sub),
    "scale": _scale,
}


def build_layer(layer, where, shape=None):
    """One JSON layer as a graph operator, given the shape of its (first) input."""
    if not isinstance(layer, dict):
        raise InvalidModelError(f"{where}: expected an object, got {shown(layer)}")
    kind = layer.get("type")
    if not isinstance(kind, str) or kind not in LAYER_TYPES:
        raise UnsupportedOperatorError(
            f"{where}.type = {shown(kind)}: unknown layer type "
            f"(supported: {', '.join(LAYER_TYPES)})"
        )
    if shape is None:
        w = _list(_need(layer, "weight", where), f"{where}.weight") if kind == "linear" else None
        shape = (len(_list(w[0], f"{where}.weight[0]")),) if kind == "linear" else None
    with _wrong_types(f"{where} ({kind})"):
        return LAYER_TYPES[kind](layer, where, shape)


def load_input_set(data, name, shape=None):
    """The input set of a network file: a Box from ``input_lo``/``input_hi``, or an LpBall from
    ``input``."""
    if "input" in data:
        spec = data["input"]
        if not isinstance(spec, dict):
            raise InvalidModelError(f"{name}: 'input' must be an object with norm, center, radius")
        return LpBall(
            _list(_need(spec, "center", "input"), "input.center"),
            _need(spec, "radius", "input"),
            spec.get("norm", "inf"),
            shape=shape,
            name="input",
        )
    return Box.from_values(
        _list(_need(data, "input_lo", name), "input_lo"),
        _list(_need(data, "input_hi", name), "input_hi"),
        shape=shape,
        name="input",
    )


def _other(layer, where, names):
    ref = layer["from"]
    if isinstance(ref, bool) or not isinstance(ref, (int, str)):
        raise InvalidModelError(
            f"{where}.from = {shown(ref)}: expected a layer index, name or 'input'"
        )
    if isinstance(ref, int):
        if not 0 <= ref < len(names) - 1:
            raise InvalidModelError(f"{where}.from = {ref}: not an earlier layer")
        return names[ref + 1]
    if ref not in names:
        raise InvalidModelError(f"{where}.from = {shown(ref)}: no earlier layer of that name")
    return ref


def load_json_network(source):
    """Load a network from a path or an already parsed dict; returns a :class:`Model`."""
    data = source if isinstance(source, dict) else read_json(source)
    name = "<dict>" if isinstance(source, dict) else str(source)
    if not isinstance(data, dict):
        raise MalformedFileError(f"{name}: expected a JSON object at the top level")
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise InvalidModelError(f"{name}: 'layers' must be a non-empty list")
    shape = data.get("input_shape")
    if shape is not None:
        shape = _shape(shape, "input_shape")
    with _wrong_types(f"{name}: input set"):
        S = load_input_set(data, name, shape)
    shape = tuple(S.shape)
    names, nodes, shapes = [Graph.INPUT], [], {Graph.INPUT: shape}
    for k, layer in enumerate(layers):
        where = layer.get("name", f"layers[{k}]") if isinstance(layer, dict) else f"layers[{k}]"
        if not isinstance(where, str) or not where or len(where) > 200:
            raise InvalidModelError(
                f"layers[{k}].name = {shown(where)}: expected a non-empty "
                "string (at most 200 characters)"
            )
        op = build_layer(layer, where, shape)
        inputs = [names[-1]]
        if layer.get("type") in ("add", "sub") and "constant" not in layer:
            other = _other(layer, where, names)
            if prod(shapes[other]) != prod(shape):
                raise ShapeError(
                    f"{where}: adds {other!r} of shape {shapes[other]} to a tensor of shape {shape}"
                )
            inputs.append(other)
        if op.in_dim != prod(shape):
            raise ShapeError(
                f"{where} ({op.kind}) takes {op.in_dim} inputs, "
                f"the previous layer gives {prod(shape)}"
            )
        nodes.append(Node(where, op, inputs))
        shape = tuple(op.out_shape)
        names.append(where)
        shapes[where] = shape
    return Model(Graph(S.dim, nodes, input_shape=S.shape), S, name)
