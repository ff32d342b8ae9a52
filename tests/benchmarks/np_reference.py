"""Plain numpy float64 IBP and CROWN for sequential Linear/ReLU networks (no rounding control):
the speed baseline of ``bench_networks.py`` and a float cross-check in the tests."""

import numpy as np


def np_ibp(Ws, bs, lo, hi):
    """IBP through ``Linear, ReLU, ..., Linear``; returns the output (lo, hi)."""
    for k, (W, b) in enumerate(zip(Ws, bs)):
        mid, rad = (lo + hi) / 2, (hi - lo) / 2
        m, r = W @ mid + b, np.abs(W) @ rad
        lo, hi = m - r, m + r
        if k < len(Ws) - 1:
            lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
    return lo, hi


def _relax(l, u):
    """ReLU relaxation: adaptive lower slope, upper chord; stable neurons exact."""
    act, dead = l >= 0, u <= 0
    unst = ~act & ~dead
    us = np.where(act, 1.0, 0.0)
    ub = np.zeros_like(l)
    d = np.where(unst, u - l, 1.0)
    us = np.where(unst, u / d, us)
    ub = np.where(unst, -u * l / d, ub)
    ls = np.where(act, 1.0, np.where(unst, (u > -l).astype(float), 0.0))
    return ls, np.zeros_like(l), us, ub


def _backward(Ws, bs, rel, k, lo, hi):
    """Bounds of the pre-activation of layer ``k`` (0-based) by a CROWN backward pass."""
    LL = Ws[k].copy()
    LU = Ws[k].copy()
    bL = bs[k].copy()
    bU = bs[k].copy()
    for j in range(k - 1, -1, -1):
        ls, lb, us, ub = rel[j]
        P, N = np.maximum(LL, 0), np.minimum(LL, 0)
        bL = bL + P @ lb + N @ ub
        LL = P * ls + N * us
        P, N = np.maximum(LU, 0), np.minimum(LU, 0)
        bU = bU + P @ ub + N @ lb
        LU = P * us + N * ls
        bL, bU = bL + LL @ bs[j], bU + LU @ bs[j]
        LL, LU = LL @ Ws[j], LU @ Ws[j]
    mid, rad = (lo + hi) / 2, (hi - lo) / 2
    return LL @ mid - np.abs(LL) @ rad + bL, LU @ mid + np.abs(LU) @ rad + bU


def np_crown(Ws, bs, lo, hi):
    rel = []
    for k in range(len(Ws)):
        l, u = _backward(Ws, bs, rel, k, lo, hi)
        if k < len(Ws) - 1:
            rel.append(_relax(l, u))
    return l, u
