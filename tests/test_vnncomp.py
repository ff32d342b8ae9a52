"""VNN-COMP audit: counterexample files, ``replay`` (exact / float32 / tolerance verdicts),
``verify`` (branch and bound, checked against exact evaluation on grids), and ``suite`` (the
bundled benchmark with planted counterexamples of every verdict kind; hard timeout, resume,
and a dask.distributed LocalCluster run identical to the process-pool run)."""

import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.bab import PROVED, VIOLATED, verify
from exactbounds.algorithms.ibp import evaluate
from exactbounds.audit.replay import (
    CONFIRMED,
    FLOAT_ARTIFACT,
    REFUTED,
    cast,
    float_evaluate,
    margin,
    replay,
)
from exactbounds.errors import ExactBoundsError, MalformedFileError
from exactbounds.graph import Graph
from exactbounds.io.load import load_model
from exactbounds.io.vnnlib import parse_vnnlib
from exactbounds.operators.linear import Linear
from exactbounds.operators.relu import ReLU
from exactbounds.vnncomp.files import (
    instance_key,
    load_counterexample,
    parse_counterexample,
    read_instances,
    read_results,
)
from exactbounds.vnncomp.task import counterexample_text
from vnncomp_bench import EXPECTED, WITHOUT_RESULTS, build_benchmark

CLI = [sys.executable, "-m", "exactbounds"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    build_benchmark(d)
    return d


def cli(*argv, timeout=120):
    return subprocess.run(
        CLI + [str(a) for a in argv], capture_output=True, text=True, timeout=timeout
    )


# ----------------------------------------------------------------------------- files


def test_counterexample_plain_gz_and_exact_decimals(tmp_path):
    text = "sat\n((X_0 0.1)\n(X_1 -1e-3)\n(Y_0 3))\n"
    c = parse_counterexample(text)
    assert c.x == [fmpq(1, 10), fmpq(-1, 1000)] and c.y == [fmpq(3)]
    p = tmp_path / "a.counterexample.gz"
    p.write_bytes(gzip.compress(text.encode()))
    assert load_counterexample(p).x == c.x
    assert parse_counterexample("((X_0 1))").y == []


@pytest.mark.parametrize(
    "text",
    [
        "((X_1 0))",
        "((X_0 1) (X_0 2))",
        "((Z_0 1))",
        "((X_0 abc))",
        "((Y_0 1))",
        "((X_0 1)",
        "((X_0 1 2))",
    ],
)
def test_counterexample_malformed(text):
    with pytest.raises(ExactBoundsError):
        parse_counterexample(text, "f")


def test_instances_resolve_gz_twins_and_reject_bad_rows(tmp_path):
    (tmp_path / "m.onnx.gz").write_bytes(b"x")
    (tmp_path / "p.vnnlib").write_text("x")
    (tmp_path / "instances.csv").write_text("m.onnx,p.vnnlib.gz,7\n\n")
    (inst,) = read_instances(tmp_path)
    assert inst.onnx.endswith("m.onnx.gz") and inst.vnnlib.endswith("p.vnnlib")
    assert inst.timeout == 7 and inst.key == "m_p" == instance_key("a/m.onnx", "p.vnnlib.gz")
    (tmp_path / "instances.csv").write_text("m.onnx,p.vnnlib,-1\n")
    with pytest.raises(ExactBoundsError, match="timeout"):
        read_instances(tmp_path)
    (tmp_path / "instances.csv").write_text("m.onnx,q.vnnlib,1\n")
    with pytest.raises(MalformedFileError, match="q.vnnlib"):
        read_instances(tmp_path)


def test_results_from_competition_csv(tmp_path):
    for n in ("m.onnx", "p.vnnlib", "q.vnnlib"):
        (tmp_path / n).write_text("x")
    (tmp_path / "instances.csv").write_text("m.onnx,p.vnnlib,1\nm.onnx,q.vnnlib,1\n")
    insts = read_instances(tmp_path)
    res = tmp_path / "tool"
    res.mkdir()
    (res / "results.csv").write_text(
        "bench,./b/onnx/m.onnx,./b/vnnlib/p.vnnlib,1.0,sat,2.0\n"
        "bench,./b/onnx/m.onnx,./b/vnnlib/q.vnnlib,1.0,holds,2.0\n"
    )
    (res / "m_p.counterexample.gz").write_bytes(gzip.compress(b"((X_0 1))"))
    got = read_results(res / "results.csv", insts)
    assert got[0].result == "sat" and got[0].cex_path.endswith("m_p.counterexample.gz")
    assert got[1].result == "unsat" and got[1].cex_path is None


# ----------------------------------------------------------------------------- replay


def _model(bench, name):
    net = "net_relu.onnx" if name.startswith("relu") else "net_shift.json"
    return load_model(bench / net, spec=bench / f"{name}.vnnlib")


def _planted(bench, name):
    stem = "net_relu" if name.startswith("relu") else "net_shift"
    return parse_counterexample((bench / "results" / f"{stem}_{name}.txt").read_text())


@pytest.mark.parametrize("name", ["relu_unsafe", "shift_le1", "shift_tol", "relu_safe2"])
def test_replay_planted(bench, name):
    m, c = _model(bench, name), _planted(bench, name)
    r = replay(m, c.x, c.y)
    assert r.verdict == EXPECTED[name][1]
    y = evaluate(m.graph, c.x)
    assert r.violated_x == m.spec.output.evaluate(y)
    assert r.x_inside == m.input_set.contains(c.x)
    if name == "shift_le1":  # float32 only: 1 + 2^-25 rounds to 1.0
        assert r.x_inside and not r.violated_x and r.violated_float32
        assert r.margin_x == -fmpq(1, 2**25)
    if name == "shift_tol":  # exact violation, but only through the tolerance
        assert not r.x_inside and not r.x32_inside and r.x_within_tol and r.violated_x


def test_replay_confirms_through_float32_cast():
    """X written with more digits than float32 lies outside the box; its float32 cast is
    inside and violates exactly: confirmed, witness x_float32."""
    g = Graph.sequential(1, [Linear.from_weights([[1]], [0])])
    spec = parse_vnnlib(
        "(declare-const X_0 Real)(declare-const Y_0 Real)"
        "(assert (>= X_0 0))(assert (<= X_0 1))(assert (>= Y_0 1))"
    )
    from exactbounds.io.json_net import Model

    m = Model(g, spec.input_box, spec=spec)
    r = replay(m, [fmpq(100000001, 10**8)])
    assert (r.verdict, r.witness, r.x_inside, r.x32_inside) == (CONFIRMED, "x_float32", False, True)
    r = replay(m, [fmpq(2)])
    assert r.verdict == REFUTED and not r.x_within_tol


def _net(draw, n_in, widths):
    q = st.integers(-8, 8).map(lambda k: fmpq(k, 4))
    ops, prev = [], n_in
    for k, w in enumerate(widths):
        W = [[draw(q) for _ in range(prev)] for _ in range(w)]
        ops.append(Linear.from_weights(W, [draw(q) for _ in range(w)]))
        if k < len(widths) - 1:
            ops.append(ReLU(w))
        prev = w
    return Graph.sequential(n_in, ops)


@st.composite
def nets(draw):
    return _net(draw, 2, [draw(st.integers(2, 4)), draw(st.integers(2, 4)), 1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nets(), st.integers(0, 16), st.integers(0, 16), st.sampled_from([-1, 0, 1]))
def test_replay_verdict_is_the_exact_answer(g, i, j, shift):
    """Threshold at the exact output ± 2^-70: confirmed exactly when the exact output satisfies
    ``Y_0 <= t``; the margin's sign agrees."""
    from exactbounds.io.json_net import Model

    x = [fmpq(i, 16), fmpq(j, 16)]
    y0 = evaluate(g, x)[0]
    t = y0 + shift * fmpq(1, 2**70)
    spec = parse_vnnlib(
        "(declare-const X_0 Real)(declare-const X_1 Real)"
        "(declare-const Y_0 Real)(assert (<= 0 X_0 1))(assert (<= 0 X_1 1))"
        f"(assert (<= (* {t.q} Y_0) {t.p}))"
    )
    r = replay(Model(g, spec.input_box, spec=spec), x)
    assert (r.verdict == CONFIRMED) == (shift >= 0)
    assert margin(spec.output, evaluate(g, x)) == t.q * (t - y0)  # the comparison as written
    assert r.verdict in (CONFIRMED, FLOAT_ARTIFACT, REFUTED)


def test_float_evaluate_rounds_like_float32(bench):
    m = _model(bench, "shift_le1")
    assert float_evaluate(m.graph, [fmpq(1)]) == [fmpq(1)]
    assert cast([fmpq(1, 3)]) == [fmpq(11184811, 2**25)]


def test_replay_cli_exit_codes(bench, tmp_path):
    m, s = bench / "net_relu.onnx", bench / "relu_unsafe.vnnlib"
    p = cli("replay", m, "--spec", s, bench / "results" / "net_relu_relu_unsafe.txt", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["verdict"] == "confirmed"
    p = cli(
        "replay",
        bench / "net_shift.json",
        "--spec",
        bench / "shift_le1.vnnlib",
        bench / "results" / "net_shift_shift_le1.txt",
    )
    assert p.returncode == 1 and "float_artifact" in p.stdout
    bad = tmp_path / "bad.cex"
    bad.write_text("((X_0 1) (X_5 2))")
    p = cli("replay", m, "--spec", s, bad)
    assert p.returncode == 2 and p.stderr.startswith("exactbounds: error:")
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- verify


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nets(), st.integers(-16, 16))
def test_verify_agrees_with_exact_evaluation(g, k):
    """``proved``: no exact grid point violates; ``violated``: the counterexample lies in the
    box and its exact output satisfies the formula (and replay confirms it)."""
    from exactbounds.io.json_net import Model

    t = fmpq(k, 4)
    spec = parse_vnnlib(
        "(declare-const X_0 Real)(declare-const X_1 Real)"
        "(declare-const Y_0 Real)(assert (<= -1 X_0 1))(assert (<= -1 X_1 1))"
        f"(assert (>= (* 4 Y_0) {k}))"
    )
    box = spec.input_box
    r = verify(g, box, spec.output, budget=30, max_regions=400)
    grid = [[fmpq(a, 8), fmpq(b, 8)] for a in range(-8, 9) for b in range(-8, 9)]
    if r.status == PROVED:
        assert all(evaluate(g, x)[0] < t for x in grid)
    elif r.status == VIOLATED:
        assert box.contains(r.x) and evaluate(g, r.x)[0] >= t
        assert replay(Model(g, box, spec=spec), r.x).verdict == CONFIRMED
    else:
        assert r.regions >= 400


def test_verify_multi_clause_and_cli(bench, tmp_path):
    m = _model(bench, "relu_safe")
    assert verify(m.graph, m.input_set, m.spec.output, budget=30).status == PROVED
    out = tmp_path / "found.cex"
    p = cli(
        "verify",
        bench / "net_relu.onnx",
        "--spec",
        bench / "relu_unsafe2.vnnlib",
        "--counterexample",
        out,
        "--json",
    )
    assert p.returncode == 1 and json.loads(p.stdout)["status"] == "violated"
    p = cli("replay", bench / "net_relu.onnx", "--spec", bench / "relu_unsafe2.vnnlib", out)
    assert p.returncode == 0 and "confirmed" in p.stdout
    p = cli("verify", bench / "net_relu.onnx", "--spec", bench / "relu_safe.vnnlib")
    assert p.returncode == 0 and "proved" in p.stdout
    p = cli(
        "verify", bench / "net_relu.onnx", "--spec", bench / "relu_safe.vnnlib", "--budget", "0"
    )
    assert p.returncode == 2 and "--budget" in p.stderr


def test_verify_true_formula_needs_a_point_of_the_polytope():
    """Regression: with a true output formula the centre (outside the polytope) must not close
    the region; the search goes on to a point with X_0 + X_1 >= 3/2."""
    g = Graph.sequential(2, [Linear.from_weights([[1, 1]], [0])])
    spec = parse_vnnlib(
        "(declare-const X_0 Real)(declare-const X_1 Real)"
        "(declare-const Y_0 Real)(assert (<= 0 X_0 1))(assert (<= 0 X_1 1))"
        "(assert (>= (+ X_0 X_1) 1.5))"
    )
    r = verify(g, spec.input_box, spec.output, budget=30, constraints=tuple(spec.input_constraints))
    assert r.status == VIOLATED and r.x[0] + r.x[1] >= fmpq(3, 2)


def test_counterexample_text_is_exact():
    x = [fmpq(3, 2**30), fmpq(-5, 4)]
    assert parse_counterexample(counterexample_text(x, [fmpq(1, 3)])).x == x


# ----------------------------------------------------------------------------- suite


def test_suite_pool_resume_and_dask_cluster(bench, tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "pool"
    p = cli(
        "suite", bench, "--results", bench / "results", "--workers", "2", "--out", out, timeout=300
    )
    assert p.returncode == 1, p.stderr  # refuted / float_artifact rows
    doc = json.loads((out / "results.json").read_text())
    names = [Path(r["vnnlib"]).stem for r in doc["instances"]]
    assert {n: r["verdict"] for n, r in zip(names, doc["instances"])} == {
        n: v for n, (_, v) in EXPECTED.items()
    }
    assert (out / "results.csv").read_text().count("\n") == len(EXPECTED) + 1
    page = (out / "report.html").read_text()
    assert "float_artifact" in page and "<script" not in page
    # an interrupted run: two answers lost; the rerun redoes only those
    files = sorted((out / "instances").glob("*.json"))
    kept = {f: f.stat().st_mtime_ns for f in files[2:]}
    for f in files[:2]:
        f.unlink()
    first = (out / "results.json").read_text()
    from exactbounds.vnncomp.runner import run_suite

    run_suite(bench, out, results=bench / "results", workers=2)
    assert all(f.stat().st_mtime_ns == t for f, t in kept.items())
    assert (out / "results.json").read_text() == first
    # the same tasks on a dask.distributed cluster started in this process
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        run_suite(
            bench, tmp_path / "dask", results=bench / "results", scheduler=cluster.scheduler_address
        )
    assert (tmp_path / "dask" / "results.json").read_text() == first


def test_suite_without_results_and_hard_timeout(bench, tmp_path):
    """Without results: the property's status. A verify given a budget beyond the hard
    timeout is killed at the timeout (the runaway exact computation does not stall)."""
    from exactbounds.vnncomp.runner import run_suite

    sub = tmp_path / "b"
    sub.mkdir()
    for f in bench.iterdir():
        if f.is_file():
            shutil.copy(f, sub / f.name)
    lines = (bench / "instances.csv").read_text().splitlines()
    (sub / "instances.csv").write_text("\n".join(lines[:2] + [lines[-1]]) + "\n")
    t = time.monotonic()
    doc = run_suite(sub, tmp_path / "o", workers=2, timeout=10, budget=120)
    assert time.monotonic() - t < 60
    got = {Path(r["vnnlib"]).stem: r["verdict"] for r in doc["instances"]}
    assert got == {
        "relu_safe": WITHOUT_RESULTS["relu_safe"],
        "relu_unsafe": WITHOUT_RESULTS["relu_unsafe"],
        "shift_eq": "timeout",
    }
    (f,) = (tmp_path / "o" / "instances").glob("*shift_eq.json")
    assert json.loads(f.read_text())["seconds"] < 10 + 5
    # a forked task reports its own CPU time (kept out of results.json, which has no timings)
    (g,) = (tmp_path / "o" / "instances").glob("*relu_safe.json")
    assert 0 <= json.loads(g.read_text())["cpu_seconds"] < 10
    assert "cpu_seconds" not in (tmp_path / "o" / "results.json").read_text()


def test_suite_bad_input(tmp_path):
    p = cli("suite", tmp_path, "--out", tmp_path / "o")
    assert p.returncode == 2 and "instances.csv" in p.stderr
    p = cli("suite", tmp_path, "--workers", "0")
    assert p.returncode == 2
