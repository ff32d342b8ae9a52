"""The forward affine step through a structured map (:mod:`.structured`) in float64 balls.

For forms ``L·x + l <= z_k <= U·x + u`` of the inputs (ball matrices, rows the entries of
``z_k``, columns the network input and then the constant), the output ``y = Σ_k W_k·z_k + b``
gets ``L' = Σ_k W_k⁺·L_k + W_k⁻·U_k`` and ``U' = Σ_k W_k⁺·U_k + W_k⁻·L_k`` (one product ``W_k·X``
while ``L_k = U_k``). ``W·X`` is the part's own ``fwd`` on the columns of ``X`` (a convolution
maps them as that many images), with the kernel's positive or negative entries. The radius is
``γ_n·|W|·|Xm| + |W|·Xr + 2nη`` by the same operation on nonnegative arrays, rounded up (``n``
the terms of one output entry; Higham's bound in any summation order), as in
``FastBackend.lin_rmul``; weights that are not floats (``1/9`` of a pool) enter as balls.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .fast import (
    ETA,
    Ball,
    _kmap,
    _nonneg_up,
    _quiet,
    _sanitize,
    gamma,
    part_kernels,
    radius_with_kr,
    upn,
)
from .structured import ChainPart, ConvPart, DiagPart, GatherPart, SparsePart


def fwd_terms(part: Any) -> int:
    """The largest number of products summed into one entry of ``W·x``."""
    if isinstance(part, ConvPart):
        g = part.g
        return g.cg * g.kh * g.kw
    if isinstance(part, SparsePart):
        return max(int(np.bincount(part.rows).max()), 1) if len(part.rows) else 1
    return 1


def _kernels(part: Any) -> Any:
    """``{"all"|"pos"|"neg": (K, |K|, Kr)}`` float kernels of ``part`` with the exact weights
    (all, their positive parts, their negative parts) in ``K ± Kr`` (``Kr`` ``None``: exact;
    ``max(Km, 0) ± Kr`` holds ``W⁺`` for every ``W`` in ``Km ± Kr``); ``(None, None, None)`` when
    the part only copies entries; ``None`` for an empty side."""
    got = getattr(part, "_fwd_k", None)
    if got is not None:
        return got
    Km, Kr, Kabs = part_kernels(part)
    if Km is None:
        out = {"all": (None, None, None), "pos": (None, None, None), "neg": None}
        if isinstance(part, DiagPart) and part.sign < 0:
            out = {"all": (None, None, None), "pos": None, "neg": (None, None, None)}
    else:
        pos = _kmap(lambda k: np.maximum(k, 0.0), Km)
        neg = _kmap(lambda k: np.minimum(k, 0.0), Km)
        out = {"all": (Km, Kabs, Kr), "pos": (pos, pos, Kr), "neg": (neg, Kabs, Kr)}
    part._fwd_k = out
    return out


def _copies(part: Any) -> bool:
    return isinstance(part, GatherPart) or (isinstance(part, DiagPart) and part.f is None)


@_quiet
def part_apply(part: Any, which: str, X: Ball) -> Any:
    """``W·X`` (``W`` the part's ``which`` kernel: all, positive or negative entries) as a
    :class:`Ball`, or ``0`` (an int) when that kernel is empty. The radius:
    ``γ_n·|Xm|·|Km| + Xr·|Km| + (|Xm| + Xr)·Kr + 2nη`` as two products on nonnegative arrays,
    rounded up."""
    pair = _kernels(part)[which]
    if pair is None:
        return 0
    K, Kabs, Kr = pair
    Xm = np.ascontiguousarray(X.mid.T)
    Xr = None if X.rad is None else np.ascontiguousarray(X.rad.T)
    mid = np.ascontiguousarray(part.fwd(Xm, K).T)
    if _copies(part):  # copies and sign changes only: exact
        rad = None if Xr is None else np.ascontiguousarray(np.abs(part.fwd(Xr, K)).T)
        return Ball(mid, rad)
    n = fwd_terms(part)
    A = np.abs(Xm)
    if Kr is None:
        g = gamma(n)
        X1 = upn(A * g) if Xr is None else upn(upn(A * g) + Xr)
        rad = _nonneg_up(part.fwd(X1, Kabs), n)
    else:
        rad = radius_with_kr(part.fwd, A, Xr, Kabs, Kr, n)
    rad = upn(rad + 2 * n * ETA)
    return Ball.make(_sanitize(mid, np.ascontiguousarray(rad.T)))


def _nonneg(part: Any) -> bool:
    """Whether every exact weight of ``part`` is ``>= 0`` (its ball's lower end)."""
    ks = _kernels(part)
    if ks["neg"] is None:
        return True
    K, _, Kr = ks["all"]
    if K is None:
        return False
    rs = _as_list(Kr) if Kr is not None else [0.0] * len(_as_list(K))
    return all(bool(np.all(k - r >= 0)) for k, r in zip(_as_list(K), rs))


def _apply(part: Any, which: str, X: Ball) -> Any:
    """``W·X`` through a chain (``W = W_1·W_2·…``: ``W_2`` first); a chain's ``pos``/``neg``
    are taken only when every part is nonnegative (averages)."""
    if not isinstance(part, ChainPart):
        return part_apply(part, which, X)
    if which != "all" and not all(_nonneg(p) for p in part.parts):
        return None
    if which == "neg":
        return 0
    Y: Any = X
    for p in reversed(part.parts):
        Y = part_apply(p, "all", Y)
        if Y is None:
            return None
    return Y


def _as_list(K: Any) -> list[Any]:
    return K if isinstance(K, list) else [K]


def _plus(a: Any, b: Any) -> Any:
    if isinstance(a, int):
        return b
    if isinstance(b, int):
        return a
    return a + b


def lin_forward(be: Any, lin: Any, forms: Any, n: int) -> Any:
    """The output's forms ``(L, l, U, u)`` of the structured map ``lin`` from its inputs'
    forms (see the module docstring), or ``None`` (the dense step follows)."""
    acc_lo: Any = 0
    acc_hi: Any = 0
    same_all = True
    for part, (iL, il, iU, iu) in zip(lin.parts, forms):
        if part is None:
            continue
        XL = Ball.make(_hcat(iL, il))
        if iL is iU and il is iu:
            Y = _apply(part, "all", XL)
            if Y is None:
                return None
            acc_lo, acc_hi = _plus(acc_lo, Y), _plus(acc_hi, Y)
            continue
        same_all = False
        XU = Ball.make(_hcat(iU, iu))
        got = [_apply(part, w, X) for w, X in (("pos", XL), ("neg", XU), ("pos", XU), ("neg", XL))]
        if any(g is None for g in got):
            return None
        acc_lo = _plus(acc_lo, _plus(got[0], got[1]))
        acc_hi = _plus(acc_hi, _plus(got[2], got[3]))
    b = be.mat(lin.b)
    e = None if lin.b_rad is None else be.mat(lin.b_rad)  # an enclosed bias b ± e
    out = []
    for acc, sign in ((acc_lo, -1), (acc_hi, 1)):
        if isinstance(acc, int):
            acc = Ball(np.zeros((b.nrows(), n + 1)))
        L = Ball(acc.mid[:, :n], None if acc.rad is None else acc.rad[:, :n])
        c = Ball(acc.mid[:, n:], None if acc.rad is None else acc.rad[:, n:]) + b
        if e is None and same_all:
            return L, c, L, c
        out += [L, c if e is None else (c - e if sign < 0 else c + e)]
    return tuple(out)


def _hcat(A: Any, c: Any) -> tuple[Any, Any]:
    mid = np.hstack([A.mid, c.mid])
    if A.rad is None and c.rad is None:
        return mid, None
    ra = np.zeros_like(A.mid) if A.rad is None else A.rad
    rc = np.zeros_like(c.mid) if c.rad is None else c.rad
    return mid, np.hstack([ra, rc])
