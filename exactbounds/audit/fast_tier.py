"""The audit's fast tier: decide claimed output sides with the mode ``fast`` before any exact work.

The method runs once in float64 balls (:mod:`exactbounds.numbers.fast`; an overflow escalates to
the interval mode). Its output is a sound bound of the network: for IBP an enclosure of the exact
IBP bound, for CROWN, CROWN-IBP and affine a sound bound with float lines (``status: bound``).
A lower side whose claim is ``<=`` the fast lower end (an upper side: ``>=`` the fast upper end)
is ``sound`` without exact work: the claim is then a valid bound of the network, so no witness
can exist. For IBP of a piecewise-linear network this is the exact verdict (the claim contains
an enclosure of the exact bound; Sin, Sigmoid, ... have exact-mode bounds that are enclosures of
their own, which the fast one may cut);
for the linear methods the claim lies below a sound bound that is not the method's exact bound,
so a claim the exact audit would call ``inside_exact`` (tighter than exact CROWN but still valid)
may come out ``sound`` here, which the verdict's note says. Every other side is left to the exact
audit (:func:`~exactbounds.audit.bounds.audit_bounds`).
"""

import time
from collections import Counter
from contextlib import contextmanager

from ..algorithms.crown import run_with_escalation
from ..errors import BudgetExceededError
from ..numbers import interval, make_context
from .verdicts import SOUND, Verdict


def fast_output(runs, method):
    """``(BoundsResult, CPU seconds)`` of ``method`` in the mode ``fast`` (escalating to the
    interval mode on an overflow)."""
    t = time.process_time()
    res = run_with_escalation(lambda c: runs.result(method, c), make_context("fast"))
    return res, time.process_time() - t


def fast_verdicts(res, method, items, output):
    """``{(node, index, side): Verdict}`` for the claimed output sides ``items``
    (``(node, index, side, claimed, dtype)``, each claimed once) that the fast result ``res``
    decides."""
    ctx = res.ctx
    enclosure = res.status == "enclosure"
    what = (
        f"the fast {method} enclosure of the exact bound"
        if enclosure
        else f"a sound bound of the network (fast {method}, float lines on the outer "
        "intermediate bounds); the exact method bound was not computed"
    )
    out = {}
    times = Counter(it[:3] for it in items)
    for node, i, side, v, dtype in items:
        if node != output or times[(node, i, side)] > 1:
            continue  # intermediate nodes, and a side claimed twice: the exact audit
        e = (res.output.lo if side == "lo" else res.output.hi)[i]
        lo, hi = ctx.lower(e), ctx.upper(e)
        if not (v <= lo if side == "lo" else v >= hi):
            continue
        end = lo if side == "lo" else hi
        exact = interval(lo, hi) if enclosure and lo != hi else end
        vd = Verdict.decide(
            i,
            side,
            v,
            exact,
            node=None,
            method=method,
            dtype=dtype,
            note=f"fast tier: the claim contains {what}",
        )
        assert vd.verdict == SOUND
        out[(node, i, side)] = vd
    return out


def undecided_gap(res, items, decided, output):
    """The largest relative distance ``|claim − fast end| / |fast end|`` of the claimed output
    sides the fast tier left undecided (their claims lie inside its sound bound), as a float;
    ``None`` when there is none."""
    ctx, gaps = res.ctx, []
    for node, i, side, v, _ in items:
        if node != output or (node, i, side) in decided:
            continue
        e = (res.output.lo if side == "lo" else res.output.hi)[i]
        end = ctx.lower(e) if side == "lo" else ctx.upper(e)
        gaps.append(float(abs(v - end)) / max(float(abs(end)), 1e-300))
    return max(gaps) if gaps else None


@contextmanager
def explain_budget(tier, gap):
    """A budget stop during the exact audit that follows the fast tier says what the fast tier
    decided and how far inside its bound the other claims lie (one line, still exit 2)."""
    try:
        yield
    except BudgetExceededError as e:
        if tier is None:
            raise
        left = tier["sides"] - tier["decided"]
        how = f", by at most {gap:.2g} relative" if gap is not None else ""
        raise BudgetExceededError(
            f"{e} (the fast tier decided {tier['decided']} of {tier['sides']} claimed sides; "
            f"the {left} others lie inside its sound bound{how} and need the exact method "
            "bound)"
        ) from None
