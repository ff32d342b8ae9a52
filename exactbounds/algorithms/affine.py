"""Forward affine propagation (forward linear relaxation) over a graph.

Every node carries two affine forms over the network input, ``L·x + l <= node(x) <= U·x + u``
for all ``x`` in the input set, computed by the operator's own ``forward_step`` from its inputs'
forms (affine: ``L' = W⁺L + W⁻U``, ``l' = W⁺l + W⁻u + b``; pass-through: unchanged; relaxed: the
input's forms are concretised over the set to ``[lo, hi]``, rounded outward in the dyadic mode,
and its lines applied row by row). While no relaxation has been met ``L = U`` and only one product
is computed. Modes and statuses as in ``crown.py``; this module names no operator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..inputsets import concretize_mat
from .crown import _profile, _result, _Run, default_context, run_with_escalation

if TYPE_CHECKING:
    from ..graph import Graph
    from ..numbers.contexts import Context


class _Affine(_Run):
    def forms(self) -> Any:
        be, graph = self.be, self.graph
        eye = be.eye(graph.input_dim)
        zero = be.zeros(graph.input_dim, 1)
        F = {graph.INPUT: (eye, zero, eye, zero)}
        for node in graph.nodes:
            F[node.name] = node.op.forward_step(self, node, [F[i] for i in node.inputs])
            self.tick()
        return F[graph.output]


def affine(
    graph: Graph,
    input_set: Any,
    ctx: Context | None = None,
    lower_slope: str = "adaptive",
    intersect_ibp: bool = False,
    intermediate: bool = False,
    progress: Any = None,
    relaxation: Any = "exactbounds",
) -> Any:
    """Forward affine bounds of ``graph`` over ``input_set``; returns a ``BoundsResult`` (see
    ``crown``). ``ctx`` defaults to ``DyadicContext(64)``."""
    profile = _profile(relaxation, lower_slope, intersect_ibp)
    ctx = ctx if ctx is not None else default_context("dyadic")

    def go(c: Any) -> Any:
        run = _Affine(graph, input_set, c, profile, progress)
        with run.be.precision():
            L, l, U, u = run.forms()
            be = run.be
            lo = be.entries(concretize_mat(input_set, be, L, l, False, c))
            hi = be.entries(concretize_mat(input_set, be, U, u, True, c))
            lo, hi = run.finish_bounds(graph.output, lo, hi, True)
            out = run.box(lo, hi, graph.output_shape)
            return _result("affine", run, graph, out, (L, l, U, u), intermediate)

    return run_with_escalation(go, ctx)
