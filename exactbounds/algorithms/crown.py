"""CROWN (backward linear relaxation) and forward affine propagation over a graph.

``crown(graph, input_set, ctx=None, lower_slope="adaptive", intersect_ibp=False,
intermediate=False)`` -> :class:`BoundsResult`: output ``Box``; the final linear bounds
``lA·x + lb <= f(x) <= uA·x + ub`` for every ``x`` in the input set; ``mode``; ``status``; and
with ``intermediate=True`` the bounds of every node computed (``nodes``: name -> Box).

Algorithm: for every input of an operator that needs bounds (a relaxation: ReLU, Sigmoid,
Tanh, ...), in topological order, bounds by a backward pass from that node (CROWN on every
pre-activation node); then one backward pass from the output. A backward pass carries two
functionals ``Λ_L``, ``Λ_U`` from the node towards the input; each operator's own
``crown_step`` maps them to its inputs (affine: ``Λ ↦ Λ·W``; relaxed: the lower line where the
coefficient is ``>= 0``, the upper line otherwise; pass-through: unchanged); residual inputs add
up. A structured operator (convolution, index map, ...) maps ``Λ`` without its dense matrix
(``AffineOp.linear_map``); backward passes run in row chunks (``CHUNK_ENTRIES``) and, in the
mode ``fast``, start only from the rows IBP leaves unstable before a ReLU
(:meth:`_Crown.unstable_rows`), and take fast IBP where CROWN cannot be tighter
(:meth:`_Crown.ibp_rule`). In the mode ``fast`` with a network input of at most
``FORWARD_MAX_INPUT`` (64) entries, such a node of more than ``FORWARD_MIN_NODE`` (1024) entries
first gets forward affine bounds (``op.forward_step``, structured in ``linalg/fast_forward.py``)
intersected with IBP, and backward passes start only from the neurons these leave unstable (a
finer filter than IBP alone; a stable neuron's ReLU lines do not depend on its bounds). At the
input the forms are concretised over the set
(:func:`exactbounds.inputsets.concretize_mat`). No intersection with IBP unless asked. This
module is a generic loop: it names no operator.

The matrices are the context's backend (``exactbounds.linalg``): in the modes ``exact`` and
``dyadic`` exact integer-backed matrices, in ``interval`` python-flint ``arb_mat`` balls.

Modes (from ``ctx``): ``exact`` (``RationalContext``; status ``exact``),
``dyadic`` (default, ``DyadicContext(64)``: every intermediate bound rounded outward to a
``bits``-bit dyadic and ReLU chord slopes rounded as in ``operators/relu.py``; status
``bound``), ``interval`` (``IntervalContext(prec)``; python-flint ``arb_mat`` balls that enclose
the exact algorithm's numbers; a branch the balls cannot decide takes the hull of both
branches; a relaxation that raises ``AmbiguousBranch`` makes the run restart at twice the
precision, up to 3 times; status ``enclosure``), ``fast`` (``FastContext``, float64 balls;
every relaxation's lines are point floats valid on the outer ends of the float intermediate
bounds, so the result is a sound ``bound`` of the network, not an enclosure of exact CROWN; see
``numbers/fast.py``; the backward pass carries point functionals, each node charging the
rounding radius of the functionals reaching it to the biases as ``0 ± R·m`` with
``m >= |z|`` from the node's stored or IBP bounds: :meth:`_Crown.settle`,
``linalg/fast_point.py``). BatchNorm with an irrational √(σ²+ε) enters
with midpoint coefficients and an error term bounded with exact IBP boxes, and any square root
or enclosed intercept in the exact mode makes the status ``bound`` (a sound bound, not the
exact value of the algorithm).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from flint import arb, fmpq, fmpq_mat

from ..core import Box
from ..errors import AmbiguousBranch, InvalidValueError, ShapeError
from ..inputsets import bounding_box, concretize_mat
from ..linalg import IDENT, backend_for
from ..linalg.fast_ibp import FBox
from ..numbers import make_context
from ..operators.relu import LOWER_SLOPES
from .ibp import ibp, ibp_fboxes
from .profiles import Profile, make_profile
from .result import BoundsResult

if TYPE_CHECKING:
    from ..graph import Graph, Node
    from ..numbers.contexts import Context


def default_context(mode: str = "dyadic", bits: int | None = None, prec: int = 113) -> Context:
    return make_context(mode, bits=bits, prec=prec)


def pre_activation_nodes(graph: Graph) -> set[str]:
    """Names of the nodes whose bounds an operator's relaxation needs."""
    need = set()
    for node in graph:
        if node.op.needs_bounds:
            need.update(node.inputs)
    return need


class _Run:
    """State of one bound computation (shared by CROWN and forward affine)."""

    def __init__(
        self, graph: Graph, input_set: Any, ctx: Context, profile: Profile, progress: Any = None
    ) -> None:
        if input_set.dim != graph.input_dim:
            raise ShapeError(
                f"the input set has {input_set.dim} entries, the network takes {graph.input_dim}"
            )
        self.graph, self.S, self.ctx = graph, input_set, ctx
        self.be = backend_for(ctx)
        self.profile = profile
        self.relax_opts = profile.relax_opts()
        self.intersect = profile.intersect_ibp
        self.progress = progress
        self.rounded = False
        self.notes = []
        self.bounds = {}  # node -> (lo entries, hi entries) in the backend
        self.relaxed = {}  # node -> the operator's relaxation, in the backend
        self.coeffs = {}
        self.splits = {}
        self._ibp: dict[str, Any] | None = None
        self._fboxes: dict[str, Any] | None = None
        self.order = {n.name: k for k, n in enumerate(graph.nodes)}
        self.dims = {graph.INPUT: graph.input_dim}
        for n in graph.nodes:
            self.dims[n.name] = n.op.out_dim

    # -- helpers ---------------------------------------------------------------------------
    def ibp_boxes(self) -> Any:
        """Exact IBP boxes of every node (outer ends), for error terms and intersections."""
        if self._ibp is None:
            rc = self.ctx.exact_context()
            boxes = ibp(self.graph, bounding_box(self.S), rc, intermediate=True, rounded=False)
            self._ibp = {k: b.outer(rc) for k, b in boxes.items()}
        return self._ibp

    def fast_ibp_boxes(self) -> dict[str, Any]:
        """Fast IBP boxes (:class:`~exactbounds.linalg.fast_ibp.FBox`) of every node from the
        input set, made once."""
        if self._fboxes is None:
            self._fboxes = ibp_fboxes(self.graph, self.S, self.ctx)
        return self._fboxes

    def abs_max(self, name: str) -> list[Any]:
        """Exact upper bounds of ``|z|`` for node ``name`` on the input set: from fast IBP in the
        mode ``fast`` (float ends, exact as rationals), else from exact IBP."""
        if self.ctx.backend_kind == "fast":
            f = self.fast_ibp_boxes()[name]
            m = np.maximum(np.abs(f.ll), np.abs(f.hh))
            if np.isfinite(m).all():
                return [fmpq(*v.as_integer_ratio()) for v in m.tolist()]
        lo, hi = self.ibp_boxes()[name]
        return [max(abs(a), abs(b)) for a, b in zip(lo, hi)]

    def affine_coeffs(self, node: Node) -> Any:
        """Backend ``(Ws, b, err)``: ``err`` a column bounding the coefficient uncertainty
        (``Σ_k Wrad_k·|x_k|max + brad``) or ``None``."""
        got = self.coeffs.get(node.name)
        if got is None:
            be = self.be
            Ws, b, Wr, br = node.op.linear_enclosure(self.ctx)
            err = None
            if Wr is not None:
                e = br
                for R, inp in zip(Wr, node.inputs):
                    e = e + R * fmpq_mat(R.ncols(), 1, self.abs_max(inp))
                err = be.mat(e)
                self.rounded = True
                self.note(
                    "BatchNorm coefficients enclosed (irrational square root): "
                    "midpoints plus an IBP error term"
                )
            got = self.coeffs[node.name] = ([be.mat(W) for W in Ws], be.mat(b), err)
        return got

    def split(self, node: Node, k: int) -> Any:
        """``(W_k⁺, W_k⁻)`` of an affine node's (midpoint) coefficients, as backend matrices."""
        key = (node.name, k)
        if key not in self.splits:
            Ws, _, _, _ = node.op.linear_enclosure(self.ctx)
            self.splits[key] = self.be.split(Ws[k])
        return self.splits[key]

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def relaxation(self, node: Node) -> Any:
        """The relaxation of ``node`` on its inputs' bounds (the profile's; by default the
        operator's own, ``op.make_relaxation``), once."""
        got = self.relaxed.get(node.name)
        if got is None:
            got = self.relaxed[node.name] = self.profile.relaxation(self, node)
        return got

    def input_bounds_from_forms(self, name: str, form: Any) -> None:
        """Forward affine: the bounds of ``name`` from its forms ``(L, l, U, u)`` over the set."""
        be = self.be
        L, l, U, u = form
        lo = be.entries(concretize_mat(self.S, be, L, l, False, self.ctx))
        hi = be.entries(concretize_mat(self.S, be, U, u, True, self.ctx))
        self.bounds[name] = self.finish_bounds(name, lo, hi, False)

    def node_bounds(self, name: str) -> Any:
        if name == self.graph.INPUT:
            if name not in self.bounds:
                lo, hi = bounding_box(self.S).outer()
                self.bounds[name] = ([self.be.const(v) for v in lo], [self.be.const(v) for v in hi])
            return self.bounds[name]
        if name not in self.bounds:
            self.bounds[name] = self.profile.intermediate_bounds(self, name)
        return self.bounds[name]

    def finish_bounds(self, name: str, lo: Any, hi: Any, final: bool) -> tuple[Any, ...]:
        """Round (dyadic, intermediate) and intersect with IBP (when asked)."""
        ctx, be = self.ctx, self.be
        if not final and ctx.rounds_bounds:
            lo = [ctx.round_bound(v, False) for v in lo]
            hi = [ctx.round_bound(v, True) for v in hi]
        if self.intersect:
            ilo, ihi = self.ibp_boxes()[name]
            if be.exact:
                lo = [max(a, b) for a, b in zip(lo, ilo)]
                hi = [min(a, b) for a, b in zip(hi, ihi)]
            else:
                lo = [_arb_max(a, b) for a, b in zip(lo, ilo)]
                hi = [_arb_min(a, b) for a, b in zip(hi, ihi)]
        return lo, hi

    def box(self, lo: Any, hi: Any, shape: Any) -> Box:
        ctx, be = self.ctx, self.be
        return Box([be.to_ctx(ctx, v) for v in lo], [be.to_ctx(ctx, v) for v in hi], shape)

    def tick(self) -> None:
        if self.progress is not None:
            self.progress.update(1)


def _arb_max(a: Any, q: Any) -> Any:
    return a.max(arb(q))


def _arb_min(a: Any, q: Any) -> Any:
    return a.min(arb(q))


class _Crown(_Run):
    def backward(self, target: Any, rows: Any = None) -> tuple[Any, ...]:
        """``(LA, Lb, UA, Ub)`` over the network input for the node ``target`` (only its
        entries ``rows``, in that order, when given)."""
        be, graph = self.be, self.graph
        start = IDENT
        m = self.dims[target]
        if rows is not None:
            start = be.eye_rows(rows, m)
            m = len(rows)
        lamL, lamU = {target: start}, {target: start}
        biasL = biasU = be.zeros(m, 1)
        for node in reversed(graph.nodes[: self.order[target] + 1]):
            if node.name not in lamL:
                continue
            LL, LU, biasL, biasU = self.settle(
                node.name, lamL.pop(node.name), lamU.pop(node.name), biasL, biasU
            )
            newL, newU, cL, cU = node.op.crown_step(self, node, LL, LU)
            for t in cL:
                biasL = biasL + t
            for t in cU:
                biasU = biasU + t
            for inp, aL, aU in zip(node.inputs, newL, newU):
                d = self.dims[inp]
                same = lamL.get(inp) is lamU.get(inp) and aL is aU
                lamL[inp] = be.add(lamL.get(inp), aL, d)
                lamU[inp] = lamL[inp] if same else be.add(lamU.get(inp), aU, d)
        LA, UA, biasL, biasU = self.settle(
            graph.INPUT,
            be.full(lamL.get(graph.INPUT)),
            be.full(lamU.get(graph.INPUT)),
            biasL,
            biasU,
        )
        n = graph.input_dim
        if LA is None:  # the node does not depend on the input
            LA = UA = be.zeros(m, n)
        if LA is IDENT:
            LA = be.eye(n)
        if UA is IDENT:
            UA = be.eye(n)
        return LA, biasL, UA, biasU

    def settle(self, name: str, LL: Any, LU: Any, bL: Any, bU: Any) -> tuple[Any, ...]:
        """``(ΛL', ΛU', bL', bU')``: in the mode ``fast`` the functionals reaching ``name`` made
        points, their rounding radius charged to the biases ``bL``, ``bU`` as ``0 ± rad·m``
        with ``|z| <= m`` (``linalg/fast_point.py``); else all unchanged."""
        settle = getattr(self.be, "settle", None)
        if settle is None:
            return LL, LU, bL, bU

        def m_of() -> Any:
            return self.abs_bound(name)

        LL2, eL = settle(LL, m_of)
        LU2, eU = (LL2, eL) if LU is LL else settle(LU, m_of)
        return (
            LL2,
            LU2,
            bL if eL is None else bL + eL,
            bU if eU is None else bU + eU,
        )

    def abs_bound(self, name: str) -> Any:
        """A float column ``m >= |z|`` for node ``name`` on the input set: from its stored
        bounds, else fast IBP from the bounds stored so far (cached while none is added)."""
        cache = self.__dict__.setdefault("_absb", {})
        got = cache.get(name)
        if got is not None and got[0] == len(self.bounds):
            return got[1]
        if name in self.bounds and name != self.graph.INPUT:
            (ll, _), (_, hh) = (self.be.vectors(v) for v in self.bounds[name])
        else:
            f = self.ibp_from_stored(name)
            ll, hh = f.ll, f.hh
        m = np.maximum(np.abs(ll), np.abs(hh)).reshape(-1, 1)
        cache[name] = (len(self.bounds), m)
        return m

    def compute_bounds(self, name: str, final: bool, rows: Any = None) -> tuple[Any, ...]:
        """Backend ``(lo, hi)`` of node ``name`` by a backward pass (of its entries ``rows``
        only, when given: then the lists hold those entries, unrounded and not intersected)."""
        for node in self.graph.nodes[: self.order[name] + 1]:
            if node.op.needs_bounds:
                self.relaxation(node)
        be, given = self.be, rows
        if rows is None and not final and self.ibp_rule(name):
            f = self.ibp_from_stored(name)
            lo_col, hi_col = be.merge_rows(([], f.ll, f.hh), None, None)
            self.rounded = True
            self.note(
                "fast mode: intermediate bounds by IBP where CROWN cannot be tighter (one affine "
                "map of a box, entrywise maps of relaxed operators), as auto_LiRPA"
            )
            self.tick()
            return self.finish_bounds(name, be.entries(lo_col), be.entries(hi_col), False)
        sparse = None if rows is not None or final else self.unstable_rows(name)
        if sparse is not None and self.forward_rule(name):
            lo_f, hi_f = self.forward_bounds(name)
            unstable = [int(j) for j in self.open_rows(name, lo_f, hi_f).nonzero()[0]]
            sparse = (unstable, lo_f, hi_f)
        if sparse is not None:
            rows = sparse[0]
        forms, cols = [], []
        for part in self.row_chunks(name, rows):
            LA, Lb, UA, Ub = self.backward(name, part)
            cols.append(
                (
                    concretize_mat(self.S, be, LA, Lb, False, self.ctx),
                    concretize_mat(self.S, be, UA, Ub, True, self.ctx),
                )
            )
            if final:
                forms.append((LA, Lb, UA, Ub))
        lo_col, hi_col = (be.vstack([c[k] for c in cols]) if cols else None for k in (0, 1))
        if sparse is not None:
            lo_col, hi_col = be.merge_rows(sparse, lo_col, hi_col)
        lo, hi = be.entries(lo_col), be.entries(hi_col)
        if given is not None:
            return lo, hi
        self.tick()
        lo, hi = self.finish_bounds(name, lo, hi, final)
        if final:
            self.final_forms = tuple(be.vstack([f[k] for f in forms]) for k in range(4))
        return lo, hi

    def forward_rule(self, name: str) -> bool:
        """Whether the unstable neurons of ``name`` (a node read only by ReLUs) are picked by
        forward affine bounds: in the mode ``fast``, for a network input of at most
        ``FORWARD_MAX_INPUT`` entries and a node of more than ``FORWARD_MIN_NODE`` entries (its
        forms are ``entries × (input + 1)``, cheaper than a backward pass with one row per
        entry)."""
        return (
            self.ctx.backend_kind == "fast"
            and self.graph.input_dim <= FORWARD_MAX_INPUT
            and self.dims[name] > FORWARD_MIN_NODE
        )

    def forward_bounds(self, name: str) -> tuple[Any, ...]:
        """Float vectors ``(lo, hi)`` bounding ``name``, from the forward forms of every node up
        to it (the operators' ``forward_step``, relaxations on the bounds stored so far),
        concretised over the set and intersected with fast IBP from the stored bounds."""
        be, graph = self.be, self.graph
        fw = self.__dict__.setdefault("fwd_forms", {})
        if not fw:
            eye, zero = be.eye(graph.input_dim), be.zeros(graph.input_dim, 1)
            fw[graph.INPUT] = (eye, zero, eye, zero)
        for node in graph.nodes[: self.order[name] + 1]:
            if node.name not in fw:
                fw[node.name] = node.op.forward_step(self, node, [fw[i] for i in node.inputs])
        L, l, U, u = fw[name]
        lo_c = be.vectors(be.entries(concretize_mat(self.S, be, L, l, False, self.ctx)))[0]
        hi_c = be.vectors(be.entries(concretize_mat(self.S, be, U, u, True, self.ctx)))[1]
        f = self.ibp_from_stored(name)
        self.rounded = True
        self.note(
            f"fast mode: intermediate bounds of nodes with more than {FORWARD_MIN_NODE} entries "
            "by forward affine propagation (small network input), intersected with IBP; "
            "backward passes only from the neurons these leave unstable"
        )
        return np.maximum(lo_c, f.ll), np.minimum(hi_c, f.hh)

    def input_bounds_from_forms(self, name: str, form: Any) -> None:
        """Forward forms met inside CROWN: a node's stored bounds are kept."""
        if name not in self.bounds:
            super().input_bounds_from_forms(name, form)

    def row_chunks(self, name: str, rows: Any) -> list[Any]:
        """The backward passes from ``name``: its ``rows`` (``None``: all) in chunks of at most
        ``CHUNK_ENTRIES`` functional entries over the widest node, so that peak memory stays
        bounded; one pass (``[rows]``) when they fit."""
        m = self.dims[name] if rows is None else len(rows)
        if m == 0:
            return []
        size = max(1, CHUNK_ENTRIES // max(self.dims.values()))
        if m <= size:
            return [rows]
        rows = list(range(m)) if rows is None else list(rows)
        return [rows[k : k + size] for k in range(0, m, size)]

    def ibp_from_stored(self, name: str) -> Any:
        """Fast IBP (a float :class:`~exactbounds.linalg.fast_ibp.FBox`) of node ``name`` that
        starts from the bounds stored so far (the earlier pre-activation nodes' CROWN bounds,
        as auto_LiRPA's reference for sparse intermediate bounds), IBP from the input set
        elsewhere."""
        plain, be, vals = self.fast_ibp_boxes(), self.be, {}

        def get(n: str) -> Any:
            if n not in vals:
                if n in self.bounds and n != name:
                    (ll, lh), (hl, hh) = (be.vectors(v) for v in self.bounds[n])
                    vals[n] = FBox(ll, lh, hl, hh)
                elif n == self.graph.INPUT or not hasattr(self.graph.node(n).op, "ibp_fast"):
                    vals[n] = plain[n]
                else:
                    node = self.graph.node(n)
                    vals[n] = node.op.ibp_fast(self.ctx, *(get(i) for i in node.inputs))
            return vals[n]

        return get(name)

    def ibp_rule(self, name: str) -> bool:
        """Whether, in the mode ``fast``, the bounds of ``name`` are fast IBP from the stored
        bounds because CROWN cannot be tighter (auto_LiRPA's two IBP rules): (1) ``name`` is an
        entrywise affine image (:meth:`Op.entrywise`) of an elementwise relaxed operator
        whose input has stored bounds: IBP of the function on those bounds is its exact range,
        and every line CROWN takes lies below (above) the function there; (2) on a box input,
        ``name`` is one affine operator of the input (or of an elementwise relaxed operator
        whose lines are all constant, :meth:`constant_lines`), composed with entrywise maps
        (one-to-one before it): IBP of one affine map over a box is its exact range."""
        if self.ctx.backend_kind != "fast" or self.intersect:
            return False
        graph, n, general = self.graph, name, False
        box = isinstance(self.S, Box) or getattr(self.S, "norm", None) == "inf"
        while n != graph.INPUT:
            node = graph.node(n)
            op = node.op
            if len(node.inputs) != 1 or not hasattr(op, "ibp_fast"):
                return False
            kind = op.entrywise()
            if op.needs_bounds:  # rule 1, or rule 2 from constant lines
                if kind != "copy" or node.inputs[0] not in self.bounds:
                    return False
                return not general or self.constant_lines(node)
            if kind is None or (general and kind != "copy"):
                if general or not box or not hasattr(op, "linear_params"):
                    return False
                general = True  # rule 2: the one affine operator
            n = node.inputs[0]
        return box

    def constant_lines(self, node: Node) -> bool:
        """Whether every line of the elementwise relaxation of ``node`` has slope 0 (Sign's
        lines, saturated functions): CROWN through it is IBP over the box of its constant
        lines, which holds IBP's range of the function."""
        ls, _, us, _ = self.relaxation(node)[:4]
        for v in (ls, us):
            lo, hi = self.be.vectors(v)
            if lo.any() or hi.any():
                return False
        return True

    def open_rows(self, name: str, lo: Any, hi: Any) -> Any:
        """The mask of the entries of ``name`` whose sign the float bounds leave open for its
        sign-relaxed readers (an end at 0 stays open for Sign: ``sign(0) = 0``)."""
        readers = [n for n in self.graph.nodes if name in n.inputs]
        if any(SIGN_RELAXED.get(n.op.kind) for n in readers):
            return (lo <= 0) & (hi >= 0)
        return (lo < 0) & (hi > 0)

    def unstable_rows(self, name: str) -> Any:
        """In the mode ``fast``, before a node read only by sign-relaxed operators (ReLU: its
        lines are exact once the sign is known): ``(rows, lo, hi)`` with the rows that IBP
        leaves unstable and IBP's float ends of every entry (the others keep those; a backward
        pass starts only from the unstable rows, as auto_LiRPA does); else ``None``."""
        if self.ctx.backend_kind != "fast" or self.intersect or self.dims[name] < SPARSE_MIN:
            return None
        readers = [n for n in self.graph.nodes if name in n.inputs]
        if not readers or any(n.op.kind not in SIGN_RELAXED for n in readers):
            return None
        f = self.ibp_from_stored(name)
        lo, hi = f.ll, f.hh
        rows = [int(j) for j in self.open_rows(name, lo, hi).nonzero()[0]]
        self.rounded = True  # IBP's sign may differ from CROWN's: a sound bound, not an enclosure
        self.note(
            "fast mode: intermediate CROWN bounds only for the neurons that IBP leaves unstable "
            "(IBP bounds for the others)"
        )
        return rows, lo, hi


FORWARD_MAX_INPUT = 64
"""Mode ``fast``: networks with at most this many inputs get forward affine bounds on large
nodes (:meth:`_Crown.forward_rule`)."""
FORWARD_MIN_NODE = 1024
"""... on the nodes with more than this many entries (read only by ReLUs): backward passes then
start from the neurons the forward bounds leave unstable."""
CHUNK_ENTRIES = 1 << 22
"""Entries of one chunk of a backward pass's functionals (rows × the widest node)."""
SIGN_RELAXED = {"relu": False, "sign": True}
"""Operator kinds whose relaxation of an entry is exact once its sign is known, and whether an
end at 0 leaves the sign open (Sign: ``sign(0) = 0`` differs from ``sign(x)`` nearby)."""
SPARSE_MIN = 1024
"""Nodes with at least this many entries get CROWN bounds only where IBP leaves them unstable
(mode ``fast``)."""


def _forms_to_lists(run: _Run, forms: Any) -> Any:
    be, ctx = run.be, run.ctx
    LA, Lb, UA, Ub = forms
    lazy = getattr(be, "lazy_rows", None)
    if lazy is not None:  # float forms: converted row by row when read
        return lazy(ctx, LA), lazy(ctx, Lb, True), lazy(ctx, UA), lazy(ctx, Ub, True)

    def rows(M: Any) -> list[Any]:
        n = M.ncols()
        es = [be.to_ctx(ctx, v) for v in be.entries(M)]
        return [es[i * n : (i + 1) * n] for i in range(M.nrows())]

    return (
        rows(LA),
        [be.to_ctx(ctx, v) for v in be.entries(Lb)],
        rows(UA),
        [be.to_ctx(ctx, v) for v in be.entries(Ub)],
    )


def _result(
    method: str, run: _Run, graph: Graph, out: Any, forms: Any, intermediate: bool
) -> BoundsResult:
    """The ``BoundsResult`` of a finished run: output box, final linear forms over the input,
    and with ``intermediate`` every node's bounds."""
    lA, lb, uA, ub = _forms_to_lists(run, forms)
    nodes = {}
    if intermediate:
        nodes = {k: run.box(a, b, None) for k, (a, b) in run.bounds.items()}
        nodes[graph.output] = out
    c = run.ctx
    return BoundsResult(method, c.mode, c, out, _status(run), lA, lb, uA, ub, nodes, run.notes)


def _status(run: _Run) -> str:
    if getattr(run.S, "norm", None) == "2":
        run.rounded = True  # ‖A_i‖₂ is a square root, rounded outward
    return run.ctx.result_status(run.rounded)


def _check_slope(lower_slope: str) -> None:
    if lower_slope not in LOWER_SLOPES:
        raise InvalidValueError(
            "lower_slope", lower_slope, f"expected one of {', '.join(LOWER_SLOPES)}"
        )


def _profile(relaxation: str | Profile, lower_slope: str, intersect_ibp: bool) -> Profile:
    """The relaxation profile of a run (a ``Profile`` passes through)."""
    _check_slope(lower_slope)
    if isinstance(relaxation, Profile):
        return relaxation
    return make_profile(relaxation, lower_slope=lower_slope, intersect_ibp=intersect_ibp)


def run_with_escalation(fn: Any, ctx: Context, retries: int = 3) -> Any:
    """Run ``fn(ctx)``; an ``AmbiguousBranch`` (also from ``ctx.accept`` of the result)
    restarts it in ``ctx.refined()`` (the interval mode: twice the precision), up to
    ``retries`` times, and is re-raised after that."""
    for k in range(retries + 1):
        try:
            return ctx.accept(fn(ctx))
        except AmbiguousBranch:
            nxt = ctx.refined()
            if nxt is None or k == retries:
                raise
            ctx = nxt


def crown(
    graph: Graph,
    input_set: Any,
    ctx: Context | None = None,
    lower_slope: str = "adaptive",
    intersect_ibp: bool = False,
    intermediate: bool = False,
    progress: Any = None,
    relaxation: str | Profile = "exactbounds",
) -> BoundsResult:
    """CROWN bounds of ``graph`` over ``input_set`` (a Box or an LpBall); see the module
    docstring. ``ctx`` defaults to ``DyadicContext(64)``; ``relaxation`` names the profile
    (``algorithms/profiles.py``) or is a ``Profile``."""
    profile = _profile(relaxation, lower_slope, intersect_ibp)
    ctx = ctx if ctx is not None else default_context("dyadic")

    def go(c: Any) -> Any:
        run = _Crown(graph, input_set, c, profile, progress)
        with run.be.precision():
            need = pre_activation_nodes(graph)
            for node in graph.nodes:
                if node.name in need:
                    run.node_bounds(node.name)
            lo, hi = run.compute_bounds(graph.output, final=True)
            out = run.box(lo, hi, graph.nodes[-1].op.out_shape if graph.nodes else None)
            return _result("crown", run, graph, out, run.final_forms, intermediate)

    return run_with_escalation(go, ctx)


__all__ = ["crown", "BoundsResult", "pre_activation_nodes", "LOWER_SLOPES"]
