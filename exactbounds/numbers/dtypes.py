"""Float types by name: the significand bits and minimum normal exponent of float32/float64,
and their accepted spellings."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidValueError

DTYPES = {"float32": (24, -126), "float64": (53, -1022)}
"""dtype name -> (significand bits p including the hidden bit, minimum normal exponent)."""

DTYPE_ALIASES = {
    "float32": "float32",
    "f32": "float32",
    "single": "float32",
    "float64": "float64",
    "f64": "float64",
    "double": "float64",
}


def dtype_name(d: Any) -> str:
    """Canonical dtype name (``float32``/``float64``) of ``d``; raises ``InvalidValueError``."""
    key = str(d).strip().lower()
    if key not in DTYPE_ALIASES:
        raise InvalidValueError("dtype", d, "expected float32 or float64")
    return DTYPE_ALIASES[key]


__all__ = ["DTYPES", "DTYPE_ALIASES", "dtype_name"]
