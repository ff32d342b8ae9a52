"""The bundled examples' ``--json`` outputs equal the committed goldens byte for byte
(``tests/golden/make_golden.py`` lists the invocations). A refactor must not change a result."""

import importlib.util
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "golden"
_spec = importlib.util.spec_from_file_location("make_golden", HERE / "make_golden.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)


@pytest.mark.parametrize("name", sorted(golden.CASES))
def test_golden_output(name):
    rc, text = golden.run_case(golden.CASES[name])
    assert rc == int((HERE / f"{name}.rc").read_text())
    assert text == (HERE / f"{name}.json").read_text()
