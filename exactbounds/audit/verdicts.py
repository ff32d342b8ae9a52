"""The audit's result: one :class:`Verdict` per checked output and side.

Every checker (output bounds by IBP/CROWN, intermediate nodes, derivative enclosures) returns a
list of these, so the table, ``--json`` and the HTML report treat them alike.

Verdicts (the claim is ``claimed``; the method's exact bound on the same side is ``exact``):

``unsound``
    A point ``x`` of the input set (for derivatives: a parameter ``t``) at which the exact value
    ``y`` of the function lies strictly outside the claim: ``y < claimed`` on the ``lo`` side,
    ``y > claimed`` on ``hi``. ``y`` is an exact rational, or an ``RInterval`` enclosure (a square
    root) lying strictly outside as a whole. Never decided on a rounded value.
``inside_exact``
    The claim is strictly tighter than the method's exact bound, but no witness was found within
    the search budget: numerically wrong on the unsafe side, not proven unsound.
``sound``
    The claim contains the method's exact bound (``claimed <= exact`` on ``lo``,
    ``claimed >= exact`` on ``hi``); since the method is sound, the claim is a valid bound.

Numbers are python-flint ``fmpq`` or :class:`~exactbounds.numbers.RInterval` (an enclosure with
exact rational ends). ``slack`` is signed, positive on the safe side:
``exact - claimed`` on ``lo`` and ``claimed - exact`` on ``hi``.

``ulps`` is a non-negative distance in ulps of ``dtype`` at the claim (see
:mod:`exactbounds.audit.ulps`): for ``unsound``, how far the witness value lies outside the claim;
for ``sound``, the slack; for ``inside_exact``, how far the claim lies inside the exact bound.
Where the value is an enclosure, ``distance`` and ``ulps`` are the enclosure's guaranteed lower
end (the true distance is at least this).

Rounding (``unsound`` and ``inside_exact``): how far the claim lies inside the method's exact
bound, ``d = |slack|``, against the terms a float evaluation of the method sums to get that
bound, of magnitude ``terms`` (``M``: for a linear method's output ``Σ|A_j|·max|x_j| + |b|`` of
its final linear bound, else the IBP magnitudes, see ``audit/rounding.py``). ``ulps_terms`` is
``d / ulp(M)`` in the claim's dtype. With the standard model ``γ_n = n·u`` of ``n`` rounded
operations in a row (``u = 2^-p``, ``n`` from :func:`~exactbounds.audit.rounding.rounding_steps`),
``rounding`` is ``within`` when ``d <= n·u·M``: the claim is what a float implementation of *the
same algorithm* may compute (an ``unsound`` one is then a float fault: no outward rounding), and
``beyond`` otherwise: no rounding explains it, the claim is not this algorithm's result (a
different relaxation or bound rule, or a bug).
"""

from dataclasses import dataclass, field
from fractions import Fraction

from flint import fmpq

from ..numbers import DEFAULT_CONTEXT, RInterval, f64_down, f64_up, rational_str
from ..tables import MAX_ROWS, limit_rows
from .ulps import DTYPES, ulp, ulp_near

DTYPE_BITS = {k: p for k, (p, _) in DTYPES.items()}

UNSOUND = "unsound"
INSIDE_EXACT = "inside_exact"
SOUND = "sound"
VERDICTS = (UNSOUND, INSIDE_EXACT, SOUND)
SIDES = ("lo", "hi")
WITHIN, BEYOND = "within", "beyond"


lower_end = DEFAULT_CONTEXT.lower
"""Exact lower end of an ``fmpq`` or ``RInterval``."""
upper_end = DEFAULT_CONTEXT.upper
"""Exact upper end of an ``fmpq`` or ``RInterval``."""


def value_json(v):
    """``"p/q"`` for an exact rational, ``["lo", "hi"]`` for an enclosure."""
    if isinstance(v, RInterval):
        return [rational_str(v.lo), rational_str(v.hi)]
    return rational_str(v)


def value_float(v):
    """The nearest float64 of an exact value (midpoint of an enclosure); for display only."""
    if isinstance(v, RInterval):
        v = (v.lo + v.hi) / 2
    try:
        return float(Fraction(int(v.p), int(v.q)))
    except OverflowError:
        return float("inf") if v > 0 else float("-inf")


def outside_distance(side, claimed, y):
    """Signed exact distance of ``y`` outside the claim (positive = outside), guaranteed lower
    end when ``y`` is an enclosure: ``claimed - upper(y)`` on ``lo``, ``lower(y) - claimed`` on
    ``hi``."""
    return claimed - upper_end(y) if side == "lo" else lower_end(y) - claimed


def slack_of(side, claimed, exact):
    """Signed slack, positive on the safe side (an ``RInterval`` when ``exact`` is one)."""
    return exact - claimed if side == "lo" else claimed - exact


@dataclass
class Witness:
    """An exact point proving a claim unsound.

    ``x``: the input point (list of ``fmpq``; for derivative claims ``[t]``), inside the input
    set. ``y``: the function's exact value there (``fmpq`` or ``RInterval`` lying strictly outside
    the claim as a whole). ``distance``: exact lower bound on how far ``y`` lies outside the
    claim (> 0). ``ulps``: ``distance / ulp_near(claimed, y)``. ``source``: which candidate found it
    (``corner``, ``crown_vertex``, ``random``, ``local_search``, ...); ``evaluations``: the number
    of exact evaluations spent when it was found."""

    x: list
    y: object
    distance: fmpq
    ulps: fmpq
    source: str = ""
    evaluations: int = 0

    def __repr__(self):
        xs = ", ".join(f"{value_float(v):.9g}" for v in self.x[:3])
        more = ", ..." if len(self.x) > 3 else ""
        return (
            f"Witness(x ≈ [{xs}{more}] -> y ≈ {value_float(self.y):.9g}, "
            f"{value_float(self.ulps):.4g} ulps outside, by {self.source})"
        )

    def to_json(self):
        return {
            "x": [rational_str(v) for v in self.x],
            "y": value_json(self.y),
            "x_float": [value_float(v) for v in self.x],
            "y_float": value_float(self.y),
            "distance": rational_str(self.distance),
            "ulps": float(f64_down(self.ulps)),
            "source": self.source,
            "evaluations": self.evaluations,
        }


@dataclass
class Verdict:
    """The verdict on one side of one claimed output (see the module docstring).

    ``output``: flat index of the output (within ``node``); ``side``: ``"lo"``/``"hi"``;
    ``verdict``: one of :data:`VERDICTS`; ``claimed``: the claim as an exact rational;
    ``exact``: the method's exact bound (``fmpq``) or an enclosure of it (``RInterval``);
    ``slack``: signed, positive on the safe side; ``distance``/``ulps``: see the module docstring;
    ``witness``: a :class:`Witness` for ``unsound``, else ``None``; ``node``: the graph node the
    claim is about (``None`` = the network's output); ``method``: ``ibp``/``crown``/``deriv``...;
    ``dtype``: the claim's float type; ``note``: free text (search budget spent, ...);
    ``best``: for ``inside_exact``, ``(x, y)`` the exact input whose value came closest to the
    claim in the witness search (``y`` the midpoint of its value), or ``None``."""

    output: int
    side: str
    verdict: str
    claimed: fmpq
    exact: object
    slack: object
    distance: fmpq
    ulps: fmpq
    witness: Witness | None = None
    node: str | None = None
    method: str = ""
    dtype: str = "float64"
    note: str = ""
    best: tuple | None = None
    terms: fmpq | None = None
    ulps_terms: fmpq | None = None
    rounding: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} not in {VERDICTS}")
        if self.side not in SIDES:
            raise ValueError(f"side {self.side!r} not in {SIDES}")
        if (self.verdict == UNSOUND) != (self.witness is not None):
            raise ValueError("an unsound verdict needs a witness, and only it has one")

    @classmethod
    def decide(cls, output, side, claimed, exact, witness=None, **kw):
        """The verdict implied by the claim, the method's exact bound and a witness (or None).

        ``exact`` must be decided against the claim: an enclosure that contains ``claimed``
        raises ``ValueError`` (refine it first)."""
        dtype = kw.get("dtype", "float64")
        slack = slack_of(side, claimed, exact)
        u = ulp_near(claimed, exact, dtype)
        if witness is not None:
            return cls(
                output,
                side,
                UNSOUND,
                claimed,
                exact,
                slack,
                witness.distance,
                witness.ulps,
                witness,
                **kw,
            )
        lo_s, hi_s = lower_end(slack), upper_end(slack)
        if lo_s >= 0:
            return cls(output, side, SOUND, claimed, exact, slack, lo_s, lo_s / u, **kw)
        if hi_s < 0:
            return cls(output, side, INSIDE_EXACT, claimed, exact, slack, -hi_s, -hi_s / u, **kw)
        raise ValueError(
            f"output {output} {side}: the enclosure {exact} of the exact bound "
            f"contains the claim {claimed}; refine it"
        )

    def __repr__(self):
        where = f"{self.node}[{self.output}]" if self.node else str(self.output)
        return (
            f"Verdict({where} {self.side}: {self.verdict}, claimed "
            f"{value_float(self.claimed):.17g}, exact {value_float(self.exact):.17g}, "
            f"{value_float(self.ulps):.4g} ulps)"
        )

    def to_json(self):
        d = {
            "output": self.output,
            "side": self.side,
            "verdict": self.verdict,
            "claimed": rational_str(self.claimed),
            "exact": value_json(self.exact),
            "ulps": float(f64_down(self.ulps)),
            "witness": self.witness.to_json() if self.witness else None,
            "node": self.node,
            "method": self.method,
            "dtype": self.dtype,
            "claimed_float": value_float(self.claimed),
            "exact_float": value_float(self.exact),
            "slack": value_json(self.slack),
            "distance": rational_str(self.distance),
            "ulps_exact": rational_str(self.ulps),
        }
        if self.note:
            d["note"] = self.note
        if self.best is not None:
            d["best"] = {
                "x": [rational_str(v) for v in self.best[0]],
                "y": rational_str(self.best[1]),
            }
        if self.rounding:
            d.update(
                rounding=self.rounding,
                terms=rational_str(self.terms),
                ulps_terms=float(f64_down(self.ulps_terms)),
            )
        return d

    def classify_rounding(self, terms, steps):
        """Set ``terms``, ``ulps_terms`` and ``rounding`` (see the module docstring) of an
        ``unsound`` or ``inside_exact`` verdict; ``steps`` is ``n`` of ``γ_n``."""
        if self.verdict == SOUND:
            return self
        p = DTYPE_BITS[self.dtype]
        d = -upper_end(self.slack)
        self.terms = terms
        self.ulps_terms = d / ulp(terms, self.dtype)
        self.rounding = WITHIN if d <= steps * terms * fmpq(1, 2**p) else BEYOND
        return self


def summarize(verdicts):
    """``{"unsound": n, "inside_exact": n, "sound": n}``."""
    counts = {v: 0 for v in VERDICTS}
    for v in verdicts:
        counts[v.verdict] += 1
    return counts


def rounding_counts(verdicts):
    """``{"unsound": {"within": n, "beyond": n}, "inside_exact": {...}}`` over the verdicts
    whose rounding was classified."""
    out = {UNSOUND: {WITHIN: 0, BEYOND: 0}, INSIDE_EXACT: {WITHIN: 0, BEYOND: 0}}
    for v in verdicts:
        if v.rounding:
            out[v.verdict][v.rounding] += 1
    return out


def report_json(verdicts, **extra):
    """The ``--json`` document: ``{"summary": ..., "verdicts": [...]}`` plus ``extra`` keys
    (and ``"rounding"``: :func:`rounding_counts`, when any verdict was classified)."""
    d = {"summary": summarize(verdicts), "verdicts": [v.to_json() for v in verdicts]}
    if any(v.rounding for v in verdicts):
        d["rounding"] = rounding_counts(verdicts)
    d.update(extra)
    return d


def exit_status(verdicts):
    """0 when every verdict is sound, else 1."""
    return 0 if all(v.verdict == SOUND for v in verdicts) else 1


@dataclass
class AuditResult:
    """What a checker returns: the verdicts plus context for the report (method, mode, dtype,
    the number of exact evaluations spent, and, with ``--spec``, the property verdicts)."""

    verdicts: list
    method: str = ""
    mode: str = ""
    dtype: str = "float64"
    evaluations: int = 0
    properties: list = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def to_json(self):
        """The document that ``exactbounds check --json`` prints."""
        extra = {"method": self.method, "dtype": self.dtype, "evaluations": self.evaluations}
        extra.update(self.info)
        if self.properties:
            extra["property"] = self.properties[0].to_json()
        return report_json(self.verdicts, **extra)

    def __repr__(self):
        return verdict_table(self)


def _label(v, width=10):
    s = f"{v.node}[{v.output}]" if v.node else str(v.output)
    return s if len(s) <= width else "…" + s[-(width - 1) :]


def verdict_table(result, max_rows=MAX_ROWS):
    """A short table of an :class:`AuditResult`: the counts, then one row per verdict (the
    claim and the method's exact bound as float64, the exact bound rounded outward, the
    distance in ulps, the witness's source) and the property verdicts."""
    c = summarize(result.verdicts)
    lines = [
        f"AuditResult: {result.method}, {len(result.verdicts)} sides, "
        f"{result.evaluations} exact evaluations: " + ", ".join(f"{k} {c[k]}" for k in VERDICTS)
    ]
    if any(v.rounding for v in result.verdicts):
        rc = rounding_counts(result.verdicts)
        lines.append(
            f"  relaxation {result.info.get('relaxation', 'exactbounds')}; within/"
            "beyond rounding: "
            + ", ".join(f"{k} {rc[k][WITHIN]}/{rc[k][BEYOND]}" for k in (UNSOUND, INSIDE_EXACT))
        )
    lines += [
        f"{'output':>10} {'side':>4}  {'verdict':<12} {'claimed':>24} {'exact (outward)':>24} "
        f"{'ulps':>10}  witness"
    ]
    rows = []
    for v in result.verdicts:
        ex = f64_down(lower_end(v.exact)) if v.side == "lo" else f64_up(upper_end(v.exact))
        wit = v.witness.source if v.witness else ""
        rows.append(
            f"{_label(v):>10} {v.side:>4}  {v.verdict:<12} {value_float(v.claimed):>24.17g} "
            f"{ex:>24.17g} {value_float(v.ulps):>10.4g}  {wit}".rstrip()
        )
    lines += limit_rows(rows, max_rows)
    lines += [
        f"property {p.status}" + (f" (by the exact {p.proved_by} bounds)" if p.proved_by else "")
        for p in result.properties
    ]
    return "\n".join(lines)
