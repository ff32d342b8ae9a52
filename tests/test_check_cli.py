"""``exactbounds check``: the CLI end to end (JSON, exit codes, VNN-LIB property, HTML report
rendered by headless Chromium when it is installed)."""

import hashlib
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from fractions import Fraction

import pytest
from flint import fmpq

from exact_ref import F
from exactbounds.audit.methods import exact_method_bounds
from exactbounds.audit.ulps import shift_ulps, ulp
from exactbounds.audit.verdicts import lower_end, upper_end
from exactbounds.cli import main
from exactbounds.io.json_net import load_json_network
from exactbounds.numbers import rational_str, to_exact
from optional import missing

NET = {
    "input_lo": [-1, "-1/2", 0],
    "input_hi": [1, "1/2", "0.25"],
    "layers": [
        {
            "type": "batchnorm",
            "mean": [0.1, 0, "1/3"],
            "var": [1, "0.5", 2],
            "gamma": [1.5, -2, "0.75"],
            "beta": [0, "0.125", -1],
            "eps": 1e-5,
        },
        {"type": "linear", "weight": [[1, -1, 0.5], ["1/3", 0, -1]], "bias": [0, "-0.5"]},
    ],
}
LIN = {
    "input_lo": [-1, -1],
    "input_hi": [1, 2],
    "layers": [{"type": "linear", "weight": [[1, -2], ["1/2", 3]], "bias": [0, 1]}],
}


@pytest.fixture
def files(tmp_path):
    def write(name, data):
        p = tmp_path / name
        p.write_text(data if isinstance(data, str) else json.dumps(data))
        return str(p)

    return write


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def shifted_claim(net, k, dtype="float32"):
    m = load_json_network(net)
    ex = exact_method_bounds(m.graph, m.input_set, "ibp")
    return {
        "ibp": {
            dtype: {
                "lo": [rational_str(shift_ulps(lower_end(v), k, dtype)) for v in ex.lo],
                "hi": [rational_str(shift_ulps(upper_end(v), -k, dtype)) for v in ex.hi],
            }
        },
        "crown": {"lo": [0, 0], "hi": [0, 0]},
    }


def test_json_output_and_exit_1_for_unsound(files, capsys):
    net = files("net.json", NET)
    claim = files("claim.json", shifted_claim(NET, 1))
    code, out, _ = run(
        capsys, "check", net, "--claimed", claim, "--method", "ibp", "--dtype", "float32", "--json"
    )
    assert code == 1
    d = json.loads(out)
    assert d["summary"] == {"unsound": 4, "inside_exact": 0, "sound": 0}
    assert len(d["verdicts"]) == 4
    for v in d["verdicts"]:
        assert {"output", "side", "verdict", "claimed", "exact", "ulps", "witness"} <= set(v)
        assert v["verdict"] == "unsound" and v["side"] in ("lo", "hi")
        assert isinstance(v["ulps"], float) and 0 < v["ulps"] <= 2
        assert isinstance(v["exact"], list) and len(v["exact"]) == 2  # √ enclosure [lo, hi]
        w = v["witness"]
        # re-check the witness exactly from the JSON strings alone
        x = [Fraction(s) for s in w["x"]]
        assert all(
            F(a) <= t <= F(b) for t, a, b in zip(x, ["-1", "-1/2", "0"], ["1", "1/2", "1/4"])
        )
        ylo, yhi = (Fraction(s) for s in w["y"])
        c = Fraction(v["claimed"])
        assert (yhi < c) if v["side"] == "lo" else (ylo > c)


def test_sound_claims_exit_0_and_table(files, capsys):
    net = files("net.json", NET)
    claim = files("claim.json", shifted_claim(NET, -1))
    code, out, _ = run(capsys, "check", net, "--claimed", claim, "--dtype", "float32")
    assert code == 0
    assert "unsound 0, inside_exact 0, sound 4" in out.splitlines()[1]


def test_inside_exact_exits_1(files, capsys):
    deep = {
        "input_lo": [-1, -1],
        "input_hi": [1, 1],
        "layers": [{"type": "linear", "weight": [[1, 1], [1, -1]]}] * 4,
    }
    net = files("deep.json", deep)
    claim = files("c.json", {"lo": [-10, -16], "hi": [16, 16]})
    code, out, _ = run(capsys, "check", net, "--claimed", claim, "--json", "--budget", "50")
    assert code == 1
    d = json.loads(out)
    assert d["summary"] == {"unsound": 0, "inside_exact": 1, "sound": 3}
    assert d["verdicts"][0]["verdict"] == "inside_exact" and d["verdicts"][0]["witness"] is None


@pytest.mark.parametrize(
    "claim, match",
    [
        ("{not json", "malformed JSON"),
        ({"lo": [0], "hi": [1]}, "the claim has 1 entries"),
        ({"lo": [0, "zero"], "hi": [1, 1]}, r"lo\[1\] = 'zero'"),
        ({"ibp": {"lo": [0, 0], "hi": [1, 1]}}, "no claim for it"),
    ],
)
def test_bad_input_exits_2_with_one_line(files, capsys, claim, match):
    import re

    net = files("net.json", NET)
    c = files("claim.json", claim)
    args = ["check", net, "--claimed", c] + (["--method", "crown"] if "ibp" in str(claim) else [])
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and re.search(match, err)


def test_no_claim_source_is_bad_input(files, capsys):
    code, _, err = run(capsys, "check", files("net.json", NET))
    assert code == 2 and "--claimed" in err


def test_simulate_float32_cli(files, capsys):
    net = files("net.json", NET)
    code, out, _ = run(capsys, "check", net, "--simulate", "float32", "--json")
    d = json.loads(out)
    assert d["simulate"] == "float32" and d["dtype"] == "float32"
    assert code == (1 if d["summary"]["unsound"] + d["summary"]["inside_exact"] else 0)
    assert d["summary"]["inside_exact"] == 0


def test_intermediate_claims_cli(files, capsys):
    net = files("net.json", NET)
    out_claim = files("claim.json", shifted_claim(NET, -1))
    m = load_json_network(NET)
    ex = exact_method_bounds(m.graph, m.input_set, "ibp", intermediate=True)["layers[0]"]
    inner = {
        "layers[0]": {
            "lo": [rational_str(lower_end(v) + fmpq(1, 10**6)) for v in ex.lo],
            "hi": [rational_str(upper_end(v)) for v in ex.hi],
        }
    }
    code, out, _ = run(
        capsys,
        "check",
        net,
        "--claimed",
        out_claim,
        "--dtype",
        "float32",
        "--intermediate-claims",
        files("inner.json", inner),
        "--json",
    )
    d = json.loads(out)
    assert code == 1
    bad = [v for v in d["verdicts"] if v["verdict"] != "sound"]
    assert {(v["node"], v["side"], v["verdict"]) for v in bad} == {("layers[0]", "lo", "unsound")}
    assert len(bad) == 3


SPEC = """(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 -1))
(assert (<= X_0 1))
(assert (>= X_1 -1))
(assert (<= X_1 2))
(assert (or (and (>= Y_0 {a})) (and (<= Y_1 {b}))))
"""


@pytest.mark.parametrize(
    "a, b, status",
    [
        ("2.5", "-10", "violated"),  # max Y_0 = 3
        ("3.5", "-10", "proved"),
        ("3", "-2.5", "violated"),  # min Y_1 = -2.5
        ("3.1", "-2.6", "proved"),
    ],
)
def test_spec_property(files, capsys, a, b, status):
    net = files("lin.json", LIN)
    spec = files("p.vnnlib", SPEC.format(a=a, b=b))
    claim = files("c.json", {"lo": [-100, -100], "hi": [100, 100]})
    code, out, _ = run(capsys, "check", net, "--spec", spec, "--claimed", claim, "--json")
    assert code == 0
    p = json.loads(out)["property"]
    assert p["status"] == status
    if status == "violated":
        x = [Fraction(s) for s in p["counterexample"]["x"]]
        assert -1 <= x[0] <= 1 and -1 <= x[1] <= 2
        y0, y1 = x[0] - 2 * x[1], x[0] / 2 + 3 * x[1] + 1
        assert y0 >= Fraction(a) or y1 <= Fraction(b)


def chromium():
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )


def test_report_html_is_self_contained(files, capsys, tmp_path):
    net = files("net.json", NET)
    report = tmp_path / "r.html"
    code, _, _ = run(capsys, "check", net, "--simulate", "float32", "--report", str(report))
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and 'src="http' not in page
    plots = re.findall(r'<svg [^>]*class="plot">.*?</svg>', page, re.S)
    assert len(plots) == 2  # inline SVG, no image files, no matplotlib
    for svg in plots:  # well-formed, one marker per side in each
        root = ET.fromstring(svg)
        assert len([e for e in root.iter() if e.tag.endswith("polygon")]) == 4
    assert page.count("<tr class=") == 4
    # provenance: the command, the version and the model's SHA-256
    assert (
        "exactbounds check" in page and hashlib.sha256(open(net, "rb").read()).hexdigest() in page
    )


@pytest.mark.skipif(chromium() is None, reason=missing("chromium"))
def test_report_renders_in_headless_chromium(files, capsys, tmp_path):
    net = files("net.json", NET)
    claim = files("claim.json", shifted_claim(NET, 1))
    report = tmp_path / "report.html"
    run(capsys, "check", net, "--claimed", claim, "--dtype", "float32", "--report", str(report))
    png = tmp_path / "report.png"
    subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1100,1000",
            f"--screenshot={png}",
            report.as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    keep = __import__("os").environ.get("EXACTBOUNDS_KEEP_REPORT_PNG")
    if keep:
        shutil.copy(png, keep)


def test_zero_claims_have_finite_meaningful_ulps_and_a_report(files, capsys, tmp_path):
    """A claim of exactly 0 is measured in ulps at the exact value's magnitude (not in ulp(0),
    the smallest subnormal, which gave 1.8e308): |y|/ulp(y) is in [2^52, 2^53) for float64;
    the JSON stays valid and the report still draws (regression)."""
    net = files("lin.json", LIN)
    claim = files("c.json", {"lo": [0, 0], "hi": [0, 0]})
    report = tmp_path / "r.html"
    code, out, _ = run(capsys, "check", net, "--claimed", claim, "--json", "--report", str(report))
    assert code == 1 and "Infinity" not in out
    d = json.loads(out)
    assert d["summary"]["unsound"] == 4
    for v in d["verdicts"]:
        y = to_exact(v["witness"]["y"])
        assert y != 0 and to_exact(v["ulps_exact"]) == abs(y) / ulp(y)
        assert 2**52 <= v["ulps"] < 2**53
    assert "<svg" in report.read_text()


def test_check_method_deriv_through_the_cli(tmp_path, capsys):
    """``check --method deriv`` dispatches to the derivative audit and prints the same verdict
    JSON: the seed rule's zero second-derivative box is unsound on the bundled PINN example."""
    from pathlib import Path

    model = (
        Path(__file__).resolve().parent.parent / "exactbounds" / "examples" / "pinn_tanh_bn.json"
    )
    assert model.is_file(), "bundled PINN example missing"
    claim = tmp_path / "d.json"
    code, out, _ = run(
        capsys,
        "derivatives",
        str(model),
        "--wrt",
        "0",
        "--json",
        "--second-derivative-rule",
        "seed",
    )
    assert code == 0
    claim.write_text(out)
    code, out, _ = run(
        capsys, "check", str(model), "--method", "deriv", "--claimed", str(claim), "--json"
    )
    d = json.loads(out)
    assert code == 1 and d["method"] == "deriv"
    second = [v for v in d["verdicts"] if v["node"] == "u''"]
    assert second and all(v["verdict"] == "unsound" for v in second)
    assert all(v["verdict"] == "sound" for v in d["verdicts"] if v["node"] == "u'")
