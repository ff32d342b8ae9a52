"""The audit's runs of a method: the method's bounds as exact values, and the coefficient rows
whose minimising vertices are witness candidates.

An :class:`AuditRuns` holds the runs of one audit (one ``BoundsResult`` per method, context and
``intermediate`` flag), so that the bounds, the candidate rows and the property check share a
run; nothing is kept between audits. The methods come from the one registry,
:mod:`exactbounds.algorithms.methods`; the input sets from :mod:`exactbounds.inputsets`.
"""

import random

from flint import fmpq

from ..algorithms import methods as registry
from ..algorithms.ibp import run_graph
from ..algorithms.profiles import make_profile
from ..core import AffineVec, Box
from ..errors import ExactBoundsError, UnsupportedOperatorError
from ..inputsets import bounding_box
from ..numbers import RationalContext, interval

AUDITED = ("ibp", "crown", "crown-ibp", "affine")
"""Methods the audit can re-run exactly (``crown-ibp``: IBP intermediate bounds, a CROWN pass
for the output; ``affine``: forward affine, auto_LiRPA's ``Forward``)."""
LINEAR = ("crown", "crown-ibp", "affine")
"""Methods whose result carries final linear bounds over the input."""


def exact_box(box, ctx):
    """The box with every entry as an exact ``fmpq`` or ``RInterval`` (``ctx.lower``/``upper``)."""
    return Box(
        [interval(ctx.lower(a), ctx.upper(a)) for a in box.lo],
        [interval(ctx.lower(b), ctx.upper(b)) for b in box.hi],
        box.shape,
    )


def method_context(method, mode=None, bits=None, prec=113):
    """The number context of the reference run: IBP in exact rationals (``bits`` = square-root
    enclosure bits, default 128); CROWN in ``mode`` (default ``dyadic`` with ``bits`` = 64, or
    ``exact`` / ``interval``), as ``exactbounds bounds`` runs it."""
    if method not in AUDITED:
        raise UnsupportedOperatorError(
            f"--method {method}: not available (supported: {', '.join(AUDITED)})"
        )
    if method == "ibp" and mode not in (None, "exact"):
        raise UnsupportedOperatorError(
            f"--method ibp --mode {mode}: IBP is audited in exact rationals (--mode exact)"
        )
    return registry.method_context(method, mode, bits, prec)


class AuditRuns:
    """The method runs of one audit of ``graph`` over ``input_set``, with the linear methods'
    relaxation options ``lower_slope``, ``intersect_ibp``, the profile ``relaxation`` and
    replayed ReLU lower ``slopes`` (``{node: [slope]}``). Each run is made once
    (:meth:`result`)."""

    def __init__(
        self,
        graph,
        input_set,
        lower_slope="adaptive",
        intersect_ibp=False,
        relaxation="exactbounds",
        slopes=None,
    ):
        self.graph, self.input_set = graph, input_set
        self.lower_slope, self.intersect_ibp = lower_slope, intersect_ibp
        self.relaxation, self.slopes = relaxation, slopes
        self._results = {}

    def profile(self, method):
        """The relaxation profile of a linear ``method`` (CROWN-IBP: IBP intermediate bounds)."""
        return make_profile(
            self.relaxation,
            self.slopes,
            lower_slope=self.lower_slope,
            intersect_ibp=self.intersect_ibp,
            intermediate="ibp" if method == "crown-ibp" else "crown",
        )

    def result(self, method, ctx, intermediate=False):
        """The ``BoundsResult`` of ``method`` in ``ctx``, run on the first call only."""
        key = (method, repr(ctx), intermediate)
        if key not in self._results:
            extra = {"relaxation": self.profile(method)} if method in LINEAR else {}
            self._results[key] = registry.run_method(
                method,
                self.graph,
                self.input_set,
                ctx,
                intermediate=intermediate,
                lower_slope=self.lower_slope,
                intersect_ibp=self.intersect_ibp,
                **extra,
            )
        return self._results[key]

    def exact_bounds(self, method, bits=None, intermediate=False, mode=None, prec=113):
        """The method's output ``Box`` in :func:`method_context`, every entry an exact ``fmpq``
        or an ``RInterval`` with exact ends; with ``intermediate=True`` the dict
        ``{node name: Box}`` (IBP: every node and the input box; CROWN: the nodes it bounds,
        i.e. every pre-activation node and the output)."""
        ctx = method_context(method, mode, bits, prec)
        res = self.result(method, ctx, intermediate)
        if not intermediate:
            return exact_box(res.output, ctx)
        nodes = res.nodes
        if method == "ibp":
            nodes = {self.graph.INPUT: bounding_box(self.input_set).to_ctx(ctx), **nodes}
        return {k: exact_box(b, ctx) for k, b in nodes.items()}

    def linear_rows(self, method, bits=None, mode=None, prec=113):
        """Coefficient rows whose minimising / maximising vertices are candidates:
        ``{node: [(source, lA, uA)]}``, entries exact (``fmpq`` or ``RInterval``). ``corner``:
        the method's own linear bound, i.e. the exact affine map of each node when the graph
        is affine (IBP attains its bound there), or CROWN's final linear bound when auditing
        CROWN; ``crown_vertex``: CROWN's final linear bound on the output (dyadic, 64 bits,
        unless the audited method is CROWN). Used only to pick candidates, so a method that
        cannot bound this graph just leaves its source out."""
        out = {}
        for node, (A, _) in affine_forms(self.graph).items():
            out.setdefault(node, []).append(("corner", A, A))
        own = method in LINEAR
        try:
            ctx = method_context("crown", mode if own else None, bits if own else None, prec)
            res = self.result(method if own else "crown", ctx)
        except (ExactBoundsError, ArithmeticError):
            return out
        rows = [
            [[interval(ctx.lower(v), ctx.upper(v)) for v in r] for r in A] for A in (res.lA, res.uA)
        ]
        out.setdefault(self.graph.output, []).append(("corner" if own else "crown_vertex", *rows))
        return out


def exact_method_bounds(
    graph,
    input_set,
    method,
    bits=None,
    intermediate=False,
    mode=None,
    prec=113,
    lower_slope="adaptive",
    intersect_ibp=False,
    relaxation="exactbounds",
    slopes=None,
):
    """One run of :meth:`AuditRuns.exact_bounds` (a fresh :class:`AuditRuns`)."""
    return AuditRuns(graph, input_set, lower_slope, intersect_ibp, relaxation, slopes).exact_bounds(
        method, bits, intermediate, mode, prec
    )


AFFINE_COST_LIMIT = 4_000_000


def affine_forms(graph, bits=128):
    """``{node: (A, A)}``: the exact affine map ``x -> A·x + c`` of every node, when the whole
    graph is affine (every op has ``aff`` and is not a nonlinearity) and small enough."""
    n = graph.input_dim
    cost = sum(getattr(nd.op, "in_dim", n) * getattr(nd.op, "out_dim", n) * n for nd in graph)
    if cost > AFFINE_COST_LIMIT:
        return {}
    if any(_nonlinear(nd.op) or not hasattr(nd.op, "aff") for nd in graph):
        return {}
    ctx = RationalContext(bits)
    ident = AffineVec([[fmpq(int(i == j)) for j in range(n)] for i in range(n)], [fmpq(0)] * n)
    try:
        forms = run_graph(graph, ident, "aff", ctx, keep=True)
    except (ExactBoundsError, ArithmeticError):  # a heuristic only: no corner candidates
        return {}
    return {k: (f.A, f.A) for k, f in forms.items() if k != graph.INPUT}


NONLINEAR = {"relu", "sigmoid", "tanh", "softplus", "gelu", "maxpool"}


def _nonlinear(op):
    return getattr(op, "kind", "") in NONLINEAR or op.needs_bounds


def make_rng(seed):
    return random.Random(seed)
