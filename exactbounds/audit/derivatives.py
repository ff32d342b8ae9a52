"""Exact reference derivatives along a curve, and the derivative audit.

:class:`ExactDerivatives` builds the network's exact sympy expression along the curve by running
the graph's own ``evaluate`` verbs under ``SymbolicContext`` with ``x = x0 + t·v`` (or with the
input coordinates as symbols, for ``wrt``), differentiates it with sympy, and encloses
``u(t)``, ``u'(t)``, ``u''(t)`` at an exact t rigorously: the expression tree is evaluated in
python-flint ``arb`` ball arithmetic (``tanh``, ``exp``, ``sqrt``, powers, rationals) at a
precision raised until the comparison with a claim is decided. Nothing is decided on floats;
floats only propose candidate points.

:func:`audit_derivatives` checks claimed derivative enclosures: per claimed order, output and
side one :class:`~exactbounds.audit.verdicts.Verdict` (``unsound`` with an exact witness t whose
exact derivative lies strictly outside the claim; else ``sound`` when the claim contains the
chain-rule Taylor bound of :mod:`exactbounds.algorithms.taylor`, ``inside_exact`` when not).

Claim files for ``exactbounds check --method deriv --claimed FILE``: the JSON that
``exactbounds derivatives --json`` prints, or any object with ``"curve"``
(``{"origin": [...], "direction": [...], "t_range": [lo, hi]}`` or ``{"wrt": i}``) and
``"first_derivative"`` and/or ``"second_derivative"`` as ``{"lo": [...], "hi": [...]}``; with
``"refinement": {"pieces": N}`` the method bound is the refined hull over at most N pieces.
"""

import random

import flint
from flint import arb, fmpq

from ..algorithms.curves import make_curve
from ..algorithms.ibp import run_graph
from ..algorithms.refine import refine
from ..algorithms.taylor import propagate
from ..errors import (
    ExactBoundsError,
    InvalidValueError,
    MalformedFileError,
    NeedsCaseSplit,
    UnsupportedOperatorError,
)
from ..numbers import RationalContext, SymbolicContext, interval, to_exact
from ..operators.activations import arb_exact_ends
from .claims import parse_claim
from .ulps import ulp_near
from .verdicts import AuditResult, Verdict, Witness, outside_distance

ORDER_NAMES = {0: "u", 1: "u'", 2: "u''"}
CLAIM_KEYS = {1: ("first_derivative", "d1"), 2: ("second_derivative", "d2")}


class UndecidedError(ExactBoundsError):
    """A comparison that the largest allowed precision could not decide."""


def arb_eval(expr, env, memo=None):
    """Ball enclosure of a sympy expression whose symbols are given in ``env`` (symbol -> arb),
    at the current ``flint.ctx.prec``."""
    import sympy as sp

    memo = {} if memo is None else memo

    def ev(e):
        got = memo.get(e)
        if got is not None:
            return got
        if e.is_Symbol:
            r = env[e]
        elif e.is_Rational:
            r = arb(fmpq(int(e.p), int(e.q)))
        elif e is sp.E:
            r = arb(1).exp()
        elif e.is_Add:
            r = arb(0)
            for a in e.args:
                r = r + ev(a)
        elif e.is_Mul:
            r = arb(1)
            for a in e.args:
                r = r * ev(a)
        elif e.is_Pow:
            base, ex = e.args
            b = ev(base)
            if ex.is_Integer:
                r = _arb_int_pow(b, int(ex))
            elif ex == sp.Rational(1, 2):
                r = b.sqrt()
            elif ex == sp.Rational(-1, 2):
                r = 1 / b.sqrt()
            else:
                r = (ev(ex) * b.log()).exp()
        elif isinstance(e, sp.tanh):
            r = ev(e.args[0]).tanh()
        elif isinstance(e, sp.exp):
            r = ev(e.args[0]).exp()
        elif isinstance(e, sp.cosh):
            r = ev(e.args[0]).cosh()
        elif isinstance(e, sp.sinh):
            r = ev(e.args[0]).sinh()
        elif isinstance(e, sp.sech):
            r = ev(e.args[0]).sech()
        else:
            raise UnsupportedOperatorError(f"arb_eval: no rigorous evaluation of {e.func}")
        memo[e] = r
        return r

    return ev(expr)


def _arb_int_pow(b, k):
    """``b**k`` for an integer ``k`` by repeated multiplication (python-flint's ``arb ** int``
    goes through ``exp(k·log b)`` and is NaN for a ball around 0 or a negative one)."""
    if k < 0:
        return 1 / _arb_int_pow(b, -k)
    r, base = arb(1), b
    while k:
        if k & 1:
            r = r * base
        base = base * base
        k >>= 1
    return r


class ExactDerivatives:
    """The network's exact outputs along ``curve`` and their first and second derivatives, as
    sympy expressions in the curve parameter (``t``, or the input coordinates for ``wrt``)."""

    def __init__(self, graph, curve, order=2):
        import sympy as sp

        self.sp, self.graph, self.curve = sp, graph, curve
        if curve.wrt_index is None:
            t = sp.Symbol("t", real=True)
            self.params = [t]
            x = [
                sp.Rational(int(c.p), int(c.q)) + t * sp.Rational(int(d.p), int(d.q))
                for c, d in zip(curve.origin, curve.direction)
            ]
            var = t
        else:
            self.params = list(sp.symbols(f"x0:{curve.dim}", real=True))
            x, var = list(self.params), self.params[curve.wrt_index]
        try:
            outs = run_graph(graph, x, "evaluate", SymbolicContext())
        except NeedsCaseSplit:
            raise UnsupportedOperatorError(
                "exact reference derivatives need a smooth network: a branch (ReLU) depends "
                "on the input along the curve"
            ) from None
        self.exprs = {0: list(outs)}
        for k in range(1, order + 1):
            self.exprs[k] = [sp.diff(u, var) for u in self.exprs[k - 1]]
        self._floats = {}

    @property
    def out_dim(self):
        return len(self.exprs[0])

    def param_box(self):
        """Exact ends of the parameter domain (``[t_lo, t_hi]``, or the input box)."""
        c = self.curve
        if c.wrt_index is None:
            return [c.t_lo], [c.t_hi]
        return c.value_box().outer()

    def enclose(self, order, j, p, prec=128, max_bits=1 << 16):
        """Exact ``(lo, hi)`` enclosing the order-``order`` derivative of output ``j`` at the
        exact parameter point ``p`` (a list), by arb at ``prec`` bits; a ball that is not finite
        at that precision (an overflow, a quotient by a ball around 0) is recomputed at twice
        the precision, up to ``max_bits`` (then :class:`UndecidedError`)."""
        while True:
            with flint.ctx.workprec(prec):  # ends read at the working precision
                env = {s: arb(to_exact(v)) for s, v in zip(self.params, p)}
                b = arb_eval(self.exprs[order][j], env)
                if b.is_finite():
                    return arb_exact_ends(b)
            if prec >= max_bits:
                raise UndecidedError(
                    f"{ORDER_NAMES[order]}[{j}] at {p}: no finite enclosure at {max_bits} bits"
                )
            prec *= 2

    def value(self, order, j, p, bits=128, max_bits=4096):
        """An exact rational, or an ``RInterval`` of width ``<= 2^-bits·(1+|value|)``."""
        e = self.exprs[order][j].subs(dict(zip(self.params, [self._sym(v) for v in p])))
        if e.is_Rational:
            return fmpq(int(e.p), int(e.q))
        prec = bits
        while True:
            lo, hi = self.enclose(order, j, p, prec + 32)
            if hi - lo <= fmpq(1, 2**bits) * (1 + abs(lo)) or prec >= max_bits:
                return interval(lo, hi)
            prec *= 2

    def _sym(self, v):
        v = to_exact(v)
        return self.sp.Rational(int(v.p), int(v.q))

    def outside(self, order, j, p, side, claimed, bits=128, max_bits=4096):
        """Decide whether the exact derivative lies strictly outside the claim on ``side``.
        Returns ``(True, enclosure)``, ``(False, enclosure)``, or raises
        :class:`UndecidedError` (e.g. the value equals the claim) beyond ``max_bits``."""
        prec = bits
        while True:
            lo, hi = self.enclose(order, j, p, prec)
            y = interval(lo, hi)
            if (side == "lo" and hi < claimed) or (side == "hi" and lo > claimed):
                return True, y
            if (side == "lo" and lo >= claimed) or (side == "hi" and hi <= claimed):
                return False, y
            if prec >= max_bits:
                raise UndecidedError(
                    f"{ORDER_NAMES[order]}[{j}] at {p}: not decided against "
                    f"{claimed} at {max_bits} bits"
                )
            prec *= 2

    def float_fn(self, order, j):
        """A float (mpmath, 53 bits) evaluator of the derivative: for proposing candidates."""
        key = (order, j)
        if key not in self._floats:
            self._floats[key] = self.sp.lambdify(
                self.params, self.exprs[order][j], modules="mpmath", cse=True
            )
        return self._floats[key]


def _float_value(f, p):
    try:
        return float(f(*[float(v) for v in p]))
    except (OverflowError, ValueError, ZeroDivisionError, TypeError):
        return None


def _candidates(ref, order, j, side, rng, n_grid=65, n_random=8, steps=60):
    """Exact parameter points, best first by the float value of the derivative (lowest for
    ``lo``, highest for ``hi``): a grid / corners, random points, then a local refinement of the
    best ones (golden-section in 1-D, coordinate search otherwise)."""
    f = ref.float_fn(order, j)
    sgn = 1.0 if side == "lo" else -1.0
    lo, hi = ref.param_box()
    m = len(lo)
    flo, fhi = [float(a) for a in lo], [float(b) for b in hi]

    def score(p):
        v = _float_value(f, p)
        return None if v is None else sgn * v

    pts = []
    if m == 1:
        pts = [[flo[0] + (fhi[0] - flo[0]) * k / (n_grid - 1)] for k in range(n_grid)]
    else:
        pts = [
            [a if (k >> i) & 1 else b for i, (a, b) in enumerate(zip(flo, fhi))]
            for k in range(min(2**m, 64))
        ]
        pts.append([(a + b) / 2 for a, b in zip(flo, fhi)])
    pts += [[rng.uniform(a, b) for a, b in zip(flo, fhi)] for _ in range(n_random)]
    scored = sorted((s, p) for s, p in ((score(p), p) for p in pts) if s is not None)
    refined = []
    for _s, p in scored[:3]:
        p = list(p)
        if m == 1:
            width = (fhi[0] - flo[0]) / (n_grid - 1)
            a, b = max(flo[0], p[0] - width), min(fhi[0], p[0] + width)
            g = 0.6180339887498949
            for _ in range(steps):
                c, d = b - g * (b - a), a + g * (b - a)
                sc, sd = score([c]), score([d])
                if sc is None or sd is None:
                    break
                if sc < sd:
                    b = d
                else:
                    a = c
            refined.append([(a + b) / 2])
        else:
            step = [(b - a) / 4 for a, b in zip(flo, fhi)]
            best = score(p)
            for _ in range(steps):
                moved = False
                for i in range(m):
                    for d in (step[i], -step[i]):
                        q = list(p)
                        q[i] = min(fhi[i], max(flo[i], q[i] + d))
                        sq = score(q)
                        if sq is not None and best is not None and sq < best:
                            p, best, moved = q, sq, True
                if not moved:
                    step = [s_ / 2 for s_ in step]
            refined.append(p)
    ordered = refined + [p for _, p in scored]
    out = []
    for p in ordered:
        q = [min(b, max(a, to_exact(v))) for v, a, b in zip(p, lo, hi)]
        if q not in out:
            out.append(q)
    return out


def method_bounds(graph, curve, order, bits=128, pieces=None, rule=None):
    """The chain-rule Taylor bounds in the rational context: ``{k: (lo list, hi list)}``;
    with ``pieces``, the refinement's hull over at most that many pieces (no time limit), with
    the claimant's ``rule`` choosing the pieces (u' does not depend on the rule; u'' is always
    the chain rule's)."""
    ctx = RationalContext(bits)
    if pieces is None or pieces <= 1:
        jet = propagate(graph, curve, ctx, order, "chain")
        out = {1: jet.d1.outer(ctx)}
        if order >= 2:
            out[2] = jet.d2.outer(ctx)
        return out
    runs = {
        r: refine(graph, curve, ctx, order, r, budget=None, max_pieces=pieces).jet
        for r in {"chain", rule if rule in ("chain", "seed") else "chain"}
    }
    out = {1: runs[rule if rule in runs else "chain"].d1.outer(ctx)}
    if order >= 2:
        out[2] = runs["chain"].d2.outer(ctx)
    return out


def audit_derivatives(
    graph,
    curve,
    claims,
    *,
    bits=128,
    max_bits=4096,
    budget=400,
    seed=0,
    find_all=False,
    n_random=8,
    rule=None,
    pieces=None,
):
    """Audit claimed derivative enclosures along ``curve``.

    ``claims``: ``{1: Claim, 2: Claim}`` (:class:`~exactbounds.audit.claims.Claim`, entries
    ``None`` = unclaimed). ``rule`` records the claimant's second-derivative rule (the reference
    is always the exact derivative; the method bound is the sound chain rule). Returns an
    :class:`~exactbounds.audit.verdicts.AuditResult` of verdicts with ``node`` ``"u'"`` or
    ``"u''"``, ``method`` ``"deriv"`` and witnesses ``x = [t]`` (or the input point for
    ``wrt``)."""
    orders = sorted(k for k, c in claims.items() if c is not None)
    if not orders or any(k not in (1, 2) for k in orders):
        raise InvalidValueError("claims", orders, "expected claims on orders 1 and/or 2")
    top = max(orders)
    bounds = method_bounds(graph, curve, top, bits, pieces, rule)
    ref = ExactDerivatives(graph, curve, top)
    rng = random.Random(seed)
    verdicts, evals = [], 0
    for k in orders:
        claim = claims[k]
        claim.check_dim(ref.out_dim, f"the network output ({ORDER_NAMES[k]})")
        blo, bhi = bounds[k]
        for j in range(ref.out_dim):
            for side, claimed, exact in (("lo", claim.lo[j], blo[j]), ("hi", claim.hi[j], bhi[j])):
                if claimed is None:
                    continue
                witness, note = None, ""
                safe = (claimed <= exact) if side == "lo" else (claimed >= exact)
                if not safe:
                    spent = 0
                    for p in _candidates(ref, k, j, side, rng, n_random=n_random):
                        if spent >= budget:
                            note = f"no witness in {spent} exact evaluations"
                            break
                        spent += 1
                        try:
                            out, y = ref.outside(k, j, p, side, claimed, bits, max_bits)
                        except UndecidedError:
                            continue
                        if out:
                            dist = outside_distance(side, claimed, y)
                            w = Witness(
                                p,
                                y,
                                dist,
                                dist / ulp_near(claimed, y, claim.dtype),
                                "grid/local_search",
                                evals + spent,
                            )
                            if witness is None or dist > witness.distance:
                                witness = w
                            if not find_all:
                                break
                    else:
                        note = note or f"no witness in {spent} exact evaluations"
                    evals += spent
                verdicts.append(
                    Verdict.decide(
                        j,
                        side,
                        claimed,
                        exact,
                        witness,
                        node=ORDER_NAMES[k],
                        method="deriv",
                        dtype=claim.dtype,
                        note="" if witness else note,
                    )
                )
    info = {"curve": curve.describe()}
    if rule:
        info["claimed_rule"] = rule
    return AuditResult(
        verdicts,
        method="deriv",
        mode="exact",
        dtype=claims[orders[0]].dtype,
        evaluations=evals,
        info=info,
    )


def curve_from_json(d, input_set, where="curve"):
    """A :class:`Curve` from ``{"origin", "direction", "t_range"}`` (origin default: the centre
    of the input set's bounding box; t_range default: the part of the line inside it) or
    ``{"wrt": i}`` (over the input set's bounding box)."""
    if not isinstance(d, dict):
        raise MalformedFileError(f"{where}: expected an object with 'direction' or 'wrt'")
    if "wrt" in d:
        return make_curve(input_set, wrt=d["wrt"])
    if "direction" not in d:
        raise MalformedFileError(
            f"{where}: expected 'direction' (and 'origin', 't_range') or 'wrt'"
        )
    tr = d.get("t_range")
    if "t_range" in d and (not isinstance(tr, (list, tuple)) or len(tr) != 2):
        raise MalformedFileError(f"{where}.t_range: expected [lo, hi]")
    return make_curve(input_set, None, d["direction"], d.get("origin"), tr)


def audit_derivative_claims(
    graph,
    input_set,
    data,
    *,
    source="claim",
    dtype=None,
    bits=None,
    max_bits=4096,
    budget=400,
    seed=0,
    find_all=False,
    n_random=8,
):
    """Audit the claim document ``data`` (parsed JSON, see the module docstring: ``"curve"`` and
    ``"first_derivative"``/``"second_derivative"``) on ``graph`` over ``input_set``;
    ``source`` names it in errors. ``exactbounds check --method deriv`` calls this."""
    if not isinstance(data, dict):
        raise MalformedFileError(f"{source}: expected a JSON object")
    curve = curve_from_json(data.get("curve"), input_set, f"{source}: curve")
    claims = {}
    for k, keys in CLAIM_KEYS.items():
        for key in keys:
            if key in data:
                claims[k] = parse_claim(data[key], None, dtype, where=f"{source}: {key}")
                break
    if not claims:
        raise MalformedFileError(f"{source}: no 'first_derivative' or 'second_derivative' claim")
    return audit_derivatives(
        graph,
        curve,
        claims,
        bits=bits or 128,
        max_bits=max_bits,
        budget=budget,
        seed=seed,
        find_all=find_all,
        n_random=n_random,
        rule=data.get("second_derivative_rule"),
        pieces=_claimed_pieces(data, source),
    )


def _claimed_pieces(data, where):
    """``refinement.pieces`` of a claim file (None without refinement)."""
    r = data.get("refinement")
    if r is None:
        return None
    n = r.get("pieces") if isinstance(r, dict) else None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise MalformedFileError(f"{where}: refinement.pieces: expected an integer >= 1")
    return n


__all__ = [
    "ExactDerivatives",
    "arb_eval",
    "audit_derivatives",
    "audit_derivative_claims",
    "curve_from_json",
    "method_bounds",
]
