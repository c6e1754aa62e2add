"""Tests of mlserve.serving.onnx_nodes.NodeList: edits land in the graph's own nodes,
removed nodes go, new ones take their place, and the nodes that stay are never copied
(a forest's node weighs tens of megabytes)."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from mlserve.serving.onnx_nodes import NodeList


def _chain(n: int) -> onnx.GraphProto:
    """``x0 -> Abs -> x1 -> ... -> xn``, nodes named ``n0 .. n{n-1}``."""
    nodes = [helper.make_node("Abs", [f"x{i}"], [f"x{i + 1}"], name=f"n{i}") for i in range(n)]
    value = [helper.make_tensor_value_info(f"x{i}", TensorProto.DOUBLE, [1]) for i in (0, n)]
    return helper.make_graph(nodes, "chain", value[:1], value[1:])


def _names(graph: onnx.GraphProto) -> list[str]:
    return [node.name for node in graph.node]


def test_edits_reach_the_graph_and_kept_nodes_are_not_copied() -> None:
    graph = _chain(5)
    before = list(graph.node)
    with NodeList(graph) as nodes:
        assert all(a is b for a, b in zip(nodes.nodes, before, strict=True))
        nodes.nodes[3].input[0] = "x1"  # n3 reads what n2 read: n1 and n2 go
        nodes.remove(nodes.nodes[1], nodes.nodes[2])
        assert _names(graph) == ["n0", "n1", "n2", "n3", "n4"]  # removals land on exit
        assert list(graph.node[3].input) == ["x1"]  # edits at once
    assert _names(graph) == ["n0", "n3", "n4"]
    before[4].name = "renamed after"  # the graph still holds that very message
    assert _names(graph) == ["n0", "n3", "renamed after"]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ([0, "new", 2, 3], ["n0", "new", "n2", "n3"]),  # replaces n1 where it stood
        (["new", 0, 1, 2, 3, "new2"], ["new", "n0", "n1", "n2", "n3", "new2"]),
        ([3, 2, 1, 0], ["n3", "n2", "n1", "n0"]),  # moved: rebuilt in the new order
        ([], []),
    ],
)
def test_the_graph_gets_the_list_in_its_order(order: list[object], expected: list[str]) -> None:
    graph = _chain(4)
    with NodeList(graph) as nodes:
        start = list(nodes.nodes)
        nodes.nodes = [
            start[i] if isinstance(i, int) else helper.make_node("Neg", ["x0"], [i], name=i)
            for i in order
        ]
    assert _names(graph) == expected


def test_an_unchanged_list_leaves_the_graph_alone() -> None:
    graph = _chain(3)
    before = list(graph.node)
    with NodeList(graph):
        pass
    assert all(a is b for a, b in zip(graph.node, before, strict=True))
