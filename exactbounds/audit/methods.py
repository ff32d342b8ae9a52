"""The audit's view of the network core: run a method, turn its result into exact values, and
read an input set (bounding box, membership, exact samples, minimising vertices).

Kept in one module so that CROWN and the L_p balls plug in here and nowhere else.
"""
import random

from flint import fmpq

from ..algorithms.ibp import ibp
from ..core import Box
from ..errors import UnsupportedOperatorError
from ..numbers import RationalContext, RInterval, arb_ends, interval, sqrt_enclosure

METHODS = ("ibp", "crown", "crown-ibp", "affine")
"""Methods the audit can re-run exactly (``crown-ibp``: IBP intermediate bounds, a CROWN pass
for the output; ``affine``: forward affine, auto_LiRPA's ``Forward``)."""
LINEAR = ("crown", "crown-ibp", "affine")
"""Methods whose result carries final linear bounds over the input."""


# ----------------------------------------------------------------------------- input sets

def bounding_box(input_set):
    """Exact ``(lo, hi)`` lists of a box around the input set."""
    if isinstance(input_set, Box):
        return list(input_set.lo), list(input_set.hi)
    bb = input_set.bounding_box()
    return list(bb.lo), list(bb.hi)


def contains(input_set, x, constraints=()):
    """Whether the exact point ``x`` lies in the input set and satisfies every extra linear
    constraint (``LinearComparison`` over ``X``, e.g. a VNN-LIB polytope)."""
    return input_set.contains(x) and all(c.holds(x) for c in constraints)


def minimizer(input_set, coeffs):
    """An exact point of the input set minimising ``Σ coeffs[j]·x[j]`` (coefficients exact or
    enclosures, taken at their midpoints). Box / L∞ ball: the corner ``lo_j`` where the
    coefficient is positive, ``hi_j`` where negative, the middle where it is 0 or undecided;
    L1 ball: ``center - r·sign(a_k)·e_k`` with ``|a_k|`` largest; L2 ball:
    ``center - r·a/N`` with ``N >= ‖a‖₂`` (the square root rounded up, so the point is inside)."""
    signs = [_sign(c) for c in coeffs]
    norm = getattr(input_set, "norm", "inf")
    if isinstance(input_set, Box) or norm == "inf":
        lo, hi = bounding_box(input_set)
        return [a if s > 0 else b if s < 0 else (a + b) / 2 for s, a, b in zip(signs, lo, hi)]
    c, r = list(input_set.center), input_set.radius
    a = [_mid(v) for v in coeffs]
    if not any(a):
        return c
    if norm == "1":
        k = max(range(len(a)), key=lambda j: abs(a[j]))
        c[k] = c[k] - r * (1 if a[k] > 0 else -1)
        return c
    nrm = sqrt_enclosure(sum((v * v for v in a), fmpq(0)), 64)
    N = nrm.hi if isinstance(nrm, RInterval) else nrm
    return [x - r * v / N for x, v in zip(c, a)]


def _mid(c):
    return (c.lo + c.hi) / 2 if isinstance(c, RInterval) else c


def _sign(c):
    lo, hi = (c.lo, c.hi) if isinstance(c, RInterval) else (c, c)
    return 1 if lo > 0 else -1 if hi < 0 else 0


def samples(input_set, rng, n):
    """``n`` exact points of the input set: for a box, alternately a random vertex and a random
    dyadic interior point (offsets ``k/2^20`` of the width)."""
    if not isinstance(input_set, Box):
        return [list(p) for p in input_set.sample(rng, n)]
    lo, hi = input_set.lo, input_set.hi
    out = []
    for k in range(n):
        if k % 2 == 0:
            out.append([a if rng.random() < 0.5 else b for a, b in zip(lo, hi)])
        else:
            out.append([a + (b - a) * fmpq(rng.randrange(2 ** 20 + 1), 2 ** 20)
                        for a, b in zip(lo, hi)])
    return out


# ----------------------------------------------------------------------------- methods

def exact_box(box, ctx):
    """The box with every entry as an exact ``fmpq`` or ``RInterval`` (``ctx.lower``/``upper``)."""
    return Box([interval(ctx.lower(a), ctx.upper(a)) for a in box.lo],
               [interval(ctx.lower(b), ctx.upper(b)) for b in box.hi], box.shape)


def method_context(method, mode=None, bits=None, prec=113):
    """The number context of the reference run: IBP in exact rationals (``bits`` = square-root
    enclosure bits, default 128); CROWN in ``mode`` (default ``dyadic`` with ``bits`` = 64, or
    ``exact`` / ``interval``), as ``exactbounds bounds`` runs it."""
    from ..numbers import make_context
    if method == "ibp":
        if mode not in (None, "exact"):
            raise UnsupportedOperatorError(f"--method ibp --mode {mode}: IBP is audited in "
                                           "exact rationals (--mode exact)")
        return RationalContext(bits or 128)
    mode = mode or "dyadic"
    return make_context(mode, bits=bits or (64 if mode == "dyadic" else 128), prec=prec)


def run_method(graph, input_set, method, ctx, intermediate=False, lower_slope="adaptive",
               intersect_ibp=False, relaxation="exactbounds", slopes=None, **_):
    """The method's bounds in ``ctx``: the output ``Box``, or with ``intermediate=True`` the dict
    ``{node name: Box}`` (IBP: every node and the input; CROWN: the nodes it bounds, i.e. every
    pre-activation node and the output). ``relaxation`` names the profile of the linear
    methods (``algorithms/profiles.py``)."""
    if method == "ibp":
        return ibp(graph, input_set, ctx, intermediate=intermediate)
    if method in LINEAR:
        res = crown_result(graph, input_set, ctx, intermediate, lower_slope, intersect_ibp,
                           method, relaxation, slopes)
        return res.nodes if intermediate else res.output
    raise UnsupportedOperatorError(f"--method {method}: not available (supported: "
                                   f"{', '.join(METHODS)})")


_CROWN_CACHE = {}


def crown_result(graph, input_set, ctx, intermediate=False, lower_slope="adaptive",
                 intersect_ibp=False, method="crown", relaxation="exactbounds", slopes=None):
    """The ``BoundsResult`` (with the final linear bounds) of a linear method (``crown``,
    ``crown-ibp``, ``affine``) under the profile ``relaxation`` (with replayed ReLU lower
    ``slopes``), memoised on the last call so the bounds and the vertex candidates share one
    run."""
    from ..algorithms.affine import affine
    from ..algorithms.crown import crown
    from ..algorithms.profiles import make_profile
    key = (repr(ctx), intermediate, lower_slope, intersect_ibp, method, relaxation,
           None if not slopes else tuple((k, tuple(v)) for k, v in sorted(slopes.items())))
    objs = _CROWN_CACHE.get("objs", (None, None))
    if _CROWN_CACHE.get("key") != key or objs[0] is not graph or objs[1] is not input_set:
        _CROWN_CACHE.clear()
        profile = make_profile(relaxation, slopes, lower_slope=lower_slope,
                               intersect_ibp=intersect_ibp,
                               intermediate="ibp" if method == "crown-ibp" else "crown")
        fn = affine if method == "affine" else crown
        _CROWN_CACHE["key"], _CROWN_CACHE["objs"] = key, (graph, input_set)
        _CROWN_CACHE["res"] = fn(graph, input_set, ctx, intermediate=intermediate,
                                 relaxation=profile)
    return _CROWN_CACHE["res"]


def exact_method_bounds(graph, input_set, method, bits=None, intermediate=False, mode=None,
                        prec=113, **kw):
    """``run_method`` in :func:`method_context`, every entry an exact ``fmpq`` or an
    ``RInterval`` with exact ends (``ctx.lower``/``ctx.upper``)."""
    ctx = method_context(method, mode, bits, prec)
    res = run_method(graph, input_set, method, ctx, intermediate=intermediate, **kw)
    if intermediate:
        return {k: exact_box(b, ctx) for k, b in res.items()}
    return exact_box(res, ctx)


def linear_bounds(graph, input_set, method, bits=None, mode=None, prec=113, **kw):
    """Coefficient rows whose minimising / maximising vertices are candidates:
    ``{node: [(source, lA, uA)]}``. ``corner``: the method's own linear bound, i.e. the exact
    affine map of each node when the graph is affine (IBP attains its bound there), or CROWN's
    final linear bound when auditing CROWN; ``crown_vertex``: CROWN's final linear bound on the
    output (dyadic, 64 bits, unless the audited method is CROWN). Used only to pick candidates,
    so a failure just leaves a source out."""
    out = {}
    for node, (A, _) in affine_forms(graph).items():
        out.setdefault(node, []).append(("corner", A, A))
    try:
        own = method in LINEAR
        ctx = method_context("crown", mode if own else None, bits if own else None, prec)
        res = crown_result(graph, input_set, ctx, False, kw.get("lower_slope", "adaptive"),
                           kw.get("intersect_ibp", False), method if own else "crown",
                           kw.get("relaxation", "exactbounds"), kw.get("slopes"))
        src = "corner" if own else "crown_vertex"
        out.setdefault(graph.output, []).append((src, res.lA, res.uA))
    except Exception:  # noqa: BLE001 - a heuristic only: no CROWN candidate for this graph
        pass
    return out


AFFINE_COST_LIMIT = 4_000_000


def affine_forms(graph, bits=128):
    """``{node: (A, A)}``: the exact affine map ``x -> A·x + c`` of every node, when the whole
    graph is affine (every op has ``aff`` and is not a nonlinearity) and small enough."""
    n = graph.input_dim
    cost = sum(getattr(nd.op, "in_dim", n) * getattr(nd.op, "out_dim", n) * n for nd in graph)
    if cost > AFFINE_COST_LIMIT:
        return {}
    if any(_nonlinear(nd.op) or not hasattr(nd.op, "aff") for nd in graph):
        return {}
    from ..algorithms.ibp import run_graph
    from ..core import AffineVec
    ctx = RationalContext(bits)
    ident = AffineVec([[fmpq(int(i == j)) for j in range(n)] for i in range(n)], [fmpq(0)] * n)
    try:
        forms = run_graph(graph, ident, "aff", ctx, keep=True)
    except Exception:  # noqa: BLE001 - a heuristic only: no corner candidates
        return {}
    return {k: (f.A, f.A) for k, f in forms.items() if k != graph.INPUT}


NONLINEAR = {"relu", "sigmoid", "tanh", "softplus", "gelu", "maxpool"}


def _nonlinear(op):
    return getattr(op, "kind", "") in NONLINEAR or op.needs_bounds


def make_rng(seed):
    return random.Random(seed)


# ----------------------------------------------------------------------------- rounding model

def _abs_col(M, col):
    """``|M|·col`` for an exact ``fmpq_mat`` ``M`` and a list ``col`` (row by row)."""
    n, es = M.ncols(), M.entries()
    return [sum((abs(v) * c for v, c in zip(es[i * n:(i + 1) * n], col)), fmpq(0))
            for i in range(M.nrows())]


def ibp_magnitudes(graph, input_set, bits=128):
    """``{node: [M_i]}`` (exact): the magnitude of the terms a float evaluation of IBP sums for
    each entry. Input: ``max(|lo|, |hi|)``; an affine node ``Σ_k (|W_k| + Wrad_k)·M_k + |b| +
    brad``; a pass-through node its input's; any other node the larger ``|end|`` of its exact IBP
    box."""
    from ..operators.base import AffineOp, PassThrough
    ctx = RationalContext(bits)
    boxes = ibp(graph, input_set, ctx, intermediate=True)
    mags = {}
    for name, box in boxes.items():
        lo, hi = box.outer(ctx)
        mags[name] = [max(abs(a), abs(b)) for a, b in zip(lo, hi)]
    for node in graph.nodes:
        op = node.op
        if isinstance(op, PassThrough):
            mags[node.name] = mags[node.inputs[0]]
        elif isinstance(op, AffineOp):
            Ws, b, Wr, br = op.linear_enclosure(ctx)
            acc = [abs(v) for v in b.entries()]
            if br is not None:
                acc = [a + abs(r) for a, r in zip(acc, br.entries())]
            for k, (W, inp) in enumerate(zip(Ws, node.inputs)):
                terms = _abs_col(W, mags[inp])
                if Wr is not None:
                    terms = [t + r for t, r in zip(terms, _abs_col(Wr[k], mags[inp]))]
                acc = [a + t for a, t in zip(acc, terms)]
            mags[node.name] = acc
    return mags


def linear_magnitude(row, b, input_set):
    """``Σ_j |A_j|·max|x_j| + |b|`` over the input set's bounding box: the magnitude of the terms
    of a final linear bound ``A·x + b`` (exact; enclosures at their outer ends)."""
    lo, hi = bounding_box(input_set)
    xmax = [max(abs(v) for v in (*_exact_ends(a), *_exact_ends(c))) for a, c in zip(lo, hi)]
    total = max(abs(v) for v in _exact_ends(b))
    for a, x in zip(row, xmax):
        total += max(abs(v) for v in _exact_ends(a)) * x
    return total


def _exact_ends(v):
    """Exact ``(lo, hi)`` of an ``fmpq``, ``RInterval`` or python-flint ``arb``."""
    if isinstance(v, RInterval):
        return v.lo, v.hi
    if isinstance(v, fmpq):
        return v, v
    if hasattr(v, "mid"):
        return arb_ends(v)
    return fmpq(v), fmpq(v)


def rounding_steps(graph):
    """The length ``n`` of the rounding-error model ``γ_n = n·u`` of a float evaluation of a
    bound through ``graph``: per affine node its largest number of terms per output (nonzeros
    of a row, over all inputs) plus 1, per other node 2."""
    from ..operators.base import AffineOp
    n = 0
    ctx = RationalContext(128)
    for node in graph.nodes:
        if isinstance(node.op, AffineOp):
            Ws = node.op.linear_enclosure(ctx)[0]
            rows = [0] * Ws[0].nrows()
            for W in Ws:
                c, es = W.ncols(), W.entries()
                for i in range(W.nrows()):
                    rows[i] += sum(1 for v in es[i * c:(i + 1) * c] if v != 0)
            n += max(rows, default=0) + 1
        else:
            n += 2
    return n
