"""Exact conversion of numbers into the package's rational type, and out of it.

The exact rational type is python-flint's ``fmpq``: the element type of sympy's ``QQ`` domain
under its ``flint`` ground types, and the scalar type of ``fmpq_mat``.

In: ``int``, ``float`` (the exact double), numpy float16/32/64/longdouble (the exact value),
``Fraction``, sympy ``Rational``/``Float`` (exact), ``fmpq``/``fmpz``, and strings: ``"3/7"``,
``"-0.125"`` or ``"1e-5"`` (the exact decimal), ``"0x1.8p-3"`` (the exact hex float).
Out: :func:`rational_str` (``"p/q"``), :func:`f64_down` / :func:`f64_up` (outward rounding).
"""
from __future__ import annotations

from typing import Any
import math
import numbers
import re
from fractions import Fraction

from flint import fmpq, fmpz

from ..errors import InvalidValueError

Q = fmpq
_DEC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_HEX = re.compile(r"^([+-]?)0[xX]([0-9a-fA-F]*)\.?([0-9a-fA-F]*)[pP]([+-]?\d+)$")
_RAT = re.compile(r"^[+-]?\d+\s*/\s*[+-]?\d+$")


def _from_ratio(num: Any, den: int) -> Any:
    return fmpq(int(num), int(den))


def _parse_str(s: Any, name: str) -> Any:
    t = s.strip()
    if _RAT.match(t):
        p, q = (int(u) for u in t.split("/"))
        if q == 0:
            raise InvalidValueError(name, s, "zero denominator")
        return fmpq(p, q)
    if _DEC.match(t):
        return _from_ratio(*Fraction(t).as_integer_ratio())
    m = _HEX.match(t)
    if m and (m.group(2) or m.group(3)):
        sign, whole, frac, exp = m.groups()
        mant = int((whole or "0") + frac, 16)
        return dyadic(-mant if sign == "-" else mant, int(exp) - 4 * len(frac))
    raise InvalidValueError(name, s, "not a number (expected 'p/q', a decimal, or a hex float)")


def to_exact(x: Any, name: str = "value") -> Any:
    """Return ``x`` as an exact ``fmpq``; raise :class:`InvalidValueError` for NaN, ±Inf,
    irrationals and anything that is not a number."""
    if isinstance(x, fmpq):
        return x
    if isinstance(x, bool):
        raise InvalidValueError(name, x, "a boolean is not a number")
    if isinstance(x, (int, fmpz)):
        return fmpq(int(x))
    if isinstance(x, str):
        return _parse_str(x, name)
    if isinstance(x, Fraction):
        return fmpq(x.numerator, x.denominator)
    if isinstance(x, float) or _is_numpy_float(x):
        finite = math.isfinite(x) if isinstance(x, float) else _np_finite(x)
        if not finite:
            raise InvalidValueError(name, x, "not finite")
        return _from_ratio(*x.as_integer_ratio())
    if _is_numpy_int(x):
        return fmpq(int(x))
    try:
        import sympy
    except ImportError:  # pragma: no cover - sympy is a core dependency
        sympy = None
    if sympy is not None and isinstance(x, sympy.Basic):
        if isinstance(x, sympy.Rational):
            return fmpq(int(x.p), int(x.q))
        if isinstance(x, sympy.Float):
            if not x.is_finite:
                raise InvalidValueError(name, x, "not finite")
            sign, man, exp, _ = x._mpf_
            return dyadic(-man if sign else man, exp)
        raise InvalidValueError(name, x, "not a rational number")
    if isinstance(x, numbers.Rational):
        return fmpq(int(x.numerator), int(x.denominator))
    raise InvalidValueError(name, x, f"unsupported number type {type(x).__name__}")


def _is_numpy_float(x: Any) -> bool:
    t = type(x)
    return t.__module__ == "numpy" and hasattr(x, "as_integer_ratio") and "float" in t.__name__


def _is_numpy_int(x: Any) -> bool:
    t = type(x)
    return t.__module__ == "numpy" and "int" in t.__name__


def _np_finite(x: Any) -> bool:
    import numpy as np
    return bool(np.isfinite(x))


def dyadic(mant: Any, exp: Any) -> Any:
    """Return the exact rational ``mant * 2**exp``."""
    return fmpq(int(mant)) * (fmpq(2) ** exp if exp >= 0 else fmpq(1, 2 ** (-exp)))


def rational_str(q: Any) -> str:
    """Exact string of a rational: ``"p/q"``, or ``"p"`` for an integer."""
    q = to_exact(q)
    return str(q.p) if q.q == 1 else f"{q.p}/{q.q}"


def to_sympy(q: Any) -> Any:
    """The same exact rational as a sympy ``Rational``."""
    import sympy
    q = to_exact(q)
    return sympy.Rational(int(q.p), int(q.q))


def _nearest(q: Any) -> float:
    try:
        return float(Fraction(int(q.p), int(q.q)))
    except OverflowError:
        return math.inf if q > 0 else -math.inf


def f64_down(q: Any) -> float:
    """The largest float64 ``f`` with ``f <= q`` (``-inf`` below the range)."""
    q = to_exact(q)
    f = _nearest(q)
    if math.isinf(f):
        return f if f < 0 else 1.7976931348623157e308
    return math.nextafter(f, -math.inf) if fmpq(*f.as_integer_ratio()) > q else f


def f64_up(q: Any) -> float:
    """The smallest float64 ``f`` with ``f >= q`` (``+inf`` above the range)."""
    q = to_exact(q)
    f = _nearest(q)
    if math.isinf(f):
        return f if f > 0 else -1.7976931348623157e308
    return math.nextafter(f, math.inf) if fmpq(*f.as_integer_ratio()) < q else f
