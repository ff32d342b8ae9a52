"""Bound propagation algorithms over a :class:`~exactbounds.graph.Graph`."""
