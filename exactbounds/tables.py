"""Short text tables of results, for ``repr``/``str``: one row per entry with its index, its
ends as float64 rounded outward (lo down, hi up) and its status, at most ``MAX_ROWS`` rows. The
exact values stay on the result objects (``result.output``, ``result.verdicts``, ...)."""

from .numbers import f64_down, f64_up

MAX_ROWS = 20
"""Rows shown before the table says how many more there are."""


def limit_rows(rows, max_rows=MAX_ROWS):
    """The first ``max_rows`` lines of ``rows``, then ``... N more rows`` if any were cut."""
    rows = list(rows)
    if len(rows) <= max_rows:
        return rows
    return rows[:max_rows] + [f"... {len(rows) - max_rows} more rows"]


def box_table(title, sections, max_rows=MAX_ROWS):
    """``title``, a header, and one row ``name  index  lo  hi  status`` per entry of each
    ``(name, box, ctx, status)`` in ``sections`` (``lo``/``hi`` the outer ends of the box in
    ``ctx``, as float64 rounded outward)."""
    rows = []
    for name, box, ctx, status in sections:
        lo, hi = box.outer(ctx)
        rows += [
            f"{name:>5} {i:>4}  {f64_down(a):>24.17g}  {f64_up(b):>24.17g}  {status}"
            for i, (a, b) in enumerate(zip(lo, hi))
        ]
    head = f"{'':>5} {'#':>4}  {'lo (f64, down)':>24}  {'hi (f64, up)':>24}  status"
    return "\n".join([title, head] + limit_rows(rows, max_rows))


__all__ = ["MAX_ROWS", "box_table", "limit_rows"]
