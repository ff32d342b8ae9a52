"""Taylor-mode helpers shared by the operators' ``jet_step`` verbs (over any number context).

A node's jet is its value box ``u`` and the boxes of ``u' = du/dt`` and ``u'' = d²u/dt²``
(``algorithms/taylor.py``). A step returns :class:`JetStep`: the derivative boxes, whether an
outward enclosure of a derivative entered (the result is then a ``bound``), and notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core import Box

if TYPE_CHECKING:
    from ..numbers.contexts import Context


@dataclass
class JetStep:
    d1: Box
    d2: Box | None = None
    rounded: bool = False
    notes: list = field(default_factory=list)


def elems(ctx: Context, box: Box) -> list[Any]:
    """One element of ``ctx`` per entry, containing ``[lo_i, hi_i]`` (outer ends)."""
    lo, hi = box.outer(ctx)
    return [ctx.hull([ctx.const(a), ctx.const(b)]) for a, b in zip(lo, hi)]


def to_box(ctx: Context, vals: Any, shape: Any) -> Box:
    """The box of the outer ends of ``vals``, kept as the context keeps derivative ends
    (``ctx.jet_round``: short outward dyadics in the rational context)."""
    ends = [ctx.jet_round(ctx.lower(e), ctx.upper(e)) for e in vals]
    return Box([ctx.const(a) for a, _ in ends], [ctx.const(b) for _, b in ends], shape)


def square(ctx: Context, e: Any) -> Any:
    """The range of ``d²`` for ``d`` in the element ``e`` (``[0, max]`` when it contains 0)."""
    lo, hi = ctx.lower(e), ctx.upper(e)
    if lo >= 0:
        a, b = lo * lo, hi * hi
    elif hi <= 0:
        a, b = hi * hi, lo * lo
    else:
        a, b = lo * 0, max(lo * lo, hi * hi)
    return ctx.hull([ctx.const(a), ctx.const(b)])
