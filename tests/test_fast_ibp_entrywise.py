"""Fast-mode IBP of the entry-by-entry affine operators never builds their dense matrix: an
index map (with constants, several inputs) gathers the float end-intervals, BatchNorm applies
its enclosed diagonal; both enclose the exact IBP box, and a 40 000-entry BatchNorm and index
map run in well under a second."""

import time

import numpy as np
from flint import fmpq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exactbounds.core import Box
from exactbounds.linalg.fast_ibp import fbox_from_box, fbox_to_lists
from exactbounds.numbers import RationalContext, make_context
from exactbounds.operators.batchnorm import BatchNorm, BatchNormParams
from exactbounds.operators.indexmap import IndexMap

FAST = make_context("fast")
EXACT = RationalContext(128)
num = st.one_of(
    st.integers(-20, 20).map(lambda k: fmpq(k, 8)),
    st.sampled_from([fmpq(1, 3), fmpq(-2, 7), fmpq(10**30, 7)]),
)


def box(draw, n):
    lo = [draw(num) for _ in range(n)]
    return Box(lo, [a + fmpq(draw(st.integers(0, 9)), 5) for a in lo])


def encloses(ctx, outer, inner):
    lo, hi = outer
    return all(ctx.lower(a) <= EXACT.lower(b) for a, b in zip(lo, inner.lo)) and all(
        ctx.upper(a) >= EXACT.upper(b) for a, b in zip(hi, inner.hi)
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_ibp_of_index_maps_and_batchnorm_encloses_exact_ibp(data):
    sizes = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    consts = [data.draw(num) for _ in range(data.draw(st.integers(0, 2)))]
    total = sum(sizes)
    ids = data.draw(st.lists(st.integers(-len(consts), total - 1), min_size=1, max_size=8))
    op = IndexMap([(s,) for s in sizes], (len(ids),), ids, consts)
    boxes = [box(data.draw, s) for s in sizes]
    got = fbox_to_lists(FAST, op.ibp_fast(FAST, *(fbox_from_box(EXACT, b) for b in boxes)))
    assert encloses(FAST, got, op.ibp(EXACT, *boxes))
    n = sizes[0]
    bn = BatchNorm(
        BatchNormParams(
            [data.draw(num) for _ in range(n)],
            [data.draw(st.sampled_from([fmpq(1, 4), 1, 2, fmpq(1, 3)])) for _ in range(n)],
            [data.draw(num) for _ in range(n)],
            [data.draw(num) for _ in range(n)],
            data.draw(st.sampled_from([0, 1e-5])),
        )
    )
    got = fbox_to_lists(FAST, bn.ibp_fast(FAST, fbox_from_box(EXACT, boxes[0])))
    assert encloses(FAST, got, bn.ibp(EXACT, boxes[0]))


def test_large_entrywise_operators_stay_linear_in_size():
    n = 40000
    rng = np.random.default_rng(0)
    lo = [fmpq(int(v), 64) for v in rng.integers(-64, 64, n)]
    f = fbox_from_box(EXACT, Box(lo, [a + 1 for a in lo]))
    op = IndexMap([(n,)], (n,), rng.permutation(n), [])
    bn = BatchNorm(
        BatchNormParams([0] * 4, [2] * 4, [1] * 4, [fmpq(1, 3)] * 4, 0, shape=(4, 100, 100))
    )
    t = time.perf_counter()
    out = bn.ibp_fast(FAST, op.ibp_fast(FAST, f))
    assert time.perf_counter() - t < 5 and out.ll.size == n
