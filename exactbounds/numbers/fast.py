"""The ``fast`` mode: the same algorithms in float64 midpoint-radius arithmetic with rigorous
a-priori bounds on every rounding error (the matrix backend ``exactbounds.linalg.fast``).

``FastContext`` is an :class:`IntervalContext` at 53 bits (its elements are mpmath ``iv``
intervals, so every operator's ``relax``/``ibp`` works unchanged, each step rounded outward);
CROWN, forward affine and the IBP of affine operators run on numpy float64 balls
(``backend_kind = "fast"``). A result encloses the exact result of the same algorithm
(status ``enclosure``). A branch the balls cannot decide, or a ball that overflowed, raises
``AmbiguousBranch``; the run then restarts in :meth:`refined` (``IntervalContext(113)``).
"""
from .contexts import IntervalContext


class FastContext(IntervalContext):
    """mpmath ``iv`` intervals at 53 bits; matrices as float64 balls (``backend_kind="fast"``)."""

    name = "fast"
    mode = "fast"
    backend_kind = "fast"
    supports_taylor = False

    def __init__(self, prec=53):
        super().__init__(prec)

    def refined(self):
        """The interval mode at 113 bits (python-flint balls)."""
        return IntervalContext(113)

    def describe(self):
        return {"context": self.name, "mode": self.mode, "prec": self.prec}

    def __repr__(self):
        return "FastContext()"
