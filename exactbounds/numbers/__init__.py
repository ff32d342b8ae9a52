"""Numbers: exact conversion, outward rounding, and the number contexts."""

from .contexts import (
    BOUND,
    DEFAULT_CONTEXT,
    ENCLOSURE,
    EXACT,
    Context,
    IntervalContext,
    RationalContext,
    SymbolicContext,
    arb_ends,
    mpf_to_exact,
    round_out,
)
from .convert import Q, dyadic, f64_down, f64_up, rational_str, to_exact, to_sympy
from .dyadic_mode import DyadicContext, round_dyadic
from .fast import FastContext
from .floatctx import FloatContext
from .interval import RInterval, interval
from .registry import default_bits, make_context
from .sqrt import sqrt_enclosure

__all__ = [
    "BOUND",
    "DEFAULT_CONTEXT",
    "ENCLOSURE",
    "EXACT",
    "Context",
    "DyadicContext",
    "FastContext",
    "IntervalContext",
    "RationalContext",
    "SymbolicContext",
    "arb_ends",
    "default_bits",
    "make_context",
    "mpf_to_exact",
    "round_dyadic",
    "round_out",
    "Q",
    "dyadic",
    "f64_down",
    "f64_up",
    "rational_str",
    "to_exact",
    "to_sympy",
    "RInterval",
    "interval",
    "sqrt_enclosure",
    "FloatContext",
]
