"""Replay of a VNN-COMP counterexample in exact arithmetic (``exactbounds replay``).

Given the network, the spec and a counterexample ``(X, Y)`` read exactly from its decimals:

* ``x_inside``: ``X`` lies in the spec's input set (box and polytope constraints), exactly;
  ``x32_inside``: the same for ``X`` cast to float32 (round to nearest, as the competition's
  checker does before running onnxruntime); ``x_within_tol``: ``X`` lies in the set widened by
  ``TOLERANCE`` = 1e-4 on every constraint (the checker's input tolerance).
* ``violated_x`` / ``violated_x32``: the exact network output at ``X`` / at its float32 cast
  satisfies the violation formula (VNN-LIB convention: the output formula describes a
  counterexample); ``margin_x`` / ``margin_x32``: how deep (> 0, or = 0 on a non-strict
  comparison) or how far (< 0) from satisfying it: ``max over clauses of min over comparisons
  of rhs − lhs``.
* ``y_distance``: ``max_i |Y_i − f(X)_i|``, the file's outputs against the exact outputs.
* ``violated_float32``: what a round-to-nearest float32 evaluation of the network at the
  float32 cast says (the competition's onnxruntime replay, simulated).

Verdict: ``confirmed`` when ``X`` or its float32 cast is an exact input inside the set whose
exact output satisfies the formula (``witness`` says which); ``float_artifact`` when the
violation exists only under float32 evaluation or only through the tolerance; else
``refuted``.
"""

from dataclasses import dataclass, field

import numpy as np
from flint import fmpq

from ..algorithms.ibp import evaluate
from ..errors import ShapeError, UnsupportedOperatorError
from ..inputsets import bounding_box
from ..numbers import RationalContext, RInterval, to_exact
from .floatsim import FloatContext, float_layers, round_nearest
from .verdicts import value_float, value_json

CONFIRMED, FLOAT_ARTIFACT, REFUTED = "confirmed", "float_artifact", "refuted"
TOLERANCE = fmpq(1, 10**4)


def cast(x, dtype="float32"):
    """``x`` rounded to nearest ``dtype`` values, as exact ``fmpq``."""
    return [to_exact(round_nearest(v, dtype)) for v in x]


def inside(input_set, constraints, x, tol=None):
    """Whether the exact point ``x`` satisfies every bound of ``input_set`` and every linear
    constraint, each widened by ``tol`` (default 0)."""
    tol = fmpq(0) if tol is None else tol
    lo, hi = _ends(input_set)
    if len(x) != len(lo):
        return False
    if tol == 0 and not input_set.contains(x):
        return False
    if any(v < a - tol or v > b + tol for v, a, b in zip(x, lo, hi)):
        return False
    for c in constraints:
        s = c.lhs(x)
        if c.op == "=" and not (c.rhs - tol <= s <= c.rhs + tol):
            return False
        if c.op == "<=" and s > c.rhs + tol:
            return False
        if c.op == "<" and (s >= c.rhs + tol if tol == 0 else s > c.rhs + tol):
            return False
    return True


def clamp(input_set, x):
    """``x`` with every coordinate clamped into the input set's bounding box."""
    lo, hi = _ends(input_set)
    return [min(max(v, a), b) for v, a, b in zip(x, lo, hi)]


def _ends(input_set):
    """Exact ``(lo, hi)`` lists of the input set's bounding box."""
    box = bounding_box(input_set)
    return list(box.lo), list(box.hi)


def _lo(v):
    return v.lo if isinstance(v, RInterval) else v


def _hi(v):
    return v.hi if isinstance(v, RInterval) else v


def margin(prop, y):
    """``max over clauses of min over comparisons of (rhs − lhs(y))`` as an exact lower end
    (a comparison ``=`` counts ``−|rhs − lhs|``); a clause-less ``true`` formula gives None.
    The formula holds at ``y`` when the margin is > 0, or = 0 and no comparison is strict."""
    best = None
    for clause in prop.clauses:
        if not clause:
            return None
        worst = None
        for c in clause:
            s = c.lhs(y)
            d = c.rhs - _hi(s) if c.op != "=" else -max(abs(c.rhs - _lo(s)), abs(c.rhs - _hi(s)))
            worst = d if worst is None or d < worst else worst
        best = worst if best is None or worst > best else best
    return best


def exact_outputs(graph, x, prop, bits=128, max_bits=4096):
    """The exact outputs at ``x`` and whether they satisfy ``prop``; enclosures (square roots)
    are refined until the formula is decided, else the answer is None."""
    while True:
        y = evaluate(graph, x, RationalContext(bits))
        t = [c.truth(y) for cl in prop.clauses for c in cl]
        if None not in t or bits >= max_bits:
            try:
                return y, prop.evaluate(y)
            except Exception:  # noqa: BLE001 - AmbiguousBranch at max_bits: undecided
                return y, None
        bits *= 4


def float_evaluate(graph, x, dtype="float32"):
    """Round-to-nearest ``dtype`` evaluation at the ``dtype`` point ``x``: parameters rounded
    once, then numpy's ``W @ x + b``, ReLU, BatchNorm as ``scale·x + offset`` (chains); any
    other graph through the operators in :class:`FloatContext`. Returns exact ``fmpq`` values
    of the floats."""
    t = np.dtype(dtype).type
    v = np.array([round_nearest(a, dtype) for a in x], dtype=dtype)
    try:
        layers = float_layers(graph, dtype)
    except UnsupportedOperatorError:
        out = evaluate(graph, list(v), FloatContext(dtype))
        return [to_exact(t(a)) for a in out]
    with np.errstate(all="ignore"):
        for L in layers:
            if L[0] == "affine":
                v = (L[1] @ v + L[2]).astype(dtype)
            elif L[0] == "diag":
                v = (L[1] * v + L[2]).astype(dtype)
            elif L[0] == "relu":
                v = np.maximum(v, t(0))
    if not np.all(np.isfinite(v)):
        return None
    return [to_exact(a) for a in v]


def float_screen(graph, dtype="float64"):
    """A fast round-to-nearest evaluation ``x -> numpy outputs`` of a chain graph (parameters
    rounded once), or ``None`` when the graph has no vectorised float form; for screening
    candidate points only (``algorithms.bab.verify(screen=...)``)."""
    try:
        layers = float_layers(graph, dtype)
    except UnsupportedOperatorError:
        return None

    def run(x):
        v = np.array([int(a.p) / int(a.q) for a in x], dtype=dtype)
        with np.errstate(all="ignore"):
            for L in layers:
                if L[0] == "affine":
                    v = L[1] @ v + L[2]
                elif L[0] == "diag":
                    v = L[1] * v + L[2]
                elif L[0] == "relu":
                    v = np.maximum(v, 0)
        return v

    return run


@dataclass
class ReplayResult:
    verdict: str
    witness: str
    x_inside: bool
    x32_inside: bool
    x_within_tol: bool
    violated_x: object
    violated_x32: object
    violated_float32: object
    margin_x: object
    margin_x32: object
    margin_float32: object
    y_distance: object
    x: list
    x32: list
    y_exact: list
    y32_exact: list
    y_float32: list
    formula: str
    notes: list = field(default_factory=list)

    def to_json(self):
        def num(v):
            return None if v is None else value_float(v)

        def vec(v, f):
            return None if v is None else [f(a) for a in v]

        return {
            "verdict": self.verdict,
            "witness": self.witness,
            "x_inside": self.x_inside,
            "x_float32_inside": self.x32_inside,
            "x_within_tolerance": self.x_within_tol,
            "tolerance": 1e-4,
            "violated_exact": self.violated_x,
            "violated_exact_at_float32_x": self.violated_x32,
            "violated_float32_evaluation": self.violated_float32,
            "margin_exact": num(self.margin_x),
            "margin_exact_at_float32_x": num(self.margin_x32),
            "margin_float32_evaluation": num(self.margin_float32),
            "y_file_distance": num(self.y_distance),
            "x": vec(self.x, value_json),
            "x_float32": vec(self.x32, value_float),
            "y_exact": vec(self.y_exact, value_json),
            "y_exact_float": vec(self.y_exact, value_float),
            "y_float32": vec(self.y_float32, value_float),
            "formula": self.formula,
            "notes": self.notes,
        }


def replay(model, x, y=None):
    """Replay the counterexample ``x`` (exact values; ``y``, the file's outputs, optional) on
    ``model`` (a loaded model with a spec); returns a :class:`ReplayResult`."""
    graph, spec = model.graph, model.spec
    prop = spec.output
    cons = tuple(spec.input_constraints)
    if len(x) != graph.input_dim:
        raise ShapeError(
            f"the counterexample has {len(x)} X values, the network takes {graph.input_dim}"
        )
    n_out = graph.dims[graph.output]
    if y and len(y) != n_out:
        raise ShapeError(f"the counterexample has {len(y)} Y values, the network gives {n_out}")
    x = [to_exact(v) for v in x]
    x32 = cast(x)
    in_x = inside(model.input_set, cons, x)
    in_32 = inside(model.input_set, cons, x32)
    tol = inside(model.input_set, cons, x, TOLERANCE)
    y_ex, v_x = exact_outputs(graph, x, prop)
    y32, v_32 = (y_ex, v_x) if x32 == x else exact_outputs(graph, x32, prop)
    notes = []
    try:
        yf = float_evaluate(graph, x32)
    except Exception as e:  # noqa: BLE001 - the float opinion is informative only
        yf = None
        notes.append(f"no float32 evaluation: {e}")
    v_f = None if yf is None else prop.evaluate(yf)
    dist = None
    if y:
        dist = max(
            (max(abs(_lo(a) - b), abs(_hi(a) - b)) for a, b in zip(y_ex, y)), default=fmpq(0)
        )
    if in_x and v_x:
        verdict, witness = CONFIRMED, "x"
    elif in_32 and v_32:
        verdict, witness = CONFIRMED, "x_float32"
    elif (v_f and tol) or ((v_x or v_32) and tol):
        verdict, witness = FLOAT_ARTIFACT, ""
        if v_f and not (v_x or v_32):
            notes.append("the violation exists only under float32 evaluation")
        if not (in_x or in_32):
            notes.append("X lies outside the input set, inside only through the 1e-4 tolerance")
    else:
        verdict, witness = REFUTED, ""
    clamped = clamp(model.input_set, x)
    if not (in_x or in_32) and inside(model.input_set, cons, clamped):
        _, v_c = exact_outputs(graph, clamped, prop)
        if v_c:
            notes.append("X clamped into the input box is an exact counterexample")
    if v_x is None or v_32 is None:
        notes.append("an exact output could not decide the formula (enclosure)")
    return ReplayResult(
        verdict,
        witness,
        in_x,
        in_32,
        tol,
        v_x,
        v_32,
        v_f,
        margin(prop, y_ex),
        margin(prop, y32),
        None if yf is None else margin(prop, yf),
        dist,
        x,
        x32,
        y_ex,
        y32,
        yf,
        str(prop),
        notes,
    )


def exit_code(result):
    """0 confirmed, 1 otherwise."""
    return 0 if result.verdict == CONFIRMED else 1


__all__ = [
    "CONFIRMED",
    "FLOAT_ARTIFACT",
    "REFUTED",
    "TOLERANCE",
    "ReplayResult",
    "replay",
    "cast",
    "inside",
    "margin",
    "float_evaluate",
    "float_screen",
    "exact_outputs",
    "exit_code",
]
