"""CROWN (backward linear relaxation) and forward affine propagation over a graph.

``crown(graph, input_set, ctx=None, lower_slope="adaptive", intersect_ibp=False,
intermediate=False)`` -> :class:`BoundsResult`: output ``Box``; the final linear bounds
``lA·x + lb <= f(x) <= uA·x + ub`` for every ``x`` in the input set; ``mode``; ``status``; and
with ``intermediate=True`` the bounds of every node computed (``nodes``: name -> Box).

Algorithm: for every input of an operator that has ``relax`` (ReLU, Sigmoid, Tanh, ...), in
topological order, bounds by a backward pass from that node (CROWN on every pre-activation
node); then one backward pass from the output. A backward pass carries two functionals
``Λ_L``, ``Λ_U`` from the node towards the input: affine operators map ``Λ ↦ Λ·W`` (bias
``Λ·b``), ``relax`` operators pick per entry the lower line when the coefficient is ``>= 0`` and
the upper line otherwise (for ``Λ_L``; the other way for ``Λ_U``), passthrough operators pass
``Λ``; residual inputs add up. At the input the forms are concretised over the set
(:func:`exactbounds.inputsets.concretize_mat`). No intersection with IBP unless asked.

Exact arithmetic (modes ``exact`` and ``dyadic``) runs on ``ZBackend``: matrices of dyadic
rationals (float weights, dyadic bounds and slopes) are integer ``fmpz_mat`` times one power of
two, the relaxation step is ``Λ·diag(pa) + N·diag(na − pa)`` (``N``: the negative entries of
``Λ`` in the columns whose lines differ) as integer products, and the columns of stably
inactive neurons are left out of ``Λ`` and of the next product; every value equals the
entry-by-entry ``fmpq`` computation (``QBackend``).

Modes (from ``ctx``): ``exact`` (``RationalContext``; status ``exact``),
``dyadic`` (default, ``DyadicContext(64)``: every intermediate bound rounded outward to a
``bits``-bit dyadic and ReLU chord slopes rounded as in ``operators/relu.py``; status
``bound``), ``interval`` (``IntervalContext(prec)``; python-flint ``arb_mat`` balls that enclose
the exact algorithm's numbers; a branch the balls cannot decide takes the hull of both
branches; a relaxation that raises ``AmbiguousBranch`` makes the run restart at twice the
precision, up to 3 times; status ``enclosure``). BatchNorm with an irrational √(σ²+ε) enters
with midpoint coefficients and an error term bounded with exact IBP boxes, and any square root
or enclosed intercept in the exact mode makes the status ``bound`` (a sound bound, not the
exact value of the algorithm).
"""
from dataclasses import dataclass, field
from operator import mul

from flint import fmpq, fmpq_mat, fmpz, fmpz_mat

from ..core import Box
from ..errors import AmbiguousBranch, InvalidValueError, ShapeError, UnsupportedOperatorError
from ..inputsets import bounding_box, concretize_mat
from ..numbers import BOUND, ENCLOSURE, EXACT, RationalContext
from ..numbers.dyadic_mode import DyMat
from .backend import QBackend, backend_for

IDENT = "identity"


@dataclass
class BoundsResult:
    """Result of a bound computation. ``output`` is a ``Box`` of ``ctx`` elements; ``lA``/``uA``
    (rows over the network input) and ``lb``/``ub`` are exact (``fmpq``) in the exact and dyadic
    modes and ``ctx`` elements (enclosures) in the interval mode; ``None`` for IBP."""
    method: str
    mode: str
    ctx: object
    output: Box
    status: str
    lA: list = None
    lb: list = None
    uA: list = None
    ub: list = None
    nodes: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def default_context(mode="dyadic", bits=None, prec=113):
    from ..numbers import make_context
    return make_context(mode, bits=bits or (64 if mode == "dyadic" else 128), prec=prec)


def is_relaxable(op):
    return hasattr(op, "relax") and not getattr(op, "affine", False)


def pre_activation_nodes(graph):
    """Names of the nodes that feed an operator with ``relax``."""
    need = set()
    for node in graph:
        if is_relaxable(node.op):
            need.update(node.inputs)
    return need


def _add(be, a, b, n):
    if a is None:
        return b
    a, b = _full(a), _full(b)
    if a is IDENT:
        a = be.mat(_eye(n))
    if b is IDENT:
        b = be.mat(_eye(n))
    return a + b


def _eye(n):
    M = fmpq_mat(n, n)
    for i in range(n):
        M[i, i] = 1
    return M


def _diag(be, vals):
    n = len(vals)
    es = [be.const(fmpq(0))] * (n * n)
    for i, v in enumerate(vals):
        es[i * n + i] = v
    return be.from_entries(n, n, es)


class _Run:
    """State of one bound computation (shared by CROWN and forward affine)."""

    def __init__(self, graph, input_set, ctx, lower_slope, intersect_ibp, progress=None):
        if input_set.dim != graph.input_dim:
            raise ShapeError(f"the input set has {input_set.dim} entries, the network takes "
                             f"{graph.input_dim}")
        self.graph, self.S, self.ctx = graph, input_set, ctx
        self.be = backend_for(ctx)
        self.lower_slope, self.intersect = lower_slope, intersect_ibp
        self.progress = progress
        self.rounded = False
        self.bounds = {}        # node -> (lo entries, hi entries) in the backend
        self.relaxed = {}       # node -> (ls, lb, us, ub) backend lists
        self.coeffs = {}
        self._ibp = None
        self.order = {n.name: k for k, n in enumerate(graph.nodes)}
        self.dims = {graph.INPUT: graph.input_dim}
        for n in graph.nodes:
            self.dims[n.name] = n.op.out_dim

    # -- helpers ---------------------------------------------------------------------------
    def ibp_boxes(self):
        """Exact IBP boxes of every node (outer ends), for error terms and intersections."""
        if self._ibp is None:
            from .ibp import ibp
            rc = self.ctx if isinstance(self.ctx, RationalContext) else RationalContext(
                getattr(self.ctx, "prec", 128))
            boxes = ibp(self.graph, bounding_box(self.S), rc, intermediate=True)
            self._ibp = {k: b.outer(rc) for k, b in boxes.items()}
        return self._ibp

    def abs_max(self, name):
        lo, hi = self.ibp_boxes()[name]
        return [max(abs(a), abs(b)) for a, b in zip(lo, hi)]

    def affine_coeffs(self, node):
        """Backend ``(Ws, b, err)``: ``err`` a column bounding the coefficient uncertainty
        (``Σ_k Wrad_k·|x_k|max + brad``) or ``None``."""
        got = self.coeffs.get(node.name)
        if got is None:
            be = self.be
            Ws, b, Wr, br = node.op.linear_enclosure(self.ctx)
            err = None
            if Wr is not None:
                e = br
                for R, inp in zip(Wr, node.inputs):
                    e = e + R * fmpq_mat(R.ncols(), 1, self.abs_max(inp))
                err = be.mat(e)
                self.rounded = True
                self.note("BatchNorm coefficients enclosed (irrational square root): "
                          "midpoints plus an IBP error term")
            got = self.coeffs[node.name] = ([be.mat(W) for W in Ws], be.mat(b), err)
        return got

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    notes = None

    def relaxation(self, node):
        got = self.relaxed.get(node.name)
        if got is None:
            ctx, be = self.ctx, self.be
            lo, hi = self.node_bounds(node.inputs[0])
            lo_c = [be.to_ctx(ctx, v) for v in lo]
            hi_c = [be.to_ctx(ctx, v) for v in hi]
            ls, lb, us, ub = node.op.relax(ctx, lo_c, hi_c, lower_slope=self.lower_slope)
            if be.exact:
                if any(ctx.status(v) != EXACT for v in lb + ub):
                    self.rounded = True
                got = ([be.from_ctx(ctx, v) for v in ls], [be.from_ctx(ctx, v, False) for v in lb],
                       [be.from_ctx(ctx, v) for v in us], [be.from_ctx(ctx, v, True) for v in ub])
            else:
                got = tuple([be.from_ctx(ctx, v) for v in vs] for vs in (ls, lb, us, ub))
            self.relaxed[node.name] = got
        return got

    def node_bounds(self, name):
        if name == self.graph.INPUT:
            if name not in self.bounds:
                lo, hi = bounding_box(self.S).outer()
                self.bounds[name] = ([self.be.const(v) for v in lo],
                                     [self.be.const(v) for v in hi])
            return self.bounds[name]
        if name not in self.bounds:
            self.bounds[name] = self.compute_bounds(name, final=False)
        return self.bounds[name]

    def finish_bounds(self, name, lo, hi, final):
        """Round (dyadic, intermediate) and intersect with IBP (when asked)."""
        ctx, be = self.ctx, self.be
        if not final and getattr(ctx, "mode", None) == "dyadic":
            lo = [ctx.round_down(v) for v in lo]
            hi = [ctx.round_up(v) for v in hi]
        if self.intersect:
            ilo, ihi = self.ibp_boxes()[name]
            if be.exact:
                lo = [max(a, b) for a, b in zip(lo, ilo)]
                hi = [min(a, b) for a, b in zip(hi, ihi)]
            else:
                lo = [_arb_max(a, b) for a, b in zip(lo, ilo)]
                hi = [_arb_min(a, b) for a, b in zip(hi, ihi)]
        return lo, hi

    def box(self, lo, hi, shape):
        ctx, be = self.ctx, self.be
        return Box([be.to_ctx(ctx, v) for v in lo], [be.to_ctx(ctx, v) for v in hi], shape)

    def tick(self):
        if self.progress is not None:
            self.progress.update(1)


def _arb_max(a, q):
    from flint import arb
    return a.max(arb(q))


def _arb_min(a, q):
    from flint import arb
    return a.min(arb(q))


def relax_backward(be, lam, n, rel, upper, compact=False):
    """``Λ·y`` with ``y`` elementwise relaxed: returns ``(Λ', bias)``. For the lower bound
    (``upper=False``) coefficients ``>= 0`` take the lower line, ``< 0`` the upper line; the
    other way for the upper bound. Undecidable signs (interval) take the hull. With
    ``compact`` an integer-backed ``Λ'`` may come as a :class:`_Cols` (zero columns left out)."""
    ls, lb, us, ub = rel
    pa, pb, na, nb = (us, ub, ls, lb) if upper else (ls, lb, us, ub)
    if lam is IDENT:
        D = be.diag(pa) if hasattr(be, "diag") else None
        return (D if D is not None else _diag(be, pa)), be.col(pb)
    m = lam.nrows()
    if isinstance(lam, DyMat):
        got = _relax_backward_dyadic(be, lam, n, pa, pb, na, nb, compact)
        if got is not None:
            return got
        lam = lam.to_q()
    es = be.entries(lam)
    if be.exact:
        # Sign-independent part entry by entry (Λ_ij·pa_j) and Λ·pb as one product; then the
        # columns whose two lines differ are fixed where the coefficient is negative.
        split = [j for j in range(n) if pa[j] != na[j] or pb[j] != nb[j]]
        new = []
        for i in range(m):
            new.extend(map(mul, es[i * n:(i + 1) * n], pa))
        bias = lam * fmpq_mat(n, 1, pb) if any(v != 0 for v in pb) else fmpq_mat(m, 1)
        for j in split:
            da, db = na[j], nb[j] - pb[j]
            for i in range(m):
                v = es[i * n + j]
                if v < 0:
                    new[i * n + j] = v * da
                    if db != 0:
                        bias[i, 0] += v * db
        return fmpq_mat(m, n, new), bias
    new, bias = [], []
    for i in range(m):
        row = es[i * n:(i + 1) * n]
        acc = be.const(fmpq(0))
        for v, a, ba, b, bb in zip(row, pa, pb, na, nb):
            s = be.sign(v)
            if s is None:
                new.append(be.hull(v * a, v * b))
                acc += be.hull(v * ba, v * bb)
            elif s >= 0:
                new.append(v * a)
                acc += v * ba
            else:
                new.append(v * b)
                acc += v * bb
        bias.append(acc)
    return be.from_entries(m, n, new), be.from_entries(m, 1, bias)


class _Cols:
    """A backend matrix ``Λ`` (m×n) whose columns outside ``keep`` are zero, held as the
    :class:`DyMat` ``M`` of the kept columns (m×k): behind a ReLU, the columns of its stably
    inactive neurons; the next product ``Λ·W`` then only needs the rows ``keep`` of ``W``."""

    __slots__ = ("M", "keep", "n")

    def __init__(self, M, keep, n):
        self.M, self.keep, self.n = M, keep, n

    def full(self):
        return self.M * DyMat(_selection(self.keep, self.n), 0)


def _selection(keep, n):
    """The 0/1 ``fmpz_mat`` (k×n) that picks the rows ``keep``."""
    S = fmpz_mat(len(keep), n)
    for t, j in enumerate(keep):
        S[t, j] = 1
    return S


def _full(x):
    return x.full() if isinstance(x, _Cols) else x


def _relax_backward_dyadic(be, lam, n, pa, pb, na, nb, compact=False):
    """:func:`relax_backward` for an integer-backed ``lam`` (:class:`DyMat`) and dyadic lines,
    as integer matrix products: ``Λ·diag(pa) + N·diag(na − pa)`` and ``Λ·pb + N·(nb − pb)``
    with ``N`` the negative entries of ``Λ`` in the columns whose two lines differ (the same
    values as the entry-by-entry rule). With ``compact`` the columns where both slopes are 0
    are left out (a :class:`_Cols`). ``None`` when a line is not dyadic."""
    pd = DyMat.from_entries(1, n, pa)
    if pd is None:
        return None
    keep = [j for j in range(n) if pa[j] != 0 or na[j] != 0] if compact else range(n)
    k = len(keep)
    pos = {j: t for t, j in enumerate(keep)}
    D = fmpz_mat(n, k)
    for t, (j, a) in enumerate(zip(keep, (pd.M[0, j] for j in keep))):
        if a:
            D[j, t] = a
    split = [j for j in range(n) if pa[j] != na[j] or pb[j] != nb[j]]
    new = lam * DyMat(D, pd.e)
    bias = lam * be.col(pb) if any(v != 0 for v in pb) else be.zeros(lam.nrows(), 1)
    if split:
        m, ks = lam.nrows(), len(split)
        delta = DyMat.from_entries(1, ks, [na[j] - pa[j] for j in split])
        dbias = be.col([nb[j] - pb[j] for j in split])
        if delta is None or not isinstance(dbias, DyMat):
            return None
        zero = fmpz(0)
        cols = lam.M * _selection(split, n).transpose()   # the split columns of Λ (m×ks)
        N = DyMat(fmpz_mat(m, ks, [v if v < 0 else zero for v in cols.entries()]), lam.e)
        scatter = fmpz_mat(ks, k)
        for t, (j, d) in enumerate(zip(split, delta.M.entries())):
            if d:
                scatter[t, pos[j]] = d
        new, bias = new + N * DyMat(scatter, delta.e), bias + N * dbias
    return (_Cols(new, list(keep), n) if compact and k < n else new), bias


class _Crown(_Run):
    def backward(self, target):
        """``(LA, Lb, UA, Ub)`` over the network input for the node ``target``."""
        be, graph = self.be, self.graph
        m = self.dims[target]
        lamL, lamU = {target: IDENT}, {target: IDENT}
        biasL = biasU = be.zeros(m, 1)
        for node in reversed(graph.nodes[:self.order[target] + 1]):
            if node.name not in lamL:
                continue
            LL, LU = lamL.pop(node.name), lamU.pop(node.name)
            op = node.op
            if op.passthrough:
                newL, newU = [LL], [LU]
            elif getattr(op, "affine", False):
                Ws, b, err = self.affine_coeffs(node)
                if err is not None:   # |Λ|·err needs the whole functional
                    same = LU is LL
                    LL = _full(LL)
                    LU = LL if same else _full(LU)
                if LL is IDENT:
                    newL, cL = list(Ws), b
                else:
                    newL, cL = [self._mul(LL, W) for W in Ws], self._mul(LL, b)
                if LU is LL:
                    newU, cU = newL, cL
                elif LU is IDENT:
                    newU, cU = list(Ws), b
                else:
                    newU, cU = [self._mul(LU, W) for W in Ws], self._mul(LU, b)
                biasL, biasU = biasL + cL, biasU + cU
                if err is not None:
                    aL = err if LL is IDENT else be.abs(LL) * err
                    aU = err if LU is IDENT else be.abs(LU) * err
                    biasL, biasU = biasL - aL, biasU + aU
            elif is_relaxable(op):
                rel = self.relaxation(node)
                n = self.dims[node.name]
                newL, bL = relax_backward(be, _full(LL), n, rel, False, True)
                newU, bU = relax_backward(be, _full(LU), n, rel, True, True)
                newL, newU = [newL], [newU]
                biasL, biasU = biasL + bL, biasU + bU
            else:
                raise UnsupportedOperatorError(f"{node.name}: operator {op.kind!r} has neither "
                                               "an affine form nor a relaxation")
            for inp, aL, aU in zip(node.inputs, newL, newU):
                d = self.dims[inp]
                same = lamL.get(inp) is lamU.get(inp) and aL is aU
                lamL[inp] = _add(be, lamL.get(inp), aL, d)
                lamU[inp] = lamL[inp] if same else _add(be, lamU.get(inp), aU, d)
        LA, UA = _full(lamL.get(graph.INPUT)), _full(lamU.get(graph.INPUT))
        n = graph.input_dim
        if LA is None:  # the node does not depend on the input
            LA = UA = be.zeros(m, n)
        if LA is IDENT:
            LA = be.mat(_eye(n))
        if UA is IDENT:
            UA = be.mat(_eye(n))
        return LA, biasL, UA, biasU

    def _mul(self, lam, W):
        """``Λ·W``; for a :class:`_Cols` ``Λ`` only the kept rows of ``W`` enter."""
        if not isinstance(lam, _Cols):
            return lam * W
        key = (id(W), tuple(lam.keep))
        got = self._rows.get(key)
        if got is None:
            S = _selection(lam.keep, lam.n)
            sub = DyMat(S * W.M, W.e) if isinstance(W, DyMat) else fmpq_mat(S) * W
            got = self._rows[key] = (W, sub)
        return lam.M * got[1]

    @property
    def _rows(self):
        if self.__dict__.get("_rows_cache") is None:
            self._rows_cache = {}
        return self._rows_cache

    def compute_bounds(self, name, final):
        for node in self.graph.nodes[:self.order[name] + 1]:
            if is_relaxable(node.op):
                self.relaxation(node)
        LA, Lb, UA, Ub = self.backward(name)
        lo = self.be.entries(concretize_mat(self.S, self.be, LA, Lb, False, self.ctx))
        hi = self.be.entries(concretize_mat(self.S, self.be, UA, Ub, True, self.ctx))
        self.tick()
        lo, hi = self.finish_bounds(name, lo, hi, final)
        if final:
            self.final_forms = (LA, Lb, UA, Ub)
        return lo, hi


def _forms_to_lists(run, forms):
    be, ctx = run.be, run.ctx
    LA, Lb, UA, Ub = forms

    def rows(M):
        n = M.ncols()
        es = [be.to_ctx(ctx, v) for v in be.entries(M)]
        return [es[i * n:(i + 1) * n] for i in range(M.nrows())]
    return (rows(LA), [be.to_ctx(ctx, v) for v in be.entries(Lb)],
            rows(UA), [be.to_ctx(ctx, v) for v in be.entries(Ub)])


def _result(method, run, graph, out, forms, intermediate):
    """The ``BoundsResult`` of a finished run: output box, final linear forms over the input,
    and with ``intermediate`` every node's bounds."""
    lA, lb, uA, ub = _forms_to_lists(run, forms)
    nodes = {}
    if intermediate:
        nodes = {k: run.box(a, b, None) for k, (a, b) in run.bounds.items()}
        nodes[graph.output] = out
    c = run.ctx
    return BoundsResult(method, getattr(c, "mode", c.name), c, out, _status(run),
                        lA, lb, uA, ub, nodes, run.notes)


def _status(run):
    mode = getattr(run.ctx, "mode", "exact")
    if getattr(run.S, "norm", None) == "2":
        run.rounded = True  # ‖A_i‖₂ is a square root, rounded outward
    if mode == "interval":
        return BOUND if run.rounded else ENCLOSURE
    if mode == "exact" and not run.rounded:
        return EXACT
    return BOUND


def _check_slope(lower_slope):
    from ..operators.relu import LOWER_SLOPES
    if lower_slope not in LOWER_SLOPES:
        raise InvalidValueError("lower_slope", lower_slope,
                                f"expected one of {', '.join(LOWER_SLOPES)}")


def run_with_escalation(fn, ctx, retries=3):
    """Run ``fn(ctx)``; in the interval mode an ``AmbiguousBranch`` restarts it at twice the
    precision (up to ``retries`` times) and is re-raised after that."""
    from ..numbers import IntervalContext
    for k in range(retries + 1):
        try:
            return fn(ctx)
        except AmbiguousBranch:
            if not isinstance(ctx, IntervalContext) or k == retries:
                raise
            ctx = IntervalContext(ctx.prec * 2)


def crown(graph, input_set, ctx=None, lower_slope="adaptive", intersect_ibp=False,
          intermediate=False, progress=None):
    """CROWN bounds of ``graph`` over ``input_set`` (a Box or an LpBall); see the module
    docstring. ``ctx`` defaults to ``DyadicContext(64)``."""
    _check_slope(lower_slope)
    ctx = ctx if ctx is not None else default_context("dyadic")

    def go(c):
        run = _Crown(graph, input_set, c, lower_slope, intersect_ibp, progress)
        run.notes = []
        with run.be.precision():
            need = pre_activation_nodes(graph)
            for node in graph.nodes:
                if node.name in need:
                    run.node_bounds(node.name)
            lo, hi = run.compute_bounds(graph.output, final=True)
            out = run.box(lo, hi, graph.nodes[-1].op.out_shape if graph.nodes else None)
            return _result("crown", run, graph, out, run.final_forms, intermediate)
    return run_with_escalation(go, ctx)


__all__ = ["crown", "BoundsResult", "relax_backward", "pre_activation_nodes", "QBackend"]
