"""The linear-algebra layer under the operators: exact and ball matrices behind one interface
(:mod:`.backends`), integer-backed dyadic matrices (:mod:`.dymat`), and the exact coefficients of
an affine map with the one implementation of its evaluation and IBP (:mod:`.affine`)."""

from .backends import (
    IDENT,
    ArbBackend,
    QBackend,
    ZBackend,
    arb_exact_ends,
    backend_for,
    eye_q,
    split_q,
)
from .dymat import DyMat, dyadic_parts

__all__ = [
    "IDENT",
    "ArbBackend",
    "QBackend",
    "ZBackend",
    "arb_exact_ends",
    "backend_for",
    "eye_q",
    "split_q",
    "DyMat",
    "dyadic_parts",
]
