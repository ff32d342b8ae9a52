"""ONNX models as exact graphs (needs the ``onnx`` extra: ``pip install exactbounds[onnx]``).

Two stages:

1. :func:`parse_onnx` reads the file into an :class:`OnnxGraph`: the one real input (older
   exporters, opset 8/9, also list every initializer among the graph inputs; the real input is
   the graph input that is not an initializer), its shape with batch dimension 1, every
   initializer and ``Constant`` node as a numpy *object* array of exact ``fmpq`` (float16/32/64
   data through ``to_exact``, which is exact for floats, so a float32 weight is its exact dyadic
   value), and the remaining nodes in topological order with their attributes.
2. :func:`build_graph` turns the nodes into a :class:`~exactbounds.graph.Graph` of the package's
   operators, tracking each tensor's ONNX shape (batch dimension included) to check sizes.

Supported ops (batch size 1): ``Gemm`` (``transA`` with a column input, ``transB``, exact
``alpha``/``beta``), ``MatMul`` with a constant right (``x @ W``, W in×out) or left (``W @ x``)
operand, ``Add``/``Sub``/``Mul``/``Div`` by constants (exact elementwise affine maps, see
below), ``Add``/``Sub`` of two tensors of equal shape, ``Conv`` (2-D, and 1-D as 2-D with height 1;
pads, strides, dilations, group, ``auto_pad``), ``BatchNormalization`` (exact ``epsilon``),
``Relu``, ``Sigmoid``, ``Tanh``, ``Flatten``, ``Reshape`` (constant shape), ``Identity``,
``AveragePool``, ``Constant``; nodes whose inputs are all constants (Identity, Flatten, Reshape,
+ − × ÷) are evaluated exactly at load time. Anything else raises ``UnsupportedOperatorError``
naming the op type and the node; an unreadable file raises ``MalformedFileError``; sizes that do
not fit raise ``ShapeError``.

Shapes: the tracked ONNX shapes include the batch dimension; the operators get the shape
without it (``(C, H, W)``, ``(n,)``).

Maps by constants ``y = a⊙x + c`` are folded exactly where the result is the same function:
into the bias/rows of the linear layer that produced ``x`` when ``x`` has no other reader
(MatMul+Add becomes one ``Linear``), and, when ``y``'s only reader is another such map, a
reshape, or a Gemm/MatMul, into that reader (input normalisation ``Sub``/``Div`` before the
first layer: ``W·(a⊙s + c) + b = (W·diag a)·s + (W·c + b)``). A map that cannot be folded is an
``Add``/``Sub``/``Scale`` node (a composed chain one ``Scale``). Nothing is folded into Conv: zero
padding does not commute with a shift.
"""

from dataclasses import dataclass, field
from math import prod
from pathlib import Path

from flint import fmpq

from ..errors import (
    InvalidModelError,
    InvalidValueError,
    MalformedFileError,
    ShapeError,
    UnsupportedOperatorError,
    shown,
)
from ..graph import Graph, Node
from ..linalg.dymat import exact_floats
from ..numbers import to_exact
from ..operators.activations import Sigmoid, Tanh
from ..operators.arithmetic import Add, Scale, Sub
from ..operators.batchnorm import BatchNorm, BatchNormParams
from ..operators.conv import Conv2d
from ..operators.indexmap import IndexMap
from ..operators.linear import Linear, LinearParams
from ..operators.pool import AveragePool
from ..operators.relu import ReLU
from ..operators.reshape import Identity, Reshape
from .files import MAX_FILE_BYTES, check_file, read_bytes
from .json_net import Model
from .onnx_ops import OpsMixin, op_shape
from .onnx_shapes import FOLDS, fold

ONNX_DOMAINS = ("", "ai.onnx")


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # pragma: no cover - depends on the environment
        raise InvalidModelError(
            "reading ONNX needs the 'onnx' package: pip install 'exactbounds[onnx]'"
        ) from None
    return onnx, numpy_helper


def _read_errors(onnx):
    """What onnx and protobuf raise on a malformed file, tensor or attribute: protobuf's
    ``DecodeError``, the checker's ``ValidationError`` (e.g. missing external data), ``OSError``,
    and ``ValueError``/``KeyError``/``TypeError`` from ``numpy_helper`` and ``helper``."""
    from google.protobuf.message import Error as ProtobufError

    return (ProtobufError, onnx.checker.ValidationError, OSError, ValueError, KeyError, TypeError)


# ----------------------------------------------------------------------------- stage 1: parse


@dataclass
class OnnxNode:
    """One ONNX node: ``inputs`` are tensor names (``""`` for an omitted optional input)."""

    op_type: str
    name: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)

    def where(self):
        return f"{self.op_type} node {self.name!r}"


@dataclass
class OnnxGraph:
    """The parsed model: the real input's name and shape (batch dimension 1 included), the
    output's name, exact constants ``{name: numpy object array of fmpq}`` (integer tensors stay
    ``int64``), the non-constant nodes in topological order, and the default-domain opset."""

    input_name: str
    input_shape: tuple
    output_name: str
    consts: dict
    nodes: list
    opset: int
    source: str = "<onnx>"


def _checked(arr, name):
    """``arr`` as a numpy array: integer arrays as ``int64``, float16/32/64 arrays unchanged
    (their values are exact dyadic rationals); NaN/Inf raise ``InvalidValueError`` naming the
    tensor and index, other element types ``UnsupportedOperatorError``."""
    import numpy as np

    arr = np.asarray(arr)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    if arr.dtype.kind != "f" or arr.dtype.itemsize > 8:
        raise UnsupportedOperatorError(
            f"tensor {name!r}: element type {arr.dtype} is not "
            "supported (expected float16/32/64 or an integer type)"
        )
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        idx = tuple(int(i) for i in bad[0])
        raise InvalidValueError(f"{name}{list(idx)}", float(arr[idx]), "not finite")
    return arr


def exact_array(arr, name):
    """A numpy float array as an object array of exact ``fmpq`` (same shape); integer arrays
    are returned as ``int64``. NaN/Inf raise ``InvalidValueError`` naming the tensor and index."""
    arr = _checked(arr, name)
    return arr if arr.dtype.kind == "i" else exact_floats(arr)


class ExactConsts(dict):
    """``{name: exact constant}`` (numpy object arrays of ``fmpq``, integer tensors ``int64``).
    A float tensor is stored as its float array and converted to ``fmpq`` on first read, so a
    weight that goes straight into a ``Linear`` layer is never converted entry by entry
    (:meth:`floats` hands out the float array, whose values are exactly the constant's)."""

    def __init__(self):
        super().__init__()
        self._floats = {}

    def put(self, name, arr):
        """Store ``arr`` (checked by :func:`_checked`) under ``name``."""
        arr = _checked(arr, name)
        if arr.dtype.kind == "f":
            self._floats[name] = arr
            super().__setitem__(name, _LAZY)
        else:
            self[name] = arr

    def __setitem__(self, name, value):
        self._floats.pop(name, None)
        super().__setitem__(name, value)

    def __getitem__(self, name):
        v = super().__getitem__(name)
        if v is _LAZY:
            v = exact_floats(self._floats[name])
            super().__setitem__(name, v)
        return v

    def get(self, name, default=None):
        return self[name] if name in self else default

    def floats(self, name):
        """The float array of a float constant (exactly its values), else ``None``."""
        return self._floats.get(name)


_LAZY = object()


def _tensors(graph):
    """Every tensor a graph holds: initializers and tensor attributes, subgraphs included
    (iteratively)."""
    todo = [graph]
    while todo:
        g = todo.pop()
        yield from g.initializer
        for node in g.node:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors
                if a.HasField("g"):
                    todo.append(a.g)
                todo.extend(a.graphs)


def _external_files(model, path):
    """Check every external-data location of ``model`` (loaded from ``path``) ourselves, not
    only through ``onnx``: a relative path inside the model's folder, naming a regular file;
    their total size counts against ``MAX_FILE_BYTES``. Returns whether there are any."""
    onnx, _ = _onnx()
    base = path.parent.resolve()
    total, any_ext = path.stat().st_size, False
    for t in _tensors(model.graph):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        any_ext = True
        loc = {e.key: e.value for e in t.external_data}.get("location", "")
        target = (base / loc).resolve()
        if not loc or Path(loc).is_absolute() or base not in target.parents:
            raise MalformedFileError(
                f"{path}: tensor {t.name!r} stores its data at {loc!r}, "
                "outside the model's folder: refused"
            )
        try:
            total += check_file(target)
        except MalformedFileError as e:
            raise MalformedFileError(f"{path}: tensor {t.name!r}: external data {e}") from None
        if total > MAX_FILE_BYTES:
            raise MalformedFileError(
                f"{path}: the model and its external data are more than "
                f"the {MAX_FILE_BYTES >> 20} MiB that exactbounds reads"
            )
    return any_ext


def read_onnx(path):
    """The ``onnx.ModelProto`` in ``path`` (with tensors stored as external data beside it,
    inside the model's folder), checked by ``onnx.checker``; unreadable, unparseable or invalid
    files raise ``MalformedFileError``."""
    onnx, _ = _onnx()
    path = Path(path)
    data = read_bytes(path)
    try:
        model = onnx.load_model_from_string(data)
    except _read_errors(onnx) as e:
        raise MalformedFileError(
            f"{path}: not a readable ONNX model: {shown(' '.join(str(e).split()), 200)}"
        ) from None
    if not model.HasField("graph") or not model.graph.output:
        raise MalformedFileError(f"{path}: not an ONNX model: no graph or no graph output")
    try:
        if _external_files(model, path):
            from onnx.external_data_helper import load_external_data_for_model

            load_external_data_for_model(model, str(path.parent))
        onnx.checker.check_model(model)
    except _read_errors(onnx) as e:  # ValidationError, a missing external file, ...
        raise MalformedFileError(
            f"{path}: onnx.checker rejects the model: {shown(' '.join(str(e).split()), 200)}"
        ) from None
    return model


def _attrs(node, where):
    onnx, numpy_helper = _onnx()
    out = {}
    for a in node.attribute:
        try:
            v = onnx.helper.get_attribute_value(a)
            if a.type == onnx.AttributeProto.TENSOR:
                v = numpy_helper.to_array(v)
        except _read_errors(onnx) as e:
            raise MalformedFileError(f"{where}: attribute {a.name!r}: {e}") from None
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        out[a.name] = v
    return out


def _shape_of(value_info, where):
    """Static shape of a graph input; a symbolic leading dimension is the batch (taken as 1).
    The operators check that the batch dimension is 1 where it matters (Gemm, MatMul, Conv)."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        raise ShapeError(f"{where}: input {value_info.name!r} has no static shape")
    dims = []
    for k, d in enumerate(t.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        elif k == 0:
            dims.append(1)
        else:
            raise ShapeError(
                f"{where}: input {value_info.name!r} dimension {k} is not a fixed "
                f"size ({d.dim_param or d.dim_value!r})"
            )
    if not dims:
        raise ShapeError(f"{where}: input {value_info.name!r} is a scalar")
    return tuple(dims)


def _constant_value(attrs, where):
    import numpy as np

    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            v = attrs[key]
            dtype = (
                np.float32
                if key.startswith("value_float")
                else (np.int64 if key.startswith("value_int") else None)
            )
            return np.asarray(v, dtype=dtype)
    raise UnsupportedOperatorError(
        f"{where}: only 'value', 'value_float(s)' and 'value_int(s)' "
        f"constants are supported (got {sorted(attrs)})"
    )


def parse_onnx(source):
    """Stage 1: an :class:`OnnxGraph` from a path or an ``onnx.ModelProto``."""
    onnx, numpy_helper = _onnx()
    if isinstance(source, (str, Path)):
        model, src = read_onnx(source), str(source)
    else:
        model, src = source, "<onnx>"
    g = model.graph
    opset = max([o.version for o in model.opset_import if o.domain in ONNX_DOMAINS] or [0])
    consts = ExactConsts()
    for t in g.initializer:
        try:
            arr = numpy_helper.to_array(t)
        except _read_errors(onnx) as e:
            raise MalformedFileError(f"{src}: initializer {t.name!r}: {e}") from None
        consts.put(t.name, arr)
    real = [i for i in g.input if i.name not in consts]
    if len(real) != 1:
        raise UnsupportedOperatorError(
            f"{src}: expected exactly one graph input that is not an initializer, found "
            f"{len(real)}: {[i.name for i in real]}"
        )
    if len(g.output) != 1:
        raise UnsupportedOperatorError(
            f"{src}: expected one graph output, found {len(g.output)}: {[o.name for o in g.output]}"
        )
    inp = real[0]
    defined = {inp.name} | set(consts)
    nodes, used_names = [], {Graph.INPUT}
    for k, n in enumerate(g.node):
        name = n.name or (n.output[0] if n.output else f"node{k}")
        if name in used_names:
            name = f"{name}#{k}"
        used_names.add(name)
        where = f"{n.op_type or '?'} node {name!r}"
        if n.domain not in ONNX_DOMAINS:
            raise UnsupportedOperatorError(
                f"{where}: operator domain {n.domain!r} is not supported"
            )
        for i in n.input:
            if i and i not in defined:
                raise MalformedFileError(
                    f"{src}: {where} reads {i!r}, which is not defined "
                    "before it (nodes must be in topological order)"
                )
        if not n.output:
            raise MalformedFileError(f"{src}: {where} has no output")
        attrs = _attrs(n, f"{src}: {where}")
        defined.update(n.output)
        if n.op_type == "Constant":
            consts.put(n.output[0], _constant_value(attrs, where))
            continue
        nodes.append(OnnxNode(n.op_type, name, list(n.input), list(n.output), attrs))
    out = g.output[0].name
    if out not in defined:
        raise MalformedFileError(f"{src}: graph output {out!r} is never computed")
    return OnnxGraph(inp.name, _shape_of(inp, src), out, consts, nodes, opset, src)


# ----------------------------------------------------------------------------- stage 2: build


def _ints(v, n, default, where, what):
    v = list(default if v is None else v)
    if len(v) != n:
        raise ShapeError(f"{where}: attribute {what} has {len(v)} entries, expected {n}")
    return [int(u) for u in v]


class _LinearData:
    """A linear layer under construction (biases and scalings still fold into it); becomes a
    ``Linear`` once the graph is complete. ``weight`` is a list of rows of exact numbers, or a
    2-d numpy float array (the exact values of a float initializer, converted in one vectorised
    step by ``LinearParams``) until a scaling folds into its rows."""

    def __init__(self, weight, bias):
        self.weight, self.bias = weight, bias

    def rows(self):
        """``weight`` as a list of rows of exact numbers."""
        if not isinstance(self.weight, list):
            self.weight = exact_floats(self.weight).tolist()
        return self.weight


class _Builder(OpsMixin):
    """Walks the nodes, keeping for every non-constant tensor its graph node name and shape."""

    def __init__(self, og):
        self.og = og
        self.nodes = []
        self.tensor = {og.input_name: (Graph.INPUT, og.input_shape)}
        self.consumers = {}  # tensor -> the nodes that read it
        for n in og.nodes:
            if n.op_type in ("Shape", "Size"):  # read only the (static) shape
                continue
            for i in n.inputs:
                self.consumers.setdefault(i, []).append(n)
        self.linear = {}  # tensor -> index in self.nodes of the Linear that made it
        self.pending = {}  # tensor -> elementwise map not built yet (see _elementwise_const)

    # -- helpers --------------------------------------------------------------------------
    def const(self, name):
        return self.og.consts.get(name)

    def is_const(self, name):
        return name in self.og.consts

    def const_or_floats(self, name):
        """A constant as its float array when it is a float tensor (exactly its values, not yet
        converted to ``fmpq``: for weights that go whole into a ``Linear`` layer), else as
        :meth:`const` gives it."""
        f = getattr(self.og.consts, "floats", lambda _: None)(name)
        return f if f is not None else self.const(name)

    def var(self, node, name):
        """``(graph node name, ONNX shape)`` of a computed tensor (building it if pending)."""
        if name in self.pending:
            self.materialize(name)
        if name not in self.tensor and self.is_const(name):
            self.const_node(name)
        if name not in self.tensor:
            raise UnsupportedOperatorError(
                f"{node.where()}: input {name!r} is neither a constant nor a computed tensor"
            )
        return self.tensor[name]

    def shape_of(self, node, name):
        """The ONNX shape of a computed tensor, without building a pending map."""
        return self.pending[name][1] if name in self.pending else self.var(node, name)[1]

    def const_node(self, name):
        """A constant read by an operator that does not fold (``Sin`` of a constant, a
        ``Relu`` of a constant sub-network): a node whose value is the constant whatever the
        input (an index map reading no entry)."""
        import numpy as np

        c = np.asarray(self.const(name))
        vals = [v if isinstance(v, fmpq) else fmpq(int(v)) for v in c.ravel().tolist()]
        op = IndexMap(
            [op_shape(self.og.input_shape)],
            op_shape(c.shape),
            [-1 - k for k in range(len(vals))],
            vals,
            name=f"const:{name}",
        )
        self.nodes.append(Node(op.name, op, [Graph.INPUT]))
        self.tensor[name] = (op.name, tuple(c.shape))

    def materialize(self, name):
        """Build the pending elementwise map that computes ``name``."""
        src, shape, scale, shift, make, pnode = self.pending.pop(name)
        op = (
            make(core_shape(shape))
            if make is not None
            else Scale(core_shape(shape), scale, shift, name=pnode.name)
        )
        self.nodes.append(Node(pnode.name, op, [self.var(pnode, src)[0]]))
        self.tensor[name] = (pnode.name, shape)

    def _foldable_consumer(self, name):
        """Whether the only reader of ``name`` is a layer an elementwise map folds into:
        Gemm/MatMul reading it as the computed operand, another elementwise map, or a reshape
        (which commutes with an elementwise map)."""
        readers = self.consumers.get(name, [])
        if len(readers) != 1 or name == self.og.output_name:
            return False
        n = readers[0]
        if n.op_type in ("Flatten", "Reshape", "Identity"):
            return n.inputs[0] == name
        if n.op_type == "Gemm":
            return n.inputs[0] == name
        if n.op_type in ("MatMul", "Add", "Sub", "Mul", "Div") and len(n.inputs) == 2:
            other = n.inputs[1] if n.inputs[0] == name else n.inputs[0]
            return other != name and self.is_const(other)
        return False

    def add(self, node, op, inputs, out_shape, linear=False):
        self.nodes.append(Node(node.name, op, [self.var(node, i)[0] for i in inputs]))
        self.tensor[node.outputs[0]] = (node.name, tuple(out_shape))
        if linear:
            self.linear[node.outputs[0]] = len(self.nodes) - 1

    def broadcast_const(self, node, c, shape):
        """The constant ``c`` broadcast to ``shape`` (it may not enlarge it), flattened."""
        import numpy as np

        try:
            full = np.broadcast_shapes(tuple(shape), c.shape)
        except ValueError:
            full = None
        if full != tuple(shape):
            raise ShapeError(
                f"{node.where()}: constant of shape {tuple(c.shape)} does not "
                f"broadcast to the input's shape {tuple(shape)}"
            )
        return [
            fmpq(v) if isinstance(v, int) else v for v in np.broadcast_to(c, shape).ravel().tolist()
        ]

    # -- builders -------------------------------------------------------------------------
    def fold_constant(self, node):
        """Evaluate a node whose inputs are all constants (or Shape/Size of a computed tensor,
        whose shape is static), exactly, at load time (:func:`.onnx_shapes.fold`: shape
        arithmetic, data movement, + − × ÷ of constants, Cast, ...). Returns whether it did."""
        ins = [i for i in node.inputs if i]
        t = node.op_type
        if t not in FOLDS or not ins:
            return False
        if t in ("Shape", "Size"):
            if not self.is_const(ins[0]):
                self.shape_of(node, ins[0])  # checks the tensor exists
        elif not all(self.is_const(i) for i in ins):
            return False
        if t == "Dropout" and len(node.outputs) > 1 and node.outputs[1]:
            raise UnsupportedOperatorError(
                f"{node.where()}: the Dropout mask output is not supported"
            )
        vals = [self.const(i) if i else None for i in node.inputs]
        v = fold(node, vals, self.const, self.og.opset, lambda n: self.shape_of(node, n))
        self.og.consts[node.outputs[0]] = v
        return True

    def build(self):
        for node in self.og.nodes:
            if self.fold_constant(node):
                continue
            fn = getattr(self, f"op_{node.op_type}", None)
            if fn is None:
                raise UnsupportedOperatorError(
                    f"{self.og.source}: {node.where()}: ONNX operator {node.op_type!r} is not "
                    f"supported (supported: {', '.join(supported_ops())})"
                )
            fn(node)
        out = self.og.output_name
        if out not in self.tensor and out not in self.pending:
            raise UnsupportedOperatorError(
                f"{self.og.source}: the graph output {out!r} is a constant"
            )
        result = self.var(self.og.nodes[-1], out)
        for k, n in enumerate(self.nodes):
            if isinstance(n.op, _LinearData):
                op = Linear(LinearParams(n.op.weight, n.op.bias, name=n.name))
                self.nodes[k] = Node(n.name, op, n.inputs)
        return result

    def linear_node(self, node, x, W, b):
        """``W·x + b`` with exact ``W`` (an out×in object array, or a float array of exact
        values) and ``b`` (length out); a pending elementwise map ``x = a⊙s + c`` folds in:
        ``W·x + b = (W·diag a)·s + (W·c + b)``."""
        b = list(b)
        if W.dtype.kind != "f" or x in self.pending:
            W = (exact_floats(W) if W.dtype.kind == "f" else W).tolist()
        if x in self.pending:
            src, _, scale, shift, _, _ = self.pending.pop(x)
            b = [
                v + sum((w * c for w, c in zip(row, shift) if w and c), fmpq(0))
                for v, row in zip(b, W)
            ]
            W = [[w * a for w, a in zip(row, scale)] for row in W]
            x = src
        self.add(node, _LinearData(W, b), [x], (1, len(b)), linear=True)

    def op_Gemm(self, node):
        ins = node.inputs + [""] * (3 - len(node.inputs))
        a, bname, cname = ins[:3]
        if self.is_const(a) or not self.is_const(bname):
            return self._gemm_general(node)
        shape = self.shape_of(node, a)
        B = self.const_or_floats(bname)
        if B.ndim != 2:
            raise ShapeError(f"{node.where()}: B has shape {B.shape}, expected a matrix")
        ta, tb = int(node.attrs.get("transA", 0)), int(node.attrs.get("transB", 0))
        if (
            len(shape) == 2
            and shape[0 if ta else 1] == B.shape[tb]
            and tuple(shape) != ((B.shape[tb], 1) if ta else (1, B.shape[tb]))
        ):
            return self._gemm_general(node)  # several rows
        alpha = to_exact(float(node.attrs.get("alpha", 1.0)), f"{node.where()}: alpha")
        beta = to_exact(float(node.attrs.get("beta", 1.0)), f"{node.where()}: beta")
        W = B if tb else B.T  # out × in
        n = W.shape[1]
        want = (n, 1) if ta else (1, n)
        if tuple(shape) != want:
            raise ShapeError(
                f"{node.where()}: input A has shape {tuple(shape)}, expected {want} "
                f"(B is {tuple(B.shape)}, transA={ta}, transB={tb})"
            )
        m = W.shape[0]
        if cname:
            C = self.const(cname)
            if C is None:
                raise UnsupportedOperatorError(f"{node.where()}: C must be a constant")
            bias = [v * beta for v in self.broadcast_const(node, C, (1, m))]
        else:
            bias = [fmpq(0)] * m
        if alpha != 1:
            W = (exact_floats(W) if W.dtype.kind == "f" else W) * alpha
        self.linear_node(node, a, W, bias)

    def op_MatMul(self, node):
        a, b = node.inputs
        if self.is_const(b) and not self.is_const(a):  # x @ W, W in × out
            shape = self.shape_of(node, a)
            W = self.const_or_floats(b)
            if (
                W.ndim == 2
                and len(shape) >= 1
                and shape[-1] == W.shape[0]
                and prod(shape[:-1]) != 1
            ):
                return self._matmul_general(node)
            if W.ndim != 2 or shape[-1] != W.shape[0] or prod(shape[:-1]) != 1:
                raise ShapeError(
                    f"{node.where()}: x of shape {tuple(shape)} @ W of shape "
                    f"{tuple(W.shape)}: expected x (1, ..., {W.shape[0] if W.ndim else '?'})"
                    " and a matrix W"
                )
            self.linear_node(node, a, W.T, [fmpq(0)] * W.shape[1])
            self.tensor[node.outputs[0]] = (node.name, tuple(shape[:-1]) + (W.shape[1],))
        elif self.is_const(a) and not self.is_const(b):  # W @ x, x a column
            shape = self.shape_of(node, b)
            W = self.const_or_floats(a)
            if W.ndim == 2 and len(shape) == 1 and shape[0] == W.shape[1]:  # a vector
                self.linear_node(node, b, W, [fmpq(0)] * W.shape[0])
                self.tensor[node.outputs[0]] = (node.name, (W.shape[0],))
                return
            if (
                W.ndim == 2
                and len(shape) >= 2
                and shape[-2] == W.shape[1]
                and (shape[-1] != 1 or prod(shape[:-2]) != 1)
            ):
                return self._matmul_general(node)
            if (
                W.ndim != 2
                or len(shape) < 2
                or shape[-2] != W.shape[1]
                or shape[-1] != 1
                or prod(shape[:-2]) != 1
            ):
                raise ShapeError(
                    f"{node.where()}: W of shape {tuple(W.shape)} @ x of shape "
                    f"{tuple(shape)}: expected a matrix W and a column x"
                )
            self.linear_node(node, b, W, [fmpq(0)] * W.shape[0])
            self.tensor[node.outputs[0]] = (node.name, tuple(shape[:-2]) + (W.shape[0], 1))
        else:
            self._matmul_general(node)

    def _elementwise_const(self, node, x, scale, shift, make):
        """``y = scale⊙x + shift`` (flat lists) for the tensor ``x``, folded exactly where it
        can be: into the bias of a preceding linear layer whose only reader it is (MatMul+Add),
        or, kept pending, into the next elementwise map or linear layer when that is its only
        reader (input normalisation before the first layer). Otherwise ``make(shape)`` builds
        the operator (a composed chain becomes one ``Scale``)."""
        out = node.outputs[0]
        if x in self.pending and self._foldable_consumer(out):
            src, shape, a0, c0, _, _ = self.pending.pop(x)
            self.pending[out] = (
                src,
                shape,
                [a * b for a, b in zip(scale, a0)],
                [a * c + s for a, c, s in zip(scale, c0, shift)],
                None,
                node,
            )
            return
        src, shape = self.var(node, x)
        k = self.linear.get(x)
        backward = (
            k is not None and len(self.consumers.get(x, [])) == 1 and x != self.og.output_name
        )
        if not backward and self._foldable_consumer(out):
            self.pending[out] = (x, shape, scale, shift, make, node)
            return
        if backward:
            # fold into the preceding linear layer: a⊙(W·x + b) + s = (a⊙W)·x + (a⊙b + s)
            lin = self.nodes[k]
            d = lin.op
            if any(a != 1 for a in scale):
                d.weight = [[a * w for w in row] for a, row in zip(scale, d.rows())]
            d.bias = [a * v + s for a, v, s in zip(scale, d.bias, shift)]
            self.tensor[node.outputs[0]] = (lin.name, shape)
            self.linear[node.outputs[0]] = k
            return
        self.add(node, make(core_shape(shape)), [x], shape)

    def _binary(self, node):
        if len(node.inputs) != 2:
            raise MalformedFileError(
                f"{self.og.source}: {node.where()} takes 2 inputs, has {len(node.inputs)}"
            )
        a, b = node.inputs
        ca, cb = self.is_const(a), self.is_const(b)
        if not ca and not cb:
            return self._two_tensors(node)
        x, c = (b, a) if ca else (a, b)
        shape = self.shape_of(node, x)
        c = self.broadcast_const(node, self.const(c), shape)
        n, one, zero, name, op = len(c), fmpq(1), fmpq(0), node.name, node.op_type
        if op == "Add":
            self._elementwise_const(node, x, [one] * n, c, lambda s: Add(s, constant=c, name=name))
        elif op == "Sub" and not ca:
            self._elementwise_const(
                node, x, [one] * n, [-v for v in c], lambda s: Sub(s, constant=c, name=name)
            )
        elif op == "Sub":  # c - x
            self._elementwise_const(
                node, x, [-one] * n, c, lambda s: Scale(s, [-one] * n, c, name=name)
            )
        elif op == "Mul":
            self._elementwise_const(node, x, c, [zero] * n, lambda s: Scale(s, c, name=name))
        else:  # Div
            if ca:
                raise UnsupportedOperatorError(
                    f"{node.where()}: division of a constant by a tensor is not linear"
                )
            for i, v in enumerate(c):
                if v == 0:
                    raise InvalidModelError(f"{node.where()}: divisor[{i}] = 0")
            inv = [1 / v for v in c]
            self._elementwise_const(node, x, inv, [zero] * n, lambda s: Scale(s, inv, name=name))

    def _two_tensors(self, node):
        if node.op_type == "Mul":
            return self._mul_two(node)
        if node.op_type not in ("Add", "Sub"):
            raise UnsupportedOperatorError(
                f"{node.where()}: {node.op_type} of two computed "
                "tensors is not linear (only Add and Sub are)"
            )
        a, b = node.inputs
        (_, sa), (_, sb) = self.var(node, a), self.var(node, b)
        if tuple(sa) != tuple(sb):
            return self._add_broadcast(node)
        cls = Add if node.op_type == "Add" else Sub
        self.add(node, cls(core_shape(sa), name=node.name), [a, b], sa)

    op_Add = op_Sub = op_Mul = op_Div = _binary

    def op_BatchNormalization(self, node):
        x = node.inputs[0]
        _, shape = self.var(node, x)
        if int(node.attrs.get("training_mode", 0)):
            raise UnsupportedOperatorError(f"{node.where()}: training_mode=1 is not supported")
        if not int(node.attrs.get("spatial", 1)):
            raise UnsupportedOperatorError(f"{node.where()}: spatial=0 is not supported")
        if len(node.inputs) < 5 or not all(self.is_const(i) for i in node.inputs[1:5]):
            raise UnsupportedOperatorError(
                f"{node.where()}: scale, B, mean and var must be constants"
            )
        scale, bias, mean, var = (self.const(i).ravel().tolist() for i in node.inputs[1:5])
        if len(shape) < 2 or shape[0] != 1:
            raise ShapeError(f"{node.where()}: input of shape {tuple(shape)}; expected (1, C, ...)")
        eps = to_exact(float(node.attrs.get("epsilon", 1e-5)), f"{node.where()}: epsilon")
        C = shape[1]
        for what, v in (("scale", scale), ("B", bias), ("mean", mean), ("var", var)):
            if len(v) != C:
                raise ShapeError(
                    f"{node.where()}: {what} has {len(v)} entries, the input has "
                    f"{C} channels (shape {tuple(shape)})"
                )
        params = BatchNormParams(
            mean, var, scale, bias, eps, shape=tuple(shape[1:]), name=node.name
        )
        self.add(node, BatchNorm(params), [x], shape)

    def _elementwise(self, node, cls):
        x = node.inputs[0]
        _, shape = self.var(node, x)
        self.add(node, cls(core_shape(shape), name=node.name), [x], shape)

    def op_Relu(self, node):
        self._elementwise(node, ReLU)

    def op_Sigmoid(self, node):
        x = node.inputs[0]
        _, shape = self.var(node, x)
        self.add(node, Sigmoid(prod(shape), name=node.name), [x], shape)

    def op_Tanh(self, node):
        x = node.inputs[0]
        _, shape = self.var(node, x)
        self.add(node, Tanh(prod(shape), name=node.name), [x], shape)

    def _pass_pending(self, node, x, out_shape):
        """Move a pending elementwise map through a reshape (they commute); True if done."""
        if x in self.pending and self._foldable_consumer(node.outputs[0]):
            src, _, scale, shift, make, pnode = self.pending.pop(x)
            self.pending[node.outputs[0]] = (src, tuple(out_shape), scale, shift, make, pnode)
            return True
        return False

    def op_Identity(self, node):
        x = node.inputs[0]
        if not self._pass_pending(node, x, self.shape_of(node, x)):
            self._elementwise(node, Identity)

    def _reshape_to(self, node, x, out):
        shape = self.shape_of(node, x)
        if prod(out) != prod(shape):
            raise ShapeError(
                f"{node.where()}: cannot reshape {tuple(shape)} ({prod(shape)} "
                f"entries) to {tuple(out)}"
            )
        if not self._pass_pending(node, x, out):
            self.add(node, Reshape(core_shape(shape), core_shape(out), name=node.name), [x], out)

    def op_Flatten(self, node):
        x = node.inputs[0]
        self._reshape_to(node, x, self._flatten_target(node, self.shape_of(node, x)))

    def op_Reshape(self, node):
        x = node.inputs[0]
        self._reshape_to(node, x, self._reshape_target(node, self.shape_of(node, x)))

    def _flatten_target(self, node, shape):
        axis = int(node.attrs.get("axis", 1))
        if axis < 0:
            axis += len(shape)
        if not 0 <= axis <= len(shape):
            raise ShapeError(f"{node.where()}: axis {axis} out of range for shape {tuple(shape)}")
        return (prod(shape[:axis]), prod(shape[axis:]))

    def _reshape_target(self, node, shape):
        """The output shape of a Reshape node for an input of ``shape`` (``0`` copies a
        dimension unless ``allowzero``, one ``-1`` is inferred)."""
        if len(node.inputs) > 1:
            if not self.is_const(node.inputs[1]):
                raise UnsupportedOperatorError(
                    f"{node.where()}: the target shape must be a constant"
                )
            target = [int(d) for d in self.const(node.inputs[1]).ravel().tolist()]
        elif "shape" in node.attrs:  # opset < 5
            target = [int(d) for d in node.attrs["shape"]]
        else:
            raise MalformedFileError(f"{self.og.source}: {node.where()} has no target shape")
        allowzero = int(node.attrs.get("allowzero", 0))
        out = []
        for k, d in enumerate(target):
            if d == 0 and not allowzero:
                if k >= len(shape):
                    raise ShapeError(
                        f"{node.where()}: shape entry {k} is 0 (copy) but the "
                        f"input {tuple(shape)} has no dimension {k}"
                    )
                d = shape[k]
            out.append(d)
        if out.count(-1) > 1 or any(d < -1 or d == 0 for d in out):
            raise ShapeError(f"{node.where()}: invalid target shape {target}")
        if -1 in out:
            rest = prod(d for d in out if d != -1)
            if prod(shape) % rest:
                raise ShapeError(f"{node.where()}: cannot reshape {tuple(shape)} to {target}")
            out[out.index(-1)] = prod(shape) // rest
        return tuple(out)

    def _spatial(self, node, x, what):
        """``(shape, one_d)``: the input's ONNX shape ``(1, C, H, W)`` or ``(1, C, L)``."""
        _, shape = self.var(node, x)
        if len(shape) not in (3, 4) or shape[0] != 1:
            raise UnsupportedOperatorError(
                f"{node.where()}: {what} of an input of shape "
                f"{tuple(shape)}: only (1, C, H, W) and (1, C, L)"
            )
        return shape, len(shape) == 3

    def _pads(self, node, in_hw, kernel, strides, dilations):
        """ONNX ``pads``/``auto_pad`` as (top, left, bottom, right)."""
        auto = node.attrs.get("auto_pad", "NOTSET")
        nd = len(in_hw)
        if auto in ("NOTSET", ""):
            p = _ints(node.attrs.get("pads"), 2 * nd, [0] * 2 * nd, node.where(), "pads")
            return p
        if auto == "VALID":
            return [0] * 2 * nd
        if auto not in ("SAME_UPPER", "SAME_LOWER"):
            raise UnsupportedOperatorError(f"{node.where()}: auto_pad {auto!r} is not supported")
        begin, end = [], []
        for n, k, s, d in zip(in_hw, kernel, strides, dilations):
            out = -(-n // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
            small, big = total // 2, total - total // 2
            begin.append(small if auto == "SAME_UPPER" else big)
            end.append(big if auto == "SAME_UPPER" else small)
        return begin + end

    @staticmethod
    def _as2d(one_d, vals, fill):
        """1-D attributes (per axis, or pads begin+end) lifted to 2-D with height 1."""
        if not one_d:
            return list(vals)
        if len(vals) == 2:  # pads [begin, end]
            return [0, vals[0], 0, vals[1]]
        return [fill] + list(vals)

    def op_Conv(self, node):
        x = node.inputs[0]
        shape, one_d = self._spatial(node, x, "Conv")
        if len(node.inputs) < 2 or not self.is_const(node.inputs[1]):
            raise UnsupportedOperatorError(f"{node.where()}: the weight must be a constant")
        W = self.const(node.inputs[1])
        nd = len(shape) - 2
        if W.ndim != nd + 2:
            raise ShapeError(
                f"{node.where()}: weight of shape {tuple(W.shape)} for an input "
                f"of shape {tuple(shape)}"
            )
        kernel = list(W.shape[2:])
        ks = _ints(node.attrs.get("kernel_shape"), nd, kernel, node.where(), "kernel_shape")
        if ks != kernel:
            raise ShapeError(f"{node.where()}: kernel_shape {ks} but the weight has {kernel}")
        strides = _ints(node.attrs.get("strides"), nd, [1] * nd, node.where(), "strides")
        dil = _ints(node.attrs.get("dilations"), nd, [1] * nd, node.where(), "dilations")
        pads = self._pads(node, shape[2:], kernel, strides, dil)
        bias = None
        if len(node.inputs) > 2 and node.inputs[2]:
            if not self.is_const(node.inputs[2]):
                raise UnsupportedOperatorError(f"{node.where()}: the bias must be a constant")
            bias = self.const(node.inputs[2]).ravel().tolist()
        in_shape = (shape[1], 1, shape[2]) if one_d else tuple(shape[1:])
        weight = W.reshape(W.shape[:2] + (1,) + W.shape[2:]) if one_d else W
        op = Conv2d(
            weight,
            bias,
            in_shape,
            stride=self._as2d(one_d, strides, 1),
            padding=self._as2d(one_d, pads, 0),
            dilation=self._as2d(one_d, dil, 1),
            groups=int(node.attrs.get("group", 1)),
            name=node.name,
        )
        c, ho, wo = op.out_shape
        self.add(node, op, [x], (1, c, wo) if one_d else (1, c, ho, wo))

    def op_AveragePool(self, node):
        x = node.inputs[0]
        shape, one_d = self._spatial(node, x, "AveragePool")
        nd = len(shape) - 2
        if "kernel_shape" not in node.attrs:
            raise MalformedFileError(f"{self.og.source}: {node.where()} has no kernel_shape")
        kernel = _ints(node.attrs["kernel_shape"], nd, None, node.where(), "kernel_shape")
        strides = _ints(node.attrs.get("strides"), nd, [1] * nd, node.where(), "strides")
        dil = _ints(node.attrs.get("dilations"), nd, [1] * nd, node.where(), "dilations")
        if dil != [1] * nd:
            raise UnsupportedOperatorError(f"{node.where()}: dilations {dil} are not supported")
        pads = self._pads(node, shape[2:], kernel, strides, dil)
        in_shape = (shape[1], 1, shape[2]) if one_d else tuple(shape[1:])
        op = AveragePool(
            in_shape,
            self._as2d(one_d, kernel, 1),
            stride=self._as2d(one_d, strides, 1),
            padding=self._as2d(one_d, pads, 0),
            count_include_pad=bool(int(node.attrs.get("count_include_pad", 0))),
            name=node.name,
        )
        c, ho, wo = op.out_shape
        if int(node.attrs.get("ceil_mode", 0)):
            for n, k, s, a, b, o in zip(
                shape[2:], kernel, strides, pads[:nd], pads[nd:], (wo,) if one_d else (ho, wo)
            ):
                if -(-(n + a + b - k) // s) + 1 != o:
                    raise UnsupportedOperatorError(
                        f"{node.where()}: ceil_mode=1 changes the output size; not supported"
                    )
        self.add(node, op, [x], (1, c, wo) if one_d else (1, c, ho, wo))

    def op_GlobalAveragePool(self, node):
        x = node.inputs[0]
        shape, one_d = self._spatial(node, x, "GlobalAveragePool")
        in_shape = (shape[1], 1, shape[2]) if one_d else tuple(shape[1:])
        op = AveragePool(in_shape, in_shape[1:], name=node.name)
        self.add(node, op, [x], (1, shape[1], 1) if one_d else (1, shape[1], 1, 1))


def core_shape(shape):
    """An ONNX shape without its batch dimension (``(1, C, H, W)`` -> ``(C, H, W)``);
    a rank-1 shape is kept."""
    shape = tuple(shape)
    return shape[1:] if len(shape) > 1 and shape[0] == 1 else shape


def supported_ops():
    """The ONNX op types :func:`build_graph` accepts."""
    return sorted(["Constant"] + [k[3:] for k in dir(_Builder) if k.startswith("op_")])


def build_graph(og):
    """Stage 2: the :class:`Graph` of an :class:`OnnxGraph`; returns ``(graph, output shape)``."""
    b = _Builder(og)
    out, shape = b.build()
    if out == Graph.INPUT:
        raise UnsupportedOperatorError(f"{og.source}: the graph output is the input itself")
    return Graph(
        prod(og.input_shape), b.nodes, output=out, input_shape=core_shape(og.input_shape)
    ), shape


def load_onnx(path):
    """A :class:`~exactbounds.io.json_net.Model` from an ONNX file; ONNX carries no input set,
    so ``input_set`` is ``None`` until a spec supplies one (``io.load.load_model``)."""
    og = parse_onnx(path)
    graph, _ = build_graph(og)
    return Model(graph, None, str(path))
