"""Float simulation: run a method in plain round-to-nearest floating point and take its output
as the claim to audit (``exactbounds check --simulate float32|float64``).

:class:`~exactbounds.numbers.floatctx.FloatContext` makes a number a numpy ``float32``/``float64``
scalar: every ``+ - * /`` and ``sqrt`` rounds to nearest, signs are plain comparisons. The
operators are written once over contexts, so running IBP in this context is exactly what a naive
float implementation of the same algorithm computes: parameters and the input set rounded to
nearest once, then every operation rounded to nearest, with no outward rounding anywhere.
"""

import numpy as np

from ..algorithms.methods import run_method
from ..core import Box
from ..errors import InvalidValueError, UnsupportedOperatorError
from ..inputsets import bounding_box
from ..numbers import to_exact
from ..numbers.floatctx import FloatContext, dtype_name, round_nearest
from ..operators.base import AffineOp
from .claims import Claim


def _exact_or_none(v, side):
    """The exact value of a float bound; an infinite bound on its own side claims nothing."""
    if np.isnan(v):
        raise InvalidValueError("simulated bound", v, "NaN")
    if np.isinf(v):
        if (v < 0) == (side == "lo"):
            return None
        raise InvalidValueError("simulated bound", v, f"infinite on the {side} side")
    return to_exact(v)


def box_claim(box, dtype, node=None, source="simulation"):
    """A :class:`Claim` from a ``Box`` of float scalars (their exact values)."""
    return Claim(
        [_exact_or_none(v, "lo") for v in box.lo],
        [_exact_or_none(v, "hi") for v in box.hi],
        dtype_name(dtype),
        node,
        source,
    )


def _round_array(values, dtype):
    return np.array([round_nearest(v, dtype) for v in values], dtype=dtype)


def float_layers(graph, dtype):
    """A chain graph as float layers, one per node: ``("affine", W, b)``, ``("diag", scale,
    offset)``, ``("relu",)``, ``("pass",)``; every parameter rounded to nearest in ``dtype``;
    BatchNorm as ``("diag", scale, offset)`` with
    ``scale = γ/√(σ²+ε)`` and ``offset = β − γμ/√(σ²+ε)`` computed in ``dtype`` (the seed's
    ``computeScale``/``computeOffset``)."""
    layers, prev = [], graph.INPUT
    for node in graph:
        if list(node.inputs) != [prev]:
            raise UnsupportedOperatorError(
                f"float simulation: node {node.name!r} does not read "
                "the previous node (only chains)"
            )
        prev, op, kind = node.name, node.op, getattr(node.op, "kind", "?")
        if kind == "batchnorm":
            p = op.params
            rnd = lambda v: _round_array(v, dtype)  # noqa: E731
            r = np.sqrt(rnd(p.running_var) + rnd([p.eps])[0])
            scale = rnd(p.gamma) / r
            offset = rnd(p.beta) - rnd(p.gamma) * rnd(p.running_mean) / r
            per = p.dim // p.channels
            layers.append(("diag", np.repeat(scale, per), np.repeat(offset, per)))
        elif kind == "relu":
            layers.append(("relu",))
        elif kind in ("identity", "flatten", "reshape"):
            layers.append(("pass",))
        elif isinstance(op, AffineOp):
            Ws, b = op.linear_params()
            if len(Ws) != 1:
                raise UnsupportedOperatorError(
                    f"float simulation: node {node.name!r} ({kind}) has several inputs"
                )
            W = Ws[0]
            layers.append(
                (
                    "affine",
                    _round_array(W.entries(), dtype).reshape(W.nrows(), W.ncols()),
                    _round_array(b.entries(), dtype),
                )
            )
        else:
            raise UnsupportedOperatorError(
                f"float simulation: operator {kind!r} (node "
                f"{node.name!r}) has no vectorised float version"
            )
    return layers


def _relax(l, u, lower_slope):
    """ReLU relaxation in floats, CROWN's rules: stable neurons exact, upper chord
    ``u/(u−l)`` with intercept ``−l·u/(u−l)``, lower slope adaptive (1 if u > −l) / 0 / 1."""
    one, zero = l.dtype.type(1), l.dtype.type(0)
    act, dead = l >= 0, u <= 0
    unst = ~act & ~dead
    d = np.where(unst, u - l, one)
    us = np.where(act, one, np.where(unst, u / d, zero))
    ub = np.where(unst, -(u / d) * l, zero)
    alpha = {"adaptive": (u > -l), "zero": np.zeros_like(unst), "one": np.ones_like(unst)}
    ls = np.where(act, one, np.where(unst & alpha[lower_slope], one, zero))
    return ls, np.zeros_like(l), us, ub


def float_crown(graph, input_set, dtype="float32", lower_slope="adaptive"):
    """CROWN in plain round-to-nearest ``dtype`` (numpy) over the bounding box of the input set
    (an L∞ ball is its box): intermediate bounds by a backward pass on every ReLU input, then
    one from the output. Returns the output ``Box`` of ``dtype`` floats."""
    if getattr(input_set, "norm", "inf") != "inf":
        raise UnsupportedOperatorError("--simulate --method crown: only box and L∞ input sets")
    layers = float_layers(graph, dtype)
    bb = bounding_box(input_set)
    lo, hi = _round_array(bb.lo, dtype), _round_array(bb.hi, dtype)
    mid, rad = (lo + hi) / 2, (hi - lo) / 2
    rel = {}

    def backward(k):
        n = next(
            (len(L[2]) for L in reversed(layers[: k + 1]) if L[0] in ("affine", "diag")), len(lo)
        )
        LL = np.eye(n, dtype=dtype)
        LU = LL.copy()
        bL, bU = np.zeros(n, dtype), np.zeros(n, dtype)
        for j in range(k, -1, -1):
            L = layers[j]
            if L[0] == "affine":
                bL, bU = bL + LL @ L[2], bU + LU @ L[2]
                LL, LU = LL @ L[1], LU @ L[1]
            elif L[0] == "diag":
                bL, bU = bL + LL @ L[2], bU + LU @ L[2]
                LL, LU = LL * L[1], LU * L[1]
            elif L[0] == "relu":
                ls, lb, us, ub = rel[j]
                P, N = np.maximum(LL, 0), np.minimum(LL, 0)
                bL, LL = bL + P @ lb + N @ ub, P * ls + N * us
                P, N = np.maximum(LU, 0), np.minimum(LU, 0)
                bU, LU = bU + P @ ub + N @ lb, P * us + N * ls
        return LL @ mid - np.abs(LL) @ rad + bL, LU @ mid + np.abs(LU) @ rad + bU

    for k, L in enumerate(layers):
        if L[0] == "relu":
            rel[k] = _relax(*backward(k - 1), lower_slope) if k > 0 else _relax(lo, hi, lower_slope)
    out_lo, out_hi = backward(len(layers) - 1)
    return Box(list(out_lo), list(out_hi))


def float_ibp(graph, input_set, dtype="float32", intermediate=False):
    """IBP in plain round-to-nearest ``dtype`` (numpy, vectorised) for chain graphs:
    ``lo' = W⁺·lo + W⁻·hi + b``, ``hi' = W⁺·hi + W⁻·lo + b``; BatchNorm ``scale·x + offset``
    with the ends swapped where ``scale < 0``; ReLU ``max(·, 0)``. Returns the output ``Box``,
    or ``{node name: Box}`` with ``intermediate=True``."""
    layers = float_layers(graph, dtype)
    bb = bounding_box(input_set)
    lo, hi = _round_array(bb.lo, dtype), _round_array(bb.hi, dtype)
    boxes = {}
    for node, L in zip(graph.nodes, layers):
        if L[0] == "affine":
            P, N = np.maximum(L[1], 0), np.minimum(L[1], 0)
            lo, hi = P @ lo + N @ hi + L[2], P @ hi + N @ lo + L[2]
        elif L[0] == "diag":
            pos = L[1] >= 0
            a, b = L[1] * lo, L[1] * hi
            lo, hi = np.where(pos, a, b) + L[2], np.where(pos, b, a) + L[2]
        elif L[0] == "relu":
            lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
        boxes[node.name] = Box(list(lo), list(hi))
    return boxes if intermediate else boxes[graph.output]


def _simulate_ibp(graph, input_set, dtype, intermediate, lower_slope):
    """:func:`float_ibp`, or on graphs it does not vectorise the registry's IBP in
    :class:`FloatContext` (the package's own operators, every operation rounded to nearest)."""
    try:
        return float_ibp(graph, input_set, dtype, intermediate)
    except UnsupportedOperatorError:
        res = run_method("ibp", graph, input_set, FloatContext(dtype), intermediate=intermediate)
        return res.nodes if intermediate else res.output


def _simulate_crown(graph, input_set, dtype, intermediate, lower_slope):
    if intermediate:
        raise UnsupportedOperatorError("--simulate --method crown: output bounds only")
    return float_crown(graph, input_set, dtype, lower_slope)


SIMULATORS = {"ibp": _simulate_ibp, "crown": _simulate_crown}
"""Round-to-nearest versions of methods of :mod:`exactbounds.algorithms.methods`, by name:
``(graph, input_set, dtype, intermediate, lower_slope) -> Box or {node name: Box}``."""


def simulate(
    graph, input_set, method="ibp", dtype="float32", intermediate=False, lower_slope="adaptive"
):
    """Run ``method`` in round-to-nearest ``dtype``; returns the output :class:`Claim`, or with
    ``intermediate=True`` (IBP only) ``{node name: Claim}``, the output node included. IBP runs
    :func:`float_ibp` on chains of Linear/Conv/BatchNorm/ReLU/reshapes, else the package's
    operators in :class:`FloatContext`; CROWN runs :func:`float_crown`."""
    dtype = dtype_name(dtype)
    sim = SIMULATORS.get(method)
    if sim is None:
        raise UnsupportedOperatorError(
            f"--simulate: method {method!r} is not simulated (supported: {', '.join(SIMULATORS)})"
        )
    src = f"--simulate {dtype} --method {method}"
    with np.errstate(all="ignore"):
        boxes = sim(graph, input_set, dtype, intermediate, lower_slope)
    if intermediate:
        return {
            name: box_claim(b, dtype, name, src) for name, b in boxes.items() if name != graph.INPUT
        }
    return box_claim(boxes, dtype, None, src)
