"""Distances in units in the last place (ulps) of a claim's float type, computed exactly.

Definition used everywhere in the audit. For a dtype with ``p`` significand bits and minimum
normal exponent ``emin`` (float32: p = 24, emin = -126; float64: p = 53, emin = -1022), the ulp at
a rational ``c`` is the spacing of that dtype's floats in the binade of ``c``::

    ulp(c) = 2**(max(e, emin) - p + 1),   e = floor(log2 |c|)   (c != 0)
    ulp(0) = 2**(emin - p + 1)                                  (the smallest subnormal)

At a power of two ``c = 2**e`` this is the spacing *above* ``|c|`` (the one below is half).
The distance from a claim ``c`` to a real ``v`` is the exact rational ``|v - c| / ulp(c)``: one
ulp is one step of the float grid at the claim, so "moved inward by one float32 ulp" means
``|v - c| = 1`` ulp here. ``c`` need not be representable in the dtype.

A claim of exactly 0 is measured at the other value's magnitude instead (:func:`ulp_near`):
``|v| / ulp(v)``, which lies in [2^(p-1), 2^p) for a normal ``v``, says "0 is wrong in every
significant bit", while ulp(0), the smallest subnormal, would make it about 10^300 ulps.
"""

from flint import fmpq

from ..errors import InvalidValueError
from ..numbers import dyadic, to_exact
from ..numbers.dtypes import DTYPES, dtype_name


def floor_log2(q):
    """``floor(log2 q)`` for an exact rational ``q > 0``."""
    q = to_exact(q)
    if q <= 0:
        raise InvalidValueError("q", q, "floor_log2 needs q > 0")
    p, d = int(q.p), int(q.q)
    e = p.bit_length() - d.bit_length()
    # 2**e <= p/d < 2**(e+1), adjusting by one step where the bit lengths mislead.
    if (p << max(0, -e)) < (d << max(0, e)):
        e -= 1
    return e


def ulp(c, dtype="float64"):
    """The exact ulp of ``dtype`` at the rational ``c`` (see the module docstring)."""
    p, emin = DTYPES[dtype_name(dtype)]
    c = to_exact(c)
    e = emin if c == 0 else max(floor_log2(abs(c)), emin)
    return dyadic(1, e - p + 1)


def ulp_near(c, v, dtype="float64"):
    """The ulp that distances between a claim ``c`` and a value ``v`` are counted in:
    ``ulp(c)``, or ``ulp(v)`` when ``c`` is 0 (``v`` exact, or an enclosure with ``lo``/``hi``,
    measured at its midpoint)."""
    c = to_exact(c)
    if c != 0:
        return ulp(c, dtype)
    if hasattr(v, "lo") and hasattr(v, "hi"):
        v = (v.lo + v.hi) / 2
    return ulp(v, dtype)


def ulps_between(c, v, dtype="float64"):
    """``|v - c| / ulp_near(c, v)`` exactly, for rationals ``c`` (the claim) and ``v``."""
    c, v = to_exact(c), to_exact(v)
    return abs(v - c) / ulp_near(c, v, dtype)


def shift_ulps(c, k, dtype="float64"):
    """``c + k·ulp(c)``: a claim moved by ``k`` ulps of ``dtype`` (k may be negative)."""
    c = to_exact(c)
    return c + fmpq(k) * ulp(c, dtype)
