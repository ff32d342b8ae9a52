"""Point functionals for fast CROWN: :class:`PointFastBackend`, the backend of the mode ``fast``.

A backward pass needs *a* valid functional, not the exact ``Λ·W``: with ``Λ' = fl(Λ·W)``,
``|Λ·W − Λ'| <= R`` entrywise, and ``|z| <= m`` on the input set (``m``: the node's stored or
IBP bounds), ``Λ·W·z = Λ'·z + (Λ·W − Λ')·z`` and ``|(Λ·W − Λ')·z| <= R·m``. So the pass goes
on with the point ``Λ'`` and adds the ball ``0 ± R·m`` to both biases
(:meth:`PointFastBackend.settle`, called by CROWN when a functional reaches its node).

``R`` itself is never formed: a product keeps its radius as terms (:class:`LazyBall`), and
``R·m`` comes from them: for ``R = γ_n·|Λ|·|W| + 2nη`` (the module docstring of
:mod:`.fast`), ``R·m <= |Λ|·(γ_n·|W|·m) + 2nη·Σm``: matrix-vector products instead of a
second matrix product. Elementwise lines and sums of functionals keep ``u·|fl(x)|`` (+ ``η``
for products) the same way. A lazy ball whose radius is read (any other step) forms it then,
by the rules of :class:`~exactbounds.linalg.fast.FastBackend`, so every other path is
unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from .backends import IDENT
from .fast import (
    ETA,
    Ball,
    FastBackend,
    U,
    _nonneg_up,
    _quiet,
    _sanitize,
    ball_matmul,
    gamma,
    gamma_kernel,
    nonneg_matmul_up,
    part_kernels,
    upn,
)
from .fast_forward import fwd_terms
from .structured import ChainPart

_RAD = Ball.__dict__["rad"]  # the slot behind Ball.rad


class _Term(ABC):
    """One part of a lazy radius: ``array()`` an upper bound of it entrywise, ``times(m)``
    an upper bound of it times the nonnegative column ``m``."""

    @abstractmethod
    def array(self) -> Any: ...

    @abstractmethod
    def times(self, m: Any) -> Any: ...


class _Prod(_Term):
    """``|Λ|·|V| + c`` for a product ``fl(Λ·W)``: ``fwd(m) >= |V|·m`` (a column), ``c`` a
    constant per entry (``2nη``); ``make()`` the entrywise radius by ``FastBackend``'s rule."""

    def __init__(self, A: Any, fwd: Any, c: float, make: Any) -> None:
        self.A, self.fwd, self.c, self.make = A, fwd, c, make

    def array(self) -> Any:
        return self.make()

    def times(self, m: Any) -> Any:
        return upn(nonneg_matmul_up(self.A, self.fwd(m)) + _sum_times(self.c, m))


class _Round(_Term):
    """``u·|x| + c`` for the rounding of an elementwise result ``x`` (``c``: ``η`` for a
    product, 0 for a sum)."""

    def __init__(self, x: Any, c: float) -> None:
        self.x, self.c = x, c

    def array(self) -> Any:
        r = upn(np.abs(self.x) * U)
        return upn(r + self.c) if self.c else r

    def times(self, m: Any) -> Any:
        return upn(upn(nonneg_matmul_up(np.abs(self.x), m) * U) + _sum_times(self.c, m))


class _Arr(_Term):
    """A radius given entrywise."""

    def __init__(self, R: Any) -> None:
        self.R = R

    def array(self) -> Any:
        return self.R

    def times(self, m: Any) -> Any:
        return nonneg_matmul_up(self.R, m)


@_quiet
def _sum_times(c: float, m: Any) -> Any:
    """``>= c·Σm`` (``c >= 0`` a float, ``m`` a nonnegative column), or 0."""
    if not c:
        return 0.0
    s = float(_nonneg_up(np.sum(m), max(1, m.shape[0])))
    return upn(np.float64(c) * s)


class LazyBall(Ball):
    """A ball matrix whose radius is a list of :class:`_Term` (formed when read)."""

    __slots__ = ("terms",)

    def __init__(self, mid: Any, terms: list[Any]) -> None:
        self.terms = terms
        Ball.__init__(self, mid, None)

    @property
    def rad(self) -> Any:
        if self.terms:
            terms, self.terms = self.terms, []
            r = terms[0].array()
            for t in terms[1:]:
                r = upn(r + t.array())
            mid, r = _sanitize(self.mid, r)
            self.mid = mid
            _RAD.__set__(self, r if r is not None and r.any() else None)
        return _RAD.__get__(self)

    @rad.setter
    def rad(self, v: Any) -> None:
        _RAD.__set__(self, v)


def _terms(x: Any) -> list[Any]:
    """The radius of a ball as terms (none when exact)."""
    if isinstance(x, LazyBall) and x.terms:
        return list(x.terms)
    r = x.rad
    return [] if r is None else [_Arr(r)]


def _point(x: Any) -> bool:
    """Whether ``x`` is a point functional: a plain ball matrix without radius."""
    return isinstance(x, Ball) and not isinstance(x, LazyBall) and x.rad is None


class PointFastBackend(FastBackend):
    """:class:`~exactbounds.linalg.fast.FastBackend` whose backward products keep their
    radius lazily, so that CROWN settles it into the bias (module docstring)."""

    def settle(self, lam: Any, m_of: Any) -> tuple[Any, Any]:
        """``(Λ', e)``: the point functional ``Λ' = mid(Λ)`` and the bias ball ``0 ± e`` with
        ``e >= rad(Λ)·m`` (``m = m_of()``, a column with ``|z| <= m``), or ``(Λ, None)`` when
        ``Λ`` is exact, not a ball, or ``m`` or the midpoint is not finite (the radius then
        stays, and is formed when read)."""
        terms = _terms(lam) if isinstance(lam, Ball) else []
        if not terms:
            return lam, None
        m = m_of()
        if m is None or not np.isfinite(m).all() or not np.isfinite(lam.mid).all():
            return lam, None
        e = _settle_sum(terms, m)
        if e is None:
            return lam, None
        return Ball(lam.mid), Ball(np.zeros_like(e), e)

    @_quiet
    def mul(self, lam: Any, W: Any) -> Any:
        """``Λ·W`` with ``Λ`` a point and ``W`` a matrix (more than one column): the midpoint
        product, the radius ``γ_n·|Λ|·|W| + |Λ|·Wr + 2nη`` kept lazily."""
        if not (isinstance(lam, Ball) and isinstance(W, Ball) and _point(lam)):
            return super().mul(lam, W)
        n = lam.ncols()
        g = gamma(n)
        mid = lam.mid @ W.mid
        if W.ncols() < 2:  # a bias column: the radius now, from the cached |Λ|
            Wa = np.abs(W.mid)
            v = upn(Wa * g) if W.rad is None else upn(upn(Wa * g) + W.rad)
            rad = upn(nonneg_matmul_up(lam.absmid(), v) + 2 * n * ETA)
            return Ball.make(_sanitize(mid, rad))
        Wa, Wr = W.absmid(), W.rad

        def fwd(m: Any) -> Any:
            v = upn(nonneg_matmul_up(Wa, m) * g)
            return v if Wr is None else upn(v + nonneg_matmul_up(Wr, m))

        def make() -> Any:
            return _rad_or_zero(ball_matmul(lam.mid, None, W.mid, Wr)[1], mid)

        return LazyBall(mid, [_Prod(lam.absmid(), fwd, 2 * n * ETA, make)])

    @_quiet
    def lin_rmul(self, lam: Any, part: Any) -> Any:
        """``Λ·W`` for a structured part with ``Λ`` a point: the midpoint by the part's own
        operation, the radius ``|Λ|·(γ_n·|Km| + Kr) + 2nη`` kept lazily (``|W|·m`` by the
        part's forward operation on ``m``)."""
        if isinstance(part, ChainPart) or not _point(lam) or getattr(part, "unique", False):
            return super().lin_rmul(lam, part)
        Km, Kr, Kabs = part_kernels(part)
        n, n_fwd = part.n, fwd_terms(part)
        g = gamma(n)
        mid = part.back(lam.mid, Km)
        K1 = None if Kabs is None else gamma_kernel(Kabs, Kr, g)

        def fwd(m: Any) -> Any:
            if K1 is None:  # 0/1 weights: a copy (times γ)
                return upn(part.fwd(m.T, None).T * g)
            return _nonneg_up(part.fwd(m.T, K1).T, n_fwd)

        def make() -> Any:
            return _rad_or_zero(FastBackend.lin_rmul(self, lam, part).rad, mid)

        return LazyBall(mid, [_Prod(lam.absmid(), fwd, 2 * n * ETA, make)])

    @_quiet
    def add(self, a: Any, b: Any, n: int) -> Any:
        """``a + b`` of functionals; lazy radii stay lazy (plus ``u·|fl(a + b)|``)."""
        if a is None:
            return b
        if a is IDENT or b is IDENT or not (isinstance(a, Ball) and isinstance(b, Ball)):
            return super().add(a, b, n)
        ta, tb = _terms(a), _terms(b)
        mid = a.mid + b.mid
        return LazyBall(mid, ta + tb + [_Round(mid, 0.0)])

    @_quiet
    def relax_backward(
        self, lam: Any, n: int, rel: Any, upper: Any, compact: bool = False
    ) -> tuple[Any, ...]:
        """``Λ·y`` through elementwise lines for a point ``Λ`` and point lines: coefficient
        ``>= 0`` the first line, ``< 0`` the second; the products' rounding ``u·|x| + η``
        kept lazily, the bias ``P·pb + N·nb`` as balls. Only the columns whose two lines differ
        look at signs, only those with a nonzero intercept enter the bias (a ReLU's stable
        neurons: neither)."""
        if not _point(lam):
            return super().relax_backward(lam, n, rel, upper, compact)
        ls, lb, us, ub = rel
        pa, pb, na, nb = (us, ub, ls, lb) if upper else (ls, lb, us, ub)
        pa, pb, na, nb = (self._vec(v) for v in (pa, pb, na, nb))
        if pa[1].any() or na[1].any():  # slopes with a radius: the ball rule
            return super().relax_backward(lam, n, rel, upper, compact)
        lm = lam.mid
        mid = lm * pa[0][None, :]
        two = np.flatnonzero(pa[0] != na[0])  # columns whose slope depends on the sign
        if two.size:
            sub = lm[:, two]
            mid[:, two] = np.where(sub < 0, sub * na[0][two][None, :], mid[:, two])
        bias = Ball(np.zeros((lm.shape[0], 1)))
        for ints, negative in ((pb, False), (nb, True)):
            cols = np.flatnonzero((ints[0] != 0) | (ints[1] != 0))
            if not cols.size:
                continue
            sub = lm[:, cols]
            sub = np.where(sub < 0, sub, 0.0) if negative else np.where(sub < 0, 0.0, sub)
            r = ints[1][cols]
            bias = bias + Ball.make(ball_matmul(sub, None, ints[0][cols].reshape(-1, 1), _nzc(r)))
        return LazyBall(mid, [_Round(mid, ETA)]), bias


def _nzc(r: Any) -> Any:
    return r.reshape(-1, 1) if r is not None and r.any() else None


def _rad_or_zero(rad: Any, mid: Any) -> Any:
    return np.zeros_like(mid) if rad is None else rad


@_quiet
def _settle_sum(terms: list[Any], m: Any) -> Any:
    """``>= Σ_t rad_t·m`` (a column), or ``None`` when not finite."""
    e = terms[0].times(m)
    for t in terms[1:]:
        e = upn(e + t.times(m))
    return e if np.isfinite(e).all() else None
