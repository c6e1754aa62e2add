"""A linear model's standardisation folded into its weights: two nodes fewer, not exact.

A linear estimator after a ``StandardScaler`` computes ``((x - mean) / scale) @ W + b``;
the same affine map is ``x @ W' + b'`` with ``W'[i] = W[i] / scale[i]`` and ``b' = b -
sum_i (mean[i] / scale[i]) * W[i]``, so the ``Sub`` and ``Div`` nodes between the
imputed input and the ``Gemm`` (or ``MatMul`` then ``Add``) can go. Unlike the rewrites
of :mod:`mlserve.serving.onnx_fuse`, this one changes the roundings: on california's
linear_regression the predictions move by about 1e-15 of their scale, far inside the
compiler's equality check (:data:`mlserve.serving.onnx.TOLERANCE`, 1e-9), which still
runs on the folded graph; :func:`mlserve.serving.onnx.compile_pipeline` compiles the
unfolded graph instead when the folded one fails it (a near tie between two classes'
scores, say). A missing value still contributes nothing: the imputer writes the mean,
whose folded term ``mean[i] * W'[i]`` cancels against ``b'`` to within a rounding.

Recognised, after the exact rewrites: ``Sub(u, mean)`` -> ``Div(., scale)`` with
constant ``mean`` and ``scale`` (one value per column, or one for all), its output read
only by a ``Concat(axis=1)`` read only by the weights' node, or by that node directly;
``Gemm`` with ``alpha = beta = 1`` and ``transA = 0``, or ``MatMul`` whose only reader
is an ``Add`` of a constant; float64 weights. Anything else is left as it was.

Imports numpy and onnx (a leaf of :mod:`mlserve.serving`, beside
:mod:`mlserve.serving.onnx_fold`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import GraphProto, ModelProto, NodeProto, TensorProto, numpy_helper

from mlserve.serving.onnx_nodes import (
    NodeList,
    column_values,
    constant,
    inferred_shapes,
    int_attribute,
)


@dataclass(kw_only=True)
class _Block:
    """Columns ``start:start + width`` of the weights' input, standardised by ``sub``/``div``."""

    start: int
    width: int
    sub: NodeProto
    div: NodeProto
    mean: np.ndarray  # (width,)
    scale: np.ndarray  # (width,)


def fold_standardization(model: ModelProto) -> int:
    """Fold every recognised ``Sub`` / ``Div`` standardisation into the weights it feeds.

    Parameters
    ----------
    model : onnx.ModelProto
        A converted graph (after :func:`mlserve.serving.onnx_fuse.fuse`); changed in place.

    Returns
    -------
    int
        How many standardisations were folded (0: the graph is unchanged).
    """
    graph, folded = model.graph, 0
    if not any(n.op_type in ("Gemm", "MatMul") for n in graph.node):
        return 0  # a tree model: skip a shape inference of the whole graph
    shapes = inferred_shapes(model)
    with NodeList(graph) as nodes:
        uses = nodes.consumers()
        for node in list(nodes.nodes):
            target = _weights(graph, node, uses)
            if target is None:
                continue
            weights_name, bias_name, bias_node = target
            blocks = _blocks(graph, nodes, node.input[0], uses, shapes)
            weights = constant(graph, weights_name, TensorProto.DOUBLE)
            bias = constant(graph, bias_name, TensorProto.DOUBLE)
            if not blocks or weights is None or bias is None or weights.ndim != 2:
                continue
            if int_attribute(node, "transB", 0):
                weights = weights.T
            if bias.size not in (1, weights.shape[1]):
                continue
            if max(b.start + b.width for b in blocks) > weights.shape[0]:
                continue
            new_weights = weights.copy()
            new_bias = np.broadcast_to(bias.ravel(), (weights.shape[1],)).copy()
            for block in blocks:
                rows = slice(block.start, block.start + block.width)
                scaled = weights[rows] / block.scale[:, None]
                new_weights[rows] = scaled
                new_bias -= block.mean @ scaled
                nodes.rename_uses(block.div.output[0], block.sub.input[0])
                nodes.remove(block.sub, block.div)
                folded += 1
            if int_attribute(node, "transB", 0):
                new_weights = new_weights.T
            node.input[1] = _add_constant(graph, f"{weights_name}_folded", new_weights)
            new_bias_name = _add_constant(graph, f"{bias_name}_folded", new_bias)
            holder = bias_node if bias_node is not None else node
            holder.input[list(holder.input).index(bias_name)] = new_bias_name
    _drop_unused_constants(graph)
    return folded


def _weights(
    graph: GraphProto, node: NodeProto, uses: dict[str, list[NodeProto]]
) -> tuple[str, str, NodeProto | None] | None:
    """``(weights, bias, Add node or None)`` of a ``Gemm`` or ``MatMul`` + ``Add`` to fold into."""
    if node.op_type == "Gemm" and len(node.input) == 3:
        plain = all(
            next((a.f for a in node.attribute if a.name == name), 1.0) == 1.0
            for name in ("alpha", "beta")
        )
        if plain and not int_attribute(node, "transA", 0):
            return node.input[1], node.input[2], None
        return None
    if node.op_type != "MatMul":
        return None
    readers = uses.get(node.output[0], [])
    if len(readers) != 1 or readers[0].op_type != "Add":
        return None
    bias = [name for name in readers[0].input if name != node.output[0]]
    if len(bias) != 1 or constant(graph, bias[0]) is None:
        return None
    return node.input[1], bias[0], readers[0]


def _blocks(
    graph: GraphProto,
    nodes: NodeList,
    name: str,
    uses: dict[str, list[NodeProto]],
    shapes: dict[str, list[int | None]],
) -> list[_Block]:
    """The standardised column blocks of the tensor ``name`` the weights multiply."""
    if len(uses.get(name, [])) != 1:
        return []
    producer = nodes.producer(name)
    if producer is None:
        return []
    if producer.op_type != "Concat":
        block = _standardised(graph, nodes, name, start=0, uses=uses, shapes=shapes)
        return [block] if block is not None else []
    if int_attribute(producer, "axis") not in (1, -1):
        return []
    blocks, start = [], 0
    for part in producer.input:
        width = (shapes.get(part) or [None, None])[-1]
        if width is None or len(shapes.get(part) or []) != 2:
            return []
        block = _standardised(graph, nodes, part, start=start, uses=uses, shapes=shapes)
        if block is not None:
            blocks.append(block)
        start += width
    return blocks


def _standardised(
    graph: GraphProto,
    nodes: NodeList,
    name: str,
    *,
    start: int,
    uses: dict[str, list[NodeProto]],
    shapes: dict[str, list[int | None]],
) -> _Block | None:
    """The ``Div(Sub(u, mean), scale)`` writing ``name``, if it is one we can fold."""
    div = nodes.producer(name)
    if div is None or div.op_type != "Div" or len(uses.get(name, [])) != 1:
        return None
    sub = nodes.producer(div.input[0])
    if sub is None or sub.op_type != "Sub" or len(uses.get(div.input[0], [])) != 1:
        return None
    shape = shapes.get(sub.input[0]) or []
    width = shape[-1] if len(shape) == 2 else None
    if width is None:
        return None
    mean = column_values(graph, sub.input[1], width)
    scale = column_values(graph, div.input[1], width)
    if mean is None or scale is None or not np.all(scale != 0):
        return None
    return _Block(start=start, width=width, sub=sub, div=div, mean=mean, scale=scale)


def _add_constant(graph: GraphProto, name: str, values: np.ndarray) -> str:
    """Add ``values`` as an initializer named ``name`` (made unique); its name."""
    taken = {t.name for t in graph.initializer}
    unique, n = name, 1
    while unique in taken:
        unique, n = f"{name}{n}", n + 1
    graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(values), unique))
    return unique


def _drop_unused_constants(graph: GraphProto) -> None:
    """Remove initializers no node reads (and no output names)."""
    read = {name for node in graph.node for name in node.input}
    read |= {o.name for o in graph.output}
    kept = [t for t in graph.initializer if t.name in read]
    if len(kept) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(kept)
