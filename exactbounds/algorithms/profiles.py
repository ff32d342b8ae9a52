"""Relaxation profiles: the rules a bound-propagation tool follows, as one named object, so
that the oracle can run the same algorithm as the tool it audits.

A profile decides (1) how the bounds of a pre-activation node are computed
(:meth:`Profile.intermediate_bounds`: by default a full CROWN backward pass from that node),
(2) the options handed to every operator's relaxation (:meth:`Profile.relax_opts`, e.g. the
ReLU lower-slope rule), and (3) whether the final bounds are intersected with IBP. The drivers
(``crown.py``, ``affine.py``) call these hooks and nothing else; a profile may use the run's
helpers ``run.ibp_boxes()``, ``run.compute_bounds(name, final, rows=...)`` (a backward pass
from the given rows of a node only) and ``run.finish_bounds``.

``PROFILES`` maps a name (``--relaxation``) to the profile class; ``exactbounds`` is the default.
"""
from __future__ import annotations

from typing import Any
from ..errors import InvalidValueError


class Profile:
    """The exactbounds rules: CROWN on every pre-activation node (all its neurons), the ReLU
    lower slope ``lower_slope`` (``adaptive``: 1 iff ``u > −l``), no intersection with IBP
    unless ``intersect_ibp``."""

    name = "exactbounds"

    def __init__(self, lower_slope: str = "adaptive", intersect_ibp: bool = False) -> None:
        self.lower_slope, self.intersect_ibp = lower_slope, intersect_ibp

    def relax_opts(self) -> dict[str, Any]:
        """Keyword options of every operator's ``relax``/``relax_linear``."""
        return {"lower_slope": self.lower_slope}

    def intermediate_bounds(self, run: Any, name: str) -> Any:
        """Backend ``(lo, hi)`` of the pre-activation node ``name``."""
        return run.compute_bounds(name, final=False)

    def describe(self) -> dict[str, Any]:
        return {"relaxation": self.name, "lower_slope": self.lower_slope,
                "intersect_ibp": self.intersect_ibp}


PROFILES = {"exactbounds": Profile}


def make_profile(name: str = "exactbounds", **opts: Any) -> Profile:
    """The profile ``name`` with its options (``lower_slope``, ``intersect_ibp``)."""
    cls = PROFILES.get(name)
    if cls is None:
        raise InvalidValueError("relaxation", name, f"expected one of {', '.join(PROFILES)}")
    return cls(**opts)
