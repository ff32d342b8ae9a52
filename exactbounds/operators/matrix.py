"""``MatrixOp``: an affine map ``y = Σ_k W_k·x_k + b`` given by exact ``fmpq_mat`` coefficients
(the loader builds ReduceSum/ReduceMean, MatMul of a tensor by a constant matrix on either side,
and Gemm with the computed operand second as such maps)."""

from math import prod

from flint import fmpq_mat

from ..errors import ShapeError
from ..linalg.structured import LinearMap, SparsePart, density
from .base import AffineOp, as_shape
from .registry import register


@register
class MatrixOp(AffineOp):
    """``MatrixOp(in_shapes, out_shape, Ws, b=None, kind="matrix")``."""

    kind = "matrix"

    def __init__(self, in_shapes, out_shape, Ws, b=None, kind=None, name="matrix"):
        self.name = name
        if kind:
            self.kind = kind
        self.in_shapes = tuple(as_shape(s, name) for s in in_shapes)
        self.out_shape = as_shape(out_shape, name)
        m = prod(self.out_shape)
        for k, (W, s) in enumerate(zip(Ws, self.in_shapes)):
            if W.nrows() != m or W.ncols() != prod(s):
                raise ShapeError(
                    f"{name}: W_{k} is {W.nrows()}x{W.ncols()}, expected {m}x{prod(s)}"
                )
        self._W = list(Ws)
        self._b = fmpq_mat(m, 1) if b is None else b

    def linear_params(self):
        return self._W, self._b

    def linear_map(self):
        """Sparse coefficients (ReduceSum/ReduceMean, a MatMul by a constant on a tensor: at most
        ``SPARSE`` of the entries nonzero) as their nonzero entries; else ``None`` (dense)."""
        if getattr(self, "_lin", 0) == 0:
            sparse = all(density(W) <= SPARSE for W in self._W)
            self._lin = LinearMap([SparsePart(W) for W in self._W], self._b) if sparse else None
        return self._lin


SPARSE = 0.1
