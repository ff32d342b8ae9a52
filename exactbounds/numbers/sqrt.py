"""Outward-rounded square roots of exact rationals."""

from __future__ import annotations

from math import isqrt
from typing import Any

from flint import fmpq

from .interval import RInterval


def sqrt_enclosure(v: Any, bits: int) -> Any:
    """Enclose ``√v`` for a rational ``v >= 0``.

    Returns the exact ``fmpq`` when ``v`` is a square of a rational; otherwise an
    ``RInterval(lo, hi)`` with ``lo² <= v <= hi²`` (checked exactly), ``0 <= lo`` and
    ``hi - lo <= 2**-bits · lo``.
    """
    if v < 0:
        raise ValueError(f"square root of a negative number {v}")
    if v == 0:
        return fmpq(0)
    p, q = int(v.p), int(v.q)
    sp, sq = isqrt(p), isqrt(q)
    if sp * sp == p and sq * sq == q:
        return fmpq(sp, sq)
    # √(p/q) = √(p·q)/q; enclose √(n·4^k) by [s, s+1] with s >= 2^bits.
    n = p * q
    k = max(0, bits + 1 - (n.bit_length() - 1) // 2)
    s = isqrt(n << (2 * k))
    den = q << k
    lo, hi = fmpq(s, den), fmpq(s + 1, den)
    if not (0 <= lo and lo * lo <= v <= hi * hi):  # exact check of the enclosure
        raise ArithmeticError(f"sqrt enclosure check failed for {v}")
    return RInterval(lo, hi)
