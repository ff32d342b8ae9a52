"""Interval bound propagation (IBP) over a graph."""
from ..numbers import DEFAULT_CONTEXT


def run_graph(graph, value, verb, ctx=DEFAULT_CONTEXT, keep=False):
    """Feed ``value`` through every node's ``verb`` in topological order.

    Returns the output node's value, or with ``keep=True`` the dict of every node's value."""
    vals = {graph.INPUT: value}
    for node in graph:
        vals[node.name] = getattr(node.op, verb)(ctx, *(vals[i] for i in node.inputs))
    return vals if keep else vals[graph.output]


def ibp(graph, box, ctx=DEFAULT_CONTEXT, intermediate=False):
    """IBP: each node's box from its inputs' boxes (``op.ibp``). With ``intermediate=True``
    returns ``{node name: Box}`` including the input."""
    return run_graph(graph, box.to_ctx(ctx), "ibp", ctx, keep=intermediate)


def evaluate(graph, x, ctx=DEFAULT_CONTEXT):
    """The network's value at the point ``x`` (flattened list)."""
    return run_graph(graph, [ctx.coerce(v) for v in x], "evaluate", ctx)
