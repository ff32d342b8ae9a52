"""Input sets: a box (:class:`exactbounds.core.Box`) and ``LpBall(center, radius, norm)`` with
``norm`` in ``"inf"``, ``"1"``, ``"2"``: ``{x : ‖x − center‖_p <= radius}``.

For every set ``S`` (module functions that accept a Box or an LpBall; an LpBall also has them as
methods):

``bounding_box(S)``        the smallest box containing ``S`` (``center ± radius`` for every p);
``contains(S, x)``         exact membership of a rational point;
``concretize(S, A, c)``    ``(lo, hi)`` with ``lo_i <= min_{x∈S} (A·x + c)_i`` and
                           ``hi_i >= max``: equal for boxes, L∞ and L1 balls
                           (``A·center + c ∓ r·‖A_i‖_dual``); for L2 balls the norm
                           ``‖A_i‖₂ = √(Σ A_ij²)`` is a square root, rounded upward (outward);
``sample(S, rng, n)``      ``n`` random exact rational points inside ``S``;
``vertices(S, limit)``     the vertices: box/L∞ corners (all when ``2^n <= limit``, else
                           ``limit`` random ones plus the two extreme corners), the ``2n`` L1
                           vertices ``center ± r·e_i``; for L2 (no vertices) the ``2n`` points
                           ``center ± r·e_i`` on the sphere;
``corner(S, signs)``       the box corner (L∞ corner, L1/L2 axis point) of a sign pattern;
``minimizer(S, a)``        an exact point of ``S`` minimising ``a·x`` (exact where the set
                           allows; for L2 the norm is rounded up so the point stays inside);
``sample_mixed(S, rng, n)`` the audit's random candidates (box: vertices and dyadic points).
``concretize_mat`` is the matrix form the algorithms use (see ``exactbounds/linalg/backends.py``).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from flint import fmpq

from .core import Box, _flat, _shape
from .errors import InvalidBoxError, InvalidValueError, ShapeError
from .numbers import DEFAULT_CONTEXT, RInterval, sqrt_enclosure, to_exact

if TYPE_CHECKING:
    from .numbers.contexts import Context

NORMS = ("inf", "1", "2")
_NORM_ALIASES = {
    "inf": "inf",
    "linf": "inf",
    "Linf": "inf",
    "1": "1",
    "l1": "1",
    "L1": "1",
    "2": "2",
    "l2": "2",
    "L2": "2",
}


def _norm_name(norm: str) -> str:
    if isinstance(norm, (int, float)) and not isinstance(norm, bool):
        norm = "inf" if norm == float("inf") else str(int(norm)) if norm in (1, 2) else norm
    key = _NORM_ALIASES.get(str(norm))
    if key is None:
        raise InvalidValueError("norm", norm, "expected 'inf', '1' or '2'")
    return key


def _sqrt_hi(v: Any, bits: int) -> Any:
    s = sqrt_enclosure(v, bits)
    return s.hi if isinstance(s, RInterval) else s


class LpBall:
    """``{x : ‖x − center‖_p <= radius}``; ``center`` entries and ``radius >= 0`` enter exactly."""

    def __init__(
        self, center: Any, radius: Any, norm: str = "inf", shape: Any = None, name: str = "input"
    ) -> None:
        c = _flat(center)
        if not c:
            raise ShapeError(f"{name}.center is empty")
        self.center = [to_exact(v, f"{name}.center[{i}]") for i, v in enumerate(c)]
        self.radius = to_exact(radius, f"{name}.radius")
        if self.radius < 0:
            raise InvalidBoxError(f"{name}.radius = {self.radius}: must be >= 0")
        self.norm = _norm_name(norm)
        self.shape = _shape(shape, len(self.center), name)
        self.name = name

    @property
    def dim(self) -> int:
        return len(self.center)

    def bounding_box(self) -> Box:
        r = self.radius
        return Box([v - r for v in self.center], [v + r for v in self.center], self.shape)

    def contains(self, x: Any) -> bool:
        x = [to_exact(v) for v in _flat(x)]
        if len(x) != self.dim:
            return False
        d = [a - b for a, b in zip(x, self.center)]
        if self.norm == "inf":
            return all(abs(t) <= self.radius for t in d)
        if self.norm == "1":
            return sum((abs(t) for t in d), fmpq(0)) <= self.radius
        return sum((t * t for t in d), fmpq(0)) <= self.radius * self.radius

    def dual_norm_upper(self, row: Any, bits: int = 128) -> Any:
        """An exact upper bound on ``‖row‖_q`` (q dual to p); exact unless p = 2."""
        if self.norm == "inf":
            return sum((abs(a) for a in row), fmpq(0))
        if self.norm == "1":
            return max((abs(a) for a in row), default=fmpq(0))
        return _sqrt_hi(sum((a * a for a in row), fmpq(0)), bits)

    def concretize(self, A: Any, c: Any, ctx: Context = DEFAULT_CONTEXT) -> tuple[Any, ...]:
        A = [[to_exact(v) for v in r] for r in A]
        c = [to_exact(v) for v in c]
        bits = ctx.sqrt_bits
        lo, hi = [], []
        for row, ci in zip(A, c):
            if len(row) != self.dim:
                raise ShapeError(
                    f"concretize: a row has {len(row)} entries, the set has {self.dim}"
                )
            m = ci + sum((a * x for a, x in zip(row, self.center)), fmpq(0))
            d = self.radius * self.dual_norm_upper(row, bits)
            lo.append(m - d)
            hi.append(m + d)
        return lo, hi

    def sample(self, rng: Any = None, n: int = 1, den: int = 2**16) -> Any:
        rng = rng or random.Random(0)
        out = []
        for _ in range(n):
            d = [fmpq(rng.randint(-den, den), den) for _ in range(self.dim)]
            t = fmpq(rng.randint(0, den), den)
            if self.norm == "inf":
                scale = self.radius
            else:
                nrm = (
                    self.dual_norm_upper(d, 64)
                    if self.norm == "2"
                    else sum((abs(a) for a in d), fmpq(0))
                )
                if self.norm == "2":
                    nrm = _sqrt_hi(sum((a * a for a in d), fmpq(0)), 64)
                scale = self.radius / nrm if nrm != 0 else fmpq(0)
            out.append([x + t * scale * a for x, a in zip(self.center, d)])
        return out

    def corner(self, signs: Any) -> Any:
        if self.norm == "inf":
            return [
                x + (self.radius if s > 0 else -self.radius) for x, s in zip(self.center, signs)
            ]
        k = next((i for i, s in enumerate(signs) if s != 0), 0)
        p = list(self.center)
        p[k] = p[k] + (self.radius if signs[k] > 0 else -self.radius)
        return p

    def vertices(self, limit: int = 64, rng: Any = None) -> Any:
        if self.norm == "inf":
            return _box_vertices(self.bounding_box(), limit, rng)
        pts = []
        for i in range(self.dim):
            for s in (1, -1):
                p = list(self.center)
                p[i] = p[i] + s * self.radius
                pts.append(p)
        return pts

    def __repr__(self) -> str:
        return f"LpBall(norm={self.norm}, radius={self.radius}, dim={self.dim})"


def _box_vertices(box: Box, limit: int = 64, rng: Any = None) -> Any:
    lo, hi = box.outer()
    n = len(lo)
    if 2**n <= limit:
        return [[hi[i] if (k >> i) & 1 else lo[i] for i in range(n)] for k in range(2**n)]
    rng = rng or random.Random(0)
    pts = [list(lo), list(hi)]
    for _ in range(max(0, limit - 2)):
        pts.append([h if rng.random() < 0.5 else a for a, h in zip(lo, hi)])
    return pts


def bounding_box(S: Any) -> Box:
    return S if isinstance(S, Box) else S.bounding_box()


def contains(S: Any, x: Any, constraints: Any = ()) -> bool:
    """Whether the exact point ``x`` lies in ``S`` and satisfies every extra linear constraint
    (objects with ``holds(x)``, e.g. the ``LinearComparison`` of a VNN-LIB polytope)."""
    inside = S.contains([to_exact(v) for v in x]) if isinstance(S, Box) else S.contains(x)
    return inside and all(c.holds(x) for c in constraints)


def concretize(S: Any, A: Any, c: Any, ctx: Context = DEFAULT_CONTEXT) -> Any:
    if not isinstance(S, Box):
        return S.concretize(A, c, ctx)
    lo, hi = S.outer()
    out_lo, out_hi = [], []
    for row, ci in zip(A, c):
        row = [to_exact(v) for v in row]
        if len(row) != len(lo):
            raise ShapeError(f"concretize: a row has {len(row)} entries, the box has {len(lo)}")
        ci = to_exact(ci)
        out_lo.append(ci + sum((a * (l if a >= 0 else h) for a, l, h in zip(row, lo, hi)), fmpq(0)))
        out_hi.append(ci + sum((a * (h if a >= 0 else l) for a, l, h in zip(row, lo, hi)), fmpq(0)))
    return out_lo, out_hi


def sample(S: Any, rng: Any = None, n: int = 1, den: int = 2**16) -> Any:
    if not isinstance(S, Box):
        return S.sample(rng, n, den)
    rng = rng or random.Random(0)
    lo, hi = S.outer()
    return [
        [a + (b - a) * fmpq(rng.randint(0, den), den) for a, b in zip(lo, hi)] for _ in range(n)
    ]


def sample_mixed(S: Any, rng: Any, n: int) -> Any:
    """``n`` exact points of ``S``: for a box, alternately a random vertex and a random dyadic
    interior point (offsets ``k/2^20`` of the width, ``k`` uniform in ``0..2^20``); for a ball,
    :meth:`LpBall.sample`. The audit's random witness candidates."""
    if not isinstance(S, Box):
        return [list(p) for p in S.sample(rng, n)]
    out = []
    for k in range(n):
        if k % 2 == 0:
            out.append([a if rng.random() < 0.5 else b for a, b in zip(S.lo, S.hi)])
        else:
            out.append(
                [a + (b - a) * fmpq(rng.randrange(2**20 + 1), 2**20) for a, b in zip(S.lo, S.hi)]
            )
    return out


def minimizer(S: Any, coeffs: Any) -> Any:
    """An exact point of ``S`` minimising ``Σ coeffs[j]·x[j]`` (coefficients exact rationals or
    ``RInterval`` enclosures, taken at their midpoints). Box / L∞ ball: the corner ``lo_j``
    where the coefficient is positive, ``hi_j`` where negative, the middle where it is 0 or its
    sign undecided; L1 ball: ``center - r·sign(a_k)·e_k`` with ``|a_k|`` largest; L2 ball:
    ``center - r·a/N`` with ``N >= ‖a‖₂`` (the square root rounded up: the point is inside)."""
    signs = [_sign(c) for c in coeffs]
    norm = getattr(S, "norm", "inf")
    if isinstance(S, Box) or norm == "inf":
        bb = bounding_box(S)
        return [a if s > 0 else b if s < 0 else (a + b) / 2 for s, a, b in zip(signs, bb.lo, bb.hi)]
    c, r = list(S.center), S.radius
    a = [_mid(v) for v in coeffs]
    if not any(a):
        return c
    if norm == "1":
        k = max(range(len(a)), key=lambda j: abs(a[j]))
        c[k] = c[k] - r * (1 if a[k] > 0 else -1)
        return c
    N = _sqrt_hi(sum((v * v for v in a), fmpq(0)), 64)
    return [x - r * v / N for x, v in zip(c, a)]


def _mid(c: Any) -> Any:
    return (c.lo + c.hi) / 2 if isinstance(c, RInterval) else c


def _sign(c: Any) -> int:
    lo, hi = (c.lo, c.hi) if isinstance(c, RInterval) else (c, c)
    return 1 if lo > 0 else -1 if hi < 0 else 0


def vertices(S: Any, limit: int = 64, rng: Any = None) -> Any:
    return _box_vertices(S, limit, rng) if isinstance(S, Box) else S.vertices(limit, rng)


def corner(S: Any, signs: Any) -> Any:
    if not isinstance(S, Box):
        return S.corner(signs)
    lo, hi = S.outer()
    return [h if s > 0 else a for a, h, s in zip(lo, hi, signs)]


def concretize_mat(
    S: Any, be: Any, A: Any, c: Any, upper: Any, ctx: Context = DEFAULT_CONTEXT
) -> Any:
    """``min`` (``upper=False``) or ``max`` over ``S`` of ``A·x + c`` for a backend matrix ``A``
    (m×n) and column ``c``: a backend column, sound (outward) and exact where the set allows."""
    sgn = 1 if upper else -1
    if isinstance(S, Box):
        mid_q, rad, same = _box_centre(S)
        mid = be.col(mid_q)
        if same:
            dev = be.abs_rowsum(A) * be.const(rad[0])
        else:
            dev = be.abs_dot(A, rad)
        return A * mid + c + dev if upper else A * mid + c - dev
    m, n = A.nrows(), A.ncols()
    es = be.entries(A)
    base = A * be.col(S.center) + c
    r = be.const(S.radius)
    bits = ctx.sqrt_bits
    if S.norm == "inf":
        dual = be.abs_rowsum(A)
    elif S.norm == "1":
        dual = be.from_entries(m, 1, [_max_abs(be, es[i * n : (i + 1) * n]) for i in range(m)])
    else:
        sq = be.from_entries(m, n, [v * v for v in es]) * be.col([fmpq(1)] * n)
        dual = be.from_entries(m, 1, [be.sqrt_upper(v, bits)[0] for v in be.entries(sq)])
    return base + dual * r if sgn > 0 else base - dual * r


_CENTRES: dict[int, tuple[Any, ...]] = {}


def _box_centre(S: Box) -> tuple[Any, ...]:
    """``(centre, radius, all radii equal)`` of a box as exact lists, kept for the last few
    boxes (the same lists each time, so a backend converts them once)."""
    got = _CENTRES.get(id(S))
    if got is None or got[0] is not S:
        lo, hi = S.outer()
        rad = [(b - a) / 2 for a, b in zip(lo, hi)]
        got = (S, [(a + b) / 2 for a, b in zip(lo, hi)], rad, all(r == rad[0] for r in rad))
        if len(_CENTRES) >= 8:
            _CENTRES.pop(next(iter(_CENTRES)))
        _CENTRES[id(S)] = got
    return got[1], got[2], got[3]


def _max_abs(be: Any, row: Any) -> Any:
    if be.exact:
        return max((abs(v) for v in row), default=fmpq(0))
    best = None
    for v in row:
        a = abs(v)
        best = a if best is None else best.max(a) if hasattr(best, "max") else a
    return best if best is not None else be.const(fmpq(0))


__all__ = [
    "Box",
    "LpBall",
    "NORMS",
    "bounding_box",
    "contains",
    "concretize",
    "concretize_mat",
    "sample",
    "sample_mixed",
    "minimizer",
    "vertices",
    "corner",
]
