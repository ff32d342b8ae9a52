"""ReLU, ``y = max(x, 0)`` elementwise, with its CROWN relaxation.

``relax(ctx, lo, hi, lower_slope="adaptive")`` returns ``(ls, lb, us, ub)`` with
``ls·x + lb <= relu(x) <= us·x + ub`` on ``[lo, hi]``, per neuron:

* stable active (``lo >= 0``): ``x <= relu(x) <= x``; stable inactive (``hi <= 0``): zero lines;
* unstable (``lo < 0 < hi``): upper chord ``us = hi/(hi − lo)``, ``ub = −us·lo``; lower
  ``relu(x) >= α·x`` with ``α`` = 1 if ``hi > −lo`` else 0 (``adaptive``, CROWN's default), or
  always 0 (``zero``) or 1 (``one``).

Contexts: exact in ``exact``. In ``dyadic`` the chord slope is rounded up to a ``bits``-bit
dyadic ``s`` and the intercept recomputed as ``max(−s·lo, hi − s·hi)`` (exact), so the line still
lies above ReLU at both ends, hence on ``[lo, hi]`` (ReLU is convex). In ``interval`` a branch the
enclosures cannot decide (stable? which ``α``?) takes the hull of the coefficients of every
possible branch, which encloses the exact algorithm's line whichever branch is the true one.
"""

import numpy as np

from ..core import Box
from ..errors import AmbiguousBranch, InvalidValueError, UnsupportedOperatorError
from ..linalg.fast import FVec, down, up
from ..linalg.fast_ibp import relu_fbox
from .base import Relaxed, as_shape
from .jets import JetStep
from .registry import register

LOWER_SLOPES = ("adaptive", "zero", "one")


def possible_signs(ctx, x):
    """The set of signs the exact value enclosed by ``x`` may have."""
    try:
        return {ctx.sign(x)}
    except AmbiguousBranch:
        lo, hi = ctx.lower(x), ctx.upper(x)
        return {s for s, ok in ((-1, lo < 0), (0, lo <= 0 <= hi), (1, hi > 0)) if ok}


def hull(ctx, vals):
    """The smallest element of ``ctx`` containing every element of ``vals``."""
    return ctx.hull(vals)


def relu_value(ctx, x):
    """``max(x, 0)`` of one element; an enclosure that straddles 0 gives ``[0, upper]``."""
    s = possible_signs(ctx, x)
    if s == {1} or s == {0, 1} and ctx.lower(x) == 0 and ctx.status(x) == "exact":
        return x
    if 1 not in s:
        return x * 0 if ctx.status(x) == "exact" else ctx.const(0)
    return (
        hull(ctx, [ctx.const(0), x])
        if -1 not in s
        else hull(ctx, [ctx.const(0), ctx.const(ctx.upper(x))])
    )


def _relax_one(ctx, l, u, rule):
    zero, one = ctx.const(0), ctx.const(1)
    cands = []
    sl, su = possible_signs(ctx, l), possible_signs(ctx, u)
    if -1 not in sl:  # lo >= 0: active (also when lo = hi = 0)
        return (one, zero, one, zero)
    if 1 not in su:  # hi <= 0: inactive
        return (zero, zero, zero, zero)
    if sl & {0, 1}:
        cands.append((one, zero, one, zero))
    if su & {-1, 0}:
        cands.append((zero, zero, zero, zero))
    if -1 in sl and 1 in su:
        d = u - l
        if possible_signs(ctx, d) != {1}:
            # the enclosures of lo < 0 < hi are so narrow that hi − lo may be 0: every chord
            # slope hi/(hi − lo) lies in [0, 1] and its intercept −slope·lo in [0, −lo]
            us = hull(ctx, [zero, one])
            ub = hull(ctx, [zero, ctx.const(-ctx.lower(l))])
        elif ctx.rounds_bounds:  # a short dyadic slope, rounded up; the exact intercept
            us = ctx.round_bound(u / d, True)
            ub = max(-us * l, u - us * u)
        else:
            us = u / d
            ub = -(us * l)
        if rule == "zero":
            alphas = [zero]
        elif rule == "one":
            alphas = [one]
        else:
            sig = possible_signs(ctx, u + l)
            alphas = ([one] if 1 in sig else []) + ([zero] if sig & {-1, 0} else [])
        for a in alphas:
            cands.append((a, zero, us, ub))
    return tuple(hull(ctx, [c[k] for c in cands]) for k in range(4))


def _relax_vec(l1, l2, u1, u2, rule):
    n = l1.shape[0]
    inf = np.full(n, np.inf)
    lo = [inf.copy() for _ in range(4)]
    hi = [-inf for _ in range(4)]

    def cand(mask, vals):
        """Add the candidate lines ``vals`` (each a pair of float vectors ``(min, max)``)
        where ``mask``."""
        for k, (a, b) in enumerate(vals):
            lo[k] = np.where(mask, np.minimum(lo[k], a), lo[k])
            hi[k] = np.where(mask, np.maximum(hi[k], b), hi[k])

    z, o = np.zeros(n), np.ones(n)
    active = l1 >= 0  # lo >= 0 for sure
    dead = ~active & (u2 <= 0)  # hi <= 0 for sure
    open_ = ~active & ~dead
    cand(active | open_ & (l2 >= 0), [(o, o), (z, z), (o, o), (z, z)])
    cand(dead | open_ & (u1 <= 0), [(z, z)] * 4)
    # unstable: l in [l1, min(l2, 0)], u in [max(u1, 0), u2]; us = u/(u − l) increases in u
    # and in l, ub = −us·l; both clipped to their exact ranges [0, 1] and [0, −l1]
    lh, ul = np.minimum(l2, 0.0), np.maximum(u1, 0.0)
    s_lo = np.clip(down(ul / up(ul - l1)), 0.0, 1.0)
    d_hi = down(u2 - lh)
    s_hi = np.where(d_hi > 0, np.clip(up(u2 / d_hi), 0.0, 1.0), 1.0)
    s_lo = np.where(np.isnan(s_lo), 0.0, s_lo)
    s_hi = np.where(np.isnan(s_hi), 1.0, s_hi)
    b_lo = np.maximum(down(s_lo * -lh), 0.0)
    b_hi = np.minimum(up(s_hi * -l1), -l1)
    if rule == "zero":
        a_lo = a_hi = z
    elif rule == "one":
        a_lo = a_hi = o
    else:  # 1 when u + l > 0 may hold, 0 when u + l <= 0 may hold
        may1 = up(u2 + lh) > 0
        may0 = down(ul + l1) <= 0
        a_lo, a_hi = np.where(may0, 0.0, 1.0), np.where(may1, 1.0, 0.0)
    cand(open_ & (l1 < 0) & (u2 > 0), [(a_lo, a_hi), (z, z), (s_lo, s_hi), (b_lo, b_hi)])
    bad = ~(np.isfinite(l1) & np.isfinite(u2))
    return tuple(
        FVec.from_ends(np.where(bad, -np.inf, a), np.where(bad, np.inf, b)) for a, b in zip(lo, hi)
    )


@register
class ReLU(Relaxed):
    """``ReLU(shape)``: elementwise ``max(x, 0)``."""

    kind = "relu"

    def __init__(self, shape, name="relu"):
        self.name = name
        s = as_shape(shape, name)
        self.in_shapes, self.out_shape = (s,), s

    def evaluate(self, ctx, x):
        self.check_inputs([len(x)], "x")
        return [relu_value(ctx, ctx.coerce(v)) for v in x]

    def ibp(self, ctx, box):
        """``[relu(lo), relu(hi)]`` (ReLU is monotone)."""
        self.check_inputs([box.dim], "input box")
        return Box(
            [relu_value(ctx, ctx.coerce(v)) for v in box.lo],
            [relu_value(ctx, ctx.coerce(v)) for v in box.hi],
            self.out_shape,
        )

    def ibp_fast(self, ctx, fbox):
        """The same on float boxes (exact: ``max``)."""
        return relu_fbox(fbox)

    def relax(self, ctx, lo, hi, lower_slope="adaptive", **_):
        """``(ls, lb, us, ub)`` lists, see the module docstring."""
        if lower_slope not in LOWER_SLOPES:
            raise InvalidValueError(
                "lower_slope", lower_slope, f"expected one of {', '.join(LOWER_SLOPES)}"
            )
        self.check_inputs([len(lo)], "lo")
        out = [_relax_one(ctx, ctx.coerce(l), ctx.coerce(u), lower_slope) for l, u in zip(lo, hi)]
        return tuple([o[k] for o in out] for k in range(4))

    def relax_vec(self, l1, l2, u1, u2, lower_slope="adaptive", **_):
        """:meth:`relax` vectorised for the mode ``fast``: the exact bounds ``lo ∈ [l1, l2]``,
        ``hi ∈ [u1, u2]`` (float vectors); returns ``(ls, lb, us, ub)`` as :class:`FVec` balls
        containing the exact algorithm's coefficients whichever exact bounds in those ranges are
        the true ones (the hull over every branch they leave open, as :func:`_relax_one` does
        in the interval context), each quotient and product rounded outward."""
        if lower_slope not in LOWER_SLOPES:
            raise InvalidValueError(
                "lower_slope", lower_slope, f"expected one of {', '.join(LOWER_SLOPES)}"
            )
        with np.errstate(all="ignore"):
            return _relax_vec(l1, l2, u1, u2, lower_slope)

    def jet_step(self, ctx, node, jets, order, rule):
        """Order 1 only, and only where every pre-activation's sign is decided on its whole
        value box (ReLU is then the identity or 0 there)."""
        if order >= 2:
            raise UnsupportedOperatorError(
                f"node {node.name!r} (relu): ReLU is not twice differentiable; second derivatives "
                "through ReLU are not supported (use order 1)"
            )
        j = jets[0]
        lo, hi = j.value.outer(ctx)
        zero = ctx.const(0)
        dlo, dhi = [], []
        for i, (a, b) in enumerate(zip(lo, hi)):
            if a >= 0:  # ReLU is the identity on the whole box
                dlo.append(j.d1.lo[i])
                dhi.append(j.d1.hi[i])
            elif b <= 0:  # ReLU is 0 on the whole box
                dlo.append(zero)
                dhi.append(zero)
            else:
                raise AmbiguousBranch(
                    f"the sign of the ReLU pre-activation {node.name!r}[{i}]"
                    f" (value box [{a}, {b}]); its derivative is not defined on the whole box",
                    j.value.lo[i],
                )
        return JetStep(Box(dlo, dhi, j.d1.shape))
