"""``AffineMats``: the exact coefficients of an affine map ``y = Σ_k W_k·x_k + b`` and the one
implementation of its evaluation, IBP and affine composition, over any number context.

The coefficients are exact (``fmpq_mat``, or :class:`~.dymat.DyMat` for float weights); each
representation (rational, integer-backed, sparse rows, ``|W|``) is built once, on first use.
IBP is the centre/radius form ``W·mid + b ± |W|·rad``: on integer matrices when every weight and
box end is dyadic, on ``fmpq_mat`` when they are exact, on python-flint ``arb_mat`` balls in a
context whose backend is ``arb`` (each ball encloses the exact value), and else (symbolic, float
simulation, enclosures in the rational context) entry by entry in the context's own arithmetic,
choosing ``lo``/``hi`` by the exact sign of each weight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flint import fmpq, fmpq_mat, fmpz, fmpz_mat

from .backends import ArbBackend, split_q
from .dymat import DyMat, dyadic_parts
from .fast import FastBackend, ball_col, float_ends

if TYPE_CHECKING:
    from ..numbers.contexts import Context


def _sparse_rows(W: Any) -> list[Any]:
    """Rows of an ``fmpq_mat`` as lists of ``(column, value)`` for the nonzero entries."""
    n = W.ncols()
    es = W.entries()
    return [
        [(j, v) for j, v in enumerate(es[i * n : (i + 1) * n]) if v != 0] for i in range(W.nrows())
    ]


def _abs_q(W: Any) -> Any:
    return fmpq_mat(W.nrows(), W.ncols(), [abs(v) for v in W.entries()])


def _abs_dy(W: Any) -> Any:
    return DyMat(fmpz_mat(W.nrows(), W.ncols(), [abs(v) for v in W.M.entries()]), W.e)


class AffineMats:
    """``W_k`` (one per input, ``fmpq_mat`` or ``DyMat``) and ``b`` (an out×1 ``fmpq_mat``);
    ``abs_dy`` optionally supplies ``|W_k|`` as ``DyMat`` thunks (built lazily)."""

    _bias_dy: Any
    _bias_list: Any

    def __init__(self, Ws: Any, b: Any, abs_dy: Any = None) -> None:
        self._W = list(Ws)
        self.b = b
        self._abs_thunks = list(abs_dy) if abs_dy else None
        self._q, self._absq, self._dy, self._absdy, self._sparse = {}, {}, {}, {}, {}
        self._bias_dy = self._bias_list = None
        self._fast = {}

    @property
    def n_inputs(self) -> int:
        return len(self._W)

    @property
    def out_dim(self) -> int:
        return self.b.nrows()

    def raw(self, k: int) -> Any:
        """``W_k`` as given (a ``DyMat`` or an ``fmpq_mat``): what a backend converts from."""
        return self._W[k]

    def q(self, k: int) -> Any:
        """``W_k`` as an ``fmpq_mat``."""
        if k not in self._q:
            W = self._W[k]
            self._q[k] = W.to_q() if isinstance(W, DyMat) else W
        return self._q[k]

    def abs_q(self, k: int) -> Any:
        """``|W_k|`` as an ``fmpq_mat``."""
        if k not in self._absq:
            D = self.abs_dy(k) if isinstance(self._W[k], DyMat) else None
            self._absq[k] = D.to_q() if D is not None else _abs_q(self.q(k))
        return self._absq[k]

    def dy(self, k: int) -> Any:
        """``W_k`` as a ``DyMat``, or ``None`` when an entry is not dyadic."""
        if k not in self._dy:
            W = self._W[k]
            self._dy[k] = W if isinstance(W, DyMat) else DyMat.from_q(W)
        return self._dy[k]

    def abs_dy(self, k: int) -> Any:
        """``|W_k|`` as a ``DyMat`` (``None`` when ``W_k`` is not dyadic)."""
        if k not in self._absdy:
            if self._abs_thunks is not None:
                self._absdy[k] = self._abs_thunks[k]()
            else:
                D = self.dy(k)
                self._absdy[k] = None if D is None else _abs_dy(D)
        return self._absdy[k]

    def bias_dy(self) -> Any:
        if self._bias_dy is None:
            self._bias_dy = DyMat.from_q(self.b) or False
        return self._bias_dy or None

    def sparse(self, k: int) -> Any:
        if k not in self._sparse:
            self._sparse[k] = _sparse_rows(self.q(k))
        return self._sparse[k]

    def bias_list(self) -> Any:
        if self._bias_list is None:
            self._bias_list = self.b.entries()
        return self._bias_list

    def split(self, k: int) -> Any:
        """``(W_k⁺, W_k⁻)`` as ``fmpq_mat``."""
        return split_q(self.q(k))

    # -- the verbs, written once --------------------------------------------------------------
    def evaluate(self, ctx: Context, xs: Any) -> Any:
        """``Σ_k W_k·x_k + b`` at points (flat lists of ``ctx`` elements)."""
        if all(ctx.all_exact(x) for x in xs):
            y = self.b
            for k, x in enumerate(xs):
                y = y + self.q(k) * fmpq_mat(len(x), 1, list(x))
            return y.entries()
        out = [ctx.const(v) for v in self.bias_list()]
        for k, x in enumerate(xs):
            x = [ctx.coerce(v) for v in x]
            for i, row in enumerate(self.sparse(k)):
                acc = out[i]
                for j, w in row:
                    acc = acc + ctx.const(w) * x[j]
                out[i] = acc
        return out

    def ibp(self, ctx: Context, ends: Any, with_bias: bool = True) -> Any:
        """Interval bounds ``(lo, hi)`` lists for input boxes ``ends = [(lo_k, hi_k)]``:
        ``lo_i = b_i + Σ_j W_ij·(lo_j if W_ij >= 0 else hi_j)``, ``hi`` likewise (``b`` left out
        when ``with_bias`` is false: the derivative map ``J·d``)."""
        if all(ctx.all_exact(lo) and ctx.all_exact(hi) for lo, hi in ends):
            got = self._ibp_dyadic(ends, with_bias)
            return got if got is not None else self._ibp_q(ends, with_bias)
        if ctx.backend_kind == "arb":
            return self._ibp_arb(ctx, ends, with_bias)
        if ctx.backend_kind == "fast":
            return self._ibp_fast(ctx, ends, with_bias)
        return self._ibp_elements(ctx, ends, with_bias)

    def _ibp_q(self, ends: Any, with_bias: bool) -> tuple[Any, ...]:
        m = self.out_dim
        ym = self.b if with_bias else fmpq_mat(m, 1)
        yr = fmpq_mat(m, 1)
        for k, (lo, hi) in enumerate(ends):
            n = len(lo)
            mid = fmpq_mat(n, 1, [(a + c) / 2 for a, c in zip(lo, hi)])
            rad = fmpq_mat(n, 1, [(c - a) / 2 for a, c in zip(lo, hi)])
            ym, yr = ym + self.q(k) * mid, yr + self.abs_q(k) * rad
        ym, yr = ym.entries(), yr.entries()
        return [a - r for a, r in zip(ym, yr)], [a + r for a, r in zip(ym, yr)]

    def _ibp_dyadic(self, ends: Any, with_bias: bool) -> Any:
        """The centre/radius products on integer matrices when every weight, bias and box end is
        dyadic (the same values as :meth:`_ibp_q`); ``None`` otherwise."""
        bias = self.bias_dy() if with_bias else DyMat(fmpz_mat(self.out_dim, 1), 0)
        if bias is None:
            return None
        ym, yr = bias, DyMat(fmpz_mat(self.out_dim, 1), 0)
        for k, (lo, hi) in enumerate(ends):
            W = self.dy(k)
            if W is None:
                return None
            parts = [dyadic_parts(v) for v in list(lo) + list(hi)]
            if any(t is None for t in parts):
                return None
            n = len(lo)
            e = min((s for m, s in parts if m), default=0)
            ints = [m << (s - e) for m, s in parts]
            il, ih = ints[:n], ints[n:]
            mid = fmpz_mat(n, 1, [fmpz(a + b) for a, b in zip(il, ih)])  # 2^(e-1)·(lo + hi)
            rad = fmpz_mat(n, 1, [fmpz(b - a) for a, b in zip(il, ih)])  # 2^(e-1)·(hi − lo)
            ym = ym + DyMat(W.M * mid, W.e + e - 1)
            yr = yr + DyMat(self.abs_dy(k).M * rad, W.e + e - 1)
        return (ym - yr).entry_list(), (ym + yr).entry_list()

    def _ibp_arb(self, ctx: Context, ends: Any, with_bias: bool) -> tuple[Any, ...]:
        """The centre/radius products on ``arb_mat`` balls at the context's precision (each ball
        encloses the exact IBP value), returned as elements of ``ctx``."""
        be = ArbBackend(ctx.precision)
        with be.precision():
            m = self.out_dim
            ym = be.mat(self.b) if with_bias else be.zeros(m, 1)
            yr = be.zeros(m, 1)
            half = be.const(fmpq(1, 2))
            for k, (lo, hi) in enumerate(ends):
                lo = [be.from_ctx(ctx, v) for v in lo]
                hi = [be.from_ctx(ctx, v) for v in hi]
                mid = be.from_entries(len(lo), 1, [(a + b) * half for a, b in zip(lo, hi)])
                rad = be.from_entries(len(lo), 1, [(b - a) * half for a, b in zip(lo, hi)])
                ym, yr = ym + be.mat(self.q(k)) * mid, yr + be.mat(self.abs_q(k)) * rad
            ym, yr = be.entries(ym), be.entries(yr)
            return (
                [be.to_ctx(ctx, a - r) for a, r in zip(ym, yr)],
                [be.to_ctx(ctx, a + r) for a, r in zip(ym, yr)],
            )

    def _ibp_fast(self, ctx: Context, ends: Any, with_bias: bool) -> tuple[Any, ...]:
        """The centre/radius products on float64 balls (``linalg.fast``): each ball encloses the
        exact IBP value for any box ends inside the given enclosures."""
        be = FastBackend()
        m = self.out_dim
        ym = be.mat(self.b) if with_bias else be.zeros(m, 1)
        yr = be.zeros(m, 1)
        for k, (lo, hi) in enumerate(ends):
            lo = ball_col([float_ends(ctx, v) for v in lo])
            hi = ball_col([float_ends(ctx, v) for v in hi])
            W = self.fast_w(be, k)
            ym = ym + W * ((lo + hi) * be.const(fmpq(1, 2)))
            yr = yr + abs(W) * ((hi - lo) * be.const(fmpq(1, 2)))
        return be.col_to_ctx(ctx, ym - yr), be.col_to_ctx(ctx, ym + yr)

    def fast_w(self, be: Any, k: Any) -> Any:
        """``W_k`` as a float64 ball matrix (built once)."""
        if k not in self._fast:
            self._fast[k] = be.mat(self._W[k])
        return self._fast[k]

    def _ibp_elements(self, ctx: Context, ends: Any, with_bias: bool) -> tuple[Any, ...]:
        zero = ctx.const(0)
        lo = [ctx.const(b) if with_bias else zero for b in self.bias_list()]
        hi = list(lo)
        for k, (xl, xh) in enumerate(ends):
            xl = [ctx.coerce(v) for v in xl]
            xh = [ctx.coerce(v) for v in xh]
            for i, row in enumerate(self.sparse(k)):
                bl, bh = lo[i], hi[i]
                for j, w in row:
                    wc = ctx.const(w)
                    if w > 0:
                        bl, bh = bl + wc * xl[j], bh + wc * xh[j]
                    else:
                        bl, bh = bl + wc * xh[j], bh + wc * xl[j]
                lo[i], hi[i] = bl, bh
        return lo, hi

    def aff(self, ctx: Context, forms: Any, n: int) -> tuple[Any, ...]:
        """``Σ_k W_k·(A_k·x + c_k) + b`` for forms ``[(A_k rows, c_k)]`` over the same ``n``
        inputs: ``(A rows, c)``."""
        exact = all(ctx.all_exact([v for r in A for v in r] + list(c)) for A, c in forms)
        m = self.out_dim
        if exact:
            A, c = fmpq_mat(m, n), self.b
            for k, (aA, ac) in enumerate(forms):
                W = self.q(k)
                A = A + W * fmpq_mat(aA) if aA and n else A
                c = c + W * fmpq_mat(len(ac), 1, list(ac))
            return (A.tolist() if n else [[] for _ in range(m)]), c.entries()
        zero = ctx.const(0)
        A = [[zero] * n for _ in range(m)]
        c = [ctx.const(b) for b in self.bias_list()]
        for k, (aA, ac) in enumerate(forms):
            aA = [[ctx.coerce(v) for v in r] for r in aA]
            ac = [ctx.coerce(v) for v in ac]
            for i, row in enumerate(self.sparse(k)):
                for j, w in row:
                    wc = ctx.const(w)
                    A[i] = [s + wc * t for s, t in zip(A[i], aA[j])]
                    c[i] = c[i] + wc * ac[j]
        return A, c
