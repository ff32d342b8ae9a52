"""Result JSON: exact strings plus float64 ends rounded outward."""
from ..numbers import ENCLOSURE, EXACT, f64_down, f64_up, rational_str


def box_json(box, ctx):
    """``{"lo", "hi", "lo_f64", "hi_f64", "status"}`` for a box of ``ctx`` elements: ``lo``/``hi``
    are exact strings of the outer ends, the f64 ends are rounded outward, and ``status`` is
    ``"exact"`` when every entry is exact, else ``"enclosure"``."""
    lo, hi = box.outer(ctx)
    exact = all(ctx.status(v) == EXACT for v in box.lo + box.hi)
    return {"lo": [rational_str(v) for v in lo], "hi": [rational_str(v) for v in hi],
            "lo_f64": [f64_down(v) for v in lo], "hi_f64": [f64_up(v) for v in hi],
            "status": EXACT if exact else ENCLOSURE}
