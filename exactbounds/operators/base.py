"""Common machinery of the graph operators.

Every operator has ``kind``, ``in_shapes`` (one shape per input tensor), ``out_shape``,
``in_dim``/``out_dim`` (flattened sizes of the first input and the output) and the verbs, each
taking the number context first:

``evaluate(ctx, *xs)``  the exact value at points (flat lists);
``ibp(ctx, *boxes)``    interval bounds (:class:`~exactbounds.core.Box`);
``aff(ctx, *affs)``     composition with affine forms (affine operators only);
``backward(ctx, lam)``  CROWN step of an affine operator: for a linear functional ``lam`` (a
                        backend matrix m×out) returns ``([lam·W_k for each input k], lam·b)``;
``deriv(ctx, *dboxes)`` the linear part ``J·d`` (no bias) of an affine operator;
``relax(ctx, lo, hi, **opts)`` (elementwise nonlinear operators) the lists
                        ``(ls, lb, us, ub)`` with ``ls·x+lb <= f(x) <= us·x+ub`` on ``[lo, hi]``.

Affine operators derive from :class:`AffineOp`: they define ``linear_params()`` returning exact
``(Ws, b)`` (``Ws`` a list of ``fmpq_mat`` out×in_k, ``b`` an out×1 ``fmpq_mat``) and get all the
verbs. ``passthrough`` operators (Identity, Flatten, Reshape) move values unchanged.
"""
from abc import ABC, abstractmethod
from math import prod

from flint import fmpq, fmpq_mat

from ..core import AffineVec, Box
from ..errors import ShapeError, shown
from ..numbers import RationalContext


def as_shape(shape, what):
    try:
        s = tuple(int(d) for d in (shape if isinstance(shape, (list, tuple)) else [shape]))
    except (TypeError, ValueError):
        raise ShapeError(f"{what}: shape {shown(shape)} is not a tuple of integers") from None
    if not s or any(d <= 0 for d in s):
        raise ShapeError(f"{what}: shape {s} must be non-empty with positive sizes")
    return s


class Op(ABC):
    kind = "op"
    passthrough = False
    affine = False
    name = None

    @property
    def arity(self):
        return len(self.in_shapes)

    @property
    def in_dim(self):
        return prod(self.in_shapes[0])

    @property
    def out_dim(self):
        return prod(self.out_shape)

    def _label(self):
        return self.name or self.kind

    def check_inputs(self, sizes, what):
        if len(sizes) != self.arity:
            raise ShapeError(f"{self._label()}: takes {self.arity} inputs, got {len(sizes)}")
        for k, (n, s) in enumerate(zip(sizes, self.in_shapes)):
            if n != prod(s):
                raise ShapeError(f"{self._label()}: {what} {k} has {n} entries, "
                                 f"expected {prod(s)} (shape {s})")

    def __repr__(self):
        return f"{type(self).__name__}({self.in_shapes} -> {self.out_shape})"


def _all_exact(vals):
    return all(isinstance(v, fmpq) for v in vals)


def _sparse_rows(W):
    """Rows of an ``fmpq_mat`` as lists of ``(column, value)`` for the nonzero entries."""
    n = W.ncols()
    es = W.entries()
    return [[(j, v) for j, v in enumerate(es[i * n:(i + 1) * n]) if v != 0]
            for i in range(W.nrows())]


def abs_mat(W):
    return fmpq_mat(W.nrows(), W.ncols(), [abs(v) for v in W.entries()])


class AffineOp(Op):
    """``y = Σ_k W_k·x_k + b`` with exact ``W_k``, ``b`` (see the module docstring)."""

    affine = True
    _cache = None

    @abstractmethod
    def linear_params(self):
        """``([W_k], b)``: one exact ``fmpq_mat`` per input and the bias column."""

    def _mats(self):
        if self._cache is None:
            Ws, b = self.linear_params()
            self._cache = {"W": Ws, "b": b}
        return self._cache

    def weights(self):
        return self._mats()["W"]

    def bias(self):
        return self._mats()["b"]

    def abs_weights(self):
        c = self._mats()
        if "absW" not in c:
            c["absW"] = [abs_mat(W) for W in c["W"]]
        return c["absW"]

    def sparse(self):
        c = self._mats()
        if "sparse" not in c:
            c["sparse"] = [_sparse_rows(W) for W in c["W"]]
            c["bias_list"] = c["b"].entries()
        return c["sparse"], c["bias_list"]

    # -- verbs ------------------------------------------------------------------------------
    def evaluate(self, ctx, *xs):
        self.check_inputs([len(x) for x in xs], "x")
        if isinstance(ctx, RationalContext) and all(_all_exact(x) for x in xs):
            y = self.bias()
            for W, x in zip(self.weights(), xs):
                y = y + W * fmpq_mat(len(x), 1, list(x))
            return y.entries()
        rows, bias = self.sparse()
        out = [ctx.const(b) for b in bias]
        for R, x in zip(rows, xs):
            x = [ctx.coerce(v) for v in x]
            for i, row in enumerate(R):
                acc = out[i]
                for j, w in row:
                    acc = acc + ctx.const(w) * x[j]
                out[i] = acc
        return out

    def _ibp(self, ctx, boxes, with_bias):
        self.check_inputs([b.dim for b in boxes], "input box")
        m = self.out_dim
        if isinstance(ctx, RationalContext) and all(_all_exact(b.lo + b.hi) for b in boxes):
            ym = self.bias() if with_bias else fmpq_mat(m, 1)
            yr = fmpq_mat(m, 1)
            for W, aW, box in zip(self.weights(), self.abs_weights(), boxes):
                n = box.dim
                mid = fmpq_mat(n, 1, [(a + c) / 2 for a, c in zip(box.lo, box.hi)])
                rad = fmpq_mat(n, 1, [(c - a) / 2 for a, c in zip(box.lo, box.hi)])
                ym, yr = ym + W * mid, yr + aW * rad
            ym, yr = ym.entries(), yr.entries()
            return Box([a - r for a, r in zip(ym, yr)], [a + r for a, r in zip(ym, yr)],
                       self.out_shape)
        if hasattr(ctx, "iv"):
            return self._ibp_arb(ctx, boxes, with_bias)
        rows, bias = self.sparse()
        zero = ctx.const(0)
        lo = [ctx.const(b) if with_bias else zero for b in bias]
        hi = list(lo)
        for R, box in zip(rows, boxes):
            xl = [ctx.coerce(v) for v in box.lo]
            xh = [ctx.coerce(v) for v in box.hi]
            for i, row in enumerate(R):
                bl, bh = lo[i], hi[i]
                for j, w in row:
                    wc = ctx.const(w)
                    if w > 0:
                        bl, bh = bl + wc * xl[j], bh + wc * xh[j]
                    else:
                        bl, bh = bl + wc * xh[j], bh + wc * xl[j]
                lo[i], hi[i] = bl, bh
        return Box(lo, hi, self.out_shape)

    def _ibp_arb(self, ctx, boxes, with_bias):
        """Interval context: the centre/radius products on python-flint ``arb_mat`` balls at
        ``ctx.prec`` (each ball encloses the exact IBP value), returned as ``iv`` intervals."""
        from ..algorithms.backend import ArbBackend
        be = ArbBackend(ctx.prec)
        with be.precision():
            m = self.out_dim
            ym = be.mat(self.bias()) if with_bias else be.zeros(m, 1)
            yr = be.zeros(m, 1)
            for W, aW, box in zip(self.weights(), self.abs_weights(), boxes):
                lo = [be.from_ctx(ctx, v) for v in box.lo]
                hi = [be.from_ctx(ctx, v) for v in box.hi]
                half = be.const(fmpq(1, 2))
                mid = be.from_entries(box.dim, 1, [(a + b) * half for a, b in zip(lo, hi)])
                rad = be.from_entries(box.dim, 1, [(b - a) * half for a, b in zip(lo, hi)])
                ym, yr = ym + be.mat(W) * mid, yr + be.mat(aW) * rad
            ym, yr = be.entries(ym), be.entries(yr)
            return Box([be.to_ctx(ctx, a - r) for a, r in zip(ym, yr)],
                       [be.to_ctx(ctx, a + r) for a, r in zip(ym, yr)], self.out_shape)

    def ibp(self, ctx, *boxes):
        """``lo_i = b_i + Σ_j W_ij·(lo_j if W_ij >= 0 else hi_j)``, ``hi`` likewise (centre/radius
        form on ``fmpq_mat`` for exact boxes)."""
        return self._ibp(ctx, boxes, True)

    def deriv(self, ctx, *dboxes):
        """Derivative boxes: ``J·d`` with ``J = W`` (no bias)."""
        return self._ibp(ctx, dboxes, False)

    def aff(self, ctx, *affs):
        """``Σ_k W_k·(A_k·x + c_k) + b`` as one :class:`AffineVec` (all forms over the same x)."""
        self.check_inputs([a.out_dim for a in affs], "affine form")
        n = affs[0].in_dim
        exact = isinstance(ctx, RationalContext) and all(
            _all_exact([v for r in a.A for v in r] + list(a.c)) for a in affs)
        if exact:
            A, c = fmpq_mat(self.out_dim, n), self.bias()
            for W, a in zip(self.weights(), affs):
                A = A + W * fmpq_mat(a.A) if a.A and n else A
                c = c + W * fmpq_mat(len(a.c), 1, list(a.c))
            return AffineVec(A.tolist() if n else [[] for _ in range(self.out_dim)],
                             c.entries(), n)
        rows, bias = self.sparse()
        zero = ctx.const(0)
        A = [[zero] * n for _ in range(self.out_dim)]
        c = [ctx.const(b) for b in bias]
        for R, a in zip(rows, affs):
            aA = [[ctx.coerce(v) for v in r] for r in a.A]
            ac = [ctx.coerce(v) for v in a.c]
            for i, row in enumerate(R):
                for j, w in row:
                    wc = ctx.const(w)
                    A[i] = [s + wc * t for s, t in zip(A[i], aA[j])]
                    c[i] = c[i] + wc * ac[j]
        return AffineVec(A, c, n)

    def backward(self, ctx, lam, backend=None):
        """CROWN through an affine map: ``lam·y = Σ_k (lam·W_k)·x_k + lam·b``. ``lam`` is a
        backend matrix (``fmpq_mat`` by default); returns ``([lam·W_k], lam·b)``."""
        from ..algorithms.backend import QBackend
        be = backend or QBackend()
        return ([lam * be.mat(W) for W in self.weights()], lam * be.mat(self.bias()))


class PassThrough(Op):
    """An operator that only renames the shape of its single input."""

    passthrough = True

    def evaluate(self, ctx, x):
        self.check_inputs([len(x)], "x")
        return list(x)

    def ibp(self, ctx, box):
        self.check_inputs([box.dim], "input box")
        return Box(box.lo, box.hi, self.out_shape)

    deriv = ibp

    def aff(self, ctx, aff):
        self.check_inputs([aff.out_dim], "affine form")
        return aff

    def backward(self, ctx, lam, backend=None):
        return [lam], None


def _linear_enclosure(self, ctx=None):
    """Exact ``(Ws, b, Wrad, brad)``: an affine operator's coefficients are exact (radii None)."""
    return self.weights(), self.bias(), None, None


AffineOp.linear_enclosure = _linear_enclosure
