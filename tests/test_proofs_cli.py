"""``exactbounds prove`` and ``python -m proofs``: the table, the JSON, the exit status."""

import json
import subprocess
import sys

import sympy as sp

from exactbounds.cli import main
from proofs import batchnorm as pb
from proofs.runner import OBLIGATIONS


def test_prove_json_all_expected(capsys):
    assert main(["prove", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    rows = {r["obligation"]: r for r in out["obligations"]}
    assert set(rows) == {ob.name for ob in OBLIGATIONS}
    for r in rows.values():
        assert r["ok"] and r["status"] == r["expected"]
        assert r["cases"] >= 1 and r["seconds"] >= 0
    assert (
        rows["ibp_batchnorm_returns_box"]["lean"]
        == "NN.MLTheory.CROWN.Operators.Batchnorm.Theorems.ibp_batchnorm_returns_box"
    )
    seed = rows["deriv2_batchnorm_propagation"]
    assert seed["status"] == seed["expected"] == "refuted"
    cex = {k: sp.Rational(v) for k, v in seed["counterexample"].items()}
    assert cex["gamma0"] != 0 and cex["eps"] > 0
    # the JSON counterexample re-checks exactly against the package's own code
    assert pb.deriv2_batchnorm_propagation.recheck(seed["counterexample"], seed["goal"])


def test_prove_exit_status_when_not_as_expected(capsys, monkeypatch):
    monkeypatch.setattr(pb.deriv2_batchnorm_propagation, "expected", "proved")
    assert main(["prove", "-k", "deriv2_batchnorm_propagation"]) == 1
    out = capsys.readouterr().out
    assert "refuted (EXPECTED PROVED)" in out and "NOT as expected" in out
    assert main(["prove", "-k", "no_such_obligation"]) == 2


def test_python_m_proofs_table_from_another_directory(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "proofs", "-k", "batchnorm_is_zero"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    head = p.stdout.splitlines()[0].split()
    assert head == ["obligation", "Lean", "name", "cases", "status", "seconds"]
    assert "deriv2_batchnorm_is_zero" in p.stdout and "proved" in p.stdout
    p = subprocess.run(
        [sys.executable, "-m", "proofs", "--list"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0 and "deriv2_batchnorm_propagation" in p.stdout
