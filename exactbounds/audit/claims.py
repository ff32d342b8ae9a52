"""Claimed bounds, as a fast tool reports them.

A claim file is JSON. Accepted shapes, from the simplest::

    {"lo": [...], "hi": [...]}                              # optionally "dtype": "float32"
    {"ibp": {"lo": ..., "hi": ...}, "crown": {...}}         # selected by --method
    {"crown": {"float32": {"lo": ..., "hi": ...}, "float64": {...}}}   # and by --dtype
    # method keys: ibp, crown, crown-ibp (or crown_ibp), affine (or forward), deriv
    {"outputs": {"lo": ..., "hi": ...}}                     # the JSON of ``exactbounds bounds``

Numbers are JSON numbers (the exact double they denote), hex floats (``"0x1.8p-3"``), or
rational/decimal strings (``"3/7"``, ``"-0.1"`` = the exact decimal); ``null`` leaves that side
unclaimed. Nested lists are flattened row-major. Intermediate claims map node names to claims of
any of the shapes above: ``{"layers[0]": {"lo": ..., "hi": ...}, ...}``.
"""

from dataclasses import dataclass

from ..core import _flat
from ..errors import InvalidValueError, MalformedFileError, ShapeError, shown
from ..io.json_net import read_json
from ..numbers import to_exact
from ..numbers.dtypes import DTYPE_ALIASES, dtype_name

METHODS = ("ibp", "crown", "crown-ibp", "affine", "deriv")
METHOD_ALIASES = {"crown_ibp": "crown-ibp", "forward": "affine"}
"""Method keys as auto_LiRPA's names read (``compute_bounds(method=...)``, lower case)."""


@dataclass
class Claim:
    """Claimed bounds on one node: ``lo``/``hi`` flat lists of ``fmpq`` or ``None`` (unclaimed),
    in the float type ``dtype``; ``node`` is ``None`` for the network's output."""

    lo: list
    hi: list
    dtype: str = "float64"
    node: str | None = None
    source: str = "<claim>"

    @property
    def dim(self):
        return len(self.lo)

    def check_dim(self, n, what="the network output"):
        if self.dim != n:
            raise ShapeError(f"{self.source}: the claim has {self.dim} entries, {what} has {n}")


def _is_bounds(d):
    return isinstance(d, dict) and ("lo" in d or "hi" in d)


def _numbers(seq, where, n=None):
    if seq is None:
        return None if n is None else [None] * n
    if not isinstance(seq, (list, tuple)):
        seq = [seq]
    if not all(v is None or isinstance(v, (int, float, str, list)) for v in seq):
        raise MalformedFileError(f"{where}: expected numbers, strings or null, got {shown(seq)}")
    flat = _flat(seq)
    return [None if v is None else to_exact(v, f"{where}[{i}]") for i, v in enumerate(flat)]


def _select(data, key, choices, what, where):
    """Step into ``data[key]`` when ``data`` is keyed by ``choices``; else return ``data``."""
    if not isinstance(data, dict) or _is_bounds(data):
        return data, where, None
    if choices is METHODS:
        data = {METHOD_ALIASES.get(k, k): v for k, v in data.items()}
    keys = [k for k in data if k in choices]
    if not keys:
        return data, where, None
    if key is None:
        if len(keys) == 1:
            key = keys[0]
        else:
            raise InvalidValueError(
                f"--{what}", None, f"{where} holds claims for {', '.join(keys)}; choose one"
            )
    if key not in data:
        raise InvalidValueError(
            f"--{what}", key, f"{where} has no claim for it (it has {', '.join(keys)})"
        )
    return data[key], f"{where}.{key}", key


def parse_claim(data, method=None, dtype=None, where="claim", node=None):
    """A :class:`Claim` from parsed JSON, selecting by ``method`` and ``dtype`` where the data is
    keyed by them. ``dtype``: the ``--dtype`` given (``None``: from the data, else float64)."""
    dtypes = set(DTYPE_ALIASES)
    d, where, _ = _select(data, method, METHODS, "method", where)
    d, where, dkey = _select(d, dtype, dtypes, "dtype", where)
    if isinstance(d, dict) and not _is_bounds(d) and _is_bounds(d.get("outputs")):
        d, where = (
            dict(d["outputs"], **({"dtype": d["dtype"]} if "dtype" in d else {})),
            f"{where}.outputs",
        )
    if not _is_bounds(d):
        raise MalformedFileError(f"{where}: expected an object with 'lo' and/or 'hi' lists")
    given = dkey or dtype or d.get("dtype") or "float64"
    if (
        dtype is not None
        and d.get("dtype") is not None
        and dtype_name(d["dtype"]) != dtype_name(dtype)
    ):
        raise InvalidValueError("--dtype", dtype, f"{where}.dtype says {shown(d['dtype'])}")
    lo = _numbers(d.get("lo"), f"{where}.lo")
    hi = _numbers(d.get("hi"), f"{where}.hi", None if lo is None else len(lo))
    if lo is None:
        lo = [None] * len(hi)
    if len(lo) != len(hi):
        raise ShapeError(f"{where}: lo has {len(lo)} entries, hi has {len(hi)}")
    if all(v is None for v in lo + hi):
        raise MalformedFileError(f"{where}: every side is null: nothing is claimed")
    return Claim(lo, hi, dtype_name(given), node, where)


def load_claim(path, method=None, dtype=None):
    """The claim in the JSON file ``path`` (see the module docstring)."""
    return parse_claim(read_json(path), method, dtype, where=str(path))


def load_intermediate_claims(path, method=None, dtype=None):
    """``{node name: Claim}`` from a JSON object keyed by node names."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise MalformedFileError(f"{path}: expected an object mapping node names to claims")
    d, where, _ = _select(data, method, METHODS, "method", str(path))
    d, where, _ = _select(d, dtype, set(DTYPE_ALIASES), "dtype", where)
    return {
        name: parse_claim(c, method, dtype, where=f"{where}[{name!r}]", node=name)
        for name, c in d.items()
    }
