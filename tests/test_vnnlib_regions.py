"""VNN-LIB input sets that are an ``or`` of boxes (ACAS Xu property 6 style): parsed as regions,
bounded region by region, the property judged per region and overall (``bounds --spec``)."""

import gzip
import json
import random
import subprocess
import sys
from fractions import Fraction

import pytest
from flint import fmpq

from exactbounds.errors import InvalidBoxError, MalformedFileError
from exactbounds.io.vnnlib import load_vnnlib, parse_vnnlib

HEAD = "".join(f"(declare-const X_{i} Real)\n" for i in range(2)) + "".join(
    f"(declare-const Y_{i} Real)\n" for i in range(2)
)
# region 0: [0, 1] x [0, 1]; region 1: [2, 3] x [-1, 0]
REGIONS = (
    "(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1))\n"
    "            (and (>= X_0 2) (<= X_0 3) (>= X_1 -1) (<= X_1 0))))\n"
)


def _spec(output=""):
    return HEAD + REGIONS + output


def _ends(box):
    return [Fraction(int(v.p), int(v.q)) for v in box.lo], [
        Fraction(int(v.p), int(v.q)) for v in box.hi
    ]


@pytest.mark.parametrize("output", ["", "(assert (>= Y_0 Y_1))\n"])
def test_parse_two_regions_and_hull(output):
    spec = parse_vnnlib(_spec(output))
    assert spec.multi_region
    assert [_ends(b) for b in spec.input_regions] == [
        ([0, 0], [1, 1]),
        ([2, -1], [3, 0]),
    ]
    assert _ends(spec.input_box) == ([0, -1], [3, 1])  # the hull
    assert spec.output.trivial == (output == "")


def test_one_region_is_unchanged():
    spec = parse_vnnlib(HEAD + "(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1))))")
    assert not spec.multi_region and spec.regions == ()
    assert spec.input_regions == (spec.input_box,)
    assert _ends(spec.input_box) == ([0, 0], [1, 1])


def test_regions_share_the_global_bounds_and_multiply():
    text = (
        HEAD
        + "(assert (>= X_1 0))(assert (<= X_1 1))\n"
        + "(assert (or (and (>= X_0 0) (<= X_0 1)) (and (>= X_0 4) (<= X_0 5))))\n"
        + "(assert (or (<= X_1 0.5) (>= X_1 0.75)))\n"
    )
    spec = parse_vnnlib(text)
    got = [_ends(b) for b in spec.input_regions]
    half, tq = Fraction(1, 2), Fraction(3, 4)
    assert got == [
        ([0, 0], [1, half]),
        ([0, tq], [1, 1]),
        ([4, 0], [5, half]),
        ([4, tq], [5, 1]),
    ]


def test_bad_regions_raise():
    with pytest.raises(InvalidBoxError, match="input region 1"):
        parse_vnnlib(_spec().replace("(>= X_0 2)", "(>= X_0 4)"))  # empty region
    with pytest.raises(InvalidBoxError, match="input region 1 X_1 has no lower bound"):
        parse_vnnlib(_spec().replace("(>= X_1 -1)", ""))
    with pytest.raises(InvalidBoxError, match="input region 0 X_0 has no lower bound"):
        parse_vnnlib("(declare-const X_0 Real) (assert (or (<= X_0 1) (>= X_0 2)))")
    with pytest.raises(MalformedFileError, match="constrain the inputs differently"):
        parse_vnnlib(HEAD + "(assert (or (and (<= X_0 1) (>= Y_0 0)) (and (<= X_0 2))))")


# ----------------------------------------------------------------------------- the CLI


def _cli(*argv):
    return subprocess.run(
        [sys.executable, "-m", "exactbounds", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _net(rng, n_hidden=3):
    w1 = [[Fraction(rng.randint(-8, 8), 4) for _ in range(2)] for _ in range(n_hidden)]
    b1 = [Fraction(rng.randint(-8, 8), 8) for _ in range(n_hidden)]
    w2 = [[Fraction(rng.randint(-8, 8), 4) for _ in range(n_hidden)] for _ in range(2)]
    b2 = [Fraction(rng.randint(-8, 8), 8) for _ in range(2)]
    return w1, b1, w2, b2


def _write_net(path, w1, b1, w2, b2):
    s = lambda m: [[str(v) for v in row] for row in m]  # noqa: E731
    doc = {
        "input_lo": [0, 0],
        "input_hi": [1, 1],
        "layers": [
            {"type": "linear", "weight": s(w1), "bias": [str(v) for v in b1]},
            {"type": "relu"},
            {"type": "linear", "weight": s(w2), "bias": [str(v) for v in b2]},
        ],
    }
    path.write_text(json.dumps(doc))


def _value(net, x):
    """The network's exact value at ``x``."""
    w1, b1, w2, b2 = net
    h = [max(Fraction(0), sum(w * v for w, v in zip(row, x)) + b) for row, b in zip(w1, b1)]
    return [sum(w * v for w, v in zip(row, h)) + b for row, b in zip(w2, b2)]


@pytest.mark.parametrize("seed,method", [(0, "ibp"), (1, "crown"), (2, "affine")])
def test_region_bounds_contain_the_network(tmp_path, seed, method):
    rng = random.Random(seed)
    net = _net(rng)
    _write_net(tmp_path / "n.json", *net)
    (tmp_path / "s.vnnlib").write_text(_spec("(assert (>= Y_0 Y_1))\n"))
    r = _cli(
        "bounds", tmp_path / "n.json", "--spec", tmp_path / "s.vnnlib", "--method", method, "--json"
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    boxes = [([0, 0], [1, 1]), ([2, -1], [3, 0])]
    assert [g["region"] for g in doc["regions"]] == [0, 1]
    hull_lo = [Fraction(v) for v in doc["outputs"]["lo"]]
    hull_hi = [Fraction(v) for v in doc["outputs"]["hi"]]
    for g, (lo_in, hi_in) in zip(doc["regions"], boxes):
        lo = [Fraction(v) for v in g["outputs"]["lo"]]
        hi = [Fraction(v) for v in g["outputs"]["hi"]]
        assert all(h <= a for h, a in zip(hull_lo, lo)) and all(b <= h for h, b in zip(hull_hi, hi))
        corners = [
            [Fraction(lo_in[0]), Fraction(lo_in[1])],
            [Fraction(hi_in[0]), Fraction(hi_in[1])],
        ]
        pts = corners + [
            [Fraction(rng.randint(0, 64), 64) * (b - a) + a for a, b in zip(lo_in, hi_in)]
            for _ in range(40)
        ]
        for x in pts:
            y = _value(net, x)
            assert all(a <= v <= b for a, v, b in zip(lo, y, hi)), (x, y, lo, hi)
    # the hull is the hull of the regions' bounds, exactly
    assert hull_lo == [
        min(Fraction(g["outputs"]["lo"][k]) for g in doc["regions"]) for k in range(2)
    ]
    assert hull_hi == [
        max(Fraction(g["outputs"]["hi"][k]) for g in doc["regions"]) for k in range(2)
    ]


def _identity(tmp_path):
    one = [[1, 0], [0, 1]]
    _write_net(tmp_path / "id.json", one, [0, 0], one, [0, 0])  # ReLU(x) on both
    return tmp_path / "id.json"


@pytest.mark.parametrize(
    "output,per_region,overall",
    [
        ("(assert (>= Y_0 2.5))", [True, False], False),  # region 1 reaches Y_0 = 3
        ("(assert (>= Y_0 5))", [True, True], True),
        ("(assert (<= Y_0 1.5))", [False, True], False),
    ],
)
def test_property_verdict_per_region(tmp_path, output, per_region, overall):
    (tmp_path / "s.vnnlib").write_text(_spec(output))
    net = _identity(tmp_path)
    r = _cli("bounds", net, "--spec", tmp_path / "s.vnnlib", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [g["property_proved"] for g in doc["regions"]] == per_region
    assert doc["property_proved"] is overall
    verdict = [n for n in doc["notes"] if n.startswith("property of")]
    assert len(verdict) == 1 and ("proved on every region" in verdict[0]) == overall
    t = _cli("bounds", net, "--spec", tmp_path / "s.vnnlib")
    assert t.returncode == 0, t.stderr
    lines = t.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines if ln.startswith("region ")] == [
        "region 0",
        "region 1",
    ]
    for k, p in enumerate(per_region):
        assert f"property on region {k}: {'proved' if p else 'not proved'}" in lines
    assert any("hull of 2 regions" in ln for ln in lines)


def test_bad_region_cli_one_line_exit_2(tmp_path):
    net = _identity(tmp_path)
    cases = {
        "empty.vnnlib": _spec().replace("(>= X_0 2)", "(>= X_0 4)"),
        "open.vnnlib": _spec().replace("(>= X_1 -1)", ""),
        "three.vnnlib": "(declare-const X_2 Real)\n"
        + _spec().replace("(<= X_1 0)", "(<= X_1 0) (>= X_2 0) (<= X_2 1)"),
        "unbalanced.vnnlib": _spec()[:-3],
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        r = _cli("bounds", net, "--spec", tmp_path / name)
        assert r.returncode == 2, (name, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def test_gzipped_spec_with_regions(tmp_path):
    path = tmp_path / "s.vnnlib.gz"
    path.write_bytes(gzip.compress(_spec("(assert (>= Y_0 2.5))").encode()))
    spec = load_vnnlib(path)
    assert spec.multi_region and len(spec.input_regions) == 2
    r = _cli("bounds", _identity(tmp_path), "--spec", path, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [g["property_proved"] for g in doc["regions"]] == [True, False]
    assert doc["outputs"]["lo"] == ["0", "0"] and doc["outputs"]["hi"] == ["3", "1"]


@pytest.mark.parametrize(
    "output,per_region,overall",
    [
        ("(assert (>= Y_0 2.5))", [True, False], False),
        ("(assert (>= Y_0 5))", [True, True], True),
        ("(assert (<= Y_0 1.5))", [False, True], False),
    ],
)
@pytest.mark.parametrize("method", ["ibp", "crown"])
def test_api_bounds_region_by_region(tmp_path, output, per_region, overall, method):
    """``exactbounds.bounds`` bounds each region on its own: ``regions`` holds their results
    (each containing the network at points of its region), ``output`` is their hull, and the
    notes judge the property per region (proved only on every region)."""
    import exactbounds as eb

    (tmp_path / "s.vnnlib").write_text(_spec(output))
    m = eb.load(_identity(tmp_path), spec=tmp_path / "s.vnnlib")
    res = eb.bounds(m, method=method)
    assert len(res.regions) == 2
    ends = [r.output.outer(r.ctx) for r in res.regions]
    lo, hi = res.output.outer(res.ctx)
    assert lo == [min(v) for v in zip(*(e[0] for e in ends))]
    assert hi == [max(v) for v in zip(*(e[1] for e in ends))]
    assert [m.spec.output.proved_by_box(*e) for e in ends] == per_region
    rng = random.Random(0)
    for e, box in zip(ends, m.spec.input_regions):
        for _ in range(5):
            x = [a + (b - a) * fmpq(rng.randint(0, 8), 8) for a, b in zip(box.lo, box.hi)]
            y = [max(v, 0) for v in x]  # the identity net: ReLU on both
            assert all(a <= v <= b for a, b, v in zip(*e, y))
    verdict = [n for n in res.notes if n.startswith("property of")]
    assert len(verdict) == 1 and ("proved on every region" in verdict[0]) == overall
    for r, p in zip(res.regions, per_region):
        assert any(("property of" in n and ("not proved" in n) != p) for n in r.notes)


@pytest.mark.parametrize(
    "output,status,region",
    [
        # Y_0 in [1.5, 1.9] is reached only between the regions (in their hull): no violation
        ("(assert (>= Y_0 1.5))(assert (<= Y_0 1.9))", "proved", None),
        ("(assert (>= Y_0 2.5))", "violated", 1),  # region 1 reaches Y_0 = 3
        ("(assert (>= Y_0 5))", "proved", None),
    ],
)
def test_suite_verifies_region_by_region(tmp_path, output, status, region):
    """The suite's verify runs on each region: a counterexample lies in a region (never merely
    in the hull), and the property is proved only when proved on every region."""
    from exactbounds.io.load import load_model
    from exactbounds.vnncomp.task import _bounds, verify_regions

    (tmp_path / "s.vnnlib").write_text(_spec(output))
    m = load_model(str(_identity(tmp_path)), spec=str(tmp_path / "s.vnnlib"))
    r = verify_regions(m, 20.0, None)
    assert r.status == status
    assert _bounds(m)["proves_property"] == (status == "proved")
    if region is not None:
        box = m.spec.input_regions[region]
        assert all(a <= v <= b for a, v, b in zip(box.lo, r.x, box.hi))
        assert m.spec.output.evaluate([max(v, 0) for v in r.x])


def _notch(tmp_path):
    """``y_0 = −|x_0 − 3/2|`` (two ReLUs), ``y_1 = 0``: on the regions ``x_0 ∈ [0, 1] ∪ [2, 3]``
    it lies in ``[−3/2, −1/2]``, on their hull it reaches 0 (at ``x_0 = 3/2``)."""
    w1 = [[1, 0], [-1, 0]]
    b1 = [Fraction(-3, 2), Fraction(3, 2)]
    _write_net(tmp_path / "notch.json", w1, b1, [[-1, -1], [0, 0]], [0, 0])
    return tmp_path / "notch.json"


@pytest.mark.parametrize("method", ["ibp", "crown"])
def test_check_region_by_region(tmp_path, method):
    """``check`` audits a claim region by region: a claim sound on the union of regions but not
    on their hull is ``sound`` (the witness search does not leave the regions), the property is
    judged per region, and a claim unsound on one region keeps that region's witness."""
    import exactbounds as eb

    (tmp_path / "s.vnnlib").write_text(_spec("(assert (>= Y_0 -0.4))"))
    m = eb.load(_notch(tmp_path), spec=tmp_path / "s.vnnlib")
    res = eb.check(m, ([-1.5, 0], [-0.5, 0]), method=method)
    assert [v.verdict for v in res.verdicts] == ["sound"] * 4
    assert res.info["regions"] == 2 and all("input region" in v.note for v in res.verdicts)
    assert res.properties[0].status == "proved"
    bad = eb.check(m, ([-1.5, 0], [-0.6, 0]), method=method)  # -0.5 is reached on both regions
    (v,) = [v for v in bad.verdicts if v.verdict == "unsound"]
    assert (v.output, v.side) == (0, "hi")
    x0 = v.witness.x[0]
    assert 0 <= x0 <= 1 or 2 <= x0 <= 3  # in a region, not between them
    assert -abs(Fraction(int(x0.p), int(x0.q)) - Fraction(3, 2)) > Fraction(-6, 10)
    r = _cli("check", _notch(tmp_path), "--spec", tmp_path / "s.vnnlib", "--method", method,
             "--simulate", "float32", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["regions"] == 2 and doc["property"]["status"] == "proved"
