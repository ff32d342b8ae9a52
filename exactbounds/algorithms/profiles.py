"""Relaxation profiles: the rules a bound-propagation tool follows, as one named object, so
that the oracle can run the same algorithm as the tool it audits.

A profile decides (1) how the bounds of a pre-activation node are computed
(:meth:`Profile.intermediate_bounds`: by default a full CROWN backward pass from that node;
``intermediate="ibp"`` gives CROWN-IBP), (2) the options handed to every operator's relaxation
(:meth:`Profile.relax_opts`, e.g. the ReLU lower-slope rule) or the relaxation itself
(:meth:`Profile.relaxation`), and (3) whether the final bounds are intersected with IBP. The
drivers (``crown.py``, ``affine.py``) call these hooks and nothing else; a profile may use the
run's helpers ``run.ibp_boxes()``, ``run.compute_bounds(name, final, rows=...)`` (a backward pass
from the given rows of a node only) and ``run.finish_bounds``.

``PROFILES`` maps a name (``--relaxation``) to the profile class; ``exactbounds`` is the default,
``auto_lirpa`` reproduces auto_LiRPA 0.7.1's defaults (rules in ``profile_auto_lirpa.py``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ..core import Box
from ..errors import InvalidValueError, ShapeError
from ..inputsets import bounding_box
from ..operators.activations import _SShaped
from ..operators.relu import ReLU
from . import profile_auto_lirpa as lirpa

INTERMEDIATE = ("crown", "ibp")


class Profile:
    """The exactbounds rules: CROWN on every pre-activation node (all its neurons; IBP with
    ``intermediate="ibp"``), the ReLU lower slope ``lower_slope`` (``adaptive``: 1 iff
    ``u > −l``), no intersection with IBP unless ``intersect_ibp``."""

    name = "exactbounds"

    def __init__(
        self,
        lower_slope: str = "adaptive",
        intersect_ibp: bool = False,
        intermediate: str = "crown",
    ) -> None:
        if intermediate not in INTERMEDIATE:
            raise InvalidValueError(
                "intermediate", intermediate, f"expected one of {', '.join(INTERMEDIATE)}"
            )
        self.lower_slope, self.intersect_ibp = lower_slope, intersect_ibp
        self.intermediate = intermediate

    def relax_opts(self) -> dict[str, Any]:
        """Keyword options of every operator's ``relax``/``relax_linear``."""
        return {"lower_slope": self.lower_slope}

    def relaxation(self, run: Any, node: Any) -> Any:
        """The relaxation of ``node`` in the run's backend (the operator's own by default)."""
        return node.op.make_relaxation(run, node)

    def intermediate_bounds(self, run: Any, name: str) -> Any:
        """Backend ``(lo, hi)`` of the pre-activation node ``name``."""
        if self.intermediate == "ibp":
            return ibp_bounds(run, name)
        return run.compute_bounds(name, final=False)

    def describe(self) -> dict[str, Any]:
        return {
            "relaxation": self.name,
            "lower_slope": self.lower_slope,
            "intersect_ibp": self.intersect_ibp,
            "intermediate": self.intermediate,
        }


def ibp_bounds(run: Any, name: str) -> Any:
    """Backend ``(lo, hi)`` of node ``name`` by IBP from the input set (its exact outer ends,
    then as the run keeps intermediate bounds)."""
    lo, hi = run.ibp_boxes()[name]
    be = run.be
    return run.finish_bounds(name, [be.const(v) for v in lo], [be.const(v) for v in hi], False)


def ibp_from_stored(run: Any, name: str) -> tuple[list, list]:
    """Exact outer ends ``(lo, hi)`` of node ``name`` by IBP that starts from the bounds the run
    has stored (the input and the pre-activation nodes bounded so far), as auto_LiRPA's
    ``IBP_general`` does for a sparse reference (rule R4c)."""
    graph, be = run.graph, run.be
    rc = run.ctx.exact_context()
    known: dict[str, Box] = {}

    def box(n: str) -> Box:
        if n in known:
            return known[n]
        if n in run.bounds and n != name:
            lo, hi = run.bounds[n]
            b = Box([be.lower(v) for v in lo], [be.upper(v) for v in hi])
        elif n == graph.INPUT:
            b = Box(*bounding_box(run.S).outer(rc))
        else:
            node = graph.node(n)
            out = node.op.ibp(rc, *(box(i) for i in node.inputs))
            b = Box(*out.outer(rc))
        known[n] = b
        return b

    return box(name).lo, box(name).hi


class AutoLirpaProfile(Profile):
    """auto_LiRPA 0.7.1's default rules (``profile_auto_lirpa.py``, rules R1-R9): sparse
    intermediate bounds before ReLUs (R4c), its ReLU lines with the 1e-8 clamp (R7), its
    Sigmoid/Tanh lines with the tangent-point tables (R8), no IBP intersection (R6).
    ``intermediate="ibp"`` is CROWN-IBP (R3); the forward affine driver gets the forward-mode
    ReLU lines (R5, R7)."""

    name = "auto_lirpa"

    def __init__(
        self,
        lower_slope: str = "adaptive",
        intersect_ibp: bool = False,
        intermediate: str = "crown",
    ) -> None:
        if lower_slope != "adaptive":
            raise InvalidValueError(
                "lower_slope", lower_slope, "the auto_lirpa profile fixes the adaptive lower slope"
            )
        if intersect_ibp:
            raise InvalidValueError(
                "intersect_ibp", intersect_ibp, "auto_LiRPA does not intersect with IBP"
            )
        super().__init__(lower_slope, False, intermediate)

    def relaxation(self, run: Any, node: Any) -> Any:
        op = node.op
        forward = hasattr(run, "forms")  # the forward affine driver (R5)
        if isinstance(op, ReLU):
            rule = partial(_relu_relax, forward=forward)
        elif isinstance(op, _SShaped):
            rule = partial(_sshaped_relax, op, run, node)
        else:
            return op.make_relaxation(run, node)
        if not run.be.exact:
            run.rounded = True  # lines on the outer ends of interval bounds: a sound bound
        return op.make_relaxation(run, node, relax=rule)

    def intermediate_bounds(self, run: Any, name: str) -> Any:
        if self.intermediate == "ibp":
            return ibp_bounds(run, name)
        consumer = lirpa.first_consumers(run.graph).get(name)
        if consumer is None or not isinstance(consumer.op, ReLU):
            return run.compute_bounds(name, final=False)  # R4d
        for node in run.graph.nodes[: run.order[name] + 1]:  # bound every earlier node
            if node.op.needs_bounds:
                run.relaxation(node)
        ref_lo, ref_hi = ibp_from_stored(run, name)
        plan, unstable = lirpa.sparse_plan(ref_lo, ref_hi)
        be = run.be
        if plan == "full":
            run.note(
                f"auto_lirpa: {name}: {len(unstable)} of {len(ref_lo)} neurons unstable "
                "under IBP (> 90%): CROWN for all"
            )
            return run.compute_bounds(name, final=False)
        lo, hi = [be.const(v) for v in ref_lo], [be.const(v) for v in ref_hi]
        if plan == "sparse":
            clo, chi = run.compute_bounds(name, final=False, rows=unstable)
            for t, j in enumerate(unstable):
                lo[j], hi[j] = clo[t], chi[t]
        run.note(
            f"auto_lirpa: {name}: sparse intermediate bounds, {len(unstable)} of "
            f"{len(ref_lo)} neurons by CROWN, the others by IBP"
        )
        run.tick()
        return run.finish_bounds(name, lo, hi, False)


def _relu_relax(
    ctx: Any, lo: list, hi: list, forward: bool = False, **_: Any
) -> tuple[list, list, list, list]:
    """Rule R7 (``forward``: R5's masked lines) per neuron, as context elements."""
    up = (lambda q: ctx.round_bound(q, True)) if ctx.rounds_bounds else None
    out: tuple[list, list, list, list]
    rule = lirpa.relu_lines_forward if forward else lirpa.relu_lines
    out = ([], [], [], [])
    for a, b in zip(lo, hi):
        for k, v in enumerate(rule(ctx.lower(a), ctx.upper(b), up)):
            out[k].append(ctx.const(v))
    return out


def _sshaped_relax(
    op: Any, run: Any, node: Any, ctx: Any, lo: list, hi: list, **_: Any
) -> tuple[list, list, list, list]:
    """Rule R8 per neuron, as context elements; the float choices go into the run's notes."""
    out = ([], [], [], [])
    counts = {"table": 0, "tie": 0, "replaced": 0}
    for a, b in zip(lo, hi):
        al, bl, au, bu, notes = lirpa.sshaped_lines(op, ctx.lower(a), ctx.upper(b), ctx.func_prec)
        for key in counts:
            counts[key] += notes[key]
        if ctx.rounds_bounds:
            bl, bu = ctx.round_bound(bl, False), ctx.round_bound(bu, True)
        for k, v in enumerate((al, bl, au, bu)):
            out[k].append(ctx.const(v))
    text = (
        f"auto_lirpa: {node.name} ({op.kind}): {counts['table']} tangent points read from "
        "the float64 reproduction of auto_LiRPA's precomputed table"
    )
    if counts["tie"]:
        text += f"; {counts['tie']} chord/derivative comparisons undecided, taken as not <"
    if counts["replaced"]:
        text += (
            f"; {counts['replaced']} lines invalid under auto_LiRPA's rule (e.g. its 1e-8 "
            "chord clamp) replaced by exactbounds' own"
        )
    run.note(text)
    return out


class ReplayedSlopes(Profile):
    """``base`` with the ReLU lower slopes a tool chose (``--slopes``: alpha-CROWN's optimised
    slopes, shared by every backward pass), each checked exactly to be a lower line of ReLU on
    the exact intermediate bounds: ``α·x <= relu(x)`` on ``[l, u]`` holds iff it holds at ``l`` and
    ``u`` (``α·x − relu(x)`` is piecewise linear with its one kink at 0, where it is 0, so its
    maximum over ``[l, u]`` is at ``l``, ``u`` or 0). Stable neurons keep their exact lines
    (auto_LiRPA masks them too). A slope that fails raises ``InvalidValueError`` naming the
    neuron and the exact point where it fails."""

    def __init__(self, base: Profile, slopes: dict[str, list]) -> None:
        self.base, self.slopes = base, slopes
        self.name, self.lower_slope = base.name, base.lower_slope
        self.intersect_ibp, self.intermediate = base.intersect_ibp, base.intermediate

    def relax_opts(self) -> dict[str, Any]:
        return self.base.relax_opts()

    def intermediate_bounds(self, run: Any, name: str) -> Any:
        return self.base.intermediate_bounds(run, name)

    def describe(self) -> dict[str, Any]:
        return dict(self.base.describe(), slopes=sorted(self.slopes))

    def relaxation(self, run: Any, node: Any) -> Any:
        got = self.base.relaxation(run, node)
        alphas = self.slopes.get(node.name)
        if alphas is None:
            return got
        where = f"slopes[{node.name!r}]"
        if not isinstance(node.op, ReLU):
            raise InvalidValueError(where, node.op.kind, "slopes are replayed on ReLU nodes only")
        be = run.be
        lo, hi = run.node_bounds(node.inputs[0])
        if len(alphas) != len(lo):
            raise ShapeError(f"{where}: {len(alphas)} slopes for {len(lo)} neurons")
        ls, used = list(got[0]), 0
        for j, a in enumerate(alphas):
            l, u = be.lower(lo[j]), be.upper(hi[j])
            if a is None or not l < 0 < u:
                continue
            for x in (l, u):
                if a * x > max(x, 0 * x):
                    raise InvalidValueError(
                        f"{where}[{j}]",
                        a,
                        f"not a lower line of ReLU on the exact bounds "
                        f"[{l}, {u}]: at x = {x}, {a}·x = {a * x} > relu(x) = {max(x, 0 * x)}",
                    )
            ls[j] = be.const(a)
            used += 1
        run.note(
            f"--slopes: {node.name}: {used} lower slopes replayed (each checked exactly), "
            f"{sum(a is not None for a in alphas) - used} on stable neurons ignored"
        )
        return (ls, *got[1:])


PROFILES = {"exactbounds": Profile, "auto_lirpa": AutoLirpaProfile}


def make_profile(
    name: str = "exactbounds", slopes: dict[str, list] | None = None, **opts: Any
) -> Profile:
    """The profile ``name`` with its options (``lower_slope``, ``intersect_ibp``,
    ``intermediate``); ``slopes`` (``{node: [α]}``) replays given ReLU lower slopes."""
    cls = PROFILES.get(name)
    if cls is None:
        raise InvalidValueError("relaxation", name, f"expected one of {', '.join(PROFILES)}")
    prof = cls(**opts)
    return ReplayedSlopes(prof, slopes) if slopes else prof
