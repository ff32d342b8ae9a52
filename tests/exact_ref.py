"""Exact reference arithmetic for the tests, independent of the package's contexts.

``Surd(a, b, w)`` is the real number ``a + b·√w`` (a, b, w rationals, w >= 0); comparisons with a
rational are decided exactly by squaring, with no rounding anywhere.
"""

from fractions import Fraction

from flint import fmpq


def F(q):
    """fmpq / int / Fraction -> Fraction."""
    if isinstance(q, fmpq):
        return Fraction(int(q.p), int(q.q))
    return Fraction(q)


def _sign(x):
    return (x > 0) - (x < 0)


class Surd:
    def __init__(self, a, b, w):
        self.a, self.b, self.w = F(a), F(b), F(w)
        assert self.w >= 0

    def cmp(self, q):
        """sign(a + b·√w − q), exactly."""
        d = self.a - F(q)  # compare b·√w with −d
        lhs = _sign(self.b) if self.w else 0  # sign of b·√w
        rhs = _sign(-d)
        if lhs != rhs:
            return (lhs > rhs) - (lhs < rhs)
        if lhs == 0:
            return 0
        sq = self.b * self.b * self.w - d * d  # compare squares of |b√w| and |d|
        return _sign(sq) * lhs

    def __ge__(self, q):
        return self.cmp(q) >= 0

    def __le__(self, q):
        return self.cmp(q) <= 0

    def __repr__(self):
        return f"{self.a} + {self.b}*sqrt({self.w})"


def bn_exact(gamma, mean, var, beta, eps, x):
    """BN(x) = β + γ(x−μ)/√w with w = σ²+ε, as the surd β + (γ(x−μ)/w)·√w."""
    w = F(var) + F(eps)
    return Surd(F(beta), F(gamma) * (F(x) - F(mean)) / w, w)


def scale_times(gamma, var, eps, d):
    """scale·d = γd/√w = (γd/w)·√w."""
    w = F(var) + F(eps)
    return Surd(0, F(gamma) * F(d) / w, w)


def inside(v, lo, hi):
    """lo <= v <= hi for a Surd v and exact rationals lo, hi."""
    return v.cmp(lo) >= 0 and v.cmp(hi) <= 0
