"""``BoundsResult``: what IBP, CROWN and forward affine return."""
from dataclasses import dataclass, field

from ..core import Box
from ..tables import box_table


@dataclass
class BoundsResult:
    """Result of a bound computation. ``output`` is a ``Box`` of ``ctx`` elements; ``lA``/``uA``
    (rows over the network input) and ``lb``/``ub`` are exact (``fmpq``) in the exact and dyadic
    modes and ``ctx`` elements (enclosures) in the interval mode; ``None`` for IBP."""
    method: str
    mode: str
    ctx: object
    output: Box
    status: str
    lA: list = None
    lb: list = None
    uA: list = None
    ub: list = None
    nodes: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def __repr__(self):
        """A short table: one row per output (float64 ends rounded outward, status)."""
        more = f"; .nodes holds {len(self.nodes)} node boxes" if self.nodes else ""
        title = f"BoundsResult: {self.method}, {self.ctx!r}, status {self.status}{more}"
        return box_table(title, [("out", self.output, self.ctx, self.status)])
