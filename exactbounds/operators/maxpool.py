"""Max pooling (ONNX ``MaxPool``): ``y[c, i, j] = max`` of ``x[c, ·, ·]`` over the window (padding
positions are ignored, as ONNX pads with −∞).

Relaxation (``relax_linear``), the one of DeepPoly and auto_LiRPA: with ``k`` the window entry of
largest lower bound, when ``lo_k >= hi_j`` for every other entry ``j`` the output is ``x_k``
exactly (both lines); otherwise ``y >= x_k`` (sound: y is the max) and ``y <= max_j hi_j``
(a constant). Evaluation and IBP (``[max lo, max hi]``, max is monotone) are exact. CROWN holds
the two lines as selections (:class:`~exactbounds.linalg.structured.GatherPart`), never as dense
``out × in`` matrices.
"""

from flint import fmpq_mat

from ..core import Box
from ..errors import InvalidModelError, ShapeError
from ..linalg import IDENT
from ..linalg.structured import GatherPart
from .base import LinearRelaxed, as_shape
from .registry import register


@register
class MaxPool(LinearRelaxed):
    """``MaxPool(in_shape (C, H, W), kernel, stride, padding (top, left, bottom, right),
    dilation, ceil_mode)``."""

    kind = "maxpool"

    def __init__(
        self,
        in_shape,
        kernel,
        stride=None,
        padding=(0, 0, 0, 0),
        dilation=(1, 1),
        ceil_mode=False,
        name="maxpool",
    ):
        self.name = name
        in_shape = as_shape(in_shape, name)
        if len(in_shape) != 3:
            raise ShapeError(f"{name}: in_shape {in_shape} must be (C, H, W)")
        kh, kw = (int(v) for v in kernel)
        sh, sw = (int(v) for v in (stride or kernel))
        pt, pl, pb, pr = (int(v) for v in padding)
        dh, dw = (int(v) for v in dilation)
        if min(kh, kw, sh, sw, dh, dw) <= 0 or min(pt, pl, pb, pr) < 0:
            raise InvalidModelError(f"{name}: kernel, stride, dilation must be positive, pads >= 0")
        C, H, W = in_shape

        def osz(n, k, s, d, a, b):
            num = n + a + b - d * (k - 1) - 1
            o = (-(-num // s) if ceil_mode else num // s) + 1
            if ceil_mode and (o - 1) * s >= n + a:  # the last window starts in the padding
                o -= 1
            return o

        ho, wo = osz(H, kh, sh, dh, pt, pb), osz(W, kw, sw, dw, pl, pr)
        if ho <= 0 or wo <= 0:
            raise ShapeError(f"{name}: kernel does not fit the input {in_shape}")
        self.windows = []
        for c in range(C):
            for i in range(ho):
                for j in range(wo):
                    cells = [
                        (c * H + y) * W + x
                        for y in (i * sh - pt + p * dh for p in range(kh))
                        if 0 <= y < H
                        for x in (j * sw - pl + q * dw for q in range(kw))
                        if 0 <= x < W
                    ]
                    if not cells:
                        raise ShapeError(f"{name}: output ({c}, {i}, {j}) has an empty window")
                    self.windows.append(cells)
        self.in_shapes, self.out_shape = (in_shape,), (C, ho, wo)

    def _max(self, ctx, vals):
        if ctx.all_exact(vals):
            return max(vals)
        return ctx.from_ends(max(ctx.lower(v) for v in vals), max(ctx.upper(v) for v in vals))

    def evaluate(self, ctx, x):
        self.check_inputs([len(x)], "x")
        x = [ctx.coerce(v) for v in x]
        return [self._max(ctx, [x[k] for k in w]) for w in self.windows]

    def ibp(self, ctx, box):
        """``[max lo, max hi]`` over each window (max is monotone)."""
        self.check_inputs([box.dim], "input box")
        lo, hi = [ctx.coerce(v) for v in box.lo], [ctx.coerce(v) for v in box.hi]
        return Box(
            [self._max(ctx, [lo[k] for k in w]) for w in self.windows],
            [self._max(ctx, [hi[k] for k in w]) for w in self.windows],
            self.out_shape,
        )

    def relax_linear(self, ctx, ends, **_):
        ((lo, hi),) = ends
        m, n = self.out_dim, self.in_dim
        LW, UW, Lb, Ub = fmpq_mat(m, n), fmpq_mat(m, n), fmpq_mat(m, 1), fmpq_mat(m, 1)
        for i, w in enumerate(self.windows):
            k = max(w, key=lambda t: lo[t])
            LW[i, k] = 1
            if all(lo[k] >= hi[t] for t in w if t != k):
                UW[i, k] = 1
            else:
                Ub[i, 0] = max(hi[t] for t in w)
        return [LW], Lb, [UW], Ub

    # -- CROWN with the lines as selections ---------------------------------------------------
    def make_relaxation(self, run, node):
        """CROWN: ``(lower selection, upper selection, Ub, |y| bound)`` (``k_i`` per output, the
        stable rows in the upper one); forward affine: the dense lines (``relax_linear``)."""
        if hasattr(run, "forms") or not run.be.structured:
            return super().make_relaxation(run, node)
        be = run.be
        lo, hi = run.node_bounds(node.inputs[0])
        lo = [be.lower(v) for v in lo]
        hi = [be.upper(v) for v in hi]
        m, n = self.out_dim, self.in_dim
        ks, stable, ub, ymax = [], [], fmpq_mat(m, 1), fmpq_mat(m, 1)
        for i, w in enumerate(self.windows):
            k = max(w, key=lambda t: lo[t])
            top = max(hi[t] for t in w)
            ks.append(k)
            if all(lo[k] >= hi[t] for t in w if t != k):
                stable.append(i)
            else:
                ub[i, 0] = top
            ymax[i, 0] = max(abs(lo[k]), abs(top))
        low = GatherPart(n, m, list(range(m)), ks)
        up = GatherPart(n, m, stable, [ks[i] for i in stable])
        return "selections", low, up, be.mat(ub), be.mat(ymax)

    def crown_step(self, run, node, LL, LU):
        """``ΛL·y >= ΛL⁺·x_k + ΛL⁻·(UW·x + Ub) − |U|·|y|max`` (``U``: the entries of undecided
        sign of a ball functional, bounded by a constant); ``ΛU`` the other way round."""
        rel = run.relaxation(node)
        if rel[0] != "selections":
            return super().crown_step(run, node, LL, LU)
        _, low, up, ub, ymax = rel
        be, m = run.be, self.out_dim
        out = []
        for lam, lower in ((LL, True), (LU, False)):
            lam = be.eye(m) if lam is IDENT else be.full(lam)
            P, N, U = be.sign_split(lam)
            a, b = (low, up) if lower else (up, low)
            new = be.lin_rmul(P, a) + be.lin_rmul(N, b)
            bias = N * ub if lower else P * ub
            if U is not None:
                slack = be.abs(U) * ymax
                bias = bias - slack if lower else bias + slack
            out.append((new, bias))
        (newL, bL), (newU, bU) = out
        return [newL], [newU], [bL], [bU]
