"""Audit claimed output (and intermediate) bounds of IBP/CROWN/CROWN-IBP/affine against the
exact method.

For each claimed side: compare the claim with the method's exact bound (re-running the method
with 4x the square-root bits while an enclosure still contains the claim), then search for an
exact witness on every side where the claim is tighter than the exact bound
(:mod:`exactbounds.audit.search`). A side whose claim contains the exact bound is ``sound`` and
needs no search: the method is sound, so no witness can exist there.
"""

from dataclasses import replace

from ..errors import ShapeError
from ..io.load import region_models
from .fast_tier import explain_budget, fast_output, fast_verdicts, undecided_gap
from .methods import LINEAR, AuditRuns, make_rng, method_context
from .properties import PROVED, UNKNOWN, VIOLATED, PropertyResult, check_property
from .rounding import ibp_magnitudes, linear_magnitude, rounding_steps
from .search import Target, WitnessSearch
from .verdicts import (
    INSIDE_EXACT,
    SOUND,
    UNSOUND,
    AuditResult,
    Verdict,
    lower_end,
    slack_of,
    upper_end,
)


def _relation(side, claimed, exact):
    """1 = the claim contains the exact bound, -1 = strictly tighter, 0 = undecided."""
    s = slack_of(side, claimed, exact)
    if lower_end(s) >= 0:
        return 1
    if upper_end(s) < 0:
        return -1
    return 0


def _claim_items(claims, graph):
    """``(node, index, side, claimed, dtype)`` for every claimed side."""
    for c in claims:
        node = c.node or graph.output
        for i, (a, b) in enumerate(zip(c.lo, c.hi)):
            for side, v in (("lo", a), ("hi", b)):
                if v is not None:
                    yield node, i, side, v, c.dtype


def audit_bounds(
    graph,
    input_set,
    claims,
    method="ibp",
    *,
    mode=None,
    bits=None,
    prec=113,
    eval_bits=128,
    max_bits=4096,
    budget=400,
    n_random=8,
    find_all=False,
    seed=0,
    constraints=(),
    on_eval=None,
    runs=None,
    lower_slope="adaptive",
    intersect_ibp=False,
    relaxation="exactbounds",
    slopes=None,
    fast_first=False,
):
    """Verdicts on every claimed side of ``claims`` (a list of :class:`~.claims.Claim`; node
    ``None`` = the network's output). The method runs in ``method_context(method, mode, bits,
    prec)``; while an enclosure of its result contains a claim it is re-run with 4x the bits
    (precision), up to ``max_bits``. Witnesses are evaluated with ``eval_bits`` square-root bits,
    refined up to ``max_bits``. ``lower_slope``, ``intersect_ibp``, the profile ``relaxation``
    and replayed ``slopes`` go to the linear methods; ``runs``, an :class:`~.methods.AuditRuns`
    to share with the caller (its options then apply), holds the method runs. Every
    ``unsound``/``inside_exact`` verdict gets its rounding class
    (:meth:`~.verdicts.Verdict.classify_rounding`). Returns an :class:`~.verdicts.AuditResult`;
    its ``info`` names the relaxation profile. ``fast_first``: the fast tier
    (:mod:`~.fast_tier`) decides the output sides it can first; only the others are audited
    exactly (none at all when it decides every side), and ``info["fast_tier"]`` counts them."""
    runs = (
        runs
        if runs is not None
        else AuditRuns(graph, input_set, lower_slope, intersect_ibp, relaxation, slopes)
    )
    want_nodes = {c.node or graph.output for c in claims}
    intermediate = want_nodes != {graph.output}
    ctx0 = method_context(method, mode, bits, prec)
    decided, tier = {}, None
    if fast_first:
        fres, secs = fast_output(runs, method)
        for c in claims:
            if (c.node or graph.output) == graph.output:
                c.check_dim(fres.output.dim, f"node {graph.output!r}")
        all_items = list(_claim_items(claims, graph))
        decided = fast_verdicts(fres, method, all_items, graph.output)
        tier = {
            "sides": len(all_items),
            "decided": len(decided),
            "mode": fres.mode,
            "status": fres.status,
            "seconds": round(secs, 3),
        }
        if len(decided) == len(all_items):
            return AuditResult(
                [decided[it[:3]] for it in all_items],
                method=method,
                mode="fast",
                dtype=claims[0].dtype if claims else "float64",
                evaluations=0,
                info={"mode": "fast", "relaxation": runs.relaxation, "fast_tier": tier},
            )
    gap = undecided_gap(fres, all_items, decided, graph.output) if tier is not None else None
    with explain_budget(tier, gap):
        # the run is refined with more square-root bits (exact modes) or more precision (interval)
        b, p = (ctx0.precision, prec) if ctx0.is_exact else (None, ctx0.precision)
        while True:
            res = (
                runs.exact_bounds(method, b, True, mode, p)
                if intermediate
                else {graph.output: runs.exact_bounds(method, b, False, mode, p)}
            )
            for c in claims:
                node = c.node or graph.output
                if node not in res:
                    raise ShapeError(
                        f"{c.source}: no node named {node!r} "
                        f"(nodes: {', '.join(k for k in res if k != graph.INPUT)})"
                    )
                c.check_dim(res[node].dim, f"node {node!r}")
            items = [it for it in _claim_items(claims, graph) if it[:3] not in decided]
            rel = {
                it[:3]: _relation(
                    it[2], it[3], (res[it[0]].lo if it[2] == "lo" else res[it[0]].hi)[it[1]]
                )
                for it in items
            }
            exact = res
            if all(rel.values()) or (b or p) >= max_bits:
                break
            if b is not None:
                b *= 4
            else:
                p *= 4
        rows = runs.linear_rows(method, b, mode, p) if -1 in rel.values() else {}
        targets = []
        for node, i, side, v, dtype in items:
            if rel[(node, i, side)] == -1:
                t = Target(node, i, side, v, dtype)
                for source, lA, uA in rows.get(node, ()):
                    t.rows.append((source, (lA if side == "lo" else uA)[i]))
                targets.append(t)
        search = WitnessSearch(
            graph,
            input_set,
            targets,
            bits=eval_bits,
            max_bits=max_bits,
            find_all=find_all,
            constraints=constraints,
            rng=make_rng(seed),
            budget=budget,
            n_random=n_random,
            on_eval=on_eval,
        )
        search.run()
        found = {t.key: t for t in targets}
        verdicts = []
        for node, i, side, v, dtype in items:
            ex = (exact[node].lo if side == "lo" else exact[node].hi)[i]
            kw = dict(node=None if node == graph.output else node, method=method, dtype=dtype)
            t = found.get((node, i, side))
            if rel[(node, i, side)] == 0:
                s = slack_of(side, v, ex)
                verdicts.append(
                    Verdict(
                        i,
                        side,
                        INSIDE_EXACT,
                        v,
                        ex,
                        s,
                        0 * v,
                        0 * v,
                        **kw,
                        note=f"undecided: the claim lies inside the enclosure of "
                        f"the exact bound at {b or p} bits",
                    )
                )
                continue
            if t is not None and t.witnesses > 1:
                kw["note"] = f"{t.witnesses} witnesses found; the farthest is shown"
            verdict = Verdict.decide(i, side, v, ex, t.witness if t else None, **kw)
            if verdict.verdict == INSIDE_EXACT and t is not None and t.best is not None:
                score, x = t.best
                verdict.best = (x, score if side == "lo" else -score)
            verdicts.append(verdict)
        terms = _Terms(runs, method, method_context(method, mode, b, p))
        steps = rounding_steps(graph)
        for (node, i, side, _, _), vd in zip(items, verdicts):
            if vd.verdict != SOUND and rel[(node, i, side)] == -1:
                vd.classify_rounding(terms(node, i, side), steps)
        info = {
            "mode": ctx0.mode,
            "relaxation": runs.relaxation,
            ("bits" if b is not None else "prec"): b or p,
        }
        if tier is not None:
            info["fast_tier"] = tier
        if decided:  # the fast tier's verdicts in their places among the exact ones
            rest = iter(verdicts)
            verdicts = [decided.get(it[:3]) or next(rest) for it in _claim_items(claims, graph)]
        return AuditResult(
            verdicts,
            method=method,
            mode=ctx0.mode,
            dtype=claims[0].dtype if claims else "float64",
            evaluations=search.evaluations,
            info=info,
        )


class _Terms:
    """The magnitude ``M`` of the terms behind the method's bound on one side (the verdicts'
    rounding model, ``audit/rounding.py``): a linear method's output from its final linear
    bound, anything else from the IBP magnitudes."""

    def __init__(self, runs, method, ctx):
        self.runs, self.method, self.ctx = runs, method, ctx
        self._mags = None

    def __call__(self, node, i, side):
        runs = self.runs
        if node == runs.graph.output and self.method in LINEAR:
            res = runs.result(self.method, self.ctx)
            row, b = (res.lA[i], res.lb[i]) if side == "lo" else (res.uA[i], res.ub[i])
            return linear_magnitude(row, b, runs.input_set, self.ctx)
        if self._mags is None:
            self._mags = ibp_magnitudes(runs.graph, runs.input_set)
        return self._mags[node][i]


def check_model(model, claims, method="ibp", **kw):
    """``exactbounds check`` on a loaded model (:func:`check_region`). A spec whose input set
    is an ``or`` of boxes is checked region by region (the witness search never leaves the
    regions for their hull) and the results merged (:func:`merge_regions`)."""
    subs = region_models(model)
    if len(subs) == 1:
        return check_region(model, claims, method, **kw)
    return merge_regions([check_region(sub, claims, method, **kw) for _, sub in subs])


def merge_regions(results):
    """One :class:`AuditResult` from the results of the same claims on each input region: per
    side, an ``unsound`` verdict (its witness lies in its region, so in the input set), else the
    verdict of the region whose exact bound is the union's (the lowest lower bound, the highest
    upper bound: the claim is sound over the union exactly when it is there); each chosen
    verdict's note names its region. The property is violated when violated on a region (its
    counterexample), proved when proved on every region, else unknown."""
    first = results[0]
    verdicts = []
    for vs in zip(*(r.verdicts for r in results)):
        bad = [(r, v) for r, v in enumerate(vs) if v.verdict == UNSOUND]
        if bad:
            r, v = bad[0]
        elif vs[0].side == "lo":
            r, v = min(enumerate(vs), key=lambda t: lower_end(t[1].exact))
        else:
            r, v = max(enumerate(vs), key=lambda t: upper_end(t[1].exact))
        note = f"input region {r} of {len(results)}"
        verdicts.append(replace(v, note=f"{v.note}; {note}" if v.note else note))
    props = []
    if first.properties:
        ps = [r.properties[0] for r in results]
        pick = next((p for p in ps if p.status == VIOLATED), None)
        if pick is None:
            pick = (
                ps[0]
                if all(p.status == PROVED for p in ps)
                else PropertyResult(UNKNOWN, ps[0].formula)
            )
        props = [replace(pick, evaluations=sum(p.evaluations for p in ps))]
    info = dict(first.info, regions=len(results))
    return replace(
        first,
        verdicts=verdicts,
        evaluations=sum(r.evaluations for r in results),
        properties=props,
        info=info,
    )


def check_region(
    model,
    claims,
    method="ibp",
    *,
    mode=None,
    bits=None,
    prec=113,
    lower_slope="adaptive",
    intersect_ibp=False,
    budget=400,
    n_random=8,
    seed=0,
    find_all=False,
    max_bits=4096,
    on_eval=None,
    relaxation="exactbounds",
    slopes=None,
    fast_first=False,
):
    """``exactbounds check`` on a loaded model: :func:`audit_bounds` of ``claims`` over the
    model's input set (and the polytope constraints of its VNN-LIB spec), then, when the model
    carries a spec, its output property with the method's exact bounds and exact points
    (:func:`~.properties.check_property`). One :class:`~.methods.AuditRuns` serves both.
    ``on_eval()`` is called after every exact evaluation (progress, budget checks).
    ``fast_first`` (or ``mode="fast"``): the fast tier decides what it can first (the claimed
    sides, see :func:`audit_bounds`; the property when the fast bounds prove it), the rest is
    audited in the method's default mode."""
    graph, input_set = model.graph, model.input_set
    if mode == "fast":  # the fast tier first, the undecided sides in the method's default mode
        fast_first, mode = True, None
    runs = AuditRuns(graph, input_set, lower_slope, intersect_ibp, relaxation, slopes)
    spec = getattr(model, "spec", None)
    constraints = tuple(spec.input_constraints) if spec is not None else ()
    result = (
        audit_bounds(
            graph,
            input_set,
            claims,
            method,
            mode=mode,
            bits=bits,
            prec=prec,
            max_bits=max_bits,
            budget=budget,
            n_random=n_random,
            find_all=find_all,
            seed=seed,
            constraints=constraints,
            runs=runs,
            on_eval=on_eval,
            fast_first=fast_first,
        )
        if claims
        else AuditResult([], method=method, info={"relaxation": relaxation})
    )
    proved = _fast_proof(runs, method, spec) if spec is not None and fast_first else None
    if proved is not None:
        result.properties.append(proved)
    elif spec is not None:
        out = runs.exact_bounds(method, bits, False, mode, prec)
        search = WitnessSearch(
            graph,
            input_set,
            [],
            max_bits=max_bits,
            constraints=constraints,
            rng=make_rng(seed),
            on_eval=on_eval,
        )
        pts = [v.witness.x for v in result.verdicts if v.witness is not None]
        prop = check_property(
            search, spec, out, method, points=pts, n_random=n_random, budget=budget
        )
        result.evaluations += prop.evaluations
        result.properties.append(prop)
    return result


def _fast_proof(runs, method, spec):
    """``PropertyResult(PROVED)`` when the fast tier's sound output bounds refute every clause
    of the spec's output formula, else ``None`` (the exact check then runs)."""
    res, _ = fast_output(runs, method)
    c = res.ctx
    lo, hi = [c.lower(v) for v in res.output.lo], [c.upper(v) for v in res.output.hi]
    if not spec.output.proved_by_box(lo, hi):
        return None
    return PropertyResult(PROVED, str(spec.output), proved_by=f"{method} (fast tier)")
