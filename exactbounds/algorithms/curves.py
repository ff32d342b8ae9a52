"""The curve of a derivative run from its description: ``wrt`` (partial derivatives with respect
to one input over the input set's bounding box) or ``direction`` with optional ``origin``
(default: the box centre) and ``t_range`` (default: the t where the line stays in the box).
``exactbounds derivatives``, the derivative audit's claim files and the public API use it."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidValueError
from ..inputsets import bounding_box
from .taylor import Curve


def make_curve(
    input_set: Any,
    wrt: int | None = None,
    direction: Any = None,
    origin: Any = None,
    t_range: Any = None,
) -> Curve:
    """The :class:`~exactbounds.algorithms.taylor.Curve` described (see the module docstring);
    ``wrt`` ignores ``origin`` and ``t_range``, the caller decides whether that is an error."""
    box = bounding_box(input_set)
    if wrt is not None:
        return Curve.wrt(box, wrt)
    if direction is None:
        raise InvalidValueError("direction", None, "give a direction (or wrt)")
    if t_range is None:
        return Curve.through_box(box, direction, origin)
    if len(t_range) != 2:
        raise InvalidValueError("t_range", list(t_range), "expected [lo, hi]")
    if origin is None:
        lo, hi = box.outer()
        origin = [(a + b) / 2 for a, b in zip(lo, hi)]
    return Curve(origin, direction, t_range[0], t_range[1])


__all__ = ["make_curve"]
