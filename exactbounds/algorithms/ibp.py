"""Interval bound propagation (IBP) and exact evaluation over a graph.

``ibp(graph, input_set, ctx)`` accepts a Box or an LpBall (its bounding box ``center ± r``,
which is the exact IBP input for every p-norm ball). ``ibp_result`` wraps it in a
:class:`~exactbounds.algorithms.crown.BoundsResult`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any
from ..inputsets import bounding_box
from ..numbers import DEFAULT_CONTEXT, ENCLOSURE, EXACT
from .result import BoundsResult

if TYPE_CHECKING:
    from ..core import Box
    from ..graph import Graph
    from ..numbers.contexts import Context


def run_graph(graph: Graph, value: Any, verb: str, ctx: Context = DEFAULT_CONTEXT, keep: bool = False, progress: Any = None) -> Any:
    """Feed ``value`` through every node's ``verb`` in topological order.

    Returns the output node's value, or with ``keep=True`` the dict of every node's value."""
    vals = {graph.INPUT: value}
    for node in graph:
        vals[node.name] = getattr(node.op, verb)(ctx, *(vals[i] for i in node.inputs))
        if progress is not None:
            progress.update(1)
    return vals if keep else vals[graph.output]


def ibp(graph: Graph, box: Box, ctx: Context = DEFAULT_CONTEXT, intermediate: bool = False, progress: Any = None) -> Any:
    """IBP: each node's box from its inputs' boxes (``op.ibp``). ``box`` may be any input set.
    With ``intermediate=True`` returns ``{node name: Box}`` including the input."""
    return run_graph(graph, bounding_box(box).to_ctx(ctx), "ibp", ctx, keep=intermediate,
                     progress=progress)


def ibp_result(graph: Graph, input_set: Any, ctx: Context = DEFAULT_CONTEXT, intermediate: bool = False, progress: Any = None) -> BoundsResult:
    """IBP as a ``BoundsResult``: status ``exact`` when every end is exact, else
    ``enclosure`` (of the exact IBP value)."""
    vals = ibp(graph, input_set, ctx, intermediate=True, progress=progress)
    out = vals[graph.output]
    status = EXACT if all(ctx.status(v) == EXACT for v in out.lo + out.hi) else ENCLOSURE
    nodes = {k: v for k, v in vals.items() if k != graph.INPUT} if intermediate else {}
    return BoundsResult("ibp", ctx.mode, ctx, out, status, nodes=nodes)


def evaluate(graph: Graph, x: Any, ctx: Context = DEFAULT_CONTEXT) -> list[Any]:
    """The network's value at the point ``x`` (flattened list)."""
    return run_graph(graph, [ctx.coerce(v) for v in x], "evaluate", ctx)
