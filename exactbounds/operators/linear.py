"""Linear layer ``y = W·x + b`` (``W`` out×in), the ONNX ``Gemm``/``MatMul+Add``.

Weights enter exactly, so every sign branch (``W_ij >= 0``) is decided on exact data. In the
rational context with an exact input box the products run on python-flint ``fmpq_mat``
(centre/radius form: ``W·mid + b ± |W|·rad``), which is exact and fast.
"""
from flint import fmpq, fmpq_mat

from ..core import AffineVec, Box
from ..errors import ShapeError
from ..numbers import DEFAULT_CONTEXT, RationalContext, to_exact
from .base import AffineOp


class LinearParams:
    """``weight`` (rows = outputs) and ``bias``, converted exactly."""

    def __init__(self, weight, bias=None, name="linear"):
        rows = [list(r) for r in weight]
        if not rows or not rows[0]:
            raise ShapeError(f"{name}.weight is empty")
        n = len(rows[0])
        for i, r in enumerate(rows):
            if len(r) != n:
                raise ShapeError(f"{name}.weight[{i}] has {len(r)} entries, weight[0] has {n}")
        self.weight = [[to_exact(v, f"{name}.weight[{i}][{j}]") for j, v in enumerate(r)]
                       for i, r in enumerate(rows)]
        bias = [0] * len(rows) if bias is None else list(bias)
        if len(bias) != len(rows):
            raise ShapeError(f"{name}.bias has length {len(bias)}, weight has {len(rows)} rows")
        self.bias = [to_exact(v, f"{name}.bias[{i}]") for i, v in enumerate(bias)]
        self.name = name
        self._mats = None

    @property
    def in_dim(self):
        return len(self.weight[0])

    @property
    def out_dim(self):
        return len(self.weight)

    def mats(self):
        """``(W, |W|, b)`` as ``fmpq_mat``, built once."""
        if self._mats is None:
            W = fmpq_mat(self.weight)
            absW = fmpq_mat([[abs(v) for v in r] for r in self.weight])
            b = fmpq_mat([[v] for v in self.bias])
            self._mats = (W, absW, b)
        return self._mats


def _check(params, n, what):
    if n != params.in_dim:
        raise ShapeError(f"{params.name}: {what} has {n} entries, the layer takes {params.in_dim}")


def evaluate_linear(params, x, ctx=DEFAULT_CONTEXT):
    """``W·x + b`` at the point ``x``."""
    x = [ctx.coerce(v) for v in x]
    _check(params, len(x), "x")
    out = []
    for row, b in zip(params.weight, params.bias):
        acc = ctx.const(b)
        for w, v in zip(row, x):
            if w != 0:
                acc = acc + ctx.const(w) * v
        out.append(acc)
    return out


def ibp_linear(params, box, ctx=DEFAULT_CONTEXT):
    """Interval bounds: ``lo_i = b_i + Σ_j W_ij·(lo_j if W_ij >= 0 else hi_j)``, ``hi`` likewise."""
    _check(params, box.dim, "the input box")
    if isinstance(ctx, RationalContext) and all(isinstance(v, fmpq) for v in box.lo + box.hi):
        W, absW, b = params.mats()
        mid = fmpq_mat([[(a + c) / 2] for a, c in zip(box.lo, box.hi)])
        rad = fmpq_mat([[(c - a) / 2] for a, c in zip(box.lo, box.hi)])
        ym, yr = W * mid + b, absW * rad
        lo = [ym[i, 0] - yr[i, 0] for i in range(params.out_dim)]
        hi = [ym[i, 0] + yr[i, 0] for i in range(params.out_dim)]
        return Box(lo, hi)
    xl = [ctx.coerce(v) for v in box.lo]
    xh = [ctx.coerce(v) for v in box.hi]
    lo, hi = [], []
    for row, b in zip(params.weight, params.bias):
        bl = bh = ctx.const(b)
        for w, a, c in zip(row, xl, xh):
            if w > 0:
                wc = ctx.const(w)
                bl, bh = bl + wc * a, bh + wc * c
            elif w < 0:
                wc = ctx.const(w)
                bl, bh = bl + wc * c, bh + wc * a
        lo.append(bl)
        hi.append(bh)
    return Box(lo, hi)


def aff_linear(params, aff, ctx=DEFAULT_CONTEXT):
    """Affine composition: ``W·(A·x + c) + b = (W·A)·x + (W·c + b)``."""
    _check(params, aff.out_dim, "the affine form's output")
    A = [[ctx.coerce(v) for v in r] for r in aff.A]
    c = [ctx.coerce(v) for v in aff.c]
    newA, newc = [], []
    for row, b in zip(params.weight, params.bias):
        nz = [(ctx.const(w), k) for k, w in enumerate(row) if w != 0]
        newA.append([sum((w * A[k][j] for w, k in nz), ctx.const(0)) for j in range(aff.in_dim)])
        newc.append(sum((w * c[k] for w, k in nz), ctx.const(b)))
    return AffineVec(newA, newc, aff.in_dim)


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
