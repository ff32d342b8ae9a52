"""Regenerate the golden ``--json`` outputs of the bundled examples:
``python tests/golden/make_golden.py``.

Each case is one CLI invocation; its stdout is stored byte for byte in ``tests/golden/<name>.json``.
``tests/test_golden.py`` runs the same invocations and compares. Regenerate only for a change that
is meant to change results, and say so in the commit message.
"""

import contextlib
import io
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EX = HERE.parent.parent / "exactbounds" / "examples"

CASES = {}
for m, methods in (
    ("bn.json", None),
    ("mlp_bn.onnx", "mlp_bn.vnnlib"),
    ("cnn_bn.onnx", "cnn_bn.vnnlib"),
):
    stem = m.split(".")[0]
    spec = ["--spec", str(EX / methods)] if methods else []
    for method, modes in (
        ("ibp", ("exact", "interval")),
        ("crown", ("exact", "dyadic", "interval")),
        ("affine", ("exact", "dyadic", "interval")),
    ):
        for mode in modes:
            if stem == "cnn_bn" and mode == "exact" and method != "ibp":
                continue  # exact CROWN/affine on the CNN is slow; dyadic and interval cover it
            CASES[f"bounds_{stem}_{method}_{mode}"] = [
                "bounds",
                str(EX / m),
                *spec,
                "--method",
                method,
                "--mode",
                mode,
                "--json",
                "--intermediate",
            ]
CASES["bounds_pinn_ibp_exact"] = ["bounds", str(EX / "pinn_tanh_bn.json"), "--json"]
CASES["bounds_pinn_crown_dyadic"] = [
    "bounds",
    str(EX / "pinn_tanh_bn.json"),
    "--method",
    "crown",
    "--json",
]
CASES["check_mlp_crown_sim32"] = [
    "check",
    str(EX / "mlp_bn.onnx"),
    "--spec",
    str(EX / "mlp_bn.vnnlib"),
    "--method",
    "crown",
    "--simulate",
    "float32",
    "--json",
]
CASES["check_mlp_ibp_sim32"] = [
    "check",
    str(EX / "mlp_bn.onnx"),
    "--spec",
    str(EX / "mlp_bn.vnnlib"),
    "--method",
    "ibp",
    "--simulate",
    "float32",
    "--json",
]
CASES["check_bn_ibp_sim32"] = [
    "check",
    str(EX / "bn.json"),
    "--method",
    "ibp",
    "--simulate",
    "float32",
    "--json",
]
CASES["derivatives_pinn_wrt0"] = [
    "derivatives",
    str(EX / "pinn_tanh_bn.json"),
    "--wrt",
    "0",
    "--no-refine",
    "--json",
]
CASES["derivatives_pinn_wrt0_seed"] = [
    "derivatives",
    str(EX / "pinn_tanh_bn.json"),
    "--wrt",
    "0",
    "--second-derivative-rule",
    "seed",
    "--no-refine",
    "--json",
]
CASES["derivatives_pinn_wrt0_interval"] = [
    "derivatives",
    str(EX / "pinn_tanh_bn.json"),
    "--wrt",
    "0",
    "--mode",
    "interval",
    "--no-refine",
    "--json",
]
# refinement (the default) stops at its 5% target well inside the budget: deterministic
CASES["derivatives_pinn_wrt0_refined"] = [
    "derivatives",
    str(EX / "pinn_tanh_bn.json"),
    "--wrt",
    "0",
    "--budget",
    "600",
    "--json",
]


def normalise(text):
    """Checkout paths replaced by a placeholder, so goldens do not depend on where it lives."""
    return text.replace(str(EX), "<EXAMPLES>")


def run_case(argv):
    from exactbounds.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(list(argv))
    return rc, normalise(out.getvalue())


def main():
    names = sys.argv[1:] or list(CASES)
    for name in names:
        rc, text = run_case(CASES[name])
        json.loads(text)
        (HERE / f"{name}.json").write_text(text)
        (HERE / f"{name}.rc").write_text(f"{rc}\n")
        print(name, rc, len(text))


if __name__ == "__main__":
    main()
