"""The README's two set-up commands, and .ci/run running the second one verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands():
    text = (ROOT / "README.md").read_text()
    return [ln.strip() for ln in text.splitlines() if ln.startswith("    python3.11 -m venv")]


def test_readme_has_exactly_two_setup_commands():
    cmds = commands()
    assert len(cmds) == 2
    assert "exactbounds bounds exactbounds/examples/" in cmds[0]
    assert "pytest" in cmds[1] and "python -m proofs" in cmds[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands()[1] in ci.splitlines()


def test_bundled_example_of_the_first_command_exists():
    path = re.search(r"exactbounds bounds (\S+)", commands()[0]).group(1)
    assert (ROOT / path).is_file()
