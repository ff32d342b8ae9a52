"""Builders of the ONNX loader for index maps, reductions, general matrix products and the
further nonlinear operators (a mixin of ``onnx_loader._Builder``; see that module)."""

from math import prod

import numpy as np
from flint import fmpq, fmpq_mat

from ..errors import MalformedFileError, ShapeError, UnsupportedOperatorError
from ..graph import Node
from ..operators.arithmetic import Scale
from ..operators.bilinear import Bilinear
from ..operators.conv import Conv2d
from ..operators.elementwise import Cos, LeakyRelu, Sign, Sin
from ..operators.indexmap import IndexMap, const_ids, ids_for
from ..operators.matrix import MatrixOp
from ..operators.maxpool import MaxPool
from ..operators.reshape import Identity, Reshape
from ..operators.softmax import ArgMax, EqualOp, OneHot, Softmax, Trunc
from .onnx_shapes import FLOAT_TYPES, INT_TYPES, Params, _axis, move


def op_shape(shape):
    """The operator's shape of an ONNX tensor shape: without the batch dimension, ``(1,)`` for
    a scalar."""
    shape = tuple(shape)
    core = shape[1:] if len(shape) > 1 and shape[0] == 1 else shape
    return core or (1,)


def _q(v):
    return v if isinstance(v, fmpq) else fmpq(int(v))


def _attr_q(node, key, default):
    return fmpq(*float(node.attrs.get(key, default)).as_integer_ratio())


def conv_transpose_as_conv(W, bias, in_shape, strides, pads, dil, groups, opad, name):
    """ONNX ConvTranspose as an index map and a convolution: the input spread out by the
    stride with zeros between, padded by ``d·(k − 1) − pad_begin`` before and
    ``d·(k − 1) − pad_end + output_padding`` after (cropped where negative), then convolved
    (stride 1, dilation ``d``) with the kernel flipped and its channel axes swapped per group:
    ``y[o, i·s − pt + p·d] += W[c, m, p]·x[c, i]`` either way. Returns ``(IndexMap, Conv2d)``."""
    C, H, Wd = in_shape
    (sh, sw), (dh, dw) = strides, dil
    kh, kw = W.shape[2], W.shape[3]
    pt, pl, pb, pr = pads
    zero = [fmpq(0)]
    up = np.full((C, (H - 1) * sh + 1, (Wd - 1) * sw + 1), -1, dtype=np.int64)
    up[:, ::sh, ::sw] = np.arange(C * H * Wd).reshape(C, H, Wd)
    for axis, before, after in (
        (1, dh * (kh - 1) - pt, dh * (kh - 1) - pb + opad[0]),
        (2, dw * (kw - 1) - pl, dw * (kw - 1) - pr + opad[1]),
    ):
        width = [(0, 0)] * 3
        width[axis] = (max(before, 0), max(after, 0))
        up = np.pad(up, width, constant_values=-1)
        n = up.shape[axis]
        up = np.take(up, range(max(-before, 0), n - max(-after, 0)), axis=axis)
    if min(up.shape) <= 0:
        raise ShapeError(f"{name}: pads {list(pads)} leave no output")
    spread = IndexMap([in_shape], up.shape, up.ravel(), zero, name=f"{name}:spread")
    cg, mg = C // groups, W.shape[1]
    Wq = [
        [
            [[W[g * cg + c, m, kh - 1 - p, kw - 1 - q] for q in range(kw)] for p in range(kh)]
            for c in range(cg)
        ]
        for g in range(groups)
        for m in range(mg)
    ]
    conv = Conv2d(
        Wq, bias, up.shape, stride=1, padding=0, dilation=(dh, dw), groups=groups, name=name
    )
    return spread, conv


class OpsMixin:
    # -- index maps ------------------------------------------------------------------------
    def _index_map(self, node):
        """A data-movement node with a computed input: the map of entry ids."""
        data = [i for i in node.inputs if i] if node.op_type == "Concat" else [node.inputs[0]]
        consts, arrays, vars_ = [], [], []
        for name in data:
            if self.is_const(name):
                arrays.append(None)
            else:
                vars_.append(name)
                arrays.append(self.shape_of(node, name))
        idarrs = iter(ids_for([s for s in arrays if s is not None]))
        arrays = [
            const_ids(self.const(n), consts) if a is None else next(idarrs)
            for n, a in zip(data, arrays)
        ]
        out = move(
            node,
            arrays,
            self.const,
            self.og.opset,
            lambda v: const_ids(np.array([v], dtype=object), consts)[0],
        )
        shapes = [self.shape_of(node, v) for v in vars_]
        op = IndexMap(
            [op_shape(s) for s in shapes], op_shape(out.shape), out.ravel(), consts, name=node.name
        )
        if op.is_identity():
            op = Reshape(op_shape(shapes[0]), op_shape(out.shape), name=node.name)
        self.add(node, op, vars_, out.shape)

    op_Transpose = op_Slice = op_Gather = op_Concat = op_Pad = op_Squeeze = op_Unsqueeze = (
        op_Expand
    ) = op_Tile = _index_map

    def op_Dropout(self, node):
        if len(node.outputs) > 1 and node.outputs[1]:
            raise UnsupportedOperatorError(
                f"{node.where()}: the Dropout mask output is not supported"
            )
        self.op_Identity(node)

    def op_Cast(self, node):
        """To a float type: the identity (values are exact reals); to an integer type:
        truncation toward zero (the exact value, as ONNX casts)."""
        to = int(node.attrs.get("to", 1))
        _, shape = self.var(node, node.inputs[0])
        if to in FLOAT_TYPES:
            op = Identity(op_shape(shape), name=node.name)
        elif to in INT_TYPES and to != 9:
            op = Trunc(op_shape(shape), name=node.name)
        else:
            raise UnsupportedOperatorError(
                f"{node.where()}: Cast of a computed tensor to the "
                f"element type {to} is not supported"
            )
        self.add(node, op, [node.inputs[0]], shape)

    def op_Equal(self, node):
        a, b = node.inputs
        if self.is_const(a) or self.is_const(b):
            raise UnsupportedOperatorError(
                f"{node.where()}: Equal of a computed tensor and a constant is not supported"
            )
        sa, sb, A, B = self._broadcast_pair(node)
        pairs = zip(A.ravel().tolist(), B.ravel().tolist())
        self.add(
            node,
            EqualOp(op_shape(sa), op_shape(sb), op_shape(A.shape), pairs, name=node.name),
            [a, b],
            A.shape,
        )

    def _broadcast_pair(self, node):
        """Shapes and broadcast flat-index arrays of a node's two computed inputs."""
        a, b = node.inputs
        sa, sb = self.shape_of(node, a), self.shape_of(node, b)
        ia, ib = ids_for([sa, sb])
        try:
            A, B = np.broadcast_arrays(ia, ib - prod(sa))
        except ValueError:
            raise ShapeError(
                f"{node.where()}: operands of shapes {tuple(sa)} and "
                f"{tuple(sb)}; two computed tensors must have the same shape or "
                "broadcast"
            ) from None
        return sa, sb, A, B

    def _add_broadcast(self, node):
        """``a ± b`` for computed tensors of different shapes (numpy broadcasting)."""
        sa, sb, A, B = self._broadcast_pair(node)
        m = A.size
        Wa, Wb = fmpq_mat(m, prod(sa)), fmpq_mat(m, prod(sb))
        sign = 1 if node.op_type == "Add" else -1
        for i, (p, q) in enumerate(zip(A.ravel().tolist(), B.ravel().tolist())):
            Wa[i, p] += 1
            Wb[i, q] += sign
        self.add(
            node,
            MatrixOp(
                [op_shape(sa), op_shape(sb)],
                op_shape(A.shape),
                [Wa, Wb],
                kind=node.op_type.lower(),
                name=node.name,
            ),
            node.inputs,
            A.shape,
        )

    def op_Pow(self, node):
        x, e = node.inputs
        if self.is_const(x) or not self.is_const(e):
            raise UnsupportedOperatorError(
                f"{node.where()}: Pow needs a computed base and a constant exponent"
            )
        ev = set(np.asarray(self.const(e)).ravel().tolist())
        if ev == {1}:
            return self.op_Identity(node)
        if ev != {2}:
            raise UnsupportedOperatorError(
                f"{node.where()}: Pow with exponent {sorted(ev)} (only 1 and 2 are supported)"
            )
        s = self.shape_of(node, x)
        n = prod(s)
        self.add(
            node,
            Bilinear(
                op_shape(s), op_shape(s), op_shape(s), [[(i, i)] for i in range(n)], name=node.name
            ),
            [x, x],
            s,
        )

    def op_Neg(self, node):
        x = node.inputs[0]
        n = prod(self.shape_of(node, x))
        neg, name = [fmpq(-1)] * n, node.name
        self._elementwise_const(node, x, neg, [fmpq(0)] * n, lambda s: Scale(s, neg, name=name))

    # -- reductions and matrix products ----------------------------------------------------
    def _reduce(self, node, mean):
        x = node.inputs[0]
        _, shape = self.var(node, x)
        r = len(shape)
        axes = Params(node, self.const).get("axes", 1)
        if not axes:
            if int(node.attrs.get("noop_with_empty_axes", 0)):
                return self.op_Identity(node)
            axes = list(range(r))
        axes = sorted({_axis(a, r, node.where()) for a in axes})
        keep = int(node.attrs.get("keepdims", 1))
        ids = np.arange(prod(shape)).reshape(shape)
        kept = [a for a in range(r) if a not in axes]
        rows = np.transpose(ids, kept + axes).reshape(
            (prod(shape[a] for a in kept), prod(shape[a] for a in axes))
        )
        w = fmpq(1, rows.shape[1]) if mean else fmpq(1)
        M = fmpq_mat(rows.shape[0], prod(shape))
        for i, row in enumerate(rows.tolist()):
            for j in row:
                M[i, j] += w
        out = (
            tuple(1 if a in axes else d for a, d in enumerate(shape))
            if keep
            else tuple(d for a, d in enumerate(shape) if a not in axes)
        )
        self.add(
            node,
            MatrixOp([op_shape(shape)], op_shape(out), [M], kind="reduce", name=node.name),
            [x],
            out,
        )

    def op_ReduceSum(self, node):
        self._reduce(node, False)

    def op_ReduceMean(self, node):
        self._reduce(node, True)

    def _const_matmul(self, node, x, ids, C, left_var, alpha=None, bias=None):
        """``alpha·X·C`` (``left_var``) or ``alpha·C·X`` for the computed ``X`` (its entry ids
        ``ids``, shape (..., a, b)) and a constant matrix ``C``, plus ``bias`` (broadcast)."""
        if C.ndim != 2 or ids.ndim < 1:
            raise UnsupportedOperatorError(
                f"{node.where()}: product of shapes {ids.shape} and "
                f"{C.shape}: only a constant matrix is supported"
            )
        if left_var:
            if ids.ndim == 1:
                ids = ids[None, :]
                squeeze = -2
            else:
                squeeze = None
            if ids.shape[-1] != C.shape[0]:
                raise ShapeError(f"{node.where()}: x of shape {ids.shape} @ W of shape {C.shape}")
            out_shape = ids.shape[:-1] + (C.shape[1],)
        else:
            squeeze = None
            if ids.ndim == 1:
                ids = ids[:, None]
                squeeze = -1
            if ids.shape[-2] != C.shape[1]:
                raise ShapeError(f"{node.where()}: W of shape {C.shape} @ x of shape {ids.shape}")
            out_shape = ids.shape[:-2] + (C.shape[0], ids.shape[-1])
        alpha = fmpq(1) if alpha is None else alpha
        Cq = [[_q(v) for v in r] for r in C.tolist()]
        n_in = ids.size
        M = fmpq_mat(prod(out_shape), n_in)
        lead = ids.reshape((-1,) + ids.shape[-2:])
        o = 0
        for blk in lead:
            if left_var:  # out[i, j] = Σ_d X[i, d]·C[d, j]
                for i in range(blk.shape[0]):
                    for j in range(C.shape[1]):
                        for d in range(C.shape[0]):
                            if Cq[d][j]:
                                M[o, int(blk[i, d])] += alpha * Cq[d][j]
                        o += 1
            else:  # out[i, j] = Σ_d C[i, d]·X[d, j]
                for i in range(C.shape[0]):
                    for j in range(blk.shape[1]):
                        for d in range(C.shape[1]):
                            if Cq[i][d]:
                                M[o, int(blk[d, j])] += alpha * Cq[i][d]
                        o += 1
        if squeeze is not None:
            out_shape = out_shape[:squeeze] + (out_shape[squeeze + 1 :] if squeeze != -1 else ())
        b = None
        if bias is not None:
            b = fmpq_mat(prod(out_shape), 1, self.broadcast_const(node, bias, out_shape))
        self.add(
            node,
            MatrixOp(
                [op_shape(self.shape_of(node, x))],
                op_shape(out_shape),
                [M],
                b,
                kind="matmul",
                name=node.name,
            ),
            [x],
            out_shape,
        )

    def _matmul_general(self, node):
        a, b = node.inputs
        if self.is_const(a) and self.is_const(b):
            raise UnsupportedOperatorError(f"{node.where()}: MatMul of two constants")
        if self.is_const(b):
            sa = self.shape_of(node, a)
            return self._const_matmul(node, a, np.arange(prod(sa)).reshape(sa), self.const(b), True)
        if self.is_const(a):
            sb = self.shape_of(node, b)
            return self._const_matmul(
                node, b, np.arange(prod(sb)).reshape(sb), self.const(a), False
            )
        sa, sb = self.shape_of(node, a), self.shape_of(node, b)
        ia, ib = ids_for([sa, sb])
        ib = ib - prod(sa)
        if ia.ndim < 2 or ib.ndim < 2 or ia.shape[-1] != ib.shape[-2]:
            raise ShapeError(f"{node.where()}: MatMul of shapes {tuple(sa)} and {tuple(sb)}")
        try:
            lead = np.broadcast_shapes(ia.shape[:-2], ib.shape[:-2])
        except ValueError:
            raise ShapeError(
                f"{node.where()}: MatMul of shapes {tuple(sa)} and {tuple(sb)}: "
                "batch dimensions do not broadcast"
            ) from None
        A = np.broadcast_to(ia, lead + ia.shape[-2:]).reshape((-1,) + ia.shape[-2:])
        B = np.broadcast_to(ib, lead + ib.shape[-2:]).reshape((-1,) + ib.shape[-2:])
        terms = []
        for blkA, blkB in zip(A.tolist(), B.tolist()):
            for row in blkA:
                for j in range(len(blkB[0])):
                    terms.append([(p, blkB[d][j]) for d, p in enumerate(row)])
        out = lead + (ia.shape[-2], ib.shape[-1])
        self.add(
            node,
            Bilinear(op_shape(sa), op_shape(sb), op_shape(out), terms, name=node.name),
            [a, b],
            out,
        )

    def _mul_two(self, node):
        a, b = node.inputs
        sa, sb, A, B = self._broadcast_pair(node)
        terms = [[(int(p), int(q))] for p, q in zip(A.ravel().tolist(), B.ravel().tolist())]
        self.add(
            node,
            Bilinear(op_shape(sa), op_shape(sb), op_shape(A.shape), terms, name=node.name),
            [a, b],
            A.shape,
        )

    def _gemm_general(self, node):
        ins = node.inputs + [""] * (3 - len(node.inputs))
        a, b, c = ins[:3]
        ta, tb = int(node.attrs.get("transA", 0)), int(node.attrs.get("transB", 0))
        alpha, beta = _attr_q(node, "alpha", 1.0), _attr_q(node, "beta", 1.0)
        bias = None
        if c:
            if not self.is_const(c):
                raise UnsupportedOperatorError(f"{node.where()}: C must be a constant")
            bias = self.const(c) * beta
        if self.is_const(a) == self.is_const(b):
            raise UnsupportedOperatorError(
                f"{node.where()}: Gemm needs exactly one constant operand"
            )
        x = b if self.is_const(a) else a
        s = self.shape_of(node, x)
        if len(s) != 2:
            raise ShapeError(f"{node.where()}: operand of shape {tuple(s)}, expected a matrix")
        ids = np.arange(prod(s)).reshape(s)
        if self.is_const(a):
            A = self.const(a)
            self._const_matmul(node, x, ids.T if tb else ids, A.T if ta else A, False, alpha, bias)
        else:
            B = self.const(b)
            self._const_matmul(node, x, ids.T if ta else ids, B.T if tb else B, True, alpha, bias)

    # -- convolutions and pooling ------------------------------------------------------------
    def op_ConvTranspose(self, node):
        x = node.inputs[0]
        shape, one_d = self._spatial(node, x, "ConvTranspose")
        if len(node.inputs) < 2 or not self.is_const(node.inputs[1]):
            raise UnsupportedOperatorError(f"{node.where()}: the weight must be a constant")
        W = self.const(node.inputs[1])
        nd = len(shape) - 2
        if W.ndim != nd + 2:
            raise ShapeError(f"{node.where()}: weight of shape {W.shape} for input {shape}")
        if one_d:
            W = W.reshape(W.shape[:2] + (1,) + W.shape[2:])
        k = list(W.shape[2:])
        at = node.attrs
        lift = (lambda v, fill: [fill] + list(v)) if one_d else (lambda v, fill: list(v))
        strides = lift(at.get("strides", [1] * nd), 1)
        dil = lift(at.get("dilations", [1] * nd), 1)
        opad = lift(at.get("output_padding", [0] * nd), 0)
        in_hw = [1, shape[2]] if one_d else list(shape[2:])
        full = [
            s * (n - 1) + op + (kk - 1) * d + 1
            for s, n, op, kk, d in zip(strides, in_hw, opad, k, dil)
        ]
        auto = at.get("auto_pad", "NOTSET")
        if "output_shape" in at or auto in ("SAME_UPPER", "SAME_LOWER"):
            target = (
                lift(at["output_shape"][-nd:], 1)
                if "output_shape" in at
                else [n * s for n, s in zip(in_hw, strides)]
            )
            tot = [f - t for f, t in zip(full, target)]
            if any(t < 0 for t in tot):
                raise ShapeError(
                    f"{node.where()}: output_shape {target} is larger than the full output {full}"
                )
            half = [int(t / 2) for t in tot]  # truncated, as the spec's t/2
            if auto == "SAME_UPPER":
                begin, end = half, [t - h for t, h in zip(tot, half)]
            else:
                begin, end = [t - h for t, h in zip(tot, half)], half
            pads = begin + end
        elif auto == "VALID" or "pads" not in at:
            pads = [0] * 4
        else:
            p = list(at["pads"])
            pads = [0, p[0], 0, p[1]] if one_d else p
        bias = None
        if len(node.inputs) > 2 and node.inputs[2]:
            bias = self.const(node.inputs[2]).ravel().tolist()
        in_shape = (shape[1], 1, shape[2]) if one_d else tuple(shape[1:])
        up, conv = conv_transpose_as_conv(
            W, bias, in_shape, strides, pads, dil, int(at.get("group", 1)), opad, node.name
        )
        self.nodes.append(Node(up.name, up, [self.var(node, x)[0]]))
        self.nodes.append(Node(node.name, conv, [up.name]))
        c, ho, wo = conv.out_shape
        self.tensor[node.outputs[0]] = (node.name, (1, c, wo) if one_d else (1, c, ho, wo))

    def op_MaxPool(self, node):
        if len(node.outputs) > 1 and node.outputs[1]:
            raise UnsupportedOperatorError(f"{node.where()}: the Indices output is not supported")
        x = node.inputs[0]
        shape, one_d = self._spatial(node, x, "MaxPool")
        nd = len(shape) - 2
        if "kernel_shape" not in node.attrs:
            raise MalformedFileError(f"{self.og.source}: {node.where()} has no kernel_shape")
        kernel = [int(v) for v in node.attrs["kernel_shape"]]
        strides = [int(v) for v in node.attrs.get("strides", [1] * nd)]
        dil = [int(v) for v in node.attrs.get("dilations", [1] * nd)]
        if not len(kernel) == len(strides) == len(dil) == nd:
            raise ShapeError(
                f"{node.where()}: kernel_shape/strides/dilations of rank "
                f"{len(kernel)}/{len(strides)}/{len(dil)} for {nd} spatial axes"
            )
        pads = self._pads(node, shape[2:], kernel, strides, dil)
        in_shape = (shape[1], 1, shape[2]) if one_d else tuple(shape[1:])
        op = MaxPool(
            in_shape,
            self._as2d(one_d, kernel, 1),
            self._as2d(one_d, strides, 1),
            self._as2d(one_d, pads, 0),
            self._as2d(one_d, dil, 1),
            bool(int(node.attrs.get("ceil_mode", 0))),
            name=node.name,
        )
        c, ho, wo = op.out_shape
        self.add(node, op, [x], (1, c, wo) if one_d else (1, c, ho, wo))

    def op_GlobalMaxPool(self, node):
        x = node.inputs[0]
        shape, one_d = self._spatial(node, x, "GlobalMaxPool")
        in_shape = (shape[1], 1, shape[2]) if one_d else tuple(shape[1:])
        op = MaxPool(in_shape, in_shape[1:], name=node.name)
        self.add(node, op, [x], (1, shape[1], 1) if one_d else (1, shape[1], 1, 1))

    # -- elementwise and grouped nonlinear operators ---------------------------------------
    def _unary(self, node, make):
        x = node.inputs[0]
        _, shape = self.var(node, x)
        self.add(node, make(op_shape(shape)), [x], shape)

    def op_LeakyRelu(self, node):
        a = _attr_q(node, "alpha", 0.01)
        self._unary(node, lambda s: LeakyRelu(s, a, name=node.name))

    def op_Sin(self, node):
        self._unary(node, lambda s: Sin(s, name=node.name))

    def op_Cos(self, node):
        self._unary(node, lambda s: Cos(s, name=node.name))

    def op_Sign(self, node):
        self._unary(node, lambda s: Sign(s, name=node.name))

    def _groups(self, shape, axis, flatten):
        ids = np.arange(prod(shape)).reshape(shape)
        if flatten:  # opset < 13: rows of the 2-D [prod(:axis), prod(axis:)] view
            return ids.reshape((prod(shape[:axis]), -1)).tolist()
        return np.moveaxis(ids, axis, -1).reshape((-1, shape[axis])).tolist()

    def op_Softmax(self, node):
        x = node.inputs[0]
        _, shape = self.var(node, x)
        new = self.og.opset >= 13
        axis = _axis(node.attrs.get("axis", -1 if new else 1), len(shape), node.where())
        groups = self._groups(shape, axis, not new)
        self.add(node, Softmax(op_shape(shape), groups, name=node.name), [x], shape)

    def op_ArgMax(self, node):
        x = node.inputs[0]
        _, shape = self.var(node, x)
        axis = _axis(node.attrs.get("axis", 0), len(shape), node.where())
        keep = int(node.attrs.get("keepdims", 1))
        out = (
            tuple(1 if a == axis else d for a, d in enumerate(shape))
            if keep
            else tuple(d for a, d in enumerate(shape) if a != axis)
        )
        self.add(
            node,
            ArgMax(
                op_shape(shape),
                op_shape(out),
                self._groups(shape, axis, False),
                bool(int(node.attrs.get("select_last_index", 0))),
                name=node.name,
            ),
            [x],
            out,
        )

    def op_OneHot(self, node):
        x, depth, values = node.inputs
        if not (self.is_const(depth) and self.is_const(values)):
            raise UnsupportedOperatorError(f"{node.where()}: depth and values must be constants")
        _, shape = self.var(node, x)
        axis = int(node.attrs.get("axis", -1))
        if axis not in (-1, len(shape)):
            raise UnsupportedOperatorError(f"{node.where()}: only axis=-1 is supported")
        d = int(np.asarray(self.const(depth)).ravel().tolist()[0])
        off, on = (_q(v) for v in np.asarray(self.const(values)).ravel().tolist()[:2])
        op = OneHot(op_shape(shape), d, off, on, name=node.name)
        self.add(node, op, [x], tuple(shape) + (d,))
