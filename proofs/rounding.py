"""Rounding obligations for the exact context: its square-root enclosure, checked exactly
(python-flint ``fmpq``) on seeded random rationals. These are exhaustive checks over a fixed,
reproducible sample, not proofs: their status is ``checked``.

For ``ρ = 2^-bits``:

* ``sqrt_enclosure(v, bits)``: an exact ``fmpq`` ``r`` only when ``r >= 0`` and ``r² = v``;
  otherwise ``[lo, hi]`` with ``0 <= lo``, ``lo² <= v <= hi²``, ``hi − lo <= ρ·lo``.
* ``RationalContext(bits).sqrt(a)`` for a rational ``a``: the same; for an ``RInterval``
  ``[a, b]``: ``0 <= lower``, ``lower² <= a <= lower²(1+ρ)²`` and ``b <= upper² <= b(1+ρ)²``
  (it encloses ``[√a, √b]``, each end within relative ``ρ``).
"""

import inspect
import random
import time

from flint import fmpq

from .framework import CHECKED, ERROR, REFUTED, Result, _seed, default_ops

BITS = (2, 3, 8, 24, 53, 64, 113, 128, 200)
REGISTRY = []


def random_rationals(rng, n):
    """``n`` non-negative rationals: small fractions, wide-range dyadics, random p/q with up to
    400-bit parts, exact squares and squares perturbed by a tiny amount, 0 and 1."""
    out = [fmpq(0), fmpq(1), fmpq(2), fmpq(1, 4), fmpq(10**5 + 1, 10**5)]
    while len(out) < n:
        k = rng.randrange(5)
        if k == 0:
            v = fmpq(rng.randint(0, 1000), rng.randint(1, 1000))
        elif k == 1:
            e = rng.randint(-300, 300)
            man = rng.getrandbits(53) | 1
            v = fmpq(man << e) if e >= 0 else fmpq(man, 1 << -e)
        elif k == 2:
            v = fmpq(rng.getrandbits(rng.randint(1, 400)), rng.getrandbits(rng.randint(1, 400)) + 1)
        elif k == 3:
            v = fmpq(rng.getrandbits(rng.randint(1, 120)), rng.getrandbits(rng.randint(1, 60)) + 1)
            v = v * v
        else:
            r = fmpq(rng.randint(1, 10**6), rng.randint(1, 10**6))
            v = r * r + fmpq(rng.choice((1, -1)), 1 << rng.randint(60, 300))
        out.append(v if v >= 0 else -v)
    return out


class SampledObligation:
    """An exact check over a seeded sample: ``check_one(ops, item) -> None | str`` (the
    failure). ``check`` returns ``checked`` or ``refuted`` with the first failing item."""

    kind = "sampled"

    def __init__(self, check_one, items, name=None, lean=None, expected=CHECKED):
        self.check_one, self.items = check_one, items
        self.name = name or check_one.__name__
        self.lean, self.expected = lean, expected
        self.statement = inspect.cleandoc(check_one.__doc__ or "")

    def __repr__(self):
        return f"SampledObligation({self.name!r})"

    def check(self, ops=None):
        ops = default_ops() if ops is None else ops
        t0 = time.perf_counter()
        res = Result(self.name, self.lean, self.expected, status=CHECKED, statement=self.statement)
        for item in self.items(random.Random(_seed(self.name))):
            res.cases += 1
            try:
                why = self.check_one(ops, item)
            except Exception as e:  # a crash on valid input fails the obligation
                res.status, res.detail = ERROR, f"{type(e).__name__}: {e}"
                res.counterexample = {k: str(v) for k, v in item.items()}
                break
            if why:
                res.status = REFUTED
                res.counterexample = {k: str(v) for k, v in item.items()}
                res.detail = why
                break
        res.case_list = [
            {"assume": f"{res.cases} seeded inputs", "status": res.status, "detail": res.detail}
        ]
        res.seconds = time.perf_counter() - t0
        return res


def sampled(name=None, lean=None, items=None):
    def wrap(fn):
        ob = SampledObligation(fn, items, name=name, lean=lean)
        REGISTRY.append(ob)
        return ob

    return wrap


def _points(rng, n=5000):
    return [{"v": v, "bits": rng.choice(BITS)} for v in random_rationals(rng, n)]


def _intervals(rng, n=2000):
    vs = random_rationals(rng, 2 * n)
    return [
        {"a": min(a, b), "b": max(a, b), "bits": rng.choice(BITS)}
        for a, b in zip(vs[::2], vs[1::2])
    ]


def _ends(x):
    return (x.lo, x.hi) if hasattr(x, "lo") else (x, x)


def _point_failure(lo, hi, v, bits, exact):
    rho = fmpq(1, 1 << bits)
    if exact:
        return None if lo >= 0 and lo * lo == v else f"exact result {lo} but {lo}² != {v}"
    if not lo >= 0:
        return f"lo = {lo} < 0"
    if not lo * lo <= v:
        return f"lo² = {lo * lo} > v"
    if not v <= hi * hi:
        return f"hi² = {hi * hi} < v"
    if not hi - lo <= rho * lo:
        return f"relative width {(hi - lo) / lo} > 2^-{bits}"
    return None


@sampled(items=_points)
def sqrt_enclosure_sound(ops, item):
    """∀ v ≥ 0, bits: sqrt_enclosure(v, bits) = [lo, hi] with 0 ≤ lo, lo² ≤ v ≤ hi²,
    hi − lo ≤ 2^-bits·lo (or an exact r ≥ 0 with r² = v)."""
    v, bits = item["v"], item["bits"]
    r = ops.sqrt_enclosure(v, bits)
    lo, hi = _ends(r)
    return _point_failure(lo, hi, v, bits, isinstance(r, fmpq))


@sampled(items=_points)
def rational_context_sqrt_sound(ops, item):
    """∀ v ≥ 0, bits: RationalContext(bits).sqrt(v) has exact ends lower, upper with
    0 ≤ lower, lower² ≤ v ≤ upper², upper − lower ≤ 2^-bits·lower; status "exact" only when
    lower = upper."""
    ctx = ops.RationalContext(item["bits"])
    r = ctx.sqrt(item["v"])
    lo, hi = ctx.lower(r), ctx.upper(r)
    if (ctx.status(r) == "exact") != (lo == hi):
        return f"status {ctx.status(r)} for [{lo}, {hi}]"
    return _point_failure(lo, hi, item["v"], item["bits"], lo == hi)


@sampled(items=_intervals)
def rational_context_sqrt_interval_sound(ops, item):
    """∀ 0 ≤ a ≤ b, bits: RationalContext(bits).sqrt([a, b]) = [lower, upper] with
    0 ≤ lower, lower² ≤ a ≤ lower²(1+2^-bits)², b ≤ upper² ≤ b(1+2^-bits)²."""
    from exactbounds.numbers import interval

    a, b, bits = item["a"], item["b"], item["bits"]
    ctx = ops.RationalContext(bits)
    r = ctx.sqrt(interval(a, b))
    lo, hi = ctx.lower(r), ctx.upper(r)
    grow = (1 + fmpq(1, 1 << bits)) ** 2
    if not lo >= 0:
        return f"lower = {lo} < 0"
    if not lo * lo <= a <= lo * lo * grow:
        return f"lower = {lo} does not enclose √a within 2^-{bits}"
    if not b <= hi * hi <= b * grow:
        return f"upper = {hi} does not enclose √b within 2^-{bits}"
    return None


def _surd_sign(p, q, s):
    """The exact sign of ``p·√s − q`` (rationals, ``s > 0``), decided by squaring."""
    sp = (p > 0) - (p < 0)
    sq = (q > 0) - (q < 0)
    if sp == 0 or sq == 0 or sp != sq:
        return sp if sp != 0 else -sq
    d = p * p * s - q * q
    return sp * ((d > 0) - (d < 0))


def _bn_items(rng, n=300):
    def q(lo, hi):
        return fmpq(rng.randint(lo, hi), rng.choice((1, 2, 3, 4, 7, 8, 1024)))

    out = []
    for _ in range(n):
        x0 = q(-40, 40)
        out.append(
            {
                "gamma": rng.choice((q(-40, 40), fmpq(0))),
                "mu": q(-40, 40),
                "beta": q(-40, 40),
                "var": rng.choice((q(0, 80), fmpq(0), fmpq(1, 4))),
                "eps": rng.choice((fmpq(1, 100000), q(1, 8), fmpq(0))),
                "lo": x0,
                "hi": x0 + abs(q(0, 40)),
                "bits": rng.choice((8, 24, 53, 64, 128)),
            }
        )
    return [it for it in out if it["var"] + it["eps"] > 0 and it["eps"] > 0]


@sampled(items=_bn_items)
def batchnorm_crown_step_sound(ops, item):
    """The BatchNorm step that CROWN and forward affine run: ∀ γ, μ, β, σ² ≥ 0, ε > 0, bits,
    BatchNorm(params).linear_enclosure(RationalContext(bits)) = (W, b, Wrad, brad) with
    W − Wrad ≤ γ/√(σ²+ε) ≤ W + Wrad and b − brad ≤ β − γμ/√(σ²+ε) ≤ b + brad; and crown and
    affine on the one-node graph [BatchNorm] over [lo, hi] (exact mode) return lo' ≤ BN(x) ≤ hi'
    at x = lo and x = hi (compared exactly, by squaring)."""
    from exactbounds.algorithms.affine import affine
    from exactbounds.algorithms.crown import crown
    from exactbounds.graph import Graph

    g, m, be, v, e = (item[k] for k in ("gamma", "mu", "beta", "var", "eps"))
    s = v + e
    params = ops.BatchNormParams([m], [v], [g], [be], e)
    ctx = ops.RationalContext(item["bits"])
    Ws, b, Wr, br = ops.BatchNorm(params).linear_enclosure(ctx)
    W0, b0 = Ws[0][0, 0], b[0, 0]
    w_r = Wr[0][0, 0] if Wr is not None else fmpq(0)
    b_r = br[0, 0] if br is not None else fmpq(0)
    # scale = γ/√s: W − Wrad ≤ scale ⇔ (W − Wrad)·√s − γ ≤ 0
    if _surd_sign(W0 - w_r, g, s) > 0 or _surd_sign(W0 + w_r, g, s) < 0:
        return f"[{W0 - w_r}, {W0 + w_r}] misses the scale γ/√(σ²+ε)"
    # offset = β − γμ/√s ≥ b − brad ⇔ (β − b + brad)·√s − γμ ≥ 0
    if _surd_sign(be - b0 + b_r, g * m, s) < 0 or _surd_sign(be - b0 - b_r, g * m, s) > 0:
        return f"[{b0 - b_r}, {b0 + b_r}] misses the offset β − γμ/√(σ²+ε)"
    graph = Graph.sequential(1, [ops.BatchNorm(params)])
    box = ops.Box([item["lo"]], [item["hi"]])
    for fn in (crown, affine):
        out = fn(graph, box, ctx)
        lo, hi = out.output.outer(ctx)
        for x in (item["lo"], item["hi"]):
            # BN(x) = β + γ(x − μ)/√s;  lo ≤ BN(x) ⇔ (β − lo)·√s + γ(x − μ) ≥ 0
            if _surd_sign(be - lo[0], -g * (x - m), s) < 0:
                return f"{fn.__name__}: lower bound {lo[0]} above BN({x})"
            if _surd_sign(hi[0] - be, g * (x - m), s) < 0:
                return f"{fn.__name__}: upper bound {hi[0]} below BN({x})"
    return None
