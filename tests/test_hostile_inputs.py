"""Bad input of every class through every subcommand, run as a user runs it: the real entry
point in a subprocess under a 2 GB address-space limit. Each must end within seconds with exit
status 2 and exactly one line on stderr, never a traceback (regressions of issue 11: hangs on
``1e999999999``, FLINT aborts on huge sizes, RecursionError on deep nesting, UnicodeDecodeError on
UTF-16, TypeError on wrong types, ...)."""

import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import numpy as np
import pytest

from exactbounds.errors import MalformedFileError
from exactbounds.io.onnx_loader import load_onnx

EX = resources.files("exactbounds") / "examples"
BN = str(EX / "bn.json")
PINN = str(EX / "pinn_tanh_bn.json")
MLP, MLP_SPEC = str(EX / "mlp_bn.onnx"), str(EX / "mlp_bn.vnnlib")
LIMIT = 2 << 30
SECONDS = 12  # generous on a loaded 2-core machine; a good run takes about 1 s

NET = {
    "input_lo": [0, 0],
    "input_hi": [1, 1],
    "layers": [{"type": "linear", "weight": [[1, -1], [2, 1]], "bias": [0, 1]}, {"type": "relu"}],
}
SPEC = (
    "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
    "(declare-const Y_1 Real)\n(assert (>= X_0 0))\n(assert (<= X_0 1))\n"
    "(assert (>= X_1 0))\n(assert (<= X_1 1))\n(assert (>= Y_0 5))\n"
)


def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def run_cli(args, cwd=None):
    """``(status, stdout, stderr, seconds)`` of ``exactbounds ARGS`` under the memory limit."""
    t = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "exactbounds.cli", *args],
        capture_output=True,
        text=True,
        preexec_fn=_limit,
        timeout=120,
        cwd=cwd,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t


def net(**change):
    d = json.loads(json.dumps(NET))
    d.update(change)
    return d


def layer0(**change):
    d = net()
    d["layers"][0].update(change)
    return d


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")

    def put(name, content):
        p = root / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif isinstance(content, str):
            p.write_text(content)
        else:
            p.write_text(json.dumps(content))
        return str(p)

    f = {
        "net": put("net.json", NET),
        "spec": put("p.vnnlib", SPEC),
        "claim": put("claim.json", {"lo": [0, 0], "hi": [9, 9]}),
        # malformed
        "syntax": put("syntax.json", '{"input_lo": [0, 0], "layers": [}'),
        "dupkey": put(
            "dup.json",
            '{"input_lo": [0, 0], "input_lo": [1, 1], "input_hi": [1, 1],'
            ' "layers": [{"type": "relu"}]}',
        ),
        "vnn_unbalanced": put("unbal.vnnlib", SPEC + "(assert (<= X_0 1)"),
        "vnn_unknown": put("unknown.vnnlib", SPEC + "(assert (foo X_0 1))"),
        "claim_nulls": put("nulls.json", {"lo": [None, None], "hi": [None, None]}),
        # out of range / invalid model values
        "eps_neg": put(
            "eps.json",
            {
                "input_lo": [0],
                "input_hi": [1],
                "layers": [
                    {
                        "type": "batchnorm",
                        "mean": [0],
                        "var": [1],
                        "gamma": [1],
                        "beta": [0],
                        "eps": -1e-5,
                    }
                ],
            },
        ),
        # huge numbers
        "huge_weight": put("hw.json", layer0(weight=[["1e999999999", 1], [0, 1]])),
        "huge_hex": put("hh.json", net(input_hi=["0x1p999999999", 1])),
        "many_digits": put("md.json", net(input_hi=["1" * 5000, 1])),
        "json_1e400": put(
            "j400.json",
            '{"input_lo": [0, 0], "input_hi": [1e400, 1], "layers": [{"type": "relu"}]}',
        ),
        "json_1e-400": put(
            "jm400.json",
            '{"input_lo": [1e-400, 0], "input_hi": [1, 1], "layers": [{"type": "relu"}]}',
        ),
        "json_bigint": put(
            "bi.json",
            '{"input_lo": [0, 0], "input_hi": ['
            + "9" * 5000
            + ', 1], "layers": [{"type": "relu"}]}',
        ),
        "vnn_huge": put("huge.vnnlib", SPEC.replace("(<= X_0 1)", "(<= X_0 1e999999999)")),
        "claim_huge": put("ch.json", {"lo": ["-1e999999999", 0], "hi": [9, 9]}),
        # huge sizes
        "conv_pad": put(
            "conv.json",
            {
                "input_lo": [0] * 4,
                "input_hi": [1] * 4,
                "input_shape": [1, 2, 2],
                "layers": [
                    {"type": "conv2d", "weight": [[[[1]]]], "padding": 100000},
                    {"type": "relu"},
                ],
            },
        ),
        "wide": put(
            "wide.json",
            {
                "input_lo": [0],
                "input_hi": [1],
                "layers": [{"type": "linear", "weight": [[1]] * 100000}, {"type": "relu"}],
            },
        ),
        "big_shape": put("bs.json", net(input_shape=[100000000000])),
        "vnn_bigvar": put("bigvar.vnnlib", "(declare-const X_99999999999999 Real)\n"),
        # deep nesting
        "deep_json": put("deep.json", "[" * 100000 + "]" * 100000),
        "deep_vnn": put("deep.vnnlib", SPEC + "(assert " + "(and " * 50000 + "(foo)" + ")" * 50001),
        # wrong types
        "shape_str": put("ss.json", net(input_shape="2")),
        "lo_scalar": put("ls.json", net(input_lo=3)),
        "weight_scalar": put("ws.json", layer0(weight=3)),
        "type_list": put("tl.json", layer0(type=["linear"])),
        "name_list": put("nl.json", layer0(name=["a"])),
        "claim_obj": put("co.json", {"lo": [{"a": 1}, 0], "hi": [9, 9]}),
        "top_list": put("tlist.json", [1, 2, 3]),
        # wrong encodings
        "utf16": put("u16.json", json.dumps(NET).encode("utf-16")),
        "binary": put("bin.json", b"\xff\xfe{\x00\x01\x02" * 10),
        "arabic": put("ar.json", net(input_hi=["١", 1])),
        "vnn_latin1": put("l1.vnnlib", (SPEC + "; caf\xe9\n").encode("latin-1")),
        # unreadable paths
        "dir_json": str(root / "adir.json"),
        "zero_json": str(root / "zero.json"),
    }
    (root / "adir.json").mkdir()
    os.symlink("/dev/zero", root / "zero.json")
    f["missing"] = str(root / "missing.json")
    return f


def cases(f):
    """``(id, argv)`` of every bad invocation."""
    c = []
    for kind in (
        "syntax",
        "dupkey",
        "eps_neg",
        "huge_weight",
        "huge_hex",
        "many_digits",
        "json_1e400",
        "json_1e-400",
        "json_bigint",
        "conv_pad",
        "big_shape",
        "deep_json",
        "shape_str",
        "lo_scalar",
        "weight_scalar",
        "type_list",
        "name_list",
        "top_list",
        "utf16",
        "binary",
        "arabic",
        "dir_json",
        "zero_json",
        "missing",
    ):
        c.append((f"bounds-{kind}", ["bounds", f[kind]]))
    c += [
        ("bounds-wide-crown", ["bounds", f["wide"], "--method", "crown"]),
        ("bounds-bits-huge", ["bounds", f["net"], "--bits", "99999999999999999999"]),
        ("bounds-bits-neg", ["bounds", f["net"], "--bits", "-3"]),
        ("bounds-prec-huge", ["bounds", f["net"], "--mode", "interval", "--prec", "10000000"]),
        ("bounds-timeout-neg", ["bounds", f["net"], "--timeout", "-1"]),
        ("bounds-mem-zero", ["bounds", f["net"], "--max-memory", "0"]),
        ("bounds-mode-bad", ["bounds", f["net"], "--mode", "quick"]),
    ]
    for kind in (
        "vnn_unbalanced",
        "vnn_unknown",
        "vnn_huge",
        "vnn_bigvar",
        "deep_vnn",
        "vnn_latin1",
        "missing",
    ):
        c.append((f"bounds-spec-{kind}", ["bounds", f["net"], "--spec", f[kind]]))
    c += [("bounds-onnx-nospec", ["bounds", MLP])]
    for kind in (
        "claim_nulls",
        "claim_huge",
        "claim_obj",
        "utf16",
        "deep_json",
        "missing",
        "dupkey",
    ):
        c.append((f"check-claim-{kind}", ["check", f["net"], "--claimed", f[kind]]))
    c += [
        ("check-no-claim", ["check", MLP, "--spec", MLP_SPEC]),
        ("check-huge-model", ["check", f["huge_weight"], "--claimed", f["claim"]]),
        ("check-wide-crown", ["check", f["wide"], "--method", "crown", "--simulate", "float32"]),
        (
            "check-random-huge",
            ["check", f["net"], "--claimed", f["claim"], "--random", "1000000000"],
        ),
        ("check-maxbits-neg", ["check", f["net"], "--claimed", f["claim"], "--max-bits", "-3"]),
        ("check-budget-neg", ["check", f["net"], "--claimed", f["claim"], "--budget", "-1"]),
        ("check-report-empty", ["check", f["net"], "--claimed", f["claim"], "--report", ""]),
        (
            "check-report-nodir",
            ["check", f["net"], "--claimed", f["claim"], "--report", f["missing"] + "/no/r.html"],
        ),
        ("check-spec-deep", ["check", f["net"], "--claimed", f["claim"], "--spec", f["deep_vnn"]]),
        ("deriv-direction-huge", ["derivatives", PINN, "--direction", "1e999999999"]),
        (
            "deriv-trange-huge",
            ["derivatives", PINN, "--direction", "1", "--t-range", "0", "0x1p999999999"],
        ),
        ("deriv-direction-arabic", ["derivatives", PINN, "--direction", "١"]),
        ("deriv-mode-dyadic", ["derivatives", PINN, "--wrt", "0", "--mode", "dyadic"]),
        ("deriv-wrt-neg", ["derivatives", PINN, "--wrt", "-1"]),
        ("deriv-missing", ["derivatives", f["missing"], "--wrt", "0"]),
        ("deriv-binary", ["derivatives", f["binary"], "--wrt", "0"]),
        ("deriv-wrong-type", ["derivatives", f["type_list"], "--wrt", "0"]),
        ("prove-bad-option", ["prove", "--bogus"]),
        ("prove-missing-arg", ["prove", "-k"]),
        ("no-command", []),
    ]
    return c


SUBPROCESS = {
    # one real process per class (the whole matrix runs in one limited process below)
    "bounds-syntax",
    "bounds-huge_weight",
    "bounds-conv_pad",
    "bounds-deep_json",
    "bounds-type_list",
    "bounds-utf16",
    "bounds-zero_json",
    "bounds-missing",
    "bounds-bits-huge",
    "bounds-spec-deep_vnn",
    "check-claim-claim_huge",
    "check-wide-crown",
    "check-no-claim",
    "deriv-direction-huge",
    "deriv-binary",
    "prove-bad-option",
}

MATRIX = r"""
import io, json, sys, time
from contextlib import redirect_stderr, redirect_stdout
from exactbounds.cli import main
for name, argv in json.load(sys.stdin):
    print(json.dumps({"start": name}), flush=True)
    err, t = io.StringIO(), time.monotonic()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:          # argparse: usage errors and --help
            code = e.code
    print(json.dumps({"name": name, "code": code, "err": err.getvalue(),
                      "secs": time.monotonic() - t}), flush=True)
"""


def _bad(name, code, err, secs=0.0):
    lines = err.strip().splitlines()
    if (
        code != 2
        or len(lines) != 1
        or "Traceback" in err
        or secs > SECONDS
        or "internal error" in err
    ):
        return f"{name}: exit {code}, {secs:.1f} s, stderr {err[-300:]!r}"
    return None


def test_every_subcommand_refuses_bad_input_in_one_line(files):
    """The console entry point, one process per class, under a 2 GB address-space limit:
    exit 2, one line, within seconds."""
    todo = [c for c in cases(files) if c[0] in SUBPROCESS]
    assert len(todo) == len(SUBPROCESS)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda c: (c[0], run_cli(c[1])), todo))
    bad = [_bad(name, code, err, secs) for name, (code, _, err, secs) in results]
    assert not any(bad), "\n".join(b for b in bad if b)


def test_the_whole_matrix_in_one_memory_limited_process(files):
    """Every case through ``cli.main`` in one child process under the same 2 GB limit (a FLINT
    abort or a MemoryError would end the child: the last case started is named)."""
    todo = cases(files)
    p = subprocess.run(
        [sys.executable, "-c", MATRIX],
        input=json.dumps(todo),
        text=True,
        capture_output=True,
        preexec_fn=_limit,
        timeout=600,
    )
    rows = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    done = [r for r in rows if "name" in r]
    started = [r["start"] for r in rows if "start" in r]
    assert p.returncode == 0 and len(done) == len(todo), (
        f"child ended with {p.returncode} during {started[-1:]}: {p.stderr[-500:]}"
    )
    bad = [_bad(r["name"], r["code"], r["err"], r["secs"]) for r in done]
    assert not any(bad), "\n".join(b for b in bad if b)


def test_error_lines_name_the_value_and_stay_short(files):
    """A 5000-digit number is cut in the message; the reason and the advice remain."""
    code, _, err, _ = run_cli(["bounds", files["many_digits"]])
    assert code == 2 and len(err) < 600 and "characters)" in err and "4300 digits" in err
    code, _, err, _ = run_cli(["bounds", files["json_1e-400"]])
    assert "underflows float64" in err and '"1e-400"' in err
    code, _, err, _ = run_cli(["bounds", files["dupkey"]])
    assert "duplicate key 'input_lo'" in err


def _long_exact_crown(tmp_path, depth=10, n=60):
    """A network whose exact-mode CROWN runs for minutes (denominators blow up)."""
    layers = []
    for _ in range(depth):
        layers += [
            {
                "type": "linear",
                "weight": [[(i * 7 + j * 3) % 11 - 5 for j in range(n)] for i in range(n)],
            },
            {"type": "relu"},
        ]
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"input_lo": [0] * n, "input_hi": ["1/3"] * n, "layers": layers}))
    return str(big)


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_ctrl_c_exits_130_without_traceback(tmp_path):
    """SIGINT during a long run (sent once the child has spent 2 s of CPU, i.e. is past its
    imports and computing): one line, exit 130."""
    import signal

    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exactbounds.cli",
            "bounds",
            _long_exact_crown(tmp_path),
            "--method",
            "crown",
            "--mode",
            "exact",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit,
    )
    t = time.monotonic()
    while p.poll() is None and _cpu_seconds(p.pid) < 2 and time.monotonic() - t < 120:
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode != 0, "the run finished before the signal: make the workload larger"
    assert p.returncode == 130 and err.strip() == "exactbounds: interrupted"


def test_timeout_stops_with_advice(tmp_path):
    """--timeout stops an exact CROWN run that would take minutes, with what to use instead."""
    code, _, err, secs = run_cli(
        [
            "bounds",
            _long_exact_crown(tmp_path),
            "--method",
            "crown",
            "--mode",
            "exact",
            "--timeout",
            "2",
        ]
    )
    assert code == 2 and secs < SECONDS, err
    assert "time budget of 2 s" in err and "--mode dyadic" in err and "Traceback" not in err


def test_broken_pipe_is_quiet():
    """``exactbounds ... --json | head -1``: no BrokenPipeError traceback."""
    p = subprocess.run(
        f"{sys.executable} -m exactbounds.cli bounds {MLP} --spec {MLP_SPEC} "
        f"--method crown --intermediate --json --exact | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr and p.stdout.startswith("{\n")
    )


def onnx_model(nodes, W):
    """A 2-input, 2-output ONNX model of ``nodes`` with the initializer ``W`` (skips without
    onnx)."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(np.asarray(W, dtype=np.float32), "W")],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    """Our own check, whatever the installed onnx does: a location with ``..``, an absolute
    path, or a symlink out of the folder is refused before anything is read."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    m = onnx_model(
        [helper.make_node("Gemm", ["input", "W"], ["output"], name="fc")], np.ones((2, 2))
    )
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(4, dtype=np.float32).tobytes())
    inside = tmp_path / "model"
    inside.mkdir()
    (inside / "link.bin").symlink_to(secret)
    for loc in ("../secret.bin", str(secret), "link.bin"):
        mm = onnx.ModelProto()
        mm.CopyFrom(m)
        t = mm.graph.initializer[0]
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", loc
        path = inside / "m.onnx"
        path.write_bytes(mm.SerializeToString())
        with pytest.raises(MalformedFileError, match="outside the model's folder"):
            load_onnx(path)


def test_onnx_checker_rejects_a_tensor_produced_twice(tmp_path):
    pytest.importorskip("onnx")
    from onnx import helper

    nodes = [
        helper.make_node("Gemm", ["input", "W"], ["h"], name="a"),
        helper.make_node("Relu", ["input"], ["h"], name="b"),
        helper.make_node("Relu", ["h"], ["output"], name="c"),
    ]
    p = tmp_path / "twice.onnx"
    p.write_bytes(onnx_model(nodes, np.eye(2)).SerializeToString())
    with pytest.raises(MalformedFileError, match="onnx.checker rejects"):
        load_onnx(p)


def test_gemm_alpha_nan_is_one_line(tmp_path):
    pytest.importorskip("onnx")
    from onnx import helper

    p = tmp_path / "nan.onnx"
    p.write_bytes(
        onnx_model(
            [helper.make_node("Gemm", ["input", "W"], ["output"], name="fc", alpha=float("nan"))],
            np.eye(2),
        ).SerializeToString()
    )
    spec = tmp_path / "p.vnnlib"
    spec.write_text(SPEC)
    code, _, err, _ = run_cli(["bounds", str(p), "--spec", str(spec)])
    assert code == 2 and "alpha" in err and "not finite" in err and len(err.splitlines()) == 1
