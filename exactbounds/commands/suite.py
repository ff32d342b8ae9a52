"""``exactbounds suite BENCH_DIR``: run a VNN-COMP benchmark folder (``instances.csv``), each
instance in its own process with a hard timeout, on a local pool (``--workers``) or a
dask.distributed cluster (``--scheduler``); with ``--results`` audit a tool's results. Writes
``results.json``, ``results.csv`` and ``report.html`` into ``--out`` (answers are kept per
instance as they finish; a rerun skips finished instances).
Exit status 0 when no verdict is refuted, float_artifact or error; 1 otherwise; 2 bad input.
"""

import sys

BAD = ("refuted", "float_artifact", "error")


def register(sub):
    p = sub.add_parser(
        "suite",
        help="run every instance of a VNN-COMP benchmark folder, "
        "optionally auditing a tool's results",
    )
    p.add_argument("bench", help="benchmark folder with instances.csv (or the CSV itself)")
    p.add_argument(
        "--results",
        metavar="DIR_OR_CSV",
        help="a tool's results: a folder of per-instance result files, or the "
        "competition's results.csv with counterexample files beside it",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="local worker processes (default: the core count)"
    )
    p.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on a dask.distributed cluster (tcp://host:port)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="hard timeout per instance in seconds (default: the CSV's)",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="verify budget per instance in seconds (default: 0.8 x timeout)",
    )
    p.add_argument("--out", default="suite_out", help="output folder (default suite_out)")
    p.set_defaults(func=run)


def run(args):
    from ..vnncomp.runner import run_suite

    doc = run_suite(
        args.bench,
        args.out,
        results=args.results,
        workers=args.workers,
        scheduler=args.scheduler,
        timeout=args.timeout,
        budget=args.budget,
    )
    counts = ", ".join(f"{k} {v}" for k, v in doc["counts"].items())
    print(
        f"{len(doc['instances'])} instances: {counts}; written to {args.out}/results.json, "
        "results.csv, report.html"
    )
    sys.stdout.flush()
    return 1 if any(doc["counts"].get(k) for k in BAD) else 0
