"""Forward derivative propagation (Taylor mode, order 1 or 2) over a graph.

Along an input curve ``x(t) = x0 + t·v`` with ``t`` in ``[t0, t1]`` (:class:`Curve`), or for the
partial derivatives with respect to input coordinate ``i`` over a box (:meth:`Curve.wrt`), every
node carries three boxes: its value ``u``, ``u' = du/dt`` and ``u'' = d²u/dt²``, each holding the
node's values for every t (every point of the box). The input carries
``(box hull of the curve, v, 0)``. Per operator:

``u`` by IBP, and the derivatives by each operator's own ``jet_step``:

* affine (Linear, Conv, BatchNorm, Add/Sub, Reshape, AvgPool, ...): ``u' = J·d'``,
  ``u'' = J·d''`` (BatchNorm: ``deriv_batchnorm`` and ``second_deriv_batchnorm``).
  ``rule="seed"`` makes BatchNorm apply the seed's ``deriv2_batchnorm`` instead (the zero box),
  which is what a tool built on the seed reports; it is not sound along a curve with
  ``x'' ≠ 0`` through earlier layers.
* smooth activations: ``u' = f'(x)·d'``, ``u'' = f''(x)·d'² + f'(x)·d''``, with f', f''
  enclosed outward over the value box and ``d'²`` the range of the square (``[0, max]`` when
  ``d'`` contains 0); the boxes are kept as the context keeps derivative ends
  (``ctx.jet_round``: ``bits + 64``-bit outward dyadics in the rational context);
* ReLU: order 1 only, and only where every pre-activation has a decided sign on its whole
  value box (then ReLU is the identity or 0 there); order 2 is refused.

Contexts: ``RationalContext`` (exact rationals; enclosures from activations and BatchNorm square
roots) and ``IntervalContext`` (mpmath iv). Each box has a status: ``exact``/``enclosure`` while
only exact data and enclosures of the exact algorithm are involved, ``bound`` once an
activation's outward enclosure of f'/f'' entered, or (rational context) once an enclosure was
replaced by its outer rational ends so that the next affine operator runs on exact ``fmpq_mat``
products: then it is a sound bound on the true value, not the value of an exact algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from ..core import Box
from ..errors import InvalidValueError, ShapeError
from ..numbers import BOUND, ENCLOSURE, EXACT, RationalContext, rational_str, to_exact

if TYPE_CHECKING:
    from ..graph import Graph
    from ..numbers.contexts import Context

RULES = ("chain", "seed")
_RANK: Any = {EXACT: 0, ENCLOSURE: 1, BOUND: 2}


@dataclass
class Curve:
    """``x(t) = origin + t·direction`` for ``t`` in ``[t_lo, t_hi]`` (exact rationals).

    ``box`` (optional) replaces the hull of the segment as the value box of the input: with
    :meth:`wrt` the curve stands for every line parallel to axis ``i`` through the box, so the
    derivatives are the partial derivatives ∂/∂x_i at every point of the box."""

    origin: list
    direction: list
    t_lo: Any = 0
    t_hi: Any = 0
    box: Box | None = None
    wrt_index: int | None = None

    def __post_init__(self) -> None:
        self.origin = [to_exact(v, f"origin[{i}]") for i, v in enumerate(self.origin)]
        self.direction = [to_exact(v, f"direction[{i}]") for i, v in enumerate(self.direction)]
        self.t_lo, self.t_hi = to_exact(self.t_lo, "t_lo"), to_exact(self.t_hi, "t_hi")
        if len(self.origin) != len(self.direction):
            raise ShapeError(
                f"origin has {len(self.origin)} entries, direction has {len(self.direction)}"
            )
        if self.t_lo > self.t_hi:
            raise InvalidValueError(
                "t_range", (str(self.t_lo), str(self.t_hi)), "lower end above upper end"
            )

    @classmethod
    def wrt(cls, box: Box, i: int) -> Self:
        """Partial derivatives with respect to input coordinate ``i`` over the box."""
        lo, hi = ([to_exact(v) for v in e] for e in box.outer())
        n = len(lo)
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            raise InvalidValueError("wrt", i, f"expected an input index in 0..{n - 1}")
        e = [0] * n
        e[i] = 1
        return cls(list(lo), e, 0, hi[i] - lo[i], box=box, wrt_index=i)

    @classmethod
    def through_box(
        cls, box: Box, direction: Sequence[Any], origin: Sequence[Any] | None = None
    ) -> Self:
        """The line through ``origin`` (default: the box centre) along ``direction``, for the
        t where it stays in the box (exact)."""
        lo, hi = ([to_exact(v) for v in e] for e in box.outer())
        v = [to_exact(d, f"direction[{i}]") for i, d in enumerate(direction)]
        if len(v) != len(lo):
            raise ShapeError(f"direction has {len(v)} entries, the input has {len(lo)}")
        if all(d == 0 for d in v):
            raise InvalidValueError("direction", [str(d) for d in v], "is the zero vector")
        x0 = (
            [(a + b) / 2 for a, b in zip(lo, hi)]
            if origin is None
            else [to_exact(u, f"origin[{i}]") for i, u in enumerate(origin)]
        )
        if len(x0) != len(lo):
            raise ShapeError(f"origin has {len(x0)} entries, the input has {len(lo)}")
        t_lo = t_hi = None
        for i, (a, b, c, d) in enumerate(zip(lo, hi, x0, v)):
            if d == 0:
                if not a <= c <= b:
                    raise InvalidValueError(f"origin[{i}]", str(c), "lies outside the input box")
                continue
            ta, tb = sorted(((a - c) / d, (b - c) / d))
            t_lo = ta if t_lo is None else max(t_lo, ta)
            t_hi = tb if t_hi is None else min(t_hi, tb)
        if t_lo > t_hi:  # type: ignore[operator]  # set: the zero direction is refused above
            raise InvalidValueError(
                "origin", [str(c) for c in x0], "the line along the direction misses the input box"
            )
        return cls(x0, v, t_lo, t_hi)

    @property
    def dim(self) -> int:
        return len(self.origin)

    def point(self, t: Any) -> list[Any]:
        """``x(t)`` at an exact t."""
        t = to_exact(t, "t")
        return [c + t * d for c, d in zip(self.origin, self.direction)]

    def value_box(self) -> Box:
        """Exact box holding ``x(t)`` for every t (the given box for ``wrt``)."""
        if self.box is not None:
            return Box(*self.box.outer())
        a, b = self.point(self.t_lo), self.point(self.t_hi)
        return Box([min(p, q) for p, q in zip(a, b)], [max(p, q) for p, q in zip(a, b)])

    def describe(self) -> dict[str, Any]:
        if self.wrt_index is not None:
            return {"wrt": self.wrt_index}
        return {
            "origin": [rational_str(v) for v in self.origin],
            "direction": [rational_str(v) for v in self.direction],
            "t_range": [rational_str(self.t_lo), rational_str(self.t_hi)],
        }


@dataclass
class Jet:
    """Value box, first- and second-derivative boxes (``d2`` is ``None`` at order 1) of one
    node, the status of the derivative boxes and that of the value box."""

    value: Box
    d1: Box
    d2: Box | None = None
    status: str = EXACT
    notes: list = field(default_factory=list)
    value_status: str = EXACT


def _worse(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


def _box_status(ctx: Context, box: Box) -> str:
    return EXACT if all(ctx.status(v) == EXACT for v in box.lo + box.hi) else ENCLOSURE


def _outer_exact(ctx: Context, box: Box | None) -> tuple[Any, bool]:
    """In a context whose elements are rationals or rational intervals
    (``ctx.keeps_exact_ends``), ``box`` with every enclosure replaced by its outer exact end,
    rounded outward as ``ctx.jet_round`` does (so affine operators take their exact matrix path
    on short numbers: the ends of BatchNorm's square-root enclosures have unrelated
    denominators, whose sums would grow without this), and whether it changed."""
    if box is None or not ctx.keeps_exact_ends or ctx.all_exact(box.lo + box.hi):
        return box, False
    lo, hi = box.outer(ctx)
    ends = [ctx.jet_round(a, b) for a, b in zip(lo, hi)]
    return Box([e[0] for e in ends], [e[1] for e in ends], box.shape), True


def _collapse(ctx: Context, j: Jet) -> Jet:
    """The jet with exact outer ends (rational context); a collapsed box becomes a ``bound``."""
    (v, cv), (d1, c1), (d2, c2) = (_outer_exact(ctx, b) for b in (j.value, j.d1, j.d2))
    if not (cv or c1 or c2):
        return j
    return Jet(
        v, d1, d2, BOUND if (c1 or c2) else j.status, j.notes, BOUND if cv else j.value_status
    )


def _check_ctx(ctx: Context) -> None:
    if not ctx.supports_taylor:
        raise InvalidValueError(
            "ctx", ctx, "derivative propagation runs in the rational or the interval context"
        )


def propagate(
    graph: Graph,
    curve: Curve,
    ctx: Context | None = None,
    order: int = 2,
    rule: str = "chain",
    keep: bool = False,
) -> Any:
    """Taylor-mode propagation of ``curve`` through ``graph``.

    Returns the output node's :class:`Jet`, or with ``keep=True`` the dict of every node's jet
    (including ``graph.INPUT``)."""
    ctx = ctx if ctx is not None else RationalContext()
    _check_ctx(ctx)
    if order not in (1, 2):
        raise InvalidValueError("order", order, "expected 1 or 2")
    if rule not in RULES:
        raise InvalidValueError("second_derivative_rule", rule, f"expected one of {RULES}")
    if curve.dim != graph.input_dim:
        raise ShapeError(
            f"the curve has {curve.dim} coordinates, the network takes {graph.input_dim} inputs"
        )
    vb = curve.value_box()
    shape = graph.input_shape
    zero = ctx.const(0)
    jets = {
        graph.INPUT: Jet(
            Box(vb.lo, vb.hi, shape).to_ctx(ctx),
            Box(curve.direction, curve.direction, shape).to_ctx(ctx),
            Box([zero] * curve.dim, [zero] * curve.dim, shape) if order >= 2 else None,
        )
    }
    for node in graph:
        op = node.op
        ins = [_collapse(ctx, jets[i]) for i in node.inputs]
        status = max((j.status for j in ins), key=_RANK.get)
        value = op.ibp(ctx, *(j.value for j in ins))
        vstatus = _worse(max((j.value_status for j in ins), key=_RANK.get), _box_status(ctx, value))
        step = op.jet_step(ctx, node, ins, order, rule)
        d1, d2 = step.d1, step.d2
        if step.rounded:
            status = BOUND
        for b in (d1, d2):
            if b is not None:
                status = _worse(status, _box_status(ctx, b))
        notes = list(dict.fromkeys([n for j in ins for n in j.notes] + step.notes))
        jets[node.name] = Jet(value, d1, d2, status, notes, vstatus)
    return jets if keep else jets[graph.output]


__all__ = ["Curve", "Jet", "propagate", "RULES"]
