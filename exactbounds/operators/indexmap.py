"""Index maps: ``y[i] = x_{k(i)}[j(i)]`` or ``y[i] = c_i`` (a constant), over several inputs.

Transpose, Slice, Gather with constant indices, Concat (of computed tensors and constants), Pad
with constants (and edge/reflect padding), Squeeze/Unsqueeze and Reshape are all such maps: the
ONNX loader applies the numpy operation to an array of entry ids (``io/onnx_loader.py``,
:func:`ids_for`) and reads the map off the result. Evaluation and IBP copy entries (no
arithmetic, exact in every context); CROWN moves the columns of its functionals
(:meth:`IndexMap.linear_map`); forward affine uses the 0/1 selection matrices
``W_k[i, j] = [k(i) = k and j(i) = j]`` and the bias ``b_i = c_i`` (exact, dense).
"""

from math import prod

import numpy as np
from flint import fmpq, fmpq_mat

from ..core import Box
from ..errors import ShapeError
from ..linalg.fast_ibp import FBox, _pairs
from ..linalg.structured import GatherPart, LinearMap
from ..numbers import to_exact
from .base import AffineOp, as_shape
from .registry import register


def ids_for(shapes):
    """One int64 id array per input shape: input ``k``'s entries numbered ``offset_k + j``
    (row-major), the offsets consecutive; constants get negative ids (:func:`const_ids`)."""
    out, off = [], 0
    for s in shapes:
        n = prod(s)
        out.append(np.arange(off, off + n, dtype=np.int64).reshape(tuple(s)))
        off += n
    return out


def const_ids(values, consts):
    """The exact constants ``values`` (an array) as negative ids ``-1 - t`` into ``consts``
    (appended to)."""
    values = np.asarray(values, dtype=object)
    flat = []
    for v in values.ravel().tolist():
        flat.append(-1 - len(consts))
        consts.append(to_exact(v, "constant"))
    return np.array(flat, dtype=np.int64).reshape(values.shape)


@register
class IndexMap(AffineOp):
    """``IndexMap(in_shapes, out_shape, ids, consts)``: ``ids`` (flat, length out_dim) with
    ``ids[i] = offset_k + j`` selecting entry ``j`` of input ``k`` (offsets consecutive in the
    order of ``in_shapes``), or ``ids[i] = -1 - t`` for the constant ``consts[t]``."""

    kind = "indexmap"

    def __init__(self, in_shapes, out_shape, ids, consts=(), name="indexmap"):
        self.name = name
        self.in_shapes = tuple(as_shape(s, name) for s in in_shapes)
        self.out_shape = as_shape(out_shape, name)
        ids = [int(v) for v in np.asarray(ids).ravel().tolist()]
        if len(ids) != prod(self.out_shape):
            raise ShapeError(f"{name}: {len(ids)} ids for an output of shape {self.out_shape}")
        self.consts = [to_exact(c, f"{name}.consts[{t}]") for t, c in enumerate(consts)]
        offs, o = [], 0
        for s in self.in_shapes:
            offs.append(o)
            o += prod(s)
        self.sel = []  # per output entry: (k, j) or (None, t)
        for i, v in enumerate(ids):
            if v < 0:
                if -1 - v >= len(self.consts):
                    raise ShapeError(
                        f"{name}: output {i} reads constant {-1 - v}, only {len(self.consts)} given"
                    )
                self.sel.append((None, -1 - v))
                continue
            if v >= o:
                raise ShapeError(f"{name}: output {i} reads entry {v}, the inputs have {o}")
            k = max(t for t, a in enumerate(offs) if a <= v)
            self.sel.append((k, v - offs[k]))

    def is_identity(self):
        """One input, no constants, every entry read once in order (a reshape)."""
        return (
            len(self.in_shapes) == 1
            and len(self.sel) == self.in_dim
            and all(k == 0 and j == i for i, (k, j) in enumerate(self.sel))
        )

    def linear_map(self):
        """Per input a column gather/scatter (exact in every backend; no dense matrix)."""
        if getattr(self, "_lin", None) is None:
            parts = []
            for k, s in enumerate(self.in_shapes):
                dst = [i for i, (kk, _) in enumerate(self.sel) if kk == k]
                src = [self.sel[i][1] for i in dst]
                parts.append(GatherPart(prod(s), self.out_dim, dst, src))
            b = fmpq_mat(self.out_dim, 1)
            for i, (k, j) in enumerate(self.sel):
                if k is None:
                    b[i, 0] = self.consts[j]
            self._lin = LinearMap(parts, b)
        return self._lin

    def ibp_fast(self, ctx, *fboxes):
        """On float boxes (the mode ``fast``): the four end vectors gathered (no arithmetic);
        a constant's ends are the floats around it."""
        got = self.__dict__.get("_fast_sel")
        if got is None:
            src = [
                np.array([j for k, j in self.sel if k == t], dtype=np.int64)
                for t in range(self.arity)
            ]
            dst = [
                np.array([i for i, (k, _) in enumerate(self.sel) if k == t], dtype=np.int64)
                for t in range(self.arity)
            ]
            ci = np.array([i for i, (k, _) in enumerate(self.sel) if k is None], dtype=np.int64)
            cl, ch = _pairs(ctx, [self.consts[j] for k, j in self.sel if k is None])
            got = self.__dict__["_fast_sel"] = (src, dst, ci, cl, ch)
        src, dst, ci, cl, ch = got
        ends = []
        for f, cv in ((0, cl), (1, ch), (2, cl), (3, ch)):  # each end of c lies in [cl, ch]
            out = np.empty(self.out_dim)
            for t, fb in enumerate(fboxes):
                out[dst[t]] = fb[f][src[t]]
            out[ci] = cv
            ends.append(out)
        return FBox(*ends)

    def linear_params(self):
        Ws = [fmpq_mat(self.out_dim, prod(s)) for s in self.in_shapes]
        b = fmpq_mat(self.out_dim, 1)
        for i, (k, j) in enumerate(self.sel):
            if k is None:
                b[i, 0] = self.consts[j]
            else:
                Ws[k][i, j] = 1
        return Ws, b

    def _copy(self, ctx, xs, consts):
        return [consts[j] if k is None else xs[k][j] for k, j in self.sel]

    def evaluate(self, ctx, *xs):
        self.check_inputs([len(x) for x in xs], "x")
        return self._copy(ctx, xs, [ctx.const(c) for c in self.consts])

    def ibp(self, ctx, *boxes):
        """The entries' bounds copied (a constant is its own bound)."""
        self.check_inputs([b.dim for b in boxes], "input box")
        cs = [ctx.const(c) for c in self.consts]
        return Box(
            self._copy(ctx, [b.lo for b in boxes], cs),
            self._copy(ctx, [b.hi for b in boxes], cs),
            self.out_shape,
        )

    def deriv(self, ctx, *dboxes):
        """Derivatives copied; a constant entry has derivative 0."""
        self.check_inputs([b.dim for b in dboxes], "input box")
        z = [ctx.const(fmpq(0))] * len(self.consts)
        return Box(
            self._copy(ctx, [b.lo for b in dboxes], z),
            self._copy(ctx, [b.hi for b in dboxes], z),
            self.out_shape,
        )

    deriv2 = deriv
