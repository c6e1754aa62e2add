"""The ``metadata`` and ``sample`` fields of a model import, parsed and checked."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlserve.errors import ValidationFailed
from mlserve.serving.validation import Columns, InstanceValidator
from mlserve.store.documents import Signature, TensorSignature, TensorSpec

ZERO = {"number": 0.0, "integer": 0, "boolean": False, "string": ""}


class FeatureIn(BaseModel):
    """A feature the client declares: name and logical type."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    type: Literal["number", "integer", "boolean", "string"] = "number"


class ImportMetadata(BaseModel):
    """What the client says about a model file (all optional; unknown keys are kept).

    Attributes
    ----------
    task : {"classification", "regression"} or None
        Tabular task; ``None``: decided from the file.
    description, framework : str or None
    feature_names : list of str or None
        Names of the columns of a single ``[N, F]`` input, in order (ONNX), or of a
        scikit-learn estimator fitted on an array (skops).
    features : list of FeatureIn or None
        Names and types (skops models whose sample does not tell).
    classes : list or None
        Class labels in probability-column order.
    output_name : str or None
        Name of what the model predicts.
    label_output, proba_output : str or None
        Graph outputs giving labels/values and probabilities.
    """

    model_config = ConfigDict(extra="allow")
    task: Literal["classification", "regression"] | None = None
    description: str | None = Field(default=None, max_length=2000)
    framework: str | None = Field(default=None, max_length=64)
    feature_names: list[str] | None = Field(default=None, min_length=1, max_length=10_000)
    features: list[FeatureIn] | None = Field(default=None, min_length=1, max_length=10_000)
    classes: list[int | str] | None = Field(default=None, min_length=2, max_length=10_000)
    output_name: str | None = Field(default=None, max_length=200)
    label_output: str | None = None
    proba_output: str | None = None


def parse_metadata(text: str | None) -> ImportMetadata:
    """Parse the ``metadata`` form field (JSON object; absent: empty).

    Raises
    ------
    ValidationFailed
        Not JSON, not an object, or a field of the wrong type (``details["key"]``).
    """
    if not text:
        return ImportMetadata()
    value = _json(text, "metadata")
    if not isinstance(value, dict):
        raise ValidationFailed("metadata must be a JSON object", {"field": "metadata"})
    try:
        return ImportMetadata.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(
            f"metadata.{key}: {first['msg']}", {"field": "metadata", "key": key}
        ) from exc


def parse_sample(text: str | None) -> Any:
    """Parse the ``sample`` form field (JSON; absent: ``None``).

    Raises
    ------
    ValidationFailed
        Not JSON.
    """
    return _json(text, "sample") if text else None


def _json(text: str, field: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(f"{field} is not valid JSON", {"field": field}) from exc


def sample_columns(validator: InstanceValidator, signature: Signature, sample: Any) -> Columns:
    """Validated columns of the sample rows (``None``: one row of zeros and empty text).

    Raises
    ------
    ValidationFailed
        Rows that do not match the signature (``details["field"]`` is ``sample``).
    """
    try:
        if sample is None:
            row = {f["name"]: ZERO[f["type"]] for f in signature["inputs"]}
            return validator.columns([row])
        if isinstance(sample, dict):
            return validator.columns_from_inputs(sample)
        return validator.columns(sample)
    except ValidationFailed as exc:
        raise ValidationFailed(
            f"sample: {exc.message}", {**exc.details, "field": "sample"}
        ) from exc


def tabular_tensors(signature: Signature) -> TensorSignature:
    """V2 tensors of a tabular signature: one 1-D tensor per feature; ``predict`` and,
    for classifiers, ``predict_proba`` out (MLServer's pandas codec convention)."""
    datatypes = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "string": "BYTES"}
    inputs: list[TensorSpec] = [
        {"name": f["name"], "datatype": datatypes[f["type"]], "shape": [-1]}
        for f in signature["inputs"]
    ]
    classes = signature["output"].get("classes")
    label = label_datatype(classes)
    outputs: list[TensorSpec] = [{"name": "predict", "datatype": label, "shape": [-1]}]
    if classes:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes)]})
    return {"inputs": inputs, "outputs": outputs}


def label_datatype(classes: list[Any] | None) -> str:
    """The OIP datatype of predicted labels: FP64 (regression), BYTES, BOOL or INT64."""
    if not classes:
        return "FP64"
    if isinstance(classes[0], str):
        return "BYTES"
    return "BOOL" if isinstance(classes[0], bool) else "INT64"
