"""Operators, one module each, written once over the number contexts."""
