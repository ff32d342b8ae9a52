"""Interval bound propagation (IBP) and exact evaluation over a graph.

``ibp(graph, input_set, ctx)`` accepts a Box or an LpBall (its bounding box ``center ± r``,
which is the exact IBP input for every p-norm ball). ``ibp_result`` wraps it in a
:class:`~exactbounds.algorithms.crown.BoundsResult`.
"""
from ..inputsets import bounding_box
from ..numbers import DEFAULT_CONTEXT, ENCLOSURE, EXACT
from .result import BoundsResult


def run_graph(graph, value, verb, ctx=DEFAULT_CONTEXT, keep=False, progress=None):
    """Feed ``value`` through every node's ``verb`` in topological order.

    Returns the output node's value, or with ``keep=True`` the dict of every node's value."""
    vals = {graph.INPUT: value}
    for node in graph:
        vals[node.name] = getattr(node.op, verb)(ctx, *(vals[i] for i in node.inputs))
        if progress is not None:
            progress.update(1)
    return vals if keep else vals[graph.output]


def ibp(graph, box, ctx=DEFAULT_CONTEXT, intermediate=False, progress=None):
    """IBP: each node's box from its inputs' boxes (``op.ibp``). ``box`` may be any input set.
    With ``intermediate=True`` returns ``{node name: Box}`` including the input."""
    return run_graph(graph, bounding_box(box).to_ctx(ctx), "ibp", ctx, keep=intermediate,
                     progress=progress)


def ibp_result(graph, input_set, ctx=DEFAULT_CONTEXT, intermediate=False, progress=None):
    """IBP as a ``BoundsResult``: status ``exact`` when every end is exact, else
    ``enclosure`` (of the exact IBP value)."""
    vals = ibp(graph, input_set, ctx, intermediate=True, progress=progress)
    out = vals[graph.output]
    status = EXACT if all(ctx.status(v) == EXACT for v in out.lo + out.hi) else ENCLOSURE
    nodes = {k: v for k, v in vals.items() if k != graph.INPUT} if intermediate else {}
    return BoundsResult("ibp", ctx.mode, ctx, out, status, nodes=nodes)


def evaluate(graph, x, ctx=DEFAULT_CONTEXT):
    """The network's value at the point ``x`` (flattened list)."""
    return run_graph(graph, [ctx.coerce(v) for v in x], "evaluate", ctx)
