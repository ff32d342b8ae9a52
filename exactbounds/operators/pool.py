"""Average pooling (ONNX ``AveragePool``, PyTorch ``AvgPool2d``) as an exact affine operator.

``y[c, i, j] = (1/n) Σ x[c, i·sh − pt + p, j·sw − pl + q]`` over the kernel window, where ``n`` is
``kh·kw`` when ``count_include_pad`` (padding counts as zeros), else the number of window
positions inside the input. Input ``(C, H, W)``, output ``(C, Ho, Wo)``.
"""

from flint import fmpq, fmpq_mat

from ..core import Box
from ..errors import InvalidModelError, ShapeError
from ..linalg.fast_ibp import diag_fbox, diag_floats
from ..linalg.structured import ChainPart, ConvGeom, ConvPart, DiagPart, LinearMap
from .base import AffineOp, as_shape
from .conv import Conv2d, _pads, _pair, out_size
from .registry import register


@register
class AveragePool(AffineOp):
    """``AveragePool(in_shape, kernel, stride=None, padding=0, count_include_pad=False)``;
    ``stride`` defaults to the kernel (PyTorch) and ``padding`` is as for ``Conv2d``."""

    kind = "avgpool"

    def __init__(
        self, in_shape, kernel, stride=None, padding=0, count_include_pad=False, name="avgpool"
    ):
        self.name = name
        in_shape = as_shape(in_shape, name)
        if len(in_shape) != 3:
            raise ShapeError(f"{name}: in_shape {in_shape} must be (C, H, W)")
        self.kernel = _pair(kernel, f"{name}.kernel")
        self.stride = self.kernel if stride is None else _pair(stride, f"{name}.stride")
        self.padding = _pads(padding, f"{name}.padding")
        if min(self.kernel) <= 0 or min(self.stride) <= 0 or min(self.padding) < 0:
            raise InvalidModelError(f"{name}: kernel and stride must be positive, padding >= 0")
        if any(pd >= self.kernel[k % 2] for k, pd in enumerate(self.padding)):
            raise InvalidModelError(
                f"{name}: padding {self.padding} must be smaller than the "
                f"kernel {self.kernel} (a window must touch the input)"
            )
        self.count_include_pad = bool(count_include_pad)
        C, H, W = in_shape
        pt, pl, pb, pr = self.padding
        ho = out_size(H, self.kernel[0], self.stride[0], 1, pt, pb, name)
        wo = out_size(W, self.kernel[1], self.stride[1], 1, pl, pr, name)
        self.in_shapes, self.out_shape = (in_shape,), (C, ho, wo)

    def windows(self):
        """Per output entry ``(flat input indices, n)``: the window and its divisor."""
        C, H, W = self.in_shapes[0]
        _, ho, wo = self.out_shape
        kh, kw = self.kernel
        sh, sw = self.stride
        pt, pl, _, _ = self.padding
        out = []
        for c in range(C):
            for i in range(ho):
                for j in range(wo):
                    cells = [
                        (c * H + y) * W + x
                        for y in range(i * sh - pt, i * sh - pt + kh)
                        for x in range(j * sw - pl, j * sw - pl + kw)
                        if 0 <= y < H and 0 <= x < W
                    ]
                    out.append((cells, kh * kw if self.count_include_pad else len(cells)))
        return out

    def _window_sums(self, ctx, x):
        """``(1/n)·Σ x`` over each window, in the context's arithmetic (no dense matrix)."""
        x = [ctx.coerce(v) for v in x]
        out = []
        for cells, n in self.windows():
            acc = x[cells[0]]
            for k in cells[1:]:
                acc = acc + x[k]
            out.append(acc * ctx.const(fmpq(1, n)))
        return out

    def evaluate(self, ctx, x):
        self.check_inputs([len(x)], "x")
        return self._window_sums(ctx, x)

    def ibp(self, ctx, box):
        """Every weight is positive: ``[(1/n)·Σ lo, (1/n)·Σ hi]`` over each window."""
        self.check_inputs([box.dim], "input box")
        return Box(self._window_sums(ctx, box.lo), self._window_sums(ctx, box.hi), self.out_shape)

    def ibp_fast(self, ctx, fbox):
        """On a float box (the mode ``fast``): the window sums as a depthwise convolution of
        ones (float im2col, rigorous), then ``· 1/n`` as a diagonal map of balls."""
        got = self.__dict__.get("_fast_pool")
        if got is None:
            C = self.in_shapes[0][0]
            kh, kw = self.kernel
            ones = [[[[1] * kw for _ in range(kh)]] for _ in range(C)]
            sums = Conv2d(ones, None, self.in_shapes[0], self.stride, self.padding, 1, C)
            scale = diag_floats([fmpq(1, n) for _, n in self.windows()], [0] * self.out_dim)
            got = self.__dict__["_fast_pool"] = (sums, scale)
        sums, (fm, fr, off) = got
        return diag_fbox(fm, fr, None, sums.ibp_fast(ctx, fbox))

    def linear_map(self):
        """``W = diag(1/n)·K`` with ``K`` the depthwise convolution of ones (no dense matrix)."""
        if getattr(self, "_lin", None) is None:
            C = self.in_shapes[0][0]
            kh, kw = self.kernel
            pt, pl, _, _ = self.padding
            g = ConvGeom(
                self.in_shapes[0], self.out_shape, self.kernel, self.stride, (1, 1), (pt, pl), C
            )
            ones = fmpq_mat(1, kh * kw, [1] * (kh * kw))
            conv = ConvPart(g, [ones] * C)
            diag = DiagPart(self.out_dim, [fmpq(1, n) for _, n in self.windows()])
            self._lin = LinearMap([ChainPart([diag, conv])], fmpq_mat(self.out_dim, 1))
        return self._lin

    def linear_params(self):
        C, H, W = self.in_shapes[0]
        _, ho, wo = self.out_shape
        kh, kw = self.kernel
        sh, sw = self.stride
        pt, pl, _, _ = self.padding
        M = fmpq_mat(self.out_dim, self.in_dim)
        for c in range(C):
            for i in range(ho):
                for j in range(wo):
                    cells = [
                        (y, x)
                        for y in range(i * sh - pt, i * sh - pt + kh)
                        for x in range(j * sw - pl, j * sw - pl + kw)
                        if 0 <= y < H and 0 <= x < W
                    ]
                    n = kh * kw if self.count_include_pad else len(cells)
                    row = (c * ho + i) * wo + j
                    for y, x in cells:
                        M[row, (c * H + y) * W + x] = fmpq(1, n)
        return [M], fmpq_mat(self.out_dim, 1)
