"""Linear layer ``y = W·x + b`` (``W`` out×in), the ONNX ``Gemm``/``MatMul+Add``.

Weights enter exactly, so every sign branch (``W_ij >= 0``) is decided on exact data. In the
rational context with an exact input box the products run on python-flint ``fmpq_mat``
(centre/radius form: ``W·mid + b ± |W|·rad``), which is exact and fast.
"""
import numpy as np
from flint import fmpq, fmpq_mat, fmpz, fmpz_mat

from ..core import Box
from ..errors import ShapeError
from ..numbers import RationalContext, to_exact
from ..numbers.dyadic_mode import DyMat, dyadic_parts
from .base import AffineOp


class LinearParams:
    """``weight`` (rows = outputs) and ``bias``, converted exactly. A weight given as a numpy
    float array (or as nested lists of Python floats) is converted in one vectorised step into
    an integer matrix times a power of two (:class:`~exactbounds.numbers.dyadic_mode.DyMat`, exact:
    every float is a dyadic rational); ``weight`` (lists of ``fmpq``) is then built on first use."""

    def __init__(self, weight, bias=None, name="linear"):
        self.name = name
        self._mats = self._dy = self._absdy = None
        self._weight = None
        got = _float_weight(weight)
        if got is not None:
            self._dy, self._absdy = got[0], None
            self._abs_thunk = got[1]
            out = self._dy.nrows()
        else:
            rows = [list(r) for r in weight]
            if not rows or not rows[0]:
                raise ShapeError(f"{name}.weight is empty")
            n = len(rows[0])
            for i, r in enumerate(rows):
                if len(r) != n:
                    raise ShapeError(f"{name}.weight[{i}] has {len(r)} entries, weight[0] has "
                                     f"{n}")
            self._weight = [[to_exact(v, f"{name}.weight[{i}][{j}]") for j, v in enumerate(r)]
                            for i, r in enumerate(rows)]
            out = len(rows)
        bias = [0] * out if bias is None else list(bias)
        if len(bias) != out:
            raise ShapeError(f"{name}.bias has length {len(bias)}, weight has {out} rows")
        self.bias = [to_exact(v, f"{name}.bias[{i}]") for i, v in enumerate(bias)]

    @property
    def weight(self):
        if self._weight is None:
            W, n = self._dy.entries(), self._dy.ncols()
            self._weight = [list(W[i * n:(i + 1) * n]) for i in range(self._dy.nrows())]
        return self._weight

    @property
    def in_dim(self):
        return self._dy.ncols() if self._dy else len(self._weight[0])

    @property
    def out_dim(self):
        return self._dy.nrows() if self._dy else len(self._weight)

    def dyadic_mats(self):
        """``(W, |W|)`` as :class:`DyMat` (built once), or ``None`` when a weight is not a
        dyadic rational."""
        if self._dy is None and self._weight is not None:
            W = DyMat.from_q(self.mats()[0])
            self._dy = W if W is not None else False
            self._abs_thunk = lambda: DyMat.from_q(self.mats()[1])
        if not self._dy:
            return None
        if self._absdy is None:
            self._absdy = self._abs_thunk()
        return self._dy, self._absdy

    def mats(self):
        """``(W, |W|, b)`` as ``fmpq_mat``, built once."""
        if self._mats is None:
            b = fmpq_mat([[v] for v in self.bias])
            if self._dy:
                self._mats = (self._dy.to_q(), self.dyadic_mats()[1].to_q(), b)
            else:
                W = fmpq_mat(self._weight)
                absW = fmpq_mat([[abs(v) for v in r] for r in self._weight])
                self._mats = (W, absW, b)
        return self._mats


def _abs_dy(W):
    return DyMat(fmpz_mat(W.nrows(), W.ncols(), [abs(v) for v in W.M.entries()]), W.e)


def _float_weight(weight):
    """``(W, thunk of |W|)`` as :class:`DyMat` for a non-empty 2-d numpy float array or nested
    lists of Python floats whose entries are all finite; ``None`` for anything else (the
    entry-by-entry path then converts it, or names the bad entry)."""
    if isinstance(weight, np.ndarray):
        if weight.ndim != 2 or weight.dtype.kind != "f" or weight.dtype.itemsize > 8:
            return None
        a = weight.astype(np.float64)
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
    man, ex = np.frexp(a)                      # a = man·2^ex, 1/2 <= |man| < 1, exactly
    m = (man * 2.0 ** 53).astype(np.int64)     # exact: 53-bit integers
    ex = ex.astype(np.int64) - 53
    nz = m != 0
    low = np.where(nz, m & -m, 1)              # lowest set bit, a power of two <= 2^53
    tz = np.frexp(low.astype(np.float64))[1].astype(np.int64) - 1
    m, ex = m >> tz, ex + tz
    if not nz.any():
        M = fmpz_mat(*a.shape)
        return DyMat(M, 0), lambda: DyMat(M, 0)
    e = int(ex[nz].min())
    shift = np.where(nz, ex - e, 0)
    width = np.frexp(np.abs(m).astype(np.float64))[1] + shift   # bit length of m·2^shift
    if int(width.max()) <= 62:                 # every m·2^shift fits in int64
        v = np.where(nz, m << shift, 0)
        r, c = a.shape
        return (DyMat(fmpz_mat(r, c, v.ravel().tolist()), e),
                lambda: DyMat(fmpz_mat(r, c, np.abs(v).ravel().tolist()), e))
    vals = [fmpz(int(x) << int(k)) for x, k in zip(m.ravel().tolist(), shift.ravel().tolist())]
    W = DyMat(fmpz_mat(a.shape[0], a.shape[1], vals), e)
    return W, lambda: _abs_dy(W)


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
        W, _, b = self.params.mats()
        return [W], b

    def abs_weights(self):
        return [self.params.mats()[1]]

    def ibp(self, ctx, box):
        """As :meth:`AffineOp.ibp`; an exact box of dyadic rationals and dyadic weights take
        the centre/radius products on integer matrices (same values)."""
        got = self._ibp_dyadic(ctx, box)
        return got if got is not None else super().ibp(ctx, box)

    def _ibp_dyadic(self, ctx, box):
        p = self.params
        if not isinstance(ctx, RationalContext) or box.dim != p.in_dim:
            return None
        mats = p.dyadic_mats()
        if mats is None or not all(isinstance(v, fmpq) for v in box.lo + box.hi):
            return None
        if self._bias_dy is None:
            self._bias_dy = DyMat.from_entries(p.out_dim, 1, p.bias) or False
        parts = [dyadic_parts(v) for v in box.lo + box.hi]
        if not self._bias_dy or any(t is None for t in parts):
            return None
        n = box.dim
        e = min((k for m, k in parts if m), default=0)
        ints = [m << (k - e) for m, k in parts]
        lo, hi = ints[:n], ints[n:]
        W, aW = mats
        mid = fmpz_mat(n, 1, [fmpz(a + b) for a, b in zip(lo, hi)])   # 2^(e-1)·(lo + hi)
        rad = fmpz_mat(n, 1, [fmpz(b - a) for a, b in zip(lo, hi)])   # 2^(e-1)·(hi − lo)
        ym = DyMat(W.M * mid, W.e + e - 1) + self._bias_dy
        yr = DyMat(aW.M * rad, W.e + e - 1)
        return Box((ym - yr).entry_list(), (ym + yr).entry_list(), self.out_shape)

    _bias_dy = None
