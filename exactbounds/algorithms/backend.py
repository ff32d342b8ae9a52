"""Matrix backends for the hot paths of CROWN and forward affine propagation.

``QBackend``: python-flint ``fmpq_mat``; exact. ``ZBackend`` (used for the modes ``exact`` and
``dyadic``): the same values, with matrices of dyadic rationals held as integer ``fmpz_mat``
times a shared power of two (``DyMat``), which multiply without gcds.
``ArbBackend(prec)``: python-flint ``arb_mat`` balls at ``prec`` bits; every entry is a ball
that contains the exact-arithmetic value (mode ``interval``). A sign that a ball cannot decide
is never guessed: callers take the hull of both branches (:meth:`sign` returns ``None``).

Both expose the same small vocabulary: ``mat`` (from an exact ``fmpq_mat``), ``col`` (a column
from exact values), ``entries``/``from_entries``, ``abs``, ``sign``, ``hull``, ``lower``/``upper``
(exact ends of an entry), and conversion of entries into a number context.
"""
from contextlib import contextmanager
from operator import mul

from flint import arb, arb_mat, ctx as flint_ctx, fmpq, fmpq_mat, fmpz, fmpz_mat

from ..numbers import RationalContext
from ..numbers.convert import dyadic
from ..numbers.dyadic_mode import DyMat, dyadic_parts


class QBackend:
    exact = True

    def mat(self, m):
        return m

    def zeros(self, r, c):
        return fmpq_mat(r, c)

    def col(self, values):
        return fmpq_mat(len(values), 1, [v for v in values])

    def const(self, q):
        return q

    def entries(self, m):
        return m.entries()

    def from_entries(self, r, c, es):
        return fmpq_mat(r, c, es)

    def sign(self, x):
        return (x > 0) - (x < 0)

    def abs(self, m):
        return fmpq_mat(m.nrows(), m.ncols(), [abs(v) for v in m.entries()])

    def abs_dot(self, A, v):
        """The column ``|A|·v`` for a list ``v`` (row by row, no |A| matrix built)."""
        n, es = A.ncols(), A.entries()
        return fmpq_mat(A.nrows(), 1, [sum(map(mul, map(abs, es[i * n:(i + 1) * n]), v), fmpq(0))
                                       for i in range(A.nrows())])

    def abs_rowsum(self, A):
        n, es = A.ncols(), A.entries()
        return fmpq_mat(A.nrows(), 1, [sum(map(abs, es[i * n:(i + 1) * n]), fmpq(0))
                                       for i in range(A.nrows())])

    def hull(self, a, b):
        raise AssertionError("exact entries never need a hull")

    def lower(self, x):
        return x

    def upper(self, x):
        return x

    def sqrt_upper(self, x, bits):
        from ..numbers import sqrt_enclosure, RInterval
        s = sqrt_enclosure(x, bits)
        return (s.hi if isinstance(s, RInterval) else s), isinstance(s, RInterval)

    def from_ctx(self, ctx, v, upper=None):
        """An exact value from a context element; ``upper`` picks the outer end of an
        enclosure (``None``: the element must be exact)."""
        if upper is None:
            return ctx.coerce(v) if ctx.status(v) == "exact" else _enclosed(v)
        return ctx.upper(v) if upper else ctx.lower(v)

    def to_ctx(self, ctx, x):
        return x

    @contextmanager
    def precision(self):
        yield


class ZBackend(QBackend):
    """Exact like :class:`QBackend`, but matrices of dyadic rationals (float weights, dyadic
    bounds and slopes) are :class:`~exactbounds.numbers.dyadic_mode.DyMat` (an integer ``fmpz_mat``
    times one power of two), whose products need no gcds; anything non-dyadic stays an
    ``fmpq_mat``. Every value equals the one :class:`QBackend` computes."""

    def mat(self, m):
        if isinstance(m, fmpq_mat):
            return DyMat.from_q(m) or m
        return m

    def zeros(self, r, c):
        return DyMat(fmpz_mat(r, c), 0)

    def col(self, values):
        return self.from_entries(len(values), 1, list(values))

    def from_entries(self, r, c, es):
        return DyMat.from_entries(r, c, es) or fmpq_mat(r, c, es)

    def diag(self, vals):
        """The diagonal matrix of ``vals``."""
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

    def abs(self, m):
        if isinstance(m, DyMat):
            return DyMat(fmpz_mat(m.nrows(), m.ncols(), [abs(v) for v in m.M.entries()]), m.e)
        return super().abs(m)

    def abs_dot(self, A, v):
        if isinstance(A, DyMat):
            col = self.col(v)
            if isinstance(col, DyMat):
                return self.abs(A) * col
            A = A.to_q()
        return super().abs_dot(A, v)

    def abs_rowsum(self, A):
        if isinstance(A, DyMat):
            n, es, z = A.ncols(), A.M.entries(), fmpz(0)
            return DyMat(fmpz_mat(A.nrows(), 1, [sum(map(abs, es[i * n:(i + 1) * n]), z)
                                                  for i in range(A.nrows())]), A.e)
        return super().abs_rowsum(A)


def _enclosed(v):
    from ..errors import InvalidModelError
    raise InvalidModelError(f"a relaxation coefficient {v!r} is an enclosure, not a number; "
                            "in the exact and dyadic modes a relaxation must be exact")


def arb_exact_ends(x):
    """Exact rational ends ``(lo, hi)`` of an ``arb`` ball; a non-finite ball raises
    ``AmbiguousBranch`` (the interval mode then retries at a higher precision)."""
    if not x.is_finite():
        from ..errors import AmbiguousBranch
        raise AmbiguousBranch("a finite enclosure", x)
    m, e = x.mid().man_exp()
    r, f = x.rad().man_exp()
    mid, rad = dyadic(int(m), int(e)), dyadic(int(r), int(f))
    return mid - rad, mid + rad


class ArbBackend:
    exact = False

    def __init__(self, prec):
        self.prec = int(prec)

    @contextmanager
    def precision(self):
        old = flint_ctx.prec
        flint_ctx.prec = self.prec
        try:
            yield
        finally:
            flint_ctx.prec = old

    def q(self, v):
        return arb(v) if isinstance(v, fmpq) else v

    def mat(self, m):
        return arb_mat(m)

    def zeros(self, r, c):
        return arb_mat(r, c)

    def const(self, v):
        return arb(v)

    def col(self, values):
        return arb_mat(len(values), 1, [self.q(v) for v in values])

    def entries(self, m):
        return m.entries()

    def from_entries(self, r, c, es):
        return arb_mat(r, c, es)

    def sign(self, x):
        """-1, 0, 1, or ``None`` when the ball contains 0 but is not exactly 0."""
        if x > 0:
            return 1
        if x < 0:
            return -1
        if x.is_zero():
            return 0
        return None

    def abs(self, m):
        return arb_mat(m.nrows(), m.ncols(), [abs(v) for v in m.entries()])

    def abs_dot(self, A, v):
        return self.abs(A) * self.col(v)

    def abs_rowsum(self, A):
        return self.abs(A) * self.col([fmpq(1)] * A.ncols())

    def hull(self, a, b):
        return a.union(b)

    def lower(self, x):
        return arb_exact_ends(x)[0]

    def upper(self, x):
        return arb_exact_ends(x)[1]

    def sqrt_upper(self, x, bits):
        return x.nonnegative_part().sqrt(), True

    def from_ctx(self, ctx, v, upper=None):
        """An ``arb`` ball containing the context element ``v`` (an mpmath ``iv`` interval,
        or an exact number)."""
        if isinstance(v, fmpq):
            return arb(v)
        lo, hi = ctx.lower(v), ctx.upper(v)
        a = arb(lo)
        return a if lo == hi else a.union(arb(hi))

    def to_ctx(self, ctx, x):
        """The ball as an element of ``ctx`` (an mpmath ``iv`` interval with outward ends)."""
        lo, hi = arb_exact_ends(x)
        if isinstance(ctx, RationalContext):
            from ..numbers import interval
            return interval(lo, hi)
        return ctx.iv.mpf([ctx.const(lo).a, ctx.const(hi).b])


def backend_for(ctx):
    """``ZBackend`` (exact; dyadic matrices held as integer ones) for the rational contexts
    (exact, dyadic), ``ArbBackend(ctx.prec)`` for the interval context."""
    if isinstance(ctx, RationalContext):
        return ZBackend()
    prec = getattr(ctx, "prec", None)
    if prec is None:
        from ..errors import InvalidValueError
        raise InvalidValueError("ctx", ctx, "CROWN and affine run in the exact, dyadic or "
                                "interval modes")
    return ArbBackend(prec)


