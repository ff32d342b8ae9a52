"""Forward affine propagation (forward linear relaxation) over a graph.

Every node carries two affine forms over the network input, ``L·x + l <= node(x) <= U·x + u``
for all ``x`` in the input set. Affine operators map them with ``W = W⁺ + W⁻``:
``L' = W⁺L + W⁻U``, ``l' = W⁺l + W⁻u + b`` (and symmetrically ``U'``); passthrough operators
keep them; a ``relax`` operator concretises its input's forms over the input set to get
``[lo, hi]`` (rounded outward in the dyadic mode), takes ``(ls, lb, us, ub)`` and maps row ``i``
to ``ls_i·(L_i if ls_i >= 0 else U_i) + lb_i`` (upper likewise). While no relaxation has been
met ``L = U`` and only one product is computed. Modes and statuses as in ``crown.py``.
"""
from flint import fmpq, fmpq_mat

from ..errors import UnsupportedOperatorError
from ..inputsets import concretize_mat
from ..numbers.dyadic_mode import DyMat
from .crown import (_check_slope, _eye, _result, _Run, default_context, is_relaxable,
                    run_with_escalation)


def _split(W):
    es = W.entries()
    z = fmpq(0)
    return (fmpq_mat(W.nrows(), W.ncols(), [v if v > 0 else z for v in es]),
            fmpq_mat(W.nrows(), W.ncols(), [v if v < 0 else z for v in es]))


def _scale_rows(be, M, s, n):
    es = be.entries(M)
    return be.from_entries(M.nrows(), n, [v * s[i // n] for i, v in enumerate(es)])


class _Affine(_Run):
    def forms(self):
        be, graph = self.be, self.graph
        n = graph.input_dim
        eye = be.mat(_eye(n))
        zero = be.zeros(n, 1)
        F = {graph.INPUT: (eye, zero, eye, zero)}
        self.splits = {}
        for node in graph.nodes:
            op = node.op
            ins = [F[i] for i in node.inputs]
            if op.passthrough:
                F[node.name] = ins[0]
            elif getattr(op, "affine", False):
                Ws, b, err = self.affine_coeffs(node)
                m = op.out_dim
                L, l, U, u = be.zeros(m, n), b, be.zeros(m, n), b
                for k, (W, (iL, il, iU, iu)) in enumerate(zip(Ws, ins)):
                    if iL is iU and il is iu:
                        L, l = L + W * iL, l + W * il
                        U, u = (L, l) if U is not None and k == 0 and len(Ws) == 1 else (
                            U + W * iU, u + W * iu)
                        continue
                    P, N = self._split(node, k)
                    L, l = L + P * iL + N * iU, l + P * il + N * iu
                    U, u = U + P * iU + N * iL, u + P * iu + N * il
                if err is not None:
                    l, u = l - err, u + err
                F[node.name] = (L, l, U, u) if not (L == U and l == u) else (L, l, L, l)
            elif is_relaxable(op):
                iL, il, iU, iu = ins[0]
                lo = be.entries(concretize_mat(self.S, be, iL, il, False, self.ctx))
                hi = be.entries(concretize_mat(self.S, be, iU, iu, True, self.ctx))
                self.bounds[node.inputs[0]] = self.finish_bounds(node.inputs[0], lo, hi, False)
                ls, lb, us, ub = self.relaxation(node)
                m = op.out_dim
                L, U = self._pick(iL, iU, ls, n), self._pick(iU, iL, us, n)
                l = self._pick(il, iu, ls, 1) + be.col(lb)
                u = self._pick(iu, il, us, 1) + be.col(ub)
                F[node.name] = (L, l, U, u)
            else:
                raise UnsupportedOperatorError(f"{node.name}: operator {op.kind!r} has neither "
                                               "an affine form nor a relaxation")
            self.tick()
        return F[graph.output]

    def _split(self, node, k):
        key = (node.name, k)
        if key not in self.splits:
            Ws, _, _, _ = node.op.linear_enclosure(self.ctx)
            P, N = _split(Ws[k])
            self.splits[key] = (self.be.mat(P), self.be.mat(N))
        return self.splits[key]

    def _pick(self, A, B, s, n):
        """Row ``i``: ``s_i·A_i`` when ``s_i >= 0`` else ``s_i·B_i`` (hull if undecidable)."""
        be = self.be
        if isinstance(A, DyMat) and isinstance(B, DyMat):
            z = fmpq(0)
            P = be.diag([v if v >= 0 else z for v in s])
            N = be.diag([v if v < 0 else z for v in s])
            if P is not None and N is not None:   # diag(s⁺)·A + diag(s⁻)·B, integer products
                return P * A + N * B
        ea, eb = be.entries(A), be.entries(B)
        out = []
        for i, si in enumerate(s):
            ra, rb = ea[i * n:(i + 1) * n], eb[i * n:(i + 1) * n]
            sg = be.sign(si)
            if sg is None:
                out.extend(be.hull(si * a, si * b) for a, b in zip(ra, rb))
            else:
                out.extend(si * v for v in (ra if sg >= 0 else rb))
        return be.from_entries(len(s), n, out)


def affine(graph, input_set, ctx=None, lower_slope="adaptive", intersect_ibp=False,
           intermediate=False, progress=None):
    """Forward affine bounds of ``graph`` over ``input_set``; returns a ``BoundsResult`` (see
    ``crown``). ``ctx`` defaults to ``DyadicContext(64)``."""
    _check_slope(lower_slope)
    ctx = ctx if ctx is not None else default_context("dyadic")

    def go(c):
        run = _Affine(graph, input_set, c, lower_slope, intersect_ibp, progress)
        run.notes = []
        with run.be.precision():
            L, l, U, u = run.forms()
            be = run.be
            lo = be.entries(concretize_mat(input_set, be, L, l, False, c))
            hi = be.entries(concretize_mat(input_set, be, U, u, True, c))
            lo, hi = run.finish_bounds(graph.output, lo, hi, True)
            out = run.box(lo, hi, graph.output_shape)
            return _result("affine", run, graph, out, (L, l, U, u), intermediate)
    return run_with_escalation(go, ctx)
