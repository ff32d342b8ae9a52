"""``RInterval``: a closed interval with exact rational (``fmpq``) endpoints.

The rational context returns one where an irrational value (a square root) had to be enclosed;
all arithmetic on it is exact interval arithmetic, so the enclosure stays sound.
"""

from __future__ import annotations

from typing import Any

from flint import fmpq

from ..errors import AmbiguousBranch
from .convert import to_exact


def _q(x: Any) -> Any:
    return x if isinstance(x, fmpq) else to_exact(x)


def interval(lo: Any, hi: Any) -> Any:
    """``[lo, hi]``: the exact rational itself when ``lo == hi``, else an ``RInterval``."""
    lo, hi = _q(lo), _q(hi)
    return lo if lo == hi else RInterval(lo, hi)


def _make(lo: Any, hi: Any) -> Any:
    """Trusted internal constructor: ``lo <= hi`` are ``fmpq`` already."""
    if lo == hi:
        return lo
    r = object.__new__(RInterval)
    r.lo, r.hi, r._inv = lo, hi, None
    return r


class RInterval:
    """The set ``{v : lo <= v <= hi}`` of reals, ``lo``, ``hi`` exact rationals."""

    __slots__ = ("lo", "hi", "_inv")

    def __init__(self, lo: Any, hi: Any) -> None:
        lo, hi = _q(lo), _q(hi)
        if lo > hi:
            raise ValueError(f"RInterval with lo > hi: {lo} > {hi}")
        self.lo, self.hi, self._inv = lo, hi, None

    @staticmethod
    def _ends(x: Any) -> tuple[Any, ...]:
        if isinstance(x, RInterval):
            return x.lo, x.hi
        x = _q(x)
        return x, x

    def __add__(self, o: Any) -> Any:
        a, b = self._ends(o)
        return _make(self.lo + a, self.hi + b)

    __radd__ = __add__

    def __neg__(self) -> Any:
        return _make(-self.hi, -self.lo)

    def __sub__(self, o: Any) -> Any:
        a, b = self._ends(o)
        return _make(self.lo - b, self.hi - a)

    def __rsub__(self, o: Any) -> Any:
        return (-self) + o

    def __mul__(self, o: Any) -> Any:
        a, b = self._ends(o)
        if a == b:
            return _make(self.lo * a, self.hi * a) if a >= 0 else _make(self.hi * a, self.lo * a)
        p = (self.lo * a, self.lo * b, self.hi * a, self.hi * b)
        return _make(min(p), max(p))

    __rmul__ = __mul__

    def reciprocal(self) -> Any:
        if self._inv is None:
            if self.lo <= 0 <= self.hi:
                raise AmbiguousBranch("reciprocal", self)
            self._inv = _make(1 / self.hi, 1 / self.lo)
        return self._inv

    def __truediv__(self, o: Any) -> Any:
        if isinstance(o, RInterval):
            return self * o.reciprocal()
        o = _q(o)
        if o == 0:
            raise ZeroDivisionError("RInterval division by 0")
        return self * (1 / o)

    def __rtruediv__(self, o: Any) -> Any:
        return self.reciprocal() * o

    def __contains__(self, v: Any) -> bool:
        return self.lo <= v <= self.hi

    def __eq__(self, o: Any) -> bool:
        return isinstance(o, RInterval) and self.lo == o.lo and self.hi == o.hi

    def __hash__(self) -> int:
        return hash((self.lo, self.hi))

    @property
    def width(self) -> Any:
        return self.hi - self.lo

    def __repr__(self) -> str:
        return f"RInterval({self.lo}, {self.hi})"
