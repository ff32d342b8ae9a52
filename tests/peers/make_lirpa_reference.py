#!/usr/bin/env python3
"""Write auto_LiRPA's bounds of small seeded networks to ``tests/peers/data/*.json``.

Runs only where torch and auto_LiRPA are installed (a separate peer venv, see
``../shared/peers/README.md``); the fidelity tests read the committed output without either::

    PEER_PY tests/peers/make_lirpa_reference.py [--only NAME] [--list]

It is a *user* of auto_LiRPA's public API (``BoundedModule``, ``BoundedTensor``,
``PerturbationLpNorm``, ``compute_bounds``) with its default options; it contains no auto_LiRPA
code. Every network is drawn here (numpy, seeded), written in exactbounds' JSON network format
(numbers as ``float.hex`` strings, so the file *is* the network auto_LiRPA saw), rebuilt as a
``torch.nn.Module`` and bounded by ``compute_bounds(method=M)`` for M in IBP, CROWN, CROWN-IBP
and Forward, in float64 and (for networks whose weights and input box are float32 values) in
float32; and (``sshaped_relax.json``) auto_LiRPA's own Sigmoid/Tanh lines on seeded intervals.
Output, one file per network::

    {"name", "family", "weights": "float32"|"float64", "network": {exactbounds JSON network},
     "reference": {"float64": {"ibp": {"lo": [hex], "hi": [hex]}, "crown": ..., "crown_ibp": ...,
                               "forward": ... | {"error": "..."}},
                   "float32": {...}},
     "crown_layers": {"float64": [{"layer": k, "type": "BoundLinear", "lo": [...], "hi": [...]}]},
     "auto_lirpa_version", "torch_version"}

Bounds are the exact values of the torch scalars (float32 widened exactly to float64), as
``float.hex`` strings. ``crown_layers`` are the intermediate bounds auto_LiRPA kept on the nodes
of the JSON layers after the CROWN call (the nodes whose bounds CROWN needed).
"""

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
METHODS = {"ibp": "IBP", "crown": "CROWN", "crown_ibp": "CROWN-IBP", "forward": "Forward"}


# -- drawing networks (numpy only) -------------------------------------------------------------
def _hex(a):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return float(a).hex()
    return [_hex(v) for v in a]


class _Drawer:
    """Draws layers with weights of one float dtype; tracks the current tensor shape."""

    def __init__(self, seed, dtype, in_shape, scale=1.0):
        self.rng = np.random.default_rng(seed)
        self.dt = np.float32 if dtype == "float32" else np.float64
        self.shape = tuple(in_shape)
        self.scale = scale
        self.layers = []

    def arr(self, *shape, sd=1.0):
        return (self.rng.standard_normal(shape) * sd).astype(self.dt)

    def linear(self, out, bias=True):
        n = int(np.prod(self.shape))
        layer = {"type": "linear", "weight": _hex(self.arr(out, n, sd=self.scale / np.sqrt(n)))}
        if bias:
            layer["bias"] = _hex(self.arr(out, sd=0.3 * self.scale))
        self.layers.append(layer)
        self.shape = (out,)

    def act(self, kind):
        self.layers.append({"type": kind})

    def batchnorm(self):
        c = self.shape[0]
        self.layers.append(
            {
                "type": "batchnorm",
                "mean": _hex(self.arr(c, sd=0.3)),
                "var": _hex(np.abs(self.arr(c)) + self.dt(0.25)),
                "gamma": _hex(self.arr(c)),
                "beta": _hex(self.arr(c, sd=0.3)),
                "eps": 1e-5,
            }
        )

    def conv(self, cout, k=3, stride=1, padding=1):
        cin, h, w = self.shape
        fan = cin * k * k
        self.layers.append(
            {
                "type": "conv2d",
                "weight": _hex(self.arr(cout, cin, k, k, sd=self.scale / np.sqrt(fan))),
                "bias": _hex(self.arr(cout, sd=0.2 * self.scale)),
                "stride": stride,
                "padding": padding,
            }
        )
        ho = (h + 2 * padding - k) // stride + 1
        wo = (w + 2 * padding - k) // stride + 1
        self.shape = (cout, ho, wo)

    def avgpool(self, k=2):
        c, h, w = self.shape
        self.layers.append({"type": "avgpool", "kernel": k})
        self.shape = (c, h // k, w // k)

    def flatten(self):
        self.layers.append({"type": "flatten"})
        self.shape = (int(np.prod(self.shape)),)

    def add_from(self, index):
        self.layers.append({"type": "add", "from": index})

    def network(self, in_shape, radius):
        n = int(np.prod(in_shape))
        center = self.rng.uniform(-1, 1, n).astype(self.dt)
        r = self.dt(radius)
        net = {"input_lo": _hex(center - r), "input_hi": _hex(center + r), "layers": self.layers}
        if len(in_shape) > 1:
            net["input_shape"] = list(in_shape)
        return net


def _mlp(seed, dtype, n_in, widths, act, radius, scale=1.0, bn=False):
    d = _Drawer(seed, dtype, (n_in,), scale)
    acts = act if isinstance(act, list) else [act] * len(widths)
    for w, a in zip(widths, acts):
        d.linear(w)
        if bn:
            d.batchnorm()
        d.act(a)
    d.linear(3)
    return d.network((n_in,), radius)


def _residual(seed, dtype, n_in, width, radius, act="relu"):
    d = _Drawer(seed, dtype, (n_in,))
    d.linear(width)  # 0
    d.act(act)  # 1
    d.linear(width)  # 2
    d.add_from(0)  # 3: layers[2] + layers[0]
    d.act(act)  # 4
    d.linear(width)  # 5
    d.add_from(3)  # 6: layers[5] + layers[3]
    d.act(act)  # 7
    d.linear(3)  # 8
    return d.network((n_in,), radius)


def _bn_first(seed, dtype, n_in, radius):
    d = _Drawer(seed, dtype, (n_in,))
    d.batchnorm()
    d.act("relu")
    d.linear(8)
    d.act("relu")
    d.linear(3)
    return d.network((n_in,), radius)


def _cnn(seed, dtype, radius, act="relu", stride=1, bn=True, pool=True):
    shape = (1, 8, 8)
    d = _Drawer(seed, dtype, shape)
    d.conv(3, stride=stride)
    d.act(act)
    d.conv(4, stride=1)
    if bn:
        d.batchnorm()
    d.act(act)
    if pool:
        d.avgpool(2)
    d.flatten()
    d.linear(10)
    d.act(act)
    d.linear(3)
    return d.network(shape, radius)


def cases():
    """``(name, family, weights dtype, network)`` of every reference network."""
    out = []
    f32 = "float32"
    for k, (n_in, widths, r) in enumerate(
        [
            (4, [8, 8], 0.05),
            (5, [12, 10, 8], 0.1),
            (3, [20, 20], 0.5),
            (6, [16, 16, 16, 16], 0.02),
            (8, [10], 1.0),
            (4, [20, 12, 20], 0.2),
            (2, [6, 6, 6], 0.3),
            (7, [18, 9], 0.01),
        ]
    ):
        out.append((f"relu_mlp_{k}", "relu", f32, _mlp(100 + k, f32, n_in, widths, "relu", r)))
    for k, (n_in, widths, r) in enumerate(
        [(5, [20] * 5, 0.3), (10, [20] * 6, 0.1), (8, [20, 20, 20, 20], 0.05), (6, [16] * 5, 1.0)]
    ):
        out.append(
            (f"relu_deep_{k}", "relu", f32, _mlp(150 + k, f32, n_in, widths, "relu", r, bn=k == 3))
        )
    for k, (n_in, widths, r) in enumerate([(5, [10, 10], 0.1), (3, [16, 8], 0.4)]):
        out.append(
            (
                f"relu_mlp_f64_{k}",
                "relu",
                "float64",
                _mlp(200 + k, "float64", n_in, widths, "relu", r),
            )
        )
    for k, (n_in, widths, r) in enumerate(
        [(4, [10, 10], 0.1), (6, [12, 8], 0.3), (3, [8, 8, 8], 0.05)]
    ):
        out.append(
            (f"bn_mlp_{k}", "batchnorm", f32, _mlp(300 + k, f32, n_in, widths, "relu", r, bn=True))
        )
    out.append(("bn_first_0", "batchnorm", f32, _bn_first(350, f32, 5, 0.2)))
    for k, (n_in, w, r) in enumerate([(4, 10, 0.1), (6, 16, 0.3), (3, 8, 0.02)]):
        out.append((f"residual_{k}", "residual", f32, _residual(400 + k, f32, n_in, w, r)))
    for act in ("sigmoid", "tanh"):
        for k, (n_in, widths, r, s) in enumerate(
            [
                (4, [10, 10], 0.1, 1.0),
                (5, [16, 12], 0.5, 2.0),
                (3, [8, 8, 8], 1.0, 3.0),
                (6, [20], 0.05, 4.0),
            ]
        ):
            out.append(
                (
                    f"{act}_mlp_{k}",
                    act,
                    f32,
                    _mlp(500 + 10 * len(act) + k, f32, n_in, widths, act, r, scale=s),
                )
            )
    out.append(
        (
            "sigmoid_mlp_f64_0",
            "sigmoid",
            "float64",
            _mlp(600, "float64", 4, [12, 12], "sigmoid", 0.3, scale=2.0),
        )
    )
    out.append(
        (
            "mixed_mlp_0",
            "mixed",
            f32,
            _mlp(610, f32, 5, [12, 12, 12], ["relu", "sigmoid", "tanh"], 0.2, scale=2.0),
        )
    )
    out.append(
        (
            "mixed_mlp_1",
            "mixed",
            f32,
            _mlp(611, f32, 4, [10, 10, 10], ["tanh", "relu", "sigmoid"], 0.3, scale=1.5),
        )
    )
    out.append(("tanh_residual_0", "residual", f32, _residual(620, f32, 4, 10, 0.2, act="tanh")))
    for k, (r, stride, bn, pool) in enumerate(
        [
            (0.02, 1, True, True),
            (0.05, 2, True, False),
            (0.1, 1, False, True),
            (0.01, 2, True, True),
        ]
    ):
        out.append((f"cnn_relu_{k}", "conv", f32, _cnn(700 + k, f32, r, "relu", stride, bn, pool)))
    out.append(("cnn_sigmoid_0", "conv", f32, _cnn(710, f32, 0.05, "sigmoid", 2, True, True)))
    out.append(("cnn_tanh_0", "conv", f32, _cnn(711, f32, 0.05, "tanh", 1, True, True)))
    return out


# -- torch side ------------------------------------------------------------------------------
def _num(v):
    return float.fromhex(v) if isinstance(v, str) else float(v)


def _tensor(torch, v, dtype):
    return torch.tensor(
        np.vectorize(_num, otypes=[np.float64])(np.asarray(v, dtype=object)), dtype=dtype
    )


def build_module(net, torch, dtype):
    """A ``torch.nn.Module`` computing the JSON network: one torch op per JSON layer."""
    nn = torch.nn
    shape = tuple(net.get("input_shape", [len(net["input_lo"])]))
    mods, kinds, refs = nn.ModuleList(), [], []
    for k, layer in enumerate(net["layers"]):
        t = layer["type"]
        ref = None
        if t == "linear":
            w = _tensor(torch, layer["weight"], dtype)
            m = nn.Linear(w.shape[1], w.shape[0], bias="bias" in layer)
            with torch.no_grad():
                m.weight.copy_(w)
                if "bias" in layer:
                    m.bias.copy_(_tensor(torch, layer["bias"], dtype))
            shape = (w.shape[0],)
        elif t == "conv2d":
            w = _tensor(torch, layer["weight"], dtype)
            m = nn.Conv2d(
                w.shape[1],
                w.shape[0],
                tuple(w.shape[2:]),
                stride=layer["stride"],
                padding=layer["padding"],
            )
            with torch.no_grad():
                m.weight.copy_(w)
                m.bias.copy_(_tensor(torch, layer["bias"], dtype))
            shape = None
        elif t == "batchnorm":
            c = len(layer["mean"])
            m = (nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d)(c, eps=layer["eps"])
            with torch.no_grad():
                m.running_mean.copy_(_tensor(torch, layer["mean"], dtype))
                m.running_var.copy_(_tensor(torch, layer["var"], dtype))
                m.weight.copy_(_tensor(torch, layer["gamma"], dtype))
                m.bias.copy_(_tensor(torch, layer["beta"], dtype))
        elif t in ("relu", "sigmoid", "tanh"):
            m = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[t]()
        elif t == "avgpool":
            m = nn.AvgPool2d(layer["kernel"])
        elif t == "flatten":
            m = nn.Flatten()
            shape = (0,)
        elif t == "add":
            m, ref = nn.Identity(), layer["from"]
        else:
            raise ValueError(f"layers[{k}]: no torch builder for {t!r}")
        mods.append(m)
        kinds.append(t)
        refs.append(ref)
        if shape is None:
            shape = (0, 0, 0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = mods

        def forward(self, x):
            outs = []
            for m, kind, ref in zip(self.mods, kinds, refs):
                x = x + outs[ref] if kind == "add" else m(x)
                outs.append(x)
            return x

    model = Net().to(dtype)
    model.eval()
    return model


LAYER_NODE = {
    "linear": "BoundLinear",
    "conv2d": "BoundConv",
    "batchnorm": "BoundBatchNormalization",
    "relu": "BoundRelu",
    "sigmoid": "BoundSigmoid",
    "tanh": "BoundTanh",
    "avgpool": "BoundAveragePool",
    "flatten": "BoundFlatten",
    "add": "BoundAdd",
}


def layer_nodes(bounded, net):
    """auto_LiRPA's node of each JSON layer (in order), or ``None`` when they do not match."""
    want = [LAYER_NODE[layer["type"]] for layer in net["layers"]]
    got = [n for n in bounded.nodes() if type(n).__name__ in set(want)]
    if [type(n).__name__ for n in got] != want:
        return None
    return got


def run_case(net, dtype_name, torch, lirpa):
    from auto_LiRPA import BoundedModule, BoundedTensor
    from auto_LiRPA.perturbations import PerturbationLpNorm

    dtype = getattr(torch, dtype_name)
    torch.set_default_dtype(dtype)
    shape = [1] + list(net.get("input_shape", [len(net["input_lo"])]))
    lo = _tensor(torch, net["input_lo"], dtype).reshape(shape)
    hi = _tensor(torch, net["input_hi"], dtype).reshape(shape)
    model = build_module(net, torch, dtype)
    center = (lo + hi) / 2
    bounded = BoundedModule(model, torch.zeros_like(center), device="cpu")
    bounded.eval()

    def flat(t):
        return [float(v).hex() for v in t.detach().reshape(-1).tolist()]

    out, layers = {}, None
    for key, method in METHODS.items():
        x = BoundedTensor(center, PerturbationLpNorm(norm=float("inf"), x_L=lo, x_U=hi))
        try:
            with torch.no_grad():
                lb, ub = bounded.compute_bounds(x=(x,), method=method)
        except Exception as e:  # noqa: BLE001 -- a method auto_LiRPA cannot run here
            out[key] = {"error": f"{type(e).__name__}: {e}"[:300]}
            continue
        out[key] = {"lo": flat(lb), "hi": flat(ub)}
        if key == "crown":
            nodes = layer_nodes(bounded, net)
            if nodes is not None:
                layers = []
                for k, n in enumerate(nodes):
                    if n.is_lower_bound_current() and n.is_upper_bound_current():
                        layers.append(
                            {
                                "layer": k,
                                "type": type(n).__name__,
                                "lo": flat(n.lower),
                                "hi": flat(n.upper),
                            }
                        )
    return out, layers


def sshaped_relaxations(torch):
    """auto_LiRPA's own Sigmoid/Tanh lines (``bound_relax``, float64, not optimised) on seeded
    intervals: ``{"l": [hex], "u": [hex], "sigmoid": {"lw", "lb", "uw", "ub"}, "tanh": ...}``."""
    from auto_LiRPA.operators.s_shaped import BoundSigmoid, BoundTanh

    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(7)
    ls, us = [], []
    for scale in (0.05, 0.5, 2.0, 8.0):
        a = rng.standard_normal(30) * scale
        ls += list(a)
        us += list(a + np.abs(rng.standard_normal(30)) * scale)
    out = {"l": [float(v).hex() for v in ls], "u": [float(v).hex() for v in us]}

    class Bounds:
        lower = torch.tensor(ls)
        upper = torch.tensor(us)

    for cls, name in ((BoundSigmoid, "sigmoid"), (BoundTanh, "tanh")):
        op = cls(attr={"device": "cpu"}, inputs=[], output_index=0, options={})
        op.bound_relax(Bounds, init=True)
        out[name] = {
            k: [float(v).hex() for v in getattr(op, k).tolist()] for k in ("lw", "lb", "uw", "ub")
        }
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="only the case of this name")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument(
        "--relax",
        action="store_true",
        help="only the Sigmoid/Tanh line data (data/sshaped_relax.json)",
    )
    ap.add_argument("--out", default=str(DATA), help="output folder (default tests/peers/data)")
    args = ap.parse_args(argv)
    todo = [c for c in cases() if args.only in (None, c[0])]
    if args.list:
        for name, fam, wdt, net in todo:
            print(name, fam, wdt, len(net["layers"]), "layers")
        return
    import auto_LiRPA
    import torch

    warnings.filterwarnings("ignore")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.relax or args.only is None:
        with contextlib.redirect_stdout(sys.stderr):
            rel = sshaped_relaxations(torch)
        rel["auto_lirpa_version"] = getattr(auto_LiRPA, "__version__", "?")
        (out_dir / "sshaped_relax.json").write_text(json.dumps(rel, separators=(",", ":")) + "\n")
        print("sshaped_relax ok", flush=True)
        if args.relax:
            return
    for name, family, wdt, net in todo:
        doc = {
            "name": name,
            "family": family,
            "weights": wdt,
            "network": net,
            "reference": {},
            "crown_layers": {},
            "auto_lirpa_version": getattr(auto_LiRPA, "__version__", "?"),
            "torch_version": torch.__version__,
        }
        for dt in ["float64", "float32"] if wdt == "float32" else ["float64"]:
            with contextlib.redirect_stdout(sys.stderr):
                ref, layers = run_case(net, dt, torch, auto_LiRPA)
            doc["reference"][dt] = ref
            if layers is not None and dt == "float64":
                doc["crown_layers"][dt] = layers
        (out_dir / f"{name}.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        errs = [
            f"{dt}/{m}" for dt, r in doc["reference"].items() for m, v in r.items() if "error" in v
        ]
        print(name, "ok" if not errs else "errors: " + ", ".join(errs), flush=True)


if __name__ == "__main__":
    main()
