"""Lint, format and type check, inside the README's test command: ``ruff check``, ``ruff format
--check`` (configuration in pyproject.toml) and ``mypy`` (settings in pyproject.toml: every
function of the typed core annotated, the rest checked with mypy's defaults)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ["exactbounds", "tests", "proofs"]


def tool(*args, cwd=ROOT):
    """Run ``python -m <tool> ...`` from the venv running the tests; (exit code, output)."""
    if importlib.util.find_spec(args[0]) is None:
        pytest.fail(
            f"{args[0]} is not installed: it is in the test extras, pip install -e '.[test]'"
        )
    r = subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    return r.returncode, r.stdout + r.stderr


def test_ruff_check():
    code, out = tool("ruff", "check", "--no-cache", *TREES)
    assert code == 0, out


def test_ruff_format_check():
    code, out = tool("ruff", "format", "--check", "--no-cache", *TREES)
    assert code == 0, out


def test_mypy():
    code, out = tool("mypy", "--no-incremental", "--cache-dir", "/dev/null")
    assert code == 0, out
    assert "Success" in out


def test_typed_core_is_fully_annotated():
    """Every def of the typed core (the mypy overrides with ``disallow_untyped_defs``) carries
    annotations on all its parameters and its return, counted from the source."""
    import ast
    import tomllib

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    strict = [o for o in conf if o.get("disallow_untyped_defs")]
    assert len(strict) == 1
    files = []
    for mod in strict[0]["module"]:
        path = ROOT / Path(*mod.removesuffix(".*").split("."))
        files += (
            sorted(path.glob("*.py"))
            if mod.endswith(".*")
            else [path / "__init__.py" if path.is_dir() else path.with_suffix(".py")]
        )
    assert len(files) >= 20 and all(f.is_file() for f in files), files
    missing, total = [], 0
    for f in files:
        for n in ast.walk(ast.parse(f.read_text())):
            if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            total += 1
            a = n.args
            params = a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]
            if params and params[0].arg in ("self", "cls"):
                params = params[1:]
            if n.returns is None or any(p.annotation is None for p in params):
                missing.append(f"{f.relative_to(ROOT)}:{n.lineno} {n.name}")
    assert total > 300
    assert not missing, missing
