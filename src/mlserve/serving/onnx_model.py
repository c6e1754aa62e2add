"""A compiled graph in an ONNX Runtime session: what serves a compiled version.

Apart from the compiler (:mod:`mlserve.serving.onnx`, which needs scikit-learn and
skl2onnx) so that a worker serving compiled versions imports neither
(:mod:`mlserve.lazy`).
"""

from __future__ import annotations

import json
from operator import itemgetter
from typing import Any

import numpy as np
import onnxruntime as ort

from mlserve.serving.ort_options import session_options
from mlserve.store.documents import Signature

# A missing text value in a string tensor. Not "\x00" alone: a trailing NUL is lost on the
# way into onnxruntime (numpy bytes strip it), so "" would match. Clients cannot send NUL.
MISSING_TEXT = "\x00missing"
META_INPUTS = "mlserve.inputs"
META_PROBA = "mlserve.probabilities"
# {"input": name, "columns": [graph input names]}: one (N, k) float64 input stands for
# the listed per-feature inputs (:func:`mlserve.serving.onnx_fuse.pack_numeric_inputs`).
META_PACKED = "mlserve.packed"


class OnnxModel:
    """An ONNX graph from :func:`mlserve.serving.onnx.compile_pipeline` in an onnxruntime session.

    The session runs on the CPU provider, one thread, sequentially: a request
    is one short graph run and the service parallelises across requests. Graph
    optimizations stop at the basic level, which keeps double arithmetic exact.

    Parameters
    ----------
    data : bytes
        Serialized ONNX model (``Compiled.onnx``).
    signature : dict
        The model's signature (inputs, and output classes for classifiers).

    Attributes
    ----------
    classes : list or None
        ``signature["output"]["classes"]`` for classifiers, else None.

    Raises
    ------
    onnxruntime.capi.onnxruntime_pybind11_state.Fail
        (and other onnxruntime errors) if the graph cannot be loaded.
    """

    def __init__(self, data: bytes, signature: Signature) -> None:
        self._session = ort.InferenceSession(
            data, session_options(), providers=["CPUExecutionProvider"]
        )
        meta = self._session.get_modelmeta().custom_metadata_map
        features = [spec["name"] for spec in signature["inputs"]]
        graph_inputs = json.loads(meta[META_INPUTS]) if META_INPUTS in meta else features
        self._inputs = dict(zip(features, graph_inputs, strict=True))
        # A packed graph: the numeric features' columns, in order, make one input.
        self._packed: str | None = None
        self._columns: tuple[str, ...] = ()
        if META_PACKED in meta:
            packed = json.loads(meta[META_PACKED])
            feature_of = {graph: name for name, graph in self._inputs.items()}
            self._packed = packed["input"]
            self._columns = tuple(feature_of[graph] for graph in packed["columns"])
            self._inputs = {n: g for n, g in self._inputs.items() if n not in self._columns}
            self._pick = itemgetter(*self._columns)  # at least two: a tuple of arrays
        # One checked row's numbers come as one (1, k) block of the signature's non-text
        # features in signature order (validation's ``numeric_row``): the packed input as
        # it is when the graph packs those very columns in that order.
        numeric = tuple(spec["name"] for spec in signature["inputs"] if spec["type"] != "string")
        self._row_is_packed = self._packed is not None and self._columns == numeric
        self._outputs = [o.name for o in self._session.get_outputs()]
        # The session's C++ run without the Python wrapper's checks (input names against
        # the graph, OrtValue ownership, graph capture): the feed is built from the
        # graph's own inputs above, of numpy arrays, on the CPU provider alone, so the
        # checks cannot fail; they cost about 7 µs a call (a fifth of a one-row run).
        self._run = getattr(self._session, "_sess", self._session).run
        # One RunOptions for every run (read-only in a run): a new default one is made
        # for each call given None (0.6 µs of a 9 µs one-row run).
        self._run_options = ort.RunOptions()
        # Inputs of shape (N,) (onnx_fuse.flatten_text_inputs); the others are (N, 1).
        self._flat = {i.name for i in self._session.get_inputs() if len(i.shape) == 1}
        self._has_proba = meta.get(META_PROBA, "1") == "1"
        self.classes: list[Any] | None = signature["output"].get("classes")
        self._lookup: dict[Any, int] = {}
        self._labels: np.ndarray | None = None
        if self.classes is not None:
            text = self._session.get_outputs()[0].type == "tensor(string)"
            self._lookup = {(str(c) if text else int(c)): i for i, c in enumerate(self.classes)}
            labels = np.asarray(self.classes)
            self._labels = labels.astype(object) if labels.dtype.kind in "US" else labels

    def graph_feed(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The graph's own inputs for ``feed`` (see :meth:`run`): graph input name -> array.

        A packed graph's numeric features become one float64 array of shape
        (n_samples, k), in the graph's column order (one checked row's ``numeric_row``,
        :class:`mlserve.serving.validation.InstanceValidator`'s block of those features,
        as it is when the graph packs them in signature order); other inputs are shaped
        (n_samples,) or (n_samples, 1) as the graph declares them.
        """
        flat = self._flat
        inputs = {
            graph: feed[name].reshape(-1) if graph in flat else feed[name].reshape(-1, 1)
            for name, graph in self._inputs.items()
        }
        if self._packed is not None:
            row = getattr(feed, "numeric_row", None) if self._row_is_packed else None
            if row is not None:
                inputs[self._packed] = row
                return inputs
            # k columns of n rows end to end, seen as (n, k); no copy for one row.
            columns = np.concatenate(self._pick(feed), axis=None, dtype=np.float64)
            packed = columns.reshape(len(self._columns), -1).T
            inputs[self._packed] = np.ascontiguousarray(packed)
        return inputs

    def run(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Predict for every row of ``feed``.

        Parameters
        ----------
        feed : dict of str to ndarray
            Feature name -> array of shape (n_samples, 1), from
            :func:`mlserve.serving.onnx.feed_from_frame`, or of shape (n_samples,);
            :meth:`graph_feed` shapes them for the graph.

        Returns
        -------
        predictions : ndarray of shape (n_samples,)
            float64 for regression; for classification, the labels as the
            values of ``classes`` (int64, bool or object holding str).
        probabilities : ndarray of shape (n_samples, n_classes) or None
            float64, columns in ``classes`` order; None for regression and for
            classifiers without ``predict_proba``.

        Raises
        ------
        KeyError
            If a feature is missing from ``feed``, or the graph returns a label
            that is not one of ``classes``.
        """
        outputs = self._run(self._outputs, self.graph_feed(feed), self._run_options)
        if self._labels is None:
            return np.asarray(outputs[0], dtype=np.float64).reshape(-1), None
        raw = np.asarray(outputs[0]).reshape(-1)
        positions = np.fromiter((self._lookup[v] for v in raw.tolist()), np.int64, len(raw))
        proba = None
        if self._has_proba and len(outputs) > 1:
            proba = np.asarray(outputs[1], dtype=np.float64)
        return self._labels[positions], proba
