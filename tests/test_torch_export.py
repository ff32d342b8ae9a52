"""Models exported by ``torch.onnx.export`` (the TorchScript exporter, opsets 11 and 17) in every
form the VNN-COMP families use: MLP, CNN with BatchNorm and Max/AveragePool, a residual block,
an NHWC input permuted to NCHW, ``view`` shape arithmetic, Sigmoid/Tanh/LeakyReLU,
ConvTranspose, Softmax, a tiny attention (MatMul of two computed tensors), Cos/Sin. Each loads;
its exact value agrees with torch and onnxruntime to a few float32 ulps; onnxruntime's outputs
at random points of a box lie in the IBP and CROWN bounds (to the same ulps: onnxruntime
rounds, the bounds hold the exact values)."""

import io
import warnings

import numpy as np
import pytest
from flint import fmpq

from optional import requires

torch = requires("torch")
onnx = requires("onnx")
ort = requires("onnxruntime")

from exactbounds.algorithms.crown import crown  # noqa: E402
from exactbounds.algorithms.ibp import ibp  # noqa: E402
from exactbounds.core import Box  # noqa: E402
from exactbounds.io.onnx_loader import build_graph, parse_onnx  # noqa: E402
from exactbounds.numbers import make_context  # noqa: E402
from test_onnx import ends, exact_outputs, q  # noqa: E402

nn = torch.nn
ULPS = 16


class Nhwc(nn.Module):
    """An NHWC input permuted to NCHW before a convolution (tf2onnx-style images)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        y = torch.relu(self.conv(x.permute(0, 3, 1, 2)))
        return self.fc(y.reshape(y.shape[0], -1))


class ViewNet(nn.Module):
    """``x.view(x.size(0), -1)``: Shape → Gather → Unsqueeze → Concat → Reshape."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 2, stride=2)
        self.fc = nn.Linear(2 * 2 * 2, 3)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.fc(y.view(y.size(0), -1))


class ResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)
        self.c2, self.b2 = nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)
        self.fc = nn.Linear(2 * 4 * 4, 2)

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        y = torch.relu(self.b2(self.c2(y)) + x)
        return self.fc(torch.flatten(y, 1))


class Attention(nn.Module):
    """Single-head attention over 3 tokens of width 4: softmax(Q·Kᵀ/2)·V (two computed tensors
    multiplied), then a linear head."""

    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)
        self.head = nn.Linear(12, 2)

    def forward(self, x):
        a = torch.softmax(self.q(x) @ self.k(x).transpose(1, 2) / 2.0, dim=-1)
        return self.head(torch.flatten(a @ self.v(x), 1))


class Trig(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(8, 2)

    def forward(self, x):
        y = self.a(x)
        return self.b(torch.cat([torch.cos(y), torch.sin(y)], dim=1))


class Misc(nn.Module):
    """Slicing, constant padding, concatenation, a mean over a dimension, Dropout (inference:
    identity) and a global average pool."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 2)
        self.drop = nn.Dropout(0.5)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3 + 5, 2)

    def forward(self, x):
        y = nn.functional.pad(x[:, :, 1:, :], (1, 0, 0, 1))
        y = self.pool(torch.relu(self.conv(self.drop(y)))).flatten(1)
        return self.fc(torch.cat([y, x.mean(dim=(1, 2))], dim=1))


class Conv1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3, stride=2, padding=1)
        self.fc = nn.Linear(3 * 3, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _cnn():
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AvgPool2d(2, stride=1),
        nn.Flatten(),
        nn.Linear(2 * 3 * 3, 3),
    )


MODELS = {
    "mlp": (lambda: nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)), (1, 3)),
    "cnn_bn_pools": (_cnn, (1, 1, 8, 8)),
    "resblock": (ResBlock, (1, 2, 4, 4)),
    "nhwc_permute": (Nhwc, (1, 4, 4, 2)),
    "view_shape_arith": (ViewNet, (1, 1, 4, 4)),
    "smooth_acts": (
        lambda: nn.Sequential(
            nn.Linear(3, 4),
            nn.Sigmoid(),
            nn.Linear(4, 4),
            nn.Tanh(),
            nn.Linear(4, 4),
            nn.LeakyReLU(0.1),
            nn.Linear(4, 2),
        ),
        (1, 3),
    ),
    "conv_transpose": (
        lambda: nn.Sequential(
            nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16, 2),
        ),
        (1, 2, 2, 2),
    ),
    "softmax": (lambda: nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=1)), (1, 3)),
    "attention": (Attention, (1, 3, 4)),
    "cos_sin": (Trig, (1, 3)),
    "slice_pad_cat_mean": (Misc, (1, 2, 4, 5)),
    "conv1d": (Conv1d, (1, 2, 6)),
}


def export(name, opset):
    """``(ModelProto, torch module, input shape)``; BatchNorm statistics are set away from
    the defaults so that they matter."""
    make, shape = MODELS[name]
    torch.manual_seed(sum(map(ord, name)))
    mod = make()
    for m in mod.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    mod.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            mod, torch.zeros(shape), buf, dynamo=False, opset_version=opset,
            input_names=["input"], output_names=["output"],
        )  # fmt: skip
    return onnx.load_from_string(buf.getvalue()), mod, shape


def _ulp_tol(vals):
    mag = max(max(abs(a), abs(b)) for vs in vals.values() for v in vs for a, b in [ends(v)])
    return ULPS * q(np.spacing(np.float32(float(mag))))


CASES = [(n, o) for n in sorted(MODELS) for o in (11, 17)]


@pytest.mark.parametrize("name,opset", CASES)
def test_torch_export_evaluates_and_bounds(name, opset):
    m, mod, shape = export(name, opset)
    g, _ = build_graph(parse_onnx(m))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(opset)
    x0 = rng.normal(0, 1, shape).astype(np.float32)
    rad = fmpq(1, 16)
    S = Box([q(v) - rad for v in x0.ravel()], [q(v) + rad for v in x0.ravel()])
    dy = make_context("dyadic")
    ib = ibp(g, S, dy).outer(dy)
    cr = crown(g, S, dy).output.outer(dy)
    pts = [x0] + [
        (x0 + rng.uniform(-1, 1, shape) / 16).astype(np.float32) for _ in range(3)
    ]  # rounding to float32 may step out of the box: keep those inside only
    for x in pts:
        xs = [q(v) for v in x.ravel()]
        inside = all(a <= v <= b for a, v, b in zip(S.lo, xs, S.hi))
        vals = exact_outputs(g, x)
        tol = _ulp_tol(vals)
        out = vals[g.output]
        y_ort = sess.run(None, {"input": x})[0].ravel()
        with torch.no_grad():
            y_torch = mod(torch.from_numpy(x)).numpy().ravel()
        assert len(out) == y_ort.size == y_torch.size
        for k, (v, fo, ft) in enumerate(zip(out, y_ort, y_torch)):
            lo, hi = ends(v)
            for who, f in (("onnxruntime", fo), ("torch", ft)):
                d = max(fmpq(0), lo - q(f), q(f) - hi)
                assert d <= tol, f"{name}[{k}]: exact {float(lo)} vs {who} {f}"
            if inside:
                for how, (blo, bhi) in (("IBP", ib), ("CROWN", cr)):
                    assert blo[k] - tol <= q(fo) <= bhi[k] + tol, (how, k)
                    assert blo[k] <= lo and hi <= bhi[k], (how, k)  # the exact value: no slack
