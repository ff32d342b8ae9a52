"""Numbers: exact conversion, outward rounding, and the number contexts."""
from .contexts import (BOUND, DEFAULT_CONTEXT, ENCLOSURE, EXACT, Context, IntervalContext,
                       RationalContext, SymbolicContext, make_context, mpf_to_exact)
from .dyadic_mode import DyadicContext
from .convert import Q, dyadic, f64_down, f64_up, rational_str, to_exact, to_sympy
from .interval import RInterval, interval
from .sqrt import sqrt_enclosure

__all__ = ["BOUND", "DEFAULT_CONTEXT", "ENCLOSURE", "EXACT", "Context", "DyadicContext", "IntervalContext",
           "RationalContext", "SymbolicContext", "make_context", "mpf_to_exact", "Q", "dyadic",
           "f64_down", "f64_up", "rational_str", "to_exact", "to_sympy", "RInterval", "interval",
           "sqrt_enclosure", "FloatContext"]


def __getattr__(name):
    """``FloatContext`` is imported on first use: it needs numpy, which ``import exactbounds``
    does not load otherwise (PEP 562 module ``__getattr__``)."""
    if name == "FloatContext":
        from .floatctx import FloatContext
        return FloatContext
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
