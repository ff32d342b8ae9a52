"""The operator interface: every operator owns one step per algorithm.

Every operator has ``kind``, ``name``, ``in_shapes`` (one shape per input tensor), ``out_shape``,
``in_dim``/``out_dim`` (flattened sizes of the first input and the output) and the verbs, each
taking the number context (or the algorithm's run) first:

``evaluate(ctx, *xs)``                  the exact value at points (flat lists);
``ibp(ctx, *boxes)``                    interval bounds (:class:`~exactbounds.core.Box`);
``crown_step(run, node, ΛL, ΛU)``       the CROWN backward step: for the functionals ``ΛL``,
                                        ``ΛU`` on the output returns ``(new ΛL per input, new ΛU
                                        per input, bias terms of ΛL, bias terms of ΛU)`` with
                                        ``ΛL·y >= Σ newL_k·x_k + Σ bL`` and ``ΛU·y <= ...`` (the
                                        terms are added in order);
``forward_step(run, node, forms)``      forward affine: the output's ``(L, l, U, u)`` over the
                                        network input from its inputs' forms;
``jet_step(ctx, node, jets, order, rule)`` Taylor mode: the derivative boxes ``(d1, d2)``, whether
                                        an outward enclosure entered (``bound``), and notes.

``run`` is the algorithm's state (``algorithms/crown.py``): ``run.be`` (the matrix backend),
``run.ctx``, ``run.affine_coeffs(node)``, ``run.relaxation(node)``, ``run.node_bounds(name)``,
``run.input_bounds_from_forms(name, form)``. Operators never import the algorithms.

Shared bases (a new operator derives from one and supplies only its maths):

* :class:`AffineOp`: ``y = Σ_k W_k·x_k + b`` with exact coefficients from ``linear_params()``
  (or an enclosure of them from ``linear_enclosure(ctx)``); every verb follows.
* :class:`Relaxed`: elementwise nonlinear; supplies ``relax(ctx, lo, hi, **opts) -> (ls, lb, us,
  ub)`` with ``ls·x + lb <= f(x) <= us·x + ub`` on ``[lo, hi]``.
* :class:`LinearRelaxed`: nonlinear over several entries or inputs (MaxPool, Softmax, products);
  supplies ``relax_linear(ctx, ends, **opts) -> ([LW_k], Lb, [UW_k], Ub)`` (exact ``fmpq_mat``)
  with ``Σ LW_k·x_k + Lb <= y <= Σ UW_k·x_k + Ub`` on the input boxes ``ends = [(lo_k, hi_k)]``.
* :class:`PassThrough`: values unchanged, only the shape is renamed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from math import prod
from typing import TYPE_CHECKING, Any

from flint import fmpq_mat

from ..core import AffineVec, Box
from ..errors import ShapeError, UnsupportedOperatorError, shown
from ..linalg import IDENT, split_q
from ..linalg.affine import AffineMats
from ..linalg.fast_forward import lin_forward
from ..linalg.fast_ibp import affine_fbox, affine_floats
from ..linalg.structured import DiagPart, GatherPart
from .jets import JetStep

if TYPE_CHECKING:
    from ..algorithms.crown import _Run
    from ..graph import Node
    from ..numbers.contexts import Context


def as_shape(shape: Any, what: str) -> tuple[int, ...]:
    try:
        s = tuple(int(d) for d in (shape if isinstance(shape, (list, tuple)) else [shape]))
    except (TypeError, ValueError):
        raise ShapeError(f"{what}: shape {shown(shape)} is not a tuple of integers") from None
    if not s or any(d <= 0 for d in s):
        raise ShapeError(f"{what}: shape {s} must be non-empty with positive sizes")
    return s


class Op(ABC):
    in_shapes: Sequence[tuple[int, ...]]  # set by each operator (an attribute or a property)
    out_shape: tuple[int, ...]
    kind = "op"
    name: str | None = None
    needs_bounds = False
    """CROWN and forward affine need bounds on this operator's inputs (a relaxation)."""

    @property
    def arity(self) -> int:
        return len(self.in_shapes)

    @property
    def in_dim(self) -> int:
        return prod(self.in_shapes[0])

    @property
    def out_dim(self) -> int:
        return prod(self.out_shape)

    def _label(self) -> str:
        return self.name or self.kind

    def check_inputs(self, sizes: Any, what: str) -> None:
        if len(sizes) != self.arity:
            raise ShapeError(f"{self._label()}: takes {self.arity} inputs, got {len(sizes)}")
        for k, (n, s) in enumerate(zip(sizes, self.in_shapes)):
            if n != prod(s):
                raise ShapeError(
                    f"{self._label()}: {what} {k} has {n} entries, expected {prod(s)} (shape {s})"
                )

    @abstractmethod
    def evaluate(self, ctx: Context, *xs: Any) -> Any:
        """The value at points (flat lists of ``ctx`` elements)."""

    @abstractmethod
    def ibp(self, ctx: Context, *boxes: Any) -> Box:
        """Interval bounds from the inputs' boxes."""

    def entrywise(self) -> str | None:
        """How output entries depend on input entries, for CROWN's IBP rules in the mode
        ``fast``: ``"copy"`` when every output entry is a function of at most one entry of the
        (single) input and every input entry enters at most one output entry (a permutation,
        a selection, a diagonal, an elementwise function); ``"spread"`` when an input entry may
        enter several outputs (a gather that repeats); ``None`` otherwise."""
        return None

    def _unsupported(self, node: Node, what: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(f"{node.name}: operator {self.kind!r} has no {what}")

    def crown_step(self, run: _Run, node: Node, lamL: Any, lamU: Any) -> Any:
        raise self._unsupported(node, "linear relaxation for CROWN")

    def forward_step(self, run: _Run, node: Node, forms: Any) -> Any:
        raise self._unsupported(node, "linear relaxation for forward affine propagation")

    def jet_step(self, ctx: Context, node: Node, jets: Any, order: int, rule: str) -> JetStep:
        raise UnsupportedOperatorError(
            f"node {node.name!r} ({self.kind}): no derivative rule (supported: affine operators, "
            "sigmoid, tanh, and relu at order 1)"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_shapes} -> {self.out_shape})"


class AffineOp(Op):
    """``y = Σ_k W_k·x_k + b`` with exact ``W_k``, ``b`` (see the module docstring)."""

    _mats = None

    @abstractmethod
    def linear_params(self) -> Any:
        """``([W_k], b)``: one exact ``fmpq_mat`` (or ``DyMat``) per input and the bias column."""

    def mats(self) -> Any:
        """The coefficients as :class:`~exactbounds.linalg.affine.AffineMats` (built once)."""
        if self._mats is None:
            Ws, b = self.linear_params()
            self._mats = AffineMats(Ws, b)
        return self._mats

    def linear_map(self) -> Any:
        """The coefficients as a :class:`~exactbounds.linalg.structured.LinearMap` (a
        convolution, a selection, a diagonal: no dense matrix), or ``None`` (dense only)."""
        return None

    def entrywise(self) -> str | None:
        """From the structured map: a diagonal or a gather on one input (:meth:`Op.entrywise`)."""
        lin = self.linear_map()
        if lin is None or len(lin.parts) != 1:
            return None
        part = lin.parts[0]
        if isinstance(part, DiagPart):
            return "copy"
        if isinstance(part, GatherPart):
            return "copy" if part.unique else "spread"
        return None

    def weights(self) -> list[Any]:
        m = self.mats()
        return [m.q(k) for k in range(m.n_inputs)]

    def bias(self) -> Any:
        return self.mats().b

    def linear_enclosure(self, ctx: Context) -> tuple[Any, ...]:
        """Exact ``(Ws, b, Wrad, brad)`` with the true coefficients in ``W ± Wrad``,
        ``b ± brad``; an affine operator's coefficients are exact (radii ``None``). ``Ws`` come
        in the representation they were built in (a backend converts them)."""
        m = self.mats()
        return [m.raw(k) for k in range(m.n_inputs)], m.b, None, None

    # -- verbs ------------------------------------------------------------------------------
    def evaluate(self, ctx: Context, *xs: Any) -> Any:
        self.check_inputs([len(x) for x in xs], "x")
        return self.mats().evaluate(ctx, xs)

    def _ibp(self, ctx: Context, boxes: Any, with_bias: bool) -> Any:
        self.check_inputs([b.dim for b in boxes], "input box")
        lo, hi = self.mats().ibp(ctx, [(b.lo, b.hi) for b in boxes], with_bias)
        return Box(lo, hi, self.out_shape)

    def ibp(self, ctx: Context, *boxes: Any) -> Box:
        """``lo_i = b_i + Σ_j W_ij·(lo_j if W_ij >= 0 else hi_j)``, ``hi`` likewise."""
        return self._ibp(ctx, boxes, True)

    def ibp_entries(self) -> int:
        """Exact matrix entries IBP holds at once (the budget's estimate): the dense
        ``out × in`` coefficients of this generic IBP, or ``out`` for an operator whose own
        ``ibp`` works entry by entry (index maps, BatchNorm, elementwise maps, pools)."""
        if type(self).ibp is AffineOp.ibp:
            return self.out_dim * sum(prod(s) for s in self.in_shapes)
        return self.out_dim

    def ibp_fast(self, ctx: Context, *fboxes: Any) -> Any:
        """IBP on float boxes (the mode ``fast``, :mod:`exactbounds.linalg.fast_ibp`), with the
        float coefficients of :meth:`linear_enclosure` (built once per precision)."""
        cache = self.__dict__.setdefault("_fast_coeffs", {})
        key = ctx.precision
        if key not in cache:
            cache[key] = affine_floats(*self.linear_enclosure(ctx))
        mats, bias = cache[key]
        return affine_fbox(list(zip(mats, fboxes)), bias)

    def deriv(self, ctx: Context, *dboxes: Any) -> Any:
        """Derivative boxes: ``J·d`` with ``J = W`` (no bias)."""
        return self._ibp(ctx, dboxes, False)

    def deriv2(self, ctx: Context, *d2boxes: Any) -> Any:
        """Second derivatives along a curve: ``J·d''`` (the map is affine)."""
        return self.deriv(ctx, *d2boxes)

    def aff(self, ctx: Context, *affs: Any) -> Any:
        """``Σ_k W_k·(A_k·x + c_k) + b`` as one :class:`AffineVec` (all forms over the same x)."""
        self.check_inputs([a.out_dim for a in affs], "affine form")
        n = affs[0].in_dim
        A, c = self.mats().aff(ctx, [(a.A, a.c) for a in affs], n)
        return AffineVec(A, c, n)

    # -- algorithm steps --------------------------------------------------------------------
    def crown_step(self, run: _Run, node: Node, LL: Any, LU: Any) -> tuple[Any, ...]:
        """``Λ·y = Σ_k (Λ·W_k)·x_k + Λ·b``; an enclosed coefficient adds ``∓|Λ|·err``. With a
        structured map (:meth:`linear_map`) the backend forms ``Λ·W_k`` without ``W_k``."""
        be = run.be
        lin = self.linear_map()
        if lin is not None:
            got = be.lin_crown(lin, LL, LU, self.out_dim)
            if got is not None:
                return got
        Ws, b, err = run.affine_coeffs(node)
        if err is not None:  # |Λ|·err needs the whole functional
            same = LU is LL
            LL = be.full(LL)
            LU = LL if same else be.full(LU)
        if LL is IDENT:
            newL, cL = list(Ws), b
        else:
            newL, cL = [be.mul(LL, W) for W in Ws], be.mul(LL, b)
        if LU is LL:
            newU, cU = newL, cL
        elif LU is IDENT:
            newU, cU = list(Ws), b
        else:
            newU, cU = [be.mul(LU, W) for W in Ws], be.mul(LU, b)
        if err is None:
            return newL, newU, [cL], [cU]
        return (
            newL,
            newU,
            [cL, -(err if LL is IDENT else be.abs(LL) * err)],
            [cU, err if LU is IDENT else be.abs(LU) * err],
        )

    def forward_step(self, run: _Run, node: Node, forms: Any) -> Any:
        """``L' = W⁺L + W⁻U``, ``l' = W⁺l + W⁻u + b`` (and symmetrically ``U'``); while the
        inputs' two forms coincide, one product. A backend that takes structured maps
        (``be.forward_structured``, the mode fast) maps the forms by :meth:`linear_map` (a
        convolution maps the forms' columns as images; ``linalg/fast_forward.py``)."""
        be = run.be
        lin = self.linear_map() if be.forward_structured else None
        if lin is not None:
            got = lin_forward(be, lin, forms, run.graph.input_dim)
            if got is not None:
                return got
        Ws, b, err = run.affine_coeffs(node)
        m, n = self.out_dim, run.graph.input_dim
        L, l, U, u = be.zeros(m, n), b, be.zeros(m, n), b
        for k, (W, (iL, il, iU, iu)) in enumerate(zip(Ws, forms)):
            if iL is iU and il is iu:
                L, l = L + W * iL, l + W * il
                U, u = (L, l) if k == 0 and len(Ws) == 1 else (U + W * iU, u + W * iu)
                continue
            P, N = run.split(node, k)
            L, l = L + P * iL + N * iU, l + P * il + N * iu
            U, u = U + P * iU + N * iL, u + P * iu + N * il
        if err is not None:
            l, u = l - err, u + err
        return (L, l, U, u) if not (L == U and l == u) else (L, l, L, l)

    def jet_step(self, ctx: Context, node: Node, jets: Any, order: int, rule: str) -> JetStep:
        """``u' = J·d'``, ``u'' = J·d''`` (:meth:`deriv`, :meth:`deriv2`)."""
        d1 = self.deriv(ctx, *(j.d1 for j in jets))
        d2 = self.deriv2(ctx, *(j.d2 for j in jets)) if order >= 2 else None
        return JetStep(d1, d2)


class PassThrough(Op):
    """An operator that only renames the shape of its single input."""

    def entrywise(self) -> str | None:
        return "copy"

    def evaluate(self, ctx: Context, x: Any) -> Any:
        self.check_inputs([len(x)], "x")
        return list(x)

    def ibp(self, ctx: Context, box: Box) -> Box:
        self.check_inputs([box.dim], "input box")
        return Box(box.lo, box.hi, self.out_shape)

    deriv = ibp
    deriv2 = ibp

    def ibp_fast(self, ctx: Context, fbox: Any) -> Any:
        return fbox

    def aff(self, ctx: Context, aff: Any) -> Any:
        self.check_inputs([aff.out_dim], "affine form")
        return aff

    def crown_step(self, run: _Run, node: Node, LL: Any, LU: Any) -> tuple[Any, ...]:
        return [LL], [LU], [], []

    def forward_step(self, run: _Run, node: Node, forms: Any) -> Any:
        return forms[0]

    def jet_step(self, ctx: Context, node: Node, jets: Any, order: int, rule: str) -> JetStep:
        j = jets[0]
        return JetStep(self.deriv(ctx, j.d1), self.deriv(ctx, j.d2) if order >= 2 else None)


FAST_LINES_NOTE = (
    "fast mode: relaxation lines are floats made valid on the outer ends of the float "
    "intermediate bounds; the result is a sound bound, not an enclosure of exact CROWN"
)


class Relaxed(Op):
    """An elementwise nonlinear operator with sound linear lines (``relax``)."""

    needs_bounds = True

    def entrywise(self) -> str | None:
        return "copy"

    @abstractmethod
    def relax(
        self, ctx: Context, lo: Any, hi: Any, **opts: Any
    ) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        """``(ls, lb, us, ub)`` lists with ``ls·x + lb <= f(x) <= us·x + ub`` on ``[lo, hi]``."""

    def make_relaxation(self, run: _Run, node: Node, relax: Any = None) -> Any:
        """The lines on the bounds of the input, as backend lists; ``relax`` (a function with
        the signature of :meth:`relax`) replaces the operator's own lines (a profile's rule)."""
        ctx, be = run.ctx, run.be
        lo, hi = run.node_bounds(node.inputs[0])
        vec = getattr(self, "relax_vec", None)
        if relax is None and vec is not None and hasattr(be, "vectors"):
            # the mode fast: point-float lines valid on the outer ends (a sound bound)
            got = vec(*be.vectors(lo), *be.vectors(hi), **run.relax_opts)
            if got is not None:
                run.rounded = True
                run.note(FAST_LINES_NOTE)
                return got
        lo_c = [be.to_ctx(ctx, v) for v in lo]
        hi_c = [be.to_ctx(ctx, v) for v in hi]
        ls, lb, us, ub = (relax or self.relax)(ctx, lo_c, hi_c, **run.relax_opts)
        if hasattr(be, "vectors"):  # the mode fast: lines on the balls' outer ends
            run.rounded = True
            run.note(FAST_LINES_NOTE)
        if be.exact:
            if any(ctx.status(v) != "exact" for v in lb + ub):
                run.rounded = True
            return (
                [be.from_ctx(ctx, v) for v in ls],
                [be.from_ctx(ctx, v, False) for v in lb],
                [be.from_ctx(ctx, v) for v in us],
                [be.from_ctx(ctx, v, True) for v in ub],
            )
        return tuple([be.from_ctx(ctx, v) for v in vs] for vs in (ls, lb, us, ub))

    def crown_step(self, run: _Run, node: Node, LL: Any, LU: Any) -> tuple[Any, ...]:
        be = run.be
        rel = run.relaxation(node)
        n = self.out_dim
        newL, bL = be.relax_backward(be.full(LL), n, rel, False, True)
        newU, bU = be.relax_backward(be.full(LU), n, rel, True, True)
        return [newL], [newU], [bL], [bU]

    def forward_step(self, run: _Run, node: Node, forms: Any) -> tuple[Any, ...]:
        be = run.be
        iL, il, iU, iu = forms[0]
        run.input_bounds_from_forms(node.inputs[0], forms[0])
        ls, lb, us, ub = run.relaxation(node)
        n = run.graph.input_dim
        L, U = be.pick_rows(iL, iU, ls, n), be.pick_rows(iU, iL, us, n)
        l = be.pick_rows(il, iu, ls, 1) + be.col(lb)
        u = be.pick_rows(iu, il, us, 1) + be.col(ub)
        return L, l, U, u


class LinearRelaxed(Op):
    """A nonlinear operator bounded by two affine maps of its inputs (``relax_linear``)."""

    needs_bounds = True

    @abstractmethod
    def relax_linear(self, ctx: Context, ends: Any, **opts: Any) -> Any:
        """``([LW_k], Lb, [UW_k], Ub)`` exact ``fmpq_mat`` with ``Σ LW_k·x_k + Lb <= y <=
        Σ UW_k·x_k + Ub`` for every ``x_k`` in the box ``ends[k] = (lo_k, hi_k)`` (exact)."""

    def make_relaxation(self, run: _Run, node: Node) -> tuple[Any, ...]:
        be, ctx = run.be, run.ctx
        ends = []
        for inp in node.inputs:
            lo, hi = run.node_bounds(inp)
            ends.append(([be.lower(v) for v in lo], [be.upper(v) for v in hi]))
        LW, Lb, UW, Ub = self.relax_linear(ctx, ends, **run.relax_opts)
        if hasattr(be, "vectors"):  # the mode fast: lines on the balls' outer ends
            run.rounded = True
            run.note(FAST_LINES_NOTE)
        return (
            [be.mat(W) for W in LW],
            be.mat(Lb),
            [be.mat(W) for W in UW],
            be.mat(Ub),
            [(W, *split_q(W)) for W in LW],
            [(W, *split_q(W)) for W in UW],
        )

    def crown_step(self, run: _Run, node: Node, LL: Any, LU: Any) -> tuple[Any, ...]:
        """``ΛL·y >= ΛL⁺·(LW·x + Lb) + ΛL⁻·(UW·x + Ub)``; ``ΛU`` the other way round."""
        be = run.be
        LW, Lb, UW, Ub, _, _ = run.relaxation(node)
        out = []
        for lam, lo_side in ((LL, True), (LU, False)):
            lam = be.eye(self.out_dim) if lam is IDENT else be.full(lam)
            A, Ab, B, Bb = (LW, Lb, UW, Ub) if lo_side else (UW, Ub, LW, Lb)
            news, bias = be.relax_linear_backward(lam, A, Ab, B, Bb)
            out.append((news, bias))
        (newL, bL), (newU, bU) = out
        return newL, newU, [bL], [bU]

    def forward_step(self, run: _Run, node: Node, forms: Any) -> tuple[Any, ...]:
        """``L' = Σ LW_k⁺·L_k + LW_k⁻·U_k``, ``l' = ... + Lb`` (``U'`` likewise)."""
        be = run.be
        for inp, form in zip(node.inputs, forms):
            run.input_bounds_from_forms(inp, form)
        _, Lb, _, Ub, Ls, Us = run.relaxation(node)
        m, n = self.out_dim, run.graph.input_dim
        L, l, U, u = be.zeros(m, n), Lb, be.zeros(m, n), Ub
        for (_, LP, LN), (_, UP, UN), (iL, il, iU, iu) in zip(Ls, Us, forms):
            LP, LN, UP, UN = (be.mat(M) for M in (LP, LN, UP, UN))
            L, l = L + LP * iL + LN * iU, l + LP * il + LN * iu
            U, u = U + UP * iU + UN * iL, u + UP * iu + UN * il
        return L, l, U, u


def diag_q(vals: Any) -> Any:
    """The diagonal ``fmpq_mat`` of exact values."""
    n = len(vals)
    M = fmpq_mat(n, n)
    for i, v in enumerate(vals):
        M[i, i] = v
    return M
