"""VNN-LIB parsing: every syntax form, exact decimals, polytopes, disjunctive output properties,
and errors; plus ``load_model`` with a spec on a JSON network."""

import json
from fractions import Fraction

import pytest
from flint import fmpq
from hypothesis import given, settings
from hypothesis import strategies as st

from exactbounds.algorithms.ibp import evaluate, ibp
from exactbounds.errors import (
    AmbiguousBranch,
    InvalidBoxError,
    InvalidModelError,
    MalformedFileError,
    ShapeError,
)
from exactbounds.io.load import load_model
from exactbounds.io.vnnlib import LinearComparison, load_vnnlib, parse_vnnlib
from exactbounds.numbers import RInterval

HEAD2 = (
    "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
    "(declare-const Y_1 Real)\n"
)


def spec(body, head=HEAD2, **kw):
    return parse_vnnlib(head + body, **kw)


def test_declare_const_and_declare_fun_with_all_bound_forms():
    s = parse_vnnlib("""; a comment line
    (declare-fun X_0 () Real)
    (declare-const X_1 Real)   ; trailing comment
    (declare-fun Y_0 () Real)
    (assert (<= X_0 0.1))
    (assert (>= X_0 -0.1))
    (assert (<= (* -1.0 X_1) 0.25))
    (assert (<= X_1 3))
    (assert (>= Y_0 1e-3))
    (check-sat)
    """)
    assert (s.n_inputs, s.n_outputs) == (2, 1)
    assert s.input_box.lo == [fmpq(-1, 10), fmpq(-1, 4)]
    assert s.input_box.hi == [fmpq(1, 10), fmpq(3)]
    assert not s.relaxed
    ((c,),) = s.output.clauses
    assert c.coeffs == ((0, fmpq(-1)),) and c.op == "<=" and c.rhs == fmpq(-1, 1000)


def test_decimals_are_read_exactly_not_as_floats():
    s = spec(
        "(assert (and (>= X_0 0.1) (<= X_0 0.30000000000000001)))\n"
        "(assert (>= X_1 -1.5e-7)) (assert (<= X_1 (* 2 0.05)))\n"
    )
    assert s.input_box.lo[0] == fmpq(1, 10)
    assert s.input_box.lo[0] != fmpq(*(0.1).as_integer_ratio())
    assert s.input_box.hi[0] == fmpq(30000000000000001, 10**17)
    assert s.input_box.lo[1] == fmpq(-15, 10**8)
    assert s.input_box.hi[1] == fmpq(1, 10)


@settings(max_examples=40, deadline=None)
@given(
    st.decimals(min_value=-(10**6), max_value=10**6, allow_nan=False, places=9), st.integers(1, 5)
)
def test_any_decimal_bound_is_exact(d, scale):
    s = spec(
        f"(assert (<= (* {scale} X_0) {d})) (assert (>= X_0 -10000000))"
        "(assert (<= X_1 1)) (assert (>= X_1 0))"
    )
    assert Fraction(int(s.input_box.hi[0].p), int(s.input_box.hi[0].q)) == Fraction(d) / scale


def test_tightest_bound_wins_and_equality_fixes_a_variable():
    s = spec(
        "(assert (<= X_0 1)) (assert (<= X_0 0.5)) (assert (>= X_0 -2)) (assert (>= X_0 -1))"
        "(assert (= X_1 0.75))"
    )
    assert s.input_box.lo == [fmpq(-1), fmpq(3, 4)] and s.input_box.hi == [fmpq(1, 2), fmpq(3, 4)]


def test_polytope_is_bounded_by_its_box_and_flagged():
    body = (
        "(assert (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1)))\n"
        "(assert (<= (+ X_0 (* 2 X_1)) 1.5))\n"
    )
    s = spec(body)
    assert s.relaxed and len(s.input_constraints) == 1
    c = s.input_constraints[0]
    assert c.var == "X" and c.coeffs == ((0, fmpq(1)), (1, fmpq(2))) and c.rhs == fmpq(3, 2)
    assert s.input_box.lo == [0, 0] and s.input_box.hi == [1, 1]
    with pytest.raises(MalformedFileError, match="polytope"):
        spec(body, polytope="error")


def test_unbounded_input_is_an_error():
    with pytest.raises(InvalidBoxError, match="X_1 has no upper bound"):
        spec("(assert (<= X_0 1)) (assert (>= X_0 0)) (assert (>= X_1 0))")
    with pytest.raises(InvalidBoxError, match="X_0 has no lower bound"):
        spec("(assert (<= X_0 1)) (assert (<= X_1 1)) (assert (>= X_1 0))")


def test_empty_input_box_is_an_error():
    with pytest.raises(InvalidBoxError, match="empty"):
        spec("(assert (<= X_0 0)) (assert (>= X_0 0.1)) (assert (<= X_1 1)) (assert (>= X_1 0))")


BOX = "(assert (and (>= X_0 -1) (<= X_0 1) (>= X_1 -1) (<= X_1 1)))\n"


def test_disjunctive_output_property():
    s = spec(BOX + "(assert (or (and (>= Y_0 Y_1) (>= Y_0 0.5)) (and (< Y_1 -0.001))))")
    assert len(s.output.clauses) == 2
    q = fmpq
    assert s.evaluate([q(1), q(0)]) is True  # first clause
    assert s.evaluate([q(0), q(-1)]) is True  # second clause
    assert s.evaluate([q(0), q(1)]) is False
    assert s.evaluate([q(1, 2), q(1, 2)]) is True  # Y_0 >= Y_1 holds with equality
    assert s.evaluate([q(0), q(-1, 1000)]) is False  # strict '<' at equality
    cmp = s.output.comparisons()
    assert [str(c) for c in cmp] == ["-1*Y_0 + 1*Y_1 <= 0", "-1*Y_0 <= -1/2", "1*Y_1 < -1/1000"]


def test_several_output_asserts_are_conjoined_and_distributed():
    s = spec(BOX + "(assert (or (<= Y_0 0) (<= Y_1 0))) (assert (or (>= Y_0 1) (>= Y_1 1)))")
    assert len(s.output.clauses) == 4
    assert s.evaluate([fmpq(0), fmpq(1)]) and not s.evaluate([fmpq(1, 2), fmpq(1, 2)])


def test_mixed_input_and_output_in_one_or_is_split():
    s = spec(
        "(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1) (<= Y_0 Y_1))"
        "(and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1) (<= Y_1 Y_0 -2))))"
    )
    assert s.input_box.hi == [1, 1] and len(s.output.clauses) == 2
    # chained '<=' gives two comparisons
    assert len(s.output.clauses[1]) == 2
    assert s.evaluate([fmpq(-3), fmpq(-5)]) and not s.evaluate([fmpq(-1), fmpq(-5)])


def test_constant_comparisons_are_decided_exactly():
    s = spec(BOX + "(assert (or (and (<= Y_0 1) (< Y_1 Y_1)) (and (<= Y_1 Y_1) (>= Y_0 2))))")
    assert [[str(c) for c in cl] for cl in s.output.clauses] == [["-1*Y_0 <= -2"]]
    s = spec(BOX + "(assert (or (<= Y_0 1) (<= 0.1 0.2)))")  # a true disjunct: true
    assert s.output.trivial and s.evaluate([fmpq(5), fmpq(5)])
    assert not s.output.proved_by_box([fmpq(0)] * 2, [fmpq(1)] * 2)
    s = spec(BOX + "(assert (<= Y_0 1)) (assert (> 0.1 0.2))")  # a false assertion
    assert s.output.clauses == () and str(s.output) == "false"
    assert not s.evaluate([fmpq(0), fmpq(0)])
    assert s.output.proved_by_box([fmpq(0)] * 2, [fmpq(1)] * 2)
    s = spec(BOX)  # no output assertion
    assert s.output.clauses == ((),) and str(s.output) == "true"
    assert s.evaluate([fmpq(0), fmpq(0)])


def test_evaluate_with_enclosures_decides_or_raises():
    s = spec(BOX + "(assert (or (>= Y_0 0.5) (<= Y_1 -1)))")
    assert s.evaluate([RInterval(fmpq(0), fmpq(1)), fmpq(-2)]) is True
    assert s.evaluate([RInterval(fmpq(0), fmpq(1, 4)), fmpq(0)]) is False
    with pytest.raises(AmbiguousBranch):
        s.evaluate([RInterval(fmpq(0), fmpq(1)), fmpq(0)])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.fractions(-3, 3, max_denominator=8), min_size=4, max_size=4),
    st.lists(st.fractions(-3, 3, max_denominator=8), min_size=2, max_size=2),
)
def test_proved_by_box_means_no_point_of_the_box_satisfies(ends, y):
    lo = [fmpq(min(a, b).numerator, min(a, b).denominator) for a, b in zip(ends[:2], ends[2:])]
    hi = [fmpq(max(a, b).numerator, max(a, b).denominator) for a, b in zip(ends[:2], ends[2:])]
    s = spec(BOX + "(assert (or (and (>= Y_0 Y_1) (>= Y_0 0.5)) (< Y_1 -0.25)))")
    yq = [fmpq(v.numerator, v.denominator) for v in y]
    corners = [[a, b] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])]
    inside = all(lo[i] <= yq[i] <= hi[i] for i in range(2))
    if s.output.proved_by_box(lo, hi):
        assert not any(s.evaluate(c) for c in corners)
        if inside:
            assert not s.evaluate(yq)


def test_comparison_range_over_box_is_exact():
    c = LinearComparison(((0, fmpq(2)), (2, fmpq(-3))), "<=", fmpq(1))
    assert c.range_over_box([0, 5, -1], [1, 7, 2]) == (fmpq(-6), fmpq(5))
    assert c.refuted_by_box([1, 0, -2], [2, 0, -1]) is True  # min 2+3 = 5 > 1


@pytest.mark.parametrize(
    "text, match",
    [
        ("(declare-const X_0 Real) (assert (<= X_0 1)", "unbalanced '\\('"),
        ("(declare-const X_0 Real))", "unbalanced '\\)'"),
        ("(declare-const X_0 Int)", "expected \\(declare-const NAME Real\\)"),
        ("(declare-const Z_0 Real)", "not named X_i or Y_i"),
        ("(declare-const X_0 Real) (assert (<= X_1 1))", "X_1 is used but not declared"),
        ("(declare-const X_0 Real) (declare-const X_2 Real)", "X_1 is not declared"),
        ("(declare-const X_0 Real) (assert (<= (* X_0 X_0) 1))", "not linear"),
        ("(declare-const X_0 Real) (assert (<= X_0 abc))", "unknown symbol 'abc'"),
        (
            "(declare-const X_0 Real) (assert (not (<= X_0 1)))",
            "unsupported formula operator 'not'",
        ),
        ("(declare-const X_0 Real) (push 1)", "unsupported command 'push'"),
        ("(declare-const X_0 Real) (declare-const Y_0 Real) (assert (<= X_0 Y_0))", "mixes inputs"),
        ("(declare-const Y_0 Real)", "no input variables"),
        ("(declare-const X_0 Real) (declare-const X_0 Real)", "declared twice"),
    ],
)
def test_malformed_files(text, match):
    with pytest.raises(MalformedFileError, match=match):
        parse_vnnlib(text)


def test_error_names_the_line(tmp_path):
    p = tmp_path / "bad.vnnlib"
    p.write_text("(declare-const X_0 Real)\n\n(assert (<= X_0 foo))\n")
    with pytest.raises(MalformedFileError, match=r"bad.vnnlib:3: unknown symbol 'foo'"):
        load_vnnlib(p)
    with pytest.raises(MalformedFileError, match="cannot read"):
        load_vnnlib(tmp_path / "missing.vnnlib")


NET = {
    "input_lo": [0, 0],
    "input_hi": [1, 1],
    "layers": [{"type": "linear", "weight": [[1, -1], ["0.5", 2]], "bias": [0, "-0.1"]}],
}


def test_load_model_json_with_spec(tmp_path):
    net = tmp_path / "net.json"
    net.write_text(json.dumps(NET))
    plain = load_model(net)
    assert plain.spec is None and plain.input_set.hi == [1, 1]
    sp = tmp_path / "p.vnnlib"
    sp.write_text(
        HEAD2 + "(assert (and (>= X_0 0.1) (<= X_0 0.2) (>= X_1 -0.3) (<= X_1 0.3)))\n"
        "(assert (<= Y_0 -1))"
    )
    m = load_model(net, sp)
    assert m.input_set.lo == [fmpq(1, 10), fmpq(-3, 10)] and m.spec.n_outputs == 2
    out = ibp(m.graph, m.input_set)
    lo, hi = out.outer()
    assert lo[0] == fmpq(1, 10) - fmpq(3, 10)
    # Y_0 >= -0.2 over the box, so 'Y_0 <= -1' is unreachable: proved.
    assert m.spec.output.proved_by_box(lo, hi)
    y = evaluate(m.graph, [fmpq(1, 10), fmpq(3, 10)])
    assert not m.spec.evaluate(y)


def test_load_model_checks_dimensions_and_type(tmp_path):
    net = tmp_path / "net.json"
    net.write_text(json.dumps(NET))
    sp = tmp_path / "p.vnnlib"
    sp.write_text(
        "(declare-const X_0 Real) (declare-const Y_0 Real) (declare-const Y_1 Real)"
        "(assert (<= X_0 1)) (assert (>= X_0 0))"
    )
    with pytest.raises(ShapeError, match="declares 1 inputs"):
        load_model(net, sp)
    sp.write_text(
        "(declare-const X_0 Real) (declare-const X_1 Real) (declare-const Y_0 Real)"
        "(assert (and (<= X_0 1) (>= X_0 0) (<= X_1 1) (>= X_1 0)))"
    )
    with pytest.raises(ShapeError, match="declares 1 outputs"):
        load_model(net, sp)
    other = tmp_path / "net.txt"
    other.write_text("{}")
    with pytest.raises(MalformedFileError, match="unknown model file type"):
        load_model(other)
    assert issubclass(ShapeError, InvalidModelError)


def test_spec_notes_say_polytope_and_verdict():
    from exactbounds.io.load import spec_notes

    s = spec(
        "(assert (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1)))"
        "(assert (<= (+ X_0 X_1) 1)) (assert (>= Y_0 Y_1))"
    )
    notes = spec_notes(s)
    assert len(notes) == 2 and "polytope" in notes[1]
    q = fmpq
    assert "proved" in spec_notes(s, [q(0), q(2)], [q(1), q(3)])[-1]  # Y_0 < Y_1 always
    assert "not proved" in spec_notes(s, [q(0), q(0)], [q(1), q(1)])[-1]


def _dec(f):
    """An exact decimal string of a fraction whose denominator divides a power of 10."""
    from decimal import Decimal, getcontext

    getcontext().prec = 60
    return format(Decimal(f.numerator) / Decimal(f.denominator), "f")


decimals = st.builds(
    lambda n, e: Fraction(n, 10**e), st.integers(-(10**6), 10**6), st.integers(0, 6)
)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_random_specs_round_trip_exactly(data):
    n_in, n_out = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    lo = [data.draw(decimals) for _ in range(n_in)]
    hi = [a + data.draw(decimals.filter(lambda d: d >= 0)) for a in lo]
    lines = [
        f"(declare-const X_{i} Real)"
        if data.draw(st.booleans())
        else f"(declare-fun X_{i} () Real)"
        for i in range(n_in)
    ]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, (a, b) in enumerate(zip(lo, hi)):
        lines.append(f"(assert (<= X_{i} {_dec(b)}))")
        lines.append(
            f"(assert (>= X_{i} {_dec(a)}))"
            if data.draw(st.booleans())
            else f"(assert (<= (* -1.0 X_{i}) {_dec(-a)}))"
        )
    # a random DNF over Y: each atom Y_i op const or Y_i op Y_j
    clauses = []
    for _ in range(data.draw(st.integers(1, 3))):
        clause = []
        for _ in range(data.draw(st.integers(1, 3))):
            i = data.draw(st.integers(0, n_out - 1))
            op = data.draw(st.sampled_from(["<=", ">=", "<", ">"]))
            rhs = data.draw(st.one_of(decimals, st.integers(0, n_out - 1).map(lambda j: f"Y_{j}")))
            clause.append((i, op, rhs))
        clauses.append(clause)

    def atom_text(i, op, rhs):
        return f"({op} Y_{i} {rhs if isinstance(rhs, str) else _dec(rhs)})"

    lines.append(
        "(assert (or "
        + " ".join("(and " + " ".join(atom_text(*a) for a in cl) + ")" for cl in clauses)
        + "))"
    )
    s = parse_vnnlib("\n".join(lines))
    assert [Fraction(int(v.p), int(v.q)) for v in s.input_box.lo] == lo
    assert [Fraction(int(v.p), int(v.q)) for v in s.input_box.hi] == hi
    ops = {
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
    }
    for _ in range(5):
        y = [data.draw(st.fractions(-3, 3, max_denominator=4)) for _ in range(n_out)]
        want = any(
            all(ops[op](y[i], y[int(r[2:])] if isinstance(r, str) else r) for i, op, r in cl)
            for cl in clauses
        )
        assert s.evaluate([fmpq(v.numerator, v.denominator) for v in y]) is want


def test_input_bounds_inside_a_single_or_clause():
    """VNN-COMP 2021 style: the whole property in one (or (and ...)) with the input bounds."""
    s = parse_vnnlib(
        "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
        "(assert (or\n    (and\n        (>= X_0 -1)\n        (<= X_0 1)\n"
        "        (>= Y_0 100)\n    )\n))\n"
    )
    assert s.input_box.lo == [-1] and s.input_box.hi == [1]
    assert [[str(c) for c in cl] for cl in s.output.clauses] == [["-1*Y_0 <= -100"]]
    assert s.evaluate([fmpq(100)]) and not s.evaluate([fmpq(99)])
