"""``check`` with the fast tier first (``--mode fast``, the default on large models): a side whose
claim contains the fast sound bound is ``sound`` without exact work, every other side gets the
exact audit's verdict unchanged; a fast-decided claim is a valid bound of the network at every
exact point tried; with a spec, a property the fast bounds prove is ``proved`` by the fast tier."""

import json
import random
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.ibp import evaluate
from exactbounds.algorithms.methods import run_method
from exactbounds.audit.bounds import check_model
from exactbounds.audit.claims import Claim
from exactbounds.inputsets import sample, vertices
from exactbounds.numbers import RationalContext, make_context
from exactbounds.operators.relu import ReLU
from tests.test_crown_soundness import input_set
from tests.test_fast_crown import float_box, float_net, relaxed_net

EXACT = RationalContext(128)
FAST = make_context("fast")
SHIFTS = [fmpq(0), fmpq(1, 10**9), -fmpq(1, 10**9), fmpq(1, 100), -fmpq(1, 100), fmpq(5)]


def claims_near(data, res):
    """Claims at the fast bound's ends shifted by drawn amounts (outward is positive)."""
    c = res.ctx
    lo = [c.lower(v) - data.draw(st.sampled_from(SHIFTS)) for v in res.output.lo]
    hi = [c.upper(v) + data.draw(st.sampled_from(SHIFTS)) for v in res.output.hi]
    return Claim(lo, hi, "float64")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_tier_decides_only_sound_sides_and_leaves_the_rest_to_the_exact_audit(data):
    g, n = data.draw(relaxed_net())
    S = data.draw(input_set(n))
    method = data.draw(st.sampled_from(["ibp", "crown", "affine"]))
    model = SimpleNamespace(graph=g, input_set=S, spec=None)
    claim = claims_near(data, run_method(method, g, S, FAST))
    kw = dict(budget=20, n_random=2)
    fast = check_model(model, [claim], method, mode="fast", **kw)
    exact = check_model(model, [claim], method, **kw)
    tier = fast.info["fast_tier"]
    decided = [v for v in fast.verdicts if v.note.startswith("fast tier")]
    assert tier["sides"] == len(fast.verdicts) and tier["decided"] == len(decided)
    # piecewise linear: exact IBP is one exact number (Sin, Sigmoid, ...: an enclosure of its
    # own, which a tighter fast enclosure may cut)
    pwl = all(nd.op.kind in ("linear", "relu", "leakyrelu", "sign") for nd in g.nodes)
    pts = sample(S, random.Random(2), 2) + vertices(S, 4)
    ys = [evaluate(g, x, EXACT) for x in pts]
    for f, e in zip(fast.verdicts, exact.verdicts):
        assert (f.output, f.side) == (e.output, e.side)
        if f in decided:
            assert f.verdict == "sound" and e.verdict != "unsound"
            if method == "ibp" and pwl:  # an enclosure of the exact IBP bound: same verdict
                assert e.verdict == "sound"
            for y in ys:  # a valid bound of the network
                v = y[f.output]
                assert (
                    f.claimed <= EXACT.upper(v) if f.side == "lo" else EXACT.lower(v) <= f.claimed
                )
        else:
            assert (f.verdict, f.exact, f.claimed) == (e.verdict, e.exact, e.claimed)
    if tier["decided"] == tier["sides"]:
        assert fast.evaluations == 0 and fast.mode == "fast"


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "exactbounds", *args], capture_output=True, text=True, timeout=300
    )


def test_check_cli_fast_tier(tmp_path):
    """``check --mode fast``: outward claims are all decided by the fast tier (no exact
    evaluation, exit 0, the table says so); a claim above the output's range on one side is
    left to the exact audit, which finds its exact witness (exit 1)."""
    rng = random.Random(4)
    n, h = 6, 12
    net = {
        "input_lo": [0] * n,
        "input_hi": [0.5] * n,
        "layers": [
            {
                "type": "linear",
                "weight": [[rng.gauss(0, 0.5) for _ in range(n)] for _ in range(h)],
                "bias": [rng.gauss(0, 0.3) for _ in range(h)],
            },
            {"type": "relu"},
            {"type": "linear", "weight": [[rng.gauss(0, 0.5) for _ in range(h)]], "bias": [0]},
        ],
    }
    p = tmp_path / "net.json"
    p.write_text(json.dumps(net))
    b = json.loads(_cli("bounds", str(p), "--method", "crown", "--json").stdout)["outputs"]
    lo, hi = float(fmpq_of(b["lo"][0])) - 1e-3, float(fmpq_of(b["hi"][0])) + 1e-3
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"lo": [lo], "hi": [hi]}))
    r = _cli("check", str(p), "--claimed", str(c), "--method", "crown", "--mode", "fast", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["fast_tier"]["decided"] == 2 and doc["evaluations"] == 0
    r = _cli("check", str(p), "--claimed", str(c), "--method", "crown", "--mode", "fast")
    assert "fast tier (fast, bound" in r.stdout and "2 of 2 sides sound" in r.stdout
    c.write_text(json.dumps({"lo": [hi + 1], "hi": [hi]}))
    r = _cli("check", str(p), "--claimed", str(c), "--method", "crown", "--mode", "fast", "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["fast_tier"]["decided"] == 1
    bad = [v for v in doc["verdicts"] if v["verdict"] == "unsound"]
    assert len(bad) == 1 and bad[0]["side"] == "lo" and bad[0]["witness"]


def fmpq_of(s):
    p, _, q = s.partition("/")
    return fmpq(int(p), int(q or 1))


def test_check_spec_property_by_the_fast_tier():
    """The bundled ONNX example with its VNN-LIB spec: the property's status is the exact
    check's, and when the fast bounds prove it, the fast tier says so."""
    ex = "exactbounds/examples/mlp_bn"
    args = ["check", ex + ".onnx", "--spec", ex + ".vnnlib", "--method", "crown"]
    args += ["--simulate", "float64", "--json"]
    a = json.loads(_cli(*args).stdout)
    f = json.loads(_cli(*args, "--mode", "fast").stdout)
    assert f["property"]["status"] == a["property"]["status"]
    if f["property"]["status"] == "proved":
        assert f["property"]["proved_by"] == "crown (fast tier)"


def test_a_side_claimed_twice_goes_to_the_exact_audit():
    """Two claims on the output (one outward, one far inside): the fast tier decides neither
    of the doubly claimed sides, and every verdict equals the exact audit's, in order."""

    rng = np.random.default_rng(11)
    g = float_net(rng, 3, [6], ReLU)
    S = float_box(rng, 3, 0.2)
    model = SimpleNamespace(graph=g, input_set=S, spec=None)
    res = run_method("crown", g, S, FAST)
    c = res.ctx
    lo = [c.lower(v) - 1 for v in res.output.lo]
    hi = [c.upper(v) + 1 for v in res.output.hi]
    tight = Claim([v + 3 for v in lo], [v - 3 for v in hi], "float64")
    claims = [Claim(lo, hi, "float64"), tight]
    fast = check_model(model, claims, "crown", mode="fast", budget=10, n_random=1)
    exact = check_model(model, claims, "crown", budget=10, n_random=1)
    assert fast.info["fast_tier"]["decided"] == 0
    assert [(v.output, v.side, v.verdict, v.claimed) for v in fast.verdicts] == [
        (v.output, v.side, v.verdict, v.claimed) for v in exact.verdicts
    ]


def test_a_budget_stop_after_the_fast_tier_says_what_it_decided(monkeypatch):
    """When the exact audit of the sides the fast tier left undecided runs out of budget, the
    one-line stop says how many sides the fast tier decided and how far inside its sound bound
    the other claims lie (the claims here: lower ends 1e-3 relative inside, upper ends 5
    outside)."""
    import pytest

    from exactbounds.audit import methods
    from exactbounds.errors import BudgetExceededError

    g = float_net(np.random.default_rng(4), 3, [6], ReLU)
    S = float_box(np.random.default_rng(5), 3, 0.1)
    model = SimpleNamespace(graph=g, input_set=S, spec=None)
    res = run_method("crown", g, S, FAST)
    c = res.ctx
    lo = [c.lower(v) + abs(c.lower(v)) / 1000 for v in res.output.lo]
    hi = [c.upper(v) + 5 for v in res.output.hi]

    def stop(*a, **k):
        raise BudgetExceededError("stopped after the time budget of 1 s (--timeout): advice")

    monkeypatch.setattr(methods.AuditRuns, "exact_bounds", stop)
    with pytest.raises(BudgetExceededError) as e:
        check_model(model, [Claim(lo, hi, "float64")], "crown", mode="fast")
    msg = str(e.value)
    assert "the fast tier decided 3 of 6 claimed sides" in msg
    assert "the 3 others lie inside its sound bound, by at most 0.001 relative" in msg
    assert "\n" not in msg
