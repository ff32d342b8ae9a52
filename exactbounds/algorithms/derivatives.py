"""Entry point that ``exactbounds check --method deriv`` imports: the derivative audit lives in
:mod:`exactbounds.derivcheck` (exact reference derivatives and verdicts), the propagation in
:mod:`exactbounds.algorithms.taylor`."""
from ..derivcheck import audit_derivative_claims, audit_derivatives

__all__ = ["audit_derivative_claims", "audit_derivatives"]
