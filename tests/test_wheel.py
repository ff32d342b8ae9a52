"""The package as users get it: ``python -m build`` makes the sdist and the wheel (the wheel
from the unpacked sdist, so the sdist is complete too), the wheel installs into a fresh venv
outside the checkout, and the installed ``exactbounds`` runs ``bounds``, ``check`` and ``prove``
from a directory outside the checkout, on the examples installed with it. Outputs equal the
goldens of tests/golden byte for byte (the installed examples' path replaced)."""

import importlib.util
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import exactbounds

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = [
    "bn.json",
    "pinn_tanh_bn.json",
    "mlp_bn.onnx",
    "mlp_bn.vnnlib",
    "cnn_bn.onnx",
    "cnn_bn.vnnlib",
]


def run(argv, cwd, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(dist dir, venv bin dir, installed package dir, a working directory outside the tree)."""
    if importlib.util.find_spec("build") is None:
        pytest.fail("build is not installed: it is in the test extras, pip install -e '.[test]'")
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    r = run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, ROOT], cwd=tmp)
    assert r.returncode == 0, r.stdout + r.stderr
    venv = tmp / "venv"
    r = run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    assert r.returncode == 0, r.stderr
    (wheel,) = dist.glob("exactbounds-*.whl")
    # this venv's pip installs into the fresh one (no ensurepip); the core dependencies come
    # from the index or pip's cache; no .pyc compilation of sympy (about half the time)
    r = run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            venv / "bin" / "python",
            "install",
            "-q",
            "--no-compile",
            "--disable-pip-version-check",
            wheel,
        ],
        cwd=tmp,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    work = tmp / "elsewhere"
    work.mkdir()
    r = run(
        [
            venv / "bin" / "python",
            "-c",
            "import exactbounds, pathlib; print(pathlib.Path(exactbounds.__file__).parent)",
        ],
        cwd=work,
    )
    assert r.returncode == 0, r.stderr
    pkg = Path(r.stdout.strip())
    return dist, venv / "bin", pkg, work


def test_wheel_and_sdist_hold_the_package_data_and_the_proofs(installed):
    dist = installed[0]
    version = exactbounds.__version__
    (wheel,) = dist.glob(f"exactbounds-{version}-py3-none-any.whl")
    (sdist,) = dist.glob(f"exactbounds-{version}.tar.gz")
    names = set(zipfile.ZipFile(wheel).namelist())
    for ex in EXAMPLES:
        assert f"exactbounds/examples/{ex}" in names, ex
    for mod in (
        "proofs/__init__.py",
        "proofs/__main__.py",
        "proofs/runner.py",
        "exactbounds/cli.py",
        "exactbounds/operators/base.py",
        "exactbounds/py.typed",
    ):  # PEP 561: users' type checkers read the annotations
        assert mod in names, mod
    assert not any(n.startswith("tests/") for n in names)
    (entry,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "exactbounds = exactbounds.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    in_sdist = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    for ex in EXAMPLES:
        assert f"exactbounds/examples/{ex}" in in_sdist, ex
    assert "proofs/runner.py" in in_sdist and "CHANGELOG.md" in in_sdist


def test_installed_outside_the_checkout(installed):
    _, bin_dir, pkg, _ = installed
    assert bin_dir.parent in pkg.parents and ROOT not in pkg.parents
    for ex in EXAMPLES:
        assert (pkg / "examples" / ex).is_file(), ex


def golden(name, pkg):
    text = (GOLDEN / f"{name}.json").read_text()
    return int((GOLDEN / f"{name}.rc").read_text()), text.replace(
        "<EXAMPLES>", str(pkg / "examples")
    )


def test_installed_bounds_equals_the_golden(installed):
    _, bin_dir, pkg, work = installed
    r = run([bin_dir / "exactbounds", "bounds", pkg / "examples" / "bn.json"], cwd=work)
    assert r.returncode == 0, r.stderr
    assert "IBP" in r.stdout and "outputs enclosure" in r.stdout
    r = run(
        [
            bin_dir / "exactbounds",
            "bounds",
            pkg / "examples" / "bn.json",
            "--method",
            "ibp",
            "--mode",
            "exact",
            "--json",
            "--intermediate",
        ],
        cwd=work,
    )
    assert (r.returncode, r.stdout) == golden("bounds_bn_ibp_exact", pkg), r.stderr


def test_installed_check_equals_the_golden(installed):
    _, bin_dir, pkg, work = installed
    r = run(
        [
            bin_dir / "exactbounds",
            "check",
            pkg / "examples" / "bn.json",
            "--method",
            "ibp",
            "--simulate",
            "float32",
            "--json",
        ],
        cwd=work,
    )
    assert (r.returncode, r.stdout) == golden("check_bn_ibp_sim32", pkg), r.stderr


def test_installed_prove_and_version(installed):
    _, bin_dir, _, work = installed
    r = run([bin_dir / "exactbounds", "prove"], cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "as expected" in r.stdout
    r = run([bin_dir / "exactbounds", "--version"], cwd=work)
    assert r.stdout.strip() == f"exactbounds {exactbounds.__version__}"
