"""Hypothesis profiles: CI (the CI environment variable is set) draws the same examples on every
run (derandomized), so a CI verdict is reproducible; elsewhere examples are random.

Skip policy: a test may skip only for a missing optional dependency (tests/optional.py:
``requires(name)`` or ``@pytest.mark.requires(name)``), and says which one in the summary. With CI
set, any other skip (a missing example file, a missing core dependency...) fails the run.
"""

import os

import pytest
from hypothesis import settings

from optional import allowed_skip, requires

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "requires(name): skip unless the optional dependency `name` is installed"
    )


def pytest_runtest_setup(item):
    for mark in item.iter_markers(name="requires"):
        for name in mark.args:
            requires(name)


def _police(report):
    """Under CI, turn a skip that is not a missing optional dependency into a failure."""
    if not (os.environ.get("CI") and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if not allowed_skip(reason):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI, but only a missing optional dependency may skip a "
            f"test (tests/optional.py): {reason}"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    _police(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    _police(report)
    return report
