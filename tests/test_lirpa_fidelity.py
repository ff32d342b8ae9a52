"""Fidelity of the ``auto_lirpa`` profile to auto_LiRPA 0.7.1 itself.

``tests/peers/data/*.json`` holds auto_LiRPA's own bounds (float64 and float32, methods IBP,
CROWN, CROWN-IBP, Forward) of small seeded networks of every operator exactbounds supports,
written by ``tests/peers/make_lirpa_reference.py`` in a peer venv with torch and auto_LiRPA; this
test needs neither. The profile, run in the dyadic mode (64-bit outward-rounded intermediate
bounds), must agree with auto_LiRPA's float64 bounds to 1e-9 of the output's width (float64
rounding of auto_LiRPA's own computation is far below that; a different rule is far above it),
while exactbounds' own rules differ from it on the networks where the two rule sets differ.
"""

import json
from fractions import Fraction
from pathlib import Path

import pytest

from exactbounds.algorithms.affine import affine
from exactbounds.algorithms.crown import crown, default_context
from exactbounds.algorithms.ibp import ibp
from exactbounds.algorithms.profiles import make_profile
from exactbounds.io.json_net import load_json_network
from exactbounds.numbers import RationalContext

DATA = Path(__file__).resolve().parent / "peers" / "data"
CASES = sorted(p for p in DATA.glob("*.json") if p.name != "sshaped_relax.json")
METHODS = ("ibp", "crown", "crown_ibp", "forward")
TOL = Fraction(1, 10**9)


def load_case(path):
    doc = json.loads(path.read_text())
    return doc, load_json_network(doc["network"])


def run_method(model, method, relaxation):
    """exactbounds' bounds (exact outer ends) by ``method`` (the data's names) under the
    profile ``relaxation``."""
    g, S = model.graph, model.input_set
    if method == "ibp":
        return ibp(g, S, RationalContext(128)).outer()
    ctx = default_context("dyadic")
    if method == "forward":
        out = affine(g, S, ctx, relaxation=relaxation).output
    else:
        prof = make_profile(relaxation, intermediate="ibp" if method == "crown_ibp" else "crown")
        out = crown(g, S, ctx, relaxation=prof).output
    return out.outer(ctx)


def hexes(vals):
    return [Fraction(float.fromhex(v)) for v in vals]


def rel_diff(lo, hi, ref):
    """Largest ``|ours − theirs| / width`` over the outputs (width: auto_LiRPA's ``hi − lo``;
    a zero width needs equality to 1e-9 of the magnitude)."""
    rlo, rhi = hexes(ref["lo"]), hexes(ref["hi"])
    worst = Fraction(0)
    for a, b, x, y in zip(lo, hi, rlo, rhi):
        d = max(abs(Fraction(int(a.p), int(a.q)) - x), abs(Fraction(int(b.p), int(b.q)) - y))
        scale = y - x if y > x else max(abs(x), abs(y), Fraction(1))
        worst = max(worst, d / scale)
    return worst


def _params():
    out = []
    for path in CASES:
        doc = json.loads(path.read_text())
        for m in METHODS:
            ref = doc["reference"]["float64"].get(m, {})
            if "lo" in ref:
                out.append(pytest.param(path, m, id=f"{path.stem}-{m}"))
    return out


def test_reference_data_covers_every_operator_and_method():
    kinds, methods = set(), set()
    for path in CASES:
        doc = json.loads(path.read_text())
        kinds.update(layer["type"] for layer in doc["network"]["layers"])
        methods.update(m for m, r in doc["reference"]["float64"].items() if "lo" in r)
        assert doc["auto_lirpa_version"] == "0.7.1"
    assert {
        "linear",
        "relu",
        "batchnorm",
        "conv2d",
        "avgpool",
        "add",
        "sigmoid",
        "tanh",
        "flatten",
    } <= kinds
    assert set(METHODS) <= methods
    assert len(CASES) >= 30


@pytest.mark.parametrize("path,method", _params())
def test_auto_lirpa_profile_matches_auto_lirpa_float64(path, method):
    doc, model = load_case(path)
    lo, hi = run_method(model, method, "auto_lirpa")
    assert rel_diff(lo, hi, doc["reference"]["float64"][method]) <= TOL


# Networks on which auto_LiRPA's rules and exactbounds' own give different CROWN bounds: the
# S-shaped relaxation (R8) and, on bn_mlp_1, a neuron whose CROWN bound is looser than IBP and
# crosses 0 while the sparse IBP reference (R4c) proves it stable.
DIFFERENT = [
    "bn_mlp_1",
    "sigmoid_mlp_0",
    "sigmoid_mlp_1",
    "tanh_mlp_1",
    "mixed_mlp_0",
    "mixed_mlp_1",
]


@pytest.mark.parametrize("name", DIFFERENT)
def test_exactbounds_rules_differ_from_auto_lirpa_where_the_rules_differ(name):
    doc, model = load_case(DATA / f"{name}.json")
    ref = doc["reference"]["float64"]["crown"]
    lo, hi = run_method(model, "crown", "exactbounds")
    assert rel_diff(lo, hi, ref) > 1000 * TOL
