"""Hypothesis profiles: CI (the CI environment variable is set) draws the same examples on every
run (derandomized), so a CI verdict is reproducible; elsewhere examples are random."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
