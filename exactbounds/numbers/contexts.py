"""Number contexts: the operators are written once against these, as TorchLean writes each
operator once over ``[Context α]``.

A context says what a number is, how ``sqrt`` rounds, and how a sign is decided. Operators use
``+ - * /`` on the context's elements, ``ctx.const`` to bring in exact data, ``ctx.sqrt``, and
``ctx.sign`` for every branch (never a bare comparison of intervals).

=====================  =======================================  ===========================
context                a number is                              sign test
=====================  =======================================  ===========================
``RationalContext``    ``fmpq``, or ``RInterval`` (exact        exact; an interval that
                       rational ends) where √ was enclosed      contains 0 raises
                                                                ``AmbiguousBranch``
``IntervalContext``    mpmath ``iv`` interval at ``prec`` bits  decided if 0 is excluded,
                                                                else ``AmbiguousBranch``
``SymbolicContext``    sympy expression, exact ``sqrt``         sympy assumptions, then
                                                                ``assume``; else
                                                                ``NeedsCaseSplit``
=====================  =======================================  ===========================
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from flint import fmpq
from mpmath import ctx_iv
from mpmath import mpf as _mpf

from ..errors import AmbiguousBranch, InvalidValueError, NeedsCaseSplit
from .convert import dyadic, to_exact
from .interval import RInterval, interval
from .sqrt import sqrt_enclosure

#: Precision of transcendental enclosures in a context without a precision of its own.
DEFAULT_FUNC_PREC = 160

EXACT = "exact"
ENCLOSURE = "enclosure"
BOUND = "bound"


class Context(ABC):
    """Base of the number contexts. Subclasses supply the primitives below and answer for
    themselves (the mpmath lesson): code outside ``numbers/`` asks a context what it can do
    (``is_exact``, ``precision``, ``ends``, ``hull``, ``round_bound``, ``backend_kind``,
    ``refined``, ``result_status``, ...), never which class it is."""

    name = "abstract"
    mode = "abstract"
    is_exact = True
    """Elements are exact numbers (or exact-ended enclosures of irrational ones)."""
    rounds_bounds = False
    """Intermediate bounds are rounded outward (the dyadic mode)."""
    backend_kind: str | None = None
    """The matrix backend of CROWN/affine (``exactbounds.linalg.backend_for``): ``"dyadic"``
    (exact integer-backed), ``"arb"`` (balls at ``precision``), or ``None`` (no matrix backend:
    CROWN and affine do not run in this context)."""
    supports_taylor = False
    """Derivative propagation (``algorithms/taylor.py``) runs in this context."""
    precision: Any = None
    """Bits: square-root enclosure width (rational, dyadic) or working precision (interval)."""
    iv: Any = None
    """The mpmath interval context whose intervals are this context's elements, if any."""
    keeps_exact_ends = False
    """Elements are rationals or rational intervals, so an enclosure may be replaced by its
    exact outer ends (Taylor mode does, to keep numbers short)."""

    @abstractmethod
    def const(self, x: Any) -> Any:
        """Bring an exact value (number, string, ``fmpq``) into the context."""

    def coerce(self, x: Any) -> Any:
        """``x`` as an element of this context (elements pass through)."""
        return self.const(x)

    @abstractmethod
    def sqrt(self, x: Any) -> Any:
        """An element that contains the real square root of ``x``."""

    @abstractmethod
    def sign(self, x: Any) -> int:
        """-1, 0 or 1; raises when the context cannot decide."""

    def is_positive(self, x: Any) -> bool:
        return self.sign(x) > 0

    def is_negative(self, x: Any) -> bool:
        return self.sign(x) < 0

    def is_zero(self, x: Any) -> bool:
        return self.sign(x) == 0

    def lower(self, x: Any) -> Any:
        """Exact lower end of an element (the element itself when exact)."""
        return x

    def upper(self, x: Any) -> Any:
        """Exact upper end of an element."""
        return x

    def status(self, x: Any) -> str:
        """``"exact"`` or ``"enclosure"``."""
        return EXACT

    def apply_function(self, f: Any, x: Any) -> Any:
        """An element containing ``f(x)`` for an elementary function object ``f``: the context
        picks ``f.on_exact`` (rational enclosure), ``f.on_interval`` or ``f.on_symbolic``."""
        return f.on_exact(self, x)

    def ends(self, x: Any) -> tuple[Any, ...]:
        """Exact ``(lower, upper)`` ends of an element."""
        return self.lower(x), self.upper(x)

    def from_ends(self, lo: Any, hi: Any) -> Any:
        """The narrowest element containing the exact interval ``[lo, hi]``."""
        return interval(lo, hi)

    def hull(self, vals: Any) -> Any:
        """The smallest element containing every element of ``vals``."""
        vals = list(vals)
        if len(vals) == 1:
            return vals[0]
        return self.from_ends(min(self.lower(v) for v in vals), max(self.upper(v) for v in vals))

    def round_bound(self, x: Any, up: bool) -> Any:
        """An intermediate bound as the algorithm keeps it: ``x`` itself, except in a context
        that rounds bounds outward (``up``: an upper end, rounded up)."""
        return x

    def all_exact(self, vals: Any) -> bool:
        """Whether every value is an exact rational (``fmpq``) of this context, so that exact
        matrix products may replace element arithmetic."""
        return False

    def refined(self) -> Context | None:
        """The context to retry in when a branch could not be decided (``None``: no retry)."""
        return None

    @property
    def func_prec(self) -> int:
        """Working precision (bits) of rigorous enclosures of transcendental functions."""
        return DEFAULT_FUNC_PREC

    @property
    def sqrt_bits(self) -> int:
        """Relative width 2^-bits of exact square-root enclosures made beside the algorithm
        (an L2 norm in a concretisation)."""
        return 128

    def exact_context(self) -> Context:
        """A rational context of matching precision, for exact side computations (IBP error
        terms, coefficient enclosures)."""
        return RationalContext(self.precision or 128)

    def accept(self, result: Any) -> Any:
        """``result``, or ``AmbiguousBranch`` when it is too wide to keep (the run then
        restarts in :meth:`refined`; the fast mode checks its enclosures' widths)."""
        return result

    def result_status(self, rounded: bool) -> str:
        """Status of an algorithm's result in this context; ``rounded``: a square root or an
        intercept was rounded outward on the way, so the result is a sound ``bound`` only."""
        return BOUND if rounded else EXACT

    def jet_round(self, lo: Any, hi: Any) -> tuple[Any, ...]:
        """Outer ends ``(lo, hi)`` of a derivative enclosure as Taylor mode keeps them."""
        return lo, hi

    def describe(self) -> dict[str, Any]:
        """``{"context": name, "mode": mode, precision keys}`` for result JSON."""
        return {"context": self.name, "mode": self.mode}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _exact_sign(q: Any) -> int:
    return (q > 0) - (q < 0)


class RationalContext(Context):
    """Exact rationals (``fmpq``). An irrational square root becomes an ``RInterval`` whose ends
    are rounded outward with relative width <= 2**-bits; after that, exact interval arithmetic."""

    name = "rational"
    mode = "exact"
    backend_kind = "dyadic"
    supports_taylor = True
    keeps_exact_ends = True

    def __init__(self, bits: int = 128) -> None:
        if int(bits) < 2:
            raise InvalidValueError("bits", bits, "must be >= 2")
        self.bits = int(bits)

    @property
    def precision(self) -> int:
        return self.bits

    @property
    def func_prec(self) -> int:
        return self.bits + 32

    @property
    def sqrt_bits(self) -> int:
        return self.bits

    def exact_context(self) -> Context:
        return self

    def all_exact(self, vals: Any) -> bool:
        return all(isinstance(v, fmpq) for v in vals)

    def jet_round(self, lo: Any, hi: Any) -> Any:
        """Rounded outward to ``bits + 64``-bit dyadics: the ends are bounds already; this keeps
        them short (the ends of square-root enclosures have unrelated denominators)."""
        return round_out(lo, hi, self.bits + 64)

    def describe(self) -> dict[str, Any]:
        return {"context": self.name, "mode": self.mode, "bits": self.bits}

    def const(self, x: Any) -> Any:
        return to_exact(x)

    def coerce(self, x: Any) -> Any:
        return x if isinstance(x, (fmpq, RInterval)) else to_exact(x)

    def sqrt(self, x: Any) -> Any:
        if isinstance(x, RInterval):
            lo, hi = sqrt_enclosure(x.lo, self.bits), sqrt_enclosure(x.hi, self.bits)
            return interval(self.lower(lo), self.upper(hi))
        return sqrt_enclosure(x, self.bits)

    def sign(self, x: Any) -> int:
        if isinstance(x, RInterval):
            if x.lo > 0:
                return 1
            if x.hi < 0:
                return -1
            if x.lo == x.hi == 0:
                return 0
            raise AmbiguousBranch("the sign", x)
        return _exact_sign(x)

    def lower(self, x: Any) -> Any:
        return x.lo if isinstance(x, RInterval) else x

    def upper(self, x: Any) -> Any:
        return x.hi if isinstance(x, RInterval) else x

    def status(self, x: Any) -> str:
        return ENCLOSURE if isinstance(x, RInterval) else EXACT

    def __repr__(self) -> str:
        return f"RationalContext(bits={self.bits})"


def round_out(lo: Any, hi: Any, bits: int) -> tuple[Any, ...]:
    """Dyadic rationals ``lo' <= lo``, ``hi' >= hi`` with about ``bits`` significant bits (the
    ends of python-flint ``arb`` balls around ``lo`` and ``hi``); exact zeros stay."""
    import flint
    from flint import arb

    with flint.ctx.workprec(bits):
        return (lo if lo == 0 else arb_ends(arb(lo))[0], hi if hi == 0 else arb_ends(arb(hi))[1])


def arb_ends(b: Any) -> tuple[Any, ...]:
    """Exact rational ends ``(lo, hi)`` of an ``arb`` ball."""
    lo, hi = b.lower(), b.upper()
    return dyadic(*(int(v) for v in lo.man_exp())), dyadic(*(int(v) for v in hi.man_exp()))


def mpf_to_exact(v: Any) -> Any:
    """The exact rational value of a finite mpmath number: an ``mpf``, or a raw ``_mpf_``
    tuple ``(sign, man, exp, bc)`` such as the ends of an ``iv`` interval's ``_mpi_``."""
    t = v if isinstance(v, tuple) else _mpf(v)._mpf_
    sign, man, exp, _ = t
    if not man and exp:  # mpmath's encoding of ±inf and nan
        raise InvalidValueError("mpf", _mpf(t), "not finite")
    return dyadic(-man if sign else man, exp)


class IntervalContext(Context):
    """mpmath ``iv`` intervals at ``prec`` bits, every operation rounded outward.

    Each instance owns its own mpmath interval context, so precisions do not leak."""

    name = "interval"
    mode = "interval"
    is_exact = False
    backend_kind = "arb"
    supports_taylor = True

    def __init__(self, prec: int = 113) -> None:
        if int(prec) < 2:
            raise InvalidValueError("prec", prec, "must be >= 2")
        self.prec = int(prec)
        self.iv = ctx_iv.MPIntervalContext()
        self.iv.prec = self.prec
        self._type = type(self.iv.mpf(0))

    @property
    def precision(self) -> int:
        return self.prec

    @property
    def func_prec(self) -> int:
        return self.prec

    def from_ends(self, lo: Any, hi: Any) -> Any:
        return self.iv.mpf([self.const(lo).a, self.const(hi).b])

    def apply_function(self, f: Any, x: Any) -> Any:
        return f.on_interval(self, x)

    def refined(self) -> Context | None:
        """Twice the precision."""
        return IntervalContext(self.prec * 2)

    def result_status(self, rounded: bool) -> str:
        return BOUND if rounded else ENCLOSURE

    def describe(self) -> dict[str, Any]:
        return {"context": self.name, "mode": self.mode, "prec": self.prec}

    def const(self, x: Any) -> Any:
        q = to_exact(x)
        if q.q == 1:
            return self.iv.mpf(int(q.p))
        return self.iv.mpf(int(q.p)) / self.iv.mpf(int(q.q))

    def coerce(self, x: Any) -> Any:
        if isinstance(x, self._type):
            return x
        if hasattr(x, "_mpi_"):  # an interval of another mpmath context: its exact ends, outward
            return self.from_ends(mpf_to_exact(x._mpi_[0]), mpf_to_exact(x._mpi_[1]))
        return self.const(x)

    def sqrt(self, x: Any) -> Any:
        return self.iv.sqrt(self.coerce(x))

    def sign(self, x: Any) -> int:
        if isinstance(x, fmpq):
            return _exact_sign(x)
        x = self.coerce(x)
        if x.a > 0:
            return 1
        if x.b < 0:
            return -1
        if x.a == 0 and x.b == 0:
            return 0
        raise AmbiguousBranch("the sign", x)

    def lower(self, x: Any) -> Any:
        return mpf_to_exact(self.coerce(x)._mpi_[0])

    def upper(self, x: Any) -> Any:
        return mpf_to_exact(self.coerce(x)._mpi_[1])

    def status(self, x: Any) -> str:
        x = self.coerce(x)
        return EXACT if x.a == x.b else ENCLOSURE

    def __repr__(self) -> str:
        return f"IntervalContext(prec={self.prec})"


class SymbolicContext(Context):
    """sympy expressions with exact ``sqrt``. A sign that sympy cannot decide from the
    symbols' assumptions, nor from ``assume`` (a mapping ``expr -> -1|0|1`` supplied by a case
    split), raises ``NeedsCaseSplit(expr)``."""

    name = "symbolic"
    mode = "symbolic"

    def __init__(self, assume: Any = None) -> None:
        import sympy

        self.sympy = sympy
        self.assume = dict(assume or {})

    def const(self, x: Any) -> Any:
        sp = self.sympy
        if isinstance(x, sp.Basic):
            return x
        q = to_exact(x)
        return sp.Rational(int(q.p), int(q.q))

    def coerce(self, x: Any) -> Any:
        return x if isinstance(x, self.sympy.Basic) else self.const(x)

    def apply_function(self, f: Any, x: Any) -> Any:
        return f.on_symbolic(self, x)

    def sqrt(self, x: Any) -> Any:
        return self.sympy.sqrt(self.coerce(x))

    def sign(self, x: Any) -> int:
        sp = self.sympy
        e = self.coerce(x)
        for cand in (e, sp.simplify(e)):
            if cand.is_zero:
                return 0
            if cand.is_positive:
                return 1
            if cand.is_negative:
                return -1
        for key, s in self.assume.items():
            if sp.simplify(e - key) == 0:
                return s
            if sp.simplify(e + key) == 0:
                return -s
        raise NeedsCaseSplit(e)

    def __repr__(self) -> str:
        return f"SymbolicContext(assume={self.assume!r})"


DEFAULT_CONTEXT = RationalContext()
