"""2-D convolution (ONNX ``Conv``, PyTorch ``Conv2d``) as an exact affine operator.

``y[o, i, j] = b[o] + Σ_{c, p, q} W[o, c, p, q] · x[g·Cin/G + c, i·sh − pt + p·dh, j·sw − pl + q·dw]``
with zero padding, ``g = o // (Cout/G)`` the group of output channel ``o``. Input shape
``(Cin, H, W)``, output ``(Cout, Ho, Wo)`` with ``Ho = ⌊(H + pt + pb − dh·(kh−1) − 1)/sh⌋ + 1``.
The operator is the sparse matrix of that map (built once, exact), so every verb of
:class:`~exactbounds.operators.base.AffineOp` applies.
"""
from flint import fmpq_mat

from ..errors import InvalidModelError, ShapeError
from ..numbers import to_exact
from .base import AffineOp, as_shape
from .registry import register


def _pair(v, what):
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(t) for t in v)
    if len(v) != 2:
        raise InvalidModelError(f"{what} = {v}: expected an int or a pair")
    return v


def _pads(padding, what):
    """``int``, ``(ph, pw)`` or ONNX ``[top, left, bottom, right]`` -> (top, left, bottom, right)."""
    if isinstance(padding, int):
        return (padding,) * 4
    p = tuple(int(t) for t in padding)
    if len(p) == 2:
        return (p[0], p[1], p[0], p[1])
    if len(p) == 4:
        return p
    raise InvalidModelError(f"{what} = {p}: expected an int, (ph, pw) or [top, left, bottom, right]")


def _nested(x):
    return x.tolist() if hasattr(x, "tolist") else x


def out_size(n, k, stride, dil, pad_a, pad_b, what):
    o = (n + pad_a + pad_b - dil * (k - 1) - 1) // stride + 1
    if o <= 0:
        raise ShapeError(f"{what}: kernel {k} (dilation {dil}) does not fit the input size {n} "
                         f"with padding {pad_a}+{pad_b}")
    return o


@register
class Conv2d(AffineOp):
    """``Conv2d(weight, bias, in_shape, stride=1, padding=0, dilation=1, groups=1)``.

    ``weight`` nested ``[Cout][Cin/groups][kh][kw]`` (numbers enter exactly), ``bias`` length
    ``Cout`` or ``None``, ``in_shape = (Cin, H, W)``; ``stride``/``dilation`` an int or a pair,
    ``padding`` an int, a pair, or ONNX ``pads`` ``[top, left, bottom, right]``."""

    kind = "conv2d"

    def __init__(self, weight, bias, in_shape, stride=1, padding=0, dilation=1, groups=1,
                 name="conv2d"):
        self.name = name
        in_shape = as_shape(in_shape, name)
        if len(in_shape) != 3:
            raise ShapeError(f"{name}: in_shape {in_shape} must be (C, H, W)")
        w = _nested(weight)
        try:
            cout, cg = len(w), len(w[0])
            kh, kw = len(w[0][0]), len(w[0][0][0])
        except (TypeError, IndexError):
            raise ShapeError(f"{name}.weight must be nested [Cout][Cin/groups][kh][kw]") from None
        groups = int(groups)
        C, H, W = in_shape
        if groups <= 0 or C % groups or cout % groups:
            raise InvalidModelError(f"{name}.groups = {groups}: must divide Cin = {C} and "
                                    f"Cout = {cout}")
        if cg != C // groups:
            raise ShapeError(f"{name}.weight has {cg} input channels per group, expected "
                             f"Cin/groups = {C // groups}")
        self.weight = []
        for o in range(cout):
            if len(w[o]) != cg:
                raise ShapeError(f"{name}.weight[{o}] has {len(w[o])} channels, expected {cg}")
            chan = []
            for c in range(cg):
                rows = w[o][c]
                if len(rows) != kh or any(len(r) != kw for r in rows):
                    raise ShapeError(f"{name}.weight[{o}][{c}] is not {kh}x{kw}")
                chan.append([[to_exact(v, f"{name}.weight[{o}][{c}][{p}][{q}]")
                              for q, v in enumerate(r)] for p, r in enumerate(rows)])
            self.weight.append(chan)
        bias = [0] * cout if bias is None else list(_nested(bias))
        if len(bias) != cout:
            raise ShapeError(f"{name}.bias has length {len(bias)}, expected Cout = {cout}")
        self.bias_values = [to_exact(v, f"{name}.bias[{i}]") for i, v in enumerate(bias)]
        self.stride, self.dilation = _pair(stride, f"{name}.stride"), _pair(dilation,
                                                                             f"{name}.dilation")
        if min(self.stride) <= 0 or min(self.dilation) <= 0:
            raise InvalidModelError(f"{name}: stride and dilation must be positive")
        self.padding = _pads(padding, f"{name}.padding")
        if min(self.padding) < 0:
            raise InvalidModelError(f"{name}.padding = {self.padding}: must be >= 0")
        self.groups, self.kernel = groups, (kh, kw)
        pt, pl, pb, pr = self.padding
        ho = out_size(H, kh, self.stride[0], self.dilation[0], pt, pb, name)
        wo = out_size(W, kw, self.stride[1], self.dilation[1], pl, pr, name)
        self.in_shapes = (in_shape,)
        self.out_shape = (cout, ho, wo)

    def linear_params(self):
        C, H, W = self.in_shapes[0]
        cout, ho, wo = self.out_shape
        kh, kw = self.kernel
        sh, sw = self.stride
        dh, dw = self.dilation
        pt, pl, _, _ = self.padding
        cg, og = C // self.groups, cout // self.groups
        M = fmpq_mat(self.out_dim, self.in_dim)
        for o in range(cout):
            g = o // og
            for i in range(ho):
                for j in range(wo):
                    row = (o * ho + i) * wo + j
                    for c in range(cg):
                        ci = g * cg + c
                        for p in range(kh):
                            y = i * sh - pt + p * dh
                            if not 0 <= y < H:
                                continue
                            for q in range(kw):
                                x = j * sw - pl + q * dw
                                v = self.weight[o][c][p][q]
                                if 0 <= x < W and v != 0:
                                    M[row, (ci * H + y) * W + x] += v
        b = fmpq_mat(self.out_dim, 1, [self.bias_values[o] for o in range(cout)
                                       for _ in range(ho * wo)])
        return [M], b
