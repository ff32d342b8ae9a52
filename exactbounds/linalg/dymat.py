"""``DyMat``: exact matrices of dyadic rationals held as one integer ``fmpz_mat`` times a
shared power of two, so that products need no gcds (float32/float64 weights and dyadic bounds
are such matrices). Values always equal those of the ``fmpq_mat`` :meth:`DyMat.to_q`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

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


class DyMat:
    """An exact matrix ``M·2^e`` of dyadic rationals: ``M`` an integer ``fmpz_mat``, ``e`` an int
    shared by every entry. Products and sums are integer matrix operations (no gcds); values are
    the same as those of the ``fmpq_mat`` :meth:`to_q`. An operand that is not dyadic (an
    ``fmpq_mat`` or a non-dyadic scalar) makes the operation fall back to ``fmpq_mat``, still
    exact. Used by :class:`~exactbounds.linalg.backends.ZBackend`."""

    __slots__ = ("M", "e", "_q")

    def __init__(self, M: Any, e: Any = 0) -> None:
        self.M, self.e, self._q = M, int(e), None

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
        return self.M.nrows()

    def ncols(self) -> int:
        return self.M.ncols()

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
