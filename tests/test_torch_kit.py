"""``exactbounds.torch`` (the optional ``[torch]`` extra): an ``nn.Module`` in and out, and the
example of auditing auto_LiRPA from a test suite. Skipped without torch (and the auto_LiRPA test
without auto_LiRPA); run them in a peer venv (``../shared/peers/README.md``)."""

import json
import warnings
from pathlib import Path

import pytest
from flint import fmpq

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from exactbounds.algorithms.crown import crown  # noqa: E402
from exactbounds.io.json_net import load_json_network  # noqa: E402
from exactbounds.numbers import make_context  # noqa: E402
from exactbounds.testing import UnsoundClaim  # noqa: E402
from exactbounds.torch import audit_lirpa, load_module, module_from_network  # noqa: E402

DATA = Path(__file__).resolve().parent / "peers" / "data"


def _case(name, dtype=torch.float32):
    net = json.loads((DATA / f"{name}.json").read_text())["network"]
    shape = [1] + net.get("input_shape", [len(net["input_lo"])])
    lo = torch.tensor([float.fromhex(v) for v in net["input_lo"]], dtype=dtype).reshape(shape)
    hi = torch.tensor([float.fromhex(v) for v in net["input_hi"]], dtype=dtype).reshape(shape)
    return net, module_from_network(net, dtype), lo, hi


@pytest.mark.parametrize("name", ["residual_0", "cnn_relu_1", "bn_mlp_0", "tanh_mlp_0"])
def test_a_module_loads_as_the_network_it_computes(name):
    net, mod, lo, hi = _case(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_module(mod, lo, hi)
    ref = load_json_network(net)
    ctx = make_context("dyadic")
    a = crown(model.graph, model.input_set, ctx).output.outer(ctx)
    b = crown(ref.graph, ref.input_set, ctx).output.outer(ctx)
    # the same network up to BatchNorm's eps, which ONNX stores as a float32 attribute
    for x, z in zip(a[0] + a[1], b[0] + b[1]):
        assert abs(x - z) <= fmpq(1, 10**9) * (1 + abs(z))
    with torch.no_grad():
        y = mod((lo + hi) / 2).reshape(-1).tolist()
    assert all(float(l_) - 1e-4 <= v <= float(h_) + 1e-4 for l_, v, h_ in zip(a[0], y, a[1]))


def test_audit_auto_lirpa_from_a_test_suite():
    """The example for verifier authors: bound a module with auto_LiRPA, hand its tensors to
    the oracle; a corrupted bound is refuted with an exact witness."""
    pytest.importorskip("auto_LiRPA")
    from auto_LiRPA import BoundedModule, BoundedTensor
    from auto_LiRPA.perturbations import PerturbationLpNorm

    _, mod, lo, hi = _case("relu_mlp_2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bm = BoundedModule(mod, torch.zeros_like(lo))
        x = BoundedTensor((lo + hi) / 2, PerturbationLpNorm(norm=float("inf"), x_L=lo, x_U=hi))
        for method in ("IBP", "CROWN", "CROWN-IBP"):
            lb, ub = bm.compute_bounds(x=(x,), method=method)
            res = audit_lirpa(mod, lo, hi, lb, ub, method=method, same_algorithm=True, budget=30)
            assert all(v.verdict != "unsound" for v in res.verdicts)
        with pytest.raises(UnsoundClaim) as e:
            audit_lirpa(mod, lo, hi, None, lb + 1.0, method="CROWN", budget=100)
    assert e.value.verdicts[0].witness is not None
