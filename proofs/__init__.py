"""Proof obligations: TorchLean's theorem statements replayed symbolically against the
package's own operators (``python -m proofs``, ``exactbounds prove``).

* :mod:`proofs.framework`: obligations, goals, case splits, counterexample search;
* :mod:`proofs.exact`: exact sign of a closed algebraic number (counterexamples);
* :mod:`proofs.batchnorm`: the seed's BatchNorm theorems and the soundness theorems;
* :mod:`proofs.rounding`: the rational context's square-root enclosure, checked exactly;
* :mod:`proofs.runner`: the table / JSON and the exit status.

This package file stays light (no sympy import) so that the CLI can register ``prove``
without loading the obligations.
"""
