"""Linear layer ``y = W·x + b`` (``W`` out×in), the ONNX ``Gemm``/``MatMul+Add``.

Weights enter exactly, so every sign branch (``W_ij >= 0``) is decided on exact data. Float
weights (numpy arrays, or lists of Python floats) are converted in one vectorised step into an
integer matrix times a power of two; evaluation and IBP run through
:class:`~exactbounds.linalg.affine.AffineMats` (exact matrix products, centre/radius form).
"""

import numpy as np
from flint import fmpq_mat

from ..errors import ShapeError
from ..linalg import DyMat
from ..linalg.affine import AffineMats
from ..numbers import to_exact
from .base import AffineOp
from .registry import register


class LinearParams:
    """``weight`` (rows = outputs) and ``bias``, converted exactly. A weight given as a numpy
    float array (or as nested lists of Python floats) is converted in one vectorised step into
    an integer matrix times a power of two (:class:`~exactbounds.numbers.dyadic_mode.DyMat`, exact:
    every float is a dyadic rational); ``weight`` (lists of ``fmpq``) is then built on first use."""

    def __init__(self, weight, bias=None, name="linear"):
        self.name = name
        self._mats = self._dy = None
        self._weight = None
        got = _float_weight(weight)
        if got is not None:
            self._dy, self._abs_thunk = got
            out = self._dy.nrows()
        else:
            rows = [list(r) for r in weight]
            if not rows or not rows[0]:
                raise ShapeError(f"{name}.weight is empty")
            n = len(rows[0])
            for i, r in enumerate(rows):
                if len(r) != n:
                    raise ShapeError(f"{name}.weight[{i}] has {len(r)} entries, weight[0] has {n}")
            self._weight = [
                [to_exact(v, f"{name}.weight[{i}][{j}]") for j, v in enumerate(r)]
                for i, r in enumerate(rows)
            ]
            out = len(rows)
        bias = [0] * out if bias is None else list(bias)
        if len(bias) != out:
            raise ShapeError(f"{name}.bias has length {len(bias)}, weight has {out} rows")
        self.bias = [to_exact(v, f"{name}.bias[{i}]") for i, v in enumerate(bias)]

    @property
    def weight(self):
        if self._weight is None:
            W, n = self._dy.entries(), self._dy.ncols()
            self._weight = [list(W[i * n : (i + 1) * n]) for i in range(self._dy.nrows())]
        return self._weight

    @property
    def in_dim(self):
        return self._dy.ncols() if self._dy else len(self._weight[0])

    @property
    def out_dim(self):
        return self._dy.nrows() if self._dy else len(self._weight)

    def affine_mats(self):
        """The coefficients as :class:`AffineMats` (built once; every representation of ``W``
        is built on first use)."""
        if self._mats is None:
            b = fmpq_mat([[v] for v in self.bias])
            if self._dy:
                self._mats = AffineMats([self._dy], b, [self._abs_thunk])
            else:
                self._mats = AffineMats([fmpq_mat(self._weight)], b)
        return self._mats

    def mats(self):
        """``(W, |W|, b)`` as ``fmpq_mat``."""
        m = self.affine_mats()
        return m.q(0), m.abs_q(0), m.b


def _float_weight(weight):
    """``(W, thunk of |W|)`` as :class:`DyMat` for a non-empty 2-d numpy float array or nested
    lists of Python floats whose entries are all finite; ``None`` for anything else (the
    entry-by-entry path then converts it, or names the bad entry). The integer matrix is built
    on first use (:meth:`DyMat.from_floats`)."""
    if isinstance(weight, np.ndarray):
        if weight.ndim != 2 or weight.dtype.kind != "f" or weight.dtype.itemsize > 8:
            return None
        a = weight
    else:
        try:
            rows = list(weight)
            if not rows or not all(set(map(type, r)) == {float} for r in rows):
                return None
            a = np.array(rows, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        if a.ndim != 2:
            return None
    if a.size == 0 or not np.isfinite(a).all():
        return None
    W = DyMat.from_floats(a)
    return W, W.abs


@register
class Linear(AffineOp):
    """Graph operator ``y = W·x + b`` wrapping :class:`LinearParams` (ONNX ``Gemm``, and
    ``MatMul`` + ``Add`` with ``W`` the transpose of the right operand). Input shape ``(in,)``
    (any tensor of that size, flattened row-major), output ``(out,)``. Verbs from
    :class:`~exactbounds.operators.base.AffineOp`."""

    kind = "linear"

    def __init__(self, params):
        self.params = params
        self.name = params.name
        self.in_shapes = ((params.in_dim,),)
        self.out_shape = (params.out_dim,)

    @classmethod
    def from_weights(cls, weight, bias=None, name="linear"):
        """``Linear(LinearParams(weight, bias, name))``; ``weight`` is [out][in]."""
        return cls(LinearParams(weight, bias, name))

    def linear_params(self):
        m = self.params.affine_mats()
        return [m.q(0)], m.b

    def mats(self):
        return self.params.affine_mats()
