"""CHANGELOG.md in the "Keep a Changelog" form, and one version: the newest entry is
``exactbounds.__version__``, which setup.cfg reads (``attr:``) and nothing else repeats."""

import configparser
import re
from datetime import date
from pathlib import Path

import exactbounds

ROOT = Path(__file__).resolve().parents[1]
HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?$")
SECTIONS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def entries():
    """[(version, date or None, {section: [bullet lines]})] in file order."""
    out = []
    for line in (ROOT / "CHANGELOG.md").read_text().splitlines():
        m = HEADING.match(line)
        if m:
            out.append((m["version"], m["date"], {}))
        elif line.startswith("## "):
            raise AssertionError(f"malformed version heading: {line!r}")
        elif line.startswith("### "):
            assert out, f"section before any version: {line!r}"
            assert line[4:] in SECTIONS, f"unknown section {line[4:]!r}"
            out[-1][2][line[4:]] = []
        elif line.startswith("- ") and out and out[-1][2]:
            out[-1][2][list(out[-1][2])[-1]].append(line)
    return out


def key(v):
    return tuple(int(p) for p in v.split("."))


def test_newest_release_is_the_package_version():
    released = [e for e in entries() if e[0] != "Unreleased"]
    assert released[0][0] == exactbounds.__version__


def test_releases_are_dated_descending_and_not_empty():
    es = entries()
    assert [e[0] for e in es if e[0] == "Unreleased"] in ([], [es[0][0]])
    released = [e for e in es if e[0] != "Unreleased"]
    assert len(released) >= 2
    for version, day, sections in released:
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
        assert day is not None and date.fromisoformat(day) <= date.today(), (version, day)
        assert sections and all(sections.values()), f"{version}: a section without entries"
    assert [key(e[0]) for e in released] == sorted((key(e[0]) for e in released), reverse=True)
    days = [e[1] for e in released]
    assert days == sorted(days, reverse=True)


def test_the_version_lives_in_one_place():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["version"] == "attr: exactbounds.__version__"
    v = re.escape(exactbounds.__version__)
    hits = [
        str(p.relative_to(ROOT))
        for p in [
            *ROOT.glob("exactbounds/**/*.py"),
            *ROOT.glob("proofs/**/*.py"),
            ROOT / "setup.cfg",
            ROOT / "pyproject.toml",
            ROOT / "README.md",
        ]
        if re.search(rf"(?<![\d.]){v}(?![\d.])", p.read_text())
    ]
    assert hits == ["exactbounds/__init__.py"]
