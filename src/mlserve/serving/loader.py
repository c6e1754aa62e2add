"""Loading model versions: sha256 check, skops with a server-side allow-list, an LRU cache."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlserve.errors import Conflict, MlserveError, NotFound, ValidationFailed
from mlserve.serving.batching import MicroBatcher
from mlserve.serving.imported import ImportedOnnxRuntime, TensorModel, TensorOnlyRuntime
from mlserve.serving.runtime import OnnxRuntime, Outputs, Runtime, SklearnRuntime
from mlserve.serving.validation import Columns, InstanceValidator
from mlserve.settings import Settings
from mlserve.store.artifacts import ArtifactStore
from mlserve.store.database import Database
from mlserve.store.orm import ModelVersion

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)

# Types skops does not trust by default that mlserve's own catalogue produces.
# Anything else found in an artifact refuses to load (skops raises before
# constructing any object), so a planted file cannot run code.
ALLOWED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # HistGradientBoosting with native categorical features keeps a _preprocessor whose
    # FunctionTransformer holds partial(check_array, dtype=[numpy.float64]); skops checks
    # the partial's function and arguments against this list too, so only that one passes.
    "functools.partial",
    "sklearn.utils.validation.check_array",
    "numpy.dtype",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.tree._tree.Tree",
    # The torch_mlp entries: their fitted state is numpy and plain Python only, no torch object
    # (mlserve.training.torch_mlp), so loading one never imports torch.
    "mlserve.training.torch_mlp.TorchMLPClassifier",
    "mlserve.training.torch_mlp.TorchMLPRegressor",
)


def load_pipeline(data: bytes) -> Pipeline:
    """Load a skops artifact, refusing any type outside the allow-list.

    Parameters
    ----------
    data : bytes
        Artifact content (already checked against its sha256).

    Raises
    ------
    Conflict
        If the artifact holds a type that is neither trusted by skops nor in
        :data:`ALLOWED_TYPES`, or is not a readable skops file.
    """
    from sklearn.pipeline import Pipeline  # a skops artifact needs scikit-learn anyway

    try:
        pipeline = _load_checked(data)
    except ValidationFailed as exc:
        raise Conflict(
            "model artifact holds types that are not allowed"
            if "types" in exc.details
            else "model artifact could not be loaded",
            {k: v for k, v in exc.details.items() if k == "types"},
        ) from exc
    if not isinstance(pipeline, Pipeline):
        raise Conflict("model artifact is not a scikit-learn pipeline")
    return pipeline


def load_estimator(data: bytes) -> Pipeline:
    """Load an imported skops file: any estimator with ``predict``, as a pipeline.

    Raises
    ------
    ValidationFailed
        Refused types (``details["types"]``, the first 20), an unreadable file, or an
        object without ``predict``.
    """
    from sklearn.pipeline import Pipeline  # a skops artifact needs scikit-learn anyway

    loaded = _load_checked(data)
    if not hasattr(loaded, "predict"):
        raise ValidationFailed(
            f"the skops file holds a {type(loaded).__name__}, not an estimator with predict",
            {"field": "file"},
        )
    return loaded if isinstance(loaded, Pipeline) else Pipeline([("model", loaded)])


def _load_checked(data: bytes) -> Any:
    """skops' untrusted types of ``data`` checked against :data:`ALLOWED_TYPES`, then load."""
    import skops.io as sio  # 5-10 s to import (it scans scikit-learn): only where used

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises many types for damaged files
        raise ValidationFailed("the file is not a readable skops file", {"field": "file"}) from exc
    refused = sorted(set(untrusted) - set(ALLOWED_TYPES))
    if refused:
        raise ValidationFailed(
            "the skops file holds types that are not allowed: " + ", ".join(refused[:20]),
            {"field": "file", "types": refused[:20]},
        )
    try:
        return sio.loads(data, trusted=list(untrusted))
    except Exception as exc:
        raise ValidationFailed("the skops file could not be loaded", {"field": "file"}) from exc


@dataclass(kw_only=True)
class LoadedModel:
    """A model version ready to predict.

    Attributes
    ----------
    model_name, version : str, int
    runtime : Runtime
        ONNX Runtime or scikit-learn (see :mod:`mlserve.serving.runtime`); its
        ``validator`` is compiled once from the signature for its input format.
    classes : list or None
        Class labels in probability-column order (classifiers only).
    artifact_sha256 : str
        Identity of the artifact: a different digest is a different model.
    batcher : MicroBatcher or None
        Set when micro-batching is on for this version.
    tensor : TensorModel or None
        The graph of an imported ONNX version, run tensor to tensor by the V2 routes.
    """

    model_name: str
    version: int
    runtime: Runtime
    classes: list[Any] | None
    artifact_sha256: str
    batcher: MicroBatcher | None = None
    tensor: TensorModel | None = None

    @property
    def validator(self) -> InstanceValidator:
        """The runtime's instance validator."""
        return self.runtime.validator

    def predict(self, columns: Columns, n_rows: int) -> Outputs:
        """Predictions and probabilities for validated ``columns`` of ``n_rows`` rows."""
        if self.batcher is not None:
            return self.batcher.predict(columns, n_rows)
        return self.runtime.predict(columns)


class ModelCache:
    """Least-recently-used cache of loaded model versions, safe across threads.

    Parameters
    ----------
    settings : Settings
        ``model_cache_size`` (most versions kept loaded) and the batching settings.
    db : Database
        Where a version whose artifact cannot be loaded is marked corrupt.
    store : ArtifactStore
        Where the artifacts are read from (sha256-checked).
    """

    def __init__(self, *, settings: Settings, db: Database, store: ArtifactStore) -> None:
        self._settings = settings
        self._db = db
        self._store = store
        self._capacity = settings.model_cache_size
        self._items: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, row: ModelVersion) -> LoadedModel:
        """Return the loaded model for ``row``, loading it on first use.

        Raises
        ------
        Conflict
            If the artifact is missing, fails its sha256 check or the allow-list.
        """
        key = (row.model_name, row.version)
        with self._lock:
            found = self._items.get(key)
            if found is not None and found.artifact_sha256 == row.artifact_sha256:
                self._items.move_to_end(key)
                return found
        loaded = self._load(row)
        with self._lock:
            self._items[key] = loaded
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return loaded

    def _load(self, row: ModelVersion) -> LoadedModel:
        try:
            runtime = self._runtime(row)
        except Conflict as exc:
            self._mark_corrupt(row, exc.message)
            raise
        if row.corrupt_reason is not None:
            self._mark_corrupt(row, None)
        batcher = None
        if self._batching(row):
            settings = self._settings
            batcher = MicroBatcher(runtime, settings.max_batch_size, settings.max_batch_wait_ms)
        return LoadedModel(
            model_name=row.model_name,
            version=row.version,
            runtime=runtime,
            classes=row.signature["output"].get("classes"),
            artifact_sha256=row.artifact_sha256,
            batcher=batcher,
            tensor=getattr(runtime, "model", None) if row.imported else None,
        )

    def _mark_corrupt(self, row: ModelVersion, reason: str | None) -> None:
        """Record (or clear) why the version's artifact cannot be served; best effort."""
        try:
            with self._db.session() as session:
                stored = session.get(ModelVersion, row.id)
                if stored is not None:
                    stored.corrupt_reason = reason
        except MlserveError as exc:  # the 409 is answered anyway
            log.warning("could not record corrupt version %s: %s", row.id, exc.message)
        row.corrupt_reason = reason

    def _read(self, key: str, sha256: str) -> bytes:
        try:
            return self._store.get_bytes(key, expected_sha256=sha256)
        except NotFound as exc:  # the version exists; its file does not: a stored-data fault
            raise Conflict("model artifact is missing from the store", exc.details) from exc

    def _runtime(self, row: ModelVersion) -> Runtime:
        if row.imported is not None:
            return self._imported(row, self._read(row.artifact_key, row.artifact_sha256))
        if row.runtime == "onnx" and row.onnx_artifact_key and row.onnx_sha256:
            data = self._read(row.onnx_artifact_key, row.onnx_sha256)
            try:
                return OnnxRuntime(data, row.signature)
            except Exception as exc:  # ONNX Runtime raises its own types for bad files
                raise Conflict("compiled model artifact could not be loaded") from exc
        pipeline = load_pipeline(self._read(row.artifact_key, row.artifact_sha256))
        return SklearnRuntime(pipeline, row.signature)

    def _imported(self, row: ModelVersion, data: bytes) -> Runtime:
        """The runtime of an imported version (its file passed the import checks)."""
        info = row.imported
        assert info is not None
        try:
            if info["format"] == "skops":
                return SklearnRuntime(load_estimator(data), row.signature)
            model = TensorModel(data, info)
        except MlserveError as exc:
            raise Conflict(f"imported model could not be loaded: {exc.message}") from exc
        if info["layout"] == "tensor":
            return TensorOnlyRuntime(model, row.signature)
        return ImportedOnnxRuntime(model, row.signature, info)

    def _batching(self, row: ModelVersion) -> bool:
        """The setting, else the calibration recorded at registration (none: off)."""
        policy = self._settings.batching
        if policy != "auto":
            return policy == "on"
        return bool((row.serving or {}).get("batching", {}).get("enabled"))

    def clear(self) -> None:
        """Forget every loaded model."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
