"""Branch and bound on the input set: a sound and complete decision of a VNN-LIB property.

``verify(graph, input_box, prop, bound_fn=None, budget=60, constraints=())`` decides whether
some ``x`` of the box (satisfying the linear ``constraints`` too) gives outputs ``y`` that
satisfy the violation formula ``prop`` (an ``OutputProperty``: an ``or`` of ``and``s of linear
comparisons). The network is extended by one linear layer whose rows are the formula's distinct
comparisons' left sides ``Σ a_k·y_k``, so the bounding function bounds each comparison directly
(much tighter than combining output boxes).

Regions are bounded by the fast tier when the graph is a ReLU chain (``Linear (ReLU Linear)*``)
and the formula's coefficients are floats (``bound_fn=None``): :class:`~.bab_float.ReluChain`,
CROWN in float64 with every rounding error charged to the bounds, so its lower bounds are
rigorous for the exact network and a region they close needs no exact re-check; regions are
bounded in numpy batches (up to 256 at a time, the most promising first). Otherwise each region
is bounded by ``bound_fn(graph, box) -> Bounds`` (default :func:`crown_bounds`: CROWN in the
dyadic context, 64 bits, every intermediate bound rounded outward). A clause is refuted on a
region when one of its comparisons is refuted by the bounds; a region is closed when every clause
is refuted, or when a linear input constraint is refuted by the region's box. Candidate points
(the region's centre and, per comparison still open, the vertex minimising CROWN's lower linear
bound) are screened in float64 and checked by exact rational evaluation; a point whose exact
output satisfies the formula ends the search (``violated``). Otherwise the region is bisected at
the midpoint of one coordinate (``heuristic``): ``widest`` relative to the input box;
``influence``, the largest ``Σ |lA_ij|·width_j`` over the open comparisons; ``closest``, the
same for the comparison nearest to refutation; ``auto`` (default) is ``influence`` on the fast
tier (ACAS Xu 1_1: it proves properties 1-4 in 95, 2551, 5525 and 811 regions; ``widest`` does
not prove property 1 in 50000) and, on the exact tier, ``influence`` for a third of the budget,
then ``widest``.
A fast-tier region at float resolution is handed to the exact tier (``fmpq`` midpoints).
With many inputs (``split="relu"``, the default beyond ``RELU_SPLIT_INPUTS`` varying inputs) the
search branches on ReLU signs instead (:func:`_search_relu`). A region's bounds are at least its
parent's (they hold on it too). Regions are explored most promising first (smallest bound on the
margin). Answers ``proved`` (every region closed), ``violated`` (with the exact counterexample)
or ``unknown`` at the budget.
"""

import heapq
import itertools
import time
from dataclasses import dataclass, field

import numpy as np
from flint import fmpq

from ..core import Box
from ..errors import InvalidValueError
from ..graph import Graph, Node
from ..numbers import f64_down, f64_up, make_context
from ..operators.linear import Linear
from .bab_float import ReluChain
from .crown import crown
from .ibp import evaluate

PROVED, VIOLATED, UNKNOWN = "proved", "violated", "unknown"
HEURISTICS = ("auto", "closest", "influence", "widest")
SPLITS = ("auto", "input", "relu")
RELU_SPLIT_INPUTS = 16


@dataclass
class Bounds:
    """Exact (``fmpq``) ends ``lo``/``hi`` of the extended graph's outputs over a region, and
    optionally the lower linear bounds ``lA`` (rows over the input) that guide candidates and
    splitting."""

    lo: list
    hi: list
    lA: list | None = None


def crown_bounds(graph, box, bits=64, lower_slope="adaptive"):
    """The default bounding function: CROWN in ``DyadicContext(bits)``."""
    ctx = make_context("dyadic", bits=bits)
    res = crown(graph, box, ctx, lower_slope=lower_slope)
    return Bounds(
        [ctx.lower(v) for v in res.output.lo], [ctx.upper(v) for v in res.output.hi], res.lA
    )


def spec_graph(graph, comparisons):
    """``graph`` followed by a linear layer with one row ``Σ a_k·y_k`` per comparison."""
    n = graph.dims[graph.output]
    rows = [[fmpq(0)] * n for _ in comparisons]
    for r, c in zip(rows, comparisons):
        for k, a in c.coeffs:
            r[k] = a
    node = Node(
        "__spec__", Linear.from_weights(rows, [0] * len(rows), name="__spec__"), [graph.output]
    )
    return Graph(
        graph.input_dim,
        list(graph.nodes) + [node],
        output="__spec__",
        input_shape=graph.input_shape,
    )


def refuted(c, lo, hi):
    """No value ``s`` of ``[lo, hi]`` satisfies ``s op c.rhs`` (exact)."""
    if c.op == "<=":
        return lo > c.rhs
    if c.op == "<":
        return lo >= c.rhs
    return lo > c.rhs or hi < c.rhs


@dataclass
class VerifyResult:
    """``status``; ``regions``: bounded; ``closed``: proved regions (or outside the
        constraints); ``closed_volume``: their share of the input box's volume (over the coordinates
    of non-zero width); ``open``: left in the queue; ``seconds`` (wall) and ``cpu_seconds`` (this
        process); ``x``/``y``: the exact counterexample."""

    status: str
    regions: int = 0
    closed: int = 0
    open: int = 0
    depth: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    closed_volume: float = 0.0
    x: list | None = None
    y: list | None = None
    clause: int | None = None
    bound: str = "crown dyadic 64"
    notes: list = field(default_factory=list)


def _f(q):
    """The float nearest an ``fmpq`` (huge numerators and denominators included)."""
    return int(q.p) / int(q.q)


def _float_margin(prop, y):
    best = -float("inf")
    for clause in prop.clauses:
        w = float("inf")
        for c in clause:
            s = sum(_f(a) * y[k] for k, a in c.coeffs)
            r = _f(c.rhs)
            w = min(w, r - s if c.op != "=" else -abs(r - s))
        best = max(best, w)
    return best


def verify(
    graph,
    input_box,
    prop,
    bound_fn=None,
    budget=60.0,
    constraints=(),
    max_regions=None,
    screen=None,
    screen_tol=1e-6,
    heuristic="auto",
    progress=None,
    split="auto",
):
    """Decide ``prop`` over ``input_box`` by branch and bound (see the module docstring).
    ``budget``: seconds; ``max_regions``: optional cap on bounded regions; ``screen``: an
    optional fast float evaluation ``x -> outputs`` (e.g. ``audit.replay.float_screen``) that
    skips the exact check of candidates whose float margin is below ``-screen_tol`` (a
    heuristic: it only decides which points are checked exactly). ``heuristic="auto"`` is
    ``influence`` on the fast tier; on the exact tier it runs ``influence`` for a third of the
    budget (and of ``max_regions``), then, if undecided, ``widest`` from scratch for the rest;
    the counts add up. ``split``: ``input`` (bisect the
    box), ``relu`` (fix ReLU signs; fast tier only) or ``auto`` (``relu`` when the fast tier
    applies and more than ``RELU_SPLIT_INPUTS`` input coordinates have width).
    Returns a :class:`VerifyResult`."""
    if split not in SPLITS:
        raise InvalidValueError("split", split, f"expected one of {', '.join(SPLITS)}")
    if heuristic not in HEURISTICS:
        raise InvalidValueError("heuristic", heuristic, f"expected one of {', '.join(HEURISTICS)}")
    if budget is None or not budget > 0:
        raise InvalidValueError("budget", budget, "must be > 0 seconds")
    kw = dict(
        bound_fn=bound_fn,
        constraints=constraints,
        screen=screen,
        screen_tol=screen_tol,
        progress=progress,
    )
    chain = _fast_chain(graph, prop) if bound_fn is None else None
    if chain is not None and split != "input":
        wide = sum(1 for a, b in zip(input_box.lo, input_box.hi) if b > a)
        if split == "relu" or wide > RELU_SPLIT_INPUTS:
            t0 = time.monotonic()
            r = _search_relu(
                graph,
                chain,
                input_box,
                prop,
                budget,
                constraints,
                max_regions,
                screen_tol,
                progress,
            )
            r.seconds = time.monotonic() - t0
            return r
    if heuristic != "auto" or chain is not None:  # the fast tier's auto: influence only
        return _search(
            graph,
            input_box,
            prop,
            budget=budget,
            max_regions=max_regions,
            heuristic="influence" if heuristic == "auto" else heuristic,
            **kw,
        )
    first = _search(
        graph,
        input_box,
        prop,
        budget=budget / 3,
        max_regions=max_regions and max(1, max_regions // 3),
        heuristic="influence",
        **kw,
    )
    if first.status != UNKNOWN or budget - first.seconds <= 0:
        return first
    if max_regions and first.regions >= max_regions:
        return first
    second = _search(
        graph,
        input_box,
        prop,
        budget=budget - first.seconds,
        max_regions=max_regions and max_regions - first.regions,
        heuristic="widest",
        **kw,
    )
    second.notes.insert(
        0, "the influence split was undecided after a third of the budget; then widest"
    )
    for f in ("regions", "evaluations", "seconds", "cpu_seconds"):
        setattr(second, f, getattr(first, f) + getattr(second, f))
    second.depth = max(first.depth, second.depth)
    return second


_CHAINS: dict = {}


def _chain(graph):
    """The graph's :class:`ReluChain` (cached per graph object), or ``None``."""
    key = id(graph)
    if key not in _CHAINS or _CHAINS[key][0] is not graph:
        _CHAINS.clear()
        _CHAINS[key] = (graph, ReluChain.from_graph(graph))
    return _CHAINS[key][1]


def _fast_chain(graph, prop):
    """The graph's :class:`ReluChain` when the fast tier applies to ``prop``, else ``None``."""
    if not (prop.clauses and prop.comparisons()):
        return None
    chain = _chain(graph)
    if chain is None or _float_targets(prop.comparisons(), chain.output_dim)[0] is None:
        return None
    return chain


def _search(
    graph,
    input_box,
    prop,
    bound_fn,
    budget,
    constraints,
    max_regions,
    screen,
    screen_tol,
    heuristic,
    progress,
):
    """One branch-and-bound run with one split ``heuristic`` (see :func:`verify`)."""
    chain = _fast_chain(graph, prop) if bound_fn is None else None
    if chain is not None:
        return _search_batched(
            graph,
            chain,
            input_box,
            prop,
            budget,
            constraints,
            max_regions,
            screen_tol,
            heuristic,
            progress,
        )
    t0, c0 = time.monotonic(), time.process_time()
    bound_fn = bound_fn or crown_bounds
    name = getattr(bound_fn, "label", getattr(bound_fn, "__name__", "bound_fn"))
    res = VerifyResult(UNKNOWN, bound="crown dyadic 64" if bound_fn is crown_bounds else name)
    clauses = prop.clauses
    if not clauses:
        res.status = PROVED
        res.notes.append("the violation formula is false")
        return res
    comps = prop.comparisons()
    index = {(c.coeffs, c.op, c.rhs): i for i, c in enumerate(comps)}
    cl_idx = [[index[(c.coeffs, c.op, c.rhs)] for c in cl] for cl in clauses]
    g = spec_graph(graph, comps) if comps else None
    lo0, hi0 = list(input_box.lo), list(input_box.hi)
    width0 = [b - a for a, b in zip(lo0, hi0)]
    shape = input_box.shape
    tie = itertools.count()
    queue = []

    def exact_check(x):
        if not all(c.holds(x) for c in constraints):
            return False
        yf = screen(x) if screen is not None else None
        if yf is not None and clauses and clauses[0] and _float_margin(prop, yf) < -screen_tol:
            return False
        res.evaluations += 1
        y = evaluate(graph, x)
        try:
            hit = prop.evaluate(y)
        except Exception:  # noqa: BLE001 - an enclosure that does not decide: not a witness
            return False
        if hit:
            res.status, res.x, res.y = VIOLATED, list(x), list(y)
            res.clause = next(k for k, cl in enumerate(clauses) if all(c.truth(y) for c in cl))
        return hit

    def close(lo, hi):
        res.closed += 1
        v = fmpq(1)
        for a, b, w in zip(lo, hi, width0):
            if w:
                v *= (b - a) / w
        res.closed_volume += int(v.p) / int(v.q)

    def examine(lo, hi, alive, depth):
        """Bound a region; returns None when closed or a violation was found, else the queue
        entry."""
        res.regions += 1
        res.depth = max(res.depth, depth)
        if any(c.refuted_by_box(lo, hi) for c in constraints):
            close(lo, hi)
            return None
        cands = [[(a + c) / 2 for a, c in zip(lo, hi)]]
        if g is None:  # the formula is true: any point satisfying the constraints
            if exact_check(cands[0]):
                return None
            return (0, next(tie), lo, hi, alive, depth, Bounds([], [], None), [])
        b = bound_fn(g, Box(lo, hi, shape))
        still = [
            k for k in alive if not any(refuted(comps[i], b.lo[i], b.hi[i]) for i in cl_idx[k])
        ]
        if not still:
            close(lo, hi)
            return None
        open_c = sorted(
            {i for k in still for i in cl_idx[k] if not refuted(comps[i], b.lo[i], b.hi[i])}
        )
        if b.lA is not None:
            for i in open_c:
                if comps[i].op != "=":
                    cands.append(
                        [
                            a if r > 0 else c if r < 0 else (a + c) / 2
                            for r, a, c in zip(b.lA[i], lo, hi)
                        ]
                    )
        for x in cands:
            if exact_check(x):
                return None
        # how far the bounds are from refuting: the priority (smaller = more promising)
        pr = max(min(comps[i].rhs - b.lo[i] for i in cl_idx[k]) for k in still)
        return (-pr, next(tie), lo, hi, still, depth, b, open_c)

    def split(lo, hi, b, alive):
        n = len(lo)
        w = [hi[j] - lo[j] for j in range(n)]
        score = None
        if b.lA is not None and heuristic != "widest":
            score = [fmpq(0)] * n
            for k in alive:
                cand = [i for i in cl_idx[k] if comps[i].op != "="]
                if not cand:
                    continue
                if heuristic == "closest":  # the comparison nearest to refutation
                    cand = [max(cand, key=lambda i: b.lo[i] - comps[i].rhs)]
                for i in cand:
                    score = [s + abs(b.lA[i][j]) * w[j] for j, s in enumerate(score)]
            if not any(score):
                score = None
        if score is None:
            score = [w[j] / width0[j] if width0[j] else fmpq(0) for j in range(n)]
        j = max(range(n), key=lambda k: score[k])
        if w[j] == 0:
            return None
        return j, (lo[j] + hi[j]) / 2

    entry = examine(lo0, hi0, list(range(len(clauses))), 0)
    if entry is not None:
        heapq.heappush(queue, entry)
    while queue and res.status != VIOLATED:
        if time.monotonic() - t0 > budget or (max_regions and res.regions >= max_regions):
            break
        _, _, lo, hi, alive, depth, b, open_c = heapq.heappop(queue)
        sp = split(lo, hi, b, alive)
        if sp is None:
            res.notes.append("a region shrank to a point without a decision")
            heapq.heappush(queue, (0, next(tie), lo, hi, alive, depth, b, open_c))
            break
        j, m = sp
        for a, c in ((lo[j], m), (m, hi[j])):
            l2, h2 = list(lo), list(hi)
            l2[j], h2[j] = a, c
            e = examine(l2, h2, alive, depth + 1)
            if res.status == VIOLATED:
                break
            if e is not None:
                heapq.heappush(queue, e)
        if progress is not None:
            progress(res)
    return _finish(res, queue, t0, c0)


def _float_targets(comps, n):
    """The comparisons' rows as a float matrix (lower bounds of each left side, then of minus
    the left sides of the ``=`` comparisons), or ``None`` when a coefficient is not a float."""
    eq = [i for i, c in enumerate(comps) if c.op == "="]
    C = np.zeros((len(comps) + len(eq), n))
    for i, c in enumerate(comps):
        for k, a in c.coeffs:
            f = int(a.p) / int(a.q)
            if fmpq(*f.as_integer_ratio()) != a:
                return None, eq
            C[i, k] += f
    for r, i in enumerate(eq):
        C[len(comps) + r] = -C[i]
    return C, eq


class _Fast:
    """What both batched searches share: the formula as float targets, refutation of clauses
    by rigorous lower bounds, float screening and exact checking of candidate points."""

    def __init__(self, graph, chain, input_box, prop, constraints, screen_tol, res):
        self.graph, self.chain, self.prop, self.res = graph, chain, prop, res
        self.constraints, self.screen_tol = constraints, screen_tol
        self.clauses = prop.clauses
        comps = self.comps = prop.comparisons()
        index = {(c.coeffs, c.op, c.rhs): i for i, c in enumerate(comps)}
        self.m, self.K = len(comps), len(self.clauses)
        self.member = np.zeros((self.K, self.m), dtype=bool)
        for k, cl in enumerate(self.clauses):
            for c in cl:
                self.member[k, index[(c.coeffs, c.op, c.rhs)]] = True
        self.C, self.eq = _float_targets(comps, chain.output_dim)
        self.ops = [c.op for c in comps]
        self.rhs_up = np.array([f64_up(c.rhs) for c in comps])
        self.rhs_dn = np.array([f64_down(c.rhs) for c in comps])
        self.rhs_f = np.array([_f(c.rhs) for c in comps])
        self.lt = np.array([o == "<" for o in self.ops])
        self.le = np.array([o == "<=" for o in self.ops])
        self.lo0, self.hi0 = list(input_box.lo), list(input_box.hi)
        self.lo0f = np.array([f64_down(v) for v in self.lo0])
        self.hi0f = np.array([f64_up(v) for v in self.hi0])
        self.width0 = self.hi0f - self.lo0f
        w = self.width0
        self.rel = np.where(w > 0, 1.0 / np.where(w > 0, w, 1.0), 0.0)

    def refute(self, beta, alive):
        """``(alive, ref, lower)``: the clauses still alive after the bounds ``beta``; which
        comparisons they refute (exactly: ``lower > rhs`` through ``rhs`` rounded up)."""
        m = self.m
        lower = beta[:, :m]
        ref = (self.le & (lower > self.rhs_up)) | (self.lt & (lower >= self.rhs_up))
        for r, i in enumerate(self.eq):
            ref[:, i] = (lower[:, i] > self.rhs_up[i]) | (-beta[:, m + r] < self.rhs_dn[i])
        cl_ref = (ref[:, None, :] & self.member[None]).any(axis=2)
        return alive & ~cl_ref, ref, lower

    def open_comparisons(self, alive, ref):
        return (alive[:, :, None] & self.member[None]).any(axis=1) & ~ref

    def exact_check(self, xf):
        res = self.res
        x = [
            min(max(fmpq(*float(v).as_integer_ratio()), a), b)
            for v, a, b in zip(xf, self.lo0, self.hi0)
        ]
        if not all(c.holds(x) for c in self.constraints):
            return False
        res.evaluations += 1
        y = evaluate(self.graph, x)
        try:
            hit = self.prop.evaluate(y)
        except Exception:  # noqa: BLE001 - an enclosure that does not decide: not a witness
            return False
        if hit:
            res.status, res.x, res.y = VIOLATED, x, list(y)
            res.clause = next(k for k, cl in enumerate(self.clauses) if all(c.truth(y) for c in cl))
        return hit

    def float_margin(self, Y):
        """Per row of outputs ``Y``: max over clauses of min over its comparisons of
        ``rhs − lhs`` (``−|rhs − lhs|`` for ``=``); >= 0 means the float outputs violate."""
        S = Y @ self.C[: self.m].T
        eqm = np.array([o == "=" for o in self.ops])
        g = np.where(eqm, -np.abs(self.rhs_f - S), self.rhs_f - S)
        g = np.where(self.lt & (g == 0), -1e-300, g)
        per = np.where(self.member[None], g[:, None, :], np.inf).min(axis=2)
        return per.max(axis=1)

    def try_candidates(self, L, H, Lx, openc, limit=8):
        """Centres and the minimisers of the open comparisons' lower forms, screened in
        float64; the best ``limit`` above ``-screen_tol`` checked exactly. True at a
        counterexample."""
        cands = [(L + H) / 2]
        for i in range(self.m):
            if self.ops[i] != "=":
                pick = np.where(Lx[:, i] > 0, L, np.where(Lx[:, i] < 0, H, (L + H) / 2))
                cands.append(np.where(openc[:, i : i + 1], pick, cands[0]))
        X = np.concatenate(cands)
        with np.errstate(all="ignore"):
            marg = self.float_margin(self.chain.forward(X))
        for q in np.argsort(-marg)[:limit]:
            if not marg[q] >= -self.screen_tol:
                break
            if self.exact_check(X[q]):
                return True
        return False

    def close(self, L, H, closed):
        res = self.res
        if closed.any():
            res.closed += int(closed.sum())
            vol = np.prod(
                np.where(self.width0 > 0, (H[closed] - L[closed]) * self.rel, 1.0), axis=1
            )
            res.closed_volume += float(vol.sum())

    def refuted_by_constraints(self, L, H, closed):
        if self.constraints:
            for r in np.flatnonzero(~closed):
                lo_q = [fmpq(*float(v).as_integer_ratio()) for v in L[r]]
                hi_q = [fmpq(*float(v).as_integer_ratio()) for v in H[r]]
                if any(c.refuted_by_box(lo_q, hi_q) for c in self.constraints):
                    closed[r] = True
        return closed


def _batch_size(size, batch, regions, spent, budget):
    """The next batch: double the last one, up to ``batch``, and no more than half the time
    left allows at the rate so far (two children per region taken), so a batch ends before the
    budget does."""
    rate = spent / max(regions, 1)
    fit = int((budget - spent) / (2 * rate) / 2) if rate > 0 else batch
    return max(1, min(2 * size, batch, fit))


def _finish(res, queue, t0, c0):
    res.open = len(queue)
    if res.status != VIOLATED and not queue and not res.notes:
        res.status = PROVED
    res.seconds = time.monotonic() - t0
    res.cpu_seconds = time.process_time() - c0
    return res


def _search_batched(
    graph,
    chain,
    input_box,
    prop,
    budget,
    constraints,
    max_regions,
    screen_tol,
    heuristic,
    progress,
    batch=256,
):
    """:func:`_search` with every region bounded by :class:`~.bab_float.ReluChain` (rigorous
    float64 CROWN), regions bounded in batches (the most promising first, doubling from 1 up to
    ``batch``), candidates screened in float64 (only those whose float margin is above
    ``-screen_tol`` are checked exactly)."""
    t0, c0 = time.monotonic(), time.process_time()
    res = VerifyResult(UNKNOWN, bound="crown float64 rigorous, batched")
    f = _Fast(graph, chain, input_box, prop, constraints, screen_tol, res)
    m, rel, width0 = f.m, f.rel, f.width0
    tie = itertools.count()
    queue: list = []

    def bound_batch(L, H, alive, depth, pbeta=None):
        """Bound the regions (no worse than their parents' bounds ``pbeta``, which hold on
        them too); push the open ones; stop at an exact counterexample."""
        res.regions += L.shape[0]
        res.depth = max(res.depth, int(depth.max()))
        beta, Lx, empty, _ = chain.lower_bounds(L, H, f.C)
        if pbeta is not None:
            beta = np.maximum(beta, pbeta)
        alive, ref, lower = f.refute(beta, alive)
        closed = f.refuted_by_constraints(L, H, empty | ~alive.any(axis=1))
        f.close(L, H, closed)
        keep = np.flatnonzero(~closed)
        if not len(keep):
            return
        L, H, alive, depth, Lx, lower = (
            L[keep],
            H[keep],
            alive[keep],
            depth[keep],
            Lx[keep],
            lower[keep],
        )
        openc = f.open_comparisons(alive, ref[keep])
        if f.try_candidates(L, H, Lx, openc):
            return
        W = H - L
        if heuristic == "widest":
            score = W * rel
        else:
            A = np.abs(Lx[:, :m]) * openc[:, :, None]
            if heuristic == "closest":
                gap = np.where(openc, lower - f.rhs_up, -np.inf)
                A = np.abs(Lx[np.arange(len(keep)), gap.argmax(axis=1)])[:, None, :]
            score = A.sum(axis=1) * W
            flat = ~(score > 0).any(axis=1)
            score[flat] = (W * rel)[flat]
        score = np.where(width0 > 0, score, -1.0)
        j = score.argmax(axis=1)
        pr = np.where(openc, f.rhs_f - lower, -np.inf).max(axis=1)
        for r in range(len(keep)):
            heapq.heappush(
                queue,
                (
                    -float(pr[r]),
                    next(tie),
                    L[r],
                    H[r],
                    alive[r],
                    int(depth[r]),
                    int(j[r]),
                    beta[keep[r]],
                ),
            )

    def exact_tier(t):
        """A region at float resolution: decide it by the exact tier (``fmpq`` midpoints,
        dyadic CROWN) within the remaining budget, on its part of the exact input box. False
        when that stays undecided (the region goes back to the queue)."""
        _, _, lo, hi, alive, depth, _, _ = t
        lq = [max(fmpq(*float(v).as_integer_ratio()), a) for v, a in zip(lo, f.lo0)]
        hq = [min(fmpq(*float(v).as_integer_ratio()), b) for v, b in zip(hi, f.hi0)]
        if any(a > b for a, b in zip(lq, hq)):
            res.closed += 1
            return True
        sub = _search(
            graph,
            Box(lq, hq, input_box.shape),
            prop,
            bound_fn=crown_bounds,
            budget=max(budget - (time.monotonic() - t0), 0.01),
            constraints=constraints,
            max_regions=max_regions and max(max_regions - res.regions, 1),
            screen=None,
            screen_tol=screen_tol,
            heuristic="widest" if heuristic == "auto" else heuristic,
            progress=None,
        )
        res.regions += sub.regions
        res.evaluations += sub.evaluations
        res.depth = max(res.depth, depth + sub.depth)
        if sub.status == VIOLATED:
            res.status, res.x, res.y, res.clause = VIOLATED, sub.x, sub.y, sub.clause
            return False
        if sub.status == PROVED:
            res.closed += 1
            return True
        res.notes.append("a region at float resolution stayed undecided by the exact tier")
        heapq.heappush(queue, t)
        return False

    bound_batch(f.lo0f[None], f.hi0f[None], np.ones((1, f.K), dtype=bool), np.zeros(1, dtype=int))
    size = 0
    while queue and res.status != VIOLATED:
        if time.monotonic() - t0 > budget or (max_regions and res.regions >= max_regions):
            break
        size = _batch_size(size, batch, res.regions, time.monotonic() - t0, budget)
        take = [heapq.heappop(queue) for _ in range(min(size, len(queue)))]
        Ls, Hs, As, Ds, Ps = [], [], [], [], []
        for n, t in enumerate(take):
            _, _, lo, hi, alive, depth, j, pb = t
            mid = lo[j] + (hi[j] - lo[j]) / 2
            if not lo[j] < mid < hi[j]:
                if not exact_tier(t):
                    for u in take[:n] + take[n + 1 :]:  # their children are not bounded
                        heapq.heappush(queue, u)
                    break
                continue
            for a, b in ((lo[j], mid), (mid, hi[j])):
                l2, h2 = lo.copy(), hi.copy()
                l2[j], h2[j] = a, b
                Ls.append(l2)
                Hs.append(h2)
                As.append(alive)
                Ds.append(depth + 1)
                Ps.append(pb)
        if res.status == VIOLATED or res.notes:
            break
        if Ls:
            bound_batch(np.array(Ls), np.array(Hs), np.array(As), np.array(Ds), np.array(Ps))
        if progress is not None:
            progress(res)
    return _finish(res, queue, t0, c0)


def _search_relu(
    graph,
    chain,
    input_box,
    prop,
    budget,
    constraints,
    max_regions,
    screen_tol,
    progress,
    batch=32,
):
    """Branch and bound on ReLU signs (for many inputs, where bisecting the box stalls): a
    region is the input box with some ReLU inputs' signs fixed; its bounds are the fast tier's
    with those neurons' bounds clamped (and the later layers' bounds recomputed, intersected
    with the parent's). The neuron split is the one whose upper line costs the open
    comparisons most (BaBSR's intercept score); the sign constraints also enter
    the final bound through multipliers (β-CROWN's β, optimised by a few Adam steps; the bound
    is then computed rigorously). Both signs together cover the box, so closing every region
    proves the property."""
    t0, c0 = time.monotonic(), time.process_time()
    res = VerifyResult(UNKNOWN, bound="crown float64 rigorous, ReLU splits")
    f = _Fast(graph, chain, input_box, prop, constraints, screen_tol, res)
    nl = len(chain.layers) - 1
    tie = itertools.count()
    queue: list = []
    lo1, hi1 = f.lo0f[None], f.hi0f[None]

    def bound_batch(splits, parent, start, alive, depth, pbeta=None):
        R = alive.shape[0]
        res.regions += R
        res.depth = max(res.depth, int(depth.max()))
        L, H = np.repeat(lo1, R, axis=0), np.repeat(hi1, R, axis=0)
        sp = [np.array([s[k] for s in splits]) for k in range(nl)]
        pre = chain.pre_bounds(L, H, sp, parent, start)
        scores: list = []
        weights = np.array(alive.any(axis=1), dtype=float)[:, None] * np.ones((1, f.C.shape[0]))
        inject = None
        if any(a.any() for a in sp):
            inject = chain.split_multipliers(L, H, f.C, pre, sp)
        beta, Lx, empty, _ = chain.lower_bounds(
            L, H, f.C, pre=pre, weights=weights, scores=scores, inject=inject
        )
        if pbeta is not None:  # a region's parent's bounds hold on it too
            beta = np.maximum(beta, pbeta)
        alive, ref, lower = f.refute(beta, alive)
        closed = empty | ~alive.any(axis=1)
        res.closed += int(closed.sum())
        keep = np.flatnonzero(~closed)
        if not len(keep):
            return
        openc = f.open_comparisons(alive[keep], ref[keep])
        if f.try_candidates(L[keep], H[keep], Lx[keep], openc):
            return
        pr = np.where(openc, f.rhs_f - lower[keep], -np.inf).max(axis=1)
        for n, r in enumerate(keep):
            best, where = 0.0, None
            for k in range(nl):
                l, u = pre[k][0][r], pre[k][1][r]
                sc = np.where((l < 0) & (u > 0), scores[k][r], 0.0)
                j = int(sc.argmax())
                if sc[j] > best:
                    best, where = sc[j], (k, j)
            if where is None:  # nothing unstable: the bounds are as good as they get
                unst = [
                    (k, int(np.argmax((pre[k][0][r] < 0) & (pre[k][1][r] > 0))))
                    for k in range(nl)
                    if ((pre[k][0][r] < 0) & (pre[k][1][r] > 0)).any()
                ]
                if not unst:
                    res.notes.append("a region with every ReLU fixed stayed undecided")
                    continue
                where = unst[0]
            heapq.heappush(
                queue,
                (
                    -float(pr[n]),
                    next(tie),
                    [s[r] for s in sp],
                    [(p[0][r], p[1][r]) for p in pre],
                    alive[r],
                    int(depth[r]),
                    where,
                    beta[r],
                ),
            )

    bound_batch(
        [[np.zeros(chain.layers[k][0].shape[0], dtype=np.int8) for k in range(nl)]],
        None,
        0,
        np.ones((1, f.K), dtype=bool),
        np.zeros(1, dtype=int),
    )
    size = 0
    while queue and res.status != VIOLATED and not res.notes:
        if time.monotonic() - t0 > budget or (max_regions and res.regions >= max_regions):
            break
        size = _batch_size(size, batch, res.regions, time.monotonic() - t0, budget)
        take = [heapq.heappop(queue) for _ in range(min(size, len(queue)))]
        splits, parents, alive, depth, pbs = [], [], [], [], []
        start = nl
        for _, _, sp, pre, al, d, (k, j), pb in take:
            start = min(start, k + 1)
            for sign in (1, -1):
                s2 = [a.copy() for a in sp]
                s2[k][j] = sign
                splits.append(s2)
                parents.append(pre)
                alive.append(al)
                depth.append(d + 1)
                pbs.append(pb)
        parent = [
            (np.array([p[k][0] for p in parents]), np.array([p[k][1] for p in parents]))
            for k in range(nl)
        ]
        bound_batch(splits, parent, start, np.array(alive), np.array(depth), np.array(pbs))
        if progress is not None:
            progress(res)
    return _finish(res, queue, t0, c0)


__all__ = [
    "PROVED",
    "VIOLATED",
    "UNKNOWN",
    "Bounds",
    "VerifyResult",
    "crown_bounds",
    "spec_graph",
    "verify",
]
