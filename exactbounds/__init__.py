"""exactbounds: a reference oracle for neural-network bound propagation, in exact arithmetic.

``load``, ``bounds``, ``check`` and ``derivatives`` (:mod:`exactbounds.api`) do what the commands
of the same names do. The BatchNorm API follows TorchLean's
``NN.MLTheory.CROWN.Operators.Batchnorm``.
"""

__version__ = "0.2.0"

from .api import bounds, check, derivatives, load
from .core import AffineVec, Box
from .numbers import (
    DyadicContext,
    IntervalContext,
    RationalContext,
    RInterval,
    SymbolicContext,
    make_context,
    rational_str,
    to_exact,
)
from .operators.batchnorm import (
    BatchNormParams,
    aff_batchnorm,
    compute_offset,
    compute_scale,
    deriv2_batchnorm,
    deriv_batchnorm,
    evaluate_batchnorm,
    ibp_batchnorm,
    second_deriv_batchnorm,
)

__all__ = [
    "bounds",
    "check",
    "derivatives",
    "load",
    "AffineVec",
    "Box",
    "DyadicContext",
    "IntervalContext",
    "RationalContext",
    "RInterval",
    "SymbolicContext",
    "make_context",
    "rational_str",
    "to_exact",
    "BatchNormParams",
    "aff_batchnorm",
    "compute_offset",
    "compute_scale",
    "deriv2_batchnorm",
    "deriv_batchnorm",
    "evaluate_batchnorm",
    "ibp_batchnorm",
    "second_deriv_batchnorm",
]
