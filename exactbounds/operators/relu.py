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

In ``fast`` (``relax_vec``) the lines are point floats chosen from the float balls of the bounds
and made valid on the outer interval ``[l1, u2]`` (the lower end of the lower bound's ball, the
upper end of the upper bound's): stable cases decided on those ends, ``α`` by the adaptive rule
on the midpoints, the chord's intercept rounded up so that the line lies above ReLU at both
outer ends. Hulls over undecided branches would widen the enclosure ~100× per layer; point
lines keep only the matrix products' rounding, and the result is a sound ``bound`` of the
network (no longer an enclosure of exact CROWN).
"""

import numpy as np

from ..core import Box
from ..errors import AmbiguousBranch, InvalidValueError, UnsupportedOperatorError
from ..linalg.fast import FVec, up
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


def chord_lines(lo, hi, alpha=0.0, alpha_lo=None):
    """Point-float upper lines ``(s, b)`` of ``f(x) = max(x, α·x)`` (``0 <= α <= 1``, convex)
    over float intervals ``[lo, hi]`` with ``lo < 0 < hi``: ``s`` ≈ the chord slope
    ``(hi − α·lo)/(hi − lo)`` (any float serves; clipped to ``[α, 1]``) and the intercept
    ``b >= max(f(lo) − s·lo, f(hi) − s·hi)``, every step rounded up, so the line lies above
    ``f`` at both ends, hence on ``[lo, hi]`` (a convex function lies below its chords).
    ``alpha_lo``: a float ``<= α`` (α itself when α is a float)."""
    a_lo = alpha if alpha_lo is None else alpha_lo
    s = np.clip((hi - alpha * lo) / (hi - lo), alpha, 1.0)
    s = np.where(np.isfinite(s), s, 1.0)
    # f(lo) − s·lo = (s − α)·(−lo) and f(hi) − s·hi = (1 − s)·hi, both >= 0
    b1 = up(up(s - a_lo) * up(-lo))
    b2 = up(up(1.0 - s) * hi)
    return s, np.maximum(np.maximum(b1, b2), 0.0)


def adaptive_alpha(l1, l2, u1, u2, rule):
    """ReLU's lower slope per neuron, a float 0 or 1 (both are lower lines of ReLU anywhere):
    ``adaptive`` 1 iff ``u > −l`` decided on the balls' midpoints; ``zero``/``one``."""
    n = l1.shape[0]
    if rule == "zero":
        return np.zeros(n)
    if rule == "one":
        return np.ones(n)
    lm, um = l1 * 0.5 + l2 * 0.5, u1 * 0.5 + u2 * 0.5
    return np.where(um + lm > 0, 1.0, 0.0)


def _relax_vec(l1, l2, u1, u2, rule):
    """Point-float lines valid on the outer interval ``[l1, u2]`` (see :meth:`ReLU.relax_vec`)."""
    n = l1.shape[0]
    active = l1 >= 0
    dead = ~active & (u2 <= 0)
    open_ = ~(active | dead)
    s, b = chord_lines(np.where(open_, l1, -1.0), np.where(open_, u2, 1.0))
    alpha = adaptive_alpha(l1, l2, u1, u2, rule)
    z = np.zeros(n)
    ls = np.where(active, 1.0, np.where(dead, 0.0, alpha))
    us = np.where(active, 1.0, np.where(dead, 0.0, s))
    ub = np.where(open_, b, 0.0)
    bad = ~(np.isfinite(l1) & np.isfinite(u2))
    inf = np.where(bad, np.inf, 0.0)
    return tuple(FVec(np.where(bad, 0.0, v), inf) for v in (ls, z, us, ub))


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
        """The lines of the mode ``fast``, from float vectors with the exact bounds
        ``lo ∈ [l1, l2]``, ``hi ∈ [u1, u2]``: point floats (radius 0) valid on the outer
        interval ``[l1, u2]``, which contains every value the neuron takes. Stable cases are
        decided on the outer ends (``l1 >= 0``: identity; ``u2 <= 0``: zero); otherwise the
        lower line ``α·x`` (α ∈ {0, 1}, :func:`adaptive_alpha`) and the chord of
        :func:`chord_lines` over ``[l1, u2]``. Not the exact algorithm's lines: a CROWN result
        through them is a sound ``bound``. ``(ls, lb, us, ub)`` as :class:`FVec`; a non-finite
        end gives the useless ball ``0 ± inf`` (the run then escalates)."""
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
