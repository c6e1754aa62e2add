"""The ONNX Runtime session options of every graph mlserve serves (a leaf: it imports
only onnxruntime, so the compiler and the importer can both use it)."""

from __future__ import annotations

import onnxruntime as ort


def session_options() -> ort.SessionOptions:
    """The ONNX Runtime options of every graph mlserve serves, compiled or imported.

    One intra-op and one inter-op thread, sequential execution: a request is one short
    graph run and the service parallelises across requests. Graph optimizations stop at
    the basic level (constant folding, redundant nodes), which is exact: the extended
    level fuses MatMul and a scalar Mul into ``com.microsoft.FusedMatMul``, whose alpha is
    a float32 attribute even in a double graph (an SVC poly kernel's gamma then loses
    1e-8).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    return options
