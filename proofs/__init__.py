"""Proof obligations: TorchLean's theorem statements replayed symbolically against the
package's own operators (see ``python -m proofs``)."""
