"""Exact rewrites of a converted graph that leave fewer inputs and nodes to run.

A one-row prediction costs ONNX Runtime a fixed price per graph input (an ``OrtValue``
made from a numpy array) and per node (a kernel call), larger than the arithmetic of
most nodes (docs/benchmarks.md, "A cheaper graph"). skl2onnx writes one ``(N, 1)``
input per feature and concatenates them, and mlserve's converters impute text with
``Equal`` + ``Where`` before encoding it. The rewrites here change neither a value nor
an operation's order, so the compiled graph computes bit for bit what it computed
before (the compiler's equality check still runs on the result):

- :func:`pack_numeric_inputs`: the ``Concat(axis=1)`` of every float64 feature input
  becomes one ``(N, k)`` input fed with the same columns.
- :func:`fold_text_imputer`: ``Where(Equal(x, marker), statistic, x)`` followed only by
  ``LabelEncoder`` nodes (through a column ``Gather``) becomes one more key of each
  ``LabelEncoder``: the missing marker maps to the statistic's code.
- :func:`flatten_text_inputs`: an ``(N, 1)`` text input read only as its first column
  becomes an ``(N,)`` input (fed 1-D).
- :mod:`mlserve.serving.onnx_fold`: ``Identity`` nodes, one-input ``Concat`` nodes,
  ``Reshape`` nodes to the shape their input has and ``Gather`` of an only column are
  dropped; a ``Gather`` of columns read only by tree ensembles becomes a renumbering of
  their feature ids; ``MatMul`` then ``Add`` of constants becomes one ``Gemm``.
- :mod:`mlserve.serving.onnx_splits`: the imputation, scaling and float32 rounding of
  the packed numeric input, when only tree ensembles read it, become raw-value splits
  (each threshold replaced by the largest raw value that passed it).

:func:`fuse` runs them all. Imports numpy, onnx and the two modules it runs with
(:mod:`mlserve.serving.onnx_fold`, :mod:`mlserve.serving.onnx_splits`,
:mod:`mlserve.serving.onnx_nodes`).
"""

from __future__ import annotations

import numpy as np
from onnx import GraphProto, ModelProto, NodeProto, TensorProto, helper, numpy_helper

from mlserve.serving import onnx_fold, onnx_splits
from mlserve.serving.onnx_nodes import ML, NodeList, initializer, int_attribute, rank


def fuse(model: ModelProto) -> tuple[str, list[str]] | None:
    """Every rewrite, in an order where each leaves the next its pattern.

    Parameters
    ----------
    model : onnx.ModelProto
        A graph from skl2onnx and mlserve's converters; changed in place.

    Returns
    -------
    (str, list of str) or None
        What :func:`pack_numeric_inputs` returns.
    """
    fold_text_imputer(model)
    flatten_text_inputs(model)
    onnx_fold.drop_identities(model)
    onnx_fold.fold_column_gather(model)
    onnx_fold.fuse_matmul_add(model)
    packed = pack_numeric_inputs(model)
    if packed is not None:
        onnx_splits.fold_into_splits(model, packed[0], len(packed[1]))
    return packed


def pack_numeric_inputs(model: ModelProto) -> tuple[str, list[str]] | None:
    """Replace the ``Concat`` of all float64 ``(N, 1)`` inputs with one ``(N, k)`` input.

    Applies only when one ``Concat(axis=1)`` node takes every float64 graph input, at
    least two, each once and used by nothing else.

    Parameters
    ----------
    model : onnx.ModelProto
        Changed in place.

    Returns
    -------
    (str, list of str) or None
        The new input's name (the ``Concat``'s output) and the former inputs' names in
        column order; None when the graph was left as it was.
    """
    graph = model.graph
    doubles = [i.name for i in graph.input if i.type.tensor_type.elem_type == TensorProto.DOUBLE]
    if len(doubles) < 2:
        return None
    with NodeList(graph) as nodes:
        uses = nodes.consumers()
        for node in nodes.nodes:
            columns = list(node.input)
            if node.op_type != "Concat" or int_attribute(node, "axis") not in (1, -1):
                continue
            if sorted(columns) != sorted(doubles) or len(set(columns)) != len(columns):
                continue
            if any(len(uses[name]) != 1 for name in columns):
                continue
            packed = node.output[0]
            kept = [i for i in graph.input if i.name not in doubles]
            del graph.input[:]
            graph.input.extend(
                [helper.make_tensor_value_info(packed, TensorProto.DOUBLE, [None, len(columns)])]
            )
            graph.input.extend(kept)
            nodes.remove(node)
            return packed, columns
    return None


def flatten_text_inputs(model: ModelProto) -> list[str]:
    """Make ``(N, 1)`` string inputs read only as ``Gather(x, 0, axis=1)`` ``(N,)`` inputs.

    Each such ``Gather`` (a scalar index: it drops the column axis) is removed and its
    readers read the input, now of shape ``(N,)``, the same values.

    Parameters
    ----------
    model : onnx.ModelProto
        Changed in place.

    Returns
    -------
    list of str
        The inputs made one-dimensional.
    """
    graph, flattened = model.graph, []
    outputs = {o.name for o in graph.output}
    with NodeList(graph) as nodes:
        uses = nodes.consumers()
        for info in graph.input:
            tensor = info.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
            if tensor.elem_type != TensorProto.STRING or dims != [None, 1]:
                continue
            readers = uses.get(info.name, [])
            if not readers or not all(_first_column(graph, r, outputs) for r in readers):
                continue
            for gather in readers:
                nodes.rename_uses(gather.output[0], info.name)
            nodes.remove(*readers)
            tensor.shape.ClearField("dim")
            tensor.shape.dim.add().dim_param = "N"
            flattened.append(info.name)
    return flattened


def _first_column(graph: GraphProto, node: NodeProto, outputs: set[str]) -> bool:
    """``Gather(x, 0, axis=1)`` with a scalar index, its output not a graph output."""
    if node.op_type != "Gather" or len(node.input) != 2 or int_attribute(node, "axis", 0) != 1:
        return False
    return (
        rank(graph, node.input[1]) == 0
        and initializer(graph, node.input[1]) == [0]
        and node.output[0] not in outputs
    )


def fold_text_imputer(model: ModelProto) -> int:
    """Fold every text imputation feeding only ``LabelEncoder`` nodes into their keys.

    ``w = Where(Equal(x, [marker]), [statistics], x)`` whose only consumers are
    ``Gather(w, i, axis=1)`` nodes (``i`` one column), each read only by ``LabelEncoder``
    nodes with string keys and int64 values: each ``Gather`` reads ``x`` instead, and each
    encoder maps ``marker`` to the code it gives ``statistics[i]`` (its default when that
    is not a key).

    Parameters
    ----------
    model : onnx.ModelProto
        Changed in place.

    Returns
    -------
    int
        How many imputations were folded.
    """
    graph, folded = model.graph, 0
    with NodeList(graph) as nodes:
        for where in [n for n in nodes.nodes if n.op_type == "Where"]:
            plan = _imputer_plan(graph, nodes, where)
            if plan is None:
                continue
            equal, marker, statistics, columns = plan
            uses = nodes.consumers()
            for gather, column in columns:
                gather.input[0] = equal.input[0]
                for encoder in uses[gather.output[0]]:
                    _add_key(encoder, marker, str(statistics[column]))
            nodes.remove(equal, where)
            folded += 1
    return folded


def _imputer_plan(
    graph: GraphProto, nodes: NodeList, where: NodeProto
) -> tuple[NodeProto, str, list[object], list[tuple[NodeProto, int]]] | None:
    """The ``Equal``, marker, statistics and column ``Gather`` nodes of a foldable ``Where``."""
    equal = nodes.producer(where.input[0])
    if equal is None or equal.op_type != "Equal" or equal.input[0] != where.input[2]:
        return None
    marker = initializer(graph, equal.input[1])
    statistics = initializer(graph, where.input[1])
    if marker is None or len(marker) != 1 or not isinstance(marker[0], str) or not statistics:
        return None
    uses, outputs = nodes.consumers(), {o.name for o in graph.output}
    if len(uses.get(equal.output[0], [])) != 1 or where.output[0] in outputs:
        return None
    columns = []
    for gather in uses.get(where.output[0], []):
        index = initializer(graph, gather.input[1]) if len(gather.input) == 2 else None
        if gather.op_type != "Gather" or int_attribute(gather, "axis", 0) != 1 or index is None:
            return None
        readers = uses.get(gather.output[0], [])
        if len(index) != 1 or not readers or gather.output[0] in outputs:
            return None
        if not all(_string_label_encoder(r) for r in readers):
            return None
        column = int(str(index[0]))
        if not 0 <= column < len(statistics):
            return None
        columns.append((gather, column))
    return (equal, marker[0], statistics, columns) if columns else None


def _string_label_encoder(node: NodeProto) -> bool:
    names = {a.name for a in node.attribute}
    return (
        node.op_type == "LabelEncoder"
        and node.domain == ML
        and "keys_strings" in names
        and (
            {"values_int64s", "default_int64"} <= names
            or {"values_tensor", "default_tensor"} <= names
        )
    )


def _add_key(encoder: NodeProto, key: str, like: str) -> None:
    """Map ``key`` to the value ``like`` gets (the default when ``like`` is not a key)."""
    attrs = {a.name: a for a in encoder.attribute}
    keys = [k.decode() for k in attrs["keys_strings"].strings]
    tensor = "values_tensor" in attrs
    if tensor:
        values = list(numpy_helper.to_array(attrs["values_tensor"].t))
        default = numpy_helper.to_array(attrs["default_tensor"].t).ravel()[0]
    else:
        values, default = list(attrs["values_int64s"].ints), attrs["default_int64"].i
    value = values[keys.index(like)] if like in keys else default
    if key in keys:
        values[keys.index(key)] = value
    else:
        keys.append(key)
        values.append(value)
    attrs["keys_strings"].CopyFrom(helper.make_attribute("keys_strings", keys))
    if tensor:
        array = np.array(values, dtype=numpy_helper.to_array(attrs["values_tensor"].t).dtype)
        attrs["values_tensor"].t.CopyFrom(numpy_helper.from_array(array))
    else:
        attrs["values_int64s"].CopyFrom(helper.make_attribute("values_int64s", values))
