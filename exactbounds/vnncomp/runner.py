"""Run a VNN-COMP benchmark folder, each instance in its own killed-at-timeout process, on a
local pool of workers (each task a child forked from a preloaded server) or on a
dask.distributed cluster (each task a fresh process).

Every answer is written to ``OUT/instances/NNNN_KEY.json`` as soon as it arrives (written to a
temporary name, then renamed), and a rerun skips the instances whose file exists: an
interrupted suite loses nothing. At the end ``OUT/results.json`` (deterministic: no timings,
rows in ``instances.csv`` order), ``OUT/results.csv`` (with the seconds) and ``OUT/report.html``
are assembled from those files; ``results.json`` leaves out what depends on the machine's
speed (:func:`stable`), so a pool run and a cluster run of the same folder give the same file.
"""

import json
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from ..errors import ExactBoundsError, InvalidValueError
from .files import read_instances, read_results
from .task import run_forked, run_isolated


def make_tasks(instances, claimed, timeout=None, budget=None):
    """Task dicts (file paths only) for the instances; ``timeout`` overrides the CSV's."""
    tasks = []
    for inst in instances:
        c = claimed.get(inst.index)
        tasks.append(
            {
                "index": inst.index,
                "key": inst.key,
                "onnx": inst.onnx,
                "vnnlib": inst.vnnlib,
                "timeout": float(timeout or inst.timeout),
                "budget": budget,
                "claimed": None
                if c is None
                else {"result": c.result, "cex_text": c.cex_text, "cex_path": c.cex_path},
            }
        )
    return tasks


def _file(out, task):
    return out / "instances" / f"{task['index']:04d}_{task['key']}.json"


def _write(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _progress(total, done):
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc="instances", file=sys.stderr)


def _run_pool(todo, workers, sink):
    with ThreadPoolExecutor(max_workers=workers) as ex:
        futs = {ex.submit(run_forked, json.dumps(t)): t for t in todo}
        for f in as_completed(futs):
            sink(futs[f], f.result())


def _run_dask(todo, scheduler, sink):
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise ExactBoundsError(
            "--scheduler needs dask.distributed: pip install 'exactbounds[cluster]'"
        ) from None
    try:
        client = Client(scheduler, timeout=30)
    except (OSError, TimeoutError, ValueError) as e:
        raise ExactBoundsError(f"--scheduler {scheduler}: cannot connect: {e}") from None
    try:
        jobs = [json.dumps(t) for t in todo]
        futs = client.map(
            run_isolated,
            jobs,
            key=[f"exactbounds-{t['index']}-{t['key']}" for t in todo],
            pure=False,
        )
        by_key = {f.key: t for f, t in zip(futs, todo)}
        for f in dask_completed(futs):
            sink(by_key[f.key], f.result())
    finally:
        client.close()


def run_suite(
    bench_dir, out_dir, results=None, workers=None, scheduler=None, timeout=None, budget=None
):
    """Run every instance of ``bench_dir`` (see the module docstring); returns the
    ``results.json`` dict."""
    if workers is not None and workers < 1:
        raise InvalidValueError("--workers", workers, "must be >= 1")
    if timeout is not None and not timeout > 0:
        raise InvalidValueError("--timeout", timeout, "must be > 0 seconds")
    if budget is not None and not budget > 0:
        raise InvalidValueError("--budget", budget, "must be > 0 seconds")
    instances = read_instances(bench_dir)
    claimed = read_results(results, instances) if results else {}
    tasks = make_tasks(instances, claimed, timeout, budget)
    out = Path(out_dir)
    try:
        (out / "instances").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExactBoundsError(f"--out {out_dir}: cannot create: {e.strerror}") from None
    todo = [t for t in tasks if not _file(out, t).exists()]
    bar = _progress(len(tasks), len(tasks) - len(todo))

    def sink(task, answer):
        _write(_file(out, task), answer)
        if bar is not None:
            bar.update(1)

    if todo:
        if scheduler:
            _run_dask(todo, scheduler, sink)
        else:
            _run_pool(todo, workers or os.cpu_count() or 1, sink)
    if bar is not None:
        bar.close()
    rows = [json.loads(_file(out, t).read_text()) for t in tasks]
    return write_outputs(out, bench_dir, results, instances, rows)


TIME_DEPENDENT = ("regions", "closed", "open", "depth", "evaluations")


def stable(row):
    """The answer without what depends on the machine's speed: the (CPU) seconds, and the region
    counts of a ``verify`` that stopped at its budget (they stay in the per-instance file)."""
    row = {k: v for k, v in row.items() if k not in ("seconds", "cpu_seconds")}
    v = (row.get("detail") or {}).get("verify")
    if v and v.get("status") == "unknown":
        row["detail"] = dict(
            row["detail"], verify={k: x for k, x in v.items() if k not in TIME_DEPENDENT}
        )
    return row


def write_outputs(out, bench_dir, results, instances, rows):
    """``results.json``, ``results.csv`` and ``report.html`` from the answers ``rows``."""
    from .report import csv_text, html_page

    counts = Counter(r["verdict"] for r in rows)
    base = Path(bench_dir).resolve()
    base = base.parent if base.is_file() else base
    clean = []
    for inst, r in zip(instances, rows):
        r = stable(r)
        r["onnx"] = os.path.relpath(inst.onnx, base)
        r["vnnlib"] = os.path.relpath(inst.vnnlib, base)
        clean.append(r)
    doc = {
        "benchmark": Path(bench_dir).name,
        "results": Path(results).name if results else None,
        "counts": dict(sorted(counts.items())),
        "instances": clean,
    }
    _write(out / "results.json", json.dumps(doc, indent=1, sort_keys=True) + "\n")
    _write(out / "results.csv", csv_text(clean, rows))
    _write(out / "report.html", html_page(doc, rows))
    return doc
