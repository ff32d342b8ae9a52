"""VNN-LIB property files: the input box and the output property, every decimal read exactly.

Accepted syntax (the subset of SMT-LIB that VNN-COMP specs use)::

    ; comment
    (declare-const X_0 Real)            (declare-fun Y_0 () Real)
    (assert (<= X_0 0.1))               (assert (>= X_0 -0.1))
    (assert (<= (* -1.0 X_0) 0.1))      (assert (and (<= X_1 1) (>= X_1 0)))
    (assert (or (and (>= Y_0 Y_1) (>= Y_0 0.5)) (and (<= Y_2 -1e-3))))

Terms are linear: numbers (decimals such as ``0.1`` are the exact decimal, never a float), the
variables ``X_i`` / ``Y_i``, ``(* c t)``, ``(+ t ...)``, ``(- t)``, ``(- t u ...)`` and
``(/ t c)``. Atoms are ``<= >= < > =`` (chained as in SMT-LIB); formulas ``and``/``or`` of atoms.

Meaning (VNN-LIB convention): the assertions describe a *counterexample*. A network violates
the property iff some ``x`` in the input set gives outputs ``y`` satisfying the output formula;
a verifier proves the property by showing the output formula is unreachable.

Input constraints: each atom over one variable bounds it (a strict ``<`` bounds it by its
closure, which is a superset, so bounding over it stays sound). Atoms over several inputs form a
polytope: with ``polytope="box"`` (default) they are kept in ``VnnlibSpec.input_constraints``,
the input set is the enclosing box of the single-variable bounds, and ``VnnlibSpec.relaxed`` is
true (the bounds are sound for the polytope, not tight); with ``polytope="error"`` they are
refused. A variable without a lower or an upper bound is an error.

An assertion that is an ``or`` over input constraints only (ACAS Xu property 6) makes the input
set a union of boxes: ``VnnlibSpec.regions`` lists them (each also bounded by the other input
assertions; several such ors multiply), ``input_box`` is their hull and
``multi_region`` is true; ``bounds --spec`` bounds and judges each region. A clause mixing
inputs and outputs must constrain the inputs identically in every disjunct.

The output formula is kept in disjunctive normal form, :class:`OutputProperty`: ``clauses`` is a
tuple of conjunctions of :class:`LinearComparison` ``Σ_k a_k·Y_k  op  rhs`` with ``op`` one of
``<=``, ``<``, ``=`` (``>=``/``>`` are stored negated).

Parsing takes time linear in the file's length and never recurses: the s-expressions are read
with an explicit stack and terms and formulas are folded bottom-up (:func:`_fold`), so a file
nested thousands deep or an ``and`` of 30,000 atoms is read as fast as a flat one. Limits: at
most :data:`MAX_VARS` variables of each kind, :data:`MAX_CLAUSES` output clauses, constants of at
most :data:`MAX_CONST_BITS` bits (numbers themselves as in ``numbers.convert``).
"""

import re
from dataclasses import dataclass, field

from flint import fmpq

from ..core import Box
from ..errors import AmbiguousBranch, InvalidBoxError, InvalidValueError, MalformedFileError
from ..numbers import RInterval, rational_str, to_exact
from .files import read_text

_VAR = re.compile(r"^([XY])_([0-9]+)$", re.ASCII)
_NUM = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$", re.ASCII)
_OPS = {"<=": ("<=", 1), "<": ("<", 1), ">=": ("<=", -1), ">": ("<", -1), "=": ("=", 1)}
_IGNORED = {"check-sat", "get-model", "set-logic", "set-info", "set-option", "exit"}
MAX_CLAUSES = 100_000
MAX_VARS = 10_000_000
MAX_CONST_BITS = 100_000
SHOW_CHARS = 200


# ----------------------------------------------------------------------------- s-expressions


def _tokens(text, src):
    """Tokens with their line numbers; ``;`` starts a comment."""
    out = []
    for ln, line in enumerate(text.splitlines(), 1):
        line = line.split(";", 1)[0]
        for tok in re.findall(r"\(|\)|[^\s()]+", line):
            out.append((tok, ln))
    return out


def parse_sexprs(text, src="<string>"):
    """The top-level s-expressions of ``text`` as nested lists of ``(token, line)`` leaves."""
    stack, top = [], []
    for tok, ln in _tokens(text, src):
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if not stack:
                raise MalformedFileError(f"{src}:{ln}: unbalanced ')'")
            done = stack.pop()
            (stack[-1] if stack else top).append(done)
        else:
            if not stack:
                raise MalformedFileError(f"{src}:{ln}: {tok!r} outside parentheses")
            stack[-1].append((tok, ln))
    if stack:
        raise MalformedFileError(f"{src}: unbalanced '(': {len(stack)} left open at the end")
    return top


def _line(e):
    while isinstance(e, list):
        if not e:
            return "?"
        e = e[0]
    return e[1]


def _show(e, limit=None):
    """The source text of ``e`` (iteratively), cut after about ``limit`` characters."""
    out, n, todo = [], 0, [e]
    while todo:
        x = todo.pop()
        if isinstance(x, str):
            piece = x
        elif isinstance(x, tuple):
            piece = x[0]
        else:
            todo.append(")")
            todo.extend(
                reversed([u for k, u in enumerate(x) for u in ((u,) if k == 0 else (" ", u))])
            )
            piece = "("
        out.append(piece)
        n += len(piece)
        if limit is not None and n > limit:
            return "".join(out)[:limit] + " …"
    return "".join(out)


def _fold(root, children, combine):
    """Post-order fold of an s-expression without recursion: ``children(x)`` lists the
    sub-expressions of ``x`` evaluated first (``[]`` for a leaf), ``combine(x, values)`` gives
    the value of ``x`` from theirs. Each node is visited twice: linear time."""
    todo, vals = [(root, None)], []
    while todo:
        x, kids = todo.pop()
        if kids is None:
            kids = children(x)
            todo.append((x, kids))
            todo.extend((k, None) for k in reversed(kids))
        else:
            n = len(kids)
            args = vals[len(vals) - n :]
            del vals[len(vals) - n :]
            vals.append(combine(x, args))
    return vals[0]


def _conj(dnf, sub, err):
    """The DNF of ``dnf and sub`` (both lists of clauses). ``dnf``'s clause lists are owned by
    the caller and may be extended in place, so a long conjunction of atoms costs linear time;
    ``err(msg)`` builds the error raised beyond ``MAX_CLAUSES`` clauses."""
    if len(sub) == 1:
        for cl in dnf:
            cl.extend(sub[0])
        return dnf
    if len(dnf) * len(sub) > MAX_CLAUSES:
        raise err(f"more than {MAX_CLAUSES} clauses in disjunctive normal form")
    return [a + b for a in dnf for b in sub]


# ----------------------------------------------------------------------------- data structures


@dataclass(frozen=True)
class LinearComparison:
    """``Σ_k coeffs[k]·V_k  op  rhs`` over the variables ``V = var`` (``"X"`` or ``"Y"``);
    ``coeffs`` is a tuple of ``(index, nonzero fmpq)`` sorted by index, ``op`` is ``"<="``,
    ``"<"`` or ``"="``, ``rhs`` an exact ``fmpq``; ``text`` is the source atom."""

    coeffs: tuple
    op: str
    rhs: object
    var: str = "Y"
    text: str = ""

    def lhs(self, v):
        """``Σ a_k·v_k`` exactly (``v`` exact numbers, or ``RInterval`` enclosures)."""
        acc = fmpq(0)
        for k, a in self.coeffs:
            acc = acc + a * v[k]
        return acc

    def holds(self, v):
        """Whether the comparison holds at the point ``v`` (exact). For enclosures the answer
        must be the same for every point inside, else ``AmbiguousBranch``."""
        t = self.truth(v)
        if t is None:
            raise AmbiguousBranch(f"{self.text or self}", self.lhs(v))
        return t

    def truth(self, v):
        """``True``/``False``, or ``None`` when an enclosure in ``v`` does not decide it."""
        s = self.lhs(v)
        if not isinstance(s, RInterval):
            return self._decide(s)
        if self.op == "=":
            return False if (s.hi < self.rhs or s.lo > self.rhs) else None
        lo, hi = self._decide(s.lo), self._decide(s.hi)
        return lo if lo == hi else None

    def _decide(self, s):
        if self.op == "<=":
            return s <= self.rhs
        if self.op == "<":
            return s < self.rhs
        return s == self.rhs

    def range_over_box(self, lo, hi):
        """Exact ``(min, max)`` of the left side over the box ``lo <= v <= hi``."""
        mn = mx = fmpq(0)
        for k, a in self.coeffs:
            if a > 0:
                mn, mx = mn + a * lo[k], mx + a * hi[k]
            else:
                mn, mx = mn + a * hi[k], mx + a * lo[k]
        return mn, mx

    def refuted_by_box(self, lo, hi):
        """True when no point of the box ``[lo, hi]`` (exact ends) satisfies the comparison."""
        mn, mx = self.range_over_box(lo, hi)
        if self.op == "<=":
            return mn > self.rhs
        if self.op == "<":
            return mn >= self.rhs
        return mn > self.rhs or mx < self.rhs

    def __str__(self):
        terms = " + ".join(f"{rational_str(a)}*{self.var}_{k}" for k, a in self.coeffs) or "0"
        return f"{terms} {self.op} {rational_str(self.rhs)}"


@dataclass(frozen=True)
class OutputProperty:
    """The output formula in disjunctive normal form: ``clauses[i]`` is a tuple of
    :class:`LinearComparison` over ``Y`` that must all hold; the formula is the ``or`` of the
    clauses. Per the VNN-LIB convention the formula describes a counterexample. No output
    assertion gives ``clauses == ((),)`` (one empty conjunction: ``true``); ``clauses == ()``
    is ``false`` (an assertion that is false whatever the values: nothing to reach)."""

    clauses: tuple
    n_outputs: int

    @property
    def trivial(self):
        """Whether the formula is ``true`` (every output is a counterexample)."""
        return any(not cl for cl in self.clauses)

    def evaluate(self, y):
        """Whether the output formula holds at ``y`` (exact; ``True`` = ``y`` is a
        counterexample). ``AmbiguousBranch`` if an enclosure does not decide it."""
        if self.n_outputs and len(y) != self.n_outputs:
            raise InvalidValueError("y", f"{len(y)} entries", f"expected {self.n_outputs}")
        undecided = None
        for clause in self.clauses:
            ts = [c.truth(y) for c in clause]
            if False in ts:
                continue
            if None not in ts:
                return True
            undecided = clause[ts.index(None)]
        if undecided is not None:
            raise AmbiguousBranch(f"{undecided.text or undecided}", undecided.lhs(y))
        return False

    def comparisons(self):
        """Every distinct :class:`LinearComparison`, in order of first appearance."""
        seen, out = set(), []
        for clause in self.clauses:
            for c in clause:
                key = (c.coeffs, c.op, c.rhs)
                if key not in seen:
                    seen.add(key)
                    out.append(c)
        return out

    def proved_by_box(self, lo, hi):
        """True when output bounds ``lo <= y <= hi`` (exact ends) show the formula unreachable:
        every clause contains a comparison that no point of the box satisfies."""
        return all(any(c.refuted_by_box(lo, hi) for c in clause) for clause in self.clauses)

    def __str__(self):
        if self.trivial or not self.clauses:
            return "true" if self.clauses else "false"
        return " or ".join("(" + " and ".join(str(c) for c in cl) + ")" for cl in self.clauses)


@dataclass
class VnnlibSpec:
    """A parsed VNN-LIB file: the input box (exact ends), the output property, and the
    multi-input constraints (a polytope) that the box encloses; ``relaxed`` is true when there
    are such constraints, i.e. the box is a sound superset of the real input set."""

    input_box: Box
    output: OutputProperty
    n_inputs: int
    n_outputs: int
    input_constraints: list = field(default_factory=list)
    source: str = "<string>"
    regions: tuple = ()

    @property
    def relaxed(self):
        return bool(self.input_constraints)

    @property
    def input_regions(self):
        """The input set as a union of boxes: ``regions`` for a file whose inputs are an ``or``
        of boxes (``input_box`` is then their hull), else ``(input_box,)``."""
        return self.regions or (self.input_box,)

    @property
    def multi_region(self):
        """Whether the input set is a union of several boxes (bound and judge each one)."""
        return len(self.regions) > 1

    def evaluate(self, y):
        """Shorthand for ``self.output.evaluate(y)``."""
        return self.output.evaluate(y)


# ----------------------------------------------------------------------------- parsing


class _Parser:
    def __init__(self, src):
        self.src = src
        self.decl = {"X": set(), "Y": set()}

    def err(self, e, msg):
        return MalformedFileError(f"{self.src}:{_line(e)}: {msg}: {_show(e, SHOW_CHARS)}")

    def index(self, e, tok):
        """``(kind, index)`` of a variable token ``X_i``/``Y_i``, or ``None``."""
        m = _VAR.match(tok)
        if not m:
            return None
        if len(m.group(2)) > len(str(MAX_VARS)) or int(m.group(2)) >= MAX_VARS:
            raise self.err(e, f"variable index beyond {MAX_VARS - 1}")
        return m.group(1), int(m.group(2))

    def declare(self, e):
        head = e[0][0]
        if head == "declare-const":
            ok = (
                len(e) == 3
                and isinstance(e[1], tuple)
                and isinstance(e[2], tuple)
                and e[2][0] == "Real"
            )
        else:  # declare-fun NAME () Real
            ok = (
                len(e) == 4
                and isinstance(e[1], tuple)
                and e[2] == []
                and isinstance(e[3], tuple)
                and e[3][0] == "Real"
            )
        if not ok:
            raise self.err(
                e, f"expected ({head} NAME {'' if head == 'declare-const' else '() '}Real)"
            )
        vi = self.index(e, e[1][0])
        if vi is None:
            raise self.err(e, f"variable {e[1][0][:40]!r} is not named X_i or Y_i")
        v, i = vi
        if i in self.decl[v]:
            raise self.err(e, f"{e[1][0]} declared twice")
        self.decl[v].add(i)

    def term(self, e):
        """A linear term as ``(var or None, {index: coeff}, const)``."""
        return _fold(e, self._term_children, self._term_value)

    def _term_children(self, e):
        if isinstance(e, tuple):
            return []
        if not e or not isinstance(e[0], tuple):
            raise self.err(e, "expected a term")
        if len(e) < 2:
            raise self.err(e, f"{e[0][0]!r} needs arguments")
        return e[1:]

    def _term_value(self, e, args):
        if isinstance(e, tuple):
            tok = e[0]
            vi = self.index(e, tok)
            if vi is not None:
                v, i = vi
                if i not in self.decl[v]:
                    raise self.err(e, f"{tok} is used but not declared")
                return v, {i: fmpq(1)}, fmpq(0)
            if _NUM.match(tok):
                return None, {}, to_exact(tok, f"{self.src}:{e[1]}")
            raise self.err(e, f"unknown symbol {tok[:40]!r}")
        head = e[0][0]
        if head == "+":
            return self._sum(e, args)
        if head == "-":
            if len(args) == 1:
                return self._scale(args[0], fmpq(-1))
            return self._sum(e, [args[0]] + [self._scale(a, fmpq(-1)) for a in args[1:]])
        if head == "*":
            var = [a for a in args if a[0] is not None]
            if len(var) > 1:
                raise self.err(e, "product of two variables: not linear")
            c = fmpq(1)
            for a in args:
                if a[0] is None:
                    c *= a[2]
                    self.small(e, c)
            return self._scale(var[0], c) if var else (None, {}, c)
        if head == "/":
            if len(args) != 2 or args[1][0] is not None:
                raise self.err(e, "division by a non-constant")
            if args[1][2] == 0:
                raise self.err(e, "division by zero")
            return self._scale(args[0], 1 / args[1][2])
        raise self.err(e, f"unsupported term operator {head[:40]!r}")

    def small(self, e, c):
        """``c``, refused when its numerator or denominator has more than MAX_CONST_BITS."""
        if c.height_bits() > MAX_CONST_BITS:
            raise self.err(e, f"a constant of more than {MAX_CONST_BITS} bits")
        return c

    @staticmethod
    def _scale(t, c):
        if c == 1:
            return t
        return t[0], {k: a * c for k, a in t[1].items()}, t[2] * c

    def _sum(self, e, args):
        vars_ = {a[0] for a in args if a[0] is not None}
        if len(vars_) > 1:
            raise self.err(e, "a term mixes inputs X and outputs Y")
        co, c = {}, fmpq(0)
        for a in args:
            for k, v in a[1].items():
                co[k] = co.get(k, fmpq(0)) + v
            c += a[2]
        return (vars_.pop() if vars_ else None), co, c

    def atom(self, e, head):
        """The comparisons of an atom (chained as in SMT-LIB: ``(<= a b c)`` is ``a <= b`` and
        ``b <= c``); a comparison without variables is decided exactly: dropped when true,
        ``None`` (the atom is false) when false."""
        if len(e) < 3:
            raise self.err(e, f"{head!r} needs two or more operands")
        terms = [self.term(a) for a in e[1:]]
        out = []
        for a, b in zip(terms, terms[1:]):
            d = self._sum(e, [a, self._scale(b, fmpq(-1))])
            op, sgn = _OPS[head]
            coeffs = tuple(sorted((k, v * sgn) for k, v in d[1].items() if v != 0))
            c = LinearComparison(coeffs, op, -d[2] * sgn, d[0] or "Y", _show(e))
            if not coeffs:
                if not c.holds([]):
                    return None
                continue
            out.append(c)
        return out

    def formula(self, e):
        """DNF of a formula: a list of clauses, each a list of comparisons."""
        return _fold(e, self._formula_children, self._formula_value)

    def _formula_children(self, e):
        if not isinstance(e, list) or not e or not isinstance(e[0], tuple):
            raise self.err(e, "expected a formula")
        head = e[0][0]
        if head in _OPS:
            return []
        if head in ("and", "or"):
            if head == "or" and len(e) < 2:
                raise self.err(e, "empty 'or'")
            return e[1:]
        raise self.err(
            e, f"unsupported formula operator {head[:40]!r} (supported: and, or, <=, >=, <, >, =)"
        )

    def _formula_value(self, e, args):
        head = e[0][0]
        if head in _OPS:
            got = self.atom(e, head)
            return [] if got is None else [got]
        if head == "and":
            dnf = [[]]
            for sub in args:
                dnf = _conj(dnf, sub, lambda msg: self.err(e, msg))
            return dnf
        dnf = [cl for sub in args for cl in sub]
        return [[]] if any(not cl for cl in dnf) else dnf  # a true clause: all true


def _declared_range(decl, v, src):
    n = len(decl)
    if max(decl) != n - 1:  # n distinct indices >= 0 are 0..n-1 exactly when the max is n-1
        missing = next(i for i, k in enumerate(sorted(decl)) if i != k)
        raise MalformedFileError(f"{src}: {v}_{missing} is not declared, but {v}_{max(decl)} is")
    return n


def parse_vnnlib(text, src="<string>", polytope="box"):
    """Parse VNN-LIB ``text``; returns a :class:`VnnlibSpec`. ``polytope`` is ``"box"`` (bound
    multi-input constraints by their enclosing box, ``spec.relaxed`` set) or ``"error"``."""
    if polytope not in ("box", "error"):
        raise InvalidValueError("polytope", polytope, "expected 'box' or 'error'")
    p = _Parser(src)
    input_atoms, out_dnf, regions = [], [[]], [[]]
    for e in parse_sexprs(text, src):
        if not e or not isinstance(e[0], tuple):
            raise p.err(e, "expected a command")
        head = e[0][0]
        if head in ("declare-const", "declare-fun"):
            p.declare(e)
        elif head == "assert":
            if len(e) != 2:
                raise p.err(e, "assert takes one formula")
            dnf = p.formula(e[1])
            kinds = {c.var for cl in dnf for c in cl}
            if not kinds:  # decided exactly: true changes nothing, false makes all false
                if not dnf:
                    out_dnf = []
            elif kinds == {"X"}:
                if len(dnf) == 1:
                    input_atoms += dnf[0]
                else:  # an ``or`` of input boxes: the regions multiply
                    regions = _conj(regions, dnf, lambda msg, e=e: p.err(e, msg))
            elif kinds == {"Y"}:
                out_dnf = _conj(out_dnf, dnf, lambda msg, e=e: p.err(e, msg))
            else:
                inputs = {
                    frozenset((c.coeffs, c.op, c.rhs) for c in cl if c.var == "X") for cl in dnf
                }
                if len(inputs) != 1:
                    raise p.err(
                        e,
                        "a disjunction whose clauses constrain the inputs "
                        "differently is not supported",
                    )
                input_atoms += [c for c in dnf[0] if c.var == "X"]
                out_dnf = _conj(
                    out_dnf,
                    [[c for c in b if c.var == "Y"] for b in dnf],
                    lambda msg, e=e: p.err(e, msg),
                )
        elif head in _IGNORED:
            continue
        else:
            raise p.err(e, f"unsupported command {head!r}")
    if not p.decl["X"]:
        raise MalformedFileError(f"{src}: no input variables X_i declared")
    n_in = _declared_range(p.decl["X"], "X", src)
    n_out = _declared_range(p.decl["Y"], "Y", src) if p.decl["Y"] else 0
    poly = [c for c in input_atoms if len(c.coeffs) > 1]
    multi = len(regions) > 1
    boxes = []
    for r, extra in enumerate(regions):
        name = f"{src}: input region {r}" if multi else f"{src}: input"
        lo, hi, _ = _region_ends(input_atoms + extra, n_in, name, polytope)
        poly += [c for c in extra if len(c.coeffs) > 1]
        boxes.append(Box(lo, hi, name=name))
    box = boxes[0]
    if multi:
        lo = [min(b.lo[k] for b in boxes) for k in range(n_in)]
        hi = [max(b.hi[k] for b in boxes) for k in range(n_in)]
        box = Box(lo, hi, name=f"{src}: input (hull of {len(boxes)} regions)")
    clauses = ((),) if any(not cl for cl in out_dnf) else tuple(tuple(cl) for cl in out_dnf)
    return VnnlibSpec(
        box, OutputProperty(clauses, n_out), n_in, n_out, poly, src, tuple(boxes) if multi else ()
    )


def _region_ends(atoms, n_in, name, polytope):
    """``(lo, hi, polytope atoms)``: the exact ends of the box that the single-input ``atoms``
    bound, and the atoms over several inputs (which the box encloses)."""
    lo, hi, poly = [None] * n_in, [None] * n_in, []
    for c in atoms:
        if len(c.coeffs) > 1:
            if polytope == "error":
                raise MalformedFileError(
                    f"{name} constraint {c.text} involves several inputs (a polytope); "
                    "use polytope='box' to bound over its enclosing box"
                )
            poly.append(c)
            continue
        ((k, a),) = c.coeffs
        v = c.rhs / a
        ups = [True, False] if c.op == "=" else [a > 0]
        for up in ups:
            ends = hi if up else lo
            if ends[k] is None or (v < ends[k] if up else v > ends[k]):
                ends[k] = v
    for k in range(n_in):
        for ends, what in ((lo, "lower"), (hi, "upper")):
            if ends[k] is None:
                raise InvalidBoxError(
                    f"{name} X_{k} has no {what} bound (unbounded inputs are not supported)"
                )
    return lo, hi, poly


def load_vnnlib(path, polytope="box"):
    """Read and parse a VNN-LIB file (see :func:`parse_vnnlib`)."""
    return parse_vnnlib(read_text(path), str(path), polytope)
