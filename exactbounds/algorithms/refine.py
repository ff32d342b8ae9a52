"""Adaptive refinement of derivative enclosures: split the parameter domain, bound each piece,
take the hull.

The domain is ``[t_lo, t_hi]`` for a curve, the input box for ``wrt`` (split along every
coordinate: the partial derivative depends on all of them). Each piece is bounded by interval
propagation (:func:`~exactbounds.algorithms.taylor.propagate` on the sub-curve, in the given
context and rule) intersected with the centred forms of :mod:`~exactbounds.algorithms.centered`;
(over more than ``MAX_FORM_PARAMS`` parameters, i.e. ``wrt`` on a wide input, interval
propagation only); a child's enclosure is also intersected with its parent's (the child's
domain lies inside), so
the hull never widens. Every piece's enclosure contains the exact u, u', u'' at every point of
the piece; so does the hull.

Samples: rigorous enclosures of the exact u, u', u'' at exact points (the ends/corners of the
domain and the centre of every piece), from the same centred forms on a point (or
``propagate`` on a point). Per order k and output j the *sampled range* is
``[min_s hi_s, max_s lo_s]``, inside the exact range over the domain; the *gap* is the hull's
width over that range (a box narrower than ``TINY`` relative to its ends counts as reached:
a constant derivative with an irrational BatchNorm scale has no sampled range). Each round
bisects, for every (k, j) whose gap exceeds ``target``, the
piece holding the hull's lowest (highest) end on each side whose excess exceeds half the allowed
slack; rounds repeat until every gap is at most ``target``, ``max_pieces`` is reached, or
``budget`` seconds have passed (checked before each split). The order of splits does not depend
on ``workers``, so a pool gives the serial result when the budget does not cut.
"""

import multiprocessing
import time
from dataclasses import dataclass, field

from flint import fmpq

from ..core import Box
from ..errors import InvalidValueError
from ..numbers import BOUND, RationalContext, to_exact
from . import centered
from .taylor import _RANK, Curve, Jet, _check_ctx, _worse, propagate

TARGET = fmpq(21, 20)
MIN_SPLIT = fmpq(1, 2**40)  # pieces narrower than this share of the domain are not split
TINY = fmpq(1, 2**60)  # a box this narrow (relative to its ends) is resolved
MAX_FORM_PARAMS = 16  # centred forms over at most this many parameters (wrt inputs)


@dataclass
class Refinement:
    """The hull ``jet`` (context boxes) and how it was reached: ``pieces``, ``stopped``
    (``target``, ``budget``, ``pieces`` or ``resolution``), ``gap`` ``{k: [width/sampled range
    per output]}`` (``None``: a zero sampled range under a non-zero width), ``sampled``
    ``{k: (lo list, hi list)}`` exact, ``samples`` (points sampled) and ``seconds``."""

    jet: Jet
    pieces: int
    stopped: str
    gap: dict
    sampled: dict
    samples: int
    seconds: float = 0.0
    notes: list = field(default_factory=list)
    history: list = field(default_factory=list)
    """``(seconds, pieces, {k: [gap per output]})`` after every round."""


def _prec(ctx):
    return ctx.func_prec


# -- the domain of the parameter ------------------------------------------------------------
class _Domain:
    """Pieces of the parameter domain as exact boxes ``(lo, hi)``; their curves and centred
    form inputs."""

    def __init__(self, curve):
        self.curve = curve
        if curve.wrt_index is None:
            self.lo, self.hi = [curve.t_lo], [curve.t_hi]
        else:
            self.lo, self.hi = (list(e) for e in curve.value_box().outer())

    def sub_curve(self, lo, hi):
        c = self.curve
        if c.wrt_index is None:
            return Curve(c.origin, c.direction, lo[0], hi[0])
        return Curve.wrt(Box(lo, hi), c.wrt_index)

    def form(self, lo, hi):
        """``(x_c, M, v, rho)`` of :func:`centered.jets` for the piece."""
        c = self.curve
        mid = [(a + b) / 2 for a, b in zip(lo, hi)]
        rho = [(b - a) / 2 for a, b in zip(lo, hi)]
        if c.wrt_index is None:
            return c.point(mid[0]), [[d] for d in c.direction], c.direction, rho
        n = len(lo)
        eye = [[fmpq(int(i == j)) for j in range(n)] for i in range(n)]
        return mid, eye, eye[c.wrt_index], rho

    def split(self, lo, hi):
        """The two halves along the coordinate widest relative to the domain, or None."""
        best, key = None, None
        for j, (a, b, A, B) in enumerate(zip(lo, hi, self.lo, self.hi)):
            if B > A and (b - a) / (B - A) > MIN_SPLIT:
                k = (b - a) / (B - A)
                if key is None or k > key:
                    best, key = j, k
        if best is None:
            return None
        m = (lo[best] + hi[best]) / 2
        return (lo, hi[:best] + [m] + hi[best + 1 :]), (lo[:best] + [m] + lo[best + 1 :], hi)

    def start_points(self):
        lo, hi = self.lo, self.hi
        n = len(lo)
        pts = [[(a + b) / 2 for a, b in zip(lo, hi)]]
        if n <= 4:
            pts += [[hi[i] if (k >> i) & 1 else lo[i] for i in range(n)] for k in range(2**n)]
        out = []
        for p in pts:
            if p not in out:
                out.append(p)
        return out


# -- work on one piece / point (also run in pool workers: plain (p, q) ints in and out) ------
_STATE = {}


def _enc(q):
    return int(q.p), int(q.q)


def _dec(pq):
    return fmpq(*pq)


def _enc_list(v):
    return [_enc(x) for x in v]


def _enc_ends(d):
    return {k: ([_enc(a) for a in lo], [_enc(b) for b in hi]) for k, (lo, hi) in d.items()}


def _dec_ends(d):
    return {k: ([_dec(a) for a in lo], [_dec(b) for b in hi]) for k, (lo, hi) in d.items()}


def _jet_ends(jet, ctx, order):
    out = {0: jet.value.outer(ctx), 1: jet.d1.outer(ctx)}
    if order >= 2 and jet.d2 is not None:
        out[2] = jet.d2.outer(ctx)
    return out


def _meet(a, b):
    """Entrywise intersection of two enclosures ``{k: (lo, hi)}`` of the same values."""
    return {
        k: (
            [max(x, y) for x, y in zip(a[k][0], b[k][0])],
            [min(x, y) for x, y in zip(a[k][1], b[k][1])],
        )
        for k in a
    }


def _bound_task(task):
    """Enclosures of the piece ``task = (lo, hi, naive)`` (encoded), the statuses and whether
    the centred forms alone were the tighter. ``naive`` False: centred forms only (their parent
    piece was bounded tighter by them than by interval propagation)."""
    graph, ctx, order, rule, dom = (_STATE[k] for k in ("graph", "ctx", "order", "rule", "dom"))
    lo, hi = ([_dec(v) for v in e] for e in task[:2])
    form, prec = dom.form(lo, hi), _prec(ctx)
    if len(form[3]) > MAX_FORM_PARAMS:
        form = None
    if form is not None and not task[2]:
        tm = centered.jets(graph, *form, order, rule, prec)
        if tm is not None:
            return _enc_ends(tm), BOUND, BOUND, True
    jets = propagate(graph, dom.sub_curve(lo, hi), ctx, order, rule, keep=True)
    boxes = {name: _jet_ends(j, ctx, order) for name, j in jets.items()}
    out = boxes[graph.output]
    j = jets[graph.output]
    status, vstatus, wins = j.status, j.value_status, False
    clipped = [0]
    tm = None if form is None else centered.jets(graph, *form, order, rule, prec, boxes, clipped)
    if tm is not None:
        if clipped[0]:  # clipping drops linear terms: the unclipped forms may be tighter
            tm = _meet(tm, centered.jets(graph, *form, order, rule, prec))
        met = _meet(out, tm)
        if any(met[k] != out[k] for k in met if k):
            status = _worse(status, BOUND)
        if met[0] != out[0]:
            vstatus = _worse(vstatus, BOUND)
        wins = all(th - tl <= oh - ol for k in tm for tl, th, ol, oh in zip(*tm[k], *out[k]))
        out = met
    return _enc_ends(out), status, vstatus, wins


def _sample_task(point):
    """Rigorous enclosures of the exact u, u', u'' at the exact point (chain rule)."""
    graph, order, dom, prec = (_STATE[k] for k in ("graph", "order", "dom", "sample_prec"))
    p = [_dec(v) for v in point]
    tm = (
        None
        if len(p) > MAX_FORM_PARAMS
        else centered.jets(graph, *dom.form(p, p), order, "chain", prec)
    )
    if tm is None:
        ctx = RationalContext(prec)
        tm = _jet_ends(propagate(graph, dom.sub_curve(p, p), ctx, order, "chain"), ctx, order)
    return _enc_ends(tm)


def _run(kind_task):
    kind, task = kind_task
    return _bound_task(task) if kind == "bound" else _sample_task(task)


# -- the driver -------------------------------------------------------------------------------
def _inner(samples, order, n_out):
    """Exact inner sampled range ``{k: (lo, hi)}`` (``lo > hi`` means empty)."""
    out = {}
    for k in range(order + 1):
        out[k] = (
            [min(s[k][1][j] for s in samples) for j in range(n_out)],
            [max(s[k][0][j] for s in samples) for j in range(n_out)],
        )
    return out


def _hull(pieces, order, n_out):
    return {
        k: (
            [min(p["enc"][k][0][j] for p in pieces) for j in range(n_out)],
            [max(p["enc"][k][1][j] for p in pieces) for j in range(n_out)],
        )
        for k in range(order + 1)
    }


def _ratio(width, rng):
    if rng > 0:
        return width / rng
    return fmpq(1) if width == 0 else None


def _gaps(hull, inner):
    return {
        k: [_ratio(hi - lo, max(b - a, fmpq(0))) for lo, hi, a, b in zip(*hull[k], *inner[k])]
        for k in hull
    }


def _done(hull, gaps, target):
    """Per ``(k, j)``: the gap is at most ``target``, or the box is as narrow as the
    arithmetic makes it (e.g. a constant derivative with an irrational BatchNorm scale)."""
    return {
        (k, j): (g is not None and g <= target)
        or hull[k][1][j] - hull[k][0][j] <= TINY * max(1, abs(hull[k][0][j]), abs(hull[k][1][j]))
        for k in gaps
        for j, g in enumerate(gaps[k])
    }


def _to_split(pieces, hull, inner, done, target):
    """Indices of the pieces to bisect this round (deterministic order)."""
    slack = (target - 1) / 2
    want = []
    for k in sorted(hull):
        for j in range(len(hull[k][0])):
            if done[k, j]:
                continue
            a, b = inner[k][0][j], inner[k][1][j]
            rng = max(b - a, fmpq(0))
            ex_lo, ex_hi = min(a, b) - hull[k][0][j], hull[k][1][j] - max(a, b)
            sides = [s for s, e in (("lo", ex_lo), ("hi", ex_hi)) if e > slack * rng]
            if not sides:
                sides = ["lo" if ex_lo >= ex_hi else "hi"]
            for side in sides:
                if side == "lo":
                    i = min(
                        range(len(pieces)),
                        key=lambda i: (pieces[i]["enc"][k][0][j], not pieces[i]["split"], i),
                    )
                else:
                    i = min(
                        range(len(pieces)),
                        key=lambda i: (-pieces[i]["enc"][k][1][j], not pieces[i]["split"], i),
                    )
                if i not in want:
                    want.append(i)
    return want


def refine(
    graph,
    curve,
    ctx=None,
    order=2,
    rule="chain",
    budget=10.0,
    max_pieces=None,
    target=TARGET,
    workers=None,
):
    """Refined enclosures of the output's u, u', u'' along ``curve`` (see the module
    docstring). ``budget`` seconds (None: no limit), ``max_pieces`` (None: no limit),
    ``target`` the gap to reach, ``workers`` processes (None or 1: serial)."""
    ctx = ctx if ctx is not None else RationalContext()
    _check_ctx(ctx)
    if budget is not None:
        try:
            budget = float(budget)
        except (TypeError, ValueError):
            budget = float("nan")
        if not budget >= 0:
            raise InvalidValueError("budget", budget, "expected a number of seconds >= 0")
    if max_pieces is not None and (
        isinstance(max_pieces, bool) or not isinstance(max_pieces, int) or max_pieces < 1
    ):
        raise InvalidValueError("pieces", max_pieces, "expected an integer >= 1")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InvalidValueError("workers", workers, "expected an integer >= 1")
    target = to_exact(target, "target")
    if target < 1:
        raise InvalidValueError("target", str(target), "expected a ratio >= 1")
    start = time.perf_counter()
    dom = _Domain(curve)
    _STATE.update(
        graph=graph, ctx=ctx, order=order, rule=rule, dom=dom, sample_prec=max(_prec(ctx), 128)
    )
    root_jet = propagate(graph, curve, ctx, order, rule)  # validates the arguments
    n_out = root_jet.d1.dim
    pool = None
    if workers and workers > 1:
        pool = multiprocessing.get_context("fork").Pool(workers)
    try:
        run = (lambda tasks: pool.imap(_run, tasks)) if pool else (lambda tasks: map(_run, tasks))
        root = [("bound", (_enc_list(dom.lo), _enc_list(dom.hi), True))]
        root += [("sample", _enc_list(p)) for p in dom.start_points()]
        res = list(run(root))
        enc, st, vst, wins = res[0]
        pieces = [
            {
                "lo": dom.lo,
                "hi": dom.hi,
                "enc": _dec_ends(enc),
                "status": (st, vst),
                "split": dom.split(dom.lo, dom.hi) is not None,
                "wins": wins,
            }
        ]
        samples = [_dec_ends(s) for s in res[1:]]
        stopped, history = None, []
        while True:
            hull, inner = _hull(pieces, order, n_out), _inner(samples, order, n_out)
            gaps = _gaps(hull, inner)
            history.append((time.perf_counter() - start, len(pieces), gaps))
            done = _done(hull, gaps, target)
            if all(done.values()):
                stopped = "target"
                break
            want = [i for i in _to_split(pieces, hull, inner, done, target) if pieces[i]["split"]]
            if not want:
                stopped = "resolution"
                break
            if max_pieces is not None:
                want = want[: max_pieces - len(pieces)]
                if not want:
                    stopped = "pieces"
                    break
            if budget is not None and time.perf_counter() - start > budget:
                stopped = "budget"
                break
            halves = [dom.split(pieces[i]["lo"], pieces[i]["hi"]) for i in want]
            tasks = []
            for i, h in zip(want, halves):
                for lo, hi in h:
                    tasks.append(("bound", (_enc_list(lo), _enc_list(hi), not pieces[i]["wins"])))
                    tasks.append(("sample", _enc_list([(a + b) / 2 for a, b in zip(lo, hi)])))
            results = run(tasks)
            done = {}
            for n_split, (i, h) in enumerate(zip(want, halves)):
                if budget is not None and n_split and time.perf_counter() - start > budget:
                    stopped = "budget"
                    break
                parent = pieces[i]
                kids = []
                for lo, hi in h:
                    (enc, st, vst, wins), s = next(results), next(results)
                    samples.append(_dec_ends(s))
                    kids.append(
                        {
                            "lo": lo,
                            "hi": hi,
                            "enc": _meet(_dec_ends(enc), parent["enc"]),
                            "status": (st, vst),
                            "split": dom.split(lo, hi) is not None,
                            "wins": wins,
                        }
                    )
                done[i] = kids
            pieces = [q for i, p in enumerate(pieces) for q in done.get(i, [p])]
            if stopped:
                break
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    hull, inner = _hull(pieces, order, n_out), _inner(samples, order, n_out)
    status = max((p["status"][0] for p in pieces), key=_RANK.get)
    vstatus = max((p["status"][1] for p in pieces), key=_RANK.get)
    shape = root_jet.d1.shape

    def box(k):
        lo, hi = hull[k]
        return Box([ctx.const(v) for v in lo], [ctx.const(v) for v in hi], shape)

    jet = Jet(box(0), box(1), box(2) if order >= 2 else None, status, root_jet.notes, vstatus)
    return Refinement(
        jet,
        len(pieces),
        stopped,
        _gaps(hull, inner),
        inner,
        len(samples),
        time.perf_counter() - start,
        root_jet.notes,
        history,
    )


__all__ = ["Refinement", "refine", "TARGET"]
