"""The audit: check a fast tool's claimed bounds against the exact result of the same method,
and prove unsoundness with exact witnesses. See :mod:`exactbounds.audit.verdicts` for the result
shape and :mod:`exactbounds.audit.ulps` for the ulp distance."""

from .ulps import DTYPES, dtype_name, shift_ulps, ulp, ulps_between
from .verdicts import (
    INSIDE_EXACT,
    SOUND,
    UNSOUND,
    VERDICTS,
    AuditResult,
    Verdict,
    Witness,
    exit_status,
    report_json,
    summarize,
)

__all__ = [
    "DTYPES",
    "dtype_name",
    "shift_ulps",
    "ulp",
    "ulps_between",
    "INSIDE_EXACT",
    "SOUND",
    "UNSOUND",
    "VERDICTS",
    "AuditResult",
    "Verdict",
    "Witness",
    "exit_status",
    "report_json",
    "summarize",
]
