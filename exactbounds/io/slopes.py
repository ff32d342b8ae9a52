"""Per-neuron relaxation parameters a tool chose (``--slopes FILE.json``): the ReLU lower slopes
of alpha-CROWN, as auto_LiRPA returns them, to replay its relaxation exactly.

Format: ``{"node name": [α_0, α_1, ...]}`` or ``{"node name": {"lower": [...]}}`` keyed by the
ReLU node names of the exactbounds graph (``layers[k]`` for a JSON network, the ONNX node names
otherwise); one slope per neuron (nested lists are flattened), numbers as JSON numbers (the exact
double), hex floats or rational strings; ``null`` keeps the profile's own slope for that neuron.
"""

from ..core import _flat
from ..errors import MalformedFileError
from ..numbers import to_exact
from .json_net import read_json


def parse_slopes(data, where="slopes"):
    """``{node: [fmpq or None]}`` from parsed JSON (see the module docstring)."""
    if not isinstance(data, dict) or not data:
        raise MalformedFileError(
            f"{where}: expected an object mapping ReLU node names to lists of lower slopes"
        )
    out = {}
    for name, v in data.items():
        if isinstance(v, dict):
            if "lower" not in v:
                raise MalformedFileError(
                    f"{where}[{name!r}]: expected a list or {{'lower': [...]}}"
                )
            v = v["lower"]
        if not isinstance(v, list):
            raise MalformedFileError(f"{where}[{name!r}]: expected a list of slopes")
        out[name] = [
            None if a is None else to_exact(a, f"{where}[{name!r}][{j}]")
            for j, a in enumerate(_flat(v))
        ]
    return out


def load_slopes(path):
    """The slopes in the JSON file ``path``."""
    return parse_slopes(read_json(path), str(path))
