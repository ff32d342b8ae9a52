"""exactbounds for PyTorch users (the optional ``[torch]`` extra): load an ``nn.Module`` and audit
the ``lb, ub`` tensors a tool such as auto_LiRPA returns, without writing files.

``load_module(module, lo, hi)`` exports the module with ``torch.onnx.export`` (in memory) and
reads it with exactbounds' ONNX loader: the weights enter as their exact float values (exported
without constant folding, so BatchNorm stays its own node as auto_LiRPA keeps it; ONNX stores
BatchNorm's eps as a float32 attribute).
``module_from_network(net)`` is the other direction, a module computing a JSON network dict
(e.g. one drawn by :mod:`exactbounds.testing.strategies`), so a tool can be fuzzed on it.
``audit_lirpa(module_or_model, lo, hi, lb, ub, method=...)`` is
:func:`exactbounds.testing.assert_sound` with auto_LiRPA's rules (``relaxation="auto_lirpa"``)
and its method names (``IBP``, ``CROWN``, ``CROWN-IBP``, ``Forward``).
"""

import io
from fractions import Fraction

import torch

from .errors import InvalidValueError, UnsupportedOperatorError
from .io.json_net import Model
from .io.onnx_loader import build_graph, parse_onnx
from .testing import as_model, assert_sound

LIRPA_METHODS = {
    "ibp": "ibp",
    "crown": "crown",
    "crown-ibp": "crown-ibp",
    "ibp+backward": "crown-ibp",
    "forward": "affine",
    "backward": "crown",
}


def _flat(t):
    return t.detach().reshape(-1).tolist() if isinstance(t, torch.Tensor) else list(t)


def load_module(module, lo, hi, opset=13):
    """A :class:`~exactbounds.io.json_net.Model` of ``module`` (in eval mode) over the box
    ``[lo, hi]`` (tensors of the input's shape with a batch dimension of 1, or flat lists with
    ``lo`` a tensor giving the shape)."""
    import onnx

    shape = tuple(lo.shape) if isinstance(lo, torch.Tensor) else (1, len(lo))
    dtype = lo.dtype if isinstance(lo, torch.Tensor) else torch.float32
    module = module.eval()
    buf = io.BytesIO()
    kw = dict(
        opset_version=opset,
        input_names=["input"],
        output_names=["output"],
        do_constant_folding=False,
        training=torch.onnx.TrainingMode.PRESERVE,
    )
    with torch.no_grad():
        try:
            torch.onnx.export(module, torch.zeros(shape, dtype=dtype), buf, dynamo=False, **kw)
        except TypeError:  # older torch: no ``dynamo`` argument
            torch.onnx.export(module, torch.zeros(shape, dtype=dtype), buf, **kw)
    og = parse_onnx(onnx.load_from_string(buf.getvalue()))
    graph, _ = build_graph(og)
    model = Model(graph, None, f"<{type(module).__name__}>")
    return as_model(model, (_flat(lo), _flat(hi)))


def _tensor(v, dtype):
    return torch.tensor(v, dtype=dtype)


def module_from_network(net, dtype=torch.float64):
    """A ``torch.nn.Module`` computing the JSON network ``net`` (layers ``linear``, ``conv2d``,
    ``batchnorm``, ``relu``, ``sigmoid``, ``tanh``, ``avgpool``, ``flatten``, ``add`` with
    ``from``); numbers as JSON numbers or hex strings."""
    nn = torch.nn

    def num(v):
        return (
            float.fromhex(v)
            if isinstance(v, str) and "0x" in v.lower()
            else float(Fraction(v))
            if isinstance(v, str)
            else float(v)
        )

    def arr(v):
        if isinstance(v, list):
            return [arr(x) for x in v]
        return num(v)

    shape = list(net.get("input_shape", [len(net["input_lo"])]))
    mods, kinds, refs = nn.ModuleList(), [], []
    for k, layer in enumerate(net["layers"]):
        t, ref = layer["type"], None
        if t == "linear":
            w = _tensor(arr(layer["weight"]), dtype)
            m = nn.Linear(w.shape[1], w.shape[0], bias="bias" in layer)
            with torch.no_grad():
                m.weight.copy_(w)
                if "bias" in layer:
                    m.bias.copy_(_tensor(arr(layer["bias"]), dtype))
            shape = [w.shape[0]]
        elif t == "conv2d":
            w = _tensor(arr(layer["weight"]), dtype)
            m = nn.Conv2d(
                w.shape[1],
                w.shape[0],
                tuple(w.shape[2:]),
                stride=layer.get("stride", 1),
                padding=layer.get("padding", 0),
                bias="bias" in layer,
            )
            with torch.no_grad():
                m.weight.copy_(w)
                if "bias" in layer:
                    m.bias.copy_(_tensor(arr(layer["bias"]), dtype))
            shape = [0, 0, 0]
        elif t == "batchnorm":
            c = len(layer["mean"])
            m = (nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d)(
                c, eps=num(layer.get("eps", 1e-5))
            )
            with torch.no_grad():
                for name, key in (
                    ("running_mean", "mean"),
                    ("running_var", "var"),
                    ("weight", "gamma"),
                    ("bias", "beta"),
                ):
                    getattr(m, name).copy_(_tensor(arr(layer[key]), dtype))
        elif t in ("relu", "sigmoid", "tanh"):
            m = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[t]()
        elif t == "avgpool":
            m = nn.AvgPool2d(layer["kernel"], layer.get("stride"))
        elif t == "flatten":
            m, shape = nn.Flatten(), [0]
        elif t == "add" and "from" in layer and isinstance(layer["from"], int):
            m, ref = nn.Identity(), layer["from"]
        else:
            raise UnsupportedOperatorError(f"layers[{k}].type = {t!r}: no torch builder")
        mods.append(m)
        kinds.append(t)
        refs.append(ref)

    class Network(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = mods

        def forward(self, x):
            outs = []
            for m, kind, r in zip(self.mods, kinds, refs):
                x = x + outs[r] if kind == "add" else m(x)
                outs.append(x)
            return x

    return Network().to(dtype).eval()


def audit_lirpa(model, lo, hi, lb=None, ub=None, method="CROWN", **kw):
    """Audit auto_LiRPA's ``lb, ub`` (tensors of ``compute_bounds(method=method)``) for the
    ``nn.Module`` (or exactbounds Model / JSON dict) ``model`` over the box ``[lo, hi]``, under
    the ``auto_lirpa`` profile; raises :class:`~exactbounds.testing.UnsoundClaim` with the exact
    witness, returns the audit otherwise. ``kw`` go to ``assert_sound`` (``same_algorithm``,
    ``budget``, ...); the dtype is the tensors'."""
    key = str(method).lower()
    if key not in LIRPA_METHODS:
        raise InvalidValueError("method", method, f"expected one of {', '.join(LIRPA_METHODS)}")
    m = (
        load_module(model, lo, hi)
        if isinstance(model, torch.nn.Module)
        else as_model(model, (_flat(lo), _flat(hi)))
    )
    ref = lb if lb is not None else ub
    dtype = "float32" if getattr(ref, "dtype", None) == torch.float32 else "float64"
    return assert_sound(
        m,
        None,
        None if lb is None else _flat(lb),
        None if ub is None else _flat(ub),
        method=LIRPA_METHODS[key],
        relaxation=kw.pop("relaxation", "auto_lirpa"),
        dtype=dtype,
        **kw,
    )
