"""Vectorised IBP in the mode ``fast``: a box is four numpy float64 vectors ``FBox(ll, lh, hl,
hh)``: the exact IBP lower end lies in ``[ll, lh]`` and the upper end in ``[hl, hh]`` (so the
result still encloses each end of the exact algorithm's box, as the element-wise path did). Each
step is rounded outward by a-priori error bounds (the rules of :mod:`.fast`), so the IBP driver
never goes through mpmath between nodes.

* affine ``y = Σ_k W_k·x_k + b`` (``W_k ∈ Wm ± Wr``): the exact box's centre ``M0 ∈ c ± ec`` and
  radius ``R0 ∈ ρ ± er`` map to ``M = W·M0 + b`` and ``R = |W|·R0`` with
  ``|M − fl(Wm·c)| <= γ_n·|Wm|·|c| + 2nη + |Wm|·ec + Wr·(|c| + ec)`` (Higham Thm 3.5 with the
  underflow term, then the spread of the balls) and likewise ``R``; one product ``Wm·c`` and
  one ``|Wm|·[ρ, γ_n|c| + ec, γ_n|ρ| + er]`` (the error columns bounded by the rule for
  nonnegative products);
* convolution: the same bound on im2col patches (``n = Cin/G·kh·kw``), never a dense matrix;
* diagonal maps ``y = f ⊙ x + o`` (``Scale``, ``BatchNorm``, constants): elementwise balls;
* ``Add``/``Sub`` of two tensors: one rounded operation per end, stepped outward;
* increasing functions: the float function at each end widened by ``REL_FUNC·|y| + ABS_FUNC``
  (:func:`monotone`); ReLU is exact (``max``).

A ``NaN`` end becomes ``∓inf`` (sound); converting a non-finite end to the context raises
``AmbiguousBranch`` (the run restarts at a higher precision).
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import numpy as np
from flint import fmpq, fmpq_mat
from mpmath.libmp import from_float

from ..errors import AmbiguousBranch
from .fast import (
    ETA,
    U,
    _float_ends_mpi,
    _quiet,
    ball_add,
    ball_emul,
    ball_ends,
    ball_from_ends,
    down,
    float_ends,
    gamma,
    inv_one_minus_gamma,
    mat_ball,
    q_mat_ball,
    up,
    upn,
)

REL_FUNC = 2.0**-40
"""Relative error bound taken for numpy's ``exp``/``tanh`` and the few float operations of
σ(x) = 1/(1 + exp(−x)): ``2^-40`` is over 4000 ulps, a thousand times the documented worst
case of glibc's and numpy's SIMD implementations (<= 4 ulps), and still ~1e-12 relative."""
ABS_FUNC = 2.0**-1000
"""Absolute error bound added to it: covers every result in or near the subnormal range (where
relative accuracy is lost) and σ(x) for x < −709 (exp(−x) overflows, σ is computed as 0, and the
true value is below e^−709 < 2^−1000)."""

FBox = namedtuple("FBox", "ll lh hl hh")
FBox.__doc__ = "Exact lower end in ``[ll, lh]``, exact upper end in ``[hl, hh]`` (float vectors)."


def _nan_out(lo: Any, hi: Any) -> Any:
    """``NaN`` lower ends to ``-inf``, upper ends to ``+inf``."""
    if np.isnan(lo).any():
        lo = np.where(np.isnan(lo), -math.inf, lo)
    if np.isnan(hi).any():
        hi = np.where(np.isnan(hi), math.inf, hi)
    return lo, hi


def _ends_of(mid: Any, rad: Any) -> Any:
    return _nan_out(*ball_ends(mid, rad))


def _pairs(ctx: Any, elems: Any) -> Any:
    """Float vectors ``(lo, hi)`` around each element: exact rationals by one correctly rounded
    division each (stepped outward unless the value is a float), others by their ends."""
    elems = list(elems)
    if all(type(v) is fmpq for v in elems):
        num = [int(v.p) for v in elems]
        den = [int(v.q) for v in elems]
        try:
            f = np.array([p / d for p, d in zip(num, den)], dtype=np.float64)
        except OverflowError:
            f = None
        if f is not None:
            exact = np.array(
                [
                    d & (d - 1) == 0 and d.bit_length() < 1000 and abs(p).bit_length() <= 53
                    for p, d in zip(num, den)
                ],
                dtype=bool,
            )
            if exact.all():
                return f, f.copy()
            return np.where(exact, f, down(f)), np.where(exact, f, up(f))
    pairs = [_float_ends_mpi(v) if hasattr(v, "_mpi_") else float_ends(ctx, v) for v in elems]
    arr = np.array(pairs, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0].copy(), arr[:, 1].copy()


def fbox_from_box(ctx: Any, box: Any) -> Any:
    """The :class:`FBox` of a box of context elements (float ends, outward)."""
    ll, lh = _pairs(ctx, box.lo)
    hl, hh = _pairs(ctx, box.hi)
    return FBox(ll, lh, hl, hh)


def _elems(ctx: Any, a: Any, b: Any) -> Any:
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise AmbiguousBranch("a finite enclosure", (a, b))
    a, b = a.tolist(), b.tolist()
    if ctx.iv is not None and ctx.precision >= 53:
        make = ctx.iv.make_mpf
        return [make((from_float(x), from_float(y))) for x, y in zip(a, b)]
    return [
        ctx.from_ends(fmpq(*x.as_integer_ratio()), fmpq(*y.as_integer_ratio()))
        for x, y in zip(a, b)
    ]


def fbox_to_lists(ctx: Any, f: Any) -> Any:
    """``(lo, hi)`` lists of context elements (exact float ends); a non-finite end raises
    ``AmbiguousBranch``."""
    return _elems(ctx, f.ll, f.lh), _elems(ctx, f.hl, f.hh)


def float_mat(M: Any) -> Any:
    """``(mid, rad, |mid|)`` float arrays enclosing an exact matrix (``rad`` ``None``: exact)."""
    B = mat_ball(M)  # shared with the fast backend's CROWN (converted once)
    return B.mid, B.rad, B.absmid()


def float_vec(M: Any) -> Any:
    """``(mid, rad)`` 1-D float vectors enclosing an exact column (``rad`` ``None``: exact)."""
    mid, rad = q_mat_ball(M)
    return mid.ravel(), (None if rad is None or not rad.any() else rad.ravel())


@_quiet
def _half_sum(a: Any, b: Any, upper: Any) -> Any:
    """A float ``<=`` (``upper``: ``>=``) ``(a + b)/2`` exactly (halving may underflow by
    ``η/2`` each, the sum rounds by ``u·|s|``)."""
    s = a * 0.5 + b * 0.5
    e = upn(np.abs(s) * U + ETA)
    return up(s + e) if upper else down(s - e)


@_quiet
def centre_radius(f: Any) -> Any:
    """Balls ``(c, ec)``, ``(ρ, er)`` containing the exact box's centre ``(lo + hi)/2`` and
    radius ``(hi − lo)/2`` for every ends inside ``f``."""
    c, ec = ball_from_ends(_half_sum(f.ll, f.hl, False), _half_sum(f.lh, f.hh, True))
    rho, er = ball_from_ends(_half_sum(f.hl, -f.lh, False), _half_sum(f.hh, -f.ll, True))
    z = np.zeros_like(c)
    return c, (z if ec is None else ec), rho, (z if er is None else er)


def _up_nonneg(T: Any, k: Any) -> Any:
    """``>=`` the exact product whose float result is ``T`` (nonnegative factors, ``k`` terms)."""
    return upn(upn(T + 2 * k * ETA) * inv_one_minus_gamma(k))


@_quiet
def map_balls(Wm: Any, Wr: Any, Wabs: Any, c: Any, ec: Any, rho: Any, er: Any) -> Any:
    """Balls ``(M, eM)``, ``(R, eR)`` with ``W·M0 ∈ M ± eM`` and ``|W|·R0 ∈ R ± eR`` for every
    ``W ∈ Wm ± Wr``, ``M0 ∈ c ± ec``, ``R0 ∈ ρ ± er`` (vectors, or n×p patch matrices)."""
    n = Wm.shape[1]
    g = gamma(n)
    ac, ar = np.abs(c), np.abs(rho)
    M = Wm @ c
    cols = [rho, upn(upn(ac * g) + ec), upn(upn(ar * g) + er)]
    T = Wabs @ (np.concatenate(cols, axis=1) if c.ndim == 2 else np.stack(cols, axis=1))
    T = T.reshape(T.shape[0], 3, c.shape[1] if c.ndim == 2 else 1)
    R, eM, eR = T[:, 0], _up_nonneg(T[:, 1], n), _up_nonneg(T[:, 2], n)
    tiny = 2 * n * ETA
    eM, eR = upn(eM + tiny), upn(eR + tiny)
    if c.ndim == 1:
        R, eM, eR = R[:, 0], eM[:, 0], eR[:, 0]
    if Wr is not None:
        eM = upn(eM + _up_nonneg(Wr @ upn(ac + ec), n))
        eR = upn(eR + _up_nonneg(Wr @ upn(ar + er), n))
    return M, eM, R, eR


@_quiet
def fbox_from_balls(M: Any, eM: Any, R: Any, eR: Any) -> Any:
    """The :class:`FBox` of ``[M − R, M + R]`` for ``M ∈ M ± eM``, ``R ∈ R ± eR``."""
    ll, lh = _ends_of(*ball_add(M, eM, R, eR, -1))
    hl, hh = _ends_of(*ball_add(M, eM, R, eR))
    return FBox(ll, lh, hl, hh)


def affine_fbox(terms: Any, bias: Any) -> Any:
    """IBP of ``Σ_k W_k·x_k + b``: ``terms = [((Wm, Wr, |Wm|), FBox)]``, ``bias = (bm, br)``
    1-D (``None``: no bias; ``br`` ``None``: exact)."""
    acc: Any = None
    for (Wm, Wr, Wabs), f in terms:
        got = map_balls(Wm, Wr, Wabs, *centre_radius(f))
        acc = got if acc is None else _sum4(acc, got)
    M, eM, R, eR = acc
    if bias is not None:
        M, eM = ball_add(M, eM, *bias)
    return fbox_from_balls(M, eM, R, eR)


def _sum4(a: Any, b: Any) -> Any:
    M, eM = ball_add(a[0], a[1], b[0], b[1])
    R, eR = ball_add(a[2], a[3], b[2], b[3])
    return M, eM, R, eR


@_quiet
def diag_fbox(fm: Any, fr: Any, offset: Any, f: Any) -> Any:
    """IBP of ``f ⊙ x + o`` with ``f ∈ fm ± fr`` (1-D; ``fr`` ``None``: exact), ``offset =
    (om, orad)`` or ``None``."""
    c, ec, rho, er = centre_radius(f)
    M, eM = ball_emul(fm, fr, c, ec if ec.any() else None)
    R, eR = ball_emul(np.abs(fm), fr, rho, er if er.any() else None)
    if offset is not None:
        M, eM = ball_add(M, eM, *offset)
    return fbox_from_balls(
        M, eM if eM is not None else np.zeros_like(M), R, eR if eR is not None else np.zeros_like(R)
    )


@_quiet
def add_fbox(a: Any, b: Any, sign: Any = 1) -> Any:
    """IBP of ``x + y`` (``sign=-1``: ``x − y``): one rounded operation per end, outward."""
    if sign > 0:
        ends = (down(a.ll + b.ll), up(a.lh + b.lh), down(a.hl + b.hl), up(a.hh + b.hh))
    else:
        ends = (down(a.ll - b.hh), up(a.lh - b.hl), down(a.hl - b.lh), up(a.hh - b.ll))
    ll, lh = _nan_out(ends[0], ends[1])
    hl, hh = _nan_out(ends[2], ends[3])
    return FBox(ll, lh, hl, hh)


@_quiet
def func_lower(f: Any, x: Any) -> Any:
    """A float ``<= g(x)`` for the function ``g`` whose float evaluation is ``f`` (error
    ``<= REL_FUNC·|f(x)| + ABS_FUNC``)."""
    y = f(x)
    return down(y - (upn(np.abs(y) * REL_FUNC) + ABS_FUNC))


@_quiet
def func_upper(f: Any, x: Any) -> Any:
    y = f(x)
    return up(y + (upn(np.abs(y) * REL_FUNC) + ABS_FUNC))


def monotone(f: Any, box: Any, lower: Any = -math.inf, upper: Any = math.inf) -> Any:
    """IBP of an increasing ``g`` (float evaluation ``f``) with range in ``[lower, upper]``."""

    def lo(x: Any) -> Any:
        return np.maximum(func_lower(f, x), lower)

    def hi(x: Any) -> Any:
        return np.minimum(func_upper(f, x), upper)

    ll, lh = _nan_out(lo(box.ll), hi(box.lh))
    hl, hh = _nan_out(lo(box.hl), hi(box.hh))
    return FBox(ll, lh, hl, hh)


def sigmoid_float(x: Any) -> Any:
    """σ(x) = 1/(1 + exp(−x)) in float64 (three rounded operations after ``exp``: relative
    error below ``(k + 3)·2u`` for an ``exp`` good to ``k`` ulps)."""
    return 1.0 / (1.0 + np.exp(-x))


def relu_fbox(f: Any) -> Any:
    """``max(·, 0)`` on each end interval (exact)."""
    return FBox(*(np.maximum(v, 0.0) for v in f))


class Im2col:
    """The patch index of a 2-D convolution (``idx``: for group 0, rows ``(c, p, q)``, columns
    ``(i, j)``, the flat input index or ``-1`` in the padding) and the float kernels per group;
    :meth:`fbox` is the IBP of ``W ⋆ x + b`` without a dense matrix."""

    def __init__(self, idx: Any, n_cols: Any, kernels: Any, bias_col: Any, group_in: Any) -> None:
        self.idx = np.asarray(idx, dtype=np.int64).reshape(-1, n_cols)
        self.pad = self.idx < 0
        self.kernels = [float_mat(K) for K in kernels]
        self.bias = float_vec(bias_col)
        self.group_in = group_in

    def _patches(self, v: Any, take: Any) -> Any:
        """The im2col matrix of the vector ``v`` (zeros in the padding)."""
        P = v[take]
        P[self.pad] = 0.0
        return P

    @_quiet
    def fbox(self, f: Any, with_bias: Any = True) -> Any:
        c, ec, rho, er = centre_radius(f)
        parts = []
        for g, (Km, Kr, Kabs) in enumerate(self.kernels):
            take = np.where(self.pad, 0, self.idx + g * self.group_in)
            ps = [self._patches(v, take) for v in (c, ec, rho, er)]
            parts.append(map_balls(Km, Kr, Kabs, *ps))
        M, eM, R, eR = (np.concatenate([p[k].ravel() for p in parts]) for k in range(4))
        if with_bias:
            M, eM = ball_add(M, eM, *self.bias)
        return fbox_from_balls(M, eM, R, eR)


__all__ = [
    "FBox",
    "fbox_from_box",
    "fbox_to_lists",
    "affine_fbox",
    "diag_fbox",
    "add_fbox",
    "affine_floats",
    "diag_floats",
    "float_rad_up",
    "monotone",
    "sigmoid_float",
    "relu_fbox",
    "Im2col",
    "float_mat",
    "float_vec",
    "REL_FUNC",
    "ABS_FUNC",
]


def float_rad_up(M: Any) -> Any:
    """A float array ``>=`` the nonnegative exact matrix ``M`` entrywise."""
    mid, rad = q_mat_ball(M)
    return mid if rad is None or not rad.any() else upn(mid + rad)


def affine_floats(Ws: Any, b: Any, Wr: Any = None, br: Any = None) -> Any:
    """Float coefficients of ``y = Σ_k W_k·x_k + b`` with exact ``W_k`` (``fmpq_mat``/``DyMat``)
    and optional exact radii ``Wr_k``, ``br`` (enclosed coefficients): ``([(Wm, Wrad, |Wm|)],
    (bm, brad))`` for :func:`affine_fbox`."""
    mats = []
    for k, W in enumerate(Ws):
        Wm, Wrad, Wabs = float_mat(W)
        if Wr is not None:
            extra = float_rad_up(Wr[k])
            Wrad = extra if Wrad is None else upn(Wrad + extra)
        mats.append((Wm, Wrad, Wabs))
    bm, brad = float_vec(b)
    if br is not None:
        extra = float_rad_up(br).ravel()
        brad = extra if brad is None else upn(brad + extra)
    return mats, (bm, brad)


def diag_floats(f: Any, o: Any, frad: Any = None, orad: Any = None) -> Any:
    """``(fm, fr, (om, orad))`` float vectors for :func:`diag_fbox` from exact lists: the factor
    ``f``, the offset ``o`` and optionally their exact radii (enclosed coefficients)."""

    def vec(vals: Any, rad: Any) -> Any:
        m, r = float_vec(fmpq_mat(len(vals), 1, list(vals)))
        if rad is not None:
            extra = float_rad_up(fmpq_mat(len(rad), 1, list(rad))).ravel()
            r = extra if r is None else upn(r + extra)
        return m, r

    fm, fr = vec(f, frad)
    return fm, fr, vec(o, orad)
