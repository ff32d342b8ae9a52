"""Interval bound propagation (IBP) and exact evaluation over a graph.

``ibp(graph, input_set, ctx)`` accepts a Box or an LpBall (its bounding box ``center ± r``,
which is the exact IBP input for every p-norm ball). ``ibp_result`` wraps it in a
:class:`~exactbounds.algorithms.crown.BoundsResult`.

In a context whose backend is ``fast`` the boxes travel between nodes as float vectors
(:class:`~exactbounds.linalg.fast_ibp.FBox`: an outward float interval around each exact end)
through each operator's ``ibp_fast`` verb; an operator without it gets a box of context
elements (``ibp``) and its result is converted back. Elements are made only at the end. The
float box of an input set is made once per set (:func:`input_fbox`; sets are not changed
once made).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..core import Box
from ..inputsets import bounding_box
from ..linalg.fast_ibp import fbox_from_box, fbox_to_lists
from ..numbers import DEFAULT_CONTEXT, ENCLOSURE, EXACT
from .result import BoundsResult

if TYPE_CHECKING:
    from ..graph import Graph
    from ..numbers.contexts import Context


def run_graph(
    graph: Graph,
    value: Any,
    verb: str,
    ctx: Context = DEFAULT_CONTEXT,
    keep: bool = False,
    progress: Any = None,
) -> Any:
    """Feed ``value`` through every node's ``verb`` in topological order.

    Returns the output node's value, or with ``keep=True`` the dict of every node's value."""
    vals = {graph.INPUT: value}
    for node in graph:
        vals[node.name] = getattr(node.op, verb)(ctx, *(vals[i] for i in node.inputs))
        if progress is not None:
            progress.update(1)
    return vals if keep else vals[graph.output]


def ibp(
    graph: Graph,
    box: Box,
    ctx: Context = DEFAULT_CONTEXT,
    intermediate: bool = False,
    progress: Any = None,
    rounded: bool = True,
) -> Any:
    """IBP: each node's box from its inputs' boxes (``op.ibp``). ``box`` may be any input set.
    With ``intermediate=True`` returns ``{node name: Box}`` including the input. In a context
    that rounds bounds (dyadic) every box but the output's is rounded outward first
    (:func:`_ibp_rounded`); ``rounded=False`` keeps the exact IBP boxes instead."""
    if ctx.backend_kind == "fast":
        return _ibp_fast(graph, box, ctx, intermediate, progress)
    if ctx.rounds_bounds and rounded:
        return _ibp_rounded(graph, bounding_box(box).to_ctx(ctx), ctx, intermediate, progress)
    return run_graph(
        graph, bounding_box(box).to_ctx(ctx), "ibp", ctx, keep=intermediate, progress=progress
    )


def round_box(ctx: Context, box: Box) -> Box:
    """``box`` rounded outward to the context's bounds (``ctx.round_bound``: lower ends down,
    upper ends up, to short dyadics), as exact ends: a box containing ``box``."""
    return Box(
        [ctx.round_bound(ctx.lower(v), False) for v in box.lo],
        [ctx.round_bound(ctx.upper(v), True) for v in box.hi],
        box.shape,
    )


def _ibp_rounded(graph: Graph, box: Box, ctx: Context, intermediate: bool, progress: Any) -> Any:
    """IBP in a context that rounds bounds (dyadic): every node's box but the output's is
    rounded outward (:func:`round_box`) before the next node reads it, as CROWN rounds its
    intermediate bounds, so the numbers stay short (exact sums of rationals with unrelated
    denominators would grow without end); the output box is the exact IBP image of the
    rounded boxes before it."""
    vals = {graph.INPUT: box}
    for node in graph:
        out = node.op.ibp(ctx, *(vals[i] for i in node.inputs))
        vals[node.name] = out if node.name == graph.output else round_box(ctx, out)
        if progress is not None:
            progress.update(1)
    return vals if intermediate else vals[graph.output]


_INPUT_FBOXES: OrderedDict[int, Any] = OrderedDict()
INPUT_FBOX_CACHE = 8


def input_fbox(ctx: Context, input_set: Any) -> tuple[Any, Any]:
    """``(FBox, shape)`` of the set's bounding box (float ends outward, read-only arrays), made
    once for each of the last ``INPUT_FBOX_CACHE`` sets (held, so their ids stay unique)."""
    key = id(input_set)
    got = _INPUT_FBOXES.get(key)
    if got is not None and got[0] is input_set and got[1] == ctx.precision:
        _INPUT_FBOXES.move_to_end(key)
        return got[2], got[3]
    box = bounding_box(input_set)
    f = fbox_from_box(ctx, box)
    for a in f:
        a.flags.writeable = False
    _INPUT_FBOXES[key] = (input_set, ctx.precision, f, box.shape)
    if len(_INPUT_FBOXES) > INPUT_FBOX_CACHE:
        _INPUT_FBOXES.popitem(last=False)
    return f, box.shape


def _ibp_fast(
    graph: Graph, box: Any, ctx: Context, intermediate: bool, progress: Any, raw: bool = False
) -> Any:
    """IBP on float boxes (``op.ibp_fast``; ``op.ibp`` on context elements as the fallback)
    from the input set ``box``; ``raw``: every node's
    :class:`~exactbounds.linalg.fast_ibp.FBox` as it is."""
    f0, shape0 = input_fbox(ctx, box)
    vals = {graph.INPUT: f0}
    shapes = {graph.INPUT: shape0}
    for node in graph:
        ins = [vals[i] for i in node.inputs]
        verb = getattr(node.op, "ibp_fast", None)
        if verb is not None:
            vals[node.name] = verb(ctx, *ins)
        else:
            boxes = [_box(ctx, f, shapes[i]) for f, i in zip(ins, node.inputs)]
            vals[node.name] = fbox_from_box(ctx, node.op.ibp(ctx, *boxes))
        shapes[node.name] = node.op.out_shape
        if progress is not None:
            progress.update(1)
    if raw:
        return vals
    if not intermediate:
        return _box(ctx, vals[graph.output], shapes[graph.output])
    return {k: _box(ctx, f, shapes[k]) for k, f in vals.items()}


def _box(ctx: Context, fbox: Any, shape: Any) -> Box:
    lo, hi = fbox_to_lists(ctx, fbox)
    return Box(lo, hi, shape)


def ibp_fboxes(graph: Graph, box: Any, ctx: Context) -> dict[str, Any]:
    """IBP in the mode ``fast`` (``ctx.backend_kind == "fast"``): every node's float
    :class:`~exactbounds.linalg.fast_ibp.FBox` (no conversion to context elements)."""
    return _ibp_fast(graph, box, ctx, True, None, raw=True)


def ibp_result(
    graph: Graph,
    input_set: Any,
    ctx: Context = DEFAULT_CONTEXT,
    intermediate: bool = False,
    progress: Any = None,
) -> BoundsResult:
    """IBP as a ``BoundsResult``: status ``exact`` when every end is exact, else
    ``enclosure`` (of the exact IBP value)."""
    vals = ibp(graph, input_set, ctx, intermediate=intermediate, progress=progress)
    out = vals[graph.output] if intermediate else vals
    status = EXACT if all(ctx.status(v) == EXACT for v in out.lo + out.hi) else ENCLOSURE
    nodes = {k: v for k, v in vals.items() if k != graph.INPUT} if intermediate else {}
    return BoundsResult("ibp", ctx.mode, ctx, out, status, nodes=nodes)


def evaluate(graph: Graph, x: Any, ctx: Context = DEFAULT_CONTEXT) -> list[Any]:
    """The network's value at the point ``x`` (flattened list)."""
    return run_graph(graph, [ctx.coerce(v) for v in x], "evaluate", ctx)
