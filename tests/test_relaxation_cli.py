"""``--relaxation`` and ``--method crown-ibp`` on ``bounds`` and ``check`` (the real entry point,
in a subprocess), and the rounding split of the audit's verdicts."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from flint import fmpq

from exactbounds.audit.verdicts import BEYOND, INSIDE_EXACT, SOUND, WITHIN, Verdict

DATA = Path(__file__).resolve().parent / "peers" / "data"


def cli(*argv):
    p = subprocess.run(
        [sys.executable, "-m", "exactbounds", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def case(tmp_path):
    """The network of a reference case as a JSON file and auto_LiRPA's bounds as a claim file
    ``{method: {dtype: {lo, hi}}}``."""

    def make(name):
        doc = json.loads((DATA / f"{name}.json").read_text())
        net, claim = tmp_path / f"{name}.json", tmp_path / f"{name}.claim.json"
        net.write_text(json.dumps(doc["network"]))
        out = {}
        for dt, ref in doc["reference"].items():
            for m, v in ref.items():
                if "lo" in v:
                    out.setdefault(m, {})[dt] = v
        claim.write_text(json.dumps(out))
        return net, claim, doc

    return make


def test_bounds_auto_lirpa_reproduces_auto_lirpa_and_says_so(case):
    net, _, doc = case("bn_mlp_1")
    rc, out, err = cli("bounds", net, "--method", "crown", "--relaxation", "auto_lirpa", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["relaxation"] == "auto_lirpa"
    assert any("sparse intermediate bounds" in n for n in res["notes"])
    ref = doc["reference"]["float64"]["crown"]
    for mine, theirs in zip(res["outputs"]["lo_f64"], ref["lo"]):
        assert abs(mine - float.fromhex(theirs)) <= 1e-9
    rc, out, _ = cli("bounds", net, "--method", "crown-ibp", "--relaxation", "auto_lirpa")
    assert rc == 0 and "CROWN-IBP, DyadicContext(bits=64), relaxation auto_lirpa" in out


def test_check_splits_inside_exact_by_rounding_and_names_the_profile(case):
    net, claim, _ = case("bn_mlp_1")
    base = [
        "check",
        net,
        "--claimed",
        claim,
        "--method",
        "crown",
        "--dtype",
        "float32",
        "--budget",
        "20",
        "--json",
    ]
    rc, out, err = cli(*base, "--relaxation", "exactbounds")
    own = json.loads(out)
    assert rc == 1, err
    assert own["relaxation"] == "exactbounds"
    assert own["rounding"]["inside_exact"][BEYOND] >= 1  # a different algorithm's claims
    rc, out, err = cli(*base, "--relaxation", "auto_lirpa")
    theirs = json.loads(out)
    assert theirs["relaxation"] == "auto_lirpa"
    assert theirs["rounding"]["inside_exact"][BEYOND] == 0
    assert theirs["summary"]["unsound"] == 0
    for v in theirs["verdicts"]:
        if v["verdict"] == INSIDE_EXACT:
            assert v["rounding"] == WITHIN and v["ulps_terms"] < 100
    rc, out, _ = cli(*base[:-1], "--relaxation", "auto_lirpa")
    assert "within rounding" in out.splitlines()[1] and "relaxation auto_lirpa" in out


def test_check_crown_ibp_and_affine_claims_of_auto_lirpa(case):
    net, claim, _ = case("sigmoid_mlp_1")
    for method in ("crown-ibp", "affine"):
        rc, out, err = cli(
            "check",
            net,
            "--claimed",
            claim,
            "--method",
            method,
            "--dtype",
            "float32",
            "--relaxation",
            "auto_lirpa",
            "--budget",
            "10",
            "--json",
        )
        res = json.loads(out)
        assert res["method"] == method
        assert res.get("rounding", {}).get("inside_exact", {}).get(BEYOND, 0) == 0, method


@pytest.mark.parametrize(
    "extra,name",
    [(["--lower-slope", "zero"], "lower_slope"), (["--intersect-ibp"], "intersect_ibp")],
)
def test_auto_lirpa_rejects_options_it_fixes(case, extra, name):
    net, claim, _ = case("relu_mlp_0")
    for argv in (
        ["bounds", net, "--method", "crown"],
        ["check", net, "--claimed", claim, "--method", "crown"],
    ):
        rc, out, err = cli(*argv, "--relaxation", "auto_lirpa", *extra)
        assert rc == 2 and name in err and len(err.strip().splitlines()) == 1


def test_rounding_class_follows_the_gamma_n_model():
    """``within`` iff ``d <= n·u·M`` (u = 2^-24 for float32); a sound side is not classified."""
    M, n = fmpq(3), 10
    budget = n * M / 2**24
    exact = fmpq(-1)
    for d, want in ((budget, WITHIN), (budget * 2, BEYOND), (budget / 7, WITHIN)):
        v = Verdict.decide(0, "lo", exact + d, exact, dtype="float32").classify_rounding(M, n)
        assert v.verdict == INSIDE_EXACT and v.rounding == want
        assert v.ulps_terms == d / fmpq(1, 2**22)  # ulp(3) in float32 is 2^-22
        assert v.to_json()["rounding"] == want
    s = Verdict.decide(0, "hi", fmpq(2), fmpq(1), dtype="float32").classify_rounding(M, n)
    assert s.verdict == SOUND and s.rounding == "" and "rounding" not in s.to_json()
