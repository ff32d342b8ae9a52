"""One entry point for model files: ``load_model(path, spec=None)``.

The file type decides the reader: ``.json`` (``io.json_net``) or ``.onnx`` (``io.onnx_loader``).
With a VNN-LIB ``spec`` (a path or a parsed ``VnnlibSpec``) the model's input set becomes the
spec's box and ``model.spec`` holds the spec (``model.spec.output`` is the output property,
``model.spec.relaxed`` says the box encloses a polytope of input constraints).
"""

from dataclasses import replace
from pathlib import Path

from ..core import Box
from ..errors import InvalidModelError, MalformedFileError, ShapeError
from .json_net import load_json_network
from .onnx_loader import load_onnx  # onnx itself is imported on first use
from .vnnlib import VnnlibSpec, load_vnnlib

READERS = {".json": "json", ".onnx": "onnx"}


def _suffix(path):
    """The file type's suffix; a gzip-compressed ``X.onnx.gz`` is read as its inner type."""
    p = Path(path)
    if p.suffix.lower() == ".gz":
        p = p.with_suffix("")
    return p.suffix.lower()


def _read(path):
    kind = READERS.get(_suffix(path))
    if kind == "json":
        return load_json_network(path)
    if kind == "onnx":
        return load_onnx(path)
    raise MalformedFileError(
        f"{path}: unknown model file type {Path(path).suffix!r} (expected {', '.join(READERS)})"
    )


def output_dim(graph):
    """The flattened size of the graph's output."""
    return graph.dims[graph.output]


def attach_spec(model, spec, polytope="box"):
    """``model`` with its input set replaced by the spec's box and ``spec`` attached; the
    numbers of inputs and outputs must match the network's."""
    if not isinstance(spec, VnnlibSpec):
        spec = load_vnnlib(spec, polytope)
    n_in, n_out = model.graph.input_dim, output_dim(model.graph)
    if spec.n_inputs != n_in:
        raise ShapeError(
            f"{spec.source} declares {spec.n_inputs} inputs X_i, "
            f"the network {model.source} takes {n_in}"
        )
    if spec.n_outputs and n_out is not None and spec.n_outputs != n_out:
        raise ShapeError(
            f"{spec.source} declares {spec.n_outputs} outputs Y_i, "
            f"the network {model.source} gives {n_out}"
        )
    shape = model.graph.input_shape
    box = spec.input_box
    if tuple(shape) != tuple(box.shape):
        box = Box(box.lo, box.hi, shape, name=f"{spec.source}: input")
    return replace(model, input_set=box, spec=spec)


def load_model(path, spec=None, polytope="box", need_input_set=True):
    """Load the network in ``path`` (``.json`` or ``.onnx``); with ``spec`` (a VNN-LIB path or
    a ``VnnlibSpec``) its box becomes the input set. Returns an ``io.json_net.Model``.

    An ONNX file carries no input set, so it needs a spec (unless ``need_input_set`` is false:
    the caller supplies one)."""
    model = _read(path)
    if spec is not None:
        model = attach_spec(model, spec, polytope)
    if model.input_set is None and need_input_set:
        raise InvalidModelError(
            f"{path}: the model carries no input set; give a VNN-LIB spec (--spec FILE.vnnlib)"
        )
    return model


def spec_notes(spec, lo=None, hi=None):
    """One-line notes for a result computed over ``spec``'s box: where the input set came from,
    whether the box encloses a polytope of input constraints (``spec.relaxed``: the bounds are
    sound for the polytope, not tight), and, given exact output bounds ``lo``/``hi``, whether
    they prove the property (``OutputProperty.proved_by_box``)."""
    notes = [f"input set: the box of {spec.source}"]
    if spec.relaxed:
        notes.append(
            f"{len(spec.input_constraints)} linear input constraint(s) of {spec.source} "
            "over several inputs (a polytope) are enclosed by the box: the bounds are "
            "sound for the polytope, not tight"
        )
    if lo is not None and not spec.output.trivial:
        verdict = (
            "proved: no output inside these bounds satisfies the counterexample formula"
            if spec.output.proved_by_box(lo, hi)
            else "not proved by these bounds"
        )
        notes.append(f"property of {spec.source}: {verdict}")
    return notes


def region_models(model):
    """The model once per input region of its spec (``spec.input_regions``: the boxes of an
    ``or`` of input boxes, else the one box), each with that region as its input set, as
    ``[(index, model)]``."""
    spec, shape = model.spec, model.graph.input_shape
    if spec is None or not spec.multi_region:
        return [(0, model)]
    return [
        (
            r,
            replace(
                model, input_set=Box(b.lo, b.hi, shape, name=f"{spec.source}: input region {r}")
            ),
        )
        for r, b in enumerate(spec.input_regions)
    ]


def regions_notes(spec, verdicts):
    """Notes for bounds computed region by region over ``spec`` (``verdicts[r]``: whether the
    bounds of region ``r`` prove the property): the input set, the spec's other notes, and the
    property's verdict (proved only when proved on every region)."""
    notes = [
        f"input set: {len(verdicts)} boxes of {spec.source} (an 'or' of input regions), "
        "bounded one by one; the outputs are the hull of the regions' bounds"
    ]
    notes += spec_notes(spec)[1:]
    if not spec.output.trivial:
        ok = [r for r, v in enumerate(verdicts) if v]
        verdict = (
            "proved on every region"
            if len(ok) == len(verdicts)
            else f"not proved by these bounds (proved on regions {ok or 'none'})"
        )
        notes.append(f"property of {spec.source}: {verdict}")
    return notes
