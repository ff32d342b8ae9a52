"""Operators, one module each, written once over the number contexts; importing this package
registers every operator class in :data:`exactbounds.operators.registry.OPERATORS`."""

from . import (  # noqa: F401  # noqa: F401
    activations,
    arithmetic,
    batchnorm,
    bilinear,
    conv,
    elementwise,
    indexmap,
    linear,
    matrix,
    maxpool,
    pool,
    relu,
    reshape,
    softmax,
)
from .registry import OPERATORS, operator_class, register

__all__ = ["OPERATORS", "operator_class", "register"]
