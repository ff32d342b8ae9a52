"""Rigorous float64 CROWN for many input regions at once (branch and bound's fast tier).

:class:`ReluChain` holds a chain graph ``x -> W_1 -> ReLU -> ... -> W_L`` as float64 arrays:
every parameter rounded to nearest together with an upper bound ``dW``/``db`` on its rounding
error (0 where the float is the exact value). :meth:`ReluChain.lower_bounds` runs CROWN's
backward pass for a batch of ``R`` boxes through numpy and returns, for every box and every
row ``c`` of a target matrix ``C``, a float ``β`` with ``c·f(x) >= β`` for every ``x`` of the
box, *for the exact network*: every float operation is covered by an a-priori error bound.

- A matrix product ``fl(A·B)`` over ``n`` terms is within ``γ_n·|A|·|B|`` of ``A·B``
  (``γ_n = n·u/(1−n·u)``, ``u = 2^-53``, any summation order, FMA or not), plus ``n·2^-1074``
  for underflow. Coefficients stay float (``Λ ← fl(Λ·W)``); what they leave out,
  ``(Λ·W − fl(Λ·W))·a``, is charged to the constant as ``−g·|Λ|·(|W|·|a|_max)`` with a
  generous ``g = 4(n+p+2)u`` (and ``−|Λ|·(dW·|a|_max)`` for the weights' rounding), where
  ``|a|_max`` is a sound bound on the layer input's magnitude.
- ReLU: the lower line ``relu(z) >= α·z`` with ``α ∈ {0, 1}`` (exact products); the upper line
  ``relu(z) <= s·(z − l)`` on ``[l, u]`` with ``s >= u/(u−l)`` rounded up (a line through
  ``(l, 0)`` with a slope at least the chord's lies above the ReLU on ``[l, u]``) and its
  intercept ``−s·l`` rounded up; the product ``Λ·s`` is charged like a matrix product.
- Every constant is accumulated rounded down (``nextafter`` towards −∞ after each operation).

Intermediate bounds come from the same pass with ``C = [I; −I]`` on every ReLU input. Optional
``splits`` fix the sign of chosen ReLU inputs per region (``+1``: ``z >= 0``, ``−1``: ``z <= 0``)
by clamping their bounds: the bounds are then sound on that part of the box (ReLU splitting);
a region whose clamped bounds cross (``l > u``) is empty.
"""

import numpy as np
from flint import fmpq

from ..errors import UnsupportedOperatorError
from ..operators.base import AffineOp

U = 2.0**-53
TINY = 2.0**-1000  # far above n·2^-1074 (underflow) for any n used here


def _dn(x):
    return np.nextafter(x, -np.inf)


def _up(x):
    return np.nextafter(x, np.inf)


def _float_and_error(entries):
    """Floats nearest the exact ``fmpq`` entries and an upper bound on each rounding error
    (0 where the float is the exact value, else one unit in the last place)."""
    f = np.array([int(q.p) / int(q.q) for q in entries], dtype=np.float64)
    exact = np.array(
        [fmpq(*v.as_integer_ratio()) == q for v, q in zip(f.tolist(), entries)], dtype=bool
    )
    return f, np.where(exact, 0.0, np.spacing(np.abs(f)))


class ReluChain:
    """A chain ``Linear (ReLU Linear)*`` as float64 layers ``(W, dW, b, db)``; see the module
    docstring."""

    def __init__(self, layers):
        self.layers = layers
        self.input_dim = layers[0][0].shape[1]
        self.output_dim = layers[-1][0].shape[0]

    @classmethod
    def from_graph(cls, graph):
        """The chain of ``graph``, or ``None`` when it is not ``Linear (ReLU Linear)*``
        (identity/flatten/reshape nodes are skipped)."""
        kinds, layers, prev = [], [], graph.INPUT
        for node in graph:
            if list(node.inputs) != [prev]:
                return None
            prev, op, kind = node.name, node.op, getattr(node.op, "kind", "?")
            if kind in ("identity", "flatten", "reshape"):
                continue
            if kind == "relu":
                kinds.append("relu")
                continue
            if not isinstance(op, AffineOp):
                return None
            try:
                Ws, b = op.linear_params()
            except UnsupportedOperatorError:
                return None
            if len(Ws) != 1:
                return None
            W = Ws[0]
            w, dw = _float_and_error(W.entries())
            bb, dbb = _float_and_error(b.entries())
            layers.append(
                (w.reshape(W.nrows(), W.ncols()), dw.reshape(W.nrows(), W.ncols()), bb, dbb)
            )
            kinds.append("affine")
        if not kinds or kinds != ["affine"] + ["relu", "affine"] * (len(layers) - 1):
            return None
        if not all(np.isfinite(L[0]).all() and np.isfinite(L[2]).all() for L in layers):
            return None
        return cls(layers)

    def forward(self, X):
        """Round-to-nearest outputs for the rows of ``X`` (screening only: not a bound)."""
        v = np.asarray(X, dtype=np.float64)
        for k, (W, _, b, _) in enumerate(self.layers):
            if k:
                v = np.maximum(v, 0.0)
            v = v @ W.T + b
        return v

    def _backward(
        self, Lam, k, lo, hi, pre, weights=None, scores=None, inject=None, stop=None, record=None
    ):
        """Lower bounds of ``Lam·z_k`` (``Lam`` shape ``(R, m, n_k)`` over the pre-activation
        of layer ``k``; ``pre[j] = (l_j, u_j)`` sound bounds of the ReLU inputs ``z_j``,
        ``j < k``) over the boxes ``[lo, hi]``. Returns ``(β (R, m), Λ_x (R, m, n_0))``. With
        ``scores`` (a list) and row ``weights`` (R, m): appends, per ReLU layer from the last,
        what each neuron's upper line costs the weighted rows (``Σ_r w_r·|Λ_r⁻|·intercept``,
        BaBSR's intercept score). ``inject = {j: B}``: add ``B`` (R, m, n_j) to the
        coefficients of ``z_j`` (split multipliers: ``B = −μ·s`` with ``μ >= 0`` on a region
        where ``s·z_j >= 0``, which only lowers the bound there). ``stop = j``: return
        ``(β, Λ)`` with ``Λ`` over ``z_j`` instead. ``record`` (a dict): per ReLU layer ``j``,
        ``(Λ over z_j, slope, intercept)`` of the lines used (for the multipliers' gradient)."""
        R, m, _ = Lam.shape
        beta = np.zeros((R, m))
        for j in range(k, -1, -1):
            if stop == j:
                return beta, Lam
            if inject is not None and j in inject:
                Lam = Lam + inject[j]  # exact coefficients: any float Λ is a valid multiplier
            W, dW, b, db = self.layers[j]
            n, p = W.shape  # z_j = W a_{j-1} + b
            absL = np.abs(Lam)
            # constant: Lam·b, rounded down
            c = Lam @ b
            e = (absL @ (np.abs(b) * (4 * (n + 2) * U) + db)) + TINY
            beta = _dn(_dn(beta + c) - e)
            amax = np.maximum(np.abs(lo), np.abs(hi)) if j == 0 else np.maximum(pre[j - 1][1], 0.0)
            new = (Lam.reshape(R * m, n) @ W).reshape(R, m, p)
            # what fl(Lam·W) leaves out, times |a|_max, and the weights' rounding
            wa = np.abs(W) @ amax.T  # (n, R)
            da = dW @ amax.T
            err = np.einsum("rmn,nr->rm", absL, wa * (4 * (n + p + 2) * U) + da) * (1 + 8 * U)
            beta = _dn(beta - (err + TINY))
            Lam = new
            if j == 0:
                break
            l, u = pre[j - 1]  # ReLU between layer j-1 and j: Lam is over relu(z_{j-1})
            act, dead = l >= 0, u <= 0
            unst = ~act & ~dead
            alpha = np.where(act | (unst & (u > -l)), 1.0, 0.0)[:, None, :]
            d = np.where(unst, _dn(u - l), 1.0)
            s = np.where(act, 1.0, np.where(unst, _up(u / d), 0.0))
            t = np.where(unst, _up(-s * l), 0.0)
            neg = np.minimum(Lam, 0.0)
            prod = neg * s[:, None, :]
            if record is not None:
                pos = Lam >= 0
                slope = np.where(pos, alpha, s[:, None, :])
                icpt = np.where(pos, 0.0, t[:, None, :])
            Lam = np.maximum(Lam, 0.0) * alpha + prod
            if record is not None:
                record[j - 1] = (Lam, slope, icpt)
            zmax = np.maximum(np.abs(l), np.abs(u))
            # Σ neg·t rounded down, and the rounding of neg·s times |z|_max
            c = np.einsum("rmn,rn->rm", neg, t)
            if scores is not None:
                scores.append(np.einsum("rmn,rm->rn", -neg, weights) * t)
            e = np.einsum("rmn,rn->rm", -neg, t * (4 * (p + 2) * U) + s * zmax * (4 * U))
            beta = _dn(_dn(beta + c) - (e * (1 + 8 * U) + TINY))
        # minimum of Lam·x over the box
        n0 = lo.shape[1]
        pos, neg = np.maximum(Lam, 0.0), np.minimum(Lam, 0.0)
        c = np.einsum("rmn,rn->rm", pos, lo) + np.einsum("rmn,rn->rm", neg, hi)
        e = np.einsum("rmn,rn->rm", np.abs(Lam), np.maximum(np.abs(lo), np.abs(hi)))
        beta = _dn(_dn(beta + c) - (e * (4 * (n0 + 2) * U) + TINY))
        return beta, Lam

    def pre_bounds(self, lo, hi, splits=None, parent=None, start=0):
        """Sound bounds ``[(l_j, u_j)]`` of every ReLU input over each box (clamped by
        ``splits[j]``, an int8 array ``(R, n_j)`` of -1/0/+1, when given). With ``parent``
        bounds (sound on a superset of each region): layers below ``start`` are taken from
        them, the others are recomputed and intersected with them."""
        R = lo.shape[0]
        pre: list = []
        for k in range(len(self.layers) - 1):
            if parent is not None and k < start:
                l, u = parent[k]
            else:
                n = self.layers[k][0].shape[0]
                eye = np.eye(n)
                Lam = np.broadcast_to(np.concatenate([eye, -eye])[None], (R, 2 * n, n))
                beta, _ = self._backward(np.array(Lam), k, lo, hi, pre)
                l, u = beta[:, :n], -beta[:, n:]
                if parent is not None:
                    l, u = np.maximum(l, parent[k][0]), np.minimum(u, parent[k][1])
            if splits is not None and splits[k] is not None:
                l = np.where(splits[k] > 0, np.maximum(l, 0.0), l)
                u = np.where(splits[k] < 0, np.minimum(u, 0.0), u)
            pre.append((l, u))
        return pre

    def lower_bounds(
        self, lo, hi, C, splits=None, pre=None, weights=None, scores=None, inject=None
    ):
        """For boxes ``[lo[r], hi[r]]`` (arrays ``(R, n_0)``) and targets ``C`` (``(m,
        n_out)``, float-exact): ``(β, Λ_x, empty)`` with ``C·f(x) >= β[r]`` on box ``r`` (and
        ``Λ_x[r]`` the lower linear form over the input); ``empty[r]`` when the region's
        splits cannot all hold (then ``β`` means nothing); and the ReLU inputs' bounds ``pre``
        (given: used as they are)."""
        lo = np.asarray(lo, dtype=np.float64)
        hi = np.asarray(hi, dtype=np.float64)
        R = lo.shape[0]
        if pre is None:
            pre = self.pre_bounds(lo, hi, splits)
        empty = np.zeros(R, dtype=bool)
        for l, u in pre:
            empty |= (l > u).any(axis=1)
        Lam = np.array(np.broadcast_to(np.asarray(C, dtype=np.float64)[None], (R,) + C.shape))
        beta, Lx = self._backward(Lam, len(self.layers) - 1, lo, hi, pre, weights, scores, inject)
        if scores is not None:
            scores.reverse()  # first ReLU layer first
        return beta, Lx, empty, pre

    def split_multipliers(self, lo, hi, C, pre, signs, steps=20):
        """Multipliers ``μ_j >= 0`` (R, m, n_j) for the sign constraints ``s_j·z_j >= 0`` of
        the split ReLU inputs (β-CROWN's β), by Adam ascent on the bound: with the lines held,
        the bound is linear in ``μ_j`` with gradient ``−s_j·ẑ_j``, where ``ẑ_j`` is ``z_j``
        through the chosen lines from the box corner ``x*`` that minimises the bound. Returns
        ``inject`` for :meth:`lower_bounds`, which computes the bound rigorously with them
        (any ``μ >= 0`` is sound). ``signs[j]``: int8 (R, n_j) or ``None``."""
        R = lo.shape[0]
        Lam0 = np.array(np.broadcast_to(np.asarray(C, dtype=np.float64)[None], (R,) + C.shape))
        last = len(self.layers) - 1
        sg = {
            j: sj[:, None, :].astype(np.float64)
            for j, sj in enumerate(signs)
            if sj is not None and sj.any()
        }
        rec: dict = {}
        self._backward(Lam0, last, lo, hi, pre, record=rec)
        mu, lr, m1, m2 = {}, {}, {}, {}
        for j, s in sg.items():
            Lz = rec[j][0]
            mu[j] = np.where(s > 0, np.maximum(Lz, 0.0), 0.0)  # z >= 0 then costs nothing
            lr[j] = 0.05 * np.abs(Lz).max(axis=2, keepdims=True) + 1e-12
            m1[j], m2[j] = np.zeros_like(Lz), np.zeros_like(Lz)
        best_val = np.full(Lam0.shape[:2], -np.inf)
        best = {j: v.copy() for j, v in mu.items()}
        lo3, hi3 = lo[:, None, :], hi[:, None, :]
        top = max(sg, default=-1)
        for t in range(1, steps + 1):
            inject = {j: -mu[j] * s for j, s in sg.items()}
            rec = {}
            val, Lx = self._backward(Lam0, last, lo, hi, pre, inject=inject, record=rec)
            better = val > best_val
            best_val = np.where(better, val, best_val)
            for j in mu:
                best[j] = np.where(better[:, :, None], mu[j], best[j])
            if t == steps:
                break
            v = np.where(Lx > 0, lo3, hi3)  # x*, per row
            for j in range(top + 1):
                W, _, b, _ = self.layers[j]
                z = v @ W.T + b
                if j in sg:
                    g = -sg[j] * z * (sg[j] != 0)
                    m1[j] = 0.9 * m1[j] + 0.1 * g
                    m2[j] = 0.999 * m2[j] + 0.001 * g * g
                    step = lr[j] * (m1[j] / (1 - 0.9**t))
                    step = step / (np.sqrt(m2[j] / (1 - 0.999**t)) + 1e-12)
                    mu[j] = np.maximum(mu[j] + step, 0.0) * (sg[j] != 0)
                _, slope, icpt = rec[j]
                v = slope * z + icpt
        return {j: -best[j] * s for j, s in sg.items()}


__all__ = ["ReluChain"]
