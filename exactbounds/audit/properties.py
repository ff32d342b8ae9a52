"""VNN-LIB output properties in the audit (``check --spec``).

Per the VNN-LIB convention the output formula describes a counterexample. The property is
``proved`` when the method's exact output bounds refute every clause
(``OutputProperty.proved_by_box`` on the outer ends of the bounds, which is sound). It is
``violated`` when an exact point ``x`` of the input set (satisfying the spec's polytope
constraints too) gives outputs ``y`` that satisfy the formula, decided exactly (enclosures
refined with more bits; an undecided point is never called a counterexample). Otherwise it is
``unknown``.
"""

from dataclasses import dataclass

from flint import fmpq

from ..inputsets import contains, minimizer, sample_mixed
from .methods import affine_forms
from .verdicts import lower_end, upper_end, value_float, value_json

PROVED, VIOLATED, UNKNOWN = "proved", "violated", "unknown"


@dataclass
class PropertyResult:
    """``status``: proved / violated / unknown; ``proved_by``: the method whose bounds prove
    it; ``x``/``y``: the exact counterexample (``y`` entries ``fmpq`` or ``RInterval``);
    ``clause``: the index of the clause it satisfies; ``formula``: the formula as text."""

    status: str
    formula: str
    proved_by: str = ""
    x: list | None = None
    y: list | None = None
    clause: int | None = None
    evaluations: int = 0

    def to_json(self):
        d = {
            "status": self.status,
            "formula": self.formula,
            "proved_by": self.proved_by or None,
            "evaluations": self.evaluations,
        }
        if self.x is not None:
            d["counterexample"] = counterexample_json(self.x, self.y, self.clause)
        return d


def counterexample_json(x, y, clause):
    """An exact counterexample ``x -> y`` violating ``clause``, as JSON: exact ``"p/q"``
    strings and their float64 values."""
    return {
        "x": [value_json(v) for v in x],
        "y": [value_json(v) for v in y],
        "x_float": [value_float(v) for v in x],
        "y_float": [value_float(v) for v in y],
        "clause": clause,
    }


def _clause_holds(clause, y):
    ts = [c.truth(y) for c in clause]
    if False in ts:
        return False
    return True if None not in ts else None


def _violation(clause, y):
    """How far ``y`` is from satisfying the clause (<= 0: satisfied), on midpoints; a search
    heuristic only."""
    worst = None
    for c in clause:
        s = c.lhs(y)
        mid = (lower_end(s) + upper_end(s)) / 2 - c.rhs
        worst = mid if worst is None or mid > worst else worst
    return worst


def check_property(search, spec, exact_out, method, *, points=(), n_random=8, budget=200):
    """Check ``spec.output`` with the method's exact output box ``exact_out`` and exact points.

    ``search`` is a :class:`~.search.WitnessSearch` (for exact evaluation, the input set, the
    constraints and the rng); ``points`` are extra candidates (e.g. the audit's witnesses)."""
    prop = spec.output
    lo = [lower_end(v) for v in exact_out.lo]
    hi = [upper_end(v) for v in exact_out.hi]
    if prop.proved_by_box(lo, hi):
        return PropertyResult(PROVED, str(prop), proved_by=method)
    graph = search.graph
    out = graph.output
    n0 = search.evaluations

    def test(x):
        if not contains(search.input_set, x, search.constraints):
            return None, None
        search.evaluations += 1
        bits, y = search.bits, search.values(x)[out]
        for k, clause in enumerate(prop.clauses or ((),)):
            h = _clause_holds(clause, y)
            while h is None and bits < search.max_bits:
                bits *= 4
                y = search.values(x, bits)[out]
                h = _clause_holds(clause, y)
            if h:
                return k, y
        return None, y

    cands = [list(p) for p in points]
    rows = _output_rows(search)
    if rows is not None:
        for clause in prop.clauses:
            for c in clause:
                r = [
                    sum((a * rows[k][j] for k, a in c.coeffs), fmpq(0))
                    for j in range(graph.input_dim)
                ]
                cands.append(minimizer(search.input_set, r))
    cands += sample_mixed(search.input_set, search.rng, n_random)
    best = None
    for x in cands:
        k, y = test(x)
        if k is not None:
            return PropertyResult(
                VIOLATED, str(prop), x=list(x), y=y, clause=k, evaluations=search.evaluations - n0
            )
        if y is not None and prop.clauses:
            v = min(_violation(cl, y) for cl in prop.clauses)
            if best is None or v < best[0]:
                best = (v, list(x))
    # coordinate search on the smallest clause violation
    if best is not None and budget > 0:
        blo, bhi = search.box
        f, x = best
        step = [(b - a) / 2 for a, b in zip(blo, bhi)]
        spent = 0
        while spent < budget:
            improved = False
            for j in range(len(x)):
                for d in (-1, 1):
                    v = min(max(x[j] + d * step[j], blo[j]), bhi[j])
                    if v == x[j] or spent >= budget:
                        continue
                    z = x[:j] + [v] + x[j + 1 :]
                    spent += 1
                    k, y = test(z)
                    if k is not None:
                        return PropertyResult(
                            VIOLATED,
                            str(prop),
                            x=z,
                            y=y,
                            clause=k,
                            evaluations=search.evaluations - n0,
                        )
                    if y is None:
                        continue
                    g = min(_violation(cl, y) for cl in prop.clauses)
                    if g < f:
                        x, f, improved = z, g, True
            if not improved:
                step = [s / 2 for s in step]
                if all(s == 0 for s in step) or spent >= budget:
                    break
    return PropertyResult(UNKNOWN, str(prop), evaluations=search.evaluations - n0)


def _output_rows(search):
    """The exact matrix ``A`` of the output when the graph is affine and small, else None."""
    forms = affine_forms(search.graph, search.bits)
    got = forms.get(search.graph.output)
    return got[0] if got else None


__all__ = ["PROVED", "VIOLATED", "UNKNOWN", "PropertyResult", "check_property"]
