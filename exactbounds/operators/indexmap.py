"""Index maps: ``y[i] = x_{k(i)}[j(i)]`` or ``y[i] = c_i`` (a constant), over several inputs.

Transpose, Slice, Gather with constant indices, Concat (of computed tensors and constants), Pad
with constants (and edge/reflect padding), Squeeze/Unsqueeze and Reshape are all such maps: the
ONNX loader applies the numpy operation to an array of entry ids (``io/onnx_loader.py``,
:func:`ids_for`) and reads the map off the result. Evaluation and IBP copy entries (no
arithmetic, exact in every context); CROWN and forward affine use the 0/1 selection matrices
``W_k[i, j] = [k(i) = k and j(i) = j]`` and the bias ``b_i = c_i`` (exact, dense: fine for small
and medium tensors).
"""

from math import prod

import numpy as np
from flint import fmpq, fmpq_mat

from ..core import Box
from ..errors import ShapeError
from ..linalg.fast_ibp import FBox, fbox_from_box
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

    def ibp_fast(self, ctx, *fboxes):
        """The float end-intervals copied entry by entry (a constant enclosed by its float
        ends), as one gather: never the dense selection matrix."""
        if getattr(self, "_gather", None) is None:
            offs = np.cumsum([0] + [prod(s) for s in self.in_shapes])
            n = int(offs[-1])
            self._gather = np.array(
                [n + j if k is None else int(offs[k]) + j for k, j in self.sel], dtype=np.int64
            )
        cs = [ctx.const(c) for c in self.consts]
        c = fbox_from_box(ctx, Box(cs, cs)) if cs else None
        parts = [
            np.concatenate([getattr(f, e) for f in fboxes] + ([getattr(c, e)] if cs else []))
            for e in FBox._fields
        ]
        return FBox(*(a[self._gather] for a in parts))

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
