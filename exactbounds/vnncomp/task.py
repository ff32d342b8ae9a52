"""One suite instance as a task: file paths in, JSON out (python-flint objects do not pickle).

``run_task(task)`` does the work in the calling process; ``run_isolated(task_json)`` runs it in
a fresh ``python -m exactbounds.vnncomp.task`` process that is killed at the hard timeout, so an
exact computation that runs away cannot stall the suite (a dask.distributed worker calls it);
``run_forked(task_json)`` does the same in a child forked from a ``forkserver`` that imported
exactbounds once (the local pool calls it: no half-second start-up per instance).

A task: ``{"index", "key", "onnx", "vnnlib", "timeout", "budget", "claimed": null or
{"result", "cex_text", "cex_path"}}``. The verify budget is ``budget`` seconds when given (the
hard timeout still applies), else what is left until 0.85 x timeout after the process
started. The answer: ``{"index", "key", "claimed", "verdict",
"status", "bounds", "detail"}`` (deterministic: no timings) plus ``"seconds"`` (wall) and
``"cpu_seconds"`` (the task process's CPU time).

Verdicts: without a claim the property's status (``proved`` / ``violated`` / ``unknown``);
``sat`` rows the replay's ``confirmed`` / ``float_artifact`` / ``refuted``; ``unsat`` rows
``confirmed`` (proved by ``verify``), ``refuted`` (an exact counterexample) or ``unconfirmed``
(unknown at the budget); ``unknown``/``timeout``/``error`` rows ``noted``; ``timeout`` when the
hard timeout killed the instance, ``error`` when it could not be run.
"""

import json
import multiprocessing
import os
import subprocess
import sys
import time

from ..errors import ExactBoundsError

VERDICTS = (
    "confirmed",
    "float_artifact",
    "refuted",
    "unconfirmed",
    "noted",
    "proved",
    "violated",
    "unknown",
    "timeout",
    "error",
)


def _bounds(model):
    """CROWN (dyadic) over the spec's input set, region by region for an ``or`` of input boxes
    (the hull of the regions' bounds; the property proved when proved on every region)."""
    from ..algorithms.crown import crown
    from ..io.load import region_models
    from ..numbers import f64_down, f64_up, make_context

    ctx = make_context("dyadic", bits=64)
    los, his, proved = [], [], True
    for _, sub in region_models(model):
        res = crown(sub.graph, sub.input_set, ctx)
        lo = [ctx.lower(v) for v in res.output.lo]
        hi = [ctx.upper(v) for v in res.output.hi]
        proved = proved and bool(model.spec.output.proved_by_box(lo, hi))
        los.append(lo)
        his.append(hi)
    return {
        "method": "crown",
        "mode": "dyadic",
        "lo_f64": [f64_down(min(v)) for v in zip(*los)],
        "hi_f64": [f64_up(max(v)) for v in zip(*his)],
        "proves_property": proved,
    }


def verify_regions(model, seconds, screen):
    """``verify`` over the spec's input set; for an ``or`` of input boxes, on each region in
    turn (each with an equal share of the time left): ``violated`` with the counterexample of
    the first region that has one (it lies in the input set, which the regions' hull need not),
    ``proved`` when every region is, else the first undecided region's status, within
    ``seconds`` in all."""
    from dataclasses import replace

    from ..algorithms.bab import verify
    from ..io.load import region_models

    spec, subs = model.spec, region_models(model)
    end = time.monotonic() + seconds
    results = []
    for k, (r, sub) in enumerate(subs):
        res = verify(
            sub.graph,
            sub.input_set,
            spec.output,
            budget=max(end - time.monotonic(), 0.05) / (len(subs) - k),
            constraints=tuple(spec.input_constraints),
            screen=screen,
        )
        if len(subs) > 1:
            res.notes.append(f"input region {r} of {len(subs)}: {res.status}")
        results.append(res)
        if res.status == "violated":
            break
    if len(results) == 1 and len(subs) == 1:
        return results[0]
    pick = next((x for x in results if x.status == "violated"), None) or next(
        (x for x in results if x.status != "proved"), results[0]
    )
    total = {f: sum(getattr(x, f) for x in results) for f in ("regions", "closed", "open")}
    return replace(
        pick,
        **total,
        evaluations=sum(x.evaluations for x in results),
        depth=max(x.depth for x in results),
        notes=[n for x in results for n in x.notes],
    )


def verify_json(res):
    """A ``VerifyResult`` as JSON (exact counterexample as ``"p/q"`` strings)."""
    from ..audit.properties import counterexample_json

    d = {
        "status": res.status,
        "regions": res.regions,
        "closed": res.closed,
        "open": res.open,
        "depth": res.depth,
        "evaluations": res.evaluations,
        "bound": res.bound,
        "notes": res.notes,
    }
    if res.x is not None:
        d["counterexample"] = counterexample_json(res.x, res.y, res.clause)
    return d


def counterexample_text(x, y):
    """A VNN-COMP counterexample ``((X_0 v) ... (Y_0 v) ...)`` with exact decimals where the
    values are dyadic (every float is), else 40 significant digits."""

    def dec(q):
        from flint import fmpq

        q = fmpq(q) if not isinstance(q, fmpq) else q
        p, d = int(q.p), int(q.q)
        if d & (d - 1) == 0:  # p / 2^k = p·5^k / 10^k: exact decimal
            k = d.bit_length() - 1
            s = str(abs(p) * 5**k).rjust(k + 1, "0")
            s = (s[:-k] + "." + s[-k:]) if k else s
            return ("-" if p < 0 else "") + s
        from mpmath import mp, mpf

        mp.dps = 40
        return mp.nstr(mpf(p) / d, 40)

    from ..numbers import RInterval

    mid = [(v.lo + v.hi) / 2 if isinstance(v, RInterval) else v for v in y]
    lines = [f"(X_{i} {dec(v)})" for i, v in enumerate(x)]
    lines += [f"(Y_{i} {dec(v)})" for i, v in enumerate(mid)]
    return "(" + "\n".join(lines) + ")\n"


def run_task(task):
    """Do one instance in this process; returns the answer dict (see the module docstring)."""
    from ..audit.replay import float_screen, replay
    from ..io.load import load_model
    from .files import load_counterexample, parse_counterexample

    claimed = task.get("claimed") or None
    out = {
        "index": task["index"],
        "key": task["key"],
        "claimed": claimed["result"] if claimed else None,
        "verdict": "error",
        "status": None,
        "bounds": None,
        "detail": {},
    }
    try:
        model = load_model(task["onnx"], spec=task["vnnlib"])
        out["bounds"] = _bounds(model)

        def budget():
            if task.get("budget"):
                return task["budget"]
            deadline = task.get("deadline") or (time.time() + 0.85 * task["timeout"])
            return max(deadline - time.time(), 0.05)

        def run_verify():
            r = verify_regions(model, budget(), float_screen(model.graph))
            out["status"] = r.status
            out["detail"]["verify"] = verify_json(r)
            if r.x is not None:
                out["detail"]["counterexample"] = counterexample_text(r.x, r.y)
            return r.status

        word = claimed["result"] if claimed else None
        if word is None:
            out["verdict"] = run_verify()
        elif word == "sat":
            if claimed.get("cex_text"):
                cex = parse_counterexample(claimed["cex_text"], task["key"])
            elif claimed.get("cex_path"):
                cex = load_counterexample(claimed["cex_path"])
            else:
                out["verdict"] = "refuted"
                out["detail"]["message"] = "sat without a counterexample"
                return out
            r = replay(model, cex.x, cex.y)
            out["verdict"] = r.verdict
            out["status"] = "violated" if r.verdict == "confirmed" else None
            out["detail"]["replay"] = r.to_json()
        elif word == "unsat":
            st = run_verify()
            out["verdict"] = {"proved": "confirmed", "violated": "refuted"}.get(st, "unconfirmed")
        else:
            out["verdict"] = "noted"
    except ExactBoundsError as e:
        out["verdict"] = "error"
        out["detail"]["message"] = " ".join(str(e).split())
    return out


def _prepare(task_json):
    """The task with its verify deadline set (the budget ends before the hard timeout), and the
    answer's fixed fields for a task that gives none."""
    task = json.loads(task_json)
    if not task.get("budget"):
        task["deadline"] = time.time() + 0.85 * task["timeout"]
    base = {
        "index": task["index"],
        "key": task["key"],
        "claimed": (task.get("claimed") or {}).get("result"),
        "status": None,
        "bounds": None,
    }
    return task, base


def _killed(base, task):
    return dict(
        base,
        verdict="timeout",
        detail={"message": f"killed at the hard timeout of {task['timeout']:g} s"},
    )


def run_isolated(task_json):
    """Run the task (a JSON string) in a fresh process, killed at ``task["timeout"]`` seconds
    (the hard timeout); returns the answer as a JSON string, with ``"seconds"``."""
    t0 = time.monotonic()
    task, base = _prepare(task_json)
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per task: the pool scales
    try:
        p = subprocess.run(
            [sys.executable, "-m", "exactbounds.vnncomp.task"],
            input=json.dumps(task),
            capture_output=True,
            text=True,
            timeout=task["timeout"],
            env=env,
        )
    except subprocess.TimeoutExpired:
        ans = _killed(base, task)
    else:
        try:
            ans = json.loads(p.stdout)
        except ValueError:
            last = (p.stderr.strip().splitlines() or ["no output"])[-1]
            ans = dict(
                base, verdict="error", detail={"message": f"exit status {p.returncode}: {last}"}
            )
    ans["seconds"] = round(time.monotonic() - t0, 3)
    return json.dumps(ans)


PRELOAD = [
    "__main__",  # imported once in the server, so a child does not run the main script again
    "exactbounds.vnncomp.task",
    "exactbounds.algorithms.bab",
    "exactbounds.audit.replay",
    "exactbounds.io.load",
]
_FORK: list = []


def _forkserver():
    """The ``forkserver`` context whose server has imported exactbounds once (``PRELOAD``):
    each task is a child forked from it, so a task starts in milliseconds, not half a second."""
    if not _FORK:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # read when the server starts
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _FORK.append(ctx)
    return _FORK[0]


def _child(task, base, conn):
    try:
        ans = run_task(task)
    except BaseException as e:  # noqa: BLE001 - a crash is the instance's answer, not ours
        ans = dict(base, verdict="error", detail={"message": f"{type(e).__name__}: {e}"})
    ans["cpu_seconds"] = round(time.process_time(), 3)  # a forked child's clock starts at 0
    conn.send_bytes(json.dumps(ans).encode())
    conn.close()


def run_forked(task_json):
    """:func:`run_isolated` with the process forked from a preloaded server instead of started
    from scratch; the child is killed (SIGKILL) at the hard timeout just the same. The server
    imports the caller's main script once: a script that runs a suite keeps its work under
    ``if __name__ == "__main__":`` (multiprocessing's rule)."""
    t0 = time.monotonic()
    task, base = _prepare(task_json)
    ctx = _forkserver()
    recv, send = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(task, base, send), daemon=True)
    p.start()
    send.close()
    try:
        if recv.poll(max(task["timeout"] - (time.monotonic() - t0), 0)):
            ans = json.loads(recv.recv_bytes())
        else:
            ans = _killed(base, task)
    except (EOFError, OSError, ValueError):
        p.join(5)
        ans = dict(
            base, verdict="error", detail={"message": f"exit status {p.exitcode}: no answer"}
        )
    finally:
        if p.is_alive():
            p.kill()
        p.join()
        recv.close()
    ans["seconds"] = round(time.monotonic() - t0, 3)
    return json.dumps(ans)


def main():
    task = json.loads(sys.stdin.read())
    ans = run_task(task)
    ans["cpu_seconds"] = round(time.process_time(), 3)  # start-up included
    print(json.dumps(ans))


if __name__ == "__main__":
    main()
