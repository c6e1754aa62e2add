"""Serving imported ONNX models: tensor to tensor, and as tabular runtimes.

:class:`TensorModel` runs an imported graph on named tensors (the V2 ``infer``
route). :class:`ImportedOnnxRuntime` puts a tabular signature in front of it, so
that validated feature columns (``/api/v1/.../predict``, V2 per-feature tensors) reach
the graph as it expects them (``layout`` of :class:`~mlserve.store.documents.ImportInfo`)
and its outputs come back as predictions and probabilities, like a trained version's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlserve.errors import ValidationFailed
from mlserve.serving.import_onnx import numpy_dtype, open_session
from mlserve.serving.validation import Columns, InstanceValidator
from mlserve.store.documents import ImportInfo, Signature, TensorSpec

Outputs = tuple[np.ndarray, np.ndarray | None]


class TensorModel:
    """An imported ONNX graph in an ONNX Runtime session (see :func:`open_session`).

    Parameters
    ----------
    data : bytes
        The checked graph (:func:`mlserve.serving.import_onnx.check_onnx`).
    info : dict
        The version's :class:`~mlserve.store.documents.ImportInfo`.
    """

    def __init__(self, data: bytes, info: ImportInfo) -> None:
        self.session = open_session(data)
        self.inputs: dict[str, TensorSpec] = {t["name"]: t for t in info["tensors"]["inputs"]}
        self.outputs: dict[str, TensorSpec] = {t["name"]: t for t in info["tensors"]["outputs"]}

    def run(self, feed: dict[str, np.ndarray], names: list[str] | None = None) -> dict[str, Any]:
        """Run the graph.

        Parameters
        ----------
        feed : dict of str to ndarray
            Graph input name -> array of the input's dtype and rank.
        names : list of str, optional
            Outputs wanted (default: all, in graph order).

        Returns
        -------
        dict
            Output name -> ndarray (or, for a sequence-of-maps output, a list of dicts).

        Raises
        ------
        ValidationFailed
            A missing or unknown input, a wrong dtype or shape, an unknown output name;
            ``details["input"]`` / ``details["output"]`` names it.
        """
        check_feed(feed, self.inputs)
        wanted = list(self.outputs) if names is None else names
        for name in wanted:
            if name not in self.outputs:
                raise ValidationFailed(f"unknown output {name!r}", {"output": name})
        try:
            values = self.session.run(wanted, feed)
        except Exception as exc:  # ONNX Runtime's errors name the node, never a path
            message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise ValidationFailed(f"the model could not run on these inputs: {message}") from exc
        return dict(zip(wanted, values, strict=True))


def check_feed(feed: dict[str, np.ndarray], specs: dict[str, TensorSpec]) -> None:
    """Check names, dtypes, ranks and fixed dimensions of ``feed`` against ``specs``.

    Raises
    ------
    ValidationFailed
        Naming the input (``details["input"]``).
    """
    for name in feed:
        if name not in specs:
            raise ValidationFailed(f"unknown input {name!r}", {"input": name})
    for name, spec in specs.items():
        if name not in feed:
            raise ValidationFailed(f"missing input {name!r}", {"input": name})
        array = feed[name]
        want = numpy_dtype(spec["datatype"])
        if array.dtype != want:
            raise ValidationFailed(
                f"input {name!r}: datatype {array.dtype} where the model takes {spec['datatype']}",
                {"input": name, "datatype": spec["datatype"]},
            )
        shape = spec["shape"]
        fits = len(shape) == array.ndim and all(
            d < 0 or d == n for d, n in zip(shape, array.shape, strict=True)
        )
        if not fits:
            raise ValidationFailed(
                f"input {name!r}: shape {list(array.shape)} where the model takes {shape}",
                {"input": name, "shape": shape},
            )


class ImportedOnnxRuntime:
    """A tabular runtime over an imported graph (``layout`` ``columns`` or ``matrix``).

    Parameters
    ----------
    model : TensorModel
    signature : dict
        The tabular signature recorded at import (features, output, classes).
    info : dict
        The version's :class:`~mlserve.store.documents.ImportInfo`.
    """

    name = "onnx"

    def __init__(self, model: TensorModel, signature: Signature, info: ImportInfo) -> None:
        self.model = model
        self.validator = InstanceValidator(signature)
        self._features = [spec["name"] for spec in signature["inputs"]]
        self._layout = info["layout"]
        self._label = info["label_output"]
        self._proba = info["proba_output"]
        classes = signature["output"].get("classes")
        self.classes = None if classes is None else np.asarray(classes)
        if self.classes is not None and self.classes.dtype.kind in "US":
            self.classes = self.classes.astype(object)

    def predict(self, columns: Columns) -> Outputs:
        """Predictions (n_rows,) and probabilities (n_rows, n_classes) or None."""
        names = [n for n in (self._label, self._proba) if n is not None]
        out = self.model.run(self.feed(columns), names)
        return self._outputs(out)

    def feed(self, columns: Columns) -> dict[str, np.ndarray]:
        """Graph inputs from validated feature columns."""
        if self._layout == "matrix":
            (name, spec), *_ = self.model.inputs.items()
            stacked = np.column_stack([columns[f] for f in self._features])
            return {name: stacked.astype(numpy_dtype(spec["datatype"]))}
        feed = {}
        for name, spec in self.model.inputs.items():
            values = columns[name]
            dtype = numpy_dtype(spec["datatype"])
            if dtype.kind == "O":
                values = np.array(["" if not isinstance(v, str) else v for v in values], object)
            feed[name] = values.astype(dtype).reshape((-1, 1) if len(spec["shape"]) == 2 else -1)
        return feed

    def _outputs(self, out: dict[str, Any]) -> Outputs:
        proba = None
        if self._proba is not None:
            proba = probabilities(out[self._proba], self.classes)
        if self.classes is None:
            assert self._label is not None
            return np.asarray(out[self._label], dtype=np.float64).reshape(-1), None
        if self._label is not None:
            return np.asarray(out[self._label]).reshape(-1), proba
        assert proba is not None
        return self.classes[np.argmax(proba, axis=1)], proba


def probabilities(raw: Any, classes: np.ndarray | None) -> np.ndarray:
    """Class probabilities (n_rows, n_classes) as float64 from a graph output.

    A list of ``{class: p}`` dicts (skl2onnx's ZipMap) is read in ``classes`` order; a
    single column (a sigmoid) becomes ``[1 - p, p]``.
    """
    if isinstance(raw, list):
        keys = list(raw[0]) if classes is None else classes.tolist()
        return np.array([[row[k] for k in keys] for row in raw], dtype=np.float64)
    proba = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
    if proba.shape[1] == 1:
        proba = np.hstack([1.0 - proba, proba])
    return proba


class TensorOnlyRuntime:
    """The runtime of an imported model without a tabular signature: refuses rows."""

    name = "onnx"

    def __init__(self, model: TensorModel, signature: Signature) -> None:
        self.model = model
        self.validator = InstanceValidator(signature)

    def predict(self, columns: Columns) -> Outputs:
        """Always refuses: a tensor model answers ``POST /v2/models/{name}/infer`` only.

        Raises
        ------
        ValidationFailed
        """
        raise ValidationFailed("this version takes tensors: POST /v2/models/{name}/infer")
