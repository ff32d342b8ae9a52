"""2-D convolution (ONNX ``Conv``, PyTorch ``Conv2d``) as an exact affine operator.

``y[o, i, j] = b[o] + Σ_{c,p,q} W[o, c, p, q] · x[g·Cin/G + c, i·sh − pt + p·dh, j·sw − pl + q·dw]``
with zero padding, ``g = o // (Cout/G)`` the group of output channel ``o``. Input shape
``(Cin, H, W)``, output ``(Cout, Ho, Wo)`` with ``Ho = ⌊(H + pt + pb − dh·(kh−1) − 1)/sh⌋ + 1``.
Evaluation, IBP and derivatives at exact points and boxes stay convolutions: an im2col product
per group (``W_g`` is ``Cout/G × Cin/G·kh·kw``, the patches ``Cin/G·kh·kw × Ho·Wo``), on integer
matrices when every weight and input is dyadic (float data), else on ``fmpq_mat``; memory grows
with the feature maps, not with their square. The dense matrix of the map (built once, exact,
integer-backed for dyadic weights) serves forward affine and the other contexts, through the verbs
of :class:`~exactbounds.operators.base.AffineOp`; CROWN's step ``Λ ↦ Λ·W`` is a transposed
convolution of the rows of ``Λ`` (:meth:`Conv2d.linear_map`, :mod:`exactbounds.linalg.structured`).
"""

from flint import fmpq, fmpq_mat, fmpz_mat

from ..budget import reserve
from ..errors import InvalidModelError, ShapeError
from ..linalg import DyMat, dyadic_parts
from ..linalg.fast_ibp import Im2col
from ..linalg.structured import ConvGeom, ConvPart, LinearMap
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
    """``int``, ``(ph, pw)`` or ONNX ``[top, left, bottom, right]``
    -> (top, left, bottom, right)."""
    if isinstance(padding, int):
        return (padding,) * 4
    p = tuple(int(t) for t in padding)
    if len(p) == 2:
        return (p[0], p[1], p[0], p[1])
    if len(p) == 4:
        return p
    raise InvalidModelError(
        f"{what} = {p}: expected an int, (ph, pw) or [top, left, bottom, right]"
    )


def _nested(x):
    return x.tolist() if hasattr(x, "tolist") else x


def out_size(n, k, stride, dil, pad_a, pad_b, what):
    o = (n + pad_a + pad_b - dil * (k - 1) - 1) // stride + 1
    if o <= 0:
        raise ShapeError(
            f"{what}: kernel {k} (dilation {dil}) does not fit the input size {n} "
            f"with padding {pad_a}+{pad_b}"
        )
    return o


@register
class Conv2d(AffineOp):
    """``Conv2d(weight, bias, in_shape, stride=1, padding=0, dilation=1, groups=1)``.

    ``weight`` nested ``[Cout][Cin/groups][kh][kw]`` (numbers enter exactly), ``bias`` length
    ``Cout`` or ``None``, ``in_shape = (Cin, H, W)``; ``stride``/``dilation`` an int or a pair,
    ``padding`` an int, a pair, or ONNX ``pads`` ``[top, left, bottom, right]``."""

    kind = "conv2d"

    def __init__(
        self, weight, bias, in_shape, stride=1, padding=0, dilation=1, groups=1, name="conv2d"
    ):
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
            raise InvalidModelError(
                f"{name}.groups = {groups}: must divide Cin = {C} and Cout = {cout}"
            )
        if cg != C // groups:
            raise ShapeError(
                f"{name}.weight has {cg} input channels per group, expected "
                f"Cin/groups = {C // groups}"
            )
        self.weight = []
        for o in range(cout):
            if len(w[o]) != cg:
                raise ShapeError(f"{name}.weight[{o}] has {len(w[o])} channels, expected {cg}")
            chan = []
            for c in range(cg):
                rows = w[o][c]
                if len(rows) != kh or any(len(r) != kw for r in rows):
                    raise ShapeError(f"{name}.weight[{o}][{c}] is not {kh}x{kw}")
                chan.append(
                    [
                        [to_exact(v, f"{name}.weight[{o}][{c}][{p}][{q}]") for q, v in enumerate(r)]
                        for p, r in enumerate(rows)
                    ]
                )
            self.weight.append(chan)
        bias = [0] * cout if bias is None else list(_nested(bias))
        if len(bias) != cout:
            raise ShapeError(f"{name}.bias has length {len(bias)}, expected Cout = {cout}")
        self.bias_values = [to_exact(v, f"{name}.bias[{i}]") for i, v in enumerate(bias)]
        self.stride, self.dilation = (
            _pair(stride, f"{name}.stride"),
            _pair(dilation, f"{name}.dilation"),
        )
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

    # -- im2col ---------------------------------------------------------------------------------
    def ibp_entries(self):
        """Entries of the im2col patch matrix (``Cin/G·kh·kw × Ho·Wo``): what evaluation and
        IBP at exact points hold, instead of the dense ``out × in`` matrix."""
        C = self.in_shapes[0][0]
        _, ho, wo = self.out_shape
        return C // self.groups * self.kernel[0] * self.kernel[1] * ho * wo

    def _patch_index(self):
        """For group 0, the flat input index of every patch entry (row ``(c, p, q)``, column
        ``(i, j)``, row-major), ``-1`` in the padding; group ``g`` adds ``g·Cin/G·H·W``."""
        if getattr(self, "_pidx", None) is None:
            reserve(self.ibp_entries(), f"{self.name}: the im2col patches of the convolution")
            C, H, W = self.in_shapes[0]
            _, ho, wo = self.out_shape
            kh, kw = self.kernel
            sh, sw = self.stride
            dh, dw = self.dilation
            pt, pl, _, _ = self.padding
            idx = []
            for c in range(C // self.groups):
                for p in range(kh):
                    for q in range(kw):
                        for i in range(ho):
                            y = i * sh - pt + p * dh
                            for j in range(wo):
                                x = j * sw - pl + q * dw
                                idx.append((c * H + y) * W + x if 0 <= y < H and 0 <= x < W else -1)
            self._pidx = idx
        return self._pidx

    def _kernels(self, absolute):
        """Per group the kernel matrix ``W_g`` (or ``|W_g|``), ``Cout/G × Cin/G·kh·kw``, as a
        ``DyMat`` when every weight is dyadic, else an ``fmpq_mat`` (built once)."""
        cache = self.__dict__.setdefault("_kcache", {})
        if absolute not in cache:
            cout = self.out_shape[0]
            og = cout // self.groups
            mats = []
            for g in range(self.groups):
                rows = [
                    [abs(v) if absolute else v for ch in self.weight[o] for r in ch for v in r]
                    for o in range(g * og, (g + 1) * og)
                ]
                es = [v for r in rows for v in r]
                Q = fmpq_mat(og, len(rows[0]), es)
                mats.append(DyMat.from_entries(og, len(rows[0]), es) or Q)
            cache[absolute] = mats
        return cache[absolute]

    def _conv(self, vals, absolute=False):
        """``W·x`` (or ``|W|·x``; no bias) for an exact input vector, as a flat list of ``fmpq``,
        by one im2col product per group."""
        C, H, W = self.in_shapes[0]
        cout, ho, wo = self.out_shape
        cg, n = C // self.groups, ho * wo
        idx = self._patch_index()
        parts = [dyadic_parts(v) for v in vals]
        dy = all(t is not None for t in parts)
        if dy:
            e = min((k for m, k in parts if m), default=0)
            ints = [m << (k - e) for m, k in parts]
        out = []
        for g, K in enumerate(self._kernels(absolute)):
            off = g * cg * H * W
            if dy and isinstance(K, DyMat):
                P = fmpz_mat(len(idx) // n, n, [ints[t + off] if t >= 0 else 0 for t in idx])
                out.extend(DyMat(K.M * P, K.e + e).entry_list())
            else:
                z = fmpq(0)
                P = fmpq_mat(len(idx) // n, n, [vals[t + off] if t >= 0 else z for t in idx])
                Kq = K.to_q() if isinstance(K, DyMat) else K
                out.extend((Kq * P).entries())
        return out

    def _bias_flat(self):
        _, ho, wo = self.out_shape
        return [b for b in self.bias_values for _ in range(ho * wo)]

    def evaluate(self, ctx, x):
        """``W ⋆ x + b`` (im2col on exact points; else as an affine operator)."""
        self.check_inputs([len(x)], "x")
        if not ctx.all_exact(x):
            return super().evaluate(ctx, x)
        return [a + b for a, b in zip(self._conv(list(x)), self._bias_flat())]

    def _ibp(self, ctx, boxes, with_bias):
        (box,) = boxes
        if not ctx.all_exact(box.lo + box.hi):
            return super()._ibp(ctx, boxes, with_bias)
        self.check_inputs([box.dim], "input box")
        mid = self._conv([(a + b) / 2 for a, b in zip(box.lo, box.hi)])
        rad = self._conv([(b - a) / 2 for a, b in zip(box.lo, box.hi)], absolute=True)
        if with_bias:
            mid = [m + b for m, b in zip(mid, self._bias_flat())]
        return type(box)(
            [m - r for m, r in zip(mid, rad)], [m + r for m, r in zip(mid, rad)], self.out_shape
        )

    def ibp_fast(self, ctx, fbox):
        """IBP on a float box (the mode ``fast``) by float im2col products per group, with the
        rigorous error bound of :mod:`exactbounds.linalg.fast_ibp` (``n = Cin/G·kh·kw``)."""
        if getattr(self, "_im2col", None) is None:
            C, H, W = self.in_shapes[0]
            _, ho, wo = self.out_shape
            self._im2col = Im2col(
                self._patch_index(),
                ho * wo,
                self._kernels(False),
                fmpq_mat(self.out_dim, 1, self._bias_flat()),
                C // self.groups * H * W,
            )
        return self._im2col.fbox(fbox)

    def geometry(self):
        """The :class:`~exactbounds.linalg.structured.ConvGeom` of the map."""
        pt, pl, _, _ = self.padding
        return ConvGeom(
            self.in_shapes[0],
            self.out_shape,
            self.kernel,
            self.stride,
            self.dilation,
            (pt, pl),
            self.groups,
        )

    def linear_map(self):
        """The convolution as a structured map (kernels per group, no dense matrix)."""
        if getattr(self, "_lin", None) is None:
            part = ConvPart(self.geometry(), self._kernels(False))
            self._lin = LinearMap([part], fmpq_mat(self.out_dim, 1, self._bias_flat()))
        return self._lin

    def linear_params(self):
        """The dense matrix of the map: integer-backed (``DyMat``) when every weight is dyadic,
        built from one flat list."""
        C, H, W = self.in_shapes[0]
        cout, ho, wo = self.out_shape
        kh, kw = self.kernel
        sh, sw = self.stride
        dh, dw = self.dilation
        pt, pl, _, _ = self.padding
        cg, og = C // self.groups, cout // self.groups
        reserve(
            self.out_dim * self.in_dim,
            f"{self.name}: the {self.out_dim}x{self.in_dim} matrix of the convolution",
        )
        n_in = self.in_dim
        M = {}
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
                                    key = row * n_in + (ci * H + y) * W + x
                                    M[key] = M.get(key, 0) + v
        b = fmpq_mat(self.out_dim, 1, self._bias_flat())
        return [_dense(self.out_dim, n_in, M)], b


def _dense(r, c, entries):
    """The ``r×c`` matrix with the given ``{flat index: exact value}`` entries, zero elsewhere:
    a ``DyMat`` when every value is dyadic, else an ``fmpq_mat``."""
    parts = {k: dyadic_parts(v) for k, v in entries.items()}
    if all(t is not None for t in parts.values()):
        e = min((k for m, k in parts.values() if m), default=0)
        flat = [0] * (r * c)
        for key, (m, k) in parts.items():
            flat[key] = m << (k - e)
        return DyMat(fmpz_mat(r, c, flat), e)
    z = fmpq(0)
    flat = [z] * (r * c)
    for key, v in entries.items():
        flat[key] = v
    return fmpq_mat(r, c, flat)
