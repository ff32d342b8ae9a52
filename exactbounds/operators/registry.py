"""The operator registry: ``kind -> class`` for every operator the package knows.

An operator module registers its classes with ``@register``; ``exactbounds.operators`` imports
every operator module, so ``OPERATORS`` is complete once the package is imported. Loaders map
their own names to these classes (the JSON ``type`` names are the kinds; ONNX op types are
mapped in ``io/onnx_loader.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import UnsupportedOperatorError

if TYPE_CHECKING:
    from .base import Op

OPERATORS: dict[str, Any] = {}
T = TypeVar("T", bound="type[Op]")


def register(cls: T) -> T:
    """Class decorator: record ``cls`` under ``cls.kind``."""
    if cls.kind in OPERATORS and OPERATORS[cls.kind] is not cls:
        raise ValueError(f"operator kind {cls.kind!r} registered twice")
    OPERATORS[cls.kind] = cls
    return cls


def operator_class(kind: str) -> Any:
    """The registered class of ``kind``; an unknown kind raises ``UnsupportedOperatorError``."""
    cls = OPERATORS.get(kind)
    if cls is None:
        raise UnsupportedOperatorError(
            f"unknown operator {kind!r} (known: {', '.join(sorted(OPERATORS))})"
        )
    return cls
