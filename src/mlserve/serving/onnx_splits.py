"""Numeric preprocessing folded into the splits of the tree ensembles that read it.

A tree compares one value with one threshold, ``g(x) <= t``, where ``g`` is what the
pipeline does to the raw feature ``x`` before the tree sees it: the imputer's
``Where(IsNaN(x), statistic, x)``, the scaler's ``(x - mean) / scale`` and, for
scikit-learn's ``BaseDecisionTree``, the rounding to float32 (a ``Cast`` pair). Each of
those steps is IEEE arithmetic rounded to nearest, hence monotone non-decreasing in
``x`` (``scale > 0``), so the raw values that go to the true branch are all the doubles
up to one largest, ``x*``: the test ``g(x) <= t`` is exactly ``x <= x*`` on every
double that is not NaN. :func:`fold_into_splits` finds ``x*`` by bisection over the
doubles in their order (64 steps, every split at once, with numpy's arithmetic, which
rounds the same way as ONNX Runtime's ``Sub``, ``Div`` and ``Cast``), and sends NaN
where the imputed statistic went (``nodes_missing_value_tracks_true``). The tree
ensemble then reads the raw packed input, and the preprocessing nodes go.

The graph must read as written by mlserve's converters after
:func:`mlserve.serving.onnx_fuse.pack_numeric_inputs`: the packed ``(N, k)`` input ->
optional imputation -> optional ``Sub`` and ``Div`` by constants -> optional ``Concat``
with it first -> optional ``Cast`` to float32 and back -> ``TreeEnsemble`` (ai.onnx.ml 5)
nodes only. The ``Cast`` pair goes only when every other ``Concat`` input is a table
lookup whose values float32 holds exactly (one-hot rows, category codes). Anything else
is left as it was.

Imports numpy and onnx (a leaf of :mod:`mlserve.serving`, beside
:mod:`mlserve.serving.onnx_fold`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from onnx import GraphProto, ModelProto, NodeProto, TensorProto, numpy_helper

from mlserve.serving.onnx_nodes import (
    ML,
    NodeList,
    column_values,
    constant,
    int_attribute,
    set_attribute,
)

_LEQ, _LT = 0, 1  # TreeEnsemble nodes_modes: BRANCH_LEQ, BRANCH_LT
_SIGN = np.int64(-(2**63))


@dataclass
class _Chain:
    """What the pipeline does to the packed columns on their way to the trees."""

    statistic: np.ndarray | None = None
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)  # ("Sub"|"Div", const)
    float32: bool = False
    nodes: list[NodeProto] = field(default_factory=list)  # to remove
    concat: NodeProto | None = None
    trees: list[NodeProto] = field(default_factory=list)

    def apply(self, x: np.ndarray, feature: np.ndarray) -> np.ndarray:
        """``g(x)`` of each value in ``x`` (non-NaN) for the column in ``feature``."""
        for op, values in self.steps:
            x = x - values[feature] if op == "Sub" else x / values[feature]
        return x.astype(np.float32).astype(np.float64) if self.float32 else x


def fold_into_splits(model: ModelProto, packed: str, width: int) -> int:
    """Fold the numeric preprocessing of ``packed`` into the splits of its tree ensembles.

    Parameters
    ----------
    model : onnx.ModelProto
        Changed in place (only when the whole pattern above is found).
    packed : str
        The ``(N, width)`` float64 graph input of the numeric features.
    width : int
        Its number of columns, k.

    Returns
    -------
    int
        How many nodes were removed (0: the graph was left as it was).
    """
    graph = model.graph
    with NodeList(graph) as nodes:
        chain = _chain(graph, nodes, packed, width)
        if chain is None:
            return 0
        for tree in chain.trees:
            _refold(tree, chain, width)
            tree.input[0] = chain.concat.output[0] if chain.concat is not None else packed
        if chain.concat is not None:
            chain.concat.input[0] = packed
        nodes.remove(*chain.nodes)
        return len(chain.nodes)


def _chain(graph: GraphProto, nodes: NodeList, packed: str, width: int) -> _Chain | None:
    uses, outputs = nodes.consumers(), {o.name for o in graph.output}
    chain, current = _Chain(), _impute(graph, uses, packed, width)
    if current is None:
        return None
    if current[1] is not None:
        chain.statistic, chain.nodes = current[1], list(current[2])
    name = current[0]
    while (step := _sole(uses, name, outputs)) is not None and step.op_type in ("Sub", "Div"):
        operand = _constant(graph, step, name, width)
        if operand is None or (step.op_type == "Div" and not np.all(operand > 0)):
            return None
        chain.steps.append((step.op_type, operand))
        chain.nodes.append(step)
        name = step.output[0]
    concat = _sole(uses, name, outputs)
    if concat is not None and concat.op_type == "Concat":
        if int_attribute(concat, "axis") not in (1, -1) or concat.input[0] != name:
            return None
        chain.concat, name = concat, concat.output[0]
    cast = _sole(uses, name, outputs)
    back = _sole(uses, cast.output[0], outputs) if cast is not None else None
    if cast is not None and back is not None and _casts(cast, TensorProto.FLOAT, back):
        if chain.concat is not None and not _all_float32(graph, nodes, chain.concat.input[1:]):
            return None
        chain.float32, name = True, back.output[0]
        chain.nodes += [cast, back]
    readers = uses.get(name, [])
    if name in outputs or not readers or not all(_tree(r, name, width) for r in readers):
        return None
    chain.trees = readers
    return chain if chain.nodes else None


def _impute(
    graph: GraphProto, uses: dict[str, list[NodeProto]], packed: str, width: int
) -> tuple[str, np.ndarray | None, tuple[NodeProto, ...]] | None:
    """``Where(IsNaN(x), statistic, x)`` on the packed input: (its output, the statistic
    per column, its two nodes); (packed, None, ()) when the input is not imputed."""
    readers = uses.get(packed, [])
    ops = sorted(r.op_type for r in readers)
    if ops != ["IsNaN", "Where"]:
        return (packed, None, ()) if ops and "IsNaN" not in ops else None
    isnan, where = sorted(readers, key=lambda r: r.op_type)
    if [r.op_type for r in uses.get(isnan.output[0], [])] != ["Where"]:
        return None
    if list(where.input) != [isnan.output[0], where.input[1], packed]:
        return None
    statistic = column_values(graph, where.input[1], width)
    if statistic is None or not np.all(np.isfinite(statistic)):
        return None
    return where.output[0], statistic, (isnan, where)


def _constant(graph: GraphProto, node: NodeProto, name: str, width: int) -> np.ndarray | None:
    if len(node.input) != 2 or node.input[0] != name:
        return None
    values = column_values(graph, node.input[1], width)
    return values if values is not None and np.all(np.isfinite(values)) else None


def _sole(uses: dict[str, list[NodeProto]], name: str, outputs: set[str]) -> NodeProto | None:
    readers = uses.get(name, [])
    return readers[0] if len(readers) == 1 and name not in outputs else None


def _casts(cast: NodeProto, to: int, back: NodeProto) -> bool:
    return (
        cast.op_type == back.op_type == "Cast"
        and int_attribute(cast, "to") == to
        and int_attribute(back, "to") == TensorProto.DOUBLE
    )


def _all_float32(graph: GraphProto, nodes: NodeList, names: list[str]) -> bool:
    """Whether each of ``names`` is a ``Gather`` from, or a ``LabelEncoder`` to, float64
    constants that float32 holds exactly (so rounding them to float32 changes nothing)."""
    for name in names:
        node = nodes.producer(name)
        if node is None:
            return False
        if node.op_type == "Gather" and node.domain == "":
            values = constant(graph, node.input[0])
        elif node.op_type == "LabelEncoder" and node.domain == ML:
            attrs = {a.name: a for a in node.attribute}
            if "values_tensor" not in attrs or "default_tensor" not in attrs:
                return False
            values = np.concatenate(
                [
                    numpy_helper.to_array(attrs[k].t).ravel()
                    for k in ("values_tensor", "default_tensor")
                ]
            )
        else:
            return False
        if values is None or values.dtype != np.float64:
            return False
        if not np.array_equal(values.astype(np.float32).astype(np.float64), values, equal_nan=True):
            return False
    return True


def _tree(node: NodeProto, name: str, width: int) -> bool:
    """A float64 ``TreeEnsemble`` reading ``name`` whose splits on the first ``width``
    features are all ``BRANCH_LEQ`` or ``BRANCH_LT``."""
    if node.op_type != "TreeEnsemble" or node.domain != ML or node.input[0] != name:
        return False
    attrs = {a.name: a for a in node.attribute}
    if "nodes_splits" not in attrs or attrs["nodes_splits"].t.data_type != TensorProto.DOUBLE:
        return False
    feature = np.asarray(attrs["nodes_featureids"].ints, dtype=np.int64)
    modes = numpy_helper.to_array(attrs["nodes_modes"].t)
    return bool(np.isin(modes[feature < width], (_LEQ, _LT)).all())


def _refold(tree: NodeProto, chain: _Chain, width: int) -> None:
    """Rewrite the splits of ``tree`` on the first ``width`` features as raw-value splits."""
    attrs = {a.name: a for a in tree.attribute}
    feature = np.asarray(attrs["nodes_featureids"].ints, dtype=np.int64)
    splits = numpy_helper.to_array(attrs["nodes_splits"].t).copy()
    modes = numpy_helper.to_array(attrs["nodes_modes"].t).copy()
    missing = np.zeros(len(feature), dtype=np.int64)
    if "nodes_missing_value_tracks_true" in attrs:
        missing[:] = attrs["nodes_missing_value_tracks_true"].ints
    numeric = np.flatnonzero(feature < width)
    f, t, strict = feature[numeric], splits[numeric], modes[numeric] == _LT
    raw, never = _largest_true(chain, f, t, strict)
    splits[numeric] = np.where(never, -np.inf, raw)
    modes[numeric] = np.where(never, _LT, _LEQ)
    if chain.statistic is not None:
        with np.errstate(all="ignore"):
            goes = _test(chain.apply(chain.statistic[f], f), t, strict)
        missing[numeric] = goes.astype(np.int64)
    set_attribute(tree, "nodes_splits", numpy_helper.from_array(splits))
    set_attribute(tree, "nodes_modes", numpy_helper.from_array(modes))
    set_attribute(tree, "nodes_missing_value_tracks_true", missing.tolist())


def _test(value: np.ndarray, threshold: np.ndarray, strict: np.ndarray) -> np.ndarray:
    return np.where(strict, value < threshold, value <= threshold)


def _largest_true(
    chain: _Chain, feature: np.ndarray, threshold: np.ndarray, strict: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The largest double ``x`` with ``g(x) <= t`` (``<`` where ``strict``) per split, by
    bisection over the doubles' order; ``never``: no double passes (not even -inf).

    Each split's bisection starts from the bracket ``g⁻¹(t) ± 2⁻²⁰ |g⁻¹(t)|`` (the
    inverse of the steps in float64; float32's rounding moves a value by at most 2⁻²⁴
    of it) when ``g`` passes at its low end and fails at its high end, which halves the
    steps; from all the doubles otherwise. Any bracket of a monotone test has the one
    boundary the bisection finds, so the start changes the work, not the result.
    """

    def passes(key: np.ndarray, rows: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):  # inf - inf cannot happen; float32 overflow is inf
            value = chain.apply(_double(key), feature[rows])
            return _test(value, threshold[rows], strict[rows])

    every = np.arange(len(feature))
    low = np.full(len(feature), _key(-np.inf))
    high = np.full(len(feature), _key(np.inf))
    never, always = ~passes(low, every), passes(high, every)
    low[always] = high[always]
    open_ = np.flatnonzero(~never & ~always)
    near_low, near_high = _near(chain, feature[open_], threshold[open_])
    near = passes(near_low, open_) & ~passes(near_high, open_)
    low[open_[near]], high[open_[near]] = near_low[near], near_high[near]
    for rows in (open_[near], open_[~near]):
        low[rows] = _bisect(passes, rows, low[rows], high[rows])
    return _double(low), never


def _near(chain: _Chain, feature: np.ndarray, threshold: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keys of ``g⁻¹(t) ∓ 2⁻²⁰ |g⁻¹(t)|`` (any two keys where that is not finite)."""
    guess = threshold.astype(np.float64)
    with np.errstate(all="ignore"):
        for op, values in reversed(chain.steps):
            guess = guess + values[feature] if op == "Sub" else guess * values[feature]
        span = np.maximum(np.abs(guess) * 2.0**-20, 1e-300)
        bounds = [guess - span, guess + span]
    finite = np.isfinite(bounds[0]) & np.isfinite(bounds[1])
    return tuple(_keys(np.where(finite, b, 0.0)) for b in bounds)


def _bisect(
    passes: Callable[[np.ndarray, np.ndarray], np.ndarray],
    rows: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """The last key that passes, between ``low`` (passes) and ``high`` (fails), per row."""
    open_ = high > low + 1
    while open_.any():
        middle = (low >> 1) + (high >> 1) + (low & high & 1)  # floor((low + high) / 2)
        good = passes(middle, rows)
        low = np.where(open_ & good, middle, low)
        high = np.where(open_ & ~good, middle, high)
        open_ &= high > low + 1
    return low


def _key(value: float) -> np.int64:
    """The rank of a double among the doubles (integers in the same order; +0 = -0)."""
    return _keys(np.array([value], dtype=np.float64))[0]


def _keys(values: np.ndarray) -> np.ndarray:
    bits = values.view(np.int64)
    return np.where(bits < 0, -(bits & ~_SIGN), bits)


def _double(keys: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_keys` (a negative key is a negative double, zero is +0)."""
    return np.where(keys < 0, (-keys) | _SIGN, keys).view(np.float64)
