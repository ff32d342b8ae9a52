"""Operators, one module each, written once over the number contexts; importing this package
registers every operator class in :data:`exactbounds.operators.registry.OPERATORS`."""
from . import activations, arithmetic, batchnorm, conv, linear, pool, relu, reshape  # noqa: F401
from . import bilinear, elementwise, indexmap, matrix, maxpool, softmax  # noqa: F401
from .registry import OPERATORS, operator_class, register

__all__ = ["OPERATORS", "operator_class", "register"]
