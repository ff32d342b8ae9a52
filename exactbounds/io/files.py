"""Reading input files with a size cap, and JSON that refuses what it cannot read faithfully.

Every model, spec and claim file is read through :func:`read_bytes`: a path that is not a regular
file (a directory, ``/dev/zero``, a pipe) or is larger than :data:`MAX_FILE_BYTES` is refused
before it is read, and at most that many bytes are ever read. Text must be UTF-8 (a UTF-8
byte-order mark is skipped); UTF-16/32 or binary data is refused with a one-line
:class:`~exactbounds.errors.MalformedFileError`.

:func:`read_json` (:func:`parse_json`) adds what ``json.loads`` lets through silently:
duplicate keys in one object, nesting deeper than :data:`MAX_JSON_DEPTH`, integers of more than
``MAX_DIGITS`` digits, and JSON number literals that are not a float64 (``1e400`` overflows,
``1e-400`` underflows to 0): a JSON number is the double it denotes, so those are refused with
the advice to write the number as a string (``"1e-400"``), which is read as the exact decimal.
"""

import gzip
import json
import math
import os
import re
import stat
from itertools import accumulate
from pathlib import Path

from ..errors import MalformedFileError
from ..numbers.convert import MAX_DIGITS

MAX_FILE_BYTES = 1 << 30
"""Largest model, spec or claim file read (1 GiB)."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of JSON arrays/objects (a network file needs 7)."""

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH = {"[": 1, "{": 1, "]": -1, "}": -1}
_EXP3 = re.compile(r"e[+-]?0*[0-9]{3}")
"""An exponent of three or more digits (in lower-cased text: the literal ``e`` lets the regular
expression engine skip ahead, so the scan costs milliseconds on a large file)."""
_ZEROS = "0" * 50
"""A run of zeros as long as this is where a decimal without exponent could underflow to 0."""
_NUMBER_CHARS = frozenset("0123456789.eE+-")


def check_file(path, limit=MAX_FILE_BYTES):
    """The size of ``path`` after checking that it names a regular file of at most ``limit``
    bytes (else ``MalformedFileError``)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as e:
        raise MalformedFileError(f"{path}: cannot read: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise MalformedFileError(f"{path}: cannot read: not a regular file")
    if st.st_size > limit:
        raise MalformedFileError(
            f"{path}: {st.st_size} bytes, more than the {limit >> 20} MiB that exactbounds reads"
        )
    return st.st_size


def read_bytes(path, limit=MAX_FILE_BYTES):
    """The bytes of the regular file ``path``, refused beyond ``limit`` bytes; a ``.gz`` file
    (VNN-COMP ships ``.onnx.gz`` and ``.vnnlib.gz``) is decompressed, its content under the same
    limit (a decompression bomb stops at ``limit``)."""
    check_file(path, limit)
    gz = str(path).lower().endswith(".gz")
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:  # gzip.BadGzipFile is an OSError
        raise MalformedFileError(f"{path}: cannot read: {e.strerror or e}") from None
    except EOFError:
        raise MalformedFileError(f"{path}: cannot read: truncated gzip data") from None
    if len(data) > limit:
        raise MalformedFileError(f"{path}: more than the {limit >> 20} MiB that exactbounds reads")
    return data


def read_text(path, limit=MAX_FILE_BYTES):
    """The UTF-8 text of ``path`` (see :func:`read_bytes`); other encodings are refused."""
    data = read_bytes(path, limit)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(data) > 1 and b"\x00" in data[:4]):
        raise MalformedFileError(
            f"{path}: not UTF-8 text (UTF-16/32 or binary data); save it as UTF-8"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise MalformedFileError(
            f"{path}: not UTF-8 text (byte {e.start} is 0x{data[e.start]:02x}); save it as UTF-8"
        ) from None


def _check_literal(lit, path):
    """Refuse a JSON number literal that is not what it says: an integer of more than
    ``MAX_DIGITS`` digits, or a float literal that overflows float64 or underflows it to 0."""
    if not re.search("[.eE]", lit):
        if len(lit.lstrip("-")) > MAX_DIGITS:
            raise MalformedFileError(
                f"{path}: a JSON integer of {len(lit.lstrip('-'))} digits (at most {MAX_DIGITS})"
            )
        return
    x, short = float(lit), lit if len(lit) <= 40 else lit[:30] + "…"
    if math.isinf(x):
        raise MalformedFileError(
            f"{path}: JSON number {short} overflows float64; write it as "
            f'a string ("{short}") to read the exact decimal'
        )
    if x == 0 and re.search("[1-9]", re.split("[eE]", lit)[0]):
        raise MalformedFileError(
            f"{path}: JSON number {short} underflows float64 to 0; write "
            f'it as a string ("{short}") to read the exact decimal'
        )


def _unique_keys(path):
    def hook(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                raise MalformedFileError(f"{path}: duplicate key {k[:60]!r} in one JSON object")
            d[k] = v
        return d

    return hook


def json_depth(text):
    """The deepest nesting of ``[``/``{`` in JSON ``text`` (brackets inside strings ignored)."""
    return _depth(_STRINGS.sub("", text))


def _depth(bare):
    brackets = _NOT_BRACKET.sub("", bare)
    return max(accumulate(map(_DEPTH.get, brackets)), default=0)


def _suspects(bare):
    """The number literals of ``bare`` (JSON with its strings emptied, lower-cased) that may not
    be what they say: around each exponent of three or more digits and each long run of zeros."""
    hits = [m.start() for m in _EXP3.finditer(bare)]
    k = bare.find(_ZEROS)
    while k >= 0:
        hits.append(k)
        k = bare.find(_ZEROS, k + len(_ZEROS))
    end = 0
    for a in sorted(hits):
        if a < end:
            continue
        end = a
        while a > 0 and bare[a - 1] in _NUMBER_CHARS:
            a -= 1
        while end < len(bare) and bare[end] in _NUMBER_CHARS:
            end += 1
        yield bare[a:end]


def parse_json(text, path="<string>"):
    """Parse JSON ``text`` with the checks of the module docstring. The few number literals
    that could be wrong (:func:`_suspects`) are checked one by one; the rest parse at
    ``json.loads`` speed. A decimal of 309 or more digits without exponent still overflows to
    ``inf``, which every reader refuses as not finite."""
    bare = _STRINGS.sub('""', text).lower()
    depth = _depth(bare)
    if depth > MAX_JSON_DEPTH:
        raise MalformedFileError(f"{path}: JSON nested {depth} deep (at most {MAX_JSON_DEPTH})")
    for lit in _suspects(bare):
        _check_literal(lit, path)
    try:
        return json.loads(text, object_pairs_hook=_unique_keys(path))
    except json.JSONDecodeError as e:
        raise MalformedFileError(
            f"{path}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except ValueError:  # an integer beyond Python's int-string limit
        raise MalformedFileError(
            f"{path}: a JSON integer of more than {MAX_DIGITS} digits"
        ) from None
    except RecursionError:
        raise MalformedFileError(f"{path}: JSON nested too deep") from None


def read_json(path, limit=MAX_FILE_BYTES):
    """Parse the JSON file ``path``; malformed JSON raises ``MalformedFileError`` with line and
    column."""
    return parse_json(read_text(path, limit), str(path))
