"""Transposed 2-D convolution (ONNX ``ConvTranspose``) as an exact affine operator.

``y[g·Mg + m, i·sh − pt + p·dh, j·sw − pl + q·dw] += W[c, m, p, q]·x[c, i, j]`` for every input
channel ``c`` (of group ``g = c // (C/G)``), kernel position ``(p, q)`` and output channel ``m < Mg``,
where the target lies inside the output; ``y += b[o]``. Output size per axis
``s·(n − 1) + output_padding + (k − 1)·d + 1 − pad_begin − pad_end``.
"""
from flint import fmpq_mat

from ..errors import InvalidModelError, ShapeError
from ..numbers import to_exact
from .base import AffineOp, as_shape
from .registry import register


@register
class ConvTranspose2d(AffineOp):
    """``ConvTranspose2d(weight [C][M/G][kh][kw], bias or None, in_shape (C, H, W), stride,
    pads (top, left, bottom, right), dilation, groups, output_padding)``."""

    kind = "convtranspose2d"

    def __init__(self, weight, bias, in_shape, stride=(1, 1), pads=(0, 0, 0, 0),
                 dilation=(1, 1), groups=1, output_padding=(0, 0), name="convtranspose"):
        self.name = name
        C, H, W = as_shape(in_shape, name)
        w = weight.tolist() if hasattr(weight, "tolist") else weight
        if len(w) != C:
            raise ShapeError(f"{name}.weight has {len(w)} input channels, the input {C}")
        G = int(groups)
        if G <= 0 or C % G:
            raise InvalidModelError(f"{name}.group = {G} must divide C = {C}")
        mg, kh, kw = len(w[0]), len(w[0][0]), len(w[0][0][0])
        self.weight = [[[[to_exact(v, f"{name}.weight") for v in r] for r in m] for m in c]
                       for c in w]
        self.groups, self.kernel = G, (kh, kw)
        self.stride, self.dilation = tuple(int(v) for v in stride), tuple(int(v) for v in dilation)
        self.pads = tuple(int(v) for v in pads)
        if min(self.stride + self.dilation) <= 0:
            raise InvalidModelError(f"{name}: stride and dilation must be positive")
        op_h, op_w = (int(v) for v in output_padding)
        pt, pl, pb, pr = self.pads
        ho = self.stride[0] * (H - 1) + op_h + (kh - 1) * self.dilation[0] + 1 - pt - pb
        wo = self.stride[1] * (W - 1) + op_w + (kw - 1) * self.dilation[1] + 1 - pl - pr
        if ho <= 0 or wo <= 0:
            raise ShapeError(f"{name}: output size ({ho}, {wo}) is not positive")
        cout = mg * G
        bias = [0] * cout if bias is None else list(bias)
        if len(bias) != cout:
            raise ShapeError(f"{name}.bias has {len(bias)} entries, expected {cout}")
        self.bias_values = [to_exact(v, f"{name}.bias[{i}]") for i, v in enumerate(bias)]
        self.in_shapes, self.out_shape = ((C, H, W),), (cout, ho, wo)

    def linear_params(self):
        C, H, W = self.in_shapes[0]
        cout, ho, wo = self.out_shape
        kh, kw = self.kernel
        sh, sw = self.stride
        dh, dw = self.dilation
        pt, pl = self.pads[0], self.pads[1]
        cg, mg = C // self.groups, cout // self.groups
        M = fmpq_mat(self.out_dim, self.in_dim)
        for c in range(C):
            g = c // cg
            for i in range(H):
                for j in range(W):
                    col = (c * H + i) * W + j
                    for m in range(mg):
                        o = g * mg + m
                        for p in range(kh):
                            y = i * sh - pt + p * dh
                            if not 0 <= y < ho:
                                continue
                            for q in range(kw):
                                x = j * sw - pl + q * dw
                                v = self.weight[c][m][p][q]
                                if 0 <= x < wo and v != 0:
                                    M[(o * ho + y) * wo + x, col] += v
        b = fmpq_mat(self.out_dim, 1, [self.bias_values[o] for o in range(cout)
                                       for _ in range(ho * wo)])
        return [M], b
