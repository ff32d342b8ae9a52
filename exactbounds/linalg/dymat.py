"""``DyMat``: exact matrices of dyadic rationals held as one integer ``fmpz_mat`` times a
shared power of two, so that products need no gcds (float32/float64 weights and dyadic bounds
are such matrices). Values always equal those of the ``fmpq_mat`` :meth:`DyMat.to_q`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from flint import fmpq, fmpq_mat, fmpz, fmpz_mat


def dyadic_parts(x: Any) -> Any:
    """``(m, e)`` with ``x = m·2^e`` (``m`` an int) for a dyadic rational ``x`` (an ``fmpq``,
    ``fmpz`` or ``int``), else ``None``."""
    if isinstance(x, fmpq):
        q = int(x.q)
        if q & (q - 1):
            return None
        return int(x.p), -(q.bit_length() - 1)
    if isinstance(x, (int, fmpz)) and not isinstance(x, bool):
        return int(x), 0
    return None


def float_parts(a: Any) -> tuple[Any, Any, int]:
    """``(m, s, e)`` with ``a = m·2^(s + e)`` exactly, for a numpy array ``a`` of finite
    float16/32/64 values, vectorised: ``m`` the signed integer mantissas (``int64``, at most 53
    bits), ``s >= 0`` the shifts (``int64``, 0 where ``m`` is 0), ``e`` the least exponent of a
    nonzero entry (``0`` when every entry is zero). ``frexp`` splits each float exactly
    (subnormals included) into a 53-bit integer times a power of two; trailing zero bits of the
    integer move into the exponent. A float32 array is split from its bit fields."""
    a = np.asarray(a)
    if a.dtype.kind != "f" or a.dtype.itemsize > 8:
        raise TypeError(f"float_parts: expected a float16/32/64 array, got {a.dtype}")
    if a.dtype == np.float32:
        bits = a.view(np.uint32).astype(np.int64)
        ex = (bits >> 23) & 0xFF
        frac = bits & 0x7FFFFF
        normal = ex > 0
        m = np.where(normal, frac | 0x800000, frac)  # |a| = m·2^k (subnormal: k = −149)
        k = np.where(normal, ex - 150, -149)
        m = np.where(bits >> 31, -m, m)
    else:
        man, ex = np.frexp(a.astype(np.float64))  # a = man·2^ex, 1/2 <= |man| < 1, exactly
        m = (man * 2.0**53).astype(np.int64)  # exact: integers below 2^53
        k = ex.astype(np.int64) - 53
        nz = m != 0
        low = np.where(nz, m & -m, 1)  # lowest set bit, a power of two <= 2^53
        tz = np.frexp(low.astype(np.float64))[1].astype(np.int64) - 1
        m, k = m >> tz, k + tz
    nz = m != 0
    if not nz.any():
        return np.zeros(a.shape, dtype=np.int64), np.zeros(a.shape, dtype=np.int64), 0
    e = int(k[nz].min())
    return m, np.where(nz, k - e, 0), e


def _bit_length(m: Any) -> Any:
    """Bit lengths of the entries of an int64 array of magnitude below 2^53."""
    return np.frexp(np.abs(m).astype(np.float64))[1]


def _set_entries(M: Any, m: Any, s: Any, idx: Any, at: Any = None) -> Any:
    """Set the flat positions ``at`` (default ``idx``) of ``M`` to ``m·2^s`` at the flat
    positions ``idx`` of ``m`` and ``s`` (Python integers, exactly)."""
    c = M.ncols()
    mf, sf = m.ravel(), s.ravel()
    at = idx if at is None else at
    for k, x, t in zip(at.tolist(), mf[idx].tolist(), sf[idx].tolist()):
        M[k // c, k % c] = x << t
    return M


def int_matrix(m: Any, s: Any) -> Any:
    """The ``fmpz_mat`` of the 2-d ``m·2^s`` (int64 arrays as from :func:`float_parts`),
    vectorised: one int64 matrix when every entry fits in 62 bits, else the entries of the
    commonest group of shifts (a step of shifts that keeps them within 62 bits) as one int64
    matrix times a power of two, and the others set one by one."""
    r, c = m.shape
    nz = np.flatnonzero(m)
    if nz.size == 0:
        return fmpz_mat(r, c)
    top = int(_bit_length(m).max())
    if top + int(s.max()) <= 62:
        return fmpz_mat(r, c, (m << s).ravel().tolist())
    step = 62 - top  # >= 9: mantissas have at most 53 bits
    q = s // step
    levels, counts = np.unique(q.ravel()[nz], return_counts=True)
    lv = int(levels[np.argmax(counts)])
    base = (q == lv) & (m != 0)
    M = fmpz_mat(r, c, np.where(base, m << (s - lv * step), 0).ravel().tolist())
    if lv:
        M = M * (fmpz(1) << (lv * step))
    return _set_entries(M, m, s, np.flatnonzero(~base & (m != 0)))


def float_mantissas(a: Any) -> tuple[Any, int]:
    """``(N, e)`` with ``a = N·2^e`` exactly (:func:`float_parts`): ``N`` an ``int64`` array
    when every integer fits, else an object array of Python ints."""
    m, s, e = float_parts(a)
    if m.size == 0 or int(_bit_length(m).max()) + int(s.max()) <= 62:
        return m << s, e
    out = np.empty(m.size, dtype=object)
    out[:] = [int(x) << int(k) for x, k in zip(m.ravel().tolist(), s.ravel().tolist())]
    return out.reshape(m.shape), e


def exact_floats(a: Any) -> Any:
    """A numpy float16/32/64 array of finite values as an object array of the exact ``fmpq``
    values (same shape)."""
    a = np.asarray(a)
    out = np.empty(a.size, dtype=object)
    out[:] = [fmpq(*v.as_integer_ratio()) for v in a.astype(np.float64).ravel().tolist()]
    return out.reshape(a.shape)


class DyMat:
    """An exact matrix ``M·2^e`` of dyadic rationals: ``M`` an integer ``fmpz_mat``, ``e`` an int
    shared by every entry. Products and sums are integer matrix operations (no gcds); values are
    the same as those of the ``fmpq_mat`` :meth:`to_q`. An operand that is not dyadic (an
    ``fmpq_mat`` or a non-dyadic scalar) makes the operation fall back to ``fmpq_mat``, still
    exact. Used by :class:`~exactbounds.linalg.backends.ZBackend`."""

    __slots__ = ("_M", "_e", "_q", "floats")

    def __init__(self, M: Any, e: Any = 0, floats: Any = None) -> None:
        self._M, self._e, self._q, self.floats = M, int(e), None, floats

    def _build(self) -> None:
        """The integer matrix of :attr:`floats`: a sparse one (at most one entry in eight
        nonzero) by setting its nonzero entries into a zero matrix, else :func:`int_matrix`."""
        f = self.floats
        nz = np.flatnonzero(f)
        if nz.size * 8 <= f.size:
            m, s, e = float_parts(f.ravel()[nz])
            M = _set_entries(fmpz_mat(*f.shape), m, s, np.arange(nz.size), nz)
        else:
            m, s, e = float_parts(f)
            M = int_matrix(m, s)
        self._M, self._e = M, e

    @property
    def M(self) -> Any:
        """The integer matrix (built on first use for :meth:`from_floats`)."""
        if self._M is None:
            self._build()
        return self._M

    @property
    def e(self) -> int:
        """The shared exponent (known once :attr:`M` is built)."""
        if self._M is None:
            self._build()
        return self._e

    @classmethod
    def from_floats(cls, a: Any) -> Self:
        """The ``DyMat`` equal to a 2-d numpy array of finite float16/32/64 values, exactly; the
        integer matrix is built on first use (``floats`` keeps the array, whose values the float
        tier reads directly)."""
        a = np.asarray(a)
        if a.ndim != 2:
            raise TypeError(f"DyMat.from_floats: expected a 2-d array, got shape {a.shape}")
        if a.dtype.kind != "f" or a.dtype.itemsize > 8 or not np.isfinite(a).all():
            raise ValueError("DyMat.from_floats: expected finite float16/32/64 values")
        return cls(None, 0, a)

    @classmethod
    def from_q(cls, Q: Any) -> Self | None:
        """The ``DyMat`` equal to the ``fmpq_mat`` ``Q``, or ``None`` if an entry is not dyadic."""
        M, d = Q.numer_denom()
        d = int(d)
        if d & (d - 1):
            return None
        return cls(M, -(d.bit_length() - 1))

    @classmethod
    def from_entries(cls, r: int, c: int, vals: Any) -> Self | None:
        """From a list of exact numbers (row-major); ``None`` if one is not dyadic."""
        parts = []
        for v in vals:
            p = dyadic_parts(v)
            if p is None:
                return None
            parts.append(p)
        e = min((p[1] for p in parts if p[0]), default=0)
        return cls(fmpz_mat(r, c, [fmpz(m << (k - e)) if m else fmpz(0) for m, k in parts]), e)

    def nrows(self) -> int:
        return self.floats.shape[0] if self._M is None else self._M.nrows()

    def ncols(self) -> int:
        return self.floats.shape[1] if self._M is None else self._M.ncols()

    def abs(self) -> Self:
        """``|self|`` entry by entry."""
        if self.floats is not None:
            return type(self)(None, 0, np.abs(self.floats))
        return type(self)(
            fmpz_mat(self.nrows(), self.ncols(), [abs(v) for v in self.M.entries()]), self.e
        )

    def to_q(self) -> Any:
        """The equal ``fmpq_mat`` (built once; a ``DyMat`` is never changed in place)."""
        if self._q is None:
            Q = fmpq_mat(self.M)
            if self.e:
                Q = Q * (fmpq(1, 1 << -self.e) if self.e < 0 else fmpq(1 << self.e))
            self._q = Q
        return self._q

    def entries(self) -> Any:
        """The entries as ``fmpq`` (row-major): a list for a column, else a lazy sequence that
        converts only the entries (or row slices) that are read."""
        if self.ncols() > 1:
            return DyEntries(self)
        return self.entry_list()

    def entry_list(self) -> Any:
        e = self.e
        if e >= 0:
            return (
                [fmpq(v << e) for v in map(int, self.M.entries())]
                if e
                else [fmpq(v) for v in self.M.entries()]
            )
        d = 1 << -e
        return [fmpq(v, d) for v in self.M.entries()]

    def __getitem__(self, ij: Any) -> Any:
        v = fmpq(self.M[ij])
        return v * (fmpq(1, 1 << -self.e) if self.e < 0 else fmpq(1 << self.e))

    def _align(self, other: Any) -> tuple[Any, ...]:
        """``(A, B, e)``: integer matrices of ``self`` and ``other`` over the common ``2^e``."""
        e = min(self.e, other.e)
        A = self.M if self.e == e else self.M * (1 << (self.e - e))
        B = other.M if other.e == e else other.M * (1 << (other.e - e))
        return A, B, e

    def __add__(self, other: Any) -> Any:
        if isinstance(other, DyMat):
            A, B, e = self._align(other)
            return DyMat(A + B, e)
        return self.to_q() + other

    __radd__ = __add__

    def __neg__(self) -> Any:
        return DyMat(-self.M, self.e)

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, DyMat):
            A, B, e = self._align(other)
            return DyMat(A - B, e)
        return self.to_q() - other

    def __rsub__(self, other: Any) -> Any:
        return other - self.to_q()

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, DyMat):
            return DyMat(self.M * other.M, self.e + other.e)
        if isinstance(other, (int, fmpz, fmpq)):
            p = dyadic_parts(other)
            if p is not None:
                return DyMat(self.M * p[0], self.e + p[1])
        return self.to_q() * other

    def __rmul__(self, other: Any) -> Any:
        if isinstance(other, (int, fmpz, fmpq)):
            return self.__mul__(other)
        return other * self.to_q()

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, DyMat):
            A, B, _ = self._align(other)
            return A == B
        return self.to_q() == other

    __hash__ = None  # type: ignore[assignment]  # unhashable, like fmpq_mat

    def __repr__(self) -> str:
        return f"DyMat({self.nrows()}x{self.ncols()}, 2^{self.e})"


class DyEntries(Sequence):
    """Read-only row-major ``fmpq`` entries of a :class:`DyMat`, converted on access."""

    def __init__(self, D: Any) -> None:
        self.D, self._es = D, None

    def _ints(self) -> Any:
        if self._es is None:
            self._es = self.D.M.entries()
        return self._es

    def _conv(self, vals: Any) -> list[Any]:
        e = self.D.e
        if e >= 0:
            return [fmpq(int(v) << e) for v in vals]
        d = 1 << -e
        return [fmpq(v, d) for v in vals]

    def __len__(self) -> int:
        return self.D.nrows() * self.D.ncols()

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return self._conv(self._ints()[k])
        return self._conv([self._ints()[k]])[0]

    def __iter__(self) -> Any:
        return iter(self._conv(self._ints()))
