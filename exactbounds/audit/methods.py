"""The audit's view of the network core: run a method, turn its result into exact values, and
read an input set (bounding box, membership, exact samples, minimising vertices).

Kept in one module so that CROWN and the L_p balls plug in here and nowhere else.
"""
import random

from flint import fmpq

from ..algorithms.ibp import ibp
from ..core import Box
from ..errors import UnsupportedOperatorError
from ..numbers import RationalContext, RInterval, interval, sqrt_enclosure

METHODS = ("ibp", "crown")


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


def run_method(graph, input_set, method, ctx, intermediate=False, **kw):
    """The method's bounds in ``ctx``: the output ``Box``, or with ``intermediate=True`` the dict
    ``{node name: Box}`` (the input included)."""
    if method == "ibp":
        box = input_set if isinstance(input_set, Box) else Box(*bounding_box(input_set))
        return ibp(graph, box, ctx, intermediate=intermediate)
    raise UnsupportedOperatorError(f"--method {method}: not available (supported: ibp)")


def exact_method_bounds(graph, input_set, method, bits=128, intermediate=False, **kw):
    """``run_method`` in ``RationalContext(bits)``, entries ``fmpq`` or ``RInterval``."""
    ctx = RationalContext(bits)
    res = run_method(graph, input_set, method, ctx, intermediate=intermediate, **kw)
    if intermediate:
        return {k: exact_box(b, ctx) for k, b in res.items()}
    return exact_box(res, ctx)


def linear_bounds(graph, input_set, method, bits=128, **kw):
    """The method's own linear bounds on every node it has them for, as
    ``{node name: (lA, uA)}`` with ``lA``/``uA`` lists of rows (coefficients of ``x``); used only
    to pick candidate corners, so any failure just returns ``{}``."""
    out = {}
    if method == "ibp" or method == "crown":
        out.update(affine_forms(graph, bits))
    return out


AFFINE_COST_LIMIT = 4_000_000


def affine_forms(graph, bits=128):
    """``{node: (A, A)}``: the exact affine map ``x -> A·x + c`` of every node, when the whole
    graph is affine (every op has ``aff`` and is not a nonlinearity) and small enough."""
    n = graph.input_dim
    cost = sum(getattr(nd.op, "in_dim", n) * getattr(nd.op, "out_dim", n) * n for nd in graph)
    if cost > AFFINE_COST_LIMIT:
        return {}
    if any(getattr(nd.op, "kind", "") in NONLINEAR or not hasattr(nd.op, "aff") for nd in graph):
        return {}
    from ..algorithms.ibp import run_graph
    from ..core import AffineVec
    ctx = RationalContext(bits)
    ident = AffineVec([[fmpq(int(i == j)) for j in range(n)] for i in range(n)], [fmpq(0)] * n)
    try:
        forms = run_graph(graph, ident, "aff", ctx, keep=True)
    except Exception:  # a heuristic only: any failure means no corner candidates
        return {}
    return {k: (f.A, f.A) for k, f in forms.items() if k != graph.INPUT}


NONLINEAR = {"relu", "sigmoid", "tanh", "softplus", "gelu", "maxpool"}


def make_rng(seed):
    return random.Random(seed)
