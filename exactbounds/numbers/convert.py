"""Exact conversion of numbers into the package's rational type, and out of it.

The exact rational type is python-flint's ``fmpq``: the element type of sympy's ``QQ`` domain
under its ``flint`` ground types, and the scalar type of ``fmpq_mat``.

In: ``int``, ``float`` (the exact double), numpy float16/32/64/longdouble (the exact value),
``Fraction``, sympy ``Rational``/``Float`` (exact), ``fmpq``/``fmpz``, and strings: ``"3/7"``,
``"-0.125"`` or ``"1e-5"`` (the exact decimal), ``"0x1.8p-3"`` (the exact hex float).
Out: :func:`rational_str` (``"p/q"``), :func:`f64_down` / :func:`f64_up` (outward rounding).

Size limits on entry (checked before any big number is built, so a tiny file cannot stop the
machine): at most :data:`MAX_DIGITS` digits in a string number (each of ``p`` and ``q``, or the
digits of a decimal or hex mantissa), a decimal exponent within ±:data:`MAX_DEC_EXP` and a
binary exponent within ±:data:`MAX_BIN_EXP`, and at most :data:`MAX_BITS` bits in an integer,
numerator or denominator given as a number. These cover the exact value of every float16/32/64,
x87 long double and float128 (1e±4966, 2^±16494) and their exact decimal expansions (a float64
needs at most 767 significant digits); beyond them :class:`InvalidValueError` says so. Only
ASCII digits are digits (``"١٢٣"`` is not a number).
"""

from __future__ import annotations

import math
import numbers
import re
from fractions import Fraction
from typing import Any

from flint import fmpq, fmpz

from ..errors import InvalidValueError

Q = fmpq
MAX_DIGITS = 4300
"""Most digits in one string number (Python's own int-string limit): p and q of ``"p/q"``
each, the mantissa of a decimal or hex float."""
MAX_DEC_EXP = 5000
"""Largest |decimal exponent| of a decimal string (float128 reaches 1e±4966)."""
MAX_BIN_EXP = 17000
"""Largest |binary exponent| of a hex float (float128 reaches 2^±16494)."""
MAX_BITS = 60000
"""Most bits in an integer, numerator or denominator given as a number (Fraction, int, ...)."""
_DEC = re.compile(r"^([+-]?)([0-9]*)\.?([0-9]*)(?:[eE]([+-]?[0-9]+))?$", re.ASCII)
_HEX = re.compile(r"^([+-]?)0[xX]([0-9a-fA-F]*)\.?([0-9a-fA-F]*)[pP]([+-]?[0-9]+)$", re.ASCII)
_RAT = re.compile(r"^([+-]?[0-9]+)\s*/\s*([+-]?[0-9]+)$", re.ASCII)
_ADVICE = (
    "numbers in model, spec and claim files must be floats or exact decimals/rationals of at most"
)


def _from_ratio(num: Any, den: int) -> Any:
    return fmpq(int(num), int(den))


def _too_big(name: str, s: Any, what: str) -> InvalidValueError:
    return InvalidValueError(
        name,
        s,
        f"{what}; {_ADVICE} {MAX_DIGITS} digits within 1e±"
        f"{MAX_DEC_EXP} (2^±{MAX_BIN_EXP}): check the file",
    )


def _exponent(name: str, s: Any, text: str, limit: int) -> int:
    """The exponent digits ``text`` as an int, refused beyond ``±limit`` before conversion."""
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > len(str(limit)) or (digits and int(digits) > limit):
        raise _too_big(
            name, s, f"exponent {text[:20]}{'…' if len(text) > 20 else ''} is beyond ±{limit}"
        )
    return int(text) if text else 0


def _digits(name: str, s: Any, n: int) -> None:
    if n > MAX_DIGITS:
        raise _too_big(name, s, f"{n} digits is more than {MAX_DIGITS}")


def _parse_str(s: Any, name: str) -> Any:
    t = s.strip()
    m = _RAT.match(t)
    if m:
        _digits(name, s, max(len(m.group(1).lstrip("+-")), len(m.group(2).lstrip("+-"))))
        p, q = fmpz(m.group(1).lstrip("+")), fmpz(m.group(2).lstrip("+"))
        if q == 0:
            raise InvalidValueError(name, s, "zero denominator")
        return fmpq(p, q)
    m = _DEC.match(t)
    if m and (m.group(2) or m.group(3)):
        sign, whole, frac, exp = m.groups()
        whole = whole.lstrip("0")
        _digits(name, s, len(whole) + len(frac))
        e = _exponent(name, s, exp or "", MAX_DEC_EXP) - len(frac)
        mant = fmpz((whole + frac) or "0")
        mant = -mant if sign == "-" else mant
        return fmpq(mant * fmpz(10) ** e) if e >= 0 else fmpq(mant, fmpz(10) ** (-e))
    m = _HEX.match(t)
    if m and (m.group(2) or m.group(3)):
        sign, whole, frac, exp = m.groups()
        _digits(name, s, len(whole.lstrip("0")) + len(frac))
        e = _exponent(name, s, exp, MAX_BIN_EXP)
        mant = int((whole or "0") + frac, 16)
        return dyadic(-mant if sign == "-" else mant, e - 4 * len(frac))
    raise InvalidValueError(name, s, "not a number (expected 'p/q', a decimal, or a hex float)")


def _check_int(name: str, x: Any, *parts: Any) -> None:
    if any(int(p).bit_length() > MAX_BITS for p in parts):
        raise _too_big(name, x, f"more than {MAX_BITS} bits")


def to_exact(x: Any, name: str = "value") -> Any:
    """Return ``x`` as an exact ``fmpq``; raise :class:`InvalidValueError` for NaN, ±Inf,
    irrationals and anything that is not a number."""
    if isinstance(x, fmpq):
        return x
    if isinstance(x, bool):
        raise InvalidValueError(name, x, "a boolean is not a number")
    if isinstance(x, (int, fmpz)):
        _check_int(name, x, x)
        return fmpq(int(x))
    if isinstance(x, str):
        return _parse_str(x, name)
    if isinstance(x, Fraction):
        _check_int(name, x, x.numerator, x.denominator)
        return fmpq(x.numerator, x.denominator)
    if isinstance(x, float) or _is_numpy_float(x):
        finite = math.isfinite(x) if isinstance(x, float) else _np_finite(x)
        if not finite:
            raise InvalidValueError(name, x, "not finite")
        return _from_ratio(*x.as_integer_ratio())
    if _is_numpy_int(x):
        return fmpq(int(x))
    if isinstance(x, numbers.Rational):
        _check_int(name, x, x.numerator, x.denominator)
        return fmpq(int(x.numerator), int(x.denominator))
    try:
        import sympy
    except ImportError:  # pragma: no cover - sympy is a core dependency
        sympy = None
    if sympy is not None and isinstance(x, sympy.Basic):
        if isinstance(x, sympy.Rational):
            _check_int(name, x, x.p, x.q)
            return fmpq(int(x.p), int(x.q))
        if isinstance(x, sympy.Float):
            if not x.is_finite:
                raise InvalidValueError(name, x, "not finite")
            sign, man, exp, _ = x._mpf_
            if abs(exp) > MAX_BIN_EXP:
                raise _too_big(name, x, f"binary exponent {exp} is beyond ±{MAX_BIN_EXP}")
            return dyadic(-man if sign else man, exp)
        raise InvalidValueError(name, x, "not a rational number")
    raise InvalidValueError(name, x, f"unsupported number type {type(x).__name__}")


def _is_numpy_float(x: Any) -> bool:
    t = type(x)
    return (
        t.__module__ == "numpy"
        and hasattr(x, "as_integer_ratio")
        and any(b.__name__ == "floating" for b in t.__mro__)
    )  # float16/32/64 and longdouble


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
