"""Matrix backends: the one matrix interface of CROWN, forward affine propagation and the IBP
of affine operators. Algorithms hold backend matrices opaquely and never see a representation
type; the backend picks it (as sympy's ``DomainMatrix`` picks DFM or DDM).

``QBackend``: python-flint ``fmpq_mat``; exact. ``ZBackend`` (used for the modes ``exact`` and
``dyadic``): the same values, with matrices of dyadic rationals held as integer ``fmpz_mat``
times a shared power of two (``DyMat``), which multiply without gcds.
``ArbBackend(prec)``: python-flint ``arb_mat`` balls at ``prec`` bits; every entry is a ball
that contains the exact-arithmetic value (mode ``interval``). A sign that a ball cannot decide
is never guessed: callers take the hull of both branches (:meth:`sign` returns ``None``).

All expose the same vocabulary: ``mat`` (from an exact ``fmpq_mat``), ``col`` (a column
from exact values), ``zeros``/``eye``, ``entries``/``from_entries``, ``abs``, ``abs_dot``,
``abs_rowsum``, ``sign``, ``hull``, ``lower``/``upper`` (exact ends of an entry), ``from_ctx`` /
``to_ctx`` (entries to and from a number context), ``mul`` (``Λ·W``), ``full``, ``relax_backward``
(the CROWN step through elementwise relaxations), ``pick_rows`` (the forward step), ``split``
(positive and negative parts) and ``precision`` (a context manager for the working precision).
:func:`backend_for` picks the backend from the context's ``backend_kind``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from operator import mul
from typing import TYPE_CHECKING, Any

from flint import arb, arb_mat, fmpq, fmpq_mat, fmpz, fmpz_mat
from flint import ctx as flint_ctx

from ..errors import AmbiguousBranch, InvalidModelError, InvalidValueError
from ..numbers import RInterval, dyadic, sqrt_enclosure
from .dymat import DyMat, dyadic_parts
from .structured import exact_cheap, exact_rmul

if TYPE_CHECKING:
    from ..numbers.contexts import Context

IDENT = "identity"
"""The identity functional (a backward pass starts with it; no matrix is built for it)."""


def eye_q(n: int) -> Any:
    """The ``n×n`` identity as an ``fmpq_mat``."""
    M = fmpq_mat(n, n)
    for i in range(n):
        M[i, i] = 1
    return M


def as_q(W: Any) -> Any:
    """An exact matrix (``DyMat`` or ``fmpq_mat``) as an ``fmpq_mat``."""
    return W.to_q() if isinstance(W, DyMat) else W


def split_q(W: Any) -> tuple[Any, ...]:
    """``(W⁺, W⁻)``: the positive and the negative entries of an exact matrix, as
    ``fmpq_mat``."""
    W = as_q(W)
    es = W.entries()
    z = fmpq(0)
    return (
        fmpq_mat(W.nrows(), W.ncols(), [v if v > 0 else z for v in es]),
        fmpq_mat(W.nrows(), W.ncols(), [v if v < 0 else z for v in es]),
    )


class _Base:
    """Shared steps written once over the vocabulary."""

    exact = True
    structured = False
    """Whether :meth:`lin_rmul` works (structured parts) in this backend."""
    forward_structured = False
    """The forward affine step takes structured maps (``linalg/fast_forward.py``)."""

    if TYPE_CHECKING:  # the vocabulary every backend supplies (see the module docstring)

        def mat(self, m: Any) -> Any: ...
        def const(self, q: Any) -> Any: ...
        def col(self, values: Any) -> Any: ...
        def entries(self, m: Any) -> Any: ...
        def from_entries(self, r: int, c: int, es: Any) -> Any: ...
        def sign(self, x: Any) -> Any: ...
        def abs(self, m: Any) -> Any: ...
        def abs_dot(self, A: Any, v: Any) -> Any: ...
        def abs_rowsum(self, A: Any) -> Any: ...
        def hull(self, a: Any, b: Any) -> Any: ...
        def radius_ball(self, m: Any) -> Any: ...

    def eye(self, n: int) -> Any:
        return self.mat(eye_q(n))

    def eye_rows(self, rows: Any, n: int) -> Any:
        """The rows ``rows`` of the ``n×n`` identity."""
        M = fmpq_mat(len(rows), n)
        for t, j in enumerate(rows):
            M[t, j] = 1
        return self.mat(M)

    def vstack(self, mats: list[Any]) -> Any:
        """The matrices (same column count) one above the other."""
        if len(mats) == 1:
            return mats[0]
        c = mats[0].ncols()
        es = [v for M in mats for v in self.entries(M)]
        return self.from_entries(len(es) // c if c else 0, c, es)

    # -- structured linear maps (:mod:`.structured`) ----------------------------------------
    def lin_ok(self, lin: Any, LL: Any, LU: Any) -> bool:
        """Whether :meth:`lin_crown` takes the structured path (else the dense product)."""
        return False

    def lin_rmul(self, lam: Any, part: Any) -> Any:
        """``Λ·W`` for a part of a :class:`~.structured.LinearMap`; only backends whose
        :meth:`lin_ok` can answer ``True`` take this path (the others multiply dense ``W``)."""
        raise TypeError(
            f"{type(self).__name__} multiplies dense matrices only: lin_ok() is False, "
            "so no structured step reaches lin_rmul"
        )

    def lin_crown(self, lin: Any, LL: Any, LU: Any, m: int) -> Any:
        """The CROWN step ``Λ ↦ (Λ·W_k per input, Λ·b)`` through the structured map ``lin`` (no
        dense ``W_k``), as ``AffineOp.crown_step`` returns it; ``None`` when this backend
        prefers the dense product here."""
        if not self.lin_ok(lin, LL, LU):
            return None
        b = self.mat(lin.b)

        def step(lam: Any) -> Any:
            lam = self.eye(m) if lam is IDENT else self.full(lam)
            return [self.lin_rmul(lam, p) for p in lin.parts], self.mul(lam, b)

        newL, cL = step(LL)
        newU, cU = (newL, cL) if LU is LL else step(LU)
        if lin.b_rad is None:
            return newL, newU, [cL], [cU]
        e = self.mat(lin.b_rad)  # an enclosed bias b ± e: ∓|Λ|·e
        eL = self.abs(self.full(LL)) * e if LL is not IDENT else e
        eU = self.abs(self.full(LU)) * e if LU is not IDENT else e
        return newL, newU, [cL, -eL], [cU, eU]

    def full(self, x: Any) -> Any:
        """A functional as a plain backend matrix (a compact one expanded)."""
        return x

    def mul(self, lam: Any, W: Any) -> Any:
        """``Λ·W``."""
        return lam * W

    def add(self, a: Any, b: Any, n: int) -> Any:
        """``a + b`` for functionals (``None``: absent; ``IDENT``: the ``n×n`` identity)."""
        if a is None:
            return b
        a, b = self.full(a), self.full(b)
        if a is IDENT:
            a = self.eye(n)
        if b is IDENT:
            b = self.eye(n)
        return a + b

    def diag(self, vals: Any) -> Any:
        """The diagonal matrix of the backend values ``vals``."""
        n = len(vals)
        es = [self.const(fmpq(0))] * (n * n)
        for i, v in enumerate(vals):
            es[i * n + i] = v
        return self.from_entries(n, n, es)

    def split(self, W: Any) -> tuple[Any, ...]:
        """``(W⁺, W⁻)`` of an exact ``fmpq_mat`` as backend matrices."""
        P, N = split_q(W)
        return self.mat(P), self.mat(N)

    def relax_backward(self, lam: Any, n: int, rel: Any, upper: Any, compact: bool = False) -> Any:
        """``Λ·y`` with ``y`` elementwise relaxed by the lines ``rel = (ls, lb, us, ub)``:
        returns ``(Λ', bias)``. For the lower bound (``upper=False``) coefficients ``>= 0`` take
        the lower line, ``< 0`` the upper line; the other way for the upper bound. Undecidable
        signs (balls) take the hull of both. ``compact``: the result may leave out zero columns."""
        ls, lb, us, ub = rel
        pa, pb, na, nb = (us, ub, ls, lb) if upper else (ls, lb, us, ub)
        if lam is IDENT:
            return self.diag(pa), self.col(pb)
        return self._relax(lam, n, pa, pb, na, nb, compact)

    def _relax(
        self, lam: Any, n: int, pa: Any, pb: Any, na: Any, nb: Any, compact: bool
    ) -> tuple[Any, ...]:
        m = lam.nrows()
        es = self.entries(lam)
        new, bias = [], []
        for i in range(m):
            row = es[i * n : (i + 1) * n]
            acc = self.const(fmpq(0))
            for v, a, ba, b, bb in zip(row, pa, pb, na, nb):
                s = self.sign(v)
                if s is None:
                    new.append(self.hull(v * a, v * b))
                    acc += self.hull(v * ba, v * bb)
                elif s >= 0:
                    new.append(v * a)
                    acc += v * ba
                else:
                    new.append(v * b)
                    acc += v * bb
            bias.append(acc)
        return self.from_entries(m, n, new), self.from_entries(m, 1, bias)

    def sign_split(self, lam: Any) -> tuple[Any, ...]:
        """``(P, N, U)``: the entries of ``lam`` that are ``> 0``, ``< 0``, and (balls only) of
        undecided sign (``U`` is ``None`` when every sign is decided)."""
        es = self.entries(lam)
        z = self.const(fmpq(0))
        P, N, U = [], [], []
        for v in es:
            s = self.sign(v)
            P.append(v if s == 1 else z)
            N.append(v if s == -1 else z)
            U.append(v if s is None else z)
        r, c = lam.nrows(), lam.ncols()
        und = self.from_entries(r, c, U) if any(self.sign(v) is None for v in es) else None
        return self.from_entries(r, c, P), self.from_entries(r, c, N), und

    def relax_linear_backward(self, lam: Any, A: Any, Ab: Any, B: Any, Bb: Any) -> tuple[Any, ...]:
        """``Λ⁺·A_k + Λ⁻·B_k`` per input and the bias ``Λ⁺·Ab + Λ⁻·Bb``: the functional ``Λ``
        through ``A·x + Ab <= y <= B·x + Bb`` for its lower bound (swap ``A``/``B`` for the
        upper). An entry of undecided sign contributes ``Λ_ij·(A_j + B_j)/2 ±
        |Λ_ij|·|A_j − B_j|/2``, which holds both choices."""
        P, N, U = self.sign_split(lam)
        news = [P * a + N * b for a, b in zip(A, B)]
        bias = P * Ab + N * Bb
        if U is not None:
            half = self.const(fmpq(1, 2))
            news = [v + self._both(U, a, b, half) for v, a, b in zip(news, A, B)]
            bias = bias + self._both(U, Ab, Bb, half)
        return news, bias

    def _both(self, U: Any, a: Any, b: Any, half: Any) -> Any:
        mid = U * ((a + b) * half)
        rad = self.abs(U) * (self.abs(a - b) * half)
        return mid + self.from_entries(
            rad.nrows(), rad.ncols(), [self.radius_ball(v) for v in self.entries(rad)]
        )

    def pick_rows(self, A: Any, B: Any, s: Any, n: int) -> Any:
        """Row ``i``: ``s_i·A_i`` when ``s_i >= 0`` else ``s_i·B_i`` (hull if undecidable)."""
        ea, eb = self.entries(A), self.entries(B)
        out = []
        for i, si in enumerate(s):
            ra, rb = ea[i * n : (i + 1) * n], eb[i * n : (i + 1) * n]
            sg = self.sign(si)
            if sg is None:
                out.extend(self.hull(si * a, si * b) for a, b in zip(ra, rb))
            else:
                out.extend(si * v for v in (ra if sg >= 0 else rb))
        return self.from_entries(len(s), n, out)

    def max_abs(self, row: Any) -> Any:
        """``max |v|`` over a row of entries."""
        best = None
        for v in row:
            a = abs(v)
            best = a if best is None else best.max(a)
        return best if best is not None else self.const(fmpq(0))

    def concretize_ends(self, A: Any, c: Any, ends: Any) -> tuple[Any, ...]:
        """The outer value of ``A·x + c`` over a box given as exact ``(lo, hi)`` lists:
        ``(lower column, upper column)``."""
        lo, hi = ends
        mid = self.col([(a + b) / 2 for a, b in zip(lo, hi)])
        rad = [(b - a) / 2 for a, b in zip(lo, hi)]
        if all(r == rad[0] for r in rad):
            dev = self.abs_rowsum(A) * self.const(rad[0])
        else:
            dev = self.abs_dot(A, rad)
        base = A * mid + c
        return base - dev, base + dev


class QBackend(_Base):
    """Exact ``fmpq_mat`` entry-by-entry reference backend."""

    exact = True
    structured = True

    def mat(self, m: Any) -> Any:
        return as_q(m)

    def zeros(self, r: Any, c: Any) -> Any:
        return fmpq_mat(r, c)

    def col(self, values: Any) -> Any:
        return fmpq_mat(len(values), 1, [v for v in values])

    def const(self, q: Any) -> Any:
        return q

    def entries(self, m: Any) -> Any:
        return m.entries()

    def from_entries(self, r: Any, c: Any, es: Any) -> Any:
        return fmpq_mat(r, c, es)

    def sign(self, x: Any) -> Any:
        return (x > 0) - (x < 0)

    def abs(self, m: Any) -> Any:
        return fmpq_mat(m.nrows(), m.ncols(), [abs(v) for v in m.entries()])

    def abs_dot(self, A: Any, v: Any) -> Any:
        """The column ``|A|·v`` for a list ``v`` (row by row, no |A| matrix built)."""
        n, es = A.ncols(), A.entries()
        return fmpq_mat(
            A.nrows(),
            1,
            [
                sum(map(mul, map(abs, es[i * n : (i + 1) * n]), v), fmpq(0))
                for i in range(A.nrows())
            ],
        )

    def abs_rowsum(self, A: Any) -> Any:
        n, es = A.ncols(), A.entries()
        return fmpq_mat(
            A.nrows(),
            1,
            [sum(map(abs, es[i * n : (i + 1) * n]), fmpq(0)) for i in range(A.nrows())],
        )

    def hull(self, a: Any, b: Any) -> Any:
        raise AssertionError("exact entries never need a hull")

    def lower(self, x: Any) -> Any:
        return x

    def upper(self, x: Any) -> Any:
        return x

    def sign_split(self, lam: Any) -> tuple[Any, ...]:
        if isinstance(lam, DyMat):
            z = fmpz(0)
            es = lam.M.entries()
            r, c = lam.nrows(), lam.ncols()
            return (
                DyMat(fmpz_mat(r, c, [v if v > 0 else z for v in es]), lam.e),
                DyMat(fmpz_mat(r, c, [v if v < 0 else z for v in es]), lam.e),
                None,
            )
        es = self.entries(lam)
        z = fmpq(0)
        r, c = lam.nrows(), lam.ncols()
        return (
            self.from_entries(r, c, [v if v > 0 else z for v in es]),
            self.from_entries(r, c, [v if v < 0 else z for v in es]),
            None,
        )

    def lin_ok(self, lin: Any, LL: Any, LU: Any) -> bool:
        """Exact products: structured unless a functional is the identity (the dense ``W``
        then is the answer) or a part is a convolution small enough for a dense product."""
        return LL is not IDENT and LU is not IDENT and all(exact_cheap(p) for p in lin.parts)

    def lin_rmul(self, lam: Any, part: Any) -> Any:
        return as_q(exact_rmul(self.full(lam), part))

    def sqrt_upper(self, x: Any, bits: int) -> tuple[Any, ...]:
        s = sqrt_enclosure(x, bits)
        return (s.hi if isinstance(s, RInterval) else s), isinstance(s, RInterval)

    def max_abs(self, row: Any) -> Any:
        return max((abs(v) for v in row), default=fmpq(0))

    def _relax(
        self, lam: Any, n: int, pa: Any, pb: Any, na: Any, nb: Any, compact: bool
    ) -> tuple[Any, ...]:
        # Sign-independent part entry by entry (Λ_ij·pa_j) and Λ·pb as one product; then the
        # columns whose two lines differ are fixed where the coefficient is negative.
        m = lam.nrows()
        es = self.entries(lam)
        split = [j for j in range(n) if pa[j] != na[j] or pb[j] != nb[j]]
        new = []
        for i in range(m):
            new.extend(map(mul, es[i * n : (i + 1) * n], pa))
        bias = lam * fmpq_mat(n, 1, pb) if any(v != 0 for v in pb) else fmpq_mat(m, 1)
        for j in split:
            da, db = na[j], nb[j] - pb[j]
            for i in range(m):
                v = es[i * n + j]
                if v < 0:
                    new[i * n + j] = v * da
                    if db != 0:
                        bias[i, 0] += v * db
        return fmpq_mat(m, n, new), bias

    def pick_rows(self, A: Any, B: Any, s: Any, n: int) -> Any:
        return _Base.pick_rows(self, A, B, s, n)

    def from_ctx(self, ctx: Context, v: Any, upper: Any = None) -> Any:
        """An exact value from a context element; ``upper`` picks the outer end of an
        enclosure (``None``: the element must be exact)."""
        if upper is None:
            return ctx.coerce(v) if ctx.status(v) == "exact" else _enclosed(v)
        return ctx.upper(v) if upper else ctx.lower(v)

    def to_ctx(self, ctx: Context, x: Any) -> Any:
        return x

    @contextmanager
    def precision(self) -> Iterator[Any]:
        yield


class ZBackend(QBackend):
    """Exact like :class:`QBackend`, but matrices of dyadic rationals (float weights, dyadic
    bounds and slopes) are :class:`~exactbounds.linalg.dymat.DyMat` (an integer ``fmpz_mat``
    times one power of two), whose products need no gcds; anything non-dyadic stays an
    ``fmpq_mat``. The relaxation step is ``Λ·diag(pa) + N·diag(na − pa)`` (``N``: the negative
    entries of ``Λ`` in the columns whose lines differ) as integer products, and the columns of
    stably inactive neurons may be left out of ``Λ`` (a compact functional) and of the next
    product. Every value equals the one :class:`QBackend` computes."""

    def __init__(self) -> None:
        self._rows = {}

    def full(self, x: Any) -> Any:
        return x.full() if isinstance(x, _Cols) else x

    def lin_rmul(self, lam: Any, part: Any) -> Any:
        return exact_rmul(self.full(lam), part)

    def mul(self, lam: Any, W: Any) -> Any:
        """``Λ·W``; for a compact ``Λ`` only the kept rows of ``W`` enter."""
        if not isinstance(lam, _Cols):
            return lam * W
        key = (id(W), tuple(lam.keep))
        got = self._rows.get(key)
        if got is None:
            S = _selection(lam.keep, lam.n)
            sub = DyMat(S * W.M, W.e) if isinstance(W, DyMat) else fmpq_mat(S) * W
            got = self._rows[key] = (W, sub)
        return lam.M * got[1]

    def _relax(self, lam: Any, n: int, pa: Any, pb: Any, na: Any, nb: Any, compact: bool) -> Any:
        if isinstance(lam, DyMat):
            got = _relax_backward_dyadic(self, lam, n, pa, pb, na, nb, compact)
            if got is not None:
                return got
            lam = lam.to_q()
        return QBackend._relax(self, lam, n, pa, pb, na, nb, compact)

    def pick_rows(self, A: Any, B: Any, s: Any, n: int) -> Any:
        if isinstance(A, DyMat) and isinstance(B, DyMat):
            z = fmpq(0)
            P = self.dyadic_diag([v if v >= 0 else z for v in s])
            N = self.dyadic_diag([v if v < 0 else z for v in s])
            if P is not None and N is not None:  # diag(s⁺)·A + diag(s⁻)·B, integer products
                return P * A + N * B
        return QBackend.pick_rows(self, A, B, s, n)

    def mat(self, m: Any) -> Any:
        if isinstance(m, fmpq_mat):
            return DyMat.from_q(m) or m
        return m

    def zeros(self, r: Any, c: Any) -> Any:
        return DyMat(fmpz_mat(r, c), 0)

    def col(self, values: Any) -> Any:
        return self.from_entries(len(values), 1, list(values))

    def from_entries(self, r: Any, c: Any, es: Any) -> Any:
        return DyMat.from_entries(r, c, es) or fmpq_mat(r, c, es)

    def diag(self, vals: Any) -> Any:
        """The diagonal matrix of ``vals`` (integer-backed when every value is dyadic)."""
        return self.dyadic_diag(vals) or QBackend.diag(self, vals)

    def dyadic_diag(self, vals: Any) -> Any:
        """The integer-backed diagonal matrix of ``vals``, or ``None`` if one is not dyadic."""
        n = len(vals)
        parts = [dyadic_parts(v) for v in vals]
        if any(p is None for p in parts):
            return None
        e = min((p[1] for p in parts if p[0]), default=0)
        D = fmpz_mat(n, n)
        for j, (m, k) in enumerate(parts):
            if m:
                D[j, j] = fmpz(m << (k - e))
        return DyMat(D, e)

    def abs(self, m: Any) -> Any:
        if isinstance(m, DyMat):
            return DyMat(fmpz_mat(m.nrows(), m.ncols(), [abs(v) for v in m.M.entries()]), m.e)
        return super().abs(m)

    def abs_dot(self, A: Any, v: Any) -> Any:
        if isinstance(A, DyMat):
            col = self.col(v)
            if isinstance(col, DyMat):
                return self.abs(A) * col
            A = A.to_q()
        return super().abs_dot(A, v)

    def abs_rowsum(self, A: Any) -> Any:
        if isinstance(A, DyMat):
            n, es, z = A.ncols(), A.M.entries(), fmpz(0)
            return DyMat(
                fmpz_mat(
                    A.nrows(),
                    1,
                    [sum(map(abs, es[i * n : (i + 1) * n]), z) for i in range(A.nrows())],
                ),
                A.e,
            )
        return super().abs_rowsum(A)


class _Cols:
    """A backend matrix ``Λ`` (m×n) whose columns outside ``keep`` are zero, held as the
    :class:`DyMat` ``M`` of the kept columns (m×k): behind a ReLU, the columns of its stably
    inactive neurons; the next product ``Λ·W`` then only needs the rows ``keep`` of ``W``."""

    __slots__ = ("M", "keep", "n")

    def __init__(self, M: Any, keep: list[int], n: int) -> None:
        self.M, self.keep, self.n = M, keep, n

    def full(self) -> Any:
        return self.M * DyMat(_selection(self.keep, self.n), 0)


def _selection(keep: list[int], n: int) -> Any:
    """The 0/1 ``fmpz_mat`` (k×n) that picks the rows ``keep``."""
    S = fmpz_mat(len(keep), n)
    for t, j in enumerate(keep):
        S[t, j] = 1
    return S


def _full(x: Any) -> Any:
    return x.full() if isinstance(x, _Cols) else x


def _relax_backward_dyadic(
    be: Any, lam: Any, n: int, pa: Any, pb: Any, na: Any, nb: Any, compact: bool = False
) -> Any:
    """``relax_backward`` for an integer-backed ``lam`` (:class:`DyMat`) and dyadic lines,
    as integer matrix products: ``Λ·diag(pa) + N·diag(na − pa)`` and ``Λ·pb + N·(nb − pb)``
    with ``N`` the negative entries of ``Λ`` in the columns whose two lines differ (the same
    values as the entry-by-entry rule). With ``compact`` the columns where both slopes are 0
    are left out (a :class:`_Cols`). ``None`` when a line is not dyadic."""
    pd = DyMat.from_entries(1, n, pa)
    if pd is None:
        return None
    keep = [j for j in range(n) if pa[j] != 0 or na[j] != 0] if compact else range(n)
    k = len(keep)
    pos = {j: t for t, j in enumerate(keep)}
    D = fmpz_mat(n, k)
    for t, (j, a) in enumerate(zip(keep, (pd.M[0, j] for j in keep))):
        if a:
            D[j, t] = a
    split = [j for j in range(n) if pa[j] != na[j] or pb[j] != nb[j]]
    new = lam * DyMat(D, pd.e)
    bias = lam * be.col(pb) if any(v != 0 for v in pb) else be.zeros(lam.nrows(), 1)
    if split:
        m, ks = lam.nrows(), len(split)
        delta = DyMat.from_entries(1, ks, [na[j] - pa[j] for j in split])
        dbias = be.col([nb[j] - pb[j] for j in split])
        if delta is None or not isinstance(dbias, DyMat):
            return None
        zero = fmpz(0)
        cols = lam.M * _selection(split, n).transpose()  # the split columns of Λ (m×ks)
        N = DyMat(fmpz_mat(m, ks, [v if v < 0 else zero for v in cols.entries()]), lam.e)
        scatter = fmpz_mat(ks, k)
        for t, (j, d) in enumerate(zip(split, delta.M.entries())):
            if d:
                scatter[t, pos[j]] = d
        new, bias = new + N * DyMat(scatter, delta.e), bias + N * dbias
    return (_Cols(new, list(keep), n) if compact and k < n else new), bias


def _enclosed(v: Any) -> Any:
    raise InvalidModelError(
        f"a relaxation coefficient {v!r} is an enclosure, not a number; "
        "in the exact and dyadic modes a relaxation must be exact"
    )


def arb_exact_ends(x: Any) -> tuple[Any, ...]:
    """Exact rational ends ``(lo, hi)`` of an ``arb`` ball; a non-finite ball raises
    ``AmbiguousBranch`` (the interval mode then retries at a higher precision)."""
    if not x.is_finite():
        raise AmbiguousBranch("a finite enclosure", x)
    m, e = x.mid().man_exp()
    r, f = x.rad().man_exp()
    mid, rad = dyadic(int(m), int(e)), dyadic(int(r), int(f))
    return mid - rad, mid + rad


class ArbBackend(_Base):
    """python-flint ``arb_mat`` balls at ``prec`` bits (the interval mode)."""

    exact = False

    def __init__(self, prec: int) -> None:
        self.prec = int(prec)

    @contextmanager
    def precision(self) -> Iterator[Any]:
        old = flint_ctx.prec
        flint_ctx.prec = self.prec
        try:
            yield
        finally:
            flint_ctx.prec = old

    def q(self, v: Any) -> Any:
        return arb(v) if isinstance(v, fmpq) else v

    def mat(self, m: Any) -> Any:
        return arb_mat(as_q(m))

    def zeros(self, r: Any, c: Any) -> Any:
        return arb_mat(r, c)

    def const(self, v: Any) -> Any:
        return arb(v)

    def col(self, values: Any) -> Any:
        return arb_mat(len(values), 1, [self.q(v) for v in values])

    def entries(self, m: Any) -> Any:
        return m.entries()

    def from_entries(self, r: Any, c: Any, es: Any) -> Any:
        return arb_mat(r, c, es)

    def sign(self, x: Any) -> Any:
        """-1, 0, 1, or ``None`` when the ball contains 0 but is not exactly 0."""
        if x > 0:
            return 1
        if x < 0:
            return -1
        if x.is_zero():
            return 0
        return None

    def abs(self, m: Any) -> Any:
        return arb_mat(m.nrows(), m.ncols(), [abs(v) for v in m.entries()])

    def abs_dot(self, A: Any, v: Any) -> Any:
        return self.abs(A) * self.col(v)

    def abs_rowsum(self, A: Any) -> Any:
        return self.abs(A) * self.col([fmpq(1)] * A.ncols())

    def hull(self, a: Any, b: Any) -> Any:
        return a.union(b)

    def radius_ball(self, r: Any) -> Any:
        """The ball ``[−r, r]`` (``r`` a nonnegative ball: its upper end)."""
        return arb(0, r.upper())

    def lower(self, x: Any) -> Any:
        return arb_exact_ends(x)[0]

    def upper(self, x: Any) -> Any:
        return arb_exact_ends(x)[1]

    def sqrt_upper(self, x: Any, bits: int) -> tuple[Any, ...]:
        return x.nonnegative_part().sqrt(), True

    def from_ctx(self, ctx: Context, v: Any, upper: Any = None) -> Any:
        """An ``arb`` ball containing the context element ``v`` (an mpmath ``iv`` interval,
        or an exact number)."""
        if isinstance(v, fmpq):
            return arb(v)
        lo, hi = ctx.lower(v), ctx.upper(v)
        a = arb(lo)
        return a if lo == hi else a.union(arb(hi))

    def to_ctx(self, ctx: Context, x: Any) -> Any:
        """The ball as an element of ``ctx`` (an mpmath ``iv`` interval with outward ends)."""
        lo, hi = arb_exact_ends(x)
        return ctx.from_ends(lo, hi)


def backend_for(ctx: Context) -> Any:
    """The matrix backend a context asks for (``ctx.backend_kind``): ``ZBackend`` (exact;
    dyadic matrices held as integer ones) for ``"dyadic"``, ``ArbBackend(ctx.precision)`` for
    ``"arb"``, ``FastBackend`` (float64 balls) for ``"fast"``. A context without one (symbolic,
    float simulation) raises."""
    kind = ctx.backend_kind
    if kind == "dyadic":
        return ZBackend()
    if kind == "arb":
        return ArbBackend(ctx.precision)
    if kind == "fast":
        from .fast_point import PointFastBackend  # builds on this module (no import cycle)

        return PointFastBackend()
    raise InvalidValueError(
        "ctx", ctx, "CROWN and affine run in the exact, dyadic or interval modes"
    )
