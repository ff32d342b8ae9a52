"""The bound-propagation methods by name: the one registry that ``exactbounds bounds``, the audit
and the public API (:mod:`exactbounds.api`) use.

``METHODS[name]`` is a :class:`Method`; ``method.run(graph, input_set, ctx, *,
intermediate=False, progress=None, lower_slope="adaptive", intersect_ibp=False)`` returns a
``BoundsResult``; CROWN, CROWN-IBP and affine also take ``relaxation`` (a profile name or a
``Profile``, see :mod:`~exactbounds.algorithms.profiles`). IBP relaxes nothing and ignores these
options.
``default_mode`` is the arithmetic a method runs in unless told otherwise: ``exact`` for IBP,
``dyadic`` (64 bits) for CROWN and forward affine, whose exact runs carry every earlier
denominator forward. Adding a method is one driver plus one line in :data:`METHODS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError
from ..numbers import make_context
from .affine import affine
from .crown import crown
from .ibp import ibp_result
from .profiles import Profile, make_profile

if TYPE_CHECKING:
    from ..graph import Graph
    from ..numbers.contexts import Context
    from .profiles import Profile
    from .result import BoundsResult


@dataclass(frozen=True)
class Method:
    """A method: its ``name``, its ``run`` function and its ``default_mode``."""

    name: str
    run: Callable
    default_mode: str


def _ibp(
    graph: Graph,
    input_set: Any,
    ctx: Context,
    *,
    intermediate: bool = False,
    progress: Any = None,
    **_relaxation: Any,
) -> BoundsResult:
    return ibp_result(graph, input_set, ctx, intermediate, progress)


def _relaxed_method(fn: Callable[..., BoundsResult]) -> Callable[..., BoundsResult]:
    """The registry's call of a relaxation-based driver (``crown`` or ``affine``)."""

    def run(
        graph: Graph,
        input_set: Any,
        ctx: Context,
        *,
        intermediate: bool = False,
        progress: Any = None,
        lower_slope: str = "adaptive",
        intersect_ibp: bool = False,
        relaxation: str | Profile = "exactbounds",
    ) -> BoundsResult:
        return fn(
            graph,
            input_set,
            ctx,
            lower_slope=lower_slope,
            intersect_ibp=intersect_ibp,
            intermediate=intermediate,
            progress=progress,
            relaxation=relaxation,
        )

    return run


_crown = _relaxed_method(crown)
_affine = _relaxed_method(affine)


def _crown_ibp(
    graph: Graph,
    input_set: Any,
    ctx: Context,
    *,
    lower_slope: str = "adaptive",
    intersect_ibp: bool = False,
    relaxation: str | Profile = "exactbounds",
    **opts: Any,
) -> BoundsResult:
    """CROWN-IBP: IBP intermediate bounds, one CROWN pass for the output (the profile's
    ``intermediate="ibp"``; a ``Profile`` given is used as it is)."""
    if not isinstance(relaxation, Profile):
        relaxation = make_profile(
            relaxation, lower_slope=lower_slope, intersect_ibp=intersect_ibp, intermediate="ibp"
        )
    return _crown(
        graph,
        input_set,
        ctx,
        lower_slope=lower_slope,
        intersect_ibp=intersect_ibp,
        relaxation=relaxation,
        **opts,
    )


METHODS = {
    m.name: m
    for m in (
        Method("ibp", _ibp, "exact"),
        Method("crown", _crown, "dyadic"),
        Method("crown-ibp", _crown_ibp, "dyadic"),
        Method("affine", _affine, "dyadic"),
    )
}


def get_method(name: str) -> Method:
    """The :class:`Method` called ``name``; ``InvalidValueError`` naming the known ones."""
    m = METHODS.get(name)
    if m is None:
        raise InvalidValueError("method", name, f"expected one of {', '.join(METHODS)}")
    return m


def method_context(
    name: str, mode: str | None = None, bits: int | None = None, prec: int = 113
) -> Context:
    """The number context of a run of method ``name``: ``mode`` (default: the method's
    ``default_mode``), ``bits`` and ``prec`` (``None``: the mode's default, see
    :mod:`exactbounds.numbers.registry`)."""
    return make_context(mode or get_method(name).default_mode, bits=bits, prec=prec)


def run_method(
    name: str, graph: Graph, input_set: Any, ctx: Context | None = None, **opts: Any
) -> BoundsResult:
    """The ``BoundsResult`` of method ``name`` on ``graph`` over ``input_set`` in ``ctx``
    (default: :func:`method_context`); ``opts`` as :class:`Method` ``run`` takes them."""
    m = get_method(name)
    return m.run(graph, input_set, ctx if ctx is not None else method_context(name), **opts)


__all__ = ["METHODS", "Method", "get_method", "method_context", "run_method"]
