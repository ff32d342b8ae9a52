"""The ``dyadic`` mode: exact rationals, with every *intermediate bound* rounded outward to a
dyadic rational ``m·2^e`` whose mantissa ``m`` has at most ``bits`` bits.

Exact CROWN carries the denominators of every earlier bound into later layers and blows up;
rounding each intermediate bound outward (lower ends down, upper ends up) keeps every result a
sound bound while the numbers stay short. Everything else (weights, products, the final
concretisation) is exact, so a dyadic result is a ``bound`` (sound), not the exact value.

``DyadicContext(bits)`` is a :class:`RationalContext` (same elements, same exact sign tests;
square roots enclosed at ``bits`` bits) whose :meth:`round_bound` rounds outward; algorithms call
it on every intermediate bound (the identity in the other contexts).
"""

from __future__ import annotations

from typing import Any

from flint import fmpq

from ..errors import InvalidValueError
from .contexts import BOUND, RationalContext
from .convert import to_exact
from .interval import RInterval


def _floor_div_pow2(p: Any, q: Any, k: Any) -> Any:
    """floor(p/q · 2^k) for integers p, q > 0 and any integer k."""
    return (p << k) // q if k >= 0 else p // (q << -k)


def round_dyadic(x: Any, bits: int, up: bool) -> Any:
    """The dyadic rational nearest to ``x`` on the outward side (``up``: the smallest ``>= x``,
    else the largest ``<= x``) with a mantissa of at most ``bits`` bits. Exact dyadics of that
    length are returned unchanged."""
    if isinstance(x, RInterval):
        x = x.hi if up else x.lo
    x = to_exact(x)
    if x == 0:
        return x
    p, q = int(x.p), int(x.q)
    if not q & (q - 1):  # dyadic p/2^s: keep the top `bits` bits of p
        drop = abs(p).bit_length() - bits
        if drop <= 0:
            return x
        m = p >> drop  # floor, also for negative p
        if up and (m << drop) != p:
            m += 1
        s = q.bit_length() - 1 - drop  # x rounded = m·2^(drop) / 2^(s + drop)
        return fmpq(m, 1 << s) if s >= 0 else fmpq(m << -s)
    # 2^(e) <= |x| < 2^(e+1): choose k so that |x|·2^k has `bits` integer bits.
    e = abs(p).bit_length() - q.bit_length()
    k = bits - 1 - e
    m = _floor_div_pow2(p, q, k)  # floor(x·2^k), also for negative p
    exact = (fmpq(m) * (fmpq(2) ** -k if k <= 0 else fmpq(1, 2**k))) == x
    if up and not exact:
        m += 1
    return fmpq(m, 1 << k) if k >= 0 else fmpq(m << -k)


class DyadicContext(RationalContext):
    """Exact rationals, intermediate bounds rounded outward to ``bits``-bit dyadics."""

    name = "dyadic"
    mode = "dyadic"
    rounds_bounds = True

    def __init__(self, bits: int = 64) -> None:
        if int(bits) < 2:
            raise InvalidValueError("bits", bits, "must be >= 2")
        super().__init__(bits)

    def round_bound(self, x: Any, up: bool) -> Any:
        return round_dyadic(x, self.bits, up)

    def result_status(self, rounded: bool) -> str:
        """Always a ``bound``: intermediate bounds were rounded outward."""
        return BOUND

    def round_down(self, x: Any) -> Any:
        """Largest ``bits``-bit dyadic ``<= x`` (lower end of an enclosure)."""
        return round_dyadic(x, self.bits, False)

    def round_up(self, x: Any) -> Any:
        """Smallest ``bits``-bit dyadic ``>= x`` (upper end of an enclosure)."""
        return round_dyadic(x, self.bits, True)

    def __repr__(self) -> str:
        return f"DyadicContext(bits={self.bits})"
