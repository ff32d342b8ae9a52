#!/usr/bin/env python3
"""auto_LiRPA's bounds of an ONNX model over a VNN-LIB box, as an exactbounds claim file.

    PEER_PY tests/peers/lirpa_onnx_claims.py MODEL.onnx SPEC.vnnlib OUT.json [IBP,CROWN,CROWN-IBP]

Runs where torch, auto_LiRPA, onnx2torch and exactbounds (for the VNN-LIB reader) are installed;
``../shared/peers/README.md`` says how (onnx2torch needs a ``torchvision`` stub on this
machine). A user of auto_LiRPA's public API with default options; no auto_LiRPA code. Models of
opset < 13 are converted to 13 first. The box is the VNN-LIB box rounded to nearest in each
dtype (auto_LiRPA takes float tensors); the file records it, so the claim can be audited over
the very box it was computed for::

    {"box": {"float64": {"lo": [hex], "hi": [hex]}, "float32": {...}},
     "crown": {"float64": {"lo": [hex], "hi": [hex]}, "float32": {...}}, "ibp": ..., ...}
"""

import contextlib
import json
import sys
import warnings


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    onnx_path, spec_path, out_path = argv[:3]
    methods = argv[3].split(",") if len(argv) > 3 else ["IBP", "CROWN", "CROWN-IBP"]
    warnings.filterwarnings("ignore")
    import onnx
    import onnx2torch
    import torch
    from auto_LiRPA import BoundedModule, BoundedTensor
    from auto_LiRPA.perturbations import PerturbationLpNorm
    from onnx import version_converter

    from exactbounds.io.vnnlib import load_vnnlib

    m = onnx.load(onnx_path)
    if max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) < 13:
        m = version_converter.convert_version(m, 13)
    init = {t.name for t in m.graph.initializer}
    inp = [i for i in m.graph.input if i.name not in init][0]
    shape = [max(d.dim_value, 1) for d in inp.type.tensor_type.shape.dim]
    spec = load_vnnlib(spec_path)
    lo = [float(v) for v in spec.input_box.lo]
    hi = [float(v) for v in spec.input_box.hi]

    def hexes(t):
        return [float(v).hex() for v in t.reshape(-1).tolist()]

    out = {"box": {}}
    for name in ("float64", "float32"):
        dt = getattr(torch, name)
        torch.set_default_dtype(dt)
        model = onnx2torch.convert(m).to(dt).eval()
        L = torch.tensor(lo, dtype=dt).reshape(shape)
        H = torch.tensor(hi, dtype=dt).reshape(shape)
        out["box"][name] = {"lo": hexes(L), "hi": hexes(H)}
        with contextlib.redirect_stdout(sys.stderr):
            bm = BoundedModule(model, torch.zeros_like(L), device="cpu")
            for meth in methods:
                x = BoundedTensor((L + H) / 2, PerturbationLpNorm(norm=float("inf"), x_L=L, x_U=H))
                with torch.no_grad():
                    lb, ub = bm.compute_bounds(x=(x,), method=meth)
                out.setdefault(meth.lower(), {})[name] = {"lo": hexes(lb), "hi": hexes(ub)}
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
