"""The rounding model of the audit's verdicts (``audit/verdicts.py``): the magnitude ``M`` of the
terms a float evaluation of a method sums for one bound, and the length ``n`` of its
``γ_n = n·u`` error model. A claim inside the method's exact bound by at most ``n·u·M`` is within
rounding of the same algorithm; farther inside, no rounding explains it."""

from flint import fmpq

from ..algorithms.ibp import ibp
from ..inputsets import bounding_box
from ..numbers import RationalContext
from ..operators.base import AffineOp, PassThrough


def _abs_col(M, col):
    """``|M|·col`` for an exact ``fmpq_mat`` ``M`` and a list ``col`` (row by row)."""
    n, es = M.ncols(), M.entries()
    return [
        sum((abs(v) * c for v, c in zip(es[i * n : (i + 1) * n], col)), fmpq(0))
        for i in range(M.nrows())
    ]


def ibp_magnitudes(graph, input_set, bits=128):
    """``{node: [M_i]}`` (exact): the magnitude of the terms a float evaluation of IBP sums for
    each entry. Input: ``max(|lo|, |hi|)``; an affine node ``Σ_k (|W_k| + Wrad_k)·M_k + |b| +
    brad``; a pass-through node its input's; any other node the larger ``|end|`` of its exact IBP
    box."""
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


def linear_magnitude(row, b, input_set, ctx):
    """``Σ_j |A_j|·max|x_j| + |b|`` over the input set's bounding box: the magnitude of the terms
    of a final linear bound ``A·x + b`` whose entries are elements of ``ctx`` (enclosures at
    their outer ends)."""
    box = bounding_box(input_set)

    def mag(v):
        return max(abs(ctx.lower(v)), abs(ctx.upper(v)))

    total = mag(b)
    for a, lo, hi in zip(row, box.lo, box.hi):
        total += mag(a) * max(abs(lo), abs(hi))
    return total


def rounding_steps(graph):
    """The length ``n`` of the rounding-error model ``γ_n = n·u`` of a float evaluation of a
    bound through ``graph``: per affine node its largest number of terms per output (nonzeros
    of a row, over all inputs) plus 1, per other node 2."""
    n = 0
    ctx = RationalContext(128)
    for node in graph.nodes:
        if isinstance(node.op, AffineOp):
            Ws = node.op.linear_enclosure(ctx)[0]
            rows = [0] * Ws[0].nrows()
            for W in Ws:
                c, es = W.ncols(), W.entries()
                for i in range(W.nrows()):
                    rows[i] += sum(1 for v in es[i * c : (i + 1) * c] if v != 0)
            n += max(rows, default=0) + 1
        else:
            n += 2
    return n
