"""Witness search: exact points of the input set at which the network's exact value lies
strictly outside a claimed bound.

Every candidate is evaluated exactly (``RationalContext``). A value that is an ``RInterval``
(an enclosure, because of a square root) counts as a witness only when the whole enclosure lies
strictly outside the claim; when it straddles the claim the point is re-evaluated with 4x the
bits (up to ``max_bits``), and is never called a witness on a rounded value.

Candidates, in order (each evaluation is checked against every open target at once):
1. corners picked by the sign pattern of the method's own linear bound on the target's row
   (for one affine layer: the exact minimiser / maximiser);
2. the vertex minimising CROWN's final linear bound (``extra_rows``);
3. random exact points (random vertices and random dyadic interior points);
4. a coordinate local search on exact rationals, at most ``budget`` evaluations in total,
   split among the targets still open.
The search stops at the first witness per target unless ``find_all`` is set, in which case
every candidate runs and the farthest witness is kept.
"""

import random
from dataclasses import dataclass, field

from flint import fmpq

from ..algorithms.ibp import run_graph
from ..inputsets import bounding_box, contains, minimizer, sample_mixed
from ..numbers import RationalContext
from .ulps import ulp_near
from .verdicts import Witness, lower_end, outside_distance, upper_end


@dataclass(eq=False)
class Target:
    """One open side of one claim: ``node`` (graph node name), flat ``index``, ``side``,
    exact ``claimed``; ``rows`` are coefficient rows whose minimising (``lo``) or maximising
    (``hi``) vertex is a candidate, labelled ``(source, row)``."""

    node: str
    index: int
    side: str
    claimed: fmpq
    dtype: str = "float64"
    rows: list = field(default_factory=list)
    witness: Witness | None = None
    witnesses: int = 0
    best: tuple | None = (
        None  # (score, x): the lowest score seen, score = value (lo) or -value (hi)
    )

    @property
    def key(self):
        return (self.node, self.index, self.side)

    def score(self, y):
        mid = (lower_end(y) + upper_end(y)) / 2
        return mid if self.side == "lo" else -mid


class WitnessSearch:
    """Runs the candidates against a list of :class:`Target` (see the module docstring)."""

    def __init__(
        self,
        graph,
        input_set,
        targets,
        *,
        bits=128,
        max_bits=4096,
        find_all=False,
        constraints=(),
        rng=None,
        budget=400,
        n_random=8,
        on_eval=None,
    ):
        self.graph, self.input_set, self.targets = graph, input_set, list(targets)
        self.bits, self.max_bits, self.find_all = bits, max_bits, find_all
        self.constraints, self.budget, self.n_random = tuple(constraints), budget, n_random
        self.rng = rng or random.Random(0)
        self.evaluations = 0
        self.on_eval = on_eval
        bb = bounding_box(input_set)
        self.box = (list(bb.lo), list(bb.hi))

    # -- exact evaluation -------------------------------------------------------------------
    def values(self, x, bits=None):
        """Every node's exact value at ``x`` (``fmpq`` or ``RInterval`` entries)."""
        return run_graph(
            self.graph, list(x), "evaluate", RationalContext(bits or self.bits), keep=True
        )

    def open_targets(self):
        return [t for t in self.targets if self.find_all or t.witness is None]

    def outside(self, t, y):
        """True / False, or None when the enclosure ``y`` straddles the claim."""
        d_lo = outside_distance(t.side, t.claimed, y)  # guaranteed distance outside
        if d_lo > 0:
            return True
        inside = (lower_end(y) >= t.claimed) if t.side == "lo" else (upper_end(y) <= t.claimed)
        return False if inside else None

    def try_point(self, x, source, targets=None):
        """Evaluate ``x`` exactly (if it lies in the input set) and check it against
        ``targets`` (default: all open ones). Returns the node values, or None if ``x`` is
        outside the set."""
        if not contains(self.input_set, x, self.constraints):
            return None
        self.evaluations += 1
        if self.on_eval:
            self.on_eval()
        vals = self.values(x)
        for t in targets if targets is not None else self.open_targets():
            self._check(t, x, vals, source)
        return vals

    def _check(self, t, x, vals, source):
        y = vals[t.node][t.index]
        s = t.score(y)
        if t.best is None or s < t.best[0]:
            t.best = (s, list(x))
        verdict, bits = self.outside(t, y), self.bits
        while verdict is None and bits < self.max_bits:
            bits *= 4
            y = self.values(x, bits)[t.node][t.index]
            verdict = self.outside(t, y)
        if not verdict:
            return
        dist = outside_distance(t.side, t.claimed, y)
        w = Witness(
            list(x), y, dist, dist / ulp_near(t.claimed, y, t.dtype), source, self.evaluations
        )
        t.witnesses += 1
        if t.witness is None or w.distance > t.witness.distance:
            t.witness = w

    # -- candidates ---------------------------------------------------------------------------
    def vertex_for(self, t, row):
        """The input-set point minimising (lo) or maximising (hi) ``row · x``."""
        return minimizer(self.input_set, row if t.side == "lo" else [-c for c in row])

    def run(self):
        seen = set()

        def attempt(x, source, targets=None):
            key = tuple(x)
            if key in seen:
                return
            seen.add(key)
            self.try_point(x, source, targets)

        for t in list(self.targets):
            for source, row in t.rows:
                if t in self.open_targets():
                    attempt(self.vertex_for(t, row), source)
        if self.open_targets():
            for x in sample_mixed(self.input_set, self.rng, self.n_random):
                attempt(x, "random")
        self.local_search()
        return self.targets

    def local_search(self):
        """Coordinate descent on each open target's objective, from its best point so far;
        steps are exact dyadic fractions of the box width, halved when a sweep fails."""
        todo = self.open_targets()
        if not todo or self.budget <= 0:
            return
        share = max(1, self.budget // len(todo))
        lo, hi = self.box
        n = len(lo)
        for t in todo:
            if t.best is None:
                start = [(a + b) / 2 for a, b in zip(lo, hi)]
                if self.try_point(start, "local_search", [t]) is None:
                    continue
            spent0 = self.evaluations
            x = list(t.best[1])
            f = t.best[0]
            step = [(b - a) / 2 for a, b in zip(lo, hi)]
            while self.evaluations - spent0 < share and (self.find_all or t.witness is None):
                improved = False
                order = list(range(n))
                self.rng.shuffle(order)
                for j in order:
                    if self.evaluations - spent0 >= share or (t.witness and not self.find_all):
                        break
                    for d in (-1, 1):
                        v = min(max(x[j] + d * step[j], lo[j]), hi[j])
                        if v == x[j]:
                            continue
                        y = x[:j] + [v] + x[j + 1 :]
                        vals = self.try_point(y, "local_search", [t])
                        if vals is None:
                            continue
                        s = t.score(vals[t.node][t.index])
                        if s < f:
                            x, f, improved = y, s, True
                            break
                if not improved:
                    step = [s / 2 for s in step]
                    if all(s < (b - a) / 2**40 or s == 0 for s, a, b in zip(step, lo, hi)):
                        x = [
                            a + (b - a) * fmpq(self.rng.randrange(2**20 + 1), 2**20)
                            for a, b in zip(lo, hi)
                        ]
                        step = [(b - a) / 2 for a, b in zip(lo, hi)]
                        vals = self.try_point(x, "local_search", [t])
                        if vals is None:
                            break
                        f = t.score(vals[t.node][t.index])
