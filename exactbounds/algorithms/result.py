"""``BoundsResult``: what IBP, CROWN and forward affine return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core import Box
from ..tables import box_table

if TYPE_CHECKING:
    from ..numbers.contexts import Context


@dataclass
class BoundsResult:
    """Result of a bound computation. ``output`` is a ``Box`` of ``ctx`` elements; ``lA``/``uA``
    (rows over the network input) and ``lb``/``ub`` are exact (``fmpq``) in the exact and dyadic
    modes and ``ctx`` elements (enclosures) in the interval mode; ``None`` for IBP."""

    method: str
    mode: str
    ctx: Context
    output: Box
    status: str
    lA: list | None = None
    lb: list | None = None
    uA: list | None = None
    ub: list | None = None
    nodes: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    regions: list = field(default_factory=list)
    """For an input set that is a union of boxes: each region's own result (``output`` is
    then the hull of theirs)."""

    def __repr__(self) -> str:
        """A short table: one row per output (float64 ends rounded outward, status)."""
        more = f"; .nodes holds {len(self.nodes)} node boxes" if self.nodes else ""
        title = f"BoundsResult: {self.method}, {self.ctx!r}, status {self.status}{more}"
        return box_table(title, [("out", self.output, self.ctx, self.status)])
