"""Reading VNN-COMP files: ``instances.csv``, result files, counterexamples (plain or ``.gz``).

A benchmark folder holds ``instances.csv`` (rows ``onnx,vnnlib,timeout``, paths relative to the
folder). A result file starts with ``sat``, ``unsat``, ``unknown``, ``timeout`` or ``error``
(VNN-COMP 2021's ``violated``/``holds`` are read as ``sat``/``unsat``); after ``sat`` comes the
counterexample ``((X_0 v) (X_1 v) ... (Y_0 v) ...)``, every decimal read exactly. A tool's
results are a folder of per-instance files or the competition's CSV
(``benchmark,onnx,vnnlib,prepare_time,result,run_time``) with
``{onnx stem}_{vnnlib stem}.counterexample[.gz]`` files beside it.
"""

import csv
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidValueError, MalformedFileError
from ..io.vnnlib import parse_sexprs
from ..numbers import to_exact

RESULTS = ("sat", "unsat", "unknown", "timeout", "error")
ALIASES = {"violated": "sat", "holds": "unsat", "unsafe": "sat", "safe": "unsat"}


def read_text(path):
    """The text of ``path``, gunzipped when it starts with the gzip magic bytes."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise MalformedFileError(f"{path}: cannot read: {e.strerror}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise MalformedFileError(f"{path}: broken gzip data: {e}") from None
    try:
        return data.decode()
    except UnicodeDecodeError as e:
        raise MalformedFileError(f"{path}: not text: {e}") from None


def stem(path):
    """The file name without ``.gz`` and without its last suffix (``prop_1.vnnlib.gz`` ->
    ``prop_1``)."""
    name = Path(path).name
    if name.endswith(".gz"):
        name = name[:-3]
    return name.rsplit(".", 1)[0] if "." in name else name


def instance_key(onnx, vnnlib):
    """``{onnx stem}_{vnnlib stem}``: how VNN-COMP names an instance's result files."""
    return f"{stem(onnx)}_{stem(vnnlib)}"


@dataclass
class Counterexample:
    """``x``/``y``: exact ``fmpq`` lists (``y`` may be empty); ``x_text``/``y_text``: the
    decimals as written in the file."""

    x: list
    y: list
    x_text: list = field(default_factory=list)
    y_text: list = field(default_factory=list)
    source: str = "<string>"


def parse_counterexample(text, src="<string>"):
    """Parse ``((X_0 v) ... (Y_0 v) ...)`` (a leading ``sat`` line is skipped); the indices
    must run 0..n-1 for X and for Y."""
    lines = text.strip().splitlines()
    if lines and lines[0].strip().lower() in RESULTS + tuple(ALIASES):
        text = "\n".join(lines[1:])
    vals = {"X": {}, "Y": {}}
    for top in parse_sexprs(text, src):
        pairs = top if top and isinstance(top[0], list) else [top]
        for p in pairs:
            if (
                not isinstance(p, list)
                or len(p) != 2
                or not isinstance(p[0], tuple)
                or not isinstance(p[1], tuple)
            ):
                raise MalformedFileError(
                    f"{src}: expected (X_i value) or (Y_i value), got {_show(p)}"
                )
            name, (tok, ln) = p[0][0], p[1]
            if len(name) < 3 or name[:2] not in ("X_", "Y_") or not name[2:].isdigit():
                raise MalformedFileError(f"{src}:{ln}: variable {name!r} is not X_i or Y_i")
            v, i = name[0], int(name[2:])
            if i in vals[v]:
                raise MalformedFileError(f"{src}:{ln}: {name} given twice")
            vals[v][i] = (to_exact(tok, f"{src}:{ln}: {name}"), tok)
    if not vals["X"]:
        raise MalformedFileError(f"{src}: no X_i values in the counterexample")
    out = {}
    for v, d in vals.items():
        if set(d) != set(range(len(d))):
            missing = min(set(range(max(d) + 1)) - set(d))
            raise MalformedFileError(f"{src}: {v}_{missing} is missing")
        out[v] = [d[i] for i in range(len(d))]
    return Counterexample(
        [a for a, _ in out["X"]],
        [a for a, _ in out["Y"]],
        [t for _, t in out["X"]],
        [t for _, t in out["Y"]],
        str(src),
    )


def _show(e):
    if isinstance(e, tuple):
        return e[0]
    return "(" + " ".join(_show(u) for u in e) + ")"


def load_counterexample(path):
    """Read and parse a counterexample file (plain or ``.gz``)."""
    return parse_counterexample(read_text(path), str(path))


def parse_result(text, src="<string>"):
    """``(result, counterexample text or None)`` of a result file."""
    lines = text.strip().splitlines()
    if not lines:
        raise MalformedFileError(f"{src}: empty result file")
    word = lines[0].strip().lower()
    word = ALIASES.get(word, word)
    if word not in RESULTS:
        raise MalformedFileError(
            f"{src}: first line {lines[0].strip()!r} is not one of {', '.join(RESULTS)}"
        )
    rest = "\n".join(lines[1:]).strip()
    return word, (rest or None)


@dataclass
class Instance:
    """One row of ``instances.csv``: absolute paths and the timeout in seconds."""

    index: int
    onnx: str
    vnnlib: str
    timeout: float

    @property
    def key(self):
        return instance_key(self.onnx, self.vnnlib)


def _resolve(base, name):
    """``base/name``, or its ``.gz`` twin (or the plain file of a ``.gz`` name) if only that
    exists."""
    p = (base / name.strip()).resolve()
    if p.exists():
        return p
    twin = p.with_name(p.name[:-3]) if p.name.endswith(".gz") else p.with_name(p.name + ".gz")
    return twin if twin.exists() else p


def instances_file(bench_dir):
    """The benchmark folder's ``instances.csv`` (or the one ``*instances.csv``)."""
    d = Path(bench_dir)
    if d.is_file():
        return d
    p = d / "instances.csv"
    if p.exists():
        return p
    got = sorted(d.glob("*instances.csv"))
    if len(got) == 1:
        return got[0]
    raise MalformedFileError(f"{bench_dir}: no instances.csv in the benchmark folder")


def read_instances(bench_dir):
    """The rows of the benchmark's ``instances.csv`` as :class:`Instance` (paths resolved
    against the CSV's folder); a missing file or a bad timeout is an error naming the row."""
    path = instances_file(bench_dir)
    base = path.parent
    out = []
    for n, row in enumerate(csv.reader(io.StringIO(read_text(path))), 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 2:
            raise MalformedFileError(f"{path}:{n}: expected onnx,vnnlib,timeout")
        onnx, vnnlib = _resolve(base, row[0]), _resolve(base, row[1])
        for p in (onnx, vnnlib):
            if not p.exists():
                raise MalformedFileError(f"{path}:{n}: {p} does not exist")
        try:
            timeout = float(row[2]) if len(row) > 2 and row[2].strip() else 300.0
        except ValueError:
            raise InvalidValueError(f"{path}:{n}: timeout", row[2], "not a number") from None
        if not timeout > 0:
            raise InvalidValueError(f"{path}:{n}: timeout", row[2], "must be > 0")
        out.append(Instance(len(out), str(onnx), str(vnnlib), timeout))
    if not out:
        raise MalformedFileError(f"{path}: no instances")
    return out


@dataclass
class Claimed:
    """A tool's claim on one instance: ``result`` (one of ``RESULTS``), the counterexample
    (text, or a path to read) and where it came from."""

    result: str
    cex_text: str | None = None
    cex_path: str | None = None
    source: str = ""


def _cex_beside(folder, key):
    for suffix in (".counterexample.gz", ".counterexample", ".cex.gz", ".cex"):
        p = folder / (key + suffix)
        if p.exists():
            return p
    return None


def read_results(path, instances):
    """``{instance index: Claimed}`` from a folder of per-instance result files (named
    ``{key}.*``, e.g. ``{key}.txt`` or ``{key}.counterexample.gz``) or from the competition's
    CSV; instances without a result are left out."""
    p = Path(path)
    keys = {inst.key: inst.index for inst in instances}
    out = {}
    if p.is_dir():
        files = sorted(q for q in p.iterdir() if q.is_file())
        for key, idx in keys.items():
            mine = [q for q in files if q.name.startswith(key + ".")]
            res = [q for q in mine if ".counterexample" not in q.name]
            if res:
                word, cex = parse_result(read_text(res[0]), str(res[0]))
                out[idx] = Claimed(word, cex_text=cex, source=str(res[0]))
                if word == "sat" and cex is None:
                    c = _cex_beside(p, key)
                    out[idx].cex_path = str(c) if c else None
            elif mine:
                out[idx] = Claimed("sat", cex_path=str(mine[0]), source=str(mine[0]))
        return out
    text = read_text(p)
    for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
        row = [c.strip() for c in row]
        onnx = next((c for c in row if c.endswith((".onnx", ".onnx.gz"))), None)
        vnn = next((c for c in row if c.endswith((".vnnlib", ".vnnlib.gz"))), None)
        words = [ALIASES.get(c.lower(), c.lower()) for c in row]
        word = next((w for w in words if w in RESULTS), None)
        if onnx is None or vnn is None:
            continue
        if word is None:
            raise MalformedFileError(f"{p}:{n}: no result word ({', '.join(RESULTS)}) in the row")
        idx = keys.get(instance_key(onnx, vnn))
        if idx is None:
            continue
        c = _cex_beside(p.parent, instance_key(onnx, vnn)) if word == "sat" else None
        out[idx] = Claimed(word, cex_path=str(c) if c else None, source=f"{p}:{n}")
    return out
