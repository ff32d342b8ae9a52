"""The float-simulation context: :class:`FloatContext` (the ``FloatContext(dtype)`` row of the
design's context table) makes a number a numpy ``float32``/``float64`` scalar: every
``+ - * /`` and ``sqrt`` rounds to nearest, signs are plain comparisons. Running an algorithm
in it is what a naive float implementation of the same algorithm computes
(``exactbounds check --simulate``). :func:`round_nearest` is the correctly rounded conversion of
a rational to a float type.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import InvalidValueError
from .contexts import EXACT, Context
from .convert import to_exact
from .dtypes import dtype_name


def round_nearest(q: Any, dtype: Any = "float64") -> Any:
    """The ``dtype`` float nearest to the rational ``q`` (ties to even), correctly rounded (no
    double rounding through float64); ``±inf`` beyond the range."""
    t = np.dtype(dtype_name(dtype)).type
    q = to_exact(q)
    p, d = int(q.p), int(q.q)
    if d & (d - 1) == 0 and abs(p) < 2**53 and d < 2**1000:
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


def _even(f: Any, t: Any) -> bool:
    bits = np.array([f], dtype=t).view(np.uint32 if t is np.float32 else np.uint64)[0]
    return int(bits) % 2 == 0


class FloatContext(Context):
    """numpy ``dtype`` scalars, round-to-nearest; for simulating a naive float implementation."""

    name = "float"

    def __init__(self, dtype: Any = "float64") -> None:
        self.dtype = dtype_name(dtype)
        self.mode = self.dtype
        self.type = np.dtype(self.dtype).type
        self._memo = {}

    def const(self, x: Any) -> Any:
        if isinstance(x, self.type):
            return x
        if isinstance(x, (np.floating, float)):
            return self.type(x)
        q = to_exact(x)
        got = self._memo.get(q)
        if got is None:
            got = self._memo[q] = round_nearest(q, self.dtype)
        return got

    def coerce(self, x: Any) -> Any:
        return x if isinstance(x, self.type) else self.const(x)

    def sqrt(self, x: Any) -> Any:
        return np.sqrt(self.coerce(x))

    def sign(self, x: Any) -> int:
        x = self.coerce(x)
        if np.isnan(x):
            raise InvalidValueError("float value", x, "NaN in the float simulation")
        return int(x > 0) - int(x < 0)

    def lower(self, x: Any) -> Any:
        return to_exact(self.coerce(x))

    upper = lower

    def status(self, x: Any) -> str:
        return EXACT

    def __repr__(self) -> str:
        return f"FloatContext({self.dtype!r})"


__all__ = ["FloatContext", "round_nearest"]
