"""A testing kit for the authors of bound-propagation tools: fuzz your verifier against the
oracle from your own test suite.

``assert_sound(model, input_set, lo, hi, method=..., relaxation=...)`` audits claimed output
bounds exactly (``exactbounds check`` as a function) and raises :class:`UnsoundClaim` with the
exact witness when an input of the set maps outside the claim. With ``same_algorithm=True`` it
also raises when a side lies inside the method's exact bound by more than rounding explains (the
tool does not compute the algorithm it claims to, see ``audit/verdicts.py``).
:mod:`exactbounds.testing.strategies` has hypothesis strategies that draw networks (in the JSON
network format), input boxes and exact points inside them.
"""

from ..audit.bounds import audit_bounds
from ..audit.claims import Claim
from ..audit.ulps import dtype_name
from ..audit.verdicts import BEYOND, INSIDE_EXACT, UNSOUND, value_float
from ..core import Box
from ..errors import InvalidValueError
from ..io.json_net import Model, load_json_network
from ..io.load import load_model
from ..numbers import to_exact

__all__ = ["assert_sound", "UnsoundClaim", "as_model"]


class UnsoundClaim(AssertionError):
    """A claimed bound that the oracle refutes; ``verdicts`` are the offending
    :class:`~exactbounds.audit.verdicts.Verdict` objects (``unsound`` ones carry the exact
    witness ``x`` and the exact output ``y``), ``result`` the whole audit."""

    def __init__(self, message, verdicts, result):
        super().__init__(message)
        self.verdicts, self.result = verdicts, result


def as_model(model, input_set=None):
    """A :class:`~exactbounds.io.json_net.Model` from a Model, a JSON network dict, or a path
    (``.json``/``.onnx``); ``input_set`` (a Box/LpBall, or ``(lo, hi)`` lists) replaces the
    model's own."""
    if isinstance(model, dict):
        model = load_json_network(model)
    elif not isinstance(model, Model):
        model = load_model(model, need_input_set=input_set is None)
    if input_set is not None:
        if isinstance(input_set, (tuple, list)) and len(input_set) == 2:
            input_set = Box.from_values(
                _flat(input_set[0]),
                _flat(input_set[1]),
                shape=model.graph.input_shape,
                name="input_set",
            )
        model = Model(model.graph, input_set, model.source, model.spec)
    if model.input_set is None:
        raise InvalidValueError("input_set", None, "the model carries no input set; give one")
    return model


def _flat(v):
    if hasattr(v, "tolist"):  # numpy arrays, torch tensors
        v = v.tolist()
    out = []
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(reversed(x))
        else:
            out.append(x)
    return out


def _describe(v):
    where = f"{v.node or 'output'}[{v.output}] {v.side}"
    if v.witness is not None:
        w = v.witness
        x = ", ".join(f"{value_float(a):.9g}" for a in w.x[:8])
        return (
            f"{where}: claimed {value_float(v.claimed):.9g}, but the exact output at "
            f"x = [{x}{', ...' if len(w.x) > 8 else ''}] is {value_float(w.y):.17g} "
            f"({value_float(w.ulps):.3g} ulps outside; the exact x is in "
            f".verdicts[k].witness.x)"
        )
    return (
        f"{where}: claimed {value_float(v.claimed):.9g} lies inside the exact {v.method} "
        f"bound {value_float(v.exact):.17g} by {value_float(v.ulps_terms):.3g} ulps of "
        "the terms: beyond rounding"
    )


def assert_sound(
    model,
    input_set=None,
    lo=None,
    hi=None,
    *,
    method="crown",
    relaxation="exactbounds",
    dtype=None,
    same_algorithm=False,
    budget=200,
    n_random=8,
    seed=0,
    mode=None,
    bits=None,
):
    """Audit the claim ``lo <= f(x) <= hi`` for every ``x`` in ``input_set`` (``None``: the
    model's). ``lo``/``hi``: numbers, lists, numpy arrays or tensors (``None`` leaves a side
    unclaimed); ``dtype`` their float type (default: float32 when they are float32 arrays,
    else float64). ``method``: ``ibp``, ``crown``, ``crown-ibp`` or ``affine``; ``relaxation``:
    the profile (``auto_lirpa`` to audit auto_LiRPA). Raises :class:`UnsoundClaim` on an
    ``unsound`` side (and, with ``same_algorithm``, on an ``inside_exact`` side beyond rounding);
    returns the :class:`~exactbounds.audit.verdicts.AuditResult` otherwise."""
    m = as_model(model, input_set)
    if dtype is None:
        dtype = (
            "float32"
            if "float32" in str(getattr(lo if lo is not None else hi, "dtype", ""))
            else "float64"
        )
    n = m.graph.nodes[-1].op.out_dim if m.graph.nodes else m.graph.input_dim
    los = [None] * n if lo is None else [None if v is None else to_exact(v) for v in _flat(lo)]
    his = [None] * n if hi is None else [None if v is None else to_exact(v) for v in _flat(hi)]
    claim = Claim(los, his, dtype_name(dtype), None, "assert_sound")
    res = audit_bounds(
        m.graph,
        m.input_set,
        [claim],
        method,
        mode=mode,
        bits=bits,
        budget=budget,
        n_random=n_random,
        seed=seed,
        relaxation=relaxation,
    )
    bad = [
        v
        for v in res.verdicts
        if v.verdict == UNSOUND
        or same_algorithm
        and v.verdict == INSIDE_EXACT
        and v.rounding == BEYOND
    ]
    if bad:
        raise UnsoundClaim(
            f"{len(bad)} claimed side(s) refuted ({method}, relaxation "
            f"{relaxation}):\n" + "\n".join(_describe(v) for v in bad),
            bad,
            res,
        )
    return res
