"""Fuzzing the loaders: mutated JSON networks and VNN-LIB files (bytes and structure) must load
or fail with one documented ``ExactBoundsError`` whose message is one short line, fast; never
any other exception, never a hang. And the mutations that keep a file valid keep the bounds
sound: a loaded network's IBP box contains its exact value at a point of the input box."""

import copy
import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.ibp import ibp, run_graph
from exactbounds.errors import ExactBoundsError
from exactbounds.io.files import parse_json
from exactbounds.io.json_net import load_json_network
from exactbounds.io.vnnlib import parse_vnnlib
from exactbounds.numbers import RationalContext

SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", 150)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SECONDS = 2.0

NET = {
    "input_lo": [0, "-1/2"],
    "input_hi": [1, "0.5"],
    "layers": [
        {"type": "linear", "weight": [[1, -2], ["0x1.8p-1", 0.25]], "bias": [0, 1]},
        {"type": "relu"},
        {
            "type": "batchnorm",
            "mean": [0, 1],
            "var": [1, 2],
            "gamma": [1, -1],
            "beta": [0, 0],
            "eps": 1e-5,
        },
        {"type": "linear", "weight": [[1, 1]]},
    ],
}
SPEC = """; a property
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-fun Y_0 () Real)
(assert (>= X_0 0))
(assert (<= X_0 1))
(assert (and (>= X_1 -0.5) (<= (* -1.0 X_1) 0.5)))
(assert (or (and (>= Y_0 3)) (and (<= (+ Y_0 (- 1)) -2e1))))
"""

ODD = st.sampled_from(
    [
        None,
        True,
        -1,
        0,
        2**80,
        1e308,
        "",
        "x",
        "1e999999999",
        "0x1p999999999",
        "١",
        "1/0",
        "nan",
        "inf",
        [],
        [[]],
        {},
        [1, 2, 3],
        {"type": "relu"},
        "9" * 5000,
        [[[[[[1]]]]]],
        -0.0,
        "3/7",
    ]
)
TEXT_NOISE = st.sampled_from(
    [
        "(",
        ")",
        " ",
        "\n",
        ";",
        "X_0",
        "Y_0",
        "X_9",
        "1e999999999",
        "(and",
        "(or",
        "(<=",
        "(* ",
        "Real",
        "declare-const",
        "\x00",
        "\ufeff",
        "١",
        "0x1p3",
        "(assert",
        "-",
        "/",
        "1.5",
    ]
)


def _paths(d, prefix=()):
    yield prefix
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_net(draw):
    d = json.loads(json.dumps(NET))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(d) if p]
        path = draw(st.sampled_from(paths))
        tgt = d
        for k in path[:-1]:
            tgt = tgt[k]
        op = draw(st.sampled_from(["set", "delete", "wrap"]))
        if op == "delete":
            if isinstance(tgt, dict):
                del tgt[path[-1]]
            elif len(tgt) > 1:
                tgt.pop(path[-1])
        elif op == "wrap":
            tgt[path[-1]] = [tgt[path[-1]]]
        else:
            tgt[path[-1]] = copy.deepcopy(draw(ODD))
    return d


def _one_line(e):
    msg = str(e)
    assert msg and "\n" not in " ".join(msg.split()) and len(msg) < 1000, msg


def _load_bytes(data):
    """Parse JSON bytes as the loader does (UTF-8 only), then load the network."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return load_json_network(parse_json(text, "<fuzz>"))


@SETTINGS
@given(mutated_net())
def test_mutated_json_networks_load_or_fail_cleanly(d):
    t = time.monotonic()
    try:
        model = load_json_network(parse_json(json.dumps(d), "<fuzz>"))
    except ExactBoundsError as e:
        _one_line(e)
    else:
        ctx = RationalContext(64)
        box = model.input_set
        try:
            out = ibp(model.graph, box, ctx)
        except ExactBoundsError as e:
            _one_line(e)
        else:
            x = list(box.lo) if hasattr(box, "lo") else list(box.center)
            y = run_graph(model.graph, x, "evaluate", ctx)
            for i, v in enumerate(y):
                lo, hi = ctx.lower(out.lo[i]), ctx.upper(out.hi[i])
                assert lo <= ctx.lower(v) and ctx.upper(v) <= hi
    assert time.monotonic() - t < SECONDS


@SETTINGS
@given(st.binary(max_size=40), st.integers(0, 400), st.booleans())
def test_json_bytes_spliced_into_a_network_fail_cleanly(noise, at, replace):
    raw = json.dumps(NET).encode()
    at = min(at, len(raw))
    data = raw[:at] + noise + raw[at + (len(noise) if replace else 0) :]
    t = time.monotonic()
    try:
        _load_bytes(data)
    except ExactBoundsError as e:
        _one_line(e)
    assert time.monotonic() - t < SECONDS


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, len(SPEC)), TEXT_NOISE, st.booleans()), max_size=4),
    st.integers(0, 3000),
)
def test_mutated_vnnlib_parses_or_fails_cleanly(edits, nest):
    text = SPEC
    for at, piece, cut in edits:
        text = text[:at] + piece + text[at + (len(piece) if cut else 0) :]
    if nest:
        text += "(assert " + "(and " * nest + "(<= Y_0 1)" + ")" * (nest + 1)
    t = time.monotonic()
    try:
        spec = parse_vnnlib(text, "<fuzz>")
    except ExactBoundsError as e:
        _one_line(e)
    else:
        lo, hi = spec.input_box.lo, spec.input_box.hi
        assert all(a <= b for a, b in zip(lo, hi))
    assert time.monotonic() - t < SECONDS


def test_vnnlib_parse_time_is_linear():
    """An ``and`` of n atoms: doubling n at most about doubles the time (it was quadratic)."""
    head = "(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= X_0 1))(assert (>= X_0 0))"

    def secs(n):
        text = head + "(assert (and " + " ".join(f"(<= Y_0 {i})" for i in range(n)) + "))"
        best = 1e9
        for _ in range(3):
            t = time.perf_counter()
            parse_vnnlib(text)
            best = min(best, time.perf_counter() - t)
        return best

    a, b = secs(2000), secs(8000)
    assert b < 4 * a * 2.0, (a, b)  # 4x the atoms: linear would be 4x; quadratic 16x
