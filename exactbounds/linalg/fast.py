"""``FastBackend``: matrices as numpy float64 balls ``(mid, rad)`` whose every entry encloses the
exact-arithmetic value (the mode ``fast``).

Every rounding is bounded a priori, so no rounding mode is ever switched:

* one operation ``∘`` rounded to nearest: ``x∘y`` lies between ``down(fl(x∘y))`` and
  ``up(fl(x∘y))`` (``up``/``down``: ``np.nextafter`` towards ±inf), also for subnormal and
  overflowing results; ``|fl(x±y) − (x±y)| <= u·|fl(x±y)|`` (an addition is exact when
  subnormal); ``|fl(x·y) − x·y| <= u·|fl(x·y)| + η`` (``u = 2^-53``, ``η = 2^-1074``);
* a matrix product in any summation order, with or without FMA (BLAS):
  ``|fl(A·B) − A·B| <= γ_n·|A|·|B| + 2n·η`` (``γ_n = n·u/(1 − n·u)``, Higham Thm 3.5 with
  the underflow term); for nonnegative ``X``, ``Y``: ``X·Y <= (fl(X·Y) + 2k·η)/(1 − γ_k)``.

The radius of a ball product is ``γ_n·|Am|·|Bm| + |Am|·Br + Ar·(|Bm| + Br) + 2n·η``, computed
as one nonnegative product ``[|Am|, Ar]·[γ_n|Bm| + Br; |Bm| + Br]`` (each factor rounded up) and
bounded by the rule for nonnegative products. A non-finite midpoint, or a NaN radius, becomes the
ball ``0 ± inf`` (sound, useless): converting it to exact ends raises ``AmbiguousBranch``, and the
run restarts in the context's ``refined()`` one. The ``rad`` of an exact matrix is ``None``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from functools import wraps
from typing import TYPE_CHECKING, Any

import numpy as np
from flint import arb, fmpq
from mpmath.libmp import from_float, mpf_cmp, to_float

from ..errors import AmbiguousBranch
from .backends import IDENT, _Base, arb_exact_ends, split_q
from .dymat import DyMat
from .structured import ChainPart, ConvPart

if TYPE_CHECKING:
    from ..numbers.contexts import Context

U = 2.0**-53
ETA = 2.0**-1074
INF = math.inf
MAXF = 1.7976931348623157e308


def _quiet(f: Any) -> Any:
    """Run ``f`` with numpy's overflow/underflow/invalid warnings off (they are handled)."""

    @wraps(f)
    def g(*a: Any, **k: Any) -> Any:
        with np.errstate(all="ignore"):
            return f(*a, **k)

    return g


def up(x: Any) -> Any:
    """The next float above ``x`` (elementwise): an upper bound of any value that rounds to
    ``x``."""
    return np.nextafter(x, INF)


UP = 1.0 + 4 * U


def upn(x: Any) -> Any:
    """An upper bound of any value that rounds to the nonnegative float ``x`` (elementwise):
    ``fl(x·(1 + 4u)) + η`` (``>= x·(1 + 2u) >= x/(1 − u)`` for normal ``x``; ``+ η`` covers the
    subnormal range). Ten times faster than ``np.nextafter``; used for radii only."""
    y = x * UP
    y += ETA
    return y


def down(x: Any) -> Any:
    return np.nextafter(x, -INF)


def gamma(n: int) -> Any:
    """A float ``>= γ_n = n·u/(1 − n·u)``."""
    nu = n * U  # exact (a power of two times an integer < 2^53)
    return math.nextafter(nu / math.nextafter(1.0 - nu, 0.0), INF)


def inv_one_minus_gamma(n: int) -> Any:
    """A float ``>= 1/(1 − γ_n)``."""
    return math.nextafter(1.0 / math.nextafter(1.0 - gamma(n), 0.0), INF)


def _sanitize(mid: Any, rad: Any) -> tuple[Any, ...]:
    """Replace entries whose midpoint is not finite, or whose radius is NaN, by ``0 ± inf``."""
    if rad is None:
        if np.isfinite(mid).all():
            return mid, None
        rad = np.zeros_like(mid)
    elif np.isfinite(mid).all() and not np.isnan(rad).any():
        return mid, rad
    bad = ~np.isfinite(mid) | np.isnan(rad)
    mid, rad = np.where(bad, 0.0, mid), np.where(bad, INF, rad)
    return mid, rad


@_quiet
def nonneg_matmul_up(X: Any, Y: Any) -> Any:
    """A float matrix ``>= X·Y`` for nonnegative float matrices ``X`` (m×k), ``Y`` (k×p)."""
    k = X.shape[1]
    T = X @ Y
    return upn(upn(T + 2 * k * ETA) * inv_one_minus_gamma(k))


@_quiet
def ball_matmul(am: Any, ar: Any, bm: Any, br: Any) -> Any:
    """``(mid, rad)`` of the product of the balls ``am ± ar`` and ``bm ± br`` (radii ``None``:
    exact): every entry of the exact product of any members lies in ``mid ± rad``."""
    n = am.shape[1]
    mid = am @ bm
    g = gamma(n)
    aa, ab = np.abs(am), np.abs(bm)
    if ar is None and br is None:
        rad = upn(nonneg_matmul_up(aa, ab) * g)
    elif br is None:
        rad = nonneg_matmul_up(upn(upn(aa * g) + ar), ab)
    elif ar is None:
        rad = nonneg_matmul_up(aa, upn(upn(ab * g) + br))
    else:  # [|Am|, Ar]·[γ|Bm| + Br; |Bm| + Br] as two products (no stacked copy)
        rad = upn(nonneg_matmul_up(aa, upn(upn(ab * g) + br)) + nonneg_matmul_up(ar, upn(ab + br)))
    rad = upn(rad + 2 * n * ETA)  # underflow in the midpoint product
    return _sanitize(mid, rad)


@_quiet
def ball_emul(am: Any, ar: Any, bm: Any, br: Any) -> Any:
    """Elementwise (broadcasting) product of two balls."""
    mid = am * bm
    rad = upn(upn(np.abs(mid) * U) + ETA)
    if br is not None:
        rad = upn(rad + upn(np.abs(am) * br))
    if ar is not None:
        rad = upn(rad + upn(ar * (np.abs(bm) if br is None else upn(np.abs(bm) + br))))
    # a factor that is exactly 0 (a zero ball) makes the product exactly 0: radius 0 (so that
    # the zeros of a functional stay exact and their sign decided)
    zero = (am == 0) if ar is None else (am == 0) & (ar == 0)
    zero = zero | ((bm == 0) if br is None else (bm == 0) & (br == 0))
    if zero.any():
        rad = np.where(zero, 0.0, rad)
    return _sanitize(mid, rad)


@_quiet
def ball_add(am: Any, ar: Any, bm: Any, br: Any, sign: Any = 1) -> Any:
    """``a + b`` (``sign=-1``: ``a − b``) of two balls, elementwise with broadcasting."""
    mid = am + bm if sign > 0 else am - bm
    rad = upn(np.abs(mid) * U)
    if ar is not None and br is not None:
        rad = upn(rad + upn(ar + br))
    elif ar is not None or br is not None:
        rad = upn(rad + (ar if ar is not None else br))
    return _sanitize(mid, rad)


@_quiet
def ball_hull(am: Any, ar: Any, bm: Any, br: Any) -> Any:
    """The ball (centre ``(am + bm)/2``) containing both balls."""
    mid = am * 0.5 + bm * 0.5
    ra = upn(np.abs(mid - am)) if ar is None else upn(upn(np.abs(mid - am)) + ar)
    rb = upn(np.abs(mid - bm)) if br is None else upn(upn(np.abs(mid - bm)) + br)
    return _sanitize(mid, np.maximum(ra, rb))


@_quiet
def ball_ends(mid: Any, rad: Any) -> tuple[Any, ...]:
    """Float arrays ``(lo, hi)`` with ``lo <= mid − rad`` and ``mid + rad <= hi``."""
    if rad is None:
        return mid, mid
    return down(mid - rad), up(mid + rad)


@_quiet
def ball_from_ends(lo: Any, hi: Any) -> Any:
    """A ball ``(mid, rad)`` containing ``[lo, hi]`` (float arrays)."""
    mid = lo * 0.5 + hi * 0.5
    rad = np.maximum(up(hi - mid), up(mid - lo))
    return _sanitize(mid, rad)


class Ball:
    """A float64 ball matrix ``mid ± rad`` (``rad`` ``None``: exact), 2-D numpy arrays."""

    __slots__ = ("mid", "rad", "_abs")
    rad: Any  # a 2-D array, or None (exact)

    def __init__(self, mid: Any, rad: Any = None) -> None:
        self.mid = mid
        self.rad = rad if rad is None or rad.any() else None
        self._abs = None

    @classmethod
    def make(cls, pair: Any) -> Any:
        return cls(*pair)

    def nrows(self) -> Any:
        return self.mid.shape[0]

    def ncols(self) -> Any:
        return self.mid.shape[1]

    @property
    def shape(self) -> Any:
        return self.mid.shape

    def absmid(self) -> Any:
        if self._abs is None:
            self._abs = np.abs(self.mid)
        return self._abs

    def __add__(self, o: Any) -> Any:
        o = _ball(o)
        return Ball.make(ball_add(self.mid, self.rad, o.mid, o.rad))

    __radd__ = __add__

    def __sub__(self, o: Any) -> Any:
        o = _ball(o)
        return Ball.make(ball_add(self.mid, self.rad, o.mid, o.rad, -1))

    def __rsub__(self, o: Any) -> Any:
        return _ball(o) - self

    def __neg__(self) -> Any:
        return Ball(-self.mid, self.rad)

    def __mul__(self, o: Any) -> Any:
        o = _ball(o)
        if self.shape[1] == o.shape[0]:
            return Ball.make(ball_matmul(self.mid, self.rad, o.mid, o.rad))
        if o.shape == (1, 1) or self.shape == (1, 1):
            return Ball.make(ball_emul(self.mid, self.rad, o.mid, o.rad))
        raise ValueError(f"ball product of shapes {self.shape} and {o.shape}")

    def __rmul__(self, o: Any) -> Any:
        return _ball(o) * self

    def __abs__(self) -> Any:
        """``|x| ∈ |mid| ± rad`` (``||x| − |m|| <= |x − m|``)."""
        return Ball(self.absmid(), self.rad)

    def __eq__(self, o: Any) -> bool:
        if not isinstance(o, Ball) or o.shape != self.shape:
            return False
        if (self.rad is None) != (o.rad is None):
            return False
        return bool(
            np.array_equal(self.mid, o.mid)
            and (self.rad is None or np.array_equal(self.rad, o.rad))
        )

    __hash__ = None  # type: ignore[assignment]  # unhashable, like numpy arrays

    def ends(self) -> Any:
        return ball_ends(self.mid, self.rad)

    def _other_ends(self, o: Any) -> Any:
        if isinstance(o, arb):
            lo, hi = arb_exact_ends(o)
            return q_floor(lo), q_ceil(hi)
        return _ball(o).ends()

    def max(self, o: Any) -> Any:
        """A ball containing ``max(x, y)`` for ``x`` here and ``y`` in ``o`` (a ball, an
        ``arb`` or an exact number)."""
        lo, hi = self.ends()
        ol, oh = self._other_ends(o)
        return Ball.make(ball_from_ends(np.maximum(lo, ol), np.maximum(hi, oh)))

    def min(self, o: Any) -> Any:
        lo, hi = self.ends()
        ol, oh = self._other_ends(o)
        return Ball.make(ball_from_ends(np.minimum(lo, ol), np.minimum(hi, oh)))

    def __repr__(self) -> str:
        return f"Ball({self.mid!r}, {self.rad!r})"


def _ball(x: Any) -> Any:
    if isinstance(x, Ball):
        return x
    m, r = q_ball(x)
    return Ball(np.array([[m]]), None if r == 0 else np.array([[r]]))


def q_ball(q: Any) -> tuple[Any, ...]:
    """``(mid, rad)`` floats with ``q ∈ mid ± rad`` for an exact number (``fmpq``, int,
    ``Fraction``); ``rad = 0`` when ``q`` is a float."""
    if not isinstance(q, fmpq):
        q = (
            fmpq(Fraction(q).numerator, Fraction(q).denominator)
            if not isinstance(q, int)
            else fmpq(q)
        )
    p, d = int(q.p), int(q.q)
    try:
        f = p / d  # correctly rounded (Python's int true division)
    except OverflowError:
        return 0.0, INF
    if math.isfinite(f) and fmpq(*f.as_integer_ratio()) == q:
        return f, 0.0
    return f, math.nextafter(math.nextafter(abs(f) * U, INF) + ETA, INF)


def q_floor(q: Any) -> Any:
    """The largest float ``<= q`` (``-inf`` below the range) for an exact ``fmpq``."""
    f, r = q_ball(q)
    if r == 0:
        return f
    if r == INF:
        return -INF if q < 0 else MAXF
    while fmpq(*f.as_integer_ratio()) > q:
        f = math.nextafter(f, -INF)
    return f


def q_ceil(q: Any) -> Any:
    return -q_floor(-q)


def _float_ends_mpi(v: Any) -> tuple[Any, ...]:
    """Floats ``(lo, hi)`` around an mpmath ``iv`` interval, from its exact mpf ends."""
    a, b = v._mpi_
    lo, hi = to_float(a, rnd="f"), to_float(b, rnd="c")
    if lo == INF:
        lo = MAXF
    if hi == -INF:
        hi = -MAXF
    if math.isfinite(lo) and mpf_cmp(from_float(lo), a) > 0:
        lo = math.nextafter(lo, -INF)
    if math.isfinite(hi) and mpf_cmp(from_float(hi), b) < 0:
        hi = math.nextafter(hi, INF)
    return lo, hi


def float_ends(ctx: Context, v: Any) -> Any:
    """Floats ``(lo, hi)`` enclosing the context element ``v``."""
    if hasattr(v, "_mpi_"):
        return _float_ends_mpi(v)
    if isinstance(v, Entry):
        return v.float_ends()
    if isinstance(v, Ball):
        lo, hi = v.ends()
        return float(lo[0, 0]), float(hi[0, 0])
    lo, hi = ctx.lower(v), ctx.upper(v)
    return q_floor(lo), q_ceil(hi)


def entry_from_ends(lo: Any, hi: Any) -> Any:
    """An :class:`Entry` containing the float interval ``[lo, hi]``."""
    if lo == hi:
        return Entry(lo)
    m = lo * 0.5 + hi * 0.5
    r = max(math.nextafter(hi - m, INF), math.nextafter(m - lo, INF))
    if not (math.isfinite(m) and math.isfinite(r)):
        return Entry(0.0, INF)
    return Entry(m, r)


def ball_col(pairs: Any) -> Any:
    """The ball column containing the float intervals ``[(lo, hi)]``."""
    lo = np.array([p[0] for p in pairs], dtype=np.float64).reshape(-1, 1)
    hi = np.array([p[1] for p in pairs], dtype=np.float64).reshape(-1, 1)
    return Ball.make(ball_from_ends(lo, hi))


@_quiet
def q_mat_ball(Q: Any) -> tuple[Any, ...]:
    """``(mid, rad)`` arrays enclosing an exact ``fmpq_mat`` or ``DyMat``, entry by entry."""
    if isinstance(Q, DyMat) and Q.floats is not None:  # the exact float64 values
        return Q.floats.astype(np.float64), np.zeros(Q.floats.shape)
    if isinstance(Q, DyMat):
        N, e = Q.M, Q.e
        d = None
    else:
        N, d = Q.numer_denom()
        d = int(d)
        e = 0
        if not d & (d - 1):
            e, d = -(d.bit_length() - 1), None
    r, c = N.nrows(), N.ncols()
    ints = [int(v) for v in N.entries()]
    if d is None:
        big = max(map(abs, ints), default=0)
        if big < 2**53:
            f = np.array(ints, dtype=np.float64)  # exact
            inexact = np.zeros(len(ints), dtype=bool)
        else:
            f, inexact = _ints_to_floats(ints)
        mid = np.ldexp(f, e) if e else f
        over = np.nonzero(~np.isfinite(f))[0]
        if len(over) and e < 0:  # a huge integer times a tiny power of two: divide exactly
            for t in over.tolist():
                mid[t] = _int_div(ints[t], 1 << -e)
            inexact[over] = True
        # rounding of the integer (<= u·|f|) and of the scaling into the subnormal range (<= η)
        tiny = (np.abs(mid) < 2.0**-1022) & (f != 0)
        err = up(np.abs(mid) * U)
        rad = np.where(inexact, up(up(err) + ETA), 0.0)
        rad = np.where(tiny, up(rad + ETA), rad)
    else:
        mid = np.array([_int_div(v, d) for v in ints])
        rad = up(up(np.abs(mid) * U) + ETA)
        rad = np.where(np.array([v == 0 for v in ints], dtype=bool), 0.0, rad)
    mid, rad = _sanitize(mid.reshape(r, c), rad.reshape(r, c))
    return mid, rad


def _ints_to_floats(ints: list[int]) -> tuple[Any, Any]:
    """Python ints as correctly rounded floats (``±inf`` beyond the range) and the mask of those
    that changed (an int compares with a float exactly)."""
    arr = np.empty(len(ints), dtype=object)
    arr[:] = ints
    try:
        f = arr.astype(np.float64)  # int.__float__: correctly rounded
    except OverflowError:
        f = np.array([_int_float(v) for v in ints])
    inexact = ~np.isfinite(f) | (arr != f.astype(object)).astype(bool)
    return f, inexact


def _int_float(v: Any) -> Any:
    try:
        return float(v)
    except OverflowError:
        return INF if v > 0 else -INF


def _int_div(p: Any, d: Any) -> Any:
    try:
        return p / d
    except OverflowError:
        return INF if p > 0 else -INF


MAT_CACHE = 512
_MATS = OrderedDict()  # id -> (exact matrix, its ball); the matrix is held, so ids stay unique


def mat_ball(m: Any) -> Ball:
    """The :class:`Ball` enclosing an exact matrix, kept for the last ``MAT_CACHE`` matrices (so
    IBP and CROWN, and repeated runs on one model, convert its weights once)."""
    got = _MATS.get(id(m))
    if got is None or got[0] is not m:
        got = _MATS[id(m)] = (m, Ball.make(q_mat_ball(m)))
        while len(_MATS) > MAT_CACHE:
            _MATS.popitem(last=False)
    else:
        _MATS.move_to_end(id(m))
    return got[1]


class FastBackend(_Base):
    """Float64 ball matrices (:class:`Ball`) with rigorous error bounds (the mode ``fast``)."""

    exact = False
    structured = True
    forward_structured = True

    def __init__(self) -> None:
        self._vecs = {}

    @contextmanager
    def precision(self) -> Iterator[Any]:
        yield

    # -- construction ---------------------------------------------------------------------
    def mat(self, m: Any) -> Any:
        """The ball enclosing an exact matrix (kept for the last ``MAT_CACHE`` matrices, so
        repeated runs on one model convert its weights once)."""
        if isinstance(m, Ball):
            return m
        return mat_ball(m)

    def zeros(self, r: Any, c: Any) -> Any:
        return Ball(np.zeros((r, c)))

    def eye(self, n: int) -> Any:
        return Ball(np.eye(n))

    def eye_rows(self, rows: Any, n: int) -> Any:
        M = np.zeros((len(rows), n))
        M[np.arange(len(rows)), np.asarray(rows, dtype=np.int64)] = 1.0
        return Ball(M)

    def vstack(self, mats: list[Any]) -> Any:
        if len(mats) == 1:
            return mats[0]
        mid = np.vstack([M.mid for M in mats])
        if all(M.rad is None for M in mats):
            return Ball(mid)
        return Ball(
            mid, np.vstack([np.zeros_like(M.mid) if M.rad is None else M.rad for M in mats])
        )

    def merge_rows(self, sparse: Any, lo_col: Any, hi_col: Any) -> tuple[Any, ...]:
        """Columns ``(lo, hi)`` of a node's bounds: the float vectors ``lo``, ``hi`` of
        ``sparse = (rows, lo, hi)`` (exact floats), with the entries ``rows`` taken from the
        ball columns ``lo_col``, ``hi_col`` (``None`` when ``rows`` is empty)."""
        rows, lo, hi = sparse
        out = []
        for ref, col in ((lo, lo_col), (hi, hi_col)):
            mid = np.array(ref, dtype=np.float64).reshape(-1, 1)
            rad = np.zeros_like(mid)
            if rows:
                mid[rows] = col.mid
                if col.rad is not None:
                    rad[rows] = col.rad
            out.append(Ball.make(_sanitize(mid, rad)))
        return out[0], out[1]

    # -- structured linear maps (:mod:`.structured`) ----------------------------------------
    def lin_ok(self, lin: Any, LL: Any, LU: Any) -> bool:
        return True

    @_quiet
    def lin_rmul(self, lam: Any, part: Any) -> Any:
        """``Λ·W`` for a structured part: the midpoint product ``fl(Λm·Wm)`` by the part's own
        operation, and the radius ``γ_n·|Λm|·|Wm| + Λr·|Wm| + (|Λm| + Λr)·Wr + 2nη`` by the same
        operation on nonnegative arrays, rounded up (``n``: the terms of one entry; the rules of
        the module docstring hold for any summation order). A part that only copies (or
        negates) entries is exact."""
        if isinstance(part, ChainPart):
            for p in part.parts:
                lam = self.lin_rmul(lam, p)
            return lam
        Km, Kr, Kabs = part_kernels(part)
        Lm, Lr = lam.mid, lam.rad
        if getattr(part, "unique", False):  # copies and sign changes only
            return Ball(part.back(Lm, Km), None if Lr is None else np.abs(part.back(Lr, Km)))
        n = part.n
        g = gamma(n)
        mid = part.back(Lm, Km)
        A = lam.absmid()
        if Kr is None:
            X = upn(A * g) if Lr is None else upn(upn(A * g) + Lr)
            nz = (A > 0) if Lr is None else (A > 0) | (Lr > 0)
            X = np.where(nz, X, 0.0)  # exact zeros stay 0 (their terms are exactly 0)
            rad, zero = _nonneg_back_up(part, X, Kabs)
            if zero is not None:  # entries whose every term is exactly 0: exactly 0
                rad = upn(rad + 2 * n * ETA)
                return Ball.make(_sanitize(mid, np.where(zero, 0.0, rad)))
        else:
            rad = radius_with_kr(part.back, A, Lr, Kabs, Kr, n)
        rad = upn(rad + 2 * n * ETA)
        return Ball.make(_sanitize(mid, rad))

    def const(self, v: Any) -> Any:
        return _ball(v)

    def _vec(self, values: Any) -> Any:
        """``(mid, rad)`` 1-D arrays of a list of balls or exact numbers (cached per list), or
        of an :class:`FVec`."""
        if isinstance(values, FVec):
            return values.mid, values.rad
        got = self._vecs.get(id(values))
        if got is not None and got[0] is values:
            return got[1]
        mids, rads = [], []
        for v in values:
            if isinstance(v, Entry):
                mids.append(v.m)
                rads.append(v.r or 0.0)
                continue
            b = v if isinstance(v, Ball) else _ball(v)
            mids.append(b.mid[0, 0])
            rads.append(0.0 if b.rad is None else b.rad[0, 0])
        out = (np.array(mids, dtype=np.float64), np.array(rads, dtype=np.float64))
        if isinstance(values, list):
            self._vecs[id(values)] = (values, out)
        return out

    def col(self, values: Any) -> Any:
        m, r = self._vec(values if isinstance(values, (list, FVec)) else list(values))
        return Ball(m.reshape(-1, 1), r.reshape(-1, 1))

    def entries(self, m: Any) -> Any:
        """The entries (row-major) as 1×1 balls, built only where read."""
        return _Entries(m)

    def from_entries(self, r: Any, c: Any, es: Any) -> Any:
        m, d = self._vec(list(es))
        return Ball(m.reshape(r, c), d.reshape(r, c))

    def diag(self, vals: Any) -> Any:
        m, r = self._vec(vals)
        return Ball(np.diag(m), np.diag(r))

    def vectors(self, values: Any) -> Any:
        """Float vectors ``(lo, hi)`` with every entry of ``values`` (a list of entries, the
        entries of a ball matrix, or an :class:`FVec`) inside ``[lo_i, hi_i]``."""
        if isinstance(values, _Entries):
            m, r = values.mid, values.rad
        else:
            m, r = self._vec(values if isinstance(values, (list, FVec)) else list(values))
        return ball_ends(m, r if r is not None and r.any() else None)

    def lazy_rows(self, ctx: Any, M: Any, flat: Any = False) -> Any:
        """:class:`LazyRows` of ``M`` (``flat``: its entries, row-major)."""
        return LazyRows(self, ctx, M, flat)

    # -- entries --------------------------------------------------------------------------
    def sign(self, x: Any) -> Any:
        if isinstance(x, Entry):
            m, r = x.m, x.r or 0.0
        else:
            m = float(x.mid[0, 0])
            r = 0.0 if x.rad is None else float(x.rad[0, 0])
        if m > r:
            return 1
        if m < -r:
            return -1
        if m == 0 and r == 0:
            return 0
        return None

    def abs(self, m: Any) -> Any:
        return abs(m)

    def abs_dot(self, A: Any, v: Any) -> Any:
        return abs(A) * self.col(v)

    def abs_rowsum(self, A: Any) -> Any:
        return abs(A) * Ball(np.ones((A.ncols(), 1)))

    def hull(self, a: Any, b: Any) -> Any:
        return Ball.make(ball_hull(a.mid, a.rad, b.mid, b.rad))

    def radius_ball(self, r: Any) -> Any:
        return Ball(np.zeros_like(r.mid), up(r.mid + (0.0 if r.rad is None else r.rad)))

    def _end(self, x: Any, k: Any) -> Any:
        lo, hi = x.ends()
        v = float((hi if k else lo)[0, 0])
        if not math.isfinite(v):
            raise AmbiguousBranch("a finite enclosure", x)
        return fmpq(*v.as_integer_ratio())

    def lower(self, x: Any) -> Any:
        """The exact lower end (a float) of an entry; raises ``AmbiguousBranch`` when it is
        not finite (the run then restarts at a higher precision)."""
        return self._end(x, 0)

    def upper(self, x: Any) -> Any:
        return self._end(x, 1)

    def sqrt_upper(self, x: Any, bits: int) -> tuple[Any, ...]:
        hi = float(x.ends()[1][0, 0])
        s = math.nextafter(math.sqrt(max(hi, 0.0)), INF)
        return Ball(np.array([[s]])), True

    def from_ctx(self, ctx: Context, v: Any, upper: Any = None) -> Any:
        """A ball containing the context element ``v``."""
        if isinstance(v, Ball):
            return v
        if not hasattr(v, "_mpi_"):
            return (
                _ball(ctx.lower(v))
                if ctx.lower(v) == ctx.upper(v)
                else Ball.make(ball_from_ends(*(np.array([[t]]) for t in float_ends(ctx, v))))
            )
        lo, hi = _float_ends_mpi(v)
        return entry_from_ends(lo, hi)

    def to_ctx(self, ctx: Context, x: Any) -> Any:
        """The ball as an element of ``ctx`` with float ends (outward); a ball that is not
        finite raises ``AmbiguousBranch`` (the run restarts at a higher precision)."""
        lo, hi = x.float_ends() if isinstance(x, Entry) else float_ends(ctx, x)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise AmbiguousBranch("a finite enclosure", x)
        if ctx.iv is not None and ctx.precision >= 53:
            return ctx.iv.make_mpf((from_float(lo), from_float(hi)))
        return ctx.from_ends(fmpq(*lo.as_integer_ratio()), fmpq(*hi.as_integer_ratio()))

    def col_to_ctx(self, ctx: Context, x: Any) -> list[Any]:
        """Every entry of the ball matrix ``x`` (row-major) as an element of ``ctx``."""
        lo, hi = x.ends()
        lo, hi = lo.ravel(), hi.ravel()
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise AmbiguousBranch("a finite enclosure", x)
        lo, hi = lo.tolist(), hi.tolist()
        if ctx.iv is not None and ctx.precision >= 53:
            make = ctx.iv.make_mpf
            return [make((from_float(a), from_float(b))) for a, b in zip(lo, hi)]
        return [
            ctx.from_ends(fmpq(*a.as_integer_ratio()), fmpq(*b.as_integer_ratio()))
            for a, b in zip(lo, hi)
        ]

    # -- the vectorised steps -------------------------------------------------------------
    def split(self, W: Any) -> tuple[Any, ...]:
        """``(W⁺, W⁻)``: from the float ball of ``W`` (exact: a sign split rounds nothing)
        when every entry's sign is decided, else from the exact entries."""
        B = self.mat(W)
        m, r = B.mid, B.rad
        if r is None:
            return Ball(np.maximum(m, 0.0)), Ball(np.minimum(m, 0.0))
        if ((np.abs(m) > r) | ((m == 0) & (r == 0))).all():
            pos = m > 0
            return (
                Ball(np.where(pos, m, 0.0), np.where(pos, r, 0.0)),
                Ball(np.where(pos, 0.0, m), np.where(pos, 0.0, r)),
            )
        P, N = split_q(W)
        return self.mat(P), self.mat(N)

    @_quiet
    def relax_backward(
        self, lam: Any, n: int, rel: Any, upper: Any, compact: bool = False
    ) -> tuple[Any, ...]:
        """``Λ·y`` through elementwise lines (see :meth:`_Base.relax_backward`), vectorised:
        coefficient ``> 0`` (``mid > rad``) the first line, ``< 0`` the second, undecided the
        hull of both."""
        ls, lb, us, ub = rel
        pa, pb, na, nb = (us, ub, ls, lb) if upper else (ls, lb, us, ub)
        pa, pb, na, nb = (self._vec(v) for v in (pa, pb, na, nb))
        if lam is IDENT:
            return (
                Ball(np.diag(pa[0]), np.diag(pa[1])),
                Ball(pb[0].reshape(-1, 1), pb[1].reshape(-1, 1)),
            )
        lm = lam.mid
        lr = lam.rad
        pos = lm > (0.0 if lr is None else lr)
        neg = lm < (0.0 if lr is None else -lr)
        und = ~(pos | neg) & ((lm != 0) | (lr != 0 if lr is not None else False))
        same = (pa[0] == na[0]) & (pa[1] == na[1]) & (pb[0] == nb[0]) & (pb[1] == nb[1])
        # slopes: the first line where not negative, the second where negative
        sm = np.where(neg, na[0][None, :], pa[0][None, :])
        sr = np.where(neg, na[1][None, :], pa[1][None, :])
        mid, rad = ball_emul(lm, lr, sm, sr if sr.any() else None)
        # biases: P·pb + N·nb (+ hull terms for the undecided entries)
        Pm = np.where(neg, 0.0, lm)
        Nm = np.where(neg, lm, 0.0)
        Pr = None if lr is None else np.where(neg, 0.0, lr)
        Nr = None if lr is None else np.where(neg, lr, 0.0)
        has_und = und.any() and not same[np.nonzero(und)[1]].all()
        if has_und:  # undecided entries: neither product alone; hull of both below
            Pm, Nm = np.where(und, 0.0, Pm), np.where(und, 0.0, Nm)
            Pr = None if Pr is None else np.where(und, 0.0, Pr)
            Nr = None if Nr is None else np.where(und, 0.0, Nr)
        bias = Ball.make(ball_matmul(Pm, Pr, pb[0].reshape(-1, 1), _nz(pb[1].reshape(-1, 1))))
        if Nm.any() or (Nr is not None and Nr.any()):
            bias = bias + Ball.make(
                ball_matmul(Nm, Nr, nb[0].reshape(-1, 1), _nz(nb[1].reshape(-1, 1)))
            )
        if has_und:
            bm, br = ball_emul(lm, lr, na[0][None, :], _nz(na[1][None, :]))
            hm, hr = ball_hull(mid, rad, bm, br)
            mid = np.where(und, hm, mid)
            rad = np.where(und, hr, rad if rad is not None else 0.0)
            Um = np.where(und, lm, 0.0)
            Ur = None if lr is None else np.where(und, lr, 0.0)
            U = Ball(Um, Ur)
            bias = bias + self._both(
                U,
                Ball(pb[0].reshape(-1, 1), pb[1].reshape(-1, 1)),
                Ball(nb[0].reshape(-1, 1), nb[1].reshape(-1, 1)),
                self.const(fmpq(1, 2)),
            )
        return Ball(mid, rad), bias

    def sign_split(self, lam: Any) -> Any:
        lm, lr = lam.mid, lam.rad
        r = 0.0 if lr is None else lr
        pos, neg = lm > r, lm < -r
        und = ~(pos | neg)

        def part(mask: Any) -> Any:
            return Ball(np.where(mask, lm, 0.0), None if lr is None else np.where(mask, lr, 0.0))

        U = part(und) if (und & ((lm != 0) | (lr is not None and (lr != 0)))).any() else None
        return part(pos), part(neg), U

    def _both(self, U: Any, a: Any, b: Any, half: Any) -> Any:
        mid = U * ((a + b) * half)
        rad = abs(U) * (abs(a - b) * half)
        return mid + self.radius_ball(rad)

    @_quiet
    def pick_rows(self, A: Any, B: Any, s: Any, n: int) -> Any:
        """Row ``i``: ``s_i·A_i`` when ``s_i >= 0``, ``s_i·B_i`` when ``s_i < 0``, the hull
        when the ball ``s_i`` contains 0."""
        sm, sr = self._vec(s)
        r = sr
        pos, neg = sm > r, sm < -r
        und = ~(pos | neg) & ((sm != 0) | (sr != 0))
        take_b = neg[:, None]
        cm = np.where(take_b, B.mid, A.mid)
        cr = _pick(take_b, A.rad, B.rad)
        mid, rad = ball_emul(sm[:, None], _nz(sr[:, None]), cm, cr)
        if und.any():
            om, orr = ball_emul(
                sm[:, None],
                _nz(sr[:, None]),
                np.where(take_b, A.mid, B.mid),
                _pick(take_b, B.rad, A.rad),
            )
            hm, hr = ball_hull(mid, rad, om, orr)
            mid = np.where(und[:, None], hm, mid)
            rad = np.where(und[:, None], hr, rad if rad is not None else 0.0)
        return Ball(mid, rad)


class Entry(Ball):
    """One entry of a ball matrix, ``m ± r`` (Python floats; ``r`` ``None``: exact), a 1×1
    :class:`Ball` whose arrays are made only when an operation needs them."""

    __slots__ = ("m", "r")

    def __init__(self, m: Any, r: Any = None) -> None:
        self.m, self.r = m, r

    @property
    def mid(self) -> Any:
        return np.array([[self.m]])

    @property
    def rad(self) -> Any:
        return None if not self.r else np.array([[self.r]])

    def absmid(self) -> Any:
        return np.array([[abs(self.m)]])

    @property
    def shape(self) -> tuple[Any, ...]:
        return (1, 1)

    def float_ends(self) -> tuple[Any, ...]:
        if not self.r:
            return self.m, self.m
        return math.nextafter(self.m - self.r, -INF), math.nextafter(self.m + self.r, INF)


class _Entries:
    """The entries of a ball matrix as a read-only sequence of :class:`Entry` (row-major),
    each made when read (slices make lists)."""

    __slots__ = ("mid", "rad")

    def __init__(self, m: Any) -> None:
        self.mid = m.mid.ravel()
        self.rad = None if m.rad is None else m.rad.ravel()

    def __len__(self) -> int:
        return self.mid.shape[0]

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            rng = range(*k.indices(len(self)))
            if self.rad is None:
                return [Entry(float(self.mid[i])) for i in rng]
            return [Entry(float(self.mid[i]), float(self.rad[i])) for i in rng]
        return Entry(float(self.mid[k]), None if self.rad is None else float(self.rad[k]))

    def __iter__(self) -> Any:
        return iter(self[:])


class FVec:
    """A vector of balls ``mid ± rad`` (1-D float arrays): the lines of a vectorised
    relaxation (``relax_vec``), read by the backend's steps without per-entry objects."""

    __slots__ = ("mid", "rad")

    def __init__(self, mid: Any, rad: Any) -> None:
        self.mid, self.rad = mid, rad

    @classmethod
    def from_ends(cls, lo: Any, hi: Any) -> Any:
        mid, rad = ball_from_ends(lo, hi)
        return cls(mid, np.zeros_like(mid) if rad is None else rad)

    def __len__(self) -> Any:
        return self.mid.shape[0]

    def __getitem__(self, k: Any) -> Any:
        return _Entries(Ball(self.mid.reshape(-1, 1), self.rad.reshape(-1, 1)))[k]

    def __iter__(self) -> Any:
        return iter(self[:])


class LazyRows:
    """The rows of a ball matrix as lists of context elements, each row converted when first
    read (a finished run's final linear forms: read rarely, and row by row). Non-finite entries
    raise ``AmbiguousBranch`` at construction, inside the run."""

    def __init__(self, be: Any, ctx: Any, M: Any, flat: Any = False) -> None:
        lo, hi = M.ends()
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise AmbiguousBranch("a finite enclosure", M)
        self._be, self._ctx, self._M, self._flat = be, ctx, M, flat
        self._rows = {}

    def __len__(self) -> Any:
        return self._M.nrows() * (self._M.ncols() if self._flat else 1)

    def _row(self, i: Any) -> Any:
        if i not in self._rows:
            m = self._M
            sub = Ball(m.mid[i : i + 1], None if m.rad is None else m.rad[i : i + 1])
            self._rows[i] = self._be.col_to_ctx(self._ctx, sub)
        return self._rows[i]

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        if self._flat:  # a column (or any matrix) read entry by entry, row-major
            n = self._M.ncols()
            return self._row(k // n)[k % n]
        return self._row(k)

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: Any) -> Any:
        return list(self) == list(other)

    def __repr__(self) -> Any:
        return repr(list(self))


def _nonneg_up(T: Any, k: int) -> Any:
    """``>=`` the exact value of a sum of ``k`` nonnegative products computed as ``T``."""
    return upn(upn(T + 2 * k * ETA) * inv_one_minus_gamma(k))


U32 = 2.0**-24
ETA32 = 2.0**-149


def _up32(x: Any) -> Any:
    """A float32 array ``>=`` the nonnegative float64 array ``x`` entrywise (zeros stay 0)."""
    y = np.nextafter(x.astype(np.float32), np.float32(INF))
    return np.where(x == 0, np.float32(0), y)


def _min_pos(a: Any) -> float:
    return float(np.min(a, where=a > 0, initial=INF))


def _nonneg_back_up(part: Any, X: Any, K: Any) -> tuple[Any, Any]:
    """``(R, zero)``: a float64 array ``R >=`` the exact ``X·W`` of a part whose kernel is
    ``K``, for nonnegative ``X`` and ``K``, and the mask of the entries where that product is
    exactly 0 (``None`` when a product of nonzero factors could underflow, so that a float 0
    proves nothing). A convolution computes it in float32 (half the memory traffic; the radius
    needs no more): inputs rounded up, then ``(fl32(X·W) + 2nη₃₂)/(1 − γ₃₂(n))`` with
    ``γ₃₂(n) = n·u₃₂/(1 − n·u₃₂)``, ``u₃₂ = 2^-24``, ``η₃₂ = 2^-149`` (Higham's bound for
    nonnegative sums in any order; an overflow gives ``inf``, still an upper bound)."""
    n = part.n
    if not isinstance(part, ConvPart) or n * U32 >= 0.01:
        return _nonneg_up(part.back(X, K), n), None
    got = getattr(part, "_k32", None)
    if got is None or got[0] is not K:
        got = part._k32 = (K, [_up32(k) for k in K], min(_min_pos(k) for k in K))
    X32 = _up32(X)
    T = part.back(X32, got[1]).astype(np.float64)
    nu = n * U32
    g32 = math.nextafter(nu / math.nextafter(1.0 - nu, 0.0), INF)
    inv = math.nextafter(1.0 / math.nextafter(1.0 - g32, 0.0), INF)
    # no product of nonzero factors underflows (each >= 2^-125 > the least normal float32):
    # a float 0 is then a sum of exact zeros
    exact0 = _min_pos(X32) * got[2] >= 2.0**-125
    return upn(upn(T + 2 * n * ETA32) * inv), (T == 0 if exact0 else None)


def _kmap(f: Any, K: Any) -> Any:
    """``f`` on a kernel: ``None``, an array, or a list of arrays (one per group)."""
    if K is None:
        return None
    return [f(k) for k in K] if isinstance(K, list) else f(K)


def _kmap2(f: Any, K: Any, R: Any) -> Any:
    return [f(k, r) for k, r in zip(K, R)] if isinstance(K, list) else f(K, R)


def part_kernels(part: Any) -> tuple[Any, Any, Any]:
    """``(Km, Kr, |Km|)``: a structured part's kernel as float balls (``Kr`` ``None``: exact),
    made once per part."""
    got = getattr(part, "_float_k", None)
    if got is None:
        Km, Kr = part.float_kernel(q_mat_ball)
        got = part._float_k = (Km, Kr, _kmap(np.abs, Km))
    return got


def gamma_kernel(Kabs: Any, Kr: Any, g: float) -> Any:
    """``γ·|Km| + Kr`` rounded up, per group (``Kr`` ``None``: ``γ·|Km|``)."""
    if Kr is None:
        return _kmap(lambda a: upn(a * g), Kabs)
    return _kmap2(lambda a, r: upn(upn(a * g) + r), Kabs, Kr)


def radius_with_kr(apply: Any, A: Any, R: Any, Kabs: Any, Kr: Any, n: int) -> Any:
    """``γ_n·A·|Km| + R·|Km| + (A + R)·Kr`` (``R`` may be ``None``) rounded up, as two products
    of nonnegative arrays by ``apply`` (a structured part's ``back`` or ``fwd``) with the
    kernels ``|Km|·γ_n + Kr`` and ``|Km| + Kr``; without the underflow term ``2nη``."""
    K1 = gamma_kernel(Kabs, Kr, gamma(n))
    rad = _nonneg_up(apply(A, K1), n)
    if R is not None:
        K2 = _kmap2(lambda a, r: upn(a + r), Kabs, Kr)
        rad = upn(rad + _nonneg_up(apply(R, K2), n))
    return rad


def _nz(r: Any) -> Any:
    return r if r is not None and r.any() else None


def _pick(mask: Any, ra: Any, rb: Any) -> Any:
    if ra is None and rb is None:
        return None
    za = 0.0 if ra is None else ra
    zb = 0.0 if rb is None else rb
    return np.where(mask, zb, za)
