"""Float simulation: run a method in plain round-to-nearest floating point and take its output
as the claim to audit (``exactbounds check --simulate float32|float64``).

:class:`FloatContext` (the ``FloatContext(dtype)`` row of the design's context table) makes a
number a numpy ``float32``/``float64`` scalar: every ``+ - * /`` and ``sqrt`` rounds to nearest,
signs are plain comparisons. The operators are written once over contexts, so running IBP (or
CROWN, when it is written over contexts) in this context is exactly what a naive float
implementation of the same algorithm computes: parameters and the input set rounded to nearest
once, then every operation rounded to nearest, with no outward rounding anywhere.
"""
from fractions import Fraction

import numpy as np

from ..errors import InvalidValueError, UnsupportedOperatorError
from ..numbers import EXACT, Context, to_exact
from .claims import Claim
from .ulps import dtype_name


def round_nearest(q, dtype="float64"):
    """The ``dtype`` float nearest to the rational ``q`` (ties to even), correctly rounded (no
    double rounding through float64); ``±inf`` beyond the range."""
    t = np.dtype(dtype_name(dtype)).type
    q = to_exact(q)
    fq = Fraction(int(q.p), int(q.q))
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

    def const(self, x):
        if isinstance(x, self.type):
            return x
        if isinstance(x, (np.floating, float)):
            return self.type(x)
        return round_nearest(to_exact(x), self.dtype)

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


def simulate(graph, input_set, method="ibp", dtype="float32", intermediate=False, **kw):
    """Run ``method`` in :class:`FloatContext` ``dtype``; returns the output :class:`Claim`, or
    with ``intermediate=True`` ``{node name: Claim}`` (IBP only; the output node included)."""
    from .methods import run_method
    ctx = FloatContext(dtype)
    if method not in SIMULATED:
        raise UnsupportedOperatorError(f"--simulate: method {method!r} is not simulated "
                                       f"(supported: {', '.join(SIMULATED)})")
    boxes = run_method(graph, input_set, method, ctx, intermediate=intermediate, **kw)
    src = f"--simulate {ctx.dtype} --method {method}"
    if intermediate:
        return {name: box_claim(b, ctx.dtype, name, src) for name, b in boxes.items()
                if name != graph.INPUT}
    return box_claim(boxes, ctx.dtype, None, src)
