"""Centred forms of the Taylor jets over one piece: first-order Taylor models in the parameter.

Over a piece ``p = p_c + s`` with ``s`` in the box ``[-ρ, ρ]`` (the curve parameter t, or the
input coordinates for ``wrt``), every entry q of a node's value, first and second derivative is
carried as a Taylor model ``q(p) ∈ C + G·s + R``: ``C`` and ``R`` python-flint ``arb`` balls,
``G`` a row of balls (set arithmetic; every ball encloses what it stands for). The input is
``x = x_c + M·s`` exactly, ``x' = v``, ``x'' = 0``. Rules:

* affine operators: ``W·(C + G·s + R) + b`` with the exact (or enclosed, BatchNorm) ``W``, ``b``
  of ``linear_enclosure`` as ball matrices; derivatives without ``b``;
* S-shaped activations (``w = f − c``, ``A = f'(0)``): with ``f' = A − w²``, ``f'' = 2w³ − 2Aw``,
  ``f''' = (6w² − 2A)(A − w²)``, ``f'''' = (16Aw − 24w³)(A − w²)``, each ``φ = f^(k)`` is
  ``φ(x̂) + φ'(x̂)(x − x̂) + ½φ''(ξ)(x − x̂)²`` at ``x̂ = mid C``, ξ in the hull of the value
  range and ``x̂``; then ``u' = f'(x)·d'`` and ``u'' = f''(x)·d'² + f'(x)·d''`` as products of
  Taylor models (the ``s``·``s`` terms go into ``R``).

The linear parts go through the layers exactly, so the excess over the true range is
``O(|ρ|²)`` instead of the ``O(|ρ|)`` of interval propagation. Where a node's interval box
(``boxes``, e.g. from :func:`~exactbounds.algorithms.taylor.propagate`) is less than half as
wide as the model's range, the entry is replaced by that box (``C`` its midpoint, ``G = 0``):
both are sound.
:func:`jets` returns exact rational ends ``(lo, hi)`` per order, or ``None`` when an operator has
no rule here (the caller keeps the interval result).
"""

import flint
from flint import arb, arb_mat

from ..linalg import DyMat
from ..numbers import RationalContext, arb_ends
from ..operators.activations import _SShaped
from ..operators.base import AffineOp, PassThrough


def _ball(lo, hi):
    """A ball containing the exact interval ``[lo, hi]``."""
    return arb(lo).union(arb(hi))


class _TM:
    """``C + G·s + R`` per entry: lists ``C``, ``R`` of balls, ``G`` a list of rows of balls."""

    __slots__ = ("C", "G", "R")

    def __init__(self, C, G, R):
        self.C, self.G, self.R = C, G, R


def _lin_range(row, S):
    """Ball of ``row·s`` for ``s`` in the balls ``S``."""
    acc = arb(0)
    for g, s in zip(row, S):
        acc += g * s
    return acc


def _sq(b):
    """Ball holding ``{y² : y in b}`` (``[0, max]`` when b contains 0)."""
    if b > 0 or b < 0:
        return b * b
    u = arb(b.abs_upper())
    return arb(0).union(u * u)


def ranges(tm, S):
    """Ball of every entry's range over the piece."""
    return [c + _lin_range(g, S) + r for c, g, r in zip(tm.C, tm.G, tm.R)]


def _clip(tm, S, box, clipped):
    """Entries whose interval box (exact ends) is less than half as wide as the model's range
    become that box as a constant model (which drops the linear term: hence the margin);
    ``clipped`` counts them."""
    if box is None:
        return tm
    lo, hi = box
    C, G, R = list(tm.C), list(tm.G), list(tm.R)
    m = len(S)
    for i, rg in enumerate(ranges(tm, S)):
        b = _ball(lo[i], hi[i])
        if 2 * b.rad() < rg.rad():
            mid = arb(b.mid())
            C[i], G[i], R[i] = mid, [arb(0)] * m, b - mid
            clipped[0] += 1
    return _TM(C, G, R)


def _mul(a, b, S):
    """Product of two models (entrywise)."""
    C, G, R = [], [], []
    for a0, ag, ar, b0, bg, br in zip(a.C, a.G, a.R, b.C, b.G, b.R):
        As, Bs = _lin_range(ag, S), _lin_range(bg, S)
        C.append(a0 * b0)
        G.append([a0 * y + b0 * x for x, y in zip(ag, bg)])
        R.append(As * Bs + a0 * br + b0 * ar + As * br + Bs * ar + ar * br)
    return _TM(C, G, R)


def _square(a, S):
    """``(d0 + e)² = d0² + 2·d0·(G·s) + (2·d0·r + e²)`` with ``e = G·s + r``, ``e² >= 0``."""
    C, G, R = [], [], []
    for d0, g, r in zip(a.C, a.G, a.R):
        e = _lin_range(g, S) + r
        C.append(d0 * d0)
        G.append([2 * d0 * x for x in g])
        R.append(2 * d0 * r + _sq(e))
    return _TM(C, G, R)


def _add(a, b):
    return _TM(
        [x + y for x, y in zip(a.C, b.C)],
        [[x + y for x, y in zip(p, q)] for p, q in zip(a.G, b.G)],
        [x + y for x, y in zip(a.R, b.R)],
    )


def _zero(n, m):
    return _TM([arb(0)] * n, [[arb(0)] * m for _ in range(n)], [arb(0)] * n)


def _affine(mats, bias, tms, m):
    """``Σ_k W_k·tm_k (+ b)`` with ball matrices ``W_k`` and ball column ``b`` (or None)."""
    n_out = mats[0].nrows()
    C = [arb(0)] * n_out if bias is None else list(bias)
    G = [[arb(0)] * m for _ in range(n_out)]
    R = [arb(0)] * n_out
    for W, tm in zip(mats, tms):
        n = len(tm.C)
        c = W * arb_mat(n, 1, tm.C)
        r = W * arb_mat(n, 1, tm.R)
        C = [x + c[i, 0] for i, x in enumerate(C)]
        R = [x + r[i, 0] for i, x in enumerate(R)]
        if m:
            g = W * arb_mat(n, m, [x for row in tm.G for x in row])
            G = [[x + g[i, j] for j, x in enumerate(row)] for i, row in enumerate(G)]
    return _TM(C, G, R)


def _q(W):
    """An exact ``fmpq_mat`` (``linear_enclosure`` may hand a :class:`DyMat`)."""
    return W.to_q() if isinstance(W, DyMat) else W


def _ball_mat(W, Wr):
    """The ball matrix ``W ± Wr`` (``Wr`` None: exact ``W``, rounded into balls)."""
    W = _q(W)
    M = arb_mat(W)
    if Wr is not None:
        for i in range(W.nrows()):
            for j in range(W.ncols()):
                if Wr[i, j] != 0:
                    M[i, j] = _ball(W[i, j] - Wr[i, j], W[i, j] + Wr[i, j])
    return M


_MATS = {}


def _affine_balls(op, prec):
    """Ball matrices and bias balls of an affine operator at ``prec`` bits (cached; the entry
    keeps the operator alive, so its id is not reused)."""
    key = (id(op), prec)
    if key not in _MATS:
        Ws, b, Wr, br = op.linear_enclosure(RationalContext(prec))
        b, br = _q(b), None if br is None else _q(br)
        mats = [_ball_mat(W, None if Wr is None else _q(Wr[i])) for i, W in enumerate(Ws)]
        bias = [
            arb(b[i, 0]) if br is None else _ball(b[i, 0] - br[i, 0], b[i, 0] + br[i, 0])
            for i in range(b.nrows())
        ]
        _MATS[key] = (op, mats, bias)
    return _MATS[key][1:]


def _derivs(op, X, k_max):
    """Balls of ``f^(k)`` for k = 0..k_max over the ball ``X`` (f increasing: ``w`` from the
    ends)."""
    A, c = arb(op.slope0), arb(op.center)
    if X.rad() == 0:
        w = op._w_arb(X)
    else:
        w = op._w_arb(arb(X.lower())).union(op._w_arb(arb(X.upper())))
    w2 = w * w
    out = [w + c, A - w2, 2 * w * (w2 - A)]
    if k_max >= 3:
        out.append((6 * w2 - 2 * A) * (A - w2))
    if k_max >= 4:
        out.append((16 * A * w - 24 * w * w2) * (A - w2))
    return out[: k_max + 1]


def _phi(op, x, S, k, order):
    """Models of ``f^(j)(x)`` for j = 0..order, x a model (the pre-activation value)."""
    outs = [([], [], []) for _ in range(order + 1)]
    for c0, g, r, xr in zip(x.C, x.G, x.R, k):
        xh = arb(c0.mid())
        at = _derivs(op, xh, order + 1)
        over = _derivs(op, xr.union(xh), order + 2)
        d0 = c0 - xh
        delta2 = _sq(d0 + _lin_range(g, S) + r)
        for j in range(order + 1):
            C, G, R = outs[j]
            C.append(at[j])
            G.append([at[j + 1] * y for y in g])
            R.append(at[j + 1] * (d0 + r) + over[j + 2] * delta2 / 2)
    return [_TM(*o) for o in outs]


def jets(graph, x_c, M, v, rho, order=2, rule="chain", prec=160, boxes=None, clipped=None):
    """Exact ``{k: (lo list, hi list)}`` for k = 0..order enclosing the output's value and
    derivatives over the piece ``x = x_c + M·s``, ``x' = v``, ``|s_j| <= rho_j`` (exact
    rationals; ``M`` a list of n rows of m entries); ``None`` if an operator has no rule.
    ``boxes``: optional ``{node name: {k: (lo, hi)}}`` interval boxes to clip with;
    ``clipped`` (a one-element list) counts the entries replaced by them."""
    boxes = boxes or {}
    clipped = [0] if clipped is None else clipped
    n, m = len(x_c), len(rho)
    with flint.ctx.workprec(prec):
        S = [_ball(-r, r) for r in rho]
        zero_rows = [[arb(0)] * m for _ in range(n)]
        tms = {
            graph.INPUT: [
                _TM([arb(a) for a in x_c], [[arb(a) for a in row] for row in M], [arb(0)] * n),
                _TM([arb(a) for a in v], zero_rows, [arb(0)] * n),
                _zero(n, m),
            ][: order + 1]
        }
        for node in graph:
            op = node.op
            ins = [tms[i] for i in node.inputs]
            kind = getattr(op, "kind", type(op).__name__)
            if isinstance(op, _SShaped):
                ((x, *d),) = ins
                phis = _phi(op, x, S, ranges(x, S), order)
                out = [phis[0]]
                if order >= 1:
                    out.append(_mul(phis[1], d[0], S))
                if order >= 2:
                    out.append(_add(_mul(phis[2], _square(d[0], S), S), _mul(phis[1], d[1], S)))
            elif isinstance(op, AffineOp):
                mats, bias = _affine_balls(op, prec)
                nb = len(bias)
                out = [
                    _affine(mats, bias if k == 0 else None, [t[k] for t in ins], m)
                    for k in range(order + 1)
                ]
                if order >= 2 and rule == "seed" and kind == "batchnorm":
                    out[2] = _zero(nb, m)
            elif isinstance(op, PassThrough):
                out = ins[0]
            else:
                return None
            nb = boxes.get(node.name, {})
            tms[node.name] = [_clip(t, S, nb.get(k), clipped) for k, t in enumerate(out)]
        res = {}
        for k, t in enumerate(tms[graph.output]):
            ends = [arb_ends(b) for b in ranges(t, S)]
            res[k] = ([e[0] for e in ends], [e[1] for e in ends])
    return res


__all__ = ["jets", "ranges"]
