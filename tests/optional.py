"""Optional dependencies: the one reason a test may skip.

``requires("onnx")`` imports and returns a module, or skips the calling test (or module) with
"optional dependency onnx not installed"; ``@pytest.mark.requires("torch")`` does the same for a
test (tests/conftest.py reads the marker). ``pytest.importorskip(name)`` of a name in
``OPTIONAL`` is accepted too (its reason, "could not import 'name': ...", names it). With the
environment variable CI set, any other skip fails the run (tests/conftest.py).
"""

import importlib
import re

import pytest

#: What a test may skip for: packages outside ``install_requires`` (and the headless browser
#: of the report test). A core dependency (flint, sympy, mpmath, numpy) is never optional.
OPTIONAL = frozenset(
    {"onnx", "onnxruntime", "matplotlib", "torch", "auto_LiRPA", "dask", "distributed", "chromium"}
)
PREFIX = "optional dependency "
IMPORTORSKIP = re.compile(r"could not import '([\w.]+)'")


def missing(name):
    """The skip reason for a missing optional dependency ``name``."""
    if name not in OPTIONAL:
        raise ValueError(f"{name!r} is not an optional dependency (tests/optional.py OPTIONAL)")
    return f"{PREFIX}{name} not installed"


def requires(name):
    """Import ``name``, or skip with ``missing(name)``."""
    reason = missing(name)
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.skip(reason, allow_module_level=True)


def allowed_skip(reason):
    """Whether ``reason`` names a missing optional dependency (the only skip CI accepts)."""
    reason = reason.removeprefix("Skipped: ")
    m = IMPORTORSKIP.match(reason)
    if m:
        return m[1].split(".")[0] in OPTIONAL
    return any(reason == missing(name) for name in OPTIONAL)
