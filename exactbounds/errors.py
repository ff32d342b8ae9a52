"""The package's exceptions: every error exactbounds raises on bad input derives from
:class:`ExactBoundsError`, and its message names the offending parameter, index and value.

The CLI turns any ``ExactBoundsError`` into a one-line message and exit status 2; a value in
a message is cut to :data:`SHOW_CHARS` characters (a 100,000-digit number never reaches the
terminal whole).
"""

from __future__ import annotations

from typing import Any

SHOW_CHARS = 60


def shown(value: Any, limit: int = SHOW_CHARS) -> str:
    """``repr(value)``, cut in the middle to about ``limit`` characters with its length said."""
    try:
        r = repr(value)
    except ValueError:  # an int beyond Python's int-string limit
        return f"<a {type(value).__name__} too large to print>"
    if len(r) <= limit:
        return r
    k = limit // 2
    return f"{r[:k]}…{r[-k // 2 :]} ({len(r)} characters)"


class ExactBoundsError(Exception):
    """Base class of every exactbounds error."""


class InvalidValueError(ExactBoundsError, ValueError):
    """A number that cannot enter exactly: NaN, ±Inf, an unparseable string, an irrational."""

    def __init__(self, name: str, value: Any, reason: str) -> None:
        self.name, self.value, self.reason = name, value, reason
        super().__init__(f"{name} = {shown(value)}: {reason}")


class InvalidModelError(ExactBoundsError, ValueError):
    """A model parameter that violates the operator's preconditions
    (negative variance, eps <= 0, unknown layer type, ...)."""


class ShapeError(InvalidModelError):
    """Lengths or shapes that do not match."""


class UnsupportedOperatorError(InvalidModelError):
    """An operator (ONNX op or JSON layer type) that exactbounds does not implement."""


class InvalidBoxError(ExactBoundsError, ValueError):
    """An input set that is not a valid set: lo > hi, negative radius, ..."""


class MalformedFileError(ExactBoundsError):
    """A file that cannot be parsed (malformed JSON, ONNX, VNN-LIB)."""


class BudgetExceededError(ExactBoundsError):
    """A computation ran past its time (``--timeout``) or memory (``--max-memory``) budget, or
    would allocate more than the memory budget allows; the message says what to use instead
    (``--mode dyadic``, ``--mode interval``, a smaller network, a larger budget)."""


class AmbiguousBranch(ExactBoundsError):
    """An interval context cannot decide a branch: the enclosure straddles the threshold."""

    def __init__(self, what: str, value: Any) -> None:
        self.what, self.value = what, value
        super().__init__(f"cannot decide {what} of {value}: the enclosure contains 0")


class NeedsCaseSplit(ExactBoundsError):
    """The symbolic context cannot decide the sign of ``expr`` from its assumptions;
    ``proofs/`` splits on ``expr > 0``, ``expr = 0``, ``expr < 0``."""

    def __init__(self, expr: Any) -> None:
        self.expr = expr
        super().__init__(f"sign of {expr} is not decided by the assumptions")
