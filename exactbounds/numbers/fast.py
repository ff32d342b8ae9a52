"""The ``fast`` mode: the same algorithms in float64 midpoint-radius arithmetic with rigorous
a-priori bounds on every rounding error (the matrix backend ``exactbounds.linalg.fast``).

``FastContext`` is an :class:`IntervalContext` at 53 bits (its elements are mpmath ``iv``
intervals, so every operator's ``relax``/``ibp`` works unchanged, each step rounded outward);
CROWN, forward affine and the IBP of affine operators run on numpy float64 balls
(``backend_kind = "fast"``). An IBP result encloses the exact result of the same algorithm
(status ``enclosure``). CROWN and forward affine relax with point-float lines made valid on the
outer ends of the float intermediate bounds (``relax_vec`` of ReLU, LeakyRelu, Sigmoid, Tanh;
the other operators' exact lines on those ends): their result is a sound ``bound`` of the
network, within rounding of the exact algorithm's on well-conditioned networks but not an
enclosure of it (taking the hull of every branch the balls leave open instead widened the
enclosure ~100× per layer). CROWN's backward functionals are point floats, their products'
rounding charged to the bias (``linalg/fast_point.py``). A ball that overflowed, or a result
too wide (:meth:`accept`), raises ``AmbiguousBranch``; the run then restarts in :meth:`refined`
(``IntervalContext(113)``).
"""

from __future__ import annotations

from typing import Any

from ..errors import AmbiguousBranch
from .contexts import Context, IntervalContext
from .convert import dyadic

WIDE = dyadic(1, -10)
WIDE_ABS = dyadic(1, -1000)


class FastContext(IntervalContext):
    """mpmath ``iv`` intervals at 53 bits; matrices as float64 balls (``backend_kind="fast"``)."""

    name = "fast"
    mode = "fast"
    backend_kind = "fast"
    supports_taylor = False

    def __init__(self, prec: int = 53) -> None:
        super().__init__(prec)

    @property
    def func_prec(self) -> int:
        """Transcendental enclosures in the relaxations' line checks at 113 bits: at 53 a
        tangent line's check has no margin left and falls back to the constant lines."""
        return 113

    def refined(self) -> Context | None:
        """The interval mode at 113 bits (python-flint balls)."""
        return IntervalContext(113)

    def accept(self, result: Any) -> Any:
        """``result`` if each output end is enclosed to within ``WIDE`` of the output's span
        ``hi − lo``; else ``AmbiguousBranch`` (ball arithmetic through many layers wraps: radii
        grow by about ‖|W|‖ per layer, and then the run restarts in :meth:`refined`)."""
        for lo, hi in zip(result.output.lo, result.output.hi):
            a, b = self.ends(lo)
            c, d = self.ends(hi)
            if (b - a) + (d - c) > WIDE * (d - a) + WIDE_ABS:
                raise AmbiguousBranch(
                    "an enclosure narrower than 2^-10 of the bounds' span", (lo, hi)
                )
        return result

    def describe(self) -> dict[str, Any]:
        return {"context": self.name, "mode": self.mode, "prec": self.prec}

    def __repr__(self) -> str:
        return "FastContext()"
