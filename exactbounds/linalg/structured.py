"""Structured linear maps: the coefficients ``W_k`` of an affine operator held as what they are
(a convolution kernel, a 0/1 selection, a diagonal), so that CROWN's step ``Λ ↦ Λ·W_k`` and the
forward step ``X ↦ W_k·X`` never build the dense ``out × in`` matrix.

A :class:`LinearMap` is ``y = Σ_k W_k·x_k + b`` with one *part* per input (``None``: the input
does not enter) and the exact bias column ``b`` (``fmpq_mat``). A part maps rows:
``back(X, K)`` is ``X·W`` for a 2-D array ``X`` (``m × out``) and ``K`` the part's kernel in the
representation of ``X`` (float arrays, or object arrays of Python ints or ``fmpq``: the same code
runs exactly); ``fwd(X, K)`` is ``X·Wᵀ`` (each row an input, mapped: ``W·Xᵀ`` transposed).

* :class:`ConvPart`: a 2-D convolution (stride, padding, dilation, groups). ``X·W`` is a
  transposed convolution of the rows: per group, ``Kᵀ`` times the output maps (an ``og``-term
  product) and a col2im scatter-add of the ``kh·kw`` kernel offsets, each a strided slice;
  every input entry is a sum of at most ``n = og·kh·kw`` products.
* :class:`GatherPart`: ``y[i] = x[src[i]]`` on the outputs ``dst``: ``X·W`` copies columns
  (a scatter-add where a source is read twice: at most ``n`` = its multiplicity terms).
* :class:`DiagPart`: ``y = f ⊙ x`` (``f`` ``None``: the identity).
* :class:`ChainPart`: ``W = W_1·W_2·…`` (``X·W = ((X·W_1)·W_2)…``; average pooling is a
  diagonal of ``1/n`` after a depthwise convolution of ones).

The error bounds of the float products live in the backends (``FastBackend.lin_rmul``): every
part says how many terms (``n``) enter one entry, and the same structured operation on absolute
values gives ``|X|·|W|``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flint import fmpq, fmpq_mat

from .dymat import DyMat, dyadic_parts


class ConvGeom:
    """The geometry of a 2-D convolution: input ``(C, H, W)``, output ``(cout, ho, wo)``, kernel
    ``(kh, kw)``, stride, dilation, padding ``(top, left)``, groups; ``Hp``/``Wp`` the padded
    input that holds every window."""

    def __init__(
        self,
        in_shape: Any,
        out_shape: Any,
        kernel: Any,
        stride: Any,
        dilation: Any,
        pad_tl: Any,
        groups: int,
    ) -> None:
        self.C, self.H, self.W = in_shape
        self.cout, self.ho, self.wo = out_shape
        self.kh, self.kw = kernel
        self.sh, self.sw = stride
        self.dh, self.dw = dilation
        self.pt, self.pl = pad_tl
        self.G = groups
        self.cg, self.og = self.C // groups, self.cout // groups
        self.Hp = self.pt + max(
            self.H, (self.ho - 1) * self.sh + (self.kh - 1) * self.dh + 1 - self.pt
        )
        self.Wp = self.pl + max(
            self.W, (self.wo - 1) * self.sw + (self.kw - 1) * self.dw + 1 - self.pl
        )

    def window(self, p: int, q: int) -> tuple[slice, slice]:
        """The strided slices of the padded input read by the kernel offset ``(p, q)``."""
        return (
            slice(p * self.dh, p * self.dh + (self.ho - 1) * self.sh + 1, self.sh),
            slice(q * self.dw, q * self.dw + (self.wo - 1) * self.sw + 1, self.sw),
        )


def _zeros(shape: Any, like: Any) -> Any:
    return np.zeros(shape, dtype=like.dtype)


class ConvPart:
    """``W``: the convolution of :class:`ConvGeom` ``g`` with the kernels ``K[grp]``
    (``og × cg·kh·kw``, rows ``o``, columns ``(c, p, q)``)."""

    def __init__(self, g: ConvGeom, kernels: Any) -> None:
        self.g = g
        self.kernels = kernels  # exact DyMat / fmpq_mat per group
        self.n_in = g.C * g.H * g.W
        self.n_out = g.cout * g.ho * g.wo
        self.n = g.og * g.kh * g.kw
        self._k32: Any = None  # the float32 kernel of the fast backend's radius products

    def back(self, X: Any, K: Any) -> Any:
        """``X·W`` (``X``: ``m × out``): the transposed convolution of every row, channels last:
        per group and kernel offset ``(p, q)`` one product ``(m·P × og)·(og × cg)`` added into a
        strided slice of the padded input."""
        g, m = self.g, X.shape[0]
        Yt = X.reshape(m, g.cout, g.ho * g.wo).transpose(0, 2, 1).reshape(m * g.ho * g.wo, g.cout)
        out = _zeros((m, g.Hp, g.Wp, g.C), X)
        for grp in range(g.G):
            Yg = Yt[:, grp * g.og : (grp + 1) * g.og]
            Kg = K[grp].reshape(g.og, g.cg, g.kh, g.kw)
            chans = slice(grp * g.cg, (grp + 1) * g.cg)
            for p in range(g.kh):
                for q in range(g.kw):
                    a, b = g.window(p, q)
                    T = (Yg @ Kg[:, :, p, q]).reshape(m, g.ho, g.wo, g.cg)
                    out[:, a, b, chans] += T
        out = out[:, g.pt : g.pt + g.H, g.pl : g.pl + g.W, :].transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out).reshape(m, self.n_in)

    def fwd(self, X: Any, K: Any) -> Any:
        """``X·Wᵀ`` (``X``: ``m × in``): every row convolved, channels last (per group and kernel
        offset one product of a strided slice of the padded input by ``(cg × og)``)."""
        g, m = self.g, X.shape[0]
        Xp = _zeros((m, g.Hp, g.Wp, g.C), X)
        Xp[:, g.pt : g.pt + g.H, g.pl : g.pl + g.W, :] = X.reshape(m, g.C, g.H, g.W).transpose(
            0, 2, 3, 1
        )
        out = _zeros((m, g.ho, g.wo, g.cout), X)
        for grp in range(g.G):
            Kg = K[grp].reshape(g.og, g.cg, g.kh, g.kw)
            chans = slice(grp * g.cg, (grp + 1) * g.cg)
            acc = out[:, :, :, grp * g.og : (grp + 1) * g.og]
            for p in range(g.kh):
                for q in range(g.kw):
                    a, b = g.window(p, q)
                    acc += Xp[:, a, b, chans] @ Kg[:, :, p, q].T
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2)).reshape(m, self.n_out)

    # kernels in each representation ------------------------------------------------------
    def float_kernel(self, q_mat_ball: Any) -> Any:
        """``(Km, Kr)``: per group float arrays with every weight in ``Km ± Kr`` (``Kr`` ``None``
        when every weight is a float); ``q_mat_ball`` encloses an exact matrix
        (:func:`exactbounds.linalg.fast.q_mat_ball`)."""
        got = [q_mat_ball(K) for K in self.kernels]
        Km = [m for m, _ in got]
        if not any(r is not None and r.any() for _, r in got):
            return Km, None
        return Km, [np.zeros_like(m) if r is None else r for m, r in got]

    def exact_kernel(self) -> Any:
        """``(K, e)``: per group object arrays of Python ints with the weights ``K·2^e`` when every
        weight is dyadic (``e`` shared), else ``(K, None)`` with ``fmpq`` entries."""
        if all(isinstance(K, DyMat) for K in self.kernels):
            e = min(K.e for K in self.kernels)
            return [
                _obj([int(v) << (K.e - e) for v in K.M.entries()], K.nrows(), K.ncols())
                for K in self.kernels
            ], e
        qs = [K.to_q() if isinstance(K, DyMat) else K for K in self.kernels]
        return [_obj(Q.entries(), Q.nrows(), Q.ncols()) for Q in qs], None


class GatherPart:
    """``W[dst[t], src[t]] = 1``: the outputs ``dst`` read the input entries ``src``."""

    def __init__(self, n_in: int, n_out: int, dst: Any, src: Any) -> None:
        self.n_in, self.n_out = n_in, n_out
        self.dst = np.asarray(dst, dtype=np.int64)
        self.src = np.asarray(src, dtype=np.int64)
        counts = np.bincount(self.src, minlength=n_in) if len(self.src) else np.zeros(1, int)
        self.n = int(counts.max()) if len(self.src) else 1
        self.unique = self.n <= 1

    def back(self, X: Any, K: Any = None) -> Any:
        out = _zeros((X.shape[0], self.n_in), X)
        if self.unique:
            out[:, self.src] = X[:, self.dst]
        else:
            np.add.at(out.T, self.src, X[:, self.dst].T)  # columns, into the view
        return out

    def fwd(self, X: Any, K: Any = None) -> Any:
        out = _zeros((X.shape[0], self.n_out), X)
        out[:, self.dst] = X[:, self.src]
        return out

    def float_kernel(self, q_mat_ball: Any) -> Any:
        return None, None

    def exact_kernel(self) -> Any:
        return None, 0


class DiagPart:
    """``W = diag(f)`` (exact values ``f``; ``None``: the identity; ``sign`` −1: its negative).
    With ``rad`` (exact radii ``>= 0``, an enclosed diagonal such as BatchNorm's irrational
    ``γ/√(σ²+ε)``) the true coefficients are somewhere in ``f ± rad``: the float kernel is a
    ball holding all of them, and the exact backends take the dense step with its error term
    (:func:`exact_cheap` is false)."""

    def __init__(self, n: int, f: Any = None, sign: int = 1, rad: Any = None) -> None:
        self.n_in = self.n_out = n
        self.f = f
        self.sign = sign
        self.rad = rad
        self.n = 1
        self.unique = f is None

    def back(self, X: Any, K: Any = None) -> Any:
        if K is None:
            return X * self.sign if self.sign < 0 else X.copy()
        return X * K[None, :]

    fwd = back

    def float_kernel(self, q_mat_ball: Any) -> Any:
        if self.f is None:
            return None, None
        m, r = q_mat_ball(fmpq_mat(self.n_in, 1, [self.sign * v for v in self.f]))
        if self.rad is not None:  # the enclosure's radius, rounded up: r + rad <= r'
            em, er = q_mat_ball(fmpq_mat(self.n_in, 1, list(self.rad)))
            extra = em if er is None else np.nextafter(em + er, np.inf)
            r = extra if r is None else np.nextafter(r + extra, np.inf)
        return m.ravel(), (None if r is None or not r.any() else r.ravel())

    def exact_kernel(self) -> Any:
        if self.rad is not None:
            raise ValueError("an enclosed diagonal has no exact kernel (see exact_cheap)")
        if self.f is None:
            return None, 0
        vals = [self.sign * v for v in self.f]
        parts = [dyadic_parts(v) for v in vals]
        if all(p is not None for p in parts):
            e = min((k for mm, k in parts if mm), default=0)
            return _obj([mm << (k - e) for mm, k in parts], 1, len(vals)).ravel(), e
        return _obj([fmpq(v) for v in vals], 1, len(vals)).ravel(), None


class SparsePart:
    """A sparse exact matrix ``W`` (``out × in``) held as its nonzero entries ``(i, j, v)``:
    ``X·W`` is a scatter-add of ``X[:, i]·v`` into the columns ``j`` (at most ``n`` terms, the
    largest column count)."""

    def __init__(self, W: Any) -> None:
        Q = W.to_q() if isinstance(W, DyMat) else W
        self.n_out, self.n_in = Q.nrows(), Q.ncols()
        es = Q.entries()
        nz = [t for t, v in enumerate(es) if v != 0]
        self.rows = np.array([t // self.n_in for t in nz], dtype=np.int64)
        self.cols = np.array([t % self.n_in for t in nz], dtype=np.int64)
        self.vals = [es[t] for t in nz]
        counts = np.bincount(self.cols, minlength=1) if nz else np.zeros(1, int)
        self.n = max(int(counts.max()), 1)
        self.unique = False

    def back(self, X: Any, K: Any) -> Any:
        out = _zeros((X.shape[0], self.n_in), X)
        np.add.at(out.T, self.cols, (X[:, self.rows] * K[None, :]).T)
        return out

    def fwd(self, X: Any, K: Any) -> Any:
        out = _zeros((X.shape[0], self.n_out), X)
        np.add.at(out.T, self.rows, (X[:, self.cols] * K[None, :]).T)
        return out

    def float_kernel(self, q_mat_ball: Any) -> Any:
        if not self.vals:
            return np.zeros(0), None
        m, r = q_mat_ball(fmpq_mat(len(self.vals), 1, self.vals))
        return m.ravel(), (None if r is None or not r.any() else r.ravel())

    def exact_kernel(self) -> Any:
        parts = [dyadic_parts(v) for v in self.vals]
        if all(p is not None for p in parts):
            e = min((k for mm, k in parts if mm), default=0)
            return _obj([mm << (k - e) for mm, k in parts], 1, len(parts)).ravel(), e
        return _obj(self.vals, 1, len(self.vals)).ravel(), None


def density(W: Any) -> float:
    """The fraction of nonzero entries of an exact matrix."""
    Q = W.to_q() if isinstance(W, DyMat) else W
    n = Q.nrows() * Q.ncols()
    return sum(1 for v in Q.entries() if v != 0) / n if n else 1.0


class ChainPart:
    """``W = W_1·W_2·…`` (``parts`` in that order; ``X·W`` applies ``W_1`` first)."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts
        self.n_in, self.n_out = parts[-1].n_in, parts[0].n_out


class LinearMap:
    """``y = Σ_k W_k·x_k + b``: ``parts[k]`` (a part, or ``None`` when input ``k`` does not enter)
    and the exact bias column ``b`` (``fmpq_mat``, ``out × 1``); ``b_rad`` (exact, ``>= 0``, or
    ``None``): the true bias lies in ``b ± b_rad`` (an enclosed offset)."""

    def __init__(self, parts: list[Any], b: Any, b_rad: Any = None) -> None:
        self.parts, self.b, self.b_rad = parts, b, b_rad


EXACT_DENSE_LIMIT = 1 << 22
"""Exact (``QBackend``/``ZBackend``) CROWN steps through a convolution use the structured
product (Python integers in object arrays) once its dense matrix would exceed this many
entries; below it the dense integer product of python-flint is faster."""


def exact_cheap(part: Any) -> bool:
    """Whether the exact backends take the structured product for ``part``."""
    if isinstance(part, ChainPart):
        return all(exact_cheap(p) for p in part.parts)
    if isinstance(part, ConvPart):
        return part.n_in * part.n_out > EXACT_DENSE_LIMIT
    return getattr(part, "rad", None) is None


def _obj(vals: Any, r: int, c: int) -> Any:
    a = np.empty(r * c, dtype=object)
    a[:] = list(vals)
    return a.reshape(r, c)


def exact_rmul(lam: Any, part: Any) -> Any:
    """``Λ·W`` exactly for an exact ``Λ`` (``DyMat`` or ``fmpq_mat``): integer object arrays
    when ``Λ`` and the part are dyadic (a ``DyMat`` back), else ``fmpq`` (an ``fmpq_mat``)."""
    if isinstance(part, ChainPart):
        for p in part.parts:
            lam = exact_rmul(lam, p)
        return lam
    m, n = lam.nrows(), part.n_in
    K, ek = _exact_kernel(part)
    if isinstance(lam, DyMat) and ek is not None:
        A = _obj((int(v) for v in lam.M.entries()), m, lam.ncols())
        R = part.back(A, K)
        from flint import fmpz_mat

        return DyMat(fmpz_mat(m, n, [int(v) for v in R.ravel().tolist()]), lam.e + ek)
    Q = lam.to_q() if isinstance(lam, DyMat) else lam
    A = _obj(Q.entries(), m, Q.ncols())
    if ek is not None and K is not None:  # a dyadic kernel among rationals
        s = fmpq(2) ** ek if ek >= 0 else fmpq(1, 2 ** (-ek))
        K = [k * s for k in K] if isinstance(K, list) else K * s
    return fmpq_mat(m, n, R_list(part.back(A, K)))


def R_list(R: Any) -> list[Any]:
    return [v if isinstance(v, fmpq) else fmpq(int(v)) for v in R.ravel().tolist()]


def _exact_kernel(part: Any) -> Any:
    got = getattr(part, "_exact_k", None)
    if got is None:
        got = part._exact_k = part.exact_kernel()
    return got


__all__ = [
    "ConvGeom",
    "ConvPart",
    "GatherPart",
    "DiagPart",
    "ChainPart",
    "SparsePart",
    "density",
    "LinearMap",
    "exact_rmul",
    "exact_cheap",
    "EXACT_DENSE_LIMIT",
]
