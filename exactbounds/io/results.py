"""Result JSON: exact strings plus float64 ends rounded outward."""

from ..numbers import ENCLOSURE, EXACT, f64_down, f64_up, rational_str


def box_json(box, ctx, status=None):
    """``{"lo", "hi", "lo_f64", "hi_f64", "status"}`` for a box of ``ctx`` elements: ``lo``/``hi``
    are exact strings of the outer ends, the f64 ends are rounded outward, and ``status`` is
    ``"exact"`` when every entry is exact, else ``"enclosure"`` (or the given ``status``)."""
    lo, hi = box.outer(ctx)
    if status is None:
        exact = all(ctx.status(v) == EXACT for v in box.lo + box.hi)
        status = EXACT if exact else ENCLOSURE
    return {
        "lo": [rational_str(v) for v in lo],
        "hi": [rational_str(v) for v in hi],
        "lo_f64": [f64_down(v) for v in lo],
        "hi_f64": [f64_up(v) for v in hi],
        "status": status,
    }


def result_json(result, intermediate=False):
    """A ``BoundsResult`` as JSON: ``{"method", "context", "mode", "bits"/"prec", "status",
    "outputs": box_json, "nodes": {name: box_json}}`` (``nodes`` with ``intermediate``).
    ``status``: ``exact`` (the algorithm's exact value), ``enclosure`` (an interval around
    it) or ``bound`` (a sound bound on the network, not the algorithm's exact value)."""
    ctx = result.ctx
    out = {"method": result.method, **ctx.describe(), "mode": result.mode}
    out["status"] = result.status
    out["outputs"] = box_json(result.output, ctx, result.status)
    if result.notes:
        out["notes"] = list(result.notes)
    if intermediate:
        out["nodes"] = {name: box_json(b, ctx) for name, b in result.nodes.items()}
    return out


def derivatives_json(jet, ctx, curve, order, rule, source, refinement=None):
    """The ``--json`` document (also a valid claim file for ``check --method deriv``); with a
    :class:`~exactbounds.algorithms.refine.Refinement`, its ``refinement`` member."""
    d = {
        "model": source,
        "method": "taylor",
        "order": order,
        "second_derivative_rule": rule,
        "context": ctx.name,
        "mode": ctx.mode,
        "curve": curve.describe(),
        "value": box_json(jet.value, ctx),
    }
    if jet.value_status == "bound":
        d["value"]["status"] = "bound"
    for k, box in ((1, jet.d1), (2, jet.d2)):
        if k <= order:
            b = box_json(box, ctx)
            b["status"] = jet.status
            d["first_derivative" if k == 1 else "second_derivative"] = b
    if jet.notes:
        d["notes"] = jet.notes
    if refinement is not None:
        d["refinement"] = refinement_json(refinement)
    return d


DERIV_KEYS = {0: "value", 1: "first_derivative", 2: "second_derivative"}


def _gap_up(g):
    """A gap ratio (exact) rounded up to 4 decimals (``None`` stays)."""
    if g is None:
        return None
    return -(-int(g.p) * 10000 // int(g.q)) / 10000


def refinement_json(r):
    """``pieces``, ``stopped``, ``samples``, ``gap`` (per quantity and output, rounded up to 4
    decimals) and ``sampled`` (the exact inner sampled ranges) of a refinement."""
    return {
        "pieces": r.pieces,
        "stopped": r.stopped,
        "samples": r.samples,
        "gap": {DERIV_KEYS[k]: [_gap_up(g) for g in v] for k, v in sorted(r.gap.items())},
        "sampled": {
            DERIV_KEYS[k]: {
                "lo": [rational_str(a) for a in lo],
                "hi": [rational_str(b) for b in hi],
            }
            for k, (lo, hi) in sorted(r.sampled.items())
        },
    }
