"""A network as a DAG of nodes in topological order.

``Graph(input_dim, nodes, output=None, input_shape=None)``: node ``inputs`` name earlier nodes,
or ``Graph.INPUT`` for the network's input. Each node's ``op`` exposes the operator verbs
(``evaluate``, ``ibp``, ``aff``, ``backward``, ``relax``, ...) taking a context first, and
``in_shapes``/``out_shape`` (see ``operators/base.py``); the graph checks on construction that
every node reads earlier nodes whose flattened sizes match the operator's inputs, and that the
number of inputs matches the operator's arity. ``output`` defaults to the last node.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any, Self

from .errors import InvalidModelError, ShapeError


@dataclass
class Node:
    name: str
    op: Any  # an Op; the drivers call the verbs of its kind (AffineOp, Relaxed, ...)
    inputs: list = field(default_factory=list)


def _in_sizes(op: Any) -> list[int]:
    shapes = getattr(op, "in_shapes", None)
    if shapes is None:
        return [op.in_dim]
    return [prod(s) for s in shapes]


class Graph:
    INPUT = "input"

    def __init__(
        self,
        input_dim: int,
        nodes: Iterable[Node],
        output: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        self.input_dim = int(input_dim)
        self.input_shape = tuple(input_shape) if input_shape else (self.input_dim,)
        if prod(self.input_shape) != self.input_dim:
            raise ShapeError(
                f"input_shape {self.input_shape} does not hold {self.input_dim} entries"
            )
        self.nodes = list(nodes)
        dims = {self.INPUT: self.input_dim}
        for n in self.nodes:
            if n.name in dims:
                raise InvalidModelError(f"node name {n.name!r} is used twice")
            for i in n.inputs:
                if i not in dims:
                    raise InvalidModelError(
                        f"node {n.name!r} reads {i!r}, which is not defined before it"
                    )
            sizes = _in_sizes(n.op)
            if len(sizes) != len(n.inputs):
                raise ShapeError(
                    f"node {n.name!r} ({n.op.kind}) takes {len(sizes)} inputs, "
                    f"the graph gives {len(n.inputs)}"
                )
            for k, (i, d) in enumerate(zip(n.inputs, sizes)):
                if dims[i] != d:
                    raise ShapeError(
                        f"node {n.name!r} ({n.op.kind}) input {k} needs {d} "
                        f"entries, {i!r} gives {dims[i]}"
                    )
            dims[n.name] = n.op.out_dim
        self.output = output or (self.nodes[-1].name if self.nodes else self.INPUT)
        if self.output not in dims:
            raise InvalidModelError(f"output {self.output!r} is not a node")
        self.dims = dims

    @classmethod
    def sequential(
        cls,
        input_dim: int,
        ops: Sequence[Any],
        names: Sequence[str] | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> Self:
        """A chain ``input -> ops[0] -> ops[1] -> ...``; checks that the sizes chain up."""
        nodes, prev, dim = [], cls.INPUT, int(input_dim)
        for k, op in enumerate(ops):
            name = names[k] if names else f"layers[{k}]"
            if op.in_dim != dim:
                raise ShapeError(
                    f"{name} ({op.kind}) takes {op.in_dim} inputs, the previous layer gives {dim}"
                )
            nodes.append(Node(name, op, [prev]))
            prev, dim = name, op.out_dim
        return cls(input_dim, nodes, input_shape=input_shape)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise InvalidModelError(f"no node named {name!r}")

    @property
    def output_shape(self) -> tuple[int, ...]:
        if self.output == self.INPUT:
            return self.input_shape
        return tuple(getattr(self.node(self.output).op, "out_shape", (self.dims[self.output],)))

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)
