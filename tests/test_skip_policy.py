"""The skip policy of tests/conftest.py: under CI only a missing optional dependency may skip a
test (and the summary names it); any other skip fails the run. Run on a scratch suite that uses
the real conftest.py and optional.py."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from optional import allowed_skip, missing

HERE = Path(__file__).resolve().parent

SCRATCH = """
import pytest
from optional import requires

def test_needs_an_absent_optional_dependency():
    requires("dask")

@pytest.mark.requires("torch")
def test_marked():
    pass

def test_plain_skip():
    pytest.skip("example file not present")

def test_passes():
    assert True
"""


def run_scratch(tmp_path, ci, body):
    """pytest on ``body`` with the real conftest.py; ``torch`` and ``dask`` are made absent by
    shadowing modules that raise ImportError."""
    for name in ("conftest.py", "optional.py"):
        shutil.copy(HERE / name, tmp_path / name)
    for name in ("torch", "dask"):
        (tmp_path / f"{name}.py").write_text(f"raise ImportError('{name} absent (scratch)')\n")
    (tmp_path / "test_scratch.py").write_text(body)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_names_the_dependency_and_refuses_core_ones():
    assert missing("torch") == "optional dependency torch not installed"
    assert allowed_skip("Skipped: optional dependency onnxruntime not installed")
    assert not allowed_skip("optional dependency flint not installed")
    assert not allowed_skip("bundled example missing")
    assert allowed_skip("could not import 'torch': No module named 'torch'")
    assert allowed_skip("could not import 'dask.distributed': No module named 'dask'")
    assert not allowed_skip("could not import 'sympy': No module named 'sympy'")
    with pytest.raises(ValueError, match="sympy"):
        missing("sympy")


def test_plain_skip_fails_under_ci_and_optional_skips_name_the_dependency(tmp_path):
    r = run_scratch(tmp_path, ci=False, body=SCRATCH)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "optional dependency dask not installed" in r.stdout
    assert "optional dependency torch not installed" in r.stdout
    assert "3 skipped" in r.stdout and "1 passed" in r.stdout
    r = run_scratch(tmp_path, ci=True, body=SCRATCH)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 failed" in r.stdout and "2 skipped" in r.stdout and "1 passed" in r.stdout
    assert "only a missing optional dependency may skip" in r.stdout
    assert "example file not present" in r.stdout


def test_a_module_level_skip_for_a_non_optional_reason_fails_under_ci(tmp_path):
    body = (
        'import pytest\npytest.skip("no data", allow_module_level=True)\n\n'
        "def test_x():\n    pass\n"
    )
    r = run_scratch(tmp_path, ci=True, body=body)
    assert r.returncode != 0 and "1 error" in r.stdout, r.stdout + r.stderr
    assert "only a missing optional dependency may skip" in r.stdout and "no data" in r.stdout
