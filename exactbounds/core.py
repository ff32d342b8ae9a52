"""Core types: ``Box`` (TorchLean ``Box``) and ``AffineVec`` (TorchLean ``AffineVec``).

Both hold flat lists of context elements; ``shape`` records the tensor shape they flatten
(row-major). Exact entries are checked on construction (``lo <= hi``, matching lengths).
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any, Self

from flint import fmpq

from .errors import InvalidBoxError, ShapeError
from .numbers import DEFAULT_CONTEXT, RInterval, to_exact

if TYPE_CHECKING:
    from .numbers.contexts import Context


def _shape(shape: Any, n: int, what: str) -> tuple[int, ...]:
    shape = (n,) if shape is None else tuple(int(d) for d in shape)
    if prod(shape) != n:
        raise ShapeError(f"{what}: shape {shape} does not hold {n} entries")
    return shape


def _flat(v: Any) -> Any:
    if isinstance(v, (list, tuple)) and v and isinstance(v[0], (list, tuple)):
        return [u for row in v for u in _flat(row)]
    return list(v)


def _exact_end(x: Any, upper: Any) -> Any:
    if isinstance(x, fmpq):
        return x
    if isinstance(x, RInterval):
        return x.hi if upper else x.lo
    return None


class Box:
    """The set ``{x : lo[i] <= x[i] <= hi[i]}`` (Lean ``Box``). ``lo``/``hi`` are flat lists of
    elements of one context; where both ends are exact (or ``RInterval``), ``lo <= hi`` is
    checked and a violation raises ``InvalidBoxError`` naming the index."""

    __slots__ = ("lo", "hi", "shape")

    def __init__(self, lo: Any, hi: Any, shape: Any = None, name: str = "box") -> None:
        lo, hi = _flat(lo), _flat(hi)
        if len(lo) != len(hi):
            raise ShapeError(f"{name}: lo has {len(lo)} entries, hi has {len(hi)}")
        for i, (a, b) in enumerate(zip(lo, hi)):
            a, b = _exact_end(a, False), _exact_end(b, True)
            if a is not None and b is not None and a > b:
                raise InvalidBoxError(f"{name}: lo[{i}] = {a} > hi[{i}] = {b} (empty box)")
        self.lo, self.hi = lo, hi
        self.shape = _shape(shape, len(lo), name)

    @classmethod
    def from_values(cls, lo: Any, hi: Any, shape: Any = None, name: str = "box") -> Self:
        """A box from user data, every end converted exactly (``to_exact``)."""
        lo, hi = _flat(lo), _flat(hi)
        lo = [to_exact(v, f"{name}.lo[{i}]") for i, v in enumerate(lo)]
        hi = [to_exact(v, f"{name}.hi[{i}]") for i, v in enumerate(hi)]
        return cls(lo, hi, shape, name)

    @property
    def dim(self) -> int:
        return len(self.lo)

    def to_ctx(self, ctx: Context) -> Box:
        """The same box with every end coerced into ``ctx``."""
        return Box([ctx.coerce(v) for v in self.lo], [ctx.coerce(v) for v in self.hi], self.shape)

    def outer(self, ctx: Context = DEFAULT_CONTEXT) -> tuple[list[Any], list[Any]]:
        """Exact ends: ``lower(lo[i])`` and ``upper(hi[i])``; a sound box around every
        enclosure."""
        return [ctx.lower(v) for v in self.lo], [ctx.upper(v) for v in self.hi]

    def contains(self, x: Any, ctx: Context = DEFAULT_CONTEXT) -> bool:
        """Whether the exact point ``x`` lies in the box's outer ends."""
        lo, hi = self.outer(ctx)
        x = _flat(x)
        return len(x) == len(lo) and all(a <= v <= b for a, v, b in zip(lo, x, hi))

    def __repr__(self) -> str:
        return f"Box(lo={self.lo!r}, hi={self.hi!r}, shape={self.shape})"


class AffineVec:
    """An affine form ``x ↦ A·x + c`` with ``A`` of shape out×in and ``c`` of length out
    (Lean ``AffineVec α inDim outDim``). ``A`` is a list of rows."""

    __slots__ = ("A", "c", "in_dim")

    def __init__(self, A: Any, c: Any, in_dim: int | None = None) -> None:
        A = [list(r) for r in A]
        c = list(c)
        if len(A) != len(c):
            raise ShapeError(f"AffineVec: A has {len(A)} rows but c has {len(c)} entries")
        n = len(A[0]) if A else (0 if in_dim is None else int(in_dim))
        for i, r in enumerate(A):
            if len(r) != n:
                raise ShapeError(f"AffineVec: row A[{i}] has {len(r)} entries, expected {n}")
        if in_dim is not None and int(in_dim) != n:
            raise ShapeError(f"AffineVec: in_dim {in_dim} but A has {n} columns")
        self.A, self.c, self.in_dim = A, c, n

    @property
    def out_dim(self) -> int:
        return len(self.c)

    def evaluate(self, x: Any, ctx: Context = DEFAULT_CONTEXT) -> list[Any]:
        """``A·x + c`` at the point ``x``."""
        x = [ctx.coerce(v) for v in _flat(x)]
        if len(x) != self.in_dim:
            raise ShapeError(f"AffineVec.evaluate: x has {len(x)} entries, expected {self.in_dim}")
        out = []
        for row, ci in zip(self.A, self.c):
            acc = ctx.coerce(ci)
            for a, v in zip(row, x):
                acc = acc + ctx.coerce(a) * v
            out.append(acc)
        return out

    def __repr__(self) -> str:
        return f"AffineVec(A={self.A!r}, c={self.c!r})"
