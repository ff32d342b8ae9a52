"""Time and memory budgets of a run, and the progress object the drivers tick.

A :class:`Budget` bounds a run's wall-clock time (``seconds``) and resident memory
(``max_memory`` bytes). Inside ``with budget:`` it

- raises :class:`~exactbounds.errors.BudgetExceededError` when the time is up: from a timer
  signal (so a long exact product is stopped as soon as it returns to Python), repeated every
  half second in case something swallowed the first one, and from :meth:`Budget.check`;
- refuses, in :meth:`Budget.check`, to go on once the resident set exceeds ``max_memory``;
- lowers the address-space limit to twice ``max_memory`` (a hard backstop: an allocation beyond
  it is a ``MemoryError``, which the CLI reports in one line).

Sizes are checked *before* large allocations: :func:`reserve` (entries of an exact matrix, at
:data:`BYTES_PER_ENTRY` each) raises when the estimate exceeds the active budget's
``max_memory`` (without an active budget, :func:`default_max_memory`), before python-flint
would abort the process. :func:`estimate_entries` is that estimate for a whole method run.

:class:`Progress` is what the CLI passes to the drivers as ``progress``: each ``update(n)``
(one node, one exact evaluation) checks the budget and moves a tqdm bar on stderr when stderr
is a terminal.
"""

import os
import resource
import signal
import sys
import threading
import time

from .errors import BudgetExceededError

GB = 1 << 30
BYTES_PER_ENTRY = 32
"""Estimated bytes per entry of an exact matrix (an ``fmpq`` is 16 bytes before any limbs)."""
DEFAULT_TIMEOUT = 1800.0
"""Default ``--timeout`` in seconds (30 minutes)."""
ADVICE = "use --mode dyadic or --mode interval, a smaller network, or a larger budget"

_ACTIVE = []


def physical_memory():
    """Bytes of physical memory (8 GiB when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * GB


def default_max_memory():
    """Default ``--max-memory``: three quarters of the physical memory."""
    return int(0.75 * physical_memory())


def resident_memory():
    """Current resident set size in bytes (0 when unknown)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - no /proc
        return 0


def _gb(n):
    return f"{n / GB:.3g} GB"


class Budget:
    """``Budget(seconds=None, max_memory=None, advice=ADVICE)``: ``None`` = no limit on that
    resource (``max_memory`` in bytes). ``advice`` ends every budget message: what to use
    instead."""

    def __init__(self, seconds=None, max_memory=None, advice=ADVICE):
        self.seconds = seconds or None
        self.max_memory = max_memory or None
        self.advice = advice
        self.start = time.monotonic()
        self.expired = False
        self._saved = None

    def elapsed(self):
        return time.monotonic() - self.start

    def _timeout_error(self):
        return BudgetExceededError(
            f"stopped after the time budget of {self.seconds:g} s (--timeout): {self.advice}"
        )

    def check(self):
        """Raise ``BudgetExceededError`` when the time or the memory budget is exhausted."""
        if self.seconds is not None and (self.expired or self.elapsed() > self.seconds):
            self.expired = True
            raise self._timeout_error()
        if self.max_memory is not None:
            rss = resident_memory()
            if rss > self.max_memory:
                raise BudgetExceededError(
                    f"stopped at {_gb(rss)} of memory, over the budget of "
                    f"{_gb(self.max_memory)} (--max-memory): {self.advice}"
                )

    def reserve(self, entries, what, advice="use a smaller network"):
        """Refuse, before allocating, ``entries`` exact matrix entries beyond the budget;
        ``advice`` says what to use instead (the arithmetic mode does not change the size)."""
        limit = self.max_memory or default_max_memory()
        need = entries * BYTES_PER_ENTRY
        if need > limit:
            raise BudgetExceededError(
                f"{what} needs about {_gb(need)} ({entries:.3g} exact "
                f"matrix entries), more than the {_gb(limit)} memory "
                f"budget (--max-memory): {advice}"
            )

    # -- the context manager: timer signal and address-space backstop -------------------------
    def _alarm(self, signum, frame):
        self.expired = True
        raise self._timeout_error()

    def __enter__(self):
        _ACTIVE.append(self)
        self.start = time.monotonic()
        main = threading.current_thread() is threading.main_thread()
        if self.seconds is not None and main and hasattr(signal, "setitimer"):
            self._saved = signal.signal(signal.SIGALRM, self._alarm)
            signal.setitimer(signal.ITIMER_REAL, self.seconds, 0.5)
        self._limit = None
        if self.max_memory is not None:
            try:
                soft, hard = resource.getrlimit(resource.RLIMIT_AS)
                want = 2 * self.max_memory
                if (hard == resource.RLIM_INFINITY or want <= hard) and (
                    soft == resource.RLIM_INFINITY or want < soft
                ):
                    resource.setrlimit(resource.RLIMIT_AS, (want, hard))
                    self._limit = (soft, hard)
            except (ValueError, OSError):  # pragma: no cover - the platform refuses
                pass
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._saved)
            self._saved = None
        if self._limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, self._limit)
            self._limit = None
        _ACTIVE.remove(self)
        return False


def active():
    """The innermost budget entered with ``with``, or ``None``."""
    return _ACTIVE[-1] if _ACTIVE else None


def reserve(entries, what, advice="use a smaller network"):
    """:meth:`Budget.reserve` of the active budget (or of a default one: physical memory)."""
    (active() or Budget()).reserve(entries, what, advice)


def estimate_entries(graph, method):
    """Exact matrix entries a run of ``method`` on ``graph`` holds at once, estimated from the
    node sizes: IBP the dense matrix of each affine node (in × out); forward affine
    (``affine``) a form over the inputs per node (d × input size); CROWN (and ``deriv``) a
    backward matrix from each node to every earlier one (d_i × the largest earlier d_j). An
    operator with ``ibp_entries()`` (a convolution's im2col patches) says itself what IBP holds."""
    n_in = graph.input_dim
    biggest, worst = n_in, 0
    for node in graph:
        op = node.op
        d = graph.dims.get(node.name) or getattr(op, "out_dim", n_in) or n_in
        dense = (
            getattr(op, "in_dim", 0) * d
            if getattr(op, "affine", False) or hasattr(op, "linear_params")
            else 0
        )
        biggest = max(biggest, d)
        if method == "ibp":
            worst = max(worst, op.ibp_entries() if hasattr(op, "ibp_entries") else dense)
        elif method == "affine":
            worst = max(worst, dense, d * n_in)
        else:
            worst = max(worst, dense, d * biggest)
    return worst


class Progress:
    """The ``progress`` object of the drivers: ``update(n)`` checks ``budget`` and advances a
    tqdm bar on stderr when stderr is a terminal (else nothing is drawn). ``unit=""`` shows
    only the label and the elapsed time (a stage whose work is not counted)."""

    def __init__(self, budget=None, total=None, desc="", unit="node", stream=None, eval_stage=None):
        self.budget = budget
        self.eval_stage = eval_stage
        self.bar = None
        stream = stream or sys.stderr
        if stream.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(
                    total=total,
                    file=stream,
                    desc=desc,
                    unit=unit,
                    leave=False,
                    bar_format=None if unit else "{desc} ({elapsed})",
                )
            except ImportError:  # pragma: no cover - tqdm is a core dependency
                self.bar = None

    def update(self, n=1):
        if self.budget is not None:
            self.budget.check()
        if self.bar is not None:
            self.bar.update(n)

    def __call__(self):
        """Tick once: one exact evaluation (the ``on_eval`` callback of the witness search);
        the first one starts the stage ``eval_stage`` (a label), if given."""
        if self.eval_stage is not None:
            self.stage(self.eval_stage, unit="eval")
            self.eval_stage = None
        self.update(1)

    def stage(self, desc, total=None, unit="node"):
        """Start a new stage: the bar restarts with ``desc`` and ``total`` units."""
        if self.bar is not None:
            self.bar.bar_format = None
            self.bar.set_description_str(desc, refresh=False)
            self.bar.unit = unit
            self.bar.reset(total=total)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
