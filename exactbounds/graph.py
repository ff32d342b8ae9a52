"""A network as a DAG of nodes in topological order.

Node ``inputs`` name earlier nodes, or ``Graph.INPUT`` for the network's input. Each node's
``op`` exposes the operator verbs (``evaluate``, ``ibp``, ``aff``, ...) taking a context first.
"""
from dataclasses import dataclass, field

from .errors import InvalidModelError, ShapeError


@dataclass
class Node:
    name: str
    op: object
    inputs: list = field(default_factory=list)


class Graph:
    INPUT = "input"

    def __init__(self, input_dim, nodes, output=None):
        self.input_dim = int(input_dim)
        self.nodes = list(nodes)
        seen = {self.INPUT}
        for n in self.nodes:
            if n.name in seen:
                raise InvalidModelError(f"node name {n.name!r} is used twice")
            for i in n.inputs:
                if i not in seen:
                    raise InvalidModelError(f"node {n.name!r} reads {i!r}, which is not defined "
                                            "before it")
            seen.add(n.name)
        self.output = output or (self.nodes[-1].name if self.nodes else self.INPUT)

    @classmethod
    def sequential(cls, input_dim, ops, names=None):
        """A chain ``input -> ops[0] -> ops[1] -> ...``; checks that the sizes chain up."""
        nodes, prev, dim = [], cls.INPUT, int(input_dim)
        for k, op in enumerate(ops):
            name = names[k] if names else f"layers[{k}]"
            if op.in_dim != dim:
                raise ShapeError(f"{name} ({op.kind}) takes {op.in_dim} inputs, "
                                 f"the previous layer gives {dim}")
            nodes.append(Node(name, op, [prev]))
            prev, dim = name, op.out_dim
        return cls(input_dim, nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self):
        return len(self.nodes)
