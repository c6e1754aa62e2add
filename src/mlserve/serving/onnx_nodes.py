"""A converted graph's nodes and constants, as the exact rewrites of
:mod:`mlserve.serving.onnx_fuse` and :mod:`mlserve.serving.onnx_fold` read and edit them.

Imports numpy and onnx only (a leaf of :mod:`mlserve.serving`).
"""

from __future__ import annotations

import numpy as np
from onnx import (
    AttributeProto,
    GraphProto,
    ModelProto,
    NodeProto,
    TensorProto,
    helper,
    numpy_helper,
    shape_inference,
)

ML = "ai.onnx.ml"


class NodeList:
    """A graph's nodes as a list to edit, then made the graph's node list again.

    ``nodes`` holds the graph's own node messages, not copies (a tree ensemble's node
    can weigh tens of megabytes): an edit to one of them is an edit to the graph at once.
    On leaving the ``with`` block, the nodes no longer in ``nodes`` are deleted from the
    graph and the new ones inserted where ``nodes`` has them; the nodes that stay are
    neither copied nor moved. After an exception the graph is left as the edits made it
    (the rewrites raise none; a caller that catches one discards the graph).
    """

    def __init__(self, graph: GraphProto) -> None:
        self.graph = graph
        self.nodes = list(graph.node)
        self._start = list(self.nodes)

    def __enter__(self) -> NodeList:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self._commit()

    def _commit(self) -> None:
        """Make the graph's node list equal ``nodes`` (by identity, in order)."""
        start, kept = self._start, {id(n) for n in self.nodes}
        same = len(self.nodes) == len(start)
        if same and all(a is b for a, b in zip(self.nodes, start, strict=True)):
            return
        position = {id(n): i for i, n in enumerate(start)}
        staying = [position[id(n)] for n in self.nodes if id(n) in position]
        if staying != sorted(staying):  # an original moved: rebuild (copies every node)
            del self.graph.node[:]
            self.graph.node.extend(self.nodes)
            return
        for i in reversed([i for i, n in enumerate(start) if id(n) not in kept]):
            del self.graph.node[i]
        for i, node in enumerate(self.nodes):
            if id(node) not in position:
                self.graph.node.insert(i, node)

    def consumers(self) -> dict[str, list[NodeProto]]:
        """Tensor name -> the nodes that read it, in graph order."""
        found: dict[str, list[NodeProto]] = {}
        for node in self.nodes:
            for name in node.input:
                found.setdefault(name, []).append(node)
        return found

    def producer(self, name: str) -> NodeProto | None:
        """The node that writes ``name``; None for a graph input or an initializer."""
        return next((n for n in self.nodes if name in n.output), None)

    def rename_uses(self, old: str, new: str) -> None:
        """Make every node that reads ``old`` read ``new``."""
        for node in self.nodes:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new

    def remove(self, *doomed: NodeProto) -> None:
        """Drop these nodes (the very objects, not equal copies)."""
        self.nodes = [n for n in self.nodes if not any(n is d for d in doomed)]


def int_attribute(node: NodeProto, name: str, default: int | None = None) -> int | None:
    """The integer attribute ``name`` of ``node``, ``default`` when it is not set."""
    return next((a.i for a in node.attribute if a.name == name), default)


def set_attribute(node: NodeProto, name: str, value: list[int] | TensorProto) -> None:
    """Set ``node``'s attribute ``name`` (replaced in place, or added) to a list of
    integers or a tensor. The type is given to ``make_attribute``, which would otherwise
    look at the type of every element (a million node ids for a forest)."""
    kind = AttributeProto.TENSOR if isinstance(value, TensorProto) else AttributeProto.INTS
    attribute = helper.make_attribute(name, value, attr_type=kind)
    for existing in node.attribute:
        if existing.name == name:
            existing.CopyFrom(attribute)
            return
    node.attribute.append(attribute)


def constant(graph: GraphProto, name: str, dtype: int | None = None) -> np.ndarray | None:
    """The initializer ``name`` as an array; None if there is no such one, or if its
    element type is not ``dtype`` (an ``onnx.TensorProto`` type) when one is given."""
    tensor = next((t for t in graph.initializer if t.name == name), None)
    if tensor is None or (dtype is not None and tensor.data_type != dtype):
        return None
    return numpy_helper.to_array(tensor)


def column_values(graph: GraphProto, name: str, width: int) -> np.ndarray | None:
    """A float64 initializer of one value or one per column, as ``width`` values."""
    array = constant(graph, name, TensorProto.DOUBLE)
    if (
        array is None
        or array.size not in (1, width)
        or array.ndim > 2
        or (array.ndim == 2 and len(array) != 1)
    ):
        return None
    return np.broadcast_to(array.reshape(-1), (width,)).astype(np.float64)


def initializer(graph: GraphProto, name: str) -> list[object] | None:
    """The values of the initializer ``name``, flattened, bytes as str; None if no such one."""
    array = constant(graph, name)
    if array is None:
        return None
    return [v.decode() if isinstance(v, bytes) else v for v in array.ravel().tolist()]


def inferred_shapes(model: ModelProto) -> dict[str, list[int | None]]:
    """Name -> shape (None for an unknown dimension) of every tensor ONNX can infer."""
    inferred = shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes: dict[str, list[int | None]] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor = info.type.tensor_type
        if tensor.HasField("shape"):
            dims = tensor.shape.dim
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shapes


def rank(graph: GraphProto, name: str) -> int | None:
    """The number of dimensions of the initializer ``name``; None if no such one."""
    tensor = next((t for t in graph.initializer if t.name == name), None)
    return None if tensor is None else len(tensor.dims)
