"""The obligation framework: run the package's own operators under ``SymbolicContext``, split
on every undecided branch, and decide the goals with sympy.

An obligation is a function ``build(ops, ctx, v)``; its docstring is the Lean statement.

* ``ops`` is an :class:`Operators` namespace (the package's functions by default; a test may
  inject a deliberately broken copy with ``ops.replace(name=fn)``);
* ``ctx`` is a :class:`~exactbounds.numbers.SymbolicContext` carrying the current case;
* ``v`` is a :class:`Vars`: ``v.real(name)``, ``v.pos(name)``, ``v.nonneg(name)`` make the
  symbols. Every hypothesis is a symbol assumption; a relation between symbols is written
  as a parametrisation (``lo <= hi`` is ``hi = lo + d`` with ``d >= 0``).

``build`` returns goals: :func:`Eq` (the difference simplifies to 0), :func:`Ge`/:func:`Gt`
(sympy decides the sign from the assumptions), :func:`Holds` (a structural fact: shapes).

Checking (:meth:`Obligation.check`):

* When the operator raises ``NeedsCaseSplit(e)``, the build is re-run three times with
  ``SymbolicContext(assume={e: s})`` for ``s`` = 1, 0, -1 (nested splits accumulate). For the
  goals' decision under a case, the fact is substituted: ``e`` (up to factors of known sign)
  a symbol ``g`` becomes ``g -> +k``, ``0``, ``-k`` with a fresh positive ``k``; ``e`` linear
  in a real symbol with a coefficient of known sign is solved for it. Otherwise the fact is
  not used (sound: fewer hypotheses), and a goal that needed it stays ``unknown``.
  A case whose sign contradicts a symbol's assumptions (``d < 0`` for ``d >= 0``) is vacuous.
* A goal is ``proved`` when sympy shows it (zero difference after ``expand``/``cancel``/
  ``factor``/``simplify``; ``is_nonnegative``/``is_positive`` of the difference). Nothing
  numeric ever proves a goal.
* Otherwise rational points are drawn (seeded) that satisfy every symbol assumption and the
  case's sign conditions, checked exactly (:func:`proofs.exact.exact_sign`); a point where
  the goal's negation holds is re-checked by re-running the operators on the point's
  rationals with no assumptions, and is then the counterexample: ``refuted``.
* A goal neither proved nor refuted is ``unknown``; the obligation is ``refuted`` if any case
  is, else ``error`` if the operators raised (anything but ``NeedsCaseSplit``), else
  ``unknown`` if any goal is, else ``proved``.
"""

import inspect
import random
import time
import types
import zlib
from dataclasses import dataclass, field

import sympy

from exactbounds.errors import NeedsCaseSplit
from exactbounds.numbers import SymbolicContext

from .exact import exact_sign

PROVED, REFUTED, UNKNOWN, CHECKED, ERROR = "proved", "refuted", "unknown", "checked", "error"
MAX_SPLIT_DEPTH = 8
SAMPLES = 300
_SIGN_WORD = {1: "> 0", 0: "= 0", -1: "< 0"}
_ASSUMPTIONS = ("positive", "nonnegative", "negative", "nonpositive", "zero", "nonzero", "integer")


# -- operators -------------------------------------------------------------------------------


class Operators(types.SimpleNamespace):
    """The functions an obligation calls. ``replace(**fns)`` returns a copy with some of them
    swapped (how the tests inject a deliberately broken operator)."""

    def replace(self, **fns):
        unknown = sorted(set(fns) - set(vars(self)))
        if unknown:
            raise KeyError(f"no operator named {unknown[0]!r}")
        return Operators(**{**vars(self), **fns})


def default_ops():
    """The package's own operators and types."""
    from exactbounds.core import AffineVec, Box
    from exactbounds.numbers import RationalContext, sqrt_enclosure
    from exactbounds.operators import batchnorm as bn

    names = (
        "BatchNormParams",
        "BatchNorm",
        "compute_scale",
        "compute_offset",
        "evaluate_batchnorm",
        "ibp_batchnorm",
        "aff_batchnorm",
        "deriv_batchnorm",
        "deriv2_batchnorm",
        "second_deriv_batchnorm",
    )
    return Operators(
        **{n: getattr(bn, n) for n in names},
        Box=Box,
        AffineVec=AffineVec,
        RationalContext=RationalContext,
        sqrt_enclosure=sqrt_enclosure,
    )


# -- symbols ---------------------------------------------------------------------------------


class Vars:
    """Makes an obligation's symbols. With a ``point`` (name -> rational) it returns the
    point's rationals instead (re-checking a counterexample); a name missing from the point
    takes the smallest value its assumptions allow."""

    def __init__(self, point=None):
        self.point = point
        self.symbols = {}

    def symbol(self, name, **assumptions):
        s = sympy.Symbol(name, real=True, **assumptions)
        self.symbols[name] = s
        if self.point is None:
            return s
        if name in self.point:
            val = sympy.Rational(self.point[name])
        else:
            val = sympy.Integer(1 if s.is_positive else 0)
        if not satisfies(s, val):
            raise ValueError(f"{name} = {val} violates the assumptions of {name}")
        return val

    def real(self, name):
        return self.symbol(name)

    def pos(self, name):
        return self.symbol(name, positive=True)

    def nonneg(self, name):
        return self.symbol(name, nonnegative=True)

    def reals(self, name, n):
        return [self.real(f"{name}{i}") for i in range(n)]

    def interval(self, name, n, point=True):
        """``lo <= x <= hi`` written as ``x = lo + u``, ``hi = x + w`` with ``u, w >= 0``:
        returns ``(lo, x, hi)`` lists (``x`` is ``None`` without ``point``)."""
        lo = self.reals(f"{name}lo", n)
        if not point:
            d = [self.nonneg(f"{name}d{i}") for i in range(n)]
            return lo, None, [a + b for a, b in zip(lo, d)]
        u = [self.nonneg(f"{name}u{i}") for i in range(n)]
        w = [self.nonneg(f"{name}w{i}") for i in range(n)]
        x = [a + b for a, b in zip(lo, u)]
        return lo, x, [a + b for a, b in zip(x, w)]


def satisfies(sym, val):
    """Whether the rational ``val`` meets every assumption of ``sym`` (checked exactly)."""
    val = sympy.Rational(val)
    checks = {
        "positive": val > 0,
        "nonnegative": val >= 0,
        "negative": val < 0,
        "nonpositive": val <= 0,
        "zero": val == 0,
        "nonzero": val != 0,
        "integer": val.q == 1,
    }
    return all(bool(checks[a]) for a in _ASSUMPTIONS if getattr(sym, f"is_{a}") is True)


def hypothesis_text(sym):
    """The assumption a symbol carries, as text: ``eps > 0``, ``var0 >= 0``, ``x real``."""
    for a, text in (
        ("positive", "> 0"),
        ("nonnegative", ">= 0"),
        ("negative", "< 0"),
        ("nonpositive", "<= 0"),
    ):
        if getattr(sym, f"is_{a}") is True:
            return f"{sym.name} {text}"
    return f"{sym.name} real"


# -- goals -----------------------------------------------------------------------------------


@dataclass
class Goal:
    """``kind`` "eq": ``expr = 0``; "ge": ``expr >= 0``; "gt": ``expr > 0``; "holds": ``expr``
    is a Python bool (``witness`` describes the instance)."""

    kind: str
    expr: object
    label: str
    witness: dict | None = None


def Eq(lhs, rhs, label):
    return Goal("eq", sympy.sympify(lhs) - sympy.sympify(rhs), label)


def Ge(lhs, rhs, label):
    """``lhs >= rhs``."""
    return Goal("ge", sympy.sympify(lhs) - sympy.sympify(rhs), label)


def Gt(lhs, rhs, label):
    """``lhs > rhs``."""
    return Goal("gt", sympy.sympify(lhs) - sympy.sympify(rhs), label)


def Holds(cond, label, witness=None):
    return Goal("holds", bool(cond), label, dict(witness or {}))


def _forms(e):
    """Cheap to expensive rewritings of ``e``; each is equal to ``e``."""
    yield e
    yield sympy.expand(e)
    yield sympy.cancel(sympy.together(e))
    yield sympy.factor(e)
    yield sympy.simplify(e)


def decide(goal, subst=None):
    """True when sympy proves the goal (after the case substitution); otherwise False."""
    if goal.kind == "holds":
        return goal.expr
    e = goal.expr.subs(subst) if subst else goal.expr
    test = {
        "eq": lambda f: f == 0 or f.is_zero is True,
        "ge": lambda f: f.is_nonnegative is True,
        "gt": lambda f: f.is_positive is True,
    }[goal.kind]
    try:
        return any(test(f) for f in _forms(e))
    except Exception:  # sympy gives up in several ways; "not proved" is the safe answer
        return False


def violated(goal, value_sign):
    """Whether a goal's expression with exact sign ``value_sign`` violates it."""
    if value_sign is None:
        return False
    return {"eq": value_sign != 0, "ge": value_sign < 0, "gt": value_sign <= 0}[goal.kind]


# -- case splits -----------------------------------------------------------------------------


def _fresh(sym, s):
    return sympy.Symbol(f"{sym.name}_{'pos' if s > 0 else 'neg'}", positive=True)


def case_substitution(expr, s, subst):
    """Extend ``subst`` (a dict) with a substitution that makes ``sign(expr) = s`` visible to
    sympy. Returns ``False`` when the case contradicts the assumptions (vacuous), else True
    (``subst`` is left unchanged when no sound substitution is found)."""
    e = sympy.sympify(expr).subs(subst)
    coeff, factors = e.as_coeff_mul()
    t = s * (1 if coeff > 0 else -1)
    rest = []
    for f in factors:
        if f.is_positive:
            continue
        if f.is_negative:
            t = -t
            continue
        rest.append(f)
    if len(rest) == 1 and rest[0].is_Symbol:
        v = rest[0]
        if (
            (t > 0 and v.is_nonpositive)
            or (t == 0 and v.is_nonzero)
            or (t < 0 and v.is_nonnegative)
        ):
            return False
        _compose(subst, v, 0 if t == 0 else t * _fresh(v, t))
        return True
    for v in sorted(e.free_symbols, key=lambda z: z.name):
        if v in subst or any(getattr(v, f"is_{a}") for a in _ASSUMPTIONS if a != "integer"):
            continue
        poly = sympy.Poly(e, v) if e.is_polynomial(v) else None
        if poly is None or poly.degree() != 1:
            continue
        c, r = poly.all_coeffs()
        if c.is_positive or c.is_negative:
            k = 0 if s == 0 else s * _fresh(v, s)
            _compose(subst, v, (k - r) / c)
            return True
    return True


def _compose(subst, v, repl):
    """Add ``v -> repl`` to ``subst``, rewriting the earlier values that mention ``v``."""
    for key, val in subst.items():
        subst[key] = sympy.sympify(val).subs(v, repl)
    subst[v] = repl


# -- results ---------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    lean: str
    expected: str
    status: str = UNKNOWN
    cases: int = 0
    seconds: float = 0.0
    counterexample: dict | None = None
    detail: str = ""
    case_list: list = field(default_factory=list)
    hypotheses: list = field(default_factory=list)
    goal: str | None = None  # the refuted goal's label
    case: str | None = None  # the case it was refuted in
    statement: str = ""

    @property
    def ok(self):
        return self.status == self.expected

    def as_dict(self):
        return {
            "obligation": self.name,
            "lean": self.lean,
            "cases": self.cases,
            "status": self.status,
            "expected": self.expected,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "counterexample": self.counterexample,
            "goal": self.goal,
            "case": self.case,
            "detail": self.detail,
            "hypotheses": self.hypotheses,
            "statement": self.statement,
            "case_list": self.case_list,
        }


def case_text(case):
    return ", ".join(f"{e} {_SIGN_WORD[s]}" for e, s in case) or "(no split)"


def _seed(*parts):
    return zlib.crc32("|".join(map(str, parts)).encode())


_NICE = [
    sympy.Rational(p, q)
    for p, q in (
        (1, 1),
        (2, 1),
        (1, 2),
        (3, 1),
        (1, 3),
        (3, 2),
        (2, 3),
        (5, 4),
        (7, 1),
        (1, 7),
        (5, 3),
    )
]


def sample_value(sym, rng):
    """A rational meeting ``sym``'s assumptions (drawn from small and random rationals)."""
    for _ in range(100):
        mag = (
            rng.choice(_NICE)
            if rng.random() < 0.5
            else sympy.Rational(rng.randint(1, 60), rng.randint(1, 12))
        )
        if sym.is_integer:
            mag = sympy.Integer(max(1, int(mag)))
        r = rng.random()
        val = 0 if r < 0.12 else (mag if r < 0.56 else -mag)
        if satisfies(sym, val):
            return sympy.Rational(val)
    raise ValueError(f"cannot draw a value for {sym} with its assumptions")


# -- obligations -----------------------------------------------------------------------------


class Obligation:
    """A theorem statement replayed against the operators. ``build(ops, ctx, v)`` returns the
    goals; its docstring is the Lean statement. ``expected`` is the status the runner wants."""

    kind = "symbolic"

    def __init__(self, build, name=None, lean=None, expected=PROVED, samples=SAMPLES):
        self.build = build
        self.name = name or build.__name__
        self.lean = lean
        self.expected = expected
        self.samples = samples
        self.statement = inspect.cleandoc(build.__doc__ or "")

    def __repr__(self):
        return f"Obligation({self.name!r})"

    # the run -------------------------------------------------------------------------------
    def goals(self, ops, case=(), point=None, vars_=None):
        """The goals of one case (``case``: a sequence of ``(expr, sign)``)."""
        ctx = SymbolicContext(assume=dict(case))
        return self.build(ops, ctx, Vars(point) if vars_ is None else vars_)

    def check(self, ops=None):
        ops = default_ops() if ops is None else ops
        t0 = time.perf_counter()
        res = Result(self.name, self.lean, self.expected, statement=self.statement)
        statuses = []
        stack = [()]
        symbols = Vars()
        while stack:
            case = stack.pop(0)
            try:
                goals = self.goals(ops, case, vars_=symbols)
            except NeedsCaseSplit as e:
                expr = e.expr
                if len(case) >= MAX_SPLIT_DEPTH or expr.is_extended_real is not True:
                    why = "split too deep" if len(case) >= MAX_SPLIT_DEPTH else "not real"
                    statuses.append(
                        self._record(res, case, UNKNOWN, f"cannot split on {expr} ({why})")
                    )
                    continue
                stack[0:0] = [case + ((expr, s),) for s in (1, 0, -1)]
                continue
            except Exception as e:  # an operator that crashes fails its obligation
                statuses.append(self._record(res, case, ERROR, f"{type(e).__name__}: {e}"))
                break
            status, detail, cex, label = self._check_case(ops, case, goals)
            statuses.append(self._record(res, case, status, detail))
            if status == REFUTED:
                res.counterexample, res.goal, res.case = cex, label, case_text(case)
                break
        res.hypotheses = [hypothesis_text(z) for z in symbols.symbols.values()]
        res.status = (
            REFUTED
            if REFUTED in statuses
            else ERROR
            if ERROR in statuses
            else UNKNOWN
            if UNKNOWN in statuses or not statuses
            else PROVED
        )
        if res.status not in (REFUTED, ERROR):
            res.detail = "; ".join(c["detail"] for c in res.case_list if c["detail"])
        res.seconds = time.perf_counter() - t0
        return res

    @staticmethod
    def _record(res, case, status, detail):
        res.cases += 1
        res.case_list.append({"assume": case_text(case), "status": status, "detail": detail})
        if status in (REFUTED, ERROR):
            res.detail = f"case {case_text(case)}: {detail}"
        return status

    def _check_case(self, ops, case, goals):
        subst = {}
        for expr, s in case:
            if not case_substitution(expr, s, subst):
                return PROVED, "vacuous case", None, None
        open_goals = [g for g in goals if not decide(g, subst)]
        if not open_goals:
            return PROVED, "", None, None
        for g in open_goals:
            if g.kind == "holds":
                return (
                    REFUTED,
                    f"{g.label} fails",
                    {k: str(v) for k, v in g.witness.items()},
                    g.label,
                )
            found = self.find_counterexample(ops, case, subst, g)
            if found is not None:
                cex, val = found
                need = {"eq": "= 0", "ge": ">= 0", "gt": "> 0"}[g.kind]
                return (
                    REFUTED,
                    f"{g.label} fails: the difference is {val} (≈ {float(val):.6g}), not {need}",
                    cex,
                    g.label,
                )
        return UNKNOWN, "undecided: " + ", ".join(g.label for g in open_goals), None, None

    # counterexamples -----------------------------------------------------------------------
    def find_counterexample(self, ops, case, subst, goal):
        """``(point, value)``: a rational point (symbol name -> "p/q") meeting the assumptions
        and the case where ``goal`` fails, re-checked by :meth:`recheck`, and the goal's
        difference there; ``None`` if none was found."""
        rng = random.Random(_seed(self.name, case_text(case), goal.label))
        conds = [(sympy.sympify(e), s) for e, s in case]
        originals = set(goal.expr.free_symbols)
        for e, _ in conds:
            originals |= e.free_symbols
        originals = sorted(originals, key=lambda z: z.name)
        free = set()
        for v in originals:
            free |= subst[v].free_symbols if v in subst else {v}
        free = sorted(free, key=lambda z: z.name)
        for _ in range(self.samples):
            draw = {f: sample_value(f, rng) for f in free}
            point = {}
            for v in originals:
                val = subst[v].subs(draw) if v in subst else draw[v]
                if not (val.is_Rational and satisfies(v, val)):
                    break
                point[v] = val
            else:
                if any(exact_sign(e.subs(point)) != s for e, s in conds):
                    continue
                if not violated(goal, exact_sign(goal.expr.subs(point))):
                    continue
                named = {v.name: str(val) for v, val in point.items()}
                if self.recheck(named, goal.label, ops):
                    return named, goal.expr.subs(point)
        return None

    def recheck(self, point, label, ops=None):
        """Re-run the operators on the rationals of ``point`` (no symbols, no assumptions: the
        branches are decided on the numbers) and check exactly that goal ``label`` fails."""
        ops = default_ops() if ops is None else ops
        try:
            goals = self.goals(ops, (), point)
        except (NeedsCaseSplit, ValueError):
            return False
        for g in goals:
            if g.label == label:
                if g.kind == "holds":
                    return not g.expr
                return violated(g, exact_sign(g.expr))
        return False


def obligation(name=None, lean=None, expected=PROVED, registry=None, **kw):
    """Decorator: ``@obligation(lean="...")`` turns ``build(ops, ctx, v)`` into an
    :class:`Obligation` (and appends it to ``registry`` if given)."""

    def wrap(build):
        ob = Obligation(build, name=name, lean=lean, expected=expected, **kw)
        if registry is not None:
            registry.append(ob)
        return ob

    return wrap
