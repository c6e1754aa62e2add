"""Exact rewrites of a converted graph's nodes: copies dropped, column picks and
``MatMul`` + ``Add`` pairs folded into the nodes that read them (see
:mod:`mlserve.serving.onnx_fuse`, which runs them).

Imports numpy and onnx only (a leaf of :mod:`mlserve.serving`).
"""

from __future__ import annotations

import numpy as np
from onnx import GraphProto, ModelProto, NodeProto, helper

from mlserve.serving.onnx_nodes import (
    ML,
    NodeList,
    inferred_shapes,
    initializer,
    int_attribute,
    rank,
    set_attribute,
)


def drop_identities(model: ModelProto) -> int:
    """Remove ``Identity`` nodes, one-input ``Concat`` nodes and ``Reshape`` nodes to the
    shape their input already has (by ONNX shape inference): each copies its input.

    A removed node's readers read its input instead; when its output is a graph output,
    the producer of its input writes that output directly (the node is kept when its
    input is a graph input, an initializer or another graph output).

    Parameters
    ----------
    model : onnx.ModelProto
        Changed in place.

    Returns
    -------
    int
        How many nodes were removed.
    """
    graph, removed = model.graph, 0
    sources = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    # Shape inference serializes the whole model (tens of megabytes for a forest): only
    # when a Gather or Reshape needs it, and before any edit.
    needed = any(_needs_shape(graph, n) for n in graph.node)
    shapes = inferred_shapes(model) if needed else {}
    with NodeList(graph) as nodes:
        for node in list(nodes.nodes):
            if not _copies(graph, node, shapes):
                continue
            source, target = node.input[0], node.output[0]
            producer = nodes.producer(source)
            if target not in outputs:
                nodes.rename_uses(target, source)
            elif producer is None or source in sources or source in outputs:
                continue
            else:
                producer.output[list(producer.output).index(source)] = target
                nodes.rename_uses(source, target)
            nodes.remove(node)
            removed += 1
    return removed


def _needs_shape(graph: GraphProto, node: NodeProto) -> bool:
    """Whether only its input's shape decides if ``node`` copies its input: a ``Gather``
    of column [0] (axis 1), a ``Reshape`` to a constant shape."""
    if len(node.input) != 2:
        return False
    if node.op_type == "Gather":
        return (
            int_attribute(node, "axis", 0) == 1
            and initializer(graph, node.input[1]) == [0]
            and rank(graph, node.input[1]) == 1
        )
    return node.op_type == "Reshape" and initializer(graph, node.input[1]) is not None


def _copies(graph: GraphProto, node: NodeProto, shapes: dict[str, list[int | None]]) -> bool:
    """Whether ``node`` outputs its first input unchanged."""
    if node.op_type in ("Identity", "Concat"):
        return len(node.input) == 1
    if not _needs_shape(graph, node):
        return False
    if node.op_type == "Gather":  # column [0] of an (N, 1) tensor
        return shapes.get(node.input[0]) == [None, 1]
    target, shape = initializer(graph, node.input[1]), shapes.get(node.input[0])
    if target is None or shape is None or len(target) != len(shape) or 0 in target:
        return False
    # Every dimension but a leading -1 must be known to equal the target's.
    return all(
        (i == 0 and want == -1) or (want == have and have is not None)
        for i, (want, have) in enumerate(zip(target, shape, strict=True))
    )


def fold_column_gather(model: ModelProto) -> int:
    """Let tree ensembles read the columns a ``Gather(x, indices, axis=1)`` picks in ``x``.

    A ``Gather`` of constant column indices read only by ai.onnx.ml tree-ensemble nodes
    (``nodes_featureids``) is removed: each feature id ``f`` becomes ``indices[f]`` and
    the ensembles read ``x``, the very values they read before.

    Parameters
    ----------
    model : onnx.ModelProto
        Changed in place.

    Returns
    -------
    int
        How many ``Gather`` nodes were removed.
    """
    graph, folded = model.graph, 0
    outputs = {o.name for o in graph.output}
    with NodeList(graph) as nodes:
        uses = nodes.consumers()
        for gather in [n for n in nodes.nodes if n.op_type == "Gather"]:
            indices = initializer(graph, gather.input[1]) if len(gather.input) == 2 else None
            readers = uses.get(gather.output[0], [])
            if (
                indices is None
                or int_attribute(gather, "axis", 0) != 1
                or gather.output[0] in outputs
            ):
                continue
            if not readers or not all(_tree_ensemble(r) for r in readers):
                continue
            columns = [int(str(i)) for i in indices]
            if rank(graph, gather.input[1]) != 1 or min(columns) < 0:
                continue
            for tree in readers:
                ids = next(a.ints for a in tree.attribute if a.name == "nodes_featureids")
                remapped = np.asarray(columns, dtype=np.int64)[np.asarray(ids)].tolist()
                set_attribute(tree, "nodes_featureids", remapped)
                tree.input[0] = gather.input[0]
            nodes.remove(gather)
            folded += 1
    return folded


def _tree_ensemble(node: NodeProto) -> bool:
    return node.domain == ML and any(a.name == "nodes_featureids" for a in node.attribute)


# MLAS multiplies in blocks along K; within one block Gemm(A, B, C) adds C once to the
# finished dot products, as MatMul then Add do (bit for bit in the tests; measured equal
# up to K = 513 and not at K = 1,000 with onnxruntime 1.31, hence a margin).
GEMM_MAX_K = 128


def fuse_matmul_add(model: ModelProto) -> int:
    """``Add(MatMul(A, W), b)`` with constant ``W`` (K x M, K at most :data:`GEMM_MAX_K`)
    and ``b`` becomes ``Gemm(A, W, b)``, one node computing the same sums.

    Parameters
    ----------
    model : onnx.ModelProto
        Changed in place.

    Returns
    -------
    int
        How many pairs were fused.
    """
    graph, fused = model.graph, 0
    if not any(n.op_type == "MatMul" for n in graph.node):
        return 0  # skip a shape inference of the whole graph (tens of megabytes for a forest)
    shapes = inferred_shapes(model)
    outputs = {o.name for o in graph.output}
    ranks = {t.name: list(t.dims) for t in graph.initializer}
    with NodeList(graph) as nodes:
        uses = nodes.consumers()
        for matmul in [n for n in nodes.nodes if n.op_type == "MatMul"]:
            weights = ranks.get(matmul.input[1])
            readers = uses.get(matmul.output[0], [])
            if weights is None or len(weights) != 2 or weights[0] > GEMM_MAX_K:
                continue
            if len(shapes.get(matmul.input[0], [])) != 2 or matmul.output[0] in outputs:
                continue
            if len(readers) != 1 or readers[0].op_type != "Add":
                continue
            add = readers[0]
            bias = [name for name in add.input if name != matmul.output[0]]
            if len(bias) != 1 or ranks.get(bias[0]) not in ([], [1], [weights[1]]):
                continue
            gemm = helper.make_node("Gemm", [*matmul.input, bias[0]], list(add.output))
            nodes.nodes = [gemm if n is add else n for n in nodes.nodes]
            nodes.remove(matmul)
            fused += 1
    return fused
