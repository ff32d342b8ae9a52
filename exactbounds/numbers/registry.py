"""The one switch for the arithmetic: a mode name makes a context with its default precision.

=============  ======================  =====================
mode           context                 default precision
=============  ======================  =====================
``exact``      ``RationalContext``     ``bits = 128``
``rational``   (alias of ``exact``)
``dyadic``     ``DyadicContext``       ``bits = 64``
``interval``   ``IntervalContext``     ``prec = 113``
``symbolic``   ``SymbolicContext``     —
``fast``       ``FastContext``         float64 balls (``prec = 53`` elements)
=============  ======================  =====================
"""

from __future__ import annotations

from ..errors import InvalidValueError
from .contexts import Context, IntervalContext, RationalContext, SymbolicContext
from .dyadic_mode import DyadicContext
from .fast import FastContext

MODES = {
    "exact": (lambda bits, prec: RationalContext(bits or 128)),
    "rational": (lambda bits, prec: RationalContext(bits or 128)),
    "dyadic": (lambda bits, prec: DyadicContext(bits or 64)),
    "interval": (lambda bits, prec: IntervalContext(prec or 113)),
    "symbolic": (lambda bits, prec: SymbolicContext()),
    "fast": (lambda bits, prec: FastContext()),
}


def make_context(mode: str = "exact", bits: int | None = None, prec: int | None = None) -> Context:
    """The context of ``mode`` (see the module table); ``bits``/``prec`` ``None`` take the
    mode's default."""
    make = MODES.get(mode) if isinstance(mode, str) else None
    if make is None:
        raise InvalidValueError(
            "mode", mode, "expected exact, rational, dyadic, interval, symbolic or fast"
        )
    return make(bits, prec)


def default_bits(mode: str) -> int:
    """The default ``bits`` of ``mode`` (64 for dyadic, else 128)."""
    return 64 if mode == "dyadic" else 128
