"""Float simulation: run a method in plain round-to-nearest floating point and take its output
as the claim to audit (``exactbounds check --simulate float32|float64``).

:class:`FloatContext` (the ``FloatContext(dtype)`` row of the design's context table) makes a
number a numpy ``float32``/``float64`` scalar: every ``+ - * /`` and ``sqrt`` rounds to nearest,
signs are plain comparisons. The operators are written once over contexts, so running IBP (or
CROWN, when it is written over contexts) in this context is exactly what a naive float
implementation of the same algorithm computes: parameters and the input set rounded to nearest
once, then every operation rounded to nearest, with no outward rounding anywhere.
"""
import math
from fractions import Fraction

import numpy as np

from ..core import Box
from ..errors import InvalidValueError, UnsupportedOperatorError
from ..numbers import EXACT, Context, to_exact
from ..operators.base import AffineOp
from .claims import Claim
from .ulps import dtype_name


def round_nearest(q, dtype="float64"):
    """The ``dtype`` float nearest to the rational ``q`` (ties to even), correctly rounded (no
    double rounding through float64); ``±inf`` beyond the range."""
    t = np.dtype(dtype_name(dtype)).type
    q = to_exact(q)
    p, d = int(q.p), int(q.q)
    if d & (d - 1) == 0 and abs(p) < 2 ** 53 and d < 2 ** 1000:
        # a double holds q exactly (e.g. float32/float64 data): one rounding, as numpy does
        return t(math.ldexp(p, 1 - d.bit_length()))
    fq = Fraction(p, d)
    try:
        with np.errstate(over="ignore"):
            f = t(float(fq))
    except OverflowError:
        return t(np.inf) if q > 0 else t(-np.inf)
    if not np.isfinite(f):
        return f
    best, err = f, abs(Fraction(float(f)) - fq)
    for g in (np.nextafter(f, t(np.inf)), np.nextafter(f, t(-np.inf))):
        if not np.isfinite(g):
            continue
        e = abs(Fraction(float(g)) - fq)
        if e < err or (e == err and _even(g, t)):
            best, err = g, e
    return best


def _even(f, t):
    bits = np.array([f], dtype=t).view(np.uint32 if t is np.float32 else np.uint64)[0]
    return int(bits) % 2 == 0


class FloatContext(Context):
    """numpy ``dtype`` scalars, round-to-nearest; for simulating a naive float implementation."""

    name = "float"

    def __init__(self, dtype="float64"):
        self.dtype = dtype_name(dtype)
        self.mode = self.dtype
        self.type = np.dtype(self.dtype).type
        self._memo = {}

    def const(self, x):
        if isinstance(x, self.type):
            return x
        if isinstance(x, (np.floating, float)):
            return self.type(x)
        q = to_exact(x)
        got = self._memo.get(q)
        if got is None:
            got = self._memo[q] = round_nearest(q, self.dtype)
        return got

    def coerce(self, x):
        return x if isinstance(x, self.type) else self.const(x)

    def sqrt(self, x):
        return np.sqrt(self.coerce(x))

    def sign(self, x):
        x = self.coerce(x)
        if np.isnan(x):
            raise InvalidValueError("float value", x, "NaN in the float simulation")
        return int(x > 0) - int(x < 0)

    def lower(self, x):
        return to_exact(self.coerce(x))

    upper = lower

    def status(self, x):
        return EXACT

    def __repr__(self):
        return f"FloatContext({self.dtype!r})"


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
    return Claim([_exact_or_none(v, "lo") for v in box.lo],
                 [_exact_or_none(v, "hi") for v in box.hi], dtype_name(dtype), node, source)


SIMULATED = ("ibp", "crown")


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
            raise UnsupportedOperatorError(f"float simulation: node {node.name!r} does not read "
                                           "the previous node (only chains)")
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
                raise UnsupportedOperatorError(f"float simulation: node {node.name!r} ({kind}) "
                                               "has several inputs")
            W = Ws[0]
            layers.append(("affine", _round_array(W.entries(), dtype).reshape(W.nrows(),
                                                                               W.ncols()),
                           _round_array(b.entries(), dtype)))
        else:
            raise UnsupportedOperatorError(f"float simulation: operator {kind!r} (node "
                                           f"{node.name!r}) has no vectorised float version")
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
    from .methods import bounding_box
    layers = float_layers(graph, dtype)
    lo, hi = (_round_array(v, dtype) for v in bounding_box(input_set))
    mid, rad = (lo + hi) / 2, (hi - lo) / 2
    rel = {}

    def backward(k):
        n = next((len(L[2]) for L in reversed(layers[:k + 1]) if L[0] in ("affine", "diag")),
                 len(lo))
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
            rel[k] = _relax(*backward(k - 1), lower_slope) if k > 0 else _relax(lo, hi,
                                                                                 lower_slope)
    out_lo, out_hi = backward(len(layers) - 1)
    return Box(list(out_lo), list(out_hi))


def float_ibp(graph, input_set, dtype="float32", intermediate=False):
    """IBP in plain round-to-nearest ``dtype`` (numpy, vectorised) for chain graphs:
    ``lo' = W⁺·lo + W⁻·hi + b``, ``hi' = W⁺·hi + W⁻·lo + b``; BatchNorm ``scale·x + offset``
    with the ends swapped where ``scale < 0``; ReLU ``max(·, 0)``. Returns the output ``Box``,
    or ``{node name: Box}`` with ``intermediate=True``."""
    from .methods import bounding_box
    layers = float_layers(graph, dtype)
    lo, hi = (_round_array(v, dtype) for v in bounding_box(input_set))
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


def simulate(graph, input_set, method="ibp", dtype="float32", intermediate=False,
             lower_slope="adaptive"):
    """Run ``method`` in round-to-nearest ``dtype``; returns the output :class:`Claim`, or with
    ``intermediate=True`` (IBP only) ``{node name: Claim}``, the output node included. IBP runs
    :func:`float_ibp` on chains of Linear/Conv/BatchNorm/ReLU/reshapes, else the package's
    operators in :class:`FloatContext`; CROWN runs :func:`float_crown`."""
    from ..algorithms.ibp import ibp
    dtype = dtype_name(dtype)
    if method not in SIMULATED:
        raise UnsupportedOperatorError(f"--simulate: method {method!r} is not simulated "
                                       f"(supported: {', '.join(SIMULATED)})")
    src = f"--simulate {dtype} --method {method}"
    if method == "crown":
        if intermediate:
            raise UnsupportedOperatorError("--simulate --method crown: output bounds only")
        with np.errstate(all="ignore"):
            return box_claim(float_crown(graph, input_set, dtype, lower_slope), dtype, None, src)
    with np.errstate(all="ignore"):
        try:
            boxes = float_ibp(graph, input_set, dtype, intermediate)
        except UnsupportedOperatorError:
            boxes = ibp(graph, input_set, FloatContext(dtype), intermediate=intermediate)
    if intermediate:
        return {name: box_claim(b, dtype, name, src) for name, b in boxes.items()
                if name != graph.INPUT}
    return box_claim(boxes, dtype, None, src)
