"""The ``auto_lirpa`` relaxation profile: auto_LiRPA 0.7.1's default rules, in exact arithmetic.

The rules below are read from auto_LiRPA 0.7.1's source (``Verified-Intelligence/auto_LiRPA``,
``auto_LiRPA/...``); this module reproduces them, it does not copy them. Defaults only:
``BoundedModule(model, x)`` with no ``bound_opts`` and ``compute_bounds(x, method=M)``, an L∞
box input, no C matrix (identity specification), no alpha/beta optimisation.

Which nodes get intermediate bounds, and how (``bound_general.py``)
--------------------------------------------------------------------
R1. Needed nodes (``check_prior_bounds``): an input of an operator whose
    ``requires_input_bounds`` names it -- ReLU, Sigmoid, Tanh (``activation_base.py:
    BoundActivation.__init__``) and MaxPool (``pooling.py``). Linear, Conv, BatchNorm
    (constant parameters: ``_check_weight_perturbation``), Add, Flatten, AveragePool need none.
    Same set as exactbounds' ``pre_activation_nodes``.
R2. ``method='IBP'`` (``compute_bounds`` -> ``_compute_bounds_main``): plain interval propagation
    (``interval_bound.py: IBP_general``); ReLU/Sigmoid/Tanh ``[f(l), f(u)]``, affine operators
    as centre ± |W|·radius (the same number as exactbounds' exact IBP on a box).
R3. ``method='CROWN-IBP'``: IBP of every node first (``IBP_general(final)``); every needed
    node then already has bounds (``compute_intermediate_bounds`` returns on
    ``is_lower_bound_current()``), so all intermediate bounds are IBP, and only the final node
    is bounded by a backward (CROWN) pass.
R4. ``method='CROWN'`` (``compute_intermediate_bounds``), per needed node N in topological
    order (``check_prior_bounds`` recursion):
    a. first-layer rule (``interval_bound.py: check_IBP_first_linear``): if N is exactly a
       ``BoundLinear``/``BoundConv`` whose input is the network input, IBP. On a box this is the
       exact range of an affine map, the same number as CROWN; the profile computes it by
       CROWN (which is also what auto_LiRPA's Lp-aware ``BoundLinear.interval_propagate`` gives
       on an Lp ball).
    b. nodes whose bounds come by IBP from inputs with bounds (``check_IBP_intermediate``:
       operators with ``ibp_intermediate``, e.g. ReLU feeding MaxPool): not met by the operators
       exactbounds supports, except that a pre-activation that *is* a ReLU output is IBP of it.
    c. sparse intermediate bounds (``get_ref_intermediate_bounds``, ``backward_bound.py:
       get_sparse_C``, ``get_unstable_locations``, ``restore_sparse_bounds``), only when the
       *first* consumer of N (``node.output_name[0]``, graph order) is a ReLU: a reference
       ``IBP_general(N)`` from the bounds already stored (the input and every needed node
       bounded before N; nothing else keeps bounds: ``delete_bounds_after_use=True``).
       Unstable means ``ref_lo < 0 < ref_hi`` strictly; ``k`` unstable out of ``n``:
       ``k == 0``: N's bounds are the reference (no backward pass); ``0 < k <= 0.9·n`` (the
       float product ``minimum_sparsity * dim``): a backward pass for the unstable neurons only,
       the stable neurons keep the reference IBP bounds; ``k > 0.9·n``: a full backward pass
       for every neuron and the reference is dropped. CROWN results are never intersected with
       the reference (``compare_crown_with_ibp`` is False).
    d. otherwise (Sigmoid/Tanh consumers): a full backward pass (CROWN), no IBP.
R5. ``method='Forward'`` (``forward_bound.py: forward_general``): forward linear bounds through
    every node; each needed node's bounds are its forward forms concretised over the input
    (no IBP, no first-layer rule, no sparse rule); the output likewise. auto_LiRPA 0.7.1 has no
    ``bound_forward`` for AveragePool (the method fails there).
R6. The final node is never intersected with IBP (``_compute_bounds_main``).

Operators (``operators/*.py``)
------------------------------
R7. ReLU (``relu.py: BoundRelu._relu_upper_bound``, ``_relu_lower_bound_init``,
    ``_backward_relaxation``), applied to *every* neuron, stable or not:
    ``l' = min(l, 0)``, ``u' = max(u, 0, l' + δ)`` with ``δ`` the double nearest 1e-8;
    upper slope ``a = u'/(u' − l')``, upper intercept ``−a·l'``; lower slope 1 when
    ``a > 1/2`` (``u' > −l'``, strictly) else 0, intercept 0. So ``l >= 0`` gives the identity,
    ``u <= 0 < −l − δ`` the zero lines, and ``−δ < l <= u <= 0`` a nonzero upper slope
    ``(l + δ)/δ`` (a valid but loose line; lower slope 1 when ``l > −δ/2``). The forward mode
    (``BoundRelu._forward_relaxation``) masks stable neurons exactly and uses the same
    ``a``/lower-slope rule for ``l < 0 < u``.
R8. Sigmoid/Tanh (``s_shaped.py: BoundSShaped.bound_relax_impl``, ``precompute_relaxation``,
    ``retrieve_from_precompute``, ``generate_d_lower_upper``; ``BoundTanh``, ``BoundSigmoid``),
    not optimised, ``activation_bound_option='adaptive'``, smoothness enhancement on:
    ``k = (f(u) − f(l))/max(u − l, 1e-8)`` (the chord from ``(l, f(l))``), ``m = (l + u)/2``.
    * ``u <= 0``: upper = chord, lower = tangent at m.  ``l >= 0``: lower = chord, upper =
      tangent at m.
    * ``l < 0 < u``: lower = chord if ``k < f'(l)`` else the tangent at ``d_l``; upper = chord
      if ``k < f'(u)`` else the tangent at ``d_u``; then (``sigmoid_like_mask`` is all ones for
      sigmoid/tanh, branch ``y_l < y_u``) lower := tangent at m when ``d_l >= m``, upper :=
      tangent at m when ``d_u < m``.
    * tangent points from two precomputed tables on the grid ``0.01·i``, ``i = 0..50004``
      (x_limit 500): ``T_l[i]`` (<= 0) whose tangent lies below f at ``0.01·i``, ``T_u[i]``
      (>= 0) whose tangent lies above f at ``−0.01·i``, each found by doubling from −1 / 1 and
      100 float bisection steps (``precompute_relaxation``), in the torch default dtype.
      ``d_l = T_l[j(u)]``, ``d_u = T_u[j(−l)]`` with ``j(v) = max(0, trunc(v/0.01)) + 1``, i.e.
      the grid point just beyond the bound; ``j >= 50005`` falls back to ``d_l = l``,
      ``d_u = u``.
    Float choices, reproduced and reported as such: the tables (here recomputed by the same
    doubling + bisection in float64, :func:`tangent_tables`), the index ``j`` (from the float64
    value of the exact bound). Everything else (masks, ``k < f'(l)``, ``d >= m``) is decided
    exactly. Every line is checked rigorously (``_SShaped.check_line``); a line that fails (the
    ``1e-8`` chord clamp on intervals narrower than 1e-8 gives such lines: auto_LiRPA's chord
    slope is then too small) is replaced by exactbounds' own line for that neuron, and the
    result says so.
R9. BatchNorm (``normalization.py: BoundBatchNormalization``), eval mode: the affine map
    ``γ/√(σ²+ε)·(x − μ) + β`` kept as its own node (not fused); IBP as centre ± |scale|·radius.
    Conv (``convolution.py: BoundConv``), Linear (``linear.py: BoundLinear``), AveragePool
    (``pooling.py: BoundAveragePool``), Add (``add_sub.py: BoundAdd``), Flatten: exact affine
    maps; their backward steps are the exact ``Λ·W`` of exactbounds. MaxPool
    (``pooling.py: BoundMaxPool``) is not an exactbounds operator.

What is *not* reproduced: float rounding itself (auto_LiRPA rounds to nearest everywhere, no
outward rounding); the float saturation branch ``y_l >= y_u`` of R8 on intervals where f(l) and
f(u) round to the same float (exactly, ``f(l) < f(u)`` whenever ``l < u``); Lp-ball IBP of
BatchNorm (auto_LiRPA 0.7.1 drops the offset on an L1 ball and returns zero width on an L2 ball).
"""

from functools import cache

import flint
import numpy as np
from flint import arb, fmpq

from ..numbers import to_exact

RELU_DELTA = to_exact(1e-8)  # the double nearest 1e-8 (relu.py: _relu_upper_bound)
CHORD_CLAMP = to_exact(1e-8)  # s_shaped.py: (upper - lower).clamp(min=1e-8)
STEP_PRE = 0.01  # s_shaped.py: BoundSShaped.step_pre
X_LIMIT = 500  # s_shaped.py: precompute_relaxation(x_limit=500)
MINIMUM_SPARSITY = 0.9  # bound_general.py: default bound_opts['minimum_sparsity']
MAX_PREC = 4096  # precision cap of the exact sign decisions of R8

HALF = fmpq(1, 2)


# -- R7: ReLU ---------------------------------------------------------------------------------
def relu_lines(l, u, round_up=None):
    """auto_LiRPA's ReLU lines on ``[l, u]`` (rule R7): exact ``(ls, lb, us, ub)``.

    ``round_up`` (the dyadic mode's outward rounding) rounds a non-dyadic upper slope up; the
    intercept is then ``max(−a·l', u' − a·u')``, so the line stays above ReLU on ``[l', u']``.
    The lower slope is decided on the exact slope."""
    l, u = to_exact(l), to_exact(u)
    lr = min(l, fmpq(0))
    ur = max(u, fmpq(0), lr + RELU_DELTA)
    a = ur / (ur - lr)
    ls = fmpq(1) if a > HALF else fmpq(0)
    if a == 0 or a == 1:
        return ls, fmpq(0), a, -a * lr
    if round_up is not None:
        a = round_up(a)
        return ls, fmpq(0), a, max(-a * lr, ur - a * ur)
    return ls, fmpq(0), a, -a * lr


def relu_lines_forward(l, u, round_up=None):
    """ReLU lines of auto_LiRPA's forward mode (``_forward_relaxation``): stable neurons exact,
    ``l < 0 < u`` as :func:`relu_lines`."""
    l, u = to_exact(l), to_exact(u)
    if l >= 0:
        return fmpq(1), fmpq(0), fmpq(1), fmpq(0)
    if u <= 0:
        return fmpq(0), fmpq(0), fmpq(0), fmpq(0)
    return relu_lines(l, u, round_up)


# -- R4c: the sparse intermediate-bound plan --------------------------------------------------
def sparse_plan(ref_lo, ref_hi):
    """``(plan, unstable)`` of rule R4c from the reference IBP bounds (exact numbers):
    ``"reference"`` (no unstable neuron), ``"sparse"`` (CROWN for ``unstable`` only) or
    ``"full"`` (CROWN for every neuron, the reference dropped)."""
    unstable = [i for i, (a, b) in enumerate(zip(ref_lo, ref_hi)) if a < 0 < b]
    n = len(ref_lo)
    if not unstable:
        return "reference", []
    if len(unstable) <= MINIMUM_SPARSITY * n:
        return "sparse", unstable
    return "full", unstable


def first_consumers(graph):
    """``{node name: the first node (graph order) that takes it as an input}``."""
    out = {}
    for node in graph.nodes:
        for i in node.inputs:
            out.setdefault(i, node)
    return out


# -- R8: Sigmoid / Tanh -----------------------------------------------------------------------
def _f64(kind):
    if kind == "sigmoid":

        def f(x):
            return 1.0 / (1.0 + np.exp(-x))

        def df(x):
            s = f(x)
            return s * (1.0 - s)
    else:
        f = np.tanh

        def df(x):
            return 1.0 - np.tanh(x) ** 2

    return f, df


def _search(valid, start, other):
    """Per grid point, the tangent point ``precompute_relaxation`` finds: ``start`` doubled until
    ``valid`` everywhere, then 100 bisection steps towards ``other`` keeping the valid end."""
    v = start
    while True:
        ok = valid(v)
        if ok.all():
            break
        v = np.where(ok, v, 2 * v)
    w = other
    for _ in range(100):
        m = (v + w) / 2
        ok = valid(m)
        v, w = np.where(ok, m, v), np.where(ok, w, m)
    return v


@cache
def tangent_tables(kind):
    """float64 ``(T_l, T_u)`` of rule R8 for ``kind`` in {"sigmoid", "tanh"}: the doubling and
    100-step bisection of auto_LiRPA's ``precompute_relaxation``, recomputed with numpy."""
    f, df = _f64(kind)
    n = int(X_LIMIT / STEP_PRE)
    grid = STEP_PRE * np.arange(0, n + 5, dtype=np.float64)

    def below(x, d):  # the tangent at d lies below f at x
        return df(d) * (x - d) + f(d) <= f(x)

    def above(x, d):  # the tangent at d lies above f at x
        return df(d) * (x - d) + f(d) >= f(x)

    with np.errstate(over="ignore", invalid="ignore"):
        t_l = _search(lambda d: below(grid, d), -np.ones_like(grid), np.zeros_like(grid))
        t_u = _search(lambda d: above(-grid, d), np.ones_like(grid), np.zeros_like(grid))
    t_l.setflags(write=False)
    t_u.setflags(write=False)
    return t_l, t_u


def table_index(v):
    """``j(v) = max(0, trunc(float64(v)/0.01)) + 1`` (``retrieve_from_precompute``)."""
    q = float(v) / STEP_PRE
    return max(0, int(q)) + 1


def table_point(table, v, default):
    """The tangent point ``table[j(v)]`` as an exact rational, or ``default`` beyond the
    table; returns ``(point, from_table)``."""
    j = table_index(v)
    if j >= len(table):
        return to_exact(default), False
    return to_exact(float(table[j])), True


class _F:
    """Rigorous arb evaluation of an exactbounds S-shaped operator ``op`` at rationals."""

    def __init__(self, op, prec):
        self.op, self.prec = op, prec

    def f(self, q, prec=None):
        with flint.ctx.workprec(prec or self.prec):
            return self.op._w_arb(arb(q)) + arb(self.op.center)

    def df(self, q, prec=None):
        with flint.ctx.workprec(prec or self.prec):
            w = self.op._w_arb(arb(q))
            return arb(self.op.slope0) - w * w

    def less(self, left, right):
        """Decide ``left() < right()`` (callables of a precision, giving arb balls) exactly,
        raising the precision up to ``MAX_PREC``; ``None`` when still undecided (a tie)."""
        prec = self.prec
        while prec <= MAX_PREC:
            with flint.ctx.workprec(prec):
                a, b = left(prec), right(prec)
                if a < b:
                    return True
                if a >= b:
                    return False
            prec *= 2
        return None


def sshaped_choice(op, l, u, prec):
    """The lines rule R8 takes on ``[l, u]`` (``l < u``), as descriptions
    ``(("chord", None) | ("tangent", point)) for (lower, upper)`` plus the float choices made:
    ``{"table": n}`` (tangent points read from the table) and ``"tie"`` when an exact
    comparison stayed undecided at ``MAX_PREC`` bits (taken as not ``<``, auto_LiRPA's ``<``)."""
    l, u = to_exact(l), to_exact(u)
    kind = op.kind
    m = (l + u) / 2
    notes = {"table": 0, "tie": 0}
    if u <= 0:
        return ("tangent", m), ("chord", None), notes
    if l >= 0:
        return ("chord", None), ("tangent", m), notes
    F = _F(op, prec)
    width = max(u - l, CHORD_CLAMP)

    def k(p):
        return (F.f(u, p) - F.f(l, p)) / arb(width)

    t_l, t_u = tangent_tables(kind)
    d_l, used_l = table_point(t_l, u, l)
    d_u, used_u = table_point(t_u, -l, u)
    notes["table"] += used_l + used_u
    direct = []
    for end in (l, u):
        got = F.less(k, lambda p, end=end: F.df(end, p))
        if got is None:
            notes["tie"] += 1
            got = False
        direct.append(got)
    lower = ("chord", None) if direct[0] else ("tangent", d_l)
    upper = ("chord", None) if direct[1] else ("tangent", d_u)
    if d_l >= m:
        lower = ("tangent", m)
    if d_u < m:
        upper = ("tangent", m)
    return lower, upper, notes


def _chord_line(op, l, u, prec, upper):
    """The chord of rule R8 (from ``(l, f(l))`` with slope ``(f(u) − f(l))/max(u − l, 1e-8)``)
    with a float64 slope, its intercept taken outward so that the line stays on the chord's side
    at both ends of ``[l, u]`` when ``u − l >= 1e-8``; below that width it passes through
    ``(l, f(l))`` with auto_LiRPA's clamped slope (and usually fails the check)."""
    wl, wu = op.w_point(l, prec), op.w_point(u, prec)
    c = op.center

    def mid(w):
        return (w[0] + w[1]) / 2

    width = u - l
    s = to_exact(float((mid(wu) - mid(wl)) / max(width, CHORD_CLAMP)))
    if width < CHORD_CLAMP:
        end = wl[1] if upper else wl[0]
        return s, end + c - s * l
    if upper:
        return s, max(wl[1] + c - s * l, wu[1] + c - s * u)
    return s, min(wl[0] + c - s * l, wu[0] + c - s * u)


def _tangent_line(op, p, l, u, prec, upper):
    """The tangent at ``p`` with a float64 slope, its intercept moved outward by the slope error
    times the distance over ``[l, u]`` (``_SShaped._tangent``; the lower line by the symmetry
    ``f(x) = 2c − f(−x)``)."""
    if upper:
        return op._tangent(p, l, u, prec)
    s, b = op._tangent(-p, -u, -l, prec)
    return s, 2 * op.center - b


def sshaped_lines(op, l, u, prec):
    """Exact ``(ls, lb, us, ub, notes)`` of rule R8 on ``[l, u]`` for the exactbounds operator
    ``op`` (Sigmoid or Tanh), every line checked; ``notes`` counts the float choices
    (``table``, ``tie``) and the lines replaced by exactbounds' own (``replaced``)."""
    l, u = to_exact(l), to_exact(u)
    if l == u:  # a point: every line through (l, f(l)) gives the same CROWN numbers
        al, bl, au, bu = op.relax_one(l, u, prec)
        return al, bl, au, bu, {"table": 0, "tie": 0, "replaced": 0}
    lower, upper, notes = sshaped_choice(op, l, u, prec)
    notes["replaced"] = 0
    out = []
    for is_upper, (what, p) in ((False, lower), (True, upper)):
        try:
            if what == "chord":
                a, b = _chord_line(op, l, u, prec, is_upper)
            else:
                a, b = _tangent_line(op, p, l, u, prec, is_upper)
            ok = op.check_line(l, u, a, b, is_upper, prec)
        except (OverflowError, ValueError, ZeroDivisionError):
            ok = False
        if not ok:
            notes["replaced"] += 1
            al, bl, au, bu = op.relax_one(l, u, prec)
            a, b = (au, bu) if is_upper else (al, bl)
        out.append((a, b))
    (al, bl), (au, bu) = out
    return al, bl, au, bu, notes
