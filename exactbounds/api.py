"""The public API, exported at the package top: ``load``, ``bounds``, ``check``, ``derivatives``.

Each does what the command of the same name does, through the same code, so the results equal
the CLI's ``--json`` output. Numbers go in as anything ``to_exact`` reads (int, float, the exact
decimal string, ``"p/q"``, ...), in lists or numpy arrays. Results print as short tables
(float64 ends rounded outward); the exact values stay on them as attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from typing import TYPE_CHECKING, Any

from .algorithms.curves import make_curve
from .algorithms.methods import get_method, method_context, run_method
from .algorithms.refine import refine as refine_jets
from .algorithms.result import BoundsResult
from .algorithms.taylor import RULES, Curve, Jet, propagate
from .audit.bounds import check_model
from .audit.claims import Claim, parse_claim
from .audit.derivatives import audit_derivative_claims
from .core import Box
from .errors import InvalidValueError
from .io.json_net import Model, read_json
from .io.load import load_model, region_models, regions_notes, spec_notes
from .io.results import derivatives_json
from .numbers import BOUND, make_context
from .tables import box_table

if TYPE_CHECKING:
    from .algorithms.profiles import Profile
    from .algorithms.refine import Refinement
    from .audit.verdicts import AuditResult
    from .numbers.contexts import Context

ORDER_NAMES = ("u", "u'", "u''")


def load(path: str | PathLike[str], spec: str | PathLike[str] | None = None) -> Model:
    """The network in ``path`` (``.json``, or ``.onnx`` with ``spec``), as a ``Model``; with a
    VNN-LIB ``spec`` (path) its box becomes the input set and ``model.spec`` holds it."""
    return load_model(path, spec=spec)


def _model(model: Model | str | PathLike[str]) -> Model:
    if isinstance(model, Model):
        return model
    if isinstance(model, (str, PathLike)):
        return load_model(model)
    raise InvalidValueError(
        "model", type(model).__name__, "expected a Model (exactbounds.load) or a path"
    )


def plain(x: Any) -> Any:
    """``x`` with numpy arrays turned into (nested) lists of Python numbers, recursively
    through lists, tuples and dicts; other values unchanged (``to_exact`` reads them)."""
    if hasattr(x, "tolist") and hasattr(x, "dtype"):
        return x.tolist()
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    return x


def _float_dtype(x: Any) -> str | None:
    """``"float32"``/``"float64"`` when ``x`` (or a value in it) is a numpy float array."""
    if isinstance(x, dict):
        x = next((v for v in x.values() if hasattr(v, "dtype")), None)
    elif isinstance(x, (list, tuple)):
        x = next((v for v in x if hasattr(v, "dtype")), None)
    name = str(getattr(x, "dtype", ""))
    return name if name in ("float32", "float64") else None


def bounds(
    model: Model | str | PathLike[str],
    method: str = "ibp",
    mode: str | None = None,
    bits: int | None = None,
    prec: int = 113,
    intermediate: bool = False,
    lower_slope: str = "adaptive",
    intersect_ibp: bool = False,
    relaxation: str | Profile = "exactbounds",
) -> BoundsResult:
    """``exactbounds bounds``: the ``BoundsResult`` of ``method`` (``ibp``, ``crown``,
    ``crown-ibp`` or ``affine``) on ``model`` (a ``Model`` or a path) over its input set.
    ``mode``: ``exact`` (IBP's default), ``dyadic`` (CROWN's and affine's, ``bits`` = 64) or
    ``interval`` (``prec`` bits). ``relaxation``: the CROWN/affine profile
    (``algorithms.profiles``). With a spec on the model, ``notes`` say whether the bounds prove
    its property. A spec whose input set is an ``or`` of boxes is bounded region by region:
    ``regions`` holds each region's result (its notes judge the property on it), ``output`` is
    their hull and the property is proved only when proved on every region."""
    model = _model(model)
    get_method(method)
    ctx = method_context(method, mode, bits, prec)
    results = []
    for _, sub in region_models(model):
        res = run_method(
            method,
            sub.graph,
            sub.input_set,
            ctx,
            intermediate=intermediate,
            lower_slope=lower_slope,
            intersect_ibp=intersect_ibp,
            relaxation=relaxation,
        )
        if model.spec is not None:
            lo, hi = res.output.outer(res.ctx)
            res.notes.extend(spec_notes(model.spec, lo, hi))
        results.append(res)
    if len(results) == 1:
        return results[0]
    return _hull_result(model.spec, results)


def _hull_result(spec: Any, results: list[BoundsResult]) -> BoundsResult:
    """One ``BoundsResult`` for bounds computed region by region: the hull of the regions'
    outputs (exact ends), their common status (else ``bound``), and the regions' verdicts."""
    ctx = results[0].ctx
    ends = [r.output.outer(ctx) for r in results]
    lo = [ctx.const(min(v)) for v in zip(*(e[0] for e in ends))]
    hi = [ctx.const(max(v)) for v in zip(*(e[1] for e in ends))]
    status = results[0].status if all(r.status == results[0].status for r in results) else BOUND
    verdicts = [spec.output.proved_by_box(*e) if not spec.output.trivial else None for e in ends]
    first = results[0]
    return BoundsResult(
        first.method,
        first.mode,
        ctx,
        Box(lo, hi, first.output.shape),
        status,
        notes=regions_notes(spec, verdicts),
        regions=results,
    )


def _claims(claimed: Any, method: str, dtype: str | None) -> list[Claim]:
    """A list of ``Claim`` from a path, a claim document (dict), a ``(lo, hi)`` pair or a
    ``Claim``; lists and numpy arrays alike (a float32 array sets the dtype)."""
    if isinstance(claimed, Claim):
        return [claimed]
    if isinstance(claimed, (str, PathLike)):
        return [parse_claim(read_json(claimed), method, dtype, where=str(claimed))]
    if not (isinstance(claimed, dict) and "dtype" in claimed):
        dtype = dtype or _float_dtype(claimed)
    if isinstance(claimed, (list, tuple)) and len(claimed) == 2:
        claimed = {"lo": claimed[0], "hi": claimed[1]}
    if not isinstance(claimed, dict):
        raise InvalidValueError(
            "claimed",
            type(claimed).__name__,
            "expected a path, a dict {'lo': [...], 'hi': [...]}, a (lo, hi) pair or a Claim",
        )
    return [parse_claim(plain(claimed), method, dtype, where="claimed")]


def check(
    model: Model | str | PathLike[str],
    claimed: Any,
    method: str = "ibp",
    dtype: str | None = None,
    mode: str | None = None,
    bits: int | None = None,
    prec: int = 113,
    lower_slope: str = "adaptive",
    intersect_ibp: bool = False,
    budget: int = 400,
    n_random: int = 8,
    seed: int = 0,
    find_all: bool = False,
    max_bits: int = 4096,
    relaxation: str = "exactbounds",
    slopes: dict[str, list[Any]] | None = None,
) -> AuditResult:
    """``exactbounds check``: audit ``claimed`` bounds on ``model``; an ``AuditResult`` whose
    verdicts are ``sound``, ``inside_exact`` or ``unsound`` (with an exact witness).

    ``claimed``: ``{"lo": [...], "hi": [...]}`` (or any claim-file shape), a ``(lo, hi)`` pair,
    lists or numpy arrays, or a path to a claim file. ``method``: ``ibp``, ``crown``,
    ``crown-ibp``, ``affine``, or ``deriv`` (then ``claimed`` is the document
    ``derivatives(...).to_json()`` gives, or its path). ``dtype``: the claim's float type for
    ulps (default: from the claim, else float64). ``relaxation``: the profile of the linear
    methods (``auto_lirpa`` to audit auto_LiRPA); ``slopes``: replayed ReLU lower slopes
    ``{node: [slope]}``. With a spec on the model its output property is checked too."""
    model = _model(model)
    for name, v in (("budget", budget), ("n_random", n_random)):
        if v < 0:
            raise InvalidValueError(name, v, "must be >= 0")
    if bits is not None and (bits < 2 or max_bits < bits):
        raise InvalidValueError("max_bits", max_bits, f"must be >= bits = {bits} >= 2")
    if method == "deriv":
        path = isinstance(claimed, (str, PathLike))
        return audit_derivative_claims(
            model.graph,
            model.input_set,
            read_json(claimed) if path else plain(claimed),
            source=str(claimed) if path else "claimed",
            dtype=dtype,
            bits=bits,
            max_bits=max_bits,
            budget=budget,
            seed=seed,
            find_all=find_all,
            n_random=n_random,
        )
    return check_model(
        model,
        _claims(claimed, method, dtype),
        method,
        mode=mode,
        bits=bits,
        prec=prec,
        lower_slope=lower_slope,
        intersect_ibp=intersect_ibp,
        budget=budget,
        n_random=n_random,
        seed=seed,
        find_all=find_all,
        max_bits=max_bits,
        relaxation=relaxation,
        slopes=slopes,
    )


@dataclass(repr=False)
class Derivatives:
    """What :func:`derivatives` returns: the ``Jet`` boxes (``value``, ``d1``, ``d2``, exact
    entries in ``ctx``), their ``status``, the ``curve``, and the run's settings."""

    jet: Jet
    ctx: Context
    curve: Curve
    order: int
    rule: str
    source: str
    notes: list = field(default_factory=list)
    refinement: Refinement | None = None
    """The :class:`~exactbounds.algorithms.refine.Refinement` (pieces, gaps), or None."""

    @property
    def value(self) -> Box:
        return self.jet.value

    @property
    def d1(self) -> Box:
        return self.jet.d1

    @property
    def d2(self) -> Box | None:
        return self.jet.d2

    @property
    def status(self) -> str:
        return self.jet.status

    def to_json(self) -> dict[str, Any]:
        """The document ``exactbounds derivatives --json`` prints (a claim file for
        ``check(..., method="deriv")``)."""
        return derivatives_json(
            self.jet, self.ctx, self.curve, self.order, self.rule, self.source, self.refinement
        )

    def __repr__(self) -> str:
        j = self.jet
        sections: list[tuple[Any, ...]] = [
            ("u", j.value, self.ctx, j.value_status),
            ("u'", j.d1, self.ctx, j.status),
        ]
        if self.order >= 2:
            sections.append(("u''", j.d2, self.ctx, j.status))
        i = self.curve.wrt_index
        where = f"d/dx_{i} over the input box" if i is not None else "along x0 + t·v (.curve)"
        title = f"Derivatives: order {self.order}, {where}, rule {self.rule}, {self.ctx!r}"
        if self.refinement is not None:
            title += f", {self.refinement.pieces} pieces"
        return box_table(title, sections)


def derivatives(
    model: Model | str | PathLike[str],
    wrt: int | None = None,
    direction: Any = None,
    origin: Any = None,
    t_range: Any = None,
    order: int = 2,
    rule: str = "chain",
    mode: str = "exact",
    bits: int | None = None,
    prec: int = 113,
    refine: bool = True,
    budget: float | None = 10.0,
    pieces: int | None = None,
    workers: int | None = None,
) -> Derivatives:
    """``exactbounds derivatives``: enclosures of the outputs ``u`` and of ``u'``, ``u''``
    along ``x(t) = origin + t·direction`` (``origin`` default: the centre of the input box;
    ``t_range`` default: where the line stays in the box), or with respect to input ``wrt``
    over the whole input box. ``rule``: ``chain`` (sound) or ``seed`` (BatchNorm's zero second
    derivative, to reproduce a tool built on it). ``mode``: ``exact`` or ``interval``.
    ``refine`` (default, as the CLI): the hull over adaptive pieces, within ``budget`` seconds,
    at most ``pieces`` pieces, on ``workers`` processes (``.refinement``: pieces and gaps)."""
    model = _model(model)
    if wrt is not None and (origin is not None or t_range is not None):
        raise InvalidValueError(
            "wrt", wrt, "takes no origin or t_range (it covers the whole input box)"
        )
    if wrt is not None and not isinstance(wrt, bool) and hasattr(wrt, "__index__"):
        wrt = int(wrt)
    if order not in (1, 2):
        raise InvalidValueError("order", order, "expected 1 or 2")
    if rule not in RULES:
        raise InvalidValueError("rule", rule, f"expected one of {', '.join(RULES)}")
    if mode not in ("exact", "interval"):
        raise InvalidValueError("mode", mode, "expected exact or interval")
    curve = make_curve(model.input_set, wrt, plain(direction), plain(origin), plain(t_range))
    ctx = make_context(mode, bits=bits, prec=prec)
    r = None
    if refine and pieces != 1:
        r = refine_jets(
            model.graph, curve, ctx, order, rule, budget=budget, max_pieces=pieces, workers=workers
        )
        jet = r.jet
    else:
        jet = propagate(model.graph, curve, ctx, order, rule)
    return Derivatives(jet, ctx, curve, order, rule, model.source, list(jet.notes), r)


__all__ = ["Derivatives", "bounds", "check", "derivatives", "load", "plain"]
