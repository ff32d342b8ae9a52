"""Exact sign of a closed sympy number: the value a goal takes at a rational counterexample.

Such a value is built from rationals with ``+ − × ÷``, integer powers, square roots, ``Abs``,
``Max`` and ``Min``. Its sign is decided rigorously, never by float rounding alone:

1. a rational is compared exactly;
2. otherwise the expression is enclosed with the package's outward-rounded
   :class:`~exactbounds.numbers.IntervalContext` at 64, 256, 1024 and 4096 bits; an enclosure
   that excludes 0 decides the sign (it contains the exact real value);
3. an enclosure that keeps containing 0 is tested for being exactly 0 with sympy's
   ``minimal_polynomial`` (exact algebraic arithmetic): the minimal polynomial ``X`` means 0.

Anything else (a free symbol, an undefined function, a transcendental) is undecided: ``None``.
"""

import sympy

from exactbounds.errors import AmbiguousBranch
from exactbounds.numbers import IntervalContext, to_exact

PRECISIONS = (64, 256, 1024, 4096)
_X = sympy.Dummy("X")


class Unsupported(Exception):
    """The expression contains something the interval evaluator cannot enclose."""


def _enclose(e, ctx):
    if e.is_Rational:
        return ctx.const(to_exact(e))
    if e.is_Add or e.is_Mul:
        args = [_enclose(a, ctx) for a in e.args]
        acc = args[0]
        for a in args[1:]:
            acc = acc + a if e.is_Add else acc * a
        return acc
    if e.is_Pow:
        base, k = e.args
        if k.is_Rational and k.q in (1, 2):
            if k.q == 2:
                if exact_sign(base) not in (0, 1):
                    raise Unsupported(e)  # a complex value, or undecided
                b = ctx.sqrt(_enclose(base, ctx))
            else:
                b = _enclose(base, ctx)
            n = abs(int(k.p))
            if k.p < 0 and exact_sign(base) == 0:
                raise Unsupported(e)  # division by zero
            acc = ctx.const(1)
            for _ in range(n):
                acc = acc * b
            return ctx.const(1) / acc if k.p < 0 else acc
        raise Unsupported(e)
    if isinstance(e, (sympy.Abs, sympy.Max, sympy.Min)):
        return _enclose(_resolve(e), ctx)
    raise Unsupported(e)


def _resolve(e):
    """``Abs``/``Max``/``Min`` of closed numbers, with the comparison decided exactly."""
    if isinstance(e, sympy.Abs):
        s = exact_sign(e.args[0])
        if s is None:
            raise Unsupported(e)
        return e.args[0] if s >= 0 else -e.args[0]
    best = e.args[0]
    for a in e.args[1:]:
        s = exact_sign(a - best)
        if s is None:
            raise Unsupported(e)
        if (s > 0) == isinstance(e, sympy.Max) and s != 0:
            best = a
    return best


def exact_sign(e):
    """-1, 0 or 1 for a closed real sympy number, decided exactly; ``None`` if undecided."""
    e = sympy.sympify(e)
    if e.free_symbols or e.has(sympy.I, sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        return None
    if e.is_Rational:
        return 1 if e.p > 0 else (-1 if e.p < 0 else 0)
    for prec in PRECISIONS:
        ctx = IntervalContext(prec)
        try:
            v = _enclose(e, ctx)
        except Unsupported:
            return None
        try:
            return ctx.sign(v)
        except AmbiguousBranch:
            if prec == PRECISIONS[0]:
                try:
                    if sympy.minimal_polynomial(e, _X) == _X:
                        return 0
                except Exception:  # sympy gives up in several ways; undecided is the safe answer
                    return None
    return None
