"""Hypothesis strategies for fuzzing a bound-propagation tool against the oracle (needs the
``hypothesis`` package, the ``[test]`` extra).

``networks(...)`` draws networks in exactbounds' JSON network format (a dict: ``input_lo``,
``input_hi``, ``layers``; weights are float32 or float64 values written as JSON numbers, so the
dict *is* the network any tool reading it sees); ``boxes(n)`` draws input boxes; ``points(net)``
draws exact rational points inside a network's input box. Sizes are small on purpose: the oracle
is exact."""

from fractions import Fraction

import numpy as np
from hypothesis import strategies as st

ACTIVATIONS = ("relu", "sigmoid", "tanh")


def _floats(dtype, lo=-2.0, hi=2.0):
    width = 32 if dtype == "float32" else 64
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=width)


@st.composite
def boxes(draw, n, dtype="float32", max_radius=0.5):
    """``(lo, hi)`` lists of ``n`` floats of ``dtype`` with ``lo <= hi`` (``hi = lo + r`` rounded
    up into ``dtype``)."""
    cast = np.float32 if dtype == "float32" else np.float64
    lo = [float(cast(draw(_floats(dtype, -1.0, 1.0)))) for _ in range(n)]
    hi = []
    for v in lo:
        r = draw(_floats(dtype, 0.0, max_radius))
        h = cast(v) + cast(r)
        hi.append(float(max(h, cast(v))))
    return lo, hi


@st.composite
def networks(
    draw,
    max_inputs=4,
    max_width=6,
    max_depth=3,
    activations=ACTIVATIONS,
    dtype="float32",
    batchnorm=False,
    residual=False,
    scale=1.0,
):
    """A JSON network dict: ``depth`` blocks ``linear [batchnorm] activation``, then a linear
    output layer of 1 to 3 outputs; with ``residual`` a block of equal width may add the input
    of its linear layer (``{"type": "add", "from": k}``)."""
    cast = np.float32 if dtype == "float32" else np.float64

    def w(*shape):
        return (
            np.array(
                [draw(_floats(dtype, -scale, scale)) for _ in range(int(np.prod(shape)))],
                dtype=cast,
            )
            .reshape(shape)
            .tolist()
        )

    n = draw(st.integers(1, max_inputs))
    lo, hi = draw(boxes(n, dtype))
    layers, width, prev_out = [], n, None
    for _ in range(draw(st.integers(1, max_depth))):
        m = draw(st.integers(1, max_width))
        layers.append({"type": "linear", "weight": w(m, width), "bias": w(m)})
        if residual and prev_out is not None and m == width and draw(st.booleans()):
            layers.append({"type": "add", "from": prev_out})
        if batchnorm and draw(st.booleans()):
            layers.append(
                {
                    "type": "batchnorm",
                    "mean": w(m),
                    "var": [float(cast(abs(v) + 0.5)) for v in w(m)],
                    "gamma": w(m),
                    "beta": w(m),
                    "eps": 1e-5,
                }
            )
        layers.append({"type": draw(st.sampled_from(list(activations)))})
        prev_out, width = len(layers) - 1, m
    k = draw(st.integers(1, 3))
    layers.append({"type": "linear", "weight": w(k, width), "bias": w(k)})
    return {"input_lo": lo, "input_hi": hi, "layers": layers}


@st.composite
def points(draw, net, den=2**12):
    """An exact point (list of ``Fraction``) of the network's input box: each coordinate
    ``lo + (hi − lo)·k/den``."""
    return [
        Fraction(a) + (Fraction(b) - Fraction(a)) * Fraction(draw(st.integers(0, den)), den)
        for a, b in zip(net["input_lo"], net["input_hi"])
    ]
