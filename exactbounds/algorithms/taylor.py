"""Forward derivative propagation (Taylor mode, order 1 or 2) over a graph.

Along an input curve ``x(t) = x0 + t·v`` with ``t`` in ``[t0, t1]`` (:class:`Curve`), or for the
partial derivatives with respect to input coordinate ``i`` over a box (:meth:`Curve.wrt`), every
node carries three boxes: its value ``u``, ``u' = du/dt`` and ``u'' = d²u/dt²``, each holding the
node's values for every t (every point of the box). The input carries
``(box hull of the curve, v, 0)``. Per operator:

* affine (Linear, Conv, BatchNorm, Add/Sub, Reshape, AvgPool, ...): ``u`` by IBP,
  ``u' = J·d'``, ``u'' = J·d''`` with the operator's ``deriv`` verb (BatchNorm: ``deriv_batchnorm``
  and ``second_deriv_batchnorm``, its ``deriv2``). ``rule="seed"`` applies the seed's
  ``deriv2_batchnorm`` instead (BatchNorm's ``u''`` is the zero box), which is what a tool built
  on the seed reports; it is not sound along a curve with ``x'' ≠ 0`` through earlier layers.
* smooth activations (``derivative_range`` / ``second_derivative_range``): ``u' = f'(x)·d'``,
  ``u'' = f''(x)·d'² + f'(x)·d''``, with f', f'' enclosed outward over the value box and ``d'²``
  the range of the square (``[0, max]`` when ``d'`` contains 0);
  (in the rational context those two boxes are rounded outward to ``bits + 64``-bit dyadics);
* ReLU: order 1 only, and only where every pre-activation has a decided sign on its whole
  value box (then ReLU is the identity or 0 there); order 2 is refused.

Contexts: ``RationalContext`` (exact rationals; enclosures from activations and BatchNorm square
roots) and ``IntervalContext`` (mpmath iv). Each box has a status: ``exact``/``enclosure`` while
only exact data and enclosures of the exact algorithm are involved, ``bound`` once an
activation's outward enclosure of f'/f'' entered, or (rational context) once an enclosure was
replaced by its outer rational ends so that the next affine operator runs on exact ``fmpq_mat``
products: then it is a sound bound on the true value, not the value of an exact algorithm.
"""
from dataclasses import dataclass, field

from flint import fmpq

from ..core import Box
from ..errors import AmbiguousBranch, InvalidValueError, ShapeError, UnsupportedOperatorError
from ..numbers import BOUND, ENCLOSURE, EXACT, IntervalContext, RationalContext, to_exact
from ..operators.activations import round_out
from ..operators.batchnorm import deriv2_batchnorm
from ..operators.relu import hull

RULES = ("chain", "seed")
_RANK = {EXACT: 0, ENCLOSURE: 1, BOUND: 2}


@dataclass
class Curve:
    """``x(t) = origin + t·direction`` for ``t`` in ``[t_lo, t_hi]`` (exact rationals).

    ``box`` (optional) replaces the hull of the segment as the value box of the input: with
    :meth:`wrt` the curve stands for every line parallel to axis ``i`` through the box, so the
    derivatives are the partial derivatives ∂/∂x_i at every point of the box."""

    origin: list
    direction: list
    t_lo: object = 0
    t_hi: object = 0
    box: Box = None
    wrt_index: int = None

    def __post_init__(self):
        self.origin = [to_exact(v, f"origin[{i}]") for i, v in enumerate(self.origin)]
        self.direction = [to_exact(v, f"direction[{i}]") for i, v in enumerate(self.direction)]
        self.t_lo, self.t_hi = to_exact(self.t_lo, "t_lo"), to_exact(self.t_hi, "t_hi")
        if len(self.origin) != len(self.direction):
            raise ShapeError(f"origin has {len(self.origin)} entries, direction has "
                             f"{len(self.direction)}")
        if self.t_lo > self.t_hi:
            raise InvalidValueError("t_range", (str(self.t_lo), str(self.t_hi)),
                                    "lower end above upper end")

    @classmethod
    def wrt(cls, box, i):
        """Partial derivatives with respect to input coordinate ``i`` over the box."""
        lo, hi = ([to_exact(v) for v in e] for e in box.outer())
        n = len(lo)
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            raise InvalidValueError("wrt", i, f"expected an input index in 0..{n - 1}")
        e = [0] * n
        e[i] = 1
        return cls(list(lo), e, 0, hi[i] - lo[i], box=box, wrt_index=i)

    @classmethod
    def through_box(cls, box, direction, origin=None):
        """The line through ``origin`` (default: the box centre) along ``direction``, for the
        t where it stays in the box (exact)."""
        lo, hi = ([to_exact(v) for v in e] for e in box.outer())
        v = [to_exact(d, f"direction[{i}]") for i, d in enumerate(direction)]
        if len(v) != len(lo):
            raise ShapeError(f"direction has {len(v)} entries, the input has {len(lo)}")
        if all(d == 0 for d in v):
            raise InvalidValueError("direction", [str(d) for d in v], "is the zero vector")
        x0 = [(a + b) / 2 for a, b in zip(lo, hi)] if origin is None else \
            [to_exact(u, f"origin[{i}]") for i, u in enumerate(origin)]
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
        if t_lo > t_hi:
            raise InvalidValueError("origin", [str(c) for c in x0],
                                    "the line along the direction misses the input box")
        return cls(x0, v, t_lo, t_hi)

    @property
    def dim(self):
        return len(self.origin)

    def point(self, t):
        """``x(t)`` at an exact t."""
        t = to_exact(t, "t")
        return [c + t * d for c, d in zip(self.origin, self.direction)]

    def value_box(self):
        """Exact box holding ``x(t)`` for every t (the given box for ``wrt``)."""
        if self.box is not None:
            return Box(*self.box.outer())
        a, b = self.point(self.t_lo), self.point(self.t_hi)
        return Box([min(p, q) for p, q in zip(a, b)], [max(p, q) for p, q in zip(a, b)])

    def describe(self):
        from ..numbers import rational_str
        if self.wrt_index is not None:
            return {"wrt": self.wrt_index}
        return {"origin": [rational_str(v) for v in self.origin],
                "direction": [rational_str(v) for v in self.direction],
                "t_range": [rational_str(self.t_lo), rational_str(self.t_hi)]}


@dataclass
class Jet:
    """Value box, first- and second-derivative boxes (``d2`` is ``None`` at order 1) of one
    node, the status of the derivative boxes and that of the value box."""

    value: Box
    d1: Box
    d2: Box = None
    status: str = EXACT
    notes: list = field(default_factory=list)
    value_status: str = EXACT


def _worse(a, b):
    return a if _RANK[a] >= _RANK[b] else b


def _box_status(ctx, box):
    return EXACT if all(ctx.status(v) == EXACT for v in box.lo + box.hi) else ENCLOSURE


def _elems(ctx, box):
    """One element of ``ctx`` per entry, containing ``[lo_i, hi_i]`` (outer ends)."""
    lo, hi = box.outer(ctx)
    return [hull(ctx, [ctx.const(a), ctx.const(b)]) for a, b in zip(lo, hi)]


def _to_box(ctx, elems, shape):
    """The box of the outer ends of ``elems``; in the rational context rounded outward to
    dyadics of ``ctx.bits + 64`` bits (the ends are bounds already; this keeps them short)."""
    lo = [ctx.lower(e) for e in elems]
    hi = [ctx.upper(e) for e in elems]
    if isinstance(ctx, RationalContext):
        ends = [round_out(a, b, ctx.bits + 64) for a, b in zip(lo, hi)]
        lo, hi = [e[0] for e in ends], [e[1] for e in ends]
    return Box([ctx.const(v) for v in lo], [ctx.const(v) for v in hi], shape)


def _square(ctx, e):
    """The range of ``d²`` for ``d`` in the element ``e`` (``[0, max]`` when it contains 0)."""
    lo, hi = ctx.lower(e), ctx.upper(e)
    if lo >= 0:
        a, b = lo * lo, hi * hi
    elif hi <= 0:
        a, b = hi * hi, lo * lo
    else:
        a, b = lo * 0, max(lo * lo, hi * hi)
    return hull(ctx, [ctx.const(a), ctx.const(b)])


def _smooth(ctx, op, x, j, order):
    """``f'(x)·d'`` and ``f''(x)·d'² + f'(x)·d''`` over the value box ``x``."""
    F1 = _elems(ctx, op.derivative_range(ctx, x))
    D1 = _elems(ctx, j.d1)
    d1 = [f * d for f, d in zip(F1, D1)]
    d2 = None
    if order >= 2:
        F2 = _elems(ctx, op.second_derivative_range(ctx, x))
        D2 = _elems(ctx, j.d2)
        d2 = _to_box(ctx, [f2 * _square(ctx, d) + f1 * dd
                           for f2, d, f1, dd in zip(F2, D1, F1, D2)], x.shape)
    return _to_box(ctx, d1, x.shape), d2


def _relu(ctx, name, x, j, order):
    if order >= 2:
        raise UnsupportedOperatorError(
            f"node {name!r} (relu): ReLU is not twice differentiable; second derivatives "
            "through ReLU are not supported (use order 1)")
    lo, hi = x.outer(ctx)
    zero = ctx.const(0)
    dlo, dhi = [], []
    for i, (a, b) in enumerate(zip(lo, hi)):
        if a >= 0:      # ReLU is the identity on the whole box
            dlo.append(j.d1.lo[i])
            dhi.append(j.d1.hi[i])
        elif b <= 0:    # ReLU is 0 on the whole box
            dlo.append(zero)
            dhi.append(zero)
        else:
            raise AmbiguousBranch(
                f"the sign of the ReLU pre-activation {name!r}[{i}] (value box [{a}, {b}]); "
                "its derivative is not defined on the whole box", x.lo[i])
    return Box(dlo, dhi, j.d1.shape)


def _outer_exact(ctx, box):
    """In the rational context, ``box`` with every enclosure replaced by its outer exact end,
    rounded outward to a ``bits + 64``-bit dyadic (so affine operators take their exact
    ``fmpq_mat`` path on short numbers: the ends of BatchNorm's square-root enclosures have
    unrelated denominators, whose sums would grow without this), and whether it changed."""
    if box is None or not isinstance(ctx, RationalContext) or all(
            isinstance(v, fmpq) for v in box.lo + box.hi):
        return box, False
    lo, hi = box.outer(ctx)
    ends = [round_out(a, b, ctx.bits + 64) for a, b in zip(lo, hi)]
    return Box([e[0] for e in ends], [e[1] for e in ends], box.shape), True


def _collapse(ctx, j):
    """The jet with exact outer ends (rational context); a collapsed box becomes a ``bound``."""
    (v, cv), (d1, c1), (d2, c2) = (_outer_exact(ctx, b) for b in (j.value, j.d1, j.d2))
    if not (cv or c1 or c2):
        return j
    return Jet(v, d1, d2, BOUND if (c1 or c2) else j.status, j.notes,
               BOUND if cv else j.value_status)


def _check_ctx(ctx):
    if not isinstance(ctx, (RationalContext, IntervalContext)):
        raise InvalidValueError("ctx", ctx, "derivative propagation runs in the rational or the "
                                "interval context")


def propagate(graph, curve, ctx=None, order=2, rule="chain", keep=False):
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
        raise ShapeError(f"the curve has {curve.dim} coordinates, the network takes "
                         f"{graph.input_dim} inputs")
    vb = curve.value_box()
    shape = graph.input_shape
    zero = ctx.const(0)
    jets = {graph.INPUT: Jet(Box(vb.lo, vb.hi, shape).to_ctx(ctx),
                             Box(curve.direction, curve.direction, shape).to_ctx(ctx),
                             Box([zero] * curve.dim, [zero] * curve.dim, shape)
                             if order >= 2 else None)}
    for node in graph:
        op = node.op
        ins = [_collapse(ctx, jets[i]) for i in node.inputs]
        kind = getattr(op, "kind", type(op).__name__)
        status = max((j.status for j in ins), key=_RANK.get)
        value = op.ibp(ctx, *(j.value for j in ins))
        vstatus = _worse(max((j.value_status for j in ins), key=_RANK.get),
                         _box_status(ctx, value))
        notes = []
        if hasattr(op, "derivative_range"):
            d1, d2 = _smooth(ctx, op, ins[0].value, ins[0], order)
            status = BOUND
        elif kind == "relu":
            d1, d2 = _relu(ctx, node.name, ins[0].value, ins[0], order), None
        elif getattr(op, "affine", False) or getattr(op, "passthrough", False):
            if not hasattr(op, "deriv"):
                raise UnsupportedOperatorError(f"node {node.name!r} ({kind}): no 'deriv' verb")
            d1 = op.deriv(ctx, *(j.d1 for j in ins))
            d2 = None
            if order >= 2:
                if rule == "seed" and kind == "batchnorm":
                    d2 = deriv2_batchnorm(op.params, ins[0].d2, ctx)
                    notes.append(f"{node.name}: seed rule deriv2_batchnorm (zero box)")
                elif hasattr(op, "deriv2"):
                    d2 = op.deriv2(ctx, *(j.d2 for j in ins))
                else:
                    d2 = op.deriv(ctx, *(j.d2 for j in ins))
        else:
            raise UnsupportedOperatorError(
                f"node {node.name!r} ({kind}): no derivative rule (supported: affine operators, "
                "sigmoid, tanh, and relu at order 1)")
        for b in (d1, d2):
            if b is not None:
                status = _worse(status, _box_status(ctx, b))
        notes = list(dict.fromkeys([n for j in ins for n in j.notes] + notes))
        jets[node.name] = Jet(value, d1, d2, status, notes, vstatus)
    return jets if keep else jets[graph.output]


__all__ = ["Curve", "Jet", "propagate", "RULES"]
