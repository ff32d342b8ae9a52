"""The operator registry: ``kind -> class`` for every operator the package knows.

An operator module registers its classes with ``@register``; ``exactbounds.operators`` imports
every operator module, so ``OPERATORS`` is complete once the package is imported. Loaders map
their own names to these classes (the JSON ``type`` names are the kinds; ONNX op types are
mapped in ``io/onnx_loader.py``).
"""
from ..errors import UnsupportedOperatorError

OPERATORS = {}


def register(cls):
    """Class decorator: record ``cls`` under ``cls.kind``."""
    if cls.kind in OPERATORS and OPERATORS[cls.kind] is not cls:
        raise ValueError(f"operator kind {cls.kind!r} registered twice")
    OPERATORS[cls.kind] = cls
    return cls


def operator_class(kind):
    """The registered class of ``kind``; an unknown kind raises ``UnsupportedOperatorError``."""
    cls = OPERATORS.get(kind)
    if cls is None:
        raise UnsupportedOperatorError(f"unknown operator {kind!r} (known: "
                                       f"{', '.join(sorted(OPERATORS))})")
    return cls
