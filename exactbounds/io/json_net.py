"""The JSON network format shared with other tools (see ``../shared/DESIGN.md``)::

    {"input_lo": [...], "input_hi": [...],
     "layers": [{"type": "linear", "weight": [[...]], "bias": [...]},     # weight is [out][in]
                {"type": "batchnorm", "mean": [...], "var": [...], "gamma": [...],
                 "beta": [...], "eps": 1e-5}]}

Numbers are JSON numbers (the exact double they denote) or strings (``"3/7"``, ``"-0.1"`` as the
exact decimal, ``"0x1.8p-3"``). A batchnorm layer may add ``"variance": "strict"|"clamp"``.
"""
import json
from dataclasses import dataclass
from pathlib import Path

from ..core import Box
from ..errors import InvalidModelError, MalformedFileError, ShapeError, UnsupportedOperatorError
from ..graph import Graph
from ..operators.batchnorm import BatchNorm, BatchNormParams
from ..operators.linear import Linear, LinearParams


@dataclass
class Model:
    """A loaded network and its input set; ``spec`` is the VNN-LIB spec (``io.vnnlib``) whose
    box replaced the input set, if any (its ``output`` holds the output property)."""
    graph: Graph
    input_set: Box
    source: str = "<dict>"
    spec: object = None


def read_json(path):
    """Parse a JSON file; malformed JSON raises ``MalformedFileError`` with line and column."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise MalformedFileError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise MalformedFileError(f"{path}: malformed JSON at line {e.lineno} column {e.colno}: "
                                 f"{e.msg}") from None


def _need(layer, key, where):
    if key not in layer:
        raise InvalidModelError(f"{where}: missing {key!r}")
    return layer[key]


def _batchnorm(layer, where):
    params = BatchNormParams(_need(layer, "mean", where), _need(layer, "var", where),
                             _need(layer, "gamma", where), _need(layer, "beta", where),
                             layer.get("eps", 1e-5), shape=layer.get("shape"),
                             variance=layer.get("variance", "strict"), name=where)
    return BatchNorm(params)


def _linear(layer, where):
    return Linear(LinearParams(_need(layer, "weight", where), layer.get("bias"), name=where))


LAYER_TYPES = {"batchnorm": _batchnorm, "linear": _linear}


def build_layer(layer, where):
    """One JSON layer as a graph operator."""
    if not isinstance(layer, dict):
        raise InvalidModelError(f"{where}: expected an object, got {layer!r}")
    kind = layer.get("type")
    if kind not in LAYER_TYPES:
        raise UnsupportedOperatorError(
            f"{where}.type = {kind!r}: unknown layer type (supported: {', '.join(LAYER_TYPES)})")
    return LAYER_TYPES[kind](layer, where)


def load_json_network(source):
    """Load a network from a path or an already parsed dict; returns a :class:`Model`."""
    data = source if isinstance(source, dict) else read_json(source)
    name = "<dict>" if isinstance(source, dict) else str(source)
    if not isinstance(data, dict):
        raise MalformedFileError(f"{name}: expected a JSON object at the top level")
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise InvalidModelError(f"{name}: 'layers' must be a non-empty list")
    ops = [build_layer(layer, f"layers[{k}]") for k, layer in enumerate(layers)]
    box = Box.from_values(_need(data, "input_lo", name), _need(data, "input_hi", name),
                          name="input")
    if box.dim != ops[0].in_dim:
        raise ShapeError(f"input has {box.dim} entries, layers[0] takes {ops[0].in_dim}")
    return Model(Graph.sequential(box.dim, ops), box, name)
